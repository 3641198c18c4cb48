// The ElementwiseMap strategy: a standalone `map` op (an elementwise op or a layout copy
// that nothing could be fused into), one element at a time, channels innermost.
#include <fmt/format.h>

#include "compiler/backend/KernelBuilder.h"

namespace cnv::backend {
namespace {

class ElementwiseMapSchedule final : public Schedule {
 public:
  using Schedule::Schedule;
  std::string_view strategy() const override { return "ElementwiseMap"; }

  std::string describeLoops() const override {
    std::string out = "    for w in [width_begin, width_end)\n";
    out += fmt::format("      for c in [0, {})\n", op_.result->channels);
    out += "        load, epilogue, store one element\n";
    return out;
  }

  void emit(KernelBuilder& kb) const override {
    auto& b = kb.b;
    const ir::Value& x = *op_.operands[0];
    const ir::Value& y = *op_.result;
    llvm::Value* width = kb.scalars[kOutputWidth];
    Strides in = kb.strides(x, width);
    Strides out = kb.strides(y, width);
    kb.loop(kb.scalars[kBatchBegin], kb.scalars[kBatchEnd], "n", [&](llvm::Value* n) {
      kb.loop(kb.scalars[kWidthBegin], kb.scalars[kWidthEnd], "w", [&](llvm::Value* w) {
        kb.loop(kb.constant(0), kb.constant(y.channels), "c", [&](llvm::Value* c) {
          llvm::Value* v = b.CreateLoad(kb.f32, kb.address(kb.buffers[0], in, n, c, w));
          v = kb.finalValue(op_, v, nullptr, [&](int i) {
            return b.CreateLoad(
                kb.f32, kb.address(kb.buffers[i], kb.strides(*op_.operands[i], width), n, c, w));
          });
          b.CreateStore(v, kb.address(kb.buffers.back(), out, n, c, w));
        });
      });
    });
  }
};

class ElementwiseMap final : public Strategy {
 public:
  std::string_view name() const override { return "ElementwiseMap"; }
  std::vector<std::unique_ptr<Schedule>> schedules(const ir::Op& op, const Target&) const override {
    std::vector<std::unique_ptr<Schedule>> result;
    if (op.kind == ir::OpKind::Map) result.push_back(std::make_unique<ElementwiseMapSchedule>(op));
    return result;
  }
};

}  // namespace

const Strategy& ElementwiseMapStrategy() {
  static const ElementwiseMap strategy;
  return strategy;
}

}  // namespace cnv::backend
