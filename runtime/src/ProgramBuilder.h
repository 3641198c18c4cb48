// The Program (Program.h) of a compiled graph and its kernels: what the JIT path and
// `cnvc compile --emit=obj` hand to the runtime.
#pragma once

#include <vector>

#include "Program.h"
#include "compiler/Compiler.h"
#include "compiler/backend/Kernel.h"

namespace cnv::rt {

// Kernel k calls function functionOf[k] (kernels with the same code share one).
Program buildProgram(const CompiledIr& compiled, const std::vector<backend::Kernel>& kernels,
                     const std::vector<int32_t>& functionOf, int32_t functionCount);

}  // namespace cnv::rt
