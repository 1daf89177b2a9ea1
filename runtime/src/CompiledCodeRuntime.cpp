//===- CompiledCodeRuntime.cpp - Functions compiled models call -----------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/CompiledCodeRuntime.h"

#include "qc/runtime/ThreadPool.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace {

/// Below this many multiply-adds a product runs on the calling thread: waking
/// workers costs microseconds, about what 64K multiply-adds take.
constexpr int64_t kMinParallelWork = int64_t(1) << 16;

/// Chunks are whole multiples of this many rows, so that every chunk but the
/// last fills the kernel's register blocks (2, 4 or 8 rows).
constexpr int64_t kRowGranule = 8;

/// Columns per chunk of the dequantize-linear kernel are a multiple of
/// this: its blocks are 2 x 16 (AVX-512) or 2 x 8 lanes, and a chunk edge
/// inside a block would make both neighbours run masked vectors.
constexpr int64_t kColumnGranule = 64;

/// The partial sums a one-token dequantize-linear is split into (by
/// groups of K), whatever the thread count: enough for the cores of a
/// workstation to share whole rows, few enough that adding the partials
/// costs little.
constexpr int64_t kDecodeGroupSplits = 4;

/// Splits [begin, end) into chunks that are multiples of `granule`, about
/// four per worker (enough to even out a worker that starts late, few
/// enough that each chunk streams a long run of weights), and runs `run` on
/// them from the pool; small work (`work` multiply-adds) and single-thread
/// pools run as one call on the caller.
template <typename Run>
void splitAmongWorkers(int64_t begin, int64_t end, int64_t granule,
                       int64_t work, Run run) {
  int64_t span = end - begin;
  int64_t workers = qc::threadCount();
  if (span <= granule || workers <= 1 || work < kMinParallelWork) {
    run(begin, end);
    return;
  }
  int64_t chunk = (span + 4 * workers - 1) / (4 * workers);
  chunk = (chunk + granule - 1) / granule * granule;
  int64_t chunks = (span + chunk - 1) / chunk;
  qc::parallelFor(chunks, qc::workerCount(chunks),
                  [&](int64_t i, int64_t /*worker*/) {
                    int64_t from = begin + i * chunk;
                    run(from, std::min(end, from + chunk));
                  });
}

} // namespace

extern "C" void qc_rt_parallel_linear(QcLinearKernel kernel, QC_RT_MEMREF2D(x),
                                      QC_RT_MEMREF2D(w), QC_RT_MEMREF2D(out),
                                      int64_t rowBegin, int64_t rowEnd) {
  auto run = [&](int64_t begin, int64_t end) {
    kernel(xAllocated, xAligned, xOffset, xRows, xCols, xRowStride, xColStride,
           wAllocated, wAligned, wOffset, wRows, wCols, wRowStride, wColStride,
           outAllocated, outAligned, outOffset, outRows, outCols, outRowStride,
           outColStride, begin, end);
  };
  splitAmongWorkers(rowBegin, rowEnd, kRowGranule,
                    (rowEnd - rowBegin) * xRows * wCols, run);
}

extern "C" void qc_rt_parallel_dequant_linear(
    QcDequantLinearKernel kernel, QC_RT_MEMREF2D(x),
    QC_RT_MEMREF2D_OF(int32_t, qweight), QC_RT_MEMREF2D_OF(void, scales),
    QC_RT_MEMREF2D_OF(void, zeros), QC_RT_MEMREF2D(out), int64_t colBegin,
    int64_t colEnd, int64_t groupBegin, int64_t groupEnd) {
  // The kernel on columns [begin, end) and groups [g0, g1), adding into
  // `target` (the output, or one of the partial sums below).
  auto call = [&](float *target, int64_t begin, int64_t end, int64_t g0,
                  int64_t g1) {
    bool own = target == outAligned;
    kernel(xAllocated, xAligned, xOffset, xRows, xCols, xRowStride, xColStride,
           qweightAllocated, qweightAligned, qweightOffset, qweightRows,
           qweightCols, qweightRowStride, qweightColStride, scalesAllocated,
           scalesAligned, scalesOffset, scalesRows, scalesCols, scalesRowStride,
           scalesColStride, zerosAllocated, zerosAligned, zerosOffset,
           zerosRows, zerosCols, zerosRowStride, zerosColStride,
           own ? outAllocated : target, target, own ? outOffset : 0, outRows,
           outCols, own ? outRowStride : outCols, own ? outColStride : 1, begin,
           end, g0, g1);
  };
  int64_t span = colEnd - colBegin, groups = groupEnd - groupBegin;
  int64_t work = span * xRows * xCols;
  int64_t workers = qc::threadCount();
  int64_t splits = std::min(kDecodeGroupSplits, groups);
  // Whether to split must not depend on the thread count either.
  if (xRows != 1 || splits < 2 || work < kMinParallelWork) {
    splitAmongWorkers(colBegin, colEnd, kColumnGranule, work,
                      [&](int64_t begin, int64_t end) {
                        call(outAligned, begin, end, groupBegin, groupEnd);
                      });
    return;
  }
  // One token: a slice of every packed row per thread would make each
  // thread read short runs a row apart, which the prefetchers do not
  // follow; whole rows of a range of groups are one run each. The split
  // into `splits` partial sums depends only on the number of groups, and
  // the partials are added in order, so the result does not depend on the
  // thread count.
  int64_t colChunks = (workers + splits - 1) / splits;
  int64_t chunk = (span + colChunks - 1) / colChunks;
  chunk = (chunk + kColumnGranule - 1) / kColumnGranule * kColumnGranule;
  colChunks = (span + chunk - 1) / chunk;
  thread_local std::vector<float> partial;
  partial.assign(static_cast<size_t>(splits * outCols), 0.0f);
  float *partials = partial.data();
  qc::parallelFor(splits * colChunks, qc::workerCount(splits * colChunks),
                  [&](int64_t i, int64_t /*worker*/) {
                    int64_t split = i / colChunks, c = i % colChunks;
                    int64_t from = colBegin + c * chunk;
                    call(partials + split * outCols, from,
                         std::min(colEnd, from + chunk),
                         groupBegin + groups * split / splits,
                         groupBegin + groups * (split + 1) / splits);
                  });
  float *row = outAligned + outOffset;
  for (int64_t n = colBegin; n < colEnd; ++n) {
    float sum = partials[n];
    for (int64_t split = 1; split < splits; ++split)
      sum += partials[split * outCols + n];
    row[n * outColStride] += sum;
  }
}

namespace {

/// Before each payload: where its block starts and how large the block is.
struct BlockHeader {
  void *base;
  size_t total;
};
constexpr size_t kMinAlignment = 64;
/// Blocks in [kCacheFrom, kCacheUpTo] are kept, kCacheLimit bytes in all
/// (a decode step of SmolLM2 allocates about 8 MB in such blocks; more
/// would only hold idle blocks of sizes a call no longer asks for).
/// Larger ones (a perplexity window's logits) are rare enough per call that
/// the system's pages cost little, and keeping them would add their size to
/// the peak memory whenever the next call asks for another size.
constexpr size_t kCacheFrom = size_t(64) << 10;
constexpr size_t kCacheUpTo = size_t(16) << 20;
constexpr size_t kCacheLimit = size_t(64) << 20;

struct BlockCache {
  std::mutex mutex;
  std::unordered_map<size_t, std::vector<void *>> free;
  size_t cachedBytes = 0;
};

/// Never destroyed: compiled code may free a buffer while the process
/// exits, after static destructors would have run.
BlockCache &blockCache() {
  static BlockCache *cache = new BlockCache();
  return *cache;
}

void *allocate(uint64_t alignment, uint64_t size) {
  // Like aligned_alloc: an alignment that is not a power of two is refused.
  if (alignment & (alignment - 1))
    return nullptr;
  size_t align = std::max<size_t>(kMinAlignment, alignment);
  // Room for the header, then for aligning the payload; whole pages for
  // cached blocks, so that nearby sizes share a block.
  size_t total = size + sizeof(BlockHeader) + align;
  if (total < size)
    return nullptr;
  total = (total + kMinAlignment - 1) & ~(kMinAlignment - 1);
  void *base = nullptr;
  if (total >= kCacheFrom && total <= kCacheUpTo) {
    total = (total + 4095) & ~size_t(4095);
    BlockCache &cache = blockCache();
    std::lock_guard<std::mutex> lock(cache.mutex);
    auto it = cache.free.find(total);
    if (it != cache.free.end() && !it->second.empty()) {
      base = it->second.back();
      it->second.pop_back();
      cache.cachedBytes -= total;
    }
  }
  if (!base)
    base = std::aligned_alloc(kMinAlignment, total);
  if (!base)
    return nullptr;
  auto payload =
      (reinterpret_cast<uintptr_t>(base) + sizeof(BlockHeader) + align - 1) &
      ~(uintptr_t(align) - 1);
  auto *header = reinterpret_cast<BlockHeader *>(payload) - 1;
  header->base = base;
  header->total = total;
  return reinterpret_cast<void *>(payload);
}

} // namespace

void *_mlir_memref_to_llvm_alloc(uint64_t size) {
  return allocate(kMinAlignment, size);
}

void *_mlir_memref_to_llvm_aligned_alloc(uint64_t alignment, uint64_t size) {
  return allocate(alignment, size);
}

void _mlir_memref_to_llvm_free(void *ptr) {
  if (!ptr)
    return;
  BlockHeader header = *(static_cast<BlockHeader *>(ptr) - 1);
  if (header.total >= kCacheFrom && header.total <= kCacheUpTo) {
    BlockCache &cache = blockCache();
    std::lock_guard<std::mutex> lock(cache.mutex);
    if (cache.cachedBytes + header.total <= kCacheLimit) {
      cache.free[header.total].push_back(header.base);
      cache.cachedBytes += header.total;
      return;
    }
  }
  std::free(header.base);
}

std::vector<std::pair<std::string, void *>> qc::compiledCodeSymbols() {
  std::vector<std::pair<std::string, void *>> symbols = {
      {"qc_rt_parallel_linear",
       reinterpret_cast<void *>(&qc_rt_parallel_linear)},
      {"_mlir_memref_to_llvm_alloc",
       reinterpret_cast<void *>(&_mlir_memref_to_llvm_alloc)},
      {"_mlir_memref_to_llvm_aligned_alloc",
       reinterpret_cast<void *>(&_mlir_memref_to_llvm_aligned_alloc)},
      {"_mlir_memref_to_llvm_free",
       reinterpret_cast<void *>(&_mlir_memref_to_llvm_free)}};
  // Every memref lowers to the same fields whatever its element type, so
  // one function serves each typed declaration of the dispatcher.
  for (const char *s : {"f32", "f16", "bf16"})
    for (const char *z : {"f32", "f16", "bf16", "i32"})
      symbols.emplace_back(
          std::string("qc_rt_parallel_dequant_linear_") + s + "_" + z,
          reinterpret_cast<void *>(&qc_rt_parallel_dequant_linear));
  return symbols;
}
