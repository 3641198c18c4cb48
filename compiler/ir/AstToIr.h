// AST → IR: resolves names, checks declarations and op arguments, and emits one op per
// call. Shapes are left to the shape inference pass.
#pragma once

#include <memory>
#include <string>

#include "compiler/frontend/Ast.h"
#include "compiler/frontend/Diagnostics.h"
#include "compiler/ir/Ir.h"

namespace cnv::ir {

// Returns null after reporting errors to `diagnostics`.
std::unique_ptr<Graph> buildGraph(const ast::Model& model, DiagnosticEngine& diagnostics);

// The model named `name`, or the only one when `name` is empty. Throws a usage error
// when the choice is missing or unknown.
const ast::Model& selectModel(const ast::Module& module, const std::string& name);

}  // namespace cnv::ir
