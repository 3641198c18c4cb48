// The middle of the compiler: one entry point per pass, run in order by runPipeline.
// Each pass reports user errors to the DiagnosticEngine; an invariant it finds broken
// is an internal error (see Verifier).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "compiler/frontend/Diagnostics.h"
#include "compiler/ir/Ir.h"

namespace cnv::passes {

// Gives every activation its batch, channels and width (symbolic widths in canonical
// form) and checks channel counts, groups, bias lengths and `add` shapes. Widths too
// short for a kernel are errors now when known, run-time checks otherwise.
void inferShapes(ir::Graph& graph, DiagnosticEngine& diagnostics);

// Turns every conv's padding rule into explicit left/right amounts (symbolic when they
// depend on the width) and checks the limits of reflect and circular padding.
void resolvePadding(ir::Graph& graph, DiagnosticEngine& diagnostics);

// Chooses the layout each activation is stored in: outputs in their declared layout,
// inputs as the user gives them, everything else in the internal layout. Kernels read
// and write any layout through strides, so no transposed copy is ever made; a Map
// copies only where an output is an input.
void assignLayouts(ir::Graph& graph);

// Moves bias, activations and residual adds into the producing conv's (or map's)
// epilogue wherever the intermediate has one user and is not an output, and turns the
// remaining standalone elementwise ops into Maps.
void fuseEpilogues(ir::Graph& graph);

// Checks the IR's invariants; throws cnv::Error(Kind::Internal) naming `afterPass`.
void verify(const ir::Graph& graph, const std::string& afterPass);

struct PipelineOptions {
  // Called after each pass with its name, the printed IR and whether it changed.
  std::function<void(const std::string& pass, const std::string& ir, bool changed)> log;
  bool verifyEachPass = true;
  bool printLocations = false;
  // The last pass to run (one of passNames()); empty: all. `cnvc port` and `lint` stop
  // after padding-resolution, where every op is still one call of the source.
  std::string stopAfter;
};

const std::vector<std::string>& passNames();

// Runs every pass in order. Throws cnv::Error(Kind::Model) with rendered diagnostics
// if a pass reports an error.
void runPipeline(ir::Graph& graph, DiagnosticEngine& diagnostics, const PipelineOptions& options);

}  // namespace cnv::passes
