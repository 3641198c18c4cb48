// The runtime's door for the project's own tools (cnvc): the IR behind a Model. Not
// part of the public API.
#pragma once

#include "cnv/cnv.h"
#include "compiler/Compiler.h"

namespace cnv {

struct ModelFactory {
  // Plans, JIT-compiles and wraps `compiled`: Model::fromFile and fromSource after
  // parsing.
  static Model fromIr(CompiledIr compiled, const CompileOptions& options);
  static const ir::Graph& graph(const Model& model);
};

}  // namespace cnv
