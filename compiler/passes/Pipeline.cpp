// The pass pipeline: one straight line, logging the IR after each pass.
#include "cnv/Error.h"
#include "compiler/passes/Passes.h"

namespace cnv::passes {

const std::vector<std::string>& passNames() {
  static const std::vector<std::string> kNames = {"build", "shape-inference", "padding-resolution",
                                                  "layout-assignment", "epilogue-fusion"};
  return kNames;
}

void runPipeline(ir::Graph& graph, DiagnosticEngine& diagnostics, const PipelineOptions& options) {
  std::string previous;  // empty, so that "build" always reads as a change
  auto after = [&](const std::string& pass) {
    diagnostics.throwIfErrors();
    if (options.verifyEachPass) verify(graph, pass);
    if (options.log) {
      std::string current = ir::print(graph, options.printLocations);
      options.log(pass, current, current != previous);
      previous = std::move(current);
    }
  };

  after("build");
  inferShapes(graph, diagnostics);
  after("shape-inference");
  resolvePadding(graph, diagnostics);
  after("padding-resolution");
  assignLayouts(graph);
  after("layout-assignment");
  fuseEpilogues(graph);
  after("epilogue-fusion");
}

}  // namespace cnv::passes
