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

  // Whether the pipeline goes on past `pass`.
  auto next = [&](const std::string& pass) {
    after(pass);
    return options.stopAfter != pass;
  };
  if (!next("build")) return;
  inferShapes(graph, diagnostics);
  if (!next("shape-inference")) return;
  resolvePadding(graph, diagnostics);
  if (!next("padding-resolution")) return;
  assignLayouts(graph);
  if (!next("layout-assignment")) return;
  fuseEpilogues(graph);
  after("epilogue-fusion");
}

}  // namespace cnv::passes
