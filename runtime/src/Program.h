// What the runtime needs to run a compiled model, and nothing of the compiler: the
// signature, the shapes of every buffer as integer programs over the model's symbolic
// dims, the run-time checks, and one entry per kernel (its buffers, how its params are
// packed, its scalars). The JIT path builds one from the IR (ProgramBuilder.h); an
// ahead-of-time object carries one serialized, so the runtime library that runs it
// needs no LLVM.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cnv/cnv.h"

namespace cnv::rt {

// An integer expression over the symbols, in postfix order. Every step's overflow is
// checked; a program deeper than kMaxDepth is refused when it is built or read.
struct Expr {
  enum class Op : uint8_t { Const, Floor, Add, Scale, FloorDiv, Mod, Max };
  struct Step {
    Op op = Op::Const;
    int64_t value = 0;    // Const; Floor's offset; Scale's factor; FloorDiv's and Mod's divisor
    int64_t divisor = 1;  // Floor: floor((symbol + value) / divisor)
    int32_t symbol = -1;  // Floor
  };
  static constexpr int kMaxDepth = 32;
  std::vector<Step> steps;

  // nullopt when a step overflows int64 (or the program is malformed).
  std::optional<int64_t> evaluate(const int64_t* symbols) const;
  // Whether the program is well formed: each step has its operands, one value remains,
  // no divisor below 1, every symbol below `symbolCount`, depth within kMaxDepth.
  bool valid(size_t symbolCount) const;
};

struct Program {
  // A dim of an input: a constant or one symbol.
  struct Dim {
    int32_t symbol = -1;  // -1: constant
    int64_t constant = 0;
  };
  struct Input {
    int64_t channels = 0;
    bool nwc = false;
    Dim batch, width;
  };
  struct Param {
    std::vector<int64_t> shape;  // declared shape, in the declared layout
    bool bias = false;
    bool wio = false;  // weights: declared WIO (else OIW)
    int64_t outChannels = 0, inChannelsPerGroup = 0, kernelWidth = 0;  // weights; bias: outChannels
  };
  // A storage buffer: an input, a param, or a kernel's result.
  struct Value {
    enum class Kind : uint8_t { Input, Param, Result };
    Kind kind = Kind::Result;
    int32_t index = 0;  // of the input or param
    Expr batch, width;  // results
    int64_t channels = 0;
    bool nwc = false;
  };
  // How a kernel wants a param buffer packed: output-channel blocks of `block` (0:
  // PyTorch's order), input-channel blocks of `inputBlock` (0: all).
  struct Packing {
    int32_t param = -1;  // -1: the buffer is not a packed param
    int64_t block = 0, inputBlock = 0;
  };
  struct Kernel {
    int32_t function = 0;           // index into the kernel functions
    std::vector<int32_t> buffers;   // values: operands, then the result
    std::vector<Packing> packings;  // one per buffer
    int32_t result = 0;             // the value it writes
    Expr batch, inputWidth, outputWidth, padLeft;
    double macsPerPosition = 1;
    int64_t widthGranule = 1, scratchFloats = 0;
  };
  struct Check {
    Expr value;  // must be ≥ 1
    // The rendered diagnostic, with kSymbolsPlaceholder where the symbol values go.
    std::string diagnostic;
  };
  static constexpr char kSymbolsPlaceholder = '\x01';

  std::string name;
  std::vector<std::string> symbols;
  std::vector<TensorSpec> inputSpecs, paramSpecs, outputSpecs;
  std::vector<Input> inputs;     // parallel to inputSpecs
  std::vector<Param> params;     // parallel to paramSpecs
  std::vector<int32_t> outputs;  // values, parallel to outputSpecs
  std::vector<Value> values;
  std::vector<Kernel> kernels;
  std::vector<Check> checks;
  int32_t functionCount = 0;
  // What the kernels were compiled for: an ahead-of-time object refuses to run on a
  // machine without these (LLVM's names: "avx512f", "fma", ...).
  std::string cpu;
  std::vector<std::string> cpuFeatures;

  // Throws cnv::Error (Internal) when an index, expression or count is out of range:
  // what the runner relies on.
  void validate() const;
};

// A byte string an ahead-of-time object embeds, and its reader. The reader checks the
// format, its version and every index (Program::validate): a damaged object is a
// cnv::Error (Data), never a crash.
std::string serialize(const Program& program);
Program deserialize(std::string_view bytes);

}  // namespace cnv::rt
