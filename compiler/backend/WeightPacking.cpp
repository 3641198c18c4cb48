#include "compiler/backend/WeightPacking.h"

#include <fmt/format.h>

#include <algorithm>

namespace cnv::backend {

int64_t WeightPacking::inputBlock(const ir::Value& param) const {
  const int64_t I = param.inChannelsPerGroup;
  return inputBlock_ > 0 ? std::min(inputBlock_, I) : I;
}

std::string WeightPacking::describe(const ir::Value& param) const {
  if (block_ == 0) return "[O][I/groups][K]";
  if (inputBlock(param) < param.inChannelsPerGroup)
    return fmt::format("[O/{0}][I/{1}][K][{1}][{0}]", block_, inputBlock(param));
  return fmt::format("[O/{0}][K][{1}][{0}]", block_, param.inChannelsPerGroup == 1 ? "1" : "I");
}

std::vector<float> WeightPacking::pack(const ir::Value& param, const float* user) const {
  const int64_t block = block_ == 0 ? 1 : block_;
  if (param.kind == ir::ValueKind::Bias) {
    const int64_t O = param.biasLength;
    std::vector<float> packed((O + block - 1) / block * block, 0.0f);
    std::copy(user, user + O, packed.begin());
    return packed;
  }
  const int64_t O = param.outChannels, I = param.inChannelsPerGroup, K = param.kernelWidth;
  const bool wio = param.weightLayout == ir::WeightLayout::WIO;
  auto at = [&](int64_t o, int64_t i, int64_t k) {
    return wio ? user[(k * I + i) * O + o] : user[(o * I + i) * K + k];
  };
  if (block_ == 0) {
    std::vector<float> packed(O * I * K);
    for (int64_t o = 0; o < O; ++o)
      for (int64_t i = 0; i < I; ++i)
        for (int64_t k = 0; k < K; ++k) packed[(o * I + i) * K + k] = at(o, i, k);
    return packed;
  }
  const int64_t blocks = (O + block - 1) / block;
  const int64_t inputs = inputBlock(param);
  std::vector<float> packed(blocks * K * I * block, 0.0f);
  for (int64_t o = 0; o < O; ++o)
    for (int64_t i = 0; i < I; ++i) {
      // Input channel i lies in the block of `count` channels from c0, which starts
      // after c0·K·B floats of its output block's weights.
      const int64_t c0 = i / inputs * inputs, count = std::min(inputs, I - c0);
      for (int64_t k = 0; k < K; ++k)
        packed[((o / block) * K * I + c0 * K + k * count + i - c0) * block + o % block] =
            at(o, i, k);
    }
  return packed;
}

}  // namespace cnv::backend
