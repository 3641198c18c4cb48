// The shared toolkit of every kernel emitter: the IRBuilder positioned in one kernel,
// its buffers and scalars, structured loops, layout addressing, padding maps and the
// fused epilogue. Each strategy (ScalarKernels.cpp, DirectVectorKernel.cpp,
// WidthVectorKernel.cpp) is a function over a KernelBuilder.
#pragma once

#include <llvm/IR/IRBuilder.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "compiler/codegen/Kernels.h"

namespace cnv::codegen {

using LValue = llvm::Value;

// Element strides of an activation stored in some layout with a run-time width.
struct Strides {
  LValue* batch;
  LValue* channel;
  LValue* width;
};

class KernelBuilder {
 public:
  KernelBuilder(llvm::LLVMContext& context, llvm::Module& module);

  // Starts the function of `call`: loads its buffer pointers and scalars.
  void begin(const KernelCall& call);
  void finish();

  llvm::IRBuilder<> b;
  llvm::Type* i64;
  llvm::Type* f32;
  llvm::PointerType* ptr;
  std::vector<LValue*> buffers;  // the call's operands, then its result
  LValue* scratch = nullptr;     // the call's scratch buffer, if it has one
  std::vector<LValue*> scalars;  // indexed by ScalarSlot

  LValue* constant(int64_t v) { return b.getInt64(v); }
  llvm::AllocaInst* entryAlloca(llvm::Type* type, const char* name);

  Strides strides(const ir::Value& v, LValue* width);
  LValue* offset(const Strides& s, LValue* n, LValue* c, LValue* w);
  LValue* address(LValue* base, const Strides& s, LValue* n, LValue* c, LValue* w);

  // for (index = begin; index < end; ++index) body(index), marked for LLVM's unroller
  // to leave alone: the emitters size their loop bodies themselves.
  void loop(LValue* begin, LValue* end, const std::string& name,
            const std::function<void(LValue*)>& body);
  void ifThen(LValue* condition, const std::function<void()>& body);
  LValue* minimum(LValue* a, LValue* b);
  LValue* maximum(LValue* a, LValue* b);

  // <0, 1, ..., lanes-1> as i64.
  LValue* laneIndices(int lanes);
  // Lanes whose channel c0 + lane is below `channels`.
  LValue* channelMask(LValue* c0, int lanes, int64_t channels);

  // Applies the op's epilogue steps to `v` (a float or a vector of floats);
  // `residual(i)` loads operand i's matching element(s).
  LValue* epilogue(const ir::Op& op, LValue* v, const std::function<LValue*(int)>& residual);

  // Maps input position `pos` (a scalar or a vector; may lie in the padding) to an
  // index into the input, per the padding mode. Returns the index and, for zeros, the
  // condition that it is inside (null for the other modes, whose index always is).
  std::pair<LValue*, LValue*> mapPosition(ir::PaddingMode mode, LValue* pos, LValue* width);

  // Calls body(index) for the input position of tap `k` at output `wo`, skipping taps
  // that fall in zero padding.
  void forTap(const ir::Op& op, LValue* wo, LValue* k, LValue* inWidth,
              const std::function<void(LValue*)>& body);

  // The output positions of a conv whose every tap lies inside the input, clamped to
  // the call's [widthBegin, widthEnd): [first, second).
  std::pair<LValue*, LValue*> interiorRange(const ir::Op& op);

 private:
  LValue* callLibm(const char* name, LValue* v);
  // A constant of `type` (or of its element type splatted).
  LValue* integerLike(LValue* like, int64_t v);

  llvm::LLVMContext& context_;
  llvm::Module& module_;
  llvm::Function* function_ = nullptr;
};

// The strategies (one file each).
void emitScalarConv(KernelBuilder& kb, const ir::Op& op);
void emitMap(KernelBuilder& kb, const ir::Op& op);
void emitDirectVectorConv(KernelBuilder& kb, const ir::Op& op, const Schedule& schedule);
void emitWidthVectorConv(KernelBuilder& kb, const ir::Op& op, const Schedule& schedule);

}  // namespace cnv::codegen
