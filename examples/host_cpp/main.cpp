// A C++ program using cnv's C++ API: compile a .cnv model, bind its weights from a
// .safetensors file, run it on an .npy input, write the output as .npy.
//
//   host_cpp MODEL.cnv WEIGHTS.safetensors INPUT.npy OUTPUT.npy
//
// For a model of one input and one output; see docs/api.md for the whole API.
#include <cnv/Io.h>
#include <cnv/cnv.h>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: host_cpp MODEL.cnv WEIGHTS.safetensors INPUT.npy OUTPUT.npy\n");
    return 2;
  }
  try {
    cnv::Model model = cnv::Model::fromFile(argv[1]);
    if (model.inputs().size() != 1 || model.outputs().size() != 1) {
      std::fprintf(stderr, "host_cpp: the model must have one input and one output\n");
      return 2;
    }
    // Tensors named after the model's params bind them; others are ignored.
    for (const auto& [name, tensor] : cnv::readSafetensors(argv[2]))
      for (const cnv::TensorSpec& param : model.params())
        if (param.name == name) model.setParam(name, tensor.view());
    const cnv::Tensor input = cnv::readNpy(argv[3]);
    auto outputs = model.run({{model.inputs()[0].name, input.view()}});
    const cnv::Tensor& output = outputs.at(model.outputs()[0].name);
    cnv::writeNpy(argv[4], output);
    std::printf("%s: %s in layout %s\n", model.outputs()[0].name.c_str(),
                cnv::shapeString(output.shape()).c_str(), model.outputs()[0].layout.c_str());
    return 0;
  } catch (const cnv::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return e.kind() == cnv::Error::Kind::Usage ? 2 : 1;
  }
}
