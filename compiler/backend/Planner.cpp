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

std::unique_ptr<Schedule> chooseSchedule(const ir::Op& op, const Target& target,
                                         const Strategy* preferred) {
  if (preferred) {
    auto schedules = preferred->schedules(op, target);
    if (!schedules.empty()) return std::move(schedules.front());
  }
  for (const Strategy* strategy : strategyList()) {
    if (!strategy->suits(op)) continue;
    auto schedules = strategy->schedules(op, target);
    if (!schedules.empty()) return std::move(schedules.front());
  }
  throw internalError(
      fmt::format("internal error: no kernel strategy computes {}", ir::name(op.kind)));
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
    kernel.schedule = chooseSchedule(op, target, preferred);
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

std::string describeLoops(const std::vector<Kernel>& kernels) {
  std::string out;
  for (const Kernel& kernel : kernels) {
    out += fmt::format("kernel @{} computes %{} ({}) with {}\n", kernel.symbol,
                       kernel.op->result->name, ir::name(kernel.op->kind),
                       kernel.schedule->strategy());
    out += "  for n in [batch_begin, batch_end)\n";
    out += kernel.schedule->describeLoops();
  }
  return out;
}

}  // namespace cnv::backend
