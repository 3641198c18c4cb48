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

// Full-width vector FMAs the host completes per cycle, for vectors of `lanes` floats:
// 2 where two pipes each take a whole vector (Zen 5, Intel's AVX-512 server cores, and
// every AVX2 core for 8 lanes), 1 where a 512-bit FMA is split over both halves of the
// pipes (Zen 4). It sets how many bytes per cycle each cache level must deliver for the
// FMAs to run at their rate. Measured once per process (the rate of 512-bit FMAs
// against that of 256-bit ones, a few milliseconds), or given by the environment
// variable CNV_FMA_PER_CYCLE (1 or 2; anything else is a usage error), so that another
// machine's blocking can be seen and tested anywhere.
double machineFmaPerCycle(int lanes);

// Bytes a cycle one core's vector loads get from L2: measured once per process (about
// a millisecond: 256-bit loads over a buffer of a quarter of the host's L2, whatever
// CNV_CACHE_SIZES describes, timed in turns with a dependent chain of register adds,
// one a cycle on every x86 core), or given by the environment variable
// CNV_L2_BYTES_PER_CYCLE (a plain decimal from 4 to 256; anything else is a usage error). Not
// readable from any register or table: 33-41 measured on Emerald Rapids; Zen 4's tiles
// showed about 24. 24 where there is nothing to measure with (no AVX2).
double machineL2BytesPerCycle();

struct Target {
  // The CPU LLVM generates code for ("znver4", or an x86 level) and its feature string:
  // what the tuning cache keys its entries by.
  std::string cpu, features;
  int vectorWidth = 4;  // floats per vector register: 16 with AVX-512, 8 with AVX2, else 4
  int vectorRegisters = 16;
  CacheSizes caches;
  double fmaPerCycle = 2;       // machineFmaPerCycle(vectorWidth)
  double l2BytesPerCycle = 24;  // machineL2BytesPerCycle()
};

}  // namespace cnv::backend
