// IR → LLVM IR: one kernel function per op of the fused graph, and the calling
// convention the runtime uses to run them.
//
// Every kernel has the signature
//   void kernel(float* const* buffers, const int64_t* scalars)
// buffers: the op's operands in order (weights already packed by packWeight), then its
// result. scalars: see ScalarSlot. Shapes that are symbolic in the model arrive as
// scalars, so one compiled kernel serves every batch and width.
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
  kScalarCount
};

using KernelFunction = void (*)(float* const* buffers, const int64_t* scalars);

struct KernelCall {
  std::string symbol;
  const ir::Op* op;
  std::vector<const ir::Value*> buffers;  // operands, then the result
  ir::SymExpr batch, inputWidth, outputWidth, padLeft;
};

// The kernels to run, in order, for a graph that went through the whole pipeline.
std::vector<KernelCall> planKernels(const ir::Graph& graph);

// Emits the LLVM IR of every kernel in `calls`.
std::unique_ptr<llvm::Module> emitKernels(const ir::Graph& graph,
                                          const std::vector<KernelCall>& calls,
                                          llvm::LLVMContext& context);

// Number of floats a weight occupies once packed, and the packing itself: `user` is in
// the weight's declared layout.
int64_t packedWeightSize(const ir::Value& weight);
void packWeight(const ir::Value& weight, const float* user, float* packed);

}  // namespace cnv::codegen
