// Schedules → LLVM IR. Layouts are folded into address arithmetic (per-layout strides),
// padding into index mapping or, for interior positions, into nothing at all; the
// epilogue runs on each element or vector before its single store.
#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/Intrinsics.h>
#include <llvm/IR/Verifier.h>
#include <llvm/Support/raw_ostream.h>

#include <functional>

#include "cnv/Error.h"
#include "compiler/codegen/Kernels.h"

namespace cnv::codegen {
namespace {

using llvm::BasicBlock;
using LValue = llvm::Value;

// Element strides of an activation stored in `layout` with `channels` channels and a
// run-time width.
struct Strides {
  LValue* batch;
  LValue* channel;
  LValue* width;
};

class KernelEmitter {
 public:
  KernelEmitter(llvm::LLVMContext& context, llvm::Module& module)
      : context_(context), module_(module), b_(context) {
    i64_ = b_.getInt64Ty();
    f32_ = b_.getFloatTy();
    ptr_ = b_.getPtrTy();
  }

  void emit(const KernelCall& call) {
    auto* type = llvm::FunctionType::get(b_.getVoidTy(), {ptr_, ptr_}, false);
    function_ = llvm::Function::Create(type, llvm::Function::ExternalLinkage, call.symbol, module_);
    function_->addFnAttr(llvm::Attribute::NoUnwind);
    for (unsigned i = 0; i < 2; ++i) function_->addParamAttr(i, llvm::Attribute::NoAlias);
    b_.SetInsertPoint(BasicBlock::Create(context_, "entry", function_));
    LValue* buffers = function_->getArg(0);
    LValue* scalars = function_->getArg(1);
    buffers_.clear();
    scalars_.clear();
    for (size_t i = 0; i < call.buffers.size(); ++i)
      buffers_.push_back(b_.CreateLoad(ptr_, b_.CreateConstInBoundsGEP1_64(ptr_, buffers, i),
                                       "buf" + std::to_string(i)));
    for (int i = 0; i < kScalarCount; ++i)
      scalars_.push_back(b_.CreateLoad(i64_, b_.CreateConstInBoundsGEP1_64(i64_, scalars, i),
                                       "scalar" + std::to_string(i)));

    const ir::Op& op = *call.op;
    if (call.schedule.strategy != Strategy::Scalar)
      emitDirectConv(op, call.schedule);
    else if (op.kind == ir::OpKind::Conv1d)
      emitScalarConv(op);
    else
      emitMap(op);
    b_.CreateRetVoid();
  }

 private:
  LValue* constant(int64_t v) { return b_.getInt64(v); }

  llvm::AllocaInst* entryAlloca(llvm::Type* type, const char* name) {
    llvm::IRBuilder<> entry(&function_->getEntryBlock(), function_->getEntryBlock().begin());
    return entry.CreateAlloca(type, nullptr, name);
  }

  Strides strides(const ir::Value& v, LValue* width) {
    LValue* channels = constant(v.channels);
    LValue* batch = b_.CreateMul(width, channels, "batch.stride", true, true);
    if (v.layout == ir::Layout::NWC) return {batch, constant(1), channels};
    return {batch, width, constant(1)};
  }

  LValue* offset(const Strides& s, LValue* n, LValue* c, LValue* w) {
    return b_.CreateAdd(b_.CreateAdd(b_.CreateMul(n, s.batch, "", true, true),
                                     b_.CreateMul(c, s.channel, "", true, true), "", true, true),
                        b_.CreateMul(w, s.width, "", true, true), "", true, true);
  }

  LValue* address(LValue* base, const Strides& s, LValue* n, LValue* c, LValue* w) {
    return b_.CreateInBoundsGEP(f32_, base, offset(s, n, c, w));
  }

  void loop(LValue* begin, LValue* end, const std::string& name,
            const std::function<void(LValue*)>& body) {
    BasicBlock* preheader = b_.GetInsertBlock();
    BasicBlock* header = BasicBlock::Create(context_, name + ".header", function_);
    BasicBlock* bodyBlock = BasicBlock::Create(context_, name + ".body", function_);
    BasicBlock* exit = BasicBlock::Create(context_, name + ".exit", function_);
    b_.CreateBr(header);
    b_.SetInsertPoint(header);
    llvm::PHINode* index = b_.CreatePHI(i64_, 2, name);
    index->addIncoming(begin, preheader);
    b_.CreateCondBr(b_.CreateICmpSLT(index, end), bodyBlock, exit);
    b_.SetInsertPoint(bodyBlock);
    body(index);
    index->addIncoming(b_.CreateAdd(index, constant(1), name + ".next", true, true),
                       b_.GetInsertBlock());
    b_.CreateBr(header);
    b_.SetInsertPoint(exit);
  }

  void ifThen(LValue* condition, const std::function<void()>& body) {
    BasicBlock* then = BasicBlock::Create(context_, "then", function_);
    BasicBlock* join = BasicBlock::Create(context_, "join", function_);
    b_.CreateCondBr(condition, then, join);
    b_.SetInsertPoint(then);
    body();
    b_.CreateBr(join);
    b_.SetInsertPoint(join);
  }

  LValue* minimum(LValue* a, LValue* b) { return b_.CreateSelect(b_.CreateICmpSLT(a, b), a, b); }
  LValue* maximum(LValue* a, LValue* b) { return b_.CreateSelect(b_.CreateICmpSGT(a, b), a, b); }

  // f(v) for a libm function, lane by lane on vectors (libm's accuracy everywhere).
  LValue* callLibm(const char* name, LValue* v) {
    llvm::FunctionCallee f =
        module_.getOrInsertFunction(name, llvm::FunctionType::get(f32_, {f32_}, false));
    auto* vectorType = llvm::dyn_cast<llvm::FixedVectorType>(v->getType());
    if (!vectorType) return b_.CreateCall(f, {v});
    LValue* result = llvm::PoisonValue::get(vectorType);
    for (unsigned lane = 0; lane < vectorType->getNumElements(); ++lane)
      result = b_.CreateInsertElement(result, b_.CreateCall(f, {b_.CreateExtractElement(v, lane)}),
                                      lane);
    return result;
  }

  // Applies the op's epilogue steps to `v` (a float or a vector of floats);
  // `residual(i)` loads operand i's matching element(s).
  LValue* epilogue(const ir::Op& op, LValue* v, const std::function<LValue*(int)>& residual) {
    llvm::Type* type = v->getType();
    LValue* zero = llvm::ConstantFP::get(type, 0.0);
    for (const ir::EpilogueStep& step : op.epilogue) {
      switch (step.kind) {
        case ir::OpKind::Add:
          v = b_.CreateFAdd(v, residual(step.operand));
          break;
        case ir::OpKind::Relu:
          // select on v < 0 keeps NaN as NaN, like PyTorch.
          v = b_.CreateSelect(b_.CreateFCmpOLT(v, zero), zero, v);
          break;
        case ir::OpKind::Relu6: {
          LValue* six = llvm::ConstantFP::get(type, 6.0);
          v = b_.CreateSelect(b_.CreateFCmpOLT(v, zero), zero, v);
          v = b_.CreateSelect(b_.CreateFCmpOGT(v, six), six, v);
          break;
        }
        case ir::OpKind::LeakyRelu:
          v = b_.CreateSelect(b_.CreateFCmpOLT(v, zero),
                              b_.CreateFMul(v, llvm::ConstantFP::get(type, step.alpha)), v);
          break;
        case ir::OpKind::Sigmoid: {
          LValue* one = llvm::ConstantFP::get(type, 1.0);
          v = b_.CreateFDiv(one, b_.CreateFAdd(one, callLibm("expf", b_.CreateFNeg(v))));
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

  // Maps input position `pos` (may lie in the padding) to an index into the input, per
  // the padding mode. Returns the index and, for zeros, whether it is inside.
  std::pair<LValue*, LValue*> mapPosition(ir::PaddingMode mode, LValue* pos, LValue* width) {
    LValue* zero = constant(0);
    switch (mode) {
      case ir::PaddingMode::Zeros:
        return {pos, b_.CreateICmpULT(pos, width)};
      case ir::PaddingMode::Reflect: {
        // pad < width is checked before running, so one reflection suffices.
        LValue* left = b_.CreateSelect(b_.CreateICmpSLT(pos, zero), b_.CreateNeg(pos), pos);
        LValue* last = b_.CreateSub(width, constant(1));
        LValue* mirrored = b_.CreateSub(b_.CreateAdd(last, last), left);
        return {b_.CreateSelect(b_.CreateICmpSGT(left, last), mirrored, left), nullptr};
      }
      case ir::PaddingMode::Replicate: {
        LValue* last = b_.CreateSub(width, constant(1));
        LValue* low = b_.CreateSelect(b_.CreateICmpSLT(pos, zero), zero, pos);
        return {b_.CreateSelect(b_.CreateICmpSGT(low, last), last, low), nullptr};
      }
      case ir::PaddingMode::Circular: {
        // pad ≤ width is checked before running, so one wrap suffices.
        LValue* up = b_.CreateSelect(b_.CreateICmpSLT(pos, zero), b_.CreateAdd(pos, width), pos);
        return {b_.CreateSelect(b_.CreateICmpSGE(up, width), b_.CreateSub(up, width), up), nullptr};
      }
    }
    throw internalError("codegen: unknown padding mode");
  }

  // Calls body(index) for the input position of tap `k` at output `wo`, skipping taps
  // that fall in zero padding.
  void forTap(const ir::Op& op, LValue* wo, LValue* k, LValue* inWidth,
              const std::function<void(LValue*)>& body) {
    LValue* pos = b_.CreateSub(
        b_.CreateAdd(b_.CreateMul(wo, constant(op.stride)), b_.CreateMul(k, constant(op.dilation))),
        scalars_[kPadLeft]);
    auto [index, inside] = mapPosition(op.paddingMode, pos, inWidth);
    if (inside)
      ifThen(inside, [&, index = index] { body(index); });
    else
      body(index);
  }

  void emitScalarConv(const ir::Op& op) {
    const ir::Value& x = *op.operands[0];
    const ir::Value& weight = *op.operands[1];
    const ir::Value& y = *op.result;
    const int64_t inPerGroup = weight.inChannelsPerGroup;
    const int64_t outPerGroup = weight.outChannels / op.groups;
    LValue* inWidth = scalars_[kInputWidth];
    LValue* outWidth = scalars_[kOutputWidth];
    Strides in = strides(x, inWidth);
    Strides out = strides(y, outWidth);
    llvm::AllocaInst* accumulator = entryAlloca(f32_, "acc");

    loop(scalars_[kBatchBegin], scalars_[kBatchEnd], "n", [&](LValue* n) {
      loop(scalars_[kWidthBegin], scalars_[kWidthEnd], "wo", [&](LValue* wo) {
        loop(constant(0), constant(y.channels), "co", [&](LValue* co) {
          LValue* group = b_.CreateUDiv(co, constant(outPerGroup));
          LValue* firstChannel = b_.CreateMul(group, constant(inPerGroup));
          b_.CreateStore(llvm::ConstantFP::get(f32_, 0.0), accumulator);
          loop(constant(0), constant(weight.kernelWidth), "k", [&](LValue* k) {
            forTap(op, wo, k, inWidth, [&](LValue* index) {
              loop(constant(0), constant(inPerGroup), "ci", [&](LValue* ci) {
                LValue* xv = b_.CreateLoad(
                    f32_, address(buffers_[0], in, n, b_.CreateAdd(firstChannel, ci), index));
                LValue* wIndex = b_.CreateAdd(
                    b_.CreateMul(b_.CreateAdd(b_.CreateMul(co, constant(inPerGroup)), ci),
                                 constant(weight.kernelWidth)),
                    k);
                LValue* wv = b_.CreateLoad(f32_, b_.CreateInBoundsGEP(f32_, buffers_[1], wIndex));
                LValue* acc = b_.CreateLoad(f32_, accumulator);
                b_.CreateStore(b_.CreateFAdd(acc, b_.CreateFMul(xv, wv)), accumulator);
              });
            });
          });
          LValue* v = b_.CreateLoad(f32_, accumulator);
          if (op.hasBias)
            v = b_.CreateFAdd(v, b_.CreateLoad(f32_, b_.CreateInBoundsGEP(f32_, buffers_[2], co)));
          v = epilogue(op, v, [&](int i) {
            return b_.CreateLoad(
                f32_, address(buffers_[i], strides(*op.operands[i], outWidth), n, co, wo));
          });
          b_.CreateStore(v, address(buffers_.back(), out, n, co, wo));
        });
      });
    });
  }

  void emitMap(const ir::Op& op) {
    const ir::Value& x = *op.operands[0];
    const ir::Value& y = *op.result;
    LValue* width = scalars_[kOutputWidth];
    Strides in = strides(x, width);
    Strides out = strides(y, width);
    loop(scalars_[kBatchBegin], scalars_[kBatchEnd], "n", [&](LValue* n) {
      loop(scalars_[kWidthBegin], scalars_[kWidthEnd], "w", [&](LValue* w) {
        loop(constant(0), constant(y.channels), "c", [&](LValue* c) {
          LValue* v = b_.CreateLoad(f32_, address(buffers_[0], in, n, c, w));
          v = epilogue(op, v, [&](int i) {
            return b_.CreateLoad(f32_,
                                 address(buffers_[i], strides(*op.operands[i], width), n, c, w));
          });
          b_.CreateStore(v, address(buffers_.back(), out, n, c, w));
        });
      });
    });
  }

  // ---- DirectVector ---------------------------------------------------------------

  // Loads (or stores) the vector of channels [c0, c0 + lanes) at (n, w) of an activation,
  // masked to the channels that exist; contiguous when channels are innermost, a
  // gather (scatter) otherwise.
  LValue* channelPointers(LValue* base, const Strides& s, LValue* n, LValue* c0, LValue* w,
                          llvm::FixedVectorType* vectorType) {
    std::vector<llvm::Constant*> lanes;
    for (unsigned i = 0; i < vectorType->getNumElements(); ++i) lanes.push_back(b_.getInt64(i));
    LValue* laneChannels = b_.CreateAdd(b_.CreateVectorSplat(vectorType->getNumElements(), c0),
                                        llvm::ConstantVector::get(lanes));
    LValue* baseOffset = b_.CreateAdd(b_.CreateMul(n, s.batch), b_.CreateMul(w, s.width));
    LValue* offsets = b_.CreateAdd(
        b_.CreateVectorSplat(vectorType->getNumElements(), baseOffset),
        b_.CreateMul(laneChannels, b_.CreateVectorSplat(vectorType->getNumElements(), s.channel)));
    return b_.CreateGEP(f32_, base, offsets);
  }

  LValue* loadChannels(const ir::Value& v, LValue* base, LValue* width, LValue* n, LValue* c0,
                       LValue* w, LValue* mask, llvm::FixedVectorType* type) {
    Strides s = strides(v, width);
    if (v.layout == ir::Layout::NWC)
      return b_.CreateMaskedLoad(type, address(base, s, n, c0, w), llvm::Align(4), mask,
                                 llvm::ConstantFP::get(type, 0.0));
    return b_.CreateMaskedGather(type, channelPointers(base, s, n, c0, w, type), llvm::Align(4),
                                 mask, llvm::ConstantFP::get(type, 0.0));
  }

  void storeChannels(const ir::Value& v, LValue* value, LValue* base, LValue* width, LValue* n,
                     LValue* c0, LValue* w, LValue* mask, llvm::FixedVectorType* type) {
    Strides s = strides(v, width);
    if (v.layout == ir::Layout::NWC)
      b_.CreateMaskedStore(value, address(base, s, n, c0, w), llvm::Align(4), mask);
    else
      b_.CreateMaskedScatter(value, channelPointers(base, s, n, c0, w, type), llvm::Align(4), mask);
  }

  LValue* laneIndices(int lanes) {
    std::vector<llvm::Constant*> indices;
    for (int i = 0; i < lanes; ++i) indices.push_back(b_.getInt64(i));
    return llvm::ConstantVector::get(indices);
  }

  // Lanes whose channel c0 + lane exists.
  LValue* channelMask(LValue* c0, int lanes, int64_t channels) {
    return b_.CreateICmpSLT(b_.CreateAdd(b_.CreateVectorSplat(lanes, c0), laneIndices(lanes)),
                            b_.CreateVectorSplat(lanes, constant(channels)));
  }

  // Input values for output channels [c0, c0 + lanes) at input position `pos`: input
  // channel (c0 + lane) / multiplier. One contiguous load when that is c0 + lane in a
  // channels-innermost input, a gather otherwise.
  LValue* loadInputChannels(const ir::Value& x, LValue* base, LValue* width, LValue* n, LValue* c0,
                            LValue* pos, LValue* mask, llvm::FixedVectorType* type,
                            int64_t multiplier) {
    if (multiplier == 1) return loadChannels(x, base, width, n, c0, pos, mask, type);
    Strides s = strides(x, width);
    const unsigned lanes = type->getNumElements();
    LValue* channels =
        b_.CreateUDiv(b_.CreateAdd(b_.CreateVectorSplat(lanes, c0), laneIndices(lanes)),
                      b_.CreateVectorSplat(lanes, constant(multiplier)));
    LValue* baseOffset = b_.CreateAdd(b_.CreateMul(n, s.batch), b_.CreateMul(pos, s.width));
    LValue* offsets = b_.CreateAdd(b_.CreateVectorSplat(lanes, baseOffset),
                                   b_.CreateMul(channels, b_.CreateVectorSplat(lanes, s.channel)));
    return b_.CreateMaskedGather(type, b_.CreateGEP(f32_, base, offsets), llvm::Align(4), mask,
                                 llvm::ConstantFP::get(type, 0.0));
  }

  void emitDirectConv(const ir::Op& op, const Schedule& schedule) {
    const ir::Value& x = *op.operands[0];
    const ir::Value& weight = *op.operands[1];
    const ir::Value& y = *op.result;
    const int lanes = schedule.vectorWidth;
    const int vectors = schedule.vectorsPerTile;
    const int tile = schedule.widthTile;
    const int64_t block = schedule.channelBlock();
    const int64_t K = weight.kernelWidth, C = x.channels, I = weight.inChannelsPerGroup;
    const int64_t blocks = (y.channels + block - 1) / block;
    const bool depthwise = schedule.strategy == Strategy::DepthwiseVector;
    const int64_t multiplier = y.channels / x.channels;  // depthwise: outputs per input channel
    auto* vectorType = llvm::FixedVectorType::get(f32_, lanes);
    LValue* inWidth = scalars_[kInputWidth];
    LValue* outWidth = scalars_[kOutputWidth];
    LValue* padLeft = scalars_[kPadLeft];
    Strides in = strides(x, inWidth);

    // Output positions whose every tap lies inside the input: [interiorBegin, interiorEnd)
    // ∩ [widthBegin, widthEnd). Elsewhere taps are checked one position at a time.
    LValue* widthBegin = scalars_[kWidthBegin];
    LValue* widthEnd = scalars_[kWidthEnd];
    LValue* firstInside =
        b_.CreateSDiv(b_.CreateAdd(padLeft, constant(op.stride - 1)), constant(op.stride));
    LValue* lastReach =
        b_.CreateAdd(b_.CreateSub(inWidth, constant(1 + (K - 1) * op.dilation)), padLeft);
    LValue* endInside =
        b_.CreateSelect(b_.CreateICmpSLT(lastReach, constant(0)), constant(0),
                        b_.CreateAdd(b_.CreateSDiv(lastReach, constant(op.stride)), constant(1)));
    LValue* interiorBegin = minimum(maximum(firstInside, widthBegin), widthEnd);
    LValue* interiorEnd = maximum(minimum(endInside, widthEnd), interiorBegin);
    LValue* tiles = b_.CreateSDiv(b_.CreateSub(interiorEnd, interiorBegin), constant(tile));
    LValue* tiledEnd = b_.CreateAdd(interiorBegin, b_.CreateMul(tiles, constant(tile)));

    std::vector<llvm::AllocaInst*> accumulators;
    for (int i = 0; i < tile * vectors; ++i) accumulators.push_back(entryAlloca(vectorType, "acc"));

    loop(scalars_[kBatchBegin], scalars_[kBatchEnd], "n", [&](LValue* n) {
      loop(constant(0), constant(blocks), "cb", [&](LValue* cb) {
        LValue* firstChannel = b_.CreateMul(cb, constant(block));
        LValue* weights =
            b_.CreateInBoundsGEP(f32_, buffers_[1], b_.CreateMul(cb, constant(K * I * block)));

        // One tile of `count` positions from `wo0`; `checked` maps every tap.
        auto emitTile = [&](LValue* wo0, int count, bool checked) {
          for (int i = 0; i < count * vectors; ++i)
            b_.CreateStore(llvm::ConstantFP::get(vectorType, 0.0), accumulators[i]);
          loop(constant(0), constant(K), "k", [&](LValue* k) {
            LValue* tapWeights =
                b_.CreateInBoundsGEP(f32_, weights, b_.CreateMul(k, constant(I * block)));
            // Depthwise: output channel co reads input channel co / multiplier alone, so
            // each lane loads its own input value instead of sharing a broadcast.
            auto accumulateDepthwise = [&](const std::vector<LValue*>& positions) {
              for (int v = 0; v < vectors; ++v) {
                LValue* wv = b_.CreateAlignedLoad(
                    vectorType, b_.CreateConstInBoundsGEP1_64(f32_, tapWeights, v * lanes),
                    llvm::Align(4));
                LValue* c0 = b_.CreateAdd(firstChannel, constant(v * lanes));
                LValue* mask = channelMask(c0, lanes, y.channels);
                for (int r = 0; r < count; ++r) {
                  LValue* xv = loadInputChannels(x, buffers_[0], inWidth, n, c0, positions[r], mask,
                                                 vectorType, multiplier);
                  llvm::AllocaInst* acc = accumulators[r * vectors + v];
                  b_.CreateStore(b_.CreateIntrinsic(llvm::Intrinsic::fmuladd, {vectorType},
                                                    {xv, wv, b_.CreateLoad(vectorType, acc)}),
                                 acc);
                }
              }
            };
            auto accumulate = [&](const std::vector<LValue*>& positions) {
              if (depthwise) {
                accumulateDepthwise(positions);
                return;
              }
              loop(constant(0), constant(C), "ci", [&](LValue* ci) {
                LValue* row =
                    b_.CreateInBoundsGEP(f32_, tapWeights, b_.CreateMul(ci, constant(block)));
                std::vector<LValue*> w(vectors);
                for (int v = 0; v < vectors; ++v)
                  w[v] = b_.CreateAlignedLoad(vectorType,
                                              b_.CreateConstInBoundsGEP1_64(f32_, row, v * lanes),
                                              llvm::Align(4));
                for (int r = 0; r < count; ++r) {
                  LValue* xv = b_.CreateLoad(f32_, address(buffers_[0], in, n, ci, positions[r]));
                  LValue* splat = b_.CreateVectorSplat(lanes, xv);
                  for (int v = 0; v < vectors; ++v) {
                    llvm::AllocaInst* acc = accumulators[r * vectors + v];
                    LValue* sum = b_.CreateIntrinsic(llvm::Intrinsic::fmuladd, {vectorType},
                                                     {splat, w[v], b_.CreateLoad(vectorType, acc)});
                    b_.CreateStore(sum, acc);
                  }
                }
              });
            };
            if (checked) {
              forTap(op, wo0, k, inWidth, [&](LValue* index) { accumulate({index}); });
            } else {
              std::vector<LValue*> positions;
              for (int r = 0; r < count; ++r) {
                LValue* wo = b_.CreateAdd(wo0, constant(r));
                positions.push_back(
                    b_.CreateSub(b_.CreateAdd(b_.CreateMul(wo, constant(op.stride)),
                                              b_.CreateMul(k, constant(op.dilation))),
                                 padLeft));
              }
              accumulate(positions);
            }
          });
          for (int r = 0; r < count; ++r) {
            LValue* wo = b_.CreateAdd(wo0, constant(r));
            for (int v = 0; v < vectors; ++v) {
              LValue* c0 = b_.CreateAdd(firstChannel, constant(v * lanes));
              LValue* mask = channelMask(c0, lanes, y.channels);
              LValue* value = b_.CreateLoad(vectorType, accumulators[r * vectors + v]);
              if (op.hasBias)
                value = b_.CreateFAdd(
                    value,
                    b_.CreateAlignedLoad(vectorType, b_.CreateInBoundsGEP(f32_, buffers_[2], c0),
                                         llvm::Align(4)));
              value = epilogue(op, value, [&](int i) {
                return loadChannels(*op.operands[i], buffers_[i], outWidth, n, c0, wo, mask,
                                    vectorType);
              });
              storeChannels(y, value, buffers_.back(), outWidth, n, c0, wo, mask, vectorType);
            }
          }
        };

        loop(widthBegin, interiorBegin, "left", [&](LValue* wo) { emitTile(wo, 1, true); });
        loop(constant(0), tiles, "tile", [&](LValue* t) {
          emitTile(b_.CreateAdd(interiorBegin, b_.CreateMul(t, constant(tile))), tile, false);
        });
        loop(tiledEnd, widthEnd, "right", [&](LValue* wo) { emitTile(wo, 1, true); });
      });
    });
  }

  llvm::LLVMContext& context_;
  llvm::Module& module_;
  llvm::IRBuilder<> b_;
  llvm::Type* i64_;
  llvm::Type* f32_;
  llvm::PointerType* ptr_;
  llvm::Function* function_ = nullptr;
  std::vector<LValue*> buffers_;
  std::vector<LValue*> scalars_;
};

}  // namespace

std::unique_ptr<llvm::Module> emitKernels(const ir::Graph& graph,
                                          const std::vector<KernelCall>& calls,
                                          llvm::LLVMContext& context) {
  auto module = std::make_unique<llvm::Module>("cnv." + graph.name, context);
  KernelEmitter emitter(context, *module);
  for (const KernelCall& call : calls) emitter.emit(call);
  std::string problems;
  llvm::raw_string_ostream stream(problems);
  if (llvm::verifyModule(*module, &stream))
    throw internalError("internal error: generated LLVM IR is invalid: " + stream.str());
  return module;
}

}  // namespace cnv::codegen
