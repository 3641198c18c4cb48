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

}  // namespace cnv::backend
