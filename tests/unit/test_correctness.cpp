// The JIT against the reference implementation: the seed examples, randomized single
// convs over every attribute, randomized pipelines, symbolic dims and thread counts.
#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "tests/unit/RandomModels.h"
#include "tests/unit/TestSupport.h"

using cnv::test::runBoth;

using cnv::test::requireAgreement;

TEST_CASE("seed examples agree with the reference", "[correctness][seed]") {
  const std::string dir = std::string(CNV_SOURCE_DIR) + "/examples/seed";
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".cnv") continue;
    ++files;
    std::string source = cnv::test::readFile(entry.path());
    for (int64_t batch : {0, 1, 7, 100})
      for (int64_t width : {3, 15, 64}) {
        auto c = runBoth(source, {{"N", batch}, {"L", width}}, 1234);
        requireAgreement(c, fmt::format("{} N={} L={}", entry.path().string(), batch, width));
      }
  }
  REQUIRE(files >= 6);
}

TEST_CASE("random single convs agree with the reference", "[correctness][random]") {
  const uint32_t baseSeed = 20261124;
  for (uint32_t i = 0; i < 300; ++i) {
    cnv::test::RandomModel conv =
        cnv::test::RandomModelGenerator(baseSeed + i).conv({}, {}, {}, i % 2 == 0);
    auto c = runBoth(conv.source, conv.symbols, baseSeed + i);
    requireAgreement(c, fmt::format("seed {}\n{}N={} L={}", baseSeed + i, conv.source,
                                    conv.symbols["N"], conv.symbols["L"]));
  }
}

TEST_CASE("one compiled model serves every batch and width", "[correctness][symbolic]") {
  const std::string source = R"(
model strided {
  input x : f32[N, L, 3] layout NWC
  param w : f32[5, 3, 4] layout WIO
  param b : f32[4]
  y = relu(conv1d(x, w, b, stride=2, padding=same))
  output y layout NCW
})";
  for (int64_t width = 1; width <= 24; ++width) {
    auto c = runBoth(source, {{"N", width % 4}, {"L", width}}, 7);
    requireAgreement(c, fmt::format("L={}", width));
    REQUIRE(c.jit.at("y").shape() == std::vector<int64_t>{width % 4, 4, (width + 1) / 2});
  }
}

TEST_CASE("results are identical for every thread count", "[correctness][threads]") {
  const std::string source = R"(
model block {
  input x : f32[N, 8, L] layout NCW
  param w : f32[8, 8, 3] layout OIW
  h = conv1d(x, w, padding=same)
  y = add(relu(h), x)
  output y
})";
  auto one = runBoth(source, {{"N", 5}, {"L", 33}}, 3, 1);
  for (int threads : {2, 3, 8}) {
    auto many = runBoth(source, {{"N", 5}, {"L", 33}}, 3, threads);
    const cnv::Tensor& a = one.jit.at("y");
    const cnv::Tensor& b = many.jit.at("y");
    REQUIRE(a.shape() == b.shape());
    REQUIRE(std::equal(a.data(), a.data() + a.size(), b.data()));
  }
  requireAgreement(one, "threads");
}

TEST_CASE("a model run at changing sizes matches a fresh model at each size",
          "[correctness][symbolic]") {
  // The runtime keeps the shapes and kernel scalars of the last size it ran at; every
  // change of size must replace them, even one that leaves the output shape alone
  // (L = 39 and 40 both give 20 outputs at stride 2).
  const std::string source = R"(
model block {
  input x : f32[N, 6, L] layout NCW
  param w : f32[8, 6, 5] layout OIW
  param w2 : f32[8, 8, 3] layout OIW
  h = relu(conv1d(x, w, padding=same))
  y = conv1d(h, w2, stride=2, padding=causal)
  output y
})";
  std::mt19937 random(11);
  cnv::Tensor w = cnv::test::randomTensor({8, 6, 5}, random);
  cnv::Tensor w2 = cnv::test::randomTensor({8, 8, 3}, random);
  auto compiled = [&] {
    cnv::Model model = cnv::Model::fromSource(source, "block.cnv");
    model.setParam("w", w.view());
    model.setParam("w2", w2.view());
    return model;
  };
  cnv::Model reused = compiled();
  for (auto [batch, width] : std::vector<std::pair<int64_t, int64_t>>{
           {2, 40}, {2, 39}, {3, 97}, {2, 40}, {1, 5}, {2, 39}, {3, 97}, {2, 41}}) {
    cnv::Tensor x = cnv::test::randomTensor({batch, 6, width}, random);
    std::map<std::string, cnv::TensorView> inputs{{"x", x.view()}};
    cnv::Tensor got(reused.outputShapes(inputs).at("y"));
    reused.runInto(inputs, {{"y", got.mutableView()}});
    auto expected = compiled().run(inputs);
    const cnv::Tensor& b = expected.at("y");
    INFO("N=" << batch << " L=" << width);
    REQUIRE(got.shape() == b.shape());
    REQUIRE(std::equal(got.data(), got.data() + got.size(), b.data()));
  }
}

TEST_CASE("a size that fails a run-time check fails on every call", "[correctness][symbolic]") {
  // The check runs when a size is first planned; a failed size must not be kept.
  const std::string source = R"(
model valid {
  input x : f32[1, 2, L] layout NCW
  param w : f32[2, 2, 5] layout OIW
  y = conv1d(x, w)
  output y
})";
  cnv::Model model = cnv::Model::fromSource(source, "valid.cnv");
  std::mt19937 random(5);
  cnv::Tensor w = cnv::test::randomTensor({2, 2, 5}, random);
  model.setParam("w", w.view());
  cnv::Tensor good = cnv::test::randomTensor({1, 2, 8}, random);
  cnv::Tensor shortInput = cnv::test::randomTensor({1, 2, 3}, random);
  cnv::Tensor out({1, 2, 4});
  model.runInto({{"x", good.view()}}, {{"y", out.mutableView()}});
  cnv::Tensor anyOut({1, 2, 1});
  for (int call = 0; call < 2; ++call)
    REQUIRE_THROWS_AS(model.runInto({{"x", shortInput.view()}}, {{"y", anyOut.mutableView()}}),
                      cnv::Error);
  model.runInto({{"x", good.view()}}, {{"y", out.mutableView()}});
}
