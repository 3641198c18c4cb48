// A host program using cnv's C++ API: compile a .cnv model, bind its weights, run it.
//
//   cnv_host_example MODEL.cnv
//
// Fills every param and input with a fixed pattern (batch 2, width 16 for symbolic
// dims), runs the model and prints each output's shape and first values.
#include <cnv/cnv.h>

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s MODEL.cnv\n", argv[0]);
    return 2;
  }
  try {
    cnv::Model model = cnv::Model::fromFile(argv[1]);

    auto concreteShape = [](const cnv::TensorSpec& spec) {
      std::vector<int64_t> shape;
      for (size_t axis = 0; axis < spec.dims.size(); ++axis) {
        const std::string& dim = spec.dims[axis];
        bool symbolic = !dim.empty() && !std::isdigit(static_cast<unsigned char>(dim[0]));
        shape.push_back(symbolic ? (axis == 0 ? 2 : 16) : std::stoll(dim));
      }
      return shape;
    };
    auto pattern = [](int64_t count) {
      std::vector<float> values(count);
      for (int64_t i = 0; i < count; ++i) values[i] = static_cast<float>((i * 37 % 17) - 8) / 8.0f;
      return values;
    };

    std::vector<cnv::Tensor> storage;
    for (const cnv::TensorSpec& param : model.params()) {
      auto shape = concreteShape(param);
      storage.emplace_back(shape, pattern(cnv::elementCount(shape)));
      model.setParam(param.name, storage.back().view());
    }
    std::map<std::string, cnv::TensorView> inputs;
    for (const cnv::TensorSpec& input : model.inputs()) {
      auto shape = concreteShape(input);
      storage.emplace_back(shape, pattern(cnv::elementCount(shape)));
      inputs[input.name] = storage.back().view();
    }

    for (const auto& [name, tensor] : model.run(inputs)) {
      std::printf("%s: shape %s layout %s, first values:", name.c_str(),
                  cnv::shapeString(tensor.shape()).c_str(), "as declared");
      for (int64_t i = 0; i < std::min<int64_t>(tensor.size(), 6); ++i)
        std::printf(" %.4f", tensor.data()[i]);
      std::printf("\n");
    }
    return 0;
  } catch (const cnv::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
}
