// The DirectVector strategy: channels-innermost register tiles, for convs with
// groups = 1 or depthwise (one input channel per group, any channel multiplier).
// A tile of `positions` output positions × `vectors` vectors of output channels
// accumulates in registers; each tap broadcasts one input value against `vectors` weight
// vectors (depthwise: each lane loads its own input channel instead). Weights are packed
// [O/B][K][I][B], B = lanes × vectors. Interior positions run unchecked, border
// positions in the same tiles with every tap mapped by the padding mode, what is left
// of the range one position at a time. The planner gives
// it the convs WidthVector does not suit, whose input and output are both NWC; it can
// compute any layout (an NCW side is gathered or scattered lane by lane).
//
// Every tile reads the whole packed weight block of its output channels. When that
// block outgrows 3/4 of L2 (InputBlocks), each tile would stream it from L3; the input
// channels then go in equal blocks whose weights fit, as oneDNN's
// ic_block and BLIS's kc: per sample, each block of input channels sweeps every tile
// before the next, its weights packed contiguously ([O/B][I/C][K][C][B]). The first
// block starts from zero, later ones from the partial sums left in the output, and only
// the last adds the bias, runs the epilogue (residuals included) and stores final values.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <string>

#include "compiler/backend/KernelBuilder.h"

namespace cnv::backend {
namespace {

// The register tile: `positions` output positions × `vectors` vectors of `lanes`
// output channels.
struct Tile {
  int lanes, vectors, positions;
  int64_t channels() const { return int64_t{lanes} * vectors; }
};

// What L2 feeds a cycle (Target::l2BytesPerCycle) is the one rate no register or table
// tells: the back end measures it (Target.cpp). On Zen 4 (1 MiB L2, one 16-float FMA a
// cycle) it measured about 24 bytes from the tiles themselves: tiles of 3 positions (21
// bytes per FMA) ran at 93% of peak, of 2 positions (32 bytes) at 74%. A core that
// completes two full-width FMAs a cycle (Target::fmaPerCycle) asks twice the bytes a
// cycle of the same tile; Emerald Rapids' L2 feeds about 1.5 times Zen 4's (33-41 bytes),
// and there the 6 x 4 tile ran as fast as 12 x 2 or faster (wide: 82-89 ms against
// 96-119).

// The blocks of input channels each block of output channels goes through, each block
// over every tile of the sample before the next, so that its packed weights stay in
// L2 across the tiles instead of being streamed in again by each.
struct InputBlocks {
  int64_t channels;      // per block (the last may hold fewer): all when not blocked
  int64_t count;         // 1: not blocked
  int64_t budget;        // bytes of L2 a block's weights may take: 3/4 of it
  double bytesPerFma;    // of weights a tile reads: a vector per `positions` FMAs
  double l2BytesPerFma;  // what L2 feeds at the machine's FMA rate
};

InputBlocks chooseInputBlocks(const ir::Op& op, const Tile& tile, const Target& target) {
  const CacheSizes& caches = target.caches;
  const double l2BytesPerFma = target.l2BytesPerCycle / target.fmaPerCycle;
  const ir::Value& w = *op.operands[1];
  const int64_t I = w.inChannelsPerGroup;
  // The weights stay in L2 (3/4 of it, as oneDNN's brgemm convs size ic blocks; the
  // rest holds the input rows and the output), not L1: L2 blocks are deeper by the
  // ratio of the budgets (32 times on Zen 4), and every block costs each tile a round
  // trip of its accumulators through the output (an L1 block of 110 taps × channels lost
  // a tenth of the speed to it on Zen 4). L2 feeds every tile offered (schedules():
  // at most 10.7 bytes of weights per FMA, and a taller tile where the FMA rate would
  // ask more of it).
  InputBlocks blocks{I, 1, caches.l2 * 3 / 4, 4.0 * tile.lanes / tile.positions, l2BytesPerFma};
  // Depthwise: each output reads one input channel. By division: a huge kernel makes a
  // channel's weights huge. When not even one channel's weights fit, blocks would only
  // add round trips.
  const int64_t perChannel = tile.channels() * w.kernelWidth * int64_t{sizeof(float)};
  const int64_t fitting = blocks.budget / perChannel;
  if (op.isDepthwise() || I <= fitting || fitting < 1) return blocks;
  blocks.count = (I + fitting - 1) / fitting;
  blocks.channels = (I + blocks.count - 1) / blocks.count;
  return blocks;
}

// Most FMAs an unrolled tile emits (code size and compile time).
constexpr int64_t kMaxUnrolledFmas = 512;

// Whether a depthwise tile's unchecked taps unroll (accumulateAllTaps): when every
// tap's weight vectors stay in registers beside the accumulators and an input vector.
bool unrollsTaps(const ir::Op& op, const Tile& tile, const Target& target) {
  const int64_t K = op.operands[1]->kernelWidth;
  return op.isDepthwise() &&
         (K + tile.positions) * tile.vectors + 1 <= int64_t{target.vectorRegisters} &&
         K * tile.positions * tile.vectors <= kMaxUnrolledFmas;
}

class DirectVectorSchedule final : public Schedule {
 public:
  DirectVectorSchedule(const ir::Op& op, const Tile& tile, const Target& target)
      : DirectVectorSchedule(op, tile, target.caches, chooseInputBlocks(op, tile, target),
                             unrollsTaps(op, tile, target)) {}

  std::string describeLoops() const override;
  void emit(KernelBuilder& kb) const override;
  // positions x vectors
  std::string label() const override {
    return fmt::format("{}x{}", tile_.positions, tile_.vectors);
  }

 private:
  DirectVectorSchedule(const ir::Op& op, const Tile& tile, const CacheSizes& caches,
                       const InputBlocks& inputs, bool tapsUnrolled)
      : Schedule(op, {WeightPacking::outputChannelBlocks(tile.channels(), inputs.channels),
                      tile.positions}),
        tile_(tile),
        caches_(caches),
        inputs_(inputs),
        tapsUnrolled_(tapsUnrolled) {}

  int64_t channelBlock() const { return tile_.channels(); }
  bool inputBlocked() const { return inputs_.count > 1; }

  const Tile tile_;
  const CacheSizes caches_;
  const InputBlocks inputs_;
  const bool tapsUnrolled_;
};

std::string DirectVectorSchedule::describeLoops() const {
  const ir::Value& w = *op_.operands[1];
  const ir::Value& y = *op_.result;
  const int64_t I = w.inChannelsPerGroup;
  auto kib = [](double bytes) { return bytes / 1024; };
  // A block of output channels' packed weights per input channel.
  const double perChannel = double(channelBlock()) * double(w.kernelWidth) * 4;
  // Where the weights every tile reads lie is what a tile's weight loads cost.
  auto levelOf = [&](double bytes) {
    return bytes <= double(caches_.l1d) * 7 / 8  ? "L1"
           : bytes <= double(caches_.l2) * 3 / 4 ? "L2"
                                                 : "L3 or memory";
  };
  const double blockBytes = perChannel * double(I);
  std::string out;
  std::string indent = "    ";
  if (op_.isDepthwise()) {
    const double allBytes = double(y.channels) * double(w.kernelWidth) * 4;
    out += fmt::format(
        "{}for wo in interior step {}, then at the borders step {} with every tap checked ({} "
        "padding), then one position at a time: tiles\n",
        indent, tile_.positions, tile_.positions, ir::name(op_.paddingMode));
    out += fmt::format(
        "{}  for co0 in [0, {}) step {}: {} x {} accumulators of <{} x float> in registers; every "
        "block per tile, so the input and output stream through once; all the packed weights, "
        "{:.1f} KiB, are read from {}\n",
        indent, y.channels, channelBlock(), tile_.positions, tile_.vectors, tile_.lanes,
        kib(allBytes), levelOf(allBytes));
    out += fmt::format("{}    for k in [0, {}){}\n", indent, w.kernelWidth,
                       tapsUnrolled_
                           ? " unrolled in the interior: each input vector loaded once for every "
                             "(row, tap) that reads it, the weights in registers"
                           : "");
    out += fmt::format(
        "{}      acc[r][v] += x[n, (wo+r)*{} + k*{} - pad_left, channels of block v / {}] "
        "* w_packed[co0/{}][k][v]\n",
        indent, op_.stride, op_.dilation, y.channels / op_.operands[0]->channels, channelBlock());
    out += fmt::format("{}    epilogue on vectors, store\n", indent);
    return out;
  }
  if (!inputBlocked()) {
    out += fmt::format(
        "{}for co0 in [0, {}) step {}: {} vectors of <{} x float>; the block's packed weights, "
        "{:.1f} KiB, are read from {} by every tile (L1 {} KiB, L2 {} KiB)\n",
        indent, y.channels, channelBlock(), tile_.vectors, tile_.lanes, kib(blockBytes),
        levelOf(blockBytes), caches_.l1d / 1024, caches_.l2 / 1024);
  } else {
    const std::string budget = fmt::format("{:.1f} KiB L2 budget (3/4 of {} KiB)",
                                           kib(double(inputs_.budget)), caches_.l2 / 1024);
    out += fmt::format(
        "{}for co0 in [0, {}) step {}: {} vectors of <{} x float>; the block's packed weights, "
        "{:.1f} KiB, exceed the {}\n",
        indent, y.channels, channelBlock(), tile_.vectors, tile_.lanes, kib(blockBytes), budget);
    indent += "  ";
    out += fmt::format(
        "{}for ci0 in [0, {}) step {}: blocks of input channels, each over every tile of the "
        "sample; a block's packed weights, {:.1f} KiB, fit the {} and stay in L2: L2 feeds the "
        "tile's {:.1f} bytes of weights per FMA (up to {:g})\n",
        indent, I, inputs_.channels, kib(perChannel * double(inputs_.channels)), budget,
        inputs_.bytesPerFma, inputs_.l2BytesPerFma);
  }
  out +=
      fmt::format("{}  for wo in interior step {}: {} x {} accumulators in registers{}\n", indent,
                  tile_.positions, tile_.positions, tile_.vectors,
                  inputBlocked() ? ", started from the partial sums in y after the first ci0" : "");
  out += fmt::format("{}    for k in [0, {})\n", indent, w.kernelWidth);
  if (!inputBlocked())
    out += fmt::format(
        "{}      for ci in [0, {}): acc[r][v] += broadcast(x[n, (wo+r)*{} + k*{} - pad_left, "
        "ci]) * w_packed[co0/{}][k][ci][v]\n",
        indent, I, op_.stride, op_.dilation, channelBlock());
  else
    out += fmt::format(
        "{}      for ci in [0, {}): acc[r][v] += broadcast(x[n, (wo+r)*{} + k*{} - pad_left, "
        "ci0+ci]) * w_packed[co0/{}][ci0/{}][k][ci][v]\n",
        indent,
        // The last block takes what is left.
        I % inputs_.channels != 0 ? fmt::format("min({}, {} - ci0)", inputs_.channels, I)
                                  : std::to_string(inputs_.channels),
        op_.stride, op_.dilation, channelBlock(), inputs_.channels);
  out += fmt::format(
      "{}  for wo at the borders step {}: the same tiles with every tap checked, {} padding; "
      "what is left, one position at a time\n",
      indent, tile_.positions, ir::name(op_.paddingMode));
  out += fmt::format(
      "{}  epilogue on vectors, store{}\n", indent,
      inputBlocked() ? " after the last ci0; before it, the partial sums stored to y" : "");
  return out;
}

// The input channels a sweep over the sample's tiles reads: `count` from firstChannel,
// whose packed weights start at `weights`. When they are a block of all (InputBlocks),
// `first` and `last` say at run time whether they are the first or the last block;
// null when they are all the channels.
struct InputBlock {
  llvm::Value* weights;
  llvm::Value* firstChannel;
  llvm::Value* count;
  llvm::Value* first = nullptr;
  llvm::Value* last = nullptr;
};

void DirectVectorSchedule::emit(KernelBuilder& kb) const {
  auto& b = kb.b;
  const ir::Op& op = op_;
  const ir::Value& x = *op.operands[0];
  const ir::Value& y = *op.result;
  const int64_t K = op.operands[1]->kernelWidth;
  const int64_t I = op.operands[1]->inChannelsPerGroup, block = channelBlock();
  const int vectors = tile_.vectors, tile = tile_.positions;
  const int64_t multiplier = y.channels / x.channels;  // depthwise: outputs per input channel
  llvm::FixedVectorType* vectorType = kb.vectorType(tile_.lanes);
  llvm::Value* inWidth = kb.scalars[kInputWidth];
  llvm::Value* outWidth = kb.scalars[kOutputWidth];
  Strides in = kb.strides(x, inWidth);

  // Output positions whose every tap lies inside the input run in unchecked tiles.
  // Named values, not structured bindings: lambdas below capture them (C++17).
  const auto interior = kb.interiorRange(op);
  llvm::Value* const interiorBegin = interior.first;
  llvm::Value* const interiorEnd = interior.second;

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
    // Depthwise: output channel co reads input channel co / multiplier alone, so each
    // lane loads its own input value instead of sharing a broadcast: the vector of
    // output channels from c0 at input position `position`.
    auto depthwiseInput = [&](llvm::Value* c0, llvm::Value* position, llvm::Value* mask) {
      if (multiplier == 1)
        return kb.loadLanes(x, kb.buffers[0], inWidth, n, c0, position, LaneAxis::Channels,
                            tile_.lanes, mask);
      llvm::Value* channels = b.CreateUDiv(
          kb.lanesFrom(c0, tile_.lanes), b.CreateVectorSplat(tile_.lanes, kb.constant(multiplier)));
      return static_cast<llvm::Value*>(b.CreateMaskedGather(
          vectorType, b.CreateGEP(kb.f32, kb.buffers[0], kb.offset(in, n, channels, position)),
          llvm::Align(4), mask, kb.zeros(tile_.lanes)));
    };
    // Depthwise, unchecked, every tap unrolled: each input vector the tile reads is
    // loaded once and feeds every (row, tap) that reads it (row r, tap k read position
    // r·stride + k·dilation from the tile's first), against weights held in registers.
    // Tap by tap, each row would load again what the row after it loaded a tap before.
    auto accumulateAllTaps = [&](llvm::Value* firstChannel, llvm::Value* wo0, int count,
                                 const InputBlock& input) {
      std::vector<llvm::Value*> w(static_cast<size_t>(K * vectors));
      for (int64_t k = 0; k < K; ++k)
        for (int v = 0; v < vectors; ++v)
          w[k * vectors + v] = b.CreateAlignedLoad(
              vectorType,
              b.CreateConstInBoundsGEP1_64(kb.f32, input.weights, k * block + v * tile_.lanes),
              llvm::Align(4));
      std::map<int64_t, std::vector<std::pair<int, int64_t>>> readers;  // offset: (row, tap)
      for (int r = 0; r < count; ++r)
        for (int64_t k = 0; k < K; ++k) readers[r * op.stride + k * op.dilation].push_back({r, k});
      llvm::Value* first = kb.tapPosition(op, wo0, kb.constant(0));
      for (int v = 0; v < vectors; ++v) {
        llvm::Value* c0 = b.CreateAdd(firstChannel, kb.constant(v * tile_.lanes));
        llvm::Value* mask = channelMask(c0);
        for (const auto& [offset, rowsAndTaps] : readers) {
          llvm::Value* xv = depthwiseInput(c0, b.CreateAdd(first, kb.constant(offset)), mask);
          for (auto [r, k] : rowsAndTaps)
            accumulate(accumulators[r * vectors + v], xv, w[k * vectors + v]);
        }
      }
    };
    // The input values of tap k at `positions` (one per tile row) against the block;
    // where `valid` holds an i1 for a row, its value counts only when it is true (a
    // zero pad), and its position lies inside the input either way.
    auto accumulateTap = [&](llvm::Value* firstChannel, llvm::Value* k,
                             const std::vector<llvm::Value*>& positions,
                             const std::vector<llvm::Value*>& valid, const InputBlock& input) {
      // A block of input channels holds its taps' weights `count` rows of B apart.
      llvm::Value* tapWeights = b.CreateInBoundsGEP(
          kb.f32, input.weights, b.CreateMul(k, b.CreateMul(input.count, kb.constant(block))));
      if (op.isDepthwise()) {
        for (int v = 0; v < vectors; ++v) {
          llvm::Value* wv = b.CreateAlignedLoad(
              vectorType, b.CreateConstInBoundsGEP1_64(kb.f32, tapWeights, v * tile_.lanes),
              llvm::Align(4));
          llvm::Value* c0 = b.CreateAdd(firstChannel, kb.constant(v * tile_.lanes));
          for (size_t r = 0; r < positions.size(); ++r) {
            llvm::Value* mask = channelMask(c0);
            if (valid[r]) mask = b.CreateAnd(mask, b.CreateVectorSplat(tile_.lanes, valid[r]));
            accumulate(accumulators[r * vectors + v], depthwiseInput(c0, positions[r], mask), wv);
          }
        }
        return;
      }
      kb.loop(kb.constant(0), input.count, "ci", [&](llvm::Value* i) {
        llvm::Value* ci = b.CreateAdd(input.firstChannel, i);  // the input channel
        llvm::Value* row =
            b.CreateInBoundsGEP(kb.f32, tapWeights, b.CreateMul(i, kb.constant(block)));
        std::vector<llvm::Value*> w(vectors);
        for (int v = 0; v < vectors; ++v)
          w[v] = b.CreateAlignedLoad(vectorType,
                                     b.CreateConstInBoundsGEP1_64(kb.f32, row, v * tile_.lanes),
                                     llvm::Align(4));
        for (size_t r = 0; r < positions.size(); ++r) {
          llvm::Value* xv =
              b.CreateLoad(kb.f32, kb.address(kb.buffers[0], in, n, ci, positions[r]));
          if (valid[r]) xv = b.CreateSelect(valid[r], xv, llvm::ConstantFP::get(kb.f32, 0.0));
          llvm::Value* splat = b.CreateVectorSplat(tile_.lanes, xv);
          for (int v = 0; v < vectors; ++v) accumulate(accumulators[r * vectors + v], splat, w[v]);
        }
      });
    };

    // One tile of `count` positions from `wo0` in the block of output channels from
    // firstChannel; `checked` maps every tap.
    auto emitTile = [&](llvm::Value* firstChannel, llvm::Value* wo0, int count, bool checked,
                        const InputBlock& input) {
      auto position = [&](int r) { return b.CreateAdd(wo0, kb.constant(r)); };
      auto vectorChannel = [&](int v) {
        return b.CreateAdd(firstChannel, kb.constant(v * tile_.lanes));
      };
      auto startFromZero = [&] {
        for (int i = 0; i < count * vectors; ++i)
          b.CreateStore(kb.zeros(tile_.lanes), accumulators[i]);
      };
      if (!input.first) {
        startFromZero();
      } else {
        // After the first block of input channels, the tile goes on from the
        // partial sums the previous blocks left in the output.
        kb.ifThenElse(input.first, startFromZero, [&] {
          for (int r = 0; r < count; ++r)
            for (int v = 0; v < vectors; ++v) {
              llvm::Value* c0 = vectorChannel(v);
              b.CreateStore(kb.loadLanes(y, kb.buffers.back(), outWidth, n, c0, position(r),
                                         LaneAxis::Channels, tile_.lanes, channelMask(c0)),
                            accumulators[r * vectors + v]);
            }
        });
      }
      // A checked tile under zero padding runs only the taps some row of it reads
      // inside the input: beyond them every row's value is a zero pad. A 32-tap `same`
      // conv at W = 100 has a third of its positions in border tiles, which would
      // otherwise compute (and select away) up to half their taps.
      llvm::Value* firstTap = kb.constant(0);
      llvm::Value* endTap = kb.constant(K);
      if (checked && op.paddingMode == ir::PaddingMode::Zeros) {
        // Row r of the tile reads tap k at (wo0 + r)·stride + k·dilation − pad_left.
        // Below firstTap even the last row reads left of the input; from endTap on
        // even the first reads past it.
        auto ceilDivDilation = [&](llvm::Value* v) {
          return b.CreateSDiv(
              b.CreateAdd(kb.maximum(v, kb.constant(0)), kb.constant(op.dilation - 1)),
              kb.constant(op.dilation));
        };
        llvm::Value* padLeft = kb.scalars[kPadLeft];
        llvm::Value* lastRow =
            b.CreateMul(b.CreateAdd(wo0, kb.constant(count - 1)), kb.constant(op.stride));
        firstTap = kb.minimum(ceilDivDilation(b.CreateSub(padLeft, lastRow)), kb.constant(K));
        llvm::Value* firstRow = b.CreateMul(wo0, kb.constant(op.stride));
        endTap = kb.minimum(ceilDivDilation(b.CreateSub(b.CreateAdd(inWidth, padLeft), firstRow)),
                            kb.constant(K));
      }
      if (!checked && tapsUnrolled_)
        accumulateAllTaps(firstChannel, wo0, count, input);
      else
        kb.loop(firstTap, endTap, "k", [&](llvm::Value* k) {
          if (checked && count == 1) {
            kb.forTap(op, wo0, k, inWidth, [&](llvm::Value* index) {
              accumulateTap(firstChannel, k, {index}, {nullptr}, input);
            });
            return;
          }
          std::vector<llvm::Value*> positions, valid;
          for (int r = 0; r < count; ++r) {
            llvm::Value* position = kb.tapPosition(op, b.CreateAdd(wo0, kb.constant(r)), k);
            llvm::Value* inside = nullptr;
            if (checked) {
              // Every tap of every row mapped by the padding mode; a zero pad's value
              // is selected away, read from a position clamped into the input.
              std::tie(position, inside) = kb.mapPosition(op.paddingMode, position, inWidth);
              if (inside)
                position = kb.minimum(kb.maximum(position, kb.constant(0)),
                                      b.CreateSub(inWidth, kb.constant(1)));
            }
            positions.push_back(position);
            valid.push_back(inside);
          }
          accumulateTap(firstChannel, k, positions, valid, input);
        });
      // The sums through bias and epilogue (residuals are read here alone); or,
      // before the last block of input channels, as they are, for the next block to
      // go on from.
      auto store = [&](bool final) {
        for (int r = 0; r < count; ++r)
          for (int v = 0; v < vectors; ++v) {
            llvm::Value* c0 = vectorChannel(v);
            llvm::Value* mask = channelMask(c0);
            llvm::Value* sum = b.CreateLoad(vectorType, accumulators[r * vectors + v]);
            if (final) {
              llvm::Value* bias =
                  op.hasBias ? b.CreateAlignedLoad(vectorType,
                                                   b.CreateInBoundsGEP(kb.f32, kb.buffers[2], c0),
                                                   llvm::Align(4))
                             : nullptr;
              sum = kb.finalValue(op, sum, bias, [&](int i) {
                return kb.loadLanes(*op.operands[i], kb.buffers[i], outWidth, n, c0, position(r),
                                    LaneAxis::Channels, tile_.lanes, mask);
              });
            }
            kb.storeLanes(sum, y, kb.buffers.back(), outWidth, n, c0, position(r),
                          LaneAxis::Channels, mask);
          }
      };
      if (!input.last)
        store(true);
      else
        kb.ifThenElse(
            input.last, [&] { store(true); }, [&] { store(false); });
    };

    // Every position of the call's range, as tileAt(wo0, count, checked) calls: whole
    // tiles with every tap checked over the borders (a long kernel with `same`
    // padding puts a third of the positions there, and one position at a time is
    // bound by its loads), unchecked tiles inside, single positions for what is left.
    auto sweep = [&](const std::function<void(llvm::Value*, int, bool)>& tileAt) {
      llvm::Value* begin = kb.scalars[kWidthBegin];
      llvm::Value* end = kb.scalars[kWidthEnd];
      llvm::Value* tileWidth = kb.constant(tile);
      // Left border tiles, as many as cover it and fit the range: when the range
      // ends first, no unchecked tile follows (fewer than `tile` positions remain).
      llvm::Value* leftTiles = kb.minimum(
          b.CreateSDiv(b.CreateAdd(b.CreateSub(interiorBegin, begin), kb.constant(tile - 1)),
                       tileWidth),
          b.CreateSDiv(b.CreateSub(end, begin), tileWidth));
      llvm::Value* insideBegin = b.CreateAdd(begin, b.CreateMul(leftTiles, tileWidth));
      llvm::Value* insideTiles = b.CreateSDiv(
          kb.maximum(b.CreateSub(interiorEnd, insideBegin), kb.constant(0)), tileWidth);
      llvm::Value* rightBegin = b.CreateAdd(insideBegin, b.CreateMul(insideTiles, tileWidth));
      llvm::Value* rightTiles = b.CreateSDiv(b.CreateSub(end, rightBegin), tileWidth);
      kb.loop(kb.constant(0), insideTiles, "tile", [&](llvm::Value* t) {
        tileAt(b.CreateAdd(insideBegin, b.CreateMul(t, tileWidth)), tile, false);
      });
      // One loop for both borders' tiles: one copy of the checked tile's code.
      kb.loop(kb.constant(0), b.CreateAdd(leftTiles, rightTiles), "border", [&](llvm::Value* t) {
        llvm::Value* left = b.CreateICmpSLT(t, leftTiles);
        llvm::Value* wo0 = b.CreateSelect(
            left, b.CreateAdd(begin, b.CreateMul(t, tileWidth)),
            b.CreateAdd(rightBegin, b.CreateMul(b.CreateSub(t, leftTiles), tileWidth)));
        tileAt(wo0, tile, true);
      });
      kb.loop(b.CreateAdd(rightBegin, b.CreateMul(rightTiles, tileWidth)), end, "rest",
              [&](llvm::Value* wo) { tileAt(wo, 1, true); });
    };
    if (op.isDepthwise()) {
      // Every block of output channels per tile, so that the input and output stream
      // through once, row after row: a block's own sweep would read a fraction of
      // every row's lines and come back for the rest. All the weights, a vector per
      // channel and tap, stay in L1 or L2.
      sweep([&](llvm::Value* wo0, int count, bool checked) {
        kb.forEachChannelBlock(op, block, [&](llvm::Value* firstChannel, llvm::Value* weights) {
          emitTile(firstChannel, wo0, count, checked, {weights, kb.constant(0), kb.constant(I)});
        });
      });
      return;
    }
    kb.forEachChannelBlock(op, block, [&](llvm::Value* firstChannel, llvm::Value* weights) {
      auto sweepInputs = [&](const InputBlock& input) {
        sweep([&](llvm::Value* wo0, int count, bool checked) {
          emitTile(firstChannel, wo0, count, checked, input);
        });
      };
      if (!inputBlocked()) {
        sweepInputs({weights, kb.constant(0), kb.constant(I)});
        return;
      }
      // Each block of input channels sweeps the sample while its weights stay in the
      // cache they were sized for; partial sums wait in the output.
      const int64_t perBlock = inputs_.channels, blocks = inputs_.count;
      kb.loop(kb.constant(0), kb.constant(blocks), "ib", [&](llvm::Value* ib) {
        llvm::Value* c0 = b.CreateMul(ib, kb.constant(perBlock));
        // Block ib starts after the c0 · K · B floats of the blocks before it.
        sweepInputs({b.CreateInBoundsGEP(kb.f32, weights, b.CreateMul(c0, kb.constant(K * block))),
                     c0, kb.minimum(kb.constant(perBlock), b.CreateSub(kb.constant(I), c0)),
                     b.CreateICmpEQ(ib, kb.constant(0)),
                     b.CreateICmpEQ(ib, kb.constant(blocks - 1))});
      });
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
    int preferred = static_cast<int>(std::min<int64_t>(vectorsNeeded, maxVectors));
    auto positions = [&](int vectors) { return std::max(1, std::min(12, accumulators / vectors)); };
    // A tile reads one weight vector per `positions` FMAs. Where the block's weights
    // live in L2 (beyond 7/8 of L1) and the core completes FMAs fast enough that the
    // tile would ask L2 for more than 3/4 of what it feeds a cycle, a taller tile with
    // fewer vectors halves the demand: on two full-width FMAs a cycle, 6 positions ask
    // 21 bytes a cycle, 12 positions 11; an L2 that feeds 24 (Zen 4's AVX2 code) gets
    // the taller tile (oneDNN's brgemm convs take 14 rows of 2 vectors there for the
    // same reason), one that feeds 33-41 (Emerald Rapids) keeps 6 × 4. One FMA a cycle
    // (Zen 4's AVX-512 code): 6 × 4 stays.
    const ir::Value& w = *op.operands[1];
    auto l2BytesPerCycle = [&](int vectors) {
      return 4.0 * target.vectorWidth / positions(vectors) * target.fmaPerCycle;
    };
    auto weightsBeyondL1 = [&](int vectors) {
      return double(vectors) * target.vectorWidth * double(w.kernelWidth) *
                 double(w.inChannelsPerGroup) * sizeof(float) >
             double(target.caches.l1d) * 7 / 8;
    };
    while (!op.isDepthwise() && preferred > 1 && weightsBeyondL1(preferred) &&
           l2BytesPerCycle(preferred) > target.l2BytesPerCycle * 3 / 4)
      preferred /= 2;
    auto tile = [&](int vectors) {
      return std::make_unique<DirectVectorSchedule>(
          op, Tile{target.vectorWidth, vectors, positions(vectors)}, target);
    };
    // Depthwise: a vector of channels whose taps unroll (unrollsTaps) loads each input
    // vector once for up to K FMAs, where a tile of several vectors going tap by tap
    // loads one per FMA (Zen 4, 64 channels, k15, data in L2: 58% -> 74% of peak); as many
    // positions as the registers left beside the weights hold.
    const int64_t K = w.kernelWidth;
    const int unrolledPositions =
        static_cast<int>(std::min<int64_t>(12, target.vectorRegisters - K - 1));
    const Tile unrolled{target.vectorWidth, 1, unrolledPositions};
    const bool unrolls =
        op.isDepthwise() && unrolledPositions >= 4 && unrollsTaps(op, unrolled, target);
    if (unrolls) result.push_back(std::make_unique<DirectVectorSchedule>(op, unrolled, target));
    result.push_back(tile(preferred));
    for (int vectors = 1; vectors <= maxVectors; ++vectors)
      if (vectors != preferred) result.push_back(tile(vectors));
    // A tile equal to the unrolled one would be timed twice by the tuner.
    if (unrolls)
      result.erase(std::remove_if(result.begin() + 1, result.end(),
                                  [&](const std::unique_ptr<Schedule>& s) {
                                    return s->label() == result.front()->label();
                                  }),
                   result.end());
    return result;
  }
};

}  // namespace

CNV_DEFINE_STRATEGY(DirectVector)

}  // namespace cnv::backend
