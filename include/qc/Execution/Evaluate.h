//===- Evaluate.h - Perplexity and generation on the CPU path ---*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//

#ifndef QC_EXECUTION_EVALUATE_H
#define QC_EXECUTION_EVALUATE_H

#include "qc/Execution/CpuExecutable.h"
#include "qc/runtime/Sampler.h"
#include "llvm/ADT/ArrayRef.h"

#include <vector>

namespace mlir::qc {

/// Result of scoring a set of windows.
struct PerplexityResult {
  double nll = 0.0;        ///< mean negative log-likelihood per token
  double perplexity = 0.0; ///< exp(nll)
  int64_t tokens = 0;      ///< scored predictions
  int64_t windows = 0;
  double seconds = 0.0; ///< wall time of the scoring
  /// Mean per-token KL(reference || model) in nats, when a reference model
  /// was given (the float model, for a quantized one); else 0.
  double klDivergence = 0.0;
  /// The reference model's perplexity on the same windows, when given.
  double referencePerplexity = 0.0;
};

/// Scores `windows` (each BOS + tokens; every position predicts the next)
/// on `threads` workers of the process pool (0: its size, ThreadPool.h).
/// Per-window sums are combined in window order, so the result does not
/// depend on the thread count.
::qc::Status evaluatePerplexity(const CpuExecutable &model,
                                const std::vector<std::vector<int>> &windows,
                                int threads, bool progress,
                                PerplexityResult &out,
                                const CpuExecutable *reference = nullptr);

/// Sum over the positions of `window` (all but the last token) of
/// KL(p || q), where p and q are the softmax of `refLogits` and `logits`
/// (both (window.size() - 1) x vocab); accumulated in double.
double sumKLDivergence(const float *refLogits, const float *logits,
                       int64_t vocab, size_t positions);

/// What a generate() call did, for the speed and stop reason users see.
struct GenerationStats {
  /// Tokens in `tokens` before generation (the prompt).
  int64_t promptTokens = 0;
  /// Tokens appended.
  int64_t generated = 0;
  /// Seconds of the first forward pass (the prompt; it yields the first
  /// generated token).
  double prefillSeconds = 0.0;
  /// Seconds of the forward passes after the first (one per later token).
  double decodeSeconds = 0.0;
  /// The KV-cached decode entry point was used.
  bool kvCache = false;
  /// The last token appended is one of the stop tokens.
  bool stopped = false;
  /// Generation ended because the context reached maxContext.
  bool contextFull = false;
};

/// How generate() runs the model.
struct GenerateOptions {
  /// Use the KV-cached decode entry point (prefill of the prompt, then one
  /// position per token) when the model has one; otherwise, or when false,
  /// every token recomputes the whole prefix with `forward`.
  bool kvCache = true;
  /// When given, receives the logits each token was drawn from, one row of
  /// vocabSize floats per generated token (for comparing the two paths).
  std::vector<float> *logitsTrace = nullptr;
};

/// Appends `count` tokens to `tokens` (which must hold at least BOS), each
/// drawn by `sampler` from the logits of the last position. Stops early
/// after appending one of `stopTokens` (negative ids never match) or when
/// the context reaches `maxContext` (> 0). Fills `stats` when given. With
/// the KV cache the prompt is one decode call (prefill) and each further
/// token one more, so a token costs time linear in the context; without it
/// each token re-runs the whole sequence.
::qc::Status generate(const CpuExecutable &model, std::vector<int> &tokens,
                      int64_t count, ::qc::Sampler &sampler,
                      llvm::ArrayRef<int> stopTokens, int64_t maxContext,
                      GenerationStats *stats = nullptr,
                      const GenerateOptions &options = {});

} // namespace mlir::qc

#endif // QC_EXECUTION_EVALUATE_H
