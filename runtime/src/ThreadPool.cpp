//===- ThreadPool.cpp - The one worker pool of a qc process ---------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// A minimal persistent pool: one job at a time (a submit mutex serializes
// callers), workers woken by a generation counter, the job's indices handed
// out by an atomic counter. The pool's threads are detached-free: they are
// joined at process exit by the static Pool's destructor.
//
// Waiting spins briefly before it sleeps: a decode step of a compiled model
// runs a few hundred parallel products microseconds apart, and parking and
// waking threads through the kernel around each one took about a sixth of
// the step. Workers spin for the next generation, the caller for the
// pending count, each for at most kSpin, then fall back to the condition
// variables (the state they act on is always read under the mutex).
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/ThreadPool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

namespace qc {
namespace {

std::atomic<int64_t> requestedThreads{0};

constexpr auto kSpin = std::chrono::microseconds(200);

inline void cpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

/// Polls `ready` for up to kSpin, yielding now and then so that a pool
/// larger than the machine does not starve the threads doing the work.
template <typename Ready> void spinUntil(Ready ready) {
  auto start = std::chrono::steady_clock::now();
  for (int i = 1; !ready(); ++i) {
    cpuRelax();
    if ((i & 255) == 0) {
      if (std::chrono::steady_clock::now() - start > kSpin)
        return;
      std::this_thread::yield();
    }
  }
}

/// True on the pool's own threads and while a thread runs a job as
/// worker 0: a nested parallelFor then runs serially.
thread_local bool insideJob = false;

class Pool {
public:
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      stopping = true;
    }
    wake.notify_all();
    for (std::thread &t : threads)
      t.join();
  }

  void run(int64_t n, int64_t workers,
           const std::function<void(int64_t, int64_t)> &fn) {
    std::lock_guard<std::mutex> submit(submitMutex);
    {
      std::lock_guard<std::mutex> lock(mutex);
      while (static_cast<int64_t>(threads.size()) < workers - 1) {
        int64_t slot = static_cast<int64_t>(threads.size()) + 1;
        threads.emplace_back([this, slot] { loop(slot); });
      }
      job = &fn;
      jobSize = n;
      jobWorkers = workers;
      next.store(0);
      pending = workers - 1;
      pendingCount.store(workers - 1, std::memory_order_relaxed);
      ++generation;
      publishedGeneration.store(generation, std::memory_order_release);
    }
    wake.notify_all();
    insideJob = true;
    work(0);
    insideJob = false;
    spinUntil(
        [&] { return pendingCount.load(std::memory_order_acquire) == 0; });
    std::unique_lock<std::mutex> lock(mutex);
    done.wait(lock, [&] { return pending == 0; });
    job = nullptr;
  }

private:
  void work(int64_t worker) {
    for (int64_t i = next++; i < jobSize; i = next++)
      (*job)(i, worker);
  }

  /// Pool thread `slot` (1-based: the caller is worker 0) takes part in
  /// every job with more than `slot` workers.
  void loop(int64_t slot) {
    insideJob = true;
    uint64_t seen = 0;
    std::unique_lock<std::mutex> lock(mutex);
    for (;;) {
      if (!stopping && generation == seen) {
        lock.unlock();
        spinUntil([&] {
          return publishedGeneration.load(std::memory_order_acquire) != seen;
        });
        lock.lock();
      }
      wake.wait(lock, [&] { return stopping || generation != seen; });
      if (stopping)
        return;
      seen = generation;
      if (slot >= jobWorkers)
        continue;
      lock.unlock();
      work(slot);
      lock.lock();
      pendingCount.fetch_sub(1, std::memory_order_release);
      if (--pending == 0)
        done.notify_one();
    }
  }

  std::mutex submitMutex;
  std::mutex mutex;
  std::condition_variable wake, done;
  std::vector<std::thread> threads;
  const std::function<void(int64_t, int64_t)> *job = nullptr;
  int64_t jobSize = 0, jobWorkers = 0, pending = 0;
  uint64_t generation = 0;
  bool stopping = false;
  std::atomic<int64_t> next{0};
  /// Mirrors of `generation` and `pending` for spinning without the mutex.
  std::atomic<uint64_t> publishedGeneration{0};
  std::atomic<int64_t> pendingCount{0};
};

Pool &pool() {
  static Pool p;
  return p;
}

} // namespace

void setThreadCount(int64_t n) { requestedThreads.store(n > 0 ? n : 0); }

int64_t threadCount() {
  int64_t n = requestedThreads.load();
  if (n <= 0) {
    if (const char *env = std::getenv("QC_THREADS")) {
      char *end = nullptr;
      long long v = std::strtoll(env, &end, 10);
      if (end != env && *end == '\0' && v > 0)
        n = static_cast<int64_t>(std::min<long long>(v, kMaxThreads));
    }
  }
  if (n <= 0)
    n = std::max(1u, std::thread::hardware_concurrency());
  return std::min(n, kMaxThreads);
}

int64_t workerCount(int64_t n) {
  return std::max<int64_t>(1, std::min(threadCount(), n));
}

void parallelFor(int64_t n, int64_t workers,
                 const std::function<void(int64_t, int64_t)> &fn) {
  workers = std::min({workers, n, kMaxThreads});
  if (workers <= 1 || insideJob) {
    for (int64_t i = 0; i < n; ++i)
      fn(i, 0);
    return;
  }
  pool().run(n, workers, fn);
}

} // namespace qc
