// Shape inference. Algorithm: walk ops in order (operands are always defined first);
// a conv's output width follows SPEC §1's table for its padding rule, built from
// SymExpr so that symbolic widths stay canonical; elementwise ops keep their operand's
// shape; `add` requires equal shapes for every value of the symbols, which canonical
// widths make a structural comparison.
#include <fmt/format.h>

#include "compiler/passes/Passes.h"

namespace cnv::passes {
namespace {

using namespace ir;

class ShapeInference {
 public:
  ShapeInference(Graph& graph, DiagnosticEngine& diagnostics)
      : graph_(graph), diagnostics_(diagnostics) {}

  void run() {
    for (auto& op : graph_.ops) {
      bool operandsKnown = true;
      for (Value* operand : op->operands)
        operandsKnown = operandsKnown && (!operand->isActivation() || operand->shapeKnown);
      if (!operandsKnown) continue;  // an earlier error already explains it
      try {
        if (op->kind == OpKind::Conv1d)
          inferConv(*op);
        else if (op->kind == OpKind::Add)
          inferAdd(*op);
        else
          copyShape(*op->operands[0], *op->result);
      } catch (const SymExprOverflow&) {
        diagnostics_.error(op->location, "the shape of this op overflows 64-bit integers");
      }
    }
  }

 private:
  static void copyShape(const Value& from, Value& to) {
    to.batch = from.batch;
    to.channels = from.channels;
    to.width = from.width;
    to.shapeKnown = true;
  }

  void inferConv(Op& op) {
    const Value& x = *op.operands[0];
    const Value& w = *op.operands[1];
    bool ok = true;
    if (x.channels % op.groups != 0) {
      diagnostics_.error(op.location,
                         fmt::format("input channels ({}) are not divisible by groups ({})",
                                     x.channels, op.groups));
      ok = false;
    }
    if (w.outChannels % op.groups != 0) {
      diagnostics_.error(op.location,
                         fmt::format("weight '{}' has {} output channels, not divisible by "
                                     "groups ({})",
                                     w.name, w.outChannels, op.groups));
      ok = false;
    }
    if (ok && w.inChannelsPerGroup != x.channels / op.groups) {
      diagnostics_.error(
          op.location,
          fmt::format("channel mismatch: weight '{}' expects {} input channels{}, but the input "
                      "has {} channels{}",
                      w.name, w.inChannelsPerGroup, op.groups > 1 ? " per group" : "", x.channels,
                      op.groups > 1 ? fmt::format(" ({} per group)", x.channels / op.groups) : ""));
      diagnostics_.note(w.location, fmt::format("'{}' is declared here", w.name));
      ok = false;
    }
    if (op.hasBias) {
      const Value& b = *op.operands[2];
      if (b.biasLength != w.outChannels) {
        diagnostics_.error(op.location,
                           fmt::format("bias mismatch: bias '{}' has {} elements, but weight "
                                       "'{}' has {} output channels",
                                       b.name, b.biasLength, w.name, w.outChannels));
        diagnostics_.note(b.location, fmt::format("'{}' is declared here", b.name));
        ok = false;
      }
    }
    if (!ok) return;

    // Both factors are below 2^31, so this cannot overflow.
    const int64_t effective = op.dilation * (w.kernelWidth - 1) + 1;
    const SymExpr& L = x.width;
    const int64_t s = op.stride;
    SymExpr width;
    switch (op.padding) {
      case PaddingKind::Valid:
        width = SymExpr::floorDiv(L - effective, s) + 1;
        break;
      case PaddingKind::Same:
      case PaddingKind::SameLower:
        width = SymExpr::ceilDiv(L, s);
        break;
      case PaddingKind::Causal:
        width = SymExpr::floorDiv(L - 1, s) + 1;
        break;
      case PaddingKind::Explicit:
        width = SymExpr::floorDiv(L + op.explicitPadLeft + op.explicitPadRight - effective, s) + 1;
        break;
    }
    Value& y = *op.result;
    y.batch = x.batch;
    y.channels = w.outChannels;
    y.width = width;
    y.shapeKnown = true;
    requirePositive(width,
                    fmt::format("the input width ({}) is too short for a kernel of effective "
                                "width {}",
                                L.str(), effective),
                    op.location);
  }

  void requirePositive(const SymExpr& value, const std::string& message, SourceLocation at) {
    if (value.isConstant()) {
      if (value.constant() < 1) diagnostics_.error(at, message);
      return;
    }
    if (!value.positiveForPositiveSymbols()) graph_.checks.push_back({value, message, at});
  }

  static std::string batchChannelsWidth(const Value& v) {
    return fmt::format("f32[{}, {}, {}]", v.batch.str(), v.channels, v.width.str());
  }

  void inferAdd(Op& op) {
    const Value& a = *op.operands[0];
    const Value& b = *op.operands[1];
    if (a.batch != b.batch || a.channels != b.channels || a.width != b.width) {
      diagnostics_.error(op.location,
                         fmt::format("add needs operands of the same shape, but got {} and {} "
                                     "(as [batch, channels, width])",
                                     batchChannelsWidth(a), batchChannelsWidth(b)));
      return;
    }
    copyShape(a, *op.result);
  }

  Graph& graph_;
  DiagnosticEngine& diagnostics_;
};

}  // namespace

void inferShapes(Graph& graph, DiagnosticEngine& diagnostics) {
  ShapeInference(graph, diagnostics).run();
}

}  // namespace cnv::passes
