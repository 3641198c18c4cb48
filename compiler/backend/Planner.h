// Planning: one kernel per op of a graph that went through the whole pipeline. An op
// gets, in this order: the schedule named for it (the tuner's candidates), the preferred
// strategy's (--strategy), the tuning cache's measured best for this machine, or the
// preferred schedule of the first strategy in Strategies.def that can compute the op
// and suits it. A named schedule that the strategies do not offer for the op is passed
// over, never trusted.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "compiler/backend/Kernel.h"
#include "compiler/backend/Target.h"

namespace cnv::backend {

class TuningCache;

// The strategies in the order the planner tries them (Strategies.def).
const std::vector<const Strategy*>& strategyList();
// The strategy named `name`, or null.
const Strategy* findStrategy(std::string_view name);

struct PlanningChoices {
  // Tried first for every op; ops it cannot compute go on down the order above.
  const Strategy* preferred = nullptr;
  // Schedules by op index, as "Strategy:label" (Schedule::label).
  std::map<size_t, std::string> named;
  const TuningCache* tuning = nullptr;  // null: none
};

std::vector<Kernel> planKernels(const ir::Graph& graph, const Target& target,
                                const PlanningChoices& choices = {});

// "Strategy:label" of every schedule that the tuner should time for `op`: those of
// every tunable strategy that can compute it, whether or not it suits the op.
std::vector<std::string> candidateSchedules(const ir::Op& op, const Target& target);
// "Strategy:label" of `kernel`'s schedule.
std::string scheduleName(const Kernel& kernel);

}  // namespace cnv::backend
