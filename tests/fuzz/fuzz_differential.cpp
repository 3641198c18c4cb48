// libFuzzer target: the bytes pick a valid random pipeline (the tests' generator) and
// its data; the JIT and the reference interpreter must agree within |a - e| <=
// 1e-4 + 1e-4·|e|. A disagreement traps, with the model printed.
// Catch2's implementation, without its main: TestSupport's helpers are Catch2's.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "cnv/cnv.h"
#include "tests/unit/RandomModels.h"
#include "tests/unit/TestSupport.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  uint32_t seed;
  std::memcpy(&seed, data, 4);
  const int threads = size > 4 ? 1 + data[4] % 3 : 1;
  const char* cpus[] = {"", "x86-64-v3", "x86-64"};
  const char* cpu = size > 5 ? cpus[data[5] % 3] : "";
  auto [source, symbols] = cnv::test::RandomModelGenerator(seed).pipeline();
  cnv::test::Comparison c;
  try {
    c = cnv::test::runBoth(source, symbols, seed, threads, cnv::CompileOptions("", cpu));
  } catch (const cnv::Error& e) {
    std::fprintf(stderr, "a generated model failed (seed %u): %s\n%s\n", seed, e.what(),
                 source.c_str());
    __builtin_trap();
  }
  for (const auto& [name, expected] : c.reference) {
    std::string detail;
    if (cnv::test::toleranceRatio(c.jit.at(name), expected, &detail) > 1) {
      std::fprintf(stderr, "JIT and reference differ (seed %u, output %s): %s\n%s\n", seed,
                   name.c_str(), detail.c_str(), source.c_str());
      __builtin_trap();
    }
  }
  return 0;
}
