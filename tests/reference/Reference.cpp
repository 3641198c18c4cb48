#include "tests/reference/Reference.h"

#include <cmath>
#include <stdexcept>

namespace cnv::reference {

static int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

std::pair<int64_t, int64_t> namedPadding(const std::string& rule, int64_t width, int64_t kernel,
                                         int64_t stride, int64_t dilation) {
  int64_t effective = dilation * (kernel - 1) + 1;
  if (rule == "valid") return {0, 0};
  if (rule == "causal") return {effective - 1, 0};
  if (rule == "same" || rule == "same_lower") {
    int64_t total = std::max<int64_t>((ceilDiv(width, stride) - 1) * stride + effective - width, 0);
    int64_t small = total / 2, large = total - total / 2;
    return rule == "same" ? std::make_pair(small, large) : std::make_pair(large, small);
  }
  throw std::runtime_error("reference: unknown padding rule " + rule);
}

// Index into x for padded position p, or -1 for a zero.
static int64_t sourceIndex(int64_t p, int64_t width, const std::string& mode) {
  if (p >= 0 && p < width) return p;
  if (mode == "zeros") return -1;
  if (mode == "replicate") return p < 0 ? 0 : width - 1;
  if (mode == "reflect") return p < 0 ? -p : 2 * (width - 1) - p;
  if (mode == "circular") return ((p % width) + width) % width;
  throw std::runtime_error("reference: unknown padding mode " + mode);
}

Array conv1d(const Array& x, const std::vector<double>& weight, int64_t outChannels, int64_t kernel,
             const std::vector<double>& bias, const ConvSpec& spec) {
  const int64_t inPerGroup = x.channels / spec.groups;
  const int64_t outPerGroup = outChannels / spec.groups;
  const int64_t padded = x.width + spec.padLeft + spec.padRight;
  const int64_t effective = spec.dilation * (kernel - 1) + 1;
  const int64_t outWidth = (padded - effective) / spec.stride + 1;
  if (padded < effective) throw std::runtime_error("reference: width too short for the kernel");
  Array y(x.batch, outChannels, outWidth);
  for (int64_t n = 0; n < x.batch; ++n)
    for (int64_t o = 0; o < outChannels; ++o) {
      const int64_t group = o / outPerGroup;
      for (int64_t w = 0; w < outWidth; ++w) {
        double sum = 0;
        for (int64_t i = 0; i < inPerGroup; ++i)
          for (int64_t k = 0; k < kernel; ++k) {
            int64_t p = w * spec.stride + k * spec.dilation - spec.padLeft;
            int64_t source = sourceIndex(p, x.width, spec.mode);
            if (source < 0) continue;
            sum +=
                x.at(n, group * inPerGroup + i, source) * weight[(o * inPerGroup + i) * kernel + k];
          }
        y.at(n, o, w) = sum + (bias.empty() ? 0.0 : bias[o]);
      }
    }
  return y;
}

double activation(const std::string& op, double v, double alpha) {
  if (op == "relu") return v < 0 ? 0 : v;
  if (op == "relu6") return std::min(std::max(v, 0.0), 6.0);
  if (op == "leaky_relu") return v < 0 ? alpha * v : v;
  if (op == "sigmoid") return 1.0 / (1.0 + std::exp(-v));
  if (op == "tanh") return std::tanh(v);
  throw std::runtime_error("reference: unknown activation " + op);
}

Array fromLayout(const TensorView& view, const std::string& layout) {
  if (view.shape.size() != 3) throw std::runtime_error("reference: activation must be rank 3");
  bool nwc = layout == "NWC";
  Array a(view.shape[0], nwc ? view.shape[2] : view.shape[1], nwc ? view.shape[1] : view.shape[2]);
  for (int64_t n = 0; n < a.batch; ++n)
    for (int64_t c = 0; c < a.channels; ++c)
      for (int64_t w = 0; w < a.width; ++w)
        a.at(n, c, w) = nwc ? view.data[(n * a.width + w) * a.channels + c]
                            : view.data[(n * a.channels + c) * a.width + w];
  return a;
}

Tensor toLayout(const Array& a, const std::string& layout) {
  bool nwc = layout == "NWC";
  Tensor t(nwc ? std::vector<int64_t>{a.batch, a.width, a.channels}
               : std::vector<int64_t>{a.batch, a.channels, a.width});
  for (int64_t n = 0; n < a.batch; ++n)
    for (int64_t c = 0; c < a.channels; ++c)
      for (int64_t w = 0; w < a.width; ++w)
        t.data()[nwc ? (n * a.width + w) * a.channels + c : (n * a.channels + c) * a.width + w] =
            static_cast<float>(a.at(n, c, w));
  return t;
}

std::vector<double> weightToOIW(const TensorView& view, const std::string& layout) {
  bool wio = layout == "WIO";
  int64_t K = wio ? view.shape[0] : view.shape[2], I = view.shape[1];
  int64_t O = wio ? view.shape[2] : view.shape[0];
  std::vector<double> w(O * I * K);
  for (int64_t o = 0; o < O; ++o)
    for (int64_t i = 0; i < I; ++i)
      for (int64_t k = 0; k < K; ++k)
        w[(o * I + i) * K + k] =
            wio ? view.data[(k * I + i) * O + o] : view.data[(o * I + i) * K + k];
  return w;
}

namespace {

struct Param {
  TensorView view;
  std::string layout;
};

class Interpreter {
 public:
  Interpreter(const std::map<std::string, TensorView>& inputs,
              const std::map<std::string, TensorView>& params)
      : inputs_(inputs), params_(params) {}

  std::map<std::string, Tensor> run(const ast::Model& model) {
    std::string firstLayout;
    std::map<std::string, Tensor> outputs;
    for (const ast::Statement& s : model.statements) {
      if (auto* d = std::get_if<ast::TensorDecl>(&s)) {
        if (d->kind == ast::TensorDecl::Kind::Input) {
          if (firstLayout.empty()) firstLayout = d->layout->text;
          values_[d->name.text] = fromLayout(inputs_.at(d->name.text), d->layout->text);
        } else {
          paramsByName_[d->name.text] = {params_.at(d->name.text),
                                         d->layout ? d->layout->text : ""};
        }
      } else if (auto* a = std::get_if<ast::Assignment>(&s)) {
        values_[a->target.text] = eval(a->value);
      } else {
        const auto& o = std::get<ast::OutputStmt>(s);
        outputs[o.name.text] =
            toLayout(values_.at(o.name.text), o.layout ? o.layout->text : firstLayout);
      }
    }
    return outputs;
  }

 private:
  Array eval(const ast::Expr& e) {
    if (e.kind == ast::Expr::Kind::Name) return values_.at(e.name);
    if (e.name == "conv1d") return evalConv(e);
    if (e.name == "add") {
      Array a = eval(e.args[0]);
      Array b = eval(e.args[1]);
      if (a.batch != b.batch || a.channels != b.channels || a.width != b.width)
        throw std::runtime_error("reference: add shape mismatch");
      for (size_t i = 0; i < a.data.size(); ++i) a.data[i] += b.data[i];
      return a;
    }
    double alpha = 0.01;
    for (const auto& k : e.keywordArgs)
      if (k.key.text == "alpha") alpha = static_cast<float>(k.value.floatValue);
    Array a = eval(e.args[0]);
    for (double& v : a.data) v = activation(e.name, v, alpha);
    return a;
  }

  Array evalConv(const ast::Expr& e) {
    Array x = eval(e.args[0]);
    const Param& w = paramsByName_.at(e.args[1].name);
    std::vector<double> weight = weightToOIW(w.view, w.layout);
    int64_t K = w.layout == "WIO" ? w.view.shape[0] : w.view.shape[2];
    int64_t O = w.layout == "WIO" ? w.view.shape[2] : w.view.shape[0];
    std::vector<double> bias;
    if (e.args.size() == 3) {
      const Param& b = paramsByName_.at(e.args[2].name);
      bias.assign(b.view.data, b.view.data + O);
    }
    ConvSpec spec;
    std::string rule = "valid";
    bool explicitPad = false;
    for (const auto& k : e.keywordArgs) {
      const ast::AttrValue& v = k.value;
      if (k.key.text == "stride") spec.stride = v.intValue;
      if (k.key.text == "dilation") spec.dilation = v.intValue;
      if (k.key.text == "groups") spec.groups = v.intValue;
      if (k.key.text == "padding_mode") spec.mode = v.name;
      if (k.key.text == "padding") {
        if (v.kind == ast::AttrValue::Kind::Name) {
          rule = v.name;
        } else if (v.kind == ast::AttrValue::Kind::Int) {
          spec.padLeft = spec.padRight = v.intValue;
          explicitPad = true;
        } else {
          spec.padLeft = v.elements.at(0).intValue;
          spec.padRight = v.elements.at(1).intValue;
          explicitPad = true;
        }
      }
    }
    if (!explicitPad)
      std::tie(spec.padLeft, spec.padRight) =
          namedPadding(rule, x.width, K, spec.stride, spec.dilation);
    return conv1d(x, weight, O, K, bias, spec);
  }

  const std::map<std::string, TensorView>& inputs_;
  const std::map<std::string, TensorView>& params_;
  std::map<std::string, Array> values_;
  std::map<std::string, Param> paramsByName_;
};

}  // namespace

std::map<std::string, Tensor> runModel(const ast::Model& model,
                                       const std::map<std::string, TensorView>& inputs,
                                       const std::map<std::string, TensorView>& params) {
  return Interpreter(inputs, params).run(model);
}

}  // namespace cnv::reference
