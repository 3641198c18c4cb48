// Each kernel strategy at sizes that reach its fast paths: widths long enough for
// whole register tiles and unchecked interiors, channel counts that leave partial
// channel blocks, residual operands in either layout, and thread splits that cut a
// sample's width across threads. (test_correctness.cpp covers every attribute
// on small shapes.) Layout pairs pick the strategy: NWC → NWC is DirectVector or
// DepthwiseVector, any pair with an NCW side WidthVector.
#include <fmt/format.h>

#include <catch2/catch.hpp>

#include "tests/unit/TestSupport.h"

using cnv::test::runBoth;
using cnv::test::toleranceRatio;

namespace {

struct StrategyCase {
  std::string source;
  std::map<std::string, int64_t> symbols;
  int threads;
};

StrategyCase strategyCase(std::mt19937& random, bool inNcw, bool outNcw, int threads) {
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(random); };
  const bool depthwise = pick(0, 3) == 0;
  int inChannels = pick(1, 40), outChannels = pick(1, 40), groups = 1;
  if (depthwise) {
    inChannels = groups = pick(1, 24);
    outChannels = inChannels * pick(1, 3);
  }
  const int kernel = pick(1, 9), dilation = pick(1, 4);
  const int stride = pick(0, 3) == 0 ? pick(2, 5) : 1;  // 5: the gathering copy
  const int effective = dilation * (kernel - 1) + 1;
  std::string padding;
  int maxPad = 0;
  switch (pick(0, 3)) {
    case 0:
      padding = "same";
      maxPad = effective / 2 + 1;
      break;
    case 1:
      padding = "causal";
      maxPad = effective - 1;
      break;
    case 2:
      padding = "valid";
      break;
    default: {
      const int left = pick(0, effective), right = pick(0, effective);
      padding = fmt::format("({}, {})", left, right);
      maxPad = std::max(left, right);
    }
  }
  const std::string mode =
      pick(0, 1) ? "zeros"
                 : std::vector<std::string>{"reflect", "replicate", "circular"}[pick(0, 2)];
  const int width =
      std::max(effective, maxPad + 1) + (pick(0, 3) == 0 ? pick(0, 20) : pick(0, 400));
  const bool symbolic = pick(0, 1), bias = pick(0, 1);
  // A residual needs the conv's output shape: same padding at stride 1 keeps the width.
  const bool residual = padding == "same" && stride == 1 && pick(0, 1);
  const bool residualNcw = pick(0, 1);
  const std::string act = std::vector<std::string>{"", "relu", "leaky_relu", "tanh"}[pick(0, 3)];

  const std::string W = symbolic ? "L" : std::to_string(width);
  auto dims = [&](bool ncw, int channels) {
    return ncw ? fmt::format("N, {}, {}", channels, W) : fmt::format("N, {}, {}", W, channels);
  };
  std::string body =
      fmt::format("conv1d(x, w{}, stride={}, dilation={}, groups={}, padding={}, padding_mode={})",
                  bias ? ", b" : "", stride, dilation, groups, padding, mode);
  if (residual) body = "add(" + body + ", r)";
  if (!act.empty()) body = act + "(" + body + (act == "leaky_relu" ? ", alpha=0.1)" : ")");
  std::string source = fmt::format("model strategy {{\n  input x : f32[{}] layout {}\n",
                                   dims(inNcw, inChannels), inNcw ? "NCW" : "NWC");
  if (residual)
    source += fmt::format("  input r : f32[{}] layout {}\n", dims(residualNcw, outChannels),
                          residualNcw ? "NCW" : "NWC");
  source += fmt::format("  param w : f32[{}, {}, {}] layout OIW\n", outChannels,
                        inChannels / groups, kernel);
  if (bias) source += fmt::format("  param b : f32[{}]\n", outChannels);
  source += fmt::format("  y = {}\n  output y layout {}\n}}\n", body, outNcw ? "NCW" : "NWC");
  return {source, {{"N", pick(1, 3)}, {"L", width}}, threads};
}

}  // namespace

namespace {

void checkStrategies(uint32_t baseSeed, int cases, const std::string& cpu) {
  for (uint32_t i = 0; i < static_cast<uint32_t>(cases); ++i) {
    std::mt19937 random(baseSeed + i);
    // Every layout pair in turn: NCW → NCW, NCW → NWC, NWC → NCW, NWC → NWC.
    const bool inNcw = i % 4 < 2, outNcw = i % 2 == 0;
    StrategyCase c = strategyCase(random, inNcw, outNcw, 1 + static_cast<int>(i % 3));
    auto result = runBoth(c.source, c.symbols, baseSeed + i, c.threads, cpu);
    for (const auto& [name, expected] : result.reference) {
      INFO(fmt::format("cpu '{}' seed {} threads {} N={} L={}\n{}", cpu, baseSeed + i, c.threads,
                       c.symbols["N"], c.symbols["L"], c.source));
      REQUIRE(result.jit.count(name));
      std::string detail;
      const double ratio = toleranceRatio(result.jit.at(name), expected, &detail);
      INFO(detail);
      REQUIRE(ratio <= 1.0);
    }
  }
}

}  // namespace

TEST_CASE("every kernel strategy agrees with the reference at tile-filling sizes",
          "[correctness][strategy]") {
  checkStrategies(20261125, 160, "");
}

// The host's widest vectors are what the test above covers; these compile for narrower
// x86 levels the host also runs, so the 8- and 4-float tiles (and their register
// budgets) are tested wherever the suite runs.
TEST_CASE("every kernel strategy agrees with the reference with AVX2 and SSE2 vectors",
          "[correctness][strategy]") {
  for (const char* cpu : {"x86-64-v3", "x86-64"}) {
    try {
      cnv::Model::fromSource("model m {\n input x : f32[1, 1, 4] layout NCW\n output x\n}\n",
                             "probe.cnv", {"", cpu});
    } catch (const cnv::Error& e) {
      WARN("skipping " << cpu << ": " << e.what());  // not an x86 host, or one without AVX2
      continue;
    }
    checkStrategies(20261126, 60, cpu);
  }
}

TEST_CASE("a dilation too large for a width-vectorized panel falls back, not overflows",
          "[correctness][strategy]") {
  // (K − 1)·dilation ≈ 2^62: the panel's row stride alone is that many floats, so its
  // size must be checked without multiplying it out; the conv still compiles, with the
  // channel-vectorized strategy.
  const std::string source = R"(
model huge {
  input x : f32[1, 1, L] layout NCW
  param w : f32[1, 1, 2147483647] layout OIW
  y = conv1d(x, w, dilation=2147483647)
  output y
})";
  REQUIRE_NOTHROW(cnv::Model::fromSource(source, "huge.cnv"));
}
