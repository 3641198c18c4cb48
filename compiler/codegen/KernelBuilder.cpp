#include "compiler/codegen/KernelBuilder.h"

#include <llvm/IR/Intrinsics.h>

#include "cnv/Error.h"

namespace cnv::codegen {

using llvm::BasicBlock;

KernelBuilder::KernelBuilder(llvm::LLVMContext& context, llvm::Module& module)
    : b(context), context_(context), module_(module) {
  i64 = b.getInt64Ty();
  f32 = b.getFloatTy();
  ptr = b.getPtrTy();
}

void KernelBuilder::begin(const KernelCall& call) {
  auto* type = llvm::FunctionType::get(b.getVoidTy(), {ptr, ptr}, false);
  function_ = llvm::Function::Create(type, llvm::Function::ExternalLinkage, call.symbol, module_);
  function_->addFnAttr(llvm::Attribute::NoUnwind);
  for (unsigned i = 0; i < 2; ++i) function_->addParamAttr(i, llvm::Attribute::NoAlias);
  b.SetInsertPoint(BasicBlock::Create(context_, "entry", function_));
  LValue* bufferArray = function_->getArg(0);
  LValue* scalarArray = function_->getArg(1);
  buffers.clear();
  scalars.clear();
  for (size_t i = 0; i < call.buffers.size(); ++i)
    buffers.push_back(b.CreateLoad(ptr, b.CreateConstInBoundsGEP1_64(ptr, bufferArray, i),
                                   "buf" + std::to_string(i)));
  scratch =
      call.scratchFloats > 0
          ? b.CreateLoad(ptr, b.CreateConstInBoundsGEP1_64(ptr, bufferArray, call.buffers.size()),
                         "scratch")
          : nullptr;
  if (auto* load = llvm::dyn_cast_or_null<llvm::LoadInst>(scratch)) {
    // The runtime gives 64-byte aligned scratch; telling LLVM lets it rely on that.
    load->setMetadata(llvm::LLVMContext::MD_align,
                      llvm::MDNode::get(context_, {llvm::ConstantAsMetadata::get(b.getInt64(64))}));
  }
  for (int i = 0; i < kScalarCount; ++i)
    scalars.push_back(b.CreateLoad(i64, b.CreateConstInBoundsGEP1_64(i64, scalarArray, i),
                                   "scalar" + std::to_string(i)));
}

void KernelBuilder::finish() { b.CreateRetVoid(); }

llvm::AllocaInst* KernelBuilder::entryAlloca(llvm::Type* type, const char* name) {
  llvm::IRBuilder<> entry(&function_->getEntryBlock(), function_->getEntryBlock().begin());
  return entry.CreateAlloca(type, nullptr, name);
}

Strides KernelBuilder::strides(const ir::Value& v, LValue* width) {
  LValue* channels = constant(v.channels);
  LValue* batch = b.CreateMul(width, channels, "batch.stride", true, true);
  if (v.layout == ir::Layout::NWC) return {batch, constant(1), channels};
  return {batch, width, constant(1)};
}

LValue* KernelBuilder::offset(const Strides& s, LValue* n, LValue* c, LValue* w) {
  return b.CreateAdd(b.CreateAdd(b.CreateMul(n, s.batch, "", true, true),
                                 b.CreateMul(c, s.channel, "", true, true), "", true, true),
                     b.CreateMul(w, s.width, "", true, true), "", true, true);
}

LValue* KernelBuilder::address(LValue* base, const Strides& s, LValue* n, LValue* c, LValue* w) {
  return b.CreateInBoundsGEP(f32, base, offset(s, n, c, w));
}

void KernelBuilder::loop(LValue* begin, LValue* end, const std::string& name,
                         const std::function<void(LValue*)>& body) {
  BasicBlock* preheader = b.GetInsertBlock();
  BasicBlock* header = BasicBlock::Create(context_, name + ".header", function_);
  BasicBlock* bodyBlock = BasicBlock::Create(context_, name + ".body", function_);
  BasicBlock* exit = BasicBlock::Create(context_, name + ".exit", function_);
  b.CreateBr(header);
  b.SetInsertPoint(header);
  llvm::PHINode* index = b.CreatePHI(i64, 2, name);
  index->addIncoming(begin, preheader);
  b.CreateCondBr(b.CreateICmpSLT(index, end), bodyBlock, exit);
  b.SetInsertPoint(bodyBlock);
  body(index);
  index->addIncoming(b.CreateAdd(index, constant(1), name + ".next", true, true),
                     b.GetInsertBlock());
  llvm::BranchInst* latch = b.CreateBr(header);
  // The register tiles are already unrolled as far as they pay; LLVM's unroller would
  // only multiply the code (and the compile time, 2-3x) for no measured gain. The loop
  // ID is self-referential, as LLVM requires.
  llvm::MDNode* disable =
      llvm::MDNode::get(context_, {llvm::MDString::get(context_, "llvm.loop.unroll.disable")});
  llvm::TempMDTuple placeholder = llvm::MDNode::getTemporary(context_, {});
  llvm::MDNode* id = llvm::MDNode::get(context_, {placeholder.get(), disable});
  id->replaceOperandWith(0, id);
  latch->setMetadata(llvm::LLVMContext::MD_loop, id);
  b.SetInsertPoint(exit);
}

void KernelBuilder::ifThen(LValue* condition, const std::function<void()>& body) {
  BasicBlock* then = BasicBlock::Create(context_, "then", function_);
  BasicBlock* join = BasicBlock::Create(context_, "join", function_);
  b.CreateCondBr(condition, then, join);
  b.SetInsertPoint(then);
  body();
  b.CreateBr(join);
  b.SetInsertPoint(join);
}

LValue* KernelBuilder::minimum(LValue* x, LValue* y) {
  return b.CreateSelect(b.CreateICmpSLT(x, y), x, y);
}
LValue* KernelBuilder::maximum(LValue* x, LValue* y) {
  return b.CreateSelect(b.CreateICmpSGT(x, y), x, y);
}

LValue* KernelBuilder::laneIndices(int lanes) {
  std::vector<llvm::Constant*> indices;
  for (int i = 0; i < lanes; ++i) indices.push_back(b.getInt64(i));
  return llvm::ConstantVector::get(indices);
}

LValue* KernelBuilder::channelMask(LValue* c0, int lanes, int64_t channels) {
  return b.CreateICmpSLT(b.CreateAdd(b.CreateVectorSplat(lanes, c0), laneIndices(lanes)),
                         b.CreateVectorSplat(lanes, constant(channels)));
}

// f(v) for a libm function, lane by lane on vectors (libm's accuracy everywhere).
LValue* KernelBuilder::callLibm(const char* name, LValue* v) {
  llvm::FunctionCallee f =
      module_.getOrInsertFunction(name, llvm::FunctionType::get(f32, {f32}, false));
  auto* vectorType = llvm::dyn_cast<llvm::FixedVectorType>(v->getType());
  if (!vectorType) return b.CreateCall(f, {v});
  LValue* result = llvm::PoisonValue::get(vectorType);
  for (unsigned lane = 0; lane < vectorType->getNumElements(); ++lane)
    result =
        b.CreateInsertElement(result, b.CreateCall(f, {b.CreateExtractElement(v, lane)}), lane);
  return result;
}

LValue* KernelBuilder::epilogue(const ir::Op& op, LValue* v,
                                const std::function<LValue*(int)>& residual) {
  llvm::Type* type = v->getType();
  LValue* zero = llvm::ConstantFP::get(type, 0.0);
  for (const ir::EpilogueStep& step : op.epilogue) {
    switch (step.kind) {
      case ir::OpKind::Add:
        v = b.CreateFAdd(v, residual(step.operand));
        break;
      case ir::OpKind::Relu:
        // select on v < 0 keeps NaN as NaN, like PyTorch.
        v = b.CreateSelect(b.CreateFCmpOLT(v, zero), zero, v);
        break;
      case ir::OpKind::Relu6: {
        LValue* six = llvm::ConstantFP::get(type, 6.0);
        v = b.CreateSelect(b.CreateFCmpOLT(v, zero), zero, v);
        v = b.CreateSelect(b.CreateFCmpOGT(v, six), six, v);
        break;
      }
      case ir::OpKind::LeakyRelu:
        v = b.CreateSelect(b.CreateFCmpOLT(v, zero),
                           b.CreateFMul(v, llvm::ConstantFP::get(type, step.alpha)), v);
        break;
      case ir::OpKind::Sigmoid: {
        LValue* one = llvm::ConstantFP::get(type, 1.0);
        v = b.CreateFDiv(one, b.CreateFAdd(one, callLibm("expf", b.CreateFNeg(v))));
        break;
      }
      case ir::OpKind::Tanh:
        v = callLibm("tanhf", v);
        break;
      default:
        throw internalError("codegen: unexpected epilogue step");
    }
  }
  return v;
}

LValue* KernelBuilder::integerLike(LValue* like, int64_t v) {
  if (auto* vectorType = llvm::dyn_cast<llvm::FixedVectorType>(like->getType()))
    return b.CreateVectorSplat(vectorType->getNumElements(), constant(v));
  return constant(v);
}

std::pair<LValue*, LValue*> KernelBuilder::mapPosition(ir::PaddingMode mode, LValue* pos,
                                                       LValue* width) {
  if (auto* vectorType = llvm::dyn_cast<llvm::FixedVectorType>(pos->getType()))
    width = b.CreateVectorSplat(vectorType->getNumElements(), width);
  LValue* zero = integerLike(pos, 0);
  LValue* one = integerLike(pos, 1);
  switch (mode) {
    case ir::PaddingMode::Zeros:
      return {pos, b.CreateICmpULT(pos, width)};
    case ir::PaddingMode::Reflect: {
      // pad < width is checked before running, so one reflection suffices.
      LValue* left = b.CreateSelect(b.CreateICmpSLT(pos, zero), b.CreateNeg(pos), pos);
      LValue* last = b.CreateSub(width, one);
      LValue* mirrored = b.CreateSub(b.CreateAdd(last, last), left);
      return {b.CreateSelect(b.CreateICmpSGT(left, last), mirrored, left), nullptr};
    }
    case ir::PaddingMode::Replicate: {
      LValue* last = b.CreateSub(width, one);
      LValue* low = b.CreateSelect(b.CreateICmpSLT(pos, zero), zero, pos);
      return {b.CreateSelect(b.CreateICmpSGT(low, last), last, low), nullptr};
    }
    case ir::PaddingMode::Circular: {
      // pad ≤ width is checked before running, so one wrap suffices.
      LValue* up = b.CreateSelect(b.CreateICmpSLT(pos, zero), b.CreateAdd(pos, width), pos);
      return {b.CreateSelect(b.CreateICmpSGE(up, width), b.CreateSub(up, width), up), nullptr};
    }
  }
  throw internalError("codegen: unknown padding mode");
}

void KernelBuilder::forTap(const ir::Op& op, LValue* wo, LValue* k, LValue* inWidth,
                           const std::function<void(LValue*)>& body) {
  LValue* pos = b.CreateSub(
      b.CreateAdd(b.CreateMul(wo, constant(op.stride)), b.CreateMul(k, constant(op.dilation))),
      scalars[kPadLeft]);
  auto [index, inside] = mapPosition(op.paddingMode, pos, inWidth);
  if (inside)
    ifThen(inside, [&, index = index] { body(index); });
  else
    body(index);
}

std::pair<LValue*, LValue*> KernelBuilder::interiorRange(const ir::Op& op) {
  const int64_t K = op.operands[1]->kernelWidth;
  LValue* inWidth = scalars[kInputWidth];
  LValue* padLeft = scalars[kPadLeft];
  LValue* widthBegin = scalars[kWidthBegin];
  LValue* widthEnd = scalars[kWidthEnd];
  LValue* firstInside =
      b.CreateSDiv(b.CreateAdd(padLeft, constant(op.stride - 1)), constant(op.stride));
  LValue* lastReach =
      b.CreateAdd(b.CreateSub(inWidth, constant(1 + (K - 1) * op.dilation)), padLeft);
  LValue* endInside =
      b.CreateSelect(b.CreateICmpSLT(lastReach, constant(0)), constant(0),
                     b.CreateAdd(b.CreateSDiv(lastReach, constant(op.stride)), constant(1)));
  LValue* interiorBegin = minimum(maximum(firstInside, widthBegin), widthEnd);
  LValue* interiorEnd = maximum(minimum(endInside, widthEnd), interiorBegin);
  return {interiorBegin, interiorEnd};
}

}  // namespace cnv::codegen
