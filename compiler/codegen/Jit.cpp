#include "compiler/codegen/Jit.h"

#include <llvm/ExecutionEngine/Orc/ExecutionUtils.h>
#include <llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/IR/LegacyPassManager.h>
#include <llvm/MC/TargetRegistry.h>
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/TargetParser/Host.h>

#include <cstring>
#include <mutex>
#include <thread>

#include "cnv/Error.h"

namespace cnv::codegen {
namespace {

void initializeLlvm() {
  static std::once_flag once;
  std::call_once(once, [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    llvm::InitializeNativeTargetAsmParser();
  });
}

template <typename T>
T unwrap(llvm::Expected<T> value, const char* what) {
  if (!value)
    throw internalError(std::string("internal error: ") + what + ": " +
                        llvm::toString(value.takeError()));
  return std::move(*value);
}

llvm::orc::JITTargetMachineBuilder hostBuilder() {
  initializeLlvm();
  auto builder = unwrap(llvm::orc::JITTargetMachineBuilder::detectHost(), "detecting the host CPU");
  builder.setCodeGenOptLevel(llvm::CodeGenOptLevel::Aggressive);
  return builder;
}

}  // namespace

std::unique_ptr<llvm::TargetMachine> createHostTargetMachine() {
  return unwrap(hostBuilder().createTargetMachine(), "creating the host target machine");
}

TargetInfo targetInfo(const llvm::TargetMachine& machine) {
  const std::string features = machine.getTargetFeatureString().str();
  auto has = [&](const char* feature) {
    return features.find(std::string("+") + feature + ",") != std::string::npos ||
           (features.size() >= std::strlen(feature) + 1 &&
            features.compare(features.size() - std::strlen(feature) - 1, std::string::npos,
                             std::string("+") + feature) == 0);
  };
  TargetInfo info;
  if (has("avx512f")) {
    info.vectorWidth = 16;
    info.vectorRegisters = 32;
  } else if (has("avx2") || has("avx")) {
    info.vectorWidth = 8;
  }
  return info;
}

void optimizeModule(llvm::Module& module, llvm::TargetMachine& machine) {
  module.setDataLayout(machine.createDataLayout());
  module.setTargetTriple(machine.getTargetTriple().str());
  for (llvm::Function& function : module) {
    if (function.isDeclaration()) continue;
    function.addFnAttr("target-cpu", machine.getTargetCPU());
    function.addFnAttr("target-features", machine.getTargetFeatureString());
  }
  llvm::LoopAnalysisManager loops;
  llvm::FunctionAnalysisManager functions;
  llvm::CGSCCAnalysisManager sccs;
  llvm::ModuleAnalysisManager modules;
  llvm::PassBuilder builder(&machine);
  builder.registerModuleAnalyses(modules);
  builder.registerCGSCCAnalyses(sccs);
  builder.registerFunctionAnalyses(functions);
  builder.registerLoopAnalyses(loops);
  builder.crossRegisterProxies(loops, functions, sccs, modules);
  builder.buildPerModuleDefaultPipeline(llvm::OptimizationLevel::O2).run(module, modules);
}

std::string emitMachineCode(llvm::Module& module, llvm::TargetMachine& machine, bool object) {
  llvm::SmallVector<char, 0> buffer;
  llvm::raw_svector_ostream stream(buffer);
  llvm::legacy::PassManager passes;
  auto type = object ? llvm::CodeGenFileType::ObjectFile : llvm::CodeGenFileType::AssemblyFile;
  if (machine.addPassesToEmitFile(passes, stream, nullptr, type))
    throw internalError("internal error: the host target cannot emit this file type");
  passes.run(module);
  return std::string(buffer.begin(), buffer.end());
}

Jit::~Jit() = default;

std::unique_ptr<Jit> Jit::create(unsigned compileThreads) {
  std::unique_ptr<Jit> jit(new Jit());
  auto builder = hostBuilder();
  jit->machine_ = unwrap(builder.createTargetMachine(), "creating the host target machine");
  jit->target_ = targetInfo(*jit->machine_);
  if (compileThreads == 0) compileThreads = std::max(1u, std::thread::hardware_concurrency());
  jit->jit_ = unwrap(llvm::orc::LLJITBuilder()
                         .setJITTargetMachineBuilder(builder)
                         .setNumCompileThreads(compileThreads)
                         .create(),
                     "creating the JIT");
  // Optimization runs as each module materializes, on the compile thread that takes
  // it, with a TargetMachine of its own (they are not shared across threads).
  jit->jit_->getIRTransformLayer().setTransform(
      [](llvm::orc::ThreadSafeModule module, const llvm::orc::MaterializationResponsibility&)
          -> llvm::Expected<llvm::orc::ThreadSafeModule> {
        auto machine = hostBuilder().createTargetMachine();
        if (!machine) return machine.takeError();
        module.withModuleDo([&](llvm::Module& m) { optimizeModule(m, **machine); });
        return module;
      });
  // Kernels call expf and tanhf from the C library the host process already has.
  auto generator = unwrap(llvm::orc::DynamicLibrarySearchGenerator::GetForCurrentProcess(
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

std::vector<void*> Jit::lookup(const std::vector<std::string>& symbols) {
  llvm::orc::SymbolLookupSet names;
  std::vector<llvm::orc::SymbolStringPtr> interned;
  for (const std::string& symbol : symbols) {
    interned.push_back(jit_->mangleAndIntern(symbol));
    names.add(interned.back());
  }
  // One lookup for every symbol lets the session materialize the modules in parallel.
  auto found = unwrap(jit_->getExecutionSession().lookup(
                          llvm::orc::makeJITDylibSearchOrder(&jit_->getMainJITDylib()), names),
                      "compiling the kernels");
  std::vector<void*> addresses;
  for (const auto& name : interned) addresses.push_back(found.at(name).getAddress().toPtr<void*>());
  return addresses;
}

}  // namespace cnv::codegen
