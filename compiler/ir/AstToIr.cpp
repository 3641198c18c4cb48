#include "compiler/ir/AstToIr.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>

#include "cnv/Error.h"

namespace cnv::ir {
namespace {

// 2^36 floats = 256 GiB: far beyond any real conv weight, far below int64 overflow in
// the packing and indexing arithmetic.
constexpr int64_t kMaxParamElements = int64_t{1} << 36;

struct Definition {
  Value* value = nullptr;  // null until the defining statement has been built
  SourceLocation location;
};

class AstToIr {
 public:
  AstToIr(const ast::Model& model, DiagnosticEngine& diagnostics)
      : model_(model), diagnostics_(diagnostics), graph_(std::make_unique<Graph>()) {}

  std::unique_ptr<Graph> build() {
    graph_->name = model_.name.text;
    collectDefinitions();
    for (const ast::Statement& statement : model_.statements) {
      if (auto* decl = std::get_if<ast::TensorDecl>(&statement))
        buildDecl(*decl);
      else if (auto* assignment = std::get_if<ast::Assignment>(&statement))
        buildAssignment(*assignment);
      else
        buildOutput(std::get<ast::OutputStmt>(statement));
    }
    if (graph_->inputs.empty() && !diagnostics_.hasErrors())
      diagnostics_.error(model_.name.location,
                         fmt::format("model '{}' declares no input", model_.name.text));
    if (graph_->outputs.empty() && !diagnostics_.hasErrors())
      diagnostics_.error(model_.name.location,
                         fmt::format("model '{}' has no output statement", model_.name.text));
    if (diagnostics_.hasErrors()) return nullptr;
    return std::move(graph_);
  }

 private:
  // Every name's first definition, so that a use before it can say where it is.
  void collectDefinitions() {
    for (const ast::Statement& statement : model_.statements) {
      const ast::Identifier* name = nullptr;
      if (auto* decl = std::get_if<ast::TensorDecl>(&statement)) name = &decl->name;
      if (auto* assignment = std::get_if<ast::Assignment>(&statement)) name = &assignment->target;
      if (name && !firstDefinition_.count(name->text))
        firstDefinition_[name->text] = name->location;
    }
  }

  bool define(const ast::Identifier& name, Value* value) {
    auto [it, inserted] = scope_.emplace(name.text, Definition{value, name.location});
    if (!inserted) {
      diagnostics_.error(name.location, fmt::format("redefinition of '{}'", name.text));
      diagnostics_.note(it->second.location, fmt::format("'{}' first defined here", name.text));
      return false;
    }
    return true;
  }

  Value* lookup(const std::string& name, SourceLocation location) {
    auto it = scope_.find(name);
    if (it != scope_.end()) return it->second.value;
    auto later = firstDefinition_.find(name);
    if (later != firstDefinition_.end()) {
      diagnostics_.error(location, fmt::format("'{}' is used before its definition", name));
      diagnostics_.note(later->second, fmt::format("'{}' is defined here", name));
    } else {
      diagnostics_.error(location, fmt::format("unknown name '{}'", name));
    }
    return nullptr;
  }

  bool checkDtype(const ast::TensorDecl& decl) {
    if (decl.dtype.text == "f32") return true;
    diagnostics_.error(
        decl.dtype.location,
        fmt::format("unsupported dtype '{}' (only f32 is supported)", decl.dtype.text));
    return false;
  }

  std::optional<int64_t> integerDim(const ast::Dim& dim, const char* what, int64_t minimum) {
    if (dim.isSymbol()) {
      diagnostics_.error(dim.location, fmt::format("the {} must be an integer, not the symbol '{}'",
                                                   what, dim.symbol));
      return std::nullopt;
    }
    if (dim.value < minimum) {
      diagnostics_.error(dim.location, fmt::format("the {} must be at least {}", what, minimum));
      return std::nullopt;
    }
    return dim.value;
  }

  SymExpr symbolicDim(const ast::Dim& dim, const char* what, int64_t minimum, bool& ok) {
    if (dim.isSymbol()) {
      if (std::find(graph_->symbols.begin(), graph_->symbols.end(), dim.symbol) ==
          graph_->symbols.end())
        graph_->symbols.push_back(dim.symbol);
      return SymExpr::symbol(dim.symbol);
    }
    if (dim.value < minimum) {
      diagnostics_.error(dim.location, fmt::format("the {} must be at least {}", what, minimum));
      ok = false;
    }
    return SymExpr(dim.value);
  }

  void buildDecl(const ast::TensorDecl& decl) {
    bool ok = checkDtype(decl);
    if (decl.kind == ast::TensorDecl::Kind::Input)
      buildInput(decl, ok);
    else if (decl.dims.size() == 3)
      buildWeight(decl, ok);
    else if (decl.dims.size() == 1)
      buildBias(decl, ok);
    else {
      diagnostics_.error(decl.name.location,
                         fmt::format("param '{}' must have rank 3 (a conv weight) or rank 1 (a "
                                     "bias), not rank {}",
                                     decl.name.text, decl.dims.size()));
      define(decl.name, nullptr);
    }
  }

  void buildInput(const ast::TensorDecl& decl, bool ok) {
    Value* value = graph_->newValue(ValueKind::Input, decl.name.text, decl.name.location);
    if (decl.dims.size() != 3) {
      diagnostics_.error(decl.name.location,
                         fmt::format("input '{}' must have rank 3 (batch, width and channels), "
                                     "not rank {}",
                                     decl.name.text, decl.dims.size()));
      ok = false;
    }
    std::optional<Layout> layout;
    if (!decl.layout) {
      diagnostics_.error(decl.name.location,
                         fmt::format("input '{}' needs a layout: add 'layout NWC' or 'layout NCW'",
                                     decl.name.text));
      ok = false;
    } else {
      layout = parseLayout(*decl.layout, "input");
      ok = ok && layout.has_value();
    }
    if (ok) {
      value->layout = *layout;
      const ast::Dim& widthDim = decl.dims[*layout == Layout::NWC ? 1 : 2];
      const ast::Dim& channelDim = decl.dims[*layout == Layout::NWC ? 2 : 1];
      value->batch = symbolicDim(decl.dims[0], "batch dim", 0, ok);
      value->width = symbolicDim(widthDim, "width dim", 1, ok);
      if (auto channels = integerDim(channelDim, "channel dim", 1))
        value->channels = *channels;
      else
        ok = false;
      value->shapeKnown = ok;
    }
    if (define(decl.name, value) && ok) graph_->inputs.push_back(value);
  }

  std::optional<Layout> parseLayout(const ast::Identifier& id, const char* what) {
    if (id.text == "NWC") return Layout::NWC;
    if (id.text == "NCW") return Layout::NCW;
    diagnostics_.error(
        id.location, fmt::format("bad layout '{}' for an {}; expected NWC or NCW", id.text, what));
    return std::nullopt;
  }

  void buildWeight(const ast::TensorDecl& decl, bool ok) {
    Value* value = graph_->newValue(ValueKind::Weight, decl.name.text, decl.name.location);
    std::optional<WeightLayout> layout;
    if (!decl.layout) {
      diagnostics_.error(decl.name.location,
                         fmt::format("param '{}' needs a layout: add 'layout WIO' (TensorFlow) or "
                                     "'layout OIW' (PyTorch)",
                                     decl.name.text));
    } else if (decl.layout->text == "WIO") {
      layout = WeightLayout::WIO;
    } else if (decl.layout->text == "OIW") {
      layout = WeightLayout::OIW;
    } else {
      diagnostics_.error(
          decl.layout->location,
          fmt::format("bad layout '{}' for a conv weight; expected WIO or OIW", decl.layout->text));
    }
    std::optional<int64_t> dims[3];
    for (int i = 0; i < 3; ++i) dims[i] = integerDim(decl.dims[i], "param dim", 1);
    ok = ok && layout && dims[0] && dims[1] && dims[2];
    int64_t elements = 0;
    if (ok &&
        (__builtin_mul_overflow(*dims[0], *dims[1], &elements) ||
         __builtin_mul_overflow(elements, *dims[2], &elements) || elements > kMaxParamElements)) {
      diagnostics_.error(decl.name.location,
                         fmt::format("param '{}' is too large ({} x {} x {} elements)",
                                     decl.name.text, *dims[0], *dims[1], *dims[2]));
      ok = false;
    }
    if (ok) {
      value->weightLayout = *layout;
      bool wio = *layout == WeightLayout::WIO;
      value->kernelWidth = wio ? *dims[0] : *dims[2];
      value->inChannelsPerGroup = *dims[1];
      value->outChannels = wio ? *dims[2] : *dims[0];
    }
    if (define(decl.name, value) && ok) graph_->params.push_back(value);
  }

  void buildBias(const ast::TensorDecl& decl, bool ok) {
    Value* value = graph_->newValue(ValueKind::Bias, decl.name.text, decl.name.location);
    if (decl.layout) {
      diagnostics_.error(decl.layout->location,
                         fmt::format("bias '{}' takes no layout clause", decl.name.text));
      ok = false;
    }
    auto length = integerDim(decl.dims[0], "bias length", 1);
    ok = ok && length;
    if (ok) value->biasLength = *length;
    if (define(decl.name, value) && ok) graph_->params.push_back(value);
  }

  void buildAssignment(const ast::Assignment& assignment) {
    Value* value = buildExpr(assignment.value, assignment.target.text);
    if (value && assignment.value.kind == ast::Expr::Kind::Name) {
      // `y = x` names a copy, so that y and x stay distinct values (two outputs, say).
      if (!value->isActivation()) {
        diagnostics_.error(
            assignment.value.location,
            fmt::format("'{}' is a param; only activations can be assigned", value->name));
        value = nullptr;
      } else {
        Op* op = graph_->appendOp(OpKind::Map, assignment.value.location);
        op->operands = {value};
        value = newResult(op, assignment.target.text, value);
      }
    }
    define(assignment.target, value);
  }

  void buildOutput(const ast::OutputStmt& output) {
    Value* value = lookup(output.name.text, output.name.location);
    std::optional<Layout> layout;
    if (output.layout)
      layout = parseLayout(*output.layout, "output");
    else if (!graph_->inputs.empty())
      layout = graph_->inputs.front()->layout;
    else
      layout = Layout::NWC;
    if (!value || !layout) return;
    if (!value->isActivation()) {
      diagnostics_.error(
          output.name.location,
          fmt::format("'{}' is a param; only activations can be outputs", output.name.text));
      return;
    }
    for (const Output& existing : graph_->outputs) {
      if (existing.name == output.name.text) {
        diagnostics_.error(output.name.location,
                           fmt::format("'{}' is already an output", output.name.text));
        diagnostics_.note(existing.location, "first output here");
        return;
      }
    }
    graph_->outputs.push_back({output.name.text, value, *layout, output.name.location});
  }

  // A value for `expr`; `resultName` names the value a call produces.
  Value* buildExpr(const ast::Expr& expr, const std::string& resultName) {
    if (expr.kind == ast::Expr::Kind::Name) return lookup(expr.name, expr.location);
    return buildCall(expr, resultName);
  }

  Value* activationOperand(const ast::Expr& expr, const std::string& op) {
    Value* value = buildExpr(expr, temporaryName());
    if (value && !value->isActivation()) {
      diagnostics_.error(
          expr.location,
          fmt::format("{} expects an activation here, but '{}' is a param", op, value->name));
      return nullptr;
    }
    return value;
  }

  std::string temporaryName() { return std::to_string(temporaries_++); }

  Value* newResult(Op* op, const std::string& resultName, const Value* like) {
    Value* result = graph_->newValue(ValueKind::Activation, resultName, op->location);
    result->producer = op;
    result->layout = like ? like->layout : Layout::NWC;
    op->result = result;
    return result;
  }

  Value* buildCall(const ast::Expr& call, const std::string& resultName) {
    static const std::map<std::string, OpKind> kOps = {
        {"conv1d", OpKind::Conv1d},   {"relu", OpKind::Relu},
        {"relu6", OpKind::Relu6},     {"leaky_relu", OpKind::LeakyRelu},
        {"sigmoid", OpKind::Sigmoid}, {"tanh", OpKind::Tanh},
        {"add", OpKind::Add}};
    auto it = kOps.find(call.name);
    if (it == kOps.end()) {
      diagnostics_.error(call.location,
                         fmt::format("unknown op '{}' (known: add, conv1d, leaky_relu, relu, "
                                     "relu6, sigmoid, tanh)",
                                     call.name));
      return nullptr;
    }
    if (!checkKeywords(call)) return nullptr;
    switch (it->second) {
      case OpKind::Conv1d:
        return buildConv(call, resultName);
      case OpKind::Add:
        return buildAdd(call, resultName);
      default:
        return buildActivation(call, it->second, resultName);
    }
  }

  bool checkKeywords(const ast::Expr& call) {
    static const std::map<std::string, std::set<std::string>> kAllowed = {
        {"conv1d", {"stride", "padding", "dilation", "groups", "padding_mode"}},
        {"leaky_relu", {"alpha"}},
    };
    auto allowed = kAllowed.find(call.name);
    std::set<std::string> seen;
    bool ok = true;
    for (const ast::KeywordArg& arg : call.keywordArgs) {
      if (allowed == kAllowed.end() || !allowed->second.count(arg.key.text)) {
        diagnostics_.error(arg.key.location,
                           fmt::format("unknown argument '{}' for {}", arg.key.text, call.name));
        ok = false;
      } else if (!seen.insert(arg.key.text).second) {
        diagnostics_.error(arg.key.location,
                           fmt::format("argument '{}' given twice", arg.key.text));
        ok = false;
      }
    }
    return ok;
  }

  bool checkArity(const ast::Expr& call, size_t minimum, size_t maximum, const char* form) {
    size_t count = call.args.size();
    if (count >= minimum && count <= maximum) return true;
    diagnostics_.error(call.location,
                       fmt::format("{} takes {}, but {} positional argument{} given", call.name,
                                   form, count, count == 1 ? " was" : "s were"));
    return false;
  }

  std::optional<int64_t> positiveInteger(const ast::KeywordArg& arg) {
    if (arg.value.kind != ast::AttrValue::Kind::Int) {
      diagnostics_.error(arg.value.location, fmt::format("'{}' must be an integer", arg.key.text));
      return std::nullopt;
    }
    if (arg.value.intValue < 1) {
      diagnostics_.error(arg.value.location, fmt::format("'{}' must be positive, got {}",
                                                         arg.key.text, arg.value.intValue));
      return std::nullopt;
    }
    return arg.value.intValue;
  }

  bool parsePadding(const ast::AttrValue& v, Op& op) {
    static const std::map<std::string, PaddingKind> kNamed = {
        {"valid", PaddingKind::Valid},
        {"same", PaddingKind::Same},
        {"same_lower", PaddingKind::SameLower},
        {"causal", PaddingKind::Causal}};
    auto nonNegative = [&](const ast::AttrValue& e, int64_t& out) {
      if (e.kind != ast::AttrValue::Kind::Int) {
        diagnostics_.error(e.location, "padding amounts must be integers");
        return false;
      }
      if (e.intValue < 0) {
        diagnostics_.error(e.location,
                           fmt::format("padding must not be negative, got {}", e.intValue));
        return false;
      }
      out = e.intValue;
      return true;
    };
    switch (v.kind) {
      case ast::AttrValue::Kind::Name: {
        auto it = kNamed.find(v.name);
        if (it == kNamed.end()) {
          diagnostics_.error(v.location,
                             fmt::format("unknown padding '{}' (expected valid, same, same_lower, "
                                         "causal, an integer or (left, right))",
                                         v.name));
          return false;
        }
        op.padding = it->second;
        return true;
      }
      case ast::AttrValue::Kind::Int:
        op.padding = PaddingKind::Explicit;
        if (!nonNegative(v, op.explicitPadLeft)) return false;
        op.explicitPadRight = op.explicitPadLeft;
        return true;
      case ast::AttrValue::Kind::Tuple:
        if (v.elements.size() != 2) {
          diagnostics_.error(v.location, fmt::format("a padding tuple is (left, right): 2 values, "
                                                     "not {}",
                                                     v.elements.size()));
          return false;
        }
        op.padding = PaddingKind::Explicit;
        return nonNegative(v.elements[0], op.explicitPadLeft) &&
               nonNegative(v.elements[1], op.explicitPadRight);
      default:
        diagnostics_.error(v.location,
                           "padding must be valid, same, same_lower, causal, an integer or "
                           "(left, right)");
        return false;
    }
  }

  bool parsePaddingMode(const ast::AttrValue& v, Op& op) {
    static const std::map<std::string, PaddingMode> kModes = {{"zeros", PaddingMode::Zeros},
                                                              {"reflect", PaddingMode::Reflect},
                                                              {"replicate", PaddingMode::Replicate},
                                                              {"circular", PaddingMode::Circular}};
    auto it = v.kind == ast::AttrValue::Kind::Name ? kModes.find(v.name) : kModes.end();
    if (it == kModes.end()) {
      diagnostics_.error(v.location, "padding_mode must be zeros, reflect, replicate or circular");
      return false;
    }
    op.paddingMode = it->second;
    return true;
  }

  Value* buildConv(const ast::Expr& call, const std::string& resultName) {
    if (!checkArity(call, 2, 3, "(x, w[, b]) as positional arguments")) return nullptr;
    Value* input = activationOperand(call.args[0], "conv1d");
    Value* weight = buildExpr(call.args[1], temporaryName());
    Value* bias = call.args.size() == 3 ? buildExpr(call.args[2], temporaryName()) : nullptr;
    bool ok = input != nullptr && weight != nullptr && (call.args.size() == 2 || bias != nullptr);
    if (weight && weight->kind != ValueKind::Weight) {
      diagnostics_.error(call.args[1].location,
                         fmt::format("conv1d's weight must be a rank-3 param, but '{}' is {}",
                                     weight->name, describe(*weight)));
      ok = false;
    }
    if (bias && bias->kind != ValueKind::Bias) {
      diagnostics_.error(call.args[2].location,
                         fmt::format("conv1d's bias must be a rank-1 param, but '{}' is {}",
                                     bias->name, describe(*bias)));
      ok = false;
    }
    auto op = std::make_unique<Op>();
    op->kind = OpKind::Conv1d;
    op->location = call.location;
    for (const ast::KeywordArg& arg : call.keywordArgs) {
      const std::string& key = arg.key.text;
      if (key == "padding") {
        ok = parsePadding(arg.value, *op) && ok;
      } else if (key == "padding_mode") {
        ok = parsePaddingMode(arg.value, *op) && ok;
      } else if (auto v = positiveInteger(arg)) {
        (key == "stride" ? op->stride : key == "dilation" ? op->dilation : op->groups) = *v;
      } else {
        ok = false;
      }
    }
    if (!ok) return nullptr;
    Op* appended = graph_->appendOp(OpKind::Conv1d, call.location);
    *appended = std::move(*op);
    appended->operands = {input, weight};
    if (bias) appended->operands.push_back(bias);
    appended->hasBias = bias != nullptr;
    return newResult(appended, resultName, input);
  }

  static std::string describe(const Value& v) {
    switch (v.kind) {
      case ValueKind::Weight:
        return "a rank-3 param";
      case ValueKind::Bias:
        return "a rank-1 param";
      default:
        return "an activation";
    }
  }

  Value* buildAdd(const ast::Expr& call, const std::string& resultName) {
    if (!checkArity(call, 2, 2, "two activations")) return nullptr;
    Value* a = activationOperand(call.args[0], "add");
    Value* b = activationOperand(call.args[1], "add");
    if (!a || !b) return nullptr;
    Op* op = graph_->appendOp(OpKind::Add, call.location);
    op->operands = {a, b};
    return newResult(op, resultName, a);
  }

  Value* buildActivation(const ast::Expr& call, OpKind kind, const std::string& resultName) {
    if (!checkArity(call, 1, 1, "one activation")) return nullptr;
    Value* x = activationOperand(call.args[0], call.name);
    float alpha = 0.01f;
    bool ok = x != nullptr;
    for (const ast::KeywordArg& arg : call.keywordArgs) {
      if (arg.value.kind != ast::AttrValue::Kind::Int &&
          arg.value.kind != ast::AttrValue::Kind::Float) {
        diagnostics_.error(arg.value.location, "'alpha' must be a number");
        ok = false;
      } else {
        alpha = static_cast<float>(arg.value.floatValue);
      }
    }
    if (!ok) return nullptr;
    Op* op = graph_->appendOp(kind, call.location);
    op->operands = {x};
    op->alpha = alpha;
    return newResult(op, resultName, x);
  }

  const ast::Model& model_;
  DiagnosticEngine& diagnostics_;
  std::unique_ptr<Graph> graph_;
  std::map<std::string, Definition> scope_;
  std::map<std::string, SourceLocation> firstDefinition_;
  int temporaries_ = 0;
};

}  // namespace

std::unique_ptr<Graph> buildGraph(const ast::Model& model, DiagnosticEngine& diagnostics) {
  return AstToIr(model, diagnostics).build();
}

const ast::Model& selectModel(const ast::Module& module, const std::string& name) {
  if (name.empty()) {
    if (module.models.size() == 1) return module.models.front();
    std::vector<std::string> names;
    for (const ast::Model& m : module.models) names.push_back(m.name.text);
    throw usageError(fmt::format("the file holds several models ({}); choose one with --model",
                                 fmt::join(names, ", ")));
  }
  for (const ast::Model& m : module.models)
    if (m.name.text == name) return m;
  throw usageError(fmt::format("no model named '{}' in the file", name));
}

}  // namespace cnv::ir
