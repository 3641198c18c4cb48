#include "FmaLoops.h"

namespace cnv::fma {

#if defined(__x86_64__)

// The chains live in registers named in the asm, so the compiler cannot spill them;
// %%zmm30/%%zmm31 (%%ymm14/%%ymm15) are the multiplicands, never written.
// The chain lists, one group of FMAs per line (clang-format would refold them).
// clang-format off
#define CNV_FMA(reg, r, a, b) "vfmadd231ps %%" #reg #a ", %%" #reg #b ", %%" #reg #r "\n"
#define CNV_FMA12(reg, a, b) \
  CNV_FMA(reg, 0, a, b) CNV_FMA(reg, 1, a, b) CNV_FMA(reg, 2, a, b) CNV_FMA(reg, 3, a, b) \
  CNV_FMA(reg, 4, a, b) CNV_FMA(reg, 5, a, b) CNV_FMA(reg, 6, a, b) CNV_FMA(reg, 7, a, b) \
  CNV_FMA(reg, 8, a, b) CNV_FMA(reg, 9, a, b) CNV_FMA(reg, 10, a, b) CNV_FMA(reg, 11, a, b)
#define CNV_FMA_NEXT12(reg, a, b) \
  CNV_FMA(reg, 12, a, b) CNV_FMA(reg, 13, a, b) CNV_FMA(reg, 14, a, b) CNV_FMA(reg, 15, a, b) \
  CNV_FMA(reg, 16, a, b) CNV_FMA(reg, 17, a, b) CNV_FMA(reg, 18, a, b) CNV_FMA(reg, 19, a, b) \
  CNV_FMA(reg, 20, a, b) CNV_FMA(reg, 21, a, b) CNV_FMA(reg, 22, a, b) CNV_FMA(reg, 23, a, b)
#define CNV_CLOBBER12 \
  "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11"
#define CNV_CLOBBER_NEXT12 \
  "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", \
  "xmm22", "xmm23"
// clang-format on

__attribute__((target("avx512f"))) void chains512x24(long iterations) {
  __asm__ volatile("vxorps %%xmm30, %%xmm30, %%xmm30\n"
                   "vxorps %%xmm31, %%xmm31, %%xmm31\n"
                   "1:\n" CNV_FMA12(zmm, 30, 31) CNV_FMA_NEXT12(zmm, 30, 31) "dec %0\n"
                   "jnz 1b\n"
                   : "+r"(iterations)
                   :
                   : CNV_CLOBBER12, CNV_CLOBBER_NEXT12, "xmm30", "xmm31", "cc");
}

__attribute__((target("avx512f"))) void chains512x12(long iterations) {
  __asm__ volatile("vxorps %%xmm30, %%xmm30, %%xmm30\n"
                   "vxorps %%xmm31, %%xmm31, %%xmm31\n"
                   "1:\n" CNV_FMA12(zmm, 30, 31) "dec %0\n"
                   "jnz 1b\n"
                   : "+r"(iterations)
                   :
                   : CNV_CLOBBER12, "xmm30", "xmm31", "cc");
}

__attribute__((target("avx2,fma"))) void chains256x12(long iterations) {
  __asm__ volatile("vxorps %%xmm14, %%xmm14, %%xmm14\n"
                   "vxorps %%xmm15, %%xmm15, %%xmm15\n"
                   "1:\n" CNV_FMA12(ymm, 14, 15) "dec %0\n"
                   "jnz 1b\n"
                   : "+r"(iterations)
                   :
                   : CNV_CLOBBER12, "xmm14", "xmm15", "cc");
}

#else
// Not an x86 machine: nothing to time (the callers ask __builtin_cpu_supports first).
void chains512x24(long) {}
void chains512x12(long) {}
void chains256x12(long) {}
#endif

}  // namespace cnv::fma
