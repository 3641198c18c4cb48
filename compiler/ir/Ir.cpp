#include "compiler/ir/Ir.h"

#include <fmt/format.h>

namespace cnv::ir {

const char* name(Layout layout) { return layout == Layout::NWC ? "NWC" : "NCW"; }
const char* name(WeightLayout layout) { return layout == WeightLayout::WIO ? "WIO" : "OIW"; }

const char* name(OpKind kind) {
  switch (kind) {
    case OpKind::Conv1d:
      return "conv1d";
    case OpKind::Relu:
      return "relu";
    case OpKind::Relu6:
      return "relu6";
    case OpKind::LeakyRelu:
      return "leaky_relu";
    case OpKind::Sigmoid:
      return "sigmoid";
    case OpKind::Tanh:
      return "tanh";
    case OpKind::Add:
      return "add";
    case OpKind::Map:
      return "map";
  }
  return "?";
}

const char* name(PaddingKind kind) {
  switch (kind) {
    case PaddingKind::Valid:
      return "valid";
    case PaddingKind::Same:
      return "same";
    case PaddingKind::SameLower:
      return "same_lower";
    case PaddingKind::Causal:
      return "causal";
    case PaddingKind::Explicit:
      return "explicit";
  }
  return "?";
}

const char* name(PaddingMode mode) {
  switch (mode) {
    case PaddingMode::Zeros:
      return "zeros";
    case PaddingMode::Reflect:
      return "reflect";
    case PaddingMode::Replicate:
      return "replicate";
    case PaddingMode::Circular:
      return "circular";
  }
  return "?";
}

bool isActivationFunction(OpKind kind) {
  return kind == OpKind::Relu || kind == OpKind::Relu6 || kind == OpKind::LeakyRelu ||
         kind == OpKind::Sigmoid || kind == OpKind::Tanh;
}

Value* Graph::newValue(ValueKind kind, std::string valueName, SourceLocation location) {
  auto value = std::make_unique<Value>();
  value->kind = kind;
  value->name = std::move(valueName);
  value->location = location;
  values.push_back(std::move(value));
  return values.back().get();
}

Op* Graph::appendOp(OpKind kind, SourceLocation location) {
  auto op = std::make_unique<Op>();
  op->kind = kind;
  op->location = location;
  ops.push_back(std::move(op));
  return ops.back().get();
}

int Graph::useCount(const Value* value) const {
  int uses = 0;
  for (const auto& op : ops)
    for (const Value* operand : op->operands) uses += operand == value;
  return uses;
}

bool Graph::isOutput(const Value* value) const {
  for (const Output& output : outputs)
    if (output.value == value) return true;
  return false;
}

std::string printType(const Value& v) {
  switch (v.kind) {
    case ValueKind::Weight:
      if (v.weightLayout == WeightLayout::WIO)
        return fmt::format("f32[{}, {}, {}] WIO", v.kernelWidth, v.inChannelsPerGroup,
                           v.outChannels);
      return fmt::format("f32[{}, {}, {}] OIW", v.outChannels, v.inChannelsPerGroup, v.kernelWidth);
    case ValueKind::Bias:
      return fmt::format("f32[{}]", v.biasLength);
    case ValueKind::Input:
    case ValueKind::Activation:
      if (!v.shapeKnown) return fmt::format("f32[?] {}", name(v.layout));
      if (v.layout == Layout::NWC)
        return fmt::format("f32[{}, {}, {}] NWC", v.batch.str(), v.width.str(), v.channels);
      return fmt::format("f32[{}, {}, {}] NCW", v.batch.str(), v.channels, v.width.str());
  }
  return "?";
}

static std::string ref(const Value* v) { return "%" + v->name; }

static std::string printEpilogue(const Op& op) {
  std::vector<std::string> steps;
  if (op.hasBias) steps.push_back("bias");
  for (const EpilogueStep& step : op.epilogue) {
    if (step.kind == OpKind::Add)
      steps.push_back(fmt::format("add({})", ref(op.operands[step.operand])));
    else if (step.kind == OpKind::LeakyRelu)
      steps.push_back(fmt::format("leaky_relu(alpha={})", step.alpha));
    else
      steps.push_back(name(step.kind));
  }
  return fmt::format("[{}]", fmt::join(steps, ", "));
}

static std::string printAttributes(const Op& op) {
  std::vector<std::string> attrs;
  if (op.kind == OpKind::Conv1d) {
    attrs.push_back(fmt::format("stride={}", op.stride));
    attrs.push_back(fmt::format("dilation={}", op.dilation));
    attrs.push_back(fmt::format("groups={}", op.groups));
    if (op.paddingResolved)
      attrs.push_back(fmt::format("pad=({}, {})", op.padLeft.str(), op.padRight.str()));
    else if (op.padding == PaddingKind::Explicit)
      attrs.push_back(fmt::format("padding=({}, {})", op.explicitPadLeft, op.explicitPadRight));
    else
      attrs.push_back(fmt::format("padding={}", name(op.padding)));
    attrs.push_back(fmt::format("padding_mode={}", name(op.paddingMode)));
  }
  if (op.kind == OpKind::LeakyRelu) attrs.push_back(fmt::format("alpha={}", op.alpha));
  if (op.kind == OpKind::Map || (op.kind == OpKind::Conv1d && (op.hasBias || !op.epilogue.empty())))
    attrs.push_back("epilogue=" + printEpilogue(op));
  if (attrs.empty()) return "";
  return fmt::format(" {{{}}}", fmt::join(attrs, ", "));
}

std::string print(const Graph& graph, bool withLocations) {
  auto at = [&](SourceLocation l) {
    return withLocations && l.known() ? fmt::format("  @{}:{}", l.line, l.column) : std::string();
  };
  std::vector<std::string> arguments;
  for (const Value* v : graph.inputs) arguments.push_back(ref(v) + ": " + printType(*v));
  for (const Value* v : graph.params) arguments.push_back(ref(v) + ": " + printType(*v));
  std::string out = fmt::format("model {}({}) {{\n", graph.name, fmt::join(arguments, ", "));
  for (const auto& op : graph.ops) {
    std::vector<std::string> operands;
    size_t shown = op->operands.size();
    for (size_t i = 0; i < shown; ++i) operands.push_back(ref(op->operands[i]));
    out += fmt::format("  {} = {}({}){} : {}{}\n", ref(op->result), name(op->kind),
                       fmt::join(operands, ", "), printAttributes(*op), printType(*op->result),
                       at(op->location));
  }
  for (const Output& o : graph.outputs)
    out += fmt::format("  output {} = {} {}{}\n", o.name, ref(o.value), name(o.layout),
                       at(o.location));
  for (const RuntimeCheck& c : graph.checks)
    out += fmt::format("  check {} >= 1  // {}\n", c.value.str(), c.message);
  out += "}\n";
  return out;
}

}  // namespace cnv::ir
