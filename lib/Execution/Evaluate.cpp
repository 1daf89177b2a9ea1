//===- Evaluate.cpp - Perplexity and generation on the CPU path -----------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Windows are independent, so perplexity parallelizes across them with no
// shared state besides an atomic work counter; each worker owns its logits
// buffer. Generation re-runs the whole prefix for every new token: there is
// no KV cache on this path yet, which is fine for short stories and keeps
// the forward function identical to the one perplexity uses.
//
//===----------------------------------------------------------------------===//

#include "qc/Execution/Evaluate.h"

#include "qc/runtime/Progress.h"

#include <atomic>
#include <chrono>
#include <cmath>
#include <mutex>
#include <thread>

using namespace mlir::qc;
using ::qc::Status;

Status mlir::qc::evaluatePerplexity(const CpuExecutable &model,
                                    const std::vector<std::vector<int>> &windows,
                                    int threads, bool progress,
                                    PerplexityResult &out) {
  auto start = std::chrono::steady_clock::now();
  int64_t vocab = model.vocabSize();
  std::vector<double> sums(windows.size(), 0.0);
  std::atomic<size_t> next{0};
  std::atomic<int64_t> done{0};
  std::mutex errorMutex;
  Status firstError = Status::ok();
  int64_t totalPredictions = 0;
  for (const auto &w : windows)
    totalPredictions += w.empty() ? 0 : static_cast<int64_t>(w.size()) - 1;
  ::qc::Progress bar("perplexity", totalPredictions, progress);

  auto worker = [&]() {
    std::vector<float> logits;
    std::vector<int32_t> ids;
    for (size_t i = next++; i < windows.size(); i = next++) {
      const std::vector<int> &w = windows[i];
      if (w.size() < 2)
        continue;
      // The last token is only a target, never an input.
      ids.assign(w.begin(), w.end() - 1);
      logits.resize(ids.size() * vocab);
      Status s = model.forward(ids.data(), static_cast<int64_t>(ids.size()),
                               logits.data());
      if (!s) {
        std::lock_guard<std::mutex> lock(errorMutex);
        if (firstError)
          firstError = s.withContext("window " + std::to_string(i));
        return;
      }
      sums[i] = sumNegLogLikelihood(logits.data(), vocab, w);
      int64_t d = done += static_cast<int64_t>(ids.size());
      if (progress) {
        std::lock_guard<std::mutex> lock(errorMutex);
        bar.update(d);
      }
    }
  };
  int n = std::max(1, threads);
  std::vector<std::thread> pool;
  for (int t = 1; t < n; ++t)
    pool.emplace_back(worker);
  worker();
  for (auto &t : pool)
    t.join();
  bar.finish();
  if (!firstError)
    return firstError;
  if (totalPredictions == 0)
    return Status::error("perplexity: nothing to score (no window has a "
                         "token after BOS)");
  double total = 0.0;
  for (double s : sums)
    total += s;
  out.tokens = totalPredictions;
  out.windows = static_cast<int64_t>(windows.size());
  out.nll = total / static_cast<double>(totalPredictions);
  out.perplexity = std::exp(out.nll);
  out.seconds = std::chrono::duration<double>(
                    std::chrono::steady_clock::now() - start)
                    .count();
  return Status::ok();
}

Status mlir::qc::generate(const CpuExecutable &model, std::vector<int> &tokens,
                          int64_t count, ::qc::Sampler &sampler, int stopToken,
                          int64_t maxContext) {
  if (tokens.empty())
    return Status::error("generate: the prompt must hold at least BOS");
  int64_t vocab = model.vocabSize();
  std::vector<float> logits;
  std::vector<int32_t> ids;
  for (int64_t step = 0; step < count; ++step) {
    if (maxContext > 0 && static_cast<int64_t>(tokens.size()) >= maxContext)
      break;
    ids.assign(tokens.begin(), tokens.end());
    logits.resize(ids.size() * vocab);
    QC_RETURN_IF_ERROR(model.forward(ids.data(),
                                     static_cast<int64_t>(ids.size()),
                                     logits.data()));
    int next = sampler.sample(logits.data() + (ids.size() - 1) * vocab);
    tokens.push_back(next);
    if (next == stopToken)
      break;
  }
  return Status::ok();
}
