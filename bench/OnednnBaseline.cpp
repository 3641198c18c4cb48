#include "OnednnBaseline.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <dnnl.hpp>
#include <stdexcept>

namespace cnv::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct Layer {
  dnnl::convolution_forward primitive;
  dnnl::memory src, weights, bias, dst;
};

dnnl::post_ops postOpsOf(const OnednnConv& conv) {
  using dnnl::algorithm;
  dnnl::post_ops ops;
  for (const OnednnConv::Step& step : conv.postOps) {
    switch (step.kind) {
      case OnednnConv::PostOp::Relu:
        ops.append_eltwise(1.0f, algorithm::eltwise_relu, 0.0f, 0.0f);
        break;
      case OnednnConv::PostOp::Relu6:
        ops.append_eltwise(1.0f, algorithm::eltwise_clip, 0.0f, 6.0f);
        break;
      case OnednnConv::PostOp::LeakyRelu:
        ops.append_eltwise(1.0f, algorithm::eltwise_relu, step.alpha, 0.0f);
        break;
      case OnednnConv::PostOp::Sigmoid:
        ops.append_eltwise(1.0f, algorithm::eltwise_logistic, 0.0f, 0.0f);
        break;
      case OnednnConv::PostOp::Tanh:
        ops.append_eltwise(1.0f, algorithm::eltwise_tanh, 0.0f, 0.0f);
        break;
      case OnednnConv::PostOp::Sum:
        // A residual add: oneDNN adds what dst holds, so the residual would be copied
        // there first; that copy is not timed.
        ops.append_sum(1.0f);
        break;
    }
  }
  return ops;
}

Layer createLayer(const OnednnConv& c, const dnnl::engine& engine, dnnl::stream& stream,
                  std::string& implementations) {
  using dnnl::memory;
  using tag = memory::format_tag;
  using dt = memory::data_type;
  const int64_t effective = c.dilation * (c.kernel - 1) + 1;
  const int64_t outWidth = (c.width + c.padLeft + c.padRight - effective) / c.stride + 1;
  memory::dims srcDims{c.batch, c.in, c.width}, dstDims{c.batch, c.out, outWidth};
  memory::dims weightDims =
      c.groups == 1 ? memory::dims{c.out, c.in, c.kernel}
                    : memory::dims{c.groups, c.out / c.groups, c.in / c.groups, c.kernel};
  memory::desc srcAny(srcDims, dt::f32, tag::any), weightsAny(weightDims, dt::f32, tag::any),
      dstAny(dstDims, dt::f32, tag::any), biasDesc({c.out}, dt::f32, tag::x);
  auto desc = c.bias ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference,
                                                       dnnl::algorithm::convolution_direct, srcAny,
                                                       weightsAny, biasDesc, dstAny, {c.stride},
                                                       {c.dilation - 1}, {c.padLeft}, {c.padRight})
                     : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference,
                                                       dnnl::algorithm::convolution_direct, srcAny,
                                                       weightsAny, dstAny, {c.stride},
                                                       {c.dilation - 1}, {c.padLeft}, {c.padRight});
  dnnl::primitive_attr attributes;
  attributes.set_post_ops(postOpsOf(c));
  dnnl::convolution_forward::primitive_desc pd(desc, attributes, engine);
  if (!implementations.empty()) implementations += ", ";
  implementations += pd.impl_info_str();

  // Data values do not matter for timing; weights go through a reorder, as they would.
  Layer layer{dnnl::convolution_forward(pd), memory(pd.src_desc(), engine),
              memory(pd.weights_desc(), engine), memory(biasDesc, engine),
              memory(pd.dst_desc(), engine)};
  memory plainWeights({weightDims, dt::f32, c.groups == 1 ? tag::oiw : tag::goiw}, engine);
  std::fill_n(static_cast<float*>(plainWeights.get_data_handle()),
              plainWeights.get_desc().get_size() / sizeof(float), 0.01f);
  dnnl::reorder(plainWeights, layer.weights).execute(stream, plainWeights, layer.weights);
  for (memory* m : {&layer.src, &layer.bias, &layer.dst})
    std::fill_n(static_cast<float*>(m->get_data_handle()), m->get_desc().get_size() / sizeof(float),
                0.5f);
  return layer;
}

}  // namespace

OnednnTiming timeOnednn(const std::vector<OnednnConv>& convs, int threads, double seconds) {
  OnednnTiming timing;
  try {
    omp_set_num_threads(threads);
    dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    dnnl::stream stream(engine);
    std::vector<Layer> layers;
    for (const OnednnConv& c : convs)
      layers.push_back(createLayer(c, engine, stream, timing.implementations));
    stream.wait();
    auto runAll = [&] {
      for (Layer& l : layers)
        l.primitive.execute(stream, {{DNNL_ARG_SRC, l.src},
                                     {DNNL_ARG_WEIGHTS, l.weights},
                                     {DNNL_ARG_BIAS, l.bias},
                                     {DNNL_ARG_DST, l.dst}});
      stream.wait();
    };
    runAll();  // warm-up
    timing.bestSeconds = 1e300;
    const auto start = Clock::now();
    while (timing.runs < 3 ||
           (std::chrono::duration<double>(Clock::now() - start).count() < seconds &&
            timing.runs < 100000)) {
      const auto t = Clock::now();
      runAll();
      timing.bestSeconds =
          std::min(timing.bestSeconds, std::chrono::duration<double>(Clock::now() - t).count());
      ++timing.runs;
    }
  } catch (const dnnl::error& e) {
    throw std::runtime_error(std::string("oneDNN: ") + e.what());
  }
  return timing;
}

}  // namespace cnv::bench
