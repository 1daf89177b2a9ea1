//===- HQQ.cpp - Half-quadratic quantization ------------------------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Implements quantizeHQQ (../shared/docs/ALGORITHMS.md §5). Element-wise
// arithmetic is fp32 in the order of the hqq reference (W·σ + z, (W_q - z)
// / σ, W_q - (W - W_e)·σ); reductions (the whole-tensor error and the
// per-group mean that gives the new zero) are accumulated in fp64 so that
// they are deterministic and independent of any summation order, and the
// mean is then rounded to fp32 like the zero it defines.
//
//===----------------------------------------------------------------------===//

#include "qc/Quantization/Algorithms/HQQ.h"

#include <algorithm>
#include <cmath>
#include <limits>

using namespace qc;
using namespace qc::quant;

namespace {

/// Range at or below which a group's inverse scale is forced to 1 (§5.3):
/// qmax / range would explode, and with σ = 1 the float zero -min
/// reconstructs the (near-)constant group.
constexpr float kMinRange = 1e-4f;
/// Upper bound of the inverse scale, hqq's fp16 safety clamp (§5.3, §10.10).
constexpr float kMaxInvScale = 2e4f;

/// clamp(rne(v), 0, qmax): HQQ's code of W·σ + z.
inline float hqqCode(float v, float qmax) {
  float q = roundHalfEven(v);
  return q < 0.0f ? 0.0f : (q > qmax ? qmax : q);
}

} // namespace

float qc::quant::hqqShrink(float x, float beta, float p) {
  if (x == 0.0f)
    return 0.0f;
  const float ax = std::fabs(x);
  const float thresh = p == 1.0f ? 1.0f / beta : std::pow(ax, p - 1.0f) / beta;
  const float mag = std::max(ax - thresh, 0.0f);
  return std::copysign(mag, x);
}

Status HQQOptions::validate() const {
  if (!(lpNorm > 0.0f && lpNorm <= 1.0f))
    return Status::error("HQQ lp norm must be in (0, 1], got " +
                         std::to_string(lpNorm));
  if (!(beta > 0.0f) || !std::isfinite(beta))
    return Status::error("HQQ beta must be positive and finite");
  if (!(kappa >= 1.0f) || !std::isfinite(kappa))
    return Status::error("HQQ kappa must be >= 1 and finite");
  if (iters < 0)
    return Status::error("HQQ iteration count must be >= 0, got " +
                         std::to_string(iters));
  return Status::ok();
}

Status qc::quant::quantizeHQQ(const float *w, int64_t N, int64_t K,
                              const QuantConfig &cfg, const HQQOptions &opts,
                              QuantizedWeight &out, HQQReport *report,
                              const std::string &layerName) {
  const std::string ctx =
      layerName.empty() ? std::string("HQQ") : "HQQ '" + layerName + "'";
  if (N <= 0)
    return Status::error(
        ctx + ": invalid output-feature count N = " + std::to_string(N));
  QC_RETURN_IF_ERROR(cfg.validate(K).withContext(ctx));
  QC_RETURN_IF_ERROR(opts.validate().withContext(ctx));
  if (cfg.sym)
    return Status::error(ctx + ": HQQ is asymmetric only (set sym = false)");
  if (cfg.mseSearch)
    return Status::error(ctx + ": the MSE range search does not apply to HQQ");
  if (!w)
    return Status::error(ctx + ": null weight pointer");

  const int64_t G = cfg.effectiveGroupSize(K);
  if (opts.strictShapes) {
    // hqq reshapes the tensor to [-1, G]; only K % G == 0 keeps those groups
    // inside one row, which is what QuantizedWeight can represent.
    if (K % G != 0)
      return Status::error(ctx + ": K = " + std::to_string(K) +
                           " is not a multiple of the group size " +
                           std::to_string(G) +
                           " (hqq requires it; pad K or disable strictShapes)");
    if (cfg.groupSize > 0 && G % 8 != 0)
      return Status::error(ctx + ": group size " + std::to_string(G) +
                           " is not a multiple of 8 (hqq requires it)");
  }
  QC_RETURN_IF_ERROR(checkFinite(w, N, K, layerName));

  const int64_t ng = numGroupsFor(K, cfg.groupSize);
  const float qmax = static_cast<float>(cfg.qmax());
  const bool roundInit =
      opts.roundZeroInit == HQQRoundZero::Always ||
      (opts.roundZeroInit == HQQRoundZero::Auto && cfg.bits == 4);

  // Per (row, group) state, indexed n * ng + g (row-major walk order).
  std::vector<float> sigma(static_cast<size_t>(N * ng));
  std::vector<float> zero(sigma.size());

  // §5.3 initialization from the raw (0 not forced in) min and max.
  for (int64_t n = 0; n < N; ++n) {
    const float *row = w + n * K;
    for (int64_t g = 0; g < ng; ++g) {
      const int64_t k0 = g * G, k1 = std::min(K, k0 + G);
      float mn = row[k0], mx = row[k0];
      for (int64_t k = k0 + 1; k < k1; ++k) {
        mn = std::min(mn, row[k]);
        mx = std::max(mx, row[k]);
      }
      const float range = mx - mn;
      const bool degenerate = range <= kMinRange;
      float s = degenerate ? 1.0f : qmax / range;
      s = std::min(s, kMaxInvScale);
      float z = -mn * s;
      if (roundInit && !degenerate)
        z = roundHalfEven(z);
      sigma[n * ng + g] = s;
      zero[n * ng + g] = z;
    }
  }

  // §5.4 zero-only half-quadratic solver. Each pass evaluates the current
  // zeros (the error decides whether they are the best so far) and computes
  // the candidate update from the same W_q / W_r; the candidate is only
  // adopted if the loop continues.
  std::vector<float> bestZero = zero, next(zero.size());
  double bestErr = std::numeric_limits<double>::infinity();
  float beta = opts.beta;
  const float p = opts.lpNorm;
  const double total = static_cast<double>(N) * static_cast<double>(K);
  HQQReport rep;
  for (int t = 0; t < opts.iters; ++t) {
    double errSum = 0.0;
    for (int64_t n = 0; n < N; ++n) {
      const float *row = w + n * K;
      for (int64_t g = 0; g < ng; ++g) {
        const int64_t k0 = g * G, k1 = std::min(K, k0 + G);
        const float s = sigma[n * ng + g], z = zero[n * ng + g];
        double acc = 0.0;
        for (int64_t k = k0; k < k1; ++k) {
          const float x = row[k];
          const float wq = hqqCode(x * s + z, qmax);
          const float wr = (wq - z) / s;
          const float e = x - wr;
          errSum += std::fabs(static_cast<double>(e));
          const float we = hqqShrink(e, beta, p);
          acc += static_cast<double>(wq - (x - we) * s);
        }
        next[n * ng + g] =
            static_cast<float>(acc / static_cast<double>(k1 - k0));
      }
    }
    const double err = errSum / total;
    rep.errors.push_back(err);
    if (err < bestErr) {
      bestErr = err;
      bestZero = zero;
      rep.acceptedIters = t;
    } else if (opts.earlyStop) {
      // Keep the zeros that produced the best error (canonical; the legacy
      // hqq path would keep the update of this failed step instead).
      rep.earlyStopped = true;
      break;
    }
    zero.swap(next);
    beta *= opts.kappa;
  }
  // The update of the last iteration is never evaluated and so never
  // adopted: bestZero is the last zero vector whose error was measured
  // (§14.4), or the initialization when iters == 0.

  QuantConfig outCfg = cfg;
  out.allocate(N, K, ng, outCfg);
  for (int64_t n = 0; n < N; ++n) {
    const float *row = w + n * K;
    uint8_t *codes = out.codes.data() + n * K;
    for (int64_t g = 0; g < ng; ++g) {
      const int64_t k0 = g * G, k1 = std::min(K, k0 + G);
      const float s = sigma[n * ng + g];
      float z = bestZero[n * ng + g];
      if (opts.roundZeros)
        z = std::min(std::max(roundHalfEven(z), 0.0f), qmax);
      else
        z = castToScaleDType(z, opts.zeroDType);
      if (!std::isfinite(z))
        return Status::error(ctx + ": zero point of row " + std::to_string(n) +
                             ", group " + std::to_string(g) +
                             " overflows its " +
                             scaleDTypeName(opts.zeroDType) + " storage dtype");
      const float scale = castToScaleDType(1.0f / s, cfg.scaleDType);
      if (!std::isfinite(scale) || scale == 0.0f)
        return Status::error(ctx + ": scale of row " + std::to_string(n) +
                             ", group " + std::to_string(g) +
                             " is not representable in the " +
                             scaleDTypeName(cfg.scaleDType) +
                             " storage dtype (weights too large)");
      out.scales[g * N + n] = scale;
      out.zeros[g * N + n] = z;
      // Codes use the inverse scale, as hqq does; dequantization uses the
      // stored scale 1/σ.
      for (int64_t k = k0; k < k1; ++k)
        codes[k] = static_cast<uint8_t>(hqqCode(row[k] * s + z, qmax));
    }
  }

  if (report) {
    std::vector<float> wq;
    out.dequantize(wq);
    double errSum = 0.0;
    for (int64_t i = 0; i < N * K; ++i)
      errSum +=
          std::fabs(static_cast<double>(w[i]) - static_cast<double>(wq[i]));
    rep.finalError = errSum / total;
    *report = std::move(rep);
  }
  return Status::ok();
}
