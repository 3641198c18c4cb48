#include "cnv/Tensor.h"

#include <utility>

#include "cnv/Error.h"

namespace cnv {

namespace {

// A generous ceiling (1 TiB of floats): anything bigger is a corrupt header, not real data,
// and staying far below INT64_MAX keeps every later byte and stride computation safe.
constexpr int64_t kMaxTensorBytes = int64_t{1} << 40;

}  // namespace

Tensor::Tensor(std::vector<int64_t> shape)
    : shape_(std::move(shape)), data_(static_cast<size_t>(elementCount(shape_))) {}

Tensor::Tensor(std::vector<int64_t> shape, std::vector<float> data)
    : shape_(std::move(shape)), data_(data.begin(), data.end()) {
  const int64_t expected = elementCount(shape_);
  if (size() != expected) {
    throw dataError("tensor of shape " + shapeString(shape_) + " needs " +
                    std::to_string(expected) + " elements but was given " + std::to_string(size()));
  }
}

int64_t elementCount(const std::vector<int64_t>& shape) {
  // Like NumPy, the product of the non-zero dims must fit too: an empty (0, 2^40, 2^40)
  // array still has strides, and code computing them must not overflow.
  int64_t count = 1;
  int64_t nonZeroCount = 1;
  for (int64_t dim : shape) {
    if (dim < 0) {
      throw dataError("shape " + shapeString(shape) + " has a negative dimension");
    }
    int64_t nonZeroBytes = 0;
    if (dim != 0 && (__builtin_mul_overflow(nonZeroCount, dim, &nonZeroCount) ||
                     __builtin_mul_overflow(nonZeroCount, int64_t{sizeof(float)}, &nonZeroBytes))) {
      throw dataError("shape " + shapeString(shape) + " is too large (its size overflows)");
    }
    count *= dim;  // cannot overflow: |count| <= nonZeroCount
  }
  if (count > kMaxTensorBytes / int64_t{sizeof(float)}) {
    throw dataError("shape " + shapeString(shape) + " is too large (" + std::to_string(count) +
                    " elements; at most 2^40 bytes are allowed)");
  }
  return count;
}

std::string shapeString(const std::vector<int64_t>& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) text += ", ";
    text += std::to_string(shape[i]);
  }
  return text + "]";
}

}  // namespace cnv
