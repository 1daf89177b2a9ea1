//===- AWQ.cpp - Activation-aware weight quantization ---------------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Statistics, scale search, equivalence transform, clip search and final
// quantization of ../shared/docs/ALGORITHMS.md §4 for one decoder block.
// Sub-module outputs (self_attn, mlp, o_proj, down_proj) come from
// BlockReference.
//
//===----------------------------------------------------------------------===//

#include "qc/Quantization/Algorithms/AWQ.h"

#include <algorithm>
#include <cmath>
#include <limits>

using namespace qc;
using namespace qc::quant;

namespace {

/// The grid of one (row, group) under the AWQ rules: Ŵ = s (q - z) with q
/// in [lo, hi]. Asymmetric: z = zero point, q in [0, qmax]. Symmetric
/// (zero_point=False): z = 0, q in [-2^(b-1), 2^(b-1) - 1].
struct AWQGrid {
  float scale = 1.0f;
  float zero = 0.0f;
  float lo = 0.0f;
  float hi = 0.0f;

  float code(float x) const {
    float q = roundHalfEven(x / scale) + zero;
    return std::min(std::max(q, lo), hi);
  }
  float fake(float x) const { return scale * (code(x) - zero); }
};

/// §1.1 "AWQ" row (asym) or AWQ zero_point=False (sym) for values x[0..n).
AWQGrid awqGrid(const float *x, int64_t n, const QuantConfig &cfg) {
  AWQGrid g;
  if (!cfg.sym) {
    // Raw min/max: the range need not contain 0 (unlike the GPTQ grid).
    float mn = x[0], mx = x[0];
    for (int64_t i = 1; i < n; ++i) {
      mn = std::min(mn, x[i]);
      mx = std::max(mx, x[i]);
    }
    const float qmax = static_cast<float>(cfg.qmax());
    g.scale = castToScaleDType(std::max(mx - mn, 1e-5f) / qmax, cfg.scaleDType);
    // zeros = clamp(-round(min / s), 0, qmax).
    g.zero = std::min(std::max(-roundHalfEven(mn / g.scale), 0.0f), qmax);
    g.lo = 0.0f;
    g.hi = qmax;
  } else {
    float amax = 0.0f;
    for (int64_t i = 0; i < n; ++i)
      amax = std::max(amax, std::fabs(x[i]));
    const float maxInt = static_cast<float>((1 << (cfg.bits - 1)) - 1);
    // The 1e-5 floor mirrors the asymmetric branch so an all-zero group
    // cannot divide by zero (the reference has no floor here).
    g.scale = castToScaleDType(std::max(amax, 1e-5f) / maxInt, cfg.scaleDType);
    g.zero = 0.0f;
    g.lo = -maxInt - 1.0f;
    g.hi = maxInt;
  }
  return g;
}

/// Group geometry of a [N, K] weight.
struct Groups {
  int64_t G = 0, ng = 0;
  Groups(int64_t K, const QuantConfig &cfg)
      : G(cfg.effectiveGroupSize(K)), ng(numGroupsFor(K, cfg.groupSize)) {}
  int64_t begin(int64_t g) const { return g * G; }
  int64_t end(int64_t g, int64_t K) const { return std::min(K, (g + 1) * G); }
};

/// Width of the input of group `g`'s layers.
int64_t groupInputWidth(const ModelConfig &c, AWQGroup g) {
  int64_t N, K;
  blockLinearShape(c, awqGroupLayers(g).front(), N, K);
  return K;
}

/// The inspected module of group `g` on `inp` [S*T, K] -> out [S*T, D].
Status moduleForward(const ModelConfig &c, const BlockWeights &w, AWQGroup g,
                     const float *inp, int64_t S, int64_t T, float *out) {
  const int64_t rows = S * T;
  switch (g) {
  case AWQGroup::QKV:
    return attentionForward(c, w, inp, S, T, out);
  case AWQGroup::VO:
    linearForward(inp, rows, w.o.data(), c.dim, c.nHeads * c.headDim, nullptr,
                  out);
    return Status::ok();
  case AWQGroup::GateUp:
    return mlpForward(c, w, inp, rows, out);
  case AWQGroup::UpDown:
    linearForward(inp, rows, w.down.data(), c.dim, c.hiddenDim, nullptr, out);
    return Status::ok();
  }
  return Status::error("unknown AWQ group");
}

/// mean((a - b)^2) in double; +inf if the result is not finite.
double mseOf(const float *a, const float *b, int64_t n) {
  double acc = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(a[i]) - b[i];
    acc += d * d;
  }
  acc /= static_cast<double>(n);
  return std::isfinite(acc) ? acc : std::numeric_limits<double>::infinity();
}

/// Replaces each layer of group `g` in `w` by Q(W diag(s)) diag(s)^-1.
void quantizeScaledLayers(const ModelConfig &c, BlockWeights &w, AWQGroup g,
                          const std::vector<float> &s, const QuantConfig &cfg) {
  for (BlockLinear l : awqGroupLayers(g)) {
    int64_t N, K;
    blockLinearShape(c, l, N, K);
    std::vector<float> &W = w.linear(l);
    if (!s.empty())
      for (int64_t n = 0; n < N; ++n)
        for (int64_t k = 0; k < K; ++k)
          W[n * K + k] *= s[k];
    awqPseudoQuantize(W.data(), N, K, cfg, W.data());
    if (!s.empty())
      for (int64_t n = 0; n < N; ++n)
        for (int64_t k = 0; k < K; ++k)
          W[n * K + k] /= s[k];
  }
}

/// §4.3 for one group against the unscaled weights `w`.
Status searchGroup(const ModelConfig &c, const BlockWeights &w, AWQGroup g,
                   const float *inp, int64_t S, int64_t T,
                   const QuantConfig &cfg, const AWQOptions &opts,
                   AWQGroupResult &res) {
  const int64_t rows = S * T, K = groupInputWidth(c, g);
  res = AWQGroupResult();
  res.group = g;
  res.applied = true;
  std::vector<float> fpOut(static_cast<size_t>(rows * c.dim)),
      out(fpOut.size());
  QC_RETURN_IF_ERROR(moduleForward(c, w, g, inp, S, T, fpOut.data()));

  const std::vector<float> xMean = awqInputMean(inp, rows, K);
  std::vector<float> wMean;
  if (opts.duoScaling) {
    std::vector<const float *> ws;
    std::vector<int64_t> ns;
    for (BlockLinear l : awqGroupLayers(g)) {
      int64_t N, KK;
      blockLinearShape(c, l, N, KK);
      ws.push_back(w.linear(l).data());
      ns.push_back(N);
    }
    wMean = awqWeightMean(ws, ns, K, cfg.groupSize);
  }

  double bestLoss = std::numeric_limits<double>::infinity();
  BlockWeights trial;
  for (int i = 0; i < opts.nGrid; ++i) {
    const float ratio = static_cast<float>(i) / static_cast<float>(opts.nGrid);
    std::vector<float> s =
        awqScalesForRatio(xMean, wMean, ratio, opts.duoScaling);
    trial = w; // every trial starts from the unscaled weights
    quantizeScaledLayers(c, trial, g, s, cfg);
    QC_RETURN_IF_ERROR(moduleForward(c, trial, g, inp, S, T, out.data()));
    const double loss = mseOf(fpOut.data(), out.data(), rows * c.dim);
    res.losses.push_back(loss);
    if (loss < bestLoss) { // first strict minimum
      bestLoss = loss;
      res.bestIndex = i;
      res.bestRatio = ratio;
      res.scales = std::move(s);
    }
  }
  if (res.bestIndex < 0) {
    // Canonical handling of "no finite loss" (§4.3, §10.6): s = 1.
    res.fellBack = true;
    res.scales.assign(static_cast<size_t>(K), 1.0f);
  }
  return Status::ok();
}

/// §4.5 for one (scaled) linear W [N, K] with (scaled) inputs X [rows, K];
/// writes the chosen maxima [N * ng].
void clipSearch(const float *W, int64_t N, int64_t K, const float *X,
                int64_t rows, const QuantConfig &cfg, const AWQOptions &opts,
                std::vector<float> &best) {
  const Groups gr(K, cfg);
  // X[::step] with step = max(1, rows // n_sample_token).
  const int64_t step = std::max<int64_t>(1, rows / opts.nSampleTokens);
  const int64_t Ts = (rows + step - 1) / step;
  std::vector<float> Xs(static_cast<size_t>(Ts * K));
  for (int64_t t = 0; t < Ts; ++t)
    std::copy(X + t * step * K, X + (t * step + 1) * K, Xs.begin() + t * K);
  const int nShrink = static_cast<int>(
      std::floor(static_cast<double>(opts.maxShrink) * opts.clipGrid + 1e-9));

  best.assign(static_cast<size_t>(N * gr.ng), 0.0f);
  std::vector<double> ref(static_cast<size_t>(Ts));
  std::vector<float> wc(static_cast<size_t>(gr.G));
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t g = 0; g < gr.ng; ++g) {
      const int64_t k0 = gr.begin(g), k1 = gr.end(g, K), len = k1 - k0;
      const float *wg = W + n * K + k0;
      float m0 = 0.0f;
      for (int64_t k = 0; k < len; ++k)
        m0 = std::max(m0, std::fabs(wg[k]));
      for (int64_t t = 0; t < Ts; ++t) {
        double acc = 0.0;
        for (int64_t k = 0; k < len; ++k)
          acc += static_cast<double>(Xs[t * K + k0 + k]) * wg[k];
        ref[t] = acc;
      }
      double errBest = 1e9; // the reference's initial min_errs
      float bestM = m0;
      for (int i = 0; i < nShrink; ++i) {
        const float m =
            m0 * static_cast<float>(1.0 - double(i) / opts.clipGrid);
        for (int64_t k = 0; k < len; ++k)
          wc[k] = std::min(std::max(wg[k], -m), m);
        const AWQGrid grid = awqGrid(wc.data(), len, cfg);
        for (int64_t k = 0; k < len; ++k)
          wc[k] = grid.fake(wc[k]);
        double err = 0.0;
        for (int64_t t = 0; t < Ts; ++t) {
          double acc = 0.0;
          for (int64_t k = 0; k < len; ++k)
            acc += static_cast<double>(Xs[t * K + k0 + k]) * wc[k];
          const double d = acc - ref[t];
          err += d * d;
        }
        err /= static_cast<double>(Ts);
        if (err < errBest) {
          errBest = err;
          bestM = m;
        }
      }
      best[n * gr.ng + g] = bestM;
    }
  }
}

/// w[:, c] *= s[c] for w [N, K].
void scaleColumns(std::vector<float> &w, const std::vector<float> &s) {
  const int64_t K = static_cast<int64_t>(s.size());
  for (size_t i = 0; i < w.size(); ++i)
    w[i] *= s[i % K];
}

/// w[r, :] /= s[r] for w [N, K] with N = s.size().
void divideRows(std::vector<float> &w, const std::vector<float> &s) {
  const int64_t N = static_cast<int64_t>(s.size());
  const int64_t K = static_cast<int64_t>(w.size()) / N;
  for (int64_t r = 0; r < N; ++r)
    for (int64_t k = 0; k < K; ++k)
      w[r * K + k] /= s[r];
}

/// True when every element of v is finite.
bool allFinite(const std::vector<float> &v) {
  for (float x : v)
    if (!std::isfinite(x))
      return false;
  return true;
}

} // namespace

//===----------------------------------------------------------------------===//
// Groups and statistics
//===----------------------------------------------------------------------===//

const char *qc::quant::awqGroupName(AWQGroup g) {
  switch (g) {
  case AWQGroup::QKV:
    return "qkv";
  case AWQGroup::VO:
    return "v->o";
  case AWQGroup::GateUp:
    return "gate/up";
  case AWQGroup::UpDown:
    return "up->down";
  }
  return "?";
}

std::vector<BlockLinear> qc::quant::awqGroupLayers(AWQGroup g) {
  switch (g) {
  case AWQGroup::QKV:
    return {BlockLinear::Q, BlockLinear::K, BlockLinear::V};
  case AWQGroup::VO:
    return {BlockLinear::O};
  case AWQGroup::GateUp:
    return {BlockLinear::Gate, BlockLinear::Up};
  case AWQGroup::UpDown:
    return {BlockLinear::Down};
  }
  return {};
}

bool qc::quant::awqGroupApplies(const ModelConfig &c, AWQGroup g) {
  if (g != AWQGroup::VO)
    return true;
  int64_t vN, vK, oN, oK;
  blockLinearShape(c, BlockLinear::V, vN, vK);
  blockLinearShape(c, BlockLinear::O, oN, oK);
  return vN == oN && vK == oK;
}

std::vector<float> qc::quant::awqInputMean(const float *x, int64_t rows,
                                           int64_t K) {
  std::vector<double> acc(static_cast<size_t>(K), 0.0);
  for (int64_t t = 0; t < rows; ++t)
    for (int64_t k = 0; k < K; ++k)
      acc[k] += std::fabs(x[t * K + k]); // the abs matters (§4.2)
  std::vector<float> out(static_cast<size_t>(K));
  for (int64_t k = 0; k < K; ++k)
    out[k] = rows > 0 ? static_cast<float>(acc[k] / rows) : 0.0f;
  return out;
}

std::vector<float>
qc::quant::awqWeightMean(const std::vector<const float *> &ws,
                         const std::vector<int64_t> &rowsPerLayer, int64_t K,
                         int64_t groupSize) {
  QuantConfig geom;
  geom.groupSize = groupSize;
  const Groups gr(K, geom);
  std::vector<double> acc(static_cast<size_t>(K), 0.0);
  int64_t totalRows = 0;
  for (size_t li = 0; li < ws.size(); ++li) {
    const float *w = ws[li];
    for (int64_t n = 0; n < rowsPerLayer[li]; ++n) {
      for (int64_t g = 0; g < gr.ng; ++g) {
        const int64_t k0 = gr.begin(g), k1 = gr.end(g, K);
        float mx = 0.0f;
        for (int64_t k = k0; k < k1; ++k)
          mx = std::max(mx, std::fabs(w[n * K + k]));
        // +1e-6 keeps an all-zero group finite (§10.6).
        const float denom = mx + 1e-6f;
        for (int64_t k = k0; k < k1; ++k)
          acc[k] += std::fabs(w[n * K + k]) / denom;
      }
    }
    totalRows += rowsPerLayer[li];
  }
  std::vector<float> out(static_cast<size_t>(K));
  for (int64_t k = 0; k < K; ++k)
    out[k] = totalRows > 0 ? static_cast<float>(acc[k] / totalRows) : 0.0f;
  return out;
}

std::vector<float> qc::quant::awqScalesForRatio(const std::vector<float> &xMean,
                                                const std::vector<float> &wMean,
                                                float ratio, bool duo) {
  const size_t K = xMean.size();
  std::vector<float> s(K);
  bool anyNaN = false;
  for (size_t c = 0; c < K; ++c) {
    float v = std::pow(xMean[c], ratio); // pow(0, 0) == 1, as in torch
    if (duo)
      v = v / (std::pow(wMean[c], 1.0f - ratio) + 1e-4f);
    v = std::isnan(v) ? v : std::max(v, 1e-4f); // clamp keeps NaN
    anyNaN |= std::isnan(v);
    s[c] = v;
  }
  // s / sqrt(max(s) * min(s)); the product is formed in double so that it
  // neither overflows nor underflows for extreme but finite scales.
  double norm = std::numeric_limits<double>::quiet_NaN();
  if (!anyNaN && K > 0) {
    const auto mm = std::minmax_element(s.begin(), s.end());
    norm = std::sqrt(static_cast<double>(*mm.second) * *mm.first);
  }
  for (size_t c = 0; c < K; ++c) {
    float v = static_cast<float>(s[c] / norm);
    s[c] = std::isfinite(v) ? v : 1.0f; // inf / NaN -> 1 (§4.3)
  }
  return s;
}

//===----------------------------------------------------------------------===//
// Quantization
//===----------------------------------------------------------------------===//

void qc::quant::awqPseudoQuantize(const float *w, int64_t N, int64_t K,
                                  const QuantConfig &cfg, float *out) {
  const Groups gr(K, cfg);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t g = 0; g < gr.ng; ++g) {
      const int64_t k0 = gr.begin(g), k1 = gr.end(g, K);
      const AWQGrid grid = awqGrid(w + n * K + k0, k1 - k0, cfg);
      for (int64_t k = k0; k < k1; ++k)
        out[n * K + k] = grid.fake(w[n * K + k]);
    }
}

Status qc::quant::awqQuantizeWeight(const float *w, int64_t N, int64_t K,
                                    const QuantConfig &cfg,
                                    QuantizedWeight &out,
                                    const std::string &nameIn) {
  const std::string name = nameIn.empty() ? "weight" : nameIn;
  if (N <= 0 || K <= 0)
    return Status::error(name + ": empty weight shape");
  QC_RETURN_IF_ERROR(cfg.validate(K).withContext(name));
  QC_RETURN_IF_ERROR(checkFinite(w, N, K, name));
  const Groups gr(K, cfg);
  out.allocate(N, K, gr.ng, cfg);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t g = 0; g < gr.ng; ++g) {
      const int64_t k0 = gr.begin(g), k1 = gr.end(g, K);
      const AWQGrid grid = awqGrid(w + n * K + k0, k1 - k0, cfg);
      if (!std::isfinite(grid.scale) || grid.scale == 0.0f)
        return Status::error(name + ": scale of row " + std::to_string(n) +
                             ", group " + std::to_string(g) +
                             " is not representable in " +
                             scaleDTypeName(cfg.scaleDType));
      out.scales[g * N + n] = grid.scale;
      // Unsigned export: code = q - lo, zero = z - lo (lo = 0 for asym,
      // -2^(b-1) for sym), so s (code - zero) = s (q - z).
      out.zeros[g * N + n] = grid.zero - grid.lo;
      for (int64_t k = k0; k < k1; ++k)
        out.codes[n * K + k] =
            static_cast<uint8_t>(grid.code(w[n * K + k]) - grid.lo);
    }
  return out.verify().withContext(name);
}

Status qc::quant::awqGroupLoss(const ModelConfig &c, const BlockWeights &w,
                               AWQGroup g, const float *inp, int64_t S,
                               int64_t T, const std::vector<float> &scales,
                               const QuantConfig &cfg, double &loss) {
  QC_RETURN_IF_ERROR(w.validate(c));
  if (!awqGroupApplies(c, g))
    return Status::error(std::string("AWQ group ") + awqGroupName(g) +
                         " does not apply to this config");
  const int64_t K = groupInputWidth(c, g);
  if (!scales.empty() && static_cast<int64_t>(scales.size()) != K)
    return Status::error("awqGroupLoss: scales have the wrong size");
  const int64_t rows = S * T;
  std::vector<float> ref(static_cast<size_t>(rows * c.dim)), out(ref.size());
  QC_RETURN_IF_ERROR(moduleForward(c, w, g, inp, S, T, ref.data()));
  BlockWeights trial = w;
  quantizeScaledLayers(c, trial, g, scales, cfg);
  QC_RETURN_IF_ERROR(moduleForward(c, trial, g, inp, S, T, out.data()));
  loss = mseOf(ref.data(), out.data(), rows * c.dim);
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// Block driver
//===----------------------------------------------------------------------===//

Status qc::quant::awqSearchBlock(const ModelConfig &c, const BlockWeights &w,
                                 const float *x, int64_t S, int64_t T,
                                 const QuantConfig &cfg, const AWQOptions &opts,
                                 AWQBlockResult &out) {
  QC_RETURN_IF_ERROR(w.validate(c));
  if (S < 1 || T < 1)
    return Status::error("awqSearchBlock: need S >= 1 and T >= 1");
  if (opts.nGrid < 1 || opts.clipGrid < 1 || opts.nSampleTokens < 1 ||
      !(opts.maxShrink >= 0.0f && opts.maxShrink < 1.0f))
    return Status::error("awqSearchBlock: invalid options");
  for (BlockLinear l : kAllBlockLinears) {
    int64_t N, K;
    blockLinearShape(c, l, N, K);
    QC_RETURN_IF_ERROR(cfg.validate(K).withContext(blockLinearName(l)));
    QC_RETURN_IF_ERROR(
        checkFinite(w.linear(l).data(), N, K, blockLinearName(l)));
  }
  const int64_t rows = S * T;

  // Capture the four distinct linear inputs of the fp block (q/k/v share
  // one, gate/up share one) without keeping the other activations.
  std::array<std::vector<float>, kNumAWQGroups> inputs;
  const BlockLinear firstLayer[kNumAWQGroups] = {
      BlockLinear::Q, BlockLinear::O, BlockLinear::Gate, BlockLinear::Down};
  LinearInputHook hook = [&](BlockLinear l, const float *in, int64_t n,
                             int64_t cols) {
    for (int gi = 0; gi < kNumAWQGroups; ++gi)
      if (firstLayer[gi] == l)
        inputs[gi].insert(inputs[gi].end(), in, in + n * cols);
  };
  std::vector<float> y(static_cast<size_t>(rows * c.dim));
  QC_RETURN_IF_ERROR(blockForward(c, w, x, S, T, y.data(), nullptr, hook));

  out = AWQBlockResult();
  for (int gi = 0; gi < kNumAWQGroups; ++gi) {
    const AWQGroup g = static_cast<AWQGroup>(gi);
    out.groups[gi].group = g;
    if (!awqGroupApplies(c, g))
      continue; // v->o under GQA: skipped, applied = false
    QC_RETURN_IF_ERROR(
        searchGroup(c, w, g, inputs[gi].data(), S, T, cfg, opts, out.groups[gi])
            .withContext(std::string("AWQ group ") + awqGroupName(g)));
  }
  if (!opts.applyClip)
    return Status::ok();

  // Clip search on the scaled block with inputs divided by s (§4.4).
  BlockWeights scaled = w;
  QC_RETURN_IF_ERROR(applyAWQScales(scaled, out));
  for (int gi = 0; gi < kNumAWQGroups; ++gi) {
    const AWQGroupResult &gr = out.groups[gi];
    if (!gr.applied)
      continue;
    const int64_t K = static_cast<int64_t>(gr.scales.size());
    std::vector<float> &in = inputs[gi];
    for (size_t i = 0; i < in.size(); ++i)
      in[i] /= gr.scales[i % K];
  }
  for (BlockLinear l : kAllBlockLinears) {
    if (l == BlockLinear::Q || l == BlockLinear::K)
      continue; // never clipped (q_/k_ names, §4.5)
    int64_t N, K;
    blockLinearShape(c, l, N, K);
    int gi = 0;
    switch (l) {
    case BlockLinear::V:
      gi = 0;
      break;
    case BlockLinear::O:
      gi = 1;
      break;
    case BlockLinear::Gate:
    case BlockLinear::Up:
      gi = 2;
      break;
    default:
      gi = 3;
      break;
    }
    clipSearch(scaled.linear(l).data(), N, K, inputs[gi].data(), rows, cfg,
               opts, out.clipMax[blockLinearIndex(l)]);
  }
  return Status::ok();
}

Status qc::quant::applyAWQScales(BlockWeights &w, const AWQBlockResult &r) {
  for (const AWQGroupResult &gr : r.groups) {
    if (!gr.applied)
      continue;
    const std::vector<float> &s = gr.scales;
    const size_t K = s.size();
    auto fits = [&](const std::vector<float> &v, const char *what) -> Status {
      if (K == 0 || v.size() % K != 0)
        return Status::error(std::string("applyAWQScales: ") + what +
                             " does not match the " + awqGroupName(gr.group) +
                             " scales");
      return Status::ok();
    };
    for (float v : s)
      if (!(v > 0.0f) || !std::isfinite(v))
        return Status::error(std::string("applyAWQScales: non-positive or "
                                         "non-finite scale in group ") +
                             awqGroupName(gr.group));
    switch (gr.group) {
    case AWQGroup::QKV:
    case AWQGroup::GateUp: {
      std::vector<float> &norm =
          gr.group == AWQGroup::QKV ? w.inputNorm : w.postNorm;
      if (norm.size() != K)
        return Status::error("applyAWQScales: norm weight does not match the "
                             "scales");
      for (size_t c = 0; c < K; ++c)
        norm[c] /= s[c];
      break;
    }
    case AWQGroup::VO:
      QC_RETURN_IF_ERROR(fits(w.v, "v_proj"));
      if (w.v.size() / K != w.inputNorm.size())
        return Status::error("applyAWQScales: v_proj rows do not match the "
                             "v->o scales");
      divideRows(w.v, s);
      if (!w.vBias.empty()) {
        if (w.vBias.size() != K)
          return Status::error("applyAWQScales: v_proj bias size mismatch");
        for (size_t c = 0; c < K; ++c)
          w.vBias[c] /= s[c];
      }
      break;
    case AWQGroup::UpDown:
      QC_RETURN_IF_ERROR(fits(w.up, "up_proj"));
      if (w.up.size() / K != w.postNorm.size())
        return Status::error("applyAWQScales: up_proj rows do not match the "
                             "up->down scales");
      divideRows(w.up, s);
      break;
    }
    for (BlockLinear l : awqGroupLayers(gr.group)) {
      QC_RETURN_IF_ERROR(fits(w.linear(l), blockLinearName(l)));
      scaleColumns(w.linear(l), s);
    }
  }
  // Re-check after folding (§4.4, §10.6).
  if (!allFinite(w.inputNorm) || !allFinite(w.postNorm) || !allFinite(w.vBias))
    return Status::error("applyAWQScales: non-finite norm/bias after "
                         "folding");
  for (BlockLinear l : kAllBlockLinears)
    if (!allFinite(w.linear(l)))
      return Status::error(std::string("applyAWQScales: non-finite ") +
                           blockLinearName(l) + " after folding");
  return Status::ok();
}

Status qc::quant::applyAWQClip(const ModelConfig &c, BlockWeights &w,
                               const AWQBlockResult &r,
                               const QuantConfig &cfg) {
  QC_RETURN_IF_ERROR(w.validate(c));
  for (BlockLinear l : kAllBlockLinears) {
    const std::vector<float> &m = r.clipMax[blockLinearIndex(l)];
    if (m.empty())
      continue;
    std::vector<float> &W = w.linear(l);
    int64_t N, K;
    blockLinearShape(c, l, N, K);
    const Groups gr(K, cfg);
    if (static_cast<int64_t>(m.size()) != N * gr.ng)
      return Status::error(std::string("applyAWQClip: clip maxima of ") +
                           blockLinearName(l) +
                           " do not match the weight/group size");
    for (int64_t n = 0; n < N; ++n)
      for (int64_t g = 0; g < gr.ng; ++g) {
        const float mx = m[n * gr.ng + g];
        for (int64_t k = gr.begin(g); k < gr.end(g, K); ++k)
          W[n * K + k] = std::min(std::max(W[n * K + k], -mx), mx);
      }
  }
  return Status::ok();
}

Status qc::quant::awqQuantizeBlock(
    const ModelConfig &c, const BlockWeights &w, const QuantConfig &cfg,
    std::array<QuantizedWeight, kNumBlockLinears> &out) {
  QC_RETURN_IF_ERROR(w.validate(c));
  for (BlockLinear l : kAllBlockLinears) {
    int64_t N, K;
    blockLinearShape(c, l, N, K);
    QC_RETURN_IF_ERROR(awqQuantizeWeight(w.linear(l).data(), N, K, cfg,
                                         out[blockLinearIndex(l)],
                                         blockLinearName(l)));
  }
  return Status::ok();
}

Status qc::quant::awqBlock(const ModelConfig &c, BlockWeights &w,
                           const float *x, int64_t S, int64_t T,
                           const QuantConfig &cfg, const AWQOptions &opts,
                           std::array<QuantizedWeight, kNumBlockLinears> &out,
                           AWQBlockResult &result) {
  QC_RETURN_IF_ERROR(awqSearchBlock(c, w, x, S, T, cfg, opts, result));
  BlockWeights scaled = w;
  QC_RETURN_IF_ERROR(applyAWQScales(scaled, result));
  QC_RETURN_IF_ERROR(applyAWQClip(c, scaled, result, cfg));
  QC_RETURN_IF_ERROR(awqQuantizeBlock(c, scaled, cfg, out));
  w = std::move(scaled);
  return Status::ok();
}
