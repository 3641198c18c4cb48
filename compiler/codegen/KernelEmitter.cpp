// LLVM IR for the kernels: plain loop nests, one element at a time. Layouts are folded
// into address arithmetic (per-layout strides), padding into index mapping, and the
// epilogue runs on each element before its single store.
#include <llvm/IR/IRBuilder.h>
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
    for (unsigned i = 0; i < 2; ++i) {
      function_->addParamAttr(i, llvm::Attribute::NoAlias);
    }
    b_.SetInsertPoint(BasicBlock::Create(context_, "entry", function_));
    LValue* buffers = function_->getArg(0);
    LValue* scalars = function_->getArg(1);
    for (size_t i = 0; i < call.buffers.size(); ++i)
      buffers_.push_back(b_.CreateLoad(ptr_, b_.CreateConstInBoundsGEP1_64(ptr_, buffers, i),
                                       fmt("buf", i)));
    for (int i = 0; i < kScalarCount; ++i)
      scalars_.push_back(b_.CreateLoad(i64_, b_.CreateConstInBoundsGEP1_64(i64_, scalars, i),
                                       fmt("scalar", i)));
    accumulator_ = b_.CreateAlloca(f32_, nullptr, "acc");

    const ir::Op& op = *call.op;
    if (op.kind == ir::OpKind::Conv1d)
      emitConv(op);
    else
      emitMap(op);
    b_.CreateRetVoid();
    buffers_.clear();
    scalars_.clear();
  }

 private:
  static std::string fmt(const char* prefix, size_t i) { return prefix + std::to_string(i); }
  LValue* constant(int64_t v) { return b_.getInt64(v); }

  Strides strides(const ir::Value& v, LValue* width) {
    LValue* channels = constant(v.channels);
    LValue* batch = b_.CreateMul(width, channels, "batch.stride", true, true);
    if (v.layout == ir::Layout::NWC) return {batch, constant(1), channels};
    return {batch, width, constant(1)};
  }

  LValue* address(LValue* base, const Strides& s, LValue* n, LValue* c, LValue* w) {
    LValue* offset = b_.CreateAdd(
        b_.CreateAdd(b_.CreateMul(n, s.batch, "", true, true), b_.CreateMul(c, s.channel, "", true, true),
                     "", true, true),
        b_.CreateMul(w, s.width, "", true, true), "", true, true);
    return b_.CreateInBoundsGEP(f32_, base, offset);
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

  llvm::FunctionCallee libm(const char* name) {
    return module_.getOrInsertFunction(name, llvm::FunctionType::get(f32_, {f32_}, false));
  }

  // Applies the op's epilogue steps to `v`, the value of element (n, c, w).
  LValue* epilogue(const ir::Op& op, LValue* v, LValue* n, LValue* c, LValue* w,
                   LValue* outputWidth) {
    LValue* zero = llvm::ConstantFP::get(f32_, 0.0);
    for (const ir::EpilogueStep& step : op.epilogue) {
      switch (step.kind) {
        case ir::OpKind::Add: {
          const ir::Value& residual = *op.operands[step.operand];
          LValue* at = address(buffers_[step.operand], strides(residual, outputWidth), n, c, w);
          v = b_.CreateFAdd(v, b_.CreateLoad(f32_, at));
          break;
        }
        case ir::OpKind::Relu:
          // select on v < 0 keeps NaN as NaN, like PyTorch.
          v = b_.CreateSelect(b_.CreateFCmpOLT(v, zero), zero, v);
          break;
        case ir::OpKind::Relu6: {
          LValue* six = llvm::ConstantFP::get(f32_, 6.0);
          v = b_.CreateSelect(b_.CreateFCmpOLT(v, zero), zero, v);
          v = b_.CreateSelect(b_.CreateFCmpOGT(v, six), six, v);
          break;
        }
        case ir::OpKind::LeakyRelu:
          v = b_.CreateSelect(b_.CreateFCmpOLT(v, zero),
                              b_.CreateFMul(v, llvm::ConstantFP::get(f32_, step.alpha)), v);
          break;
        case ir::OpKind::Sigmoid: {
          LValue* e = b_.CreateCall(libm("expf"), {b_.CreateFNeg(v)});
          v = b_.CreateFDiv(llvm::ConstantFP::get(f32_, 1.0),
                            b_.CreateFAdd(llvm::ConstantFP::get(f32_, 1.0), e));
          break;
        }
        case ir::OpKind::Tanh: v = b_.CreateCall(libm("tanhf"), {v}); break;
        default: throw internalError("codegen: unexpected epilogue step");
      }
    }
    return v;
  }

  // Maps input position `pos` (may lie in the padding) to an index into the input, per
  // the padding mode. Returns the index and, for zeros, whether it is inside.
  std::pair<LValue*, LValue*> mapPosition(ir::PaddingMode mode, LValue* pos, LValue* width) {
    LValue* zero = constant(0);
    switch (mode) {
      case ir::PaddingMode::Zeros: return {pos, b_.CreateICmpULT(pos, width)};
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

  void emitConv(const ir::Op& op) {
    const ir::Value& x = *op.operands[0];
    const ir::Value& weight = *op.operands[1];
    const ir::Value& y = *op.result;
    const int64_t groups = op.groups;
    const int64_t inPerGroup = weight.inChannelsPerGroup;
    const int64_t outPerGroup = weight.outChannels / groups;
    const int64_t K = weight.kernelWidth;
    LValue* inWidth = scalars_[kInputWidth];
    LValue* outWidth = scalars_[kOutputWidth];
    LValue* padLeft = scalars_[kPadLeft];
    Strides in = strides(x, inWidth);
    Strides out = strides(y, outWidth);
    LValue* input = buffers_[0];
    LValue* weights = buffers_[1];
    LValue* output = buffers_.back();

    loop(scalars_[kBatchBegin], scalars_[kBatchEnd], "n", [&](LValue* n) {
      loop(constant(0), outWidth, "wo", [&](LValue* wo) {
        loop(constant(0), constant(y.channels), "co", [&](LValue* co) {
          LValue* group = b_.CreateUDiv(co, constant(outPerGroup));
          LValue* firstChannel = b_.CreateMul(group, constant(inPerGroup));
          b_.CreateStore(llvm::ConstantFP::get(f32_, 0.0), accumulator_);
          loop(constant(0), constant(K), "k", [&](LValue* k) {
            LValue* pos = b_.CreateSub(
                b_.CreateAdd(b_.CreateMul(wo, constant(op.stride)), b_.CreateMul(k, constant(op.dilation))),
                padLeft);
            auto [index, inside] = mapPosition(op.paddingMode, pos, inWidth);
            auto taps = [&, index = index] {
              loop(constant(0), constant(inPerGroup), "ci", [&](LValue* ci) {
                LValue* xv = b_.CreateLoad(
                    f32_, address(input, in, n, b_.CreateAdd(firstChannel, ci), index));
                LValue* wIndex =
                    b_.CreateAdd(b_.CreateMul(b_.CreateAdd(b_.CreateMul(co, constant(inPerGroup)), ci),
                                              constant(K)),
                                 k);
                LValue* wv = b_.CreateLoad(f32_, b_.CreateInBoundsGEP(f32_, weights, wIndex));
                LValue* acc = b_.CreateLoad(f32_, accumulator_);
                b_.CreateStore(b_.CreateFAdd(acc, b_.CreateFMul(xv, wv)), accumulator_);
              });
            };
            if (inside)
              ifThen(inside, taps);
            else
              taps();
          });
          LValue* v = b_.CreateLoad(f32_, accumulator_);
          if (op.hasBias)
            v = b_.CreateFAdd(v, b_.CreateLoad(f32_, b_.CreateInBoundsGEP(f32_, buffers_[2], co)));
          v = epilogue(op, v, n, co, wo, outWidth);
          b_.CreateStore(v, address(output, out, n, co, wo));
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
      loop(constant(0), width, "w", [&](LValue* w) {
        loop(constant(0), constant(y.channels), "c", [&](LValue* c) {
          LValue* v = b_.CreateLoad(f32_, address(buffers_[0], in, n, c, w));
          v = epilogue(op, v, n, c, w, width);
          b_.CreateStore(v, address(buffers_.back(), out, n, c, w));
        });
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
  LValue* accumulator_ = nullptr;
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
