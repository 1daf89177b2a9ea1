//===- AutoRoundTest.cpp - SignRound quantizer and block loop -------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Tests of ../shared/docs/ALGORITHMS.md §6.3 plus the straight-through
// backward of the §6.1 quantizer. The backward is checked against finite
// differences of a "frozen rounding" surrogate: every round() / storage
// cast is replaced by its argument plus the constant offset it produced at
// the base point, and every clamp by its base-point branch; autograd with
// round_ste differentiates exactly that function.
//
//===----------------------------------------------------------------------===//

#include "qc/Quantization/Algorithms/AutoRound.h"

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

ModelConfig tinyConfig() {
  ModelConfig c;
  c.dim = 16;
  c.hiddenDim = 24;
  c.nLayers = 1;
  c.nHeads = 4;
  c.nKVHeads = 2;
  c.headDim = 4;
  c.vocabSize = 32;
  c.maxSeqLen = 64;
  c.ropeLayout = RopeLayout::HalfSplit;
  return c;
}

/// Inputs [S, T, D] and fp targets for a random block.
struct Problem {
  ModelConfig c;
  BlockWeights w;
  int64_t S = 16, T = 7;
  std::vector<float> x, y;
};

Problem makeProblem(uint64_t seed, bool bias = false) {
  Problem p;
  p.c = tinyConfig();
  p.c.attentionBias = bias;
  p.w = randomBlock(p.c, seed);
  Rng r(seed + 100);
  r.fill(p.x, p.S * p.T * p.c.dim, -1.5f, 1.5f);
  p.y.resize(p.x.size());
  EXPECT_TRUE(blockForward(p.c, p.w, p.x.data(), p.S, p.T, p.y.data()).isOk());
  return p;
}

QuantConfig qconfig(bool sym, int bits = 4, int64_t G = 16) {
  QuantConfig q;
  q.bits = bits;
  q.groupSize = G; // down_proj has K = 24: one ragged group of 8
  q.sym = sym;
  return q;
}

double batchLoss(const Problem &p, const BlockWeights &w, const int64_t *idx,
                 int64_t B) {
  const int64_t D = p.c.dim, n = p.T * D;
  std::vector<float> xb(B * n), yb(B * n), out(B * n);
  for (int64_t i = 0; i < B; ++i) {
    std::copy(p.x.begin() + idx[i] * n, p.x.begin() + (idx[i] + 1) * n,
              xb.begin() + i * n);
    std::copy(p.y.begin() + idx[i] * n, p.y.begin() + (idx[i] + 1) * n,
              yb.begin() + i * n);
  }
  EXPECT_TRUE(blockForward(p.c, w, xb.data(), B, p.T, out.data()).isOk());
  double acc = 0;
  for (int64_t i = 0; i < B * n; ++i) {
    double d = static_cast<double>(out[i]) - yb[i];
    acc += d * d;
  }
  return acc / static_cast<double>(B * n);
}

//===----------------------------------------------------------------------===//
// Quantizer
//===----------------------------------------------------------------------===//

/// The frozen-rounding surrogate of one weight, evaluated in double.
struct Surrogate {
  bool sym;
  int bits;
  int64_t N, K, G, ng;
  std::vector<float> w;
  // Base-point constants.
  std::vector<double> dS, dZ, dC; // rounding offsets
  std::vector<double> s0, z0, q0; // base values
  std::vector<char> pass, in;     // clamp branches
  std::vector<double> sign;       // sym: sign of the signed max
  std::vector<char> posWins;      // sym: which side of max() was taken
  std::vector<double> wmin0, wmax0;

  double eval(const std::vector<double> &v, const std::vector<double> &a,
              const std::vector<double> &b, const std::vector<float> &R) {
    const double qmax = (1 << bits) - 1, half = 1 << (bits - 1);
    double f = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t g = 0; g < ng; ++g) {
        const int64_t gi = n * ng + g;
        const double wmin = wmin0[gi] * b[gi], wmax = wmax0[gi] * a[gi];
        double s;
        if (!sym)
          s = pass[gi] ? (wmax - wmin) / qmax + dS[gi] : s0[gi];
        else {
          const double mx = posWins[gi] ? wmax : -wmin;
          s = pass[gi] ? sign[gi] * mx / half + dS[gi] : s0[gi];
        }
        const double zp = sym ? 0.0 : -wmin / s + dZ[gi];
        for (int64_t k = g * G; k < std::min(K, (g + 1) * G); ++k) {
          const int64_t i = n * K + k;
          const double c = w[i] / s + v[i] + dC[i] + zp;
          const double q = in[i] ? c : q0[i];
          f += R[i] * s * (q - zp);
        }
      }
    return f;
  }
};

Surrogate buildSurrogate(const std::vector<float> &w, int64_t N, int64_t K,
                         const QuantConfig &cfg, const AutoRoundParams &p,
                         const QuantizedWeight &qw) {
  Surrogate S;
  S.sym = cfg.sym;
  S.bits = cfg.bits;
  S.N = N, S.K = K, S.G = cfg.effectiveGroupSize(K);
  S.ng = numGroupsFor(K, cfg.groupSize);
  S.w = w;
  const double qmax = cfg.qmax(), half = 1 << (cfg.bits - 1);
  const float floorMag = minScaleMagnitude(cfg.scaleDType);
  S.dS.resize(N * S.ng), S.dZ.resize(N * S.ng), S.s0.resize(N * S.ng),
      S.z0.resize(N * S.ng), S.pass.resize(N * S.ng), S.sign.resize(N * S.ng),
      S.posWins.resize(N * S.ng), S.wmin0.resize(N * S.ng),
      S.wmax0.resize(N * S.ng);
  S.dC.resize(N * K), S.q0.resize(N * K), S.in.resize(N * K);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t g = 0; g < S.ng; ++g) {
      const int64_t gi = n * S.ng + g, k0 = g * S.G, k1 = std::min(K, k0 + S.G);
      float lo = 0, hi = 0;
      for (int64_t k = k0; k < k1; ++k)
        lo = std::min(lo, w[n * K + k]), hi = std::max(hi, w[n * K + k]);
      S.wmin0[gi] = lo, S.wmax0[gi] = hi;
      const float wmin = lo * p.beta[gi], wmax = hi * p.alpha[gi];
      const float s = qw.scales[g * N + n];
      double raw;
      if (!cfg.sym)
        raw = (double(wmax) - wmin) / qmax;
      else {
        S.posWins[gi] = wmax > -wmin;
        const double mx = std::max<double>(wmax, -wmin);
        S.sign[gi] = wmax < -wmin ? 1.0 : -1.0;
        raw = S.sign[gi] * mx / half;
      }
      S.pass[gi] = std::fabs(castToScaleDType(static_cast<float>(raw),
                                              cfg.scaleDType)) >= floorMag;
      S.s0[gi] = s;
      S.dS[gi] = s - raw;
      const double zp = cfg.sym ? 0.0 : qw.zeros[g * N + n];
      S.z0[gi] = zp;
      S.dZ[gi] = cfg.sym ? 0.0 : zp - (-double(wmin) / s);
      for (int64_t k = k0; k < k1; ++k) {
        const int64_t i = n * K + k;
        const float arg = w[i] / s + p.v[i];
        const float r = std::nearbyint(arg);
        S.dC[i] = double(r) - double(arg);
        const double c = r + zp;
        const double lo2 = cfg.sym ? -half : 0, hi2 = cfg.sym ? half - 1 : qmax;
        S.in[i] = c >= lo2 && c <= hi2;
        S.q0[i] = std::min(std::max(c, lo2), hi2);
      }
    }
  return S;
}

class AutoRoundQuantizerGrad : public ::testing::TestWithParam<bool> {};

TEST_P(AutoRoundQuantizerGrad, MatchesFrozenRoundingSurrogate) {
  const bool sym = GetParam();
  const int64_t N = 6, K = 40; // G = 16: groups of 16, 16, 8 (ragged)
  QuantConfig cfg = qconfig(sym);
  Rng r(21);
  std::vector<float> w, R;
  r.fill(w, N * K, -1.0f, 1.0f);
  r.fill(R, N * K, -1.0f, 1.0f);
  AutoRoundQuantizer q;
  ASSERT_TRUE(q.init(w.data(), N, K, cfg, "toy").isOk());
  // Move away from the initial point so that both clamps are active
  // somewhere: shrunken ranges saturate codes, V shifts the rounding.
  for (float &v : q.params.v)
    v = r.uniform(-0.45f, 0.45f);
  for (size_t i = 0; i < q.params.alpha.size(); ++i) {
    q.params.alpha[i] = r.uniform(0.6f, 1.0f);
    q.params.beta[i] = r.uniform(0.6f, 1.0f);
  }
  std::vector<float> wq;
  ASSERT_TRUE(q.forward(wq).isOk());
  std::vector<float> dv, da, db;
  q.backward(R.data(), dv, da, db);
  QuantizedWeight qw;
  ASSERT_TRUE(q.exportWeight(qw).isOk());
  Surrogate S = buildSurrogate(w, N, K, cfg, q.params, qw);
  int clamped = 0;
  for (char c : S.in)
    clamped += !c;
  ASSERT_GT(clamped, 0) << "no saturated code: clamp branch untested";
  ASSERT_LT(clamped, N * K);

  std::vector<double> v(q.params.v.begin(), q.params.v.end()),
      a(q.params.alpha.begin(), q.params.alpha.end()),
      b(q.params.beta.begin(), q.params.beta.end());
  // The surrogate reproduces the forward at the base point.
  {
    std::vector<float> ones(N * K, 0.0f);
    for (int64_t i = 0; i < N * K; ++i) {
      std::fill(ones.begin(), ones.end(), 0.0f);
      ones[i] = 1.0f;
      if (i % 37 == 0) {
        ASSERT_NEAR(S.eval(v, a, b, ones), wq[i], 1e-6) << i;
      }
    }
  }
  const double h = 1e-5;
  auto fdCheck = [&](std::vector<double> &param, const std::vector<float> &g,
                     const char *what) {
    double mx = 0;
    std::vector<double> fd(param.size());
    for (size_t i = 0; i < param.size(); ++i) {
      double keep = param[i];
      param[i] = keep + h;
      double fp = S.eval(v, a, b, R);
      param[i] = keep - h;
      double fm = S.eval(v, a, b, R);
      param[i] = keep;
      fd[i] = (fp - fm) / (2 * h);
      mx = std::max(mx, std::fabs(fd[i]));
    }
    ASSERT_GT(mx, 1e-3) << what;
    for (size_t i = 0; i < param.size(); ++i)
      ASSERT_NEAR(g[i], fd[i], 1e-4 * mx) << what << " " << i;
  };
  fdCheck(v, dv, "V");
  fdCheck(a, da, "alpha");
  fdCheck(b, db, "beta");
}

INSTANTIATE_TEST_SUITE_P(AutoRound, AutoRoundQuantizerGrad,
                         ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool> &i) {
                           return std::string(i.param ? "Sym" : "Asym");
                         });

TEST(AutoRound, QuantizerClampsAlphaBetaAndExportsExactly) {
  const int64_t N = 5, K = 32;
  Rng r(31);
  std::vector<float> w;
  r.fill(w, N * K, -2.0f, 1.0f);
  for (bool sym : {false, true}) {
    AutoRoundQuantizer q;
    ASSERT_TRUE(q.init(w.data(), N, K, qconfig(sym, 4, 16)).isOk());
    q.params.alpha[0] = 1.7f;
    q.params.beta[1] = -0.2f;
    for (float &v : q.params.v)
      v = r.uniform(-0.6f, 0.6f);
    std::vector<float> wq, deq;
    ASSERT_TRUE(q.forward(wq).isOk());
    EXPECT_EQ(q.params.alpha[0], 1.0f);
    EXPECT_EQ(q.params.beta[1], 0.0f);
    QuantizedWeight qw;
    ASSERT_TRUE(q.exportWeight(qw).isOk());
    qw.dequantize(deq);
    EXPECT_EQ(deq, wq) << (sym ? "sym" : "asym");
    if (sym) {
      for (float z : qw.zeros)
        EXPECT_EQ(z, 8.0f);
    }
  }
}

//===----------------------------------------------------------------------===//
// Block loop
//===----------------------------------------------------------------------===//

TEST(AutoRound, ItersZeroIsRTNAsym) {
  Problem p = makeProblem(41);
  QuantConfig qc = qconfig(false);
  AutoRoundOptions o;
  o.iters = 0;
  std::array<QuantizedWeight, kNumBlockLinears> out;
  AutoRoundReport rep;
  ASSERT_TRUE(autoRoundBlock(p.c, p.w, p.x.data(), p.y.data(), p.S, p.T, qc, o,
                             out, rep)
                  .isOk());
  EXPECT_TRUE(rep.lossHistory.empty());
  EXPECT_EQ(rep.bestIter, -1);
  EXPECT_DOUBLE_EQ(rep.finalLoss, rep.rtnLoss);
  for (BlockLinear l : kAllBlockLinears) {
    int64_t N, K;
    blockLinearShape(p.c, l, N, K);
    QuantizedWeight rtn;
    ASSERT_TRUE(quantizeRTN(p.w.linear(l).data(), N, K, qc, rtn, "x").isOk());
    const QuantizedWeight &a = out[blockLinearIndex(l)];
    EXPECT_EQ(a.codes, rtn.codes) << blockLinearName(l);
    EXPECT_EQ(a.scales, rtn.scales) << blockLinearName(l);
    EXPECT_EQ(a.zeros, rtn.zeros) << blockLinearName(l);
  }
}

TEST(AutoRound, ItersZeroIsFullRangeSymRTN) {
  Problem p = makeProblem(42);
  QuantConfig qc = qconfig(true);
  AutoRoundOptions o;
  o.iters = 0;
  std::array<QuantizedWeight, kNumBlockLinears> out;
  AutoRoundReport rep;
  ASSERT_TRUE(autoRoundBlock(p.c, p.w, p.x.data(), p.y.data(), p.S, p.T, qc, o,
                             out, rep)
                  .isOk());
  int negative = 0, positive = 0;
  for (BlockLinear l : kAllBlockLinears) {
    int64_t N, K;
    blockLinearShape(p.c, l, N, K);
    const std::vector<float> &w = p.w.linear(l);
    const QuantizedWeight &qw = out[blockLinearIndex(l)];
    ASSERT_TRUE(qw.verify().isOk());
    for (int64_t n = 0; n < N; ++n)
      for (int64_t g = 0; g * 16 < K; ++g) {
        // §6.1 int_sym with V = 0, alpha = beta = 1, written out here.
        float lo = 0, hi = 0;
        for (int64_t k = g * 16; k < std::min<int64_t>(K, g * 16 + 16); ++k)
          lo = std::min(lo, w[n * K + k]), hi = std::max(hi, w[n * K + k]);
        float mx = std::max(hi, -lo);
        float m = hi < -lo ? mx : -mx;
        float s = castToScaleDType(m / 8.0f, ScaleDType::F16);
        ASSERT_EQ(qw.scales[g * N + n], s);
        ASSERT_EQ(qw.zeros[g * N + n], 8.0f);
        (s < 0 ? negative : positive)++;
        for (int64_t k = g * 16; k < std::min<int64_t>(K, g * 16 + 16); ++k) {
          float q = std::nearbyint(w[n * K + k] / s);
          q = std::min(std::max(q, -8.0f), 7.0f);
          ASSERT_EQ(qw.codes[n * K + k], static_cast<uint8_t>(q + 8));
        }
      }
  }
  // Random weights give both signs: the exporter must keep negative scales.
  EXPECT_GT(negative, 0);
  EXPECT_GT(positive, 0);
}

struct RunResult {
  std::array<QuantizedWeight, kNumBlockLinears> out;
  AutoRoundReport rep;
};

RunResult run(const Problem &p, const QuantConfig &qc,
              const AutoRoundOptions &o) {
  RunResult r;
  Status st = autoRoundBlock(p.c, p.w, p.x.data(), p.y.data(), p.S, p.T, qc, o,
                             r.out, r.rep);
  EXPECT_TRUE(st.isOk()) << st.message();
  return r;
}

TEST(AutoRound, ParametersStayWithinScheduleBound) {
  Problem p = makeProblem(51);
  AutoRoundOptions o; // iters 200, lr 1/200, linear decay
  RunResult r = run(p, qconfig(true), o);
  ASSERT_EQ(r.rep.lossHistory.size(), 200u);
  // LinearLR(1 -> 0): the step sizes sum to 0.5 + 1/(2*200) = 0.5025.
  ASSERT_EQ(r.rep.lrHistory.size(), 200u);
  double lrSum = 0;
  for (int t = 0; t < 200; ++t) {
    EXPECT_NEAR(r.rep.lrHistory[t], (1.0 - t / 200.0) / 200.0, 1e-9);
    lrSum += r.rep.lrHistory[t];
  }
  EXPECT_NEAR(lrSum, 0.5025, 1e-6);
  double maxV = 0, maxA = 0, maxB = 0;
  for (const AutoRoundParams &pr : r.rep.params) {
    for (float v : pr.v)
      maxV = std::max(maxV, double(std::fabs(v)));
    for (float a : pr.alpha)
      maxA = std::max(maxA, double(std::fabs(1.0f - a)));
    for (float b : pr.beta)
      maxB = std::max(maxB, double(std::fabs(1.0f - b)));
  }
  // sum_t lr (1 - t/T) = 0.5 + 1/(2T) = 0.5025; fp32 updates add ulps.
  EXPECT_LE(maxV, 0.5025 + 1e-5);
  EXPECT_LE(maxA, 0.5025 + 1e-5);
  EXPECT_LE(maxB, 0.5025 + 1e-5);
  // ...and the optimizer actually moved them (otherwise the bound is moot).
  EXPECT_GT(maxV, 0.05);
  EXPECT_GT(maxA + maxB, 0.01);
  std::printf("max |V| %.4f, |1-alpha| %.4f, |1-beta| %.4f\n", maxV, maxA,
              maxB);
}

TEST(AutoRound, TuningBeatsRTN) {
  for (bool sym : {true, false}) {
    Problem p = makeProblem(61, /*bias=*/true);
    AutoRoundOptions o;
    RunResult r = run(p, qconfig(sym, 3), o);
    std::printf("%s rtn %.6g final %.6g\n", sym ? "sym" : "asym", r.rep.rtnLoss,
                r.rep.finalLoss);
    EXPECT_LT(r.rep.finalLoss, 0.9 * r.rep.rtnLoss)
        << (sym ? "sym" : "asym") << " rtn " << r.rep.rtnLoss << " final "
        << r.rep.finalLoss;
  }
}

TEST(AutoRound, LossIsRecordedBeforeStepAndBestIsRestored) {
  Problem p = makeProblem(71);
  QuantConfig qc = qconfig(true);
  AutoRoundOptions o;
  o.iters = 60;
  RunResult r = run(p, qc, o);
  const AutoRoundReport &rep = r.rep;
  const int64_t B = rep.batch;
  ASSERT_EQ(B, 8);
  ASSERT_EQ(static_cast<int64_t>(rep.batchIndices.size()), 60 * B);

  // Step 0 is measured with the initial (RTN) parameters.
  AutoRoundOptions o0 = o;
  o0.iters = 0;
  RunResult rtn = run(p, qc, o0);
  BlockWeights wRtn = p.w;
  ASSERT_TRUE(setDequantizedLinears(wRtn, rtn.out).isOk());
  EXPECT_DOUBLE_EQ(rep.lossHistory[0],
                   batchLoss(p, wRtn, rep.batchIndices.data(), B));

  // bestLoss is the first minimum of the history...
  auto it = std::min_element(rep.lossHistory.begin(), rep.lossHistory.end());
  EXPECT_EQ(rep.bestIter, it - rep.lossHistory.begin());
  EXPECT_EQ(rep.bestLoss, *it);
  EXPECT_GT(rep.bestIter, 0);
  // ...and the exported weights reproduce it on that step's batch.
  BlockWeights wBest = p.w;
  ASSERT_TRUE(setDequantizedLinears(wBest, r.out).isOk());
  EXPECT_DOUBLE_EQ(
      rep.bestLoss,
      batchLoss(p, wBest, rep.batchIndices.data() + rep.bestIter * B, B));
}

TEST(AutoRound, SeededMinibatchesAreDeterministic) {
  Problem p = makeProblem(81);
  AutoRoundOptions o;
  o.iters = 25;
  RunResult a = run(p, qconfig(false), o), b = run(p, qconfig(false), o);
  EXPECT_EQ(a.rep.lossHistory, b.rep.lossHistory);
  EXPECT_EQ(a.rep.batchIndices, b.rep.batchIndices);
  for (int i = 0; i < kNumBlockLinears; ++i) {
    EXPECT_EQ(a.out[i].codes, b.out[i].codes);
    EXPECT_EQ(a.out[i].scales, b.out[i].scales);
  }
  // Batches are subsets without repetition, and change from step to step.
  for (int t = 0; t < 25; ++t) {
    std::vector<int64_t> batch(a.rep.batchIndices.begin() + t * 8,
                               a.rep.batchIndices.begin() + (t + 1) * 8);
    std::sort(batch.begin(), batch.end());
    EXPECT_EQ(std::unique(batch.begin(), batch.end()), batch.end());
    EXPECT_GE(batch.front(), 0);
    EXPECT_LT(batch.back(), p.S);
  }
  o.seed = 43;
  RunResult c = run(p, qconfig(false), o);
  EXPECT_NE(a.rep.batchIndices, c.rep.batchIndices);
}

TEST(AutoRound, MinmaxTuningCanBeDisabled) {
  Problem p = makeProblem(91);
  AutoRoundOptions o;
  o.iters = 30;
  o.enableMinmaxTuning = false;
  RunResult r = run(p, qconfig(true), o);
  for (const AutoRoundParams &pr : r.rep.params) {
    for (float a : pr.alpha)
      EXPECT_EQ(a, 1.0f);
    for (float b : pr.beta)
      EXPECT_EQ(b, 1.0f);
  }
}

TEST(AutoRound, WholeSetWhenBatchExceedsSequences) {
  Problem p = makeProblem(92);
  AutoRoundOptions o;
  o.iters = 3;
  o.batchSize = 64;
  RunResult r = run(p, qconfig(true), o);
  EXPECT_EQ(r.rep.batch, p.S);
  for (int t = 0; t < 3; ++t)
    for (int64_t i = 0; i < p.S; ++i)
      EXPECT_EQ(r.rep.batchIndices[t * p.S + i], i);
}

TEST(AutoRound, RejectsBadInput) {
  Problem p = makeProblem(93);
  std::array<QuantizedWeight, kNumBlockLinears> out;
  AutoRoundReport rep;
  AutoRoundOptions o;
  o.iters = 1;
  QuantConfig bad = qconfig(true);
  bad.bits = 5;
  EXPECT_FALSE(autoRoundBlock(p.c, p.w, p.x.data(), p.y.data(), p.S, p.T, bad,
                              o, out, rep)
                   .isOk());
  BlockWeights nan = p.w;
  nan.up[7] = std::nanf("");
  Status st = autoRoundBlock(p.c, nan, p.x.data(), p.y.data(), p.S, p.T,
                             qconfig(true), o, out, rep);
  ASSERT_FALSE(st.isOk());
  EXPECT_NE(st.message().find("up_proj"), std::string::npos) << st.message();
  EXPECT_FALSE(autoRoundBlock(p.c, p.w, p.x.data(), p.y.data(), 0, p.T,
                              qconfig(true), o, out, rep)
                   .isOk());
}

} // namespace
