#include "Program.h"

#include <fmt/format.h>

#include <array>
#include <cstring>
#include <limits>

namespace cnv::rt {
namespace {

int64_t floorDivide(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

// How many values a step takes off the stack.
int operandCount(Expr::Op op) {
  switch (op) {
    case Expr::Op::Const:
    case Expr::Op::Floor:
      return 0;
    case Expr::Op::Scale:
    case Expr::Op::FloorDiv:
    case Expr::Op::Mod:
      return 1;
    case Expr::Op::Add:
    case Expr::Op::Max:
      return 2;
  }
  return -1;
}

}  // namespace

std::optional<int64_t> Expr::evaluate(const int64_t* symbols) const {
  std::array<int64_t, kMaxDepth> stack;
  int depth = 0;
  for (const Step& s : steps) {
    const int operands = operandCount(s.op);
    if (operands < 0 || depth < operands) return std::nullopt;
    int64_t r = 0;
    switch (s.op) {
      case Op::Const:
        r = s.value;
        break;
      case Op::Floor: {
        int64_t sum;
        if (__builtin_add_overflow(symbols[s.symbol], s.value, &sum)) return std::nullopt;
        r = floorDivide(sum, s.divisor);
        break;
      }
      case Op::Add:
        if (__builtin_add_overflow(stack[depth - 2], stack[depth - 1], &r)) return std::nullopt;
        break;
      case Op::Scale:
        if (__builtin_mul_overflow(stack[depth - 1], s.value, &r)) return std::nullopt;
        break;
      case Op::FloorDiv:
        r = floorDivide(stack[depth - 1], s.value);
        break;
      case Op::Mod:
        r = stack[depth - 1] % s.value;
        if (r < 0) r += s.value;
        break;
      case Op::Max:
        r = std::max(stack[depth - 2], stack[depth - 1]);
        break;
    }
    depth -= operands;
    if (depth >= kMaxDepth) return std::nullopt;
    stack[depth++] = r;
  }
  if (depth != 1) return std::nullopt;
  return stack[0];
}

bool Expr::valid(size_t symbolCount) const {
  int depth = 0;
  for (const Step& s : steps) {
    const int operands = operandCount(s.op);
    if (operands < 0 || depth < operands) return false;
    if (s.op == Op::Floor &&
        (s.symbol < 0 || static_cast<size_t>(s.symbol) >= symbolCount || s.divisor < 1))
      return false;
    if ((s.op == Op::FloorDiv || s.op == Op::Mod) && s.value < 1) return false;
    depth = depth - operands + 1;
    if (depth > kMaxDepth) return false;
  }
  return depth == 1;
}

void Program::validate() const {
  auto fail = [&](const std::string& what) {
    throw internalError(
        fmt::format("internal error: the program of model '{}' is malformed: {}", name, what));
  };
  if (inputs.size() != inputSpecs.size() || params.size() != paramSpecs.size() ||
      outputs.size() != outputSpecs.size())
    fail("signature and program disagree");
  auto validSymbol = [&](int32_t s) { return s >= -1 && s < static_cast<int32_t>(symbols.size()); };
  for (const Input& input : inputs)
    if (input.channels < 1 || !validSymbol(input.batch.symbol) || !validSymbol(input.width.symbol))
      fail("an input");
  for (const Param& param : params) {
    if (param.shape.empty() || param.shape.size() > 3) fail("a param's rank");
    for (int64_t d : param.shape)
      if (d < 1) fail("a param's shape");
    elementCount(param.shape);
    if (param.outChannels < 1 ||
        (!param.bias &&
         (param.inChannelsPerGroup < 1 || param.kernelWidth < 1 || param.shape.size() != 3)))
      fail("a param's dims");
    const int64_t declared = elementCount(param.shape);
    if (param.bias ? declared != param.outChannels
                   : declared / param.outChannels / param.kernelWidth != param.inChannelsPerGroup ||
                         declared % (param.outChannels * param.kernelWidth) != 0)
      fail("a param's dims");
  }
  auto validValue = [&](int32_t v) { return v >= 0 && static_cast<size_t>(v) < values.size(); };
  for (const Value& value : values) {
    if (value.kind == Value::Kind::Input &&
        (value.index < 0 || static_cast<size_t>(value.index) >= inputs.size()))
      fail("an input value");
    if (value.kind == Value::Kind::Param &&
        (value.index < 0 || static_cast<size_t>(value.index) >= params.size()))
      fail("a param value");
    if (value.kind == Value::Kind::Result &&
        (!value.batch.valid(symbols.size()) || !value.width.valid(symbols.size()) ||
         value.channels < 1))
      fail("a result's shape");
  }
  std::vector<bool> written(values.size(), false);
  for (const Kernel& kernel : kernels) {
    if (kernel.function < 0 || kernel.function >= functionCount) fail("a kernel function");
    // The runner copies a call's buffers (and its scratch) into an array of 16.
    if (kernel.buffers.size() != kernel.packings.size() || kernel.buffers.empty() ||
        kernel.buffers.size() > 15)
      fail("a kernel's buffers");
    for (int32_t b : kernel.buffers)
      if (!validValue(b)) fail("a kernel buffer");
    for (size_t b = 0; b < kernel.buffers.size(); ++b) {
      const Packing& p = kernel.packings[b];
      if (p.param < -1 || p.param >= static_cast<int32_t>(params.size()) || p.block < 0 ||
          p.inputBlock < 0)
        fail("a packing");
      if (p.param >= 0 && values[kernel.buffers[b]].kind != Value::Kind::Param) fail("a packing");
    }
    if (!validValue(kernel.result) || values[kernel.result].kind != Value::Kind::Result ||
        kernel.buffers.back() != kernel.result)
      fail("a kernel's result");
    // Kernels run in order: each reads values already written.
    for (size_t b = 0; b + 1 < kernel.buffers.size(); ++b) {
      const Value& v = values[kernel.buffers[b]];
      if (v.kind == Value::Kind::Result && !written[kernel.buffers[b]]) fail("a kernel's operand");
    }
    written[kernel.result] = true;
    for (const Expr* e : {&kernel.batch, &kernel.inputWidth, &kernel.outputWidth, &kernel.padLeft})
      if (!e->valid(symbols.size())) fail("a kernel's scalars");
    if (kernel.widthGranule < 1 || kernel.scratchFloats < 0 || !(kernel.macsPerPosition >= 0))
      fail("a kernel's schedule");
  }
  for (int32_t o : outputs)
    if (!validValue(o) || values[o].kind != Value::Kind::Result || !written[o]) fail("an output");
  for (const Check& check : checks)
    if (!check.value.valid(symbols.size())) fail("a run-time check");
}

// --- The byte format: "CNVPROG" + version, then little-endian fields -----------------

namespace {

constexpr char kMagic[8] = {'C', 'N', 'V', 'P', 'R', 'O', 'G', '1'};

class Writer {
 public:
  void i64(int64_t v) { bytes(&v, sizeof v); }
  void i32(int32_t v) { bytes(&v, sizeof v); }
  void u8(uint8_t v) { bytes(&v, 1); }
  void f64(double v) { bytes(&v, sizeof v); }
  void str(const std::string& s) {
    i64(static_cast<int64_t>(s.size()));
    out_ += s;
  }
  void count(size_t n) { i64(static_cast<int64_t>(n)); }
  void expr(const Expr& e) {
    count(e.steps.size());
    for (const Expr::Step& s : e.steps) {
      u8(static_cast<uint8_t>(s.op));
      i64(s.value);
      i64(s.divisor);
      i32(s.symbol);
    }
  }
  void spec(const TensorSpec& spec) {
    str(spec.name);
    count(spec.dims.size());
    for (const std::string& d : spec.dims) str(d);
    str(spec.layout);
  }
  std::string take() { return std::move(out_); }
  void raw(const char* data, size_t n) { out_.append(data, n); }

 private:
  void bytes(const void* p, size_t n) { out_.append(static_cast<const char*>(p), n); }
  std::string out_;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  int64_t i64() { return get<int64_t>(); }
  int32_t i32() { return get<int32_t>(); }
  uint8_t u8() { return get<uint8_t>(); }
  double f64() { return get<double>(); }
  // A count of items that take at least `minBytes` each: never more than the bytes left.
  size_t count(size_t minBytes = 1) {
    const int64_t n = i64();
    if (n < 0 || static_cast<uint64_t>(n) > (in_.size() - at_) / minBytes) fail();
    return static_cast<size_t>(n);
  }
  std::string str() {
    const size_t n = count();
    std::string s(in_.substr(at_, n));
    at_ += n;
    return s;
  }
  Expr expr() {
    Expr e;
    e.steps.resize(count(21));
    for (Expr::Step& s : e.steps) {
      const uint8_t op = u8();
      if (op > static_cast<uint8_t>(Expr::Op::Max)) fail();
      s.op = static_cast<Expr::Op>(op);
      s.value = i64();
      s.divisor = i64();
      s.symbol = i32();
    }
    return e;
  }
  TensorSpec spec() {
    TensorSpec spec;
    spec.name = str();
    spec.dims.resize(count(8));
    for (std::string& d : spec.dims) d = str();
    spec.layout = str();
    return spec;
  }
  bool atEnd() const { return at_ == in_.size(); }
  void expect(std::string_view text) {
    if (in_.substr(at_, text.size()) != text) fail();
    at_ += text.size();
  }
  [[noreturn]] static void fail() {
    throw dataError("the model program is truncated or damaged (not written by this cnv?)");
  }

 private:
  template <typename T>
  T get() {
    if (in_.size() - at_ < sizeof(T)) fail();
    T v;
    std::memcpy(&v, in_.data() + at_, sizeof(T));
    at_ += sizeof(T);
    return v;
  }
  std::string_view in_;
  size_t at_ = 0;
};

void writeDim(Writer& w, const Program::Dim& d) {
  w.i32(d.symbol);
  w.i64(d.constant);
}
Program::Dim readDim(Reader& r) {
  Program::Dim d;
  d.symbol = r.i32();
  d.constant = r.i64();
  return d;
}

}  // namespace

std::string serialize(const Program& p) {
  Writer w;
  w.raw(kMagic, sizeof kMagic);
  w.str(p.name);
  w.count(p.symbols.size());
  for (const std::string& s : p.symbols) w.str(s);
  for (const auto* specs : {&p.inputSpecs, &p.paramSpecs, &p.outputSpecs}) {
    w.count(specs->size());
    for (const TensorSpec& spec : *specs) w.spec(spec);
  }
  for (const Program::Input& input : p.inputs) {
    w.i64(input.channels);
    w.u8(input.nwc);
    writeDim(w, input.batch);
    writeDim(w, input.width);
  }
  for (const Program::Param& param : p.params) {
    w.count(param.shape.size());
    for (int64_t d : param.shape) w.i64(d);
    w.u8(param.bias);
    w.u8(param.wio);
    w.i64(param.outChannels);
    w.i64(param.inChannelsPerGroup);
    w.i64(param.kernelWidth);
  }
  for (int32_t o : p.outputs) w.i32(o);
  w.count(p.values.size());
  for (const Program::Value& v : p.values) {
    w.u8(static_cast<uint8_t>(v.kind));
    w.i32(v.index);
    w.expr(v.batch);
    w.expr(v.width);
    w.i64(v.channels);
    w.u8(v.nwc);
  }
  w.count(p.kernels.size());
  for (const Program::Kernel& k : p.kernels) {
    w.i32(k.function);
    w.count(k.buffers.size());
    for (size_t b = 0; b < k.buffers.size(); ++b) {
      w.i32(k.buffers[b]);
      w.i32(k.packings[b].param);
      w.i64(k.packings[b].block);
      w.i64(k.packings[b].inputBlock);
    }
    w.i32(k.result);
    for (const Expr* e : {&k.batch, &k.inputWidth, &k.outputWidth, &k.padLeft}) w.expr(*e);
    w.f64(k.macsPerPosition);
    w.i64(k.widthGranule);
    w.i64(k.scratchFloats);
  }
  w.count(p.checks.size());
  for (const Program::Check& c : p.checks) {
    w.expr(c.value);
    w.str(c.diagnostic);
  }
  w.i32(p.functionCount);
  w.str(p.cpu);
  w.count(p.cpuFeatures.size());
  for (const std::string& f : p.cpuFeatures) w.str(f);
  return w.take();
}

Program deserialize(std::string_view bytes) {
  Reader r(bytes);
  r.expect(std::string_view(kMagic, sizeof kMagic));
  Program p;
  p.name = r.str();
  p.symbols.resize(r.count(8));
  for (std::string& s : p.symbols) s = r.str();
  for (auto* specs : {&p.inputSpecs, &p.paramSpecs, &p.outputSpecs}) {
    specs->resize(r.count(24));
    for (TensorSpec& spec : *specs) spec = r.spec();
  }
  p.inputs.resize(p.inputSpecs.size());
  for (Program::Input& input : p.inputs) {
    input.channels = r.i64();
    input.nwc = r.u8() != 0;
    input.batch = readDim(r);
    input.width = readDim(r);
  }
  p.params.resize(p.paramSpecs.size());
  for (Program::Param& param : p.params) {
    param.shape.resize(r.count(8));
    for (int64_t& d : param.shape) d = r.i64();
    param.bias = r.u8() != 0;
    param.wio = r.u8() != 0;
    param.outChannels = r.i64();
    param.inChannelsPerGroup = r.i64();
    param.kernelWidth = r.i64();
  }
  p.outputs.resize(p.outputSpecs.size());
  for (int32_t& o : p.outputs) o = r.i32();
  p.values.resize(r.count(30));
  for (Program::Value& v : p.values) {
    const uint8_t kind = r.u8();
    if (kind > static_cast<uint8_t>(Program::Value::Kind::Result)) Reader::fail();
    v.kind = static_cast<Program::Value::Kind>(kind);
    v.index = r.i32();
    v.batch = r.expr();
    v.width = r.expr();
    v.channels = r.i64();
    v.nwc = r.u8() != 0;
  }
  p.kernels.resize(r.count(60));
  for (Program::Kernel& k : p.kernels) {
    k.function = r.i32();
    const size_t buffers = r.count(28);
    k.buffers.resize(buffers);
    k.packings.resize(buffers);
    for (size_t b = 0; b < buffers; ++b) {
      k.buffers[b] = r.i32();
      k.packings[b].param = r.i32();
      k.packings[b].block = r.i64();
      k.packings[b].inputBlock = r.i64();
    }
    k.result = r.i32();
    for (Expr* e : {&k.batch, &k.inputWidth, &k.outputWidth, &k.padLeft}) *e = r.expr();
    k.macsPerPosition = r.f64();
    k.widthGranule = r.i64();
    k.scratchFloats = r.i64();
  }
  p.checks.resize(r.count(16));
  for (Program::Check& c : p.checks) {
    c.value = r.expr();
    c.diagnostic = r.str();
  }
  p.functionCount = r.i32();
  p.cpu = r.str();
  p.cpuFeatures.resize(r.count(8));
  for (std::string& f : p.cpuFeatures) f = r.str();
  if (!r.atEnd()) Reader::fail();
  try {
    p.validate();
  } catch (const Error&) {
    Reader::fail();
  }
  return p;
}

}  // namespace cnv::rt
