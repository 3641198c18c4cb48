// The frontend's entry point: .cnv text → syntax tree, or diagnostics.
#pragma once

#include "compiler/frontend/Ast.h"
#include "compiler/frontend/Diagnostics.h"

namespace cnv {

// Deepest nesting of parentheses the parser accepts. SPEC §1 asks for 256 levels of
// calls; the bound keeps ANTLR's recursive descent far from the end of the stack.
constexpr int kMaxNestingDepth = 1024;

// Parses `file`. Reports syntax errors (several, where the parser can recover) to
// `diagnostics` and throws cnv::Error(Kind::Model) if there were any.
ast::Module parse(const SourceFile& file, DiagnosticEngine& diagnostics);

}  // namespace cnv
