// cnvc: the command line of SPEC §2. Exit status 0 on success, 1 for a problem with the
// model or the data, 2 for a usage error.
#include <fmt/format.h>
#include <llvm/Config/llvm-config.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "cnv/Io.h"
#include "cnv/cnv.h"
#include "compiler/Compiler.h"
#include "compiler/Report.h"
#include "compiler/backend/Backend.h"
#include "compiler/backend/LlvmTarget.h"
#include "compiler/backend/ObjectCache.h"
#include "compiler/backend/Planner.h"
#include "compiler/driver/AotHeader.h"
#include "compiler/driver/OnednnComparison.h"
#include "compiler/driver/PortCommand.h"
#include "compiler/port/PytorchPort.h"
#include "fma_peak.h"
#include "runtime/src/ModelFactory.h"
#include "runtime/src/ProgramBuilder.h"
#include "runtime/src/Tuner.h"

namespace {

using Clock = std::chrono::steady_clock;

double millisecondsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// NAME=VALUE pairs of a repeated option; a missing '=' or a repeated NAME is a usage error.
std::map<std::string, std::string> parsePairs(const std::vector<std::string>& items,
                                              const std::string& option) {
  std::map<std::string, std::string> pairs;
  for (const std::string& item : items) {
    size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == item.size())
      throw cnv::usageError(fmt::format("{} expects NAME=VALUE, got '{}'", option, item));
    if (!pairs.emplace(item.substr(0, eq), item.substr(eq + 1)).second)
      throw cnv::usageError(fmt::format("{} names '{}' twice", option, item.substr(0, eq)));
  }
  return pairs;
}

// `-` names standard input (for the model or an array) or standard output (for an
// output array), as in most Unix tools.
const std::string kStdio = "-";

std::string readStdin(const std::string& what) {
  std::ostringstream text;
  text << std::cin.rdbuf();
  if (std::cin.bad()) throw cnv::dataError(fmt::format("<stdin>: cannot read the {}", what));
  return text.str();
}

// The model file, or standard input for `-` (its diagnostics then name `<stdin>`).
std::unique_ptr<cnv::SourceFile> readModelSource(const std::string& file) {
  if (file != kStdio) return cnv::readSourceFile(file);
  return std::make_unique<cnv::SourceFile>("<stdin>", readStdin("model"));
}

cnv::Tensor readArray(const std::string& file) {
  return file == kStdio ? cnv::parseNpy(readStdin(".npy array"), "<stdin>") : cnv::readNpy(file);
}

void writeArray(const std::string& file, const cnv::Tensor& tensor) {
  if (file != kStdio) return cnv::writeNpy(file, tensor);
  const std::string bytes = cnv::formatNpy(tensor);
  std::cout.write(bytes.data(), static_cast<std::streamsize>(bytes.size())).flush();
  if (!std::cout) throw cnv::dataError("<stdout>: cannot write the output array");
}

template <typename Specs>
void requireExactNames(const std::map<std::string, std::string>& given, const Specs& specs,
                       const std::string& option, const std::string& what) {
  std::set<std::string> declared;
  for (const cnv::TensorSpec& spec : specs) declared.insert(spec.name);
  for (const auto& [name, file] : given)
    if (!declared.count(name))
      throw cnv::usageError(
          fmt::format("{} names '{}', which is not {} of the model", option, name, what));
  for (const std::string& name : declared)
    if (!given.count(name))
      throw cnv::usageError(fmt::format("missing {} {}=FILE for '{}'", option, name, name));
}

struct CommonOptions {
  std::string file;
  std::string model;
  std::string cpu;
  std::string strategy;

  cnv::CompileOptions compileOptions() const { return {model, cpu, strategy}; }
  cnv::Model compileModel(const cnv::SourceFile& source) const {
    return cnv::Model::fromSource(source.text(), source.name(), compileOptions());
  }
  cnv::backend::BackendOptions backendOptions() const {
    cnv::backend::BackendOptions options;
    options.cpu = cpu;
    options.strategy = strategy;
    return options;
  }
};

// `generatesCode`: the subcommand compiles kernels, so it takes --cpu and --strategy.
void addCommon(CLI::App* command, CommonOptions& options, bool generatesCode = true) {
  command->add_option("MODEL", options.file, "the .cnv file, or - for standard input")->required();
  command->add_option("--model", options.model, "the model to use when the file holds several");
  if (!generatesCode) return;
  command->add_option("--cpu", options.cpu,
                      "generate code for CPU: host (default), x86-64 (SSE2), x86-64-v2, "
                      "x86-64-v3 or haswell (AVX2), x86-64-v4 (AVX-512)");
  std::vector<std::string_view> strategies;
  for (const cnv::backend::Strategy* strategy : cnv::backend::strategyList())
    strategies.push_back(strategy->name());
  command->add_option("--strategy", options.strategy,
                      fmt::format("use this kernel strategy wherever it can compute an op ({}); "
                                  "default: the compiler's choice",
                                  fmt::join(strategies, ", ")));
}

int check(const CommonOptions& options) {
  std::unique_ptr<cnv::SourceFile> source = readModelSource(options.file);
  auto copy = std::make_unique<cnv::SourceFile>(source->name(), source->text());
  cnv::CompiledIr compiled = cnv::compileToIr(std::move(source), options.model);
  std::cout << cnv::formatSignature(*compiled.graph);
  const int warnings = cnv::driver::lintWarningCount(
      cnv::compileToIr(std::move(copy), options.model, cnv::port::portPipeline()));
  // On stderr: stdout is the signature alone, for scripts that read it.
  if (warnings > 0)
    std::cerr << fmt::format("lint: {} warning{} for PyTorch or Keras (see cnvc lint)\n", warnings,
                             warnings == 1 ? "" : "s");
  return 0;
}

// The stages `compile --emit` can stop after, in order (as Toy's toyc -emit=), and
// their names.
enum class Emit { None, Ast, Ir, Loops, Llvm, Asm, Obj };
const std::vector<std::string> kEmitNames = {"ast", "ir", "loops", "llvm", "asm", "obj"};

Emit emitStage(const std::string& name) {
  auto it = std::find(kEmitNames.begin(), kEmitNames.end(), name);
  return it == kEmitNames.end() ? Emit::None : static_cast<Emit>(1 + (it - kEmitNames.begin()));
}

struct CompileOptions {
  std::string emit;
  std::string dumpAfter;
  std::string outputFile;
  std::string headerFile;
  bool listPasses = false;
  bool locations = false;
  bool report = false;
};

void writeResult(const std::string& text, const std::string& outputFile) {
  if (outputFile.empty() || outputFile == "-") {
    std::cout << text;
    return;
  }
  std::ofstream out(outputFile, std::ios::binary);
  out << text;
  if (!out) throw cnv::dataError(fmt::format("{}: cannot write the output file", outputFile));
}

int compile(const CommonOptions& common, const CompileOptions& options) {
  if (options.listPasses) {
    for (const std::string& pass : cnv::passes::passNames()) std::cout << pass << "\n";
    return 0;
  }
  const auto& passes = cnv::passes::passNames();
  if (!options.dumpAfter.empty() && options.dumpAfter != "all" &&
      std::find(passes.begin(), passes.end(), options.dumpAfter) == passes.end())
    throw cnv::usageError(fmt::format("--dump-after: unknown pass '{}' (passes: {}, or all)",
                                      options.dumpAfter, fmt::join(passes, ", ")));
  // Without --emit the IR is printed, unless the IR dumps or the report are asked for.
  const bool onlyDiagnostics = !options.dumpAfter.empty() || options.report;
  const Emit emit = !options.emit.empty() ? emitStage(options.emit)
                    : onlyDiagnostics     ? Emit::None
                                          : Emit::Ir;

  if (!options.headerFile.empty() && emit != Emit::Obj)
    throw cnv::usageError("--header goes with --emit=obj: it declares the object's entry point");
  cnv::ParsedSource parsed = cnv::parseSource(readModelSource(common.file));
  if (emit == Emit::Ast) {
    writeResult(cnv::ast::dump(parsed.module), options.outputFile);
    return 0;
  }

  cnv::passes::PipelineOptions pipeline;
  pipeline.printLocations = options.locations;
  if (!options.dumpAfter.empty()) {
    pipeline.log = [&](const std::string& pass, const std::string& ir, bool changed) {
      if (options.dumpAfter != "all" && options.dumpAfter != pass) return;
      std::cout << fmt::format("// ----- IR after {}{} -----\n{}", pass,
                               changed ? "" : " (unchanged)", ir);
    };
  }
  cnv::CompiledIr compiled = cnv::compileToIr(std::move(parsed), common.model, pipeline);
  const cnv::ir::Graph& graph = *compiled.graph;
  // The back end is needed from --emit=loops on, and for the report's weight packing.
  std::optional<cnv::backend::Backend> backend;
  std::vector<cnv::backend::Kernel> kernels;
  if (options.report || emit >= Emit::Loops) {
    backend.emplace(common.backendOptions());
    kernels = backend->plan(graph);
  }
  if (options.report) std::cout << cnv::formatReport(graph, kernels);
  if (emit == Emit::None) return 0;
  if (emit == Emit::Ir) {
    writeResult(cnv::ir::print(graph, options.locations), options.outputFile);
    return 0;
  }
  if (emit == Emit::Loops) {
    writeResult(backend->describeLoops(kernels), options.outputFile);
    return 0;
  }
  if (emit == Emit::Llvm) {
    writeResult(backend->emitLlvmIr(graph, kernels), options.outputFile);
    return 0;
  }
  if (emit == Emit::Asm) {
    writeResult(backend->emitMachineCode(graph, kernels, false), options.outputFile);
    return 0;
  }
  // An object for programs that link the runtime library and not LLVM: the kernels and
  // the program that runs them.
  std::string outputFile = options.outputFile;
  if (outputFile.empty()) outputFile = graph.name + ".o";
  std::vector<int32_t> functionOf;
  for (size_t k = 0; k < kernels.size(); ++k) functionOf.push_back(static_cast<int32_t>(k));
  cnv::rt::Program program =
      cnv::rt::buildProgram(compiled, kernels, functionOf, static_cast<int32_t>(kernels.size()));
  program.cpu = backend->codeTarget().substr(0, backend->codeTarget().find(' '));
  program.cpuFeatures = backend->enabledCpuFeatures();
  const std::string create = "cnv_" + graph.name + "_create";
  writeResult(backend->emitAotObject(graph, kernels, create, cnv::rt::serialize(program)),
              outputFile);
  if (!options.headerFile.empty())
    writeResult(cnv::formatAotHeader(
                    program, create, std::filesystem::path(compiled.source->name()).filename(),
                    outputFile == "-" ? graph.name + ".o"
                                      : std::filesystem::path(outputFile).filename().string()),
                options.headerFile);
  return 0;
}

struct RunOptions {
  std::vector<std::string> inputs, params, outputs;
  std::string weights;
  int threads = 0;
};

int run(const CommonOptions& common, const RunOptions& options) {
  auto inputs = parsePairs(options.inputs, "--input");
  auto params = parsePairs(options.params, "--param");
  auto outputs = parsePairs(options.outputs, "--output");
  if (!options.weights.empty() && !params.empty())
    throw cnv::usageError("give params either with --param or with --weights, not both");
  int fromStdin = common.file == kStdio, toStdout = 0;
  for (const auto* pairs : {&inputs, &params})
    for (const auto& [name, file] : *pairs) fromStdin += file == kStdio;
  for (const auto& [name, file] : outputs) toStdout += file == kStdio;
  if (fromStdin > 1)
    throw cnv::usageError(
        "standard input (-) can be given for one file only, the model or an array");
  if (toStdout > 1) throw cnv::usageError("standard output (-) can be given for one output only");

  cnv::Model model = common.compileModel(*readModelSource(common.file));
  requireExactNames(inputs, model.inputs(), "--input", "an input");
  requireExactNames(outputs, model.outputs(), "--output", "an output");
  if (options.weights.empty()) {
    requireExactNames(params, model.params(), "--param", "a param");
    for (const auto& [name, file] : params) model.setParam(name, readArray(file).view());
  } else {
    auto tensors = cnv::readSafetensors(options.weights);
    for (const cnv::TensorSpec& spec : model.params()) {
      auto it = tensors.find(spec.name);
      if (it == tensors.end())
        throw cnv::dataError(fmt::format("{}: no tensor named '{}' for param '{}'", options.weights,
                                         spec.name, spec.name));
      model.setParam(spec.name, it->second.view());
    }
  }
  std::map<std::string, cnv::Tensor> arrays;
  std::map<std::string, cnv::TensorView> views;
  for (const auto& [name, file] : inputs) views[name] = (arrays[name] = readArray(file)).view();
  auto results = model.run(views, options.threads);
  for (const auto& [name, file] : outputs) writeArray(file, results.at(name));
  return 0;
}

struct BenchOptions {
  std::vector<std::string> dims;
  int threads = 0;
  double seconds = 1.0;
  bool kernels = false;
};

// Each kernel's best time over a few runs, its schedule and its share of the peak.
void printKernelTimes(const cnv::Model& model, const std::map<std::string, cnv::TensorView>& inputs,
                      const std::map<std::string, cnv::MutableTensorView>& outputs, int threads,
                      const std::map<std::string, int64_t>& dims, double peak) {
  const auto& kernels = cnv::ModelFactory::kernels(model);
  const std::vector<double> best = cnv::bestKernelSeconds(model, inputs, outputs, threads, 5, 0);
  for (size_t k = 0; k < kernels.size(); ++k) {
    const cnv::backend::Kernel& kernel = kernels[k];
    const auto batch = kernel.batch.evaluate(dims), width = kernel.outputWidth.evaluate(dims);
    std::string rate;
    if (kernel.op->kind == cnv::ir::OpKind::Conv1d && batch && width) {
      const double gflops =
          2.0 * double(*batch) * double(*width) * kernel.macsPerPosition / best[k] / 1e9;
      rate = fmt::format(", {:.1f} GFLOP/s, {:.1f}% of peak", gflops, 100 * gflops / peak);
    }
    std::cout << fmt::format("kernel %{} ({}) {}: {:.4f} ms{}\n", kernel.op->result->name,
                             cnv::ir::name(kernel.op->kind), cnv::backend::scheduleName(kernel),
                             best[k] * 1e3, rate);
  }
}

std::map<std::string, int64_t> parseDims(const std::vector<std::string>& items) {
  auto dimTexts = parsePairs(items, "--dim");
  std::map<std::string, int64_t> dims;
  for (const auto& [name, text] : dimTexts) {
    size_t used = 0;
    long long value = -1;
    try {
      value = std::stoll(text, &used);
    } catch (const std::exception&) {
    }
    if (used != text.size() || value < 0 || value >= (1LL << 31))
      throw cnv::usageError(
          fmt::format("--dim {}: '{}' is not an integer in [0, 2^31)", name, text));
    dims[name] = value;
  }
  return dims;
}

// What the tuning cache says of each conv the model runs: whether the compiler's own
// pick is within 5% of the best `cnvc tune` measured.
void printTuningStatus(const cnv::Model& model, const std::string& cpu) {
  for (const cnv::TuningStatus& s : cnv::tuningStatus(model, cpu)) {
    if (!s.tuned) {
      std::cout << fmt::format("tuning: %{} runs {}; not tuned on this machine (cnvc tune)\n",
                               s.value, s.schedule);
      continue;
    }
    const std::optional<double> slower =
        cnv::pickSlowdownPercent(s.modelPickSeconds, s.bestSeconds);
    std::cout << fmt::format(
        "tuning: %{} runs {}; tuned best {} ({:.4f} ms), the compiler's pick {} {} ({})\n", s.value,
        s.schedule, s.best, s.bestSeconds * 1e3, s.modelPick,
        !slower        ? "ran at a time not recorded"
        : *slower <= 5 ? "is within 5% of it"
                       : "is not within 5% of it",
        slower ? fmt::format("{:.1f}% slower; {}", *slower, s.dims) : s.dims);
  }
}

int bench(const CommonOptions& common, const BenchOptions& options) {
  const std::map<std::string, int64_t> dims = parseDims(options.dims);
  // Read first: a model piped in on standard input may be slow to arrive.
  std::unique_ptr<cnv::SourceFile> source = readModelSource(common.file);
  auto start = Clock::now();
  cnv::Model model = common.compileModel(*source);
  double compileMs = millisecondsSince(start);

  std::mt19937 random(42);
  cnv::bindRandomParams(model, random);
  std::map<std::string, cnv::Tensor> arrays = cnv::randomInputs(model, dims, random);
  std::map<std::string, cnv::TensorView> views;
  for (const auto& [name, tensor] : arrays) views[name] = tensor.view();
  double flops = model.flops(dims);
  // Outputs go into buffers allocated once, as a serving loop would do.
  std::map<std::string, cnv::Tensor> outputs;
  std::map<std::string, cnv::MutableTensorView> outputViews;
  for (auto& [name, shape] : model.outputShapes(views))
    outputViews[name] = (outputs[name] = cnv::Tensor(shape)).mutableView();
  model.runInto(views, outputViews, options.threads);  // warm-up
  int runs = 0;
  double best = 1e300;
  auto benchStart = Clock::now();
  while (runs < 3 || (millisecondsSince(benchStart) < options.seconds * 1000 && runs < 100000)) {
    auto t = Clock::now();
    model.runInto(views, outputViews, options.threads);
    best = std::min(best, millisecondsSince(t));
    ++runs;
  }
  const int threads =
      options.threads > 0 ? options.threads : static_cast<int>(std::thread::hardware_concurrency());
  const double peak = cnv::bench::measureFmaPeak(0.2) * threads;
  const double gflops = flops / (best * 1e-3) / 1e9;
  const auto [distinct, cached] = cnv::ModelFactory::cachedKernels(model);
  std::cout << fmt::format("compile: {:.1f} ms\n", compileMs);
  std::cout << fmt::format("compile cache: {}\n",
                           !cnv::backend::ObjectCache::defaultDirectory() ? std::string("off")
                           : cached == distinct && distinct > 0
                               ? fmt::format("hit ({} kernel{})", cached, cached == 1 ? "" : "s")
                               : fmt::format("miss, {} kernel{} compiled and stored", distinct,
                                             distinct == 1 ? "" : "s"));
  std::cout << fmt::format("runs: {} (best of them below), threads: {}\n", runs, threads);
  std::cout << fmt::format("measured FMA peak: {:.1f} GFLOP/s ({} thread{}, <{} x float>)\n", peak,
                           threads, threads == 1 ? "" : "s", cnv::bench::fmaPeakVectorWidth());
  if (options.kernels) printKernelTimes(model, views, outputViews, options.threads, dims, peak);
  printTuningStatus(model, common.cpu);
  cnv::driver::printOnednnComparison(cnv::ModelFactory::graph(model), dims, threads,
                                     options.seconds, best);
  // Last, as the contract has it: the time per run, then the first GFLOP/s of the line.
  std::cout << fmt::format("time per run: {:.4f} ms, {:.3f} GFLOP/s, {:.1f}% of peak\n", best,
                           gflops, 100.0 * gflops / peak);
  return 0;
}

struct TuneOptions {
  std::vector<std::string> dims;
  int threads = 1;
  double seconds = 0.3;
  int passes = 2;
};

int tune(const CommonOptions& common, const TuneOptions& options) {
  if (!common.strategy.empty())
    throw cnv::usageError("tune times every strategy's schedules; it takes no --strategy");
  cnv::TuningOptions tuning;
  tuning.model = common.model;
  tuning.cpu = common.cpu;
  tuning.dims = parseDims(options.dims);
  // The count itself, not 0, goes into the record of what was timed.
  tuning.threads = options.threads > 0
                       ? options.threads
                       : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  tuning.passes = options.passes;
  tuning.secondsPerRound = options.seconds;
  tuning.progress = [](const std::string& line) { std::cerr << line << "\n"; };
  std::unique_ptr<cnv::SourceFile> source = readModelSource(common.file);
  const cnv::TuningResult result = cnv::tuneSource(source->text(), source->name(), tuning);
  std::string dims;
  for (const auto& [name, value] : tuning.dims)
    dims += fmt::format("{}{}={}", dims.empty() ? "" : " ", name, value);
  dims += fmt::format("{}{} thread{}", dims.empty() ? "" : ", ", tuning.threads,
                      tuning.threads == 1 ? "" : "s");
  std::cout << fmt::format("machine: {}\n", result.machine);
  if (result.convs.empty()) {
    std::cout << "no conv of the model has more than one schedule to choose from\n";
    return 0;
  }
  int withinReach = 0;
  for (const cnv::TunedConv& conv : result.convs) {
    std::cout << fmt::format("%{} ({}): {} candidates\n", conv.value, conv.conv,
                             conv.candidates.size());
    for (const auto& [name, seconds] : conv.candidates)
      std::cout << fmt::format("  {:<20} {:10.4f} ms{}{}\n", name, seconds * 1e3,
                               name == conv.best ? "  best" : "",
                               name == conv.modelPick ? "  (the compiler's pick)" : "");
    const std::optional<double> slower =
        cnv::pickSlowdownPercent(conv.modelPickSeconds, conv.bestSeconds);
    if (!slower) {
      std::cout << "  the compiler's pick could not be timed\n";
      continue;
    }
    if (*slower <= 5) ++withinReach;
    std::cout << fmt::format("  the compiler's pick is {:.1f}% slower than the best: {}\n", *slower,
                             *slower <= 5 ? "within 5%" : "not within 5%");
  }
  std::cout << fmt::format("the compiler's pick is within 5% of the best on {} of {} convs\n",
                           withinReach, result.convs.size());
  const std::string path = cnv::tuningCachePath();
  if (path.empty()) {
    std::cout << "not recorded: there is no tuning cache (CNV_TUNING_CACHE=off, or none of "
                 "CNV_TUNING_CACHE, XDG_CACHE_HOME and HOME is set)\n";
    return 0;
  }
  cnv::recordTuning(result, path, dims);
  std::cout << fmt::format("recorded in {}\n", path);
  return 0;
}

// A repeatable NAME=VALUE option, one value per occurrence: CLI11's vector options
// otherwise take every following word, MODEL included, up to the next option.
CLI::Option* addRepeated(CLI::App* command, const std::string& name,
                         std::vector<std::string>& values, const std::string& description) {
  return command->add_option(name, values, description)->allow_extra_args(false);
}

// --threads T: 0 means all cores, as in the C++ API; a negative count is refused rather
// than read as 0.
CLI::Option* addThreads(CLI::App* command, int& threads, const std::string& description) {
  return command->add_option("--threads", threads, description)
      ->check([](const std::string& text) -> std::string {
        if (!text.empty() && text[0] == '-')
          return "'" + text + "' is negative; give a thread count, or 0 for all cores";
        return "";
      })
      ->check(CLI::Range(0, 1024));
}

std::string versionText() {
  std::string cpu;
  try {
    cpu = cnv::backend::targetMachineBuilder("host").getCPU();
  } catch (const cnv::Error&) {
    cpu = "unknown";
  }
  return fmt::format("cnvc {} (LLVM {}, host CPU {})", CNV_VERSION, LLVM_VERSION_STRING, cpu);
}

}  // namespace

int main(int argc, char** argv) {
  // Named, so that usage says `cnvc` rather than the path it was started by.
  CLI::App app{"cnvc: compiler for 1-D convolution pipelines (.cnv)", "cnvc"};
  app.require_subcommand(1);
  app.set_version_flag("--version", versionText);

  CommonOptions common;
  CLI::App* checkCommand =
      app.add_subcommand("check", "print the model's signature with resolved shapes");
  addCommon(checkCommand, common, false);

  CompileOptions compileOptions;
  CLI::App* compileCommand =
      app.add_subcommand("compile", "print the IR, LLVM IR or assembly, or write an object file");
  addCommon(compileCommand, common);
  compileCommand
      ->add_option("--emit", compileOptions.emit,
                   "the stage to stop after and print: ast < ir < loops < llvm < asm < obj")
      ->check(CLI::IsMember(kEmitNames));
  compileCommand->add_option("--dump-after", compileOptions.dumpAfter,
                             "print the IR after PASS, or after every pass (all)");
  compileCommand->add_option("-o", compileOptions.outputFile, "write the result to FILE");
  compileCommand->add_option("--header", compileOptions.headerFile,
                             "with --emit=obj: also write a C header declaring the object's "
                             "entry point to FILE");
  compileCommand->add_flag("--locations", compileOptions.locations,
                           "print source locations in the IR");
  compileCommand->add_flag(
      "--report", compileOptions.report,
      "print the fusions, folded layout changes, remaining transposes and FLOPs");
  compileCommand->add_flag("--list-passes", compileOptions.listPasses,
                           "list the pass names and exit");
  // --list-passes needs no model file.
  compileCommand->get_option("MODEL")->required(false);

  RunOptions runOptions;
  CLI::App* runCommand =
      app.add_subcommand("run", "JIT-compile the model and run it on .npy arrays");
  addCommon(runCommand, common);
  addRepeated(runCommand, "--input", runOptions.inputs,
              "NAME=FILE.npy, for every input (FILE -: standard input)");
  addRepeated(runCommand, "--param", runOptions.params,
              "NAME=FILE.npy, for every param (FILE -: standard input)");
  runCommand->add_option("--weights", runOptions.weights, "a .safetensors file holding the params");
  addRepeated(runCommand, "--output", runOptions.outputs,
              "NAME=FILE.npy, for every output (FILE -: standard output)");
  addThreads(runCommand, runOptions.threads, "threads to use (default, or 0: all cores)");

  BenchOptions benchOptions;
  CLI::App* benchCommand = app.add_subcommand("bench", "time the model on random data");
  addCommon(benchCommand, common);
  addRepeated(benchCommand, "--dim", benchOptions.dims, "NAME=VALUE for every symbolic dim");
  addThreads(benchCommand, benchOptions.threads, "threads to use (default, or 0: all cores)");
  benchCommand->add_option("--seconds", benchOptions.seconds, "how long to keep timing")
      ->check(CLI::Range(0.0, 600.0));
  benchCommand->add_flag("--kernels", benchOptions.kernels,
                         "also time each kernel and print its schedule and share of the peak");

  TuneOptions tuneOptions;
  CLI::App* tuneCommand = app.add_subcommand(
      "tune", "time every candidate schedule of each conv and record the fastest");
  addCommon(tuneCommand, common);
  addRepeated(tuneCommand, "--dim", tuneOptions.dims, "NAME=VALUE for every symbolic dim");
  addThreads(tuneCommand, tuneOptions.threads, "threads to time with (default: 1; 0: all cores)");
  tuneCommand
      ->add_option("--seconds", tuneOptions.seconds,
                   "how long to time each candidate in each pass (default: 0.3)")
      ->check(CLI::Range(0.0, 60.0));
  tuneCommand
      ->add_option("--passes", tuneOptions.passes,
                   "rounds over all candidates, each candidate's best kept (default: 2)")
      ->check(CLI::Range(1, 100));

  cnv::driver::PortOptions portOptions;
  std::vector<std::string> portParams;
  CLI::App* portCommand = app.add_subcommand(
      "port", "write the model as a PyTorch module (and its state_dict, with weights)");
  addCommon(portCommand, common, false);
  portCommand->add_option("--to", portOptions.to, "the framework: pytorch")->required();
  portCommand->add_option("-o", portOptions.directory, "the directory to write NAME.py to")
      ->required();
  portCommand->add_option("--layout", portOptions.layout,
                          "declared: every tensor in its declared layout (default); pytorch: "
                          "every input and output NCW");
  addRepeated(portCommand, "--param", portParams, "NAME=FILE.npy for every param");
  portCommand->add_option("--weights", portOptions.weights,
                          "a .safetensors file binding params by name");
  portCommand->add_flag("--verify", portOptions.verify,
                        "run the module in PyTorch on random inputs and compare with cnv");

  std::string lintTarget = "all";
  CLI::App* lintCommand = app.add_subcommand(
      "lint", "warn of what a framework cannot express directly, and say how to write it");
  addCommon(lintCommand, common, false);
  lintCommand->add_option("--target", lintTarget, "pytorch, keras or all (default)");

  const std::set<std::string> subcommands = {"check", "compile", "run", "bench",
                                             "tune",  "port",    "lint"};
  if (argc > 1 && argv[1][0] != '-' && !subcommands.count(argv[1])) {
    std::cerr << "cnvc: error: unknown subcommand '" << argv[1]
              << "' (expected check, compile, run, bench, tune, port or lint)\nRun 'cnvc "
                 "--help' for usage.\n";
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::cerr << "cnvc: error: " << e.what() << "\n";
    std::cerr << "Run 'cnvc --help' for usage.\n";
    return 2;
  }

  try {
    if (checkCommand->parsed()) return check(common);
    if (compileCommand->parsed()) {
      if (common.file.empty() && !compileOptions.listPasses)
        throw cnv::usageError("compile needs a MODEL file");
      return compile(common, compileOptions);
    }
    if (runCommand->parsed()) return run(common, runOptions);
    if (benchCommand->parsed()) return bench(common, benchOptions);
    if (tuneCommand->parsed()) return tune(common, tuneOptions);
    if (portCommand->parsed()) {
      portOptions.params = parsePairs(portParams, "--param");
      return cnv::driver::port(readModelSource(common.file), common.model, portOptions);
    }
    if (lintCommand->parsed())
      return cnv::driver::lint(readModelSource(common.file), common.model, lintTarget);
  } catch (const cnv::Error& e) {
    std::string message = e.what();
    if (!message.empty() && message.back() != '\n') message += '\n';
    if (e.rendered()) {
      std::cerr << message;  // already rendered diagnostics
    } else {
      std::cerr << "cnvc: " << (e.kind() == cnv::Error::Kind::Internal ? "" : "error: ") << message;
    }
    return e.kind() == cnv::Error::Kind::Usage ? 2 : 1;
  } catch (const std::bad_alloc&) {
    std::cerr << "cnvc: error: out of memory\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "cnvc: internal error: " << e.what() << "\n";
    return 1;
  }
  return 2;
}
