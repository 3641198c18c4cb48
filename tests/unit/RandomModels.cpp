#include "tests/unit/RandomModels.h"

#include <fmt/format.h>

#include <algorithm>

#include "tests/reference/Reference.h"

namespace cnv::test {

void RandomModelGenerator::startModel() {
  counter_ = 0;
  params_.clear();
  body_.clear();
  current_.clear();
  channels_ = 0;
  width_ = 0;
  outputs_.clear();
  chain_.clear();
  activationWeights_ = {1, 1, 1, 1, 1};
}

RandomModelGenerator::Padding RandomModelGenerator::pickPadding(int effective) {
  Padding p;
  switch (pick(0, 5)) {
    case 0:
      p.text = "valid";
      return p;
    case 1:
    case 2:
    case 3: {
      // A named rule pads less than the kernel's effective width on either side.
      p.text = std::vector<std::string>{"same", "same_lower", "causal"}[pick(0, 2)];
      p.left = p.right = effective - 1;
      p.named = true;
      return p;
    }
    case 4:
      p.left = p.right = pick(0, std::max(4, effective));
      p.text = std::to_string(p.left);
      return p;
    default:
      p.left = pick(0, std::max(4, effective));
      p.right = pick(0, std::max(4, effective));
      p.text = fmt::format("({}, {})", p.left, p.right);
      return p;
  }
}

std::string RandomModelGenerator::pickMode() {
  return std::vector<std::string>{"zeros", "zeros", "reflect", "replicate", "circular"}[pick(0, 4)];
}

int RandomModelGenerator::pickWeighted(const std::vector<int>& weights) {
  int total = 0;
  for (int weight : weights) total += weight;
  int draw = pick(0, total - 1), index = 0;
  while (draw >= weights[index]) draw -= weights[index++];
  return index;
}

std::string RandomModelGenerator::activationCall(const std::string& inner) {
  switch (pickWeighted(activationWeights_)) {
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

std::string RandomModelGenerator::declareWeight(int outChannels, int inPerGroup, int kernel) {
  std::string w = fmt::format("w{}", counter_++);
  if (pick(0, 1))
    params_ += fmt::format("  param {} : f32[{}, {}, {}] layout WIO\n", w, kernel, inPerGroup,
                           outChannels);
  else
    params_ += fmt::format("  param {} : f32[{}, {}, {}] layout OIW\n", w, outChannels, inPerGroup,
                           kernel);
  return w;
}

std::string RandomModelGenerator::maybeBias(int outChannels) {
  if (pick(0, 1)) return "";
  std::string b = fmt::format("b{}", counter_++);
  params_ += fmt::format("  param {} : f32[{}]\n", b, outChannels);
  return ", " + b;
}

RandomModel RandomModelGenerator::conv(const ConvRanges& r, std::optional<bool> inputNcw,
                                       std::optional<bool> outputNcw,
                                       std::optional<bool> symbolicWidth) {
  startModel();
  int groups = r.groups[pick(0, static_cast<int>(r.groups.size()) - 1)];
  int inChannels = groups * pick(1, r.maxChannelsPerGroup);
  int outChannels = groups * pick(1, r.maxChannelsPerGroup);
  if (pick(0, r.depthwiseOneIn - 1) == 0) {
    inChannels = groups = pick(1, r.maxDepthwiseChannels);
    outChannels = inChannels * pick(1, r.maxMultiplier);
  }
  const int kernel = pick(1, r.maxKernel), dilation = pick(1, r.maxDilation);
  const int stride = r.stridedOneIn <= 1                ? pick(1, r.maxStride)
                     : pick(0, r.stridedOneIn - 1) == 0 ? pick(2, r.maxStride)
                                                        : 1;
  const int effective = dilation * (kernel - 1) + 1;
  const Padding padding = pickPadding(effective);
  const std::string mode = pickMode();
  // valid needs L ≥ E; reflect needs L > pad; circular L ≥ pad.
  const int64_t minWidth = std::max<int64_t>(effective, std::max(padding.left, padding.right) + 1);
  // Long widths fill tiles; now and then a short one leaves only borders and tails.
  const int extra =
      r.maxExtraWidth > 20 && pick(0, 3) == 0 ? pick(0, 20) : pick(0, r.maxExtraWidth);
  const int64_t width = minWidth + extra;
  const bool inNcw = inputNcw ? *inputNcw : pick(0, 1);
  const bool outNcw = outputNcw ? *outputNcw : pick(0, 1);
  const bool symbolic = symbolicWidth ? *symbolicWidth : pick(0, 1);
  const std::string W = symbolic ? "L" : std::to_string(width);
  auto dims = [&](bool ncw, int channels) {
    return ncw ? fmt::format("N, {}, {}", channels, W) : fmt::format("N, {}, {}", W, channels);
  };
  auto layout = [](bool ncw) { return ncw ? "NCW" : "NWC"; };

  std::string inputs =
      fmt::format("  input x : f32[{}] layout {}\n", dims(inNcw, inChannels), layout(inNcw));
  const std::string w = declareWeight(outChannels, inChannels / groups, kernel);
  std::string body =
      fmt::format("conv1d(x, {}{}, stride={}, dilation={}, groups={}, padding={}, padding_mode={})",
                  w, maybeBias(outChannels), stride, dilation, groups, padding.text, mode);
  // A residual needs the conv's output shape: a named rule at stride 1 keeps the width.
  if (r.residuals && padding.named && stride == 1 && pick(0, 1)) {
    const bool residualNcw = pick(0, 1);
    inputs += fmt::format("  input r : f32[{}] layout {}\n", dims(residualNcw, outChannels),
                          layout(residualNcw));
    body = "add(" + body + ", r)";
  }
  if (pick(0, 5) != 0) body = activationCall(body);
  body_ = fmt::format("  y = {}\n  output y layout {}\n", body, layout(outNcw));
  if (r.mapOutputOneIn > 0 && pick(0, r.mapOutputOneIn - 1) == 0)
    body_ +=
        fmt::format("  z = {}\n  output z layout {}\n", activationCall("y"), layout(pick(0, 1)));
  return {"model random {\n" + inputs + params_ + body_ + "}\n",
          {{"N", pick(r.minBatch, r.maxBatch)}, {"L", width}}};
}

namespace {

// Channel counts off every vector width (4, 8 and 16 floats): a lone channel, less than
// a vector, and one more or less than whole vectors.
const std::vector<int> kOffVectorChannels = {1, 3, 17, 31, 33};

}  // namespace

int RandomModelGenerator::pickChannels(int most) {
  if (pick(0, 3) == 0)
    return kOffVectorChannels[pick(0, static_cast<int>(kOffVectorChannels.size()) - 1)];
  return pick(1, most);
}

int64_t RandomModelGenerator::outputWidth(const ChainConv& conv, int64_t width) {
  int64_t left = conv.padding.left, right = conv.padding.right;
  if (conv.padding.named)
    std::tie(left, right) = cnv::reference::namedPadding(conv.padding.text, width, conv.kernel,
                                                         conv.stride, conv.dilation);
  const int64_t effective = conv.dilation * (conv.kernel - 1) + 1;
  const int64_t maxPad = std::max(left, right);
  const bool modeFits = conv.mode == "zeros" || conv.mode == "replicate" ||
                        (conv.mode == "reflect" && maxPad < width) ||
                        (conv.mode == "circular" && maxPad <= width);
  if (width + left + right < effective || !modeFits) return 0;
  return (width + left + right - effective) / conv.stride + 1;
}

bool RandomModelGenerator::chainAccepts(int64_t width) const {
  for (const ChainConv& conv : chain_)
    if ((width = outputWidth(conv, width)) == 0) return false;
  return true;
}

RandomModel RandomModelGenerator::pipeline(const PipelineRanges& r) {
  startModel();
  // Widths: 1 now and then, often a few positions (all border, or one kernel extent),
  // else longer.
  const int widthKind = pick(0, 7);
  width_ = widthKind == 0 ? 1 : widthKind <= 3 ? pick(2, 12) : pick(13, 40);
  const int64_t inputWidth = width_;
  channels_ = pickChannels(6);
  const bool symbolic = pick(0, 1);
  const std::string W = symbolic ? "L" : std::to_string(width_);
  const bool ncw = r.inputNcw ? *r.inputNcw : pick(0, 1);
  body_ +=
      fmt::format("  input x : f32[N, {}] layout {}\n",
                  ncw ? fmt::format("{}, {}", channels_, W) : fmt::format("{}, {}", W, channels_),
                  ncw ? "NCW" : "NWC");
  current_ = "x";
  activationWeights_ = r.activationWeights;
  const int layers = 1 + pickWeighted(r.layerWeights);
  bool convs = false;
  for (int i = 0; i < layers; ++i) {
    // 0 activation, 1 residual block, 2 copy, 3 to 6 conv. Every pipeline has a conv:
    // the last layer is a residual block or a conv when none came before.
    int kind = pick(0, 6);
    if (i + 1 == layers && !convs && (kind == 0 || kind == 2)) kind = kind == 0 ? 1 : 3;
    switch (kind) {
      case 0:
        addActivation();
        break;
      case 1:
        addResidualBlock();
        convs = true;
        break;
      case 2:
        addCopy();
        break;
      default:
        addConv(pick(0, 2) == 0);
        convs = true;
        break;
    }
    if (i + 1 < layers && pick(0, 5) == 0) addOutput(current_);
  }
  addOutput(current_, r.outputNcw);
  RandomModel model{"model pipeline {\n" + params_ + body_ + "}\n",
                    {{"N", pick(0, 3)}, {"L", inputWidth}}};
  if (symbolic) {
    // The same compiled model at the least width it accepts, and at another.
    std::vector<int64_t> widths;
    for (int64_t w = 1; w < inputWidth; ++w)
      if (chainAccepts(w)) {
        widths.push_back(w);
        break;
      }
    for (int attempt = 0; attempt < 4; ++attempt)
      if (const int64_t w = pick(1, 64); w != inputWidth && chainAccepts(w)) {
        if (std::find(widths.begin(), widths.end(), w) == widths.end()) widths.push_back(w);
        break;
      }
    for (int64_t w : widths) model.moreSymbols.push_back({{"N", pick(0, 3)}, {"L", w}});
  }
  return model;
}

void RandomModelGenerator::addActivation() {
  std::string name = fresh();
  body_ += fmt::format("  {} = {}\n", name, activationCall(current_));
  current_ = name;
}

void RandomModelGenerator::addCopy() {
  std::string name = fresh();
  body_ += fmt::format("  {} = {}\n", name, current_);
  current_ = name;
}

// A conv with random attributes that fits the current width, possibly wrapped in an
// activation (a nested call). Now and then its kernel extent is the width with its
// pads: one output position.
void RandomModelGenerator::addConv(bool nested) {
  std::vector<int> divisors;
  for (int g = 1; g <= channels_; ++g)
    if (channels_ % g == 0) divisors.push_back(g);
  // A few draws for a conv that accepts the width; else an activation keeps the chain
  // going.
  for (int attempt = 0; attempt < 4; ++attempt) {
    int groups = 1;
    if (pick(0, 2) == 0) groups = divisors[pick(0, static_cast<int>(divisors.size()) - 1)];
    int outChannels = groups * pick(1, std::max(1, 8 / groups));
    if (pick(0, 4) == 0) {
      std::vector<int> offVector;
      for (int c : kOffVectorChannels)
        if (c % groups == 0) offVector.push_back(c);
      if (!offVector.empty())
        outChannels = offVector[pick(0, static_cast<int>(offVector.size()) - 1)];
    }
    ChainConv conv;
    conv.kernel = pick(1, 5);
    conv.stride = pick(1, 3);
    conv.dilation = pick(1, 2);
    conv.mode = pickMode();
    conv.padding = pickPadding(conv.dilation * (conv.kernel - 1) + 1);
    if (pick(0, 3) == 0) {
      // Kernel extents (dilation up to 3) that the width and explicit pads of up to 4
      // make up exactly.
      struct Fit {
        int kernel, dilation, left, right;
      };
      std::vector<Fit> fits;
      for (int k = 1; k <= 5; ++k)
        for (int d = 1; d <= 3; ++d)
          for (int left = 0; left <= 4; ++left)
            for (int right = 0; left + right <= 4; ++right)
              if (d * (k - 1) + 1 == width_ + left + right) fits.push_back({k, d, left, right});
      if (!fits.empty()) {
        const Fit fit = fits[pick(0, static_cast<int>(fits.size()) - 1)];
        conv.kernel = fit.kernel;
        conv.dilation = fit.dilation;
        conv.padding = Padding();
        conv.padding.left = fit.left;
        conv.padding.right = fit.right;
        if (fit.left != fit.right)
          conv.padding.text = fmt::format("({}, {})", fit.left, fit.right);
        else if (fit.left == 0 && pick(0, 1))
          conv.padding.text = "valid";
        else
          conv.padding.text = std::to_string(fit.left);
      }
    }
    const int64_t outWidth = outputWidth(conv, width_);
    if (outWidth == 0) continue;
    chain_.push_back(conv);
    const std::string w = declareWeight(outChannels, channels_ / groups, conv.kernel);
    const std::string call = fmt::format(
        "conv1d({}, {}{}, stride={}, dilation={}, groups={}, padding={}, padding_mode={})",
        current_, w, maybeBias(outChannels), conv.stride, conv.dilation, groups, conv.padding.text,
        conv.mode);
    const std::string name = fresh();
    body_ += fmt::format("  {} = {}\n", name, nested ? activationCall(call) : call);
    current_ = name;
    channels_ = outChannels;
    width_ = outWidth;
    return;
  }
  addActivation();
}

// y = add(act(conv(x)), x) with a same, stride-1 conv that keeps the shape.
void RandomModelGenerator::addResidualBlock() {
  const int kernel = 2 * pick(0, 2) + 1;
  const std::string w = declareWeight(channels_, channels_, kernel);
  const std::string conv =
      fmt::format("conv1d({}, {}{}, padding=same)", current_, w, maybeBias(channels_));
  const std::string name = fresh();
  const bool convFirst = pick(0, 1);
  const std::string branch = pick(0, 1) ? activationCall(conv) : conv;
  body_ += fmt::format("  {} = add({}, {})\n", name, convFirst ? branch : current_,
                       convFirst ? current_ : branch);
  current_ = name;
}

void RandomModelGenerator::addOutput(const std::string& value, std::optional<bool> ncw) {
  if (value == "x" && pick(0, 1)) return;
  outputs_.push_back(value);
  const std::string layout =
      ncw ? (*ncw ? " layout NCW" : " layout NWC")
          : std::vector<std::string>{"", " layout NWC", " layout NCW"}[pick(0, 2)];
  body_ += fmt::format("  output {}{}\n", value, layout);
}

}  // namespace cnv::test
