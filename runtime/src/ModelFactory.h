// The runtime's door for the project's own tools (cnvc): a Model from IR they have
// already compiled, and the IR behind a Model. Not part of the public API.
#pragma once

#include "cnv/cnv.h"
#include "compiler/Compiler.h"

namespace cnv {

struct ModelFactory {
  // Plans, JIT-compiles and wraps `compiled`, as Model::fromSource does after parsing.
  static Model fromIr(CompiledIr compiled, const CompileOptions& options);
  static const ir::Graph& graph(const Model& model);
};

}  // namespace cnv
