// The JIT: compiles LLVM modules for the host CPU (or a narrower x86 level) with ORC's LLJIT and
// hands out the addresses of their functions. One Jit owns the code of one compiled model. Each
// kernel comes in a module of its own, and the modules are optimized and compiled on
// a pool of threads (one per core, up to the module count) when first looked up.
#pragma once

#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/Target/TargetMachine.h>

#include <memory>
#include <string>
#include <vector>

#include "compiler/codegen/Kernels.h"

namespace llvm::orc {
class LLJIT;
}

namespace cnv::codegen {

// A TargetMachine for `cpu`: empty or "host" for the host CPU and all its features
// (AVX-512 where present), else one of a few x86 levels the host can run, so that
// narrower vector code can be compiled and tested on a wider machine ("x86-64" for
// SSE2, "x86-64-v3" or "haswell" for AVX2, "x86-64-v4" for AVX-512). Throws a usage
// error for any other name or a level the host cannot run.
std::unique_ptr<llvm::TargetMachine> createTargetMachine(const std::string& cpu = "");

// The vector width and register count the kernels should plan for on `machine`.
TargetInfo targetInfo(const llvm::TargetMachine& machine);

// Runs LLVM's optimization pipeline for `machine` on `module` (setting its data layout
// and triple). O2: O3's extra passes buy the kernels nothing and cost compile time.
void optimizeModule(llvm::Module& module, llvm::TargetMachine& machine);

// Prints `module` as assembly or writes it as an object file for `machine`.
std::string emitMachineCode(llvm::Module& module, llvm::TargetMachine& machine, bool object);

class Jit {
 public:
  // `cpu` as for createTargetMachine; `compileThreads`: 0 for one per core.
  static std::unique_ptr<Jit> create(const std::string& cpu = "", unsigned compileThreads = 0);
  ~Jit();

  // Hands over `module` (with its own context); it is optimized and compiled at lookup.
  void addModule(std::unique_ptr<llvm::Module> module, std::unique_ptr<llvm::LLVMContext> context);
  // The addresses of `symbols`, compiling the modules that define them concurrently.
  std::vector<void*> lookup(const std::vector<std::string>& symbols);
  const TargetInfo& target() const { return target_; }

 private:
  Jit() = default;
  std::unique_ptr<llvm::orc::LLJIT> jit_;
  std::unique_ptr<llvm::TargetMachine> machine_;
  TargetInfo target_;
};

}  // namespace cnv::codegen
