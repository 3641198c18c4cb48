// The JIT, small and owned by one class as LLVM's KaleidoscopeJIT is: ORC's LLJIT
// compiling kernel modules for one target CPU and handing out their addresses. One Jit
// owns the code of one compiled model. Each kernel comes in a module of its own; the
// modules are optimized and compiled on a pool of threads (one per core) as they are
// added; with an ObjectCache, each compiled module's object is handed to it, and
// objects loaded from it are added as they are. Only Backend uses it.
#pragma once

#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>

#include <memory>
#include <string>
#include <vector>

namespace llvm::orc {
class LLJIT;
}

#include <llvm/Support/MemoryBuffer.h>

namespace cnv::backend {

class ObjectCache;

class Jit {
 public:
  // `cpu` as for targetMachineBuilder (LlvmTarget.h); `compileThreads`: 0 for one per core.
  static std::unique_ptr<Jit> create(const std::string& cpu, unsigned compileThreads = 0,
                                     std::shared_ptr<ObjectCache> cache = nullptr);
  ~Jit();

  // Hands over `module` (with its own context) and starts optimizing and compiling it
  // on the JIT's threads.
  void addModule(std::unique_ptr<llvm::Module> module, std::unique_ptr<llvm::LLVMContext> context);
  // An object compiled before (from the cache).
  void addObject(std::unique_ptr<llvm::MemoryBuffer> object);
  // The addresses of `symbols`, compiling the modules that define them concurrently.
  // Once only: the compile threads stop when it returns.
  std::vector<void*> lookup(const std::vector<std::string>& symbols);

 private:
  Jit() = default;
  std::shared_ptr<ObjectCache> cache_;  // outlives jit_, whose compiler points to it
  std::unique_ptr<llvm::orc::LLJIT> jit_;
};

}  // namespace cnv::backend
