#include "ThreadPool.h"

#include <algorithm>
#include <atomic>
#include <memory>

#include "cnv/cnv.h"

namespace cnv::rt {

ThreadPool::ThreadPool(int threads) {
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { work(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (std::thread& worker : workers_) worker.join();
}

void ThreadPool::run(int parts, TaskRef task) {
  std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
  if (parts <= 1 || workers_.empty() || !busy.owns_lock()) {
    for (int part = 0; part < parts; ++part) task(part);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    task_ = task;
    parts_ = parts;
    next_ = 1;
    pending_ = parts - 1;
    ++generation_;
  }
  wake_.notify_all();
  task(0);
  // Parts no worker has taken yet run here too (there may be more parts than threads).
  for (;;) {
    int part;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (next_ >= parts_) break;
      part = next_++;
    }
    task(part);
    std::lock_guard<std::mutex> lock(mutex_);
    --pending_;
  }
  std::unique_lock<std::mutex> lock(mutex_);
  done_.wait(lock, [&] { return pending_ == 0; });
  task_ = {};
}

void ThreadPool::work(int) {
  uint64_t seen = 0;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_) return;
      seen = generation_;
    }
    for (;;) {
      int part;
      TaskRef task;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (next_ >= parts_) break;
        part = next_++;
        task = task_;
      }
      task(part);
      std::lock_guard<std::mutex> lock(mutex_);
      if (--pending_ == 0) done_.notify_one();
    }
  }
}

namespace {

int cores() { return static_cast<int>(std::max(1u, std::thread::hardware_concurrency())); }

ThreadPool& sharedPool() {
  // Never destroyed: a host thread may still be running a model while static objects
  // are torn down at exit.
  static ThreadPool* pool = new ThreadPool(cores());
  return *pool;
}

// Replaced hosts are kept: a run on another thread may still be using one.
std::atomic<const HostParallelFor*> host{nullptr};

}  // namespace

int availableThreads() {
  const HostParallelFor* h = host.load(std::memory_order_acquire);
  return h ? std::max(1, h->concurrency()) : sharedPool().size();
}

void parallelFor(int parts, TaskRef task) {
  if (const HostParallelFor* h = host.load(std::memory_order_acquire)) return h->run(parts, task);
  sharedPool().run(parts, task);
}

void setHostParallelFor(const HostParallelFor* replacement) {
  static std::mutex retiredMutex;
  static std::vector<std::unique_ptr<const HostParallelFor>>* retired =
      new std::vector<std::unique_ptr<const HostParallelFor>>();
  const HostParallelFor* old = host.exchange(replacement, std::memory_order_acq_rel);
  if (old) {
    std::lock_guard<std::mutex> lock(retiredMutex);
    retired->emplace_back(old);
  }
}

}  // namespace cnv::rt

namespace cnv {
namespace {

struct FunctionParallelFor : rt::HostParallelFor {
  ParallelFor function;
  int threads;
  FunctionParallelFor(ParallelFor f, int t) : function(std::move(f)), threads(t) {}
  int concurrency() const override { return threads; }
  void run(int parts, rt::TaskRef task) const override {
    function(parts, [task](int part) { task(part); });
  }
};

}  // namespace

void setParallelFor(ParallelFor parallelFor, int concurrency) {
  if (!parallelFor) return rt::setHostParallelFor(nullptr);
  if (concurrency < 1) throw usageError("setParallelFor: concurrency must be at least 1");
  rt::setHostParallelFor(new FunctionParallelFor(std::move(parallelFor), concurrency));
}

}  // namespace cnv
