// Randomized multi-layer pipelines through the JIT against the reference interpreter:
// chains of convs with every attribute, activations, residual adds, copies, nested
// calls and several outputs in mixed layouts. Seeded; the seed and the model text are
// printed on failure.
#include <fmt/format.h>

#include <catch2/catch.hpp>

#include "tests/reference/Reference.h"
#include "tests/unit/TestSupport.h"

namespace {

class PipelineGenerator {
 public:
  explicit PipelineGenerator(uint32_t seed) : random_(seed) {}

  // A model and the symbol values it is valid for.
  std::pair<std::string, std::map<std::string, int64_t>> generate() {
    width_ = pick(8, 40);
    const int64_t inputWidth = width_;
    channels_ = pick(1, 6);
    bool symbolic = pick(0, 1);
    std::string W = symbolic ? "L" : std::to_string(width_);
    bool nwc = pick(0, 1);
    firstLayout_ = nwc ? "NWC" : "NCW";
    body_ +=
        fmt::format("  input x : f32[N, {}] layout {}\n",
                    nwc ? fmt::format("{}, {}", W, channels_) : fmt::format("{}, {}", channels_, W),
                    firstLayout_);
    current_ = "x";
    int layers = pick(1, 4);
    for (int i = 0; i < layers; ++i) {
      switch (pick(0, 6)) {
        case 0:
          addActivation();
          break;
        case 1:
          addResidualBlock();
          break;
        case 2:
          addCopy();
          break;
        default:
          addConv(pick(0, 2) == 0);
          break;
      }
      if (pick(0, 5) == 0) addOutput(current_);
    }
    if (std::find(outputs_.begin(), outputs_.end(), current_) == outputs_.end())
      addOutput(current_);
    std::string text = "model pipeline {\n" + params_ + body_ + "}\n";
    return {text, {{"N", pick(0, 3)}, {"L", inputWidth}}};
  }

 private:
  int pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(random_); }
  std::string fresh() { return fmt::format("v{}", counter_++); }

  std::string activationCall(const std::string& inner) {
    switch (pick(0, 4)) {
      case 0:
        return "relu(" + inner + ")";
      case 1:
        return "relu6(" + inner + ")";
      case 2:
        return fmt::format("leaky_relu({}, alpha={})", inner, pick(-5, 5) / 10.0);
      case 3:
        return "sigmoid(" + inner + ")";
      default:
        return "tanh(" + inner + ")";
    }
  }

  void addActivation() {
    std::string name = fresh();
    body_ += fmt::format("  {} = {}\n", name, activationCall(current_));
    current_ = name;
  }

  void addCopy() {
    std::string name = fresh();
    body_ += fmt::format("  {} = {}\n", name, current_);
    current_ = name;
  }

  std::string declareWeight(int outChannels, int inPerGroup, int kernel) {
    std::string w = fmt::format("w{}", counter_++);
    if (pick(0, 1))
      params_ += fmt::format("  param {} : f32[{}, {}, {}] layout WIO\n", w, kernel, inPerGroup,
                             outChannels);
    else
      params_ += fmt::format("  param {} : f32[{}, {}, {}] layout OIW\n", w, outChannels,
                             inPerGroup, kernel);
    return w;
  }

  std::string maybeBias(int outChannels) {
    if (pick(0, 1)) return "";
    std::string b = fmt::format("b{}", counter_++);
    params_ += fmt::format("  param {} : f32[{}]\n", b, outChannels);
    return ", " + b;
  }

  // A conv with random attributes that fits the current width, possibly wrapped in an
  // activation (a nested call).
  void addConv(bool nested) {
    int groups = 1;
    std::vector<int> divisors;
    for (int g = 1; g <= channels_; ++g)
      if (channels_ % g == 0) divisors.push_back(g);
    if (pick(0, 2) == 0) groups = divisors[pick(0, static_cast<int>(divisors.size()) - 1)];
    int outChannels = groups * pick(1, std::max(1, 8 / groups));
    int kernel = pick(1, 5), stride = pick(1, 3), dilation = pick(1, 2);
    int effective = dilation * (kernel - 1) + 1;
    std::string mode =
        std::vector<std::string>{"zeros", "zeros", "reflect", "replicate", "circular"}[pick(0, 4)];
    std::string padding;
    int64_t left = 0, right = 0;
    switch (pick(0, 5)) {
      case 0:
        padding = "valid";
        break;
      case 1:
        padding = "same";
        break;
      case 2:
        padding = "same_lower";
        break;
      case 3:
        padding = "causal";
        break;
      case 4:
        left = right = pick(0, 3);
        padding = std::to_string(left);
        break;
      default:
        left = pick(0, 3);
        right = pick(0, 3);
        padding = fmt::format("({}, {})", left, right);
    }
    if (padding != "valid" && left == 0 && right == 0 &&
        padding.find_first_not_of("0123456789(), ") != std::string::npos)
      std::tie(left, right) =
          cnv::reference::namedPadding(padding, width_, kernel, stride, dilation);
    int64_t outWidth = (width_ + left + right - effective) / stride + 1;
    bool modeFits = mode == "zeros" || mode == "replicate" ||
                    (mode == "reflect" && std::max(left, right) < width_) ||
                    (mode == "circular" && std::max(left, right) <= width_);
    if (width_ + left + right < effective || outWidth < 1 || !modeFits) {
      addActivation();  // this conv would not fit; keep the chain going
      return;
    }
    std::string w = declareWeight(outChannels, channels_ / groups, kernel);
    std::string call = fmt::format(
        "conv1d({}, {}{}, stride={}, dilation={}, groups={}, padding={}, padding_mode={})",
        current_, w, maybeBias(outChannels), stride, dilation, groups, padding, mode);
    std::string name = fresh();
    body_ += fmt::format("  {} = {}\n", name, nested ? activationCall(call) : call);
    current_ = name;
    channels_ = outChannels;
    width_ = outWidth;
  }

  // y = add(act(conv(x)), x) with a same, stride-1 conv that keeps the shape.
  void addResidualBlock() {
    int kernel = 2 * pick(0, 2) + 1;
    std::string w = declareWeight(channels_, channels_, kernel);
    std::string conv =
        fmt::format("conv1d({}, {}{}, padding=same)", current_, w, maybeBias(channels_));
    std::string name = fresh();
    bool convFirst = pick(0, 1);
    std::string branch = pick(0, 1) ? activationCall(conv) : conv;
    body_ += fmt::format("  {} = add({}, {})\n", name, convFirst ? branch : current_,
                         convFirst ? current_ : branch);
    current_ = name;
  }

  void addOutput(const std::string& value) {
    if (value == "x" && pick(0, 1)) return;
    outputs_.push_back(value);
    std::string layout = std::vector<std::string>{"", " layout NWC", " layout NCW"}[pick(0, 2)];
    body_ += fmt::format("  output {}{}\n", value, layout);
  }

  std::mt19937 random_;
  int counter_ = 0;
  int64_t width_ = 0;
  int channels_ = 0;
  std::string firstLayout_, current_, params_, body_;
  std::vector<std::string> outputs_;
};

}  // namespace

void checkPipelines(uint32_t baseSeed, int count) {
  for (int i = 0; i < count; ++i) {
    uint32_t seed = baseSeed + i;
    auto [source, symbols] = PipelineGenerator(seed).generate();
    INFO("seed " << seed << ", N=" << symbols["N"] << " L=" << symbols["L"] << "\n" << source);
    auto c = cnv::test::runBoth(source, symbols, seed, 1 + i % 3);
    REQUIRE(c.jit.size() == c.reference.size());
    for (const auto& [name, expected] : c.reference) {
      std::string detail;
      double ratio = cnv::test::toleranceRatio(c.jit.at(name), expected, &detail);
      INFO("output " << name << ": " << detail);
      REQUIRE(ratio <= 1.0);
    }
  }
}

// Four cases of 250 so that ctest can run them in parallel.
TEST_CASE("random pipelines agree with the reference (1/4)", "[correctness][pipeline]") {
  checkPipelines(777000, 250);
}
TEST_CASE("random pipelines agree with the reference (2/4)", "[correctness][pipeline]") {
  checkPipelines(778000, 250);
}
TEST_CASE("random pipelines agree with the reference (3/4)", "[correctness][pipeline]") {
  checkPipelines(779000, 250);
}
TEST_CASE("random pipelines agree with the reference (4/4)", "[correctness][pipeline]") {
  checkPipelines(780000, 250);
}
