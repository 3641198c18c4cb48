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
  explicit Schedule(const ir::Op& op) : op_(op) {}
  virtual ~Schedule() = default;

  // The strategy's name, as in Strategies.def.
  virtual std::string_view strategy() const = 0;
  // Floats of per-thread scratch each call of the kernel gets (see Kernel.h).
  virtual int64_t scratchFloats() const { return 0; }
  // Width chunks given to threads start at multiples of this (a whole register tile),
  // so that no chunk ends in a partial tile it could have avoided.
  virtual int64_t widthGranule() const { return 1; }
  virtual WeightPacking weightPacking() const { return WeightPacking::pytorchOrder(); }
  // The loop nest inside `for n in [batch_begin, batch_end)`, one line per level,
  // indented by two spaces per level starting at four.
  virtual std::string describeLoops() const = 0;
  // The kernel's body, into the function `kb` has begun.
  virtual void emit(KernelBuilder& kb) const = 0;

  const ir::Op& op() const { return op_; }

 protected:
  const ir::Op& op_;
};

class Strategy {
 public:
  virtual ~Strategy() = default;
  virtual std::string_view name() const = 0;
  // Every schedule these loops can compute `op` with on `target`, the one the strategy
  // prefers first; none when they cannot compute it at all.
  virtual std::vector<std::unique_ptr<Schedule>> schedules(const ir::Op& op,
                                                           const Target& target) const = 0;
  // Whether the planner should pick this strategy for `op` when it can, rather than
  // leave the op to the strategies after it in the list.
  virtual bool suits(const ir::Op& /*op*/) const { return true; }
};

// The strategies in the order the planner tries them (Strategies.def).
const std::vector<const Strategy*>& strategyList();
// The strategy named `name`, or null.
const Strategy* findStrategy(std::string_view name);

}  // namespace cnv::backend
