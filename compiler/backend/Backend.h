// The back end: from a graph that went through the whole pass pipeline to kernels,
// for one target CPU. The runtime, cnvc and the benchmarks all come through here, and
// it is the only user of LLVM's code generator and of the JIT.
//
//   plan            one kernel per op, with the schedule of the strategy chosen for it
//   describeLoops   the kernels' loop nests                 (cnvc compile --emit=loops)
//   emitLlvmIr      their LLVM IR, optimized                (--emit=llvm)
//   emitMachineCode their assembly or an object file        (--emit=asm, --emit=obj)
//   compile         their machine code, JIT-compiled into this process
//
// No LLVM type appears here, so that the runtime's sources need no LLVM header.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "compiler/backend/Kernel.h"
#include "compiler/backend/Target.h"

namespace llvm {
class TargetMachine;
}

namespace cnv::backend {

class Jit;
class ObjectCache;
class TuningCache;

struct BackendOptions {
  // The CPU to generate code for: empty (or "host") for this machine with all its
  // features, or an x86 level it can run (see CompileOptions::cpu in cnv/cnv.h).
  std::string cpu;
  // A strategy (Strategies.def) to use wherever it can compute an op, before the
  // list's own choice: for tests and experiments. Empty: the list decides.
  std::string strategy;
  // Schedules by op index ("Strategy:label"), ahead of everything else: what the tuner
  // times. One the strategies do not offer for the op is passed over.
  std::map<size_t, std::string> schedules = {};
  // Whether the tuning cache (TuningCache::defaultPath) is read.
  bool useTuningCache = true;
  // Whether compiled kernels are looked up in and stored to the compile cache
  // (ObjectCache::defaultDirectory) when compile is given the text they came from.
  bool useCompileCache = true;
};

// Kernels compiled into this process; the code lives as long as this object.
class CompiledKernels {
 public:
  CompiledKernels();  // none
  CompiledKernels(CompiledKernels&&) noexcept;
  CompiledKernels& operator=(CompiledKernels&&) noexcept;
  ~CompiledKernels();

  const std::vector<Kernel>& kernels() const { return kernels_; }
  KernelFunction function(size_t kernel) const { return functions_[kernel]; }
  // How many distinct kernels were compiled, and how many of them the compile cache
  // held.
  size_t distinctKernels() const { return distinct_; }
  size_t cachedKernels() const { return cached_; }

 private:
  friend class Backend;
  std::vector<Kernel> kernels_;
  std::vector<KernelFunction> functions_;
  size_t distinct_ = 0, cached_ = 0;
  std::unique_ptr<Jit> jit_;
};

class Backend {
 public:
  // Throws a usage error for an unknown CPU or strategy, or a CPU the host cannot run.
  explicit Backend(const BackendOptions& options = {});
  ~Backend();

  const Target& target() const { return target_; }

  std::vector<Kernel> plan(const ir::Graph& graph) const;
  std::string describeLoops(const std::vector<Kernel>& kernels) const;
  std::string emitLlvmIr(const ir::Graph& graph, const std::vector<Kernel>& kernels) const;
  std::string emitMachineCode(const ir::Graph& graph, const std::vector<Kernel>& kernels,
                              bool object) const;
  // An object file for programs that link the runtime library and not LLVM: the
  // kernels (internal), the serialized program (runtime/src/Program.h) and
  //   cnv_status <createFunction>(cnv_model** model)
  // which hands both to cnv_aot_model_create (cnv/cnv_runtime.h). Kernel k of the
  // program calls kernel k of `kernels`.
  std::string emitAotObject(const ir::Graph& graph, const std::vector<Kernel>& kernels,
                            const std::string& createFunction, const std::string& program) const;
  // The CPU name and the features code is generated for, as LLVM names them.
  const std::string& codeTarget() const { return codeTarget_; }
  std::vector<std::string> enabledCpuFeatures() const;

  // One module per kernel, optimized and compiled concurrently (one thread per core).
  // With `cacheText` (the source and the IR the kernels came from) the compile cache is
  // used: its entry loaded when one holds these kernels, else written.
  CompiledKernels compile(std::vector<Kernel> kernels, const std::string& cacheText = "") const;

 private:
  BackendOptions options_;
  Target target_;
  const Strategy* preferred_ = nullptr;
  std::unique_ptr<TuningCache> tuning_;
  std::shared_ptr<ObjectCache> objects_;
  std::string codeTarget_;  // the CPU and features code is generated for
  std::unique_ptr<llvm::TargetMachine> machine_;
};

}  // namespace cnv::backend
