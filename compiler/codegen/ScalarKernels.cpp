// The Scalar strategy: one output element at a time. It serves every conv the vector
// strategies do not (grouped convs with several input channels per group) and every
// standalone elementwise map.
#include "compiler/codegen/KernelBuilder.h"

namespace cnv::codegen {

void emitScalarConv(KernelBuilder& kb, const ir::Op& op) {
  auto& b = kb.b;
  const ir::Value& x = *op.operands[0];
  const ir::Value& weight = *op.operands[1];
  const ir::Value& y = *op.result;
  const int64_t inPerGroup = weight.inChannelsPerGroup;
  const int64_t outPerGroup = weight.outChannels / op.groups;
  LValue* inWidth = kb.scalars[kInputWidth];
  LValue* outWidth = kb.scalars[kOutputWidth];
  Strides in = kb.strides(x, inWidth);
  Strides out = kb.strides(y, outWidth);
  llvm::AllocaInst* accumulator = kb.entryAlloca(kb.f32, "acc");

  kb.loop(kb.scalars[kBatchBegin], kb.scalars[kBatchEnd], "n", [&](LValue* n) {
    kb.loop(kb.scalars[kWidthBegin], kb.scalars[kWidthEnd], "wo", [&](LValue* wo) {
      kb.loop(kb.constant(0), kb.constant(y.channels), "co", [&](LValue* co) {
        LValue* group = b.CreateUDiv(co, kb.constant(outPerGroup));
        LValue* firstChannel = b.CreateMul(group, kb.constant(inPerGroup));
        b.CreateStore(llvm::ConstantFP::get(kb.f32, 0.0), accumulator);
        kb.loop(kb.constant(0), kb.constant(weight.kernelWidth), "k", [&](LValue* k) {
          kb.forTap(op, wo, k, inWidth, [&](LValue* index) {
            kb.loop(kb.constant(0), kb.constant(inPerGroup), "ci", [&](LValue* ci) {
              LValue* xv = b.CreateLoad(
                  kb.f32, kb.address(kb.buffers[0], in, n, b.CreateAdd(firstChannel, ci), index));
              LValue* wIndex =
                  b.CreateAdd(b.CreateMul(b.CreateAdd(b.CreateMul(co, kb.constant(inPerGroup)), ci),
                                          kb.constant(weight.kernelWidth)),
                              k);
              LValue* wv = b.CreateLoad(kb.f32, b.CreateInBoundsGEP(kb.f32, kb.buffers[1], wIndex));
              LValue* acc = b.CreateLoad(kb.f32, accumulator);
              b.CreateStore(b.CreateFAdd(acc, b.CreateFMul(xv, wv)), accumulator);
            });
          });
        });
        LValue* v = b.CreateLoad(kb.f32, accumulator);
        if (op.hasBias)
          v = b.CreateFAdd(v, b.CreateLoad(kb.f32, b.CreateInBoundsGEP(kb.f32, kb.buffers[2], co)));
        v = kb.epilogue(op, v, [&](int i) {
          return b.CreateLoad(
              kb.f32, kb.address(kb.buffers[i], kb.strides(*op.operands[i], outWidth), n, co, wo));
        });
        b.CreateStore(v, kb.address(kb.buffers.back(), out, n, co, wo));
      });
    });
  });
}

void emitMap(KernelBuilder& kb, const ir::Op& op) {
  auto& b = kb.b;
  const ir::Value& x = *op.operands[0];
  const ir::Value& y = *op.result;
  LValue* width = kb.scalars[kOutputWidth];
  Strides in = kb.strides(x, width);
  Strides out = kb.strides(y, width);
  kb.loop(kb.scalars[kBatchBegin], kb.scalars[kBatchEnd], "n", [&](LValue* n) {
    kb.loop(kb.scalars[kWidthBegin], kb.scalars[kWidthEnd], "w", [&](LValue* w) {
      kb.loop(kb.constant(0), kb.constant(y.channels), "c", [&](LValue* c) {
        LValue* v = b.CreateLoad(kb.f32, kb.address(kb.buffers[0], in, n, c, w));
        v = kb.epilogue(op, v, [&](int i) {
          return b.CreateLoad(
              kb.f32, kb.address(kb.buffers[i], kb.strides(*op.operands[i], width), n, c, w));
        });
        b.CreateStore(v, kb.address(kb.buffers.back(), out, n, c, w));
      });
    });
  });
}

}  // namespace cnv::codegen
