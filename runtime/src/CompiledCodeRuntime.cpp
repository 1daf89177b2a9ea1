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

/// Columns per chunk of the dequantize-linear kernel are a multiple of
/// this: its blocks are 2 x 16 (AVX-512) or 2 x 8 lanes, and a chunk edge
/// inside a block would make both neighbours run masked vectors.
constexpr int64_t kColumnGranule = 64;

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

extern "C" void
qc_rt_parallel_dequant_linear(QcDequantLinearKernel kernel, QC_RT_MEMREF2D(x),
                              QC_RT_MEMREF2D_OF(int32_t, qweight),
                              QC_RT_MEMREF2D(scales), QC_RT_MEMREF2D(zeros),
                              QC_RT_MEMREF2D(out), int64_t colBegin,
                              int64_t colEnd) {
  auto run = [&](int64_t begin, int64_t end) {
    kernel(xAllocated, xAligned, xOffset, xRows, xCols, xRowStride, xColStride,
           qweightAllocated, qweightAligned, qweightOffset, qweightRows,
           qweightCols, qweightRowStride, qweightColStride, scalesAllocated,
           scalesAligned, scalesOffset, scalesRows, scalesCols, scalesRowStride,
           scalesColStride, zerosAllocated, zerosAligned, zerosOffset,
           zerosRows, zerosCols, zerosRowStride, zerosColStride, outAllocated,
           outAligned, outOffset, outRows, outCols, outRowStride, outColStride,
           begin, end);
  };
  splitAmongWorkers(colBegin, colEnd, kColumnGranule,
                    (colEnd - colBegin) * xRows * xCols, run);
}

std::vector<std::pair<std::string, void *>> qc::compiledCodeSymbols() {
  return {{"qc_rt_parallel_linear",
           reinterpret_cast<void *>(&qc_rt_parallel_linear)},
          {"qc_rt_parallel_dequant_linear",
           reinterpret_cast<void *>(&qc_rt_parallel_dequant_linear)}};
}
