#include "compiler/backend/Backend.h"

#include <fmt/format.h>
#include <llvm/IR/Verifier.h>
#include <llvm/Support/raw_ostream.h>

#include "cnv/Error.h"
#include "compiler/backend/Jit.h"
#include "compiler/backend/KernelBuilder.h"
#include "compiler/backend/LlvmTarget.h"
#include "compiler/backend/Planner.h"
#include "compiler/backend/TuningCache.h"

namespace cnv::backend {
namespace {

// The LLVM IR of `kernels`, one function each, as their schedules emit it. Layouts
// are folded into address arithmetic (per-layout strides), padding into index mapping
// or, for interior positions, into nothing at all; the epilogue runs on each element
// or vector before its single store.
std::unique_ptr<llvm::Module> emitModule(const std::string& name,
                                         const std::vector<const Kernel*>& kernels,
                                         llvm::LLVMContext& context) {
  auto module = std::make_unique<llvm::Module>(name, context);
  KernelBuilder kb(context, *module);
  for (const Kernel* kernel : kernels) {
    kb.begin(*kernel);
    kernel->schedule->emit(kb);
    kb.finish();
  }
  std::string problems;
  llvm::raw_string_ostream stream(problems);
  if (llvm::verifyModule(*module, &stream))
    throw internalError("internal error: generated LLVM IR is invalid: " + stream.str());
  return module;
}

// What --emit=loops says chose a kernel's schedule, when the list did not.
const char* chosenByText(Kernel::ChosenBy chosenBy) {
  switch (chosenBy) {
    case Kernel::ChosenBy::List:
      return "";
    case Kernel::ChosenBy::Named:
      return ", chosen by name";
    case Kernel::ChosenBy::Strategy:
      return ", chosen by --strategy";
    case Kernel::ChosenBy::TuningCache:
      return ", chosen by tuning cache";
  }
  return "";
}

std::vector<const Kernel*> pointers(const std::vector<Kernel>& kernels) {
  std::vector<const Kernel*> result;
  for (const Kernel& kernel : kernels) result.push_back(&kernel);
  return result;
}

}  // namespace

CompiledKernels::CompiledKernels() = default;
CompiledKernels::CompiledKernels(CompiledKernels&&) noexcept = default;
CompiledKernels& CompiledKernels::operator=(CompiledKernels&&) noexcept = default;
CompiledKernels::~CompiledKernels() = default;

Backend::Backend(const BackendOptions& options)
    : options_(options), machine_(createTargetMachine(options.cpu)) {
  target_ = targetOf(*machine_);
  if (!options.strategy.empty()) {
    preferred_ = findStrategy(options.strategy);
    if (!preferred_) {
      std::vector<std::string_view> names;
      for (const Strategy* strategy : strategyList()) names.push_back(strategy->name());
      throw usageError(fmt::format("unknown kernel strategy '{}': the choices are {}",
                                   options.strategy, fmt::join(names, ", ")));
    }
  }
  if (options.useTuningCache)
    if (auto path = TuningCache::defaultPath())
      tuning_ = std::make_unique<TuningCache>(TuningCache::load(*path));
}

Backend::~Backend() = default;

std::vector<Kernel> Backend::plan(const ir::Graph& graph) const {
  return planKernels(graph, target_, {preferred_, options_.schedules, tuning_.get()});
}

std::string Backend::describeLoops(const std::vector<Kernel>& kernels) const {
  // What the schedules were derived from.
  std::string out = fmt::format(
      "machine: {} KiB L1d and {} KiB L2 per core, <{} x float> vectors, {} full-width FMA{} per "
      "cycle\n",
      target_.caches.l1d / 1024, target_.caches.l2 / 1024, target_.vectorWidth, target_.fmaPerCycle,
      target_.fmaPerCycle == 1 ? "" : "s");
  for (const Kernel& kernel : kernels) {
    const std::string label = kernel.schedule->label();
    out += fmt::format("kernel @{} computes %{} ({}) with {}{}{}\n", kernel.symbol,
                       kernel.op->result->name, ir::name(kernel.op->kind), kernel.strategy->name(),
                       label == "default" ? "" : " " + label, chosenByText(kernel.chosenBy));
    out += "  for n in [batch_begin, batch_end)\n";
    out += kernel.schedule->describeLoops();
  }
  return out;
}

std::string Backend::emitLlvmIr(const ir::Graph& graph, const std::vector<Kernel>& kernels) const {
  llvm::LLVMContext context;
  auto module = emitModule("cnv." + graph.name, pointers(kernels), context);
  optimizeModule(*module, *machine_);
  std::string text;
  llvm::raw_string_ostream stream(text);
  module->print(stream, nullptr);
  return stream.str();
}

std::string Backend::emitMachineCode(const ir::Graph& graph, const std::vector<Kernel>& kernels,
                                     bool object) const {
  llvm::LLVMContext context;
  auto module = emitModule("cnv." + graph.name, pointers(kernels), context);
  optimizeModule(*module, *machine_);
  return backend::emitMachineCode(*module, *machine_, object);
}

CompiledKernels Backend::compile(std::vector<Kernel> kernels) const {
  CompiledKernels compiled;
  compiled.jit_ = Jit::create(options_.cpu);
  std::vector<std::string> symbols;
  // Kernels whose IR is the same but for their name (a stack of identical layers) are
  // compiled once: optimizing and compiling is nearly all of a compile's time, emitting
  // and printing the IR a small part of it.
  std::map<std::string, std::string> symbolOfIr;
  for (const Kernel& kernel : kernels) {
    // A module (and context) per kernel, so that the JIT's threads compile them
    // concurrently.
    auto context = std::make_unique<llvm::LLVMContext>();
    auto module = emitModule("cnv.kernel", {&kernel}, *context);
    llvm::Function* function = module->getFunction(kernel.symbol);
    function->setName("cnv.kernel");
    std::string ir;
    llvm::raw_string_ostream stream(ir);
    module->print(stream, nullptr);
    auto [known, added] = symbolOfIr.emplace(stream.str(), kernel.symbol);
    symbols.push_back(known->second);
    if (!added) continue;
    function->setName(kernel.symbol);
    module->setModuleIdentifier("cnv." + kernel.symbol);
    compiled.jit_->addModule(std::move(module), std::move(context));
  }
  for (void* address : compiled.jit_->lookup(symbols))
    compiled.functions_.push_back(reinterpret_cast<KernelFunction>(address));
  compiled.kernels_ = std::move(kernels);
  return compiled;
}

}  // namespace cnv::backend
