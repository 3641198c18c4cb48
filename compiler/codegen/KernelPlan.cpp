// Scheduling: picks each kernel's strategy and register tile for the host's vectors,
// and the packed layouts of the params that the chosen loops read.
#include <fmt/format.h>

#include <algorithm>
#include <optional>
#include <vector>

#include "compiler/codegen/Kernels.h"

namespace cnv::codegen {
namespace {

// Width-innermost tiles of rows output channels × vectors width vectors. The tile
// that keeps the most accumulator lanes busy on real channels wins: accumulators used,
// times the share of rows that are real channels (the last block is padded). Among
// equals, the one with fewer padded rows (no FMAs on zero weights), then the earlier
// in the list: 4 rows × 6 vectors first, measured best on the benchmark suite (wider
// panels amortize the copy and the halo; 10 loads per 24 FMAs), except below. Null when the panel
// would be too large to stay in L2.
std::optional<Schedule> widthVectorSchedule(const ir::Op& op, const TargetInfo& target) {
  Schedule schedule;
  schedule.strategy = Strategy::WidthVector;
  schedule.vectorWidth = target.vectorWidth;
  const int64_t outChannels = op.result->channels;
  const int accumulators = target.vectorRegisters * 3 / 4;
  // Panels wider than the output only compute lanes nobody stores.
  int maxVectors = 6;
  if (op.result->width.isConstant())
    maxVectors = static_cast<int>(
        std::clamp<int64_t>(op.result->width.constant() / target.vectorWidth, 1, 6));
  double best = -1;
  int64_t bestWaste = 0;
  // Few input channels (first layers): 8 rows × 3 vectors; 4 × 6 there ran at 70 or
  // 90 GFLOP/s from one process to the next, 8 × 3 at a steady 93.
  const bool fewInputs = op.groups == 1 && widthVectorBlocksOutside(op);
  const std::vector<int> preference = fewInputs
                                          ? std::vector<int>{8, 4, 6, 12, 5, 7, 3, 10, 2, 9, 11, 1}
                                          : std::vector<int>{4, 8, 6, 12, 5, 7, 3, 10, 2, 9, 11, 1};
  for (int rows : preference) {
    const int vectors = std::min(maxVectors, accumulators / rows);
    if (vectors < 1) continue;
    const int64_t padded = (outChannels + rows - 1) / rows * rows;
    const double score = double(rows * vectors) / accumulators * double(outChannels) / padded;
    const int64_t waste = padded - outChannels;
    if (score > best + 1e-9 || (score > best - 1e-9 && waste < bestWaste)) {
      best = score;
      bestWaste = waste;
      schedule.channelTile = rows;
      schedule.vectorsPerTile = vectors;
    }
  }
  constexpr int64_t kMaxPanelFloats = 512 * 1024 / sizeof(float);
  const int64_t bufferRows =
      (op.groups > 1 ? schedule.channelTile : op.operands[0]->channels) * op.stride;
  // Compared by division: a huge dilation makes the row stride itself huge.
  if (widthVectorRowStride(schedule, op) > kMaxPanelFloats / bufferRows) return std::nullopt;
  return schedule;
}

Schedule chooseSchedule(const ir::Op& op, const TargetInfo& target) {
  Schedule schedule;
  if (op.kind != ir::OpKind::Conv1d) return schedule;
  const bool depthwise = op.groups > 1 && op.operands[1]->inChannelsPerGroup == 1;
  if (op.groups != 1 && !depthwise) return schedule;
  // Channels-innermost on both sides suits the channel-vectorized tile; as soon as one
  // side is NCW, the width-vectorized one (gathering an NWC input as it copies the
  // panel, scattering to an NWC output) is faster.
  if (op.operands[0]->layout == ir::Layout::NCW || op.result->layout == ir::Layout::NCW)
    if (auto widthVector = widthVectorSchedule(op, target)) return *widthVector;
  const int64_t outChannels = op.result->channels;
  schedule.strategy = depthwise ? Strategy::DepthwiseVector : Strategy::DirectVector;
  schedule.vectorWidth = target.vectorWidth;
  const int64_t vectorsNeeded = (outChannels + target.vectorWidth - 1) / target.vectorWidth;
  // Leave registers for the weight vectors and the broadcast input; keep ~3/4 of the
  // file for accumulators, as oneDNN's 24-of-32 zmm tile does.
  const int accumulators = target.vectorRegisters * 3 / 4;
  schedule.vectorsPerTile =
      static_cast<int>(std::min<int64_t>({vectorsNeeded, 4, accumulators / 2}));
  schedule.widthTile = std::max(1, std::min(12, accumulators / schedule.vectorsPerTile));
  return schedule;
}

}  // namespace

std::vector<KernelCall> scheduleKernels(const ir::Graph& graph, const TargetInfo& target) {
  std::vector<KernelCall> calls;
  for (size_t i = 0; i < graph.ops.size(); ++i) {
    const ir::Op& op = *graph.ops[i];
    KernelCall call;
    call.symbol = fmt::format("cnv_{}_{}_{}", graph.name, i, ir::name(op.kind));
    call.op = &op;
    call.schedule = chooseSchedule(op, target);
    call.buffers.assign(op.operands.begin(), op.operands.end());
    call.buffers.push_back(op.result);
    call.batch = op.result->batch;
    call.inputWidth = op.operands[0]->width;
    call.outputWidth = op.result->width;
    call.padLeft = op.kind == ir::OpKind::Conv1d ? op.padLeft : ir::SymExpr(0);
    const Schedule& s = call.schedule;
    if (s.strategy == Strategy::WidthVector) {
      call.scratchFloats = widthVectorPanelFloats(s, op);
      call.widthGranule = int64_t{s.vectorWidth} * s.vectorsPerTile;
    } else if (s.strategy != Strategy::Scalar) {
      call.widthGranule = s.widthTile;
    }
    calls.push_back(std::move(call));
  }
  return calls;
}

std::string printSchedules(const std::vector<KernelCall>& calls) {
  std::string out;
  for (const KernelCall& call : calls) {
    const ir::Op& op = *call.op;
    const Schedule& s = call.schedule;
    const ir::Value& y = *op.result;
    out += fmt::format("kernel @{} computes %{} ({})\n", call.symbol, y.name, ir::name(op.kind));
    out += "  for n in [batch_begin, batch_end)\n";
    if (s.strategy == Strategy::Scalar) {
      out += "    for wo in [width_begin, width_end)\n";
      out += fmt::format("      for co in [0, {})\n", y.channels);
      if (op.kind == ir::OpKind::Conv1d) {
        const ir::Value& w = *op.operands[1];
        out += fmt::format(
            "        for k in [0, {}): pos = wo*{} + k*{} - pad_left, mapped by {} padding\n",
            w.kernelWidth, op.stride, op.dilation, ir::name(op.paddingMode));
        out += fmt::format(
            "          for ci in [0, {}): acc += x[n, group*{} + ci, pos] * w[co][ci][k]\n",
            w.inChannelsPerGroup, w.inChannelsPerGroup);
      }
      out += "        epilogue, store one element\n";
      continue;
    }
    const ir::Value& w = *op.operands[1];
    if (s.strategy == Strategy::WidthVector) {
      const int64_t panel = int64_t{s.vectorWidth} * s.vectorsPerTile;
      const int64_t halo = (w.kernelWidth - 1) * op.dilation;
      const bool depthwise = op.groups > 1;
      const std::string blocks = fmt::format(
          "for co0 in [0, {}) step {}: {} x {} accumulators of <{} x float> in registers",
          y.channels, s.channelTile, s.channelTile, s.vectorsPerTile, s.vectorWidth);
      const std::string panels = fmt::format(
          "for wo0 in [width_begin, width_end) step {}, then step {} for the tail: panels", panel,
          s.vectorWidth);
      const std::string copy =
          op.stride == 1
              ? fmt::format(
                    "copy x[n, {}, wo0-pad_left ... +{}] into the panel buffer{}, {} padding "
                    "applied",
                    depthwise ? "channels of block co0" : "all channels", panel + halo,
                    op.operands[0]->layout == ir::Layout::NWC ? " (gathered from NWC)" : "",
                    ir::name(op.paddingMode))
              : fmt::format(
                    "copy x[n, {}, wo0*{}-pad_left ... +{}] into the panel buffer as {} "
                    "de-interleaved rows per channel, {} padding applied",
                    depthwise ? "channels of block co0" : "all channels", op.stride,
                    op.stride * panel + halo, op.stride, ir::name(op.paddingMode));
      const bool outside = widthVectorBlocksOutside(op);
      if (outside)
        out += fmt::format("    {}\n      {}\n        {}\n", blocks, panels, copy);
      else
        out += fmt::format("    {}\n      {}\n      {}\n", panels, copy, blocks);
      out += fmt::format("        for k in [0, {})\n", w.kernelWidth);
      // With stride s the panel holds s de-interleaved rows per channel.
      const std::string row =
          op.stride == 1 ? "{}" : fmt::format("{{}}*{0} + (k*{1}) mod {0}", op.stride, op.dilation);
      const std::string column =
          op.stride == 1
              ? fmt::format("v*{} + k*{}", s.vectorWidth, op.dilation)
              : fmt::format("v*{} + (k*{}) div {}", s.vectorWidth, op.dilation, op.stride);
      if (depthwise)
        out += fmt::format(
            "          acc[r][v] += broadcast(w_packed[co0/{}][k][r]) * panel[{}][{} ...]  (input "
            "channel (co0+r)/{})\n",
            s.channelTile, fmt::format(fmt::runtime(row), "r"), column,
            y.channels / op.operands[0]->channels);
      else
        out += fmt::format(
            "          for ci in [0, {}): acc[r][v] += broadcast(w_packed[co0/{}][k][ci][r]) * "
            "panel[{}][{} ...]\n",
            w.inChannelsPerGroup, s.channelTile, fmt::format(fmt::runtime(row), "ci"), column);
      out += op.result->layout == ir::Layout::NCW
                 ? "        epilogue on vectors, contiguous row stores (masked in the tail)\n"
                 : "        epilogue on vectors, scattered into the NWC output (masked in the "
                   "tail)\n";
      continue;
    }
    out += fmt::format("    for co0 in [0, {}) step {}: {} vectors of <{} x float>\n", y.channels,
                       s.channelBlock(), s.vectorsPerTile, s.vectorWidth);
    out += fmt::format("      for wo in interior step {}: {} x {} accumulators in registers\n",
                       s.widthTile, s.widthTile, s.vectorsPerTile);
    out += fmt::format("        for k in [0, {})\n", w.kernelWidth);
    if (s.strategy == Strategy::DepthwiseVector)
      out += fmt::format(
          "          acc[r][v] += x[n, (wo+r)*{} + k*{} - pad_left, channels of block v / {}] "
          "* w_packed[co0/{}][k][v]\n",
          op.stride, op.dilation, y.channels / op.operands[0]->channels, s.channelBlock());
    else
      out += fmt::format(
          "          for ci in [0, {}): acc[r][v] += broadcast(x[n, (wo+r)*{} + k*{} - pad_left, "
          "ci]) "
          "* w_packed[co0/{}][k][ci][v]\n",
          w.inChannelsPerGroup, op.stride, op.dilation, s.channelBlock());
    out += fmt::format(
        "      for wo at the borders and the tail, one at a time: taps checked, {} padding\n",
        ir::name(op.paddingMode));
    out += "      epilogue on vectors, store\n";
  }
  return out;
}

bool isPackedOperand(const KernelCall& call, size_t index) {
  if (call.op->kind != ir::OpKind::Conv1d) return false;
  return index == 1 || (index == 2 && call.op->hasBias);
}

std::string packedLayout(const KernelCall& call, size_t index) {
  const ir::Value& param = *call.op->operands[index];
  if (call.schedule.strategy == Strategy::Scalar) return "[O][I/groups][K]";
  const int64_t block = call.schedule.channelBlock();
  return fmt::format("[O/{0}][K][{1}][{0}]", block, param.inChannelsPerGroup == 1 ? "1" : "I");
}

// Scalar kernels read weights as [O][I/groups][K] (PyTorch's order) and biases as they
// are; the vector strategies read weights as [O/B][K][I][B] and biases as [O rounded up
// to B], B = Schedule::channelBlock() (a vector block of channels, or WidthVector's
// rows), zero-filled past O so that partial blocks need no masks on loads.
std::vector<float> packOperand(const KernelCall& call, size_t index, const float* user) {
  const ir::Value& param = *call.op->operands[index];
  const bool direct = call.schedule.strategy != Strategy::Scalar;
  const int64_t block = direct ? call.schedule.channelBlock() : 1;
  if (param.kind == ir::ValueKind::Bias) {
    const int64_t O = param.biasLength;
    std::vector<float> packed((O + block - 1) / block * block, 0.0f);
    std::copy(user, user + O, packed.begin());
    return packed;
  }
  const int64_t O = param.outChannels, I = param.inChannelsPerGroup, K = param.kernelWidth;
  const bool wio = param.weightLayout == ir::WeightLayout::WIO;
  auto at = [&](int64_t o, int64_t i, int64_t k) {
    return wio ? user[(k * I + i) * O + o] : user[(o * I + i) * K + k];
  };
  if (!direct) {
    std::vector<float> packed(O * I * K);
    for (int64_t o = 0; o < O; ++o)
      for (int64_t i = 0; i < I; ++i)
        for (int64_t k = 0; k < K; ++k) packed[(o * I + i) * K + k] = at(o, i, k);
    return packed;
  }
  const int64_t blocks = (O + block - 1) / block;
  std::vector<float> packed(blocks * K * I * block, 0.0f);
  for (int64_t o = 0; o < O; ++o)
    for (int64_t i = 0; i < I; ++i)
      for (int64_t k = 0; k < K; ++k)
        packed[(((o / block) * K + k) * I + i) * block + o % block] = at(o, i, k);
  return packed;
}

}  // namespace cnv::codegen
