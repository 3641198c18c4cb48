#include "compiler/port/Lint.h"

#include <fmt/format.h>

#include <algorithm>

namespace cnv::port {
namespace {

using ir::Op;
using ir::PaddingKind;

// F.pad's mode argument for `mode`, empty for zeros.
std::string torchModeArgument(ir::PaddingMode mode) {
  return mode == ir::PaddingMode::Zeros ? "" : fmt::format(", mode='{}'", ir::name(mode));
}

struct Finding {
  const char* rule;
  std::string warning, note;
};

class Linter {
 public:
  explicit Linter(DiagnosticEngine& diagnostics) : diagnostics_(diagnostics) {}

  void pytorch(const Op& op) {
    const int64_t E = effectiveWidth(op);
    const std::string mode = torchModeArgument(op.paddingMode);
    if (op.padding == PaddingKind::Same && op.stride > 1 && E > 1)
      report(op,
             {"pytorch-same-stride",
              fmt::format("PyTorch refuses padding='same' with stride {} ({})", op.stride,
                          "ValueError: padding='same' is not supported for strided convolutions"),
              fmt::format("in PyTorch, pad first: F.pad(x, {}{}) then nn.Conv1d(..., stride={}, "
                          "padding=0); `cnvc port` writes it",
                          padsText(op, "T // 2", "T - T // 2"), mode, op.stride)});
    if (op.padding == PaddingKind::SameLower && !symmetric(op))
      report(op,
             {"pytorch-same-lower",
              "padding=same_lower puts the odd padding element on the left; PyTorch's "
              "'same' puts it on the right (a silent shift by one)",
              fmt::format("in PyTorch, pad first: F.pad(x, {}{}) then nn.Conv1d(..., padding=0)",
                          padsText(op, "T - T // 2", "T // 2"), mode)});
    if (op.padding == PaddingKind::Explicit && op.explicitPadLeft != op.explicitPadRight)
      report(op, {"pytorch-asymmetric-padding",
                  fmt::format("nn.Conv1d pads both sides by one amount; padding=({}, {}) cannot "
                              "be given to it",
                              op.explicitPadLeft, op.explicitPadRight),
                  fmt::format("in PyTorch, pad first: F.pad(x, ({}, {}){}) then nn.Conv1d(..., "
                              "padding=0)",
                              op.explicitPadLeft, op.explicitPadRight, mode)});
    if (op.padding == PaddingKind::Causal && E > 1)
      report(op, {"pytorch-causal",
                  "PyTorch has no causal padding (ValueError: Invalid padding string 'causal')",
                  fmt::format("in PyTorch, pad the left only: F.pad(x, ({}, 0){}) then "
                              "nn.Conv1d(..., padding=0)",
                              E - 1, mode)});
  }

  void keras(const Op& op) {
    const int64_t E = effectiveWidth(op);
    if (op.stride > 1 && op.dilation > 1)
      report(op, {"keras-stride-dilation",
                  fmt::format("Keras Conv1D refuses strides > 1 with dilation_rate > 1 (here {} "
                              "and {})",
                              op.stride, op.dilation),
                  fmt::format("in Keras, convolve at stride 1 and keep every {}th position: "
                              "Conv1D(strides=1, dilation_rate={}, padding='valid') on the input "
                              "padded as cnv pads it, then y[:, ::{}, :]",
                              op.stride, op.dilation, op.stride)});
    if (op.padding == PaddingKind::Explicit && (op.explicitPadLeft > 0 || op.explicitPadRight > 0))
      report(op, {"keras-explicit-padding",
                  "Keras Conv1D takes padding 'valid', 'same' or 'causal' only, not amounts",
                  fmt::format("in Keras, pad first: ZeroPadding1D(padding=({}, {})) then "
                              "Conv1D(..., padding='valid'){}",
                              op.explicitPadLeft, op.explicitPadRight,
                              op.paddingMode == ir::PaddingMode::Zeros
                                  ? ""
                                  : " (see keras-padding-mode for the mode)")});
    if (op.padding == PaddingKind::SameLower && !symmetric(op))
      report(op, {"keras-same-lower",
                  "padding=same_lower puts the odd padding element on the left; Keras 'same' "
                  "puts it on the right (a silent shift by one)",
                  fmt::format("in Keras, pad first: ZeroPadding1D(padding={}) then "
                              "Conv1D(..., padding='valid')",
                              padsText(op, "T - T // 2", "T // 2"))});
    const bool pads = !(op.padLeft.isConstant() && op.padRight.isConstant() &&
                        op.padLeft.constant() == 0 && op.padRight.constant() == 0);
    if (op.paddingMode != ir::PaddingMode::Zeros && pads) {
      std::string how;
      switch (op.paddingMode) {
        case ir::PaddingMode::Reflect:
          how =
              "tf.pad(x, [[0, 0], [l, r], [0, 0]], mode='REFLECT') (TensorFlow's REFLECT is "
              "PyTorch's reflect)";
          break;
        case ir::PaddingMode::Replicate:
          how = "tf.concat([tf.repeat(x[:, :1], l, 1), x, tf.repeat(x[:, -1:], r, 1)], 1)";
          break;
        default:
          how = "tf.concat([x[:, W - l:], x, x[:, :r]], 1)";
      }
      report(op, {"keras-padding-mode",
                  fmt::format("Keras Conv1D has no padding_mode; padding_mode={} must be written "
                              "as a pad",
                              ir::name(op.paddingMode)),
                  fmt::format("in Keras, pad with {} and l, r = {}, then Conv1D(..., "
                              "padding='valid')",
                              how,
                              op.padding == PaddingKind::SameLower
                                  ? padsText(op, "T - T // 2", "T // 2")
                                  : padsText(op, "T // 2", "T - T // 2"))});
    }
    const ir::Value* input = op.operands[0];
    if (input->kind == ir::ValueKind::Input && input->layout == ir::Layout::NCW)
      report(op, {"keras-channels-first-cpu",
                  fmt::format("input '{}' is NCW (channels_first): TensorFlow's CPU conv kernels "
                              "support channels_last only",
                              input->name),
                  "in Keras, transpose to NWC first: Permute((2, 1)) then Conv1D(..., "
                  "data_format='channels_last')"});
    if (op.groups > 1)
      report(op, {"keras-groups",
                  fmt::format("grouped Conv1D (groups={}) needs TensorFlow 2.3 or later and, on "
                              "the CPU, XLA",
                              op.groups),
                  op.isDepthwise()
                      ? fmt::format("in Keras, DepthwiseConv1D({}, depth_multiplier={}) computes "
                                    "this conv without groups",
                                    op.operands[1]->kernelWidth,
                                    op.operands[1]->outChannels / op.groups)
                      : fmt::format("in Keras, Conv1D(..., groups={}), or split the input in {} "
                                    "with tf.split, convolve each part and tf.concat the results",
                                    op.groups, op.groups)});
    (void)E;
  }

  void activation(const Op& op, Framework target) {
    if (target == Framework::Keras && op.kind == ir::OpKind::LeakyRelu && op.alpha < 0)
      report(op,
             {"keras-leaky-relu-negative-alpha",
              fmt::format("Keras LeakyReLU refuses a negative slope (alpha={})", op.alpha),
              fmt::format("in Keras, write tf.maximum(x, 0) + {} * tf.minimum(x, 0)", op.alpha)});
  }

 private:
  static int64_t effectiveWidth(const Op& op) {
    return op.dilation * (op.operands[1]->kernelWidth - 1) + 1;
  }
  static bool symmetric(const Op& op) {
    return op.padLeft.isConstant() && op.padRight.isConstant() &&
           op.padLeft.constant() == op.padRight.constant();
  }
  // The resolved amounts as "(l, r)", or, when they depend on the width, how to compute
  // them from T, the total padding.
  static std::string padsText(const Op& op, const char* left, const char* right) {
    if (op.padLeft.isConstant() && op.padRight.isConstant())
      return fmt::format("({}, {})", op.padLeft.constant(), op.padRight.constant());
    return fmt::format(
        "({0}, {1}) with T = max((ceil(L / {2}) - 1) * {2} + {3} - L, 0) for the "
        "width L",
        left, right, op.stride, effectiveWidth(op));
  }
  void report(const Op& op, const Finding& finding) {
    diagnostics_.warning(op.location, fmt::format("{} [{}]", finding.warning, finding.rule));
    diagnostics_.note(op.location, finding.note);
  }

  DiagnosticEngine& diagnostics_;
};

}  // namespace

void lint(const ir::Graph& graph, const std::vector<Framework>& targets,
          DiagnosticEngine& diagnostics) {
  Linter linter(diagnostics);
  for (const auto& op : graph.ops)
    for (Framework target : targets) {
      if (op->kind != ir::OpKind::Conv1d) {
        linter.activation(*op, target);
        continue;
      }
      if (target == Framework::Pytorch) linter.pytorch(*op);
      if (target == Framework::Keras) linter.keras(*op);
    }
}

}  // namespace cnv::port
