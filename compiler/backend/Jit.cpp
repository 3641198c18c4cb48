#include "compiler/backend/Jit.h"

#include <llvm/ExecutionEngine/Orc/CompileUtils.h>
#include <llvm/ExecutionEngine/Orc/ExecutionUtils.h>
#include <llvm/ExecutionEngine/Orc/ExecutorProcessControl.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/ExecutionEngine/Orc/TaskDispatch.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <set>
#include <thread>

#include "cnv/Error.h"
#include "compiler/backend/LlvmTarget.h"
#include "compiler/backend/ObjectCache.h"

namespace cnv::backend {
namespace {

// ORC's tasks on threads the JIT owns and joins. LLVM 19's DynamicThreadPoolTaskDispatcher
// detaches a thread per task and counts the task done before the thread destroys it,
// so its shutdown() can return while a task's destructor still runs against the
// session the caller is about to end: a model destroyed right after its compile
// touched freed memory, and a test process ended in a corrupted heap. Here a task is
// destroyed on its thread before that thread takes the next or exits, and shutdown()
// joins every thread. Like ORC's dispatcher, at most `compileThreads` materializations
// run at once (the rest wait their turn) and every other task gets a thread at once, as
// a materialization may wait on one.
class JoiningTaskDispatcher final : public llvm::orc::TaskDispatcher {
 public:
  explicit JoiningTaskDispatcher(unsigned compileThreads) : compileThreads_(compileThreads) {}
  ~JoiningTaskDispatcher() override { shutdown(); }

  void dispatch(std::unique_ptr<llvm::orc::Task> task) override {
    std::unique_lock<std::mutex> lock(mutex_);
    if (stopping_) {  // the session ends after shutdown(): what it still asks runs here
      lock.unlock();
      task->run();
      return;
    }
    if (llvm::isa<llvm::orc::MaterializationTask>(*task)) {
      if (compiling_ == compileThreads_) {
        waitingCompiles_.push_back(std::move(task));
        return;
      }
      ++compiling_;
    }
    ready_.push_back(std::move(task));
    if (ready_.size() > idle_)
      threads_.emplace_back([this] { work(); });
    else
      wake_.notify_one();
  }

  void shutdown() override {
    std::vector<std::thread> threads;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
      threads.swap(threads_);
    }
    wake_.notify_all();
    for (std::thread& thread : threads) thread.join();
  }

 private:
  void work() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      ++idle_;
      wake_.wait(lock, [this] { return !ready_.empty() || stopping_; });
      --idle_;
      if (ready_.empty()) return;  // stopping, nothing left
      std::unique_ptr<llvm::orc::Task> task = std::move(ready_.front());
      ready_.pop_front();
      lock.unlock();
      task->run();
      const bool compile = llvm::isa<llvm::orc::MaterializationTask>(*task);
      task.reset();
      lock.lock();
      if (compile) {
        if (waitingCompiles_.empty()) {
          --compiling_;
        } else {
          ready_.push_back(std::move(waitingCompiles_.front()));
          waitingCompiles_.pop_front();
        }
      }
    }
  }

  const unsigned compileThreads_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::unique_ptr<llvm::orc::Task>> ready_, waitingCompiles_;
  std::vector<std::thread> threads_;
  size_t idle_ = 0;
  unsigned compiling_ = 0;
  bool stopping_ = false;
};

}  // namespace

Jit::~Jit() {
  // Modules start compiling as they are added (addModule), so a Jit given up before its
  // lookup (an error while emitting a later kernel) may still have compiles running;
  // they finish and their threads are joined before ~LLJIT ends the session under them.
  if (jit_) jit_->getExecutionSession().getExecutorProcessControl().getDispatcher().shutdown();
}

std::unique_ptr<Jit> Jit::create(const std::string& cpu, unsigned compileThreads,
                                 std::shared_ptr<ObjectCache> cache) {
  std::unique_ptr<Jit> jit(new Jit());
  auto builder = targetMachineBuilder(cpu);
  if (compileThreads == 0) compileThreads = std::max(1u, std::thread::hardware_concurrency());
  auto process =
      unwrapOrThrow(llvm::orc::SelfExecutorProcessControl::Create(
                        nullptr, std::make_unique<JoiningTaskDispatcher>(compileThreads)),
                    "creating the JIT's process control");
  llvm::orc::LLJITBuilder jitBuilder;
  jitBuilder.setJITTargetMachineBuilder(builder)
      .setExecutorProcessControl(std::move(process))
      .setSupportConcurrentCompilation(true);
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
  llvm::orc::SymbolLookupSet defined;
  for (const llvm::Function& function : *module)
    if (!function.isDeclaration()) defined.add(jit_->mangleAndIntern(function.getName()));
  llvm::orc::ThreadSafeModule threadSafe(std::move(module), std::move(context));
  if (auto error = jit_->addIRModule(std::move(threadSafe)))
    throw internalError("internal error: adding a module to the JIT: " +
                        llvm::toString(std::move(error)));
  // Compiling starts now, on the JIT's threads, while the caller emits the next
  // module: emitting a model's kernels one after another took a fifth of a 12-layer
  // stack's compile before it. lookup() waits for them and reports any failure.
  jit_->getExecutionSession().lookup(
      llvm::orc::LookupKind::Static, llvm::orc::makeJITDylibSearchOrder(&jit_->getMainJITDylib()),
      std::move(defined), llvm::orc::SymbolState::Ready,
      [](llvm::Expected<llvm::orc::SymbolMap> result) { llvm::consumeError(result.takeError()); },
      llvm::orc::NoDependenciesToRegister);
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
  // The modules are already compiling (addModule); this waits for every one.
  auto found =
      unwrapOrThrow(jit_->getExecutionSession().lookup(
                        llvm::orc::makeJITDylibSearchOrder(&jit_->getMainJITDylib()), names),
                    "compiling the kernels");
  std::vector<void*> addresses;
  for (const auto& name : interned) addresses.push_back(found.at(name).getAddress().toPtr<void*>());
  // The lookup returns once every symbol is ready, but a compile thread may still be
  // finishing its materialization; ending the session under it (as ~LLJIT does: it
  // closes the JITDylibs before it stops the threads, LLVM issue 174922) reports a
  // defunct resource tracker. Every kernel is compiled by now: the threads are joined
  // here, their last tasks done and destroyed.
  jit_->getExecutionSession().getExecutorProcessControl().getDispatcher().shutdown();
  return addresses;
}

}  // namespace cnv::backend
