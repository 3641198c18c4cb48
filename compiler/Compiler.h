// The compiler's front half as one call: source text → parsed, checked, optimized IR.
// Used by the runtime (which then JIT-compiles the IR) and by cnvc's check/compile.
#pragma once

#include <memory>
#include <string>

#include "compiler/codegen/Kernels.h"
#include "compiler/frontend/Diagnostics.h"
#include "compiler/ir/Ir.h"
#include "compiler/passes/Passes.h"

namespace cnv {

struct CompiledIr {
  std::unique_ptr<SourceFile> source;
  std::unique_ptr<ir::Graph> graph;
};

// Reads a whole file; throws cnv::Error (Data) naming the path if it cannot.
std::unique_ptr<SourceFile> readSourceFile(const std::string& path);

// Parses `source`, picks `model` (or the only model), builds the IR and runs the pass
// pipeline. Throws cnv::Error: Model with rendered diagnostics, Usage for a bad model
// choice, Internal if a pass breaks the IR.
CompiledIr compileToIr(std::unique_ptr<SourceFile> source, const std::string& model,
                       const passes::PipelineOptions& options = {});

// The signature `cnvc check` prints: every input, param and output with resolved dims.
std::string formatSignature(const ir::Graph& graph);

// Dims of an activation in `layout` order, as text.
std::vector<std::string> activationDims(const ir::Value& value, ir::Layout layout);

// What the compiler did: kernels with their FLOPs, fusions, folded layout changes,
// weight packing (per the kernels' schedules, `calls`) and the transposes that remain
// (and why).
std::string formatReport(const ir::Graph& graph, const std::vector<codegen::KernelCall>& calls);

// A param's dims in its declared order.
std::vector<int64_t> paramShape(const ir::Value& value);
std::vector<std::string> paramDims(const ir::Value& value);

}  // namespace cnv
