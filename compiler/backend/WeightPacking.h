// How a kernel wants its conv's weight and bias laid out. The runtime packs them once,
// when a param is bound, from the declared layout (OIW or WIO) into the schedule's.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "compiler/ir/Ir.h"

namespace cnv::backend {

class WeightPacking {
 public:
  // Weights [O][I/groups][K] (PyTorch's order), biases as they are.
  static WeightPacking pytorchOrder() { return WeightPacking(0); }
  // Weights [O/B][K][I/groups][B], biases [O rounded up to B]; zero-filled past O, so
  // that a partial block of output channels needs no masked loads. With `inputBlock`
  // below I/groups: [O/B][I/C][K][C][B], C = inputBlock (the last block of input
  // channels may hold fewer), so that a block of input channels' weights is one
  // contiguous run: spread over K rows I·B floats apart, a power-of-two I·B would put
  // every row in the same cache sets.
  static WeightPacking outputChannelBlocks(int64_t block, int64_t inputBlock = 0) {
    return WeightPacking(block, inputBlock);
  }

  // The packed layout of weight `param` as text: "[O][I/groups][K]", "[O/4][K][I][4]".
  std::string describe(const ir::Value& param) const;
  // What the runtime packs by (runtime/src/Runner.h: packParam): output channels per
  // block (0: PyTorch's order) and input channels per block as asked (0: all).
  int64_t block() const { return block_; }
  int64_t inputBlockOption() const { return inputBlock_; }

 private:
  explicit WeightPacking(int64_t block, int64_t inputBlock = 0)
      : block_(block), inputBlock_(inputBlock) {}
  // Input channels per block of the packed weights: all when `param` has no more.
  int64_t inputBlock(const ir::Value& param) const;

  int64_t block_;       // 0: PyTorch's order
  int64_t inputBlock_;  // 0: all input channels in one block
};

}  // namespace cnv::backend
