// What kernels are planned for: the vector registers of the CPU the code will run on,
// and the caches of the machine it runs on.
#pragma once

#include <cstdint>
#include <string>

namespace cnv::backend {

// Per-core data cache sizes in bytes: what the host reports (sysconf, from CPUID), or
// what the environment variable CNV_CACHE_SIZES says ("L1D,L2" in bytes, with an
// optional K or M suffix: "48K,2M"), so that blocking for another machine can be seen
// and tested anywhere. Unset or empty: the host's. Throws a usage error for a
// malformed CNV_CACHE_SIZES. With --cpu naming another CPU, the caches are still this
// machine's: that is where the code runs.
struct CacheSizes {
  int64_t l1d = 32 * 1024;
  int64_t l2 = 1024 * 1024;
};
CacheSizes machineCacheSizes();

struct Target {
  // The CPU LLVM generates code for ("znver4", or an x86 level) and its feature string:
  // what the tuning cache keys its entries by.
  std::string cpu, features;
  int vectorWidth = 4;  // floats per vector register: 16 with AVX-512, 8 with AVX2, else 4
  int vectorRegisters = 16;
  CacheSizes caches;
};

}  // namespace cnv::backend
