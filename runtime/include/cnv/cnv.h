// cnv's public C++ API: compile a .cnv model with the JIT, bind its weights, run it.
//
//   cnv::Model model = cnv::Model::fromFile("block.cnv");
//   model.setParam("w", {weights.data(), {3, 2, 4}});
//   auto outputs = model.run({{"x", {input.data(), {8, 100, 2}}}});
//
// Every failure throws cnv::Error (cnv/Error.h); none aborts the process.
//
// Threads: one Model may be run (run, runInto, outputShapes) from any number of
// threads at once, and every result equals the single-threaded one: each run has
// scratch memory of its own, and no lock is held while kernels run. setParam is safe
// while runs are in flight and never waits for them: a run uses the params bound when
// it started; runs that start after setParam returns use the new value. All models share one
// process-wide pool of worker threads, one per core (setParallelFor hands their work to the host's
// own pool). A Model must outlive its runs. The C API (cnv/cnv_c.h) makes the same promises.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cnv/Error.h"
#include "cnv/Export.h"
#include "cnv/Tensor.h"

namespace cnv {

// One input, param or output as declared: dims in the declared order, as text
// ("N", "4", "floor((L - 3) / 2)"), and the layout ("NWC", "NCW", "WIO", "OIW" or "").
struct TensorSpec {
  std::string name;
  std::vector<std::string> dims;
  std::string layout;
};

struct CompileOptions {
  CompileOptions(std::string model = "", std::string cpu = "", std::string strategy = "")
      : model(std::move(model)), cpu(std::move(cpu)), strategy(std::move(strategy)) {}

  std::string model;  // which model of the file; may be empty when it holds one
  // The CPU to generate code for: empty (or "host") for this machine with all its
  // features; "x86-64" (SSE2), "x86-64-v2", "x86-64-v3"/"haswell" (AVX2) or "x86-64-v4"
  // (AVX-512) for narrower code the host can also run. Anything else is a usage error.
  std::string cpu;
  // For tests and experiments: a kernel strategy (one of the back end's list,
  // docs/ir.md; `cnvc --help` prints them) to use wherever it can compute an op,
  // instead of the compiler's own choice. Empty: the compiler chooses. Anything else is
  // a usage error.
  std::string strategy;
};

struct ModelFactory;

class CNV_API Model {
 public:
  static Model fromFile(const std::string& path, const CompileOptions& options = {});
  static Model fromSource(const std::string& source, const std::string& fileName = "<source>",
                          const CompileOptions& options = {});

  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;
  ~Model();

  const std::string& name() const;
  const std::vector<TensorSpec>& inputs() const;
  const std::vector<TensorSpec>& params() const;
  const std::vector<TensorSpec>& outputs() const;

  // Binds a param. `value` is in the param's declared layout and shape; it is copied
  // (and repacked for the kernels), so the caller's buffer may be freed afterwards.
  void setParam(const std::string& name, const TensorView& value);
  // The names of the params not bound yet.
  std::vector<std::string> unboundParams() const;

  // Runs the model. Every input must be given, in its declared layout; symbolic dims are
  // bound from the inputs' shapes. Returns every output in its declared layout.
  // threads ≤ 0 means all cores.
  std::map<std::string, Tensor> run(const std::map<std::string, TensorView>& inputs,
                                    int threads = 0) const;

  // The same, writing each output into a caller-owned buffer of exactly the output's
  // shape (see outputShapes), which overlaps no input and no other output (a usage
  // error otherwise: cnv does not run in place). Shapes, run-time checks and scratch
  // memory are planned once per size and kept: the fastest way to run a model
  // repeatedly.
  void runInto(const std::map<std::string, TensorView>& inputs,
               const std::map<std::string, MutableTensorView>& outputs, int threads = 0) const;
  std::map<std::string, std::vector<int64_t>> outputShapes(
      const std::map<std::string, TensorView>& inputs) const;

  // 2·MACs of all convolutions for the given symbol values (batch and width names).
  double flops(const std::map<std::string, int64_t>& symbols) const;

 private:
  friend struct ModelFactory;  // the project's own tools (cnvc)
  struct Impl;
  explicit Model(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Hands every model's parallel work to the host's own pool, process-wide:
// parallelFor(parts, task) must call task(part) once for each part in [0, parts), on
// any threads, and return when all have returned; models split their work into at
// most `concurrency` parts. An empty function returns to cnv's pool.
using ParallelFor = std::function<void(int parts, const std::function<void(int)>& task)>;
CNV_API void setParallelFor(ParallelFor parallelFor, int concurrency);

// The most memory a run may ask for (outputs run() allocates, temporaries, scratch):
// beyond it, run and runInto throw cnv::Error (Data) before allocating anything.
// $CNV_MEMORY_LIMIT (bytes, or with K, M, G, T; "off" for none) takes precedence;
// 0 restores the default, 3/4 of the machine's physical memory.
CNV_API void setMemoryLimit(int64_t bytes);

}  // namespace cnv
