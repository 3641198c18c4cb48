#include "compiler/backend/Target.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>

#include "cnv/Error.h"
#include "common/FmaLoops.h"

namespace cnv::backend {
namespace {

// "48K", "2M", "49152": bytes, or nothing when `text` is not such a size (1 KiB to 1 GiB).
bool parseSize(const std::string& text, int64_t& bytes) {
  size_t used = 0;
  long long value = 0;
  try {
    value = std::stoll(text, &used);
  } catch (const std::exception&) {
    return false;
  }
  int64_t scale = 1;
  const std::string suffix = text.substr(used);
  if (suffix == "K" || suffix == "k")
    scale = 1024;
  else if (suffix == "M" || suffix == "m")
    scale = 1024 * 1024;
  else if (!suffix.empty())
    return false;
  if (value < 1 || value > (int64_t{1} << 30) / scale) return false;
  bytes = value * scale;
  return bytes >= 1024;
}

double seconds(void (*rounds)(long), long iterations) {
  const auto start = std::chrono::steady_clock::now();
  rounds(iterations);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Whether 512-bit FMAs issue at the 256-bit rate (2: whole-width pipes) or at half of
// it (1: each split over two 256-bit halves). The answer keys the tuning cache and picks
// code paths, so it must not depend on how busy the machine is: the two loops are timed
// in turns (a slow spell slows both), the best of each kept, and an answer is taken
// only when the ratio is clearly near 1 or 2. A busy 2-core VM once measured a Zen 4
// as whole-width with separate best-of-5 timings, and a tuned entry went unused.
double measureFmaPerCycle512() {
#if defined(__x86_64__)
  if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx2") ||
      !__builtin_cpu_supports("fma"))
    return 1;
#else
  return 2;  // no 512-bit x86 vectors to measure
#endif
  constexpr long kIterations = 20000;           // 240k FMAs: ~0.1 ms a timing
  seconds(fma::chains512x12, 4 * kIterations);  // wakes the 512-bit units (and their clock)
  double narrow = 1e300, wide = 1e300, ratio = 1;
  for (int round = 0; round < 8; ++round) {
    for (int i = 0; i < 8; ++i) {
      narrow = std::min(narrow, seconds(fma::chains256x12, kIterations));
      wide = std::min(wide, seconds(fma::chains512x12, kIterations));
    }
    ratio = wide / narrow;
    if (ratio < 1.3 || ratio > 1.7) break;
  }
  return ratio < 1.5 ? 2 : 1;
}

}  // namespace

double machineFmaPerCycle(int lanes) {
  if (const char* given = std::getenv("CNV_FMA_PER_CYCLE"); given && *given) {
    const std::string text = given;
    if (text == "1") return 1;
    if (text == "2") return 2;
    throw usageError(fmt::format(
        "CNV_FMA_PER_CYCLE='{}': expected 1 or 2 (full-width vector FMAs per cycle)", text));
  }
  if (lanes < 16) return 2;
  static const double measured = measureFmaPerCycle512();
  return measured;
}

CacheSizes machineCacheSizes() {
  CacheSizes sizes;
  if (const char* given = std::getenv("CNV_CACHE_SIZES"); given && *given) {
    const std::string text = given;
    const size_t comma = text.find(',');
    if (comma == std::string::npos || !parseSize(text.substr(0, comma), sizes.l1d) ||
        !parseSize(text.substr(comma + 1), sizes.l2))
      throw usageError(fmt::format(
          "CNV_CACHE_SIZES='{}': expected the L1 data and L2 cache sizes per core, as in "
          "'48K,2M'",
          text));
    return sizes;
  }
  // Zero or -1 when the system does not know; the defaults stand then.
  if (long l1d = sysconf(_SC_LEVEL1_DCACHE_SIZE); l1d > 0) sizes.l1d = l1d;
  if (long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE); l2 > 0) sizes.l2 = l2;
  return sizes;
}

}  // namespace cnv::backend
