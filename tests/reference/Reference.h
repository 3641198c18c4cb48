// The reference implementation: obviously correct loops in double precision, written
// from SPEC §1 without any of the compiler's passes. Tests compare the JIT against it,
// and the PyTorch interop tests check it in turn.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "cnv/Tensor.h"
#include "compiler/frontend/Ast.h"

namespace cnv::reference {

// An activation in [batch, channels, width] order.
struct Array {
  int64_t batch = 0, channels = 0, width = 0;
  std::vector<double> data;
  Array() = default;
  Array(int64_t n, int64_t c, int64_t w) : batch(n), channels(c), width(w), data(n * c * w) {}
  double& at(int64_t n, int64_t c, int64_t w) { return data[(n * channels + c) * width + w]; }
  double at(int64_t n, int64_t c, int64_t w) const { return data[(n * channels + c) * width + w]; }
};

struct ConvSpec {
  int64_t stride = 1, dilation = 1, groups = 1;
  int64_t padLeft = 0, padRight = 0;
  std::string mode = "zeros";  // zeros, reflect, replicate, circular
};

// (left, right) for a named rule of SPEC §1's padding table.
std::pair<int64_t, int64_t> namedPadding(const std::string& rule, int64_t width, int64_t kernel,
                                         int64_t stride, int64_t dilation);

// weight is [O][C/groups][K] (PyTorch's order); bias may be empty.
Array conv1d(const Array& x, const std::vector<double>& weight, int64_t outChannels, int64_t kernel,
             const std::vector<double>& bias, const ConvSpec& spec);

double activation(const std::string& op, double v, double alpha);

// Converts between a user array in layout "NWC"/"NCW" and an Array.
Array fromLayout(const TensorView& view, const std::string& layout);
Tensor toLayout(const Array& array, const std::string& layout);
// A weight in layout "WIO"/"OIW" as [O][I][K].
std::vector<double> weightToOIW(const TensorView& view, const std::string& layout);

// Interprets a whole model from its syntax tree. Throws std::runtime_error when the
// model or the data is invalid.
std::map<std::string, Tensor> runModel(const ast::Model& model,
                                       const std::map<std::string, TensorView>& inputs,
                                       const std::map<std::string, TensorView>& params);

}  // namespace cnv::reference
