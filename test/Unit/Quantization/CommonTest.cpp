//===- CommonTest.cpp - Tests of the shared quantization grid ---*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Unit tests of qc::quant's common primitives (Common.h): the test vectors
// of ../shared/docs/ALGORITHMS.md §1.7, rounding mode, storage casts, the
// edge cases of §1.6, ragged groups, RTN, the MSE search of §1.5 and the
// layer-loss helper. Every test compares against values that a wrong
// implementation would get wrong.
//
//===----------------------------------------------------------------------===//

#include "qc/Quantization/Algorithms/Common.h"

#include "qc/runtime/Safetensors.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

using namespace qc;
using namespace qc::quant;

namespace {

QuantConfig makeConfig(int bits, int64_t groupSize, bool sym,
                       ScaleDType dtype = ScaleDType::F16) {
  QuantConfig cfg;
  cfg.bits = bits;
  cfg.groupSize = groupSize;
  cfg.sym = sym;
  cfg.scaleDType = dtype;
  return cfg;
}

std::vector<float> randomWeights(int64_t n, unsigned seed, float sigma = 1.0f,
                                 float outlierProb = 0.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, sigma);
  std::uniform_real_distribution<float> uni(0.0f, 1.0f);
  std::vector<float> w(static_cast<size_t>(n));
  for (float &x : w) {
    x = normal(rng);
    if (uni(rng) < outlierProb)
      x *= 12.0f;
  }
  return w;
}

/// sum |fq(x) - x|^norm for one group.
double groupError(const float *x, int64_t n, const GroupParams &p, int bits,
                  double norm) {
  double err = 0.0;
  for (int64_t i = 0; i < n; ++i)
    err += std::pow(
        std::fabs(static_cast<double>(fakeQuantize(x[i], p, bits)) - x[i]),
        norm);
  return err;
}

} // namespace

//===----------------------------------------------------------------------===//
// §1.7 test vectors and rounding
//===----------------------------------------------------------------------===//

TEST(CommonTest, AsymTestVector) {
  const std::vector<float> x = {-4,    -1.25f, -0.75f, 0,
                                0.25f, 1.25f,  2.75f,  3.5f};
  QuantConfig cfg = makeConfig(4, -1, /*sym=*/false);
  GroupParams p = computeGroupParams(x.data(), 8, cfg);
  EXPECT_EQ(p.scale, 0.5f);
  EXPECT_EQ(p.zero, 8.0f);
  const std::vector<int> expectQ = {0, 6, 6, 8, 8, 10, 14, 15};
  const std::vector<float> expectW = {-4, -1, -1, 0, 0, 1, 3, 3.5f};
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(quantizeCode(x[i], p, 4), expectQ[i]) << "i=" << i;
    EXPECT_EQ(fakeQuantize(x[i], p, 4), expectW[i]) << "i=" << i;
  }
  // The same through quantizeRTN (one row, one group).
  QuantizedWeight qw;
  ASSERT_TRUE(quantizeRTN(x.data(), 1, 8, cfg, qw).isOk());
  ASSERT_EQ(qw.numGroups(), 1);
  for (size_t i = 0; i < x.size(); ++i)
    EXPECT_EQ(qw.codes[i], expectQ[i]);
  std::vector<float> deq;
  qw.dequantize(deq);
  EXPECT_EQ(deq, expectW);
}

TEST(CommonTest, HalfAwayFromZeroWouldDiffer) {
  const std::vector<float> x = {-4,    -1.25f, -0.75f, 0,
                                0.25f, 1.25f,  2.75f,  3.5f};
  QuantConfig cfg = makeConfig(4, -1, false);
  GroupParams p = computeGroupParams(x.data(), 8, cfg);
  const std::vector<int> wrong = {0, 5, 6, 8, 9, 11, 14, 15};
  std::vector<int> ours, awayFromZero;
  for (float v : x) {
    ours.push_back(quantizeCode(v, p, 4));
    float q = std::round(v / p.scale) + p.zero;
    awayFromZero.push_back(
        static_cast<int>(std::min(std::max(q, 0.0f), 15.0f)));
  }
  EXPECT_EQ(awayFromZero, wrong);
  EXPECT_NE(ours, wrong);
  EXPECT_EQ(roundHalfEven(2.5f), 2.0f);
  EXPECT_EQ(roundHalfEven(-2.5f), -2.0f);
  EXPECT_EQ(roundHalfEven(3.5f), 4.0f);
  EXPECT_EQ(roundHalfEven(-0.5f), 0.0f);
}

TEST(CommonTest, SymTestVector) {
  const std::vector<float> x = {-7.5f, -2.5f, 0.5f, 1.5f, 7.5f};
  QuantConfig cfg = makeConfig(4, -1, /*sym=*/true);
  GroupParams p = computeGroupParams(x.data(), 5, cfg);
  EXPECT_EQ(p.scale, 1.0f);
  EXPECT_EQ(p.zero, 8.0f);
  const std::vector<int> expectQ = {0, 6, 8, 10, 15};
  const std::vector<float> expectW = {-8, -2, 0, 2, 7};
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(quantizeCode(x[i], p, 4), expectQ[i]) << "i=" << i;
    EXPECT_EQ(fakeQuantize(x[i], p, 4), expectW[i]) << "i=" << i;
  }
}

TEST(CommonTest, SymAllNonNegativeGroupIsCentred) {
  // Canonical §1.2: xmin = -xmax' even when every value is >= 0 (not the
  // AutoGPTQ #293 behaviour with s = xmax/qmax and saturation above 7s).
  const std::vector<float> x = {0.0f, 1.0f, 2.0f, 7.5f};
  GroupParams p = computeGroupParams(x.data(), 4, makeConfig(4, -1, true));
  EXPECT_EQ(p.scale, 1.0f);
  EXPECT_EQ(p.zero, 8.0f);
  EXPECT_EQ(fakeQuantize(2.0f, p, 4), 2.0f);
}

//===----------------------------------------------------------------------===//
// Storage casts
//===----------------------------------------------------------------------===//

TEST(CommonTest, ScaleDTypeCastsRoundToNearestEven) {
  EXPECT_EQ(castToScaleDType(1.0f / 3.0f, ScaleDType::F16), 0.333251953125f);
  EXPECT_EQ(castToScaleDType(1.0f / 3.0f, ScaleDType::F32), 1.0f / 3.0f);
  // 1 + 2^-11 is halfway between fp16 neighbours 1 and 1 + 2^-10: even wins.
  EXPECT_EQ(castToScaleDType(1.0f + std::ldexp(1.0f, -11), ScaleDType::F16),
            1.0f);
  EXPECT_EQ(castToScaleDType(1.0f + 3 * std::ldexp(1.0f, -11), ScaleDType::F16),
            1.0f + std::ldexp(1.0f, -9));
  EXPECT_EQ(castToScaleDType(1.0f + std::ldexp(1.0f, -8), ScaleDType::BF16),
            1.0f);
  EXPECT_TRUE(std::isinf(castToScaleDType(70000.0f, ScaleDType::F16)));
}

TEST(CommonTest, MinScaleIsRepresentableAndAtLeast1em5) {
  for (ScaleDType dt : {ScaleDType::F16, ScaleDType::BF16, ScaleDType::F32}) {
    float m = minScaleMagnitude(dt);
    EXPECT_GE(m, 1e-5f) << scaleDTypeName(dt);
    EXPECT_LT(m, 1.01e-5f) << scaleDTypeName(dt);
    EXPECT_EQ(castToScaleDType(m, dt), m) << scaleDTypeName(dt);
  }
}

TEST(CommonTest, ScalesAreRepresentableInStorageDType) {
  std::vector<float> w = randomWeights(8 * 256, 7, 0.02f, 0.01f);
  for (ScaleDType dt : {ScaleDType::F16, ScaleDType::BF16}) {
    for (bool sym : {false, true}) {
      QuantizedWeight qw;
      ASSERT_TRUE(
          quantizeRTN(w.data(), 8, 256, makeConfig(4, 64, sym, dt), qw).isOk());
      for (float s : qw.scales)
        EXPECT_EQ(castToScaleDType(s, dt), s);
      for (float z : qw.zeros) {
        EXPECT_EQ(z, std::floor(z));
        EXPECT_GE(z, 0.0f);
        EXPECT_LE(z, 15.0f);
      }
    }
  }
}

TEST(CommonTest, ScaleCastBeforeCodesReproducesFakeQuant) {
  // With the scale cast first, dequantize(q, s, z) is exactly the value the
  // quantizer chose, and |fq(x) - x| <= s/2 for x inside the grid's range.
  std::vector<float> w = randomWeights(4 * 128, 11, 0.05f);
  QuantConfig cfg = makeConfig(4, 32, false);
  QuantizedWeight qw;
  ASSERT_TRUE(quantizeRTN(w.data(), 4, 128, cfg, qw).isOk());
  std::vector<float> deq;
  qw.dequantize(deq);
  for (int64_t n = 0; n < 4; ++n)
    for (int64_t k = 0; k < 128; ++k) {
      GroupParams p = qw.params(k / 32, n);
      const float x = w[n * 128 + k];
      EXPECT_EQ(deq[n * 128 + k], fakeQuantize(x, p, 4));
      EXPECT_LE(std::fabs(deq[n * 128 + k] - x), p.scale * 0.5f * 1.001f);
    }
}

//===----------------------------------------------------------------------===//
// Group shapes and edge cases
//===----------------------------------------------------------------------===//

TEST(CommonTest, RaggedGroupCounts) {
  EXPECT_EQ(numGroupsFor(172, 32), 6);
  EXPECT_EQ(numGroupsFor(128, 32), 4);
  EXPECT_EQ(numGroupsFor(10, 4), 3);
  EXPECT_EQ(numGroupsFor(172, -1), 1);
  EXPECT_EQ(numGroupsFor(16, 128), 1);

  const int64_t N = 3, K = 172;
  std::vector<float> w = randomWeights(N * K, 3);
  QuantConfig cfg = makeConfig(4, 32, false);
  QuantizedWeight qw;
  ASSERT_TRUE(quantizeRTN(w.data(), N, K, cfg, qw).isOk());
  ASSERT_TRUE(qw.verify().isOk());
  EXPECT_EQ(qw.numGroups(), 6);
  EXPECT_EQ(qw.scales.size(), 6u * N);
  EXPECT_EQ(qw.groupOf(171), 5);
  EXPECT_EQ(qw.groupOf(160), 5);
  EXPECT_EQ(qw.groupOf(159), 4);
  // The last group's parameters come from its 12 columns only.
  for (int64_t n = 0; n < N; ++n) {
    GroupParams p = computeGroupParams(w.data() + n * K + 160, 12, cfg);
    EXPECT_EQ(qw.scales[5 * N + n], p.scale);
    EXPECT_EQ(qw.zeros[5 * N + n], p.zero);
  }
}

TEST(CommonTest, PerChannelUsesWholeRow) {
  const int64_t N = 2, K = 40;
  std::vector<float> w = randomWeights(N * K, 5);
  QuantConfig cfg = makeConfig(3, -1, false);
  QuantizedWeight qw;
  ASSERT_TRUE(quantizeRTN(w.data(), N, K, cfg, qw).isOk());
  EXPECT_EQ(qw.numGroups(), 1);
  for (int64_t n = 0; n < N; ++n)
    EXPECT_EQ(qw.scales[n], computeGroupParams(w.data() + n * K, K, cfg).scale);
  for (int64_t k = 0; k < K; ++k)
    EXPECT_EQ(qw.groupOf(k), 0);
}

TEST(CommonTest, AllZeroGroupUsesUnitRange) {
  std::vector<float> x(16, 0.0f);
  for (bool sym : {false, true}) {
    QuantConfig cfg = makeConfig(4, -1, sym);
    GroupParams p = computeGroupParams(x.data(), 16, cfg);
    EXPECT_EQ(p.scale, castToScaleDType(2.0f / 15.0f, ScaleDType::F16));
    if (sym) {
      EXPECT_EQ(p.zero, 8.0f);
    }
    for (float v : x)
      EXPECT_EQ(fakeQuantize(v, p, 4), 0.0f);
  }
}

TEST(CommonTest, ConstantGroupIsReconstructed) {
  // GPTQ-style range contains 0, so a constant group is not destroyed
  // (§1.6; the AWQ-style grid would give ~1e-5 here).
  for (float c : {3.0f, -2.0f, 0.37f}) {
    std::vector<float> x(8, c);
    for (bool sym : {false, true}) {
      GroupParams p = computeGroupParams(x.data(), 8, makeConfig(4, -1, sym));
      const float fq = fakeQuantize(c, p, 4);
      // s/2, plus the storage rounding of s at the saturated sym edge.
      EXPECT_LE(std::fabs(fq - c), 0.5f * p.scale * 1.01f)
          << "c=" << c << " sym=" << sym;
      EXPECT_GT(std::fabs(fq), 0.5f * std::fabs(c));
    }
  }
}

TEST(CommonTest, Fp16UnderflowIsClamped) {
  std::vector<float> x = {1e-9f, -2e-9f, 3e-10f, 0.0f};
  for (ScaleDType dt : {ScaleDType::F16, ScaleDType::BF16, ScaleDType::F32}) {
    for (bool sym : {false, true}) {
      QuantConfig cfg = makeConfig(4, -1, sym, dt);
      GroupParams p = computeGroupParams(x.data(), 4, cfg);
      EXPECT_EQ(p.scale, minScaleMagnitude(dt));
      EXPECT_GE(p.scale, 1e-5f);
      EXPECT_GE(p.zero, 0.0f);
      EXPECT_LE(p.zero, 15.0f);
      for (float v : x) {
        const float fq = fakeQuantize(v, p, 4);
        EXPECT_TRUE(std::isfinite(fq));
        EXPECT_LE(std::fabs(fq - v), 0.5f * p.scale);
      }
    }
  }
  // The raw fp16 cast would indeed have produced 0.
  EXPECT_EQ(castToScaleDType(3e-9f / 15.0f, ScaleDType::F16), 0.0f);
}

TEST(CommonTest, ScaleOverflowIsRejected) {
  std::vector<float> w = {2e6f, -1.0f, 3.0f, 0.5f};
  QuantizedWeight qw;
  Status st = quantizeRTN(w.data(), 1, 4, makeConfig(4, -1, false), qw, "big");
  ASSERT_FALSE(st.isOk());
  EXPECT_NE(st.message().find("big"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("f16"), std::string::npos) << st.message();
  // fp32 storage has the range for it.
  EXPECT_TRUE(
      quantizeRTN(w.data(), 1, 4, makeConfig(4, -1, false, ScaleDType::F32), qw)
          .isOk());
}

TEST(CommonTest, NonFiniteWeightsRejectedWithLayerName) {
  for (float bad : {NAN, INFINITY, -INFINITY}) {
    std::vector<float> w(2 * 5, 0.25f);
    w[8] = bad;
    QuantizedWeight qw;
    Status st = quantizeRTN(w.data(), 2, 5, makeConfig(4, -1, true), qw,
                            "model.layers.0.mlp.w2");
    ASSERT_FALSE(st.isOk());
    EXPECT_NE(st.message().find("model.layers.0.mlp.w2"), std::string::npos)
        << st.message();
    EXPECT_NE(st.message().find("flat index 8"), std::string::npos)
        << st.message();
    EXPECT_NE(st.message().find("row 1, column 3"), std::string::npos)
        << st.message();
  }
}

TEST(CommonTest, ConfigValidation) {
  for (int bits : {2, 3, 4, 8})
    EXPECT_TRUE(makeConfig(bits, 32, true).validate(64).isOk());
  EXPECT_FALSE(makeConfig(5, 32, true).validate(64).isOk());
  EXPECT_FALSE(makeConfig(1, 32, true).validate(64).isOk());
  EXPECT_FALSE(makeConfig(4, 0, true).validate(64).isOk());
  EXPECT_FALSE(makeConfig(4, -2, true).validate(64).isOk());
  EXPECT_FALSE(makeConfig(4, 32, true).validate(0).isOk());
  EXPECT_TRUE(makeConfig(4, -1, true).validate(7).isOk());
  QuantConfig bad = makeConfig(4, 32, true);
  bad.mseSearch = true;
  bad.mseMaxShrink = 0.0f;
  EXPECT_FALSE(bad.validate(64).isOk());
}

TEST(CommonTest, AllBitWidthsStayInRange) {
  std::vector<float> w = randomWeights(4 * 96, 21, 1.0f, 0.05f);
  for (int bits : {2, 3, 4, 8}) {
    for (bool sym : {false, true}) {
      QuantConfig cfg = makeConfig(bits, 32, sym);
      QuantizedWeight qw;
      ASSERT_TRUE(quantizeRTN(w.data(), 4, 96, cfg, qw).isOk());
      ASSERT_TRUE(qw.verify().isOk()) << qw.verify().message();
      if (sym) {
        for (float z : qw.zeros)
          EXPECT_EQ(z, static_cast<float>(1 << (bits - 1)));
      }
      std::vector<float> deq;
      qw.dequantize(deq);
      double err = layerLoss(w.data(), deq.data(), 4, 96);
      EXPECT_TRUE(std::isfinite(err));
      EXPECT_GT(err, 0.0);
    }
  }
}

TEST(CommonTest, MoreBitsMeansLessError) {
  std::vector<float> w = randomWeights(8 * 128, 23);
  double prev = 1e300;
  for (int bits : {2, 3, 4, 8}) {
    QuantizedWeight qw;
    ASSERT_TRUE(
        quantizeRTN(w.data(), 8, 128, makeConfig(bits, 32, false), qw).isOk());
    std::vector<float> deq;
    qw.dequantize(deq);
    double err = layerLoss(w.data(), deq.data(), 8, 128);
    EXPECT_LT(err, prev) << "bits=" << bits;
    prev = err;
  }
}

//===----------------------------------------------------------------------===//
// MSE range search (§1.5)
//===----------------------------------------------------------------------===//

TEST(CommonTest, MseSearchNeverWorseThanMinMax) {
  std::vector<float> w = randomWeights(64 * 128, 31, 1.0f, 0.02f);
  int strictlyBetter = 0;
  for (bool sym : {false, true}) {
    for (float norm : {2.4f, 2.0f}) {
      QuantConfig plain = makeConfig(4, 32, sym);
      QuantConfig mse = plain;
      mse.mseSearch = true;
      mse.mseNorm = norm;
      for (int64_t g = 0; g < 64 * 4; ++g) {
        const float *x = w.data() + g * 32;
        GroupParams a = computeGroupParams(x, 32, plain);
        GroupParams b = computeGroupParams(x, 32, mse);
        const double ea = groupError(x, 32, a, 4, norm);
        const double eb = groupError(x, 32, b, 4, norm);
        EXPECT_LE(eb, ea) << "group " << g;
        strictlyBetter += eb < ea;
        EXPECT_LE(b.scale, a.scale); // only shrinks
        EXPECT_EQ(castToScaleDType(b.scale, ScaleDType::F16), b.scale);
      }
    }
  }
  // With outliers the search must actually find better grids.
  EXPECT_GT(strictlyBetter, 100);
}

TEST(CommonTest, MseSearchThroughRTNLowersSquaredError) {
  std::vector<float> w = randomWeights(32 * 128, 37, 1.0f, 0.02f);
  QuantConfig plain = makeConfig(4, 128, false);
  QuantConfig mse = plain;
  mse.mseSearch = true;
  mse.mseNorm = 2.0f;
  QuantizedWeight a, b;
  ASSERT_TRUE(quantizeRTN(w.data(), 32, 128, plain, a).isOk());
  ASSERT_TRUE(quantizeRTN(w.data(), 32, 128, mse, b).isOk());
  std::vector<float> da, db;
  a.dequantize(da);
  b.dequantize(db);
  EXPECT_LT(layerLoss(w.data(), db.data(), 32, 128),
            layerLoss(w.data(), da.data(), 32, 128));
}

//===----------------------------------------------------------------------===//
// QuantizedWeight and layerLoss
//===----------------------------------------------------------------------===//

TEST(CommonTest, GIdxDrivesDequantization) {
  QuantConfig cfg = makeConfig(4, 2, false, ScaleDType::F32);
  QuantizedWeight qw;
  qw.allocate(1, 4, 2, cfg);
  qw.codes = {1, 2, 3, 4};
  qw.scales = {1.0f, 10.0f};
  qw.zeros = {0.0f, 1.0f};
  std::vector<float> deq;
  qw.dequantize(deq);
  EXPECT_EQ(deq, (std::vector<float>{1, 2, 20, 30}));
  EXPECT_TRUE(qw.hasTrivialGIdx());
  qw.gIdx = {1, 0, 1, 0};
  EXPECT_FALSE(qw.hasTrivialGIdx());
  qw.dequantize(deq);
  EXPECT_EQ(deq, (std::vector<float>{0, 2, 20, 4}));
  ASSERT_TRUE(qw.verify().isOk());
  qw.gIdx = {1, 0, 2, 0};
  EXPECT_FALSE(qw.verify().isOk());
  qw.gIdx.clear();
  qw.codes[0] = 16;
  EXPECT_FALSE(qw.verify().isOk());
}

TEST(CommonTest, LayerLoss) {
  // Two rows, K = 2: d = [1, 2], [0, -1].
  std::vector<float> w = {1, 2, 3, 4}, wq = {0, 0, 3, 5};
  EXPECT_DOUBLE_EQ(layerLoss(w.data(), wq.data(), 2, 2), 1 + 4 + 0 + 1);
  std::vector<float> eye = {1, 0, 0, 1};
  EXPECT_DOUBLE_EQ(layerLoss(w.data(), wq.data(), 2, 2, eye.data()), 6.0);
  // H = [[2, 1], [1, 3]]: row 0: 2 + 4 + 12 = 18; row 1: 3.
  std::vector<float> h = {2, 1, 1, 3};
  EXPECT_DOUBLE_EQ(layerLoss(w.data(), wq.data(), 2, 2, h.data()), 21.0);
  // Odd row counts exercise the remainder of the four-row blocking.
  std::vector<float> w5 = randomWeights(5 * 9, 41),
                     q5 = randomWeights(5 * 9, 43);
  std::vector<float> eye9(81, 0.0f);
  for (int i = 0; i < 9; ++i)
    eye9[i * 9 + i] = 1.0f;
  EXPECT_NEAR(layerLoss(w5.data(), q5.data(), 5, 9, eye9.data()),
              layerLoss(w5.data(), q5.data(), 5, 9), 1e-9);
}
