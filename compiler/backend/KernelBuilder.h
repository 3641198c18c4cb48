// The shared toolkit of every schedule's emitter: the IRBuilder positioned in one
// kernel, its buffers and scalars, structured loops, layout addressing (scalar
// elements and vectors of lanes along channels or positions, contiguous where the
// layout allows and gathered or scattered where it does not), tap positions, padding
// maps and the fused epilogue. A strategy's emitter only arranges these.
#pragma once

#include <llvm/IR/IRBuilder.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "compiler/backend/Kernel.h"

namespace cnv::backend {

// Element strides of an activation stored in some layout with a run-time width.
struct Strides {
  llvm::Value* batch;
  llvm::Value* channel;
  llvm::Value* width;
};

// The axis the lanes of a vector run along.
enum class LaneAxis { Channels, Positions };

// Whether one channel's positions lie next to each other in memory: in NCW, and in
// an NWC tensor of one channel, whose memory is that of its NCW twin.
inline bool positionsContiguous(const ir::Value& v) {
  return v.layout == ir::Layout::NCW || v.channels == 1;
}

class KernelBuilder {
 public:
  KernelBuilder(llvm::LLVMContext& context, llvm::Module& module);

  // Starts the function of `kernel`: loads its buffer pointers and scalars.
  void begin(const Kernel& kernel);
  void finish();

  llvm::IRBuilder<> b;
  llvm::Type* i64;
  llvm::Type* f32;
  llvm::PointerType* ptr;
  std::vector<llvm::Value*> buffers;  // the kernel's operands, then its result
  llvm::Value* scratch = nullptr;     // the kernel's scratch buffer, if it has one
  std::vector<llvm::Value*> scalars;  // indexed by ScalarSlot

  llvm::Value* constant(int64_t v) { return b.getInt64(v); }
  llvm::AllocaInst* entryAlloca(llvm::Type* type, const char* name);
  llvm::FixedVectorType* vectorType(int lanes) { return llvm::FixedVectorType::get(f32, lanes); }

  Strides strides(const ir::Value& v, llvm::Value* width);
  // Element offset of (n, c, w); any of them may be a vector of i64 (the others are
  // splatted), giving a vector of offsets.
  llvm::Value* offset(const Strides& s, llvm::Value* n, llvm::Value* c, llvm::Value* w);
  llvm::Value* address(llvm::Value* base, const Strides& s, llvm::Value* n, llvm::Value* c,
                       llvm::Value* w);

  // `lanes` consecutive elements of activation `v` (stored at `base`, run-time width
  // `width`) from (n, c, w) along `axis`: one (masked) load where the axis is innermost
  // in v's layout, a gather otherwise. `mask` may be null (every lane).
  llvm::Value* loadLanes(const ir::Value& v, llvm::Value* base, llvm::Value* width, llvm::Value* n,
                         llvm::Value* c, llvm::Value* w, LaneAxis axis, int lanes,
                         llvm::Value* mask);
  void storeLanes(llvm::Value* value, const ir::Value& v, llvm::Value* base, llvm::Value* width,
                  llvm::Value* n, llvm::Value* c, llvm::Value* w, LaneAxis axis, llvm::Value* mask);
  // Stores one element (n, c, w) of the op's result: `sum`, plus `bias` (or null),
  // through the op's epilogue, residuals loaded at the same position.
  void storeElement(const ir::Op& op, llvm::Value* sum, llvm::Value* bias, llvm::Value* n,
                    llvm::Value* c, llvm::Value* w);

  // for (index = begin; index < end; ++index) body(index), marked for LLVM's unroller
  // to leave alone: the emitters size their loop bodies themselves.
  void loop(llvm::Value* begin, llvm::Value* end, const std::string& name,
            const std::function<void(llvm::Value*)>& body);
  void ifThen(llvm::Value* condition, const std::function<void()>& body);
  // if (condition) then() else otherwise(); `otherwise` may be empty.
  void ifThenElse(llvm::Value* condition, const std::function<void()>& then,
                  const std::function<void()>& otherwise);
  llvm::Value* minimum(llvm::Value* a, llvm::Value* b);
  llvm::Value* maximum(llvm::Value* a, llvm::Value* b);

  // <0, 1, ..., lanes-1> as i64.
  llvm::Value* laneIndices(int lanes);
  // <first, first + 1, ..., first + lanes-1> as i64.
  llvm::Value* lanesFrom(llvm::Value* first, int lanes);
  // Lanes l whose first + l is below `limit` (i1 per lane).
  llvm::Value* lanesBelow(llvm::Value* first, int lanes, llvm::Value* limit);
  llvm::Value* zeros(int lanes) { return llvm::ConstantFP::get(vectorType(lanes), 0.0); }
  // a·b + c on vectors of floats.
  llvm::Value* fma(llvm::Value* a, llvm::Value* b, llvm::Value* c);

  // The input position tap `k` of output `wo` reads, wo·stride + k·dilation − padLeft
  // (it may lie in the padding).
  llvm::Value* tapPosition(const ir::Op& op, llvm::Value* wo, llvm::Value* k);

  // Runs `body(firstChannel, weights)` for each block of `block` output channels of a
  // conv whose weights are packed in blocks (WeightPacking::outputChannelBlocks):
  // `weights` points at the block's packed weights.
  void forEachChannelBlock(const ir::Op& op, int64_t block,
                           const std::function<void(llvm::Value*, llvm::Value*)>& body);
  // Block `index` of those: its first output channel and its packed weights.
  std::pair<llvm::Value*, llvm::Value*> channelBlock(const ir::Op& op, int64_t block,
                                                     llvm::Value* index);
  // A hint that the line at `address` will soon be read (or written), kept in every
  // cache level.
  void prefetch(llvm::Value* address, bool forWrite);

  // What is stored for an output element or vector: `sum` plus the bias (null if the
  // op has none), then the op's epilogue steps; `residual(i)` loads operand i's
  // matching element(s).
  llvm::Value* finalValue(const ir::Op& op, llvm::Value* sum, llvm::Value* bias,
                          const std::function<llvm::Value*(int)>& residual);

  // Maps input position `pos` (a scalar or a vector; may lie in the padding) to an
  // index into the input, per the padding mode. Returns the index and, for zeros, the
  // condition that it is inside (null for the other modes, whose index always is).
  std::pair<llvm::Value*, llvm::Value*> mapPosition(ir::PaddingMode mode, llvm::Value* pos,
                                                    llvm::Value* width);

  // Calls body(index) for the input position of tap `k` at output `wo`, skipping taps
  // that fall in zero padding.
  void forTap(const ir::Op& op, llvm::Value* wo, llvm::Value* k, llvm::Value* inWidth,
              const std::function<void(llvm::Value*)>& body);

  // The output positions of a conv whose every tap lies inside the input, clamped to
  // the call's [widthBegin, widthEnd): [first, second).
  std::pair<llvm::Value*, llvm::Value*> interiorRange(const ir::Op& op);

 private:
  llvm::Value* callLibm(const char* name, llvm::Value* v);
  // A constant of `like`'s integer type (or of its element type, splatted).
  llvm::Value* integerLike(llvm::Value* like, int64_t v);
  // `v` as a vector of `lanes` if it is a scalar.
  llvm::Value* splatTo(int lanes, llvm::Value* v);
  // Where the lanes of loadLanes/storeLanes are: one address when the axis is
  // innermost in the layout (mask: as given), else a vector of pointers (mask: as
  // given, or every lane).
  struct LaneAccess {
    llvm::Value* address;
    llvm::Value* pointers;
    llvm::Value* mask;
  };
  LaneAccess laneAccess(const ir::Value& v, llvm::Value* base, llvm::Value* width, llvm::Value* n,
                        llvm::Value* c, llvm::Value* w, LaneAxis axis, int lanes,
                        llvm::Value* mask);
  // Pointers to the lanes of loadLanes/storeLanes.
  llvm::Value* lanePointers(llvm::Value* base, const Strides& s, llvm::Value* n, llvm::Value* c,
                            llvm::Value* w, LaneAxis axis, int lanes);

  llvm::LLVMContext& context_;
  llvm::Module& module_;
  llvm::Function* function_ = nullptr;
};

}  // namespace cnv::backend
