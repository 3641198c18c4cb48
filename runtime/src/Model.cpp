#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "ModelFactory.h"
#include "ThreadPool.h"
#include "cnv/cnv.h"
#include "compiler/Compiler.h"
#include "compiler/backend/Backend.h"

namespace cnv {

using ir::SymbolBindings;

struct Model::Impl {
  CompiledIr compiled;
  backend::CompiledKernels kernels;
  std::vector<TensorSpec> inputs, params, outputs;
  std::set<const ir::Value*> boundParams;
  // packedOperands[kernel][operand]: params repacked for that kernel's schedule.
  std::vector<std::map<size_t, std::vector<float>>> packedOperands;
  mutable std::unique_ptr<ThreadPool> pool;
  mutable std::mutex runMutex;  // one run at a time per model: pool and scratch are shared
  mutable std::vector<std::vector<float>> scratch;
  // kernelScratch[part]: the scratch buffer of the kernel calls that part runs.
  mutable std::vector<std::vector<float>> kernelScratch;
  // When set (ModelFactory::runTimed), each kernel's wall time goes here; only while
  // runMutex is held.
  mutable std::vector<double>* kernelSeconds = nullptr;

  // The scratch of `part` for `kernel`, 64-byte aligned; null if the kernel needs none.
  float* kernelScratchFor(const backend::Kernel& kernel, int part) const {
    const int64_t floats = kernel.schedule->scratchFloats();
    if (floats == 0) return nullptr;
    std::vector<float>& buffer = kernelScratch[static_cast<size_t>(part)];
    const size_t needed = static_cast<size_t>(floats) + 16;
    if (buffer.size() < needed) buffer.resize(needed);
    auto address = reinterpret_cast<uintptr_t>(buffer.data());
    return buffer.data() + ((64 - address % 64) % 64) / sizeof(float);
  }

  const ir::Graph& graph() const { return *compiled.graph; }

  // What a run at one set of symbol values needs beyond the data: computed once per
  // distinct set, so repeated calls at one size skip the shape arithmetic and checks.
  struct SizedPlan {
    SymbolBindings symbols;
    std::vector<std::vector<int64_t>> resultShapes;                   // per op, in storage layout
    std::vector<std::array<int64_t, backend::kScalarCount>> scalars;  // per kernel
  };
  mutable std::optional<SizedPlan> lastPlan;  // guarded by runMutex
  // The plan for `symbols` (checking the run-time conditions when it is new); the
  // caller holds runMutex.
  const SizedPlan& planFor(const SymbolBindings& symbols) const;

  SymbolBindings bindSymbols(const std::map<std::string, TensorView>& given) const;
  void checkRuntimeConditions(const SymbolBindings& symbols) const;
  int64_t evaluate(const ir::SymExpr& e, const SymbolBindings& symbols, const char* what) const;
  // Shape of `v` in its storage layout for the bound symbols.
  std::vector<int64_t> storageShape(const ir::Value& v, const SymbolBindings& symbols) const;
};

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;
Model::~Model() = default;

Model Model::fromFile(const std::string& path, const CompileOptions& options) {
  return ModelFactory::fromIr(compileToIr(readSourceFile(path), options.model), options);
}

Model Model::fromSource(const std::string& text, const std::string& fileName,
                        const CompileOptions& options) {
  return ModelFactory::fromIr(
      compileToIr(std::make_unique<SourceFile>(fileName, text), options.model), options);
}

Model ModelFactory::fromIr(CompiledIr compiled, const CompileOptions& options) {
  backend::BackendOptions backendOptions;
  backendOptions.cpu = options.cpu;
  backendOptions.strategy = options.strategy;
  return fromIr(std::move(compiled), backendOptions);
}

Model ModelFactory::fromIr(CompiledIr compiled, const backend::BackendOptions& options) {
  auto impl = std::make_unique<Model::Impl>();
  impl->compiled = std::move(compiled);
  const ir::Graph& graph = impl->graph();
  for (const ir::Value* v : graph.inputs)
    impl->inputs.push_back({v->name, activationDims(*v, v->layout), ir::name(v->layout)});
  for (const ir::Value* v : graph.params)
    impl->params.push_back({v->name, paramDims(*v),
                            v->kind == ir::ValueKind::Weight ? ir::name(v->weightLayout) : ""});
  for (const ir::Output& o : graph.outputs)
    impl->outputs.push_back({o.name, activationDims(*o.value, o.layout), ir::name(o.layout)});

  backend::Backend backend(options);
  impl->kernels = backend.compile(backend.plan(graph));
  impl->packedOperands.resize(impl->kernels.kernels().size());
  return Model(std::move(impl));
}

const ir::Graph& ModelFactory::graph(const Model& model) { return model.impl_->graph(); }

const std::vector<backend::Kernel>& ModelFactory::kernels(const Model& model) {
  return model.impl_->kernels.kernels();
}

std::vector<double> ModelFactory::runTimed(const Model& model,
                                           const std::map<std::string, TensorView>& inputs,
                                           const std::map<std::string, MutableTensorView>& outputs,
                                           int threads) {
  std::vector<double> seconds(model.impl_->kernels.kernels().size());
  runInto(model, inputs, outputs, threads, &seconds);
  return seconds;
}

const std::string& Model::name() const { return impl_->graph().name; }
const std::vector<TensorSpec>& Model::inputs() const { return impl_->inputs; }
const std::vector<TensorSpec>& Model::params() const { return impl_->params; }
const std::vector<TensorSpec>& Model::outputs() const { return impl_->outputs; }

void Model::setParam(const std::string& name, const TensorView& value) {
  const ir::Graph& graph = impl_->graph();
  auto it = std::find_if(graph.params.begin(), graph.params.end(),
                         [&](const ir::Value* v) { return v->name == name; });
  if (it == graph.params.end())
    throw usageError(fmt::format("model '{}' has no param named '{}'", graph.name, name));
  const ir::Value& param = **it;
  std::vector<int64_t> declared = paramShape(param);
  if (value.shape != declared)
    throw dataError(fmt::format("param '{}' must have shape {}{}, but the given array has shape {}",
                                name, shapeString(declared),
                                param.kind == ir::ValueKind::Weight
                                    ? fmt::format(" (layout {})", ir::name(param.weightLayout))
                                    : "",
                                shapeString(value.shape)));
  if (!value.data) throw usageError(fmt::format("param '{}': null data pointer", name));
  elementCount(declared);  // the IR builder bounds param sizes; stay safe regardless
  const std::vector<backend::Kernel>& kernels = impl_->kernels.kernels();
  for (size_t k = 0; k < kernels.size(); ++k) {
    const backend::Kernel& kernel = kernels[k];
    for (size_t i = 0; i < kernel.op->operands.size(); ++i)
      if (kernel.op->operands[i] == &param && kernel.packs(i))
        impl_->packedOperands[k][i] = kernel.schedule->weightPacking().pack(param, value.data);
  }
  impl_->boundParams.insert(&param);
}

std::vector<std::string> Model::unboundParams() const {
  std::vector<std::string> names;
  for (const ir::Value* v : impl_->graph().params)
    if (!impl_->boundParams.count(v)) names.push_back(v->name);
  return names;
}

int64_t Model::Impl::evaluate(const ir::SymExpr& e, const SymbolBindings& symbols,
                              const char* what) const {
  auto value = e.evaluate(symbols);
  if (!value)
    throw dataError(
        fmt::format("{} ({}) overflows 64-bit integers for these input shapes", what, e.str()));
  return *value;
}

static std::string describe(const SymbolBindings& symbols) {
  std::vector<std::string> parts;
  for (const auto& [name, value] : symbols) parts.push_back(fmt::format("{}={}", name, value));
  return fmt::format("{}", fmt::join(parts, ", "));
}

SymbolBindings Model::Impl::bindSymbols(const std::map<std::string, TensorView>& given) const {
  for (const auto& [name, view] : given) {
    bool known = std::any_of(graph().inputs.begin(), graph().inputs.end(),
                             [&](const ir::Value* v) { return v->name == name; });
    if (!known)
      throw usageError(fmt::format("model '{}' has no input named '{}'", graph().name, name));
  }
  SymbolBindings symbols;
  std::map<std::string, std::string> boundBy;
  for (const ir::Value* input : graph().inputs) {
    auto it = given.find(input->name);
    if (it == given.end()) throw usageError(fmt::format("input '{}' is not given", input->name));
    const TensorView& view = it->second;
    std::vector<std::string> declared = activationDims(*input, input->layout);
    if (view.shape.size() != 3)
      throw dataError(
          fmt::format("input '{}' must have rank 3 (f32[{}] layout {}), but the array "
                      "has shape {}",
                      input->name, fmt::join(declared, ", "), ir::name(input->layout),
                      shapeString(view.shape)));
    elementCount(view.shape);  // rejects negative dims and overflow
    if (!view.data && elementCount(view.shape) > 0)
      throw usageError(fmt::format("input '{}': null data pointer", input->name));
    bool nwc = input->layout == ir::Layout::NWC;
    int channelAxis = nwc ? 2 : 1;
    if (view.shape[channelAxis] != input->channels)
      throw dataError(
          fmt::format("input '{}' must have {} channels (f32[{}] layout {}), but the "
                      "array has shape {}",
                      input->name, input->channels, fmt::join(declared, ", "),
                      ir::name(input->layout), shapeString(view.shape)));
    for (int axis = 0; axis < 3; ++axis) {
      if (axis == channelAxis) continue;
      const ir::SymExpr& dim = axis == 0 ? input->batch : input->width;
      int64_t actual = view.shape[axis];
      bool isWidth = axis != 0;
      if (isWidth && actual < 1)
        throw dataError(
            fmt::format("input '{}' has width {}; widths must be positive", input->name, actual));
      if (dim.isConstant()) {
        if (dim.constant() != actual)
          throw dataError(fmt::format("input '{}' must have {} {}, but the array has shape {}",
                                      input->name, isWidth ? "width" : "batch", dim.constant(),
                                      shapeString(view.shape)));
        continue;
      }
      const std::string symbol = dim.str();
      auto [bound, inserted] = symbols.emplace(symbol, actual);
      if (inserted) {
        boundBy[symbol] = input->name;
      } else if (bound->second != actual) {
        throw dataError(
            fmt::format("symbolic dim '{}' is {} from input '{}' but {} from input '{}'", symbol,
                        bound->second, boundBy[symbol], actual, input->name));
      }
    }
  }
  return symbols;
}

void Model::Impl::checkRuntimeConditions(const SymbolBindings& symbols) const {
  for (const ir::RuntimeCheck& check : graph().checks) {
    auto value = check.value.evaluate(symbols);
    if (!value || *value < 1) {
      DiagnosticEngine diagnostics(*compiled.source);
      diagnostics.error(check.location,
                        fmt::format("{} (with {})", check.message, describe(symbols)));
      throw Error(Error::Kind::Data, diagnostics.render(), true);
    }
  }
}

std::map<std::string, std::vector<int64_t>> Model::outputShapes(
    const std::map<std::string, TensorView>& inputs) const {
  SymbolBindings symbols = impl_->bindSymbols(inputs);
  impl_->checkRuntimeConditions(symbols);
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const ir::Output& o : impl_->graph().outputs)
    shapes[o.name] = impl_->storageShape(*o.value, symbols);
  return shapes;
}

std::map<std::string, Tensor> Model::run(const std::map<std::string, TensorView>& inputs,
                                         int threads) const {
  std::map<std::string, Tensor> results;
  std::map<std::string, MutableTensorView> views;
  for (auto& [name, shape] : outputShapes(inputs)) {
    results[name] = Tensor(shape);
    views[name] = results[name].mutableView();
  }
  runInto(inputs, views, threads);
  return results;
}

std::vector<int64_t> Model::Impl::storageShape(const ir::Value& v,
                                               const SymbolBindings& symbols) const {
  int64_t batch = evaluate(v.batch, symbols, "a batch size");
  int64_t width = evaluate(v.width, symbols, "a width");
  std::vector<int64_t> shape = v.layout == ir::Layout::NWC
                                   ? std::vector<int64_t>{batch, width, v.channels}
                                   : std::vector<int64_t>{batch, v.channels, width};
  elementCount(shape);  // rejects shapes whose size overflows
  return shape;
}

const Model::Impl::SizedPlan& Model::Impl::planFor(const SymbolBindings& symbols) const {
  if (lastPlan && lastPlan->symbols == symbols) return *lastPlan;
  checkRuntimeConditions(symbols);  // throws before anything is kept
  SizedPlan plan;
  plan.symbols = symbols;
  for (const auto& op : graph().ops)
    plan.resultShapes.push_back(storageShape(*op->result, symbols));
  for (const backend::Kernel& kernel : kernels.kernels()) {
    std::array<int64_t, backend::kScalarCount> scalars{};
    const int64_t outputWidth = evaluate(kernel.outputWidth, symbols, "a width");
    scalars[backend::kBatchEnd] = evaluate(kernel.batch, symbols, "a batch size");
    scalars[backend::kInputWidth] = evaluate(kernel.inputWidth, symbols, "a width");
    scalars[backend::kOutputWidth] = outputWidth;
    scalars[backend::kPadLeft] = evaluate(kernel.padLeft, symbols, "a padding");
    scalars[backend::kWidthEnd] = outputWidth;
    plan.scalars.push_back(scalars);
  }
  lastPlan = std::move(plan);
  return *lastPlan;
}

void Model::runInto(const std::map<std::string, TensorView>& inputs,
                    const std::map<std::string, MutableTensorView>& outputs, int threads) const {
  ModelFactory::runInto(*this, inputs, outputs, threads, nullptr);
}

void ModelFactory::runInto(const Model& model, const std::map<std::string, TensorView>& inputs,
                           const std::map<std::string, MutableTensorView>& outputs, int threads,
                           std::vector<double>* kernelSeconds) {
  const Model::Impl& impl = *model.impl_;
  const ir::Graph& graph = impl.graph();
  std::vector<std::string> unbound = model.unboundParams();
  if (!unbound.empty())
    throw usageError(fmt::format("params not bound: {}", fmt::join(unbound, ", ")));
  SymbolBindings symbols = impl.bindSymbols(inputs);
  for (const auto& [name, view] : outputs)
    if (std::none_of(graph.outputs.begin(), graph.outputs.end(),
                     [&](const ir::Output& o) { return o.name == name; }))
      throw usageError(fmt::format("model '{}' has no output named '{}'", graph.name, name));
  // Kernels write outputs (and partial sums) while they still read their inputs, so no
  // output may share memory with an input or another output.
  auto bytes = [](const float* data, const std::vector<int64_t>& shape) {
    const auto begin = reinterpret_cast<uintptr_t>(data);
    return std::pair{begin, begin + static_cast<uintptr_t>(elementCount(shape)) * sizeof(float)};
  };
  auto overlap = [](std::pair<uintptr_t, uintptr_t> a, std::pair<uintptr_t, uintptr_t> b) {
    return a.first < b.second && b.first < a.second;
  };
  for (auto out = outputs.begin(); out != outputs.end(); ++out) {
    const auto range = bytes(out->second.data, out->second.shape);
    for (const auto& [name, view] : inputs)
      if (overlap(range, bytes(view.data, view.shape)))
        throw usageError(fmt::format(
            "the buffer of output '{}' overlaps input '{}': outputs need memory of their own",
            out->first, name));
    for (auto other = std::next(out); other != outputs.end(); ++other)
      if (overlap(range, bytes(other->second.data, other->second.shape)))
        throw usageError(
            fmt::format("the buffers of outputs '{}' and '{}' overlap", out->first, other->first));
  }

  std::lock_guard<std::mutex> lock(impl.runMutex);
  // Set and cleared under the lock: a concurrent run never sees another's sink.
  struct Sink {
    const Model::Impl& impl;
    Sink(const Model::Impl& impl, std::vector<double>* seconds) : impl(impl) {
      impl.kernelSeconds = seconds;
    }
    ~Sink() { impl.kernelSeconds = nullptr; }
  } sink(impl, kernelSeconds);
  const Model::Impl::SizedPlan& plan = impl.planFor(symbols);
  // Storage for every value: user inputs in place, outputs in the caller's buffers,
  // temporaries in scratch kept between runs.
  std::map<const ir::Value*, float*> storage;
  for (const ir::Value* input : graph.inputs)
    storage[input] = const_cast<float*>(inputs.at(input->name).data);
  size_t scratchUsed = 0;
  for (size_t j = 0; j < graph.ops.size(); ++j) {
    const ir::Value* v = graph.ops[j]->result;
    const std::vector<int64_t>& shape = plan.resultShapes[j];
    auto output = std::find_if(graph.outputs.begin(), graph.outputs.end(),
                               [&](const ir::Output& o) { return o.value == v; });
    if (output != graph.outputs.end()) {
      auto given = outputs.find(output->name);
      if (given == outputs.end())
        throw usageError(fmt::format("no buffer given for output '{}'", output->name));
      if (given->second.shape != shape)
        throw usageError(fmt::format("output '{}' needs a buffer of shape {}, not {}", output->name,
                                     shapeString(shape), shapeString(given->second.shape)));
      if (!given->second.data && elementCount(shape) > 0)
        throw usageError(fmt::format("output '{}': null data pointer", output->name));
      storage[v] = given->second.data;
    } else {
      if (impl.scratch.size() <= scratchUsed) impl.scratch.emplace_back();
      impl.scratch[scratchUsed].resize(static_cast<size_t>(elementCount(shape)));
      storage[v] = impl.scratch[scratchUsed++].data();
    }
  }

  const int workers =
      threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (!impl.pool || impl.pool->size() != workers) impl.pool = std::make_unique<ThreadPool>(workers);
  const std::vector<backend::Kernel>& kernels = impl.kernels.kernels();
  for (size_t i = 0; i < kernels.size(); ++i) {
    // Every path out of this iteration, `continue` included, records the kernel's time;
    // only a timed run (runTimed) reads the clock.
    struct Timer {
      std::vector<double>* seconds;
      size_t kernel;
      std::chrono::steady_clock::time_point start;
      ~Timer() {
        if (seconds)
          (*seconds)[kernel] =
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      }
    } timer{impl.kernelSeconds, i,
            impl.kernelSeconds ? std::chrono::steady_clock::now()
                               : std::chrono::steady_clock::time_point{}};
    const backend::Kernel& kernel = kernels[i];
    const backend::KernelFunction function = impl.kernels.function(i);
    std::vector<float*> buffers;
    for (size_t b = 0; b < kernel.buffers.size(); ++b) {
      auto packed = impl.packedOperands[i].find(b);
      buffers.push_back(packed != impl.packedOperands[i].end()
                            ? const_cast<float*>(packed->second.data())
                            : storage.at(kernel.buffers[b]));
    }
    int64_t scalars[backend::kScalarCount];
    std::copy(plan.scalars[i].begin(), plan.scalars[i].end(), scalars);
    const int64_t batch = scalars[backend::kBatchEnd];
    const int64_t outputWidth = scalars[backend::kOutputWidth];
    // Work items are (sample, width chunk) pairs: whole samples when the batch alone
    // keeps every thread busy, otherwise each sample's width split in chunks. Samples
    // and positions are independent, so results do not depend on the split.
    const double work =
        static_cast<double>(batch) * static_cast<double>(outputWidth) * kernel.macsPerPosition;
    const int parts =
        work < 200000 ? 1 : static_cast<int>(std::min<int64_t>(workers, batch * outputWidth));
    if (impl.kernelScratch.size() < static_cast<size_t>(parts)) impl.kernelScratch.resize(parts);
    if (parts <= 1) {
      buffers.push_back(impl.kernelScratchFor(kernel, 0));
      function(buffers.data(), scalars);
      continue;
    }
    const int64_t chunks = batch >= parts ? 1 : (parts + batch - 1) / batch;
    const int64_t items = batch * chunks;
    // Whole tiles of the kernel, dealt out evenly: only a sample's last chunk can end
    // in a partial tile, and no chunk is empty unless there are fewer tiles than chunks.
    const int64_t granule = kernel.schedule->widthGranule();
    const int64_t tiles = (outputWidth + granule - 1) / granule;
    auto chunkStart = [&](int64_t chunk) {
      return std::min(outputWidth, granule * (tiles * chunk / chunks));
    };
    impl.pool->run(parts, [&](int part) {
      std::vector<float*> partBuffers = buffers;
      partBuffers.push_back(impl.kernelScratchFor(kernel, part));
      int64_t local[backend::kScalarCount];
      std::copy(scalars, scalars + backend::kScalarCount, local);
      for (int64_t item = items * part / parts; item < items * (part + 1) / parts; ++item) {
        const int64_t n = item / chunks, chunk = item % chunks;
        local[backend::kBatchBegin] = n;
        local[backend::kBatchEnd] = n + 1;
        local[backend::kWidthBegin] = chunkStart(chunk);
        local[backend::kWidthEnd] = chunkStart(chunk + 1);
        function(partBuffers.data(), local);
      }
    });
  }
}

double Model::flops(const std::map<std::string, int64_t>& symbols) const {
  double total = 0;
  for (const auto& op : impl_->graph().ops) {
    if (op->kind != ir::OpKind::Conv1d) continue;
    const ir::Value& w = *op->operands[1];
    auto batch = op->result->batch.evaluate(symbols);
    auto width = op->result->width.evaluate(symbols);
    if (!batch || !width) throw usageError("flops: every symbolic dim needs a value");
    total += 2.0 * static_cast<double>(*batch) * static_cast<double>(*width) *
             static_cast<double>(w.outChannels) * static_cast<double>(w.inChannelsPerGroup) *
             static_cast<double>(w.kernelWidth);
  }
  return total;
}

}  // namespace cnv
