// The JIT, small and owned by one class as LLVM's KaleidoscopeJIT is: ORC's LLJIT
// compiling kernel modules for one target CPU and handing out their addresses. One Jit
// owns the code of one compiled model. Each kernel comes in a module of its own; the
// modules are optimized and compiled on a pool of threads (one per core) when first
// looked up. Only Backend uses it.
#pragma once

#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>

#include <memory>
#include <string>
#include <vector>

namespace llvm::orc {
class LLJIT;
}

namespace cnv::backend {

class Jit {
 public:
  // `cpu` as for targetMachineBuilder (LlvmTarget.h); `compileThreads`: 0 for one per core.
  static std::unique_ptr<Jit> create(const std::string& cpu, unsigned compileThreads = 0);
  ~Jit();

  // Hands over `module` (with its own context); it is optimized and compiled at lookup.
  void addModule(std::unique_ptr<llvm::Module> module, std::unique_ptr<llvm::LLVMContext> context);
  // The addresses of `symbols`, compiling the modules that define them concurrently.
  std::vector<void*> lookup(const std::vector<std::string>& symbols);

 private:
  Jit() = default;
  std::unique_ptr<llvm::orc::LLJIT> jit_;
};

}  // namespace cnv::backend
