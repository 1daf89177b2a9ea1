//===- ThreadPool.h - The one worker pool of a qc process -------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Every parallel loop in qc (the block-wise reference of AWQ / AutoRound /
// sequential GPTQ, perplexity evaluation, the float64 reference of the
// linear layers) runs on one process-wide pool, sized once: by a tool's
// --num-threads option (setThreadCount), else by the QC_THREADS environment
// variable, else by the hardware concurrency. Threads are started on first
// use and reused, so a pass that runs thousands of small loops does not
// start thousands of threads, and a run never uses more threads than asked.
//
// Results never depend on the thread count: parallelFor hands out indices
// dynamically, and every caller writes disjoint outputs per index (or per
// worker slot) and combines them in index order.
//
//===----------------------------------------------------------------------===//

#ifndef QC_RUNTIME_THREADPOOL_H
#define QC_RUNTIME_THREADPOOL_H

#include <cstdint>
#include <functional>

namespace qc {

/// The most workers one loop uses (a cap on absurd requests).
constexpr int64_t kMaxThreads = 256;

/// Sets the pool size for the rest of the process (--num-threads);
/// n <= 0 restores the default (QC_THREADS, else the hardware concurrency).
/// Threads already started stay idle when the count shrinks.
void setThreadCount(int64_t n);

/// The pool size: the setThreadCount value, else QC_THREADS when it is a
/// positive integer, else std::thread::hardware_concurrency() (at least 1),
/// capped at kMaxThreads.
int64_t threadCount();

/// The workers a loop of `n` independent items uses: min(threadCount(), n),
/// at least 1. Callers size per-worker scratch space with it.
int64_t workerCount(int64_t n);

/// Runs fn(i, worker) for every i in [0, n) on `workers` threads (the
/// calling thread is worker 0; the others come from the pool), worker in
/// [0, workers). Returns when every call has returned. A call made from
/// inside a pool worker, or with workers <= 1, runs serially on the
/// calling thread as worker 0, so nested loops cannot deadlock. Calls from
/// different threads run one at a time.
void parallelFor(int64_t n, int64_t workers,
                 const std::function<void(int64_t i, int64_t worker)> &fn);

} // namespace qc

#endif // QC_RUNTIME_THREADPOOL_H
