// Planning: one kernel per op of a graph that went through the whole pipeline, each
// with the preferred schedule of the first strategy in Strategies.def that can compute
// the op and suits it.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "compiler/backend/Kernel.h"
#include "compiler/backend/Target.h"

namespace cnv::backend {

// The strategies in the order the planner tries them (Strategies.def).
const std::vector<const Strategy*>& strategyList();
// The strategy named `name`, or null.
const Strategy* findStrategy(std::string_view name);

// `preferred`, when given, is tried first for every op; ops it cannot compute go to
// the list as usual.
std::vector<Kernel> planKernels(const ir::Graph& graph, const Target& target,
                                const Strategy* preferred = nullptr);

}  // namespace cnv::backend
