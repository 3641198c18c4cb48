#include "compiler/backend/Planner.h"

#include <fmt/format.h>

#include "cnv/Error.h"
#include "compiler/backend/TuningCache.h"

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

std::string scheduleName(const Strategy& strategy, const Schedule& schedule) {
  return fmt::format("{}:{}", strategy.name(), schedule.label());
}

}  // namespace

std::string scheduleName(const Kernel& kernel) {
  return scheduleName(*kernel.strategy, *kernel.schedule);
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

// Gives `kernel` the schedule called `name` ("Strategy:label"), if its strategy offers
// one by that label for the op.
bool tryNamedSchedule(Kernel& kernel, const std::string& name, const Target& target) {
  const size_t colon = name.find(':');
  if (colon == std::string::npos) return false;
  const Strategy* strategy = findStrategy(std::string_view(name).substr(0, colon));
  if (!strategy) return false;
  for (auto& schedule : strategy->schedules(*kernel.op, target)) {
    if (schedule->label() != name.substr(colon + 1)) continue;
    kernel.strategy = strategy;
    kernel.schedule = std::move(schedule);
    return true;
  }
  return false;
}

void chooseSchedule(Kernel& kernel, size_t index, const Target& target,
                    const PlanningChoices& choices) {
  if (auto named = choices.named.find(index);
      named != choices.named.end() && tryNamedSchedule(kernel, named->second, target)) {
    kernel.chosenBy = Kernel::ChosenBy::Named;
    return;
  }
  if (choices.preferred && tryStrategy(kernel, *choices.preferred, target)) {
    kernel.chosenBy = Kernel::ChosenBy::Strategy;
    return;
  }
  if (choices.tuning && kernel.op->kind == ir::OpKind::Conv1d)
    if (const TunedChoice* tuned = choices.tuning->find(machineKey(target), convKey(*kernel.op));
        tuned && tryNamedSchedule(kernel, tuned->schedule, target)) {
      kernel.chosenBy = Kernel::ChosenBy::TuningCache;
      return;
    }
  for (const Strategy* strategy : strategyList())
    if (strategy->suits(*kernel.op, target) && tryStrategy(kernel, *strategy, target)) return;
  throw internalError(
      fmt::format("internal error: no kernel strategy computes {}", ir::name(kernel.op->kind)));
}

}  // namespace

std::vector<Kernel> planKernels(const ir::Graph& graph, const Target& target,
                                const PlanningChoices& choices) {
  std::vector<Kernel> kernels;
  for (size_t i = 0; i < graph.ops.size(); ++i) {
    const ir::Op& op = *graph.ops[i];
    Kernel kernel;
    kernel.symbol = fmt::format("cnv_{}_{}_{}", graph.name, i, ir::name(op.kind));
    kernel.op = &op;
    chooseSchedule(kernel, i, target, choices);
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

std::vector<std::string> candidateSchedules(const ir::Op& op, const Target& target) {
  std::vector<std::string> names;
  for (const Strategy* strategy : strategyList()) {
    if (!strategy->tunable()) continue;
    for (const auto& schedule : strategy->schedules(op, target))
      names.push_back(scheduleName(*strategy, *schedule));
  }
  return names;
}

}  // namespace cnv::backend
