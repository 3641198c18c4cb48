// The IR's invariants, checked after every pass (PipelineOptions::verifyEachPass, on by default):
// ops are in definition order and every operand is defined before use; each op owns
// its result; operand kinds fit the op; shapes, where known, agree along every edge
// (elementwise and residual operands match the result); epilogue operands exist.
#include <fmt/format.h>

#include <set>

#include "cnv/Error.h"
#include "compiler/passes/Passes.h"

namespace cnv::passes {
namespace {

using namespace ir;

bool sameShape(const Value& a, const Value& b) {
  return a.batch == b.batch && a.channels == b.channels && a.width == b.width;
}

}  // namespace

void verify(const Graph& graph, const std::string& afterPass) {
  auto fail = [&](const Op* op, const std::string& what) {
    std::string where =
        op ? fmt::format(" at op '%{}' ({}:{})", op->result ? op->result->name : "?",
                         op->location.line, op->location.column)
           : "";
    throw internalError(fmt::format("internal error: IR verification failed after pass '{}'{}: {}",
                                    afterPass, where, what));
  };
  std::set<const Value*> defined(graph.inputs.begin(), graph.inputs.end());
  defined.insert(graph.params.begin(), graph.params.end());
  for (const auto& op : graph.ops) {
    if (!op->result) fail(op.get(), "op has no result");
    if (op->result->producer != op.get()) fail(op.get(), "result does not point back to its op");
    if (op->operands.empty()) fail(op.get(), "op has no operands");
    for (const Value* operand : op->operands) {
      if (!operand) fail(op.get(), "null operand");
      if (!defined.count(operand))
        fail(op.get(), fmt::format("operand '%{}' is used before it is defined", operand->name));
    }
    if (!defined.insert(op->result).second) fail(op.get(), "result defined twice");
    if (!op->operands[0]->isActivation()) fail(op.get(), "first operand is not an activation");

    size_t firstResidual = 1;
    if (op->kind == OpKind::Conv1d) {
      if (op->operands.size() < 2 || op->operands[1]->kind != ValueKind::Weight)
        fail(op.get(), "conv1d's second operand is not a weight");
      if (op->hasBias && (op->operands.size() < 3 || op->operands[2]->kind != ValueKind::Bias))
        fail(op.get(), "conv1d's bias operand is not a bias");
      firstResidual = op->hasBias ? 3 : 2;
      if (op->result->shapeKnown && op->result->channels != op->operands[1]->outChannels)
        fail(op.get(), "result channels differ from the weight's output channels");
    } else if (op->result->shapeKnown && !sameShape(*op->operands[0], *op->result)) {
      fail(op.get(), "elementwise result shape differs from its operand");
    }
    for (size_t i = firstResidual; i < op->operands.size(); ++i) {
      if (!op->operands[i]->isActivation()) fail(op.get(), "residual operand is not an activation");
      if (op->result->shapeKnown && !sameShape(*op->operands[i], *op->result))
        fail(op.get(), "residual operand shape differs from the result");
    }
    for (const EpilogueStep& step : op->epilogue) {
      if (step.kind == OpKind::Add && (step.operand < static_cast<int>(firstResidual) ||
                                       step.operand >= static_cast<int>(op->operands.size())))
        fail(op.get(), "epilogue add names a missing operand");
      if (step.kind != OpKind::Add && !isActivationFunction(step.kind))
        fail(op.get(), "epilogue step is neither an activation nor an add");
    }
    if (!op->epilogue.empty() && op->kind != OpKind::Conv1d && op->kind != OpKind::Map)
      fail(op.get(), "only conv1d and map carry epilogues");
  }
  std::set<const Value*> outputs;
  for (const Output& output : graph.outputs) {
    if (!defined.count(output.value)) fail(nullptr, "output '" + output.name + "' is undefined");
    if (!outputs.insert(output.value).second)
      fail(nullptr, "two outputs share the value of '" + output.name + "'");
  }
}

}  // namespace cnv::passes
