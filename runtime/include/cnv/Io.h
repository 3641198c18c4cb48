// The data formats cnv reads and writes: .npy arrays and .safetensors weight files, f32 only.
// Every malformed file is rejected with cnv::Error (Data) and a message that names the
// file and the problem; nothing is ever unpickled.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "cnv/Export.h"
#include "cnv/Tensor.h"

namespace cnv {

// .npy version 1.0, 2.0 or 3.0; dtype '<f4'; fortran_order False; no trailing bytes.
CNV_API Tensor readNpy(const std::string& path);
CNV_API Tensor parseNpy(std::string_view bytes, const std::string& what);
// Writes version 1.0 (or 2.0 when the header needs it).
CNV_API void writeNpy(const std::string& path, const Tensor& tensor);
CNV_API std::string formatNpy(const Tensor& tensor);

// All tensors of a .safetensors file, by name. Each must be F32; the data offsets must
// cover the data section exactly, without overlaps or holes.
CNV_API std::map<std::string, Tensor> readSafetensors(const std::string& path);
CNV_API std::map<std::string, Tensor> parseSafetensors(std::string_view bytes,
                                                       const std::string& what);
CNV_API std::string formatSafetensors(const std::map<std::string, Tensor>& tensors);

}  // namespace cnv
