// libFuzzer target: the bytes pick a valid random pipeline (the tests' generator) and
// its data; the JIT and the reference interpreter must agree within |a - e| <=
// 1e-4 + 1e-4·|e|. A disagreement traps, with the model printed.
// Catch2's implementation, without its main: TestSupport's helpers are Catch2's.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <map>
#include <string>
#include <vector>

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
  const cnv::test::RandomModel m = cnv::test::RandomModelGenerator(seed).pipeline();
  std::vector<std::map<std::string, int64_t>> bindings{m.symbols};
  bindings.insert(bindings.end(), m.moreSymbols.begin(), m.moreSymbols.end());
  std::vector<cnv::test::Comparison> runs;
  try {
    runs = cnv::test::runBothAt(m.source, bindings, seed, threads, cnv::CompileOptions("", cpu));
  } catch (const std::exception& e) {  // a cnv::Error, or a kernel storing past an output
    std::fprintf(stderr, "a generated model failed (seed %u): %s\n%s\n", seed, e.what(),
                 m.source.c_str());
    __builtin_trap();
  }
  for (size_t b = 0; b < runs.size(); ++b)
    for (const auto& [name, expected] : runs[b].reference) {
      std::string detail;
      if (cnv::test::toleranceRatio(runs[b].jit.at(name), expected, &detail) > 1) {
        std::fprintf(stderr, "JIT and reference differ (seed %u, L=%lld, output %s): %s\n%s\n",
                     seed, static_cast<long long>(bindings[b].at("L")), name.c_str(),
                     detail.c_str(), m.source.c_str());
        __builtin_trap();
      }
    }
  return 0;
}
