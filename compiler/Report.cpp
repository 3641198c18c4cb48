#include "compiler/Report.h"

#include <fmt/format.h>

namespace cnv {
namespace {

std::string at(const SourceLocation& l) { return fmt::format("@{}:{}", l.line, l.column); }

std::string factor(const ir::SymExpr& e) {
  if (e.isConstant()) return e.str();
  std::string text = e.str();
  return text.find(' ') == std::string::npos ? text : "(" + text + ")";
}

}  // namespace

std::string formatReport(const ir::Graph& graph, const std::vector<backend::Kernel>& kernels) {
  std::string kernelLines, fusions, folded, materialized;
  int fusionCount = 0, foldedCount = 0, materializedCount = 0;
  for (const auto& op : graph.ops) {
    const ir::Value& result = *op->result;
    std::string line =
        fmt::format("  %{} = {} {}", result.name, ir::name(op->kind), at(op->location));
    if (op->kind == ir::OpKind::Conv1d) {
      const ir::Value& w = *op->operands[1];
      int64_t perElement = 2 * w.inChannelsPerGroup * w.kernelWidth;
      line += fmt::format(": FLOPs = {}·{}·{}·{} ({} = 2·{}·{} per output element)", perElement,
                          result.channels, factor(result.batch), factor(result.width), perElement,
                          w.inChannelsPerGroup, w.kernelWidth);
    }
    kernelLines += line + "\n";
    for (const ir::EpilogueStep& step : op->epilogue) {
      ++fusionCount;
      fusions += fmt::format("  {} {} into {} {}\n", ir::name(step.kind), at(step.location),
                             ir::name(op->kind), at(op->location));
    }
    if (op->kind == ir::OpKind::Map && op->epilogue.empty() &&
        op->operands[0]->layout != result.layout) {
      ++materializedCount;
      materialized += fmt::format(
          "  %{} {}: output '{}' names input '%{}', which needs a copy in {}\n", result.name,
          at(op->location), result.name, op->operands[0]->name, ir::name(result.layout));
      continue;
    }
    for (size_t i = 0; i < op->operands.size(); ++i) {
      const ir::Value& operand = *op->operands[i];
      if (!operand.isActivation() || operand.layout == result.layout) continue;
      ++foldedCount;
      folded += fmt::format(
          "  {} {} reads %{} as {} and writes {}: layout change folded into its addressing\n",
          ir::name(op->kind), at(op->location), operand.name, ir::name(operand.layout),
          ir::name(result.layout));
    }
  }
  std::string weights;
  for (const backend::Kernel& kernel : kernels)
    for (size_t i = 0; i < kernel.buffers.size(); ++i) {
      const ir::Value* p = kernel.buffers[i];
      if (p->kind != ir::ValueKind::Weight || !kernel.packs(i)) continue;
      weights += fmt::format("  {} ({}): packed once at bind time to {} for {}{}\n", p->name,
                             ir::name(p->weightLayout),
                             kernel.schedule->weightPacking().describe(*p), kernel.symbol,
                             p->weightLayout == ir::WeightLayout::WIO ? " (transpose folded)" : "");
    }
  std::string out = fmt::format("report for model {}\n", graph.name);
  out += fmt::format("kernels: {}\n{}", graph.ops.size(), kernelLines);
  out += fmt::format("fusions: {}\n{}", fusionCount, fusions);
  out += fmt::format("layout changes folded into loads and stores: {}\n{}", foldedCount, folded);
  out += fmt::format("weights:\n{}", weights.empty() ? "  none\n" : weights);
  out += fmt::format("transposes materialized: {}\n{}", materializedCount, materialized);
  return out;
}

}  // namespace cnv
