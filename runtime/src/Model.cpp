#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "MemoryLimit.h"
#include "ModelFactory.h"
#include "ProgramBuilder.h"
#include "Runner.h"
#include "cnv/cnv.h"
#include "compiler/Compiler.h"
#include "compiler/backend/Backend.h"

namespace cnv {

using ir::SymbolBindings;

struct Model::Impl {
  CompiledIr compiled;
  backend::CompiledKernels kernels;
  std::shared_ptr<rt::Runner> runner;

  const ir::Graph& graph() const { return *compiled.graph; }
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

  backend::Backend backend(options);
  // The compile cache's key holds the source and the IR after the passes (which
  // pipeline options shape).
  impl->kernels = backend.compile(
      backend.plan(graph), fmt::format("source\n{}\nmodel {}\n{}", impl->compiled.source->text(),
                                       graph.name, ir::print(graph)));
  const std::vector<backend::Kernel>& kernels = impl->kernels.kernels();
  std::vector<int32_t> functionOf;
  std::vector<rt::KernelFunction> functions;
  for (size_t k = 0; k < kernels.size(); ++k) {
    functionOf.push_back(static_cast<int32_t>(k));
    functions.push_back(impl->kernels.function(k));
  }
  impl->runner = std::make_shared<rt::Runner>(
      rt::buildProgram(impl->compiled, kernels, functionOf, static_cast<int32_t>(kernels.size())),
      std::move(functions));
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
  runInto(model, inputs, outputs, threads, seconds.data());
  return seconds;
}

std::pair<size_t, size_t> ModelFactory::cachedKernels(const Model& model) {
  return {model.impl_->kernels.distinctKernels(), model.impl_->kernels.cachedKernels()};
}

std::shared_ptr<rt::Runner> ModelFactory::runner(const Model& model) { return model.impl_->runner; }

const std::string& Model::name() const { return impl_->graph().name; }
const std::vector<TensorSpec>& Model::inputs() const { return impl_->runner->program().inputSpecs; }
const std::vector<TensorSpec>& Model::params() const { return impl_->runner->program().paramSpecs; }
const std::vector<TensorSpec>& Model::outputs() const {
  return impl_->runner->program().outputSpecs;
}

void Model::setParam(const std::string& name, const TensorView& value) {
  impl_->runner->setParam(impl_->runner->paramIndex(name), value);
}

std::vector<std::string> Model::unboundParams() const { return impl_->runner->unboundParams(); }

namespace {

// `given` by name as an array in the order of `specs`, in this thread's array: no
// allocation once a thread has run a model with as many of them. `missing` formats the
// error for a spec not given.
template <typename View>
const View* byIndex(const std::vector<TensorSpec>& specs, const std::map<std::string, View>& given,
                    const char* missing) {
  thread_local std::vector<View> array;
  array.resize(specs.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    auto it = given.find(specs[i].name);
    if (it == given.end()) throw usageError(fmt::format(fmt::runtime(missing), specs[i].name));
    array[i].data = it->second.data;
    array[i].shape.assign(it->second.shape.begin(), it->second.shape.end());
  }
  return array.data();
}

const TensorView* inputArray(const rt::Runner& runner,
                             const std::map<std::string, TensorView>& inputs) {
  for (const auto& [name, view] : inputs) runner.inputIndex(name);  // no unknown names
  return byIndex(runner.program().inputSpecs, inputs, "input '{}' is not given");
}

}  // namespace

std::map<std::string, std::vector<int64_t>> Model::outputShapes(
    const std::map<std::string, TensorView>& inputs) const {
  const rt::Runner& runner = *impl_->runner;
  std::vector<std::vector<int64_t>> shapes = runner.outputShapes(inputArray(runner, inputs));
  std::map<std::string, std::vector<int64_t>> named;
  for (size_t o = 0; o < shapes.size(); ++o)
    named[runner.program().outputSpecs[o].name] = std::move(shapes[o]);
  return named;
}

std::map<std::string, Tensor> Model::run(const std::map<std::string, TensorView>& inputs,
                                         int threads) const {
  std::map<std::string, Tensor> results;
  std::map<std::string, MutableTensorView> views;
  const auto shapes = outputShapes(inputs);
  double bytes = 0;
  for (const auto& [name, shape] : shapes) bytes += 4.0 * static_cast<double>(elementCount(shape));
  rt::checkMemory(bytes >= 9.2e18 ? INT64_MAX : static_cast<int64_t>(bytes),
                  fmt::format("the outputs of model '{}' at these sizes", name()));
  for (auto& [name, shape] : shapes) {
    results[name] = Tensor(shape);
    views[name] = results[name].mutableView();
  }
  runInto(inputs, views, threads);
  return results;
}

void Model::runInto(const std::map<std::string, TensorView>& inputs,
                    const std::map<std::string, MutableTensorView>& outputs, int threads) const {
  ModelFactory::runInto(*this, inputs, outputs, threads, nullptr);
}

void ModelFactory::runInto(const Model& model, const std::map<std::string, TensorView>& inputs,
                           const std::map<std::string, MutableTensorView>& outputs, int threads,
                           double* kernelSeconds) {
  const rt::Runner& runner = *model.impl_->runner;
  runner.requireParamsBound();
  const TensorView* inputArrayData = inputArray(runner, inputs);
  for (const auto& [name, view] : outputs) runner.outputIndex(name);  // no unknown names
  const MutableTensorView* outputArray =
      byIndex(runner.program().outputSpecs, outputs, "no buffer given for output '{}'");
  runner.run(inputArrayData, outputArray, threads, kernelSeconds);
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
