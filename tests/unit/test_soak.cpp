// One model run 100,000 times: resident memory stays flat, and compiling, running and
// dropping models leaves no file descriptor or thread behind.
#include <dirent.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>

#include "tests/unit/TestSupport.h"

namespace cnv::test {
namespace {

const char* kModel = R"(model soak {
  input  x : f32[N, L, 2] layout NWC
  param  w : f32[3, 2, 4] layout WIO
  param  b : f32[4]
  h = relu(conv1d(x, w, b, stride=2, padding=same))
  output h layout NCW
})";

// Sanitizers keep freed memory in quarantine and shadow it: resident memory says nothing
// about leaks there (ASan's leak checker does).
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

int64_t residentBytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

int entries(const char* directory) {
  DIR* dir = opendir(directory);
  if (!dir) return -1;
  int count = 0;
  while (readdir(dir)) ++count;
  closedir(dir);
  return count;
}

}  // namespace

TEST_CASE("100,000 runs of one model keep resident memory flat", "[soak]") {
  Model model = Model::fromSource(kModel, "soak.cnv");
  std::mt19937 random(3);
  Tensor w = randomTensor({3, 2, 4}, random), b = randomTensor({4}, random);
  model.setParam("w", w.view());
  model.setParam("b", b.view());
  Tensor x = randomTensor({2, 33, 2}, random);
  Tensor y({2, 4, 17});
  const std::map<std::string, TensorView> inputs = {{"x", x.view()}};
  const std::map<std::string, MutableTensorView> outputs = {{"h", y.mutableView()}};
  for (int i = 0; i < 10000; ++i) model.runInto(inputs, outputs, 1);  // warm: plans, scratch
  const Tensor first = model.run(inputs, 1).at("h");
  const int64_t before = residentBytes();
  for (int i = 0; i < 100000; ++i) {
    model.runInto(inputs, outputs, 1 + i % 2);
    if (i % 10000 == 0) model.run(inputs, 1);  // the allocating form too
  }
  const int64_t after = residentBytes();
  INFO("resident " << before << " -> " << after << " bytes");
  if (!kSanitized) CHECK(after - before < (1 << 20));
  CHECK(std::equal(y.data(), y.data() + y.size(), first.data()));
}

TEST_CASE("compiling, running and dropping models leaves no descriptor or thread behind",
          "[soak]") {
  auto once = [] {
    Model model = Model::fromSource(kModel, "soak.cnv");
    Tensor w({3, 2, 4}), b({4}), x({1, 5000, 2});
    model.setParam("w", w.view());
    model.setParam("b", b.view());
    model.run({{"x", x.view()}}, 0);  // big enough to use the pool
  };
  // A JIT's compile threads finish their tasks and exit on their own, a moment after a
  // compile returns: the count is read once they have (up to 5 s), so that only a thread
  // that stays counts.
  auto settledThreads = [](int atMost) {
    int count = entries("/proc/self/task");
    for (int i = 0, steady = 0; i < 500 && count > atMost && steady < 20; ++i) {
      usleep(10000);
      const int now = entries("/proc/self/task");
      steady = now == count ? steady + 1 : 0;
      count = now;
    }
    return count;
  };
  once();  // the process-wide pool and LLVM's one-time state come into being here
  const int fds = entries("/proc/self/fd");
  const int threads = settledThreads(0);
  for (int i = 0; i < 20; ++i) once();
  CHECK(entries("/proc/self/fd") == fds);
  CHECK(settledThreads(threads) <= threads);
}

}  // namespace cnv::test
