// The data formats of SPEC §3: .npy arrays and .safetensors weight files, f32 only.
// Every malformed file is rejected with cnv::Error (Data) and a message that names the
// file and the problem; nothing is ever unpickled.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "cnv/Tensor.h"

namespace cnv {

// .npy version 1.0, 2.0 or 3.0; dtype '<f4'; fortran_order False; no trailing bytes.
Tensor readNpy(const std::string& path);
Tensor parseNpy(std::string_view bytes, const std::string& what);
// Writes version 1.0 (or 2.0 when the header needs it).
void writeNpy(const std::string& path, const Tensor& tensor);
std::string formatNpy(const Tensor& tensor);

// All tensors of a .safetensors file, by name. Each must be F32; the data offsets must
// cover the data section exactly, without overlaps or holes.
std::map<std::string, Tensor> readSafetensors(const std::string& path);
std::map<std::string, Tensor> parseSafetensors(std::string_view bytes, const std::string& what);
std::string formatSafetensors(const std::map<std::string, Tensor>& tensors);

}  // namespace cnv
