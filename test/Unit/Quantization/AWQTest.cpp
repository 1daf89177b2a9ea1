//===- AWQTest.cpp - AWQ statistics, search, folding and clipping ---------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Tests of ../shared/docs/ALGORITHMS.md §4.8 and of the pieces behind them:
// the equivalence transform leaves the fp block unchanged, alpha = 0 without
// duo scaling is RTN, the recorded search losses are reproducible and the
// chosen one is never worse than alpha = 0, clipping never increases the
// per-group error it minimizes, and on inputs with outlier channels AWQ
// beats plain RTN on the block output.
//
//===----------------------------------------------------------------------===//

#include "qc/Quantization/Algorithms/AWQ.h"

#include "BlockTestUtils.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>

using namespace qc;
using namespace qc::quant;

namespace {

using qc::quant::test::randomBlock;
using qc::quant::test::Rng;

/// dim 16, 4 heads of 4; `mha` makes v and o the same shape (v->o applies).
ModelConfig config(bool mha, bool bias = false) {
  ModelConfig c;
  c.dim = 16;
  c.hiddenDim = 24;
  c.nLayers = 1;
  c.nHeads = 4;
  c.nKVHeads = mha ? 4 : 2;
  c.headDim = 4;
  c.vocabSize = 32;
  c.maxSeqLen = 64;
  c.attentionBias = bias;
  c.ropeLayout = RopeLayout::Interleaved;
  return c;
}

QuantConfig qconfig(int bits = 4, int64_t G = 16, bool sym = false) {
  QuantConfig q;
  q.bits = bits;
  q.groupSize = G;
  q.sym = sym;
  return q;
}

std::vector<float> forward(const ModelConfig &c, const BlockWeights &w,
                           const std::vector<float> &x, int64_t S, int64_t T) {
  std::vector<float> y(x.size());
  Status st = blockForward(c, w, x.data(), S, T, y.data());
  EXPECT_TRUE(st.isOk()) << st.message();
  return y;
}

double mse(const std::vector<float> &a, const std::vector<float> &b) {
  double acc = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    double d = double(a[i]) - b[i];
    acc += d * d;
  }
  return acc / a.size();
}

//===----------------------------------------------------------------------===//
// Statistics and grid
//===----------------------------------------------------------------------===//

TEST(AWQ, InputMeanUsesAbsoluteValues) {
  // Channel 0 alternates sign: a mean without abs would be 0 (the
  // llm-compressor #1788 regression).
  std::vector<float> x = {1, -2, -1, 4, 1, -6, -1, 0};
  std::vector<float> m = awqInputMean(x.data(), 4, 2);
  EXPECT_FLOAT_EQ(m[0], 1.0f);
  EXPECT_FLOAT_EQ(m[1], 3.0f);
}

TEST(AWQ, WeightMeanNormalizesPerRowGroup) {
  // Two layers of one row each, K = 4, G = 2 -> groups {0,1}, {2,3}.
  std::vector<float> a = {1, -2, 0, 0}, b = {4, 4, -1, 0.5f};
  std::vector<float> m = awqWeightMean({a.data(), b.data()}, {1, 1}, 4, 2);
  const float e = 1e-6f;
  EXPECT_FLOAT_EQ(m[0], (1 / (2 + e) + 4 / (4 + e)) / 2);
  EXPECT_FLOAT_EQ(m[1], (2 / (2 + e) + 4 / (4 + e)) / 2);
  EXPECT_FLOAT_EQ(m[2], (0 / (0 + e) + 1 / (1 + e)) / 2); // zero group finite
  EXPECT_FLOAT_EQ(m[3], (0 / (0 + e) + 0.5f / (1 + e)) / 2);
  // Per-channel (G = -1): one group per row.
  std::vector<float> pc = awqWeightMean({b.data()}, {1}, 4, -1);
  EXPECT_FLOAT_EQ(pc[2], 1 / (4 + e));
}

TEST(AWQ, ScalesForRatio) {
  std::vector<float> xm = {0.5f, 2.0f, 8.0f, 0.0f};
  std::vector<float> wm = {0.2f, 0.4f, 0.6f, 0.8f};
  // alpha = 0 without duo scaling: s == 1 exactly (RTN).
  for (float v : awqScalesForRatio(xm, wm, 0.0f, false))
    EXPECT_EQ(v, 1.0f);
  // Normalized so that max * min == 1; the zero channel is clamped to 1e-4.
  std::vector<float> s = awqScalesForRatio(xm, wm, 0.5f, false);
  const float raw[4] = {std::sqrt(0.5f), std::sqrt(2.0f), std::sqrt(8.0f),
                        1e-4f};
  const double norm = std::sqrt(double(raw[2]) * raw[3]);
  for (int i = 0; i < 4; ++i)
    EXPECT_FLOAT_EQ(s[i], static_cast<float>(raw[i] / norm));
  auto mm = std::minmax_element(s.begin(), s.end());
  EXPECT_NEAR(double(*mm.first) * *mm.second, 1.0, 1e-6);
  // Duo scaling divides by w_mean^(1-alpha) + 1e-4.
  std::vector<float> d = awqScalesForRatio(xm, wm, 0.25f, true);
  float r0 = std::pow(0.5f, 0.25f) / (std::pow(0.2f, 0.75f) + 1e-4f);
  float r1 = std::pow(2.0f, 0.25f) / (std::pow(0.4f, 0.75f) + 1e-4f);
  EXPECT_NEAR(d[1] / d[0], r1 / r0, 1e-5);
  // A NaN statistic poisons the normalization: every scale falls back to 1.
  std::vector<float> bad = {1.0f, std::nanf(""), 2.0f, 3.0f};
  for (float v : awqScalesForRatio(bad, wm, 0.5f, false))
    EXPECT_EQ(v, 1.0f);
}

TEST(AWQ, PseudoQuantizeFollowsAWQGrid) {
  // Asym, raw min/max: x = [-1, 0.5, 2] -> s = fp16(3/15), z = 5.
  std::vector<float> x = {-1.0f, 0.5f, 2.0f}, out(3);
  QuantConfig q = qconfig(4, -1);
  awqPseudoQuantize(x.data(), 1, 3, q, out.data());
  const float s = castToScaleDType(3.0f / 15.0f, ScaleDType::F16);
  EXPECT_EQ(s, 0.199951171875f);
  EXPECT_EQ(out[0], s * (0 - 5));
  EXPECT_EQ(out[1], s * (8 - 5));
  EXPECT_EQ(out[2], s * (15 - 5));
  // All-positive group: zero clamps to 0 and codes saturate (0 not in
  // the range, unlike the GPTQ grid), exactly as the reference does.
  std::vector<float> pos = {1.0f, 2.5f, 4.0f};
  awqPseudoQuantize(pos.data(), 1, 3, q, out.data());
  const float s2 = castToScaleDType(3.0f / 15.0f, ScaleDType::F16);
  EXPECT_EQ(out[0], s2 * 5);
  EXPECT_EQ(out[2], s2 * 15);
  // -min/s = 2.5 exactly: the zero point rounds half to even (2, not 3).
  std::vector<float> tie = {-0.625f, 1.0f, 3.125f};
  QuantizedWeight tq;
  ASSERT_TRUE(awqQuantizeWeight(tie.data(), 1, 3, q, tq, "tie").isOk());
  EXPECT_EQ(tq.scales[0], 0.25f);
  EXPECT_EQ(tq.zeros[0], 2.0f);
  // Export reproduces the fake quantization bit for bit, asym and sym.
  Rng r(3);
  std::vector<float> w;
  r.fill(w, 6 * 40, -1.0f, 1.0f);
  for (bool sym : {false, true}) {
    QuantConfig qc = qconfig(4, 16, sym);
    std::vector<float> fake(w.size()), deq;
    awqPseudoQuantize(w.data(), 6, 40, qc, fake.data());
    QuantizedWeight qw;
    ASSERT_TRUE(awqQuantizeWeight(w.data(), 6, 40, qc, qw, "w").isOk());
    qw.dequantize(deq);
    EXPECT_EQ(deq, fake) << (sym ? "sym" : "asym");
    if (sym) {
      EXPECT_EQ(qw.zeros[0], 8.0f);
    }
  }
}

//===----------------------------------------------------------------------===//
// Equivalence transform
//===----------------------------------------------------------------------===//

class AWQFold : public ::testing::TestWithParam<std::pair<bool, bool>> {};

TEST_P(AWQFold, FoldingScalesLeavesBlockOutputUnchanged) {
  const bool mha = GetParam().first, bias = GetParam().second;
  ModelConfig c = config(mha, bias);
  BlockWeights w = randomBlock(c, 11);
  Rng r(12);
  const int64_t S = 2, T = 6;
  std::vector<float> x;
  r.fill(x, S * T * c.dim, -1.0f, 1.0f);
  std::vector<float> y0 = forward(c, w, x, S, T);

  AWQBlockResult res;
  for (int gi = 0; gi < kNumAWQGroups; ++gi) {
    AWQGroup g = static_cast<AWQGroup>(gi);
    res.groups[gi].group = g;
    res.groups[gi].applied = awqGroupApplies(c, g);
    if (!res.groups[gi].applied)
      continue;
    int64_t N, K;
    blockLinearShape(c, awqGroupLayers(g).front(), N, K);
    r.fill(res.groups[gi].scales, K, 0.25f, 4.0f);
  }
  EXPECT_EQ(res.groups[1].applied, mha);
  BlockWeights folded = w;
  ASSERT_TRUE(applyAWQScales(folded, res).isOk());
  EXPECT_NE(folded.inputNorm, w.inputNorm);
  EXPECT_NE(folded.up, w.up);
  EXPECT_EQ(folded.v != w.v, true);
  std::vector<float> y1 = forward(c, folded, x, S, T);
  for (size_t i = 0; i < y0.size(); ++i)
    ASSERT_NEAR(y1[i], y0[i], 1e-5 * std::max(1.0f, std::fabs(y0[i])))
        << "element " << i;

  // A wrong fold (columns scaled but the norm left alone) must show.
  BlockWeights wrong = w;
  for (size_t i = 0; i < wrong.q.size(); ++i)
    wrong.q[i] *= res.groups[0].scales[i % c.dim];
  std::vector<float> y2 = forward(c, wrong, x, S, T);
  EXPECT_GT(mse(y2, y0), 1e-6);
}

INSTANTIATE_TEST_SUITE_P(AWQ, AWQFold,
                         ::testing::Values(std::make_pair(true, false),
                                           std::make_pair(true, true),
                                           std::make_pair(false, false),
                                           std::make_pair(false, true)),
                         [](const auto &info) {
                           return std::string(info.param.first ? "MHA"
                                                               : "GQA") +
                                  (info.param.second ? "Bias" : "NoBias");
                         });

//===----------------------------------------------------------------------===//
// Search
//===----------------------------------------------------------------------===//

/// Inputs with a few large-magnitude channels (the situation AWQ targets).
std::vector<float> outlierInputs(const ModelConfig &c, int64_t S, int64_t T,
                                 uint64_t seed) {
  Rng r(seed);
  std::vector<float> x;
  r.fill(x, S * T * c.dim, -1.0f, 1.0f);
  for (int64_t t = 0; t < S * T; ++t) {
    x[t * c.dim + 3] *= 25.0f;
    x[t * c.dim + 9] *= 15.0f;
  }
  return x;
}

TEST(AWQ, SearchRecordsReproducibleLossesAndNeverLosesToAlphaZero) {
  ModelConfig c = config(true);
  BlockWeights w = randomBlock(c, 21);
  const int64_t S = 3, T = 8;
  std::vector<float> x = outlierInputs(c, S, T, 22);
  QuantConfig qc = qconfig(3, 16);
  for (bool duo : {false, true}) {
    AWQOptions o;
    o.duoScaling = duo;
    o.applyClip = false;
    AWQBlockResult res;
    ASSERT_TRUE(awqSearchBlock(c, w, x.data(), S, T, qc, o, res).isOk());
    EXPECT_TRUE(res.groups[1].applied); // MHA: v->o searched
    BlockActivations acts;
    std::vector<float> y(x.size());
    ASSERT_TRUE(blockForward(c, w, x.data(), S, T, y.data(), &acts).isOk());
    for (const AWQGroupResult &g : res.groups) {
      SCOPED_TRACE(std::string(awqGroupName(g.group)) +
                   (duo ? " duo" : " plain"));
      ASSERT_EQ(g.losses.size(), 20u);
      ASSERT_GE(g.bestIndex, 0);
      EXPECT_FALSE(g.fellBack);
      // First strict argmin; never worse than alpha = 0.
      auto it = std::min_element(g.losses.begin(), g.losses.end());
      EXPECT_EQ(g.bestIndex, it - g.losses.begin());
      EXPECT_FLOAT_EQ(g.bestRatio, g.bestIndex / 20.0f);
      EXPECT_LE(g.losses[g.bestIndex], g.losses[0]);
      for (double l : g.losses)
        EXPECT_TRUE(std::isfinite(l)); // well-conditioned toy (§4.8)
      // The recorded loss is what the returned scales give.
      const float *inp =
          acts.linearInput(awqGroupLayers(g.group).front()).data();
      double again = 0;
      ASSERT_TRUE(
          awqGroupLoss(c, w, g.group, inp, S, T, g.scales, qc, again).isOk());
      EXPECT_DOUBLE_EQ(again, g.losses[g.bestIndex]);
      // Without duo scaling, alpha = 0 is plain RTN (s == 1).
      if (!duo) {
        double rtn = 0;
        ASSERT_TRUE(awqGroupLoss(c, w, g.group, inp, S, T, {}, qc, rtn).isOk());
        EXPECT_DOUBLE_EQ(rtn, g.losses[0]);
      }
    }
    // With outlier input channels the q/k/v search must pick alpha > 0 and
    // strictly improve on RTN.
    EXPECT_GT(res.groups[0].bestIndex, 0);
    EXPECT_LT(res.groups[0].losses[res.groups[0].bestIndex],
              res.groups[0].losses[0]);
  }
}

TEST(AWQ, EqualLossesKeepTheFirstRatio) {
  // Unit norm weights and +-1 inputs make every |xn| channel mean equal, so
  // without duo scaling every ratio gives s == 1 and the same loss: the
  // first strict minimum (alpha = 0) must win.
  ModelConfig c = config(true);
  BlockWeights w = randomBlock(c, 71);
  std::fill(w.inputNorm.begin(), w.inputNorm.end(), 1.0f);
  Rng r(72);
  const int64_t S = 2, T = 5;
  std::vector<float> x(S * T * c.dim);
  for (float &v : x)
    v = r.uniform(0, 1) < 0.5f ? -1.0f : 1.0f;
  AWQOptions o;
  o.duoScaling = false;
  o.applyClip = false;
  AWQBlockResult res;
  ASSERT_TRUE(awqSearchBlock(c, w, x.data(), S, T, qconfig(), o, res).isOk());
  const AWQGroupResult &g = res.groups[0];
  for (double l : g.losses)
    EXPECT_EQ(l, g.losses[0]);
  EXPECT_EQ(g.bestIndex, 0);
  for (float v : g.scales)
    EXPECT_EQ(v, 1.0f);
}

TEST(AWQ, SkipsVOForGroupedQueryAttention) {
  ModelConfig c = config(false);
  BlockWeights w = randomBlock(c, 31);
  std::vector<float> x = outlierInputs(c, 2, 5, 32);
  AWQBlockResult res;
  ASSERT_TRUE(awqSearchBlock(c, w, x.data(), 2, 5, qconfig(), AWQOptions(), res)
                  .isOk());
  EXPECT_FALSE(res.groups[1].applied);
  EXPECT_TRUE(res.groups[1].scales.empty());
  EXPECT_TRUE(res.groups[0].applied && res.groups[2].applied &&
              res.groups[3].applied);
}

TEST(AWQ, ClipNeverIncreasesGroupError) {
  ModelConfig c = config(true);
  BlockWeights w = randomBlock(c, 41);
  // Heavy-tailed weights so that clipping pays off somewhere.
  Rng r(42);
  for (BlockLinear l : kAllBlockLinears)
    for (float &v : w.linear(l))
      if (r.uniform(0, 1) < 0.05f)
        v *= 6.0f;
  const int64_t S = 4, T = 16; // 64 rows < 512: no subsampling
  std::vector<float> x = outlierInputs(c, S, T, 43);
  QuantConfig qc = qconfig(3, 16); // down_proj K = 24: ragged group
  AWQBlockResult res;
  ASSERT_TRUE(
      awqSearchBlock(c, w, x.data(), S, T, qc, AWQOptions(), res).isOk());
  BlockWeights scaled = w;
  ASSERT_TRUE(applyAWQScales(scaled, res).isOk());
  BlockWeights clipped = scaled;
  ASSERT_TRUE(applyAWQClip(c, clipped, res, qc).isOk());
  // Inputs of the scaled block = cached inputs / s.
  BlockActivations acts;
  std::vector<float> y(x.size());
  ASSERT_TRUE(blockForward(c, scaled, x.data(), S, T, y.data(), &acts).isOk());
  int shrunk = 0;
  for (BlockLinear l : kAllBlockLinears) {
    const std::vector<float> &m = res.clipMax[blockLinearIndex(l)];
    if (l == BlockLinear::Q || l == BlockLinear::K) {
      EXPECT_TRUE(m.empty());
      continue;
    }
    int64_t N, K;
    blockLinearShape(c, l, N, K);
    const int64_t ng = numGroupsFor(K, 16);
    ASSERT_EQ(static_cast<int64_t>(m.size()), N * ng);
    const std::vector<float> &X = acts.linearInput(l);
    std::vector<float> q0(N * K), q1(N * K);
    awqPseudoQuantize(scaled.linear(l).data(), N, K, qc, q0.data());
    awqPseudoQuantize(clipped.linear(l).data(), N, K, qc, q1.data());
    const float *W = scaled.linear(l).data();
    for (int64_t n = 0; n < N; ++n)
      for (int64_t g = 0; g < ng; ++g) {
        const int64_t k0 = g * 16, k1 = std::min<int64_t>(K, k0 + 16);
        float m0 = 0;
        for (int64_t k = k0; k < k1; ++k)
          m0 = std::max(m0, std::fabs(W[n * K + k]));
        // The maximum is one of the grid points m0 (1 - i/20), i < 10.
        bool onGrid = false;
        for (int i = 0; i < 10; ++i)
          onGrid |= m[n * ng + g] == m0 * static_cast<float>(1.0 - i / 20.0);
        EXPECT_TRUE(onGrid) << m[n * ng + g] << " vs max " << m0;
        shrunk += m[n * ng + g] < m0;
        double e0 = 0, e1 = 0;
        for (int64_t t = 0; t < S * T; ++t) {
          double ref = 0, a0 = 0, a1 = 0;
          for (int64_t k = k0; k < k1; ++k) {
            ref += double(X[t * K + k]) * W[n * K + k];
            a0 += double(X[t * K + k]) * q0[n * K + k];
            a1 += double(X[t * K + k]) * q1[n * K + k];
          }
          e0 += (a0 - ref) * (a0 - ref);
          e1 += (a1 - ref) * (a1 - ref);
        }
        EXPECT_LE(e1, e0 * (1 + 1e-4) + 1e-12)
            << blockLinearName(l) << " row " << n << " group " << g;
      }
  }
  EXPECT_GT(shrunk, 0) << "no group was clipped: the test is vacuous";
}

TEST(AWQ, BeatsRTNOnOutlierChannels) {
  ModelConfig c = config(true, /*bias=*/true);
  BlockWeights w = randomBlock(c, 51);
  const int64_t S = 4, T = 16;
  std::vector<float> x = outlierInputs(c, S, T, 52);
  std::vector<float> yFp = forward(c, w, x, S, T);
  for (int bits : {3, 4}) {
    QuantConfig qc = qconfig(bits, 16);
    // Plain RTN on the AWQ grid.
    std::array<QuantizedWeight, kNumBlockLinears> rtnQ;
    ASSERT_TRUE(awqQuantizeBlock(c, w, qc, rtnQ).isOk());
    BlockWeights rtn = w;
    ASSERT_TRUE(setDequantizedLinears(rtn, rtnQ).isOk());
    // AWQ: scales + clip + the same quantizer.
    BlockWeights awq = w;
    std::array<QuantizedWeight, kNumBlockLinears> awqQ;
    AWQBlockResult res;
    ASSERT_TRUE(
        awqBlock(c, awq, x.data(), S, T, qc, AWQOptions(), awqQ, res).isOk());
    EXPECT_NE(awq.inputNorm, w.inputNorm); // scales were folded
    ASSERT_TRUE(setDequantizedLinears(awq, awqQ).isOk());
    const double eRtn = mse(forward(c, rtn, x, S, T), yFp);
    const double eAwq = mse(forward(c, awq, x, S, T), yFp);
    EXPECT_LT(eAwq, eRtn) << bits << "-bit";
    std::printf("%d-bit block output MSE: RTN %.4g, AWQ %.4g\n", bits, eRtn,
                eAwq);
  }
}

TEST(AWQ, RejectsBadInput) {
  ModelConfig c = config(true);
  BlockWeights w = randomBlock(c, 61);
  std::vector<float> x = outlierInputs(c, 1, 4, 62);
  AWQBlockResult res;
  BlockWeights nan = w;
  nan.gate[3] = std::nanf("");
  Status st =
      awqSearchBlock(c, nan, x.data(), 1, 4, qconfig(), AWQOptions(), res);
  ASSERT_FALSE(st.isOk());
  EXPECT_NE(st.message().find("gate_proj"), std::string::npos);
  AWQOptions o;
  o.nGrid = 0;
  EXPECT_FALSE(awqSearchBlock(c, w, x.data(), 1, 4, qconfig(), o, res).isOk());
  QuantConfig bad = qconfig();
  bad.bits = 7;
  EXPECT_FALSE(
      awqSearchBlock(c, w, x.data(), 1, 4, bad, AWQOptions(), res).isOk());
  // Scales of the wrong size or sign are refused by the fold.
  AWQBlockResult r2;
  r2.groups[0].group = AWQGroup::QKV;
  r2.groups[0].applied = true;
  r2.groups[0].scales.assign(c.dim - 1, 1.0f);
  BlockWeights w2 = w;
  EXPECT_FALSE(applyAWQScales(w2, r2).isOk());
  r2.groups[0].scales.assign(c.dim, 1.0f);
  r2.groups[0].scales[2] = -1.0f;
  EXPECT_FALSE(applyAWQScales(w2, r2).isOk());
}

} // namespace
