// Runs a Program: binds and packs its params, checks inputs and run-time conditions,
// and calls its kernels over the shared thread pool. The one run loop behind the JIT's
// cnv::Model, the C API and ahead-of-time objects, so all three compute bit for bit
// the same.
//
// Threads: any number of threads may run one Runner at once; each run takes a context
// (scratch buffers, the plan of its last size) of its own from a free list. Binding a
// param never waits for runs: the packed params are an immutable snapshot that each
// run takes when it starts, and setParam publishes a new one.
#pragma once

#include <array>
#include <memory>
#include <mutex>
#include <vector>

#include "Program.h"
#include "cnv/AlignedVector.h"

namespace cnv::rt {

// Every kernel's signature (see compiler/backend/Kernel.h).
using KernelFunction = void (*)(float* const* buffers, const int64_t* scalars);

// The scalar slots a kernel reads (compiler/backend/Kernel.h's ScalarSlot).
enum ScalarSlot : int {
  kBatchBegin = 0,
  kBatchEnd,
  kInputWidth,
  kOutputWidth,
  kPadLeft,
  kWidthBegin,
  kWidthEnd,
  kScalarCount
};

class Runner {
 public:
  // `functions`: program.functionCount addresses.
  Runner(Program program, std::vector<KernelFunction> functions);
  ~Runner();

  const Program& program() const { return program_; }

  // Index of the input, param or output `name`; a usage error naming the model if none.
  size_t inputIndex(const std::string& name) const;
  size_t paramIndex(const std::string& name) const;
  size_t outputIndex(const std::string& name) const;

  // `value` in the param's declared layout and shape; copied and packed.
  void setParam(size_t param, const TensorView& value);
  std::vector<std::string> unboundParams() const;
  // A usage error naming the unbound params, if any; allocates nothing when all are
  // bound (it sits on every run's path).
  void requireParamsBound() const;

  // inputs[i] for input i, in its declared layout. Output shapes in their declared
  // layouts, parallel to the outputs.
  std::vector<std::vector<int64_t>> outputShapes(const TensorView* inputs) const;
  // outputs[o] for output o, each of exactly its shape, overlapping no input or other
  // output. threads ≤ 0: every available thread. With `kernelSeconds`
  // (program().kernels.size() entries), each kernel's wall time goes there.
  void run(const TensorView* inputs, const MutableTensorView* outputs, int threads,
           double* kernelSeconds = nullptr) const;

 private:
  struct Context;
  struct SizedPlan;
  std::vector<int64_t> bindSymbols(const TensorView* inputs) const;
  void checkRuntimeConditions(const std::vector<int64_t>& symbols) const;
  const SizedPlan& planFor(Context& context, const std::vector<int64_t>& symbols) const;
  std::vector<int64_t> valueShape(const Program::Value& value,
                                  const std::vector<int64_t>& symbols) const;
  std::string memoryWhat() const;
  std::unique_ptr<Context> acquireContext() const;
  void releaseContext(std::unique_ptr<Context> context) const;

  Program program_;
  std::vector<KernelFunction> functions_;
  std::vector<int32_t> outputOf_;  // per value: the output it is, or -1
  struct Bindings {
    // packed[kernel][buffer]: the param as that kernel wants it; null if not a param.
    std::vector<std::vector<std::shared_ptr<const AlignedFloats>>> packed;
    std::vector<bool> bound;
  };
  std::shared_ptr<const Bindings> bindings() const;
  void requireBound(const Bindings& bindings) const;
  std::shared_ptr<const Bindings> bindings_;
  mutable std::mutex bindingsMutex_;  // guards the pointer, not what it points to
  mutable std::mutex contextsMutex_;
  mutable std::vector<std::unique_ptr<Context>> freeContexts_;
};

// Packs `user` (param `param` in its declared layout) as `packing` says.
AlignedFloats packParam(const Program::Param& param, const Program::Packing& packing,
                             const float* user);

}  // namespace cnv::rt
