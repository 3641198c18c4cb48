#include "compiler/backend/KernelBuilder.h"

#include <llvm/IR/Intrinsics.h>
#include <llvm/IR/Module.h>

#include "cnv/Error.h"

namespace cnv::backend {

using llvm::BasicBlock;

KernelBuilder::KernelBuilder(llvm::LLVMContext& context, llvm::Module& module)
    : b(context), context_(context), module_(module) {
  i64 = b.getInt64Ty();
  f32 = b.getFloatTy();
  ptr = b.getPtrTy();
}

void KernelBuilder::begin(const Kernel& kernel) {
  auto* type = llvm::FunctionType::get(b.getVoidTy(), {ptr, ptr}, false);
  function_ = llvm::Function::Create(type, llvm::Function::ExternalLinkage, kernel.symbol, module_);
  function_->addFnAttr(llvm::Attribute::NoUnwind);
  for (unsigned i = 0; i < 2; ++i) function_->addParamAttr(i, llvm::Attribute::NoAlias);
  b.SetInsertPoint(BasicBlock::Create(context_, "entry", function_));
  llvm::Value* bufferArray = function_->getArg(0);
  llvm::Value* scalarArray = function_->getArg(1);
  buffers.clear();
  scalars.clear();
  for (size_t i = 0; i < kernel.buffers.size(); ++i)
    buffers.push_back(b.CreateLoad(ptr, b.CreateConstInBoundsGEP1_64(ptr, bufferArray, i),
                                   "buf" + std::to_string(i)));
  scratch =
      kernel.schedule->scratchFloats() > 0
          ? b.CreateLoad(ptr, b.CreateConstInBoundsGEP1_64(ptr, bufferArray, kernel.buffers.size()),
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

Strides KernelBuilder::strides(const ir::Value& v, llvm::Value* width) {
  llvm::Value* channels = constant(v.channels);
  llvm::Value* batch = b.CreateMul(width, channels, "batch.stride", true, true);
  if (v.layout == ir::Layout::NWC) return {batch, constant(1), channels};
  return {batch, width, constant(1)};
}

llvm::Value* KernelBuilder::offset(const Strides& s, llvm::Value* n, llvm::Value* c,
                                   llvm::Value* w) {
  int lanes = 0;
  for (llvm::Value* index : {n, c, w})
    if (auto* type = llvm::dyn_cast<llvm::FixedVectorType>(index->getType()))
      lanes = static_cast<int>(type->getNumElements());
  if (lanes == 0)
    return b.CreateAdd(b.CreateAdd(b.CreateMul(n, s.batch, "", true, true),
                                   b.CreateMul(c, s.channel, "", true, true), "", true, true),
                       b.CreateMul(w, s.width, "", true, true), "", true, true);
  // Lanes a mask turns off may point anywhere; no wrap flags, so their offsets stay
  // well defined.
  auto term = [&](llvm::Value* index, llvm::Value* stride) {
    return b.CreateMul(splatTo(lanes, index), splatTo(lanes, stride));
  };
  return b.CreateAdd(b.CreateAdd(term(n, s.batch), term(c, s.channel)), term(w, s.width));
}

llvm::Value* KernelBuilder::address(llvm::Value* base, const Strides& s, llvm::Value* n,
                                    llvm::Value* c, llvm::Value* w) {
  return b.CreateInBoundsGEP(f32, base, offset(s, n, c, w));
}

llvm::Value* KernelBuilder::splatTo(int lanes, llvm::Value* v) {
  return v->getType()->isVectorTy() ? v : b.CreateVectorSplat(lanes, v);
}

llvm::Value* KernelBuilder::lanePointers(llvm::Value* base, const Strides& s, llvm::Value* n,
                                         llvm::Value* c, llvm::Value* w, LaneAxis axis, int lanes) {
  llvm::Value* first = axis == LaneAxis::Channels ? c : w;
  llvm::Value* along = lanesFrom(first, lanes);
  llvm::Value* offsets =
      axis == LaneAxis::Channels ? offset(s, n, along, w) : offset(s, n, c, along);
  return b.CreateGEP(f32, base, offsets);
}

KernelBuilder::LaneAccess KernelBuilder::laneAccess(const ir::Value& v, llvm::Value* base,
                                                    llvm::Value* width, llvm::Value* n,
                                                    llvm::Value* c, llvm::Value* w, LaneAxis axis,
                                                    int lanes, llvm::Value* mask) {
  Strides s = strides(v, width);
  const bool innermost =
      axis == LaneAxis::Channels ? v.layout == ir::Layout::NWC : positionsContiguous(v);
  if (innermost) return {address(base, s, n, c, w), nullptr, mask};
  return {nullptr, lanePointers(base, s, n, c, w, axis, lanes),
          mask ? mask : b.getAllOnesMask(llvm::ElementCount::getFixed(lanes))};
}

llvm::Value* KernelBuilder::loadLanes(const ir::Value& v, llvm::Value* base, llvm::Value* width,
                                      llvm::Value* n, llvm::Value* c, llvm::Value* w, LaneAxis axis,
                                      int lanes, llvm::Value* mask) {
  LaneAccess at = laneAccess(v, base, width, n, c, w, axis, lanes, mask);
  llvm::FixedVectorType* type = vectorType(lanes);
  if (at.pointers)
    return b.CreateMaskedGather(type, at.pointers, llvm::Align(4), at.mask, zeros(lanes));
  if (at.mask) return b.CreateMaskedLoad(type, at.address, llvm::Align(4), at.mask, zeros(lanes));
  return b.CreateAlignedLoad(type, at.address, llvm::Align(4));
}

void KernelBuilder::storeLanes(llvm::Value* value, const ir::Value& v, llvm::Value* base,
                               llvm::Value* width, llvm::Value* n, llvm::Value* c, llvm::Value* w,
                               LaneAxis axis, llvm::Value* mask) {
  const int lanes =
      static_cast<int>(llvm::cast<llvm::FixedVectorType>(value->getType())->getNumElements());
  LaneAccess at = laneAccess(v, base, width, n, c, w, axis, lanes, mask);
  if (at.pointers)
    b.CreateMaskedScatter(value, at.pointers, llvm::Align(4), at.mask);
  else if (at.mask)
    b.CreateMaskedStore(value, at.address, llvm::Align(4), at.mask);
  else
    b.CreateAlignedStore(value, at.address, llvm::Align(4));
}

void KernelBuilder::storeElement(const ir::Op& op, llvm::Value* sum, llvm::Value* bias,
                                 llvm::Value* n, llvm::Value* c, llvm::Value* w) {
  llvm::Value* width = scalars[kOutputWidth];
  llvm::Value* value = finalValue(op, sum, bias, [&](int i) {
    return b.CreateLoad(f32, address(buffers[i], strides(*op.operands[i], width), n, c, w));
  });
  b.CreateStore(value, address(buffers.back(), strides(*op.result, width), n, c, w));
}

void KernelBuilder::loop(llvm::Value* begin, llvm::Value* end, const std::string& name,
                         const std::function<void(llvm::Value*)>& body) {
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

void KernelBuilder::ifThen(llvm::Value* condition, const std::function<void()>& body) {
  ifThenElse(condition, body, nullptr);
}

void KernelBuilder::ifThenElse(llvm::Value* condition, const std::function<void()>& then,
                               const std::function<void()>& otherwise) {
  BasicBlock* thenBlock = BasicBlock::Create(context_, "then", function_);
  BasicBlock* elseBlock = otherwise ? BasicBlock::Create(context_, "else", function_) : nullptr;
  BasicBlock* join = BasicBlock::Create(context_, "join", function_);
  b.CreateCondBr(condition, thenBlock, elseBlock ? elseBlock : join);
  for (auto [block, body] : {std::pair{thenBlock, &then}, std::pair{elseBlock, &otherwise}}) {
    if (!block) continue;
    b.SetInsertPoint(block);
    (*body)();
    b.CreateBr(join);
  }
  b.SetInsertPoint(join);
}

llvm::Value* KernelBuilder::minimum(llvm::Value* x, llvm::Value* y) {
  return b.CreateSelect(b.CreateICmpSLT(x, y), x, y);
}
llvm::Value* KernelBuilder::maximum(llvm::Value* x, llvm::Value* y) {
  return b.CreateSelect(b.CreateICmpSGT(x, y), x, y);
}

llvm::Value* KernelBuilder::laneIndices(int lanes) {
  std::vector<llvm::Constant*> indices;
  for (int i = 0; i < lanes; ++i) indices.push_back(b.getInt64(i));
  return llvm::ConstantVector::get(indices);
}

llvm::Value* KernelBuilder::lanesFrom(llvm::Value* first, int lanes) {
  return b.CreateAdd(b.CreateVectorSplat(lanes, first), laneIndices(lanes));
}

llvm::Value* KernelBuilder::lanesBelow(llvm::Value* first, int lanes, llvm::Value* limit) {
  return b.CreateICmpSLT(lanesFrom(first, lanes), b.CreateVectorSplat(lanes, limit));
}

llvm::Value* KernelBuilder::fma(llvm::Value* a, llvm::Value* x, llvm::Value* c) {
  return b.CreateIntrinsic(llvm::Intrinsic::fmuladd, {a->getType()}, {a, x, c});
}

llvm::Value* KernelBuilder::tapPosition(const ir::Op& op, llvm::Value* wo, llvm::Value* k) {
  return b.CreateSub(
      b.CreateAdd(b.CreateMul(wo, constant(op.stride)), b.CreateMul(k, constant(op.dilation))),
      scalars[kPadLeft]);
}

void KernelBuilder::forEachChannelBlock(
    const ir::Op& op, int64_t block, const std::function<void(llvm::Value*, llvm::Value*)>& body) {
  const int64_t blocks = (op.result->channels + block - 1) / block;
  loop(constant(0), constant(blocks), "cb", [&](llvm::Value* cb) {
    auto [firstChannel, weights] = channelBlock(op, block, cb);
    body(firstChannel, weights);
  });
}

std::pair<llvm::Value*, llvm::Value*> KernelBuilder::channelBlock(const ir::Op& op, int64_t block,
                                                                  llvm::Value* index) {
  const ir::Value& weight = *op.operands[1];
  const int64_t blockFloats = weight.kernelWidth * weight.inChannelsPerGroup * block;
  return {b.CreateMul(index, constant(block)),
          b.CreateInBoundsGEP(f32, buffers[1], b.CreateMul(index, constant(blockFloats)))};
}

void KernelBuilder::prefetch(llvm::Value* address, bool forWrite) {
  b.CreateIntrinsic(llvm::Intrinsic::prefetch, {b.getPtrTy()},
                    {address, b.getInt32(forWrite ? 1 : 0), b.getInt32(3), b.getInt32(1)});
}

// f(v) for a libm function, lane by lane on vectors (libm's accuracy everywhere).
llvm::Value* KernelBuilder::callLibm(const char* name, llvm::Value* v) {
  llvm::FunctionCallee f =
      module_.getOrInsertFunction(name, llvm::FunctionType::get(f32, {f32}, false));
  auto* vectorType = llvm::dyn_cast<llvm::FixedVectorType>(v->getType());
  if (!vectorType) return b.CreateCall(f, {v});
  llvm::Value* result = llvm::PoisonValue::get(vectorType);
  for (unsigned lane = 0; lane < vectorType->getNumElements(); ++lane)
    result =
        b.CreateInsertElement(result, b.CreateCall(f, {b.CreateExtractElement(v, lane)}), lane);
  return result;
}

llvm::Value* KernelBuilder::finalValue(const ir::Op& op, llvm::Value* v, llvm::Value* bias,
                                       const std::function<llvm::Value*(int)>& residual) {
  if (bias) v = b.CreateFAdd(v, bias);
  llvm::Type* type = v->getType();
  llvm::Value* zero = llvm::ConstantFP::get(type, 0.0);
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
        llvm::Value* six = llvm::ConstantFP::get(type, 6.0);
        v = b.CreateSelect(b.CreateFCmpOLT(v, zero), zero, v);
        v = b.CreateSelect(b.CreateFCmpOGT(v, six), six, v);
        break;
      }
      case ir::OpKind::LeakyRelu:
        v = b.CreateSelect(b.CreateFCmpOLT(v, zero),
                           b.CreateFMul(v, llvm::ConstantFP::get(type, step.alpha)), v);
        break;
      case ir::OpKind::Sigmoid: {
        llvm::Value* one = llvm::ConstantFP::get(type, 1.0);
        v = b.CreateFDiv(one, b.CreateFAdd(one, callLibm("expf", b.CreateFNeg(v))));
        break;
      }
      case ir::OpKind::Tanh:
        v = callLibm("tanhf", v);
        break;
      default:
        throw internalError("internal error: kernel emission: unexpected epilogue step");
    }
  }
  return v;
}

llvm::Value* KernelBuilder::integerLike(llvm::Value* like, int64_t v) {
  if (auto* vectorType = llvm::dyn_cast<llvm::FixedVectorType>(like->getType()))
    return b.CreateVectorSplat(vectorType->getNumElements(), constant(v));
  return constant(v);
}

std::pair<llvm::Value*, llvm::Value*> KernelBuilder::mapPosition(ir::PaddingMode mode,
                                                                 llvm::Value* pos,
                                                                 llvm::Value* width) {
  if (auto* vectorType = llvm::dyn_cast<llvm::FixedVectorType>(pos->getType()))
    width = b.CreateVectorSplat(vectorType->getNumElements(), width);
  llvm::Value* zero = integerLike(pos, 0);
  llvm::Value* one = integerLike(pos, 1);
  switch (mode) {
    case ir::PaddingMode::Zeros:
      return {pos, b.CreateICmpULT(pos, width)};
    case ir::PaddingMode::Reflect: {
      // pad < width is checked before running, so one reflection suffices.
      llvm::Value* left = b.CreateSelect(b.CreateICmpSLT(pos, zero), b.CreateNeg(pos), pos);
      llvm::Value* last = b.CreateSub(width, one);
      llvm::Value* mirrored = b.CreateSub(b.CreateAdd(last, last), left);
      return {b.CreateSelect(b.CreateICmpSGT(left, last), mirrored, left), nullptr};
    }
    case ir::PaddingMode::Replicate: {
      llvm::Value* last = b.CreateSub(width, one);
      llvm::Value* low = b.CreateSelect(b.CreateICmpSLT(pos, zero), zero, pos);
      return {b.CreateSelect(b.CreateICmpSGT(low, last), last, low), nullptr};
    }
    case ir::PaddingMode::Circular: {
      // pad ≤ width is checked before running, so one wrap suffices.
      llvm::Value* up = b.CreateSelect(b.CreateICmpSLT(pos, zero), b.CreateAdd(pos, width), pos);
      return {b.CreateSelect(b.CreateICmpSGE(up, width), b.CreateSub(up, width), up), nullptr};
    }
  }
  throw internalError("internal error: kernel emission: unknown padding mode");
}

void KernelBuilder::forTap(const ir::Op& op, llvm::Value* wo, llvm::Value* k, llvm::Value* inWidth,
                           const std::function<void(llvm::Value*)>& body) {
  auto [index, inside] = mapPosition(op.paddingMode, tapPosition(op, wo, k), inWidth);
  if (inside)
    ifThen(inside, [&, index = index] { body(index); });
  else
    body(index);
}

std::pair<llvm::Value*, llvm::Value*> KernelBuilder::interiorRange(const ir::Op& op) {
  const int64_t K = op.operands[1]->kernelWidth;
  llvm::Value* inWidth = scalars[kInputWidth];
  llvm::Value* padLeft = scalars[kPadLeft];
  llvm::Value* widthBegin = scalars[kWidthBegin];
  llvm::Value* widthEnd = scalars[kWidthEnd];
  llvm::Value* firstInside =
      b.CreateSDiv(b.CreateAdd(padLeft, constant(op.stride - 1)), constant(op.stride));
  llvm::Value* lastReach =
      b.CreateAdd(b.CreateSub(inWidth, constant(1 + (K - 1) * op.dilation)), padLeft);
  llvm::Value* endInside =
      b.CreateSelect(b.CreateICmpSLT(lastReach, constant(0)), constant(0),
                     b.CreateAdd(b.CreateSDiv(lastReach, constant(op.stride)), constant(1)));
  llvm::Value* interiorBegin = minimum(maximum(firstInside, widthBegin), widthEnd);
  llvm::Value* interiorEnd = maximum(minimum(endInside, widthEnd), interiorBegin);
  return {interiorBegin, interiorEnd};
}

}  // namespace cnv::backend
