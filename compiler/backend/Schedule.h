// Strategies and schedules: how the back end chooses a kernel's loops.
//
// A Strategy is a family of loop nests (one file each, listed in Strategies.def). For
// an op it offers Schedules: its decisions for that op (register tile, blocks, loop
// order) together with everything that follows from them: the scratch and thread
// granule the runtime provides, the packed weight layout, the loop nest that
// `cnvc compile --emit=loops` prints and the LLVM IR of the kernel. The description
// and the emitter read the same fields of one object, so they cannot drift apart.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "compiler/backend/Target.h"
#include "compiler/backend/WeightPacking.h"
#include "compiler/ir/Ir.h"

namespace cnv::backend {

class KernelBuilder;

class Schedule {
 public:
  virtual ~Schedule() = default;

  // Floats of per-thread scratch each call of the kernel gets (see Kernel.h).
  int64_t scratchFloats() const { return properties_.scratchFloats; }
  // Width chunks given to threads start at multiples of this (a whole register tile),
  // so that no chunk ends in a partial tile it could have avoided.
  int64_t widthGranule() const { return properties_.widthGranule; }
  const WeightPacking& weightPacking() const { return properties_.weightPacking; }
  // What tells this schedule apart from the strategy's others for the same op, as in
  // "4x6" (its tile): the tuning cache records a schedule as "Strategy:label".
  virtual std::string label() const { return "default"; }
  // The loop nest inside `for n in [batch_begin, batch_end)`, one line per level,
  // indented by two spaces per level starting at four.
  virtual std::string describeLoops() const = 0;
  // Loops outside the samples', if any, one line per level, indented by two spaces per
  // level starting at two; the sample loop and describeLoops() go inside them.
  virtual std::string describeOuterLoops() const { return ""; }
  // The kernel's body, into the function `kb` has begun.
  virtual void emit(KernelBuilder& kb) const = 0;

  const ir::Op& op() const { return op_; }

 protected:
  // What the runtime needs to know of a schedule, fixed when it is made.
  struct Properties {
    WeightPacking weightPacking = WeightPacking::pytorchOrder();
    int64_t widthGranule = 1;
    int64_t scratchFloats = 0;
  };
  Schedule(const ir::Op& op, const Properties& properties) : op_(op), properties_(properties) {}

  const ir::Op& op_;

 private:
  Properties properties_;
};

class Strategy {
 public:
  virtual ~Strategy() = default;
  virtual std::string_view name() const = 0;
  // The schedules these loops offer for `op` on `target`, the one the strategy prefers
  // first; none when they cannot compute it, or should not (WidthVector: when its
  // preferred tile's panel would outgrow L2).
  virtual std::vector<std::unique_ptr<Schedule>> schedules(const ir::Op& op,
                                                           const Target& target) const = 0;
  // Whether the planner should pick this strategy for `op` on `target` when it can,
  // rather than leave the op to the strategies after it in the list.
  virtual bool suits(const ir::Op& /*op*/, const Target& /*target*/) const { return true; }
  // Whether `cnvc tune` should time its schedules: not for a fallback that is never
  // the fastest (the scalar loops) and can take minutes on a large conv.
  virtual bool tunable() const { return true; }
};

// A strategy without parameters: one schedule of type S for every op of one kind.
template <typename S>
class SingleScheduleStrategy final : public Strategy {
 public:
  SingleScheduleStrategy(std::string_view name, ir::OpKind kind) : name_(name), kind_(kind) {}
  std::string_view name() const override { return name_; }
  // One schedule per op kind: the scalar fallback, or the only way to compute the op.
  bool tunable() const override { return false; }
  std::vector<std::unique_ptr<Schedule>> schedules(const ir::Op& op, const Target&) const override {
    std::vector<std::unique_ptr<Schedule>> result;
    if (op.kind == kind_) result.push_back(std::make_unique<S>(op));
    return result;
  }

 private:
  std::string_view name_;
  ir::OpKind kind_;
};

// Defines the `const Strategy& NAMEStrategy()` that Strategies.def lists: the one
// instance of the strategy class NAME.
#define CNV_DEFINE_STRATEGY(NAME)    \
  const Strategy& NAME##Strategy() { \
    static const NAME strategy;      \
    return strategy;                 \
  }

// Defines the `const Strategy& NAMEStrategy()` that Strategies.def lists, for a
// SingleScheduleStrategy whose schedule class is NAMESchedule.
#define CNV_SINGLE_SCHEDULE_STRATEGY(NAME, KIND)                               \
  const Strategy& NAME##Strategy() {                                           \
    static const SingleScheduleStrategy<NAME##Schedule> strategy(#NAME, KIND); \
    return strategy;                                                           \
  }

}  // namespace cnv::backend
