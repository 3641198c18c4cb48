// The ScalarConv strategy: one output element at a time, every tap mapped by the
// padding mode. It computes any conv, and is what the grouped convs the vector
// strategies do not take (several input channels per group) get.
#include <fmt/format.h>

#include "compiler/backend/KernelBuilder.h"

namespace cnv::backend {
namespace {

class ScalarConvSchedule final : public Schedule {
 public:
  explicit ScalarConvSchedule(const ir::Op& op) : Schedule(op, {}) {}

  std::string describeLoops() const override {
    const ir::Value& w = *op_.operands[1];
    std::string out = "    for wo in [width_begin, width_end)\n";
    out += fmt::format("      for co in [0, {})\n", op_.result->channels);
    out += fmt::format(
        "        for k in [0, {}): pos = wo*{} + k*{} - pad_left, mapped by {} padding\n",
        w.kernelWidth, op_.stride, op_.dilation, ir::name(op_.paddingMode));
    out +=
        fmt::format("          for ci in [0, {}): acc += x[n, group*{} + ci, pos] * w[co][ci][k]\n",
                    w.inChannelsPerGroup, w.inChannelsPerGroup);
    out += "        epilogue, store one element\n";
    return out;
  }

  void emit(KernelBuilder& kb) const override {
    auto& b = kb.b;
    const ir::Value& x = *op_.operands[0];
    const ir::Value& weight = *op_.operands[1];
    const ir::Value& y = *op_.result;
    const int64_t inPerGroup = weight.inChannelsPerGroup;
    const int64_t outPerGroup = weight.outChannels / op_.groups;
    llvm::Value* inWidth = kb.scalars[kInputWidth];
    Strides in = kb.strides(x, inWidth);
    llvm::AllocaInst* accumulator = kb.entryAlloca(kb.f32, "acc");

    kb.loop(kb.scalars[kBatchBegin], kb.scalars[kBatchEnd], "n", [&](llvm::Value* n) {
      kb.loop(kb.scalars[kWidthBegin], kb.scalars[kWidthEnd], "wo", [&](llvm::Value* wo) {
        kb.loop(kb.constant(0), kb.constant(y.channels), "co", [&](llvm::Value* co) {
          llvm::Value* group = b.CreateUDiv(co, kb.constant(outPerGroup));
          llvm::Value* firstChannel = b.CreateMul(group, kb.constant(inPerGroup));
          b.CreateStore(llvm::ConstantFP::get(kb.f32, 0.0), accumulator);
          kb.loop(kb.constant(0), kb.constant(weight.kernelWidth), "k", [&](llvm::Value* k) {
            kb.forTap(op_, wo, k, inWidth, [&](llvm::Value* index) {
              kb.loop(kb.constant(0), kb.constant(inPerGroup), "ci", [&](llvm::Value* ci) {
                llvm::Value* xv = b.CreateLoad(
                    kb.f32, kb.address(kb.buffers[0], in, n, b.CreateAdd(firstChannel, ci), index));
                llvm::Value* wIndex = b.CreateAdd(
                    b.CreateMul(b.CreateAdd(b.CreateMul(co, kb.constant(inPerGroup)), ci),
                                kb.constant(weight.kernelWidth)),
                    k);
                llvm::Value* wv =
                    b.CreateLoad(kb.f32, b.CreateInBoundsGEP(kb.f32, kb.buffers[1], wIndex));
                llvm::Value* acc = b.CreateLoad(kb.f32, accumulator);
                b.CreateStore(b.CreateFAdd(acc, b.CreateFMul(xv, wv)), accumulator);
              });
            });
          });
          llvm::Value* bias =
              op_.hasBias ? b.CreateLoad(kb.f32, b.CreateInBoundsGEP(kb.f32, kb.buffers[2], co))
                          : nullptr;
          kb.storeElement(op_, b.CreateLoad(kb.f32, accumulator), bias, n, co, wo);
        });
      });
    });
  }
};

}  // namespace

CNV_SINGLE_SCHEDULE_STRATEGY(ScalarConv, ir::OpKind::Conv1d)

}  // namespace cnv::backend
