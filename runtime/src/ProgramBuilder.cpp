#include "ProgramBuilder.h"

#include <fmt/format.h>

#include <map>

namespace cnv::rt {
namespace {

class Builder {
 public:
  Builder(const CompiledIr& compiled, Program& program) : compiled_(compiled), program_(program) {
    for (const std::string& symbol : compiled.graph->symbols) {
      symbolIndex_[symbol] = static_cast<int32_t>(program.symbols.size());
      program.symbols.push_back(symbol);
    }
  }

  Expr expr(const ir::SymExpr& e) {
    Expr result;
    for (const ir::SymExpr::Step& step : e.postfix()) {
      Expr::Step s;
      s.op = static_cast<Expr::Op>(step.op);
      s.value = step.value;
      s.divisor = step.divisor;
      if (step.op == ir::SymExpr::Step::Op::Floor) s.symbol = symbol(step.symbol);
      result.steps.push_back(s);
    }
    if (!result.valid(program_.symbols.size()))
      throw internalError(
          fmt::format("internal error: the expression {} is too deep to run", e.str()));
    return result;
  }

  Program::Dim dim(const ir::SymExpr& e) {
    if (e.isConstant()) return {-1, e.constant()};
    return {symbol(e.str()), 0};
  }

  int32_t value(const ir::Value* v) {
    auto [it, added] = valueIndex_.emplace(v, static_cast<int32_t>(program_.values.size()));
    if (!added) return it->second;
    Program::Value value;
    if (v->kind == ir::ValueKind::Input) {
      value.kind = Program::Value::Kind::Input;
      value.index = indexIn(compiled_.graph->inputs, v);
    } else if (v->kind == ir::ValueKind::Weight || v->kind == ir::ValueKind::Bias) {
      value.kind = Program::Value::Kind::Param;
      value.index = indexIn(compiled_.graph->params, v);
    } else {
      value.kind = Program::Value::Kind::Result;
      value.batch = expr(v->batch);
      value.width = expr(v->width);
      value.channels = v->channels;
      value.nwc = v->layout == ir::Layout::NWC;
    }
    program_.values.push_back(std::move(value));
    return it->second;
  }

 private:
  int32_t symbol(const std::string& name) {
    auto it = symbolIndex_.find(name);
    if (it == symbolIndex_.end())
      throw internalError(fmt::format("internal error: symbol '{}' is bound by no input", name));
    return it->second;
  }
  static int32_t indexIn(const std::vector<ir::Value*>& values, const ir::Value* v) {
    for (size_t i = 0; i < values.size(); ++i)
      if (values[i] == v) return static_cast<int32_t>(i);
    throw internalError(fmt::format("internal error: value '{}' is not in the signature", v->name));
  }

  const CompiledIr& compiled_;
  Program& program_;
  std::map<std::string, int32_t> symbolIndex_;
  std::map<const ir::Value*, int32_t> valueIndex_;
};

}  // namespace

Program buildProgram(const CompiledIr& compiled, const std::vector<backend::Kernel>& kernels,
                     const std::vector<int32_t>& functionOf, int32_t functionCount) {
  const ir::Graph& graph = *compiled.graph;
  Program program;
  program.name = graph.name;
  Builder builder(compiled, program);
  for (const ir::Value* v : graph.inputs) {
    program.inputSpecs.push_back({v->name, activationDims(*v, v->layout), ir::name(v->layout)});
    program.inputs.push_back(
        {v->channels, v->layout == ir::Layout::NWC, builder.dim(v->batch), builder.dim(v->width)});
  }
  for (const ir::Value* v : graph.params) {
    const bool weight = v->kind == ir::ValueKind::Weight;
    program.paramSpecs.push_back({v->name, paramDims(*v), weight ? ir::name(v->weightLayout) : ""});
    Program::Param param;
    param.shape = paramShape(*v);
    param.bias = !weight;
    param.wio = weight && v->weightLayout == ir::WeightLayout::WIO;
    param.outChannels = weight ? v->outChannels : v->biasLength;
    param.inChannelsPerGroup = v->inChannelsPerGroup;
    param.kernelWidth = v->kernelWidth;
    program.params.push_back(std::move(param));
  }
  for (size_t k = 0; k < kernels.size(); ++k) {
    const backend::Kernel& kernel = kernels[k];
    Program::Kernel entry;
    entry.function = functionOf[k];
    for (size_t b = 0; b < kernel.buffers.size(); ++b) {
      const ir::Value* v = kernel.buffers[b];
      entry.buffers.push_back(builder.value(v));
      Program::Packing packing;
      if (v->kind == ir::ValueKind::Weight || v->kind == ir::ValueKind::Bias) {
        // Params reach kernels packed, in PyTorch's order where the schedule asks for
        // none.
        packing.param = program.values[entry.buffers.back()].index;
        if (kernel.packs(b)) {
          const backend::WeightPacking& wp = kernel.schedule->weightPacking();
          packing.block = wp.block();
          packing.inputBlock = wp.inputBlockOption();
        }
      }
      entry.packings.push_back(packing);
    }
    entry.result = builder.value(kernel.op->result);
    entry.batch = builder.expr(kernel.batch);
    entry.inputWidth = builder.expr(kernel.inputWidth);
    entry.outputWidth = builder.expr(kernel.outputWidth);
    entry.padLeft = builder.expr(kernel.padLeft);
    entry.macsPerPosition = kernel.macsPerPosition;
    entry.widthGranule = kernel.schedule->widthGranule();
    entry.scratchFloats = kernel.schedule->scratchFloats();
    program.kernels.push_back(std::move(entry));
  }
  for (const ir::Output& o : graph.outputs) {
    program.outputSpecs.push_back({o.name, activationDims(*o.value, o.layout), ir::name(o.layout)});
    program.outputs.push_back(builder.value(o.value));
  }
  for (const ir::RuntimeCheck& check : graph.checks) {
    DiagnosticEngine diagnostics(*compiled.source);
    diagnostics.error(check.location, fmt::format("{} (with {})", check.message,
                                                  std::string(1, Program::kSymbolsPlaceholder)));
    program.checks.push_back({builder.expr(check.value), diagnostics.render()});
  }
  program.functionCount = functionCount;
  program.validate();
  return program;
}

}  // namespace cnv::rt
