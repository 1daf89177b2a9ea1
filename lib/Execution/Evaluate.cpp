//===- Evaluate.cpp - Perplexity and generation on the CPU path -----------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Windows are independent, so perplexity parallelizes across them on the
// process pool (one window per index); each worker owns its logits
// buffers. Generation uses the KV-cached decode entry point when the model
// was compiled with it (one call for the prompt, then one per token) and
// otherwise re-runs the whole prefix for every new token with the same
// forward function perplexity uses; the two give the same tokens, which is
// what the KV-cache tests compare.
//
//===----------------------------------------------------------------------===//

#include "qc/Execution/Evaluate.h"

#include "qc/runtime/Progress.h"
#include "qc/runtime/ThreadPool.h"
#include "llvm/ADT/STLExtras.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <mutex>

using namespace mlir::qc;
using ::qc::Status;

Status
mlir::qc::evaluatePerplexity(const CpuExecutable &model,
                             const std::vector<std::vector<int>> &windows,
                             int threads, bool progress, PerplexityResult &out,
                             const CpuExecutable *reference) {
  if (reference && reference->vocabSize() != model.vocabSize())
    return Status::error("the reference model's vocabulary (" +
                         std::to_string(reference->vocabSize()) +
                         ") differs from the model's (" +
                         std::to_string(model.vocabSize()) + ")");
  auto start = std::chrono::steady_clock::now();
  int64_t vocab = model.vocabSize();
  std::vector<double> sums(windows.size(), 0.0);
  std::vector<double> refSums(windows.size(), 0.0);
  std::vector<double> klSums(windows.size(), 0.0);
  std::atomic<int64_t> done{0};
  std::mutex errorMutex;
  Status firstError = Status::ok();
  int64_t totalPredictions = 0;
  for (const auto &w : windows)
    totalPredictions += w.empty() ? 0 : static_cast<int64_t>(w.size()) - 1;
  ::qc::Progress bar("perplexity", totalPredictions, progress);

  // One window per index of the process pool's loop (ThreadPool.h), on
  // `threads` workers; each worker reuses its own buffers. After an error
  // the remaining windows are skipped.
  const int64_t workers = std::max<int64_t>(
      1, std::min<int64_t>(threads > 0 ? threads : ::qc::threadCount(),
                           static_cast<int64_t>(windows.size())));
  struct Buffers {
    std::vector<float> logits, refLogits;
    std::vector<int32_t> ids;
  };
  std::vector<Buffers> buffers(static_cast<size_t>(workers));
  std::atomic<bool> failed{false};
  auto fail = [&](Status s) {
    std::lock_guard<std::mutex> lock(errorMutex);
    if (firstError)
      firstError = std::move(s);
    failed = true;
  };
  ::qc::parallelFor(
      static_cast<int64_t>(windows.size()), workers,
      [&](int64_t i, int64_t worker) {
        const std::vector<int> &w = windows[static_cast<size_t>(i)];
        if (w.size() < 2 || failed)
          return;
        Buffers &b = buffers[static_cast<size_t>(worker)];
        // The last token is only a target, never an input.
        b.ids.assign(w.begin(), w.end() - 1);
        const int64_t rows = static_cast<int64_t>(b.ids.size());
        b.logits.resize(rows * vocab);
        if (Status s = model.forward(b.ids.data(), rows, b.logits.data()); !s)
          return fail(s.withContext("window " + std::to_string(i)));
        sums[i] = sumNegLogLikelihood(b.logits.data(), vocab, w);
        if (reference) {
          b.refLogits.resize(b.logits.size());
          if (Status s =
                  reference->forward(b.ids.data(), rows, b.refLogits.data());
              !s)
            return fail(
                s.withContext("reference model, window " + std::to_string(i)));
          refSums[i] = sumNegLogLikelihood(b.refLogits.data(), vocab, w);
          klSums[i] =
              sumKLDivergence(b.refLogits.data(), b.logits.data(), vocab, rows);
        }
        int64_t d = done += rows;
        if (progress) {
          std::lock_guard<std::mutex> lock(errorMutex);
          bar.update(d);
        }
      });
  bar.finish();
  if (!firstError)
    return firstError;
  if (totalPredictions == 0)
    return Status::error("perplexity: nothing to score (no window has a "
                         "token after BOS)");
  double total = 0.0, refTotal = 0.0, klTotal = 0.0;
  for (size_t i = 0; i < sums.size(); ++i) {
    total += sums[i];
    refTotal += refSums[i];
    klTotal += klSums[i];
  }
  out.tokens = totalPredictions;
  out.windows = static_cast<int64_t>(windows.size());
  out.nll = total / static_cast<double>(totalPredictions);
  out.perplexity = std::exp(out.nll);
  if (reference) {
    out.klDivergence = klTotal / static_cast<double>(totalPredictions);
    out.referencePerplexity =
        std::exp(refTotal / static_cast<double>(totalPredictions));
  }
  out.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  return Status::ok();
}

double mlir::qc::sumKLDivergence(const float *refLogits, const float *logits,
                                 int64_t vocab, size_t positions) {
  double total = 0.0;
  std::vector<double> logP(vocab), logQ(vocab);
  auto logSoftmax = [vocab](const float *row, std::vector<double> &out) {
    double maxv = row[0];
    for (int64_t v = 1; v < vocab; ++v)
      maxv = std::max(maxv, static_cast<double>(row[v]));
    double sum = 0.0;
    for (int64_t v = 0; v < vocab; ++v)
      sum += std::exp(row[v] - maxv);
    double logZ = maxv + std::log(sum);
    for (int64_t v = 0; v < vocab; ++v)
      out[v] = row[v] - logZ;
  };
  for (size_t pos = 0; pos < positions; ++pos) {
    logSoftmax(refLogits + pos * vocab, logP);
    logSoftmax(logits + pos * vocab, logQ);
    double kl = 0.0;
    for (int64_t v = 0; v < vocab; ++v)
      kl += std::exp(logP[v]) * (logP[v] - logQ[v]);
    total += kl;
  }
  return total;
}

Status mlir::qc::generate(const CpuExecutable &model, std::vector<int> &tokens,
                          int64_t count, ::qc::Sampler &sampler,
                          llvm::ArrayRef<int> stopTokens, int64_t maxContext,
                          GenerationStats *stats,
                          const GenerateOptions &options) {
  if (tokens.empty())
    return Status::error("generate: the prompt must hold at least BOS");
  GenerationStats local;
  GenerationStats &st = stats ? *stats : local;
  st = GenerationStats();
  st.promptTokens = static_cast<int64_t>(tokens.size());
  st.kvCache = options.kvCache && model.hasDecode();
  if (!st.kvCache && !model.hasForward())
    return Status::error("generate: the model was compiled without its "
                         "full-window entry point, and the KV cache is off");
  int64_t vocab = model.vocabSize();
  std::vector<float> logits;
  std::vector<int32_t> ids;
  KVCache cache;
  if (st.kvCache && count > 0) {
    // Room for the prompt and every token that may be fed back (the last
    // generated one never is), within the context.
    int64_t capacity = static_cast<int64_t>(tokens.size()) + count - 1;
    if (maxContext > 0)
      capacity = std::min(capacity, maxContext);
    capacity = std::max<int64_t>(capacity, static_cast<int64_t>(tokens.size()));
    QC_RETURN_IF_ERROR(model.createCache(capacity, cache));
  }
  for (int64_t step = 0; step < count; ++step) {
    if (maxContext > 0 && static_cast<int64_t>(tokens.size()) >= maxContext) {
      st.contextFull = true;
      break;
    }
    auto start = std::chrono::steady_clock::now();
    const float *last;
    if (st.kvCache) {
      // The positions not yet in the cache: the prompt, then the token
      // appended by the previous step.
      ids.assign(tokens.begin() + cache.length, tokens.end());
      logits.resize(vocab);
      QC_RETURN_IF_ERROR(model.decode(
          ids.data(), static_cast<int64_t>(ids.size()), cache, logits.data()));
      last = logits.data();
    } else {
      ids.assign(tokens.begin(), tokens.end());
      logits.resize(ids.size() * vocab);
      QC_RETURN_IF_ERROR(model.forward(
          ids.data(), static_cast<int64_t>(ids.size()), logits.data()));
      last = logits.data() + (ids.size() - 1) * vocab;
    }
    if (options.logitsTrace)
      options.logitsTrace->insert(options.logitsTrace->end(), last,
                                  last + vocab);
    int next = sampler.sample(last);
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count();
    (step == 0 ? st.prefillSeconds : st.decodeSeconds) += seconds;
    tokens.push_back(next);
    ++st.generated;
    if (llvm::is_contained(stopTokens, next)) {
      st.stopped = true;
      break;
    }
  }
  return Status::ok();
}
