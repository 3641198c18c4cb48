// Layout assignment. Inputs stay in the layout the user stores them in and outputs are
// written straight into the user's declared layout; every other activation is stored
// in kInternalLayout (channels innermost, which the kernels vectorize over). Each
// kernel addresses its operands and result through per-layout strides, so a layout
// change costs nothing: no transpose op is ever created. The one copy left is an
// output that names an input, which needs a buffer of its own.
#include "compiler/passes/Passes.h"

namespace cnv::passes {
namespace {

using namespace ir;

constexpr Layout kInternalLayout = Layout::NWC;

}  // namespace

void assignLayouts(Graph& graph) {
  for (Output& output : graph.outputs) {
    if (output.value->kind == ValueKind::Input) {
      Op* copy = graph.appendOp(OpKind::Map, output.location);
      copy->operands = {output.value};
      Value* result = graph.newValue(ValueKind::Activation, output.name + ".out", output.location);
      result->producer = copy;
      result->batch = output.value->batch;
      result->channels = output.value->channels;
      result->width = output.value->width;
      result->shapeKnown = output.value->shapeKnown;
      copy->result = result;
      output.value = result;
    }
  }
  for (auto& op : graph.ops) op->result->layout = kInternalLayout;
  for (Output& output : graph.outputs) output.value->layout = output.layout;
}

}  // namespace cnv::passes
