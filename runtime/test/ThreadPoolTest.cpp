//===- ThreadPoolTest.cpp - The process-wide worker pool ------------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/ThreadPool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace qc {
namespace {

/// Restores the default size when a test ends.
struct ThreadCountGuard {
  ~ThreadCountGuard() { setThreadCount(0); }
};

TEST(ThreadPool, EveryIndexRunsOnceOnAtMostTheWorkersAsked) {
  ThreadCountGuard guard;
  setThreadCount(4);
  EXPECT_EQ(threadCount(), 4);
  EXPECT_EQ(workerCount(100), 4);
  EXPECT_EQ(workerCount(2), 2);
  EXPECT_EQ(workerCount(0), 1);
  for (int64_t workers : {1, 2, 3, 4}) {
    std::vector<std::atomic<int>> hits(1000);
    std::mutex m;
    std::set<std::thread::id> ids;
    std::set<int64_t> slots;
    parallelFor(1000, workers, [&](int64_t i, int64_t w) {
      hits[size_t(i)]++;
      std::lock_guard<std::mutex> lock(m);
      ids.insert(std::this_thread::get_id());
      slots.insert(w);
    });
    for (auto &h : hits)
      ASSERT_EQ(h.load(), 1);
    EXPECT_LE(int64_t(ids.size()), workers);
    for (int64_t w : slots) {
      EXPECT_GE(w, 0);
      EXPECT_LT(w, workers);
    }
  }
}

TEST(ThreadPool, ThreadsAreReusedNotRestarted) {
  ThreadCountGuard guard;
  setThreadCount(3);
  std::mutex m;
  std::set<std::thread::id> ids;
  for (int round = 0; round < 200; ++round)
    parallelFor(3, 3, [&](int64_t, int64_t) {
      // Long enough that every worker takes one item.
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      std::lock_guard<std::mutex> lock(m);
      ids.insert(std::this_thread::get_id());
    });
  // The caller plus at most two pool threads, over 200 loops.
  EXPECT_LE(ids.size(), 3u);
}

TEST(ThreadPool, NestedLoopsRunSeriallyInsteadOfDeadlocking) {
  ThreadCountGuard guard;
  setThreadCount(2);
  std::atomic<int64_t> sum{0};
  parallelFor(8, 2, [&](int64_t i, int64_t) {
    parallelFor(8, 2, [&](int64_t j, int64_t w) {
      EXPECT_EQ(w, 0); // serial: the inner loop's only worker
      sum += i * 8 + j;
    });
  });
  EXPECT_EQ(sum.load(), 63 * 64 / 2);
}

TEST(ThreadPool, CallsFromSeveralThreadsAreSerialized) {
  ThreadCountGuard guard;
  setThreadCount(2);
  std::atomic<int64_t> total{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 4; ++c)
    callers.emplace_back([&] {
      for (int r = 0; r < 50; ++r)
        parallelFor(16, 2, [&](int64_t i, int64_t) { total += i; });
    });
  for (std::thread &t : callers)
    t.join();
  EXPECT_EQ(total.load(), int64_t(4) * 50 * (15 * 16 / 2));
}

TEST(ThreadPool, SizeComesFromTheSetterThenTheEnvironment) {
  ThreadCountGuard guard;
  ::setenv("QC_THREADS", "5", 1);
  setThreadCount(0);
  EXPECT_EQ(threadCount(), 5);
  setThreadCount(2);
  EXPECT_EQ(threadCount(), 2);
  ::setenv("QC_THREADS", "zero", 1);
  setThreadCount(0);
  EXPECT_GE(threadCount(), 1);
  ::unsetenv("QC_THREADS");
  setThreadCount(100000);
  EXPECT_EQ(threadCount(), kMaxThreads);
}

} // namespace
} // namespace qc
