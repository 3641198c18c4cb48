#include "compiler/port/PytorchPort.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "cnv/Error.h"

namespace cnv::port {
namespace {

using ir::Op;
using ir::OpKind;
using ir::PaddingKind;
using ir::Value;

const std::set<std::string>& reservedNames() {
  // Python's keywords and the names the generated file itself uses.
  static const std::set<std::string> names = {
      "False",  "None",   "True",    "and",      "as",       "assert",     "async",
      "await",  "break",  "class",   "continue", "def",      "del",        "elif",
      "else",   "except", "finally", "for",      "from",     "global",     "if",
      "import", "in",     "is",      "lambda",   "nonlocal", "not",        "or",
      "pass",   "raise",  "return",  "try",      "while",    "with",       "yield",
      "self",   "torch",  "nn",      "F",        "super",    "_same_pads", "_same_lower_pads",
      "print",  "max",    "min",     "int",      "float",    "tuple"};
  return names;
}

std::string pythonName(const std::string& name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return "t" + name;
  return reservedNames().count(name) ? name + "_" : name;
}

// F.pad's name for `mode`.
const char* padMode(ir::PaddingMode mode) {
  return mode == ir::PaddingMode::Zeros ? "constant" : ir::name(mode);
}

// How the declared padding reads in the source, for the comments.
std::string declaredPadding(const Op& op) {
  switch (op.padding) {
    case PaddingKind::Valid:
      return "padding=valid";
    case PaddingKind::Same:
      return "padding=same";
    case PaddingKind::SameLower:
      return "padding=same_lower";
    case PaddingKind::Causal:
      return "padding=causal";
    case PaddingKind::Explicit:
      return op.explicitPadLeft == op.explicitPadRight
                 ? fmt::format("padding={}", op.explicitPadLeft)
                 : fmt::format("padding=({}, {})", op.explicitPadLeft, op.explicitPadRight);
  }
  return "padding";
}

// One conv as nn.Conv1d arguments and what must happen to its input first.
struct ConvPlan {
  std::string module;     // attribute name: conv_<result>
  std::string arguments;  // nn.Conv1d(...)
  // F.pad's amounts as Python (empty: none), e.g. "(1, 2)" or "_same_pads(x.shape[-1], 5, 2)",
  // and its mode.
  std::string pad;
  std::string padModeArgument;
  bool padNeedsName = false;  // the pad reads the input's width: the input needs a name
  std::string why;            // the comment on the conversion, empty if none is needed
};

ConvPlan planConv(const Op& op) {
  const Value& w = *op.operands[1];
  const int64_t E = op.dilation * (w.kernelWidth - 1) + 1;
  ConvPlan plan;
  plan.module = "conv_" + op.result->name;
  std::string args = fmt::format("{}, {}, kernel_size={}", w.inChannelsPerGroup * op.groups,
                                 w.outChannels, w.kernelWidth);
  if (op.stride != 1) args += fmt::format(", stride={}", op.stride);
  if (op.dilation != 1) args += fmt::format(", dilation={}", op.dilation);
  if (op.groups != 1) args += fmt::format(", groups={}", op.groups);
  if (!op.hasBias) args += ", bias=False";
  const std::string mode = padMode(op.paddingMode);
  const std::string moduleMode =
      op.paddingMode == ir::PaddingMode::Zeros ? "" : fmt::format(", padding_mode='{}'", mode);
  plan.padModeArgument =
      op.paddingMode == ir::PaddingMode::Zeros ? "" : fmt::format(", mode='{}'", mode);
  const bool constant = op.padLeft.isConstant() && op.padRight.isConstant();
  const int64_t left = constant ? op.padLeft.constant() : -1;
  const int64_t right = constant ? op.padRight.constant() : -1;
  const std::string declared = declaredPadding(op);

  if (op.padding == PaddingKind::Same && op.stride == 1) {
    // PyTorch's 'same' puts the odd element on the right, as TensorFlow's SAME does.
    if (left != 0 || right != 0) args += ", padding='same'" + moduleMode;
  } else if (constant && left == right) {
    if (left != 0) args += fmt::format(", padding={}", left) + moduleMode;
    if (op.padding == PaddingKind::Same || op.padding == PaddingKind::SameLower)
      plan.why = fmt::format("{}{} pads ({}, {}) at this width -> padding={}", declared,
                             op.stride > 1 ? fmt::format(" with stride {}", op.stride) : "", left,
                             right, left);
  } else if (constant) {
    plan.pad = fmt::format("({}, {})", left, right);
    switch (op.padding) {
      case PaddingKind::Causal:
        plan.why = fmt::format("{} -> F.pad(x, ({}, 0)){} because PyTorch has no causal padding",
                               declared, left, plan.padModeArgument);
        break;
      case PaddingKind::Same:
      case PaddingKind::SameLower:
        plan.why = fmt::format(
            "{}{} -> F.pad(x, ({}, {})){} because nn.Conv1d pads both sides by one amount{}",
            declared, op.stride > 1 ? fmt::format(" with stride {}", op.stride) : "", left, right,
            plan.padModeArgument, op.stride > 1 ? " and refuses padding='same' with a stride" : "");
        break;
      default:
        plan.why = fmt::format(
            "{} -> F.pad(x, ({}, {})){} because nn.Conv1d pads both sides by "
            "one amount",
            declared, left, right, plan.padModeArgument);
    }
  } else {
    // Amounts that depend on the width: strided same and same_lower.
    const char* helper = op.padding == PaddingKind::SameLower ? "_same_lower_pads" : "_same_pads";
    plan.pad = fmt::format("{}({{input}}.shape[-1], {}, {})", helper, E, op.stride);
    plan.padNeedsName = true;
    plan.why = fmt::format(
        "{} with stride {} -> F.pad(x, {}(width, {}, {})){} because PyTorch refuses "
        "padding='same' with a stride; the amounts depend on the width",
        declared, op.stride, helper, E, op.stride, plan.padModeArgument);
  }
  plan.arguments = args;
  return plan;
}

std::string layoutOfNcw(const std::vector<std::string>& dims) {
  return fmt::format("[{}]", fmt::join(dims, ", "));
}

class Generator {
 public:
  Generator(const CompiledIr& compiled, LayoutMode layout)
      : compiled_(compiled), graph_(*compiled.graph), layout_(layout) {}

  PytorchModule run() {
    PytorchModule result;
    result.className = pythonName(graph_.name);
    collectUses();
    nameValues();
    nameModules();
    std::vector<std::string> init, forward, conversions;
    std::map<const Value*, std::string> ownerOf;  // param → the module attribute holding it
    bool needsSame = false, needsSameLower = false;

    for (const Value* input : graph_.inputs) {
      const std::string name = nameOf(input);
      const bool nwc = input->layout == ir::Layout::NWC;
      if (nwc && layout_ == LayoutMode::Declared) {
        forward.push_back(fmt::format("{0} = {0}.permute(0, 2, 1)  # NWC -> NCW", name));
        conversions.push_back(fmt::format("input {}: NWC {} -> NCW at the start of forward",
                                          input->name,
                                          layoutOfNcw(activationDims(*input, ir::Layout::NWC))));
      } else if (nwc) {
        conversions.push_back(
            fmt::format("input {}: declared NWC {}, taken NCW {} (--layout=pytorch)", input->name,
                        layoutOfNcw(activationDims(*input, ir::Layout::NWC)),
                        layoutOfNcw(activationDims(*input, ir::Layout::NCW))));
      }
    }
    for (const Value* p : graph_.params) {
      if (p->kind != ir::ValueKind::Weight) continue;
      if (p->weightLayout == ir::WeightLayout::WIO)
        conversions.push_back(fmt::format("{}: WIO [{}] -> OIW [{}, {}, {}]", p->name,
                                          fmt::join(paramDims(*p), ", "), p->outChannels,
                                          p->inChannelsPerGroup, p->kernelWidth));
    }

    for (const auto& op : graph_.ops) {
      const Value* result = op->result;
      std::string expression;
      auto operand = [&](size_t i) { return text(op->operands[i]); };
      switch (op->kind) {
        case OpKind::Conv1d: {
          ConvPlan plan = planConv(*op);
          plan.module = moduleNames_.at(op.get());
          init.push_back(fmt::format("self.{} = nn.Conv1d({})", plan.module, plan.arguments));
          bindParam(result, op->operands[1], plan.module + ".weight", ownerOf, init, result_);
          if (op->hasBias)
            bindParam(result, op->operands[2], plan.module + ".bias", ownerOf, init, result_);
          std::string input = operand(0);
          if (!plan.pad.empty()) {
            std::string amounts = plan.pad;
            const size_t at = amounts.find("{input}");
            if (at != std::string::npos) amounts.replace(at, 7, input);
            needsSame |= amounts.find("_same_pads") != std::string::npos;
            needsSameLower |= amounts.find("_same_lower_pads") != std::string::npos;
            input = fmt::format("F.pad({}, {}{})", input, amounts, plan.padModeArgument);
          }
          expression = fmt::format("self.{}({})", plan.module, input);
          if (!plan.why.empty())
            conversions.push_back(fmt::format("{} (line {}, column {}): {}", displayName(result),
                                              op->location.line, op->location.column, plan.why));
          break;
        }
        case OpKind::Relu:
          expression = fmt::format("F.relu({})", operand(0));
          break;
        case OpKind::Relu6:
          expression = fmt::format("F.relu6({})", operand(0));
          break;
        case OpKind::LeakyRelu:
          expression = fmt::format("F.leaky_relu({}, negative_slope={})", operand(0), op->alpha);
          break;
        case OpKind::Sigmoid:
          expression = fmt::format("torch.sigmoid({})", operand(0));
          break;
        case OpKind::Tanh:
          expression = fmt::format("torch.tanh({})", operand(0));
          break;
        case OpKind::Add:
          expression = fmt::format("{} + {}", operand(0), operand(1));
          break;
        case OpKind::Map:
          // Before layout assignment a map is the source's copy `y = x`.
          if (!op->epilogue.empty())
            throw internalError("internal error: port sees a map with an epilogue");
          expression = operand(0);
          break;
      }
      if (inlined(result)) {
        inline_[result] = op->kind == OpKind::Add ? "(" + expression + ")" : expression;
      } else {
        forward.push_back(fmt::format("{} = {}", nameOf(result), expression));
      }
    }

    std::vector<std::string> returned;
    for (const ir::Output& o : graph_.outputs) {
      std::string value = text(o.value);
      if (o.layout == ir::Layout::NWC && layout_ == LayoutMode::Declared) {
        value += ".permute(0, 2, 1)";
        conversions.push_back(fmt::format("output {}: NCW -> NWC {} at the end of forward", o.name,
                                          layoutOfNcw(activationDims(*o.value, ir::Layout::NWC))));
      } else if (o.layout == ir::Layout::NWC) {
        conversions.push_back(
            fmt::format("output {}: declared NWC, returned NCW {} (--layout=pytorch)", o.name,
                        layoutOfNcw(activationDims(*o.value, ir::Layout::NCW))));
      }
      returned.push_back(value);
    }

    std::string out;
    out += fmt::format(
        "# Generated by cnvc {} from {}: model `{}` as a PyTorch module.\n", CNV_VERSION,
        std::filesystem::path(compiled_.source->name()).filename().string(), graph_.name);
    out += fmt::format(
        "#\n# forward({}) takes {} and returns {}.\n", fmt::join(forwardArguments(), ", "),
        layout_ == LayoutMode::Declared ? "every input in its declared layout" : "every input NCW",
        layout_ == LayoutMode::Declared ? "every output in its declared layout"
                                        : "every output NCW");
    out += "#\n# Conversions made:\n";
    if (conversions.empty()) out += "#   none: the model is PyTorch's own\n";
    for (const std::string& c : conversions) out += "#   " + c + "\n";
    out += "\nimport torch\nimport torch.nn as nn\nimport torch.nn.functional as F\n";
    if (needsSame)
      out += R"(

def _same_pads(width, kernel, stride):
    """TensorFlow's SAME: the total padding the stride needs, its smaller half on the left."""
    total = max((-(-width // stride) - 1) * stride + kernel - width, 0)
    return (total // 2, total - total // 2)
)";
    if (needsSameLower)
      out += R"(

def _same_lower_pads(width, kernel, stride):
    """ONNX's SAME_LOWER: as TensorFlow's SAME, but the larger half on the left."""
    total = max((-(-width // stride) - 1) * stride + kernel - width, 0)
    return (total - total // 2, total // 2)
)";
    out += fmt::format(
        "\n\nclass {}(nn.Module):\n    def __init__(self):\n        super().__init__()\n",
        result.className);
    for (const std::string& line : init) out += "        " + line + "\n";
    out += fmt::format("\n    def forward(self, {}):\n", fmt::join(forwardArguments(), ", "));
    for (const std::string& line : forward) out += "        " + line + "\n";
    out += fmt::format(
        "        return {}\n",
        returned.size() == 1 ? returned[0] : fmt::format("({},)", fmt::join(returned, ", ")));
    // The state_dict from the model's params as the user holds them (a TensorFlow
    // checkpoint's WIO kernels, say): what --weights writes to NAME.pt, for those who
    // load weights themselves.
    out += R"(
    @staticmethod
    def state_dict_from(params):
        """This module's state_dict from the .cnv model's params: a dict of arrays (or
        tensors) by param name, each in its declared layout. Use it as
        module.load_state_dict(module.state_dict_from(params))."""
        def param(name):
            return torch.as_tensor(params[name], dtype=torch.float32)

        return {
)";
    for (const StateEntry& entry : result_)
      out += fmt::format("            \"{}\": param(\"{}\"){},\n", entry.key, entry.param,
                         entry.fromWio ? ".permute(2, 1, 0).contiguous()" : "");
    out += "        }\n";
    result.source = out;
    result.stateDict = result_;
    return result;
  }

 private:
  // Python names for the values: the source's own where they are valid, tmpN for nested
  // calls, never two the same.
  void nameValues() {
    std::set<std::string> used;
    for (const Value* v : graph_.inputs) used.insert(pythonName(v->name));
    for (const auto& op : graph_.ops)
      if (!std::isdigit(static_cast<unsigned char>(op->result->name[0])))
        used.insert(pythonName(op->result->name));
    auto give = [&](const Value* v, bool temporary) {
      if (!temporary) return names_.emplace(v, pythonName(v->name)), void();
      std::string name = "tmp" + v->name;
      while (used.count(name)) name += "_";
      used.insert(name);
      names_.emplace(v, name);
    };
    for (const Value* v : graph_.inputs) give(v, false);
    for (const auto& op : graph_.ops)
      give(op->result, std::isdigit(static_cast<unsigned char>(op->result->name[0])));
  }
  const std::string& nameOf(const Value* v) const { return names_.at(v); }

  // conv_<name>, after the statement the conv is part of: `h1 = relu(conv1d(...))`
  // gives conv_h1, as one would name it by hand.
  void nameModules() {
    std::map<const Value*, const Op*> consumer;
    for (const auto& op : graph_.ops)
      for (const Value* v : op->operands) consumer[v] = op.get();
    std::set<std::string> used;
    for (const auto& op : graph_.ops) {
      if (op->kind != OpKind::Conv1d) continue;
      const Value* v = op->result;
      while (std::isdigit(static_cast<unsigned char>(v->name[0])) && uses_[v] == 1 &&
             consumer.count(v))
        v = consumer[v]->result;
      std::string name = "conv_" + v->name;
      for (int k = 2; used.count(name); ++k) name = fmt::format("conv_{}_{}", v->name, k);
      used.insert(name);
      moduleNames_[op.get()] = name;
    }
  }

  void collectUses() {
    for (const auto& op : graph_.ops)
      for (const Value* v : op->operands) ++uses_[v];
    for (const auto& op : graph_.ops)
      if (op->kind == OpKind::Conv1d && !planConv(*op).pad.empty() && planConv(*op).padNeedsName)
        named_.insert(op->operands[0]);
  }
  // A temporary of the source (a nested call) used once, by an op, is written inline.
  bool inlined(const Value* v) const {
    const bool temporary = !v->name.empty() && std::isdigit(static_cast<unsigned char>(v->name[0]));
    auto it = uses_.find(v);
    return temporary && it != uses_.end() && it->second == 1 && !graph_.isOutput(v) &&
           !named_.count(v);
  }
  std::string text(const Value* v) const {
    auto it = inline_.find(v);
    return it != inline_.end() ? it->second : nameOf(v);
  }
  std::string displayName(const Value* v) const {
    return std::isdigit(static_cast<unsigned char>(v->name[0])) ? "a nested conv1d" : v->name;
  }
  std::vector<std::string> forwardArguments() const {
    std::vector<std::string> names;
    for (const Value* input : graph_.inputs) names.push_back(nameOf(input));
    return names;
  }
  // The first conv to use a param owns it; later ones share the same nn.Parameter.
  void bindParam(const Value*, const Value* param, const std::string& attribute,
                 std::map<const Value*, std::string>& ownerOf, std::vector<std::string>& init,
                 std::vector<StateEntry>& entries) {
    auto [owner, first] = ownerOf.emplace(param, attribute);
    if (!first)
      init.push_back(
          fmt::format("self.{} = self.{}  # {} is shared", attribute, owner->second, param->name));
    entries.push_back(
        {attribute, param->name,
         param->kind == ir::ValueKind::Weight && param->weightLayout == ir::WeightLayout::WIO});
  }

  const CompiledIr& compiled_;
  const ir::Graph& graph_;
  LayoutMode layout_;
  std::map<const Value*, int> uses_;
  std::set<const Value*> named_;
  std::map<const Value*, std::string> inline_;
  std::map<const Value*, std::string> names_;
  std::map<const Op*, std::string> moduleNames_;
  std::vector<StateEntry> result_;
};

}  // namespace

passes::PipelineOptions portPipeline() {
  passes::PipelineOptions options;
  options.stopAfter = "padding-resolution";
  return options;
}

PytorchModule portToPytorch(const CompiledIr& compiled, LayoutMode layout) {
  return Generator(compiled, layout).run();
}

}  // namespace cnv::port
