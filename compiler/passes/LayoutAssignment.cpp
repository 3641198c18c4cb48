// Layout assignment. Inputs stay in the layout the user stores them in and outputs are
// written straight into the user's declared layout. Every other activation is stored
// in the model's internal layout: NCW when every input and output is NCW (PyTorch
// models; the width-vectorized kernels then read and write every tensor
// contiguously), else NWC (channels innermost, which the channel-vectorized kernels
// want). Each kernel addresses its operands and result through per-layout strides, so
// a layout change costs nothing: no transpose op is ever created. The one copy left is
// an output that names an input, which needs a buffer of its own.
#include "compiler/passes/Passes.h"

namespace cnv::passes {
namespace {

using namespace ir;

Layout internalLayout(const Graph& graph) {
  for (const Value* input : graph.inputs)
    if (input->layout != Layout::NCW) return Layout::NWC;
  for (const Output& output : graph.outputs)
    if (output.layout != Layout::NCW) return Layout::NWC;
  return Layout::NCW;
}

}  // namespace

void assignLayouts(Graph& graph) {
  const Layout internal = internalLayout(graph);
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
  for (auto& op : graph.ops) op->result->layout = internal;
  for (Output& output : graph.outputs) output.value->layout = output.layout;
}

}  // namespace cnv::passes
