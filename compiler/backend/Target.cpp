#include "compiler/backend/Target.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "cnv/Error.h"

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

}  // namespace

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
