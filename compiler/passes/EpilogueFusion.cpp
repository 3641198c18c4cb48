// Epilogue fusion. First every standalone activation or `add` becomes a Map whose
// epilogue is that one step (add's second operand becomes a residual). Then, while some
// Map M reads, as its main operand, the result R of a Conv1d or Map P where R has no
// other user and is not an output, M's steps are appended to P's epilogue and P takes
// M's place in the op list (every operand of M, residuals included, is defined by then)
// and M's result. `add` is commutative, so either operand may be the main one.
#include <algorithm>

#include "compiler/passes/Passes.h"

namespace cnv::passes {
namespace {

using namespace ir;

class EpilogueFusion {
 public:
  explicit EpilogueFusion(Graph& graph) : graph_(graph) {}

  void run() {
    for (auto& op : graph_.ops) toMap(*op);
    while (fuseOne()) {
    }
  }

 private:
  static void toMap(Op& op) {
    if (op.kind == OpKind::Add) {
      op.kind = OpKind::Map;
      op.epilogue = {{OpKind::Add, 0, 1, op.location}};
    } else if (isActivationFunction(op.kind)) {
      op.epilogue = {{op.kind, op.alpha, -1, op.location}};
      op.kind = OpKind::Map;
    }
  }

  bool fusible(const Value* value) const {
    const Op* producer = value->producer;
    return producer && (producer->kind == OpKind::Conv1d || producer->kind == OpKind::Map) &&
           !graph_.isOutput(value) && graph_.useCount(value) == 1;
  }

  bool fuseOne() {
    for (size_t consumerIndex = 0; consumerIndex < graph_.ops.size(); ++consumerIndex) {
      Op& consumer = *graph_.ops[consumerIndex];
      if (consumer.kind != OpKind::Map) continue;
      if (!fusible(consumer.operands[0]) && consumer.operands.size() == 2 &&
          consumer.epilogue.size() == 1 && consumer.epilogue[0].kind == OpKind::Add &&
          fusible(consumer.operands[1]))
        std::swap(consumer.operands[0], consumer.operands[1]);
      if (!fusible(consumer.operands[0])) continue;
      merge(consumerIndex);
      return true;
    }
    return false;
  }

  void merge(size_t consumerIndex) {
    Op& consumer = *graph_.ops[consumerIndex];
    Op* producer = consumer.operands[0]->producer;
    const int base = static_cast<int>(producer->operands.size()) - 1;
    for (size_t i = 1; i < consumer.operands.size(); ++i)
      producer->operands.push_back(consumer.operands[i]);
    for (EpilogueStep step : consumer.epilogue) {
      if (step.operand >= 0) step.operand += base;
      producer->epilogue.push_back(step);
    }
    producer->result = consumer.result;
    producer->result->producer = producer;

    auto producerSlot = std::find_if(graph_.ops.begin(), graph_.ops.end(),
                                     [&](const auto& op) { return op.get() == producer; });
    std::unique_ptr<Op> moved = std::move(*producerSlot);
    graph_.ops[consumerIndex] = std::move(moved);
    graph_.ops.erase(producerSlot);
  }

  Graph& graph_;
};

}  // namespace

void fuseEpilogues(Graph& graph) { EpilogueFusion(graph).run(); }

}  // namespace cnv::passes
