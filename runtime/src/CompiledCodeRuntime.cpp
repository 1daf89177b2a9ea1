//===- CompiledCodeRuntime.cpp - Functions compiled models call -----------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/CompiledCodeRuntime.h"

#include "qc/runtime/ThreadPool.h"

#include <algorithm>

namespace {

/// Below this many multiply-adds a product runs on the calling thread: waking
/// workers costs microseconds, about what 64K multiply-adds take.
constexpr int64_t kMinParallelWork = int64_t(1) << 16;

/// Chunks are whole multiples of this many rows, so that every chunk but the
/// last fills the kernel's register blocks (2, 4 or 8 rows).
constexpr int64_t kRowGranule = 8;

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
  int64_t rows = rowEnd - rowBegin;
  int64_t work = rows * xRows * wCols;
  int64_t workers = qc::threadCount();
  if (rows <= kRowGranule || workers <= 1 || work < kMinParallelWork) {
    run(rowBegin, rowEnd);
    return;
  }
  // About four chunks per worker: enough to even out a worker that starts
  // late, few enough that each chunk streams a long run of weight rows.
  int64_t chunk = (rows + 4 * workers - 1) / (4 * workers);
  chunk = (chunk + kRowGranule - 1) / kRowGranule * kRowGranule;
  int64_t chunks = (rows + chunk - 1) / chunk;
  qc::parallelFor(chunks, qc::workerCount(chunks),
                  [&](int64_t i, int64_t /*worker*/) {
                    int64_t begin = rowBegin + i * chunk;
                    run(begin, std::min(rowEnd, begin + chunk));
                  });
}

std::vector<std::pair<std::string, void *>> qc::compiledCodeSymbols() {
  return {{"qc_rt_parallel_linear",
           reinterpret_cast<void *>(&qc_rt_parallel_linear)}};
}
