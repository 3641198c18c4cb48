#include "compiler/backend/Planner.h"

#include <fmt/format.h>

#include "cnv/Error.h"

namespace cnv::backend {

#define CNV_STRATEGY(name) const Strategy& name##Strategy();
#include "compiler/backend/Strategies.def"
#undef CNV_STRATEGY

const std::vector<const Strategy*>& strategyList() {
  static const std::vector<const Strategy*> list = {
#define CNV_STRATEGY(name) &name##Strategy(),
#include "compiler/backend/Strategies.def"
#undef CNV_STRATEGY
  };
  return list;
}

const Strategy* findStrategy(std::string_view name) {
  for (const Strategy* strategy : strategyList())
    if (strategy->name() == name) return strategy;
  return nullptr;
}

namespace {

// Gives `kernel` the preferred schedule of `strategy`, if it has one for the op.
bool tryStrategy(Kernel& kernel, const Strategy& strategy, const Target& target) {
  auto schedules = strategy.schedules(*kernel.op, target);
  if (schedules.empty()) return false;
  kernel.strategy = &strategy;
  kernel.schedule = std::move(schedules.front());
  return true;
}

// `preferred` if it can compute the op, else the first strategy of the list that can
// and suits it.
void chooseSchedule(Kernel& kernel, const Target& target, const Strategy* preferred) {
  if (preferred && tryStrategy(kernel, *preferred, target)) return;
  for (const Strategy* strategy : strategyList())
    if (strategy->suits(*kernel.op) && tryStrategy(kernel, *strategy, target)) return;
  throw internalError(
      fmt::format("internal error: no kernel strategy computes {}", ir::name(kernel.op->kind)));
}

}  // namespace

std::vector<Kernel> planKernels(const ir::Graph& graph, const Target& target,
                                const Strategy* preferred) {
  std::vector<Kernel> kernels;
  for (size_t i = 0; i < graph.ops.size(); ++i) {
    const ir::Op& op = *graph.ops[i];
    Kernel kernel;
    kernel.symbol = fmt::format("cnv_{}_{}_{}", graph.name, i, ir::name(op.kind));
    kernel.op = &op;
    chooseSchedule(kernel, target, preferred);
    kernel.buffers.assign(op.operands.begin(), op.operands.end());
    kernel.buffers.push_back(op.result);
    kernel.batch = op.result->batch;
    kernel.inputWidth = op.operands[0]->width;
    kernel.outputWidth = op.result->width;
    kernel.padLeft = op.kind == ir::OpKind::Conv1d ? op.padLeft : ir::SymExpr(0);
    kernel.macsPerPosition = static_cast<double>(op.result->channels);
    if (op.kind == ir::OpKind::Conv1d)
      kernel.macsPerPosition *= static_cast<double>(op.operands[1]->inChannelsPerGroup) *
                                static_cast<double>(op.operands[1]->kernelWidth);
    kernels.push_back(std::move(kernel));
  }
  return kernels;
}

}  // namespace cnv::backend
