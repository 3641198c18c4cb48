#include "compiler/backend/Jit.h"

#include <llvm/ExecutionEngine/Orc/CompileUtils.h>
#include <llvm/ExecutionEngine/Orc/ExecutionUtils.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>

#include <set>
#include <thread>

#include "cnv/Error.h"
#include "compiler/backend/LlvmTarget.h"
#include "compiler/backend/ObjectCache.h"

namespace cnv::backend {

Jit::~Jit() = default;

std::unique_ptr<Jit> Jit::create(const std::string& cpu, unsigned compileThreads,
                                 std::shared_ptr<ObjectCache> cache) {
  std::unique_ptr<Jit> jit(new Jit());
  auto builder = targetMachineBuilder(cpu);
  if (compileThreads == 0) compileThreads = std::max(1u, std::thread::hardware_concurrency());
  llvm::orc::LLJITBuilder jitBuilder;
  jitBuilder.setJITTargetMachineBuilder(builder).setNumCompileThreads(compileThreads);
  if (cache)
    jitBuilder.setCompileFunctionCreator(
        [cache](llvm::orc::JITTargetMachineBuilder machineBuilder)
            -> llvm::Expected<std::unique_ptr<llvm::orc::IRCompileLayer::IRCompiler>> {
          return std::make_unique<llvm::orc::ConcurrentIRCompiler>(std::move(machineBuilder),
                                                                   cache.get());
        });
  jit->jit_ = unwrapOrThrow(jitBuilder.create(), "creating the JIT");
  jit->cache_ = std::move(cache);
  // Optimization runs as each module materializes, on the compile thread that takes
  // it, with a TargetMachine of its own (they are not shared across threads).
  jit->jit_->getIRTransformLayer().setTransform(
      [builder](llvm::orc::ThreadSafeModule module,
                const llvm::orc::MaterializationResponsibility&) mutable
      -> llvm::Expected<llvm::orc::ThreadSafeModule> {
        auto machine = builder.createTargetMachine();
        if (!machine) return machine.takeError();
        module.withModuleDo([&](llvm::Module& m) { optimizeModule(m, **machine); });
        return module;
      });
  // Kernels call expf and tanhf from the C library the host process already has.
  auto generator = unwrapOrThrow(llvm::orc::DynamicLibrarySearchGenerator::GetForCurrentProcess(
                                     jit->jit_->getDataLayout().getGlobalPrefix()),
                                 "opening the host process's symbols");
  jit->jit_->getMainJITDylib().addGenerator(std::move(generator));
  return jit;
}

void Jit::addModule(std::unique_ptr<llvm::Module> module,
                    std::unique_ptr<llvm::LLVMContext> context) {
  llvm::orc::ThreadSafeModule threadSafe(std::move(module), std::move(context));
  if (auto error = jit_->addIRModule(std::move(threadSafe)))
    throw internalError("internal error: adding a module to the JIT: " +
                        llvm::toString(std::move(error)));
}

void Jit::addObject(std::unique_ptr<llvm::MemoryBuffer> object) {
  if (auto error = jit_->addObjectFile(std::move(object)))
    throw internalError("internal error: adding a cached object to the JIT: " +
                        llvm::toString(std::move(error)));
}

std::vector<void*> Jit::lookup(const std::vector<std::string>& symbols) {
  llvm::orc::SymbolLookupSet names;
  std::vector<llvm::orc::SymbolStringPtr> interned;
  std::set<std::string> added;  // a symbol may be asked for more than once
  for (const std::string& symbol : symbols) {
    interned.push_back(jit_->mangleAndIntern(symbol));
    if (added.insert(symbol).second) names.add(interned.back());
  }
  // One lookup for every symbol lets the session materialize the modules in parallel.
  auto found =
      unwrapOrThrow(jit_->getExecutionSession().lookup(
                        llvm::orc::makeJITDylibSearchOrder(&jit_->getMainJITDylib()), names),
                    "compiling the kernels");
  std::vector<void*> addresses;
  for (const auto& name : interned) addresses.push_back(found.at(name).getAddress().toPtr<void*>());
  // The lookup returns once every symbol is ready, but a compile thread may still be
  // finishing its materialization; ending the session under it (as ~LLJIT does: it
  // closes the JITDylibs before it stops the threads, LLVM issue 174922) reports a
  // defunct resource tracker or touches freed memory, and a model destroyed right after
  // it was compiled crashed. Every kernel is compiled by now: the threads stop here,
  // their last tasks done.
  jit_->getExecutionSession().getExecutorProcessControl().getDispatcher().shutdown();
  return addresses;
}

}  // namespace cnv::backend
