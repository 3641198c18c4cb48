// The loop-nest level between the fused IR and LLVM IR, and the kernels' calling
// convention.
//
// scheduleKernels() turns each op of the fused graph into one KernelCall with a
// Schedule: which strategy (loop structure), the vector width, and the register tile.
// printSchedules() shows that level (`cnvc compile --emit=loops`); emitKernels() lowers
// it to LLVM IR.
//
// Every kernel has the signature
//   void kernel(float* const* buffers, const int64_t* scalars)
// buffers: the op's operands in order (weights and biases packed for the kernel by
// packOperand, once, at bind time), then its result, then, when the call's
// scratchFloats > 0, a 64-byte aligned scratch buffer of that many floats that no
// other thread uses during the call. scalars: see ScalarSlot. Shapes
// that are symbolic in the model arrive as scalars, so one compiled kernel serves every
// batch and width; the batch and width ranges let the runtime split work across threads.
#pragma once

#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "compiler/ir/Ir.h"

namespace cnv::codegen {

enum ScalarSlot : int {
  kBatchBegin = 0,  // the kernel computes samples [kBatchBegin, kBatchEnd)
  kBatchEnd,
  kInputWidth,
  kOutputWidth,
  kPadLeft,
  kWidthBegin,  // ... and output positions [kWidthBegin, kWidthEnd)
  kWidthEnd,
  kScalarCount
};

using KernelFunction = void (*)(float* const* buffers, const int64_t* scalars);

enum class Strategy {
  // One output element at a time; any conv (groups, modes) and every map.
  Scalar,
  // Channels-innermost register tiles: widthTile output positions × vectorsPerTile
  // vectors of output channels accumulate in registers; each tap broadcasts one input
  // value against vectorsPerTile weight vectors. Interior positions run unchecked;
  // the border positions check each tap against the padding mode. groups = 1 only.
  DirectVector,
  // DirectVector's loops for groups with one input channel each (depthwise, with any
  // channel multiplier): each lane loads its own input channel instead of a broadcast.
  DepthwiseVector,
  // Width-innermost register tiles, for convs with an NCW input or output (any stride):
  // channelTile output channels × vectorsPerTile vectors of consecutive output
  // positions. Each panel's input is first copied (padding applied, strides
  // de-interleaved, NWC gathered) into a scratch buffer; then each tap and input
  // channel loads vectorsPerTile vectors from it and broadcasts channelTile weights
  // against them. groups = 1 or depthwise.
  WidthVector,
};

struct Schedule {
  Strategy strategy = Strategy::Scalar;
  int vectorWidth = 1;     // floats per vector register
  int vectorsPerTile = 1;  // vectors per register tile: of channels, or of positions (WidthVector)
  int widthTile = 1;       // output positions per register tile (Direct/DepthwiseVector)
  int channelTile = 1;     // output channels per register tile (WidthVector)
  // Output channels per block; weights are packed [O/block][K][I][block].
  int64_t channelBlock() const {
    return strategy == Strategy::WidthVector ? channelTile : int64_t{vectorWidth} * vectorsPerTile;
  }
};

struct KernelCall {
  std::string symbol;
  const ir::Op* op;
  Schedule schedule;
  std::vector<const ir::Value*> buffers;  // operands, then the result
  ir::SymExpr batch, inputWidth, outputWidth, padLeft;
  int64_t scratchFloats = 0;  // per-thread scratch the kernel wants (see above)
  // Width chunks given to threads should start at multiples of this (the kernel's
  // register tile), so that no chunk ends in a partial tile it could have avoided.
  int64_t widthGranule = 1;
};

struct TargetInfo {
  int vectorWidth = 4;  // 16 with AVX-512, 8 with AVX2, 4 otherwise
  int vectorRegisters = 16;
};

// WidthVector kernels copy each panel's input span into rows this many floats apart,
// in a scratch buffer of widthVectorPanelFloats floats.
int64_t widthVectorRowStride(const Schedule& schedule, const ir::Op& op);
int64_t widthVectorPanelFloats(const Schedule& schedule, const ir::Op& op);
// Whether a WidthVector kernel loops over channel blocks outside the panels (copying
// each block's input per panel) rather than inside them (one copy for all blocks).
bool widthVectorBlocksOutside(const ir::Op& op);

// The kernels to run, in order, for a graph that went through the whole pipeline.
std::vector<KernelCall> scheduleKernels(const ir::Graph& graph, const TargetInfo& target);
std::string printSchedules(const std::vector<KernelCall>& calls);

// Emits the LLVM IR of every kernel in `calls`.
std::unique_ptr<llvm::Module> emitKernels(const ir::Graph& graph,
                                          const std::vector<KernelCall>& calls,
                                          llvm::LLVMContext& context);

// Whether operand `index` of `call` is a param the kernel wants repacked, and the
// repacking: `user` holds the param in its declared layout.
bool isPackedOperand(const KernelCall& call, size_t index);
std::vector<float> packOperand(const KernelCall& call, size_t index, const float* user);
// The packed layout of weight operand `index`, as text ("[O/4][K][I][4]").
std::string packedLayout(const KernelCall& call, size_t index);

}  // namespace cnv::codegen
