// `cnvc bench`'s comparison: the model's conv layers mapped to oneDNN primitives
// (bench/OnednnBaseline.h) and timed the same way as cnv.
#include "compiler/driver/OnednnComparison.h"

#include <fmt/format.h>

#include <iostream>
#include <stdexcept>

#include "cnv/Error.h"
#ifdef CNV_HAVE_ONEDNN
#include "OnednnBaseline.h"
#endif

namespace cnv::driver {

void printOnednnComparison(const ir::Graph& graph, const std::map<std::string, int64_t>& dims,
                           int threads, double seconds, double cnvMs) {
#ifdef CNV_HAVE_ONEDNN
  auto value = [&](const cnv::ir::SymExpr& e) {
    auto v = e.evaluate(dims);
    if (!v) throw cnv::usageError("bench: every symbolic dim needs a value (--dim)");
    return *v;
  };
  std::vector<cnv::bench::OnednnConv> layers;
  int unfused = 0;
  for (const auto& op : graph.ops) {
    if (op->kind != cnv::ir::OpKind::Conv1d) {
      ++unfused;
      continue;
    }
    const cnv::ir::Value& x = *op->operands[0];
    const cnv::ir::Value& w = *op->operands[1];
    if (op->paddingMode != cnv::ir::PaddingMode::Zeros) {
      std::cout << "oneDNN: no comparison (it pads with zeros only)\n";
      return;
    }
    cnv::bench::OnednnConv conv;
    conv.batch = value(op->result->batch);
    conv.in = x.channels;
    conv.out = op->result->channels;
    conv.width = value(x.width);
    conv.kernel = w.kernelWidth;
    conv.stride = op->stride;
    conv.dilation = op->dilation;
    conv.groups = op->groups;
    conv.padLeft = value(op->padLeft);
    conv.padRight = value(op->padRight);
    conv.bias = op->hasBias;
    using PostOp = cnv::bench::OnednnConv::PostOp;
    for (const cnv::ir::EpilogueStep& step : op->epilogue) {
      switch (step.kind) {
        case cnv::ir::OpKind::Add:
          conv.postOps.push_back({PostOp::Sum});
          break;
        case cnv::ir::OpKind::Relu:
          conv.postOps.push_back({PostOp::Relu});
          break;
        case cnv::ir::OpKind::Relu6:
          conv.postOps.push_back({PostOp::Relu6});
          break;
        case cnv::ir::OpKind::LeakyRelu:
          conv.postOps.push_back({PostOp::LeakyRelu, step.alpha});
          break;
        case cnv::ir::OpKind::Sigmoid:
          conv.postOps.push_back({PostOp::Sigmoid});
          break;
        case cnv::ir::OpKind::Tanh:
          conv.postOps.push_back({PostOp::Tanh});
          break;
        default:
          break;
      }
    }
    layers.push_back(conv);
  }
  if (layers.empty()) {
    std::cout << "oneDNN: no comparison (the model has no conv)\n";
    return;
  }
  try {
    cnv::bench::OnednnTiming onednn = cnv::bench::timeOnednn(layers, threads, seconds);
    const double onednnMs = onednn.bestSeconds * 1e3;
    std::cout << fmt::format(
        "oneDNN: {:.4f} ms for the same {} conv{} (reorders excluded; {}{}), cnv/oneDNN speed: "
        "{:.2f}x\n",
        onednnMs, layers.size(), layers.size() == 1 ? "" : "s", onednn.implementations,
        unfused ? fmt::format("; {} elementwise op{} not timed", unfused, unfused == 1 ? "" : "s")
                : "",
        onednnMs / cnvMs);
  } catch (const std::runtime_error& e) {
    std::cout << "oneDNN: no comparison (" << e.what() << ")\n";
  }
#else
  (void)graph, (void)dims, (void)threads, (void)seconds, (void)cnvMs;
  std::cout << "oneDNN: not built in (libdnnl-dev was not found)\n";
#endif
}

}  // namespace cnv::driver
