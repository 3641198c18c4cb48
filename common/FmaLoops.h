// Loops of independent FMA chains that nothing but the FMA units limits: what the FMA
// peak probe (bench/fma_peak.cpp) and the back end's FMA rate (Target.cpp) time. The
// caller checks that the host has the instructions (__builtin_cpu_supports).
#pragma once

namespace cnv::fma {

// `iterations` rounds of 24 (or 12) independent vfmadd231ps on 512-bit registers.
void chains512x24(long iterations);
void chains512x12(long iterations);
// `iterations` rounds of 12 independent vfmadd231ps on 256-bit registers.
void chains256x12(long iterations);

}  // namespace cnv::fma
