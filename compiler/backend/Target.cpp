#include "compiler/backend/Target.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <string>

#include "cnv/AlignedVector.h"
#include "cnv/Error.h"
#include "common/FmaLoops.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

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

// What the host reports per core (sysconf, which glibc takes from CPUID); the defaults
// where it does not know (zero or -1).
CacheSizes hostCacheSizes() {
  CacheSizes sizes;
  if (long l1d = sysconf(_SC_LEVEL1_DCACHE_SIZE); l1d > 0) sizes.l1d = l1d;
  if (long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE); l2 > 0) sizes.l2 = l2;
  return sizes;
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

// Streams `floats` (a multiple of 64) from `data` `passes` times through 256-bit loads
// into independent sums: what L2 feeds when the buffer lies beyond L1 and within L2.
// Not instrumented by the sanitizers: their checks on every load would time themselves.
#if defined(__x86_64__)
__attribute__((target("avx2"), noinline, no_sanitize("address", "undefined")))
#else
__attribute__((noinline))
#endif
float readRounds(const float* data, long floats, int passes) {
#if defined(__x86_64__)
  // Eight named sums (an array of them the compiler may keep in memory).
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0, s7 = s0;
  for (int p = 0; p < passes; ++p)
    for (long i = 0; i < floats; i += 64) {
      s0 = _mm256_add_ps(s0, _mm256_load_ps(data + i));
      s1 = _mm256_add_ps(s1, _mm256_load_ps(data + i + 8));
      s2 = _mm256_add_ps(s2, _mm256_load_ps(data + i + 16));
      s3 = _mm256_add_ps(s3, _mm256_load_ps(data + i + 24));
      s4 = _mm256_add_ps(s4, _mm256_load_ps(data + i + 32));
      s5 = _mm256_add_ps(s5, _mm256_load_ps(data + i + 40));
      s6 = _mm256_add_ps(s6, _mm256_load_ps(data + i + 48));
      s7 = _mm256_add_ps(s7, _mm256_load_ps(data + i + 56));
    }
  const __m256 all = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)),
                                   _mm256_add_ps(_mm256_add_ps(s4, s5), _mm256_add_ps(s6, s7)));
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, all);
  return lanes[0];
#else
  (void)data, (void)floats, (void)passes;
  return 0;
#endif
}

// `iterations` rounds of 16 dependent register adds (x += x: Golden Cove folds chains of
// adds of an immediate at rename, not these): 16 cycles a round on every x86
// core (one-cycle latency), whatever its vector units do, so it counts cycles.
void addChain(long iterations) {
#if defined(__x86_64__)
  long x = 1;
#define CNV_ADD4 "add %0, %0\n add %0, %0\n add %0, %0\n add %0, %0\n"
  __asm__ volatile("1:\n" CNV_ADD4 CNV_ADD4 CNV_ADD4 CNV_ADD4 "dec %1\n jnz 1b\n"
                   : "+r"(x), "+r"(iterations)
                   :
                   : "cc");
#undef CNV_ADD4
#else
  (void)iterations;
#endif
}

// The buffer's bytes over the time to read them, against the cycles of the same spell
// (a dependent chain of integer adds). Timed in turns and the best of each kept, as the
// FMA rate is, so that a busy spell slows both.
double measureL2BytesPerCycle() {
#if defined(__x86_64__)
  if (!__builtin_cpu_supports("avx2")) return 24;
#else
  return 24;
#endif
  // The host's own caches, whatever CNV_CACHE_SIZES describes: the rate is the core's.
  // Past L1 (4 × its size) and within L2 (a quarter of it, at most 3/4).
  const CacheSizes caches = hostCacheSizes();
  const int64_t beyondL1 = 4 * caches.l1d;
  const int64_t bytes = std::min(std::max(caches.l2 / 4, beyondL1), caches.l2 * 3 / 4) / 256 * 256;
  if (bytes <= 0) return 24;
  AlignedFloats buffer(static_cast<size_t>(bytes) / sizeof(float), 1.0f);
  const long floats = static_cast<long>(buffer.size());
  const int passes = static_cast<int>(std::max<int64_t>(1, (8 << 20) / bytes));  // ~70 us
  constexpr long kRounds = 8000;                                                 // 128k cycles
  volatile float sink = readRounds(buffer.data(), floats, passes);
  double read = 1e300, cycle = 1e300;
  for (int round = 0; round < 12; ++round) {
    const auto start = std::chrono::steady_clock::now();
    sink = sink + readRounds(buffer.data(), floats, passes);
    read = std::min(
        read, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    cycle = std::min(cycle, seconds(addChain, kRounds));
  }
  const double cycles = read / (cycle / (16.0 * kRounds));
  return std::clamp(double(bytes) * passes / cycles, 4.0, 256.0);
}

}  // namespace

double machineL2BytesPerCycle() {
  if (const char* given = std::getenv("CNV_L2_BYTES_PER_CYCLE"); given && *given) {
    const std::string text = given;
    // Plain decimals only ("24", "46.5"): no signs, exponents, hex or locale.
    double value = 0;
    const auto [end, error] =
        std::from_chars(text.data(), text.data() + text.size(), value, std::chars_format::fixed);
    if (error != std::errc() || end != text.data() + text.size() ||
        !std::isdigit(static_cast<unsigned char>(text[0])) || !(value >= 4 && value <= 256))
      throw usageError(fmt::format(
          "CNV_L2_BYTES_PER_CYCLE='{}': expected a number from 4 to 256 (bytes a cycle L2 "
          "feeds a core)",
          text));
    return value;
  }
  static const double measured = measureL2BytesPerCycle();
  return measured;
}

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
  return hostCacheSizes();
}

}  // namespace cnv::backend
