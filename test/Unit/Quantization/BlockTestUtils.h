//===- BlockTestUtils.h - Random decoder blocks for the tests ---*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Shared by the BlockReference, AWQ and AutoRound tests: a seeded uniform
// generator (the same stream on every platform, unlike
// std::uniform_real_distribution) and a random block whose linear weights
// are scaled by 1/sqrt(K), as trained weights roughly are.
//
//===----------------------------------------------------------------------===//

#ifndef QC_TEST_UNIT_QUANTIZATION_BLOCKTESTUTILS_H
#define QC_TEST_UNIT_QUANTIZATION_BLOCKTESTUTILS_H

#include "qc/Quantization/Algorithms/BlockReference.h"

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace qc::quant::test {

/// Uniform floats from a 64-bit Mersenne twister, platform independent.
struct Rng {
  std::mt19937_64 gen;
  explicit Rng(uint64_t seed) : gen(seed) {}
  /// A value in [lo, hi) from the top 53 bits of one draw.
  float uniform(float lo, float hi) {
    double u = static_cast<double>(gen() >> 11) * (1.0 / 9007199254740992.0);
    return static_cast<float>(lo + (hi - lo) * u);
  }
  /// Resizes `v` to `n` values drawn from [lo, hi).
  void fill(std::vector<float> &v, size_t n, float lo, float hi) {
    v.resize(n);
    for (float &x : v)
      x = uniform(lo, hi);
  }
};

/// Random weights for a block of `c`: norms in [0.5, 1.5), linear weights
/// in +-1/sqrt(K), biases (if c.attentionBias) in +-0.3.
inline BlockWeights randomBlock(const ModelConfig &c, uint64_t seed) {
  Rng r(seed);
  BlockWeights w;
  r.fill(w.inputNorm, c.dim, 0.5f, 1.5f);
  r.fill(w.postNorm, c.dim, 0.5f, 1.5f);
  for (BlockLinear l : kAllBlockLinears) {
    int64_t N, K;
    blockLinearShape(c, l, N, K);
    float a = 1.0f / std::sqrt(static_cast<float>(K));
    r.fill(w.linear(l), N * K, -a, a);
  }
  if (c.attentionBias) {
    r.fill(w.qBias, c.nHeads * c.headDim, -0.3f, 0.3f);
    r.fill(w.kBias, c.nKVHeads * c.headDim, -0.3f, 0.3f);
    r.fill(w.vBias, c.nKVHeads * c.headDim, -0.3f, 0.3f);
  }
  return w;
}

} // namespace qc::quant::test

#endif // QC_TEST_UNIT_QUANTIZATION_BLOCKTESTUTILS_H
