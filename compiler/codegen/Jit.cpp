#include "compiler/codegen/Jit.h"

#include <llvm/ExecutionEngine/Orc/ExecutionUtils.h>
#include <llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/IR/LegacyPassManager.h>
#include <llvm/MC/MCSubtargetInfo.h>
#include <llvm/MC/TargetRegistry.h>
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/TargetParser/Host.h>

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

// The CPUs a model can be compiled for besides the host's own, each with a feature
// the host must have to run its code.
struct CpuChoice {
  const char* name;
  const char* hostFeature;
  const char* what;
};
constexpr CpuChoice kCpuChoices[] = {
    {"x86-64", "sse2", "SSE2, 4-float vectors"},
    {"x86-64-v2", "sse4.2", "SSE4.2, 4-float vectors"},
    {"x86-64-v3", "avx2", "AVX2, 8-float vectors"},
    {"haswell", "avx2", "AVX2, 8-float vectors"},
    {"x86-64-v4", "avx512f", "AVX-512, 16-float vectors"},
};

llvm::orc::JITTargetMachineBuilder targetBuilder(const std::string& cpu) {
  initializeLlvm();
  auto builder = unwrap(llvm::orc::JITTargetMachineBuilder::detectHost(), "detecting the host CPU");
  builder.setCodeGenOptLevel(llvm::CodeGenOptLevel::Aggressive);
  if (cpu.empty() || cpu == "host") return builder;
  const CpuChoice* choice = nullptr;
  std::string names;
  for (const CpuChoice& c : kCpuChoices) {
    if (cpu == c.name) choice = &c;
    names += std::string(names.empty() ? "" : ", ") + c.name + " (" + c.what + ")";
  }
  if (!choice || !builder.getTargetTriple().isX86())
    throw usageError("unknown target CPU '" + cpu + "': the choices are host, " + names);
  if (!llvm::sys::getHostCPUFeatures().lookup(choice->hostFeature))
    throw usageError("this machine cannot run code for '" + cpu + "': it lacks " +
                     choice->hostFeature);
  // The named CPU's features alone, not the host's.
  builder.setCPU(cpu);
  builder.getFeatures() = llvm::SubtargetFeatures();
  return builder;
}

}  // namespace

std::unique_ptr<llvm::TargetMachine> createTargetMachine(const std::string& cpu) {
  return unwrap(targetBuilder(cpu).createTargetMachine(), "creating the target machine");
}

TargetInfo targetInfo(const llvm::TargetMachine& machine) {
  // Features implied by the CPU name count too, so ask the subtarget, not the string.
  const llvm::MCSubtargetInfo* subtarget = machine.getMCSubtargetInfo();
  TargetInfo info;
  if (subtarget->checkFeatures("+avx512f")) {
    info.vectorWidth = 16;
    info.vectorRegisters = 32;
  } else if (subtarget->checkFeatures("+avx")) {
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

std::unique_ptr<Jit> Jit::create(const std::string& cpu, unsigned compileThreads) {
  std::unique_ptr<Jit> jit(new Jit());
  auto builder = targetBuilder(cpu);
  jit->machine_ = unwrap(builder.createTargetMachine(), "creating the target machine");
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
      [builder](llvm::orc::ThreadSafeModule module,
                const llvm::orc::MaterializationResponsibility&) mutable
      -> llvm::Expected<llvm::orc::ThreadSafeModule> {
        auto machine = builder.createTargetMachine();
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
