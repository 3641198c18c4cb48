// `cnvc lint`: a warning, with a note saying how to write it there, for each construct a
// target framework cannot express directly or expresses with a different meaning. The
// rules and their sources are listed in docs/porting.md.
#pragma once

#include <vector>

#include "compiler/frontend/Diagnostics.h"
#include "compiler/ir/Ir.h"

namespace cnv::port {

enum class Framework { Pytorch, Keras };

// `graph`: the IR stopped after padding-resolution (portPipeline()). Reports each
// finding to `diagnostics` as a warning and a note at the op's position.
void lint(const ir::Graph& graph, const std::vector<Framework>& targets,
          DiagnosticEngine& diagnostics);

}  // namespace cnv::port
