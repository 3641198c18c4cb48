// Planning: one kernel per op of a graph that went through the whole pipeline, each
// with the preferred schedule of the first strategy in Strategies.def that can compute
// the op and suits it.
#pragma once

#include <string>
#include <vector>

#include "compiler/backend/Kernel.h"
#include "compiler/backend/Target.h"

namespace cnv::backend {

// `preferred`, when given, is tried first for every op; ops it cannot compute go to
// the list as usual.
std::vector<Kernel> planKernels(const ir::Graph& graph, const Target& target,
                                const Strategy* preferred = nullptr);

// The loop nests of `kernels`, as `cnvc compile --emit=loops` prints them.
std::string describeLoops(const std::vector<Kernel>& kernels);

}  // namespace cnv::backend
