// Measures the memory bandwidth a copy reaches: the roof of shapes whose FLOPs per byte
// are too few for the FMA peak to matter (depthwise convs, say).
#pragma once

namespace cnv::bench {

// GB/s (bytes read + bytes written) of `threads` threads each copying its own buffer far
// larger than the caches, best of a few rounds of about `seconds` in all.
double measureCopyBandwidth(int threads, double seconds = 0.3);

}  // namespace cnv::bench
