// cnv's IR: a model as a list of ops over typed values.
//
// Activations carry batch, channels, width (batch and width symbolic) and the layout
// they are stored in; params carry their declared dims and layout. Ops are kept in an
// order where every operand is defined before use. Passes (compiler/passes) refine the
// graph in place: shapes, then explicit padding, then storage layouts, then fused
// epilogues. docs/ir.md describes the printed form.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "compiler/frontend/Diagnostics.h"
#include "compiler/ir/SymExpr.h"

namespace cnv::ir {

enum class Layout { NWC, NCW };
enum class WeightLayout { WIO, OIW };
enum class ValueKind { Input, Weight, Bias, Activation };

enum class OpKind {
  Conv1d,
  Relu,
  Relu6,
  LeakyRelu,
  Sigmoid,
  Tanh,
  Add,
  // Elementwise copy of operand 0 into the result's layout, then the epilogue. What
  // remains of standalone elementwise ops and layout changes after fusion.
  Map,
};

enum class PaddingKind { Valid, Same, SameLower, Causal, Explicit };
enum class PaddingMode { Zeros, Reflect, Replicate, Circular };

const char* name(Layout layout);
const char* name(WeightLayout layout);
const char* name(OpKind kind);
const char* name(PaddingKind kind);
const char* name(PaddingMode mode);
bool isActivationFunction(OpKind kind);

struct Op;

struct Value {
  std::string name;
  ValueKind kind = ValueKind::Activation;
  SourceLocation location;
  Op* producer = nullptr;

  // Activations.
  SymExpr batch;
  int64_t channels = 0;
  SymExpr width;
  Layout layout = Layout::NWC;
  bool shapeKnown = false;

  // Weights ([O, I/groups, K] whatever the declared order) and biases ([C]).
  int64_t outChannels = 0, inChannelsPerGroup = 0, kernelWidth = 0;
  WeightLayout weightLayout = WeightLayout::OIW;
  int64_t biasLength = 0;

  bool isActivation() const { return kind == ValueKind::Input || kind == ValueKind::Activation; }
};

// One step of an op's epilogue, applied in order to each output element after the
// conv's sum (and bias).
struct EpilogueStep {
  OpKind kind;       // an activation function, or Add
  float alpha = 0;   // LeakyRelu
  int operand = -1;  // Add: index into the op's operands of the residual
  SourceLocation location;
};

struct Op {
  OpKind kind;
  SourceLocation location;
  std::vector<Value*> operands;
  Value* result = nullptr;

  // Conv1d: operands are input, weight, optional bias, then residuals.
  int64_t stride = 1, dilation = 1, groups = 1;
  PaddingKind padding = PaddingKind::Valid;
  int64_t explicitPadLeft = 0, explicitPadRight = 0;
  PaddingMode paddingMode = PaddingMode::Zeros;
  bool hasBias = false;
  bool paddingResolved = false;
  SymExpr padLeft, padRight;

  float alpha = 0.01f;  // LeakyRelu

  std::vector<EpilogueStep> epilogue;  // Conv1d and Map

  // A conv with more than one group and one input channel per group (any number of
  // output channels per input channel).
  bool isDepthwise() const {
    return kind == OpKind::Conv1d && groups > 1 && operands[1]->inChannelsPerGroup == 1;
  }
};

struct Output {
  std::string name;
  Value* value = nullptr;
  Layout layout = Layout::NWC;
  SourceLocation location;
};

// A condition checked once the symbols are bound: `value ≥ 1` must hold, else the
// message is reported as a data error. Conditions known at compile time are reported
// there instead and never reach this list.
struct RuntimeCheck {
  SymExpr value;
  std::string message;
  SourceLocation location;
};

struct Graph {
  std::string name;
  std::vector<std::unique_ptr<Value>> values;
  std::vector<std::unique_ptr<Op>> ops;
  std::vector<Value*> inputs;
  std::vector<Value*> params;  // weights and biases, in declaration order
  std::vector<Output> outputs;
  std::vector<std::string> symbols;  // in order of first appearance
  std::vector<RuntimeCheck> checks;

  Value* newValue(ValueKind kind, std::string name, SourceLocation location);
  Op* appendOp(OpKind kind, SourceLocation location);
  // Users of `value` among the ops, and whether it is a model output.
  int useCount(const Value* value) const;
  bool isOutput(const Value* value) const;
};

// The textual form of docs/ir.md. With locations, every op ends in `@line:col`.
std::string print(const Graph& graph, bool withLocations = false);
std::string printType(const Value& value);

}  // namespace cnv::ir
