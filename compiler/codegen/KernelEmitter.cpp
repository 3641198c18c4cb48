// Schedules → LLVM IR: one function per kernel call, emitted by its strategy's file.
// Layouts are folded into address arithmetic (per-layout strides), padding into index
// mapping or, for interior positions, into nothing at all; the epilogue runs on each
// element or vector before its single store.
#include <llvm/IR/Verifier.h>
#include <llvm/Support/raw_ostream.h>

#include "cnv/Error.h"
#include "compiler/codegen/KernelBuilder.h"

namespace cnv::codegen {

std::unique_ptr<llvm::Module> emitKernels(const ir::Graph& graph,
                                          const std::vector<KernelCall>& calls,
                                          llvm::LLVMContext& context) {
  auto module = std::make_unique<llvm::Module>("cnv." + graph.name, context);
  KernelBuilder kb(context, *module);
  for (const KernelCall& call : calls) {
    kb.begin(call);
    const ir::Op& op = *call.op;
    switch (call.schedule.strategy) {
      case Strategy::DirectVector:
      case Strategy::DepthwiseVector:
        emitDirectVectorConv(kb, op, call.schedule);
        break;
      case Strategy::WidthVector:
        emitWidthVectorConv(kb, op, call.schedule);
        break;
      case Strategy::Scalar:
        if (op.kind == ir::OpKind::Conv1d)
          emitScalarConv(kb, op);
        else
          emitMap(kb, op);
        break;
    }
    kb.finish();
  }
  std::string problems;
  llvm::raw_string_ostream stream(problems);
  if (llvm::verifyModule(*module, &stream))
    throw internalError("internal error: generated LLVM IR is invalid: " + stream.str());
  return module;
}

}  // namespace cnv::codegen
