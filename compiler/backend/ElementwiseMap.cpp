// The ElementwiseMap strategy: a standalone `map` op (an elementwise op or a layout copy
// that nothing could be fused into), one element at a time, channels innermost.
#include <fmt/format.h>

#include "compiler/backend/KernelBuilder.h"

namespace cnv::backend {
namespace {

class ElementwiseMapSchedule final : public Schedule {
 public:
  explicit ElementwiseMapSchedule(const ir::Op& op) : Schedule(op, {}) {}
  std::string describeLoops() const override;
  void emit(KernelBuilder& kb) const override;
};

std::string ElementwiseMapSchedule::describeLoops() const {
  return fmt::format(
      "    for w in [width_begin, width_end)\n      for c in [0, {})\n        load, epilogue, "
      "store one element\n",
      op_.result->channels);
}

void ElementwiseMapSchedule::emit(KernelBuilder& kb) const {
  Strides in = kb.strides(*op_.operands[0], kb.scalars[kOutputWidth]);
  kb.loop(kb.scalars[kBatchBegin], kb.scalars[kBatchEnd], "n", [&](llvm::Value* n) {
    kb.loop(kb.scalars[kWidthBegin], kb.scalars[kWidthEnd], "w", [&](llvm::Value* w) {
      kb.loop(kb.constant(0), kb.constant(op_.result->channels), "c", [&](llvm::Value* c) {
        llvm::Value* v = kb.b.CreateLoad(kb.f32, kb.address(kb.buffers[0], in, n, c, w));
        kb.storeElement(op_, v, nullptr, n, c, w);
      });
    });
  });
}

}  // namespace

CNV_SINGLE_SCHEDULE_STRATEGY(ElementwiseMap, ir::OpKind::Map)

}  // namespace cnv::backend
