// libFuzzer target: any bytes as a .npy file. A result or a cnv::Error, nothing else.
#include <cstdint>
#include <string_view>

#include "cnv/Error.h"
#include "cnv/Io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    cnv::Tensor t =
        cnv::parseNpy(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.npy");
    // What was read must be whole: format it again and read it back the same.
    cnv::Tensor again = cnv::parseNpy(cnv::formatNpy(t), "again.npy");
    if (again.shape() != t.shape()) __builtin_trap();
  } catch (const cnv::Error&) {
  }
  return 0;
}
