//===- GPTQTest.cpp - Tests of the GPTQ solver ------------------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Unit tests of qc::quant::quantizeGPTQ and HessianAccumulator against the
// invariants of ../shared/docs/ALGORITHMS.md §3.6 (diagonal H == RTN, loss
// identity, scale invariance, act-order with sorted diagonal), g_idx rules
// of §3.5, the pre-processing of §3.2 (dead columns, static groups), the
// failure ladder of §3.7, ragged groups (K = 172, G = 32 as in the bundled
// model's w2) and determinism.
//
//===----------------------------------------------------------------------===//

#include "qc/Quantization/Algorithms/GPTQ.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

using namespace qc;
using namespace qc::quant;

namespace {

QuantConfig makeConfig(int bits, int64_t groupSize, bool sym) {
  QuantConfig cfg;
  cfg.bits = bits;
  cfg.groupSize = groupSize;
  cfg.sym = sym;
  cfg.scaleDType = ScaleDType::F16;
  return cfg;
}

std::vector<float> randomWeights(int64_t N, int64_t K, unsigned seed,
                                 float sigma = 0.05f,
                                 float outlierProb = 0.01f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, sigma);
  std::uniform_real_distribution<float> uni(0.0f, 1.0f);
  std::vector<float> w(static_cast<size_t>(N * K));
  for (float &x : w) {
    x = normal(rng);
    if (uni(rng) < outlierProb)
      x *= 8.0f;
  }
  return w;
}

/// [T, K] activations with correlated channels (a low-rank latent factor
/// plus noise), log-normal channel scales and a few large-magnitude outlier
/// channels, like the inputs of real LLM projections.
std::vector<float> correlatedActivations(int64_t T, int64_t K, unsigned seed,
                                         const std::vector<int64_t> &outliers,
                                         float outlierScale = 20.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int64_t r = std::max<int64_t>(2, K / 8);
  std::vector<float> mix(static_cast<size_t>(r * K));
  for (float &m : mix)
    m = normal(rng) / std::sqrt(static_cast<float>(r));
  std::vector<float> chanScale(static_cast<size_t>(K));
  for (float &s : chanScale)
    s = std::exp(0.5f * normal(rng));
  for (int64_t o : outliers)
    chanScale[o] *= outlierScale;
  std::vector<float> x(static_cast<size_t>(T * K)), z(static_cast<size_t>(r));
  for (int64_t t = 0; t < T; ++t) {
    for (float &v : z)
      v = normal(rng);
    for (int64_t k = 0; k < K; ++k) {
      float v = 0.3f * normal(rng);
      for (int64_t i = 0; i < r; ++i)
        v += z[i] * mix[i * K + k];
      x[t * K + k] = v * chanScale[k];
    }
  }
  return x;
}

std::vector<float> hessianOf(const std::vector<float> &x, int64_t T,
                             int64_t K) {
  HessianAccumulator acc(K);
  EXPECT_TRUE(acc.add(x.data(), T).isOk());
  return acc.hessian();
}

std::vector<float> dequant(const QuantizedWeight &qw) {
  std::vector<float> w;
  qw.dequantize(w);
  return w;
}

void expectSameQuantization(const QuantizedWeight &a,
                            const QuantizedWeight &b) {
  EXPECT_EQ(a.codes, b.codes);
  EXPECT_EQ(a.scales, b.scales);
  EXPECT_EQ(a.zeros, b.zeros);
  EXPECT_EQ(dequant(a), dequant(b));
}

/// Column order of act-order: stable sort by descending diag(H).
std::vector<int64_t> actOrderPerm(const std::vector<float> &H, int64_t K) {
  std::vector<int64_t> perm(static_cast<size_t>(K));
  std::iota(perm.begin(), perm.end(), int64_t(0));
  std::stable_sort(perm.begin(), perm.end(), [&](int64_t a, int64_t b) {
    float da = H[a * K + a] == 0.0f ? 1.0f : H[a * K + a];
    float db = H[b * K + b] == 0.0f ? 1.0f : H[b * K + b];
    return da > db;
  });
  return perm;
}

} // namespace

//===----------------------------------------------------------------------===//
// §3.6 invariants
//===----------------------------------------------------------------------===//

TEST(GPTQTest, DiagonalHessianEqualsRTN) {
  const int64_t N = 16, K = 96;
  std::vector<float> w = randomWeights(N, K, 1);
  std::mt19937 rng(2);
  std::uniform_real_distribution<float> uni(0.1f, 5.0f);
  std::vector<float> H(static_cast<size_t>(K * K), 0.0f);
  for (int64_t i = 0; i < K; ++i)
    H[i * K + i] = uni(rng);
  for (bool sym : {false, true}) {
    for (int64_t G : {int64_t(32), int64_t(-1), int64_t(40)}) {
      QuantConfig cfg = makeConfig(4, G, sym);
      QuantizedWeight rtn, gptq;
      ASSERT_TRUE(quantizeRTN(w.data(), N, K, cfg, rtn).isOk());
      GPTQOptions opts;
      opts.blockSize = 32;
      GPTQReport rep;
      ASSERT_TRUE(
          quantizeGPTQ(w.data(), N, K, H.data(), 1000, cfg, opts, gptq, rep)
              .isOk());
      EXPECT_FALSE(rep.fallbackToRTN);
      expectSameQuantization(rtn, gptq);
      EXPECT_TRUE(gptq.hasTrivialGIdx());
      // §14.2: also with act-order plus static groups.
      if (G > 0) {
        opts.actOrder = true;
        opts.staticGroups = true;
        QuantizedWeight ao;
        ASSERT_TRUE(
            quantizeGPTQ(w.data(), N, K, H.data(), 1000, cfg, opts, ao, rep)
                .isOk());
        expectSameQuantization(rtn, ao);
        EXPECT_TRUE(ao.hasTrivialGIdx());
      }
    }
  }
}

TEST(GPTQTest, BeatsRTNOnOutlierLayerWithCorrelatedInputs) {
  const int64_t N = 64, K = 128, T = 1024;
  std::vector<float> x = correlatedActivations(T, K, 3, {3, 17, 60, 99});
  std::vector<float> H = hessianOf(x, T, K);
  std::vector<float> w = randomWeights(N, K, 4);
  for (bool sym : {false, true}) {
    QuantConfig cfg = makeConfig(4, 32, sym);
    QuantizedWeight rtn;
    ASSERT_TRUE(quantizeRTN(w.data(), N, K, cfg, rtn).isOk());
    const double rtnLoss =
        layerLoss(w.data(), dequant(rtn).data(), N, K, H.data());
    for (bool actOrder : {false, true}) {
      GPTQOptions opts;
      opts.actOrder = actOrder;
      QuantizedWeight q;
      GPTQReport rep;
      std::vector<float> fq;
      ASSERT_TRUE(quantizeGPTQ(w.data(), N, K, H.data(), T, cfg, opts, q, rep,
                               "outlier", &fq)
                      .isOk());
      EXPECT_FALSE(rep.fallbackToRTN);
      EXPECT_EQ(rep.attempts, 1);
      EXPECT_EQ(rep.dampUsed, 0.01);
      const double gptqLoss = layerLoss(w.data(), fq.data(), N, K, H.data());
      EXPECT_LT(gptqLoss, 0.8 * rtnLoss)
          << "sym=" << sym << " actOrder=" << actOrder;
    }
  }
}

TEST(GPTQTest, LossIdentity) {
  const int64_t N = 24, K = 80, T = 300;
  std::vector<float> x = correlatedActivations(T, K, 5, {7});
  std::vector<float> H = hessianOf(x, T, K);
  std::vector<float> w = randomWeights(N, K, 6);
  for (bool actOrder : {false, true}) {
    GPTQOptions opts;
    opts.actOrder = actOrder;
    opts.blockSize = 32;
    QuantizedWeight q;
    GPTQReport rep;
    std::vector<float> fq;
    ASSERT_TRUE(quantizeGPTQ(w.data(), N, K, H.data(), T,
                             makeConfig(4, 16, false), opts, q, rep, "", &fq)
                    .isOk());
    // 1/2 sum_n (w0 - q)^T (H + λI) (w0 - q), accumulated in fp64.
    double expect = 0.0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < K; ++i) {
        const double di = static_cast<double>(w[n * K + i]) - fq[n * K + i];
        for (int64_t j = 0; j < K; ++j) {
          const double dj = static_cast<double>(w[n * K + j]) - fq[n * K + j];
          double h = H[i * K + j] + (i == j ? rep.dampAbsolute : 0.0);
          expect += 0.5 * di * h * dj;
        }
      }
    EXPECT_NEAR(rep.loss, expect, 1e-3 * expect) << "actOrder=" << actOrder;
  }
}

TEST(GPTQTest, InvariantToHessianScale) {
  const int64_t N = 16, K = 64, T = 200;
  std::vector<float> x = correlatedActivations(T, K, 7, {1, 30});
  std::vector<float> H = hessianOf(x, T, K);
  std::vector<float> H4(H);
  for (float &h : H4)
    h *= 4.0f; // a power of two keeps every intermediate exact
  std::vector<float> w = randomWeights(N, K, 8);
  GPTQOptions opts;
  opts.actOrder = true;
  QuantizedWeight a, b;
  GPTQReport ra, rb;
  QuantConfig cfg = makeConfig(4, 32, true);
  ASSERT_TRUE(
      quantizeGPTQ(w.data(), N, K, H.data(), T, cfg, opts, a, ra).isOk());
  ASSERT_TRUE(
      quantizeGPTQ(w.data(), N, K, H4.data(), T, cfg, opts, b, rb).isOk());
  expectSameQuantization(a, b);
  EXPECT_EQ(a.gIdx, b.gIdx);
  EXPECT_NEAR(rb.loss, 4.0 * ra.loss, 1e-9 * rb.loss);
}

TEST(GPTQTest, ActOrderWithSortedDiagonalIsIdentity) {
  const int64_t N = 12, K = 64, T = 256;
  std::vector<float> x = correlatedActivations(T, K, 9, {});
  std::vector<float> H0 = hessianOf(x, T, K), H(H0);
  // Rescale to a strictly descending diagonal, keeping the correlations.
  std::vector<float> s(static_cast<size_t>(K));
  for (int64_t i = 0; i < K; ++i)
    s[i] = 3.0f * std::pow(0.97f, static_cast<float>(i)) /
           std::sqrt(H0[i * K + i]);
  for (int64_t i = 0; i < K; ++i)
    for (int64_t j = 0; j < K; ++j)
      H[i * K + j] = H0[i * K + j] * s[i] * s[j];
  for (int64_t i = 1; i < K; ++i)
    ASSERT_GT(H[(i - 1) * K + i - 1], H[i * K + i]);
  std::vector<float> w = randomWeights(N, K, 10);
  QuantConfig cfg = makeConfig(4, 16, false);
  GPTQOptions plain, ao;
  ao.actOrder = true;
  QuantizedWeight a, b;
  GPTQReport r;
  ASSERT_TRUE(
      quantizeGPTQ(w.data(), N, K, H.data(), T, cfg, plain, a, r).isOk());
  ASSERT_TRUE(quantizeGPTQ(w.data(), N, K, H.data(), T, cfg, ao, b, r).isOk());
  expectSameQuantization(a, b);
  EXPECT_EQ(a.gIdx, b.gIdx);
}

//===----------------------------------------------------------------------===//
// g_idx, static groups, stale/fresh statistics (§3.4, §3.5)
//===----------------------------------------------------------------------===//

TEST(GPTQTest, ActOrderGIdxConsistency) {
  const int64_t N = 16, K = 128, T = 512, G = 32;
  std::vector<float> x = correlatedActivations(T, K, 11, {5, 77, 120});
  std::vector<float> H = hessianOf(x, T, K);
  std::vector<float> w = randomWeights(N, K, 12);
  GPTQOptions opts;
  opts.actOrder = true;
  opts.blockSize = 48; // groups start mid-block: exercises stale statistics
  for (bool sym : {false, true}) {
    QuantizedWeight q;
    GPTQReport rep;
    std::vector<float> fq;
    ASSERT_TRUE(quantizeGPTQ(w.data(), N, K, H.data(), T, makeConfig(4, G, sym),
                             opts, q, rep, "ao", &fq)
                    .isOk());
    ASSERT_TRUE(q.verify().isOk()) << q.verify().message();
    ASSERT_EQ(q.gIdx.size(), static_cast<size_t>(K));
    EXPECT_FALSE(q.hasTrivialGIdx());
    // Dequantizing with g_idx reproduces GPTQ's own fake-quant weights.
    EXPECT_EQ(dequant(q), fq);
    // g_idx[perm[c]] == c / G and each group has G members.
    std::vector<int64_t> perm = actOrderPerm(H, K);
    std::vector<int> count(static_cast<size_t>(K / G), 0);
    for (int64_t c = 0; c < K; ++c) {
      EXPECT_EQ(q.gIdx[perm[c]], c / G);
      ++count[q.gIdx[perm[c]]];
    }
    for (int c : count)
      EXPECT_EQ(c, G);
  }
}

TEST(GPTQTest, StaticGroupsUseOriginalOrder) {
  const int64_t N = 16, K = 128, T = 512, G = 32;
  std::vector<float> x = correlatedActivations(T, K, 13, {2, 90});
  std::vector<float> H = hessianOf(x, T, K);
  std::vector<float> w = randomWeights(N, K, 14);
  QuantConfig cfg = makeConfig(4, G, false);
  GPTQOptions opts;
  opts.actOrder = true;
  opts.staticGroups = true;
  QuantizedWeight q, rtn;
  GPTQReport rep;
  std::vector<float> fq;
  ASSERT_TRUE(
      quantizeGPTQ(w.data(), N, K, H.data(), T, cfg, opts, q, rep, "", &fq)
          .isOk());
  ASSERT_TRUE(quantizeRTN(w.data(), N, K, cfg, rtn).isOk());
  // Monotone g_idx (k / G) and scales observed on the original weights.
  EXPECT_TRUE(q.hasTrivialGIdx());
  for (int64_t k = 0; k < K; ++k)
    EXPECT_EQ(q.gIdx[k], k / G);
  EXPECT_EQ(q.scales, rtn.scales);
  EXPECT_EQ(q.zeros, rtn.zeros);
  EXPECT_EQ(dequant(q), fq);
  // ... but the codes were still optimised.
  EXPECT_NE(q.codes, rtn.codes);
  EXPECT_LT(layerLoss(w.data(), fq.data(), N, K, H.data()),
            layerLoss(w.data(), dequant(rtn).data(), N, K, H.data()));
}

TEST(GPTQTest, FreshAndStaleStatistics) {
  const int64_t N = 16, K = 128, T = 400;
  std::vector<float> x = correlatedActivations(T, K, 15, {9});
  std::vector<float> H = hessianOf(x, T, K);
  std::vector<float> w = randomWeights(N, K, 16);
  GPTQOptions stale, fresh;
  fresh.freshGroupStats = true;
  GPTQReport r;
  // Groups aligned with blocks (G == B): statistics are read at block
  // starts, where both definitions coincide.
  {
    QuantizedWeight a, b;
    QuantConfig cfg = makeConfig(4, 64, false);
    stale.blockSize = fresh.blockSize = 64;
    ASSERT_TRUE(
        quantizeGPTQ(w.data(), N, K, H.data(), T, cfg, stale, a, r).isOk());
    ASSERT_TRUE(
        quantizeGPTQ(w.data(), N, K, H.data(), T, cfg, fresh, b, r).isOk());
    expectSameQuantization(a, b);
  }
  // Groups starting mid-block: the two differ, both are self-consistent.
  {
    QuantizedWeight a, b;
    std::vector<float> fa, fb;
    QuantConfig cfg = makeConfig(4, 16, false);
    stale.blockSize = fresh.blockSize = 128;
    ASSERT_TRUE(
        quantizeGPTQ(w.data(), N, K, H.data(), T, cfg, stale, a, r, "", &fa)
            .isOk());
    ASSERT_TRUE(
        quantizeGPTQ(w.data(), N, K, H.data(), T, cfg, fresh, b, r, "", &fb)
            .isOk());
    EXPECT_NE(a.scales, b.scales);
    EXPECT_EQ(dequant(a), fa);
    EXPECT_EQ(dequant(b), fb);
  }
}

//===----------------------------------------------------------------------===//
// Pre-processing and shapes
//===----------------------------------------------------------------------===//

TEST(GPTQTest, DeadColumnsAreZeroed) {
  const int64_t N = 8, K = 64, T = 256;
  std::vector<float> x = correlatedActivations(T, K, 17, {});
  for (int64_t t = 0; t < T; ++t)
    x[t * K + 5] = x[t * K + 40] = 0.0f;
  std::vector<float> H = hessianOf(x, T, K);
  ASSERT_EQ(H[5 * K + 5], 0.0f);
  std::vector<float> w = randomWeights(N, K, 18);
  for (bool actOrder : {false, true}) {
    for (bool sym : {false, true}) {
      GPTQOptions opts;
      opts.actOrder = actOrder;
      QuantizedWeight q;
      GPTQReport rep;
      std::vector<float> fq;
      ASSERT_TRUE(quantizeGPTQ(w.data(), N, K, H.data(), T,
                               makeConfig(4, 32, sym), opts, q, rep, "", &fq)
                      .isOk());
      EXPECT_EQ(rep.deadColumns, 2);
      EXPECT_FALSE(rep.fallbackToRTN);
      for (int64_t n = 0; n < N; ++n) {
        EXPECT_EQ(fq[n * K + 5], 0.0f);
        EXPECT_EQ(fq[n * K + 40], 0.0f);
      }
      for (float v : fq)
        EXPECT_TRUE(std::isfinite(v));
      EXPECT_EQ(dequant(q), fq);
    }
  }
}

TEST(GPTQTest, RaggedK172Group32) {
  // The bundled model's w2: K = 172, G = 32 -> 6 groups, the last of 12.
  const int64_t N = 24, K = 172, T = 400, G = 32;
  std::vector<float> x = correlatedActivations(T, K, 19, {10, 150});
  std::vector<float> H = hessianOf(x, T, K);
  std::vector<float> w = randomWeights(N, K, 20);
  for (bool actOrder : {false, true}) {
    for (bool sym : {false, true}) {
      QuantConfig cfg = makeConfig(4, G, sym);
      GPTQOptions opts;
      opts.actOrder = actOrder;
      QuantizedWeight q, rtn;
      GPTQReport rep;
      std::vector<float> fq;
      ASSERT_TRUE(quantizeGPTQ(w.data(), N, K, H.data(), T, cfg, opts, q, rep,
                               "layers.0.feed_forward.w2", &fq)
                      .isOk());
      ASSERT_TRUE(q.verify().isOk()) << q.verify().message();
      EXPECT_EQ(q.numGroups(), 6);
      EXPECT_EQ(q.scales.size(), static_cast<size_t>(6 * N));
      std::vector<int> count(6, 0);
      for (int32_t g : q.gIdx)
        ++count[g];
      EXPECT_EQ(count, (std::vector<int>{32, 32, 32, 32, 32, 12}));
      if (!actOrder) {
        EXPECT_TRUE(q.hasTrivialGIdx());
      }
      EXPECT_EQ(dequant(q), fq);
      ASSERT_TRUE(quantizeRTN(w.data(), N, K, cfg, rtn).isOk());
      EXPECT_LT(layerLoss(w.data(), fq.data(), N, K, H.data()),
                layerLoss(w.data(), dequant(rtn).data(), N, K, H.data()));
    }
  }
}

TEST(GPTQTest, OtherBitWidthsAndPerChannel) {
  const int64_t N = 8, K = 96, T = 300;
  std::vector<float> x = correlatedActivations(T, K, 21, {4});
  std::vector<float> H = hessianOf(x, T, K);
  std::vector<float> w = randomWeights(N, K, 22);
  for (int bits : {2, 3, 8}) {
    for (int64_t G : {int64_t(-1), int64_t(32)}) {
      QuantConfig cfg = makeConfig(bits, G, false);
      QuantizedWeight q;
      GPTQReport rep;
      std::vector<float> fq;
      ASSERT_TRUE(quantizeGPTQ(w.data(), N, K, H.data(), T, cfg, GPTQOptions(),
                               q, rep, "", &fq)
                      .isOk());
      ASSERT_TRUE(q.verify().isOk());
      EXPECT_EQ(dequant(q), fq);
      if (G == -1) {
        EXPECT_EQ(q.numGroups(), 1);
        // Per-channel params come from the original rows (§3.2).
        for (int64_t n = 0; n < N; ++n)
          EXPECT_EQ(q.scales[n],
                    computeGroupParams(w.data() + n * K, K, cfg).scale);
      }
    }
  }
}

//===----------------------------------------------------------------------===//
// §3.7 failure ladder
//===----------------------------------------------------------------------===//

TEST(GPTQTest, SingularHessianWithoutDampingRecoversByIncrement) {
  // 8 tokens for 64 channels: rank 8, so H is singular.
  const int64_t N = 8, K = 64, T = 8;
  std::vector<float> x = correlatedActivations(T, K, 23, {});
  std::vector<float> H = hessianOf(x, T, K);
  std::vector<float> w = randomWeights(N, K, 24);
  GPTQOptions opts;
  opts.dampPercent = 0.0;
  QuantizedWeight q;
  GPTQReport rep;
  std::vector<float> fq;
  ASSERT_TRUE(quantizeGPTQ(w.data(), N, K, H.data(), T, makeConfig(4, 32, true),
                           opts, q, rep, "", &fq)
                  .isOk());
  EXPECT_FALSE(rep.fallbackToRTN);
  EXPECT_EQ(rep.attempts, 2);
  EXPECT_DOUBLE_EQ(rep.dampUsed, 0.0015);
  EXPECT_GT(rep.dampAbsolute, 0.0);
  for (float v : fq)
    EXPECT_TRUE(std::isfinite(v));
  EXPECT_TRUE(std::isfinite(rep.loss));

  // With increments disabled the diagonal floor of step 3 takes over.
  opts.dampAutoIncrement = 0.0;
  ASSERT_TRUE(quantizeGPTQ(w.data(), N, K, H.data(), T, makeConfig(4, 32, true),
                           opts, q, rep)
                  .isOk());
  EXPECT_FALSE(rep.fallbackToRTN);
  EXPECT_GT(rep.diagFloor, 0.0);
  EXPECT_GE(rep.attempts, 2);
}

TEST(GPTQTest, IndefiniteHessianFallsBackToRTN) {
  // Blocks [[1, 3], [3, 1]] (eigenvalues 4 and -2): no damping below 1 and
  // no floor up to 0.1 * max|diag| makes it positive definite.
  const int64_t N = 8, K = 32;
  std::vector<float> H(static_cast<size_t>(K * K), 0.0f);
  for (int64_t b = 0; b < K; b += 2) {
    H[b * K + b] = H[(b + 1) * K + b + 1] = 1.0f;
    H[b * K + b + 1] = H[(b + 1) * K + b] = 3.0f;
  }
  std::vector<float> w = randomWeights(N, K, 25);
  QuantConfig cfg = makeConfig(4, 16, false);
  QuantizedWeight q, rtn;
  GPTQReport rep;
  std::vector<float> fq;
  GPTQOptions opts;
  opts.actOrder = true;
  ASSERT_TRUE(quantizeGPTQ(w.data(), N, K, H.data(), 100, cfg, opts, q, rep,
                           "layers.3.attention.wq", &fq)
                  .isOk());
  EXPECT_TRUE(rep.fallbackToRTN);
  EXPECT_NE(rep.fallbackReason.find("layers.3.attention.wq"), std::string::npos)
      << rep.fallbackReason;
  EXPECT_NE(rep.fallbackReason.find("positive definite"), std::string::npos)
      << rep.fallbackReason;
  EXPECT_NE(rep.fallbackReason.find("up to 0.1 of max|diag|"),
            std::string::npos)
      << rep.fallbackReason;
  EXPECT_GT(rep.attempts, 7);
  EXPECT_LT(rep.attempts, 200); // galloping search, not a linear scan
  ASSERT_TRUE(quantizeRTN(w.data(), N, K, cfg, rtn).isOk());
  expectSameQuantization(q, rtn);
  EXPECT_TRUE(q.hasTrivialGIdx());
  EXPECT_EQ(fq, dequant(rtn));
  for (float v : fq)
    EXPECT_TRUE(std::isfinite(v));

  // Told not to fall back: an error naming the layer, never a crash.
  opts.fallbackToRTN = false;
  Status st = quantizeGPTQ(w.data(), N, K, H.data(), 100, cfg, opts, q, rep,
                           "layers.3.attention.wq");
  ASSERT_FALSE(st.isOk());
  EXPECT_NE(st.message().find("layers.3.attention.wq"), std::string::npos);
}

TEST(GPTQTest, NegativeDiagonalIsRescuedByFloor) {
  // diag < 0 everywhere: damping relative to mean(diag) cannot help, the
  // floor max(d + f, f) of step 3 can.
  const int64_t N = 4, K = 16;
  std::vector<float> H(static_cast<size_t>(K * K), 0.0f);
  for (int64_t i = 0; i < K; ++i)
    H[i * K + i] = -1.0f;
  std::vector<float> w = randomWeights(N, K, 26);
  QuantizedWeight q, rtn;
  GPTQReport rep;
  QuantConfig cfg = makeConfig(4, 8, true);
  ASSERT_TRUE(
      quantizeGPTQ(w.data(), N, K, H.data(), 10, cfg, GPTQOptions(), q, rep)
          .isOk());
  EXPECT_FALSE(rep.fallbackToRTN);
  EXPECT_GT(rep.diagFloor, 0.0);
  // The floored H is diagonal, so the result is RTN's.
  ASSERT_TRUE(quantizeRTN(w.data(), N, K, cfg, rtn).isOk());
  expectSameQuantization(q, rtn);
}

TEST(GPTQTest, UnusableHessianFallsBack) {
  const int64_t N = 4, K = 16;
  std::vector<float> w = randomWeights(N, K, 27);
  std::vector<float> H(static_cast<size_t>(K * K), 0.0f);
  for (int64_t i = 0; i < K; ++i)
    H[i * K + i] = 1.0f;
  QuantConfig cfg = makeConfig(4, 8, true);
  QuantizedWeight q;
  GPTQReport rep;
  // No calibration token (e.g. an unrouted MoE expert).
  ASSERT_TRUE(quantizeGPTQ(w.data(), N, K, H.data(), 0, cfg, GPTQOptions(), q,
                           rep, "e7")
                  .isOk());
  EXPECT_TRUE(rep.fallbackToRTN);
  EXPECT_NE(rep.fallbackReason.find("no calibration tokens"),
            std::string::npos);
  // Non-finite Hessian entry.
  H[3 * K + 7] = NAN;
  ASSERT_TRUE(quantizeGPTQ(w.data(), N, K, H.data(), 5, cfg, GPTQOptions(), q,
                           rep, "e7")
                  .isOk());
  EXPECT_TRUE(rep.fallbackToRTN);
  EXPECT_NE(rep.fallbackReason.find("(3, 7)"), std::string::npos)
      << rep.fallbackReason;
  ASSERT_TRUE(q.verify().isOk());
}

TEST(GPTQTest, AllZeroHessianFallsBackInsteadOfZeroingTheLayer) {
  // A positive token count with every diagonal entry zero: the dead-column
  // rule alone would zero every weight (a found bug: exit 0, no warning).
  const int64_t N = 4, K = 16;
  std::vector<float> w = randomWeights(N, K, 31);
  std::vector<float> H(static_cast<size_t>(K * K), 0.0f);
  QuantConfig cfg = makeConfig(4, 8, true);
  QuantizedWeight q, rtn;
  GPTQReport rep;
  ASSERT_TRUE(quantizeGPTQ(w.data(), N, K, H.data(), 12, cfg, GPTQOptions(), q,
                           rep, "dead")
                  .isOk());
  EXPECT_TRUE(rep.fallbackToRTN);
  EXPECT_NE(rep.fallbackReason.find("all-zero Hessian from 12 tokens"),
            std::string::npos)
      << rep.fallbackReason;
  ASSERT_TRUE(quantizeRTN(w.data(), N, K, cfg, rtn, "dead").isOk());
  EXPECT_EQ(q.codes, rtn.codes);
  std::vector<float> deq;
  q.dequantize(deq);
  double sumAbs = 0.0;
  for (float v : deq)
    sumAbs += std::fabs(v);
  EXPECT_GT(sumAbs, 0.0);
  // One live channel is the ordinary dead-column case: no fallback.
  H[5 * K + 5] = 2.0f;
  ASSERT_TRUE(quantizeGPTQ(w.data(), N, K, H.data(), 12, cfg, GPTQOptions(), q,
                           rep, "dead")
                  .isOk());
  EXPECT_FALSE(rep.fallbackToRTN);
  EXPECT_EQ(rep.deadColumns, K - 1);
  // With the fallback disabled the same trace is an error naming the layer.
  GPTQOptions strict;
  strict.fallbackToRTN = false;
  std::fill(H.begin(), H.end(), 0.0f);
  Status s =
      quantizeGPTQ(w.data(), N, K, H.data(), 12, cfg, strict, q, rep, "dead");
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("dead"), std::string::npos) << s.message();
}

TEST(GPTQTest, RejectsBadInputs) {
  const int64_t N = 4, K = 16;
  std::vector<float> w = randomWeights(N, K, 28);
  std::vector<float> H(static_cast<size_t>(K * K), 0.0f);
  for (int64_t i = 0; i < K; ++i)
    H[i * K + i] = 1.0f;
  QuantConfig cfg = makeConfig(4, 8, true);
  QuantizedWeight q;
  GPTQReport rep;
  GPTQOptions bad;
  bad.blockSize = 0;
  EXPECT_FALSE(
      quantizeGPTQ(w.data(), N, K, H.data(), 5, cfg, bad, q, rep).isOk());
  EXPECT_FALSE(
      quantizeGPTQ(w.data(), N, K, nullptr, 5, cfg, GPTQOptions(), q, rep)
          .isOk());
  EXPECT_FALSE(quantizeGPTQ(w.data(), N, K, H.data(), 5, makeConfig(5, 8, true),
                            GPTQOptions(), q, rep)
                   .isOk());
  w[17] = INFINITY;
  Status st = quantizeGPTQ(w.data(), N, K, H.data(), 5, cfg, GPTQOptions(), q,
                           rep, "layers.1.attention.wo");
  ASSERT_FALSE(st.isOk());
  EXPECT_NE(st.message().find("layers.1.attention.wo"), std::string::npos);
  EXPECT_NE(st.message().find("flat index 17"), std::string::npos);
}

//===----------------------------------------------------------------------===//
// Determinism, Hessian accumulation, a larger layer
//===----------------------------------------------------------------------===//

TEST(GPTQTest, Deterministic) {
  const int64_t N = 32, K = 160, T = 500;
  std::vector<float> x = correlatedActivations(T, K, 29, {0, 81});
  std::vector<float> H = hessianOf(x, T, K);
  std::vector<float> w = randomWeights(N, K, 30);
  GPTQOptions opts;
  opts.actOrder = true;
  opts.blockSize = 64;
  QuantConfig cfg = makeConfig(4, 32, false);
  QuantizedWeight a, b;
  GPTQReport ra, rb;
  std::vector<float> fa, fb;
  ASSERT_TRUE(
      quantizeGPTQ(w.data(), N, K, H.data(), T, cfg, opts, a, ra, "", &fa)
          .isOk());
  ASSERT_TRUE(
      quantizeGPTQ(w.data(), N, K, H.data(), T, cfg, opts, b, rb, "", &fb)
          .isOk());
  EXPECT_EQ(a.codes, b.codes);
  EXPECT_EQ(a.gIdx, b.gIdx);
  ASSERT_EQ(a.scales.size(), b.scales.size());
  EXPECT_EQ(0, std::memcmp(a.scales.data(), b.scales.data(),
                           a.scales.size() * sizeof(float)));
  EXPECT_EQ(0, std::memcmp(a.zeros.data(), b.zeros.data(),
                           a.zeros.size() * sizeof(float)));
  EXPECT_EQ(0, std::memcmp(fa.data(), fb.data(), fa.size() * sizeof(float)));
  EXPECT_EQ(0, std::memcmp(&ra.loss, &rb.loss, sizeof(double)));
}

TEST(GPTQTest, HessianAccumulatorRunningAverage) {
  const int64_t K = 37;
  std::vector<float> x = correlatedActivations(150, K, 31, {3});
  HessianAccumulator acc(K);
  EXPECT_EQ(acc.tokenCount(), 0);
  ASSERT_TRUE(acc.add(x.data(), 100).isOk());
  ASSERT_TRUE(acc.add(x.data() + 100 * K, 0).isOk()); // empty batch: no-op
  ASSERT_TRUE(acc.add(x.data() + 100 * K, 1).isOk());
  ASSERT_TRUE(acc.add(x.data() + 101 * K, 49).isOk());
  EXPECT_EQ(acc.tokenCount(), 150);
  const std::vector<float> &H = acc.hessian();
  for (int64_t i = 0; i < K; ++i)
    for (int64_t j = 0; j < K; ++j) {
      double ref = 0.0, mag = 0.0;
      for (int64_t t = 0; t < 150; ++t) {
        ref += static_cast<double>(x[t * K + i]) * x[t * K + j];
        mag += std::fabs(static_cast<double>(x[t * K + i]) * x[t * K + j]);
      }
      ref *= 2.0 / 150.0;
      mag *= 2.0 / 150.0;
      EXPECT_NEAR(H[i * K + j], ref, 1e-5 * mag + 1e-30) << i << "," << j;
      EXPECT_EQ(H[i * K + j], H[j * K + i]);
    }
  // Non-finite activations are rejected and leave the state untouched.
  std::vector<float> before = acc.hessian();
  std::vector<float> bad(static_cast<size_t>(2 * K), 1.0f);
  bad[K + 4] = NAN;
  Status st = acc.add(bad.data(), 2);
  ASSERT_FALSE(st.isOk());
  EXPECT_NE(st.message().find("activation"), std::string::npos);
  EXPECT_EQ(acc.tokenCount(), 150);
  EXPECT_EQ(acc.hessian(), before);
  acc.reset();
  EXPECT_EQ(acc.tokenCount(), 0);
  for (float h : acc.hessian())
    EXPECT_EQ(h, 0.0f);
}

TEST(GPTQTest, MediumLayerWithUnalignedShapes) {
  // Exercises the blocked kernels' edge handling (N, K not multiples of the
  // tile sizes, several Cholesky panels, more than one lazy update).
  const int64_t N = 131, K = 389, T = 800;
  std::vector<float> x = correlatedActivations(T, K, 33, {17, 200, 388});
  std::vector<float> H = hessianOf(x, T, K);
  std::vector<float> w = randomWeights(N, K, 34);
  QuantConfig cfg = makeConfig(4, 128, true);
  GPTQOptions opts;
  opts.actOrder = true;
  QuantizedWeight q, rtn;
  GPTQReport rep;
  std::vector<float> fq;
  ASSERT_TRUE(
      quantizeGPTQ(w.data(), N, K, H.data(), T, cfg, opts, q, rep, "", &fq)
          .isOk());
  EXPECT_FALSE(rep.fallbackToRTN);
  EXPECT_EQ(dequant(q), fq);
  ASSERT_TRUE(quantizeRTN(w.data(), N, K, cfg, rtn).isOk());
  EXPECT_LT(layerLoss(w.data(), fq.data(), N, K, H.data()),
            0.8 * layerLoss(w.data(), dequant(rtn).data(), N, K, H.data()));
}

TEST(GPTQTest, TinyShapes) {
  // K = 1 and N = 1 (one column, one row), block size larger than K.
  for (int64_t K : {int64_t(1), int64_t(3)}) {
    for (int64_t N : {int64_t(1), int64_t(5)}) {
      std::vector<float> x = correlatedActivations(16, K, 35, {});
      std::vector<float> H = hessianOf(x, 16, K);
      std::vector<float> w = randomWeights(N, K, 36);
      QuantizedWeight q;
      GPTQReport rep;
      std::vector<float> fq;
      ASSERT_TRUE(quantizeGPTQ(w.data(), N, K, H.data(), 16,
                               makeConfig(4, 2, false), GPTQOptions(), q, rep,
                               "", &fq)
                      .isOk());
      ASSERT_TRUE(q.verify().isOk());
      EXPECT_EQ(q.numGroups(), (K + 1) / 2);
      EXPECT_EQ(dequant(q), fq);
    }
  }
}

//===----------------------------------------------------------------------===//
// Inverse Cholesky factor: hand-written and LAPACK backends
//===----------------------------------------------------------------------===//

namespace {

/// Lower triangle of a random SPD matrix X^T X / T + damping, [K, K].
std::vector<double> randomSPD(int64_t K, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> nd(0.0, 1.0);
  const int64_t T = 2 * K + 8;
  std::vector<double> X(static_cast<size_t>(T * K));
  for (double &x : X)
    x = nd(rng);
  std::vector<double> A(static_cast<size_t>(K * K), 0.0);
  for (int64_t i = 0; i < K; ++i)
    for (int64_t j = 0; j <= i; ++j) {
      double s = 0.0;
      for (int64_t t = 0; t < T; ++t)
        s += X[t * K + i] * X[t * K + j];
      A[i * K + j] = s / static_cast<double>(T) + (i == j ? 0.01 : 0.0);
    }
  return A;
}

} // namespace

TEST(GPTQTest, LapackAndHandWrittenInverseFactorsAgree) {
  // Both backends on both sides of kLapackMinK and across the hand-written
  // kernel's 64-column panels: L^-1 (lower triangle) agrees to rounding.
  for (int64_t K :
       std::vector<int64_t>{1, 5, 63, 64, 65, 97, kLapackMinK, 200}) {
    std::vector<double> A = randomSPD(K, static_cast<uint32_t>(K));
    std::vector<double> a = A, b = A;
    int64_t fa = -1, fb = -1;
    ASSERT_TRUE(
        invertCholeskyLower(a.data(), K, 1e-12, fa, FactorBackend::HandWritten))
        << K;
    ASSERT_TRUE(
        invertCholeskyLower(b.data(), K, 1e-12, fb, FactorBackend::Lapack))
        << K;
    double maxAbs = 0.0, maxDiff = 0.0;
    for (int64_t i = 0; i < K; ++i)
      for (int64_t j = 0; j <= i; ++j) {
        maxAbs = std::max(maxAbs, std::fabs(a[i * K + j]));
        maxDiff = std::max(maxDiff, std::fabs(a[i * K + j] - b[i * K + j]));
      }
    EXPECT_LE(maxDiff, 1e-11 * maxAbs) << "K = " << K;
    // And it is the inverse: (L^-1 A L^-T) = I, checked on L^-1 L = I via
    // A's factor recomputed from the LAPACK result: (L^-1)(A)(L^-1)^T.
    double worst = 0.0;
    for (int64_t i = 0; i < K; ++i)
      for (int64_t j = 0; j <= i; ++j) {
        // (Linv A Linv^T)[i][j] with A symmetric (lower triangle stored).
        double s = 0.0;
        for (int64_t p = 0; p <= i; ++p)
          for (int64_t q = 0; q <= j; ++q) {
            const double apq = p >= q ? A[p * K + q] : A[q * K + p];
            s += b[i * K + p] * apq * b[j * K + q];
          }
        worst = std::max(worst, std::fabs(s - (i == j ? 1.0 : 0.0)));
      }
    EXPECT_LE(worst, 1e-9) << "K = " << K;
  }
}

TEST(GPTQTest, BothInverseFactorBackendsRejectTheSamePivot) {
  // A matrix whose pivot 40 is (numerically) zero: column 40 repeats
  // column 3. Both backends fail there, LAPACK through the relative
  // tolerance (dpotrf alone may accept a tiny positive pivot).
  for (int64_t K : std::vector<int64_t>{48, 160}) {
    std::vector<double> A = randomSPD(K, 7);
    for (int64_t j = 0; j < K; ++j) {
      // Row/column 40 := row/column 3 (symmetric, lower triangle).
      auto at = [&](int64_t r, int64_t c) -> double & {
        return r >= c ? A[r * K + c] : A[c * K + r];
      };
      if (j != 40)
        at(40, j) = at(3, j);
    }
    A[40 * K + 40] = A[3 * K + 3];
    const double tol = static_cast<double>(K) * 2.220446049250313e-16 * 2.0;
    for (FactorBackend backend :
         {FactorBackend::HandWritten, FactorBackend::Lapack}) {
      std::vector<double> a = A;
      int64_t fail = -1;
      EXPECT_FALSE(invertCholeskyLower(a.data(), K, tol, fail, backend))
          << "K = " << K;
      EXPECT_EQ(fail, 40) << "K = " << K;
    }
  }
}
