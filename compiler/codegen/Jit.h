// The JIT: compiles an LLVM module for the host CPU with ORC's LLJIT and hands out the
// addresses of its functions. One Jit owns the code of one compiled model.
#pragma once

#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/Target/TargetMachine.h>

#include <memory>
#include <string>

#include "compiler/codegen/Kernels.h"

namespace llvm::orc {
class LLJIT;
}

namespace cnv::codegen {

// A TargetMachine for the host CPU and all its features (AVX-512 where present).
std::unique_ptr<llvm::TargetMachine> createHostTargetMachine();

// The vector width and register count the kernels should plan for on `machine`.
TargetInfo targetInfo(const llvm::TargetMachine& machine);

// Runs LLVM's O3 pipeline for `machine` on `module` (setting its data layout and triple).
void optimizeModule(llvm::Module& module, llvm::TargetMachine& machine);

// Prints `module` as assembly or writes it as an object file for `machine`.
std::string emitMachineCode(llvm::Module& module, llvm::TargetMachine& machine, bool object);

class Jit {
 public:
  static std::unique_ptr<Jit> create();
  ~Jit();

  // Optimizes and compiles `module`; its functions become available to lookup().
  void addModule(std::unique_ptr<llvm::Module> module, std::unique_ptr<llvm::LLVMContext> context);
  void* lookup(const std::string& symbol);
  const TargetInfo& target() const { return target_; }

 private:
  Jit() = default;
  std::unique_ptr<llvm::orc::LLJIT> jit_;
  std::unique_ptr<llvm::TargetMachine> machine_;
  TargetInfo target_;
};

}  // namespace cnv::codegen
