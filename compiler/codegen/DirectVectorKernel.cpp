// The DirectVector and DepthwiseVector strategies: channels-innermost register tiles.
// widthTile output positions × vectorsPerTile vectors of output channels accumulate in
// registers; each tap broadcasts one input value against vectorsPerTile weight vectors
// (depthwise: each lane loads its own input channel). Weights are packed
// [O/B][K][I][B], B = vectorWidth × vectorsPerTile. Interior positions run unchecked,
// border positions one at a time with every tap mapped by the padding mode.
#include <llvm/IR/Intrinsics.h>

#include "compiler/codegen/KernelBuilder.h"

namespace cnv::codegen {
namespace {

class DirectVectorEmitter {
 public:
  DirectVectorEmitter(KernelBuilder& kb, const ir::Op& op, const Schedule& schedule)
      : kb_(kb), b_(kb.b), op_(op), schedule_(schedule) {}

  void emit();

 private:
  // Pointers to channels [c0, c0 + lanes) at (n, w) of an activation, for gathers and
  // scatters when channels are not innermost.
  LValue* channelPointers(LValue* base, const Strides& s, LValue* n, LValue* c0, LValue* w,
                          llvm::FixedVectorType* vectorType) {
    const unsigned lanes = vectorType->getNumElements();
    LValue* laneChannels = b_.CreateAdd(b_.CreateVectorSplat(lanes, c0), kb_.laneIndices(lanes));
    LValue* baseOffset = b_.CreateAdd(b_.CreateMul(n, s.batch), b_.CreateMul(w, s.width));
    LValue* offsets =
        b_.CreateAdd(b_.CreateVectorSplat(lanes, baseOffset),
                     b_.CreateMul(laneChannels, b_.CreateVectorSplat(lanes, s.channel)));
    return b_.CreateGEP(kb_.f32, base, offsets);
  }

  // Loads (or stores) the vector of channels [c0, c0 + lanes) at (n, w), masked to the
  // channels that exist: contiguous when channels are innermost, a gather (scatter)
  // otherwise.
  LValue* loadChannels(const ir::Value& v, LValue* base, LValue* width, LValue* n, LValue* c0,
                       LValue* w, LValue* mask, llvm::FixedVectorType* type) {
    Strides s = kb_.strides(v, width);
    if (v.layout == ir::Layout::NWC)
      return b_.CreateMaskedLoad(type, kb_.address(base, s, n, c0, w), llvm::Align(4), mask,
                                 llvm::ConstantFP::get(type, 0.0));
    return b_.CreateMaskedGather(type, channelPointers(base, s, n, c0, w, type), llvm::Align(4),
                                 mask, llvm::ConstantFP::get(type, 0.0));
  }

  void storeChannels(const ir::Value& v, LValue* value, LValue* base, LValue* width, LValue* n,
                     LValue* c0, LValue* w, LValue* mask, llvm::FixedVectorType* type) {
    Strides s = kb_.strides(v, width);
    if (v.layout == ir::Layout::NWC)
      b_.CreateMaskedStore(value, kb_.address(base, s, n, c0, w), llvm::Align(4), mask);
    else
      b_.CreateMaskedScatter(value, channelPointers(base, s, n, c0, w, type), llvm::Align(4), mask);
  }

  // Input values for output channels [c0, c0 + lanes) at input position `pos`: input
  // channel (c0 + lane) / multiplier. One contiguous load when that is c0 + lane in a
  // channels-innermost input, a gather otherwise.
  LValue* loadInputChannels(const ir::Value& x, LValue* base, LValue* width, LValue* n, LValue* c0,
                            LValue* pos, LValue* mask, llvm::FixedVectorType* type,
                            int64_t multiplier) {
    if (multiplier == 1) return loadChannels(x, base, width, n, c0, pos, mask, type);
    Strides s = kb_.strides(x, width);
    const unsigned lanes = type->getNumElements();
    LValue* channels =
        b_.CreateUDiv(b_.CreateAdd(b_.CreateVectorSplat(lanes, c0), kb_.laneIndices(lanes)),
                      b_.CreateVectorSplat(lanes, kb_.constant(multiplier)));
    LValue* baseOffset = b_.CreateAdd(b_.CreateMul(n, s.batch), b_.CreateMul(pos, s.width));
    LValue* offsets = b_.CreateAdd(b_.CreateVectorSplat(lanes, baseOffset),
                                   b_.CreateMul(channels, b_.CreateVectorSplat(lanes, s.channel)));
    return b_.CreateMaskedGather(type, b_.CreateGEP(kb_.f32, base, offsets), llvm::Align(4), mask,
                                 llvm::ConstantFP::get(type, 0.0));
  }

  KernelBuilder& kb_;
  llvm::IRBuilder<>& b_;
  const ir::Op& op_;
  const Schedule& schedule_;
};

void DirectVectorEmitter::emit() {
  const ir::Op& op = op_;
  const ir::Value& x = *op.operands[0];
  const ir::Value& weight = *op.operands[1];
  const ir::Value& y = *op.result;
  const int lanes = schedule_.vectorWidth;
  const int vectors = schedule_.vectorsPerTile;
  const int tile = schedule_.widthTile;
  const int64_t block = schedule_.channelBlock();
  const int64_t K = weight.kernelWidth, C = x.channels, I = weight.inChannelsPerGroup;
  const int64_t blocks = (y.channels + block - 1) / block;
  const bool depthwise = schedule_.strategy == Strategy::DepthwiseVector;
  const int64_t multiplier = y.channels / x.channels;  // depthwise: outputs per input channel
  auto* vectorType = llvm::FixedVectorType::get(kb_.f32, lanes);
  LValue* inWidth = kb_.scalars[kInputWidth];
  LValue* outWidth = kb_.scalars[kOutputWidth];
  LValue* padLeft = kb_.scalars[kPadLeft];
  Strides in = kb_.strides(x, inWidth);

  // Output positions whose every tap lies inside the input run in unchecked tiles;
  // elsewhere taps are checked one position at a time.
  auto [interiorBegin, interiorEnd] = kb_.interiorRange(op);
  LValue* tiles = b_.CreateSDiv(b_.CreateSub(interiorEnd, interiorBegin), kb_.constant(tile));
  LValue* tiledEnd = b_.CreateAdd(interiorBegin, b_.CreateMul(tiles, kb_.constant(tile)));

  std::vector<llvm::AllocaInst*> accumulators;
  for (int i = 0; i < tile * vectors; ++i)
    accumulators.push_back(kb_.entryAlloca(vectorType, "acc"));

  kb_.loop(kb_.scalars[kBatchBegin], kb_.scalars[kBatchEnd], "n", [&](LValue* n) {
    kb_.loop(kb_.constant(0), kb_.constant(blocks), "cb", [&](LValue* cb) {
      LValue* firstChannel = b_.CreateMul(cb, kb_.constant(block));
      LValue* weights = b_.CreateInBoundsGEP(kb_.f32, kb_.buffers[1],
                                             b_.CreateMul(cb, kb_.constant(K * I * block)));

      // One tile of `count` positions from `wo0`; `checked` maps every tap.
      auto emitTile = [&](LValue* wo0, int count, bool checked) {
        for (int i = 0; i < count * vectors; ++i)
          b_.CreateStore(llvm::ConstantFP::get(vectorType, 0.0), accumulators[i]);
        kb_.loop(kb_.constant(0), kb_.constant(K), "k", [&](LValue* k) {
          LValue* tapWeights =
              b_.CreateInBoundsGEP(kb_.f32, weights, b_.CreateMul(k, kb_.constant(I * block)));
          // Depthwise: output channel co reads input channel co / multiplier alone, so
          // each lane loads its own input value instead of sharing a broadcast.
          auto accumulateDepthwise = [&](const std::vector<LValue*>& positions) {
            for (int v = 0; v < vectors; ++v) {
              LValue* wv = b_.CreateAlignedLoad(
                  vectorType, b_.CreateConstInBoundsGEP1_64(kb_.f32, tapWeights, v * lanes),
                  llvm::Align(4));
              LValue* c0 = b_.CreateAdd(firstChannel, kb_.constant(v * lanes));
              LValue* mask = kb_.channelMask(c0, lanes, y.channels);
              for (int r = 0; r < count; ++r) {
                LValue* xv = loadInputChannels(x, kb_.buffers[0], inWidth, n, c0, positions[r],
                                               mask, vectorType, multiplier);
                llvm::AllocaInst* acc = accumulators[r * vectors + v];
                b_.CreateStore(b_.CreateIntrinsic(llvm::Intrinsic::fmuladd, {vectorType},
                                                  {xv, wv, b_.CreateLoad(vectorType, acc)}),
                               acc);
              }
            }
          };
          auto accumulate = [&](const std::vector<LValue*>& positions) {
            if (depthwise) {
              accumulateDepthwise(positions);
              return;
            }
            kb_.loop(kb_.constant(0), kb_.constant(C), "ci", [&](LValue* ci) {
              LValue* row =
                  b_.CreateInBoundsGEP(kb_.f32, tapWeights, b_.CreateMul(ci, kb_.constant(block)));
              std::vector<LValue*> w(vectors);
              for (int v = 0; v < vectors; ++v)
                w[v] = b_.CreateAlignedLoad(vectorType,
                                            b_.CreateConstInBoundsGEP1_64(kb_.f32, row, v * lanes),
                                            llvm::Align(4));
              for (int r = 0; r < count; ++r) {
                LValue* xv =
                    b_.CreateLoad(kb_.f32, kb_.address(kb_.buffers[0], in, n, ci, positions[r]));
                LValue* splat = b_.CreateVectorSplat(lanes, xv);
                for (int v = 0; v < vectors; ++v) {
                  llvm::AllocaInst* acc = accumulators[r * vectors + v];
                  LValue* sum = b_.CreateIntrinsic(llvm::Intrinsic::fmuladd, {vectorType},
                                                   {splat, w[v], b_.CreateLoad(vectorType, acc)});
                  b_.CreateStore(sum, acc);
                }
              }
            });
          };
          if (checked) {
            kb_.forTap(op, wo0, k, inWidth, [&](LValue* index) { accumulate({index}); });
          } else {
            std::vector<LValue*> positions;
            for (int r = 0; r < count; ++r) {
              LValue* wo = b_.CreateAdd(wo0, kb_.constant(r));
              positions.push_back(
                  b_.CreateSub(b_.CreateAdd(b_.CreateMul(wo, kb_.constant(op.stride)),
                                            b_.CreateMul(k, kb_.constant(op.dilation))),
                               padLeft));
            }
            accumulate(positions);
          }
        });
        for (int r = 0; r < count; ++r) {
          LValue* wo = b_.CreateAdd(wo0, kb_.constant(r));
          for (int v = 0; v < vectors; ++v) {
            LValue* c0 = b_.CreateAdd(firstChannel, kb_.constant(v * lanes));
            LValue* mask = kb_.channelMask(c0, lanes, y.channels);
            LValue* value = b_.CreateLoad(vectorType, accumulators[r * vectors + v]);
            if (op.hasBias)
              value = b_.CreateFAdd(
                  value, b_.CreateAlignedLoad(vectorType,
                                              b_.CreateInBoundsGEP(kb_.f32, kb_.buffers[2], c0),
                                              llvm::Align(4)));
            value = kb_.epilogue(op, value, [&](int i) {
              return loadChannels(*op.operands[i], kb_.buffers[i], outWidth, n, c0, wo, mask,
                                  vectorType);
            });
            storeChannels(y, value, kb_.buffers.back(), outWidth, n, c0, wo, mask, vectorType);
          }
        }
      };

      kb_.loop(kb_.scalars[kWidthBegin], interiorBegin, "left",
               [&](LValue* wo) { emitTile(wo, 1, true); });
      kb_.loop(kb_.constant(0), tiles, "tile", [&](LValue* t) {
        emitTile(b_.CreateAdd(interiorBegin, b_.CreateMul(t, kb_.constant(tile))), tile, false);
      });
      kb_.loop(tiledEnd, kb_.scalars[kWidthEnd], "right",
               [&](LValue* wo) { emitTile(wo, 1, true); });
    });
  });
}

}  // namespace

void emitDirectVectorConv(KernelBuilder& kb, const ir::Op& op, const Schedule& schedule) {
  DirectVectorEmitter(kb, op, schedule).emit();
}

}  // namespace cnv::codegen
