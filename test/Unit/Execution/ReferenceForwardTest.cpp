//===- ReferenceForwardTest.cpp - JIT forward vs a float64 reference ------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Random LLaMA-family models of several shapes (GQA and MHA, both RoPE
// layouts, qwen2-style q/k/v biases, tied and untied classifiers, sequences
// shorter and longer than the attention chunk) are run through the full
// import -> llm -> linalg -> LLVM JIT path and compared with a naive
// float64 implementation of the same architecture written from the
// definitions, not from the lowering.
//
//===----------------------------------------------------------------------===//

#include "qc/Execution/CpuExecutable.h"
#include "qc/Import/LoadModel.h"
#include "qc/Import/ModelBuilder.h"
#include "qc/runtime/HFCheckpoint.h"

#include "mlir/IR/MLIRContext.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>

namespace {

using qc::ModelConfig;
using qc::ModelWeights;
using Matrix = std::vector<double>; // row-major

/// Fills a model with N(0, 0.3^2) weights (norm weights around 1).
ModelWeights randomModel(const ModelConfig &cfg, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.3f);
  ModelWeights w;
  w.config = cfg;
  auto add = [&](const std::string &name, std::vector<int64_t> shape,
                 float offset = 0.0f) {
    qc::HostTensor t;
    t.shape = shape;
    t.data.resize(t.numElements());
    for (float &v : t.data)
      v = offset + normal(rng);
    w.tensors[name] = std::move(t);
  };
  // Norm weights around 1 (as trained models have), everything else
  // around 0.
  for (const qc::TensorSpec &spec : qc::modelTensorSpecs(cfg))
    add(spec.name, spec.shape,
        spec.name.find("norm") != std::string::npos ? 1.0f : 0.0f);
  return w;
}

/// x [T, in] times W^T (W is [out, in]) plus optional bias.
Matrix linear(const Matrix &x, int64_t T, int64_t in, const qc::HostTensor &w,
              const qc::HostTensor *bias) {
  int64_t out = w.shape[0];
  Matrix y(T * out, 0.0);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t o = 0; o < out; ++o) {
      double acc = bias ? bias->data[o] : 0.0;
      for (int64_t i = 0; i < in; ++i)
        acc += x[t * in + i] * static_cast<double>(w.data[o * in + i]);
      y[t * out + o] = acc;
    }
  return y;
}

Matrix rmsNorm(const Matrix &x, int64_t T, int64_t D, const qc::HostTensor &w,
               double eps) {
  Matrix y(x.size());
  for (int64_t t = 0; t < T; ++t) {
    double ss = 0.0;
    for (int64_t i = 0; i < D; ++i)
      ss += x[t * D + i] * x[t * D + i];
    double inv = 1.0 / std::sqrt(ss / D + eps);
    for (int64_t i = 0; i < D; ++i)
      y[t * D + i] = x[t * D + i] * inv * w.data[i];
  }
  return y;
}

/// Inverse frequencies of the rotary embedding of `c`, in float64, written
/// from the definitions (RoFormer; linear position interpolation; Llama 3.1's
/// frequency bands; YaRN's ramp and attention factor) rather than from the
/// code under test. Returns the attention (cos/sin) scaling.
double referenceInvFreq(const ModelConfig &c, std::vector<double> &invFreq) {
  const int64_t dim = c.rotaryDim > 0 ? c.rotaryDim : c.headDim;
  const qc::RopeScaling &s = c.ropeScaling;
  invFreq.assign(dim / 2, 0.0);
  for (int64_t i = 0; i < dim / 2; ++i)
    invFreq[i] = std::pow(static_cast<double>(c.ropeTheta), -2.0 * i / dim);
  switch (s.type) {
  case qc::RopeScalingType::None:
    return 1.0;
  case qc::RopeScalingType::Linear:
    for (double &f : invFreq)
      f /= s.factor;
    return 1.0;
  case qc::RopeScalingType::Llama3:
    for (double &f : invFreq) {
      double wavelen = 2 * M_PI / f;
      double lowWavelen = s.originalMaxPositions / s.lowFreqFactor;
      double highWavelen = s.originalMaxPositions / s.highFreqFactor;
      if (wavelen > lowWavelen) {
        f /= s.factor;
      } else if (wavelen >= highWavelen) {
        double smooth = (s.originalMaxPositions / wavelen - s.lowFreqFactor) /
                        (s.highFreqFactor - s.lowFreqFactor);
        f = (1 - smooth) * f / s.factor + smooth * f;
      }
    }
    return 1.0;
  case qc::RopeScalingType::Yarn: {
    double orig =
        s.originalMaxPositions > 0 ? s.originalMaxPositions : c.maxSeqLen;
    auto corr = [&](double rot) {
      return dim * std::log(orig / (rot * 2 * M_PI)) /
             (2 * std::log(static_cast<double>(c.ropeTheta)));
    };
    double lo = std::max(0.0, std::floor(corr(s.betaFast)));
    double hi =
        std::min(static_cast<double>(dim - 1), std::ceil(corr(s.betaSlow)));
    if (lo == hi)
      hi += 0.001;
    for (int64_t i = 0; i < dim / 2; ++i) {
      double ramp = std::clamp((i - lo) / (hi - lo), 0.0, 1.0);
      // Pairs below the ramp keep their frequency (extrapolation), pairs
      // above it are interpolated (divided by the factor).
      invFreq[i] = invFreq[i] / s.factor * ramp + invFreq[i] * (1 - ramp);
    }
    return s.factor <= 1 ? 1.0 : 0.1 * std::log(s.factor) + 1.0;
  }
  }
  return 1.0;
}

/// Rotates the first rotary-dim features of each head; which features pair
/// up depends on the layout.
void rope(Matrix &x, int64_t T, int64_t heads, int64_t hd,
          const ModelConfig &c) {
  std::vector<double> invFreq;
  double scale = referenceInvFreq(c, invFreq);
  const int64_t half = static_cast<int64_t>(invFreq.size());
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < half; ++i) {
        double freq = invFreq[i];
        double cs = std::cos(t * freq) * scale, sn = std::sin(t * freq) * scale;
        int64_t a, b;
        if (c.ropeLayout == qc::RopeLayout::Interleaved) {
          a = 2 * i;
          b = 2 * i + 1;
        } else {
          a = i;
          b = i + half;
        }
        double &x0 = x[t * heads * hd + h * hd + a];
        double &x1 = x[t * heads * hd + h * hd + b];
        double n0 = x0 * cs - x1 * sn, n1 = x0 * sn + x1 * cs;
        x0 = n0;
        x1 = n1;
      }
}

/// Logits [T, V] of `tokens` computed in float64.
Matrix referenceForward(const ModelWeights &w,
                        const std::vector<int32_t> &tokens) {
  const ModelConfig &c = w.config;
  int64_t T = tokens.size(), D = c.dim, hd = c.headDim;
  int64_t qd = c.nHeads * hd, kvd = c.nKVHeads * hd,
          group = c.nHeads / c.nKVHeads;
  const qc::HostTensor &emb = *w.find("model.embed_tokens.weight");
  Matrix x(T * D);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < D; ++i)
      x[t * D + i] = emb.data[tokens[t] * D + i];
  for (int64_t l = 0; l < c.nLayers; ++l) {
    std::string p = "model.layers." + std::to_string(l) + ".";
    auto W = [&](const std::string &n) { return w.find(p + n); };
    Matrix h = rmsNorm(x, T, D, *W("input_layernorm.weight"), c.normEps);
    Matrix q = linear(h, T, D, *W("self_attn.q_proj.weight"),
                      W("self_attn.q_proj.bias"));
    Matrix k = linear(h, T, D, *W("self_attn.k_proj.weight"),
                      W("self_attn.k_proj.bias"));
    Matrix v = linear(h, T, D, *W("self_attn.v_proj.weight"),
                      W("self_attn.v_proj.bias"));
    rope(q, T, c.nHeads, hd, c);
    rope(k, T, c.nKVHeads, hd, c);
    Matrix att(T * qd, 0.0);
    for (int64_t hh = 0; hh < c.nHeads; ++hh) {
      int64_t kh = hh / group;
      for (int64_t i = 0; i < T; ++i) {
        std::vector<double> s(i + 1);
        double m = -INFINITY;
        for (int64_t j = 0; j <= i; ++j) {
          double dot = 0.0;
          for (int64_t d = 0; d < hd; ++d)
            dot += q[i * qd + hh * hd + d] * k[j * kvd + kh * hd + d];
          s[j] = dot / std::sqrt(static_cast<double>(hd));
          m = std::max(m, s[j]);
        }
        double sum = 0.0;
        for (double &e : s)
          sum += (e = std::exp(e - m));
        for (int64_t j = 0; j <= i; ++j)
          for (int64_t d = 0; d < hd; ++d)
            att[i * qd + hh * hd + d] += s[j] / sum * v[j * kvd + kh * hd + d];
      }
    }
    Matrix o = linear(att, T, qd, *W("self_attn.o_proj.weight"), nullptr);
    for (size_t i = 0; i < x.size(); ++i)
      x[i] += o[i];
    Matrix h2 =
        rmsNorm(x, T, D, *W("post_attention_layernorm.weight"), c.normEps);
    Matrix g = linear(h2, T, D, *W("mlp.gate_proj.weight"), nullptr);
    Matrix u = linear(h2, T, D, *W("mlp.up_proj.weight"), nullptr);
    for (size_t i = 0; i < g.size(); ++i)
      g[i] = g[i] / (1.0 + std::exp(-g[i])) * u[i];
    Matrix dn = linear(g, T, c.hiddenDim, *W("mlp.down_proj.weight"), nullptr);
    for (size_t i = 0; i < x.size(); ++i)
      x[i] += dn[i];
  }
  Matrix f = rmsNorm(x, T, D, *w.find("model.norm.weight"), c.normEps);
  const qc::HostTensor &head =
      c.tiedEmbeddings ? emb : *w.find("lm_head.weight");
  return linear(f, T, D, head, nullptr);
}

struct Case {
  const char *name;
  const char *modelType;
  int64_t dim, hidden, layers, heads, kvHeads, vocab, tokens;
  qc::RopeLayout layout;
  bool tied, bias;
  /// RoPE variant: scaling type, its factor, rotary dim (0 = head dim),
  /// head dim (0 = dim / heads).
  qc::RopeScalingType scaling = qc::RopeScalingType::None;
  double factor = 1.0;
  int64_t rotaryDim = 0, headDim = 0;
};

/// Keeps test names readable (ctest lists parameters with this).
void PrintTo(const Case &c, std::ostream *os) { *os << c.name; }

class ReferenceForward : public testing::TestWithParam<Case> {};

TEST_P(ReferenceForward, MatchesFloat64) {
  const Case &tc = GetParam();
  ModelConfig cfg;
  cfg.modelType = tc.modelType;
  cfg.dim = tc.dim;
  cfg.hiddenDim = tc.hidden;
  cfg.nLayers = tc.layers;
  cfg.nHeads = tc.heads;
  cfg.nKVHeads = tc.kvHeads;
  cfg.headDim = tc.headDim ? tc.headDim : tc.dim / tc.heads;
  cfg.rotaryDim = tc.rotaryDim;
  cfg.ropeTheta = tc.scaling == qc::RopeScalingType::None ? 10000.0f : 500.0f;
  cfg.ropeScaling.type = tc.scaling;
  cfg.ropeScaling.factor = tc.factor;
  if (tc.scaling == qc::RopeScalingType::Llama3) {
    // Small original context so that all three frequency bands occur.
    cfg.ropeScaling.lowFreqFactor = 1.0;
    cfg.ropeScaling.highFreqFactor = 4.0;
    cfg.ropeScaling.originalMaxPositions = 64;
  }
  if (tc.scaling == qc::RopeScalingType::Yarn)
    cfg.ropeScaling.originalMaxPositions = 64;
  cfg.vocabSize = tc.vocab;
  cfg.maxSeqLen = 512;
  cfg.tiedEmbeddings = tc.tied;
  cfg.attentionBias = tc.bias;
  cfg.ropeLayout = tc.layout;
  ModelWeights w = randomModel(cfg, 1234 + tc.tokens);

  mlir::MLIRContext ctx;
  auto module = mlir::qc::buildModelModule(ctx, cfg, {"llama2c", "<memory>"});
  std::unique_ptr<mlir::qc::CpuExecutable> exe;
  qc::Status s = mlir::qc::CpuExecutable::compile(*module, w, exe);
  ASSERT_TRUE(s) << s.message();

  std::mt19937 rng(tc.tokens);
  std::vector<int32_t> tokens(tc.tokens);
  for (int32_t &t : tokens)
    t = static_cast<int32_t>(rng() % tc.vocab);
  Matrix ref = referenceForward(w, tokens);
  double maxAbs = 0.0;
  for (double v : ref)
    maxAbs = std::max(maxAbs, std::fabs(v));
  auto expectClose = [&](const mlir::qc::CpuExecutable &model,
                         const std::string &what) {
    std::vector<float> logits(tc.tokens * tc.vocab);
    ASSERT_TRUE(model.forward(tokens.data(), tc.tokens, logits.data()));
    double worst = 0.0;
    for (size_t i = 0; i < ref.size(); ++i)
      worst = std::max(worst, std::fabs(logits[i] - ref[i]));
    EXPECT_LT(worst, 1e-4 * maxAbs) << what << ": max |logit| " << maxAbs;
  };
  expectClose(*exe, "in-memory model");

  // The same model through a Hugging Face checkpoint on disk (config.json
  // for this model_type, safetensors, rotate_half RoPE rows) and back.
  std::string dir = testing::TempDir() + "/qc_ref_" + std::to_string(getpid()) +
                    "_" + tc.name;
  std::filesystem::remove_all(dir);
  s = qc::writeHFCheckpoint(dir, w, qc::DType::F32);
  ASSERT_TRUE(s) << s.message();
  mlir::MLIRContext ctx2;
  mlir::OwningOpRef<mlir::ModuleOp> module2;
  qc::ModelWeights w2;
  s = mlir::qc::openModel(ctx2, dir, module2, w2);
  ASSERT_TRUE(s) << s.message();
  EXPECT_EQ(w2.config.modelType, cfg.modelType);
  EXPECT_EQ(w2.config.tiedEmbeddings, cfg.tiedEmbeddings);
  EXPECT_EQ(w2.config.attentionBias, cfg.attentionBias);
  EXPECT_EQ(w2.config.rotaryDim, cfg.rotaryDim);
  EXPECT_EQ(w2.config.headDim, cfg.headDim);
  EXPECT_EQ(w2.config.ropeScaling.type, cfg.ropeScaling.type);
  EXPECT_EQ(w2.config.ropeScaling.factor, cfg.ropeScaling.factor);
  std::unique_ptr<mlir::qc::CpuExecutable> exe2;
  s = mlir::qc::CpuExecutable::compile(*module2, w2, exe2);
  ASSERT_TRUE(s) << s.message();
  expectClose(*exe2, "Hugging Face round trip");
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, ReferenceForward,
    testing::Values(
        Case{"gqa_interleaved_tied", "llama", 32, 48, 2, 4, 2, 40, 37,
             qc::RopeLayout::Interleaved, true, false},
        Case{"mha_half_untied_multichunk", "mistral", 24, 40, 2, 2, 2, 33, 150,
             qc::RopeLayout::HalfSplit, false, false},
        Case{"qwen2_bias_single_token", "qwen2", 32, 20, 1, 8, 1, 17, 1,
             qc::RopeLayout::HalfSplit, false, true},
        Case{"qwen2_gqa_chunk_boundary", "qwen2", 16, 16, 1, 4, 2, 11, 64,
             qc::RopeLayout::Interleaved, true, true},
        // rope_scaling / partial_rotary_factor / head_dim != dim / heads.
        Case{"llama_linear_rope", "llama", 32, 48, 1, 4, 2, 29, 90,
             qc::RopeLayout::HalfSplit, true, false,
             qc::RopeScalingType::Linear, 4.0},
        Case{"llama_llama3_rope_head_dim_24", "llama", 32, 40, 1, 2, 1, 23, 100,
             qc::RopeLayout::HalfSplit, false, false,
             qc::RopeScalingType::Llama3, 8.0, 0, 24},
        Case{"qwen2_yarn_partial_rotary", "qwen2", 32, 24, 1, 4, 2, 19, 77,
             qc::RopeLayout::HalfSplit, true, true, qc::RopeScalingType::Yarn,
             4.0, 4},
        Case{"mistral_partial_rotary", "mistral", 24, 24, 1, 2, 2, 13, 40,
             qc::RopeLayout::HalfSplit, true, false, qc::RopeScalingType::None,
             1.0, 6}),
    [](const testing::TestParamInfo<Case> &info) { return info.param.name; });

} // namespace
