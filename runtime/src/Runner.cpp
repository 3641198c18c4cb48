#include "Runner.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <limits>

#include "MemoryLimit.h"
#include "ThreadPool.h"

namespace cnv::rt {

namespace {

// A line of floats past the end of every temporary and scratch buffer that no kernel
// may write, checked after each kernel: a kernel storing past what its schedule
// declares is a cnv bug, and caught here it is an error naming the kernel instead of
// a heap corrupted for some later free to find.
constexpr size_t kGuardFloats = 16;
constexpr uint32_t kGuardBits = 0x7fa5a5a5;  // a signalling NaN: no kernel computes it

void fillGuard(float* end) {
  for (size_t i = 0; i < kGuardFloats; ++i) std::memcpy(end + i, &kGuardBits, sizeof(float));
}

bool guardIntact(const float* end) {
  for (size_t i = 0; i < kGuardFloats; ++i) {
    uint32_t bits;
    std::memcpy(&bits, end + i, sizeof(float));
    if (bits != kGuardBits) return false;
  }
  return true;
}

}  // namespace

// What a run at one set of symbol values needs beyond the data: computed once per
// distinct set, so repeated calls at one size skip the shape arithmetic and checks.
struct Runner::SizedPlan {
  std::vector<int64_t> symbols;
  std::vector<std::vector<int64_t>> valueShapes;           // results, in storage layout
  std::vector<std::array<int64_t, kScalarCount>> scalars;  // per kernel
  std::vector<std::vector<int64_t>> outputShapes;          // declared layouts
  int64_t bytes = 0;  // temporaries and scratch: what the memory limit is checked against
};

// One run's own memory, reused by the next run that takes it.
struct Runner::Context {
  std::optional<SizedPlan> plan;
  std::vector<float*> storage;           // per value
  std::vector<AlignedFloats> temporary;  // per value that is no output
  // kernelScratch[part]: the scratch of the kernel calls that part runs.
  std::vector<AlignedFloats> kernelScratch;
  std::vector<float*> buffers;

  // The scratch of `part`, its guard filled; null if the kernel needs none.
  float* scratchFor(int64_t floats, int part) {
    if (floats == 0) return nullptr;
    AlignedFloats& buffer = kernelScratch[static_cast<size_t>(part)];
    const size_t needed = static_cast<size_t>(floats) + kGuardFloats;
    if (buffer.size() < needed) buffer.resize(needed);
    fillGuard(buffer.data() + floats);
    return buffer.data();
  }
  bool scratchIntact(int64_t floats, int parts) const {
    if (floats == 0) return true;
    for (int part = 0; part < parts; ++part)
      if (!guardIntact(kernelScratch[static_cast<size_t>(part)].data() + floats)) return false;
    return true;
  }
  // The value's temporary, sized and its guard filled.
  float* temporaryFor(size_t value, int64_t floats) {
    AlignedFloats& buffer = temporary[value];
    buffer.resize(static_cast<size_t>(floats) + kGuardFloats);
    fillGuard(buffer.data() + floats);
    return buffer.data();
  }
  bool temporaryIntact(size_t value) const {
    const AlignedFloats& buffer = temporary[value];
    return buffer.empty() || guardIntact(buffer.data() + buffer.size() - kGuardFloats);
  }
};

namespace {

std::string joined(const std::vector<std::string>& items) {
  return fmt::format("{}", fmt::join(items, ", "));
}

}  // namespace

AlignedFloats packParam(const Program::Param& param, const Program::Packing& packing,
                        const float* user) {
  const int64_t block = packing.block == 0 ? 1 : packing.block;
  if (param.bias) {
    const int64_t O = param.outChannels;
    AlignedFloats packed((O + block - 1) / block * block, 0.0f);
    std::copy(user, user + O, packed.begin());
    return packed;
  }
  const int64_t O = param.outChannels, I = param.inChannelsPerGroup, K = param.kernelWidth;
  auto at = [&](int64_t o, int64_t i, int64_t k) {
    return param.wio ? user[(k * I + i) * O + o] : user[(o * I + i) * K + k];
  };
  if (packing.block == 0) {
    AlignedFloats packed(O * I * K);
    for (int64_t o = 0; o < O; ++o)
      for (int64_t i = 0; i < I; ++i)
        for (int64_t k = 0; k < K; ++k) packed[(o * I + i) * K + k] = at(o, i, k);
    return packed;
  }
  const int64_t blocks = (O + block - 1) / block;
  const int64_t inputs = packing.inputBlock > 0 ? std::min(packing.inputBlock, I) : I;
  AlignedFloats packed(blocks * K * I * block, 0.0f);
  for (int64_t o = 0; o < O; ++o)
    for (int64_t i = 0; i < I; ++i) {
      // Input channel i lies in the block of `count` channels from c0, which starts
      // after c0·K·B floats of its output block's weights.
      const int64_t c0 = i / inputs * inputs, count = std::min(inputs, I - c0);
      for (int64_t k = 0; k < K; ++k)
        packed[((o / block) * K * I + c0 * K + k * count + i - c0) * block + o % block] =
            at(o, i, k);
    }
  return packed;
}

Runner::Runner(Program program, std::vector<KernelFunction> functions)
    : program_(std::move(program)), functions_(std::move(functions)) {
  program_.validate();
  if (functions_.size() != static_cast<size_t>(program_.functionCount))
    throw internalError("internal error: a program's kernel count and its functions disagree");
  auto bindings = std::make_shared<Bindings>();
  bindings->packed.resize(program_.kernels.size());
  for (size_t k = 0; k < program_.kernels.size(); ++k)
    bindings->packed[k].resize(program_.kernels[k].buffers.size());
  bindings->bound.assign(program_.params.size(), false);
  bindings_ = std::move(bindings);
  outputOf_.assign(program_.values.size(), -1);
  for (size_t o = 0; o < program_.outputs.size(); ++o)
    outputOf_[program_.outputs[o]] = static_cast<int32_t>(o);
}

std::shared_ptr<const Runner::Bindings> Runner::bindings() const {
  std::lock_guard<std::mutex> lock(bindingsMutex_);
  return bindings_;
}

Runner::~Runner() = default;

size_t Runner::inputIndex(const std::string& name) const {
  for (size_t i = 0; i < program_.inputSpecs.size(); ++i)
    if (program_.inputSpecs[i].name == name) return i;
  throw usageError(fmt::format("model '{}' has no input named '{}'", program_.name, name));
}

size_t Runner::paramIndex(const std::string& name) const {
  for (size_t i = 0; i < program_.paramSpecs.size(); ++i)
    if (program_.paramSpecs[i].name == name) return i;
  throw usageError(fmt::format("model '{}' has no param named '{}'", program_.name, name));
}

size_t Runner::outputIndex(const std::string& name) const {
  for (size_t i = 0; i < program_.outputSpecs.size(); ++i)
    if (program_.outputSpecs[i].name == name) return i;
  throw usageError(fmt::format("model '{}' has no output named '{}'", program_.name, name));
}

void Runner::setParam(size_t index, const TensorView& value) {
  if (index >= program_.params.size()) throw usageError("setParam: no such param");
  const Program::Param& param = program_.params[index];
  const TensorSpec& spec = program_.paramSpecs[index];
  if (value.shape != param.shape)
    throw dataError(fmt::format("param '{}' must have shape {}{}, but the given array has shape {}",
                                spec.name, shapeString(param.shape),
                                spec.layout.empty() ? "" : fmt::format(" (layout {})", spec.layout),
                                shapeString(value.shape)));
  if (!value.data) throw usageError(fmt::format("param '{}': null data pointer", spec.name));
  // Packed outside the lock; runs in flight keep the snapshot they started with.
  std::vector<std::pair<size_t, size_t>> targets;
  std::vector<std::shared_ptr<const AlignedFloats>> packs;
  for (size_t k = 0; k < program_.kernels.size(); ++k) {
    const Program::Kernel& kernel = program_.kernels[k];
    for (size_t b = 0; b < kernel.buffers.size(); ++b)
      if (kernel.packings[b].param == static_cast<int32_t>(index)) {
        targets.emplace_back(k, b);
        packs.push_back(std::make_shared<const AlignedFloats>(
            packParam(param, kernel.packings[b], value.data)));
      }
  }
  std::lock_guard<std::mutex> lock(bindingsMutex_);
  auto next = std::make_shared<Bindings>(*bindings_);
  for (size_t t = 0; t < targets.size(); ++t)
    next->packed[targets[t].first][targets[t].second] = std::move(packs[t]);
  next->bound[index] = true;
  bindings_ = std::move(next);
}

std::vector<std::string> Runner::unboundParams() const {
  const std::shared_ptr<const Bindings> current = bindings();
  std::vector<std::string> names;
  for (size_t i = 0; i < current->bound.size(); ++i)
    if (!current->bound[i]) names.push_back(program_.paramSpecs[i].name);
  return names;
}

void Runner::requireParamsBound() const { requireBound(*bindings()); }

void Runner::requireBound(const Bindings& bindings) const {
  if (std::find(bindings.bound.begin(), bindings.bound.end(), false) == bindings.bound.end())
    return;
  std::vector<std::string> names;
  for (size_t i = 0; i < bindings.bound.size(); ++i)
    if (!bindings.bound[i]) names.push_back(program_.paramSpecs[i].name);
  throw usageError(fmt::format("params not bound: {}", joined(names)));
}

std::vector<int64_t> Runner::bindSymbols(const TensorView* given) const {
  std::vector<int64_t> symbols(program_.symbols.size(), 0);
  std::vector<int> boundBy(program_.symbols.size(), -1);
  for (size_t i = 0; i < program_.inputs.size(); ++i) {
    const Program::Input& input = program_.inputs[i];
    const TensorSpec& spec = program_.inputSpecs[i];
    const TensorView& view = given[i];
    if (view.shape.size() != 3)
      throw dataError(
          fmt::format("input '{}' must have rank 3 (f32[{}] layout {}), but the array "
                      "has shape {}",
                      spec.name, joined(spec.dims), spec.layout, shapeString(view.shape)));
    elementCount(view.shape);  // rejects negative dims and overflow
    if (!view.data && elementCount(view.shape) > 0)
      throw usageError(fmt::format("input '{}': null data pointer", spec.name));
    const int channelAxis = input.nwc ? 2 : 1;
    if (view.shape[channelAxis] != input.channels)
      throw dataError(fmt::format(
          "input '{}' must have {} channels (f32[{}] layout {}), but the "
          "array has shape {}",
          spec.name, input.channels, joined(spec.dims), spec.layout, shapeString(view.shape)));
    for (int axis = 0; axis < 3; ++axis) {
      if (axis == channelAxis) continue;
      const Program::Dim& dim = axis == 0 ? input.batch : input.width;
      const int64_t actual = view.shape[axis];
      const bool isWidth = axis != 0;
      if (isWidth && actual < 1)
        throw dataError(
            fmt::format("input '{}' has width {}; widths must be positive", spec.name, actual));
      if (dim.symbol < 0) {
        if (dim.constant != actual)
          throw dataError(fmt::format("input '{}' must have {} {}, but the array has shape {}",
                                      spec.name, isWidth ? "width" : "batch", dim.constant,
                                      shapeString(view.shape)));
        continue;
      }
      const size_t s = static_cast<size_t>(dim.symbol);
      if (boundBy[s] < 0) {
        symbols[s] = actual;
        boundBy[s] = static_cast<int>(i);
      } else if (symbols[s] != actual) {
        throw dataError(fmt::format(
            "symbolic dim '{}' is {} from input '{}' but {} from input '{}'", program_.symbols[s],
            symbols[s], program_.inputSpecs[boundBy[s]].name, actual, spec.name));
      }
    }
  }
  return symbols;
}

void Runner::checkRuntimeConditions(const std::vector<int64_t>& symbols) const {
  for (const Program::Check& check : program_.checks) {
    auto value = check.value.evaluate(symbols.data());
    if (value && *value >= 1) continue;
    std::vector<std::string> parts;
    for (size_t s = 0; s < symbols.size(); ++s)
      parts.push_back(fmt::format("{}={}", program_.symbols[s], symbols[s]));
    std::string text = check.diagnostic;
    const size_t at = text.find(Program::kSymbolsPlaceholder);
    if (at != std::string::npos) text.replace(at, 1, joined(parts));
    throw Error(Error::Kind::Data, text, true);
  }
}

namespace {

int64_t evaluate(const Expr& e, const std::vector<int64_t>& symbols, const char* what) {
  auto value = e.evaluate(symbols.data());
  if (!value)
    throw dataError(fmt::format("{} overflows 64-bit integers for these input shapes", what));
  return *value;
}

}  // namespace

std::vector<int64_t> Runner::valueShape(const Program::Value& v,
                                        const std::vector<int64_t>& symbols) const {
  const int64_t batch = evaluate(v.batch, symbols, "a batch size");
  const int64_t width = evaluate(v.width, symbols, "a width");
  std::vector<int64_t> shape = v.nwc ? std::vector<int64_t>{batch, width, v.channels}
                                     : std::vector<int64_t>{batch, v.channels, width};
  elementCount(shape);  // rejects shapes whose size overflows
  return shape;
}

std::vector<std::vector<int64_t>> Runner::outputShapes(const TensorView* inputs) const {
  const std::vector<int64_t> symbols = bindSymbols(inputs);
  checkRuntimeConditions(symbols);
  std::vector<std::vector<int64_t>> shapes;
  for (int32_t o : program_.outputs) shapes.push_back(valueShape(program_.values[o], symbols));
  return shapes;
}

const Runner::SizedPlan& Runner::planFor(Context& context,
                                         const std::vector<int64_t>& symbols) const {
  if (context.plan && context.plan->symbols == symbols) return *context.plan;
  checkRuntimeConditions(symbols);  // throws before anything is kept
  SizedPlan plan;
  plan.symbols = symbols;
  plan.valueShapes.resize(program_.values.size());
  for (size_t v = 0; v < program_.values.size(); ++v)
    if (program_.values[v].kind == Program::Value::Kind::Result)
      plan.valueShapes[v] = valueShape(program_.values[v], symbols);
  for (const Program::Kernel& kernel : program_.kernels) {
    std::array<int64_t, kScalarCount> scalars{};
    const int64_t outputWidth = evaluate(kernel.outputWidth, symbols, "a width");
    scalars[kBatchEnd] = evaluate(kernel.batch, symbols, "a batch size");
    scalars[kInputWidth] = evaluate(kernel.inputWidth, symbols, "a width");
    scalars[kOutputWidth] = outputWidth;
    scalars[kPadLeft] = evaluate(kernel.padLeft, symbols, "a padding");
    scalars[kWidthEnd] = outputWidth;
    plan.scalars.push_back(scalars);
  }
  for (int32_t o : program_.outputs) plan.outputShapes.push_back(plan.valueShapes[o]);
  // The temporaries and the scratch of as many threads as there are, before any of it
  // is allocated.
  double bytes = 0;
  for (size_t v = 0; v < program_.values.size(); ++v)
    if (program_.values[v].kind == Program::Value::Kind::Result && outputOf_[v] < 0)
      bytes += 4.0 * static_cast<double>(elementCount(plan.valueShapes[v]));
  int64_t scratch = 0;
  for (const Program::Kernel& kernel : program_.kernels)
    scratch = std::max(scratch, kernel.scratchFloats);
  bytes += 4.0 * static_cast<double>(scratch) * availableThreads();
  plan.bytes = bytes >= 9.2e18 ? std::numeric_limits<int64_t>::max() : static_cast<int64_t>(bytes);
  checkMemory(plan.bytes, memoryWhat());
  context.plan = std::move(plan);
  return *context.plan;
}

std::string Runner::memoryWhat() const {
  return fmt::format("running model '{}' at these sizes (its temporaries and scratch)",
                     program_.name);
}

std::unique_ptr<Runner::Context> Runner::acquireContext() const {
  {
    std::lock_guard<std::mutex> lock(contextsMutex_);
    if (!freeContexts_.empty()) {
      std::unique_ptr<Context> context = std::move(freeContexts_.back());
      freeContexts_.pop_back();
      return context;
    }
  }
  auto context = std::make_unique<Context>();
  context->storage.resize(program_.values.size());
  context->temporary.resize(program_.values.size());
  return context;
}

void Runner::releaseContext(std::unique_ptr<Context> context) const {
  std::lock_guard<std::mutex> lock(contextsMutex_);
  freeContexts_.push_back(std::move(context));
}

void Runner::run(const TensorView* inputs, const MutableTensorView* outputs, int threads,
                 double* kernelSeconds) const {
  const std::shared_ptr<const Bindings> params = bindings();
  requireBound(*params);  // on the snapshot this run uses
  const std::vector<int64_t> symbols = bindSymbols(inputs);
  // Kernels write outputs (and partial sums) while they still read their inputs, so no
  // output may share memory with an input or another output.
  auto bytes = [](const float* data, const std::vector<int64_t>& shape) {
    const auto begin = reinterpret_cast<uintptr_t>(data);
    return std::pair{begin, begin + static_cast<uintptr_t>(elementCount(shape)) * sizeof(float)};
  };
  auto overlap = [](std::pair<uintptr_t, uintptr_t> a, std::pair<uintptr_t, uintptr_t> b) {
    return a.first < b.second && b.first < a.second;
  };
  const size_t outputCount = program_.outputs.size();
  for (size_t o = 0; o < outputCount; ++o) {
    const auto range = bytes(outputs[o].data, outputs[o].shape);
    for (size_t i = 0; i < program_.inputs.size(); ++i)
      if (overlap(range, bytes(inputs[i].data, inputs[i].shape)))
        throw usageError(fmt::format(
            "the buffer of output '{}' overlaps input '{}': outputs need memory of their own",
            program_.outputSpecs[o].name, program_.inputSpecs[i].name));
    for (size_t other = o + 1; other < outputCount; ++other)
      if (overlap(range, bytes(outputs[other].data, outputs[other].shape)))
        throw usageError(fmt::format("the buffers of outputs '{}' and '{}' overlap",
                                     program_.outputSpecs[o].name,
                                     program_.outputSpecs[other].name));
  }

  struct Release {
    const Runner& runner;
    std::unique_ptr<Context> context;
    ~Release() { runner.releaseContext(std::move(context)); }
  } held{*this, acquireContext()};
  Context& context = *held.context;
  const SizedPlan& plan = planFor(context, symbols);
  checkMemory(plan.bytes, memoryWhat());  // the limit may have changed since it was planned
  for (size_t o = 0; o < outputCount; ++o) {
    const std::vector<int64_t>& shape = plan.outputShapes[o];
    const std::string& name = program_.outputSpecs[o].name;
    if (outputs[o].shape != shape)
      throw usageError(fmt::format("output '{}' needs a buffer of shape {}, not {}", name,
                                   shapeString(shape), shapeString(outputs[o].shape)));
    if (!outputs[o].data && elementCount(shape) > 0)
      throw usageError(fmt::format("output '{}': null data pointer", name));
  }
  // Storage for every value: inputs in place, outputs in the caller's buffers,
  // temporaries in the context's memory.
  for (size_t v = 0; v < program_.values.size(); ++v) {
    const Program::Value& value = program_.values[v];
    if (value.kind == Program::Value::Kind::Input) {
      context.storage[v] = const_cast<float*>(inputs[value.index].data);
    } else if (value.kind == Program::Value::Kind::Result) {
      if (outputOf_[v] >= 0) {
        context.storage[v] = outputs[outputOf_[v]].data;
      } else {
        context.storage[v] = context.temporaryFor(v, elementCount(plan.valueShapes[v]));
      }
    } else {
      context.storage[v] = nullptr;  // params are always packed (see below)
    }
  }

  const int available = availableThreads();
  const int workers = threads > 0 ? std::min(threads, available) : available;
  for (size_t i = 0; i < program_.kernels.size(); ++i) {
    // Every path out of this iteration records the kernel's time; only a timed run
    // reads the clock.
    struct Timer {
      double* seconds;
      std::chrono::steady_clock::time_point start;
      ~Timer() {
        if (seconds)
          *seconds =
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      }
    } timer{
        kernelSeconds ? kernelSeconds + i : nullptr,
        kernelSeconds ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{}};
    const Program::Kernel& kernel = program_.kernels[i];
    const KernelFunction function = functions_[kernel.function];
    context.buffers.clear();
    for (size_t b = 0; b < kernel.buffers.size(); ++b)
      context.buffers.push_back(kernel.packings[b].param >= 0
                                    ? const_cast<float*>(params->packed[i][b]->data())
                                    : context.storage[kernel.buffers[b]]);
    const size_t scratchSlot = context.buffers.size();
    context.buffers.push_back(nullptr);
    int64_t scalars[kScalarCount];
    std::copy(plan.scalars[i].begin(), plan.scalars[i].end(), scalars);
    const int64_t batch = scalars[kBatchEnd];
    const int64_t outputWidth = scalars[kOutputWidth];
    // Work items are (sample, width chunk) pairs: whole samples when the batch alone
    // keeps every thread busy, otherwise each sample's width split in chunks. Samples
    // and positions are independent, so results do not depend on the split.
    const double work =
        static_cast<double>(batch) * static_cast<double>(outputWidth) * kernel.macsPerPosition;
    const int parts =
        work < 200000 ? 1 : static_cast<int>(std::min<int64_t>(workers, batch * outputWidth));
    if (context.kernelScratch.size() < static_cast<size_t>(std::max(parts, 1)))
      context.kernelScratch.resize(std::max(parts, 1));
    auto requireGuardsIntact = [&](int partsRun) {
      const char* overrun = !context.scratchIntact(kernel.scratchFloats, partsRun) ? "scratch"
                            : !context.temporaryIntact(static_cast<size_t>(kernel.result))
                                ? "result"
                                : nullptr;
      if (overrun)
        throw internalError(fmt::format(
            "kernel {} of model '{}' wrote past the end of its {} buffer; this is a bug in "
            "cnv: please report it with the model",
            i, program_.name, overrun));
    };
    if (parts <= 1) {
      context.buffers[scratchSlot] = context.scratchFor(kernel.scratchFloats, 0);
      function(context.buffers.data(), scalars);
      requireGuardsIntact(1);
      continue;
    }
    const int64_t chunks = batch >= parts ? 1 : (parts + batch - 1) / batch;
    const int64_t items = batch * chunks;
    // Whole tiles of the kernel, dealt out evenly: only a sample's last chunk can end
    // in a partial tile, and no chunk is empty unless there are fewer tiles than chunks.
    const int64_t granule = kernel.widthGranule;
    const int64_t tiles = (outputWidth + granule - 1) / granule;
    auto chunkStart = [&](int64_t chunk) {
      return std::min(outputWidth, granule * (tiles * chunk / chunks));
    };
    // Each part's scratch is allocated here, before the threads start.
    std::vector<float*>& shared = context.buffers;
    for (int part = 0; part < parts; ++part) context.scratchFor(kernel.scratchFloats, part);
    auto task = [&](int part) {
      constexpr size_t kMaxBuffers = 16;
      float* partBuffers[kMaxBuffers];
      std::copy(shared.begin(), shared.end(), partBuffers);
      partBuffers[scratchSlot] = context.scratchFor(kernel.scratchFloats, part);
      int64_t local[kScalarCount];
      std::copy(scalars, scalars + kScalarCount, local);
      for (int64_t item = items * part / parts; item < items * (part + 1) / parts; ++item) {
        const int64_t n = item / chunks, chunk = item % chunks;
        local[kBatchBegin] = n;
        local[kBatchEnd] = n + 1;
        local[kWidthBegin] = chunkStart(chunk);
        local[kWidthEnd] = chunkStart(chunk + 1);
        function(partBuffers, local);
      }
    };
    parallelFor(parts, taskRef(task));
    requireGuardsIntact(parts);
  }
}

}  // namespace cnv::rt
