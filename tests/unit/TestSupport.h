// Shared helpers for the Catch2 tests: random data, model runs through the JIT and the
// reference, and SPEC §4's tolerance.
#pragma once

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "cnv/cnv.h"

namespace cnv::test {

// SPEC §4: |a − e| ≤ 1e-4 + 1e-4·|e| for every element; returns the worst violation
// ratio (≤ 1 means within tolerance) and fills `detail` on the first failure.
double toleranceRatio(const Tensor& actual, const Tensor& expected, std::string* detail = nullptr);

Tensor randomTensor(std::vector<int64_t> shape, std::mt19937& random);

// Concrete shape of a spec, with symbolic dims taken from `symbols`.
std::vector<int64_t> concreteShape(const TensorSpec& spec,
                                   const std::map<std::string, int64_t>& symbols);

struct Comparison {
  std::map<std::string, Tensor> jit, reference;
};

// Compiles `source` with `options`, binds random params, runs random inputs of the
// given symbol values through the JIT and the reference interpreter.
Comparison runBoth(const std::string& source, const std::map<std::string, int64_t>& symbols,
                   uint32_t seed, int threads = 1, const CompileOptions& options = {});
// The same, compiling once and running at each binding of `bindings` in turn (inputs
// drawn anew for each).
std::vector<Comparison> runBothAt(const std::string& source,
                                  const std::vector<std::map<std::string, int64_t>>& bindings,
                                  uint32_t seed, int threads = 1,
                                  const CompileOptions& options = {});

// Requires (Catch2) that the JIT and the reference gave the same outputs, every element
// within SPEC §4's tolerance; `context` (the model, its seed and sizes) is printed when
// they do not.
void requireAgreement(const Comparison& comparison, const std::string& context);

std::string readFile(const std::string& path);

}  // namespace cnv::test
