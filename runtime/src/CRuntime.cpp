// The run side of the C API (cnv/cnv_runtime.h), in both libraries.
#include <fmt/format.h>

#include <cstring>

#include "CModel.h"
#include "ThreadPool.h"
#include "cnv/Io.h"
#include "cnv/cnv.h"

using cnv::TensorView;
using cnv::usageError;

cnv_model::cnv_model(std::shared_ptr<void> owner_, std::shared_ptr<cnv::rt::Runner> runner_)
    : owner(std::move(owner_)), runner(std::move(runner_)) {
  const cnv::rt::Program& p = runner->program();
  for (const auto* specs : {&p.inputSpecs, &p.paramSpecs, &p.outputSpecs}) {
    auto& role = dims.emplace_back();
    for (const cnv::TensorSpec& spec : *specs) {
      auto& list = role.emplace_back();
      for (const std::string& d : spec.dims) list.push_back(d.c_str());
    }
  }
}

namespace cnv::c {
namespace {
thread_local std::string lastError;
}
void setLastError(const std::string& message) { lastError = message; }
const char* lastErrorText() { return lastError.c_str(); }
}  // namespace cnv::c

namespace {

using cnv::c::guarded;

void require(const void* pointer, const char* what) {
  if (!pointer) throw usageError(fmt::format("{} is NULL", what));
}

const std::vector<cnv::TensorSpec>& specsOf(const cnv_model* model, cnv_role role) {
  const cnv::rt::Program& p = model->runner->program();
  switch (role) {
    case CNV_INPUT:
      return p.inputSpecs;
    case CNV_PARAM:
      return p.paramSpecs;
    case CNV_OUTPUT:
      return p.outputSpecs;
    case CNV_ROLE_RANGE_:
      break;
  }
  throw usageError(fmt::format("{} is not a cnv_role", static_cast<int>(role)));
}

std::vector<int64_t> shapeOf(const int64_t* shape, size_t rank, const std::string& what) {
  if (rank > 0) require(shape, (what + "'s shape").c_str());
  if (rank > 8)
    throw usageError(fmt::format("{} has rank {}: at most 3 is meaningful", what, rank));
  return std::vector<int64_t>(shape, shape + rank);
}

// The inputs in declaration order; each given once, none unknown.
std::vector<TensorView> inputArray(const cnv_model* model, const cnv_input* inputs, size_t count) {
  const cnv::rt::Runner& runner = *model->runner;
  if (count > 0) require(inputs, "inputs");
  std::vector<TensorView> array(runner.program().inputSpecs.size());
  std::vector<bool> given(array.size(), false);
  for (size_t i = 0; i < count; ++i) {
    require(inputs[i].name, "an input's name");
    const size_t index = runner.inputIndex(inputs[i].name);
    if (given[index]) throw usageError(fmt::format("input '{}' is given twice", inputs[i].name));
    given[index] = true;
    array[index] = {inputs[i].data, shapeOf(inputs[i].shape, inputs[i].rank, inputs[i].name)};
  }
  for (size_t i = 0; i < array.size(); ++i)
    if (!given[i])
      throw usageError(fmt::format("input '{}' is not given", runner.program().inputSpecs[i].name));
  return array;
}

// A host's parallel_for behind the runtime's interface.
struct CParallelFor : cnv::rt::HostParallelFor {
  cnv_parallel_for_fn function;
  void* user;
  int threads;
  CParallelFor(cnv_parallel_for_fn f, void* u, int t) : function(f), user(u), threads(t) {}
  int concurrency() const override { return threads; }
  void run(int parts, cnv::rt::TaskRef task) const override {
    function(user, parts, task.call, task.context);
  }
};

// Whether this machine has `feature` (LLVM's name); true for names it cannot check.
bool hostHas(const std::string& feature) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CNV_FEATURE(llvmName, gccName) \
  if (feature == llvmName) return __builtin_cpu_supports(gccName);
  CNV_FEATURE("sse2", "sse2")
  CNV_FEATURE("sse3", "sse3")
  CNV_FEATURE("ssse3", "ssse3")
  CNV_FEATURE("sse4.1", "sse4.1")
  CNV_FEATURE("sse4.2", "sse4.2")
  CNV_FEATURE("popcnt", "popcnt")
  CNV_FEATURE("avx", "avx")
  CNV_FEATURE("avx2", "avx2")
  CNV_FEATURE("fma", "fma")
  CNV_FEATURE("bmi", "bmi")
  CNV_FEATURE("bmi2", "bmi2")
  CNV_FEATURE("aes", "aes")
  CNV_FEATURE("pclmul", "pclmul")
  CNV_FEATURE("avx512f", "avx512f")
  CNV_FEATURE("avx512bw", "avx512bw")
  CNV_FEATURE("avx512dq", "avx512dq")
  CNV_FEATURE("avx512vl", "avx512vl")
  CNV_FEATURE("avx512cd", "avx512cd")
  CNV_FEATURE("avx512vbmi", "avx512vbmi")
  CNV_FEATURE("avx512vbmi2", "avx512vbmi2")
  CNV_FEATURE("avx512ifma", "avx512ifma")
  CNV_FEATURE("avx512vnni", "avx512vnni")
  CNV_FEATURE("avx512bitalg", "avx512bitalg")
  CNV_FEATURE("avx512vpopcntdq", "avx512vpopcntdq")
  CNV_FEATURE("avx512bf16", "avx512bf16")
  CNV_FEATURE("gfni", "gfni")
  CNV_FEATURE("vpclmulqdq", "vpclmulqdq")
#undef CNV_FEATURE
#endif
  (void)feature;
  return true;
}

}  // namespace

extern "C" {

const char* cnv_last_error(void) { return cnv::c::lastErrorText(); }

const char* cnv_version(void) { return CNV_VERSION; }

void cnv_model_free(cnv_model* model) { delete model; }

const char* cnv_model_name(const cnv_model* model) {
  return model ? model->runner->program().name.c_str() : "";
}

size_t cnv_model_count(const cnv_model* model, cnv_role role) {
  if (!model || role < CNV_INPUT || role > CNV_OUTPUT) return 0;
  return specsOf(model, role).size();
}

cnv_status cnv_model_info(const cnv_model* model, cnv_role role, size_t index,
                          cnv_tensor_info* info) {
  return guarded([&] {
    require(model, "model");
    require(info, "info");
    const std::vector<cnv::TensorSpec>& specs = specsOf(model, role);
    if (index >= specs.size())
      throw usageError(fmt::format("index {} is past the model's {} entries", index, specs.size()));
    const auto& dims = model->dims[role][index];
    *info = {specs[index].name.c_str(), dims.size(), dims.data(), specs[index].layout.c_str()};
  });
}

cnv_status cnv_model_set_param(cnv_model* model, const char* name, const float* data,
                               const int64_t* shape, size_t rank) {
  return guarded([&] {
    require(model, "model");
    require(name, "name");
    model->runner->setParam(model->runner->paramIndex(name), {data, shapeOf(shape, rank, name)});
  });
}

cnv_status cnv_model_set_param_npy(cnv_model* model, const char* name, const char* path) {
  return guarded([&] {
    require(model, "model");
    require(name, "name");
    require(path, "path");
    const size_t index = model->runner->paramIndex(name);
    cnv::Tensor tensor = cnv::readNpy(path);
    model->runner->setParam(index, tensor.view());
  });
}

cnv_status cnv_model_load_safetensors(cnv_model* model, const char* path) {
  return guarded([&] {
    require(model, "model");
    require(path, "path");
    std::map<std::string, cnv::Tensor> tensors = cnv::readSafetensors(path);
    const auto& specs = model->runner->program().paramSpecs;
    for (size_t p = 0; p < specs.size(); ++p) {
      auto it = tensors.find(specs[p].name);
      if (it != tensors.end()) model->runner->setParam(p, it->second.view());
    }
  });
}

size_t cnv_model_unbound_params(const cnv_model* model) {
  return model ? model->runner->unboundParams().size() : 0;
}

cnv_status cnv_model_output_shape(const cnv_model* model, const cnv_input* inputs,
                                  size_t input_count, size_t index, int64_t shape[3]) {
  return guarded([&] {
    require(model, "model");
    require(shape, "shape");
    if (index >= model->runner->program().outputs.size())
      throw usageError(fmt::format("the model has no output {}", index));
    auto shapes = model->runner->outputShapes(inputArray(model, inputs, input_count).data());
    std::copy(shapes[index].begin(), shapes[index].end(), shape);
  });
}

cnv_status cnv_model_run(const cnv_model* model, const cnv_input* inputs, size_t input_count,
                         const cnv_output* outputs, size_t output_count, int threads) {
  return guarded([&] {
    require(model, "model");
    const cnv::rt::Runner& runner = *model->runner;
    runner.requireParamsBound();
    thread_local std::vector<TensorView> inputArrayData;
    inputArrayData = inputArray(model, inputs, input_count);
    if (output_count > 0) require(outputs, "outputs");
    thread_local std::vector<cnv::MutableTensorView> outputArray;
    const auto& specs = runner.program().outputSpecs;
    outputArray.assign(specs.size(), {});
    std::vector<bool> given(specs.size(), false);
    for (size_t o = 0; o < output_count; ++o) {
      require(outputs[o].name, "an output's name");
      const size_t index = runner.outputIndex(outputs[o].name);
      if (given[index])
        throw usageError(fmt::format("output '{}' is given twice", outputs[o].name));
      given[index] = true;
      outputArray[index] = {outputs[o].data,
                            shapeOf(outputs[o].shape, outputs[o].rank, outputs[o].name)};
    }
    for (size_t o = 0; o < specs.size(); ++o)
      if (!given[o])
        throw usageError(fmt::format("no buffer given for output '{}'", specs[o].name));
    runner.run(inputArrayData.data(), outputArray.data(), threads);
  });
}

cnv_status cnv_set_parallel_for(cnv_parallel_for_fn parallel_for, void* user, int concurrency) {
  return guarded([&] {
    if (!parallel_for) return cnv::rt::setHostParallelFor(nullptr);
    if (concurrency < 1) throw usageError("cnv_set_parallel_for: concurrency must be at least 1");
    cnv::rt::setHostParallelFor(new CParallelFor(parallel_for, user, concurrency));
  });
}

cnv_status cnv_set_memory_limit(int64_t bytes) {
  return guarded([&] { cnv::setMemoryLimit(bytes); });
}

cnv_status cnv_aot_model_create(const unsigned char* program, size_t program_size,
                                const cnv_kernel_fn* kernels, size_t kernel_count,
                                cnv_model** model) {
  return guarded([&] {
    require(program, "program");
    require(model, "model");
    *model = nullptr;
    if (kernel_count > 0) require(kernels, "kernels");
    cnv::rt::Program parsed = cnv::rt::deserialize(
        std::string_view(reinterpret_cast<const char*>(program), program_size));
    // Kernels for a CPU this machine is not would die of an illegal instruction.
    std::vector<std::string> missing;
    for (const std::string& feature : parsed.cpuFeatures)
      if (!hostHas(feature)) missing.push_back(feature);
    if (!missing.empty())
      throw cnv::dataError(fmt::format(
          "model '{}' was compiled ahead of time for {}, and this machine lacks {}: compile it "
          "again here, or for a CPU this machine can run (cnvc compile --cpu)",
          parsed.name, parsed.cpu, fmt::join(missing, ", ")));
    std::vector<cnv::rt::KernelFunction> functions(kernels, kernels + kernel_count);
    auto runner = std::make_shared<cnv::rt::Runner>(std::move(parsed), std::move(functions));
    *model = new cnv_model(nullptr, std::move(runner));
  });
}

}  // extern "C"
