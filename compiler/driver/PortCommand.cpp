#include "compiler/driver/PortCommand.h"

#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>

#include "cnv/Io.h"
#include "cnv/cnv.h"
#include "compiler/port/Lint.h"
#include "compiler/port/PytorchPort.h"

namespace cnv::driver {
namespace {

namespace fs = std::filesystem;

// What runs the generated module: it loads the converted weights into it, saves its
// state_dict, and with --verify runs it and compares with cnv's outputs (SPEC §4).
constexpr const char* kTorchScript = R"(import importlib.util, json, sys
import numpy as np
import torch

job = json.load(open(sys.argv[1]))
spec = importlib.util.spec_from_file_location(job["class"], job["module"])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
model = getattr(module, job["class"])()
if job["state"]:
    state = {key: torch.from_numpy(np.load(path)) for key, path in job["state"]}
    model.load_state_dict(state, strict=True)
if job["save"]:
    torch.save(model.state_dict(), job["save"])
if job["inputs"] is not None:
    with torch.no_grad():
        got = model(*[torch.from_numpy(np.load(path)) for path in job["inputs"]])
    if not isinstance(got, tuple):
        got = (got,)
    worst = 0.0
    for name, path, value in zip(job["outputs"], job["expected"], got):
        e = np.load(path)
        a = value.detach().contiguous().numpy()
        if a.shape != e.shape:
            print(f"output {name}: PyTorch gives shape {list(a.shape)}, cnv {list(e.shape)}")
            sys.exit(3)
        ratio = float(np.max(np.abs(a - e) / (1e-4 + 1e-4 * np.abs(e)), initial=0.0))
        worst = max(worst, ratio)
        if ratio > 1:
            print(f"output {name}: PyTorch and cnv differ by {ratio:.3g}x the tolerance")
            sys.exit(3)
    print(f"{worst:.3g}")
)";

std::string python() {
  if (const char* given = std::getenv("CNV_PYTHON"); given && *given) return given;
  return "/usr/bin/python3";
}

// Runs `args` (no shell), its stdout and stderr into `output`; returns the exit status
// (-1 if it could not start).
int runProcess(const std::vector<std::string>& args, std::string& output, const fs::path& log) {
  const pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    FILE* out = std::fopen(log.c_str(), "w");
    if (out) {
      dup2(fileno(out), 1);
      dup2(fileno(out), 2);
    }
    std::vector<char*> argv;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  int status = 0;
  if (waitpid(pid, &status, 0) < 0) return -1;
  std::ifstream in(log);
  output.assign(std::istreambuf_iterator<char>(in), {});
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// [N, L, C] <-> [N, C, L].
Tensor swapLastTwo(const Tensor& t) {
  const auto& s = t.shape();
  Tensor out({s[0], s[2], s[1]});
  for (int64_t n = 0; n < s[0]; ++n)
    for (int64_t i = 0; i < s[1]; ++i)
      for (int64_t j = 0; j < s[2]; ++j)
        out.data()[(n * s[2] + j) * s[1] + i] = t.data()[(n * s[1] + i) * s[2] + j];
  return out;
}

// A WIO weight [K, I, O] as OIW [O, I, K].
Tensor wioToOiw(const Tensor& t) {
  const auto& s = t.shape();
  Tensor out({s[2], s[1], s[0]});
  for (int64_t k = 0; k < s[0]; ++k)
    for (int64_t i = 0; i < s[1]; ++i)
      for (int64_t o = 0; o < s[2]; ++o)
        out.data()[(o * s[1] + i) * s[0] + k] = t.data()[(k * s[1] + i) * s[2] + o];
  return out;
}

Tensor randomTensor(const std::vector<int64_t>& shape, std::mt19937& random) {
  Tensor t(shape);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  for (int64_t i = 0; i < t.size(); ++i) t.data()[i] = uniform(random);
  return t;
}

// Every param's value, from --param files or --weights, checked against its declared
// shape by binding it to `model`.
std::map<std::string, Tensor> loadParams(const PortOptions& options, Model& model) {
  std::map<std::string, Tensor> values;
  if (!options.weights.empty()) {
    auto tensors = readSafetensors(options.weights);
    for (const TensorSpec& spec : model.params()) {
      auto it = tensors.find(spec.name);
      if (it == tensors.end())
        throw dataError(fmt::format("{}: no tensor named '{}' for param '{}'", options.weights,
                                    spec.name, spec.name));
      values[spec.name] = std::move(it->second);
    }
  } else {
    for (const auto& [name, file] : options.params) {
      bool known = false;
      for (const TensorSpec& spec : model.params()) known |= spec.name == name;
      if (!known)
        throw usageError(
            fmt::format("--param names '{}', which is not a param of the model", name));
    }
    for (const TensorSpec& spec : model.params()) {
      auto it = options.params.find(spec.name);
      if (it == options.params.end())
        throw usageError(fmt::format("missing --param {}=FILE for '{}'", spec.name, spec.name));
      values[spec.name] = readNpy(it->second);
    }
  }
  for (const auto& [name, tensor] : values) model.setParam(name, tensor.view());
  return values;
}

}  // namespace

int port(std::unique_ptr<SourceFile> source, const std::string& modelName,
         const PortOptions& options) {
  if (options.to != "pytorch")
    throw usageError(fmt::format("--to: '{}' is not a target; the choice is pytorch", options.to));
  if (options.layout != "declared" && options.layout != "pytorch")
    throw usageError(fmt::format("--layout: '{}' is neither declared nor pytorch", options.layout));
  if (options.directory.empty()) throw usageError("port needs -o DIR");
  if (!options.weights.empty() && !options.params.empty())
    throw usageError("give params either with --param or with --weights, not both");
  const std::string text = source->text(), fileName = source->name();
  CompiledIr compiled = compileToIr(std::move(source), modelName, port::portPipeline());
  const port::LayoutMode mode =
      options.layout == "pytorch" ? port::LayoutMode::Pytorch : port::LayoutMode::Declared;
  const port::PytorchModule module = port::portToPytorch(compiled, mode);

  std::error_code error;
  fs::create_directories(options.directory, error);
  if (error || !fs::is_directory(options.directory))
    throw dataError(fmt::format("{}: cannot create the output directory", options.directory));
  const fs::path file = fs::path(options.directory) / (compiled.graph->name + ".py");
  {
    std::ofstream out(file);
    out << module.source;
    if (!out) throw dataError(fmt::format("{}: cannot write the module", file.string()));
  }
  std::cout << fmt::format("wrote {}\n", file.string());
  const bool withWeights = !options.weights.empty() || !options.params.empty();
  if (!withWeights && !options.verify) return 0;

  // The weights (given, or random for --verify), through cnv's own checks.
  CompileOptions compileOptions(modelName, options.cpu);
  Model model = Model::fromSource(text, fileName, compileOptions);
  std::map<std::string, Tensor> params;
  if (withWeights) {
    params = loadParams(options, model);
  } else {
    // Scaled as layers are initialized (by the square root of the fan-in), so that deep
    // stacks keep their values, and their rounding, in proportion.
    std::mt19937 random(20261201);
    for (const TensorSpec& spec : model.params()) {
      std::vector<int64_t> shape;
      for (const std::string& d : spec.dims) shape.push_back(std::stoll(d));
      Tensor value = randomTensor(shape, random);
      const double fanIn =
          shape.size() == 3 ? double(shape[1]) * double(spec.layout == "WIO" ? shape[0] : shape[2])
                            : 4.0;
      for (int64_t i = 0; i < value.size(); ++i)
        value.data()[i] = static_cast<float>(value.data()[i] / std::sqrt(fanIn));
      params[spec.name] = std::move(value);
      model.setParam(spec.name, params[spec.name].view());
    }
  }

  const fs::path work = fs::temp_directory_path() / fmt::format("cnvc-port-{}", getpid());
  fs::create_directories(work, error);
  struct Cleanup {
    fs::path path;
    ~Cleanup() {
      std::error_code ignored;
      fs::remove_all(path, ignored);
    }
  } cleanup{work};
  std::string job = "{";
  auto quoted = [](const std::string& s) {
    std::string q = "\"";
    for (char c : s) {
      if (c == '"' || c == '\\') q += '\\';
      q += c;
    }
    return q + "\"";
  };
  job += fmt::format("\"module\": {}, \"class\": {}, ", quoted(fs::absolute(file).string()),
                     quoted(module.className));
  std::vector<std::string> state;
  for (size_t i = 0; i < module.stateDict.size(); ++i) {
    const port::StateEntry& entry = module.stateDict[i];
    const fs::path path = work / fmt::format("state{}.npy", i);
    const Tensor& value = params.at(entry.param);
    writeNpy(path, entry.fromWio ? wioToOiw(value) : value);
    state.push_back(fmt::format("[{}, {}]", quoted(entry.key), quoted(path.string())));
  }
  job += fmt::format("\"state\": [{}], ", fmt::join(state, ", "));
  const fs::path saved = fs::path(options.directory) / (compiled.graph->name + ".pt");
  job += fmt::format("\"save\": {}, ", withWeights ? quoted(fs::absolute(saved).string()) : "null");

  if (options.verify) {
    // Inputs at a size every run-time check accepts: batch 2, the first width that fits.
    std::map<std::string, Tensor> inputs;
    std::map<std::string, TensorView> views;
    std::mt19937 random(7);
    bool fits = false;
    for (int64_t width : {37, 100, 300, 1000, 3000, 10000}) {
      inputs.clear();
      views.clear();
      for (const TensorSpec& spec : model.inputs()) {
        std::vector<int64_t> shape;
        for (size_t axis = 0; axis < 3; ++axis) {
          const std::string& d = spec.dims[axis];
          shape.push_back(std::isdigit(static_cast<unsigned char>(d[0])) ? std::stoll(d)
                          : axis == 0                                    ? 2
                                                                         : width);
        }
        inputs[spec.name] = randomTensor(shape, random);
        views[spec.name] = inputs[spec.name].view();
      }
      try {
        model.outputShapes(views);
        fits = true;
        break;
      } catch (const Error& e) {
        if (e.kind() != Error::Kind::Data) throw;
      }
    }
    if (!fits) throw dataError("--verify: no input width up to 10000 suits the model");
    auto outputs = model.run(views, 0);
    std::vector<std::string> inputPaths, outputNames, expectedPaths;
    const bool ncw = mode == port::LayoutMode::Pytorch;
    for (const TensorSpec& spec : model.inputs()) {
      const fs::path path = work / fmt::format("input_{}.npy", inputPaths.size());
      const Tensor& value = inputs.at(spec.name);
      writeNpy(path, ncw && spec.layout == "NWC" ? swapLastTwo(value) : value);
      inputPaths.push_back(quoted(path.string()));
    }
    for (const TensorSpec& spec : model.outputs()) {
      const fs::path path = work / fmt::format("expected_{}.npy", expectedPaths.size());
      const Tensor& value = outputs.at(spec.name);
      writeNpy(path, ncw && spec.layout == "NWC" ? swapLastTwo(value) : value);
      expectedPaths.push_back(quoted(path.string()));
      outputNames.push_back(quoted(spec.name));
    }
    job += fmt::format("\"inputs\": [{}], \"outputs\": [{}], \"expected\": [{}]}}",
                       fmt::join(inputPaths, ", "), fmt::join(outputNames, ", "),
                       fmt::join(expectedPaths, ", "));
  } else {
    job += "\"inputs\": null}";
  }
  {
    std::ofstream out(work / "job.json");
    out << job;
    std::ofstream script(work / "run.py");
    script << kTorchScript;
  }
  std::string output;
  const int status =
      runProcess({python(), (work / "run.py").string(), (work / "job.json").string()}, output,
                 work / "log.txt");
  if (status == 127 || status < 0)
    throw dataError(
        fmt::format("{} could not be run: saving weights and --verify need Python 3 "
                    "with PyTorch (Debian: python3-torch); CNV_PYTHON names another",
                    python()));
  if (status == 3) throw dataError("--verify: " + output);
  if (status != 0)
    throw dataError(fmt::format("running the generated module in PyTorch failed:\n{}", output));
  if (withWeights) std::cout << fmt::format("wrote {}\n", saved.string());
  if (options.verify)
    std::cout << fmt::format("verify: PyTorch agrees with cnv (worst error {} of the tolerance)\n",
                             output.substr(0, output.find('\n')));
  return 0;
}

int lint(std::unique_ptr<SourceFile> source, const std::string& modelName,
         const std::string& target) {
  std::vector<port::Framework> frameworks;
  if (target == "pytorch" || target == "all") frameworks.push_back(port::Framework::Pytorch);
  if (target == "keras" || target == "all") frameworks.push_back(port::Framework::Keras);
  if (frameworks.empty())
    throw usageError(
        fmt::format("--target: '{}' is not a target; the choices are pytorch, keras, all", target));
  CompiledIr compiled = compileToIr(std::move(source), modelName, port::portPipeline());
  DiagnosticEngine diagnostics(*compiled.source);
  port::lint(*compiled.graph, frameworks, diagnostics);
  std::cout << diagnostics.render();
  return 0;
}

int lintWarningCount(const CompiledIr& compiled) {
  DiagnosticEngine diagnostics(*compiled.source);
  port::lint(*compiled.graph, {port::Framework::Pytorch, port::Framework::Keras}, diagnostics);
  return diagnostics.warningCount();
}

}  // namespace cnv::driver
