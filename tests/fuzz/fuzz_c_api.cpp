// libFuzzer target: random call sequences on the C API (cnv/cnv_c.h) with random shapes,
// names and null pointers, on two models compiled once. Buffers are always as large as
// the shapes given claim (the API cannot see a buffer's length), so any out-of-bounds
// access is cnv's. Every call must return a status; a crash or sanitizer report is a
// finding.
#include <cstdint>
#include <cstring>
#include <vector>

#include "cnv/cnv_c.h"

namespace {

const char* kModels[] = {
    "model a {\n  input x : f32[N, L, 3] layout NWC\n  param w : f32[3, 3, 4] layout WIO\n"
    "  param b : f32[4]\n  y = relu(conv1d(x, w, b, stride=2, padding=same))\n  output y\n}\n",
    "model b {\n  input x : f32[N, 2, L] layout NCW\n  input r : f32[N, 4, L] layout NCW\n"
    "  param w : f32[4, 1, 5] layout OIW\n"
    "  y = add(conv1d(x, w, groups=2, padding=2, padding_mode=reflect), r)\n  z = y\n"
    "  output y\n  output z layout NWC\n}\n"};

struct Bytes {
  const uint8_t* data;
  size_t size, at = 0;
  uint8_t next() { return at < size ? data[at++] : 0; }
  bool done() const { return at >= size; }
  int64_t dim() {
    const uint8_t b = next();
    return b < 240 ? b % 12 : static_cast<int64_t>(b) - 250;  // mostly small, sometimes < 0
  }
};

cnv_model* model(int which) {
  static cnv_model* models[2] = {nullptr, nullptr};
  if (!models[which]) cnv_model_from_source(kModels[which], "fuzz.cnv", nullptr, &models[which]);
  return models[which];
}

const char* name(Bytes& in) {
  static const char* names[] = {"x", "r", "w", "b", "y", "z", "q", ""};
  const uint8_t pick = in.next() % 9;
  return pick == 8 ? nullptr : names[pick];
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Bytes in{data, size};
  cnv_model* m = model(in.next() % 2);
  if (!m) __builtin_trap();  // both models are valid
  std::vector<std::vector<float>> buffers;
  std::vector<std::vector<int64_t>> shapes;
  auto array = [&](size_t rank) -> std::pair<float*, const int64_t*> {
    shapes.emplace_back();
    int64_t count = 1;
    for (size_t i = 0; i < rank; ++i) {
      shapes.back().push_back(in.dim());
      count *= shapes.back().back() > 0 ? shapes.back().back() : 0;
    }
    buffers.emplace_back(static_cast<size_t>(count) + 1, 0.5f);
    const bool null = in.next() % 16 == 0;
    return {null ? nullptr : buffers.back().data(), shapes.back().data()};
  };
  for (int step = 0; step < 8 && !in.done(); ++step) {
    switch (in.next() % 6) {
      case 0: {
        const size_t rank = in.next() % 4;
        auto [p, s] = array(rank);
        cnv_model_set_param(m, name(in), p, s, rank);
        break;
      }
      case 1:
      case 2: {
        cnv_input inputs[3];
        cnv_output outputs[3];
        const size_t ni = in.next() % 4, no = in.next() % 4;
        for (size_t i = 0; i < ni; ++i) {
          const size_t rank = in.next() % 2 ? 3 : in.next() % 5;
          auto [p, s] = array(rank);
          inputs[i] = {name(in), p, s, rank};
        }
        for (size_t o = 0; o < no; ++o) {
          const size_t rank = in.next() % 2 ? 3 : in.next() % 5;
          auto [p, s] = array(rank);
          outputs[o] = {name(in), p, s, rank};
        }
        if (in.next() % 2) {
          int64_t shape[3];
          cnv_model_output_shape(m, ni ? inputs : nullptr, ni, in.next() % 3, shape);
        } else {
          cnv_model_run(m, ni ? inputs : nullptr, ni, no ? outputs : nullptr, no, in.next() % 4);
        }
        break;
      }
      case 3: {
        cnv_tensor_info info;
        cnv_model_info(m, static_cast<cnv_role>(in.next() % 5), in.next() % 4, &info);
        cnv_model_count(m, static_cast<cnv_role>(in.next() % 5));
        break;
      }
      case 4: {
        // A program that is not one: bytes straight from the input.
        const size_t length = in.next();
        std::vector<unsigned char> program(length);
        for (auto& b : program) b = in.next();
        cnv_model* aot = nullptr;
        if (cnv_aot_model_create(program.data(), program.size(), nullptr, 0, &aot) == CNV_OK)
          cnv_model_free(aot);
        break;
      }
      default:
        cnv_model_unbound_params(m);
        std::strlen(cnv_last_error());
    }
  }
  return 0;
}
