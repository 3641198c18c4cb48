// libFuzzer target: any bytes as a .safetensors file. A result or a cnv::Error.
#include <cstdint>
#include <string_view>

#include "cnv/Error.h"
#include "cnv/Io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto tensors = cnv::parseSafetensors(
        std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.safetensors");
    for (const auto& [name, t] : tensors) {
      volatile float sum = 0;
      for (int64_t i = 0; i < t.size(); ++i) sum = sum + t.data()[i];  // every element readable
    }
  } catch (const cnv::Error&) {
  }
  return 0;
}
