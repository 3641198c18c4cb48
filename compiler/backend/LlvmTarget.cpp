#include "compiler/backend/LlvmTarget.h"

#include <llvm/IR/LegacyPassManager.h>
#include <llvm/MC/MCSubtargetInfo.h>
#include <llvm/MC/TargetRegistry.h>
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/TargetParser/Host.h>
#include <llvm/Transforms/InstCombine/InstCombine.h>
#include <llvm/Transforms/Scalar/EarlyCSE.h>
#include <llvm/Transforms/Scalar/LICM.h>
#include <llvm/Transforms/Scalar/SROA.h>
#include <llvm/Transforms/Scalar/SimplifyCFG.h>

#include <mutex>
#include <vector>

#include "CodegenStamp.h"
#include "cnv/Error.h"

namespace cnv::backend {
namespace {

void initializeLlvm() {
  static std::once_flag once;
  std::call_once(once, [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    llvm::InitializeNativeTargetAsmParser();
  });
}

// The CPUs a model can be compiled for besides the host's own, with the features the
// host must have to run their code (the x86-64 micro-architecture levels).
struct CpuChoice {
  const char* name;
  std::vector<const char*> hostFeatures;
  const char* what;
};
const std::vector<CpuChoice>& cpuChoices() {
  static const std::vector<const char*> v2 = {"cx16",   "popcnt", "sse3",
                                              "sse4.1", "sse4.2", "ssse3"};
  static const std::vector<const char*> v3 = {"avx",  "avx2", "bmi",   "bmi2",
                                              "f16c", "fma",  "lzcnt", "movbe"};
  static const std::vector<const char*> v4 = {"avx512f", "avx512bw", "avx512cd", "avx512dq",
                                              "avx512vl"};
  auto join = [](std::initializer_list<std::vector<const char*>> parts) {
    std::vector<const char*> all;
    for (const auto& part : parts) all.insert(all.end(), part.begin(), part.end());
    return all;
  };
  static const std::vector<CpuChoice> choices = {
      {"x86-64", {"sse2"}, "SSE2, 4-float vectors"},
      {"x86-64-v2", join({v2}), "SSE4.2, 4-float vectors"},
      {"x86-64-v3", join({v2, v3}), "AVX2, 8-float vectors"},
      {"haswell", join({v2, v3}), "AVX2, 8-float vectors"},
      {"x86-64-v4", join({v2, v3, v4}), "AVX-512, 16-float vectors"},
  };
  return choices;
}

}  // namespace

const char* codeGeneratorBuild() { return CNV_CODEGEN_STAMP; }

llvm::orc::JITTargetMachineBuilder targetMachineBuilder(const std::string& cpu) {
  initializeLlvm();
  auto builder =
      unwrapOrThrow(llvm::orc::JITTargetMachineBuilder::detectHost(), "detecting the host CPU");
  builder.setCodeGenOptLevel(llvm::CodeGenOptLevel::Aggressive);
  if (cpu.empty() || cpu == "host") return builder;
  const CpuChoice* choice = nullptr;
  std::string names;
  for (const CpuChoice& c : cpuChoices()) {
    if (cpu == c.name) choice = &c;
    names += std::string(names.empty() ? "" : ", ") + c.name + " (" + c.what + ")";
  }
  if (!choice) throw usageError("unknown target CPU '" + cpu + "': the choices are host, " + names);
  if (!builder.getTargetTriple().isX86())
    throw usageError("target CPU '" + cpu + "' is an x86 level; this machine is not x86");
  const llvm::StringMap<bool> host = llvm::sys::getHostCPUFeatures();
  for (const char* feature : choice->hostFeatures)
    if (!host.lookup(feature))
      throw usageError("this machine cannot run code for '" + cpu + "': it lacks " + feature);
  // The named CPU's features alone, not the host's.
  builder.setCPU(cpu);
  builder.getFeatures() = llvm::SubtargetFeatures();
  return builder;
}

std::unique_ptr<llvm::TargetMachine> createTargetMachine(const std::string& cpu) {
  return unwrapOrThrow(targetMachineBuilder(cpu).createTargetMachine(),
                       "creating the target machine");
}

Target targetOf(const llvm::TargetMachine& machine) {
  // Features implied by the CPU name count too, so ask the subtarget, not the string.
  const llvm::MCSubtargetInfo* subtarget = machine.getMCSubtargetInfo();
  Target info;
  info.cpu = machine.getTargetCPU().str();
  info.features = machine.getTargetFeatureString().str();
  info.caches = machineCacheSizes();
  if (subtarget->checkFeatures("+avx512f")) {
    info.vectorWidth = 16;
    info.vectorRegisters = 32;
  } else if (subtarget->checkFeatures("+avx")) {
    info.vectorWidth = 8;
  }
  info.fmaPerCycle = machineFmaPerCycle(info.vectorWidth);
  info.l2BytesPerCycle = machineL2BytesPerCycle();
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
  // Not O2: the emitters unroll the tiles themselves and leave no calls to inline and
  // no loops to vectorize. What their code needs is the accumulators taken out of
  // memory, the address arithmetic folded and shared, and what does not change in a
  // loop hoisted out of it. O2's hundred-odd passes took 0.47 s of CPU for the six
  // distinct kernels of a 12-layer speech stack, these 0.07 s, and the benchmark suite
  // ran no faster with O2 (docs/performance.md).
  const auto instCombine = llvm::InstCombineOptions().setMaxIterations(1).setVerifyFixpoint(false);
  llvm::FunctionPassManager passes;
  passes.addPass(llvm::SROAPass(llvm::SROAOptions::ModifyCFG));
  passes.addPass(llvm::EarlyCSEPass());
  passes.addPass(llvm::InstCombinePass(instCombine));
  passes.addPass(llvm::SimplifyCFGPass());
  passes.addPass(llvm::createFunctionToLoopPassAdaptor(llvm::LICMPass(llvm::LICMOptions()),
                                                       /*UseMemorySSA=*/true));
  passes.addPass(llvm::EarlyCSEPass(/*UseMemorySSA=*/true));
  passes.addPass(llvm::SimplifyCFGPass());
  llvm::ModulePassManager modulePasses;
  modulePasses.addPass(llvm::createModuleToFunctionPassAdaptor(std::move(passes)));
  modulePasses.run(module, modules);
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

}  // namespace cnv::backend
