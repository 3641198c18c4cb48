// The WidthVector strategy: width-innermost register tiles, as LIBXSMM's 1-D
// convolutions are built, for convs whose input or output is NCW (PyTorch's layout).
// A tile is channelTile (R) output channels × vectorsPerTile (V) vectors of
// consecutive output positions; weights are packed [O/R][K][I][R], zero-filled past O.
//
// Per sample, the call's output positions go in panels of V vectors. Each panel first
// copies the input it reads (per input channel, V·lanes·stride + (K−1)·dilation
// positions; padding applied: zeros, or the mapped positions; a stride de-interleaved
// into one row per phase; an NWC input gathered) into a per-thread scratch buffer
// whose rows are spaced to avoid cache-set conflicts; rows a power-of-two width apart
// would otherwise share a handful of L1 sets. The tiles then run unchecked from that
// buffer: for each tap k and input channel ci, V vector loads and R weight broadcasts
// feed R·V FMAs. Stores are contiguous rows (scatters into an NWC output), masked past
// the end of the call's range. Depthwise convs copy only the R input channels of each
// block of output channels.
#include <llvm/IR/Intrinsics.h>

#include "compiler/codegen/KernelBuilder.h"

namespace cnv::codegen {
namespace {

class WidthVectorEmitter {
 public:
  WidthVectorEmitter(KernelBuilder& kb, const ir::Op& op, const Schedule& schedule)
      : kb_(kb),
        b_(kb.b),
        op_(op),
        x_(*op.operands[0]),
        y_(*op.result),
        lanes_(schedule.vectorWidth),
        vectors_(schedule.vectorsPerTile),
        rows_(schedule.channelTile),
        K_(op.operands[1]->kernelWidth),
        I_(op.operands[1]->inChannelsPerGroup),
        depthwise_(op.groups > 1),
        multiplier_(op.result->channels / op.operands[0]->channels),
        stride_(op.stride),
        inputNcw_(op.operands[0]->layout == ir::Layout::NCW),
        outputNcw_(op.result->layout == ir::Layout::NCW),
        halo_((op.operands[1]->kernelWidth - 1) * op.dilation),
        rowStride_(widthVectorRowStride(schedule, op)),
        vectorType_(llvm::FixedVectorType::get(kb.f32, schedule.vectorWidth)) {}

  void emit();

 private:
  int64_t panelWidth() const { return int64_t{panelVectors_} * lanes_; }
  // Entries of a panel row: the positions one phase of the input contributes.
  int64_t span() const { return panelWidth() + halo_ / stride_; }
  // Copies the input a panel reads, for `rows` channels (row i: channel channelOf(i)),
  // into the buffer. With stride s each channel gets s rows, one per phase: row
  // i·s + j holds input positions p0·s − padLeft + j + s·m, m = 0, 1, ..., so that tap
  // k of output p0 + q reads row i·s + (k·dilation mod s), entry q + k·dilation div s:
  // consecutive outputs read consecutive entries whatever the stride.
  void packPanel(LValue* p0, int64_t rows, const std::function<LValue*(LValue*)>& channelOf);
  void computeTile(LValue* p0);
  void prefetchNextPanel(LValue* channel, LValue* k);
  bool spreadOutputPrefetch() const;
  int64_t outputLines() const;
  void prefetchOutput(LValue* channel, LValue* line);
  void prefetchOutput(LValue* channel, int64_t line) {
    prefetchOutput(channel, kb_.constant(line));
  }
  void storeTile(LValue* p0);

  // Positions [w0, w0 + lanes) of channel c of activation v, under `mask` if any:
  // contiguous in NCW, gathered (scattered) through nwcPositionPointers in NWC.
  LValue* loadPositions(const ir::Value& v, LValue* base, LValue* width, LValue* c, LValue* w0,
                        LValue* mask);
  void storePositions(LValue* value, const ir::Value& v, LValue* base, LValue* width, LValue* c,
                      LValue* w0, LValue* mask);
  LValue* nwcPositionPointers(const ir::Value& v, LValue* base, LValue* width, LValue* c,
                              LValue* w0);
  LValue* allLanes() {
    return llvm::ConstantInt::getTrue(
        llvm::FixedVectorType::get(b_.getInt1Ty(), static_cast<unsigned>(lanes_)));
  }
  LValue* lanePositions(LValue* first) {
    return b_.CreateAdd(b_.CreateVectorSplat(lanes_, first), kb_.laneIndices(lanes_));
  }
  LValue* zeros() { return llvm::ConstantFP::get(vectorType_, 0.0); }
  LValue* fma(LValue* a, LValue* b, LValue* c) {
    return b_.CreateIntrinsic(llvm::Intrinsic::fmuladd, {vectorType_}, {a, b, c});
  }
  llvm::AllocaInst* accumulator(int row, int vector) {
    return accumulators_[row * vectors_ + vector];
  }

  KernelBuilder& kb_;
  llvm::IRBuilder<>& b_;
  const ir::Op& op_;
  const ir::Value& x_;
  const ir::Value& y_;
  const int lanes_, vectors_, rows_;
  const int64_t K_, I_;
  const bool depthwise_;
  const int64_t multiplier_;
  const int64_t stride_;
  // NWC sides are reached through gathers (the copy) and scatters (the stores).
  const bool inputNcw_, outputNcw_;
  const int64_t halo_, rowStride_;
  // Vectors in the panels being emitted: vectors_ for the bulk, 1 for the tail.
  int panelVectors_ = 0;
  bool inTail_ = false;  // emitting the one-vector panels after the whole ones
  llvm::FixedVectorType* vectorType_;
  std::vector<llvm::AllocaInst*> accumulators_;
  LValue* buffer_ = nullptr;
  // Set per sample and channel block.
  LValue* n_ = nullptr;
  LValue* p0_ = nullptr;
  LValue* firstChannel_ = nullptr;
  LValue* weights_ = nullptr;
};

void WidthVectorEmitter::emit() {
  for (int i = 0; i < rows_ * vectors_; ++i)
    accumulators_.push_back(kb_.entryAlloca(vectorType_, "acc"));
  // The panel lives in the call's scratch buffer: heap memory private to the thread,
  // so a large panel cannot overflow a small thread stack.
  buffer_ = kb_.scratch;

  LValue* widthBegin = kb_.scalars[kWidthBegin];
  LValue* widthEnd = kb_.scalars[kWidthEnd];
  // Whole panels of vectors_ vectors, then one-vector panels for the rest, so a short
  // or ragged width computes at most lanes − 1 positions it does not store.
  const int64_t bulkWidth = int64_t{vectors_} * lanes_;
  LValue* panels = b_.CreateSDiv(b_.CreateSub(widthEnd, widthBegin), kb_.constant(bulkWidth));
  LValue* tailBegin = b_.CreateAdd(widthBegin, b_.CreateMul(panels, kb_.constant(bulkWidth)));
  LValue* tailPanels =
      b_.CreateSDiv(b_.CreateAdd(b_.CreateSub(widthEnd, tailBegin), kb_.constant(lanes_ - 1)),
                    kb_.constant(lanes_));
  // Panels of the call's positions, in order: whole ones, then the one-vector tail.
  auto forEachPanel = [&](const std::function<void(LValue*)>& body) {
    panelVectors_ = vectors_;
    inTail_ = false;
    kb_.loop(kb_.constant(0), panels, "panel", [&](LValue* j) {
      p0_ = b_.CreateAdd(widthBegin, b_.CreateMul(j, kb_.constant(bulkWidth)));
      body(p0_);
    });
    panelVectors_ = 1;
    inTail_ = true;
    kb_.loop(kb_.constant(0), tailPanels, "tail", [&](LValue* j) {
      p0_ = b_.CreateAdd(tailBegin, b_.CreateMul(j, kb_.constant(lanes_)));
      body(p0_);
    });
  };
  const int64_t blocks = (y_.channels + rows_ - 1) / rows_;
  auto forEachBlock = [&](const std::function<void()>& body) {
    kb_.loop(kb_.constant(0), kb_.constant(blocks), "cb", [&](LValue* cb) {
      firstChannel_ = b_.CreateMul(cb, kb_.constant(rows_));
      weights_ = b_.CreateInBoundsGEP(kb_.f32, kb_.buffers[1],
                                      b_.CreateMul(cb, kb_.constant(K_ * I_ * rows_)));
      body();
    });
  };
  auto packDepthwise = [&](LValue* p0) {
    packPanel(p0, rows_, [&](LValue* i) {
      // Rows past the last channel (zero weights, never stored) copy the last one.
      LValue* co = kb_.minimum(b_.CreateAdd(firstChannel_, i), kb_.constant(y_.channels - 1));
      return b_.CreateUDiv(co, kb_.constant(multiplier_));
    });
  };
  auto packAll = [&](LValue* p0) { packPanel(p0, x_.channels, [](LValue* i) { return i; }); };
  const bool blocksOutside = widthVectorBlocksOutside(op_);
  kb_.loop(kb_.scalars[kBatchBegin], kb_.scalars[kBatchEnd], "n", [&](LValue* n) {
    n_ = n;
    if (blocksOutside) {
      forEachBlock([&] {
        forEachPanel([&](LValue* p0) {
          if (depthwise_)
            packDepthwise(p0);
          else
            packAll(p0);
          computeTile(p0);
          storeTile(p0);
        });
      });
    } else {
      forEachPanel([&](LValue* p0) {
        packAll(p0);
        forEachBlock([&] {
          computeTile(p0);
          storeTile(p0);
        });
      });
    }
  });
}

void WidthVectorEmitter::packPanel(LValue* p0, int64_t rows,
                                   const std::function<LValue*(LValue*)>& channelOf) {
  LValue* inWidth = kb_.scalars[kInputWidth];
  LValue* start = b_.CreateSub(b_.CreateMul(p0, kb_.constant(stride_)), kb_.scalars[kPadLeft]);
  const int64_t spanVectors = (span() + lanes_ - 1) / lanes_;
  LValue* sample = b_.CreateMul(n_, b_.CreateMul(kb_.constant(x_.channels), inWidth));
  // Channel c's position p is at row(c) + p·positionStride.
  const int64_t positionStride = inputNcw_ ? 1 : x_.channels;
  auto rowOf = [&](LValue* channel) {
    return b_.CreateGEP(kb_.f32, kb_.buffers[0],
                        b_.CreateAdd(sample, inputNcw_ ? b_.CreateMul(channel, inWidth) : channel));
  };
  auto elements = [&](LValue* positions) {
    return positionStride == 1 ? positions
                               : b_.CreateMul(positions, b_.CreateVectorSplat(
                                                             lanes_, kb_.constant(positionStride)));
  };
  // Every position the copy reads lies inside the input: [start, start + s·entries).
  LValue* inside = b_.CreateAnd(
      b_.CreateICmpSGE(start, kb_.constant(0)),
      b_.CreateICmpSLE(b_.CreateAdd(start, kb_.constant(stride_ * spanVectors * lanes_)), inWidth));
  LValue* laneSteps =
      b_.CreateMul(kb_.laneIndices(lanes_), b_.CreateVectorSplat(lanes_, kb_.constant(stride_)));
  // Inside the input, small strides de-interleave with plain loads and shuffles: the
  // s vectors at start + s·lanes·v hold lanes entries of each of the s phases.
  auto copyRowsDeinterleaved = [&]() {
    kb_.loop(kb_.constant(0), kb_.constant(rows), "row", [&](LValue* i) {
      LValue* source = rowOf(channelOf(i));
      LValue* firstRow =
          b_.CreateMul(b_.CreateMul(i, kb_.constant(stride_)), kb_.constant(rowStride_));
      kb_.loop(kb_.constant(0), kb_.constant(spanVectors), "copy", [&](LValue* v) {
        LValue* block = b_.CreateAdd(start, b_.CreateMul(v, kb_.constant(stride_ * lanes_)));
        std::vector<LValue*> parts;
        for (int64_t part = 0; part < stride_; ++part)
          parts.push_back(b_.CreateAlignedLoad(
              vectorType_,
              b_.CreateGEP(kb_.f32, source, b_.CreateAdd(block, kb_.constant(part * lanes_))),
              llvm::Align(4)));
        // Concatenate pairwise up to a power-of-two width, then pick every s-th lane.
        while (parts.size() > 1) {
          std::vector<LValue*> joined;
          for (size_t p = 0; p < parts.size(); p += 2) {
            auto* type = llvm::cast<llvm::FixedVectorType>(parts[p]->getType());
            const int width = static_cast<int>(type->getNumElements());
            LValue* other = p + 1 < parts.size() ? parts[p + 1] : llvm::PoisonValue::get(type);
            std::vector<int> mask(static_cast<size_t>(2 * width));
            for (int l = 0; l < 2 * width; ++l) mask[static_cast<size_t>(l)] = l;
            joined.push_back(b_.CreateShuffleVector(parts[p], other, mask));
          }
          parts = std::move(joined);
        }
        for (int64_t j = 0; j < stride_; ++j) {
          std::vector<int> mask;
          for (int l = 0; l < lanes_; ++l) mask.push_back(static_cast<int>(j + stride_ * l));
          LValue* target = b_.CreateInBoundsGEP(
              kb_.f32, buffer_,
              b_.CreateAdd(b_.CreateAdd(firstRow, kb_.constant(j * rowStride_)),
                           b_.CreateMul(v, kb_.constant(lanes_))));
          b_.CreateAlignedStore(b_.CreateShuffleVector(parts[0], mask), target, llvm::Align(4));
        }
      });
    });
  };
  auto copyRows = [&](bool checked) {
    if (!checked && inputNcw_ && stride_ > 1 && stride_ <= 4) {
      copyRowsDeinterleaved();
      return;
    }
    kb_.loop(kb_.constant(0), kb_.constant(rows), "row", [&](LValue* i) {
      LValue* source = rowOf(channelOf(i));
      kb_.loop(kb_.constant(0), kb_.constant(stride_), "phase", [&](LValue* j) {
        LValue* target = b_.CreateInBoundsGEP(
            kb_.f32, buffer_,
            b_.CreateMul(b_.CreateAdd(b_.CreateMul(i, kb_.constant(stride_)), j),
                         kb_.constant(rowStride_)));
        kb_.loop(kb_.constant(0), kb_.constant(spanVectors), "copy", [&](LValue* v) {
          // Input position of lane 0; lane l reads first + l·stride.
          LValue* first =
              b_.CreateAdd(b_.CreateAdd(start, j), b_.CreateMul(v, kb_.constant(stride_ * lanes_)));
          LValue* positions = b_.CreateAdd(b_.CreateVectorSplat(lanes_, first), laneSteps);
          LValue* value;
          if (!checked) {
            if (stride_ == 1 && inputNcw_)
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
              if (stride_ == 1 && inputNcw_)
                value = b_.CreateMaskedLoad(vectorType_, b_.CreateGEP(kb_.f32, source, first),
                                            llvm::Align(4), inRange, zeros());
              else
                value = b_.CreateMaskedGather(vectorType_,
                                              b_.CreateGEP(kb_.f32, source, elements(positions)),
                                              llvm::Align(4), inRange, zeros());
            } else {
              // One reflection or wrap covers the positions the outputs need; lanes past
              // them (whose results are never stored) are clamped into the row.
              LValue* last = b_.CreateVectorSplat(lanes_, b_.CreateSub(inWidth, kb_.constant(1)));
              LValue* low = b_.CreateVectorSplat(lanes_, kb_.constant(0));
              index = b_.CreateSelect(b_.CreateICmpSLT(index, low), low, index);
              index = b_.CreateSelect(b_.CreateICmpSGT(index, last), last, index);
              value = b_.CreateMaskedGather(
                  vectorType_, b_.CreateGEP(kb_.f32, source, elements(index)), llvm::Align(4));
            }
          }
          b_.CreateAlignedStore(
              value, b_.CreateInBoundsGEP(kb_.f32, target, b_.CreateMul(v, kb_.constant(lanes_))),
              llvm::Align(4));
        });
      });
    });
  };
  llvm::BasicBlock* checkedBlock =
      llvm::BasicBlock::Create(b_.getContext(), "pack.checked", b_.GetInsertBlock()->getParent());
  llvm::BasicBlock* fastBlock =
      llvm::BasicBlock::Create(b_.getContext(), "pack.inside", b_.GetInsertBlock()->getParent());
  llvm::BasicBlock* join =
      llvm::BasicBlock::Create(b_.getContext(), "pack.done", b_.GetInsertBlock()->getParent());
  b_.CreateCondBr(inside, fastBlock, checkedBlock);
  b_.SetInsertPoint(fastBlock);
  copyRows(false);
  b_.CreateBr(join);
  b_.SetInsertPoint(checkedBlock);
  copyRows(true);
  b_.CreateBr(join);
  b_.SetInsertPoint(join);
}

void WidthVectorEmitter::prefetchNextPanel(LValue* channel, LValue* k) {
  // The next panel reads tileWidth positions further on. NCW rows lie far apart, more
  // streams than the hardware prefetcher follows, so each (tap, channel) step of this
  // panel fetches a share of that channel's new lines; a burst of them at pack time
  // would overrun the miss buffers.
  // Tail panels are few and short; an NWC input is one stream the hardware follows.
  if (inTail_ || !inputNcw_) return;
  // With stride s the next panel starts s·panelWidth input positions further on.
  const int64_t newLines = (stride_ * panelWidth() + 15) / 16;
  const int64_t perTap = (newLines + K_ - 1) / K_;
  LValue* inWidth = kb_.scalars[kInputWidth];
  LValue* loaded =
      b_.CreateAdd(b_.CreateSub(b_.CreateMul(p0_, kb_.constant(stride_)), kb_.scalars[kPadLeft]),
                   kb_.constant(stride_ * ((span() + lanes_ - 1) / lanes_ * lanes_)));
  LValue* row = b_.CreateAdd(b_.CreateMul(n_, b_.CreateMul(kb_.constant(x_.channels), inWidth)),
                             b_.CreateMul(channel, inWidth));
  for (int64_t t = 0; t < perTap; ++t) {
    LValue* column = b_.CreateAdd(
        loaded, b_.CreateMul(b_.CreateAdd(b_.CreateMul(k, kb_.constant(perTap)), kb_.constant(t)),
                             kb_.constant(16)));
    b_.CreateIntrinsic(llvm::Intrinsic::prefetch, {b_.getPtrTy()},
                       {b_.CreateGEP(kb_.f32, kb_.buffers[0], b_.CreateAdd(row, column)),
                        b_.getInt32(0), b_.getInt32(3), b_.getInt32(1)});
  }
}

// The next panel's output lines: claimed early, for the same reason the inputs are
// prefetched. Spread over the tile's (tap, channel) steps when there are enough of
// them, else issued together after the stores.
bool WidthVectorEmitter::spreadOutputPrefetch() const {
  return !depthwise_ && !inTail_ && outputNcw_ && K_ * I_ >= rows_ * outputLines();
}

int64_t WidthVectorEmitter::outputLines() const { return (panelWidth() + 15) / 16; }

void WidthVectorEmitter::prefetchOutput(LValue* channel, LValue* line) {
  const int64_t tileWidth = panelWidth();
  LValue* outWidth = kb_.scalars[kOutputWidth];
  LValue* position = b_.CreateAdd(
      p0_, b_.CreateAdd(kb_.constant(tileWidth), b_.CreateMul(line, kb_.constant(16))));
  LValue* address = b_.CreateGEP(kb_.f32, kb_.buffers.back(),
                                 kb_.offset(kb_.strides(y_, outWidth), n_, channel, position));
  b_.CreateIntrinsic(llvm::Intrinsic::prefetch, {b_.getPtrTy()},
                     {address, b_.getInt32(1), b_.getInt32(3), b_.getInt32(1)});
}

void WidthVectorEmitter::computeTile(LValue* /*p0*/) {
  for (int r = 0; r < rows_; ++r)
    for (int v = 0; v < panelVectors_; ++v) b_.CreateStore(zeros(), accumulator(r, v));
  kb_.loop(kb_.constant(0), kb_.constant(K_), "k", [&](LValue* k) {
    LValue* tapWeights =
        b_.CreateInBoundsGEP(kb_.f32, weights_, b_.CreateMul(k, kb_.constant(I_ * rows_)));
    LValue* tapOffset = b_.CreateMul(k, kb_.constant(op_.dilation));
    LValue* tapPhase = b_.CreateURem(tapOffset, kb_.constant(stride_));
    LValue* tapColumn = b_.CreateUDiv(tapOffset, kb_.constant(stride_));
    // The panel row of channel row `row` that tap k reads (see packPanel).
    auto inputs = [&](LValue* row) {
      LValue* phaseRow = b_.CreateAdd(b_.CreateMul(row, kb_.constant(stride_)), tapPhase);
      LValue* base = b_.CreateInBoundsGEP(
          kb_.f32, buffer_,
          b_.CreateAdd(b_.CreateMul(phaseRow, kb_.constant(rowStride_)), tapColumn));
      std::vector<LValue*> loaded;
      for (int v = 0; v < panelVectors_; ++v)
        loaded.push_back(b_.CreateAlignedLoad(
            vectorType_, b_.CreateConstInBoundsGEP1_64(kb_.f32, base, int64_t{v} * lanes_),
            llvm::Align(4)));
      return loaded;
    };
    auto weight = [&](LValue* ci, int r) {
      LValue* index = b_.CreateAdd(b_.CreateMul(ci, kb_.constant(rows_)), kb_.constant(r));
      return b_.CreateVectorSplat(
          lanes_, b_.CreateLoad(kb_.f32, b_.CreateInBoundsGEP(kb_.f32, tapWeights, index)));
    };
    auto accumulate = [&](int r, LValue* w, const std::vector<LValue*>& x) {
      for (int v = 0; v < panelVectors_; ++v)
        b_.CreateStore(fma(w, x[v], b_.CreateLoad(vectorType_, accumulator(r, v))),
                       accumulator(r, v));
    };
    if (depthwise_) {
      for (int r = 0; r < rows_; ++r)
        accumulate(r, weight(kb_.constant(0), r), inputs(kb_.constant(r)));
      return;
    }
    kb_.loop(kb_.constant(0), kb_.constant(I_), "ci", [&](LValue* ci) {
      prefetchNextPanel(ci, k);
      if (spreadOutputPrefetch()) {
        LValue* step = b_.CreateAdd(b_.CreateMul(k, kb_.constant(I_)), ci);
        LValue* row = b_.CreateURem(step, kb_.constant(rows_));
        LValue* line =
            b_.CreateURem(b_.CreateUDiv(step, kb_.constant(rows_)), kb_.constant(outputLines()));
        prefetchOutput(b_.CreateAdd(firstChannel_, row), line);
      }
      std::vector<LValue*> x = inputs(ci);
      for (int r = 0; r < rows_; ++r) accumulate(r, weight(ci, r), x);
    });
  });
}

LValue* WidthVectorEmitter::nwcPositionPointers(const ir::Value& v, LValue* base, LValue* width,
                                                LValue* c, LValue* w0) {
  Strides s = kb_.strides(v, width);
  LValue* offsets =
      b_.CreateAdd(b_.CreateVectorSplat(lanes_, b_.CreateAdd(b_.CreateMul(n_, s.batch), c)),
                   b_.CreateMul(lanePositions(w0), b_.CreateVectorSplat(lanes_, s.width)));
  return b_.CreateGEP(kb_.f32, base, offsets);
}

LValue* WidthVectorEmitter::loadPositions(const ir::Value& v, LValue* base, LValue* width,
                                          LValue* c, LValue* w0, LValue* mask) {
  if (v.layout == ir::Layout::NCW) {
    LValue* address = kb_.address(base, kb_.strides(v, width), n_, c, w0);
    if (!mask) return b_.CreateAlignedLoad(vectorType_, address, llvm::Align(4));
    return b_.CreateMaskedLoad(vectorType_, address, llvm::Align(4), mask, zeros());
  }
  return b_.CreateMaskedGather(vectorType_, nwcPositionPointers(v, base, width, c, w0),
                               llvm::Align(4), mask ? mask : allLanes(), zeros());
}

void WidthVectorEmitter::storePositions(LValue* value, const ir::Value& v, LValue* base,
                                        LValue* width, LValue* c, LValue* w0, LValue* mask) {
  if (v.layout == ir::Layout::NCW) {
    LValue* address = kb_.address(base, kb_.strides(v, width), n_, c, w0);
    if (mask)
      b_.CreateMaskedStore(value, address, llvm::Align(4), mask);
    else
      b_.CreateAlignedStore(value, address, llvm::Align(4));
    return;
  }
  // Positions are channels apart in NWC: a scatter, amortized over the tile's K·C FMAs
  // per element.
  b_.CreateMaskedScatter(value, nwcPositionPointers(v, base, width, c, w0), llvm::Align(4),
                         mask ? mask : allLanes());
}

void WidthVectorEmitter::storeTile(LValue* p0) {
  LValue* outWidth = kb_.scalars[kOutputWidth];
  // Whole panels fit the call's range by construction; only the one-vector tail
  // panels can run past its end, and they store under a mask.
  LValue* mask = nullptr;
  if (inTail_) {
    LValue* remaining = kb_.minimum(b_.CreateSub(kb_.scalars[kWidthEnd], p0), kb_.constant(lanes_));
    std::vector<llvm::Constant*> lanes;
    for (int i = 0; i < lanes_; ++i) lanes.push_back(b_.getInt32(i));
    mask =
        b_.CreateICmpSLT(llvm::ConstantVector::get(lanes),
                         b_.CreateVectorSplat(lanes_, b_.CreateTrunc(remaining, b_.getInt32Ty())));
  }
  for (int r = 0; r < rows_; ++r) {
    LValue* co = b_.CreateAdd(firstChannel_, kb_.constant(r));
    auto store = [&] {
      LValue* bias =
          op_.hasBias ? b_.CreateVectorSplat(
                            lanes_, b_.CreateLoad(
                                        kb_.f32, b_.CreateInBoundsGEP(kb_.f32, kb_.buffers[2], co)))
                      : nullptr;
      std::vector<LValue*> values;
      for (int v = 0; v < panelVectors_; ++v) {
        LValue* w0 = b_.CreateAdd(p0, kb_.constant(int64_t{v} * lanes_));
        LValue* value = b_.CreateLoad(vectorType_, accumulator(r, v));
        if (bias) value = b_.CreateFAdd(value, bias);
        value = kb_.epilogue(op_, value, [&](int i) {
          return loadPositions(*op_.operands[i], kb_.buffers[i], outWidth, co, w0, mask);
        });
        values.push_back(value);
      }
      for (int v = 0; v < panelVectors_; ++v)
        storePositions(values[v], y_, kb_.buffers.back(), outWidth, co,
                       b_.CreateAdd(p0, kb_.constant(int64_t{v} * lanes_)), mask);
      if (!spreadOutputPrefetch() && !inTail_ && outputNcw_)
        for (int64_t line = 0; line < outputLines(); ++line) prefetchOutput(co, line);
    };
    // The last block may hold fewer than rows_ channels.
    if (y_.channels % rows_ != 0)
      kb_.ifThen(b_.CreateICmpSLT(co, kb_.constant(y_.channels)), store);
    else
      store();
  }
}

}  // namespace

bool widthVectorBlocksOutside(const ir::Op& op) {
  // Panels inside blocks when a block's input is cheap to copy again (depthwise: its
  // own channels; few input channels): each block then writes only its own output
  // rows as it sweeps the width, streams the hardware prefetcher can follow. Else
  // blocks inside panels, so that one copy of the input serves every block.
  return op.groups > 1 || op.operands[1]->inChannelsPerGroup <= 4;
}

int64_t widthVectorPanelFloats(const Schedule& schedule, const ir::Op& op) {
  const int64_t rows = op.groups > 1 ? schedule.channelTile : op.operands[0]->channels;
  return rows * op.stride * widthVectorRowStride(schedule, op);
}

int64_t widthVectorRowStride(const Schedule& schedule, const ir::Op& op) {
  // A row holds one phase of the input: the panel's positions plus the halo's share.
  const int64_t span = int64_t{schedule.vectorsPerTile} * schedule.vectorWidth +
                       (op.operands[1]->kernelWidth - 1) * op.dilation / op.stride;
  // Whole vectors, and an odd number of 64-byte lines so rows spread over the cache sets.
  int64_t stride = (span + schedule.vectorWidth - 1) / schedule.vectorWidth * schedule.vectorWidth;
  stride = (stride + 15) / 16 * 16;
  if ((stride / 16) % 2 == 0) stride += 16;
  return stride;
}

void emitWidthVectorConv(KernelBuilder& kb, const ir::Op& op, const Schedule& schedule) {
  WidthVectorEmitter(kb, op, schedule).emit();
}

}  // namespace cnv::codegen
