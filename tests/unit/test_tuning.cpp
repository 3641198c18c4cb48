// The tuner and the tuning cache: entries round-trip, a bad file or entry is never
// trusted, compiles follow a valid entry, and a tuned model still agrees with the
// reference.
#include <fmt/format.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "RandomModels.h"
#include "TestSupport.h"
#include "compiler/Compiler.h"
#include "compiler/backend/Backend.h"
#include "compiler/backend/Planner.h"
#include "compiler/backend/TuningCache.h"
#include "runtime/src/Tuner.h"

namespace {

namespace fs = std::filesystem;
using cnv::backend::TuningCache;

// A fresh directory, and CNV_TUNING_CACHE pointing at a file in it, for one test.
struct TemporaryCache {
  fs::path directory;
  std::string path;
  TemporaryCache() {
    directory = fs::temp_directory_path() / fmt::format("cnv-tuning-test-{}", getpid());
    fs::remove_all(directory);
    fs::create_directories(directory);
    path = (directory / "sub" / "tuning.json").string();
    setenv("CNV_TUNING_CACHE", path.c_str(), 1);
  }
  ~TemporaryCache() {
    setenv("CNV_TUNING_CACHE", "off", 1);  // as the rest of the suite runs
    std::error_code ignored;
    fs::remove_all(directory, ignored);
  }
  void write(const std::string& text) const {
    fs::create_directories(fs::path(path).parent_path());
    std::ofstream(path, std::ios::binary) << text;
  }
};

const std::string kTwoConvs = R"(model two {
  input  x : f32[N, 24, L] layout NCW
  param  w : f32[40, 24, 5] layout OIW
  param  b : f32[40]
  param  v : f32[16, 40, 3] layout OIW
  h = relu(conv1d(x, w, b, padding=same))
  y = conv1d(h, v, padding=causal, dilation=2)
  output y layout NWC
}
)";

std::string twoConvs() { return kTwoConvs; }

std::vector<cnv::backend::Kernel> plan(const std::string& source, const cnv::ir::Graph*& graph,
                                       cnv::CompiledIr& compiled) {
  compiled = cnv::compileToIr(std::make_unique<cnv::SourceFile>("two.cnv", source), "");
  graph = compiled.graph.get();
  cnv::backend::Backend backend;
  return backend.plan(*graph);
}

}  // namespace

TEST_CASE("the tuning cache round-trips its entries and writes through a rename", "[tuning]") {
  TemporaryCache temporary;
  TuningCache cache;
  cache.record("machine A", "conv 1", {"WidthVector:8x3", 0.001, "WidthVector:4x6", 0.0012, "N=1"});
  cache.record("machine A", "conv 2", {"DirectVector:6x4", 0.002, "DirectVector:6x4", 0.002, ""});
  cache.record("machine B", "conv 1", {"DirectVector:12x2", 0.003, "WidthVector:4x6", 0.01, ""});
  cache.save(temporary.path);  // creates the missing directory
  for (const auto& entry : fs::directory_iterator(fs::path(temporary.path).parent_path()))
    REQUIRE(entry.path().filename() == "tuning.json");  // no temporary left behind

  const TuningCache loaded = TuningCache::load(temporary.path);
  REQUIRE(loaded.size() == 3);
  const cnv::backend::TunedChoice* choice = loaded.find("machine A", "conv 1");
  REQUIRE(choice);
  CHECK(choice->schedule == "WidthVector:8x3");
  CHECK(choice->seconds == Approx(0.001));
  CHECK(choice->modelPick == "WidthVector:4x6");
  CHECK(choice->modelPickSeconds == Approx(0.0012));
  CHECK(choice->dims == "N=1");
  CHECK(loaded.find("machine B", "conv 1")->schedule == "DirectVector:12x2");
  CHECK_FALSE(loaded.find("machine C", "conv 1"));
  CHECK_FALSE(loaded.find("machine A", "conv 3"));
}

TEST_CASE("a corrupt, truncated or foreign tuning cache holds no entries", "[tuning]") {
  TemporaryCache temporary;
  TuningCache cache;
  cache.record("m", "c", {"WidthVector:8x3", 0.001, "WidthVector:4x6", 0.0012, ""});
  cache.save(temporary.path);
  std::string whole = cnv::test::readFile(temporary.path);
  REQUIRE(TuningCache::load(temporary.path).size() == 1);

  const std::vector<std::string> bad = {
      "",
      "not json at all",
      whole.substr(0, whole.size() / 2),      // truncated
      "[1, 2, 3]",                            // not an object
      R"({"version": 2, "machines": {}})",    // another format
      R"({"version": "1", "machines": {}})",  // a version of the wrong type
      R"({"version": null, "machines": {}})",
      R"({"version": 1.5, "machines": {}})",
      R"({"version": 1, "machines": []})",               // machines of the wrong type
      R"({"version": 1, "machines": {"m": {"c": 5}}})",  // an entry of the wrong type
      R"({"version": 1, "machines": {"m": {"c": {"schedule": "no colon", "seconds": 1}}}})",
      R"({"version": 1, "machines": {"m": {"c": {"schedule": "A:b", "seconds": -1}}}})",
      R"({"version": 1, "machines": {"m": {"c": {"schedule": 7, "seconds": 1}}}})",
      std::string("\0\xff\xfe{", 4),
  };
  for (const std::string& text : bad) {
    temporary.write(text);
    INFO("file: " << text);
    CHECK(TuningCache::load(temporary.path).size() == 0);
  }
  CHECK(TuningCache::load(temporary.directory.string() + "/missing.json").size() == 0);
  CHECK(TuningCache::load(temporary.directory.string()).size() == 0);  // a directory
  CHECK(TuningCache::load("/dev/zero").size() == 0);                   // endless: must not hang
  // Past 16 MiB: refused unread.
  temporary.write(whole.substr(0, whole.size() - 2) + std::string(17 << 20, ' ') + "}\n");
  CHECK(TuningCache::load(temporary.path).size() == 0);
}

TEST_CASE("concurrent updates of the tuning cache keep every writer's entries", "[tuning]") {
  TemporaryCache temporary;
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t)
    writers.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i)
        TuningCache::update(temporary.path, [&](TuningCache& cache) {
          cache.record("m", fmt::format("conv {} {}", t, i), {"A:b", 1, "A:b", 1, ""});
        });
    });
  for (std::thread& writer : writers) writer.join();
  CHECK(TuningCache::load(temporary.path).size() == 40);
}

TEST_CASE("the tuning cache's file follows the environment", "[tuning]") {
  setenv("CNV_TUNING_CACHE", "off", 1);
  CHECK_FALSE(TuningCache::defaultPath());
  setenv("CNV_TUNING_CACHE", "/some/where.json", 1);
  CHECK(TuningCache::defaultPath() == std::string("/some/where.json"));
  unsetenv("CNV_TUNING_CACHE");
  setenv("XDG_CACHE_HOME", "/xdg", 1);
  CHECK(TuningCache::defaultPath() == std::string("/xdg/cnv/tuning.json"));
  unsetenv("XDG_CACHE_HOME");
  if (const char* home = std::getenv("HOME"))
    CHECK(TuningCache::defaultPath() == std::string(home) + "/.cache/cnv/tuning.json");
  setenv("CNV_TUNING_CACHE", "off", 1);
}

TEST_CASE("the machine key names the CPU, its features and its caches", "[tuning]") {
  cnv::backend::Target a;
  a.cpu = "znver4";
  a.features = "+avx512f";
  a.vectorWidth = 16;
  cnv::backend::Target b = a;
  b.caches.l1d = 48 * 1024;
  cnv::backend::Target c = a;
  c.features = "+avx2";
  cnv::backend::Target d = a;
  d.cpu = "znver5";
  cnv::backend::Target e = a;
  e.fmaPerCycle = 1;
  CHECK(cnv::backend::machineKey(a) != cnv::backend::machineKey(e));
  CHECK(cnv::backend::machineKey(a) == cnv::backend::machineKey(a));
  CHECK(cnv::backend::machineKey(a) != cnv::backend::machineKey(b));
  CHECK(cnv::backend::machineKey(a) != cnv::backend::machineKey(c));
  CHECK(cnv::backend::machineKey(a) != cnv::backend::machineKey(d));
}

TEST_CASE("compiles follow a tuning-cache entry for this machine, and only a valid one",
          "[tuning]") {
  TemporaryCache temporary;
  cnv::CompiledIr compiled;
  const cnv::ir::Graph* graph = nullptr;
  const std::vector<cnv::backend::Kernel> planned = plan(twoConvs(), graph, compiled);
  cnv::backend::Backend backend;
  const cnv::ir::Op& first = *graph->ops[0];
  const std::vector<std::string> candidates =
      cnv::backend::candidateSchedules(first, backend.target());
  REQUIRE(candidates.size() >= 3);
  // A candidate that is not the planner's own pick.
  const std::string own = cnv::backend::scheduleName(planned[0]);
  std::string other;
  for (const std::string& name : candidates)
    if (name != own) other = name;
  REQUIRE(!other.empty());
  CHECK(std::find(candidates.begin(), candidates.end(), own) != candidates.end());

  const std::string machine = cnv::backend::machineKey(backend.target());
  const std::string conv = cnv::backend::convKey(first);
  auto planWith = [&](const std::string& schedule, const std::string& forMachine) {
    TuningCache cache;
    cache.record(forMachine, conv, {schedule, 0.001, own, 0.002, ""});
    cache.save(temporary.path);
    cnv::backend::Backend fresh;  // reads the cache as it is now
    return fresh.plan(*graph);
  };
  {
    auto kernels = planWith(other, machine);
    CHECK(cnv::backend::scheduleName(kernels[0]) == other);
    CHECK(kernels[0].chosenBy == cnv::backend::Kernel::ChosenBy::TuningCache);
    CHECK(cnv::backend::scheduleName(kernels[1]) == cnv::backend::scheduleName(planned[1]));
  }
  for (const std::string& invalid :
       {std::string("WidthVector:99x99"), std::string("NoSuchStrategy:4x6"), std::string("x:")}) {
    auto kernels = planWith(invalid, machine);
    INFO(invalid);
    CHECK(cnv::backend::scheduleName(kernels[0]) == own);
    CHECK(kernels[0].chosenBy == cnv::backend::Kernel::ChosenBy::List);
  }
  {
    auto kernels = planWith(other, "another machine");
    CHECK(cnv::backend::scheduleName(kernels[0]) == own);
  }
  {
    // --strategy comes before the cache; named schedules (the tuner's) before both.
    TuningCache cache;
    cache.record(machine, conv, {other, 0.001, own, 0.002, ""});
    cache.save(temporary.path);
    cnv::backend::BackendOptions options;
    options.strategy = "ScalarConv";
    CHECK(cnv::backend::Backend(options).plan(*graph)[0].strategy->name() == "ScalarConv");
    options.schedules[0] = candidates.front();
    CHECK(cnv::backend::scheduleName(cnv::backend::Backend(options).plan(*graph)[0]) ==
          candidates.front());
    options = {};
    options.useTuningCache = false;
    CHECK(cnv::backend::scheduleName(cnv::backend::Backend(options).plan(*graph)[0]) == own);
  }
}

TEST_CASE("the tuner times every candidate, records the fastest, and the tuned model agrees",
          "[tuning][correctness]") {
  TemporaryCache temporary;
  cnv::TuningOptions options;
  options.dims = {{"N", 2}, {"L", 70}};
  options.passes = 1;
  options.secondsPerRound = 0.01;
  int lines = 0;
  options.progress = [&](const std::string&) { ++lines; };
  const cnv::TuningResult result = cnv::tuneSource(twoConvs(), "two.cnv", options);
  REQUIRE(result.convs.size() == 2);
  CHECK(lines > 0);
  cnv::backend::Backend backend;
  CHECK(result.machine == cnv::backend::machineKey(backend.target()));
  for (const cnv::TunedConv& conv : result.convs) {
    INFO(conv.value);
    REQUIRE(conv.candidates.size() >= 3);
    CHECK(conv.best == conv.candidates.front().first);
    for (const auto& [name, seconds] : conv.candidates) {
      CHECK(seconds > 0);
      CHECK(conv.bestSeconds <= seconds);
    }
    CHECK(conv.modelPickSeconds >= conv.bestSeconds);
    bool timedOwnPick = false;
    for (const auto& candidate : conv.candidates) timedOwnPick |= candidate.first == conv.modelPick;
    CHECK(timedOwnPick);
  }
  cnv::recordTuning(result, temporary.path, "N=2 L=70, 1 thread");
  const TuningCache cache = TuningCache::load(temporary.path);
  REQUIRE(cache.size() == 2);
  for (const cnv::TunedConv& conv : result.convs)
    CHECK(cache.find(result.machine, conv.conv)->schedule == conv.best);

  // The next compile runs the winners (the status says so), and still computes the
  // same thing as the reference.
  cnv::Model model = cnv::Model::fromSource(twoConvs(), "two.cnv");
  const auto status = cnv::tuningStatus(model, "");
  REQUIRE(status.size() == 2);
  for (size_t i = 0; i < status.size(); ++i) {
    CHECK(status[i].tuned);
    CHECK(status[i].schedule == result.convs[i].best);
  }
  for (int threads = 1; threads <= 3; ++threads)
    cnv::test::requireAgreement(cnv::test::runBoth(twoConvs(), {{"N", 2}, {"L", 70}}, 7, threads),
                                "tuned model");

  // Every candidate of the tuned convs is itself right: force each in turn.
  for (size_t c = 0; c < result.convs[0].candidates.size(); ++c) {
    TuningCache forced;
    for (const cnv::TunedConv& conv : result.convs)
      forced.record(result.machine, conv.conv,
                    {conv.candidates[c % conv.candidates.size()].first, 1, "", 1, ""});
    forced.save(temporary.path);
    // The compile runs what was forced (the cache keys did not drift), ...
    const auto forcedStatus = cnv::tuningStatus(cnv::Model::fromSource(twoConvs(), "two.cnv"), "");
    for (size_t i = 0; i < forcedStatus.size(); ++i)
      CHECK(forcedStatus[i].schedule ==
            result.convs[i].candidates[c % result.convs[i].candidates.size()].first);
    // ... and computes the right thing.
    cnv::test::requireAgreement(
        cnv::test::runBoth(twoConvs(), {{"N", 2}, {"L", 70}}, 11 + c, 1 + c % 2),
        fmt::format("candidate {}", result.convs[0].candidates[c].first));
  }
}

TEST_CASE("what L2 feeds a cycle is measured, or given by CNV_L2_BYTES_PER_CYCLE", "[tuning]") {
  unsetenv("CNV_L2_BYTES_PER_CYCLE");
  const double host = cnv::backend::machineL2BytesPerCycle();
  // Strictly inside the clamps: a clamped answer is a broken measurement.
  CHECK(host > 4);
  CHECK(host < 256);
  setenv("CNV_L2_BYTES_PER_CYCLE", "24", 1);
  CHECK(cnv::backend::machineL2BytesPerCycle() == 24);
  setenv("CNV_L2_BYTES_PER_CYCLE", "46.5", 1);
  CHECK(cnv::backend::machineL2BytesPerCycle() == 46.5);
  for (const char* bad : {"0", "3", "257", "fast", " 24", "24x", "nan", "inf"}) {
    setenv("CNV_L2_BYTES_PER_CYCLE", bad, 1);
    INFO(bad);
    CHECK_THROWS_AS(cnv::backend::machineL2BytesPerCycle(), cnv::Error);
  }
  unsetenv("CNV_L2_BYTES_PER_CYCLE");
}

TEST_CASE("the FMA rate is measured, or given by CNV_FMA_PER_CYCLE", "[tuning]") {
  unsetenv("CNV_FMA_PER_CYCLE");
  const double host = cnv::backend::machineFmaPerCycle(16);
  CHECK((host == 1 || host == 2));
  CHECK(cnv::backend::machineFmaPerCycle(8) == 2);
  setenv("CNV_FMA_PER_CYCLE", "1", 1);
  CHECK(cnv::backend::machineFmaPerCycle(16) == 1);
  CHECK(cnv::backend::machineFmaPerCycle(8) == 1);
  setenv("CNV_FMA_PER_CYCLE", "2", 1);
  CHECK(cnv::backend::machineFmaPerCycle(16) == 2);
  for (const char* bad : {"0", "3", "1.5", "two", " 2"}) {
    setenv("CNV_FMA_PER_CYCLE", bad, 1);
    INFO(bad);
    CHECK_THROWS_AS(cnv::backend::machineFmaPerCycle(16), cnv::Error);
  }
  unsetenv("CNV_FMA_PER_CYCLE");
}

// WidthVector stores an NWC output R channels at a time, transposed in registers, where
// R is a power of two no wider than a vector, and scatters it otherwise (offered from
// K·I = 32 and 64 FMAs per vector lane). Every tile it
// offers, forced through the cache in turn, on NCW -> NWC and NWC -> NWC convs whose
// channels leave the last block ragged, whose widths end inside a vector, with bias,
// ReLU, and residuals in either layout.
TEST_CASE(
    "every WidthVector tile, forced onto a conv with an NWC output, agrees with the reference",
    "[tuning][correctness]") {
  TemporaryCache temporary;
  struct Case {
    std::string source;
    std::map<std::string, int64_t> dims;
  };
  const std::vector<Case> cases = {
      // K·I = 528: only the tiles that store whole runs of channels are offered.
      {"model m {\n  input x : f32[N, 48, L] layout NCW\n  param w : f32[37, 48, 11] layout OIW\n"
       "  param b : f32[37]\n  input r : f32[N, L, 37] layout NWC\n"
       "  y = relu(add(conv1d(x, w, b, padding=same), r))\n  output y layout NWC\n}\n",
       {{"N", 2}, {"L", 203}}},
      // K·I = 1,056: every tile, the scattering ones too; a residual read from NCW.
      {"model m {\n  input x : f32[N, 96, L] layout NCW\n  param w : f32[21, 96, 11] layout OIW\n"
       "  param b : f32[21]\n  input r : f32[N, 21, L] layout NCW\n"
       "  y = add(conv1d(x, w, b, padding=causal), r)\n  output y layout NWC\n}\n",
       {{"N", 3}, {"L", 150}}},
      // NWC -> NWC, strided, no bias; K·I = 560.
      {"model m {\n  input x : f32[N, L, 80] layout NWC\n  param w : f32[7, 80, 40] layout WIO\n"
       "  y = relu(conv1d(x, w, stride=2, padding=valid))\n  output y layout NWC\n}\n",
       {{"N", 2}, {"L", 301}}},
  };
  int transposing = 0;
  // The host's widest vectors, and AVX2's 8 floats (runs of 2, 4 and 8 channels).
  for (const char* cpu : {"", "x86-64-v3"}) {
    try {
      cnv::Model::fromSource("model m {\n input x : f32[1, 1, 4] layout NCW\n output x\n}\n",
                             "probe.cnv", {"", cpu});
    } catch (const cnv::Error& e) {
      WARN("skipping " << cpu << ": " << e.what());  // not an x86 host, or one without AVX2
      continue;
    }
    cnv::backend::Backend backend({cpu, ""});
    const std::string machine = cnv::backend::machineKey(backend.target());
    for (const Case& c : cases) {
      INFO(cpu << "\n" << c.source);
      cnv::CompiledIr compiled =
          cnv::compileToIr(std::make_unique<cnv::SourceFile>("m.cnv", c.source), "");
      const cnv::ir::Op* conv = nullptr;
      for (const auto& op : compiled.graph->ops)
        if (op->kind == cnv::ir::OpKind::Conv1d) conv = op.get();
      REQUIRE(conv);
      std::vector<std::string> tiles;
      for (const std::string& name : cnv::backend::candidateSchedules(*conv, backend.target()))
        if (name.rfind("WidthVector:", 0) == 0) tiles.push_back(name);
      REQUIRE(!tiles.empty());
      for (size_t t = 0; t < tiles.size(); ++t) {
        INFO(tiles[t]);
        const int rows = std::stoi(tiles[t].substr(tiles[t].find(':') + 1));
        transposing += rows >= 2 && (rows & (rows - 1)) == 0;
        TuningCache forced;
        forced.record(machine, cnv::backend::convKey(*conv), {tiles[t], 1, "", 1, ""});
        forced.save(temporary.path);
        const auto status =
            cnv::tuningStatus(cnv::Model::fromSource(c.source, "m.cnv", {"", cpu}), cpu);
        REQUIRE(status.size() == 1);
        CHECK(status[0].schedule == tiles[t]);
        cnv::test::requireAgreement(
            cnv::test::runBoth(c.source, c.dims, 20261204 + static_cast<uint32_t>(t),
                               1 + static_cast<int>(t % 3), {"", cpu}),
            tiles[t]);
      }
    }
  }
  CHECK(transposing >= 6);
}
