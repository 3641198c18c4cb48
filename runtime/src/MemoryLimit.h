// The memory cap: a run whose buffers (outputs cnv allocates, temporaries, scratch)
// would exceed it fails with a data error before anything is allocated, instead of
// exhausting the machine. $CNV_MEMORY_LIMIT (bytes, with an optional K, M, G or T
// suffix; "off" for none), else cnv::setMemoryLimit, else 3/4 of physical memory.
#pragma once

#include <cstdint>
#include <string>

namespace cnv::rt {

// The cap in bytes; INT64_MAX when there is none.
int64_t memoryLimit();
// Throws a data error naming `what` when `bytes` exceed the cap.
void checkMemory(int64_t bytes, const std::string& what);
// "1.5 GiB"
std::string formatBytes(double bytes);

}  // namespace cnv::rt
