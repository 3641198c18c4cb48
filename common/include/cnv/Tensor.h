// Dense row-major float32 arrays: an owning Tensor and a non-owning TensorView.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cnv/AlignedVector.h"
#include "cnv/Export.h"

namespace cnv {

struct TensorView {
  const float* data = nullptr;
  std::vector<int64_t> shape;
};

struct MutableTensorView {
  float* data = nullptr;
  std::vector<int64_t> shape;
};

// Its data is 64-byte aligned (AlignedVector.h).
class CNV_API Tensor {
 public:
  Tensor() = default;
  // Zero-filled. Throws cnv::Error (Data) if the element count overflows.
  explicit Tensor(std::vector<int64_t> shape);
  Tensor(std::vector<int64_t> shape, std::vector<float> data);

  const std::vector<int64_t>& shape() const { return shape_; }
  float* data() { return data_.data(); }
  const float* data() const { return data_.data(); }
  int64_t size() const { return static_cast<int64_t>(data_.size()); }
  TensorView view() const { return {data_.data(), shape_}; }
  MutableTensorView mutableView() { return {data_.data(), shape_}; }

 private:
  std::vector<int64_t> shape_;
  AlignedFloats data_;
};

// The number of elements of `shape`; throws cnv::Error (Data) for a negative dim or an
// element count (or byte count) that overflows.
CNV_API int64_t elementCount(const std::vector<int64_t>& shape);

CNV_API std::string shapeString(const std::vector<int64_t>& shape);

}  // namespace cnv
