#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <cstdlib>

int main(int argc, char** argv) {
  // The suite never reads or writes the user's tuning cache: what it plans must not
  // depend on what was tuned on this machine. The tuning tests point it at their own.
  setenv("CNV_TUNING_CACHE", "off", 1);
  // Nor the user's compile cache: the suite's own (ctest points it into the build
  // tree), or none when run by hand. The compile cache's tests point it at their own.
  setenv("CNV_CACHE", getenv("CNV_CACHE_DIR") ? "on" : "off", 1);
  return Catch::Session().run(argc, argv);
}
