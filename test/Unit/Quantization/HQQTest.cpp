//===- HQQTest.cpp - Tests of half-quadratic quantization -------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Unit tests of HQQ.h against ../shared/docs/ALGORITHMS.md §5.6 and the
// guards of §1.6 / §5.3: zero iterations reproduce raw min/max RTN with a
// float zero (computed independently here), the solver never ends worse
// than its initialization on Gaussian and heavy-tailed weights and its
// accepted errors decrease, zeros stay in a sane range, constant and
// near-constant groups, the inverse-scale clamp, the shrink operator,
// determinism, integer-zero export and input validation.
//
//===----------------------------------------------------------------------===//

#include "qc/Quantization/Algorithms/HQQ.h"

#include "qc/Quantization/Algorithms/Packing.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

using namespace qc;
using namespace qc::quant;

namespace {

QuantConfig hqqConfig(int bits, int64_t G, ScaleDType dtype = ScaleDType::F32) {
  QuantConfig cfg;
  cfg.bits = bits;
  cfg.groupSize = G;
  cfg.sym = false;
  cfg.scaleDType = dtype;
  return cfg;
}

std::vector<float> gaussian(int64_t n, unsigned seed, float sigma = 0.02f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, sigma);
  std::vector<float> v(static_cast<size_t>(n));
  for (float &x : v)
    x = d(rng);
  return v;
}

/// Student-t (3 degrees of freedom) samples: heavy tails like real LLM
/// weights with outliers, the case HQQ's p < 1 error model targets.
std::vector<float> heavyTailed(int64_t n, unsigned seed, float scale = 0.02f) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> d(0.0, 1.0);
  std::vector<float> v(static_cast<size_t>(n));
  for (float &x : v) {
    double chi = 0.0;
    for (int i = 0; i < 3; ++i) {
      double g = d(rng);
      chi += g * g;
    }
    x = static_cast<float>(scale * d(rng) / std::sqrt(chi / 3.0));
  }
  return v;
}

double meanAbsError(const std::vector<float> &w, const QuantizedWeight &q) {
  std::vector<float> d;
  q.dequantize(d);
  double e = 0.0;
  for (size_t i = 0; i < w.size(); ++i)
    e += std::fabs(static_cast<double>(w[i]) - d[i]);
  return e / static_cast<double>(w.size());
}

} // namespace

TEST(HQQTest, ShrinkOperator) {
  EXPECT_EQ(hqqShrink(0.0f, 10.0f, 0.7f), 0.0f);
  EXPECT_EQ(hqqShrink(-0.0f, 10.0f, 0.7f), 0.0f);
  // p = 1: soft threshold at 1/beta.
  EXPECT_FLOAT_EQ(hqqShrink(0.5f, 10.0f, 1.0f), 0.4f);
  EXPECT_FLOAT_EQ(hqqShrink(-0.5f, 10.0f, 1.0f), -0.4f);
  EXPECT_EQ(hqqShrink(0.05f, 10.0f, 1.0f), 0.0f);
  // p = 0.7: |x|^(p-1)/beta; at |x| = 1 the threshold is 1/beta.
  EXPECT_FLOAT_EQ(hqqShrink(1.0f, 10.0f, 0.7f), 0.9f);
  EXPECT_FLOAT_EQ(hqqShrink(-1.0f, 10.0f, 0.7f), -0.9f);
  // x = 2: 2 - 2^-0.3 / 10.
  EXPECT_NEAR(hqqShrink(2.0f, 10.0f, 0.7f), 2.0 - std::pow(2.0, -0.3) / 10.0,
              1e-6);
  // Small values are zeroed (their threshold |x|^-0.3 / beta exceeds |x|).
  EXPECT_EQ(hqqShrink(0.01f, 10.0f, 0.7f), 0.0f);
  EXPECT_EQ(hqqShrink(1e-30f, 10.0f, 0.7f), 0.0f);
}

TEST(HQQTest, ZeroItersIsRawMinMaxRTN) {
  // §5.6: iters = 0 is asymmetric RTN with raw min/max and a float zero
  // (§5.3), recomputed here from the formulas.
  const int64_t N = 6, K = 128;
  for (int bits : {2, 3, 4, 8})
    for (HQQRoundZero rz : {HQQRoundZero::Never, HQQRoundZero::Auto}) {
      std::vector<float> w = gaussian(N * K, 1 + bits);
      HQQOptions o;
      o.iters = 0;
      o.roundZeroInit = rz;
      QuantizedWeight q;
      HQQReport rep;
      ASSERT_TRUE(quantizeHQQ(w.data(), N, K, hqqConfig(bits, 64), o, q, &rep));
      EXPECT_TRUE(rep.errors.empty());
      const float qmax = static_cast<float>((1 << bits) - 1);
      const bool round = rz == HQQRoundZero::Auto && bits == 4;
      for (int64_t n = 0; n < N; ++n)
        for (int64_t g = 0; g < 2; ++g) {
          const float *x = w.data() + n * K + g * 64;
          float mn = x[0], mx = x[0];
          for (int i = 1; i < 64; ++i) {
            mn = std::min(mn, x[i]);
            mx = std::max(mx, x[i]);
          }
          const float sigma = std::min(qmax / (mx - mn), 2e4f);
          float z = -mn * sigma;
          if (round)
            z = std::nearbyint(z);
          ASSERT_EQ(q.scales[g * N + n], 1.0f / sigma);
          ASSERT_EQ(q.zeros[g * N + n], z);
          for (int i = 0; i < 64; ++i) {
            float c = std::nearbyint(x[i] * sigma + z);
            c = std::min(std::max(c, 0.0f), qmax);
            ASSERT_EQ(q.codes[n * K + g * 64 + i], static_cast<uint8_t>(c));
          }
        }
      // Without rounding, zeros are genuinely fractional.
      if (!round) {
        int fractional = 0;
        for (float z : q.zeros)
          fractional += z != std::nearbyint(z);
        EXPECT_GT(fractional, 0);
      }
    }
}

TEST(HQQTest, CodesRoundHalfToEven) {
  // min 0, max 15 at 4 bits: σ = 1, z = 0, so W·σ + z is W itself and the
  // halves 2.5, 3.5, 0.5 round to even (2, 4, 0); half away from zero would
  // give 3, 4, 1 (§0).
  std::vector<float> w(64, 7.0f);
  w[0] = 0.0f;
  w[1] = 15.0f;
  w[2] = 2.5f;
  w[3] = 3.5f;
  w[4] = 0.5f;
  HQQOptions o;
  o.iters = 0;
  QuantizedWeight q;
  ASSERT_TRUE(quantizeHQQ(w.data(), 1, 64, hqqConfig(4, 64), o, q));
  ASSERT_EQ(q.scales[0], 1.0f);
  ASSERT_EQ(q.zeros[0], 0.0f);
  EXPECT_EQ(q.codes[2], 2);
  EXPECT_EQ(q.codes[3], 4);
  EXPECT_EQ(q.codes[4], 0);
}

TEST(HQQTest, EarlyStopKeepsBestZeros) {
  // Find a run that stops on an error increase and check that the returned
  // weight has the best error, strictly below the rejected one.
  bool sawStrictIncrease = false;
  for (unsigned seed = 0; seed < 40 && !sawStrictIncrease; ++seed) {
    const int64_t N = 8, K = 64;
    std::vector<float> w = heavyTailed(N * K, 200 + seed);
    HQQReport r;
    QuantizedWeight q;
    ASSERT_TRUE(quantizeHQQ(w.data(), N, K, hqqConfig(2, 64), {}, q, &r));
    if (!r.earlyStopped)
      continue;
    const double best = r.errors[r.acceptedIters];
    EXPECT_EQ(r.acceptedIters + 2, static_cast<int>(r.errors.size()));
    if (r.errors.back() > best * (1.0 + 1e-4)) {
      sawStrictIncrease = true;
      EXPECT_NEAR(r.finalError, best, 1e-6 * best);
      EXPECT_LT(r.finalError, r.errors.back() * (1.0 - 1e-5));
    }
  }
  EXPECT_TRUE(sawStrictIncrease) << "no run stopped on a strict increase";
}

TEST(HQQTest, NoWorseThanInitialization) {
  const int64_t N = 48, K = 256;
  for (int bits : {2, 3, 4, 8})
    for (int dist = 0; dist < 2; ++dist) {
      SCOPED_TRACE(::testing::Message()
                   << bits << " bits, "
                   << (dist ? "heavy-tailed" : "gaussian"));
      std::vector<float> w =
          dist ? heavyTailed(N * K, 20 + bits) : gaussian(N * K, 30 + bits);
      const QuantConfig cfg = hqqConfig(bits, 64);
      HQQOptions init;
      init.iters = 0;
      QuantizedWeight q0, q;
      HQQReport r0, r;
      ASSERT_TRUE(quantizeHQQ(w.data(), N, K, cfg, init, q0, &r0));
      ASSERT_TRUE(quantizeHQQ(w.data(), N, K, cfg, {}, q, &r));
      ASSERT_FALSE(r.errors.empty());
      // The final error is measured on the exported weight; the solver's
      // own errors use (W_q - z) / σ, equal up to rounding.
      EXPECT_NEAR(r0.finalError, r.errors[0], 1e-6 * r.errors[0]);
      EXPECT_LE(r.finalError, r0.finalError * (1.0 + 1e-6));
      EXPECT_NEAR(r.finalError, meanAbsError(w, q), 1e-12);
      // Accepted iterations strictly decrease the error.
      for (int t = 1; t <= r.acceptedIters; ++t)
        EXPECT_LT(r.errors[t], r.errors[t - 1]) << t;
      // The returned zeros are the best measured ones, not the last update.
      EXPECT_NEAR(r.finalError, r.errors[r.acceptedIters],
                  1e-6 * r.errors[r.acceptedIters]);
      if (r.earlyStopped) {
        EXPECT_GE(r.errors.back(), r.errors[r.acceptedIters]);
      }
      EXPECT_LE(r.errors.size(), 20u);
      // On heavy-tailed low-bit weights the solver must actually help.
      if (dist == 1 && bits <= 4) {
        EXPECT_LT(r.finalError, 0.995 * r0.finalError);
      }
    }
}

TEST(HQQTest, ZerosStayInSaneRange) {
  // §5.6: z within about [-qmax, 2 qmax] on Gaussian weights.
  const int64_t N = 32, K = 256;
  for (int bits : {2, 3, 4}) {
    std::vector<float> w = gaussian(N * K, 40 + bits);
    QuantizedWeight q;
    ASSERT_TRUE(quantizeHQQ(w.data(), N, K, hqqConfig(bits, 64), {}, q));
    const float qmax = static_cast<float>((1 << bits) - 1);
    for (float z : q.zeros) {
      EXPECT_GE(z, -qmax);
      EXPECT_LE(z, 2.0f * qmax);
    }
  }
}

TEST(HQQTest, ConstantGroupsReconstructExactly) {
  // §1.6: range <= 1e-4 -> σ = 1, z = -c (float) -> Ŵ == c exactly, also
  // with the default 4-bit zero rounding and after the solver.
  const int64_t N = 3, K = 128;
  std::vector<float> w = gaussian(N * K, 50);
  for (int i = 0; i < 64; ++i) {
    w[i] = 0.3f;           // row 0, group 0
    w[K + 64 + i] = -1.7f; // row 1, group 1
    w[2 * K + i] = 0.0f;   // row 2, group 0
  }
  for (int bits : {2, 4, 8}) {
    QuantizedWeight q;
    ASSERT_TRUE(quantizeHQQ(w.data(), N, K, hqqConfig(bits, 64), {}, q));
    std::vector<float> d;
    q.dequantize(d);
    for (int i = 0; i < 64; ++i) {
      ASSERT_EQ(d[i], 0.3f) << bits;
      ASSERT_EQ(d[K + 64 + i], -1.7f) << bits;
      ASSERT_EQ(d[2 * K + i], 0.0f) << bits;
    }
    EXPECT_EQ(q.scales[0 * N + 0], 1.0f);
    EXPECT_EQ(q.zeros[0 * N + 0], -0.3f);
    EXPECT_EQ(q.scales[1 * N + 1], 1.0f);
  }
}

TEST(HQQTest, RangeGuards) {
  const int64_t N = 1, K = 64;
  std::vector<float> w(K);
  // Range 5e-5 <= 1e-4: inverse scale forced to 1.
  for (int i = 0; i < K; ++i)
    w[i] = 0.25f + 5e-5f * static_cast<float>(i) / (K - 1);
  HQQOptions o;
  o.iters = 0;
  QuantizedWeight q;
  ASSERT_TRUE(quantizeHQQ(w.data(), N, K, hqqConfig(4, 64), o, q));
  EXPECT_EQ(q.scales[0], 1.0f);
  // Range 5e-4: 15 / 5e-4 = 3e4 is clamped to 2e4 (fp16 safety).
  for (int i = 0; i < K; ++i)
    w[i] = 5e-4f * static_cast<float>(i) / (K - 1);
  ASSERT_TRUE(quantizeHQQ(w.data(), N, K, hqqConfig(4, 64), o, q));
  EXPECT_EQ(q.scales[0], 1.0f / 2e4f);
  // Range 2e-3: 15 / 2e-3 = 7500, not clamped.
  for (int i = 0; i < K; ++i)
    w[i] = -1e-3f + 2e-3f * static_cast<float>(i) / (K - 1);
  ASSERT_TRUE(quantizeHQQ(w.data(), N, K, hqqConfig(4, 64), o, q));
  EXPECT_NEAR(q.scales[0], 2e-3f / 15.0f, 1e-9f);
}

TEST(HQQTest, Deterministic) {
  const int64_t N = 16, K = 192;
  std::vector<float> w = heavyTailed(N * K, 60);
  QuantizedWeight a, b;
  HQQReport ra, rb;
  ASSERT_TRUE(quantizeHQQ(w.data(), N, K, hqqConfig(3, 32), {}, a, &ra));
  ASSERT_TRUE(quantizeHQQ(w.data(), N, K, hqqConfig(3, 32), {}, b, &rb));
  EXPECT_EQ(a.codes, b.codes);
  EXPECT_EQ(a.scales, b.scales);
  EXPECT_EQ(a.zeros, b.zeros);
  EXPECT_EQ(ra.errors, rb.errors);
  EXPECT_EQ(ra.finalError, rb.finalError);
}

TEST(HQQTest, WithoutEarlyStopRunsAllAndKeepsBest) {
  const int64_t N = 16, K = 128;
  std::vector<float> w = heavyTailed(N * K, 70);
  HQQOptions o;
  o.earlyStop = false;
  o.iters = 30;
  HQQOptions init;
  init.iters = 0;
  QuantizedWeight q, q0;
  HQQReport r, r0;
  ASSERT_TRUE(quantizeHQQ(w.data(), N, K, hqqConfig(4, 64), o, q, &r));
  ASSERT_TRUE(quantizeHQQ(w.data(), N, K, hqqConfig(4, 64), init, q0, &r0));
  EXPECT_EQ(r.errors.size(), 30u);
  EXPECT_FALSE(r.earlyStopped);
  // The kept zeros are those of the smallest measured error.
  double best = r.errors[0];
  int bestAt = 0;
  for (int t = 1; t < 30; ++t)
    if (r.errors[t] < best) {
      best = r.errors[t];
      bestAt = t;
    }
  EXPECT_EQ(r.acceptedIters, bestAt);
  EXPECT_NEAR(r.finalError, best, 1e-6 * best);
  EXPECT_LE(r.finalError, r0.finalError * (1.0 + 1e-6));
}

TEST(HQQTest, KappaChangesTheSolution) {
  // β grows by κ every accepted iteration (canonical §5.4, unlike hqq's
  // legacy path): κ = 1 must give a different trajectory. β only matters
  // for residuals the shrink does not zero (|x|^1.3 > 1/β, i.e. |x| > ~0.17
  // at β = 10), so the weights here are unit-scale, 2-bit.
  const int64_t N = 16, K = 128;
  std::vector<float> w = heavyTailed(N * K, 80, 1.0f);
  HQQOptions a, b;
  a.earlyStop = b.earlyStop = false;
  b.kappa = 1.0f;
  HQQReport ra, rb;
  QuantizedWeight qa, qb;
  ASSERT_TRUE(quantizeHQQ(w.data(), N, K, hqqConfig(2, 64), a, qa, &ra));
  ASSERT_TRUE(quantizeHQQ(w.data(), N, K, hqqConfig(2, 64), b, qb, &rb));
  ASSERT_EQ(ra.errors.size(), rb.errors.size());
  EXPECT_EQ(ra.errors[0], rb.errors[0]);
  EXPECT_EQ(ra.errors[1], rb.errors[1]); // first update uses the same β
  EXPECT_NE(ra.errors, rb.errors);
}

TEST(HQQTest, IntegerZerosAndStorageCasts) {
  const int64_t N = 16, K = 128;
  std::vector<float> w = gaussian(N * K, 90);
  // Rounded zeros fit the integer formats; codes follow the rounded zero.
  HQQOptions o;
  o.roundZeros = true;
  QuantizedWeight q;
  ASSERT_TRUE(
      quantizeHQQ(w.data(), N, K, hqqConfig(4, 64, ScaleDType::F16), o, q));
  for (float z : q.zeros) {
    EXPECT_EQ(z, std::nearbyint(z));
    EXPECT_GE(z, 0.0f);
    EXPECT_LE(z, 15.0f);
  }
  AWQTensors awq;
  EXPECT_TRUE(packAWQ(q, awq));
  GPTQTensors gptq;
  GPTQPackOptions v2;
  v2.format = GPTQFormat::V2;
  EXPECT_TRUE(packGPTQ(q, v2, gptq));

  // Float zeros cast to fp16 (hqq's compute dtype), fp16 scales.
  HQQOptions h;
  h.zeroDType = ScaleDType::F16;
  ASSERT_TRUE(
      quantizeHQQ(w.data(), N, K, hqqConfig(4, 64, ScaleDType::F16), h, q));
  for (size_t i = 0; i < q.zeros.size(); ++i) {
    EXPECT_EQ(castToScaleDType(q.zeros[i], ScaleDType::F16), q.zeros[i]);
    EXPECT_EQ(castToScaleDType(q.scales[i], ScaleDType::F16), q.scales[i]);
  }
  // Float zeros travel in the rows layout.
  RowsTensors rows;
  RowsPackOptions ro;
  ro.floatZeros = true;
  ASSERT_TRUE(packRows(q, ro, rows));
  QuantizedWeight back;
  ASSERT_TRUE(unpackRows(rows, back));
  EXPECT_EQ(back.zeros, q.zeros);
}

TEST(HQQTest, ShapesAndValidation) {
  std::vector<float> w = gaussian(4 * 172, 100);
  QuantizedWeight q;
  // §5.2: K % G == 0 and G % 8 == 0 unless relaxed.
  Status s = quantizeHQQ(w.data(), 4, 172, hqqConfig(4, 64), {}, q);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("multiple of the group size"), std::string::npos)
      << s.message();
  EXPECT_FALSE(quantizeHQQ(w.data(), 4, 172, hqqConfig(4, 43), {}, q));
  // Per channel (G = -1) is one group per row with any K.
  ASSERT_TRUE(quantizeHQQ(w.data(), 4, 172, hqqConfig(4, -1), {}, q));
  EXPECT_EQ(q.numGroups(), 1);
  // Relaxed: ragged last group per row.
  HQQOptions relaxed;
  relaxed.strictShapes = false;
  HQQReport r;
  ASSERT_TRUE(quantizeHQQ(w.data(), 4, 172, hqqConfig(4, 64), relaxed, q, &r));
  EXPECT_EQ(q.numGroups(), 3);
  ASSERT_TRUE(q.verify());
  EXPECT_LE(r.finalError, r.errors[0] * (1.0 + 1e-6));

  // Configuration errors.
  QuantConfig sym = hqqConfig(4, 4);
  sym.groupSize = 43;
  sym.sym = true;
  s = quantizeHQQ(w.data(), 4, 172, sym, relaxed, q);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("asymmetric"), std::string::npos);
  QuantConfig mse = hqqConfig(4, -1);
  mse.mseSearch = true;
  EXPECT_FALSE(quantizeHQQ(w.data(), 4, 172, mse, {}, q));
  EXPECT_FALSE(quantizeHQQ(w.data(), 4, 172, hqqConfig(5, -1), {}, q));
  EXPECT_FALSE(quantizeHQQ(w.data(), 0, 172, hqqConfig(4, -1), {}, q));
  EXPECT_FALSE(quantizeHQQ(nullptr, 4, 172, hqqConfig(4, -1), {}, q));
  for (int i = 0; i < 5; ++i) {
    HQQOptions bad;
    if (i == 0)
      bad.lpNorm = 0.0f;
    if (i == 1)
      bad.lpNorm = 1.5f;
    if (i == 2)
      bad.beta = 0.0f;
    if (i == 3)
      bad.kappa = 0.5f;
    if (i == 4)
      bad.iters = -1;
    EXPECT_FALSE(quantizeHQQ(w.data(), 4, 172, hqqConfig(4, -1), bad, q)) << i;
  }

  // Non-finite weights are rejected with their position.
  std::vector<float> nan = w;
  nan[2 * 172 + 5] = NAN;
  s = quantizeHQQ(nan.data(), 4, 172, hqqConfig(4, -1), {}, q, nullptr,
                  "layers.0.w2");
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("layers.0.w2"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("row 2, column 5"), std::string::npos)
      << s.message();

  // A scale beyond the fp16 range is an error, not an infinity.
  std::vector<float> big(64);
  for (int i = 0; i < 64; ++i)
    big[i] = 1e6f * static_cast<float>(i) / 63.0f;
  s = quantizeHQQ(big.data(), 1, 64, hqqConfig(4, 64, ScaleDType::F16), {}, q);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("f16"), std::string::npos) << s.message();
  EXPECT_TRUE(
      quantizeHQQ(big.data(), 1, 64, hqqConfig(4, 64, ScaleDType::F32), {}, q));
}
