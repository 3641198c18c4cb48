// oneDNN as the baseline for `cnvc bench`: the conv layers of a model, each as one
// oneDNN primitive in the formats oneDNN prefers, with bias, activations and residual
// adds as post-ops, run back to back on data already in those formats (reorders
// excluded, as in bench/conv_bench.cpp's main columns).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace cnv::bench {

struct OnednnConv {
  enum class PostOp { Relu, Relu6, LeakyRelu, Sigmoid, Tanh, Sum };
  struct Step {
    PostOp kind;
    float alpha = 0;  // LeakyRelu's slope
  };
  int64_t batch = 1, in = 1, out = 1, width = 1, kernel = 1;
  int64_t stride = 1, dilation = 1, groups = 1, padLeft = 0, padRight = 0;
  bool bias = false;
  std::vector<Step> postOps;
};

struct OnednnTiming {
  double bestSeconds = 0;  // all layers, one after the other
  int runs = 0;
  std::string implementations;  // impl_info_str() of each layer, comma-separated
};

// Creates the primitives (weights reordered once, untimed) and times the layers for
// about `seconds` at `threads` threads. Throws std::runtime_error with oneDNN's message
// if a layer cannot be created or run.
OnednnTiming timeOnednn(const std::vector<OnednnConv>& layers, int threads, double seconds);

}  // namespace cnv::bench
