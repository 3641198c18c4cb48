#include "tests/unit/TestSupport.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "compiler/frontend/Parser.h"
#include "tests/reference/Reference.h"

namespace cnv::test {

double toleranceRatio(const Tensor& actual, const Tensor& expected, std::string* detail) {
  if (actual.shape() != expected.shape()) {
    if (detail)
      *detail = "shape " + shapeString(actual.shape()) + " vs " + shapeString(expected.shape());
    return INFINITY;
  }
  double worst = 0;
  for (int64_t i = 0; i < actual.size(); ++i) {
    double a = actual.data()[i], e = expected.data()[i];
    double ratio = std::fabs(a - e) / (1e-4 + 1e-4 * std::fabs(e));
    if (std::isnan(ratio)) ratio = INFINITY;
    if (ratio > 1 && detail && detail->empty())
      *detail =
          "element " + std::to_string(i) + ": " + std::to_string(a) + " vs " + std::to_string(e);
    worst = std::max(worst, ratio);
  }
  return worst;
}

Tensor randomTensor(std::vector<int64_t> shape, std::mt19937& random) {
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  Tensor t(std::move(shape));
  for (int64_t i = 0; i < t.size(); ++i) t.data()[i] = uniform(random);
  return t;
}

std::vector<int64_t> concreteShape(const TensorSpec& spec,
                                   const std::map<std::string, int64_t>& symbols) {
  std::vector<int64_t> shape;
  for (const std::string& dim : spec.dims) {
    auto it = symbols.find(dim);
    shape.push_back(it != symbols.end() ? it->second : std::stoll(dim));
  }
  return shape;
}

namespace {

// The model's outputs through runInto, into buffers that start as NaN (every element
// must be written) with a guard of 16 floats past each end that no kernel may touch;
// std::logic_error if one did.
std::map<std::string, Tensor> runIntoGuarded(const Model& model,
                                             const std::map<std::string, TensorView>& inputs,
                                             int threads) {
  constexpr size_t kGuard = 16;
  constexpr uint32_t kGuardBits = 0x7fa5a5a5;
  float guard;
  std::memcpy(&guard, &kGuardBits, sizeof guard);
  std::map<std::string, AlignedFloats> storage;
  std::map<std::string, MutableTensorView> outputs;
  for (const auto& [name, shape] : model.outputShapes(inputs)) {
    const size_t count = static_cast<size_t>(elementCount(shape));
    AlignedFloats& buffer = storage[name];
    buffer.assign(count + kGuard, guard);
    std::fill(buffer.begin(), buffer.begin() + count, NAN);
    outputs[name] = {buffer.data(), shape};
  }
  model.runInto(inputs, outputs, threads);
  std::map<std::string, Tensor> results;
  for (const auto& [name, view] : outputs) {
    const AlignedFloats& buffer = storage.at(name);
    const size_t count = buffer.size() - kGuard;
    for (size_t i = count; i < buffer.size(); ++i) {
      uint32_t bits;
      std::memcpy(&bits, &buffer[i], sizeof bits);
      // An exception, not a Catch assertion: the fuzzers call this outside any test
      // case (and crash on it, as they should).
      if (bits != kGuardBits)
        throw std::logic_error("a kernel stored past the end of output '" + name + "' (" +
                               std::to_string(count) + " floats), at float " + std::to_string(i));
    }
    results[name] = Tensor(view.shape, std::vector<float>(buffer.begin(), buffer.begin() + count));
  }
  return results;
}

}  // namespace

Comparison runBoth(const std::string& source, const std::map<std::string, int64_t>& symbols,
                   uint32_t seed, int threads, const CompileOptions& options) {
  return std::move(runBothAt(source, std::vector{symbols}, seed, threads, options).front());
}

std::vector<Comparison> runBothAt(const std::string& source,
                                  const std::vector<std::map<std::string, int64_t>>& bindings,
                                  uint32_t seed, int threads, const CompileOptions& options) {
  std::mt19937 random(seed);
  Model model = Model::fromSource(source, "test.cnv", options);
  std::map<std::string, Tensor> paramStorage;
  std::map<std::string, TensorView> params;
  for (const TensorSpec& spec : model.params()) {
    // Params have no symbolic dims.
    paramStorage[spec.name] = randomTensor(concreteShape(spec, {}), random);
    params[spec.name] = paramStorage[spec.name].view();
    model.setParam(spec.name, params[spec.name]);
  }
  SourceFile file("test.cnv", source);
  DiagnosticEngine diagnostics(file);
  ast::Module module = parse(file, diagnostics);
  std::vector<Comparison> results;
  for (const auto& symbols : bindings) {
    std::map<std::string, Tensor> inputStorage;
    std::map<std::string, TensorView> inputs;
    for (const TensorSpec& spec : model.inputs()) {
      inputStorage[spec.name] = randomTensor(concreteShape(spec, symbols), random);
      inputs[spec.name] = inputStorage[spec.name].view();
    }
    Comparison& result = results.emplace_back();
    result.jit = runIntoGuarded(model, inputs, threads);
    result.reference = reference::runModel(module.models.at(0), inputs, params);
  }
  return results;
}

void requireAgreement(const Comparison& comparison, const std::string& context) {
  INFO(context);
  REQUIRE(comparison.jit.size() == comparison.reference.size());
  for (const auto& [name, expected] : comparison.reference) {
    INFO("output " << name);
    REQUIRE(comparison.jit.count(name));
    std::string detail;
    const double ratio = toleranceRatio(comparison.jit.at(name), expected, &detail);
    INFO(detail);
    REQUIRE(ratio <= 1.0);
  }
}

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace cnv::test
