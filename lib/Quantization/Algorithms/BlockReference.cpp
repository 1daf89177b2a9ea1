//===- BlockReference.cpp - fp32 LLaMA decoder block with backward --------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Forward and hand-written backward of one decoder block (see the header).
// Everything is processed one sequence at a time: the causal mask never
// crosses sequences, the working set of one sequence stays in cache, and a
// forward without saved activations needs only O(T) scratch memory.
//
// The products are written in "axpy" form (y_row += x[k] * W^T_row) rather
// than as dot products: without -ffast-math a compiler may not reorder a
// float reduction, but it does vectorize the axpy's independent lanes.
//
//===----------------------------------------------------------------------===//

#include "qc/Quantization/Algorithms/BlockReference.h"
#include "qc/runtime/ThreadPool.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstring>
#include <cstdlib>
#include <functional>

using namespace qc;
using namespace qc::quant;

namespace {

// The loops below run on the process-wide pool (qc/runtime/ThreadPool.h,
// sized by --num-threads or QC_THREADS). Every caller writes disjoint outputs
// per index or per scratch slot, so results do not depend on the thread
// count or the schedule.
using ::qc::parallelFor;
using ::qc::workerCount;

/// Sizes derived from a ModelConfig.
struct Dims {
  int64_t D = 0;   ///< model width
  int64_t H = 0;   ///< query heads
  int64_t KV = 0;  ///< key/value heads
  int64_t hd = 0;  ///< head width
  int64_t F = 0;   ///< SwiGLU width
  int64_t qN = 0;  ///< H * hd
  int64_t kvN = 0; ///< KV * hd
};

/// The sizes of `c` that the block uses.
Dims dimsOf(const ModelConfig &c) {
  Dims d;
  d.D = c.dim;
  d.H = c.nHeads;
  d.KV = c.nKVHeads;
  d.hd = c.headDim;
  d.F = c.hiddenDim;
  d.qN = d.H * d.hd;
  d.kvN = d.KV * d.hd;
  return d;
}

/// Checks the config fields the block depends on (see
/// BlockWeights::validate).
Status checkConfig(const ModelConfig &c) {
  if (c.dim <= 0 || c.hiddenDim <= 0 || c.nHeads <= 0 || c.nKVHeads <= 0 ||
      c.headDim <= 0)
    return Status::error("block config: dim, hiddenDim, nHeads, nKVHeads and "
                         "headDim must be positive");
  if (c.nHeads % c.nKVHeads != 0)
    return Status::error("block config: nHeads (" + std::to_string(c.nHeads) +
                         ") is not a multiple of nKVHeads (" +
                         std::to_string(c.nKVHeads) + ")");
  if (c.headDim % 2 != 0)
    return Status::error("block config: headDim must be even (RoPE rotates "
                         "pairs)");
  if (!(c.normEps > 0.0f) || !std::isfinite(c.normEps))
    return Status::error("block config: normEps must be positive and finite");
  if (!(c.ropeTheta > 0.0f) || !std::isfinite(c.ropeTheta))
    return Status::error("block config: ropeTheta must be positive and "
                         "finite");
  RopeParameters rope;
  if (Status s = computeRopeParameters(c, rope); !s)
    return Status::error("block config: " + s.message());
  return Status::ok();
}

/// Fails with a message naming `what` unless v has `expected` elements.
Status checkSize(const std::vector<float> &v, int64_t expected,
                 const char *what) {
  if (static_cast<int64_t>(v.size()) != expected)
    return Status::error(std::string("block weights: ") + what + " has " +
                         std::to_string(v.size()) + " elements, expected " +
                         std::to_string(expected));
  return Status::ok();
}

/// wt [K, N] = w^T for w [N, K].
void transposeInto(const float *w, int64_t N, int64_t K,
                   std::vector<float> &wt) {
  wt.resize(static_cast<size_t>(N * K));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k)
      wt[k * N + n] = w[n * K + k];
}

/// y [rows, N] = x [rows, K] * wt (+ bias), where wt = W^T is [K, N].
void linearT(const float *x, int64_t rows, const float *wt, int64_t N,
             int64_t K, const float *bias, float *y) {
  for (int64_t t = 0; t < rows; ++t) {
    float *__restrict yr = y + t * N;
    const float *xr = x + t * K;
    if (bias)
      std::memcpy(yr, bias, sizeof(float) * N);
    else
      std::fill(yr, yr + N, 0.0f);
    for (int64_t k = 0; k < K; ++k) {
      const float a = xr[k];
      const float *__restrict wr = wt + k * N;
      for (int64_t n = 0; n < N; ++n)
        yr[n] += a * wr[n];
    }
  }
}

/// dx [rows, K] (+)= dy [rows, N] * W for W [N, K]: the input gradient of
/// y = x W^T. Accumulates when `accumulate`, else overwrites.
void linearBackwardInput(const float *dy, int64_t rows, const float *w,
                         int64_t N, int64_t K, float *dx, bool accumulate) {
  for (int64_t t = 0; t < rows; ++t) {
    float *__restrict xr = dx + t * K;
    if (!accumulate)
      std::fill(xr, xr + K, 0.0f);
    const float *dyr = dy + t * N;
    for (int64_t n = 0; n < N; ++n) {
      const float a = dyr[n];
      if (a == 0.0f)
        continue;
      const float *__restrict wr = w + n * K;
      for (int64_t k = 0; k < K; ++k)
        xr[k] += a * wr[k];
    }
  }
}

/// dW [N, K] += dy^T [N, rows] * x [rows, K]: the weight gradient of
/// y = x W^T.
void linearBackwardWeight(const float *dy, const float *x, int64_t rows,
                          int64_t N, int64_t K, float *dw) {
  for (int64_t t = 0; t < rows; ++t) {
    const float *xr = x + t * K;
    const float *dyr = dy + t * N;
    for (int64_t n = 0; n < N; ++n) {
      const float a = dyr[n];
      if (a == 0.0f)
        continue;
      float *__restrict wr = dw + n * K;
      const float *__restrict xx = xr;
      for (int64_t k = 0; k < K; ++k)
        wr[k] += a * xx[k];
    }
  }
}

/// y = x * rms * g per row, rms = 1/sqrt(mean(x^2) + eps) with an fp32 sum
/// (the llm.rms_norm lowering's statistic).
void rmsNormRows(const float *x, int64_t rows, int64_t D, const float *g,
                 float eps, float *rms, float *y) {
  for (int64_t t = 0; t < rows; ++t) {
    const float *xr = x + t * D;
    float ss = 0.0f;
    for (int64_t i = 0; i < D; ++i)
      ss += xr[i] * xr[i];
    const float r = 1.0f / std::sqrt(ss / static_cast<float>(D) + eps);
    if (rms)
      rms[t] = r;
    float *yr = y + t * D;
    for (int64_t i = 0; i < D; ++i)
      yr[i] = xr[i] * r * g[i];
  }
}

/// dx (+)= backward of y = x * r(x) * g, with r = (mean(x^2) + eps)^(-1/2):
///   dx_i = r g_i dy_i - x_i r^3 / D * sum_j g_j dy_j x_j.
void rmsNormBackward(const float *x, const float *rms, int64_t rows, int64_t D,
                     const float *g, const float *dy, float *dx,
                     bool accumulate) {
  for (int64_t t = 0; t < rows; ++t) {
    const float *xr = x + t * D;
    const float *dyr = dy + t * D;
    float *dxr = dx + t * D;
    const float r = rms[t];
    float dot = 0.0f;
    for (int64_t i = 0; i < D; ++i)
      dot += g[i] * dyr[i] * xr[i];
    const float c = r * r * r * dot / static_cast<float>(D);
    for (int64_t i = 0; i < D; ++i) {
      float v = r * g[i] * dyr[i] - xr[i] * c;
      dxr[i] = accumulate ? dxr[i] + v : v;
    }
  }
}

/// cos/sin of pos * invFreq[i] for pos in [0, T), i in [0, rotaryDim/2),
/// with invFreq from computeRopeParameters (theta^(-2i/hd) for the default
/// rotary embedding, evaluated in fp32 in the same order as the llm.rope
/// lowering) and YaRN's attention scaling applied to both.
struct RopeTable {
  int64_t half = 0;
  std::vector<float> cos, sin; ///< [T, half]

  void build(const ModelConfig &c, int64_t T) {
    RopeParameters p;
    // checkConfig ran computeRopeParameters on this config already.
    Status s = computeRopeParameters(c, p);
    assert(s.isOk());
    (void)s;
    half = p.rotaryDim / 2;
    cos.resize(static_cast<size_t>(T * half));
    sin.resize(static_cast<size_t>(T * half));
    for (int64_t i = 0; i < half; ++i) {
      const float freq = p.invFreq[i];
      for (int64_t t = 0; t < T; ++t) {
        const float angle = static_cast<float>(t) * freq;
        float cv = std::cos(angle), sv = std::sin(angle);
        if (p.attentionScaling != 1.0f) {
          cv *= p.attentionScaling;
          sv *= p.attentionScaling;
        }
        cos[t * half + i] = cv;
        sin[t * half + i] = sv;
      }
    }
  }
};

/// Rotates every head of x [T, nHeads*hd] in place (the first 2 * tab.half
/// features of each head; the rest pass through). `inverse` applies the
/// transposed rotation, which is the backward of the forward rotation.
void applyRope(float *x, int64_t T, int64_t nHeads, int64_t hd,
               RopeLayout layout, const RopeTable &tab, bool inverse) {
  const int64_t half = tab.half;
  const int64_t width = nHeads * hd;
  for (int64_t t = 0; t < T; ++t) {
    const float *cs = tab.cos.data() + t * half;
    const float *sn = tab.sin.data() + t * half;
    for (int64_t h = 0; h < nHeads; ++h) {
      float *xh = x + t * width + h * hd;
      for (int64_t i = 0; i < half; ++i) {
        // Partner indices of pair i in the two layouts.
        const int64_t a = layout == RopeLayout::Interleaved ? 2 * i : i;
        const int64_t b =
            layout == RopeLayout::Interleaved ? 2 * i + 1 : i + half;
        const float c = cs[i];
        const float s = inverse ? -sn[i] : sn[i];
        const float x0 = xh[a], x1 = xh[b];
        xh[a] = x0 * c - x1 * s;
        xh[b] = x1 * c + x0 * s;
      }
    }
  }
}

/// dst [hd, T] = columns [g*hd, (g+1)*hd) of src [T, width], transposed so
/// that per-query loops over key positions are contiguous.
void gatherHeadT(const float *src, int64_t T, int64_t width, int64_t hd,
                 int64_t g, float *dst) {
  for (int64_t j = 0; j < T; ++j)
    for (int64_t e = 0; e < hd; ++e)
      dst[e * T + j] = src[j * width + g * hd + e];
}

/// sum_j a[j] * b[j] with eight independent partial sums: the compiler may
/// vectorize independent lanes without reassociating a single float chain.
inline float dot8(const float *a, const float *b, int64_t n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t j = 0;
  for (; j + 8 <= n; j += 8)
    for (int l = 0; l < 8; ++l)
      acc[l] += a[j + l] * b[j + l];
  float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) +
            ((acc[2] + acc[6]) + (acc[3] + acc[7]));
  for (; j < n; ++j)
    s += a[j] * b[j];
  return s;
}

/// max_j a[j] for n >= 1, in eight lanes (see dot8).
inline float max8(const float *a, int64_t n) {
  float m[8];
  for (int l = 0; l < 8; ++l)
    m[l] = a[0];
  int64_t j = 0;
  for (; j + 8 <= n; j += 8)
    for (int l = 0; l < 8; ++l)
      m[l] = m[l] < a[j + l] ? a[j + l] : m[l];
  float r = m[0];
  for (int l = 1; l < 8; ++l)
    r = r < m[l] ? m[l] : r;
  for (; j < n; ++j)
    r = r < a[j] ? a[j] : r;
  return r;
}

/// y[0..n) += a * x[0..n).
inline void axpy(float a, const float *__restrict x, float *__restrict y,
                 int64_t n) {
  for (int64_t j = 0; j < n; ++j)
    y[j] += a * x[j];
}

/// sc[0..i] = scale * q_i . k_j for the causal prefix j <= i, with kT the
/// [hd, T] transposed keys.
inline void causalScores(const float *qi, const float *kT, int64_t T, int64_t i,
                         int64_t hd, float scale, float *sc) {
  const int64_t n = i + 1;
  std::fill(sc, sc + n, 0.0f);
  int64_t e = 0;
  // Four feature rows per pass: a quarter of the loads/stores of sc.
  for (; e + 4 <= hd; e += 4) {
    const float a0 = qi[e] * scale, a1 = qi[e + 1] * scale,
                a2 = qi[e + 2] * scale, a3 = qi[e + 3] * scale;
    const float *__restrict k0 = kT + e * T;
    const float *__restrict k1 = k0 + T;
    const float *__restrict k2 = k1 + T;
    const float *__restrict k3 = k2 + T;
    float *__restrict s = sc;
    for (int64_t j = 0; j < n; ++j)
      s[j] += (a0 * k0[j] + a1 * k1[j]) + (a2 * k2[j] + a3 * k3[j]);
  }
  for (; e < hd; ++e)
    axpy(qi[e] * scale, kT + e * T, sc, n);
}

/// Causal GQA attention of one sequence: q [T, H*hd], k/v [T, KV*hd] (RoPE
/// already applied) -> out [T, H*hd]; lse [H, T] receives each softmax
/// row's log-sum-exp when non-null. Query head h reads kv head h/(H/KV).
void attentionSeq(const Dims &d, int64_t T, const float *q, const float *k,
                  const float *v, float *out, float *lse,
                  std::vector<float> &kT, std::vector<float> &vT,
                  std::vector<float> &sc) {
  const int64_t group = d.H / d.KV;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d.hd));
  kT.resize(static_cast<size_t>(d.hd * T));
  vT.resize(static_cast<size_t>(d.hd * T));
  sc.resize(static_cast<size_t>(T));
  for (int64_t g = 0; g < d.KV; ++g) {
    gatherHeadT(k, T, d.kvN, d.hd, g, kT.data());
    gatherHeadT(v, T, d.kvN, d.hd, g, vT.data());
    for (int64_t h = g * group; h < (g + 1) * group; ++h) {
      for (int64_t i = 0; i < T; ++i) {
        const int64_t n = i + 1;
        causalScores(q + i * d.qN + h * d.hd, kT.data(), T, i, d.hd, scale,
                     sc.data());
        const float mx = max8(sc.data(), n);
        float part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int64_t j = 0; j < n; ++j) {
          sc[j] = std::exp(sc[j] - mx);
          part[j & 7] += sc[j];
        }
        const float sum = ((part[0] + part[4]) + (part[1] + part[5])) +
                          ((part[2] + part[6]) + (part[3] + part[7]));
        const float inv = 1.0f / sum;
        float *oi = out + i * d.qN + h * d.hd;
        for (int64_t e = 0; e < d.hd; ++e)
          oi[e] = dot8(sc.data(), vT.data() + e * T, n) * inv;
        if (lse)
          lse[h * T + i] = mx + std::log(sum);
      }
    }
  }
}

/// The logistic function; silu(x) = x * sigmoid(x).
inline float sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

/// The seven transposed linear weights, built once per call.
struct TransposedWeights {
  std::array<std::vector<float>, kNumBlockLinears> wt;
  void build(const ModelConfig &c, const BlockWeights &w,
             bool attentionOnly = false) {
    for (BlockLinear l : kAllBlockLinears) {
      if (attentionOnly && l >= BlockLinear::Gate)
        break;
      int64_t N, K;
      blockLinearShape(c, l, N, K);
      transposeInto(w.linear(l).data(), N, K, wt[blockLinearIndex(l)]);
    }
  }
  const float *operator[](BlockLinear l) const {
    return wt[blockLinearIndex(l)].data();
  }
};

/// A vector of `n` floats that is either part of a saved-activation buffer
/// (at the current sequence's offset) or per-sequence scratch.
struct Slot {
  std::vector<float> scratch;
  float *bind(std::vector<float> *saved, int64_t offset, int64_t n) {
    if (saved)
      return saved->data() + offset;
    if (static_cast<int64_t>(scratch.size()) < n)
      scratch.resize(static_cast<size_t>(n));
    return scratch.data();
  }
};

/// The attention sub-module on one sequence's normed input xn [T, D]:
/// projections, RoPE, attention. Writes q/k/v/attn/lse through the given
/// pointers (lse may be null).
void attentionCore(const ModelConfig &c, const Dims &d, const BlockWeights &w,
                   const TransposedWeights &wt, const RopeTable &rope,
                   const float *xn, int64_t T, float *q, float *k, float *v,
                   float *attn, float *lse, std::vector<float> &kT,
                   std::vector<float> &vT, std::vector<float> &sc) {
  linearT(xn, T, wt[BlockLinear::Q], d.qN, d.D, w.bias(BlockLinear::Q), q);
  linearT(xn, T, wt[BlockLinear::K], d.kvN, d.D, w.bias(BlockLinear::K), k);
  linearT(xn, T, wt[BlockLinear::V], d.kvN, d.D, w.bias(BlockLinear::V), v);
  applyRope(q, T, d.H, d.hd, c.ropeLayout, rope, /*inverse=*/false);
  applyRope(k, T, d.KV, d.hd, c.ropeLayout, rope, /*inverse=*/false);
  attentionSeq(d, T, q, k, v, attn, lse, kT, vT, sc);
}

} // namespace

//===----------------------------------------------------------------------===//
// Names, shapes, weights
//===----------------------------------------------------------------------===//

const char *qc::quant::blockLinearName(BlockLinear l) {
  switch (l) {
  case BlockLinear::Q:
    return "self_attn.q_proj";
  case BlockLinear::K:
    return "self_attn.k_proj";
  case BlockLinear::V:
    return "self_attn.v_proj";
  case BlockLinear::O:
    return "self_attn.o_proj";
  case BlockLinear::Gate:
    return "mlp.gate_proj";
  case BlockLinear::Up:
    return "mlp.up_proj";
  case BlockLinear::Down:
    return "mlp.down_proj";
  }
  return "?";
}

void qc::quant::blockLinearShape(const ModelConfig &c, BlockLinear l,
                                 int64_t &N, int64_t &K) {
  Dims d = dimsOf(c);
  switch (l) {
  case BlockLinear::Q:
    N = d.qN, K = d.D;
    return;
  case BlockLinear::K:
  case BlockLinear::V:
    N = d.kvN, K = d.D;
    return;
  case BlockLinear::O:
    N = d.D, K = d.qN;
    return;
  case BlockLinear::Gate:
  case BlockLinear::Up:
    N = d.F, K = d.D;
    return;
  case BlockLinear::Down:
    N = d.D, K = d.F;
    return;
  }
  N = K = 0;
}

std::vector<float> &BlockWeights::linear(BlockLinear l) {
  switch (l) {
  case BlockLinear::Q:
    return q;
  case BlockLinear::K:
    return k;
  case BlockLinear::V:
    return v;
  case BlockLinear::O:
    return o;
  case BlockLinear::Gate:
    return gate;
  case BlockLinear::Up:
    return up;
  case BlockLinear::Down:
    break;
  }
  return down;
}

const std::vector<float> &BlockWeights::linear(BlockLinear l) const {
  return const_cast<BlockWeights *>(this)->linear(l);
}

const float *BlockWeights::bias(BlockLinear l) const {
  const std::vector<float> *b = nullptr;
  if (l == BlockLinear::Q)
    b = &qBias;
  else if (l == BlockLinear::K)
    b = &kBias;
  else if (l == BlockLinear::V)
    b = &vBias;
  return b && !b->empty() ? b->data() : nullptr;
}

Status BlockWeights::validate(const ModelConfig &c) const {
  QC_RETURN_IF_ERROR(checkConfig(c));
  Dims d = dimsOf(c);
  QC_RETURN_IF_ERROR(checkSize(inputNorm, d.D, "input_layernorm"));
  QC_RETURN_IF_ERROR(checkSize(postNorm, d.D, "post_attention_layernorm"));
  for (BlockLinear l : kAllBlockLinears) {
    int64_t N, K;
    blockLinearShape(c, l, N, K);
    QC_RETURN_IF_ERROR(checkSize(linear(l), N * K, blockLinearName(l)));
  }
  const std::vector<float> *biases[3] = {&qBias, &kBias, &vBias};
  const int64_t biasN[3] = {d.qN, d.kvN, d.kvN};
  const char *biasName[3] = {"q_proj bias", "k_proj bias", "v_proj bias"};
  for (int i = 0; i < 3; ++i) {
    if (biases[i]->empty()) {
      if (c.attentionBias)
        return Status::error(std::string("block weights: ") + biasName[i] +
                             " missing but the config has attentionBias");
      continue;
    }
    QC_RETURN_IF_ERROR(checkSize(*biases[i], biasN[i], biasName[i]));
  }
  return Status::ok();
}

namespace {
/// HF suffix of each bias.
const char *biasSuffix(int i) {
  static const char *names[3] = {"self_attn.q_proj.bias",
                                 "self_attn.k_proj.bias",
                                 "self_attn.v_proj.bias"};
  return names[i];
}
} // namespace

Status qc::quant::loadBlockWeights(const ModelWeights &model, int64_t layer,
                                   BlockWeights &out) {
  auto fetch = [&](const std::string &suffix, std::vector<float> &dst,
                   bool optional) -> Status {
    std::string name = layerTensorName(layer, suffix);
    const HostTensor *t = model.find(name);
    if (!t) {
      if (optional) {
        dst.clear();
        return Status::ok();
      }
      return Status::error("missing tensor " + name);
    }
    dst = t->data;
    return Status::ok();
  };
  QC_RETURN_IF_ERROR(fetch("input_layernorm.weight", out.inputNorm, false));
  QC_RETURN_IF_ERROR(
      fetch("post_attention_layernorm.weight", out.postNorm, false));
  for (BlockLinear l : kAllBlockLinears)
    QC_RETURN_IF_ERROR(fetch(std::string(blockLinearName(l)) + ".weight",
                             out.linear(l), false));
  QC_RETURN_IF_ERROR(fetch(biasSuffix(0), out.qBias, true));
  QC_RETURN_IF_ERROR(fetch(biasSuffix(1), out.kBias, true));
  QC_RETURN_IF_ERROR(fetch(biasSuffix(2), out.vBias, true));
  return out.validate(model.config)
      .withContext("layer " + std::to_string(layer));
}

Status qc::quant::storeBlockWeights(const BlockWeights &w, int64_t layer,
                                    ModelWeights &model) {
  auto put = [&](const std::string &suffix,
                 const std::vector<float> &src) -> Status {
    std::string name = layerTensorName(layer, suffix);
    auto it = model.tensors.find(name);
    if (it == model.tensors.end())
      return Status::error("missing tensor " + name);
    if (it->second.data.size() != src.size())
      return Status::error(
          "tensor " + name + " has " + std::to_string(it->second.data.size()) +
          " elements, block has " + std::to_string(src.size()));
    it->second.data = src;
    return Status::ok();
  };
  QC_RETURN_IF_ERROR(put("input_layernorm.weight", w.inputNorm));
  QC_RETURN_IF_ERROR(put("post_attention_layernorm.weight", w.postNorm));
  for (BlockLinear l : kAllBlockLinears)
    QC_RETURN_IF_ERROR(
        put(std::string(blockLinearName(l)) + ".weight", w.linear(l)));
  const std::vector<float> *biases[3] = {&w.qBias, &w.kBias, &w.vBias};
  for (int i = 0; i < 3; ++i)
    if (!biases[i]->empty() &&
        model.tensors.count(layerTensorName(layer, biasSuffix(i))))
      QC_RETURN_IF_ERROR(put(biasSuffix(i), *biases[i]));
  return Status::ok();
}

Status qc::quant::setDequantizedLinears(
    BlockWeights &w, const std::array<QuantizedWeight, kNumBlockLinears> &q) {
  for (BlockLinear l : kAllBlockLinears) {
    const QuantizedWeight &qw = q[blockLinearIndex(l)];
    std::vector<float> &dst = w.linear(l);
    if (static_cast<int64_t>(dst.size()) != qw.rows * qw.cols)
      return Status::error(std::string("setDequantizedLinears: ") +
                           blockLinearName(l) + " shape mismatch");
    qw.dequantize(dst);
  }
  return Status::ok();
}

const std::vector<float> &BlockActivations::linearInput(BlockLinear l) const {
  switch (l) {
  case BlockLinear::Q:
  case BlockLinear::K:
  case BlockLinear::V:
    return xn;
  case BlockLinear::O:
    return attn;
  case BlockLinear::Gate:
  case BlockLinear::Up:
    return hn;
  case BlockLinear::Down:
    break;
  }
  return act;
}

//===----------------------------------------------------------------------===//
// Forward
//===----------------------------------------------------------------------===//

void qc::quant::linearForward(const float *x, int64_t rows, const float *w,
                              int64_t N, int64_t K, const float *bias,
                              float *y) {
  std::vector<float> wt;
  transposeInto(w, N, K, wt);
  linearT(x, rows, wt.data(), N, K, bias, y);
}

Status qc::quant::blockForward(const ModelConfig &c, const BlockWeights &w,
                               const float *x, int64_t S, int64_t T, float *y,
                               BlockActivations *acts,
                               const LinearInputHook &hook) {
  QC_RETURN_IF_ERROR(w.validate(c));
  if (S < 1 || T < 1)
    return Status::error("blockForward: need S >= 1 and T >= 1");
  const Dims d = dimsOf(c);
  const int64_t rows = S * T;

  TransposedWeights wt;
  wt.build(c, w);
  RopeTable rope;
  rope.build(c, T);

  if (acts) {
    acts->S = S;
    acts->T = T;
    acts->x.assign(x, x + rows * d.D);
    auto sz = [](std::vector<float> &v, int64_t n) {
      v.resize(static_cast<size_t>(n));
    };
    sz(acts->rms1, rows);
    sz(acts->xn, rows * d.D);
    sz(acts->q, rows * d.qN);
    sz(acts->k, rows * d.kvN);
    sz(acts->v, rows * d.kvN);
    sz(acts->lse, S * d.H * T);
    sz(acts->attn, rows * d.qN);
    sz(acts->h1, rows * d.D);
    sz(acts->rms2, rows);
    sz(acts->hn, rows * d.D);
    sz(acts->gate, rows * d.F);
    sz(acts->up, rows * d.F);
    sz(acts->act, rows * d.F);
  }
  auto saved = [&](std::vector<float> BlockActivations::*m) {
    return acts ? &(acts->*m) : nullptr;
  };

  // Sequences are independent: each worker runs whole sequences with its own
  // scratch. Hooks must see sequences in order (Hessians accumulate in
  // fp32, so order matters for reproducibility): with a hook, sequences go
  // in rounds of one per worker and the hooks run after each round, in
  // sequence order, on the inputs the workers kept.
  struct Scratch {
    Slot sRms1, sXn, sQ, sK, sV, sAttn, sH1, sRms2, sHn, sGate, sUp, sAct;
    std::vector<float> kT, vT, sc, tmp;
    const float *xn = nullptr, *attn = nullptr, *hn = nullptr, *act = nullptr;
  };
  const int64_t workers = workerCount(S);
  std::vector<Scratch> scratch(workers);
  auto runSeq = [&](int64_t s, int64_t wk) {
    Scratch &b = scratch[wk];
    b.tmp.resize(static_cast<size_t>(T * d.D));
    const int64_t r0 = s * T;
    const float *xs = x + r0 * d.D;
    float *rms1 = b.sRms1.bind(saved(&BlockActivations::rms1), r0, T);
    float *xn = b.sXn.bind(saved(&BlockActivations::xn), r0 * d.D, T * d.D);
    float *q = b.sQ.bind(saved(&BlockActivations::q), r0 * d.qN, T * d.qN);
    float *k = b.sK.bind(saved(&BlockActivations::k), r0 * d.kvN, T * d.kvN);
    float *v = b.sV.bind(saved(&BlockActivations::v), r0 * d.kvN, T * d.kvN);
    float *attn =
        b.sAttn.bind(saved(&BlockActivations::attn), r0 * d.qN, T * d.qN);
    float *h1 = b.sH1.bind(saved(&BlockActivations::h1), r0 * d.D, T * d.D);
    float *rms2 = b.sRms2.bind(saved(&BlockActivations::rms2), r0, T);
    float *hn = b.sHn.bind(saved(&BlockActivations::hn), r0 * d.D, T * d.D);
    float *gate =
        b.sGate.bind(saved(&BlockActivations::gate), r0 * d.F, T * d.F);
    float *up = b.sUp.bind(saved(&BlockActivations::up), r0 * d.F, T * d.F);
    float *act = b.sAct.bind(saved(&BlockActivations::act), r0 * d.F, T * d.F);
    float *lse = acts ? acts->lse.data() + s * d.H * T : nullptr;
    float *tmp = b.tmp.data();

    // Attention half: h1 = x + o_proj(attn(rmsnorm(x))).
    rmsNormRows(xs, T, d.D, w.inputNorm.data(), c.normEps, rms1, xn);
    attentionCore(c, d, w, wt, rope, xn, T, q, k, v, attn, lse, b.kT, b.vT,
                  b.sc);
    linearT(attn, T, wt[BlockLinear::O], d.D, d.qN, nullptr, tmp);
    for (int64_t i = 0; i < T * d.D; ++i)
      h1[i] = xs[i] + tmp[i];

    // MLP half: y = h1 + down(silu(gate(hn)) * up(hn)).
    rmsNormRows(h1, T, d.D, w.postNorm.data(), c.normEps, rms2, hn);
    linearT(hn, T, wt[BlockLinear::Gate], d.F, d.D, nullptr, gate);
    linearT(hn, T, wt[BlockLinear::Up], d.F, d.D, nullptr, up);
    for (int64_t i = 0; i < T * d.F; ++i)
      act[i] = gate[i] * sigmoid(gate[i]) * up[i];
    linearT(act, T, wt[BlockLinear::Down], d.D, d.F, nullptr, tmp);
    float *ys = y + r0 * d.D;
    for (int64_t i = 0; i < T * d.D; ++i)
      ys[i] = h1[i] + tmp[i];
    b.xn = xn;
    b.attn = attn;
    b.hn = hn;
    b.act = act;
  };
  if (!hook) {
    parallelFor(S, workers, runSeq);
    return Status::ok();
  }
  for (int64_t s0 = 0; s0 < S; s0 += workers) {
    const int64_t n = std::min(workers, S - s0);
    parallelFor(n, n, [&](int64_t i, int64_t) { runSeq(s0 + i, i); });
    for (int64_t i = 0; i < n; ++i) {
      const Scratch &b = scratch[i];
      hook(BlockLinear::Q, b.xn, T, d.D);
      hook(BlockLinear::K, b.xn, T, d.D);
      hook(BlockLinear::V, b.xn, T, d.D);
      hook(BlockLinear::O, b.attn, T, d.qN);
      hook(BlockLinear::Gate, b.hn, T, d.D);
      hook(BlockLinear::Up, b.hn, T, d.D);
      hook(BlockLinear::Down, b.act, T, d.F);
    }
  }
  return Status::ok();
}

Status qc::quant::attentionForward(const ModelConfig &c, const BlockWeights &w,
                                   const float *xn, int64_t S, int64_t T,
                                   float *out) {
  QC_RETURN_IF_ERROR(w.validate(c));
  if (S < 1 || T < 1)
    return Status::error("attentionForward: need S >= 1 and T >= 1");
  const Dims d = dimsOf(c);
  TransposedWeights wt;
  wt.build(c, w, /*attentionOnly=*/true);
  RopeTable rope;
  rope.build(c, T);
  struct Scratch {
    std::vector<float> q, k, v, attn, kT, vT, sc;
  };
  const int64_t workers = workerCount(S);
  std::vector<Scratch> scratch(workers);
  parallelFor(S, workers, [&](int64_t s, int64_t wk) {
    Scratch &b = scratch[wk];
    b.q.resize(T * d.qN);
    b.k.resize(T * d.kvN);
    b.v.resize(T * d.kvN);
    b.attn.resize(T * d.qN);
    attentionCore(c, d, w, wt, rope, xn + s * T * d.D, T, b.q.data(),
                  b.k.data(), b.v.data(), b.attn.data(), nullptr, b.kT, b.vT,
                  b.sc);
    linearT(b.attn.data(), T, wt[BlockLinear::O], d.D, d.qN, nullptr,
            out + s * T * d.D);
  });
  return Status::ok();
}

Status qc::quant::mlpForward(const ModelConfig &c, const BlockWeights &w,
                             const float *hn, int64_t rows, float *out) {
  QC_RETURN_IF_ERROR(w.validate(c));
  const Dims d = dimsOf(c);
  std::vector<float> gt, ut, dt;
  transposeInto(w.gate.data(), d.F, d.D, gt);
  transposeInto(w.up.data(), d.F, d.D, ut);
  transposeInto(w.down.data(), d.D, d.F, dt);
  // Chunks of rows keep the [chunk, F] intermediates in cache.
  const int64_t chunk = 256, chunks = (rows + chunk - 1) / chunk;
  const int64_t workers = workerCount(chunks);
  std::vector<std::vector<float>> gs(workers), us(workers);
  parallelFor(chunks, workers, [&](int64_t ci, int64_t wk) {
    const int64_t r0 = ci * chunk, n = std::min(chunk, rows - r0);
    std::vector<float> &g = gs[wk], &u = us[wk];
    g.resize(chunk * d.F);
    u.resize(chunk * d.F);
    linearT(hn + r0 * d.D, n, gt.data(), d.F, d.D, nullptr, g.data());
    linearT(hn + r0 * d.D, n, ut.data(), d.F, d.D, nullptr, u.data());
    for (int64_t i = 0; i < n * d.F; ++i)
      g[i] = g[i] * sigmoid(g[i]) * u[i];
    linearT(g.data(), n, dt.data(), d.D, d.F, nullptr, out + r0 * d.D);
  });
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// Backward
//===----------------------------------------------------------------------===//

Status qc::quant::blockBackward(const ModelConfig &c, const BlockWeights &w,
                                const BlockActivations &acts, const float *dy,
                                BlockGradients &grads, bool wantInputGrad) {
  QC_RETURN_IF_ERROR(w.validate(c));
  const Dims d = dimsOf(c);
  const int64_t S = acts.S, T = acts.T, rows = S * T;
  if (S < 1 || T < 1 || static_cast<int64_t>(acts.act.size()) != rows * d.F ||
      static_cast<int64_t>(acts.x.size()) != rows * d.D)
    return Status::error("blockBackward: activations do not match the "
                         "config (run blockForward with acts first)");
  for (BlockLinear l : kAllBlockLinears) {
    int64_t N, K;
    blockLinearShape(c, l, N, K);
    grads.weight[blockLinearIndex(l)].assign(static_cast<size_t>(N * K), 0.0f);
  }
  if (wantInputGrad)
    grads.input.assign(static_cast<size_t>(rows * d.D), 0.0f);
  else
    grads.input.clear();

  RopeTable rope;
  rope.build(c, T);
  const int64_t group = d.H / d.KV;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d.hd));

  // Sequences are independent: each worker back-propagates whole sequences
  // into its own weight-gradient buffers, which are then added to `grads`
  // in sequence order, so the result does not depend on the thread count.
  struct Scratch {
    std::vector<float> dAct, dGate, dUp, dHn, dH1, dAttn, dQ, dK, dV, dXn, kT,
        vT, dKT, dVT, sc, dP;
    std::array<std::vector<float>, kNumBlockLinears> dWs;
  };
  const int64_t workers = workerCount(S);
  std::vector<Scratch> scratch(workers);
  auto backSeq = [&](int64_t s, int64_t wk) {
    Scratch &b = scratch[wk];
    auto sz = [](std::vector<float> &v, int64_t n) { v.resize(n); };
    sz(b.dAct, T * d.F);
    sz(b.dGate, T * d.F);
    sz(b.dUp, T * d.F);
    sz(b.dHn, T * d.D);
    sz(b.dH1, T * d.D);
    sz(b.dAttn, T * d.qN);
    sz(b.dQ, T * d.qN);
    sz(b.dK, T * d.kvN);
    sz(b.dV, T * d.kvN);
    sz(b.dXn, T * d.D);
    sz(b.kT, d.hd * T);
    sz(b.vT, d.hd * T);
    sz(b.dKT, d.hd * T);
    sz(b.dVT, d.hd * T);
    sz(b.sc, T);
    sz(b.dP, T);
    for (BlockLinear l : kAllBlockLinears)
      b.dWs[blockLinearIndex(l)].assign(
          grads.weight[blockLinearIndex(l)].size(), 0.0f);
    auto dW = [&](BlockLinear l) { return b.dWs[blockLinearIndex(l)].data(); };
    std::vector<float> &dAct = b.dAct, &dGate = b.dGate, &dUp = b.dUp,
                       &dHn = b.dHn, &dH1 = b.dH1, &dAttn = b.dAttn, &dQ = b.dQ,
                       &dK = b.dK, &dV = b.dV, &dXn = b.dXn, &kT = b.kT,
                       &vT = b.vT, &dKT = b.dKT, &dVT = b.dVT, &sc = b.sc,
                       &dP = b.dP;
    const int64_t r0 = s * T;
    const float *dys = dy + r0 * d.D;
    const float *act = acts.act.data() + r0 * d.F;
    const float *gate = acts.gate.data() + r0 * d.F;
    const float *up = acts.up.data() + r0 * d.F;
    const float *hn = acts.hn.data() + r0 * d.D;
    const float *h1 = acts.h1.data() + r0 * d.D;
    const float *attn = acts.attn.data() + r0 * d.qN;
    const float *q = acts.q.data() + r0 * d.qN;
    const float *k = acts.k.data() + r0 * d.kvN;
    const float *v = acts.v.data() + r0 * d.kvN;
    const float *xn = acts.xn.data() + r0 * d.D;
    const float *x = acts.x.data() + r0 * d.D;
    const float *lse = acts.lse.data() + s * d.H * T;

    // MLP: y = h1 + down(act), act = silu(gate) * up.
    linearBackwardWeight(dys, act, T, d.D, d.F, dW(BlockLinear::Down));
    linearBackwardInput(dys, T, w.down.data(), d.D, d.F, dAct.data(), false);
    for (int64_t i = 0; i < T * d.F; ++i) {
      const float g = gate[i], sg = sigmoid(g);
      dUp[i] = dAct[i] * g * sg;
      // d silu(g)/dg = sg * (1 + g * (1 - sg)).
      dGate[i] = dAct[i] * up[i] * sg * (1.0f + g * (1.0f - sg));
    }
    linearBackwardWeight(dGate.data(), hn, T, d.F, d.D, dW(BlockLinear::Gate));
    linearBackwardWeight(dUp.data(), hn, T, d.F, d.D, dW(BlockLinear::Up));
    linearBackwardInput(dGate.data(), T, w.gate.data(), d.F, d.D, dHn.data(),
                        false);
    linearBackwardInput(dUp.data(), T, w.up.data(), d.F, d.D, dHn.data(), true);
    // Residual plus the post-norm's contribution.
    std::copy(dys, dys + T * d.D, dH1.begin());
    rmsNormBackward(h1, acts.rms2.data() + r0, T, d.D, w.postNorm.data(),
                    dHn.data(), dH1.data(), /*accumulate=*/true);

    // o_proj.
    linearBackwardWeight(dH1.data(), attn, T, d.D, d.qN, dW(BlockLinear::O));
    linearBackwardInput(dH1.data(), T, w.o.data(), d.D, d.qN, dAttn.data(),
                        false);

    // Attention: probabilities are recomputed from the saved log-sum-exp.
    // Key/value gradients are accumulated transposed ([hd, T] per kv head)
    // so that every inner loop runs over contiguous key positions.
    std::fill(dQ.begin(), dQ.end(), 0.0f);
    for (int64_t g = 0; g < d.KV; ++g) {
      gatherHeadT(k, T, d.kvN, d.hd, g, kT.data());
      gatherHeadT(v, T, d.kvN, d.hd, g, vT.data());
      std::fill(dKT.begin(), dKT.end(), 0.0f);
      std::fill(dVT.begin(), dVT.end(), 0.0f);
      for (int64_t h = g * group; h < (g + 1) * group; ++h) {
        for (int64_t i = 0; i < T; ++i) {
          const int64_t n = i + 1;
          const float *qi = q + i * d.qN + h * d.hd;
          const float *dai = dAttn.data() + i * d.qN + h * d.hd;
          const float *ai = attn + i * d.qN + h * d.hd;
          causalScores(qi, kT.data(), T, i, d.hd, scale, sc.data());
          const float l = lse[h * T + i];
          for (int64_t j = 0; j < n; ++j)
            sc[j] = std::exp(sc[j] - l); // p_ij
          // dP_ij = da_i . v_j.
          std::fill(dP.begin(), dP.begin() + n, 0.0f);
          for (int64_t e = 0; e < d.hd; ++e)
            axpy(dai[e], vT.data() + e * T, dP.data(), n);
          // sum_j p_ij dP_ij = da_i . a_i (the softmax Jacobian's term).
          float Di = 0.0f;
          for (int64_t e = 0; e < d.hd; ++e)
            Di += dai[e] * ai[e];
          // dS_ij (times the score scale, folded in once here).
          for (int64_t j = 0; j < n; ++j)
            dP[j] = sc[j] * (dP[j] - Di) * scale;
          float *dqi = dQ.data() + i * d.qN + h * d.hd;
          for (int64_t e = 0; e < d.hd; ++e) {
            dqi[e] += dot8(dP.data(), kT.data() + e * T, n);
            axpy(qi[e], dP.data(), dKT.data() + e * T, n);
            axpy(dai[e], sc.data(), dVT.data() + e * T, n);
          }
        }
      }
      for (int64_t j = 0; j < T; ++j)
        for (int64_t e = 0; e < d.hd; ++e) {
          dK[j * d.kvN + g * d.hd + e] = dKT[e * T + j];
          dV[j * d.kvN + g * d.hd + e] = dVT[e * T + j];
        }
    }
    // RoPE is a rotation: its backward is the inverse rotation.
    applyRope(dQ.data(), T, d.H, d.hd, c.ropeLayout, rope, /*inverse=*/true);
    applyRope(dK.data(), T, d.KV, d.hd, c.ropeLayout, rope, /*inverse=*/true);

    linearBackwardWeight(dQ.data(), xn, T, d.qN, d.D, dW(BlockLinear::Q));
    linearBackwardWeight(dK.data(), xn, T, d.kvN, d.D, dW(BlockLinear::K));
    linearBackwardWeight(dV.data(), xn, T, d.kvN, d.D, dW(BlockLinear::V));
    if (!wantInputGrad)
      return;
    linearBackwardInput(dQ.data(), T, w.q.data(), d.qN, d.D, dXn.data(), false);
    linearBackwardInput(dK.data(), T, w.k.data(), d.kvN, d.D, dXn.data(), true);
    linearBackwardInput(dV.data(), T, w.v.data(), d.kvN, d.D, dXn.data(), true);
    float *dx = grads.input.data() + r0 * d.D;
    std::copy(dH1.begin(), dH1.end(), dx);
    rmsNormBackward(x, acts.rms1.data() + r0, T, d.D, w.inputNorm.data(),
                    dXn.data(), dx, /*accumulate=*/true);
  };
  for (int64_t s0 = 0; s0 < S; s0 += workers) {
    const int64_t n = std::min(workers, S - s0);
    parallelFor(n, n, [&](int64_t i, int64_t) { backSeq(s0 + i, i); });
    for (int64_t i = 0; i < n; ++i)
      for (BlockLinear l : kAllBlockLinears) {
        std::vector<float> &g = grads.weight[blockLinearIndex(l)];
        const std::vector<float> &p = scratch[i].dWs[blockLinearIndex(l)];
        for (size_t e = 0; e < g.size(); ++e)
          g[e] += p[e];
      }
  }
  return Status::ok();
}
