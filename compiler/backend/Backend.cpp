#include "compiler/backend/Backend.h"

#include <fmt/format.h>
#include <llvm/Bitcode/BitcodeWriter.h>
#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/Verifier.h>
#include <llvm/MC/MCSubtargetInfo.h>
#include <llvm/Support/raw_ostream.h>

#include <algorithm>

#include "cnv/Error.h"
#include "compiler/backend/Jit.h"
#include "compiler/backend/KernelBuilder.h"
#include "compiler/backend/LlvmTarget.h"
#include "compiler/backend/ObjectCache.h"
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
  const auto builder = targetMachineBuilder(options.cpu);
  codeTarget_ = builder.getCPU() + " " + builder.getFeatures().getString();
  if (options.useCompileCache)
    if (auto directory = ObjectCache::defaultDirectory())
      objects_ = std::make_shared<ObjectCache>(*directory);
}

Backend::~Backend() = default;

std::vector<Kernel> Backend::plan(const ir::Graph& graph) const {
  return planKernels(graph, target_, {preferred_, options_.schedules, tuning_.get()});
}

std::string Backend::describeLoops(const std::vector<Kernel>& kernels) const {
  // What the schedules were derived from.
  std::string out = fmt::format(
      "machine: {} KiB L1d and {} KiB L2 per core, <{} x float> vectors, {} full-width FMA{} per "
      "cycle, L2 feeds {:.0f} bytes a cycle\n",
      target_.caches.l1d / 1024, target_.caches.l2 / 1024, target_.vectorWidth, target_.fmaPerCycle,
      target_.fmaPerCycle == 1 ? "" : "s", target_.l2BytesPerCycle);
  for (const Kernel& kernel : kernels) {
    const std::string label = kernel.schedule->label();
    out += fmt::format("kernel @{} computes %{} ({}) with {}{}{}\n", kernel.symbol,
                       kernel.op->result->name, ir::name(kernel.op->kind), kernel.strategy->name(),
                       label == "default" ? "" : " " + label, chosenByText(kernel.chosenBy));
    const std::string outer = kernel.schedule->describeOuterLoops();
    const std::string indent(2 * static_cast<size_t>(std::count(outer.begin(), outer.end(), '\n')),
                             ' ');
    out += outer + indent + "  for n in [batch_begin, batch_end)\n";
    const std::string inner = kernel.schedule->describeLoops();
    for (size_t begin = 0; begin < inner.size();) {
      const size_t end = inner.find('\n', begin);
      const size_t next = end == std::string::npos ? inner.size() : end + 1;
      out += indent + inner.substr(begin, next - begin);
      begin = next;
    }
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

std::string Backend::emitAotObject(const ir::Graph& graph, const std::vector<Kernel>& kernels,
                                   const std::string& createFunction,
                                   const std::string& program) const {
  llvm::LLVMContext context;
  auto module = emitModule("cnv." + graph.name, pointers(kernels), context);
  // Internal, so that objects of several models link into one program.
  std::vector<llvm::Constant*> functions;
  for (const Kernel& kernel : kernels) {
    llvm::Function* function = module->getFunction(kernel.symbol);
    function->setLinkage(llvm::GlobalValue::InternalLinkage);
    functions.push_back(function);
  }
  auto* pointer = llvm::PointerType::get(context, 0);
  auto* i64 = llvm::Type::getInt64Ty(context);
  auto* i32 = llvm::Type::getInt32Ty(context);
  auto* bytes = llvm::ConstantDataArray::getString(context, program, /*AddNull=*/false);
  auto* programGlobal =
      new llvm::GlobalVariable(*module, bytes->getType(), true, llvm::GlobalValue::PrivateLinkage,
                               bytes, createFunction + ".program");
  auto* tableType = llvm::ArrayType::get(pointer, functions.size());
  auto* table = new llvm::GlobalVariable(
      *module, tableType, true, llvm::GlobalValue::PrivateLinkage,
      llvm::ConstantArray::get(tableType, functions), createFunction + ".kernels");
  auto* runtimeCreate = llvm::cast<llvm::Function>(
      module
          ->getOrInsertFunction(
              "cnv_aot_model_create",
              llvm::FunctionType::get(i32, {pointer, i64, pointer, i64, pointer}, false))
          .getCallee());
  auto* create =
      llvm::Function::Create(llvm::FunctionType::get(i32, {pointer}, false),
                             llvm::GlobalValue::ExternalLinkage, createFunction, *module);
  llvm::IRBuilder<> b(llvm::BasicBlock::Create(context, "entry", create));
  b.CreateRet(b.CreateCall(runtimeCreate, {programGlobal, b.getInt64(program.size()), table,
                                           b.getInt64(functions.size()), create->getArg(0)}));
  std::string problems;
  llvm::raw_string_ostream stream(problems);
  if (llvm::verifyModule(*module, &stream))
    throw internalError("internal error: the ahead-of-time module is invalid: " + stream.str());
  optimizeModule(*module, *machine_);
  return backend::emitMachineCode(*module, *machine_, true);
}

std::vector<std::string> Backend::enabledCpuFeatures() const {
  // The subtarget's own bits: a named CPU's features come from its name, not a list.
  const llvm::MCSubtargetInfo& subtarget = *machine_->getMCSubtargetInfo();
  std::vector<std::string> enabled;
  for (const llvm::SubtargetFeatureKV& feature : subtarget.getAllProcessorFeatures())
    if (subtarget.getFeatureBits().test(feature.Value)) enabled.push_back(feature.Key);
  return enabled;
}

CompiledKernels Backend::compile(std::vector<Kernel> kernels, const std::string& cacheText) const {
  CompiledKernels compiled;
  std::string key;
  if (objects_ && !cacheText.empty()) {
    // Everything that decides the kernels' code besides the source and the IR.
    std::string description =
        fmt::format("target {}\nmachine {}\ncpu {}\nstrategy {}\n", codeTarget_,
                    machineKey(target_), options_.cpu, options_.strategy);
    for (const Kernel& kernel : kernels)
      description += fmt::format("kernel {} {} {} {}\n", kernel.symbol, kernel.strategy->name(),
                                 kernel.schedule->label(), static_cast<int>(kernel.chosenBy));
    key = ObjectCache::key(description + cacheText);
    if (auto entry = objects_->load(key); entry && entry->symbols.size() == kernels.size()) {
      try {
        compiled.jit_ = Jit::create(options_.cpu);
        for (std::string& object : entry->objects)
          compiled.jit_->addObject(llvm::MemoryBuffer::getMemBufferCopy(object, "cnv.cached"));
        for (void* address : compiled.jit_->lookup(entry->symbols))
          compiled.functions_.push_back(reinterpret_cast<KernelFunction>(address));
        compiled.distinct_ = compiled.cached_ = entry->objects.size();
        compiled.kernels_ = std::move(kernels);
        return compiled;
      } catch (const Error&) {
        compiled = CompiledKernels();  // an entry that does not link is compiled anew
      }
    }
  }
  compiled.jit_ = Jit::create(options_.cpu, 0, key.empty() ? nullptr : objects_);
  std::vector<std::string> symbols;
  // Kernels whose IR is the same but for their name (a stack of identical layers) are
  // compiled once: optimizing and compiling is nearly all of a compile's time. Each
  // distinct kernel is named by a digest of its IR as bitcode, which takes a quarter
  // of the time printing it as text did (1.2 against 4.5 ms for a 250-channel kernel:
  // the serial part of a 12-layer stack's compile went from 89 to 38 ms).
  std::vector<std::string> distinct;
  for (const Kernel& kernel : kernels) {
    // A module (and context) per kernel, so that the JIT's threads compile them
    // concurrently.
    auto context = std::make_unique<llvm::LLVMContext>();
    auto module = emitModule("cnv.kernel", {&kernel}, *context);
    llvm::Function* function = module->getFunction(kernel.symbol);
    function->setName("cnv.kernel");
    std::string bitcode;
    llvm::raw_string_ostream stream(bitcode);
    llvm::WriteBitcodeToFile(*module, stream);
    const std::string symbol = "cnv_kernel_" + ObjectCache::digest(stream.str());
    symbols.push_back(symbol);
    if (std::find(distinct.begin(), distinct.end(), symbol) != distinct.end()) continue;
    distinct.push_back(symbol);
    function->setName(symbol);
    module->setModuleIdentifier(symbol);
    compiled.jit_->addModule(std::move(module), std::move(context));
  }
  for (void* address : compiled.jit_->lookup(symbols))
    compiled.functions_.push_back(reinterpret_cast<KernelFunction>(address));
  compiled.distinct_ = distinct.size();
  if (!key.empty()) {
    ObjectCache::Entry entry;
    entry.symbols = symbols;
    for (const std::string& module : distinct)
      if (auto object = objects_->takeCompiled(module)) entry.objects.push_back(std::move(*object));
    if (entry.objects.size() == distinct.size()) objects_->store(key, entry);
  }
  compiled.kernels_ = std::move(kernels);
  return compiled;
}

}  // namespace cnv::backend
