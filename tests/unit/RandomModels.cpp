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

std::string RandomModelGenerator::activationCall(const std::string& inner) {
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

RandomModel RandomModelGenerator::pipeline() {
  startModel();
  width_ = pick(8, 40);
  const int64_t inputWidth = width_;
  channels_ = pick(1, 6);
  const bool symbolic = pick(0, 1);
  const std::string W = symbolic ? "L" : std::to_string(width_);
  const bool nwc = pick(0, 1);
  body_ +=
      fmt::format("  input x : f32[N, {}] layout {}\n",
                  nwc ? fmt::format("{}, {}", W, channels_) : fmt::format("{}, {}", channels_, W),
                  nwc ? "NWC" : "NCW");
  current_ = "x";
  const int layers = pick(1, 4);
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
  if (std::find(outputs_.begin(), outputs_.end(), current_) == outputs_.end()) addOutput(current_);
  return {"model pipeline {\n" + params_ + body_ + "}\n", {{"N", pick(0, 3)}, {"L", inputWidth}}};
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
// activation (a nested call).
void RandomModelGenerator::addConv(bool nested) {
  int groups = 1;
  std::vector<int> divisors;
  for (int g = 1; g <= channels_; ++g)
    if (channels_ % g == 0) divisors.push_back(g);
  if (pick(0, 2) == 0) groups = divisors[pick(0, static_cast<int>(divisors.size()) - 1)];
  const int outChannels = groups * pick(1, std::max(1, 8 / groups));
  const int kernel = pick(1, 5), stride = pick(1, 3), dilation = pick(1, 2);
  const int effective = dilation * (kernel - 1) + 1;
  const std::string mode = pickMode();
  Padding padding = pickPadding(effective);
  if (padding.named)
    std::tie(padding.left, padding.right) =
        cnv::reference::namedPadding(padding.text, width_, kernel, stride, dilation);
  const int64_t outWidth = (width_ + padding.left + padding.right - effective) / stride + 1;
  const int64_t maxPad = std::max(padding.left, padding.right);
  const bool modeFits = mode == "zeros" || mode == "replicate" ||
                        (mode == "reflect" && maxPad < width_) ||
                        (mode == "circular" && maxPad <= width_);
  if (width_ + padding.left + padding.right < effective || outWidth < 1 || !modeFits) {
    addActivation();  // this conv would not fit; keep the chain going
    return;
  }
  const std::string w = declareWeight(outChannels, channels_ / groups, kernel);
  const std::string call = fmt::format(
      "conv1d({}, {}{}, stride={}, dilation={}, groups={}, padding={}, padding_mode={})", current_,
      w, maybeBias(outChannels), stride, dilation, groups, padding.text, mode);
  const std::string name = fresh();
  body_ += fmt::format("  {} = {}\n", name, nested ? activationCall(call) : call);
  current_ = name;
  channels_ = outChannels;
  width_ = outWidth;
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

void RandomModelGenerator::addOutput(const std::string& value) {
  if (value == "x" && pick(0, 1)) return;
  outputs_.push_back(value);
  const std::string layout = std::vector<std::string>{"", " layout NWC", " layout NCW"}[pick(0, 2)];
  body_ += fmt::format("  output {}{}\n", value, layout);
}

}  // namespace cnv::test
