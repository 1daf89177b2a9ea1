//===- Sampler.h - Next-token sampling --------------------------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Picks the next token from a row of logits produced by any executor
// (reference CPU forward pass or a compiled artifact): greedy argmax,
// temperature sampling, or nucleus (top-p) sampling. The arithmetic and the
// xorshift RNG follow llama2.c run.c step by step so that a given seed
// reproduces llama2.c's own generations.
//
//===----------------------------------------------------------------------===//

#ifndef QC_RUNTIME_SAMPLER_H
#define QC_RUNTIME_SAMPLER_H

#include <cstdint>
#include <vector>

namespace qc {

/// A stateful sampler over a fixed vocabulary. Not thread-safe: each
/// generation stream owns one.
class Sampler {
public:
  /// Seed substituted for 0, on which xorshift would be stuck at 0 forever
  /// (run.c instead replaces 0 by the wall-clock time, which is not
  /// reproducible).
  static constexpr uint64_t kZeroSeedReplacement = 0x9E3779B97F4A7C15ull;

  /// A sampler for `vocab` logits. temperature == 0 (also any value that is
  /// not > 0, e.g. negative or NaN) means greedy argmax. topP in (0, 1)
  /// enables nucleus sampling; any other value (<= 0, >= 1, NaN) samples
  /// from the full distribution, as run.c does. `seed` initialises run.c's
  /// xorshift state (0 is replaced by kZeroSeedReplacement).
  Sampler(int64_t vocab, float temperature, float topP, uint64_t seed);

  /// Returns the next token for `logits` (vocab floats, not modified), or -1
  /// when the vocabulary is empty. Greedy: lowest id among the maxima.
  /// Otherwise: logits / temperature, softmax, one random_f32 coin, then
  /// run.c's sample_mult or sample_topp (candidates below
  /// (1 - topP) / (vocab - 1) cropped, sorted by probability descending,
  /// ties in id order, truncated once the cumulative probability exceeds
  /// topP). Where run.c's crop leaves no candidate (a near-flat
  /// distribution with topP < 1/vocab, undefined behaviour in run.c), the
  /// argmax is returned.
  int sample(const float *logits);

  /// Index of the largest of `n` values, lowest index on ties (run.c's
  /// sample_argmax); -1 when n <= 0.
  static int argmax(const float *values, int64_t n);

  /// run.c's `random_u32`: one xorshift64* step on `state`.
  static uint32_t randomU32(uint64_t &state);

  /// run.c's `random_f32`: a float in [0, 1) with 24 random bits.
  static float randomF32(uint64_t &state);

  /// Current RNG state (for checkpointing a generation).
  uint64_t rngState() const { return state; }

  int64_t vocabSize() const { return vocab; } ///< Logits per call.
  float temperature() const { return temp; }  ///< As constructed.
  float topP() const { return topp; }         ///< As constructed.

private:
  /// A probability with its token id, sorted in nucleus sampling.
  struct ProbIndex {
    float prob; ///< Softmax probability.
    int index;  ///< Token id.
  };

  int64_t vocab;  ///< Logits per call (negative clamped to 0).
  float temp;     ///< Softmax temperature; not > 0 means greedy.
  float topp;     ///< Nucleus mass; outside (0, 1) means no truncation.
  uint64_t state; ///< xorshift state, never 0.
  /// Scratch buffers reused across calls so sampling does not allocate.
  std::vector<float> probs;
  std::vector<ProbIndex> candidates;
};

} // namespace qc

#endif // QC_RUNTIME_SAMPLER_H
