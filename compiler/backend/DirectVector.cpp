// The DirectVector strategy: channels-innermost register tiles, for convs with
// groups = 1 or depthwise (one input channel per group, any channel multiplier).
// A tile of `positions` output positions × `vectors` vectors of output channels
// accumulates in registers; each tap broadcasts one input value against `vectors` weight
// vectors (depthwise: each lane loads its own input channel instead). Weights are packed
// [O/B][K][I][B], B = lanes × vectors. Interior positions run unchecked, border
// positions one at a time with every tap mapped by the padding mode. The planner gives
// it the convs WidthVector does not suit, whose input and output are both NWC; it can
// compute any layout (an NCW side is gathered or scattered lane by lane).
#include <fmt/format.h>

#include <algorithm>

#include "compiler/backend/KernelBuilder.h"

namespace cnv::backend {
namespace {

class DirectVectorSchedule final : public Schedule {
 public:
  // The register tile: `positions` output positions × `vectors` vectors of `lanes`
  // output channels.
  struct Tile {
    int lanes, vectors, positions;
  };
  DirectVectorSchedule(const ir::Op& op, const Tile& tile, const CacheSizes& caches)
      : Schedule(op, {WeightPacking::outputChannelBlocks(int64_t{tile.lanes} * tile.vectors),
                      tile.positions}),
        tile_(tile),
        caches_(caches) {}

  std::string describeLoops() const override;
  void emit(KernelBuilder& kb) const override;
  // positions x vectors
  std::string label() const override { return fmt::format("{}x{}", tile_.positions, tile_.vectors); }

 private:
  int64_t channelBlock() const { return int64_t{tile_.lanes} * tile_.vectors; }

  const Tile tile_;
  const CacheSizes caches_;  // described so far: nothing here is blocked by them
};

std::string DirectVectorSchedule::describeLoops() const {
  const ir::Value& w = *op_.operands[1];
  const ir::Value& y = *op_.result;
  // Every tile reads the whole weight block of its output channels: where it lies is
  // what a tile's weight loads cost.
  const double blockKiB =
      double(channelBlock()) * double(w.kernelWidth) * double(w.inChannelsPerGroup) * 4 / 1024;
  const char* level = blockKiB * 1024 <= double(caches_.l1d) * 7 / 8  ? "L1"
                      : blockKiB * 1024 <= double(caches_.l2) * 3 / 4 ? "L2"
                                                                      : "L3 or memory";
  std::string out = fmt::format(
      "    for co0 in [0, {}) step {}: {} vectors of <{} x float>; the block's packed weights, "
      "{:.1f} KiB, are read from {} by every tile (L1 {} KiB, L2 {} KiB)\n",
      y.channels, channelBlock(), tile_.vectors, tile_.lanes, blockKiB, level, caches_.l1d / 1024,
      caches_.l2 / 1024);
  out += fmt::format("      for wo in interior step {}: {} x {} accumulators in registers\n",
                     tile_.positions, tile_.positions, tile_.vectors);
  out += fmt::format("        for k in [0, {})\n", w.kernelWidth);
  if (op_.isDepthwise())
    out += fmt::format(
        "          acc[r][v] += x[n, (wo+r)*{} + k*{} - pad_left, channels of block v / {}] "
        "* w_packed[co0/{}][k][v]\n",
        op_.stride, op_.dilation, y.channels / op_.operands[0]->channels, channelBlock());
  else
    out += fmt::format(
        "          for ci in [0, {}): acc[r][v] += broadcast(x[n, (wo+r)*{} + k*{} - pad_left, "
        "ci]) * w_packed[co0/{}][k][ci][v]\n",
        w.inChannelsPerGroup, op_.stride, op_.dilation, channelBlock());
  out += fmt::format(
      "      for wo at the borders and the tail, one at a time: taps checked, {} padding\n",
      ir::name(op_.paddingMode));
  out += "      epilogue on vectors, store\n";
  return out;
}

void DirectVectorSchedule::emit(KernelBuilder& kb) const {
  auto& b = kb.b;
  const ir::Op& op = op_;
  const ir::Value& x = *op.operands[0];
  const ir::Value& y = *op.result;
  const int64_t K = op.operands[1]->kernelWidth, C = x.channels;
  const int64_t I = op.operands[1]->inChannelsPerGroup, block = channelBlock();
  const int vectors = tile_.vectors, tile = tile_.positions;
  const int64_t multiplier = y.channels / x.channels;  // depthwise: outputs per input channel
  llvm::FixedVectorType* vectorType = kb.vectorType(tile_.lanes);
  llvm::Value* inWidth = kb.scalars[kInputWidth];
  llvm::Value* outWidth = kb.scalars[kOutputWidth];
  Strides in = kb.strides(x, inWidth);

  // Output positions whose every tap lies inside the input run in unchecked tiles;
  // elsewhere taps are checked one position at a time.
  auto [interiorBegin, interiorEnd] = kb.interiorRange(op);
  llvm::Value* tiles = b.CreateSDiv(b.CreateSub(interiorEnd, interiorBegin), kb.constant(tile));
  llvm::Value* tiledEnd = b.CreateAdd(interiorBegin, b.CreateMul(tiles, kb.constant(tile)));

  std::vector<llvm::AllocaInst*> accumulators;
  for (int i = 0; i < tile * vectors; ++i)
    accumulators.push_back(kb.entryAlloca(vectorType, "acc"));
  auto accumulate = [&](llvm::AllocaInst* acc, llvm::Value* a, llvm::Value* w) {
    b.CreateStore(kb.fma(a, w, b.CreateLoad(vectorType, acc)), acc);
  };
  auto channelMask = [&](llvm::Value* c0) {
    return kb.lanesBelow(c0, tile_.lanes, kb.constant(y.channels));
  };

  kb.loop(kb.scalars[kBatchBegin], kb.scalars[kBatchEnd], "n", [&](llvm::Value* n) {
    kb.forEachChannelBlock(op, block, [&](llvm::Value* firstChannel, llvm::Value* weights) {
      // The input values of tap k at `positions` (one per tile row) against the block.
      auto accumulateTap = [&](llvm::Value* k, const std::vector<llvm::Value*>& positions) {
        llvm::Value* tapWeights =
            b.CreateInBoundsGEP(kb.f32, weights, b.CreateMul(k, kb.constant(I * block)));
        if (op.isDepthwise()) {
          // Output channel co reads input channel co / multiplier alone, so each lane
          // loads its own input value instead of sharing a broadcast.
          for (int v = 0; v < vectors; ++v) {
            llvm::Value* wv = b.CreateAlignedLoad(
                vectorType, b.CreateConstInBoundsGEP1_64(kb.f32, tapWeights, v * tile_.lanes),
                llvm::Align(4));
            llvm::Value* c0 = b.CreateAdd(firstChannel, kb.constant(v * tile_.lanes));
            llvm::Value* mask = channelMask(c0);
            for (size_t r = 0; r < positions.size(); ++r) {
              llvm::Value* xv;
              if (multiplier == 1) {
                xv = kb.loadLanes(x, kb.buffers[0], inWidth, n, c0, positions[r],
                                  LaneAxis::Channels, tile_.lanes, mask);
              } else {
                llvm::Value* channels =
                    b.CreateUDiv(kb.lanesFrom(c0, tile_.lanes),
                                 b.CreateVectorSplat(tile_.lanes, kb.constant(multiplier)));
                xv = b.CreateMaskedGather(
                    vectorType,
                    b.CreateGEP(kb.f32, kb.buffers[0], kb.offset(in, n, channels, positions[r])),
                    llvm::Align(4), mask, kb.zeros(tile_.lanes));
              }
              accumulate(accumulators[r * vectors + v], xv, wv);
            }
          }
          return;
        }
        kb.loop(kb.constant(0), kb.constant(C), "ci", [&](llvm::Value* ci) {
          llvm::Value* row =
              b.CreateInBoundsGEP(kb.f32, tapWeights, b.CreateMul(ci, kb.constant(block)));
          std::vector<llvm::Value*> w(vectors);
          for (int v = 0; v < vectors; ++v)
            w[v] = b.CreateAlignedLoad(vectorType,
                                       b.CreateConstInBoundsGEP1_64(kb.f32, row, v * tile_.lanes),
                                       llvm::Align(4));
          for (size_t r = 0; r < positions.size(); ++r) {
            llvm::Value* xv =
                b.CreateLoad(kb.f32, kb.address(kb.buffers[0], in, n, ci, positions[r]));
            llvm::Value* splat = b.CreateVectorSplat(tile_.lanes, xv);
            for (int v = 0; v < vectors; ++v)
              accumulate(accumulators[r * vectors + v], splat, w[v]);
          }
        });
      };

      // One tile of `count` positions from `wo0`; `checked` maps every tap.
      auto emitTile = [&](llvm::Value* wo0, int count, bool checked) {
        for (int i = 0; i < count * vectors; ++i)
          b.CreateStore(kb.zeros(tile_.lanes), accumulators[i]);
        kb.loop(kb.constant(0), kb.constant(K), "k", [&](llvm::Value* k) {
          if (checked) {
            kb.forTap(op, wo0, k, inWidth, [&](llvm::Value* index) { accumulateTap(k, {index}); });
            return;
          }
          std::vector<llvm::Value*> positions;
          for (int r = 0; r < count; ++r)
            positions.push_back(kb.tapPosition(op, b.CreateAdd(wo0, kb.constant(r)), k));
          accumulateTap(k, positions);
        });
        for (int r = 0; r < count; ++r) {
          llvm::Value* wo = b.CreateAdd(wo0, kb.constant(r));
          for (int v = 0; v < vectors; ++v) {
            llvm::Value* c0 = b.CreateAdd(firstChannel, kb.constant(v * tile_.lanes));
            llvm::Value* mask = channelMask(c0);
            llvm::Value* bias =
                op.hasBias ? b.CreateAlignedLoad(vectorType,
                                                 b.CreateInBoundsGEP(kb.f32, kb.buffers[2], c0),
                                                 llvm::Align(4))
                           : nullptr;
            llvm::Value* sum = b.CreateLoad(vectorType, accumulators[r * vectors + v]);
            llvm::Value* value = kb.finalValue(op, sum, bias, [&](int i) {
              return kb.loadLanes(*op.operands[i], kb.buffers[i], outWidth, n, c0, wo,
                                  LaneAxis::Channels, tile_.lanes, mask);
            });
            kb.storeLanes(value, y, kb.buffers.back(), outWidth, n, c0, wo, LaneAxis::Channels,
                          mask);
          }
        }
      };

      kb.loop(kb.scalars[kWidthBegin], interiorBegin, "left",
              [&](llvm::Value* wo) { emitTile(wo, 1, true); });
      kb.loop(kb.constant(0), tiles, "tile", [&](llvm::Value* t) {
        emitTile(b.CreateAdd(interiorBegin, b.CreateMul(t, kb.constant(tile))), tile, false);
      });
      kb.loop(tiledEnd, kb.scalars[kWidthEnd], "right",
              [&](llvm::Value* wo) { emitTile(wo, 1, true); });
    });
  });
}

class DirectVector final : public Strategy {
 public:
  std::string_view name() const override { return "DirectVector"; }

  // Tiles of `vectors` vectors of output channels × as many positions as the
  // accumulator budget allows (up to 12), the fewest vectors that cover the channels
  // (up to 4) first. About 3/4 of the register file holds accumulators, as oneDNN's
  // 24-of-32 zmm tile does; the rest holds weight vectors and the broadcast input.
  std::vector<std::unique_ptr<Schedule>> schedules(const ir::Op& op,
                                                   const Target& target) const override {
    std::vector<std::unique_ptr<Schedule>> result;
    if (op.kind != ir::OpKind::Conv1d || (op.groups != 1 && !op.isDepthwise())) return result;
    const int accumulators = target.vectorRegisters * 3 / 4;
    const int64_t vectorsNeeded =
        (op.result->channels + target.vectorWidth - 1) / target.vectorWidth;
    const int maxVectors = std::min(4, accumulators / 2);
    const int preferred = static_cast<int>(std::min<int64_t>(vectorsNeeded, maxVectors));
    auto tile = [&](int vectors) {
      return std::make_unique<DirectVectorSchedule>(
          op,
          DirectVectorSchedule::Tile{target.vectorWidth, vectors,
                                     std::max(1, std::min(12, accumulators / vectors))},
          target.caches);
    };
    result.push_back(tile(preferred));
    for (int vectors = 1; vectors <= maxVectors; ++vectors)
      if (vectors != preferred) result.push_back(tile(vectors));
    return result;
  }
};

}  // namespace

CNV_DEFINE_STRATEGY(DirectVector)

}  // namespace cnv::backend
