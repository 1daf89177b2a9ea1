//===- Sampler.cpp - Next-token sampling ------------------------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// llama2.c run.c's sampling, transcribed: same float operations in the same
// order (divide by temperature, max-subtracted expf softmax, cumulative
// sums) and the same xorshift64* generator, so that sampled sequences match
// llama2.c for a given seed. The only departures are documented in
// Sampler.h: a stable sort instead of qsort (deterministic tie order) and
// well-defined results where run.c has undefined behaviour.
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/Sampler.h"

#include <algorithm>
#include <cmath>

namespace qc {

Sampler::Sampler(int64_t vocab, float temperature, float topP, uint64_t seed)
    : vocab(vocab < 0 ? 0 : vocab), temp(temperature), topp(topP),
      state(seed == 0 ? kZeroSeedReplacement : seed) {}

int Sampler::argmax(const float *values, int64_t n) {
  if (n <= 0)
    return -1;
  int64_t best = 0;
  float bestValue = values[0];
  for (int64_t i = 1; i < n; ++i) {
    // Strict `>`: the first maximum wins, as in run.c.
    if (values[i] > bestValue) {
      best = i;
      bestValue = values[i];
    }
  }
  return static_cast<int>(best);
}

uint32_t Sampler::randomU32(uint64_t &s) {
  // xorshift* (Marsaglia / Vigna), verbatim from run.c.
  s ^= s >> 12;
  s ^= s << 25;
  s ^= s >> 27;
  return static_cast<uint32_t>((s * 0x2545F4914F6CDD1Dull) >> 32);
}

float Sampler::randomF32(uint64_t &s) {
  // The top 24 bits fit a float mantissa exactly, so the result is < 1.
  return static_cast<float>(randomU32(s) >> 8) / 16777216.0f;
}

int Sampler::sample(const float *logits) {
  if (vocab == 0)
    return -1;
  if (!(temp > 0.0f))
    return argmax(logits, vocab);

  const int n = static_cast<int>(vocab);
  probs.assign(logits, logits + n);
  // Division, not multiplication by 1/T, to round exactly like run.c.
  for (int i = 0; i < n; ++i)
    probs[i] /= temp;
  float maxVal = probs[0];
  for (int i = 1; i < n; ++i)
    if (probs[i] > maxVal)
      maxVal = probs[i];
  float sum = 0.0f;
  for (int i = 0; i < n; ++i) {
    probs[i] = std::exp(probs[i] - maxVal);
    sum += probs[i];
  }
  for (int i = 0; i < n; ++i)
    probs[i] /= sum;

  // Exactly one coin per sampled token, drawn before the branch, so the RNG
  // stream stays aligned with run.c whatever topP is.
  const float coin = randomF32(state);

  if (!(topp > 0.0f && topp < 1.0f)) {
    // sample_mult: inverse CDF over the full distribution.
    float cdf = 0.0f;
    for (int i = 0; i < n; ++i) {
      cdf += probs[i];
      if (coin < cdf)
        return i;
    }
    return n - 1; // rounding left the total just below the coin
  }

  // sample_topp. A token with p < (1 - topP) / (n - 1) can never be in the
  // nucleus (the others could not reach topP without it), so cropping them
  // before sorting is safe and makes the sort short.
  const float cutoff = (1.0f - topp) / static_cast<float>(n - 1);
  candidates.clear();
  for (int i = 0; i < n; ++i)
    if (probs[i] >= cutoff)
      candidates.push_back({probs[i], i});
  if (candidates.empty())
    return argmax(probs.data(), n);
  std::stable_sort(
      candidates.begin(), candidates.end(),
      [](const ProbIndex &a, const ProbIndex &b) { return a.prob > b.prob; });
  float cumulative = 0.0f;
  int last = static_cast<int>(candidates.size()) - 1;
  for (int i = 0; i < static_cast<int>(candidates.size()); ++i) {
    cumulative += candidates[i].prob;
    if (cumulative > topp) {
      last = i;
      break;
    }
  }
  // Rescale the coin to the truncated mass instead of renormalising probs.
  const float r = coin * cumulative;
  float cdf = 0.0f;
  for (int i = 0; i <= last; ++i) {
    cdf += candidates[i].prob;
    if (r < cdf)
      return candidates[i].index;
  }
  return candidates[last].index;
}

} // namespace qc
