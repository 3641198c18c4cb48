// cnv_bench: cnv against oneDNN on a suite of 1-D convolutions (conv + bias + ReLU, f32).
//
//   cnv_bench [--threads-list 1,2] [--only NAME] [--quick] [--symbolic] [--markdown FILE]
//
// For every shape and thread count it times
//   - cnv end to end from the user's layout, PyTorch style (NCW input, OIW weight, NCW
//     output) and TensorFlow style (NWC, WIO, NWC), with Model::runInto into a
//     caller-owned output, as oneDNN writes into its preallocated dst (the GF/s and the
//     ratios); Model::run, which allocates the outputs on every call, in a column of
//     its own; and the compile time (fromSource);
//   - oneDNN convolution_forward with format_tag::any, bias and a fused ReLU post-op:
//     execution alone on data already in its chosen formats ("reorders excluded"), and
//     src reorder from the user's plain layout + conv + dst reorder back ("reorders
//     included", once from NCW and once from NWC); weights reorders are never timed;
//   - the double-precision reference (tests/reference) at one thread on small shapes;
// checks cnv's outputs against oneDNN's, and prints a markdown table. See bench/README.md.
#include <omp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <dnnl.hpp>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cnv/cnv.h"
#include "copy_bandwidth.h"
#include "fma_peak.h"
#include "runtime/src/Tuner.h"
#include "tests/reference/Reference.h"

namespace {

using Clock = std::chrono::steady_clock;

double seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// --- The suite ------------------------------------------------------------------------

struct Shape {
  std::string name;
  int64_t batch, in, out, width, kernel;
  int64_t stride = 1, dilation = 1, groups = 1;
  bool causal = false;  // otherwise 'same'

  int64_t effective() const { return dilation * (kernel - 1) + 1; }
  int64_t outWidth() const {
    return causal ? (width - 1) / stride + 1 : (width + stride - 1) / stride;
  }
  std::pair<int64_t, int64_t> padding() const {
    if (causal) return {effective() - 1, 0};
    int64_t total = std::max<int64_t>((outWidth() - 1) * stride + effective() - width, 0);
    return {total / 2, total - total / 2};
  }
  double flops() const {
    return 2.0 * double(batch) * double(out) * double(outWidth()) * double(in / groups) *
           double(kernel);
  }
  std::string describe() const {
    std::ostringstream s;
    s << name << " (" << batch << ", " << in;
    if (groups == in && groups == out && groups > 1)
      s << " dw";
    else
      s << "→" << out;
    s << ", " << width << ", k" << kernel;
    if (stride != 1) s << ", s" << stride;
    if (dilation != 1) s << ", d" << dilation;
    if (groups != 1) s << ", g" << groups;
    if (causal) s << ", causal";
    s << ")";
    return s.str();
  }
};

std::vector<Shape> suite() {
  std::vector<Shape> s;
  s.push_back({"Wav2Letter", 8, 250, 250, 800, 7});
  s.push_back({"Jasper", 4, 256, 256, 1000, 11});
  s.push_back({"wide", 4, 512, 512, 2048, 3});
  s.push_back({"pointwise", 8, 512, 512, 1000, 1});
  s.push_back({"downsample", 8, 128, 256, 4000, 5, 2});
  s.push_back({"TCN", 16, 64, 64, 4096, 3, 1, 4, 1, true});
  s.push_back({"AtacWorks", 4, 15, 15, 60400, 51, 1, 8});
  s.push_back({"ECG", 32, 32, 32, 4096, 16});
  s.push_back({"first layer", 16, 1, 32, 16000, 16});
  s.push_back({"depthwise", 8, 256, 256, 4096, 15, 1, 1, 256});
  s.push_back({"seed example 1", 100, 1, 5, 10, 3});
  // The regime of frame-level speech stacks: a single-channel front end with a window of
  // hundreds of taps and a hop in the hundreds, then long kernels over hundreds of
  // channels, and wide layers, at widths of 100-200.
  s.push_back({"speech front end", 8, 1, 256, 32000, 400, 160});
  s.push_back({"speech k48", 8, 250, 250, 200, 48});
  s.push_back({"speech k32", 8, 512, 512, 100, 32});
  s.push_back({"speech 2000", 8, 2000, 2000, 100, 1});
  return s;
}

// The shapes also measured as convs that change layout (TensorFlow in, PyTorch out, and
// the reverse), in a table of their own.
bool measuredMixed(const Shape& s) {
  for (const char* name :
       {"Wav2Letter", "Jasper", "pointwise", "downsample", "ECG", "first layer", "speech k48"})
    if (s.name == name) return true;
  return false;
}

// --- Options --------------------------------------------------------------------------

struct Options {
  std::vector<int> threads;
  std::string only;
  bool quick = false;
  bool symbolic = false;
  bool tune = false;
  std::string markdown;
};

[[noreturn]] void usage(const char* argv0, const std::string& problem) {
  std::fprintf(stderr,
               "%s: %s\nusage: %s [--threads-list 1,2] [--only NAME] [--quick] [--symbolic] "
               "[--tune] [--markdown FILE]\n",
               argv0, problem.c_str(), argv0);
  std::exit(2);
}

Options parseOptions(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(argv[0], a + " needs a value");
      return argv[++i];
    };
    if (a == "--threads-list") {
      std::stringstream list(value());
      std::string item;
      while (std::getline(list, item, ',')) {
        char* end = nullptr;
        long t = std::strtol(item.c_str(), &end, 10);
        if (item.empty() || *end || t < 1 || t > 1024)
          usage(argv[0], "bad thread count '" + item + "'");
        o.threads.push_back(int(t));
      }
      if (o.threads.empty()) usage(argv[0], "empty --threads-list");
    } else if (a == "--only") {
      o.only = value();
    } else if (a == "--quick") {
      o.quick = true;
    } else if (a == "--symbolic") {
      o.symbolic = true;
    } else if (a == "--tune") {
      o.tune = true;
    } else if (a == "--markdown") {
      o.markdown = value();
    } else if (a == "-h" || a == "--help") {
      usage(argv[0], "help");
    } else {
      usage(argv[0], "unknown argument '" + a + "'");
    }
  }
  if (o.threads.empty()) {
    int all = int(std::max(1u, std::thread::hardware_concurrency()));
    o.threads = {1};
    if (all > 1) o.threads.push_back(all);
  }
  return o;
}

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// --- Timing ---------------------------------------------------------------------------

struct Budget {
  double minSeconds;  // keep running until this much time has been spent ...
  int minRuns;        // ... and at least this many timed runs,
  double maxSeconds;  // but never plan more than this (slow shapes: fewer runs, at least 1)
};

struct Timing {
  double best = NAN;  // seconds
  int runs = 0;
};

// One warm-up run, then timed runs; the best is reported.
Timing timeRuns(const std::function<void()>& f, const Budget& budget) {
  auto t0 = Clock::now();
  f();
  double warm = seconds(t0, Clock::now());
  int runs = std::max(budget.minRuns, int(std::ceil(budget.minSeconds / std::max(warm, 1e-7))));
  if (warm * runs > budget.maxSeconds) runs = std::max(1, int(budget.maxSeconds / warm));
  runs = std::min(runs, 100000);
  Timing t;
  t.best = INFINITY;
  // The wall-clock cap also holds when runs turn out slower than the warm-up (contention).
  auto start = Clock::now();
  for (int r = 0; r < runs && !(r > 0 && seconds(start, Clock::now()) > budget.maxSeconds); ++r) {
    auto a = Clock::now();
    f();
    t.best = std::min(t.best, seconds(a, Clock::now()));
    ++t.runs;
  }
  return t;
}

// --- Data -----------------------------------------------------------------------------

std::vector<float> randomVector(size_t n, float scale, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-scale, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// [N][C][W] <-> [N][W][C]
std::vector<float> ncwToNwc(const std::vector<float>& x, int64_t n, int64_t c, int64_t w) {
  std::vector<float> y(x.size());
  for (int64_t b = 0; b < n; ++b)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t p = 0; p < w; ++p) y[(b * w + p) * c + ch] = x[(b * c + ch) * w + p];
  return y;
}
std::vector<float> nwcToNcw(const float* x, int64_t n, int64_t c, int64_t w) {
  std::vector<float> y(size_t(n * c * w));
  for (int64_t b = 0; b < n; ++b)
    for (int64_t p = 0; p < w; ++p)
      for (int64_t ch = 0; ch < c; ++ch) y[(b * c + ch) * w + p] = x[(b * w + p) * c + ch];
  return y;
}
// [O][I][K] -> [K][I][O]
std::vector<float> oiwToWio(const std::vector<float>& x, int64_t o, int64_t i, int64_t k) {
  std::vector<float> y(x.size());
  for (int64_t a = 0; a < o; ++a)
    for (int64_t b = 0; b < i; ++b)
      for (int64_t c = 0; c < k; ++c) y[(c * i + b) * o + a] = x[(a * i + b) * k + c];
  return y;
}

struct Compare {
  double maxScaledError = 0;  // max |a - e| / (1 + |e|)
  int64_t bad = 0;            // elements with |a - e| > tol·(1 + |e|)
  int64_t firstBad = -1;
};
Compare compare(const float* actual, const std::vector<double>& expected, double tol) {
  Compare c;
  for (size_t i = 0; i < expected.size(); ++i) {
    double e = expected[i], a = actual[i];
    double scaled = std::fabs(a - e) / (1.0 + std::fabs(e));
    if (!(scaled <= tol)) {  // NaN counts as bad
      if (c.bad++ == 0) c.firstBad = int64_t(i);
      scaled = std::isnan(scaled) ? INFINITY : scaled;
    }
    c.maxScaledError = std::max(c.maxScaledError, scaled);
  }
  return c;
}

// --- cnv --------------------------------------------------------------------------------

// `nwc`: the input (and weight) the TensorFlow way; the output likewise unless `outNwc`
// says otherwise (a conv that changes layout).
std::string cnvSource(const Shape& s, bool nwc, bool symbolic, std::optional<bool> outNwc = {}) {
  std::string n = symbolic ? "N" : std::to_string(s.batch);
  std::string w = symbolic ? "L" : std::to_string(s.width);
  std::ostringstream m;
  m << "model bench {\n";
  if (nwc)
    m << "  input x : f32[" << n << ", " << w << ", " << s.in << "] layout NWC\n"
      << "  param w : f32[" << s.kernel << ", " << s.in / s.groups << ", " << s.out
      << "] layout WIO\n";
  else
    m << "  input x : f32[" << n << ", " << s.in << ", " << w << "] layout NCW\n"
      << "  param w : f32[" << s.out << ", " << s.in / s.groups << ", " << s.kernel
      << "] layout OIW\n";
  m << "  param b : f32[" << s.out << "]\n"
    << "  y = relu(conv1d(x, w, b, stride=" << s.stride << ", dilation=" << s.dilation
    << ", groups=" << s.groups << ", padding=" << (s.causal ? "causal" : "same") << "))\n"
    << "  output y layout " << (outNwc.value_or(nwc) ? "NWC" : "NCW") << "\n}\n";
  return m.str();
}

struct CnvCase {
  bool ok = false;
  std::string error;
  double compileSeconds = NAN;
  // Aligned as oneDNN's own buffers are (cnv::Tensor's are too).
  cnv::AlignedFloats inputData;
  std::vector<float> weightData;
  std::vector<int64_t> inputShape;
  std::unique_ptr<cnv::Model> model;
};

CnvCase prepareCnv(const Shape& s, bool nwc, bool symbolic, const std::vector<float>& xNcw,
                   const std::vector<float>& wOiw, const std::vector<float>& bias,
                   std::optional<bool> outNwc = {}) {
  CnvCase c;
  try {
    std::string source = cnvSource(s, nwc, symbolic, outNwc);
    auto t0 = Clock::now();
    cnv::Model model = cnv::Model::fromSource(source, nwc ? "bench_nwc.cnv" : "bench_ncw.cnv");
    c.compileSeconds = seconds(t0, Clock::now());
    c.model = std::make_unique<cnv::Model>(std::move(model));
    if (nwc) {
      const std::vector<float> xNwc = ncwToNwc(xNcw, s.batch, s.in, s.width);
      c.inputData.assign(xNwc.begin(), xNwc.end());
      c.inputShape = {s.batch, s.width, s.in};
      c.weightData = oiwToWio(wOiw, s.out, s.in / s.groups, s.kernel);
      c.model->setParam("w", {c.weightData.data(), {s.kernel, s.in / s.groups, s.out}});
    } else {
      c.inputData.assign(xNcw.begin(), xNcw.end());
      c.inputShape = {s.batch, s.in, s.width};
      c.weightData = wOiw;
      c.model->setParam("w", {c.weightData.data(), {s.out, s.in / s.groups, s.kernel}});
    }
    c.model->setParam("b", {bias.data(), {s.out}});
    c.ok = true;
  } catch (const std::exception& e) {
    c.error = e.what();
  }
  return c;
}

struct CnvResult {
  bool ok = false;
  std::string error;
  Timing run, into;
  std::vector<float> outputNcw;  // for the check
};

CnvResult measureCnv(CnvCase& c, const Shape& s, bool nwc, int threads, const Budget& budget) {
  CnvResult r;
  if (!c.ok) {
    r.error = c.error;
    return r;
  }
  try {
    std::map<std::string, cnv::TensorView> inputs{{"x", {c.inputData.data(), c.inputShape}}};
    std::map<std::string, cnv::Tensor> last;
    r.run = timeRuns([&] { last = c.model->run(inputs, threads); }, budget);
    const cnv::Tensor& y = last.at("y");
    r.outputNcw = nwc ? nwcToNcw(y.data(), s.batch, s.out, s.outWidth())
                      : std::vector<float>(y.data(), y.data() + y.size());
    cnv::Tensor into(c.model->outputShapes(inputs).at("y"));
    std::map<std::string, cnv::MutableTensorView> outputs{{"y", into.mutableView()}};
    r.into = timeRuns([&] { c.model->runInto(inputs, outputs, threads); }, budget);
    r.ok = true;
  } catch (const std::exception& e) {
    r.error = e.what();
  }
  return r;
}

// --- oneDNN -----------------------------------------------------------------------------

struct DnnlResult {
  bool ok = false;
  std::string error, impl;
  double createSeconds = NAN;
  Timing excluded, includedNcw, includedNwc;
  std::vector<float> outputNcw;
};

DnnlResult measureDnnl(const Shape& s, int threads, const std::vector<float>& xNcw,
                       const std::vector<float>& wOiw, const std::vector<float>& bias,
                       const Budget& budget) {
  using namespace dnnl;
  using tag = memory::format_tag;
  using dt = memory::data_type;
  DnnlResult r;
  try {
    omp_set_num_threads(threads);
    engine eng(engine::kind::cpu, 0);
    stream strm(eng);
    const int64_t wOut = s.outWidth();
    auto [padL, padR] = s.padding();
    memory::dims srcDims{s.batch, s.in, s.width}, dstDims{s.batch, s.out, wOut}, biasDims{s.out};
    memory::dims weiDims =
        s.groups == 1 ? memory::dims{s.out, s.in, s.kernel}
                      : memory::dims{s.groups, s.out / s.groups, s.in / s.groups, s.kernel};
    tag weiUserTag = s.groups == 1 ? tag::oiw : tag::goiw;

    auto t0 = Clock::now();
    memory::desc srcAny(srcDims, dt::f32, tag::any), weiAny(weiDims, dt::f32, tag::any),
        dstAny(dstDims, dt::f32, tag::any), biasMd(biasDims, dt::f32, tag::x);
    convolution_forward::desc desc(prop_kind::forward_inference, algorithm::convolution_direct,
                                   srcAny, weiAny, biasMd, dstAny, {s.stride}, {s.dilation - 1},
                                   {padL}, {padR});
    post_ops ops;
    ops.append_eltwise(1.0f, algorithm::eltwise_relu, 0.0f, 0.0f);
    primitive_attr attr;
    attr.set_post_ops(ops);
    convolution_forward::primitive_desc pd(desc, attr, eng);
    convolution_forward conv(pd);
    r.createSeconds = seconds(t0, Clock::now());
    r.impl = pd.impl_info_str();

    // Weights and bias, reordered once (never timed).
    memory weiUser({weiDims, dt::f32, weiUserTag}, eng, const_cast<float*>(wOiw.data()));
    memory wei(pd.weights_desc(), eng);
    reorder(weiUser, wei).execute(strm, weiUser, wei);
    memory biasMem(biasMd, eng, const_cast<float*>(bias.data()));

    // Reorders excluded: src already in the chosen format.
    memory srcNcw({srcDims, dt::f32, tag::ncw}, eng, const_cast<float*>(xNcw.data()));
    memory src(pd.src_desc(), eng), dst(pd.dst_desc(), eng);
    reorder(srcNcw, src).execute(strm, srcNcw, src);
    strm.wait();
    auto runConv = [&](const memory& in, const memory& out) {
      conv.execute(strm, {{DNNL_ARG_SRC, in},
                          {DNNL_ARG_WEIGHTS, wei},
                          {DNNL_ARG_BIAS, biasMem},
                          {DNNL_ARG_DST, out}});
    };
    r.excluded = timeRuns(
        [&] {
          runConv(src, dst);
          strm.wait();
        },
        budget);

    // Reorders included, from and back to a plain user layout.
    std::vector<float> xNwc = ncwToNwc(xNcw, s.batch, s.in, s.width);
    auto included = [&](tag userTag, const float* userSrc, std::vector<float>& userDst) {
      userDst.assign(size_t(s.batch * s.out * wOut), 0.0f);
      memory uSrc({srcDims, dt::f32, userTag}, eng, const_cast<float*>(userSrc));
      memory uDst({dstDims, dt::f32, userTag}, eng, userDst.data());
      bool reorderSrc = uSrc.get_desc() != pd.src_desc();
      bool reorderDst = uDst.get_desc() != pd.dst_desc();
      memory cSrc = reorderSrc ? memory(pd.src_desc(), eng) : uSrc;
      memory cDst = reorderDst ? memory(pd.dst_desc(), eng) : uDst;
      reorder toConv, fromConv;
      if (reorderSrc) toConv = reorder(uSrc, cSrc);
      if (reorderDst) fromConv = reorder(cDst, uDst);
      return timeRuns(
          [&] {
            if (reorderSrc) toConv.execute(strm, uSrc, cSrc);
            runConv(cSrc, cDst);
            if (reorderDst) fromConv.execute(strm, cDst, uDst);
            strm.wait();
          },
          budget);
    };
    std::vector<float> dstNwc;
    r.includedNcw = included(tag::ncw, xNcw.data(), r.outputNcw);
    r.includedNwc = included(tag::nwc, xNwc.data(), dstNwc);
    r.ok = true;
  } catch (const dnnl::error& e) {
    r.error = std::string("oneDNN: ") + e.what();
  } catch (const std::exception& e) {
    r.error = e.what();
  }
  return r;
}

// --- Formatting -------------------------------------------------------------------------

std::string fmtNum(double v, int digits = 1) {
  if (!std::isfinite(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}
// Milliseconds with about three significant digits.
std::string fmtMs(double secondsValue) {
  if (!std::isfinite(secondsValue)) return "-";
  double ms = secondsValue * 1e3;
  return fmtNum(ms, ms < 0.1 ? 4 : ms < 1 ? 3 : ms < 10 ? 2 : ms < 100 ? 1 : 0);
}
std::string fmtGflops(double flops, double secondsValue) {
  if (!std::isfinite(secondsValue) || secondsValue <= 0) return "-";
  double g = flops / secondsValue / 1e9;
  return fmtNum(g, g < 10 ? 2 : 1);
}
std::string fmtPercent(double flops, double secondsValue, double peakGflops) {
  if (!std::isfinite(secondsValue) || secondsValue <= 0 || !(peakGflops > 0)) return "-";
  return fmtNum(100.0 * flops / secondsValue / 1e9 / peakGflops, 1) + "%";
}
std::string fmtRatio(double dnnlSeconds, double cnvSeconds) {
  if (!std::isfinite(dnnlSeconds) || !std::isfinite(cnvSeconds) || cnvSeconds <= 0) return "-";
  return fmtNum(dnnlSeconds / cnvSeconds, 2) + "×";
}

// "NAME, family F model M" from /proc/cpuinfo's first processor.
std::string cpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line, name = "unknown", family, model;
  auto value = [&] {
    const auto colon = line.find(':');
    std::string v = colon == std::string::npos ? "" : line.substr(colon + 1);
    v.erase(0, v.find_first_not_of(" \t"));
    return v;
  };
  while (std::getline(in, line) && !line.empty()) {
    if (line.rfind("model name", 0) == 0)
      name = value();
    else if (line.rfind("cpu family", 0) == 0)
      family = value();
    else if (line.rfind("model", 0) == 0 && line.find_first_of(" \t") == 5)
      model = value();
  }
  if (!family.empty()) name += ", family " + family + " model " + model;
  return name;
}

// The data caches of cpu0 as sysfs lists them ("L1d 32K, L2 1024K, L3 32768K"; which
// CPUs share each is in shared_cpu_list). glibc's sysconf misreads some virtual
// machines' L3 (320 MiB for a 32 MiB one).
std::string cacheSizes() {
  std::string out;
  for (int index = 0; index < 10; ++index) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index);
    auto read = [&](const char* file) {
      std::ifstream in(dir + "/" + file);
      std::string v;
      std::getline(in, v);
      return v;
    };
    const std::string level = read("level"), type = read("type"), size = read("size");
    if (level.empty()) break;
    if (type == "Instruction") continue;
    out += (out.empty() ? "L" : ", L") + level + (type == "Data" ? "d " : " ") + size;
  }
  return out.empty() ? "caches unknown" : out;
}

// CPU seconds spent by the whole machine (all cores, not idle) and by this process, so
// that the busy time of other processes during a measurement can be reported.
double machineBusySeconds() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  unsigned long long user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0,
                     steal = 0;
  if (!(in >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal))
    return NAN;
  return double(user + nice + system + irq + softirq) / double(sysconf(_SC_CLK_TCK));
}
double processSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * double(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}
struct BackgroundLoad {
  double machine0 = machineBusySeconds(), self0 = processSeconds();
  Clock::time_point wall0 = Clock::now();
  // Average number of cores other processes kept busy since construction.
  double cores() const {
    double wall = seconds(wall0, Clock::now());
    double other = (machineBusySeconds() - machine0) - (processSeconds() - self0);
    return wall > 0 ? std::max(0.0, other / wall) : NAN;
  }
};

// The 1-minute load average: anything well above 0 means other processes shared the cores.
std::string loadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string one;
  if (!(in >> one)) return "unknown";
  return one;
}

// --- The cost model against the tuner -------------------------------------------------

// For every shape and layout, at one thread: the compiler's pick against the fastest of
// all candidate schedules (cnvc tune's measurement; nothing is recorded).
std::string tuningTable(const std::vector<Shape>& shapes, const Options& opt,
                        Clock::time_point totalStart) {
  std::ostringstream out;
  out << "\n## The compiler's pick against the tuner's best (1 thread)\n\n"
      << "Every candidate schedule of every strategy timed, best call over two passes "
         "(`cnvc tune`'s measurement); within 5% = the pick's time ≤ 1.05 × the best's.\n\n"
      << "| shape | layout | compiler's pick | ms | tuned best | ms | pick / best | within 5% "
         "|\n|---|---|---|--:|---|--:|--:|---|\n";
  int within = 0, total = 0;
  for (const Shape& s : shapes) {
    for (bool nwc : {false, true}) {
      std::fprintf(stderr, "[%6.1fs] tuning %s %s\n", seconds(totalStart, Clock::now()),
                   s.describe().c_str(), nwc ? "NWC" : "NCW");
      cnv::TuningOptions options;
      options.dims = {{"N", s.batch}, {"L", s.width}};
      options.threads = 1;
      options.secondsPerRound = opt.quick ? 0.05 : 0.3;
      try {
        const cnv::TuningResult result =
            cnv::tuneSource(cnvSource(s, nwc, opt.symbolic), "bench.cnv", options);
        if (result.convs.empty()) continue;
        const cnv::TunedConv& conv = result.convs.front();
        const std::optional<double> slower =
            cnv::pickSlowdownPercent(conv.modelPickSeconds, conv.bestSeconds);
        const double ratio = slower ? 1 + *slower / 100 : NAN;
        const bool ok = slower && *slower <= 5;
        within += ok;
        ++total;
        out << "| " << s.describe() << " | " << (nwc ? "NWC" : "NCW") << " | " << conv.modelPick
            << " | " << fmtMs(conv.modelPickSeconds) << " | " << conv.best << " | "
            << fmtMs(conv.bestSeconds) << " | " << fmtNum(ratio, 2) << " | "
            << (ok ? "yes" : "**no**") << " |\n";
      } catch (const std::exception& e) {
        out << "| " << s.describe() << " | " << (nwc ? "NWC" : "NCW") << " | failed: " << e.what()
            << " | | | | | |\n";
      }
    }
  }
  out << "\nThe compiler's pick is within 5% of the tuned best on " << within << " of " << total
      << " shape × layout pairs.\n";
  return out.str();
}

}  // namespace

int main(int argc, char** argv) {
  Options opt = parseOptions(argc, argv);
  // The main table measures the compiler's own picks, whatever was tuned on this machine.
  setenv("CNV_TUNING_CACHE", "off", 1);
  // Honest creation times: no primitive cache hits between thread counts or shapes.
  dnnl::set_primitive_cache_capacity(0);
  const Budget budget = opt.quick ? Budget{0.05, 1, 0.25} : Budget{0.3, 3, 0.9};

  std::vector<Shape> shapes;
  for (const Shape& s : suite())
    if (opt.only.empty() || lower(s.name).find(lower(opt.only)) != std::string::npos)
      shapes.push_back(s);
  if (shapes.empty()) usage(argv[0], "--only '" + opt.only + "' matches no shape");

  // Best of three, so a moment of interference does not lower the peak.
  double peak = 0;
  for (int i = 0; i < 3; ++i) peak = std::max(peak, cnv::bench::measureFmaPeak(0.2));
  const dnnl_version_t* version = dnnl_version();
  char date[64];
  std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S %Z", std::localtime(&now));

  std::ostringstream header;
  header << "# cnv vs oneDNN: conv1d + bias + ReLU, f32\n\n"
         << "- CPU: " << cpuModel() << ", " << std::thread::hardware_concurrency()
         << " cores (hardware threads); caches " << cacheSizes() << "\n"
         << "- FMA peak (measured, " << cnv::bench::fmaPeakVectorWidth()
         << "-float vectors): " << fmtNum(peak, 1) << " GFLOP/s per thread; % of peak uses "
         << "peak × threads\n"
         << "- oneDNN " << version->major << "." << version->minor << "." << version->patch << " ("
         << (version->cpu_runtime == DNNL_RUNTIME_OMP ? "OpenMP" : "other") << " runtime)\n"
         << "- date: " << date << ", load average before the run: " << loadAverage() << "\n"
         << "- options: threads {";
  for (size_t i = 0; i < opt.threads.size(); ++i) header << (i ? "," : "") << opt.threads[i];
  header << "}" << (opt.quick ? ", quick" : "")
         << (opt.symbolic ? ", symbolic N/L dims" : ", constant dims")
         << "; times are the best of the timed runs after one warm-up, in ms\n\n";

  const char* columns =
      "| shape | T | GFLOP | cnv compile ms NCW/NWC | cnv NCW ms | NCW GF/s | NCW %pk | cnv NWC ms "
      "| "
      "NWC GF/s | NWC %pk | run() ms NCW/NWC | oneDNN impl | create ms | oneDNN ms | oneDNN GF/s "
      "| oneDNN %pk | +reorders ms NCW/NWC | NCW vs oneDNN | NWC vs oneDNN | ref ms | check | bg "
      "load |\n"
      "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|---|--:|\n";
  std::string table = columns;
  std::printf("%s%s", header.str().c_str(), columns);
  std::fflush(stdout);

  std::vector<std::string> problems;
  // Shapes with too few FLOPs per byte for the FMA peak to bound them.
  struct MemoryBound {
    std::string shape;
    int threads;
    double flops, bytes, ncwSeconds, nwcSeconds, onednnSeconds;
  };
  std::vector<MemoryBound> memoryBound;
  std::string mixedTable;
  auto totalStart = Clock::now();
  BackgroundLoad totalBackground;
  std::mt19937 rng(12345);
  for (const Shape& s : shapes) {
    const double flops = s.flops();
    std::fprintf(stderr, "[%6.1fs] %s: %.3g FLOP, pads %lld/%lld, out width %lld\n",
                 seconds(totalStart, Clock::now()), s.describe().c_str(), flops,
                 (long long)s.padding().first, (long long)s.padding().second,
                 (long long)s.outWidth());
    const float weightScale = 1.0f / std::sqrt(float(s.in / s.groups * s.kernel));
    std::vector<float> x = randomVector(size_t(s.batch * s.in * s.width), 1.0f, rng);
    std::vector<float> w =
        randomVector(size_t(s.out * (s.in / s.groups) * s.kernel), weightScale, rng);
    std::vector<float> b = randomVector(size_t(s.out), 0.1f, rng);

    CnvCase ncw = prepareCnv(s, false, opt.symbolic, x, w, b);
    CnvCase nwc = prepareCnv(s, true, opt.symbolic, x, w, b);
    const bool mixed = measuredMixed(s);
    CnvCase nwcToNcw, ncwToNwc;
    if (mixed) {
      nwcToNcw = prepareCnv(s, true, opt.symbolic, x, w, b, false);
      ncwToNwc = prepareCnv(s, false, opt.symbolic, x, w, b, true);
    }

    // The reference, once (1 thread), on small shapes only.
    double refSeconds = NAN;
    std::vector<double> refOut;
    if (flops < 2e8) {
      cnv::reference::Array xa(s.batch, s.in, s.width);
      for (size_t i = 0; i < x.size(); ++i) xa.data[i] = x[i];
      std::vector<double> wd(w.begin(), w.end()), bd(b.begin(), b.end());
      cnv::reference::ConvSpec spec;
      spec.stride = s.stride;
      spec.dilation = s.dilation;
      spec.groups = s.groups;
      std::tie(spec.padLeft, spec.padRight) = s.padding();
      auto t0 = Clock::now();
      cnv::reference::Array y = cnv::reference::conv1d(xa, wd, s.out, s.kernel, bd, spec);
      for (double& v : y.data) v = std::max(v, 0.0);
      refSeconds = seconds(t0, Clock::now());
      refOut = std::move(y.data);
    }

    for (int t : opt.threads) {
      BackgroundLoad background;
      CnvResult rn = measureCnv(ncw, s, false, t, budget);
      CnvResult rw = measureCnv(nwc, s, true, t, budget);
      CnvResult rnw, rwn;  // NCW→NWC, NWC→NCW
      if (mixed) {
        rnw = measureCnv(ncwToNwc, s, true, t, budget);
        rwn = measureCnv(nwcToNcw, s, false, t, budget);
      }
      DnnlResult d = measureDnnl(s, t, x, w, b, budget);
      // Let OpenMP's workers stop spinning before cnv's threads run again.
      std::this_thread::sleep_for(std::chrono::milliseconds(20));

      // Correctness: cnv (both layouts) against oneDNN, and against the reference.
      std::vector<std::string> checks;
      auto check = [&](const CnvResult& c, const char* layout) {
        if (!c.ok) {
          checks.push_back(std::string("cnv ") + layout + " FAILED");
          problems.push_back(s.name + " T=" + std::to_string(t) + " cnv " + layout + ": " +
                             c.error);
          return;
        }
        std::vector<std::pair<const char*, const std::vector<double>*>> against;
        std::vector<double> dnnlOut;
        if (d.ok) {
          dnnlOut.assign(d.outputNcw.begin(), d.outputNcw.end());
          against.push_back({"oneDNN", &dnnlOut});
        }
        if (!refOut.empty()) against.push_back({"ref", &refOut});
        for (auto& [what, expected] : against) {
          if (expected->size() != c.outputNcw.size()) {
            checks.push_back(std::string("**MISMATCH** ") + layout + " size vs " + what);
            problems.push_back(s.name + " T=" + std::to_string(t) + ": cnv " + layout +
                               " output size differs from " + what);
            continue;
          }
          Compare cmp = compare(c.outputNcw.data(), *expected, 1e-3);
          if (cmp.bad) {
            int64_t i = cmp.firstBad, wo = s.outWidth();
            std::ostringstream m;
            m << s.name << " T=" << t << ": cnv " << layout << " differs from " << what << " at "
              << cmp.bad << " of " << expected->size()
              << " elements, max |a-e|/(1+|e|) = " << cmp.maxScaledError
              << "; first at [n=" << i / (s.out * wo) << ", c=" << i / wo % s.out
              << ", w=" << i % wo << "]: " << c.outputNcw[size_t(i)] << " vs "
              << (*expected)[size_t(i)];
            problems.push_back(m.str());
            std::fprintf(stderr, "!!!!! MISMATCH: %s\n", m.str().c_str());
            checks.push_back(std::string("**MISMATCH** ") + layout + " vs " + what);
          }
        }
      };
      check(rn, "NCW");
      check(rw, "NWC");
      if (mixed) {
        check(rnw, "NCW→NWC");
        check(rwn, "NWC→NCW");
        std::ostringstream row;
        auto cells = [&](const CnvResult& c) {
          if (!c.ok) return std::string("failed | | |");
          const double gfs = flops / c.into.best / 1e9;
          return fmtMs(c.into.best) + " | " + fmtNum(gfs, 1) + " | " +
                 fmtNum(100 * gfs / (peak * t), 1) + "% | " +
                 fmtRatio(d.excluded.best, c.into.best);
        };
        row << "| " << s.describe() << " | " << t << " | " << cells(rnw) << " | " << cells(rwn)
            << " | " << (d.ok ? fmtMs(d.excluded.best) : "-") << " |\n";
        mixedTable += row.str();
      }
      if (!d.ok) {
        checks.push_back("oneDNN FAILED");
        problems.push_back(s.name + " T=" + std::to_string(t) + ": " + d.error);
      }
      std::string checkCell;
      if (checks.empty()) {
        char buf[64];
        std::snprintf(buf, sizeof buf, "ok%s", refOut.empty() ? "" : " (+ref)");
        checkCell = buf;
      } else {
        for (size_t i = 0; i < checks.size(); ++i) checkCell += (i ? "; " : "") + checks[i];
      }

      const double pk = peak * t;
      std::ostringstream row;
      row << "| " << s.describe() << " | " << t << " | " << fmtNum(flops / 1e9, flops < 1e8 ? 5 : 2)
          << " | " << fmtNum(ncw.compileSeconds * 1e3, 0) << " / "
          << fmtNum(nwc.compileSeconds * 1e3, 0) << " | " << fmtMs(rn.into.best) << " | "
          << fmtGflops(flops, rn.into.best) << " | " << fmtPercent(flops, rn.into.best, pk) << " | "
          << fmtMs(rw.into.best) << " | " << fmtGflops(flops, rw.into.best) << " | "
          << fmtPercent(flops, rw.into.best, pk) << " | " << fmtMs(rn.run.best) << " / "
          << fmtMs(rw.run.best) << " | " << (d.ok ? d.impl : "FAILED") << " | "
          << fmtNum(d.createSeconds * 1e3, 1) << " | " << fmtMs(d.excluded.best) << " | "
          << fmtGflops(flops, d.excluded.best) << " | " << fmtPercent(flops, d.excluded.best, pk)
          << " | " << fmtMs(d.includedNcw.best) << " / " << fmtMs(d.includedNwc.best) << " | "
          << fmtRatio(d.excluded.best, rn.into.best) << " | "
          << fmtRatio(d.excluded.best, rw.into.best) << " | " << (t == 1 ? fmtMs(refSeconds) : "-")
          << " | " << checkCell << " | " << fmtNum(background.cores(), 2) << " |\n";
      table += row.str();
      std::printf("%s", row.str().c_str());
      // Each input, weight, bias and output element read or written once.
      const double bytes =
          4.0 * double(x.size() + w.size() + b.size() + size_t(s.batch * s.out * s.outWidth()));
      if (flops / bytes < 10)
        memoryBound.push_back(
            {s.describe(), t, flops, bytes, rn.into.best, rw.into.best, d.excluded.best});
      std::fflush(stdout);
      std::fprintf(stderr, "[%6.1fs]   T=%d done (runs: cnv %d/%d, into %d/%d, oneDNN %d/%d/%d)\n",
                   seconds(totalStart, Clock::now()), t, rn.run.runs, rw.run.runs, rn.into.runs,
                   rw.into.runs, d.excluded.runs, d.includedNcw.runs, d.includedNwc.runs);
    }
  }

  std::ostringstream footer;
  if (!mixedTable.empty())
    footer << "\n## Convs that change layout\n\n"
           << "The same layers with the input in one layout and the output in the other "
              "(weights as the input's framework stores them), against the same oneDNN "
              "time (reorders excluded).\n\n"
           << "| shape | T | NCW→NWC ms | GF/s | %pk | vs oneDNN | NWC→NCW ms | GF/s | %pk | "
              "vs oneDNN | oneDNN ms |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n"
           << mixedTable;
  if (opt.tune) footer << tuningTable(shapes, opt, totalStart);
  if (!memoryBound.empty()) {
    // Measured after the shapes, so that nothing else runs meanwhile.
    std::map<int, double> bandwidth;
    for (int t : opt.threads) bandwidth[t] = cnv::bench::measureCopyBandwidth(t);
    footer << "\n## Memory-bound shapes (under 10 FLOP per byte) against the copy roofline\n\n"
           << "Copy bandwidth measured (bytes read + written, buffers far past the caches):";
    for (auto [t, gbs] : bandwidth) footer << " T=" << t << " " << fmtNum(gbs, 1) << " GB/s;";
    footer << " bytes moved = input + weights + bias + output, each once. % roof = GB/s "
              "moved ÷ copy bandwidth at that thread count.\n\n"
           << "| shape | T | FLOP/byte | MB | cnv NCW GB/s | % roof | cnv NWC GB/s | % roof "
              "| oneDNN GB/s | % roof |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n";
    for (const MemoryBound& m : memoryBound) {
      const double roof = bandwidth[m.threads];
      auto cells = [&](double secs) {
        const double gbs = m.bytes / secs / 1e9;
        return fmtNum(gbs, 1) + " | " + fmtNum(100 * gbs / roof, 0) + "%";
      };
      footer << "| " << m.shape << " | " << m.threads << " | " << fmtNum(m.flops / m.bytes, 2)
             << " | " << fmtNum(m.bytes / 1e6, m.bytes < 1e6 ? 3 : 1) << " | "
             << cells(m.ncwSeconds) << " | " << cells(m.nwcSeconds) << " | "
             << cells(m.onednnSeconds) << " |\n";
    }
    footer << "\nShapes whose data fits the caches (the seed example) can pass the roof.\n";
  }
  footer << "\n";
  if (problems.empty()) {
    footer << "All cnv outputs agree with oneDNN (and the reference where run) within "
              "|a-e| <= 1e-3·(1+|e|).\n";
  } else {
    footer << "**PROBLEMS (" << problems.size() << "):**\n";
    for (const std::string& p : problems) footer << "- " << p << "\n";
  }
  const double bgCores = totalBackground.cores();
  footer << "\nTotal benchmark time: " << fmtNum(seconds(totalStart, Clock::now()), 1)
         << " s; other processes kept " << fmtNum(bgCores, 2) << " cores busy on average"
         << (bgCores > 0.1 ? " (**figures disturbed**: rerun on a quiet machine)" : "") << "\n";
  std::printf("%s", footer.str().c_str());
  if (!problems.empty())
    std::fprintf(stderr, "\n!!!!! %zu PROBLEM(S): see the end of the report\n", problems.size());

  if (!opt.markdown.empty()) {
    std::ofstream out(opt.markdown);
    out << header.str() << table << footer.str();
    if (!out) {
      std::fprintf(stderr, "cannot write %s\n", opt.markdown.c_str());
      return 1;
    }
  }
  return problems.empty() ? 0 : 3;
}
