// Randomized multi-layer pipelines through the JIT against the reference interpreter:
// chains of convs with every attribute, activations, residual adds, copies, nested
// calls and several outputs in mixed layouts. Seeded; the seed and the model text are
// printed on failure.
#include <fmt/format.h>

#include <catch2/catch.hpp>

#include "tests/unit/RandomModels.h"
#include "tests/unit/TestSupport.h"

namespace {

void checkPipelines(uint32_t baseSeed, int count) {
  for (int i = 0; i < count; ++i) {
    const uint32_t seed = baseSeed + i;
    auto [source, symbols] = cnv::test::RandomModelGenerator(seed).pipeline();
    auto c = cnv::test::runBoth(source, symbols, seed, 1 + i % 3);
    cnv::test::requireAgreement(
        c, fmt::format("seed {}, N={} L={}\n{}", seed, symbols["N"], symbols["L"], source));
  }
}

}  // namespace

// Four cases of 250 so that ctest can run them in parallel.
TEST_CASE("random pipelines agree with the reference (1/4)", "[correctness][pipeline]") {
  checkPipelines(777000, 250);
}
TEST_CASE("random pipelines agree with the reference (2/4)", "[correctness][pipeline]") {
  checkPipelines(778000, 250);
}
TEST_CASE("random pipelines agree with the reference (3/4)", "[correctness][pipeline]") {
  checkPipelines(779000, 250);
}
TEST_CASE("random pipelines agree with the reference (4/4)", "[correctness][pipeline]") {
  checkPipelines(780000, 250);
}
