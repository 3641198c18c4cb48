// Randomized pipelines through the JIT against the reference interpreter: chains of
// convs with every attribute, activations, residual adds, copies, nested calls and
// several outputs in mixed layouts, with the edges in the mix (widths of 1 and of a
// conv's kernel extent, channel counts off the vector widths), every pair of input and
// output layouts, 1 to 3 threads and every vector width the host runs (--cpu). Models
// with a symbolic width also run at the least width they accept and at another.
//
// CNV_RANDOM_PIPELINES pipelines (10,000 a run, fewer in sanitizer builds: see
// tests/CMakeLists.txt; the environment variable of that name overrides it), split over
// kShards test cases so that ctest can run them in parallel. Seeded: pipeline i has
// seed kBaseSeed + i, and a failure prints it with the model;
// CNV_PIPELINE_SEED=S cnv_unit_tests "[pipeline]" runs that pipeline alone.
#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>
#include <vector>

#include "tests/unit/RandomModels.h"
#include "tests/unit/TestSupport.h"

#ifndef CNV_RANDOM_PIPELINES
#define CNV_RANDOM_PIPELINES 10000
#endif

namespace {

constexpr int kShards = 40;
constexpr uint32_t kBaseSeed = 777000;

uint32_t totalPipelines() {
  if (const char* given = std::getenv("CNV_RANDOM_PIPELINES"); given && *given)
    return static_cast<uint32_t>(std::stoul(given));
  return CNV_RANDOM_PIPELINES;
}

// The CPUs the pipelines are compiled for in turn: the host (its widest vectors) and
// the x86 levels it can also run, for 16-, 8- and 4-float vectors.
const std::vector<std::string>& cpus() {
  static const std::vector<std::string> runnable = [] {
    std::vector<std::string> found;
    for (const char* cpu : {"", "x86-64-v3", "x86-64", "x86-64-v4", "x86-64-v2"}) {
      try {
        cnv::Model::fromSource("model m {\n input x : f32[1, 1, 4] layout NCW\n output x\n}\n",
                               "probe.cnv", {"", cpu});
        found.push_back(cpu);
      } catch (const cnv::Error& e) {
        WARN("not compiling for " << cpu << ": " << e.what());  // not x86, or too old
      }
    }
    return found;
  }();
  return runnable;
}

// Pipeline `index`: its seed, and in turn every pair of input and output layouts, 1 to
// 3 threads (all 12 combinations in each 12 pipelines) and each CPU.
void checkPipeline(uint32_t index) {
  const uint32_t seed = kBaseSeed + index;
  cnv::test::PipelineRanges ranges;
  ranges.inputNcw = index % 4 < 2;
  ranges.outputNcw = index % 2 == 0;
  const int threads = 1 + static_cast<int>(index % 3);
  const std::string& cpu = cpus()[index / 12 % cpus().size()];
  cnv::test::RandomModel m = cnv::test::RandomModelGenerator(seed).pipeline(ranges);
  std::vector<std::map<std::string, int64_t>> bindings{m.symbols};
  bindings.insert(bindings.end(), m.moreSymbols.begin(), m.moreSymbols.end());
  INFO(
      fmt::format("pipeline seed {} (CNV_PIPELINE_SEED={} cnv_unit_tests \"[pipeline]\" runs it "
                  "alone), cpu '{}', {} threads\n{}",
                  seed, seed, cpu, threads, m.source));
  std::vector<cnv::test::Comparison> results =
      cnv::test::runBothAt(m.source, bindings, seed, threads, {"", cpu});
  for (size_t b = 0; b < bindings.size(); ++b)
    cnv::test::requireAgreement(results[b],
                                fmt::format("N={} L={}", bindings[b]["N"], bindings[b]["L"]));
}

void checkShard(int shard) {
  const uint32_t total = totalPipelines();
  const uint32_t begin = total * shard / kShards, end = total * (shard + 1) / kShards;
  if (const char* only = std::getenv("CNV_PIPELINE_SEED"); only && *only) {
    const uint32_t index = static_cast<uint32_t>(std::stoul(only)) - kBaseSeed;
    if (index >= begin && index < end) checkPipeline(index);
    return;
  }
  for (uint32_t index = begin; index < end; ++index) checkPipeline(index);
}

}  // namespace

#define CNV_PIPELINE_SHARD(k)                                                                     \
  TEST_CASE("random pipelines agree with the reference (" #k "/40)", "[correctness][pipeline]") { \
    checkShard(k - 1);                                                                            \
  }
static_assert(kShards == 40, "the test cases below name 40 shards");
CNV_PIPELINE_SHARD(1)
CNV_PIPELINE_SHARD(2)
CNV_PIPELINE_SHARD(3)
CNV_PIPELINE_SHARD(4)
CNV_PIPELINE_SHARD(5)
CNV_PIPELINE_SHARD(6)
CNV_PIPELINE_SHARD(7)
CNV_PIPELINE_SHARD(8)
CNV_PIPELINE_SHARD(9)
CNV_PIPELINE_SHARD(10)
CNV_PIPELINE_SHARD(11)
CNV_PIPELINE_SHARD(12)
CNV_PIPELINE_SHARD(13)
CNV_PIPELINE_SHARD(14)
CNV_PIPELINE_SHARD(15)
CNV_PIPELINE_SHARD(16)
CNV_PIPELINE_SHARD(17)
CNV_PIPELINE_SHARD(18)
CNV_PIPELINE_SHARD(19)
CNV_PIPELINE_SHARD(20)
CNV_PIPELINE_SHARD(21)
CNV_PIPELINE_SHARD(22)
CNV_PIPELINE_SHARD(23)
CNV_PIPELINE_SHARD(24)
CNV_PIPELINE_SHARD(25)
CNV_PIPELINE_SHARD(26)
CNV_PIPELINE_SHARD(27)
CNV_PIPELINE_SHARD(28)
CNV_PIPELINE_SHARD(29)
CNV_PIPELINE_SHARD(30)
CNV_PIPELINE_SHARD(31)
CNV_PIPELINE_SHARD(32)
CNV_PIPELINE_SHARD(33)
CNV_PIPELINE_SHARD(34)
CNV_PIPELINE_SHARD(35)
CNV_PIPELINE_SHARD(36)
CNV_PIPELINE_SHARD(37)
CNV_PIPELINE_SHARD(38)
CNV_PIPELINE_SHARD(39)
CNV_PIPELINE_SHARD(40)
