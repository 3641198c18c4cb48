// How kernels' work is spread over threads: one process-wide pool of worker threads,
// sized to the cores and shared by every model, or a host program's own pool
// (cnv::setParallelFor). Kept alive between runs: starting threads per kernel call
// would cost more than small kernels.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace cnv::rt {

// A task without an allocation: task.call(task.context, part).
struct TaskRef {
  void (*call)(void* context, int part);
  void* context;
  void operator()(int part) const { call(context, part); }
};

template <typename F>
TaskRef taskRef(F& f) {
  return {[](void* context, int part) { (*static_cast<F*>(context))(part); }, &f};
}

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }
  // Calls task(part) for part in [0, parts) and returns when all are done. The caller
  // is one of the threads. While another caller's loop holds the workers, the parts
  // run on the calling thread alone: concurrent runs keep every core busy without
  // waiting for each other.
  void run(int parts, TaskRef task);

 private:
  void work(int index);

  std::vector<std::thread> workers_;
  std::mutex busy_;  // held by the caller whose loop the workers run
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  TaskRef task_{};
  int parts_ = 0;
  int next_ = 0;  // the next part a thread takes
  int pending_ = 0;
  uint64_t generation_ = 0;
  bool stopping_ = false;
};

// The threads a run may use: the host's pool's concurrency if it set one, else the
// cores of this machine.
int availableThreads();
// Runs task(part) for every part in [0, parts) on the host's pool if set, else on the
// shared pool.
void parallelFor(int parts, TaskRef task);

// A host program's pool (cnv::setParallelFor); null restores the shared pool.
struct HostParallelFor {
  virtual ~HostParallelFor() = default;
  virtual int concurrency() const = 0;
  virtual void run(int parts, TaskRef task) const = 0;
};
void setHostParallelFor(const HostParallelFor* host);  // takes ownership

}  // namespace cnv::rt
