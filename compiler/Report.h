// `cnvc compile --report`: what the compiler did to the model, read off the final IR
// and the kernels planned for it.
#pragma once

#include <string>
#include <vector>

#include "compiler/backend/Kernel.h"
#include "compiler/ir/Ir.h"

namespace cnv {

// Kernels with their FLOPs, fusions, folded layout changes, weight packing (per the
// kernels' schedules) and the transposes that remain (and why).
std::string formatReport(const ir::Graph& graph, const std::vector<backend::Kernel>& kernels);

}  // namespace cnv
