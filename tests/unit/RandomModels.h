// Random models for the agreement tests: single convs with every attribute drawn from
// given ranges, and multi-layer pipelines. Seeded: one seed, one model; each model
// comes with symbol values (N, L) it is valid for.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace cnv::test {

struct RandomModel {
  std::string source;
  std::map<std::string, int64_t> symbols;
  // Further bindings the same model is valid for (pipelines with a symbolic width: the
  // least width every layer accepts, often 1 or the first conv's kernel extent, and
  // another drawn one), to run the compiled model at too.
  std::vector<std::map<std::string, int64_t>> moreSymbols = {};
};

// The ranges a random conv is drawn from. The defaults are small shapes that reach
// every attribute; tileFilling() reaches the kernels' register tiles and unchecked
// interiors.
struct ConvRanges {
  std::vector<int> groups = {1, 1, 1, 2, 3, 4};
  int maxChannelsPerGroup = 4;
  int depthwiseOneIn = 6;  // one conv in this many is depthwise
  int maxDepthwiseChannels = 6, maxMultiplier = 2;
  int maxKernel = 6, maxDilation = 3;
  int stridedOneIn = 1, maxStride = 3;  // one conv in stridedOneIn has a stride above 1
  int maxExtraWidth = 12;               // the width exceeds the least it can be by 0 to this
  int minBatch = 0, maxBatch = 3;
  bool residuals = false;  // add(conv, r) where the shapes allow it
  // One model in this many also outputs an activation of the conv's result, which
  // then stays a standalone elementwise op (0: never).
  int mapOutputOneIn = 0;

  static ConvRanges tileFilling() {
    ConvRanges r;
    r.groups = {1};
    r.maxChannelsPerGroup = 40;
    r.depthwiseOneIn = 4;
    r.maxDepthwiseChannels = 24;
    r.maxMultiplier = 3;
    r.maxKernel = 9;
    r.maxDilation = 4;
    r.stridedOneIn = 4;
    r.maxStride = 5;  // 5: the gathering copy
    r.maxExtraWidth = 400;
    r.minBatch = 1;
    r.residuals = true;
    return r;
  }
};

// What a random pipeline is drawn from. Widths are often at the edges (1, a few
// positions, a conv's kernel extent), channel counts often off the vector widths (1, 3,
// 17, 31, 33); every pipeline has a conv.
struct PipelineRanges {
  // Relative weights of 1, 2, 3, ... layers.
  std::vector<int> layerWeights = {8, 3, 1, 1};
  // Relative weights of relu, relu6, leaky_relu, sigmoid and tanh. Fused into a conv,
  // sigmoid and tanh call expf and tanhf for each lane and make the kernel several
  // times slower to compile: drawn less often, they are still in thousands of kernels
  // a run.
  std::vector<int> activationWeights = {4, 4, 4, 1, 1};
  // The input's layout and the last output's; drawn when unset.
  std::optional<bool> inputNcw = {}, outputNcw = {};
};

class RandomModelGenerator {
 public:
  explicit RandomModelGenerator(uint32_t seed) : random_(seed) {}

  // One conv1d (bias, activation, padding rule and mode, stride, dilation, groups,
  // weight layout drawn) from an input in the given layout (drawn when unset) to an
  // output in the given layout. Widths are symbolic (L) when `symbolicWidth`, else
  // drawn at random.
  RandomModel conv(const ConvRanges& ranges, std::optional<bool> inputNcw = {},
                   std::optional<bool> outputNcw = {}, std::optional<bool> symbolicWidth = {});

  // Chains of convs with every attribute, activations, residual adds, copies, nested
  // calls and several outputs in mixed layouts.
  RandomModel pipeline(const PipelineRanges& ranges = {});

 private:
  int pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(random_); }
  // An index into `weights`, each drawn with its weight's share.
  int pickWeighted(const std::vector<int>& weights);
  std::string fresh() { return "v" + std::to_string(counter_++); }
  // Forgets the previous model's text and state (the random stream goes on).
  void startModel();

  struct Padding {
    std::string text;  // as written in the model
    // The pads it gives (named rules: a bound until resolved for a width).
    int64_t left = 0, right = 0;
    bool named = false;
  };
  // (Named rules: their pads are below the kernel's effective width E; the bound
  // E − 1 is given until they are resolved for a width.)
  Padding pickPadding(int effective);
  std::string pickMode();
  std::string activationCall(const std::string& inner);
  std::string declareWeight(int outChannels, int inPerGroup, int kernel);
  std::string maybeBias(int outChannels);

  // A channel count: now and then one off the vector widths, else 1 to `most`.
  int pickChannels(int most);

  // A conv of the pipeline's chain, as far as the widths it accepts go.
  struct ChainConv {
    int kernel = 1, stride = 1, dilation = 1;
    Padding padding;
    std::string mode;
  };
  // The conv's output width for an input `width`, or 0 when it does not accept it
  // (valid needs width + pads >= the kernel extent; reflect pads < width; circular
  // pads <= width).
  static int64_t outputWidth(const ChainConv& conv, int64_t width);
  // Whether every conv of the chain accepts an input of `width`.
  bool chainAccepts(int64_t width) const;

  // Pipeline steps on the current value.
  void addActivation();
  void addCopy();
  void addConv(bool nested);
  void addResidualBlock();
  void addOutput(const std::string& value, std::optional<bool> ncw = {});

  std::mt19937 random_;
  int counter_ = 0;
  std::string params_, body_;
  // The pipeline's current value, its channels and width, and its outputs so far.
  std::string current_;
  int channels_ = 0;
  int64_t width_ = 0;
  std::vector<std::string> outputs_;
  std::vector<ChainConv> chain_;
  std::vector<int> activationWeights_ = {1, 1, 1, 1, 1};
};

}  // namespace cnv::test
