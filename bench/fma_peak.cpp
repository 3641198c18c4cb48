#include "fma_peak.h"

#include <chrono>

#include "common/FmaLoops.h"

namespace cnv::bench {

int fmaPeakVectorWidth() { return __builtin_cpu_supports("avx512f") ? 16 : 8; }

double measureFmaPeak(double seconds) {
  const bool wide = fmaPeakVectorWidth() == 16;
  const int chains = wide ? 24 : 12;
  auto run = [&](long iterations) {
    if (wide)
      fma::chains512x24(iterations);
    else
      fma::chains256x12(iterations);
  };
  run(100000);  // warm up the clocks
  long iterations = 1000000;
  double best = 0;
  auto start = std::chrono::steady_clock::now();
  while (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() <
         seconds) {
    auto t0 = std::chrono::steady_clock::now();
    run(iterations);
    double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    double flops = 2.0 * fmaPeakVectorWidth() * chains * static_cast<double>(iterations);
    if (flops / elapsed > best) best = flops / elapsed;
  }
  return best / 1e9;
}

}  // namespace cnv::bench
