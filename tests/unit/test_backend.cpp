// The back end's compile step: identical kernels are compiled once.
#include <catch2/catch.hpp>

#include "TestSupport.h"
#include "compiler/Compiler.h"
#include "compiler/backend/Backend.h"

TEST_CASE("kernels with the same code are compiled once and still compute their own ops",
          "[correctness][backend]") {
  // h1..h3 are the same conv on activations of the same shape; g differs in its
  // activation, y in its kernel width.
  const std::string source = R"(model stack {
  input  x : f32[N, 24, L] layout NCW
  param  w1 : f32[24, 24, 3] layout OIW
  param  w2 : f32[24, 24, 3] layout OIW
  param  w3 : f32[24, 24, 3] layout OIW
  param  w4 : f32[24, 24, 3] layout OIW
  param  w5 : f32[24, 24, 5] layout OIW
  h1 = relu(conv1d(x, w1, padding=same))
  h2 = relu(conv1d(h1, w2, padding=same))
  h3 = relu(conv1d(h2, w3, padding=same))
  g = tanh(conv1d(h3, w4, padding=same))
  y = conv1d(g, w5, padding=same)
  output y
}
)";
  cnv::CompiledIr compiled =
      cnv::compileToIr(std::make_unique<cnv::SourceFile>("stack.cnv", source), "");
  cnv::backend::Backend backend;
  cnv::backend::CompiledKernels kernels = backend.compile(backend.plan(*compiled.graph));
  REQUIRE(kernels.kernels().size() == 5);
  CHECK(kernels.function(0) == kernels.function(1));
  CHECK(kernels.function(1) == kernels.function(2));
  CHECK(kernels.function(2) != kernels.function(3));
  CHECK(kernels.function(3) != kernels.function(4));
  CHECK(kernels.function(0) != kernels.function(4));
  for (int threads = 1; threads <= 2; ++threads)
    cnv::test::requireAgreement(cnv::test::runBoth(source, {{"N", 3}, {"L", 77}}, 5, threads),
                                "stack of identical layers");
}
