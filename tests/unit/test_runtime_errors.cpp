// Run-time errors through the API: every bad call or bad array is a cnv::Error of the
// right kind with a message that says what is wrong; nothing crashes.
#include <catch2/catch.hpp>
#include <cstdlib>

#include "cnv/cnv.h"
#include "runtime/src/ModelFactory.h"
#include "runtime/src/Runner.h"

namespace {

const char* kModel = R"(model m {
  input x : f32[N, L, 2] layout NWC
  input s : f32[N, 4, L] layout NCW
  param w : f32[5, 2, 4] layout WIO
  param b : f32[4]
  h = conv1d(x, w, b, padding=valid)
  r = conv1d(x, w, padding=2, padding_mode=reflect)
  y = add(r, s)
  output h
  output y
})";

cnv::Error::Kind kindOf(const std::function<void()>& call, std::string* message = nullptr) {
  try {
    call();
  } catch (const cnv::Error& e) {
    if (message) *message = e.what();
    return e.kind();
  }
  FAIL("no cnv::Error thrown");
  return cnv::Error::Kind::Internal;
}

struct Fixture {
  cnv::Model model = cnv::Model::fromSource(kModel, "m.cnv");
  std::vector<float> w = std::vector<float>(5 * 2 * 4, 0.5f), b = std::vector<float>(4, 1.0f);
  Fixture() {
    model.setParam("w", {w.data(), {5, 2, 4}});
    model.setParam("b", {b.data(), {4}});
  }
  std::map<std::string, cnv::Tensor> run(int64_t n, int64_t lx, int64_t ls) {
    cnv::Tensor x({n, lx, 2}), s({n, 4, ls});
    return model.run({{"x", x.view()}, {"s", s.view()}});
  }
};

}  // namespace

TEST_CASE("a symbolic width too short for the kernel is a data error with its position",
          "[runtime][errors]") {
  Fixture f;
  std::string message;
  REQUIRE(kindOf([&] { f.run(1, 4, 4); }, &message) == cnv::Error::Kind::Data);
  CHECK(message.find("m.cnv:6:7:") != std::string::npos);
  CHECK(message.find("too short") != std::string::npos);
  CHECK(message.find("L=4") != std::string::npos);
}

TEST_CASE("a reflect pad not below the run-time width is a data error", "[runtime][errors]") {
  cnv::Model model = cnv::Model::fromSource(R"(model m {
  input x : f32[N, 1, L] layout NCW
  param w : f32[1, 1, 1] layout OIW
  y = conv1d(x, w, padding=2, padding_mode=reflect)
  output y })",
                                            "r.cnv");
  std::vector<float> w(1, 1.0f);
  model.setParam("w", {w.data(), {1, 1, 1}});
  cnv::Tensor x({1, 1, 2});
  std::string message;
  REQUIRE(kindOf([&] { model.run({{"x", x.view()}}); }, &message) == cnv::Error::Kind::Data);
  CHECK(message.find("r.cnv:4:7: error: reflect padding") != std::string::npos);
  cnv::Tensor ok({1, 1, 3});
  CHECK(model.run({{"x", ok.view()}}).at("y").shape() == std::vector<int64_t>{1, 1, 7});
}

TEST_CASE("one symbol bound to two values is a data error", "[runtime][errors]") {
  Fixture f;
  std::string message;
  REQUIRE(kindOf([&] { f.run(1, 9, 8); }, &message) == cnv::Error::Kind::Data);
  CHECK(message.find("'L'") != std::string::npos);
}

TEST_CASE("bad arrays are data errors, bad calls are usage errors", "[runtime][errors]") {
  Fixture f;
  cnv::Tensor x({1, 9, 2}), s({1, 4, 9}), wrongChannels({1, 9, 3}), rank2({9, 2});
  CHECK(kindOf([&] {
          f.model.run({{"x", wrongChannels.view()}, {"s", s.view()}});
        }) == cnv::Error::Kind::Data);
  CHECK(kindOf([&] {
          f.model.run({{"x", rank2.view()}, {"s", s.view()}});
        }) == cnv::Error::Kind::Data);
  CHECK(kindOf([&] { f.model.run({{"x", x.view()}}); }) == cnv::Error::Kind::Usage);
  CHECK(kindOf([&] {
          f.model.run({{"x", x.view()}, {"s", s.view()}, {"q", s.view()}});
        }) == cnv::Error::Kind::Usage);
  CHECK(kindOf([&] { f.model.setParam("w", {f.w.data(), {4, 2, 5}}); }) == cnv::Error::Kind::Data);
  CHECK(kindOf([&] {
          f.model.setParam("nope", {f.w.data(), {5, 2, 4}});
        }) == cnv::Error::Kind::Usage);
  cnv::Model unbound = cnv::Model::fromSource(kModel, "m.cnv");
  std::string message;
  CHECK(kindOf(
            [&] {
              unbound.run({{"x", x.view()}, {"s", s.view()}});
            },
            &message) == cnv::Error::Kind::Usage);
  CHECK(message.find("w") != std::string::npos);
}

TEST_CASE("a batch of 0 gives empty outputs of the right shape", "[runtime]") {
  Fixture f;
  auto out = f.run(0, 9, 9);
  CHECK(out.at("h").shape() == std::vector<int64_t>{0, 5, 4});
  CHECK(out.at("y").shape() == std::vector<int64_t>{0, 9, 4});  // NWC, the first input's layout
}

TEST_CASE("several models in one file are chosen by name", "[runtime]") {
  const char* text = R"(model a { input x : f32[N, L, 2] layout NWC
  y = relu(x)
  output y }
model b { input x : f32[N, 2, L] layout NCW
  y = tanh(x)
  output y layout NWC })";
  CHECK(kindOf([&] { cnv::Model::fromSource(text, "ab.cnv"); }) == cnv::Error::Kind::Usage);
  CHECK(kindOf([&] { cnv::Model::fromSource(text, "ab.cnv", {"c"}); }) == cnv::Error::Kind::Usage);
  cnv::Model b = cnv::Model::fromSource(text, "ab.cnv", {"b"});
  CHECK(b.name() == "b");
  cnv::Tensor x({1, 2, 3}, {0, 1, 2, 3, 4, 5});
  cnv::Tensor y = b.run({{"x", x.view()}}).at("y");
  REQUIRE(y.shape() == std::vector<int64_t>{1, 3, 2});
  CHECK(y.data()[1] == Approx(std::tanh(3.0f)));  // y[0, w=0, c=1] = tanh(x[0, c=1, w=0])
}

TEST_CASE("outputs that share memory with inputs or each other are usage errors",
          "[runtime][errors]") {
  // In place, a residual input would be overwritten by partial sums before it is read;
  // cnv refuses instead of returning wrong numbers.
  Fixture f;
  cnv::Tensor x({1, 8, 2}), s({1, 4, 8}), h({1, 4, 4}), y({1, 8, 4});
  std::map<std::string, cnv::TensorView> inputs{{"x", x.view()}, {"s", s.view()}};
  std::string message;
  CHECK(kindOf(
            [&] {
              f.model.runInto(inputs, {{"h", h.mutableView()}, {"y", {s.data(), {1, 8, 4}}}});
            },
            &message) == cnv::Error::Kind::Usage);
  CHECK(message.find("output 'y' overlaps input 's'") != std::string::npos);
  CHECK(kindOf([&] {
          f.model.runInto(inputs, {{"h", {y.data() + 4, {1, 4, 4}}}, {"y", y.mutableView()}});
        }) == cnv::Error::Kind::Usage);
  // Adjacent buffers do not overlap.
  std::vector<float> both(4 * 4 + 4 * 8);
  CHECK_NOTHROW(f.model.runInto(
      inputs, {{"h", {both.data(), {1, 4, 4}}}, {"y", {both.data() + 16, {1, 8, 4}}}}));
}

TEST_CASE("a run whose buffers would exceed the memory limit fails before allocating",
          "[runtime][errors]") {
  const char* source = R"(
model big {
  input  x : f32[N, L, 4] layout NWC
  param  w : f32[3, 4, 64] layout WIO
  param  w2 : f32[3, 64, 4] layout WIO
  h = relu(conv1d(x, w, padding=same))
  y = conv1d(h, w2, padding=same)
  output y
}
)";
  cnv::Model model = cnv::Model::fromSource(source, "big.cnv");
  cnv::Tensor w({3, 4, 64}), w2({3, 64, 4});
  model.setParam("w", w.view());
  model.setParam("w2", w2.view());
  cnv::Tensor small({1, 100, 4}), large({4, 20000, 4});
  unsetenv("CNV_MEMORY_LIMIT");
  cnv::setMemoryLimit(1 << 20);  // 1 MiB: h of the large run is 4·20000·64 floats, 20 MiB
  CHECK_NOTHROW(model.run({{"x", small.view()}}, 1));
  try {
    model.run({{"x", large.view()}}, 1);
    FAIL("no error");
  } catch (const cnv::Error& e) {
    CHECK(e.kind() == cnv::Error::Kind::Data);
    CHECK_THAT(e.what(),
               Catch::Contains("model 'big'") && Catch::Contains("above the limit of 1.0 MiB"));
  }
  // The environment overrides the program's setting, either way.
  setenv("CNV_MEMORY_LIMIT", "off", 1);
  CHECK_NOTHROW(model.run({{"x", large.view()}}, 1));
  setenv("CNV_MEMORY_LIMIT", "16K", 1);
  CHECK_THROWS_AS(model.run({{"x", small.view()}}, 1), cnv::Error);  // h alone is 25 KiB
  setenv("CNV_MEMORY_LIMIT", "lots", 1);
  CHECK_THROWS_WITH(model.run({{"x", small.view()}}, 1),
                    Catch::Contains("CNV_MEMORY_LIMIT='lots'"));
  unsetenv("CNV_MEMORY_LIMIT");
  cnv::setMemoryLimit(0);
  CHECK_NOTHROW(model.run({{"x", large.view()}}, 1));
  CHECK_THROWS_AS(cnv::setMemoryLimit(-1), cnv::Error);
}

TEST_CASE("shape arithmetic that overflows at run time is a data error on every path",
          "[runtime][errors]") {
  // 2^31 - 1 output channels at a width of 2^30 is 2^61 floats: beyond any array cnv
  // makes (2^40 bytes), and its byte count beyond int64. Shapes are computed before any
  // data is read, so a dummy pointer serves; the weight is never bound.
  cnv::Model wide = cnv::Model::fromSource(R"(model wide {
  input  x : f32[N, L, 1] layout NWC
  param  w : f32[1, 1, 2147483647] layout WIO
  y = conv1d(x, w)
  output y
})",
                                           "wide.cnv");
  static float dummy;
  const int64_t width = int64_t(1) << 30;
  std::string message;
  CHECK(kindOf(
            [&] {
              wide.outputShapes({{"x", {&dummy, {1, width, 1}}}});
            },
            &message) == cnv::Error::Kind::Data);
  CHECK_THAT(message, Catch::Contains("too large") || Catch::Contains("overflow"));
  // An input whose own byte count overflows.
  CHECK(kindOf(
            [&] {
              wide.outputShapes({{"x", {&dummy, {int64_t(1) << 40, width, 1}}}});
            },
            &message) == cnv::Error::Kind::Data);
  CHECK_THAT(message, Catch::Contains("too large") || Catch::Contains("overflow"));
  // A negative dim.
  CHECK(kindOf([&] {
          wide.outputShapes({{"x", {&dummy, {-1, 4, 1}}}});
        }) == cnv::Error::Kind::Data);
}

namespace {

// Stand-ins for JIT kernels: one stores a float past the end of its result (the last
// operand buffer) or of its scratch (the buffer after that), the others store nothing.
size_t gOverrunSlot = 0;
int64_t gOverrunAt = 0;
void overrunKernel(float* const* buffers, const int64_t*) { buffers[gOverrunSlot][gOverrunAt] = 1; }
void idleKernel(float* const*, const int64_t*) {}

}  // namespace

TEST_CASE("a kernel storing past the end of its result or scratch is an internal error",
          "[runtime][error]") {
  // The first conv's result h (1×6×8 floats) is a temporary; the runtime owns its
  // memory and the scratch's, so it can tell when a kernel writes past them.
  cnv::Model model = cnv::Model::fromSource(R"(model m {
  input x : f32[1, 4, 8] layout NCW
  param w1 : f32[6, 4, 1] layout OIW
  param w2 : f32[4, 6, 1] layout OIW
  h = conv1d(x, w1)
  y = conv1d(h, w2)
  output y
})",
                                            "m.cnv");
  cnv::rt::Program program = cnv::ModelFactory::runner(model)->program();
  REQUIRE(program.kernels.size() == 2);
  REQUIRE(program.kernels[0].function != program.kernels[1].function);
  const std::vector<float> w1(6 * 4, 0.5f), w2(4 * 6, 0.25f), x(4 * 8, 1.0f);
  std::vector<float> y(4 * 8);
  auto run = [&](const cnv::rt::Program& changed) {
    std::vector<cnv::rt::KernelFunction> functions(changed.functionCount, idleKernel);
    functions[changed.kernels[0].function] = overrunKernel;
    cnv::rt::Runner runner(changed, functions);
    runner.setParam(runner.paramIndex("w1"), {w1.data(), {6, 4, 1}});
    runner.setParam(runner.paramIndex("w2"), {w2.data(), {4, 6, 1}});
    const cnv::TensorView input{x.data(), {1, 4, 8}};
    const cnv::MutableTensorView output{y.data(), {1, 4, 8}};
    std::string message;
    const cnv::Error::Kind kind = kindOf([&] { runner.run(&input, &output, 1); }, &message);
    CHECK(kind == cnv::Error::Kind::Internal);
    return message;
  };
  const size_t resultSlot = program.kernels[0].buffers.size() - 1;

  gOverrunSlot = resultSlot;
  gOverrunAt = 6 * 8;  // one past the last float of h
  CHECK_THAT(run(program), Catch::Contains("kernel 0 of model 'm' wrote past the end of its "
                                           "result buffer"));
  gOverrunAt = 6 * 8 + 15;  // the last float of the guard
  CHECK_THAT(run(program), Catch::Contains("past the end of its result buffer"));

  cnv::rt::Program withScratch = program;
  withScratch.kernels[0].scratchFloats = 40;
  gOverrunSlot = resultSlot + 1;
  gOverrunAt = 40;
  CHECK_THAT(run(withScratch), Catch::Contains("past the end of its scratch buffer"));
}
