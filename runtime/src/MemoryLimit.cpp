#include "MemoryLimit.h"

#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <limits>

#include "cnv/Error.h"
#include "cnv/cnv.h"

namespace cnv::rt {
namespace {

constexpr int64_t kNone = std::numeric_limits<int64_t>::max();
std::atomic<int64_t> setByHost{0};  // 0: not set

// Read once: every run checks the limit, and sysconf asks the kernel.
int64_t physicalMemory() {
  static const int64_t bytes = [] {
    const long pages = sysconf(_SC_PHYS_PAGES), pageSize = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || pageSize <= 0) return kNone;
    return static_cast<int64_t>(pages) * pageSize;
  }();
  return bytes;
}

// Bytes from "123", "64K", "1.5G"; -1 if malformed.
int64_t parseBytes(const std::string& text) {
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || !(value >= 0)) return -1;
  double scale = 1;
  const std::string suffix(end);
  if (suffix == "K" || suffix == "k" || suffix == "KiB")
    scale = 1024.0;
  else if (suffix == "M" || suffix == "MiB")
    scale = 1024.0 * 1024;
  else if (suffix == "G" || suffix == "GiB")
    scale = 1024.0 * 1024 * 1024;
  else if (suffix == "T" || suffix == "TiB")
    scale = 1024.0 * 1024 * 1024 * 1024;
  else if (!suffix.empty())
    return -1;
  const double bytes = value * scale;
  return bytes >= 9.2e18 ? kNone : static_cast<int64_t>(bytes);
}

}  // namespace

int64_t memoryLimit() {
  if (const char* given = std::getenv("CNV_MEMORY_LIMIT"); given && *given) {
    if (std::string(given) == "off") return kNone;
    const int64_t bytes = parseBytes(given);
    if (bytes < 0)
      throw usageError(
          fmt::format("CNV_MEMORY_LIMIT='{}' is not a size (bytes, or with K, M, G "
                      "or T; off for no limit)",
                      given));
    return bytes;
  }
  if (const int64_t host = setByHost.load(); host != 0) return host;
  const int64_t physical = physicalMemory();
  return physical == kNone ? kNone : physical / 4 * 3;
}

std::string formatBytes(double bytes) {
  const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int unit = 0;
  while (bytes >= 1024 && unit < 6) {
    bytes /= 1024;
    ++unit;
  }
  return unit == 0 ? fmt::format("{:.0f} bytes", bytes)
                   : fmt::format("{:.1f} {}", bytes, units[unit]);
}

void checkMemory(int64_t bytes, const std::string& what) {
  const int64_t limit = memoryLimit();
  if (bytes <= limit) return;
  throw dataError(fmt::format(
      "{} needs {} of memory, above the limit of {} (CNV_MEMORY_LIMIT, "
      "cnv::setMemoryLimit)",
      what, formatBytes(static_cast<double>(bytes)), formatBytes(static_cast<double>(limit))));
}

}  // namespace cnv::rt

namespace cnv {

void setMemoryLimit(int64_t bytes) {
  if (bytes < 0) throw usageError("setMemoryLimit: a negative number of bytes");
  rt::setByHost.store(bytes);
}

}  // namespace cnv
