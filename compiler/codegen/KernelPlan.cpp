#include <fmt/format.h>

#include "compiler/codegen/Kernels.h"

namespace cnv::codegen {

std::vector<KernelCall> planKernels(const ir::Graph& graph) {
  std::vector<KernelCall> calls;
  for (size_t i = 0; i < graph.ops.size(); ++i) {
    const ir::Op& op = *graph.ops[i];
    KernelCall call;
    call.symbol = fmt::format("cnv_{}_{}_{}", graph.name, i, ir::name(op.kind));
    call.op = &op;
    call.buffers.assign(op.operands.begin(), op.operands.end());
    call.buffers.push_back(op.result);
    call.batch = op.result->batch;
    call.inputWidth = op.operands[0]->width;
    call.outputWidth = op.result->width;
    call.padLeft = op.kind == ir::OpKind::Conv1d ? op.padLeft : ir::SymExpr(0);
    calls.push_back(std::move(call));
  }
  return calls;
}

// Kernels read weights as [O][I/groups][K], PyTorch's order, so OIW weights pass
// through and WIO ([K][I/groups][O]) weights are transposed once, at bind time.
int64_t packedWeightSize(const ir::Value& w) {
  return w.outChannels * w.inChannelsPerGroup * w.kernelWidth;
}

void packWeight(const ir::Value& w, const float* user, float* packed) {
  const int64_t O = w.outChannels, I = w.inChannelsPerGroup, K = w.kernelWidth;
  if (w.weightLayout == ir::WeightLayout::OIW) {
    std::copy(user, user + O * I * K, packed);
    return;
  }
  for (int64_t o = 0; o < O; ++o)
    for (int64_t i = 0; i < I; ++i)
      for (int64_t k = 0; k < K; ++k) packed[(o * I + i) * K + k] = user[(k * I + i) * O + o];
}

}  // namespace cnv::codegen
