#include "copy_bandwidth.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

namespace cnv::bench {

double measureCopyBandwidth(int threads, double seconds) {
  // 64 MiB per thread each way: well past any L3 slice a VM's core sees.
  const size_t floats = size_t{16} << 20;
  std::vector<std::vector<float>> from(static_cast<size_t>(threads)),
      to(static_cast<size_t>(threads));
  for (int t = 0; t < threads; ++t) {
    from[static_cast<size_t>(t)].assign(floats, 1.0f);  // pages touched before timing
    to[static_cast<size_t>(t)].assign(floats, 0.0f);
  }
  using Clock = std::chrono::steady_clock;
  double best = 0;
  const auto start = Clock::now();
  do {
    const auto t0 = Clock::now();
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t)
      workers.emplace_back([&, t] {
        std::memcpy(to[static_cast<size_t>(t)].data(), from[static_cast<size_t>(t)].data(),
                    floats * sizeof(float));
      });
    for (std::thread& w : workers) w.join();
    const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
    best = std::max(best, 2.0 * double(floats * sizeof(float)) * threads / elapsed / 1e9);
  } while (std::chrono::duration<double>(Clock::now() - start).count() < seconds);
  return best;
}

}  // namespace cnv::bench
