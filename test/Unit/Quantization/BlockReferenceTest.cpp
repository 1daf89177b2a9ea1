//===- BlockReferenceTest.cpp - fp32 decoder block and its backward -------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Checks the fp32 block against an independent, deliberately naive float64
// implementation written here (token by token, no shared helpers), and the
// hand-written backward against central finite differences of that float64
// forward, for every element of every linear weight and of the input, in
// both RoPE layouts, with and without the qwen2 q/k/v bias.
//
//===----------------------------------------------------------------------===//

#include "qc/Quantization/Algorithms/BlockReference.h"
#include "qc/runtime/Json.h"
#include "qc/runtime/Llama2C.h"
#include "qc/runtime/TextDataset.h"

#include "BlockTestUtils.h"

#include <gtest/gtest.h>

#include <cmath>
#include <ostream>
#include <random>

using namespace qc;
using namespace qc::quant;

namespace {

using qc::quant::test::Rng;

/// Uniform floats in [lo, hi) from a fixed-seed generator (the conversion is
/// written out so the values do not depend on the standard library's
/// distribution implementation).
/// The tiny block of the brief: dim 16, 4 heads (hd 4), 2 kv heads, hidden 24.
ModelConfig tinyConfig(RopeLayout layout, bool bias) {
  ModelConfig c;
  c.dim = 16;
  c.hiddenDim = 24;
  c.nLayers = 1;
  c.nHeads = 4;
  c.nKVHeads = 2;
  c.headDim = 4;
  c.vocabSize = 32;
  c.maxSeqLen = 64;
  c.normEps = 1e-5f;
  c.ropeTheta = 10000.0f;
  c.attentionBias = bias;
  c.ropeLayout = layout;
  return c;
}

BlockWeights randomBlock(const ModelConfig &c, uint64_t seed) {
  BlockWeights w = test::randomBlock(c, seed);
  // Queries/keys large enough that the softmax is far from uniform, so the
  // attention gradient is actually exercised.
  for (float &x : w.q)
    x *= 3.0f;
  for (float &x : w.k)
    x *= 3.0f;
  return w;
}

//===----------------------------------------------------------------------===//
// Independent float64 reference
//===----------------------------------------------------------------------===//

using Vec = std::vector<double>;

/// The block's parameters in double, so finite differences are exact
/// enough to judge an fp32 gradient.
struct WeightsD {
  Vec inputNorm, postNorm, qBias, kBias, vBias;
  std::array<Vec, kNumBlockLinears> lin;
};

WeightsD toDouble(const BlockWeights &w) {
  WeightsD d;
  d.inputNorm.assign(w.inputNorm.begin(), w.inputNorm.end());
  d.postNorm.assign(w.postNorm.begin(), w.postNorm.end());
  d.qBias.assign(w.qBias.begin(), w.qBias.end());
  d.kBias.assign(w.kBias.begin(), w.kBias.end());
  d.vBias.assign(w.vBias.begin(), w.vBias.end());
  for (BlockLinear l : kAllBlockLinears)
    d.lin[blockLinearIndex(l)].assign(w.linear(l).begin(), w.linear(l).end());
  return d;
}

/// out[n] = sum_k W[n][k] x[k] + b[n], one token.
Vec matvec(const Vec &W, const Vec &b, const Vec &x, int64_t N, int64_t K) {
  Vec y(N, 0.0);
  for (int64_t n = 0; n < N; ++n) {
    double acc = b.empty() ? 0.0 : b[n];
    for (int64_t k = 0; k < K; ++k)
      acc += W[n * K + k] * x[k];
    y[n] = acc;
  }
  return y;
}

Vec rmsnorm(const Vec &x, const Vec &g, double eps) {
  double ss = 0;
  for (double v : x)
    ss += v * v;
  double r = 1.0 / std::sqrt(ss / x.size() + eps);
  Vec y(x.size());
  for (size_t i = 0; i < x.size(); ++i)
    y[i] = x[i] * r * g[i];
  return y;
}

/// Rotates one head vector at position pos: the first rotary-dim features
/// (partial rotary), with linear position interpolation when configured.
void rope(double *h, int64_t hd, int64_t pos, const ModelConfig &c) {
  const double theta = c.ropeTheta;
  const RopeLayout l = c.ropeLayout;
  const int64_t dim = c.rotaryDim > 0 ? c.rotaryDim : hd;
  const double factor = c.ropeScaling.type == qc::RopeScalingType::Linear
                            ? c.ropeScaling.factor
                            : 1.0;
  for (int64_t i = 0; i < dim / 2; ++i) {
    double ang = pos * std::pow(theta, -2.0 * i / dim) / factor;
    int64_t a = l == RopeLayout::Interleaved ? 2 * i : i;
    int64_t b = l == RopeLayout::Interleaved ? 2 * i + 1 : i + dim / 2;
    double x0 = h[a], x1 = h[b];
    h[a] = x0 * std::cos(ang) - x1 * std::sin(ang);
    h[b] = x0 * std::sin(ang) + x1 * std::cos(ang);
  }
}

/// The whole block in double, [S*T*D] in, [S*T*D] out.
Vec naiveBlock(const ModelConfig &c, const WeightsD &w, const Vec &x, int64_t S,
               int64_t T) {
  const int64_t D = c.dim, H = c.nHeads, KV = c.nKVHeads, hd = c.headDim,
                F = c.hiddenDim;
  const auto &L = w.lin;
  Vec y(S * T * D);
  for (int64_t s = 0; s < S; ++s) {
    std::vector<Vec> qs(T), ks(T), vs(T), h1(T);
    for (int64_t t = 0; t < T; ++t) {
      Vec xt(x.begin() + (s * T + t) * D, x.begin() + (s * T + t + 1) * D);
      Vec xn = rmsnorm(xt, w.inputNorm, c.normEps);
      qs[t] = matvec(L[0], w.qBias, xn, H * hd, D);
      ks[t] = matvec(L[1], w.kBias, xn, KV * hd, D);
      vs[t] = matvec(L[2], w.vBias, xn, KV * hd, D);
      for (int64_t h = 0; h < H; ++h)
        rope(&qs[t][h * hd], hd, t, c);
      for (int64_t h = 0; h < KV; ++h)
        rope(&ks[t][h * hd], hd, t, c);
    }
    for (int64_t t = 0; t < T; ++t) {
      Vec a(H * hd, 0.0);
      for (int64_t h = 0; h < H; ++h) {
        int64_t g = h / (H / KV);
        Vec sc(t + 1);
        double mx = -1e300;
        for (int64_t j = 0; j <= t; ++j) {
          double dot = 0;
          for (int64_t e = 0; e < hd; ++e)
            dot += qs[t][h * hd + e] * ks[j][g * hd + e];
          sc[j] = dot / std::sqrt(double(hd));
          mx = std::max(mx, sc[j]);
        }
        double sum = 0;
        for (double &v : sc)
          sum += (v = std::exp(v - mx));
        for (int64_t j = 0; j <= t; ++j)
          for (int64_t e = 0; e < hd; ++e)
            a[h * hd + e] += sc[j] / sum * vs[j][g * hd + e];
      }
      Vec o = matvec(L[3], {}, a, D, H * hd);
      Vec xt(x.begin() + (s * T + t) * D, x.begin() + (s * T + t + 1) * D);
      h1[t].resize(D);
      for (int64_t i = 0; i < D; ++i)
        h1[t][i] = xt[i] + o[i];
      Vec hn = rmsnorm(h1[t], w.postNorm, c.normEps);
      Vec gt = matvec(L[4], {}, hn, F, D), up = matvec(L[5], {}, hn, F, D);
      Vec m(F);
      for (int64_t i = 0; i < F; ++i)
        m[i] = gt[i] / (1.0 + std::exp(-gt[i])) * up[i];
      Vec dn = matvec(L[6], {}, m, D, F);
      for (int64_t i = 0; i < D; ++i)
        y[(s * T + t) * D + i] = h1[t][i] + dn[i];
    }
  }
  return y;
}

double dotVec(const Vec &a, const std::vector<float> &b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i)
    s += a[i] * b[i];
  return s;
}

struct Case {
  RopeLayout layout;
  bool bias;
  /// Partial rotary (2 of 4 features) with linear RoPE scaling (factor 3).
  bool scaledRope = false;
};

void PrintTo(const Case &c, std::ostream *os) {
  *os << (c.layout == RopeLayout::Interleaved ? "interleaved" : "half-split")
      << (c.bias ? " with bias" : " without bias")
      << (c.scaledRope ? ", scaled partial rope" : "");
}

/// tinyConfig with the case's RoPE variant.
ModelConfig caseConfig(const Case &k) {
  ModelConfig c = tinyConfig(k.layout, k.bias);
  if (k.scaledRope) {
    c.rotaryDim = 2;
    c.ropeScaling.type = qc::RopeScalingType::Linear;
    c.ropeScaling.factor = 3.0;
  }
  return c;
}

class BlockReferenceCase : public ::testing::TestWithParam<Case> {};

const int64_t kS = 2, kT = 7;

TEST_P(BlockReferenceCase, ForwardMatchesFloat64) {
  ModelConfig c = caseConfig(GetParam());
  BlockWeights w = randomBlock(c, 1);
  Rng r(2);
  std::vector<float> x;
  r.fill(x, kS * kT * c.dim, -2.0f, 2.0f);
  std::vector<float> y(x.size());
  ASSERT_TRUE(blockForward(c, w, x.data(), kS, kT, y.data()).isOk());
  Vec ref = naiveBlock(c, toDouble(w), Vec(x.begin(), x.end()), kS, kT);
  double mx = 0;
  for (double v : ref)
    mx = std::max(mx, std::fabs(v));
  for (size_t i = 0; i < y.size(); ++i)
    ASSERT_NEAR(y[i], ref[i], 1e-5 * std::max(1.0, std::fabs(ref[i])))
        << "element " << i;
  // The two layouts must really differ (otherwise the test proves nothing
  // about the pairing).
  // With a scaled partial rotary embedding (2 features: both layouts pair
  // them alike) the comparison is with the plain rotary embedding instead.
  ModelConfig other = c;
  if (GetParam().scaledRope) {
    other.rotaryDim = 0;
    other.ropeScaling = qc::RopeScaling();
  } else {
    other.ropeLayout = c.ropeLayout == RopeLayout::Interleaved
                           ? RopeLayout::HalfSplit
                           : RopeLayout::Interleaved;
  }
  Vec refOther =
      naiveBlock(other, toDouble(w), Vec(x.begin(), x.end()), kS, kT);
  double diff = 0;
  for (size_t i = 0; i < ref.size(); ++i)
    diff = std::max(diff, std::fabs(ref[i] - refOther[i]));
  EXPECT_GT(diff, 1e-3 * mx);
}

TEST_P(BlockReferenceCase, BackwardMatchesFiniteDifferences) {
  ModelConfig c = caseConfig(GetParam());
  BlockWeights w = randomBlock(c, 3);
  Rng r(4);
  std::vector<float> x, R;
  r.fill(x, kS * kT * c.dim, -2.0f, 2.0f);
  r.fill(R, x.size(), -1.0f, 1.0f); // L = sum R * y, so dL/dy = R
  std::vector<float> y(x.size());
  BlockActivations acts;
  ASSERT_TRUE(blockForward(c, w, x.data(), kS, kT, y.data(), &acts).isOk());
  BlockGradients grads;
  ASSERT_TRUE(blockBackward(c, w, acts, R.data(), grads, true).isOk());

  WeightsD wd = toDouble(w);
  Vec xd(x.begin(), x.end());
  const double h = 1e-4;
  auto loss = [&]() { return dotVec(naiveBlock(c, wd, xd, kS, kT), R); };
  auto check = [&](Vec &param, const std::vector<float> &g,
                   const std::string &what) {
    ASSERT_EQ(param.size(), g.size()) << what;
    Vec fd(param.size());
    double mx = 0;
    for (size_t i = 0; i < param.size(); ++i) {
      double keep = param[i];
      param[i] = keep + h;
      double lp = loss();
      param[i] = keep - h;
      double lm = loss();
      param[i] = keep;
      fd[i] = (lp - lm) / (2 * h);
      mx = std::max(mx, std::fabs(fd[i]));
    }
    ASSERT_GT(mx, 1e-3) << what << ": gradient vanishes, test is vacuous";
    // fp32 analytic gradient against a float64 difference quotient: the
    // remaining error is fp32 rounding, far below 1e-4 of the scale.
    for (size_t i = 0; i < param.size(); ++i)
      ASSERT_NEAR(g[i], fd[i], 1e-4 * mx + 1e-6) << what << " element " << i;
  };
  for (BlockLinear l : kAllBlockLinears)
    check(wd.lin[blockLinearIndex(l)], grads.weight[blockLinearIndex(l)],
          blockLinearName(l));
  check(xd, grads.input, "input");
}

INSTANTIATE_TEST_SUITE_P(
    BlockReference, BlockReferenceCase,
    ::testing::Values(Case{RopeLayout::Interleaved, false},
                      Case{RopeLayout::Interleaved, true},
                      Case{RopeLayout::HalfSplit, false},
                      Case{RopeLayout::HalfSplit, true},
                      Case{RopeLayout::HalfSplit, true, true}),
    [](const ::testing::TestParamInfo<Case> &info) {
      return std::string(info.param.layout == RopeLayout::Interleaved
                             ? "Interleaved"
                             : "HalfSplit") +
             (info.param.bias ? "Bias" : "NoBias") +
             (info.param.scaledRope ? "ScaledPartialRope" : "");
    });

TEST(BlockReference, MultiHeadAttentionMatchesFloat64) {
  // nKVHeads == nHeads and headDim != dim / nHeads: catches a head mapping
  // that only works for the GQA ratio of the other tests.
  ModelConfig c = tinyConfig(RopeLayout::HalfSplit, false);
  c.nKVHeads = 4;
  c.headDim = 6;
  BlockWeights w = randomBlock(c, 5);
  Rng r(6);
  std::vector<float> x;
  r.fill(x, 3 * 5 * c.dim, -1.0f, 1.0f);
  std::vector<float> y(x.size());
  ASSERT_TRUE(blockForward(c, w, x.data(), 3, 5, y.data()).isOk());
  Vec ref = naiveBlock(c, toDouble(w), Vec(x.begin(), x.end()), 3, 5);
  for (size_t i = 0; i < y.size(); ++i)
    ASSERT_NEAR(y[i], ref[i], 1e-5 * std::max(1.0, std::fabs(ref[i])));
}

TEST(BlockReference, CapturesAndSubmodulesAreConsistent) {
  ModelConfig c = tinyConfig(RopeLayout::HalfSplit, true);
  BlockWeights w = randomBlock(c, 7);
  Rng r(8);
  const int64_t S = 3, T = 5, rows = S * T;
  std::vector<float> x;
  r.fill(x, rows * c.dim, -1.0f, 1.0f);
  std::vector<float> y(x.size()), y2(x.size());
  BlockActivations acts;
  std::array<std::vector<float>, kNumBlockLinears> hooked;
  LinearInputHook hook = [&](BlockLinear l, const float *in, int64_t n,
                             int64_t cols) {
    EXPECT_EQ(n % T, 0);
    auto &dst = hooked[blockLinearIndex(l)];
    dst.insert(dst.end(), in, in + n * cols);
  };
  ASSERT_TRUE(blockForward(c, w, x.data(), S, T, y.data(), &acts, hook).isOk());
  ASSERT_TRUE(blockForward(c, w, x.data(), S, T, y2.data()).isOk());
  EXPECT_EQ(y, y2); // saving activations must not change the numerics
  for (BlockLinear l : kAllBlockLinears) {
    int64_t N, K;
    blockLinearShape(c, l, N, K);
    ASSERT_EQ(static_cast<int64_t>(hooked[blockLinearIndex(l)].size()),
              rows * K);
    EXPECT_EQ(hooked[blockLinearIndex(l)], acts.linearInput(l))
        << blockLinearName(l);
  }
  // h1 = x + self_attn(xn) and y = h1 + mlp(hn).
  std::vector<float> attnOut(x.size()), mlpOut(x.size());
  ASSERT_TRUE(
      attentionForward(c, w, acts.xn.data(), S, T, attnOut.data()).isOk());
  ASSERT_TRUE(mlpForward(c, w, acts.hn.data(), rows, mlpOut.data()).isOk());
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_NEAR(x[i] + attnOut[i], acts.h1[i], 1e-6f);
    EXPECT_NEAR(acts.h1[i] + mlpOut[i], y[i], 1e-6f);
  }
  // o_proj output from linearForward on the captured input.
  std::vector<float> o(x.size());
  linearForward(acts.attn.data(), rows, w.o.data(), c.dim, c.nHeads * c.headDim,
                nullptr, o.data());
  for (size_t i = 0; i < x.size(); ++i)
    EXPECT_NEAR(o[i], attnOut[i], 1e-6f);
}

TEST(BlockReference, CausalMaskAndSequenceIndependence) {
  // Changing the last token of sequence 0 must change nothing but that
  // token's output: no look-ahead, no leakage across sequences.
  ModelConfig c = tinyConfig(RopeLayout::Interleaved, false);
  BlockWeights w = randomBlock(c, 9);
  Rng r(10);
  const int64_t S = 2, T = 6, D = c.dim;
  std::vector<float> x;
  r.fill(x, S * T * D, -1.0f, 1.0f);
  std::vector<float> y(x.size()), y2(x.size());
  ASSERT_TRUE(blockForward(c, w, x.data(), S, T, y.data()).isOk());
  for (int64_t i = 0; i < D; ++i)
    x[(T - 1) * D + i] += 0.5f;
  ASSERT_TRUE(blockForward(c, w, x.data(), S, T, y2.data()).isOk());
  for (int64_t row = 0; row < S * T; ++row) {
    bool changed = false;
    for (int64_t i = 0; i < D; ++i)
      changed |= y[row * D + i] != y2[row * D + i];
    EXPECT_EQ(changed, row == T - 1) << "row " << row;
  }
}

TEST(BlockReference, RejectsBadShapes) {
  ModelConfig c = tinyConfig(RopeLayout::HalfSplit, true);
  BlockWeights w = randomBlock(c, 11);
  std::vector<float> x(2 * c.dim), y(2 * c.dim);
  EXPECT_TRUE(blockForward(c, w, x.data(), 1, 2, y.data()).isOk());
  BlockWeights bad = w;
  bad.down.pop_back();
  Status st = blockForward(c, bad, x.data(), 1, 2, y.data());
  ASSERT_FALSE(st.isOk());
  EXPECT_NE(st.message().find("down_proj"), std::string::npos);
  bad = w;
  bad.kBias.clear(); // config says attentionBias
  EXPECT_FALSE(blockForward(c, bad, x.data(), 1, 2, y.data()).isOk());
  ModelConfig odd = c;
  odd.nKVHeads = 3;
  EXPECT_FALSE(w.validate(odd).isOk());
  EXPECT_FALSE(blockForward(c, w, x.data(), 0, 2, y.data()).isOk());
}

TEST(BlockReference, ChainedBlocksReproduceStoriesGoldenLogits) {
  // The bundled model run as embedding -> 5 x blockForward -> final norm ->
  // tied classifier must give llama2.c's logits: checks the block's
  // semantics (interleaved RoPE, GQA, eps, SwiGLU) on real weights.
  const std::string dir = std::string(QC_SHARED_DIR) + "/models/stories260K/";
  ModelWeights m;
  Status st = loadLlama2C(dir + "stories260K.bin", m);
  ASSERT_TRUE(st.isOk()) << st.message();
  std::string text;
  ASSERT_TRUE(readTextFile(dir + "reference_stories260K.json", text).isOk());
  json::Value ref;
  ASSERT_TRUE(json::parse(text, ref).isOk());
  const json::Value *greedy = ref.find("greedy_from_bos_200");
  const json::Value *top5 = ref.find("logits_first16_top5");
  ASSERT_TRUE(greedy && top5);
  const ModelConfig &c = m.config;
  const int64_t T = 16, D = c.dim, V = c.vocabSize;
  const HostTensor *emb = m.find("model.embed_tokens.weight");
  const HostTensor *norm = m.find("model.norm.weight");
  ASSERT_TRUE(emb && norm);
  std::vector<float> h(T * D), next(T * D);
  for (int64_t t = 0; t < T; ++t) {
    const int64_t tok = greedy->asArray()[t].asInt64();
    std::copy(emb->data.begin() + tok * D, emb->data.begin() + (tok + 1) * D,
              h.begin() + t * D);
  }
  for (int64_t l = 0; l < c.nLayers; ++l) {
    BlockWeights w;
    ASSERT_TRUE(loadBlockWeights(m, l, w).isOk());
    ASSERT_TRUE(blockForward(c, w, h.data(), 1, T, next.data()).isOk());
    h.swap(next);
  }
  for (int64_t t = 0; t < T; ++t) {
    const float *x = h.data() + t * D;
    double ss = 0;
    for (int64_t i = 0; i < D; ++i)
      ss += double(x[i]) * x[i];
    const double r = 1.0 / std::sqrt(ss / D + c.normEps);
    std::vector<double> logits(V);
    for (int64_t v = 0; v < V; ++v) {
      double acc = 0;
      for (int64_t i = 0; i < D; ++i)
        acc += x[i] * r * norm->data[i] * emb->data[v * D + i];
      logits[v] = acc;
    }
    for (const json::Value &pair : top5->asArray()[t].asArray()) {
      const int64_t id = pair.asArray()[0].asInt64();
      const double want = pair.asArray()[1].asDouble();
      EXPECT_NEAR(logits[id], want, 2e-3) << "position " << t << " id " << id;
    }
    const int64_t best =
        std::max_element(logits.begin(), logits.end()) - logits.begin();
    EXPECT_EQ(best, top5->asArray()[t].asArray()[0].asArray()[0].asInt64());
  }
}

TEST(BlockReference, ModelWeightsRoundTrip) {
  ModelConfig c = tinyConfig(RopeLayout::HalfSplit, true);
  BlockWeights w = randomBlock(c, 12);
  ModelWeights m;
  m.config = c;
  auto put = [&](const std::string &suffix, const std::vector<float> &v) {
    HostTensor t;
    t.shape = {static_cast<int64_t>(v.size())};
    t.data.assign(v.size(), 0.0f);
    m.tensors[layerTensorName(0, suffix)] = t;
  };
  put("input_layernorm.weight", w.inputNorm);
  put("post_attention_layernorm.weight", w.postNorm);
  for (BlockLinear l : kAllBlockLinears)
    put(std::string(blockLinearName(l)) + ".weight", w.linear(l));
  put("self_attn.q_proj.bias", w.qBias);
  put("self_attn.k_proj.bias", w.kBias);
  put("self_attn.v_proj.bias", w.vBias);
  ASSERT_TRUE(storeBlockWeights(w, 0, m).isOk());
  BlockWeights back;
  ASSERT_TRUE(loadBlockWeights(m, 0, back).isOk());
  EXPECT_EQ(back.q, w.q);
  EXPECT_EQ(back.down, w.down);
  EXPECT_EQ(back.vBias, w.vBias);
  EXPECT_EQ(back.postNorm, w.postNorm);
  EXPECT_FALSE(loadBlockWeights(m, 1, back).isOk());
}

} // namespace
