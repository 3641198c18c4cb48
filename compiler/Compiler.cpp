#include "compiler/Compiler.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "cnv/Error.h"
#include "compiler/frontend/Parser.h"
#include "compiler/ir/AstToIr.h"

namespace cnv {

std::unique_ptr<SourceFile> readSourceFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw dataError(fmt::format("{}: cannot open the model file: {}", path, std::strerror(errno)));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw dataError(fmt::format("{}: cannot read the model file", path));
  return std::make_unique<SourceFile>(path, text.str());
}

ParsedSource parseSource(std::unique_ptr<SourceFile> source) {
  DiagnosticEngine diagnostics(*source);
  ast::Module module = parse(*source, diagnostics);
  return {std::move(source), std::move(module)};
}

CompiledIr compileToIr(ParsedSource parsed, const std::string& model,
                       const passes::PipelineOptions& options) {
  DiagnosticEngine diagnostics(*parsed.source);
  std::unique_ptr<ir::Graph> graph =
      ir::buildGraph(ir::selectModel(parsed.module, model), diagnostics);
  diagnostics.throwIfErrors();
  passes::runPipeline(*graph, diagnostics, options);
  return {std::move(parsed.source), std::move(graph)};
}

CompiledIr compileToIr(std::unique_ptr<SourceFile> source, const std::string& model,
                       const passes::PipelineOptions& options) {
  return compileToIr(parseSource(std::move(source)), model, options);
}

std::vector<std::string> activationDims(const ir::Value& v, ir::Layout layout) {
  std::string channels = std::to_string(v.channels);
  if (layout == ir::Layout::NWC) return {v.batch.str(), v.width.str(), channels};
  return {v.batch.str(), channels, v.width.str()};
}

std::vector<int64_t> paramShape(const ir::Value& v) {
  if (v.kind == ir::ValueKind::Bias) return {v.biasLength};
  if (v.weightLayout == ir::WeightLayout::WIO)
    return {v.kernelWidth, v.inChannelsPerGroup, v.outChannels};
  return {v.outChannels, v.inChannelsPerGroup, v.kernelWidth};
}

std::vector<std::string> paramDims(const ir::Value& v) {
  std::vector<std::string> dims;
  for (int64_t d : paramShape(v)) dims.push_back(std::to_string(d));
  return dims;
}

std::string formatSignature(const ir::Graph& graph) {
  std::string out = fmt::format("model {}\n", graph.name);
  for (const ir::Value* v : graph.inputs)
    out += fmt::format("  input  {} : f32[{}] layout {}\n", v->name,
                       fmt::join(activationDims(*v, v->layout), ", "), ir::name(v->layout));
  for (const ir::Value* v : graph.params) {
    std::string layout = v->kind == ir::ValueKind::Weight
                             ? fmt::format(" layout {}", ir::name(v->weightLayout))
                             : "";
    out +=
        fmt::format("  param  {} : f32[{}]{}\n", v->name, fmt::join(paramDims(*v), ", "), layout);
  }
  for (const ir::Output& o : graph.outputs)
    out += fmt::format("  output {} : f32[{}] layout {}\n", o.name,
                       fmt::join(activationDims(*o.value, o.layout), ", "), ir::name(o.layout));
  return out;
}

}  // namespace cnv
