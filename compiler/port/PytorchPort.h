// `cnvc port --to=pytorch`: a model as the PyTorch module a PyTorch engineer would have
// written by hand — nn.Conv1d where PyTorch expresses the conv directly, an explicit,
// commented F.pad where it cannot, permutes only at the boundaries — and the
// state_dict its weights become.
#pragma once

#include <string>
#include <vector>

#include "compiler/Compiler.h"

namespace cnv::port {

// Where a state_dict entry comes from: a param of the model, as declared.
struct StateEntry {
  std::string key;       // "conv_h.weight"
  std::string param;     // "w"
  bool fromWio = false;  // a WIO weight, permuted (2, 1, 0) into PyTorch's OIW
};

struct PytorchModule {
  std::string className;  // the model's name (made a valid Python identifier)
  std::string source;     // the whole .py file
  std::vector<StateEntry> stateDict;
};

enum class LayoutMode {
  Declared,  // every input and output in its declared layout
  Pytorch,   // every input and output NCW
};

// `compiled`: the model's IR stopped after padding-resolution (one op per call of the
// source, shapes and padding amounts known).
PytorchModule portToPytorch(const CompiledIr& compiled, LayoutMode layout);

// The pipeline options port and lint compile with.
passes::PipelineOptions portPipeline();

}  // namespace cnv::port
