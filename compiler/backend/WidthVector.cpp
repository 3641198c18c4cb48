// The WidthVector strategy: width-innermost register tiles, as LIBXSMM's 1-D
// convolutions are built, for convs with groups = 1 or depthwise. It suits convs whose
// input or output is NCW (PyTorch's layout).
// A tile is R output channels × V vectors of consecutive output positions; weights are
// packed [O/R][K][I][R], zero-filled past O.
//
// Per sample, the call's output positions go in panels of V vectors. Each panel first
// copies the input it reads (per input channel, V·lanes·stride + (K−1)·dilation
// positions; padding applied: zeros, or the mapped positions; a stride de-interleaved
// into one row per phase; an NWC input transposed in registers a square of
// lanes × lanes at a time at strides up to 4, gathered otherwise) into a per-thread scratch buffer
// whose rows are spaced to avoid cache-set conflicts; rows a power-of-two width apart
// would otherwise share a handful of L1 sets. The tiles then run unchecked from that
// buffer: for each tap k and input channel ci, V vector loads and R weight broadcasts
// feed R·V FMAs; a tail panel of one vector takes V blocks of R channels at once. Stores are
// contiguous rows of an NCW output (scatters into an NWC one), masked past the end of the call's
// range. Depthwise convs copy only the R input channels of each block of output channels.
#include <fmt/format.h>

#include <algorithm>
#include <optional>

#include "compiler/backend/KernelBuilder.h"

namespace cnv::backend {
namespace {

// Channel blocks loop outside the panels (copying each block's input per panel) when a
// block's input is cheap to copy again (depthwise: its own channels; few input
// channels): each block then writes only its own output rows as it sweeps the width,
// streams the hardware prefetcher can follow. Else blocks loop inside panels, so that
// one copy of the input serves every block.
bool blocksOutsidePanels(const ir::Op& op) {
  return op.groups > 1 || op.operands[1]->inChannelsPerGroup <= 4;
}

// Whether tiles read an NCW input at stride 1 in place where no padding is needed,
// instead of a copy: when blocks of output channels loop outside the panels, each
// (block, panel) would copy its few input rows again only for the tile to read them
// back at once, stalled on the copy's stores (Zen 4: a first layer of one channel and
// 16 taps, 2.66 -> 2.43 ms; depthwise 256 channels, 15 taps, 4.97 -> 4.22 ms). Many rows
// keep the copy: spaced rows spread over the cache sets.
bool readsInPlace(const ir::Op& op) {
  return blocksOutsidePanels(op) && positionsContiguous(*op.operands[0]) && op.stride == 1;
}

// The panel buffer's layout for a tile of `rows` × `vectors` vectors of `lanes`.
struct PanelBuffer {
  PanelBuffer(const ir::Op& op, int lanes, int tileRows, int vectors, const CacheSizes& caches)
      : halo((op.operands[1]->kernelWidth - 1) * op.dilation),
        inputChannels(op.isDepthwise() ? tileRows : op.operands[0]->channels) {
    // A row holds one phase of the input (the panel's positions plus the halo's
    // share), in whole vectors and an odd number of 64-byte lines, so that rows spread
    // over the cache sets.
    const int64_t span = int64_t{vectors} * lanes + halo / op.stride;
    rowStride = (span + lanes - 1) / lanes * lanes;
    rowStride = (rowStride + 15) / 16 * 16;
    if ((rowStride / 16) % 2 == 0) rowStride += 16;
    // Every block of output channels reads the whole copy once per panel: the copy
    // must stay in L1, or each of those reads streams it from L2 (one 64-byte line per
    // vector load, against R FMAs per line: more than L2 delivers once an FMA takes a
    // single cycle). Past 7/8 of L1 (oneDNN's budget; the rest holds the tile's
    // weights and outputs), the input channels are copied in blocks that fit, and the
    // output tiles add up the blocks' partial sums in the (NCW) output.
    l1Budget = caches.l1d * 7 / 8;
    rowsPerChannel = op.stride;
    allRows = inputChannels * op.stride;
    if (!op.isDepthwise() && !blocksOutsidePanels(op) && op.result->layout == ir::Layout::NCW) {
      // By division: a huge dilation makes the row stride itself huge.
      const int64_t fitting = std::max<int64_t>(
          1, l1Budget / int64_t{sizeof(float)} / op.stride / std::max<int64_t>(1, rowStride));
      if (fitting < inputChannels) {
        const int64_t blocks = (inputChannels + fitting - 1) / fitting;
        inputChannels = (inputChannels + blocks - 1) / blocks;
      }
    }
    rows = inputChannels * op.stride;
    // An NWC input is transposed into the buffer a square of lanes × lanes at a time
    // (copyRowsTransposed): a last partial square writes rows nobody reads.
    allocatedRows = transposes(op) ? (inputChannels + lanes - 1) / lanes * lanes * op.stride : rows;
  }
  // Whether the copy of an NWC input transposes squares in registers rather than
  // gathering each row lane by lane: at strides up to 4 (s squares of consecutive
  // positions, then split into the s phases), for channels that lie consecutively (not
  // depthwise, whose rows follow the output channels). A downsampling NWC -> NCW conv
  // (k5, s2, 128 -> 256 channels) gathered at 0.93x oneDNN.
  static bool transposes(const ir::Op& op) {
    return !positionsContiguous(*op.operands[0]) && op.stride <= 4 && !op.isDepthwise();
  }
  // Whether a copy of every input channel would stay within `maxFloats` (so that the
  // panels stay in L2 even where blocks bring them to L1). Compared by division: a huge
  // dilation makes the row stride itself huge.
  bool fits(int64_t maxFloats) const { return rowStride <= maxFloats / allRows; }
  // Whether the rows of one input channel (one per phase of the stride) fit the L1
  // budget: blocks of input channels cannot split them, and the taps of a tile read
  // them all. By division, as above.
  bool channelFitsL1() const {
    return rowStride <= l1Budget / int64_t{sizeof(float)} / rowsPerChannel;
  }
  int64_t bytes() const { return rows * rowStride * int64_t{sizeof(float)}; }

  int64_t halo;            // input positions a panel reads beyond its own: (K − 1)·dilation
  int64_t inputChannels;   // copied per pass: all, a block of them, or the tile's (depthwise)
  int64_t rows;            // one per copied input channel and phase of the stride
  int64_t allocatedRows;   // rows, or more where the copy writes whole squares
  int64_t allRows;         // the rows of a copy of every input channel the panel reads
  int64_t rowsPerChannel;  // the stride's phases
  int64_t rowStride;       // floats from one row to the next
  int64_t l1Budget;        // bytes of L1 a copy may take
};

// Blocks of R output channels per chunk (WidthVectorSchedule::chunkBlocks); 0: one
// chunk of every block.
int64_t chooseChunkBlocks(const ir::Op& op, int lanes, int rows, int vectors,
                          const CacheSizes& caches) {
  if (op.isDepthwise() || blocksOutsidePanels(op)) return 0;
  const ir::Value& w = *op.operands[1];
  const int64_t blocks = (op.result->channels + rows - 1) / rows;
  // By division: a huge kernel makes a block's weights huge.
  const int64_t blockBytes = int64_t{rows} * w.inChannelsPerGroup * w.kernelWidth * 4;
  // Weights within the L2 budget (3/4 of it) stay there across the panels unchunked.
  if (blocks <= caches.l2 * 3 / 4 / blockBytes) return 0;
  const int64_t fitting = caches.l2 / 2 / blockBytes;
  // Whole groups of V blocks, as a tail panel's tiles take them: a tail tile of fewer
  // would feed each broadcast weight to one FMA (a 32-tap 512-channel conv at W = 100
  // ran 12% slower with chunks of 2 blocks). Where V blocks outgrow the budget, the
  // chunk's weights come from L3 (prefetched; WidthVectorSchedule::prefetchWeights),
  // still read once from memory instead of once per panel.
  const int64_t chunk = std::max<int64_t>(fitting / vectors, 1) * vectors;
  if (chunk >= blocks) return 0;
  // A chunk trades streaming the weights (a broadcast per V FMAs: 4 / V bytes per FMA)
  // for copying each panel's input once per chunk (about 4·lanes / (chunk channels · K)
  // bytes per FMA) and the copy's own work. Chunks pay where that is a quarter or less:
  // a 32-tap 512-channel conv (24-channel chunks) ran 3-10% faster chunked, a pointwise
  // 2000-channel one (48-channel chunks) 0-30% slower.
  if (chunk * rows * w.kernelWidth < 4 * int64_t{lanes} * vectors) return 0;
  return chunk;
}

class WidthVectorSchedule final : public Schedule {
 public:
  WidthVectorSchedule(const ir::Op& op, int lanes, int rows, int vectors, const PanelBuffer& buffer,
                      const CacheSizes& caches, bool narrowTail)
      : Schedule(op, {WeightPacking::outputChannelBlocks(rows), int64_t{vectors} * lanes,
                      buffer.allocatedRows * buffer.rowStride}),
        lanes(lanes),
        rows(rows),
        vectors(vectors),
        buffer(buffer),
        weightBytes(double(op.result->channels) * double(op.operands[1]->inChannelsPerGroup) *
                    double(op.operands[1]->kernelWidth) * sizeof(float)),
        l2Budget(caches.l2 * 3 / 4),
        chunkBlocks(chooseChunkBlocks(op, lanes, rows, vectors, caches)),
        prefetchWeights(!op.isDepthwise() &&
                        (chunkBlocks == 0 ? weightBytes
                                          : weightBytes * double(chunkBlocks * rows) /
                                                double(op.result->channels)) > double(l2Budget)),
        narrowTail(narrowTail) {}

  std::string describeLoops() const override;
  std::string describeOuterLoops() const override;
  void emit(KernelBuilder& kb) const override;
  // rows x vectors
  std::string label() const override { return fmt::format("{}x{}", rows, vectors); }

  // Whether an NWC output's tiles go out as R channels at a time, transposed in
  // registers (storeTransposed): R a power of two no wider than the vectors.
  static bool transposesOutput(const ir::Op& op, int rows, int lanes) {
    return !positionsContiguous(*op.result) && rows >= 2 && rows <= lanes &&
           (rows & (rows - 1)) == 0;
  }
  // Whether the input channels are copied in blocks (PanelBuffer).
  bool inputBlocked() const {
    return buffer.inputChannels < op_.operands[0]->channels && !op_.isDepthwise();
  }

  const int lanes;    // floats per vector
  const int rows;     // R: output channels per register tile
  const int vectors;  // V: vectors of output positions per register tile
  const PanelBuffer buffer;
  // Every panel reads all the weights once. When they outgrow L2 (3/4 of it, oneDNN's
  // budget), they come from L3 or memory on every panel, in runs of one tap's block of
  // input channels far apart (the packed [O/R][K][I][R] order): more streams than the
  // hardware prefetcher follows, so each (tap, channel) step fetches the next tap's
  // line. Measured 1.2-1.7x on 250-2000 channels with 7-48 taps.
  const double weightBytes;
  const int64_t l2Budget;
  // Where all the weights outgrow L2 and blocks of output channels run inside the
  // panels, every panel would stream them from L3 or memory (a 32-tap 512-channel conv:
  // 32 MiB per panel). Chunks of output channels whose weights fit half of L2 instead
  // loop outside the samples and panels, each panel's input copied once per chunk (a
  // copy per 1 / (chunk channels · K) of the FMAs). The other half holds the copies'
  // source rows passing through. 0: not chunked.
  const int64_t chunkBlocks;
  const bool prefetchWeights;
  // Whether a last remainder of at most lanes / 2 positions is computed in vectors of
  // lanes / 2 (emit()).
  const bool narrowTail;
};

std::string WidthVectorSchedule::describeOuterLoops() const {
  if (chunkBlocks == 0) return "";
  const ir::Value& w = *op_.operands[1];
  const int64_t channels = chunkBlocks * rows;
  return fmt::format(
      "  for co1 in [0, {}) step {}: chunks of output channels; all the weights, {:.1f} KiB, "
      "outgrow the {:.0f} KiB L2 budget, a chunk's, {:.1f} KiB, are read from memory once and "
      "stay in L2 (half of it) or L3 over every sample and panel\n",
      op_.result->channels, channels, weightBytes / 1024, l2Budget / 1024.0,
      double(channels) * double(w.inChannelsPerGroup) * double(w.kernelWidth) * 4 / 1024);
}

std::string WidthVectorSchedule::describeLoops() const {
  const ir::Value& w = *op_.operands[1];
  const ir::Value& y = *op_.result;
  const int64_t panelWidth = int64_t{lanes} * vectors;
  const int64_t stride = op_.stride;
  const bool blocked = inputBlocked();
  const std::string blocks = fmt::format(
      "for co0 in {} step {}: {} x {} accumulators of <{} x float> in registers{}",
      chunkBlocks == 0 ? fmt::format("[0, {})", y.channels) : std::string("the chunk"), rows, rows,
      vectors, lanes, blocked ? ", started from the partial sums in y after the first ci0" : "");
  const std::string panels = fmt::format(
      "for wo0 in [width_begin, width_end) step {}, then step {} for the tail{}: panels{}",
      panelWidth, lanes,
      narrowTail ? fmt::format(" (a last {} positions or fewer in <{} x float>, half-width FMAs "
                               "costing half)",
                               lanes / 2, lanes / 2)
                 : "",
      vectors > 1 && !blocksOutsidePanels(op_)
          ? fmt::format(" (a tail panel's tile: {} blocks of {} channels x 1 vector)", vectors,
                        rows)
          : "");
  const std::string inputBlocks =
      fmt::format("for ci0 in [0, {}) step {}: blocks of input channels", w.inChannelsPerGroup,
                  buffer.inputChannels);
  const std::string channels = op_.isDepthwise() ? "channels of block co0"
                               : blocked         ? "channels ci0 ..."
                                                 : "all channels";
  const std::string size =
      fmt::format("; {} x {} floats, {:.1f} KiB of the {:.1f} KiB L1 budget", buffer.rows,
                  buffer.rowStride, buffer.bytes() / 1024.0, buffer.l1Budget / 1024.0);
  std::string copy =
      stride == 1
          ? fmt::format(
                "copy x[n, {}, wo0-pad_left ... +{}] into the panel buffer{}, {} padding applied{}",
                channels, panelWidth + buffer.halo,
                positionsContiguous(*op_.operands[0]) ? ""
                : PanelBuffer::transposes(op_)        ? " (transposed from NWC in registers)"
                                                      : " (gathered from NWC)",
                ir::name(op_.paddingMode), size)
          : fmt::format(
                "copy x[n, {}, wo0*{}-pad_left ... +{}] into the panel buffer as {} "
                "de-interleaved rows per channel{}, {} padding applied{}",
                channels, stride, stride * panelWidth + buffer.halo, stride,
                positionsContiguous(*op_.operands[0]) ? ""
                : PanelBuffer::transposes(op_)        ? " (transposed from NWC in registers)"
                                                      : " (gathered from NWC)",
                ir::name(op_.paddingMode), size);
  if (readsInPlace(op_))
    copy = "where a panel needs no padding, its tiles read x in place; else " + copy;
  std::vector<std::string> nest;
  if (blocksOutsidePanels(op_))
    nest = {blocks, panels, copy};
  else if (blocked)
    nest = {panels, inputBlocks, copy, blocks};
  else
    nest = {panels, copy, blocks};
  std::string out;
  int depth = 2;
  for (size_t i = 0; i < nest.size(); ++i) {
    out += std::string(2 * depth, ' ') + nest[i] + "\n";
    // The copy shares its loop's body with what follows it.
    if (nest[i] != copy) ++depth;
  }
  const std::string indent(2 * depth, ' ');
  out += fmt::format("{}for k in [0, {})\n", indent, w.kernelWidth);
  // With stride s the panel holds s de-interleaved rows per channel.
  auto row = [&](const char* channel) {
    return stride == 1 ? std::string(channel)
                       : fmt::format("{0}*{1} + (k*{2}) mod {1}", channel, stride, op_.dilation);
  };
  const std::string column = stride == 1
                                 ? fmt::format("v*{} + k*{}", lanes, op_.dilation)
                                 : fmt::format("v*{} + (k*{}) div {}", lanes, op_.dilation, stride);
  if (op_.isDepthwise())
    out += fmt::format(
        "{}  acc[r][v] += broadcast(w_packed[co0/{}][k][r]) * panel[{}][{} ...]  (input "
        "channel (co0+r)/{})\n",
        indent, rows, row("r"), column, y.channels / op_.operands[0]->channels);
  else
    out += fmt::format(
        "{}  for ci in [0, {}): acc[r][v] += broadcast(w_packed[co0/{}][k][{}ci][r]) * "
        "panel[{}][{} ...]\n",
        indent,
        // The last block takes what is left.
        blocked && w.inChannelsPerGroup % buffer.inputChannels != 0
            ? fmt::format("min({}, {} - ci0)", buffer.inputChannels, w.inChannelsPerGroup)
            : std::to_string(buffer.inputChannels),
        rows, blocked ? "ci0+" : "", row("ci"), column);
  if (prefetchWeights)
    out += fmt::format(
        "{}  the weights, {:.1f} KiB, outgrow the {:.0f} KiB L2 budget: read from L3 or memory "
        "by every panel, each step prefetches the next tap's line\n",
        indent, weightBytes / 1024, l2Budget / 1024.0);
  const std::string store =
      y.layout == ir::Layout::NCW
          ? "epilogue on vectors, contiguous row stores (masked in the tail)"
      : transposesOutput(op_, rows, lanes)
          ? fmt::format(
                "epilogue on vectors, transposed in registers into runs of {} channels "
                "stored to the NWC output (masked in the tail)",
                rows)
          : "epilogue on vectors, scattered into the NWC output (masked in the tail)";
  out += fmt::format("{}{}{}\n", indent, store,
                     blocked ? " after the last ci0; before it, the partial sums stored to y" : "");
  return out;
}

// The positions a panel covers: V vectors from p0, or one vector in the tail.
struct Panel {
  llvm::Value* n;   // the sample
  llvm::Value* p0;  // its first output position
  int vectors;
  bool tail;  // one of the one-vector panels after the whole ones
  // The blocks of output channels it computes: `blockCount` from `firstBlock` (a chunk,
  // WidthVectorSchedule::chunkBlocks); null: every block.
  llvm::Value* firstBlock = nullptr;
  llvm::Value* blockCount = nullptr;
};

// A block of `rows` output channels from firstChannel, and its packed weights.
struct ChannelBlock {
  llvm::Value* firstChannel;
  llvm::Value* weights;
};

// The input channels in the panel buffer: `count` from firstChannel. When they are a
// block of all (PanelBuffer), `first` and `last` say at run time whether they are the
// first or the last block; null when they are all the channels.
struct InputBlock {
  llvm::Value* firstChannel;
  llvm::Value* count;
  llvm::Value* first = nullptr;
  llvm::Value* last = nullptr;
  // Set when the tile reads the input in place (WidthVectorEmitter::readsInPlace) instead
  // of the panel buffer: the input channel of a panel row.
  std::function<llvm::Value*(llvm::Value*)> inPlaceChannel = nullptr;
};

class WidthVectorEmitter {
 public:
  // `lanes`: the schedule's, or half of them for a last narrow panel (emit()).
  WidthVectorEmitter(const WidthVectorSchedule& schedule, KernelBuilder& kb, int lanes)
      : s_(schedule),
        op_(schedule.op()),
        kb_(kb),
        b_(kb.b),
        x_(*op_.operands[0]),
        y_(*op_.result),
        K_(op_.operands[1]->kernelWidth),
        I_(op_.operands[1]->inChannelsPerGroup),
        stride_(op_.stride),
        rowStride_(schedule.buffer.rowStride),
        lanes_(lanes),
        vectorType_(kb.vectorType(lanes)) {}

  void emit();

 private:
  void allocateAccumulators();

  // Everything one panel computes; `block`: the block of output channels, for the ops
  // whose blocks loop outside the panels (else null: every block).
  void emitPanel(const Panel& panel, const ChannelBlock* block);
  int64_t width(const Panel& panel) const { return int64_t{panel.vectors} * lanes_; }
  // Entries of a panel row: the positions one phase of the input contributes.
  int64_t span(const Panel& panel) const { return width(panel) + s_.buffer.halo / stride_; }
  // The first input position a panel reads.
  llvm::Value* panelStart(const Panel& panel) {
    return kb_.tapPosition(op_, panel.p0, kb_.constant(0));
  }
  // Copies the input a panel reads, for `rows` channels (row i: channel channelOf(i)),
  // into the buffer. With stride s each channel gets s rows, one per phase: row
  // i·s + j holds input positions p0·s − padLeft + j + s·m, m = 0, 1, ..., so that tap
  // k of output p0 + q reads row i·s + (k·dilation mod s), entry q + k·dilation div s:
  // consecutive outputs read consecutive entries whatever the stride.
  // `firstChannel`: when row i holds input channel firstChannel + i; null otherwise.
  void packPanel(const Panel& panel, llvm::Value* rows,
                 const std::function<llvm::Value*(llvm::Value*)>& channelOf,
                 llvm::Value* firstChannel);
  void copyRowsTransposed(const Panel& panel, llvm::Value* rows, llvm::Value* firstChannel);
  std::vector<llvm::Value*> deinterleave(std::vector<llvm::Value*> parts);
  void copyRowsDeinterleaved(const Panel& panel, llvm::Value* rows,
                             const std::function<llvm::Value*(llvm::Value*)>& rowOf);
  void copyRows(const Panel& panel, llvm::Value* rows,
                const std::function<llvm::Value*(llvm::Value*)>& rowOf, bool checked);
  // A tile is `blocks` (consecutive blocks of R output channels: one, or in the tail
  // panels V of them) × the panel's vectors.
  void computeTile(const Panel& panel, const std::vector<ChannelBlock>& blocks,
                   const InputBlock& input);
  void storeTile(const Panel& panel, const std::vector<ChannelBlock>& blocks,
                 const InputBlock& input);
  void storeTransposed(const Panel& panel, int firstRow, llvm::Value* firstChannel,
                       llvm::Value* mask);
  std::vector<llvm::Value*> rowsToPositions(std::vector<llvm::Value*> rows);
  void forEachTile(const Panel& panel,
                   const std::function<void(const std::vector<ChannelBlock>&)>& body);
  // The output channel of row t of a tile: row t mod R of block t div R.
  llvm::Value* tileChannel(const std::vector<ChannelBlock>& blocks, int t) {
    return b_.CreateAdd(blocks[static_cast<size_t>(t / s_.rows)].firstChannel,
                        kb_.constant(t % s_.rows));
  }
  // The tail panels' mask of the positions in the call's range; null for whole panels,
  // which fit it by construction.
  llvm::Value* storeMask(const Panel& panel);
  void prefetchNextPanel(const Panel& panel, const ChannelBlock& block, llvm::Value* channel,
                         llvm::Value* k);
  void prefetchNextPanelLines(const Panel& panel, llvm::Value* channel, llvm::Value* k);
  bool spreadOutputPrefetch(const Panel& panel) const;
  int64_t outputLines(const Panel& panel) const { return (width(panel) + 15) / 16; }
  void prefetchOutput(const Panel& panel, llvm::Value* channel, llvm::Value* line);
  llvm::AllocaInst* accumulator(const Panel& panel, int row, int vector) {
    return accumulators_[static_cast<size_t>(row * panel.vectors + vector)];
  }

  const WidthVectorSchedule& s_;
  const ir::Op& op_;
  KernelBuilder& kb_;
  llvm::IRBuilder<>& b_;
  const ir::Value& x_;
  const ir::Value& y_;
  const int64_t K_, I_, stride_, rowStride_;
  const int lanes_;
  llvm::FixedVectorType* vectorType_;
  std::vector<llvm::AllocaInst*> accumulators_;
};

void WidthVectorEmitter::allocateAccumulators() {
  for (int i = 0; i < s_.rows * s_.vectors; ++i)
    accumulators_.push_back(kb_.entryAlloca(vectorType_, "acc"));
}

void WidthVectorEmitter::emit() {
  allocateAccumulators();
  const int lanes = lanes_;
  llvm::Value* widthBegin = kb_.scalars[kWidthBegin];
  llvm::Value* widthEnd = kb_.scalars[kWidthEnd];
  // Whole panels of V vectors, then one-vector panels for the rest, so a short or
  // ragged width computes at most lanes − 1 positions it does not store.
  const int64_t bulkWidth = int64_t{s_.vectors} * lanes;
  llvm::Value* panels = b_.CreateSDiv(b_.CreateSub(widthEnd, widthBegin), kb_.constant(bulkWidth));
  llvm::Value* tailBegin = b_.CreateAdd(widthBegin, b_.CreateMul(panels, kb_.constant(bulkWidth)));
  llvm::Value* rest = b_.CreateSub(widthEnd, tailBegin);
  // With narrow tails, a last remainder of at most half a vector goes in one panel of
  // half-width vectors (which cost half: WidthVectorSchedule::narrowTail) instead of a
  // whole vector mostly masked off: 100 positions cost 6.5 vectors instead of 7.
  std::optional<WidthVectorEmitter> narrow;
  llvm::Value* tailPanels = nullptr;
  llvm::Value* narrowPanel = nullptr;  // i1: whether the narrow panel runs
  if (s_.narrowTail) {
    tailPanels =
        b_.CreateSDiv(b_.CreateAdd(rest, kb_.constant(lanes / 2 - 1)), kb_.constant(lanes));
    llvm::Value* remainder = b_.CreateSRem(rest, kb_.constant(lanes));
    narrowPanel = b_.CreateAnd(b_.CreateICmpSGT(remainder, kb_.constant(0)),
                               b_.CreateICmpSLE(remainder, kb_.constant(lanes / 2)));
    narrow.emplace(s_, kb_, lanes / 2);
    narrow->allocateAccumulators();
  } else {
    tailPanels = b_.CreateSDiv(b_.CreateAdd(rest, kb_.constant(lanes - 1)), kb_.constant(lanes));
  }
  llvm::Value* narrowBegin = b_.CreateAdd(tailBegin, b_.CreateMul(tailPanels, kb_.constant(lanes)));
  // `firstBlock`, `blockCount`: the chunk of output-channel blocks (null: all).
  auto forEachPanel = [&](llvm::Value* n, const ChannelBlock* block, llvm::Value* firstBlock,
                          llvm::Value* blockCount) {
    kb_.loop(kb_.constant(0), panels, "panel", [&](llvm::Value* j) {
      emitPanel({n, b_.CreateAdd(widthBegin, b_.CreateMul(j, kb_.constant(bulkWidth))), s_.vectors,
                 false, firstBlock, blockCount},
                block);
    });
    kb_.loop(kb_.constant(0), tailPanels, "tail", [&](llvm::Value* j) {
      emitPanel({n, b_.CreateAdd(tailBegin, b_.CreateMul(j, kb_.constant(lanes))), 1, true,
                 firstBlock, blockCount},
                block);
    });
    if (narrow)
      kb_.ifThen(narrowPanel, [&] {
        narrow->emitPanel({n, narrowBegin, 1, true, firstBlock, blockCount}, block);
      });
  };
  auto forEachSample = [&](llvm::Value* firstBlock, llvm::Value* blockCount) {
    kb_.loop(kb_.scalars[kBatchBegin], kb_.scalars[kBatchEnd], "n", [&](llvm::Value* n) {
      if (blocksOutsidePanels(op_)) {
        kb_.forEachChannelBlock(op_, s_.rows, [&](llvm::Value* firstChannel, llvm::Value* weights) {
          const ChannelBlock block{firstChannel, weights};
          forEachPanel(n, &block, nullptr, nullptr);
        });
      } else {
        forEachPanel(n, nullptr, firstBlock, blockCount);
      }
    });
  };
  if (s_.chunkBlocks == 0) {
    forEachSample(nullptr, nullptr);
    return;
  }
  const int64_t blocks = (y_.channels + s_.rows - 1) / s_.rows;
  const int64_t chunks = (blocks + s_.chunkBlocks - 1) / s_.chunkBlocks;
  kb_.loop(kb_.constant(0), kb_.constant(chunks), "chunk", [&](llvm::Value* chunk) {
    llvm::Value* firstBlock = b_.CreateMul(chunk, kb_.constant(s_.chunkBlocks));
    forEachSample(firstBlock, kb_.minimum(kb_.constant(s_.chunkBlocks),
                                          b_.CreateSub(kb_.constant(blocks), firstBlock)));
  });
}

void WidthVectorEmitter::emitPanel(const Panel& panel, const ChannelBlock* block) {
  const InputBlock allInputs{kb_.constant(0), kb_.constant(I_)};
  auto packAllChannels = [&] {
    packPanel(
        panel, kb_.constant(x_.channels), [](llvm::Value* i) { return i; }, kb_.constant(0));
  };
  if (blocksOutsidePanels(op_)) {
    // Rows past the last channel (zero weights, never stored) read the last one.
    auto depthwiseChannel = [&](llvm::Value* i) {
      llvm::Value* co =
          kb_.minimum(b_.CreateAdd(block->firstChannel, i), kb_.constant(y_.channels - 1));
      return b_.CreateUDiv(co, kb_.constant(y_.channels / x_.channels));
    };
    auto packAndCompute = [&] {
      if (op_.isDepthwise())
        packPanel(panel, kb_.constant(s_.rows), depthwiseChannel, nullptr);
      else
        packAllChannels();
      computeTile(panel, {*block}, allInputs);
    };
    if (readsInPlace(op_)) {
      InputBlock inPlace = allInputs;
      if (op_.isDepthwise())
        inPlace.inPlaceChannel = depthwiseChannel;
      else
        inPlace.inPlaceChannel = [](llvm::Value* i) { return i; };
      // Every position the tile reads inside the input: no padding to apply.
      llvm::Value* start = panelStart(panel);
      llvm::Value* inside =
          b_.CreateAnd(b_.CreateICmpSGE(start, kb_.constant(0)),
                       b_.CreateICmpSLE(b_.CreateAdd(start, kb_.constant(span(panel))),
                                        kb_.scalars[kInputWidth]));
      kb_.ifThenElse(
          inside, [&] { computeTile(panel, {*block}, inPlace); }, packAndCompute);
    } else {
      packAndCompute();
    }
    storeTile(panel, {*block}, allInputs);
    return;
  }
  if (!s_.inputBlocked()) {
    packAllChannels();
    forEachTile(panel, [&](const std::vector<ChannelBlock>& blocks) {
      computeTile(panel, blocks, allInputs);
      storeTile(panel, blocks, allInputs);
    });
    return;
  }
  // Blocks of input channels that fit L1, each copied once per panel and read by every
  // block of output channels; partial sums wait in the output.
  const int64_t perBlock = s_.buffer.inputChannels;
  const int64_t inputBlocks = (I_ + perBlock - 1) / perBlock;
  kb_.loop(kb_.constant(0), kb_.constant(inputBlocks), "ib", [&](llvm::Value* ib) {
    llvm::Value* c0 = b_.CreateMul(ib, kb_.constant(perBlock));
    const InputBlock input{
        c0, kb_.minimum(kb_.constant(perBlock), b_.CreateSub(kb_.constant(I_), c0)),
        b_.CreateICmpEQ(ib, kb_.constant(0)), b_.CreateICmpEQ(ib, kb_.constant(inputBlocks - 1))};
    packPanel(
        panel, input.count, [&](llvm::Value* i) { return b_.CreateAdd(c0, i); }, c0);
    forEachTile(panel, [&](const std::vector<ChannelBlock>& blocks) {
      computeTile(panel, blocks, input);
      storeTile(panel, blocks, input);
    });
  });
}

void WidthVectorEmitter::packPanel(const Panel& panel, llvm::Value* rows,
                                   const std::function<llvm::Value*(llvm::Value*)>& channelOf,
                                   llvm::Value* firstChannel) {
  const int lanes = lanes_;
  llvm::Value* inWidth = kb_.scalars[kInputWidth];
  llvm::Value* start = panelStart(panel);
  const int64_t spanVectors = (span(panel) + lanes - 1) / lanes;
  const bool inputNcw = positionsContiguous(x_);
  // Input channel `channel`'s row: its position p is at row + p·(1 in NCW, C in NWC).
  auto rowOf = [&](llvm::Value* i) {
    return kb_.address(kb_.buffers[0], kb_.strides(x_, inWidth), panel.n, channelOf(i),
                       kb_.constant(0));
  };
  // Every position the copy reads lies inside the input: [start, start + s·entries).
  llvm::Value* inside = b_.CreateAnd(
      b_.CreateICmpSGE(start, kb_.constant(0)),
      b_.CreateICmpSLE(b_.CreateAdd(start, kb_.constant(stride_ * spanVectors * lanes)), inWidth));
  kb_.ifThenElse(
      inside,
      [&] {
        // Inside the input, small strides de-interleave with plain loads and shuffles.
        if (inputNcw && stride_ > 1 && stride_ <= 4)
          copyRowsDeinterleaved(panel, rows, rowOf);
        else if (PanelBuffer::transposes(op_) && firstChannel)
          copyRowsTransposed(panel, rows, firstChannel);
        else
          copyRows(panel, rows, rowOf, false);
      },
      [&] { copyRows(panel, rows, rowOf, true); });
}

// s vectors of consecutive positions into s vectors of one phase each: phase j holds
// lanes j, j + s, j + 2s, ... of their concatenation.
std::vector<llvm::Value*> WidthVectorEmitter::deinterleave(std::vector<llvm::Value*> parts) {
  const int lanes = lanes_;
  // Concatenate pairwise up to a power-of-two width, then pick every s-th lane.
  while (parts.size() > 1) {
    std::vector<llvm::Value*> joined;
    for (size_t p = 0; p < parts.size(); p += 2) {
      auto* type = llvm::cast<llvm::FixedVectorType>(parts[p]->getType());
      const int width = static_cast<int>(type->getNumElements());
      llvm::Value* other = p + 1 < parts.size() ? parts[p + 1] : llvm::PoisonValue::get(type);
      std::vector<int> mask(static_cast<size_t>(2 * width));
      for (int l = 0; l < 2 * width; ++l) mask[static_cast<size_t>(l)] = l;
      joined.push_back(b_.CreateShuffleVector(parts[p], other, mask));
    }
    parts = std::move(joined);
  }
  std::vector<llvm::Value*> phases;
  for (int64_t j = 0; j < stride_; ++j) {
    std::vector<int> mask;
    for (int l = 0; l < lanes; ++l) mask.push_back(static_cast<int>(j + stride_ * l));
    phases.push_back(b_.CreateShuffleVector(parts[0], mask));
  }
  return phases;
}

// The s vectors at start + s·lanes·v hold lanes entries of each of the s phases.
void WidthVectorEmitter::copyRowsDeinterleaved(
    const Panel& panel, llvm::Value* rows, const std::function<llvm::Value*(llvm::Value*)>& rowOf) {
  const int lanes = lanes_;
  const int64_t spanVectors = (span(panel) + lanes - 1) / lanes;
  llvm::Value* start = panelStart(panel);
  kb_.loop(kb_.constant(0), rows, "row", [&](llvm::Value* i) {
    llvm::Value* source = rowOf(i);
    llvm::Value* firstRow =
        b_.CreateMul(b_.CreateMul(i, kb_.constant(stride_)), kb_.constant(rowStride_));
    kb_.loop(kb_.constant(0), kb_.constant(spanVectors), "copy", [&](llvm::Value* v) {
      llvm::Value* block = b_.CreateAdd(start, b_.CreateMul(v, kb_.constant(stride_ * lanes)));
      std::vector<llvm::Value*> parts;
      for (int64_t part = 0; part < stride_; ++part)
        parts.push_back(b_.CreateAlignedLoad(
            vectorType_,
            b_.CreateGEP(kb_.f32, source, b_.CreateAdd(block, kb_.constant(part * lanes))),
            llvm::Align(4)));
      const std::vector<llvm::Value*> phases = deinterleave(parts);
      for (int64_t j = 0; j < stride_; ++j) {
        llvm::Value* target =
            b_.CreateInBoundsGEP(kb_.f32, kb_.scratch,
                                 b_.CreateAdd(b_.CreateAdd(firstRow, kb_.constant(j * rowStride_)),
                                              b_.CreateMul(v, kb_.constant(lanes))));
        b_.CreateAlignedStore(phases[static_cast<size_t>(j)], target, llvm::Align(4));
      }
    });
  });
}

// An NWC input holds, at each position, its channels side by side: a square of lanes
// positions × lanes channels is lanes contiguous vector loads, transposed in registers
// into lanes rows of positions (log2(lanes) rounds of two-input shuffles, one
// instruction each with AVX-512) instead of a gather per row of the buffer.
void WidthVectorEmitter::copyRowsTransposed(const Panel& panel, llvm::Value* rows,
                                            llvm::Value* firstChannel) {
  const int lanes = lanes_;
  const int64_t spanVectors = (span(panel) + lanes - 1) / lanes;
  llvm::Value* start = panelStart(panel);
  const Strides in = kb_.strides(x_, kb_.scalars[kInputWidth]);
  llvm::Value* squares =
      b_.CreateUDiv(b_.CreateAdd(rows, kb_.constant(lanes - 1)), kb_.constant(lanes));
  kb_.loop(kb_.constant(0), squares, "square", [&](llvm::Value* q) {
    llvm::Value* firstRow = b_.CreateMul(q, kb_.constant(lanes));
    // Channels past the rows are not loaded (they may lie past the input's end); their
    // rows of the square are written, as zeros, to the buffer's spare rows.
    llvm::Value* channelMask = kb_.lanesBelow(firstRow, lanes, rows);
    llvm::Value* channel = b_.CreateAdd(firstChannel, firstRow);
    kb_.loop(kb_.constant(0), kb_.constant(spanVectors), "copy", [&](llvm::Value* v) {
      // With stride s, s squares of consecutive positions, each row's s vectors then
      // split into the s phases (deinterleave).
      std::vector<std::vector<llvm::Value*>> squares;
      for (int64_t t = 0; t < stride_; ++t) {
        llvm::Value* p0 = b_.CreateAdd(
            start,
            b_.CreateAdd(b_.CreateMul(v, kb_.constant(stride_ * lanes)), kb_.constant(t * lanes)));
        std::vector<llvm::Value*> square;
        for (int i = 0; i < lanes; ++i)
          square.push_back(b_.CreateMaskedLoad(
              vectorType_,
              kb_.address(kb_.buffers[0], in, panel.n, channel, b_.CreateAdd(p0, kb_.constant(i))),
              llvm::Align(4), channelMask, kb_.zeros(lanes)));
        // Round `half` swaps the off-diagonal half × half blocks of every 2·half square.
        for (int half = lanes / 2; half >= 1; half /= 2) {
          std::vector<int> low(static_cast<size_t>(lanes)), high(static_cast<size_t>(lanes));
          for (int j = 0; j < lanes; ++j) {
            low[static_cast<size_t>(j)] = (j & half) ? lanes + j - half : j;
            high[static_cast<size_t>(j)] = (j & half) ? lanes + j : j + half;
          }
          for (int i = 0; i < lanes; ++i) {
            if (i & half) continue;
            llvm::Value* a = square[static_cast<size_t>(i)];
            llvm::Value* c = square[static_cast<size_t>(i + half)];
            square[static_cast<size_t>(i)] = b_.CreateShuffleVector(a, c, low);
            square[static_cast<size_t>(i + half)] = b_.CreateShuffleVector(a, c, high);
          }
        }
        squares.push_back(std::move(square));
      }
      for (int r = 0; r < lanes; ++r) {
        std::vector<llvm::Value*> parts;
        for (const std::vector<llvm::Value*>& square : squares)
          parts.push_back(square[static_cast<size_t>(r)]);
        const std::vector<llvm::Value*> phases =
            stride_ == 1 ? parts : deinterleave(std::move(parts));
        llvm::Value* firstPhaseRow =
            b_.CreateMul(b_.CreateAdd(firstRow, kb_.constant(r)), kb_.constant(stride_));
        for (int64_t j = 0; j < stride_; ++j) {
          llvm::Value* target = b_.CreateInBoundsGEP(
              kb_.f32, kb_.scratch,
              b_.CreateAdd(b_.CreateMul(b_.CreateAdd(firstPhaseRow, kb_.constant(j)),
                                        kb_.constant(rowStride_)),
                           b_.CreateMul(v, kb_.constant(lanes))));
          b_.CreateAlignedStore(phases[static_cast<size_t>(j)], target, llvm::Align(4));
        }
      }
    });
  });
}

void WidthVectorEmitter::copyRows(const Panel& panel, llvm::Value* rows,
                                  const std::function<llvm::Value*(llvm::Value*)>& rowOf,
                                  bool checked) {
  const int lanes = lanes_;
  const int64_t spanVectors = (span(panel) + lanes - 1) / lanes;
  const bool contiguous = stride_ == 1 && positionsContiguous(x_);
  llvm::Value* inWidth = kb_.scalars[kInputWidth];
  llvm::Value* start = panelStart(panel);
  llvm::Value* laneSteps =
      b_.CreateMul(kb_.laneIndices(lanes), b_.CreateVectorSplat(lanes, kb_.constant(stride_)));
  // Element offsets of input positions within a row.
  auto elements = [&](llvm::Value* positions) {
    if (positionsContiguous(x_)) return positions;
    return b_.CreateMul(positions, b_.CreateVectorSplat(lanes, kb_.constant(x_.channels)));
  };
  kb_.loop(kb_.constant(0), rows, "row", [&](llvm::Value* i) {
    llvm::Value* source = rowOf(i);
    kb_.loop(kb_.constant(0), kb_.constant(stride_), "phase", [&](llvm::Value* j) {
      llvm::Value* target =
          b_.CreateInBoundsGEP(kb_.f32, kb_.scratch,
                               b_.CreateMul(b_.CreateAdd(b_.CreateMul(i, kb_.constant(stride_)), j),
                                            kb_.constant(rowStride_)));
      kb_.loop(kb_.constant(0), kb_.constant(spanVectors), "copy", [&](llvm::Value* v) {
        // Input position of lane 0; lane l reads first + l·stride.
        llvm::Value* first =
            b_.CreateAdd(b_.CreateAdd(start, j), b_.CreateMul(v, kb_.constant(stride_ * lanes)));
        llvm::Value* positions = b_.CreateAdd(b_.CreateVectorSplat(lanes, first), laneSteps);
        llvm::Value* value;
        if (!checked) {
          if (contiguous)
            value = b_.CreateAlignedLoad(vectorType_, b_.CreateGEP(kb_.f32, source, first),
                                         llvm::Align(4));
          else
            value = b_.CreateMaskedGather(
                vectorType_, b_.CreateGEP(kb_.f32, source, elements(positions)), llvm::Align(4));
        } else {
          auto [index, inRange] = kb_.mapPosition(op_.paddingMode, positions, inWidth);
          if (inRange) {
            // Lanes in the zero padding are masked off, so their addresses may lie
            // outside the row.
            if (contiguous)
              value = b_.CreateMaskedLoad(vectorType_, b_.CreateGEP(kb_.f32, source, first),
                                          llvm::Align(4), inRange, kb_.zeros(lanes));
            else
              value = b_.CreateMaskedGather(vectorType_,
                                            b_.CreateGEP(kb_.f32, source, elements(positions)),
                                            llvm::Align(4), inRange, kb_.zeros(lanes));
          } else {
            // One reflection or wrap covers the positions the outputs need; lanes past
            // them (whose results are never stored) are clamped into the row.
            llvm::Value* last = b_.CreateVectorSplat(lanes, b_.CreateSub(inWidth, kb_.constant(1)));
            llvm::Value* low = b_.CreateVectorSplat(lanes, kb_.constant(0));
            index = b_.CreateSelect(b_.CreateICmpSLT(index, low), low, index);
            index = b_.CreateSelect(b_.CreateICmpSGT(index, last), last, index);
            value = b_.CreateMaskedGather(
                vectorType_, b_.CreateGEP(kb_.f32, source, elements(index)), llvm::Align(4));
          }
        }
        b_.CreateAlignedStore(
            value, b_.CreateInBoundsGEP(kb_.f32, target, b_.CreateMul(v, kb_.constant(lanes))),
            llvm::Align(4));
      });
    });
  });
}

void WidthVectorEmitter::prefetchNextPanel(const Panel& panel, const ChannelBlock& block,
                                           llvm::Value* channel, llvm::Value* k) {
  // The next panel reads tileWidth positions further on. NCW rows lie far apart, more
  // streams than the hardware prefetcher follows, so each (tap, channel) step of this
  // panel fetches a share of that channel's new lines; a burst of them at pack time
  // would overrun the miss buffers.
  // Tail panels are few and short; an NWC input is one stream the hardware follows.
  if (panel.tail || !positionsContiguous(x_)) return;
  // When every block of output channels reads one copy, the first block's steps fetch
  // the lines for all: the others would only repeat them (on a CPU with an FMA per
  // cycle, a pointwise conv lost a fifth of its speed to that).
  if (!blocksOutsidePanels(op_)) {
    llvm::Value* firstOfPanel =
        panel.firstBlock ? b_.CreateMul(panel.firstBlock, kb_.constant(s_.rows)) : kb_.constant(0);
    kb_.ifThen(b_.CreateICmpEQ(block.firstChannel, firstOfPanel),
               [&] { prefetchNextPanelLines(panel, channel, k); });
    return;
  }
  prefetchNextPanelLines(panel, channel, k);
}

void WidthVectorEmitter::prefetchNextPanelLines(const Panel& panel, llvm::Value* channel,
                                                llvm::Value* k) {
  const int lanes = lanes_;
  // With stride s the next panel starts s·width input positions further on.
  const int64_t newLines = (stride_ * width(panel) + 15) / 16;
  const int64_t perTap = (newLines + K_ - 1) / K_;
  llvm::Value* inWidth = kb_.scalars[kInputWidth];
  llvm::Value* loaded = b_.CreateAdd(
      panelStart(panel), kb_.constant(stride_ * ((span(panel) + lanes - 1) / lanes * lanes)));
  llvm::Value* row = kb_.offset(kb_.strides(x_, inWidth), panel.n, channel, kb_.constant(0));
  for (int64_t t = 0; t < perTap; ++t) {
    llvm::Value* column = b_.CreateAdd(
        loaded, b_.CreateMul(b_.CreateAdd(b_.CreateMul(k, kb_.constant(perTap)), kb_.constant(t)),
                             kb_.constant(16)));
    kb_.prefetch(b_.CreateGEP(kb_.f32, kb_.buffers[0], b_.CreateAdd(row, column)), false);
  }
}

// The next panel's output lines: claimed early, for the same reason the inputs are
// prefetched. Spread over the tile's (tap, channel) steps when there are enough of
// them, else issued together after the stores.
bool WidthVectorEmitter::spreadOutputPrefetch(const Panel& panel) const {
  return !op_.isDepthwise() && !panel.tail && y_.layout == ir::Layout::NCW &&
         K_ * I_ >= s_.rows * outputLines(panel);
}

void WidthVectorEmitter::prefetchOutput(const Panel& panel, llvm::Value* channel,
                                        llvm::Value* line) {
  llvm::Value* outWidth = kb_.scalars[kOutputWidth];
  llvm::Value* position = b_.CreateAdd(
      panel.p0, b_.CreateAdd(kb_.constant(width(panel)), b_.CreateMul(line, kb_.constant(16))));
  llvm::Value* address =
      b_.CreateGEP(kb_.f32, kb_.buffers.back(),
                   kb_.offset(kb_.strides(y_, outWidth), panel.n, channel, position));
  kb_.prefetch(address, true);
}

// In a tail panel one vector of positions is left, so a tile of R rows would feed
// each broadcast weight to a single FMA and re-read all the weights for a few
// positions; V blocks side by side keep the main tile's R·V accumulators busy.
void WidthVectorEmitter::forEachTile(
    const Panel& panel, const std::function<void(const std::vector<ChannelBlock>&)>& body) {
  const int group = panel.tail ? s_.vectors : 1;
  llvm::Value* first = panel.firstBlock ? panel.firstBlock : kb_.constant(0);
  llvm::Value* blocks =
      panel.blockCount ? panel.blockCount : kb_.constant((y_.channels + s_.rows - 1) / s_.rows);
  auto blockAt = [&](llvm::Value* index) {
    auto [firstChannel, weights] = kb_.channelBlock(op_, s_.rows, b_.CreateAdd(first, index));
    return ChannelBlock{firstChannel, weights};
  };
  llvm::Value* groups = b_.CreateSDiv(blocks, kb_.constant(group));
  kb_.loop(kb_.constant(0), groups, "cg", [&](llvm::Value* g) {
    std::vector<ChannelBlock> tile;
    for (int i = 0; i < group; ++i)
      tile.push_back(blockAt(b_.CreateAdd(b_.CreateMul(g, kb_.constant(group)), kb_.constant(i))));
    body(tile);
  });
  if (group > 1)
    kb_.loop(b_.CreateMul(groups, kb_.constant(group)), blocks, "cb",
             [&](llvm::Value* index) { body({blockAt(index)}); });
}

void WidthVectorEmitter::computeTile(const Panel& panel, const std::vector<ChannelBlock>& blocks,
                                     const InputBlock& input) {
  const int lanes = lanes_, rows = s_.rows;
  const int tileRows = rows * static_cast<int>(blocks.size());
  auto startFromZero = [&] {
    for (int t = 0; t < tileRows; ++t)
      for (int v = 0; v < panel.vectors; ++v)
        b_.CreateStore(kb_.zeros(lanes), accumulator(panel, t, v));
  };
  if (!input.first) {
    startFromZero();
  } else {
    // After the first block of input channels, the tile goes on from the partial sums
    // the previous blocks left in the output.
    llvm::Value* mask = storeMask(panel);
    kb_.ifThenElse(input.first, startFromZero, [&] {
      for (int t = 0; t < tileRows; ++t) {
        llvm::Value* co = tileChannel(blocks, t);
        auto load = [&] {
          for (int v = 0; v < panel.vectors; ++v)
            b_.CreateStore(
                kb_.loadLanes(y_, kb_.buffers.back(), kb_.scalars[kOutputWidth], panel.n, co,
                              b_.CreateAdd(panel.p0, kb_.constant(int64_t{v} * lanes)),
                              LaneAxis::Positions, lanes, mask),
                accumulator(panel, t, v));
        };
        // Rows past the last channel are never stored; their sums do not matter.
        if (y_.channels % rows != 0)
          kb_.ifThen(b_.CreateICmpSLT(co, kb_.constant(y_.channels)), load);
        else
          load();
      }
    });
  }
  kb_.loop(kb_.constant(0), kb_.constant(K_), "k", [&](llvm::Value* k) {
    std::vector<llvm::Value*> tapWeights;
    for (const ChannelBlock& block : blocks)
      tapWeights.push_back(
          b_.CreateInBoundsGEP(kb_.f32, block.weights, b_.CreateMul(k, kb_.constant(I_ * rows))));
    llvm::Value* tapOffset = b_.CreateMul(k, kb_.constant(op_.dilation));
    llvm::Value* tapPhase = b_.CreateURem(tapOffset, kb_.constant(stride_));
    llvm::Value* tapColumn = b_.CreateUDiv(tapOffset, kb_.constant(stride_));
    // The V input vectors tap k reads from the panel row of channel row `row`
    // (see packPanel).
    auto inputs = [&](llvm::Value* row) {
      llvm::Value* base;
      if (input.inPlaceChannel) {
        base = kb_.address(kb_.buffers[0], kb_.strides(x_, kb_.scalars[kInputWidth]), panel.n,
                           input.inPlaceChannel(row), b_.CreateAdd(panelStart(panel), tapOffset));
      } else {
        llvm::Value* phaseRow = b_.CreateAdd(b_.CreateMul(row, kb_.constant(stride_)), tapPhase);
        base = b_.CreateInBoundsGEP(
            kb_.f32, kb_.scratch,
            b_.CreateAdd(b_.CreateMul(phaseRow, kb_.constant(rowStride_)), tapColumn));
      }
      std::vector<llvm::Value*> loaded;
      for (int v = 0; v < panel.vectors; ++v)
        loaded.push_back(b_.CreateAlignedLoad(
            vectorType_, b_.CreateConstInBoundsGEP1_64(kb_.f32, base, int64_t{v} * lanes),
            llvm::Align(4)));
      return loaded;
    };
    auto weight = [&](llvm::Value* ci, int t) {
      llvm::Value* index =
          b_.CreateAdd(b_.CreateMul(ci, kb_.constant(rows)), kb_.constant(t % rows));
      return b_.CreateVectorSplat(
          lanes,
          b_.CreateLoad(kb_.f32, b_.CreateInBoundsGEP(
                                     kb_.f32, tapWeights[static_cast<size_t>(t / rows)], index)));
    };
    auto accumulate = [&](int t, llvm::Value* w, const std::vector<llvm::Value*>& x) {
      for (int v = 0; v < panel.vectors; ++v)
        b_.CreateStore(kb_.fma(w, x[v], b_.CreateLoad(vectorType_, accumulator(panel, t, v))),
                       accumulator(panel, t, v));
    };
    if (op_.isDepthwise()) {
      for (int t = 0; t < tileRows; ++t)
        accumulate(t, weight(kb_.constant(0), t), inputs(kb_.constant(t % rows)));
      return;
    }
    kb_.loop(kb_.constant(0), input.count, "ci", [&](llvm::Value* row) {
      llvm::Value* ci = b_.CreateAdd(input.firstChannel, row);  // the input channel
      prefetchNextPanel(panel, blocks.front(), ci, k);
      if (s_.prefetchWeights) {
        // Past the last tap this is the next block's first; past the last block, an
        // address nobody reads (a prefetch never faults): no inbounds.
        for (llvm::Value* weights : tapWeights) {
          llvm::Value* next = b_.CreateGEP(
              kb_.f32, weights,
              b_.CreateAdd(kb_.constant(I_ * rows), b_.CreateMul(ci, kb_.constant(rows))));
          kb_.prefetch(next, false);
        }
      }
      if (spreadOutputPrefetch(panel)) {
        llvm::Value* step = b_.CreateAdd(b_.CreateMul(k, kb_.constant(I_)), ci);
        llvm::Value* row = b_.CreateURem(step, kb_.constant(rows));
        llvm::Value* line = b_.CreateURem(b_.CreateUDiv(step, kb_.constant(rows)),
                                          kb_.constant(outputLines(panel)));
        prefetchOutput(panel, b_.CreateAdd(blocks.front().firstChannel, row), line);
      }
      std::vector<llvm::Value*> x = inputs(row);
      for (int t = 0; t < tileRows; ++t) accumulate(t, weight(ci, t), x);
    });
  });
}

llvm::Value* WidthVectorEmitter::storeMask(const Panel& panel) {
  return panel.tail ? kb_.lanesBelow(panel.p0, lanes_, kb_.scalars[kWidthEnd]) : nullptr;
}

void WidthVectorEmitter::storeTile(const Panel& panel, const std::vector<ChannelBlock>& blocks,
                                   const InputBlock& input) {
  const int lanes = lanes_;
  llvm::Value* outWidth = kb_.scalars[kOutputWidth];
  llvm::Value* mask = storeMask(panel);
  auto position = [&](int v) { return b_.CreateAdd(panel.p0, kb_.constant(int64_t{v} * lanes)); };
  // The sums through bias and epilogue; or, before the last block of input channels,
  // as they are, for the next block to go on from.
  auto storeRows = [&](bool final) {
    if (final && WidthVectorSchedule::transposesOutput(op_, s_.rows, lanes)) {
      for (size_t bi = 0; bi < blocks.size(); ++bi)
        storeTransposed(panel, static_cast<int>(bi) * s_.rows, blocks[bi].firstChannel, mask);
      return;
    }
    for (int t = 0; t < s_.rows * static_cast<int>(blocks.size()); ++t) {
      llvm::Value* co = tileChannel(blocks, t);
      auto store = [&] {
        if (!final) {
          for (int v = 0; v < panel.vectors; ++v)
            kb_.storeLanes(b_.CreateLoad(vectorType_, accumulator(panel, t, v)), y_,
                           kb_.buffers.back(), outWidth, panel.n, co, position(v),
                           LaneAxis::Positions, mask);
          return;
        }
        llvm::Value* bias =
            op_.hasBias
                ? b_.CreateVectorSplat(
                      lanes,
                      b_.CreateLoad(kb_.f32, b_.CreateInBoundsGEP(kb_.f32, kb_.buffers[2], co)))
                : nullptr;
        std::vector<llvm::Value*> values;
        for (int v = 0; v < panel.vectors; ++v) {
          llvm::Value* sum = b_.CreateLoad(vectorType_, accumulator(panel, t, v));
          values.push_back(kb_.finalValue(op_, sum, bias, [&](int i) {
            return kb_.loadLanes(*op_.operands[i], kb_.buffers[i], outWidth, panel.n, co,
                                 position(v), LaneAxis::Positions, lanes, mask);
          }));
        }
        for (int v = 0; v < panel.vectors; ++v)
          kb_.storeLanes(values[v], y_, kb_.buffers.back(), outWidth, panel.n, co, position(v),
                         LaneAxis::Positions, mask);
        if (!spreadOutputPrefetch(panel) && !panel.tail && y_.layout == ir::Layout::NCW)
          for (int64_t line = 0; line < outputLines(panel); ++line)
            prefetchOutput(panel, co, kb_.constant(line));
      };
      // The last block may hold fewer than R channels.
      if (y_.channels % s_.rows != 0)
        kb_.ifThen(b_.CreateICmpSLT(co, kb_.constant(y_.channels)), store);
      else
        store();
    }
  };
  if (!input.last)
    storeRows(true);
  else
    kb_.ifThenElse(
        input.last, [&] { storeRows(true); }, [&] { storeRows(false); });
}

// R vectors of lanes positions (one per row) into R vectors that each hold lanes / R
// consecutive positions × R channels, channels innermost: log2(R) rounds of a perfect
// shuffle of their concatenation (each round rotates its index bits by one, row bits
// above position bits becoming position bits above row bits), one two-input shuffle per
// vector and round.
std::vector<llvm::Value*> WidthVectorEmitter::rowsToPositions(std::vector<llvm::Value*> rows) {
  const int lanes = lanes_;
  const size_t half = rows.size() / 2;
  std::vector<int> low(static_cast<size_t>(lanes)), high(static_cast<size_t>(lanes));
  for (int j = 0; j < lanes; ++j) {
    low[static_cast<size_t>(j)] = (j % 2 ? lanes : 0) + j / 2;
    high[static_cast<size_t>(j)] = (j % 2 ? lanes : 0) + lanes / 2 + j / 2;
  }
  for (size_t round = 1; round < rows.size(); round *= 2) {
    std::vector<llvm::Value*> next(rows.size());
    for (size_t i = 0; i < half; ++i) {
      next[2 * i] = b_.CreateShuffleVector(rows[i], rows[i + half], low);
      next[2 * i + 1] = b_.CreateShuffleVector(rows[i], rows[i + half], high);
    }
    rows = std::move(next);
  }
  return rows;
}

// An NWC output holds a block's R channels side by side at each position: the block's
// rows, through bias and epilogue, are transposed in registers and stored R channels at
// a time, lanes / R stores per vector instead of a scatter of lanes single floats per row
// (microcoded, one element a cycle).
void WidthVectorEmitter::storeTransposed(const Panel& panel, int firstRow,
                                         llvm::Value* firstChannel, llvm::Value* mask) {
  const int lanes = lanes_, rows = s_.rows;
  llvm::Value* outWidth = kb_.scalars[kOutputWidth];
  const bool ragged = y_.channels % rows != 0;
  auto position = [&](int v) { return b_.CreateAdd(panel.p0, kb_.constant(int64_t{v} * lanes)); };
  std::vector<std::vector<llvm::Value*>> values(static_cast<size_t>(panel.vectors));
  for (int r = 0; r < rows; ++r) {
    llvm::Value* co = b_.CreateAdd(firstChannel, kb_.constant(r));
    // Rows past the last channel (the last block's padding) are never stored; their bias
    // and residual are read from the last channel so that every read stays in bounds.
    llvm::Value* readChannel =
        ragged ? b_.CreateSelect(b_.CreateICmpSLT(co, kb_.constant(y_.channels)), co,
                                 kb_.constant(y_.channels - 1))
               : co;
    llvm::Value* bias =
        op_.hasBias ? b_.CreateVectorSplat(
                          lanes, b_.CreateLoad(kb_.f32, b_.CreateInBoundsGEP(
                                                            kb_.f32, kb_.buffers[2], readChannel)))
                    : nullptr;
    for (int v = 0; v < panel.vectors; ++v) {
      llvm::Value* sum = b_.CreateLoad(vectorType_, accumulator(panel, firstRow + r, v));
      values[static_cast<size_t>(v)].push_back(kb_.finalValue(op_, sum, bias, [&](int i) {
        return kb_.loadLanes(*op_.operands[i], kb_.buffers[i], outWidth, panel.n, readChannel,
                             position(v), LaneAxis::Positions, lanes, mask);
      }));
    }
  }
  const Strides out = kb_.strides(y_, outWidth);
  llvm::Value* channelMask =
      ragged ? kb_.lanesBelow(firstChannel, rows, kb_.constant(y_.channels)) : nullptr;
  const int perVector = lanes / rows;  // positions each transposed vector holds
  for (int v = 0; v < panel.vectors; ++v) {
    const std::vector<llvm::Value*> transposed =
        rowsToPositions(std::move(values[static_cast<size_t>(v)]));
    for (int j = 0; j < rows; ++j)
      for (int q = 0; q < perVector; ++q) {
        std::vector<int> pick;
        for (int r = 0; r < rows; ++r) pick.push_back(q * rows + r);
        llvm::Value* run = b_.CreateShuffleVector(transposed[static_cast<size_t>(j)], pick);
        llvm::Value* p = b_.CreateAdd(position(v), kb_.constant(int64_t{j} * perVector + q));
        llvm::Value* at = kb_.address(kb_.buffers.back(), out, panel.n, firstChannel, p);
        llvm::Value* runMask = channelMask;
        if (mask) {
          llvm::Value* inRange =
              b_.CreateVectorSplat(rows, b_.CreateICmpSLT(p, kb_.scalars[kWidthEnd]));
          runMask = runMask ? b_.CreateAnd(runMask, inRange) : inRange;
        }
        if (runMask)
          b_.CreateMaskedStore(run, at, llvm::Align(4), runMask);
        else
          b_.CreateAlignedStore(run, at, llvm::Align(4));
      }
  }
}

void WidthVectorSchedule::emit(KernelBuilder& kb) const {
  WidthVectorEmitter(*this, kb, lanes).emit();
}

class WidthVector final : public Strategy {
 public:
  std::string_view name() const override { return "WidthVector"; }
  // Convs with an NCW side; and NWC -> NWC convs whose weights DirectVector would
  // stream from beyond L2. DirectVector's widest block (4 vectors of output channels)
  // reads all its K·I weights once per tile, 10.7 bytes per FMA; past 3/4 of L2 they
  // come from L3, or in blocks of input channels that each cost the tiles a round trip
  // of partial sums. A width tile broadcasts R weights per V panel loads, 4/V bytes of
  // weights per FMA, and its panel is transposed from NWC in registers. Emerald Rapids
  // (2 MiB L2), 250 channels, 48 taps (a block of 64 channels: 3 MiB), W = 200: 97-113
  // ms with DirectVector, 66-68 ms with 11 x 2 or 8 x 3 width tiles; 512 channels, 32
  // taps (4 MiB), W = 100: 172-195 ms against 107-108. The suite's other NWC shapes
  // (blocks of 0.1-0.7 MiB) stay with DirectVector, which was as fast or faster. So do
  // strided ones: the de-interleaving copy nearly triples the kernel (the speech stack's
  // 48-tap stride-2 layer: 2,700 lines of IR against 900, 0.20 s of code generation
  // against 0.08, most of the stack's cold compile) for 2% (38.7 against 39.6 ms).
  bool suits(const ir::Op& op, const Target& target) const override {
    if (op.operands[0]->layout == ir::Layout::NCW || op.result->layout == ir::Layout::NCW)
      return true;
    // Measured with AVX-512's 32 registers only: with 16, no tile has the 8 rows and 2
    // vectors that keep a panel beyond L1 fed (below).
    if (op.kind != ir::OpKind::Conv1d || op.groups != 1 || op.stride != 1 ||
        target.vectorRegisters < 32)
      return false;
    const ir::Value& w = *op.operands[1];
    const double directBlockBytes =
        double(std::min<int64_t>(op.result->channels, 4 * int64_t{target.vectorWidth})) *
        double(w.kernelWidth) * double(w.inChannelsPerGroup) * sizeof(float);
    return directBlockBytes > double(target.caches.l2) * 3 / 4;
  }

  // Tiles of R rows of output channels × V vectors of positions. The tile that keeps
  // the most accumulator lanes busy on real channels comes first: accumulators used,
  // times the share of rows that are real channels (the last block is padded). Among
  // equals, the one with fewer padded rows (no FMAs on zero weights), then the earlier
  // in the preference list: 4 rows × 6 vectors first, measured best on the benchmark
  // suite (wider panels amortize the copy and the halo; 10 loads per 24 FMAs), except
  // with few input channels (first layers): 8 × 3 there, as 4 × 6 ran at 70 or 90
  // GFLOP/s from one process to the next and 8 × 3 at a steady 93. None when the
  // preferred tile's panel would be too large to stay in L2.
  std::vector<std::unique_ptr<Schedule>> schedules(const ir::Op& op,
                                                   const Target& target) const override {
    std::vector<std::unique_ptr<Schedule>> result;
    if (op.kind != ir::OpKind::Conv1d || (op.groups != 1 && !op.isDepthwise())) return result;
    const int64_t outChannels = op.result->channels;
    const int accumulators = target.vectorRegisters * 3 / 4;
    // Panels wider than the output only compute lanes nobody stores.
    int maxVectors = 6;
    if (op.result->width.isConstant())
      maxVectors = static_cast<int>(
          std::clamp<int64_t>(op.result->width.constant() / target.vectorWidth, 1, 6));
    const bool fewInputs = op.groups == 1 && op.operands[1]->inChannelsPerGroup <= 4;
    const std::vector<int> preference =
        fewInputs ? std::vector<int>{8, 4, 6, 12, 5, 7, 3, 10, 2, 9, 11, 1}
                  : std::vector<int>{4, 8, 6, 12, 5, 7, 3, 10, 2, 9, 11, 1};
    struct Candidate {
      int rows, vectors;
      int64_t padded;  // output channels rounded up to whole blocks of rows
      PanelBuffer buffer;
      // Accumulator lanes used on real channels, as a fraction of `used`/`padded`:
      // compared exactly, by cross-multiplying.
      bool scoresAbove(const Candidate& other) const {
        return int64_t{rows} * vectors * other.padded >
               int64_t{other.rows} * other.vectors * padded;
      }
    };
    std::vector<Candidate> candidates;
    for (int rows : preference) {
      const int vectors = std::min(maxVectors, accumulators / rows);
      if (vectors < 1) continue;
      candidates.push_back({rows, vectors, (outChannels + rows - 1) / rows * rows,
                            PanelBuffer(op, target.vectorWidth, rows, vectors, target.caches)});
    }
    // Where the input channels go in blocks, each block costs every tile a round trip
    // of its R·V accumulators through the output, against K·(channels per block) FMAs
    // per accumulator. Past 2% of them (a pointwise conv over 512 channels: 64 channels
    // a block with 4 × 6, 149 with 8 × 3, whose narrower panel copies half as many
    // positions), deeper blocks come before the preference order: measured 41.6 ->
    // 39.1 ms with 8 × 3 there.
    const int64_t K = op.operands[1]->kernelWidth;
    auto roundTripsCost = [&](const Candidate& c) {
      const PanelBuffer& b = c.buffer;
      if (b.inputChannels >= op.operands[1]->inChannelsPerGroup) return false;
      return 2 * 50 > K * b.inputChannels;  // 2 / (K · channels) above 2%
    };
    // Stable: among equal scores and equal padding, the preference order stands.
    std::stable_sort(candidates.begin(), candidates.end(), [&](const auto& a, const auto& b) {
      if (a.scoresAbove(b) || b.scoresAbove(a)) return a.scoresAbove(b);
      if (a.padded != b.padded) return a.padded < b.padded;
      if (roundTripsCost(a) || roundTripsCost(b))
        return a.buffer.inputChannels > b.buffer.inputChannels;
      return false;
    });
    // A panel that outgrows the L1 budget without blocks of input channels (an NWC
    // output cannot hold their partial sums) is read from L2 by every tile, a vector
    // load per R FMAs: tiles of 8 or more rows and at least 2 vectors come first (512
    // channels, 32 taps, NWC -> NWC on Emerald Rapids: 8 x 3 108-133 ms, 11 x 2
    // 107-116, 4 x 6 153).
    // Compared by division (PanelBuffer::fits): a huge dilation makes the panel huge.
    if (!candidates.empty() &&
        candidates.front().buffer.rows == candidates.front().buffer.allRows &&
        !candidates.front().buffer.fits(candidates.front().buffer.l1Budget /
                                        int64_t{sizeof(float)}))
      std::stable_partition(candidates.begin(), candidates.end(),
                            [](const Candidate& c) { return c.rows >= 8 && c.vectors >= 2; });
    // A depthwise conv does a few FMAs per byte it moves: memory, not the tile, bounds
    // it. Each block sweeps the width alone (blocksOutsidePanels), reading one input row
    // and writing R output rows; with R = the channel multiplier it reads and writes one
    // row of each, the fewest streams for the prefetcher (tuner-measured on 256
    // channels, K = 15: 5.1 ms against 6.0 with 4 rows).
    if (op.isDepthwise()) {
      const int64_t multiplier = outChannels / op.operands[0]->channels;
      std::stable_partition(candidates.begin(), candidates.end(),
                            [&](const Candidate& c) { return c.rows == multiplier; });
    }
    // When the preferred tile's panel does not fit, the op is better left to the
    // channel-vectorized strategy than given a worse tile. The size is checked before a
    // schedule multiplies it out: a huge dilation makes it overflow.
    // So is an op whose stride gives each input channel more rows than L1 holds (a
    // front end with a window of hundreds of taps and a hop of hundreds): measured 2.5x
    // slower than DirectVector's broadcasts of the input, which need no copy at all.
    // And so is an op whose NWC output goes out with too few FMAs per stored vector
    // (such an output cannot hold the partial sums of blocks of input channels either).
    // Scattered (tiles of R rows that are not a power of two no wider than a vector),
    // each vector is `lanes` single stores, microcoded, against the K·I FMAs that
    // computed it: under 64·lanes FMAs a vector DirectVector, which stores whole vectors
    // of channels, measured faster (NCW -> NWC first layer, K·I = 16: 0.27x -> 1.09x
    // oneDNN). Transposed in registers (storeTransposed), lanes / R stores and log2(R)
    // shuffles a row: the break-even halves, to 32·lanes. Emerald Rapids, NCW -> NWC,
    // 1 thread, best of 3 alternating, ms, DirectVector against transposed WidthVector
    // tiles: 64 channels with K·I = 64, 128, 256: 6.7/11.9, 13.6/17.8, 27.8/31.3;
    // K·I = 512: pointwise (512 channels) 39.0/30.3, ECG (32) 30.2/29.1; downsample
    // (640) 36.0/34.1; first layer (16) 2.1/4.3.
    const int64_t fmasPerVector = op.operands[1]->kernelWidth * op.operands[1]->inChannelsPerGroup;
    if (!positionsContiguous(*op.result))
      candidates.erase(std::remove_if(candidates.begin(), candidates.end(),
                                      [&](const Candidate& c) {
                                        const bool transposed =
                                            WidthVectorSchedule::transposesOutput(
                                                op, c.rows, target.vectorWidth);
                                        return fmasPerVector <
                                               (transposed ? 32 : 64) * int64_t{target.vectorWidth};
                                      }),
                       candidates.end());
    constexpr int64_t kMaxPanelFloats = 512 * 1024 / sizeof(float);
    // Where a full-width FMA issues at less than two a cycle, a half-width one takes
    // half its time (Zen 4 splits a 512-bit FMA over both 256-bit pipes); where two
    // pipes take whole vectors (Zen 5, Intel's server cores), both cost a pipe-cycle
    // and a narrow tail saves nothing. Its panel is a second copy of the tail's code
    // (a 250-channel 7-tap kernel: 3,800 -> 6,200 lines of IR, and the 12-layer speech
    // stack's cold compile 400 -> 650 ms), so it is emitted only where the width is
    // known to end in one: a constant width whose last vector holds half the lanes or
    // fewer (thread chunks start on whole panels, so only the last can be ragged).
    const ir::SymExpr& width = op.result->width;
    const int64_t lastVector = width.isConstant() ? width.constant() % target.vectorWidth : 0;
    const bool narrowTail = target.fmaPerCycle < 2 && target.vectorWidth >= 8 && lastVector > 0 &&
                            lastVector <= target.vectorWidth / 2;
    if (candidates.empty() || !candidates.front().buffer.fits(kMaxPanelFloats) ||
        !candidates.front().buffer.channelFitsL1())
      return result;
    for (const Candidate& c : candidates)
      if (c.buffer.fits(kMaxPanelFloats))
        result.push_back(std::make_unique<WidthVectorSchedule>(
            op, target.vectorWidth, c.rows, c.vectors, c.buffer, target.caches, narrowTail));
    return result;
  }
};
}  // namespace

CNV_DEFINE_STRATEGY(WidthVector)

}  // namespace cnv::backend
