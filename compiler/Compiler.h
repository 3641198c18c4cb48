// The compiler's front half: source text → syntax tree → checked, optimized IR, the
// stages cnvc's --emit stops between. Used by the runtime (which hands the IR to the
// back end, compiler/backend) and by cnvc.
#pragma once

#include <memory>
#include <string>

#include "compiler/frontend/Ast.h"
#include "compiler/frontend/Diagnostics.h"
#include "compiler/ir/Ir.h"
#include "compiler/passes/Passes.h"

namespace cnv {

struct ParsedSource {
  std::unique_ptr<SourceFile> source;
  ast::Module module;
};

struct CompiledIr {
  std::unique_ptr<SourceFile> source;
  std::unique_ptr<ir::Graph> graph;
};

// Reads a whole file; throws cnv::Error (Data) naming the path if it cannot.
std::unique_ptr<SourceFile> readSourceFile(const std::string& path);

// Parses `source`. Throws cnv::Error (Model) with rendered diagnostics.
ParsedSource parseSource(std::unique_ptr<SourceFile> source);

// Picks `model` (or the only model) of `parsed`, builds the IR and runs the pass
// pipeline. Throws cnv::Error: Model with rendered diagnostics, Usage for a bad model
// choice, Internal if a pass breaks the IR.
CompiledIr compileToIr(ParsedSource parsed, const std::string& model,
                       const passes::PipelineOptions& options = {});
// Both of the above.
CompiledIr compileToIr(std::unique_ptr<SourceFile> source, const std::string& model,
                       const passes::PipelineOptions& options = {});

// The signature `cnvc check` prints: every input, param and output with resolved dims.
std::string formatSignature(const ir::Graph& graph);

// Dims of an activation in `layout` order, as text.
std::vector<std::string> activationDims(const ir::Value& value, ir::Layout layout);

// A param's dims in its declared order.
std::vector<int64_t> paramShape(const ir::Value& value);
std::vector<std::string> paramDims(const ir::Value& value);

}  // namespace cnv
