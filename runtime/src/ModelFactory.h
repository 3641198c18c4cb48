// The runtime's door for the project's own tools (cnvc): the IR behind a Model. Not
// part of the public API.
#pragma once

#include <memory>
#include <vector>

#include "cnv/cnv.h"
#include "compiler/Compiler.h"
#include "compiler/backend/Backend.h"

namespace cnv {
namespace rt {
class Runner;
}

struct ModelFactory {
  // Plans, JIT-compiles and wraps `compiled`: Model::fromFile and fromSource after
  // parsing.
  static Model fromIr(CompiledIr compiled, const CompileOptions& options);
  // The same with the back end's options given in full (the tuner names schedules).
  static Model fromIr(CompiledIr compiled, const backend::BackendOptions& options);
  static const ir::Graph& graph(const Model& model);
  // How many distinct kernels `model` has, and how many came from the compile cache.
  static std::pair<size_t, size_t> cachedKernels(const Model& model);
  // What runs `model`: the C API's handles hold it.
  static std::shared_ptr<rt::Runner> runner(const Model& model);
  // The kernels `model` runs, one per op, in order.
  static const std::vector<backend::Kernel>& kernels(const Model& model);
  // Model::runInto; with `kernelSeconds`, each kernel's wall time goes there.
  static void runInto(const Model& model, const std::map<std::string, TensorView>& inputs,
                      const std::map<std::string, MutableTensorView>& outputs, int threads,
                      double* kernelSeconds);
  // Model::runInto, returning the wall time of each kernel (seconds, in kernel order).
  static std::vector<double> runTimed(const Model& model,
                                      const std::map<std::string, TensorView>& inputs,
                                      const std::map<std::string, MutableTensorView>& outputs,
                                      int threads);
};

}  // namespace cnv
