#include "Tuner.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "ModelFactory.h"
#include "compiler/backend/Planner.h"
#include "compiler/backend/TuningCache.h"

namespace cnv {
namespace {

using Clock = std::chrono::steady_clock;

std::vector<int64_t> resolvedShape(const TensorSpec& spec,
                                   const std::map<std::string, int64_t>& dims) {
  std::vector<int64_t> shape;
  for (const std::string& dim : spec.dims) {
    if (!dim.empty() && std::isdigit(static_cast<unsigned char>(dim[0]))) {
      shape.push_back(std::stoll(dim));
      continue;
    }
    auto it = dims.find(dim);
    if (it == dims.end())
      throw usageError(
          fmt::format("give the symbolic dim '{}' a value with --dim {}=VALUE", dim, dim));
    shape.push_back(it->second);
  }
  return shape;
}

void fillRandom(Tensor& tensor, std::mt19937& random) {
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  for (int64_t i = 0; i < tensor.size(); ++i) tensor.data()[i] = uniform(random);
}

// A compiled candidate with its data, ready to time.
struct Bench {
  Model model;
  std::map<std::string, Tensor> inputs, outputs;
  std::map<std::string, TensorView> inputViews;
  std::map<std::string, MutableTensorView> outputViews;

  Bench(Model compiled, const std::map<std::string, int64_t>& dims) : model(std::move(compiled)) {
    std::mt19937 random(42);
    bindRandomParams(model, random);
    inputs = randomInputs(model, dims, random);
    for (auto& [name, tensor] : inputs) inputViews[name] = tensor.view();
    for (auto& [name, shape] : model.outputShapes(inputViews))
      outputViews[name] = (outputs[name] = Tensor(shape)).mutableView();
  }
};

backend::BackendOptions backendOptions(const TuningOptions& options) {
  backend::BackendOptions result;
  result.cpu = options.cpu;
  // The model's own pick is what is measured against; an earlier tuning must not hide it.
  result.useTuningCache = false;
  // Candidates are compiled once each: keeping them would fill the compile cache with
  // schedules no later compile asks for.
  result.useCompileCache = false;
  return result;
}

}  // namespace

std::vector<double> bestKernelSeconds(const Model& model,
                                      const std::map<std::string, TensorView>& inputs,
                                      const std::map<std::string, MutableTensorView>& outputs,
                                      int threads, int minRuns, double budget) {
  ModelFactory::runTimed(model, inputs, outputs, threads);  // warm-up
  std::vector<double> best(ModelFactory::kernels(model).size(),
                           std::numeric_limits<double>::infinity());
  const auto start = Clock::now();
  for (int run = 0;
       run < minRuns ||
       (std::chrono::duration<double>(Clock::now() - start).count() < budget && run < 1000);
       ++run) {
    std::vector<double> times = ModelFactory::runTimed(model, inputs, outputs, threads);
    for (size_t k = 0; k < times.size(); ++k) best[k] = std::min(best[k], times[k]);
  }
  return best;
}

std::map<std::string, Tensor> randomInputs(const Model& model,
                                           const std::map<std::string, int64_t>& dims,
                                           std::mt19937& random) {
  std::map<std::string, Tensor> inputs;
  for (const TensorSpec& spec : model.inputs()) {
    Tensor tensor(resolvedShape(spec, dims));
    fillRandom(tensor, random);
    inputs[spec.name] = std::move(tensor);
  }
  return inputs;
}

void bindRandomParams(Model& model, std::mt19937& random) {
  for (const TensorSpec& spec : model.params()) {
    Tensor tensor(resolvedShape(spec, {}));
    fillRandom(tensor, random);
    model.setParam(spec.name, tensor.view());
  }
}

TuningResult tuneSource(const std::string& source, const std::string& fileName,
                        const TuningOptions& options) {
  auto frontHalf = [&] {
    return compileToIr(std::make_unique<SourceFile>(fileName, source), options.model);
  };
  auto say = [&](const std::string& line) {
    if (options.progress) options.progress(line);
  };

  // The model's own plan (planned, not compiled): its picks, and the candidates of each
  // conv.
  const CompiledIr ir = frontHalf();
  backend::Backend backend(backendOptions(options));
  const std::vector<backend::Kernel> kernels = backend.plan(*ir.graph);
  TuningResult result;
  result.machine = backend::machineKey(backend.target());
  std::vector<std::vector<std::string>> candidates(kernels.size());
  size_t rounds = 0;
  for (size_t i = 0; i < kernels.size(); ++i) {
    const backend::Kernel& kernel = kernels[i];
    if (kernel.op->kind != ir::OpKind::Conv1d) continue;
    candidates[i] = backend::candidateSchedules(*kernel.op, backend.target());
    if (candidates[i].size() < 2) continue;  // nothing to choose
    rounds = std::max(rounds, candidates[i].size());
    TunedConv conv;
    conv.kernel = kernel.symbol;
    conv.value = kernel.op->result->name;
    conv.conv = backend::convKey(*kernel.op);
    conv.modelPick = backend::scheduleName(kernel);
    result.convs.push_back(conv);
  }
  if (result.convs.empty()) return result;

  // best[i][c]: the best time of candidate c of kernel i over all passes.
  std::vector<std::vector<double>> best(kernels.size());
  for (size_t i = 0; i < kernels.size(); ++i)
    best[i].assign(candidates[i].size(), std::numeric_limits<double>::infinity());
  for (int pass = 0; pass < std::max(1, options.passes); ++pass) {
    for (size_t round = 0; round < rounds; ++round) {
      backend::BackendOptions named = backendOptions(options);
      for (size_t i = 0; i < kernels.size(); ++i)
        if (candidates[i].size() >= 2 && round < candidates[i].size())
          named.schedules[i] = candidates[i][round];
      say(fmt::format("tune: pass {}/{}, candidate {}/{}", pass + 1, std::max(1, options.passes),
                      round + 1, rounds));
      Bench bench(ModelFactory::fromIr(frontHalf(), named), options.dims);
      // The planner passes over a name it does not offer: time only what was named.
      const std::vector<backend::Kernel>& compiled = ModelFactory::kernels(bench.model);
      std::vector<double> times =
          bestKernelSeconds(bench.model, bench.inputViews, bench.outputViews, options.threads, 3,
                            options.secondsPerRound);
      for (const auto& [i, name] : named.schedules)
        if (backend::scheduleName(compiled[i]) == name)
          best[i][round] = std::min(best[i][round], times[i]);
    }
  }

  size_t next = 0;
  for (size_t i = 0; i < kernels.size(); ++i) {
    if (candidates[i].size() < 2) continue;
    TunedConv& conv = result.convs[next++];
    for (size_t c = 0; c < candidates[i].size(); ++c)
      if (std::isfinite(best[i][c])) conv.candidates.emplace_back(candidates[i][c], best[i][c]);
    std::stable_sort(conv.candidates.begin(), conv.candidates.end(),
                     [](const auto& a, const auto& b) { return a.second < b.second; });
    if (conv.candidates.empty()) continue;
    conv.best = conv.candidates.front().first;
    conv.bestSeconds = conv.candidates.front().second;
    for (const auto& [name, seconds] : conv.candidates)
      if (name == conv.modelPick) conv.modelPickSeconds = seconds;
  }
  return result;
}

std::optional<double> pickSlowdownPercent(double pickSeconds, double bestSeconds) {
  if (!(pickSeconds > 0) || !(bestSeconds > 0)) return std::nullopt;
  return 100.0 * (pickSeconds / bestSeconds - 1);
}

std::string tuningCachePath() { return backend::TuningCache::defaultPath().value_or(""); }

void recordTuning(const TuningResult& result, const std::string& path, const std::string& dims) {
  backend::TuningCache::update(path, [&](backend::TuningCache& cache) {
    for (const TunedConv& conv : result.convs) {
      if (conv.best.empty()) continue;
      cache.record(result.machine, conv.conv,
                   {conv.best, conv.bestSeconds, conv.modelPick, conv.modelPickSeconds, dims});
    }
  });
}

std::vector<TuningStatus> tuningStatus(const Model& model, const std::string& cpu) {
  backend::BackendOptions options;
  options.cpu = cpu;
  options.useTuningCache = false;
  backend::Backend backend(options);
  const std::string path = tuningCachePath();
  const backend::TuningCache cache =
      path.empty() ? backend::TuningCache() : backend::TuningCache::load(path);
  const std::string machine = backend::machineKey(backend.target());
  std::vector<TuningStatus> status;
  for (const backend::Kernel& kernel : ModelFactory::kernels(model)) {
    if (kernel.op->kind != ir::OpKind::Conv1d) continue;
    TuningStatus s;
    s.kernel = kernel.symbol;
    s.value = kernel.op->result->name;
    s.schedule = backend::scheduleName(kernel);
    if (const backend::TunedChoice* tuned = cache.find(machine, backend::convKey(*kernel.op))) {
      s.tuned = true;
      s.best = tuned->schedule;
      s.bestSeconds = tuned->seconds;
      s.modelPick = tuned->modelPick;
      s.modelPickSeconds = tuned->modelPickSeconds;
      s.dims = tuned->dims;
    }
    status.push_back(s);
  }
  return status;
}

}  // namespace cnv
