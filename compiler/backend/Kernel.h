// A kernel: the one compiled function that computes one op of the fused IR, and the
// calling convention every kernel shares.
//
// Every kernel has the signature
//   void kernel(float* const* buffers, const int64_t* scalars)
// buffers: the op's operands in order (weights and biases packed for the kernel's
// schedule, once, at bind time), then its result, then, when the schedule asks for
// scratch, a 64-byte aligned buffer of scratchFloats() floats that no other thread uses
// during the call. scalars: see ScalarSlot. Shapes that are symbolic in the model
// arrive as scalars, so one compiled kernel serves every batch and width; the batch and
// width ranges let the runtime split a kernel's work into calls on several threads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "compiler/backend/Schedule.h"
#include "compiler/ir/Ir.h"

namespace cnv::backend {

enum ScalarSlot : int {
  kBatchBegin = 0,  // the call computes samples [kBatchBegin, kBatchEnd)
  kBatchEnd,
  kInputWidth,
  kOutputWidth,
  kPadLeft,
  kWidthBegin,  // ... and output positions [kWidthBegin, kWidthEnd)
  kWidthEnd,
  kScalarCount
};

using KernelFunction = void (*)(float* const* buffers, const int64_t* scalars);

struct Kernel {
  std::string symbol;
  const ir::Op* op = nullptr;
  const Strategy* strategy = nullptr;  // the one chosen for op
  std::unique_ptr<const Schedule> schedule;
  // What chose the schedule: the strategy list, or something that named it.
  enum class ChosenBy { List, Named, Strategy, TuningCache };
  ChosenBy chosenBy = ChosenBy::List;
  std::vector<const ir::Value*> buffers;  // the op's operands, then its result
  ir::SymExpr batch, inputWidth, outputWidth, padLeft;
  // Multiply-adds per output position of one sample: what the runtime weighs before
  // splitting a call across threads.
  double macsPerPosition = 1;

  // Whether buffer `index` is a param the schedule wants repacked (weightPacking()).
  bool packs(size_t index) const {
    return op->kind == ir::OpKind::Conv1d && (index == 1 || (index == 2 && op->hasBias));
  }
};

}  // namespace cnv::backend
