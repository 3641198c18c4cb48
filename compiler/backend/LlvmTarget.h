// LLVM's side of a target CPU: its TargetMachine, the optimization pipeline the kernels
// go through and their machine code. Used by Backend and Jit, and by cnvc --version for
// the host CPU's name.
#pragma once

#include <llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h>
#include <llvm/IR/Module.h>
#include <llvm/Target/TargetMachine.h>

#include <memory>
#include <string>

#include "cnv/Error.h"
#include "compiler/backend/Target.h"

namespace cnv::backend {

// The builder of TargetMachines for `cpu`: empty or "host" for the host CPU and all its
// features (AVX-512 where present), else one of a few x86 levels the host can run, so
// that narrower vector code can be compiled and tested on a wider machine ("x86-64" for
// SSE2, "x86-64-v3" or "haswell" for AVX2, "x86-64-v4" for AVX-512). Throws a usage
// error for any other name or a level the host cannot run.
llvm::orc::JITTargetMachineBuilder targetMachineBuilder(const std::string& cpu);
std::unique_ptr<llvm::TargetMachine> createTargetMachine(const std::string& cpu);

// The vector width and register count the kernels should plan for on `machine`, and the
// caches of this machine (machineCacheSizes).
Target targetOf(const llvm::TargetMachine& machine);

// Runs LLVM's optimization pipeline for `machine` on `module` (setting its data layout
// and triple). O2: O3's extra passes buy the kernels nothing and cost compile time.
void optimizeModule(llvm::Module& module, llvm::TargetMachine& machine);

// The code this generator makes, as a digest of its sources (cmake/CodegenStamp.cmake):
// the compile cache's entries hold for one.
const char* codeGeneratorBuild();

// `module` as assembly text or as an object file for `machine`.
std::string emitMachineCode(llvm::Module& module, llvm::TargetMachine& machine, bool object);

// Turns an llvm::Expected into its value, or an internal error naming `what`.
template <typename T>
T unwrapOrThrow(llvm::Expected<T> value, const char* what) {
  if (!value)
    throw internalError(std::string("internal error: ") + what + ": " +
                        llvm::toString(value.takeError()));
  return std::move(*value);
}

}  // namespace cnv::backend
