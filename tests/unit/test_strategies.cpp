// Each kernel strategy at sizes that reach its fast paths: widths long enough for
// whole register tiles and unchecked interiors, channel counts that leave partial
// channel blocks, residual operands in either layout, and thread splits that cut a
// sample's width across threads. (test_correctness.cpp covers every attribute on small
// shapes.) The compiler's own choice is tested at every vector width, and every
// strategy of the back end's list is also forced onto every conv it can compute.
#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <set>

#include "compiler/Compiler.h"
#include "compiler/backend/Backend.h"
#include "compiler/backend/Planner.h"
#include "tests/unit/RandomModels.h"
#include "tests/unit/TestSupport.h"

using cnv::test::ConvRanges;
using cnv::test::RandomModelGenerator;

namespace {

ConvRanges strategyRanges() {
  ConvRanges ranges = ConvRanges::tileFilling();
  ranges.mapOutputOneIn = 4;  // so that ElementwiseMap has work too
  return ranges;
}

// Sets an environment variable for as long as it lives (a machine description:
// CNV_CACHE_SIZES, CNV_FMA_PER_CYCLE), also when a REQUIRE ends the test early.
struct EnvOverride {
  EnvOverride(const char* name, const char* value) : name(name) { setenv(name, value, 1); }
  ~EnvOverride() { unsetenv(name); }
  const char* name;
};

// Random convs at tile-filling sizes, compiled with `options` and checked against the
// reference. Layout pairs take turns: NCW → NCW, NCW → NWC, NWC → NCW, NWC → NWC.
void checkStrategies(uint32_t baseSeed, int cases, const cnv::CompileOptions& options) {
  for (uint32_t i = 0; i < static_cast<uint32_t>(cases); ++i) {
    const bool inNcw = i % 4 < 2, outNcw = i % 2 == 0;
    const int threads = 1 + static_cast<int>(i % 3);
    cnv::test::RandomModel m =
        RandomModelGenerator(baseSeed + i).conv(strategyRanges(), inNcw, outNcw);
    auto result = cnv::test::runBoth(m.source, m.symbols, baseSeed + i, threads, options);
    cnv::test::requireAgreement(
        result, fmt::format("cpu '{}' strategy '{}' seed {} threads {} N={} L={}\n{}", options.cpu,
                            options.strategy, baseSeed + i, threads, m.symbols["N"], m.symbols["L"],
                            m.source));
  }
}

}  // namespace

TEST_CASE("every kernel strategy agrees with the reference at tile-filling sizes",
          "[correctness][strategy]") {
  checkStrategies(20261125, 160, {});
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
    checkStrategies(20261126, 60, {"", cpu});
  }
}

// The FMA rate picks code paths (WidthVector's half-width last panel where full-width
// FMAs issue at one a cycle, DirectVector's taller tiles where they issue at two): both
// descriptions are tested on any host, whichever it measures.
TEST_CASE("every kernel strategy agrees with the reference under either FMA rate",
          "[correctness][strategy]") {
  for (const char* rate : {"1", "2"}) {
    const EnvOverride override("CNV_FMA_PER_CYCLE", rate);
    INFO("CNV_FMA_PER_CYCLE=" << rate);
    checkStrategies(20261201, 40, {});
    // Ragged widths of a few vectors, where the last panel is the narrow one.
    for (uint32_t i = 0; i < 24; ++i) {
      const int64_t width = 16 * (1 + i % 7) + 1 + i % 9;  // past whole vectors by 1..9
      const std::string source = fmt::format(
          "model m {{\n  input x : f32[2, {0}, {1}] layout NCW\n  param w : f32[{2}, {0}, 3] "
          "layout OIW\n  param b : f32[{2}]\n  y = relu(conv1d(x, w, b, padding=same))\n  output "
          "y\n}}\n",
          5 + i % 3 * 7, width, 4 + i % 5 * 5);
      auto result = cnv::test::runBoth(source, {}, 20261201 + i, 1 + i % 2);
      cnv::test::requireAgreement(result, fmt::format("width {}\n{}", width, source));
    }
  }
}

// Every strategy of the list, preferred wherever it can run: each must compute every
// op it accepts, in every layout pair, not only the ops the planner gives it by choice.
TEST_CASE(
    "each strategy in the list agrees with the reference when forced onto every op it accepts",
    "[correctness][strategy]") {
  const int cases = 48;
  for (const cnv::backend::Strategy* strategy : cnv::backend::strategyList()) {
    const std::string name(strategy->name());
    cnv::backend::Backend backend({"", name});
    int used = 0;
    for (uint32_t i = 0; i < static_cast<uint32_t>(cases); ++i) {
      // The plan must give the strategy every op it accepts.
      cnv::test::RandomModel m =
          RandomModelGenerator(20261129 + i).conv(strategyRanges(), i % 4 < 2, i % 2 == 0);
      cnv::CompiledIr compiled =
          cnv::compileToIr(std::make_unique<cnv::SourceFile>("test.cnv", m.source), "");
      for (const cnv::backend::Kernel& kernel : backend.plan(*compiled.graph)) {
        const bool accepts = !strategy->schedules(*kernel.op, backend.target()).empty();
        INFO(name << " seed " << 20261129 + i << "\n" << m.source);
        REQUIRE((kernel.strategy == strategy) == accepts);
        used += accepts;
      }
    }
    INFO(name << " was given no op of " << cases << " random models");
    REQUIRE(used > 0);
    checkStrategies(20261129, cases, {"", "", name});
  }
}

TEST_CASE("blocks of input channels agree with the reference", "[correctness][strategy]") {
  // With a 2 KiB L1 (CNV_CACHE_SIZES), WidthVector copies the input of any conv with
  // more than a few channels in blocks and keeps partial sums in the output between
  // them: tile-filling convs with 5 to 40 channels take every path of that.
  const EnvOverride override("CNV_CACHE_SIZES", "2K,64K");
  const int cases = 48;
  cnv::backend::Backend backend({"", "WidthVector"});
  int blocked = 0;
  for (uint32_t i = 0; i < static_cast<uint32_t>(cases); ++i) {
    cnv::test::RandomModel m =
        RandomModelGenerator(20261130 + i).conv(strategyRanges(), i % 4 < 2, true);
    cnv::CompiledIr compiled =
        cnv::compileToIr(std::make_unique<cnv::SourceFile>("test.cnv", m.source), "");
    blocked += backend.describeLoops(backend.plan(*compiled.graph)).find("blocks of input") !=
               std::string::npos;
  }
  REQUIRE(blocked >= cases / 4);
  for (uint32_t i = 0; i < static_cast<uint32_t>(cases); ++i) {
    const int threads = 1 + static_cast<int>(i % 3);
    cnv::test::RandomModel m =
        RandomModelGenerator(20261130 + i).conv(strategyRanges(), i % 4 < 2, true);
    auto result =
        cnv::test::runBoth(m.source, m.symbols, 20261130 + i, threads, {"", "", "WidthVector"});
    cnv::test::requireAgreement(
        result, fmt::format("seed {} threads {} N={} L={}\n{}", 20261130 + i, threads,
                            m.symbols["N"], m.symbols["L"], m.source));
  }
}

TEST_CASE("NWC convs whose weights outgrow L2 go to WidthVector and agree with the reference",
          "[correctness][strategy]") {
  // With a 16 KiB L2 (CNV_CACHE_SIZES), DirectVector's widest block of weights outgrows
  // the 12 KiB budget on these convs, so the planner gives them, NWC -> NWC, to
  // WidthVector at stride 1 (strided ones stay with DirectVector): panels transposed
  // from NWC, stored into the NWC output (transposed in registers for 8 or 16 rows,
  // scattered for others), and, the panels being past a 2 KiB L1, tiles of 8 or more
  // rows. AVX-512 code (the rule needs 32 registers); K·I from 1,088 up, past the 1,024
  // FMAs a vector below which WidthVector does not scatter.
  const cnv::CompileOptions options{"", "x86-64-v4"};
  try {
    cnv::Model::fromSource("model m {\n input x : f32[1, 1, 4] layout NCW\n output x\n}\n",
                           "probe.cnv", options);
  } catch (const cnv::Error& e) {
    WARN("skipping: " << e.what());  // a host without AVX-512
    return;
  }
  const EnvOverride override("CNV_CACHE_SIZES", "2K,16K");
  cnv::backend::Backend backend({"x86-64-v4", ""});
  const char* paddings[] = {"same", "valid", "causal", "(2, 5)"};
  const char* modes[] = {"zeros", "reflect", "replicate", "circular"};
  for (uint32_t i = 0; i < 16; ++i) {
    const int inChannels = 64 + static_cast<int>(i % 3) * 13;
    const int outChannels = 16 + static_cast<int>((i + 3) % 4) * 16;
    const int taps = 17 + static_cast<int>(i / 3 % 3) * 4;
    const int stride = i % 5 == 4 ? 2 : 1;
    const int width = 40 + static_cast<int>(i) * 13;
    const bool residual = stride == 1 && inChannels == outChannels && i % 4 == 0;  // same
    const std::string padding = paddings[i % 4];
    const std::string mode = padding == "valid" ? "zeros" : modes[(i / 4) % 4];
    const std::string conv = fmt::format("conv1d(x, w, b, stride={}, padding={}, padding_mode={})",
                                         stride, padding, mode);
    const std::string source = fmt::format(
        "model m {{\n  input x : f32[{0}, {1}, {2}] layout NWC\n  param w : f32[{3}, {2}, {4}] "
        "layout WIO\n  param b : f32[{4}]\n  y = relu({5})\n  output y layout NWC\n}}\n",
        1 + i % 3, width, inChannels, taps, outChannels, residual ? "add(" + conv + ", x)" : conv);
    INFO(source);
    cnv::CompiledIr compiled =
        cnv::compileToIr(std::make_unique<cnv::SourceFile>("test.cnv", source), "");
    const std::vector<cnv::backend::Kernel> kernels = backend.plan(*compiled.graph);
    REQUIRE(kernels.size() == 1);
    REQUIRE(kernels[0].strategy->name() == (stride == 1 ? "WidthVector" : "DirectVector"));
    if (stride == 1) REQUIRE(std::stoi(kernels[0].schedule->label()) >= 8);  // rows x vectors
    auto result =
        cnv::test::runBoth(source, {}, 20261203 + i, 1 + static_cast<int>(i % 3), options);
    cnv::test::requireAgreement(result, source);
  }
}

TEST_CASE("WidthVector's chunks of output channels agree with the reference",
          "[correctness][strategy]") {
  // With a 4 KiB L2 (CNV_CACHE_SIZES), the weights of most tile-filling convs outgrow
  // the 3 KiB budget, so the output channels of those with more than a tile's group of
  // blocks go in chunks, each over every sample and panel, with or without blocks of
  // input channels (2 KiB L1), tail panels grouping the chunk's blocks. SSE vectors
  // (4 floats, x86-64), which every x86 host runs: chunks pay, and are taken, where a
  // chunk's channels × taps reach 4 × the tile's vectors × lanes, which short vectors
  // let small convs reach.
  const EnvOverride override("CNV_CACHE_SIZES", "2K,4K");
  const int cases = 64;
  const uint32_t seed = 20261202;
  cnv::backend::Backend backend({"x86-64", "WidthVector"});
  int chunked = 0;
  for (uint32_t i = 0; i < static_cast<uint32_t>(cases); ++i) {
    const bool inNcw = i % 4 < 2;
    cnv::test::RandomModel m = RandomModelGenerator(seed + i).conv(strategyRanges(), inNcw, true);
    cnv::CompiledIr compiled =
        cnv::compileToIr(std::make_unique<cnv::SourceFile>("test.cnv", m.source), "");
    const bool chunks =
        backend.describeLoops(backend.plan(*compiled.graph)).find("chunks of output channels") !=
        std::string::npos;
    chunked += chunks;
    const int threads = 1 + static_cast<int>(i % 3);
    auto result =
        cnv::test::runBoth(m.source, m.symbols, seed + i, threads, {"", "x86-64", "WidthVector"});
    cnv::test::requireAgreement(
        result, fmt::format("seed {} threads {} chunked {} N={} L={}\n{}", seed + i, threads,
                            chunks, m.symbols["N"], m.symbols["L"], m.source));
  }
  // Those with more output channels than a tail tile's group of blocks (a third of them).
  REQUIRE(chunked >= cases / 6);
}

TEST_CASE("DirectVector's blocks of input channels agree with the reference",
          "[correctness][strategy]") {
  // With a 4 KiB L2 (CNV_CACHE_SIZES), the packed weights of a block of output channels
  // outgrow the 3 KiB budget once input channels × taps × the block's channels pass 768,
  // so most tile-filling convs go in blocks of input channels, partial sums waiting in
  // the output (NCW or NWC) between them; depthwise convs never do. Layout pairs take
  // turns, residuals are drawn, 1 to 3 threads split the width.
  const EnvOverride override("CNV_CACHE_SIZES", "2K,4K");
  const int cases = 64;
  const uint32_t seed = 20261201;
  cnv::backend::Backend backend({"", "DirectVector"});
  int blocked = 0, residuals = 0;
  for (uint32_t i = 0; i < static_cast<uint32_t>(cases); ++i) {
    const bool inNcw = i % 4 < 2, outNcw = i % 2 == 0;
    cnv::test::RandomModel m = RandomModelGenerator(seed + i).conv(strategyRanges(), inNcw, outNcw);
    cnv::CompiledIr compiled =
        cnv::compileToIr(std::make_unique<cnv::SourceFile>("test.cnv", m.source), "");
    const std::vector<cnv::backend::Kernel> kernels = backend.plan(*compiled.graph);
    const bool inBlocks =
        backend.describeLoops(kernels).find("blocks of input channels") != std::string::npos;
    blocked += inBlocks;
    residuals += inBlocks && m.source.find("add(") != std::string::npos;
    for (const cnv::backend::Kernel& kernel : kernels)
      if (kernel.op->kind == cnv::ir::OpKind::Conv1d)
        REQUIRE(kernel.strategy->name() == "DirectVector");
    const int threads = 1 + static_cast<int>(i % 3);
    auto result =
        cnv::test::runBoth(m.source, m.symbols, seed + i, threads, {"", "", "DirectVector"});
    cnv::test::requireAgreement(
        result, fmt::format("seed {} threads {} blocked {} N={} L={}\n{}", seed + i, threads,
                            inBlocks, m.symbols["N"], m.symbols["L"], m.source));
  }
  REQUIRE(blocked >= cases / 3);
  REQUIRE(residuals > 0);
}

TEST_CASE("the caches can be described for another machine", "[strategy]") {
  setenv("CNV_CACHE_SIZES", "48K,2M", 1);
  const cnv::backend::CacheSizes given = cnv::backend::machineCacheSizes();
  CHECK(given.l1d == 48 * 1024);
  CHECK(given.l2 == 2 * 1024 * 1024);
  for (const char* bad : {"48K", "48K,", "x,2M", "48K,2G", "0,2M", "48K,2M,1M", "512,2M"}) {
    setenv("CNV_CACHE_SIZES", bad, 1);
    INFO(bad);
    CHECK_THROWS_AS(cnv::backend::machineCacheSizes(), cnv::Error);
  }
  unsetenv("CNV_CACHE_SIZES");
  const cnv::backend::CacheSizes host = cnv::backend::machineCacheSizes();
  CHECK(host.l1d >= 1024);
  CHECK(host.l2 >= host.l1d);
}

TEST_CASE("a changed schedule parameter changes the --emit=loops text", "[strategy]") {
  // The loop-nest description is printed from the schedule the emitter reads: two
  // schedules of one strategy for one conv, with different register tiles, must
  // describe different loops, each naming its own tile.
  const std::string source = R"(
model block {
  input x : f32[N, 64, L] layout NCW
  param w : f32[64, 64, 3] layout OIW
  y = conv1d(x, w, padding=same)
  output y
})";
  cnv::CompiledIr compiled =
      cnv::compileToIr(std::make_unique<cnv::SourceFile>("block.cnv", source), "");
  cnv::backend::Backend backend;
  const cnv::ir::Op& op = *compiled.graph->ops.at(0);
  for (const cnv::backend::Strategy* strategy : cnv::backend::strategyList()) {
    auto schedules = strategy->schedules(op, backend.target());
    if (schedules.size() < 2) continue;
    INFO(strategy->name());
    std::set<std::string> texts;
    for (const auto& schedule : schedules) texts.insert(schedule->describeLoops());
    REQUIRE(texts.size() == schedules.size());
    // The same choice again describes the same loops.
    REQUIRE(texts.count(strategy->schedules(op, backend.target()).front()->describeLoops()));
  }
  // WidthVector's and DirectVector's tiles are among the strategies that offer several.
  REQUIRE(cnv::backend::findStrategy("WidthVector")->schedules(op, backend.target()).size() > 1);
  REQUIRE(cnv::backend::findStrategy("DirectVector")->schedules(op, backend.target()).size() > 1);
}

TEST_CASE("a dilation too large for a width-vectorized panel falls back, not overflows",
          "[correctness][strategy]") {
  // (K − 1)·dilation ≈ 2^62: the panel's row stride alone is that many floats, so its
  // size must be checked without multiplying it out; the conv still compiles, with the
  // channel-vectorized strategy.
  const std::string source = R"(
model huge {{
  input x : f32[1, {C}, L] layout NCW
  param w : f32[1, {C}, 2147483647] layout OIW
  y = conv1d(x, w, dilation=2147483647)
  output y
}})";
  // With several input channels the panel's size (channels × row stride) overflows
  // too: it must be checked before any schedule multiplies it out.
  for (int channels : {1, 3}) {
    const std::string text = fmt::format(fmt::runtime(source), fmt::arg("C", channels));
    REQUIRE_NOTHROW(cnv::Model::fromSource(text, "huge.cnv"));
    cnv::CompiledIr compiled =
        cnv::compileToIr(std::make_unique<cnv::SourceFile>("huge.cnv", text), "");
    REQUIRE(cnv::backend::Backend().plan(*compiled.graph).at(0).strategy->name() == "DirectVector");
  }
}

TEST_CASE("an unknown strategy is a usage error", "[strategy]") {
  try {
    cnv::Model::fromSource("model m {\n input x : f32[1, 1, 4] layout NCW\n output x\n}\n", "m.cnv",
                           {"", "", "Winograd"});
    FAIL("no error");
  } catch (const cnv::Error& e) {
    REQUIRE(e.kind() == cnv::Error::Kind::Usage);
    REQUIRE(std::string(e.what()).find("WidthVector") != std::string::npos);
  }
}

TEST_CASE("WidthVector's NWC outputs agree with the reference", "[correctness][strategy]") {
  // WidthVector stores an NWC output only where each stored vector took at least
  // 32·lanes FMAs (transposed in registers) or 64·lanes (scattered): K·I ≥ 512 or 1024
  // with AVX-512, long kernels over many channels, which the tile-filling ranges do not
  // reach. Inputs of both layouts.
  ConvRanges ranges = ConvRanges::tileFilling();
  ranges.maxChannelsPerGroup = 64;
  ranges.maxKernel = 48;
  ranges.maxDilation = 2;
  ranges.maxExtraWidth = 120;
  ranges.maxBatch = 2;
  ranges.depthwiseOneIn = 1000;
  const int cases = 24;
  const uint32_t seed = 20261202;
  cnv::backend::Backend backend({"", "WidthVector"});
  int scattered = 0;
  for (uint32_t i = 0; i < static_cast<uint32_t>(cases); ++i) {
    cnv::test::RandomModel m = RandomModelGenerator(seed + i).conv(ranges, i % 2 == 0, false);
    cnv::CompiledIr compiled =
        cnv::compileToIr(std::make_unique<cnv::SourceFile>("test.cnv", m.source), "");
    for (const cnv::backend::Kernel& kernel : backend.plan(*compiled.graph))
      scattered += kernel.strategy->name() == "WidthVector" &&
                   kernel.op->result->layout == cnv::ir::Layout::NWC;
    const int threads = 1 + static_cast<int>(i % 3);
    auto result =
        cnv::test::runBoth(m.source, m.symbols, seed + i, threads, {"", "", "WidthVector"});
    cnv::test::requireAgreement(
        result, fmt::format("seed {} threads {} N={} L={}\n{}", seed + i, threads, m.symbols["N"],
                            m.symbols["L"], m.source));
  }
  INFO("convs WidthVector stored into an NWC output: " << scattered);
  REQUIRE(scattered >= cases / 4);  // 7 of these 24 seeds
}
