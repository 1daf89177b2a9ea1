//===- CompiledCodeRuntimeTest.cpp - The dispatchers' output splits -------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// qc_rt_parallel_linear hands row ranges of one product to the thread pool.
// A recording kernel stands in for the generated one: every row of
// [rowBegin, rowEnd) must be covered exactly once, chunks must start on the
// row granule, the memref arguments must reach the kernel unchanged, small
// products must stay one call on the calling thread, and a call from inside
// a pool worker (perplexity windows evaluated in parallel) must run its
// chunks there instead of waiting on the pool.
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/CompiledCodeRuntime.h"
#include "qc/runtime/ThreadPool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace {

struct Recorded {
  std::mutex mutex;
  std::vector<std::pair<int64_t, int64_t>> ranges;
  std::vector<std::thread::id> threads;
  bool argumentsIntact = true;
};

Recorded *recorded = nullptr;
float xData[1], wData[1], outData[1];

void recordingKernel(QC_RT_MEMREF2D(x), QC_RT_MEMREF2D(w), QC_RT_MEMREF2D(out),
                     int64_t rowBegin, int64_t rowEnd) {
  std::lock_guard<std::mutex> lock(recorded->mutex);
  recorded->ranges.push_back({rowBegin, rowEnd});
  recorded->threads.push_back(std::this_thread::get_id());
  // The descriptors' fields, in MLIR's order, as the caller passed them.
  bool intact = xAligned == xData && xAllocated == xData && xOffset == 3 &&
                xRows == 17 && xCols == 100 && xRowStride == 104 &&
                xColStride == 1 && wAligned == wData && wRows == 301 &&
                wCols == 100 && wRowStride == 100 && outAligned == outData &&
                outRows == 17 && outCols == 301 && outRowStride == 301;
  recorded->argumentsIntact = recorded->argumentsIntact && intact;
}

void call(int64_t tokens, int64_t rows, int64_t depth, int64_t begin,
          int64_t end) {
  qc_rt_parallel_linear(&recordingKernel, xData, xData, 3, tokens, depth,
                        depth + 4, 1, wData, wData, 0, rows, depth, depth, 1,
                        outData, outData, 0, tokens, rows, rows, 1, begin, end);
}

/// Sorted ranges that tile [begin, end) exactly.
void expectExactCover(std::vector<std::pair<int64_t, int64_t>> ranges,
                      int64_t begin, int64_t end) {
  std::sort(ranges.begin(), ranges.end());
  int64_t next = begin;
  for (auto [b, e] : ranges) {
    EXPECT_EQ(b, next) << "gap or overlap at row " << next;
    EXPECT_LT(b, e);
    next = e;
  }
  EXPECT_EQ(next, end);
}

class ParallelLinear : public ::testing::Test {
protected:
  void SetUp() override { recorded = &state; }
  void TearDown() override {
    qc::setThreadCount(0);
    recorded = nullptr;
  }
  Recorded state;
};

TEST_F(ParallelLinear, CoversEveryRowOnceInGranuleAlignedChunks) {
  qc::setThreadCount(3);
  call(17, 301, 100, 0, 301);
  ASSERT_GT(state.ranges.size(), 1u) << "510K multiply-adds should be split";
  expectExactCover(state.ranges, 0, 301);
  for (auto [b, e] : state.ranges)
    EXPECT_EQ(b % 8, 0) << "chunk [" << b << ", " << e << ")";
  EXPECT_TRUE(state.argumentsIntact);
}

TEST_F(ParallelLinear, RangesNotStartingAtZeroAreCoveredToo) {
  qc::setThreadCount(2);
  call(17, 301, 100, 5, 290);
  expectExactCover(state.ranges, 5, 290);
}

TEST_F(ParallelLinear, SmallProductsAndOneThreadStayOneCallOnTheCaller) {
  qc::setThreadCount(4);
  call(1, 64, 64, 0, 64); // 4K multiply-adds
  qc::setThreadCount(1);
  call(17, 301, 100, 0, 301);
  ASSERT_EQ(state.ranges.size(), 2u);
  EXPECT_EQ(state.ranges[0], std::make_pair(int64_t(0), int64_t(64)));
  EXPECT_EQ(state.ranges[1], std::make_pair(int64_t(0), int64_t(301)));
  for (std::thread::id id : state.threads)
    EXPECT_EQ(id, std::this_thread::get_id());
}

TEST_F(ParallelLinear, CallsFromPoolWorkersDoNotWaitOnThePool) {
  qc::setThreadCount(2);
  // Each of 4 pool items makes a product big enough to split; the nested
  // parallelFor runs its chunks serially on the item's thread instead of
  // waiting for the busy pool. Every row is then covered once per item.
  qc::parallelFor(4, qc::workerCount(4),
                  [](int64_t, int64_t) { call(17, 301, 100, 0, 301); });
  std::vector<int> covered(301, 0);
  for (auto [b, e] : state.ranges)
    for (int64_t r = b; r < e; ++r)
      ++covered[r];
  EXPECT_EQ(std::count(covered.begin(), covered.end(), 4), 301);
}

int32_t wordsData[1];
float scalesData[1], zerosData[1];

void recordingDequantKernel(QC_RT_MEMREF2D(x),
                            QC_RT_MEMREF2D_OF(int32_t, qweight),
                            QC_RT_MEMREF2D_OF(void, scales),
                            QC_RT_MEMREF2D_OF(void, zeros), QC_RT_MEMREF2D(out),
                            int64_t colBegin, int64_t colEnd,
                            int64_t groupBegin, int64_t groupEnd) {
  std::lock_guard<std::mutex> lock(recorded->mutex);
  recorded->ranges.push_back({colBegin, colEnd});
  bool intact = xAligned == xData && xOffset == 3 && xRows == 17 &&
                xCols == 576 && xRowStride == 580 &&
                qweightAligned == wordsData && qweightRows == 72 &&
                qweightCols == 301 && qweightRowStride == 301 &&
                scalesAligned == scalesData && scalesRows == 18 &&
                zerosAligned == zerosData && zerosCols == 301 &&
                outAligned == outData && outCols == 301 &&
                outRowStride == 301 && groupBegin == 0 && groupEnd == 18;
  recorded->argumentsIntact = recorded->argumentsIntact && intact;
}

void callDequant(int64_t tokens, int64_t begin, int64_t end) {
  qc_rt_parallel_dequant_linear(
      &recordingDequantKernel, xData, xData, 3, tokens, 576, 580, 1, wordsData,
      wordsData, 0, 72, 301, 301, 1, scalesData, scalesData, 0, 18, 301, 301, 1,
      zerosData, zerosData, 0, 18, 301, 301, 1, outData, outData, 0, tokens,
      301, 301, 1, begin, end, 0, 18);
}

// The dequantize-linear dispatcher splits the output columns of several
// tokens, in multiples of 64 so that no chunk edge falls inside a kernel's
// block of column vectors; one thread is one call.
TEST_F(ParallelLinear, DequantSplitsColumnsOnTheColumnGranule) {
  qc::setThreadCount(3);
  callDequant(17, 0, 301);
  ASSERT_GT(state.ranges.size(), 1u);
  expectExactCover(state.ranges, 0, 301);
  for (auto [b, e] : state.ranges)
    EXPECT_EQ(b % 64, 0) << "chunk [" << b << ", " << e << ")";
  EXPECT_TRUE(state.argumentsIntact);
  qc::setThreadCount(1);
  state.ranges.clear();
  callDequant(17, 0, 301);
  ASSERT_EQ(state.ranges.size(), 1u);
  EXPECT_EQ(state.ranges[0], std::make_pair(int64_t(0), int64_t(301)));
}

/// A stand-in kernel that adds term(n, g) = 0.1 (n + 1) / (g + 3) to
/// out[0, n] for each column and group of its ranges, in group order, and
/// counts how often each (n, g) is visited.
std::vector<int> visits;
constexpr int64_t kGroups = 18, kCols = 301;
float term(int64_t n, int64_t g) { return 0.1f * float(n + 1) / float(g + 3); }

void summingKernel(QC_RT_MEMREF2D(x), QC_RT_MEMREF2D_OF(int32_t, qweight),
                   QC_RT_MEMREF2D_OF(void, scales),
                   QC_RT_MEMREF2D_OF(void, zeros), QC_RT_MEMREF2D(out),
                   int64_t colBegin, int64_t colEnd, int64_t groupBegin,
                   int64_t groupEnd) {
  std::lock_guard<std::mutex> lock(recorded->mutex);
  recorded->ranges.push_back({groupBegin, groupEnd});
  for (int64_t n = colBegin; n < colEnd; ++n) {
    float acc = 0;
    for (int64_t g = groupBegin; g < groupEnd; ++g) {
      acc += term(n, g);
      ++visits[g * kCols + n];
    }
    outAligned[outOffset + n * outColStride] += acc;
  }
}

std::vector<float> oneTokenDequant(int64_t threads) {
  qc::setThreadCount(threads);
  visits.assign(kGroups * kCols, 0);
  std::vector<float> out(kCols, 1.0f);
  qc_rt_parallel_dequant_linear(
      &summingKernel, xData, xData, 0, 1, 576, 576, 1, wordsData, wordsData, 0,
      72, kCols, kCols, 1, scalesData, scalesData, 0, kGroups, kCols, kCols, 1,
      zerosData, zerosData, 0, kGroups, kCols, kCols, 1, out.data(), out.data(),
      0, 1, kCols, kCols, 1, 0, kCols, 0, kGroups);
  return out;
}

// One token (a decode step) is split by groups into partial sums, so that
// each thread reads whole packed rows: every (column, group) is visited
// once, the partials reach the output added to what it held, and the
// result is bit for bit the same for every thread count.
TEST_F(ParallelLinear, OneTokenSplitsGroupsAndIsThreadCountIndependent) {
  std::vector<float> one = oneTokenDequant(1);
  EXPECT_EQ(std::count(visits.begin(), visits.end(), 1),
            static_cast<long>(visits.size()));
  for (int64_t n = 0; n < kCols; n += 37) {
    double expected = 1.0;
    for (int64_t g = 0; g < kGroups; ++g)
      expected += term(n, g);
    EXPECT_NEAR(one[n], expected, 1e-5 * expected) << "column " << n;
  }
  for (int64_t threads : {2, 3, 4, 8, 16}) {
    std::vector<float> many = oneTokenDequant(threads);
    EXPECT_EQ(std::count(visits.begin(), visits.end(), 1),
              static_cast<long>(visits.size()))
        << threads << " threads";
    EXPECT_EQ(std::memcmp(many.data(), one.data(), one.size() * sizeof(float)),
              0)
        << threads << " threads";
  }
  // Four ranges of groups, whatever the thread count.
  for (int64_t threads : {1, 2}) {
    state.ranges.clear();
    oneTokenDequant(threads);
    std::sort(state.ranges.begin(), state.ranges.end());
    std::vector<std::pair<int64_t, int64_t>> expected = {
        {0, 4}, {4, 9}, {9, 13}, {13, 18}};
    EXPECT_EQ(state.ranges, expected) << threads << " threads";
  }
}

TEST(CompiledCodeBuffers, LargeBlocksAreReusedAndAligned) {
  // A large block comes back for the next request of the same size.
  void *a = _mlir_memref_to_llvm_alloc(3u << 20);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a) % 64, 0u);
  std::memset(a, 0x5a, 3u << 20);
  _mlir_memref_to_llvm_free(a);
  void *b = _mlir_memref_to_llvm_alloc(3u << 20);
  EXPECT_EQ(a, b);
  // A different size is a different block while b is held.
  void *c = _mlir_memref_to_llvm_alloc(5u << 20);
  EXPECT_NE(c, b);
  _mlir_memref_to_llvm_free(b);
  _mlir_memref_to_llvm_free(c);
  // Blocks over 16 MiB go back to the system; they still work.
  auto *big = static_cast<char *>(_mlir_memref_to_llvm_alloc(40u << 20));
  ASSERT_NE(big, nullptr);
  big[0] = big[(40u << 20) - 1] = 1;
  _mlir_memref_to_llvm_free(big);
  // Small blocks and over-aligned ones.
  for (uint64_t align : {1u, 16u, 64u, 256u, 4096u}) {
    void *p = _mlir_memref_to_llvm_aligned_alloc(align, 100);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % std::max<uint64_t>(align, 64),
              0u);
    std::memset(p, 1, 100);
    _mlir_memref_to_llvm_free(p);
  }
  EXPECT_EQ(_mlir_memref_to_llvm_aligned_alloc(48, 100), nullptr);
  _mlir_memref_to_llvm_free(nullptr);
}

TEST(CompiledCodeBuffers, ThreadsShareTheCache) {
  std::vector<std::thread> threads;
  std::atomic<int> bad{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        size_t size = (size_t(1) << 16) * (1 + (i + t) % 5);
        auto *p =
            static_cast<unsigned char *>(_mlir_memref_to_llvm_alloc(size));
        if (!p) {
          ++bad;
          continue;
        }
        std::memset(p, t, size);
        for (size_t k = 0; k < size; k += 4096)
          if (p[k] != t)
            ++bad;
        _mlir_memref_to_llvm_free(p);
      }
    });
  for (std::thread &t : threads)
    t.join();
  EXPECT_EQ(bad.load(), 0);
}

// The dispatchers and allocation functions by the names generated code
// calls: one dequantize-linear name per pair of scale and zero element
// types, all bound to the same function.
TEST(CompiledCodeSymbols, NameTheDispatchers) {
  auto symbols = qc::compiledCodeSymbols();
  std::map<std::string, void *> byName(symbols.begin(), symbols.end());
  EXPECT_EQ(byName.size(), symbols.size()) << "a name is bound twice";
  EXPECT_EQ(byName["qc_rt_parallel_linear"],
            reinterpret_cast<void *>(&qc_rt_parallel_linear));
  EXPECT_EQ(byName["_mlir_memref_to_llvm_alloc"],
            reinterpret_cast<void *>(&_mlir_memref_to_llvm_alloc));
  EXPECT_EQ(byName["_mlir_memref_to_llvm_aligned_alloc"],
            reinterpret_cast<void *>(&_mlir_memref_to_llvm_aligned_alloc));
  EXPECT_EQ(byName["_mlir_memref_to_llvm_free"],
            reinterpret_cast<void *>(&_mlir_memref_to_llvm_free));
  int dequant = 0;
  for (const char *s : {"f32", "f16", "bf16"})
    for (const char *z : {"f32", "f16", "bf16", "i32"}) {
      std::string name =
          std::string("qc_rt_parallel_dequant_linear_") + s + "_" + z;
      EXPECT_EQ(byName[name],
                reinterpret_cast<void *>(&qc_rt_parallel_dequant_linear))
          << name;
      ++dequant;
    }
  EXPECT_EQ(symbols.size(), 4u + dequant);
}

} // namespace
