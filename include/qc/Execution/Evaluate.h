//===- Evaluate.h - Perplexity and generation on the CPU path ---*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//

#ifndef QC_EXECUTION_EVALUATE_H
#define QC_EXECUTION_EVALUATE_H

#include "qc/Execution/CpuExecutable.h"
#include "qc/runtime/Sampler.h"

#include <vector>

namespace mlir::qc {

/// Result of scoring a set of windows.
struct PerplexityResult {
  double nll = 0.0;        ///< mean negative log-likelihood per token
  double perplexity = 0.0; ///< exp(nll)
  int64_t tokens = 0;      ///< scored predictions
  int64_t windows = 0;
  double seconds = 0.0;    ///< wall time of the scoring
};

/// Scores `windows` (each BOS + tokens; every position predicts the next)
/// with `threads` worker threads. Per-window sums are combined in window
/// order, so the result does not depend on the thread count.
::qc::Status evaluatePerplexity(const CpuExecutable &model,
                                const std::vector<std::vector<int>> &windows,
                                int threads, bool progress,
                                PerplexityResult &out);

/// Appends `count` tokens to `tokens` (which must hold at least BOS), each
/// drawn by `sampler` from the logits of the last position. Stops early at
/// `stopToken` (if >= 0) or when the context reaches `maxContext`.
::qc::Status generate(const CpuExecutable &model, std::vector<int> &tokens,
                      int64_t count, ::qc::Sampler &sampler, int stopToken,
                      int64_t maxContext);

} // namespace mlir::qc

#endif // QC_EXECUTION_EVALUATE_H
