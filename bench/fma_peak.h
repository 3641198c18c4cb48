// Measures one core's float32 FMA peak: independent accumulator chains of the widest
// vector FMA the host has, so nothing but the FMA units limits the loop.
#pragma once

namespace cnv::bench {

// GFLOP/s of one thread running FMAs back to back for about `seconds`.
double measureFmaPeak(double seconds = 0.3);
// The vector width used for it, in floats.
int fmaPeakVectorWidth();

}  // namespace cnv::bench
