// One model run from many threads at once (cnv.h's promise): every result checked
// against the reference interpreter and against the same model run alone. Built into
// the ThreadSanitizer configuration too (CNV_SANITIZE=thread).
#include <atomic>
#include <catch2/catch.hpp>
#include <thread>

#include "compiler/frontend/Parser.h"
#include "tests/reference/Reference.h"
#include "tests/unit/TestSupport.h"

namespace cnv::test {
namespace {

// A residual block with a symbolic batch and width: strided same padding (a run-time
// padding), a fused bias, activation and residual.
const char* kBlock = R"(
model block {
  input  x  : f32[N, L, 16] layout NWC
  param  w1 : f32[3, 16, 24] layout WIO
  param  b1 : f32[24]
  param  w2 : f32[3, 24, 24] layout WIO
  h = relu(conv1d(x, w1, b1, padding=same))
  y = add(conv1d(h, w2, padding=same), h)
  z = tanh(conv1d(h, w2, stride=2, padding=same))
  output y
  output z layout NCW
}
)";

struct Case {
  std::map<std::string, int64_t> symbols;
  Tensor input;
  std::map<std::string, Tensor> expected;
};

}  // namespace

TEST_CASE("one model runs from 8 threads at once, at different sizes, each result checked",
          "[runtime][threads]") {
  Model model = Model::fromSource(kBlock, "block.cnv");
  std::mt19937 random(7);
  std::map<std::string, Tensor> params;
  std::map<std::string, TensorView> paramViews;
  for (const TensorSpec& spec : model.params()) {
    params[spec.name] = randomTensor(concreteShape(spec, {}), random);
    paramViews[spec.name] = params[spec.name].view();
    model.setParam(spec.name, paramViews[spec.name]);
  }
  SourceFile file("block.cnv", kBlock);
  DiagnosticEngine diagnostics(file);
  ast::Module module = parse(file, diagnostics);

  const std::vector<std::pair<int64_t, int64_t>> sizes = {{1, 1},  {2, 7},    {3, 64}, {1, 333},
                                                          {4, 40}, {2, 1000}, {5, 3},  {8, 129}};
  std::vector<Case> cases;
  for (auto [n, l] : sizes) {
    Case c;
    c.symbols = {{"N", n}, {"L", l}};
    c.input = randomTensor({n, l, 16}, random);
    c.expected = reference::runModel(module.models.at(0), {{"x", c.input.view()}}, paramViews);
    // The reference agrees with a run alone; the threads below must give these bits.
    auto alone = model.run({{"x", c.input.view()}}, 1);
    for (const auto& [name, tensor] : c.expected)
      REQUIRE(toleranceRatio(alone.at(name), tensor) <= 1);
    c.expected = alone;
    cases.push_back(std::move(c));
  }

  std::atomic<int> mismatches{0}, failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int round = 0; round < 6; ++round) {
        const Case& c = cases[(t + round) % cases.size()];
        try {
          auto outputs = model.run({{"x", c.input.view()}}, 1 + (t + round) % 3);
          for (const auto& [name, tensor] : c.expected) {
            const Tensor& got = outputs.at(name);
            if (got.shape() != tensor.shape() ||
                !std::equal(got.data(), got.data() + got.size(), tensor.data()))
              ++mismatches;
          }
        } catch (...) {
          ++failures;
        }
      }
    });
  for (std::thread& thread : threads) thread.join();
  REQUIRE(failures == 0);
  REQUIRE(mismatches == 0);
}

TEST_CASE("binding a param while runs are in flight is safe: each run sees old or new weights",
          "[runtime][threads]") {
  Model model = Model::fromSource(kBlock, "block.cnv");
  std::mt19937 random(11);
  std::map<std::string, Tensor> params;
  for (const TensorSpec& spec : model.params()) {
    params[spec.name] = randomTensor(concreteShape(spec, {}), random);
    model.setParam(spec.name, params[spec.name].view());
  }
  const Tensor otherW2 = randomTensor(concreteShape(model.params()[2], {}), random);
  Tensor input = randomTensor({2, 50, 16}, random);
  const Tensor before = model.run({{"x", input.view()}}, 1).at("y");
  model.setParam("w2", otherW2.view());
  const Tensor after = model.run({{"x", input.view()}}, 1).at("y");
  REQUIRE(!std::equal(before.data(), before.data() + before.size(), after.data()));

  std::atomic<bool> stop{false};
  std::atomic<int> runs{0}, neither{0};
  std::vector<std::thread> runners;
  for (int t = 0; t < 4; ++t)
    runners.emplace_back([&] {
      while (!stop) {
        const Tensor y = model.run({{"x", input.view()}}, 1).at("y");
        auto same = [&](const Tensor& e) {
          return std::equal(y.data(), y.data() + y.size(), e.data());
        };
        if (!same(before) && !same(after)) ++neither;
        ++runs;
      }
    });
  for (int swap = 0; swap < 200 || runs < 20; ++swap)
    model.setParam("w2", swap % 2 ? otherW2.view() : params["w2"].view());
  stop = true;
  for (std::thread& thread : runners) thread.join();
  REQUIRE(neither == 0);
}

TEST_CASE("models share one pool and a host may bring its own", "[runtime][threads]") {
  Model model = Model::fromSource(kBlock, "block.cnv");
  std::mt19937 random(5);
  for (const TensorSpec& spec : model.params())
    model.setParam(spec.name, randomTensor(concreteShape(spec, {}), random).view());
  Tensor input = randomTensor({2, 4000, 16}, random);
  auto ours = model.run({{"x", input.view()}}, 0);
  std::atomic<int> calls{0}, parts{0};
  setParallelFor(
      [&](int count, const std::function<void(int)>& task) {
        ++calls;
        for (int part = count - 1; part >= 0; --part) {  // any order, any thread
          ++parts;
          task(part);
        }
      },
      3);
  auto theirs = model.run({{"x", input.view()}}, 0);
  setParallelFor(nullptr, 0);
  CHECK(calls > 0);
  CHECK(parts >= 2 * calls);
  for (const auto& [name, tensor] : ours) {
    const Tensor& other = theirs.at(name);
    REQUIRE(std::equal(other.data(), other.data() + other.size(), tensor.data()));
  }
  REQUIRE_THROWS_AS(setParallelFor([](int, const std::function<void(int)>&) {}, 0), Error);
}

}  // namespace cnv::test
