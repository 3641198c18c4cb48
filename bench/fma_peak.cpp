#include "fma_peak.h"

#include <immintrin.h>

#include <chrono>

namespace cnv::bench {
namespace {

// The chains live in registers named in the asm, so the compiler cannot spill them.
__attribute__((target("avx512f"))) double peakAvx512(long iterations) {
  __asm__ volatile(
      "vxorps %%xmm30, %%xmm30, %%xmm30\n"
      "vxorps %%xmm31, %%xmm31, %%xmm31\n"
      "1:\n"
#define FMA(r) "vfmadd231ps %%zmm30, %%zmm31, %%zmm" #r "\n"
      FMA(0) FMA(1) FMA(2) FMA(3) FMA(4) FMA(5) FMA(6) FMA(7) FMA(8) FMA(9) FMA(10) FMA(11) FMA(12)
          FMA(13) FMA(14) FMA(15) FMA(16) FMA(17) FMA(18) FMA(19) FMA(20) FMA(21) FMA(22) FMA(23)
#undef FMA
              "dec %0\n"
              "jnz 1b\n"
      : "+r"(iterations)
      :
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
        "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20",
        "xmm21", "xmm22", "xmm23", "xmm30", "xmm31", "cc");
  return 0;
}

__attribute__((target("avx2,fma"))) double peakAvx2(long iterations) {
  __asm__ volatile(
      "vxorps %%xmm14, %%xmm14, %%xmm14\n"
      "vxorps %%xmm15, %%xmm15, %%xmm15\n"
      "1:\n"
#define FMA(r) "vfmadd231ps %%ymm14, %%ymm15, %%ymm" #r "\n"
      FMA(0) FMA(1) FMA(2) FMA(3) FMA(4) FMA(5) FMA(6) FMA(7) FMA(8) FMA(9) FMA(10) FMA(11)
#undef FMA
          "dec %0\n"
          "jnz 1b\n"
      : "+r"(iterations)
      :
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
        "xmm11", "xmm14", "xmm15", "cc");
  return 0;
}

}  // namespace

int fmaPeakVectorWidth() { return __builtin_cpu_supports("avx512f") ? 16 : 8; }

double measureFmaPeak(double seconds) {
  const bool wide = fmaPeakVectorWidth() == 16;
  const int chains = wide ? 24 : 12;
  auto run = [&](long iterations) { return wide ? peakAvx512(iterations) : peakAvx2(iterations); };
  volatile double sink = run(100000);  // warm up the clocks
  long iterations = 1000000;
  double best = 0;
  auto start = std::chrono::steady_clock::now();
  while (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() <
         seconds) {
    auto t0 = std::chrono::steady_clock::now();
    sink = sink + run(iterations);
    double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    double flops = 2.0 * fmaPeakVectorWidth() * chains * static_cast<double>(iterations);
    if (flops / elapsed > best) best = flops / elapsed;
  }
  return best / 1e9;
}

}  // namespace cnv::bench
