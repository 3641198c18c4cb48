// Padding resolution. Every rule of SPEC §1 becomes explicit (left, right) amounts:
//   valid → (0, 0); causal → (E−1, 0); P → (P, P); (P, Q) → (P, Q);
//   same → T = max((⌈L/s⌉−1)·s + E − L, 0), (⌊T/2⌋, T−⌊T/2⌋); same_lower mirrors it.
// (⌈L/s⌉−1)·s − L equals −1 − ((L−1) mod s), so T = max(E − 1 − ((L−1) mod s), 0): a
// constant when s = 1 or L is known, a run-time expression otherwise; the max drops
// out when E ≥ s. Reflect needs each pad < L and circular each pad ≤ L (PyTorch's
// limits), checked now when known and at run time otherwise.
#include <fmt/format.h>

#include "compiler/passes/Passes.h"

namespace cnv::passes {
namespace {

using namespace ir;

class PaddingResolution {
 public:
  PaddingResolution(Graph& graph, DiagnosticEngine& diagnostics)
      : graph_(graph), diagnostics_(diagnostics) {}

  void run() {
    for (auto& op : graph_.ops) {
      if (op->kind != OpKind::Conv1d || op->paddingResolved || !op->result->shapeKnown) continue;
      try {
        resolve(*op);
      } catch (const SymExprOverflow&) {
        diagnostics_.error(op->location, "the padding of this conv overflows 64-bit integers");
      }
    }
  }

 private:
  void resolve(Op& op) {
    const Value& x = *op.operands[0];
    const Value& w = *op.operands[1];
    const int64_t effective = op.dilation * (w.kernelWidth - 1) + 1;
    switch (op.padding) {
      case PaddingKind::Valid:
        op.padLeft = op.padRight = 0;
        break;
      case PaddingKind::Causal:
        op.padLeft = effective - 1;
        op.padRight = 0;
        break;
      case PaddingKind::Explicit:
        op.padLeft = op.explicitPadLeft;
        op.padRight = op.explicitPadRight;
        break;
      case PaddingKind::Same:
      case PaddingKind::SameLower: {
        SymExpr total = SymExpr(effective - 1) - SymExpr::mod(x.width - 1, op.stride);
        if (effective < op.stride) total = SymExpr::max(total, 0);
        SymExpr half = SymExpr::floorDiv(total, 2);
        SymExpr rest = total - half;
        op.padLeft = op.padding == PaddingKind::Same ? half : rest;
        op.padRight = op.padding == PaddingKind::Same ? rest : half;
        break;
      }
    }
    op.paddingResolved = true;
    checkModeLimits(op, x.width);
  }

  void checkModeLimits(const Op& op, const SymExpr& width) {
    if (op.paddingMode != PaddingMode::Reflect && op.paddingMode != PaddingMode::Circular) return;
    bool reflect = op.paddingMode == PaddingMode::Reflect;
    std::vector<const SymExpr*> pads = {&op.padLeft};
    if (op.padRight != op.padLeft) pads.push_back(&op.padRight);
    for (const SymExpr* pad : pads) {
      // reflect: width − pad ≥ 1; circular: width − pad + 1 ≥ 1
      SymExpr margin = width - *pad + (reflect ? 0 : 1);
      std::string message = fmt::format(
          "{} padding of {} needs an input width {} {}, but the width is {}", name(op.paddingMode),
          pad->str(), reflect ? "greater than" : "of at least", pad->str(), width.str());
      if (margin.isConstant()) {
        if (margin.constant() < 1) diagnostics_.error(op.location, message);
      } else {
        if (!margin.positiveForPositiveSymbols())
          graph_.checks.push_back({margin, message, op.location});
      }
    }
  }

  Graph& graph_;
  DiagnosticEngine& diagnostics_;
};

}  // namespace

void resolvePadding(Graph& graph, DiagnosticEngine& diagnostics) {
  PaddingResolution(graph, diagnostics).run();
}

}  // namespace cnv::passes
