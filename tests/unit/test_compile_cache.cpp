// The compile cache (SPEC §5): on by default, in $CNV_CACHE_DIR; an entry that is
// corrupt, truncated or written for another model is never trusted, but compiled anew
// and replaced; concurrent writers leave a sound entry.
#include <fmt/format.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "runtime/src/ModelFactory.h"
#include "tests/unit/TestSupport.h"

namespace cnv::test {
namespace {

namespace fs = std::filesystem;

const char* kModel = R"(
model cached {
  input  x : f32[N, L, 8] layout NWC
  param  w : f32[5, 8, 12] layout WIO
  param  b : f32[12]
  h = relu(conv1d(x, w, b, padding=same))
  output h layout NCW
}
)";

// Points the compile cache at a fresh directory for one test, and back after.
struct ScopedCache {
  fs::path directory;
  std::string previousDir, previousSwitch;
  explicit ScopedCache(const std::string& name)
      : directory(fs::temp_directory_path() / fmt::format("cnv-cache-test-{}-{}", name, getpid())) {
    fs::remove_all(directory);
    if (const char* d = getenv("CNV_CACHE_DIR")) previousDir = d;
    if (const char* s = getenv("CNV_CACHE")) previousSwitch = s;
    setenv("CNV_CACHE_DIR", directory.c_str(), 1);
    setenv("CNV_CACHE", "on", 1);
  }
  ~ScopedCache() {
    fs::remove_all(directory);
    if (previousDir.empty())
      unsetenv("CNV_CACHE_DIR");
    else
      setenv("CNV_CACHE_DIR", previousDir.c_str(), 1);
    setenv("CNV_CACHE", previousSwitch.empty() ? "off" : previousSwitch.c_str(), 1);
  }
  std::vector<fs::path> entries() const {
    std::vector<fs::path> found;
    if (fs::exists(directory))
      for (const auto& e : fs::directory_iterator(directory)) found.push_back(e.path());
    return found;
  }
};

struct Fixture {
  std::map<std::string, Tensor> params;
  Tensor input;
  Fixture() {
    std::mt19937 random(3);
    params["w"] = randomTensor({5, 8, 12}, random);
    params["b"] = randomTensor({12}, random);
    input = randomTensor({2, 37, 8}, random);
  }
  // The model's output and whether all its kernels came from the cache.
  std::pair<Tensor, bool> compileAndRun(const char* source = kModel) const {
    Model model = Model::fromSource(source, "cached.cnv");
    for (const auto& [name, tensor] : params) model.setParam(name, tensor.view());
    const auto [distinct, cached] = ModelFactory::cachedKernels(model);
    return {model.run({{"x", input.view()}}, 1).at("h"), distinct > 0 && cached == distinct};
  }
};

bool sameBits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::equal(a.data(), a.data() + a.size(), b.data());
}

}  // namespace

TEST_CASE("a model compiled before loads from the compile cache and computes the same bits",
          "[cache]") {
  Fixture f;
  setenv("CNV_CACHE", "off", 1);
  const Tensor uncached = f.compileAndRun().first;
  ScopedCache cache("hit");
  auto [cold, coldHit] = f.compileAndRun();
  CHECK_FALSE(coldHit);
  REQUIRE(cache.entries().size() == 1);
  auto [warm, warmHit] = f.compileAndRun();
  CHECK(warmHit);
  REQUIRE(sameBits(cold, uncached));
  REQUIRE(sameBits(warm, uncached));
  // Another model (a different kernel width) has an entry of its own.
  std::string other = kModel;
  other.replace(other.find("[5, 8, 12]"), 10, "[3, 8, 12]");
  Model model = Model::fromSource(other, "other.cnv");
  CHECK(ModelFactory::cachedKernels(model).second == 0);
  CHECK(cache.entries().size() == 2);
}

TEST_CASE("CNV_CACHE=off neither reads nor writes the compile cache", "[cache]") {
  Fixture f;
  ScopedCache cache("off");
  f.compileAndRun();
  REQUIRE(cache.entries().size() == 1);
  setenv("CNV_CACHE", "off", 1);
  const fs::path dir = cache.directory;
  fs::remove_all(dir);
  auto [result, hit] = f.compileAndRun();
  CHECK_FALSE(hit);
  CHECK_FALSE(fs::exists(dir));
}

TEST_CASE("a corrupt, truncated or foreign compile cache entry is compiled anew and replaced",
          "[cache]") {
  Fixture f;
  ScopedCache cache("corrupt");
  const Tensor expected = f.compileAndRun().first;
  REQUIRE(cache.entries().size() == 1);
  const fs::path entry = cache.entries().at(0);
  std::string good;
  {
    std::ifstream in(entry, std::ios::binary);
    good.assign(std::istreambuf_iterator<char>(in), {});
  }
  // Another model's entry, for the "foreign" case.
  std::string other = kModel;
  other.replace(other.find("relu"), 4, "tanh");
  Model(Model::fromSource(other, "other.cnv"));
  std::string foreign;
  for (const fs::path& p : cache.entries())
    if (p != entry) {
      std::ifstream in(p, std::ios::binary);
      foreign.assign(std::istreambuf_iterator<char>(in), {});
    }
  REQUIRE(!foreign.empty());

  std::string flipped = good;
  flipped[flipped.size() - 100] ^= 0x40;  // a byte of the object
  std::string header = good;
  header[10] ^= 0x01;
  const std::vector<std::pair<std::string, std::string>> damages = {
      {"empty", ""},
      {"truncated in the header", good.substr(0, 40)},
      {"truncated in the object", good.substr(0, good.size() - 7)},
      {"one byte of the object flipped", flipped},
      {"the header damaged", header},
      {"garbage", std::string(4096, '\xff')},
      {"another model's entry", foreign},
      {"a byte too many", good + "x"},
  };
  for (const auto& [what, bytes] : damages) {
    INFO(what);
    {
      std::ofstream out(entry, std::ios::binary | std::ios::trunc);
      out << bytes;
    }
    auto [result, hit] = f.compileAndRun();
    CHECK_FALSE(hit);
    REQUIRE(sameBits(result, expected));
    // Replaced by a sound entry: the next compile loads it.
    auto [again, hitAgain] = f.compileAndRun();
    CHECK(hitAgain);
    REQUIRE(sameBits(again, expected));
  }
}

TEST_CASE("concurrent compiles of one model leave one sound compile cache entry", "[cache]") {
  Fixture f;
  ScopedCache cache("concurrent");
  setenv("CNV_CACHE", "off", 1);
  const Tensor expected = f.compileAndRun().first;
  setenv("CNV_CACHE", "on", 1);
  std::vector<std::thread> threads;
  std::vector<Tensor> results(4);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] { results[t] = f.compileAndRun().first; });
  for (std::thread& thread : threads) thread.join();
  for (const Tensor& r : results) REQUIRE(sameBits(r, expected));
  std::vector<fs::path> entries = cache.entries();
  REQUIRE(entries.size() == 1);  // no temporary left behind
  auto [warm, hit] = f.compileAndRun();
  CHECK(hit);
  REQUIRE(sameBits(warm, expected));
}

}  // namespace cnv::test
