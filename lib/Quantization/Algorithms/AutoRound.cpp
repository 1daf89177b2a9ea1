//===- AutoRound.cpp - SignRound block-wise weight rounding ---------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// The tunable quantizer of ../shared/docs/ALGORITHMS.md §6.1 with its
// straight-through backward, and the block-wise SignSGD reconstruction loop
// of §6.2 on top of the fp32 BlockReference forward/backward.
//
//===----------------------------------------------------------------------===//

#include "qc/Quantization/Algorithms/AutoRound.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

using namespace qc;
using namespace qc::quant;

//===----------------------------------------------------------------------===//
// Quantizer
//===----------------------------------------------------------------------===//

Status AutoRoundQuantizer::init(const float *wIn, int64_t rowsIn,
                                int64_t colsIn, const QuantConfig &cfgIn,
                                const std::string &nameIn) {
  cfg = cfgIn;
  name = nameIn.empty() ? std::string("weight") : nameIn;
  if (rowsIn <= 0 || colsIn <= 0)
    return Status::error(name + ": empty weight shape");
  QC_RETURN_IF_ERROR(cfg.validate(colsIn).withContext(name));
  QC_RETURN_IF_ERROR(checkFinite(wIn, rowsIn, colsIn, name));
  N = rowsIn;
  K = colsIn;
  G = cfg.effectiveGroupSize(K);
  ng = numGroupsFor(K, cfg.groupSize);
  w.assign(wIn, wIn + N * K);
  wmin0.assign(static_cast<size_t>(N * ng), 0.0f);
  wmax0.assign(static_cast<size_t>(N * ng), 0.0f);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t g = 0; g < ng; ++g) {
      const int64_t k0 = g * G, k1 = std::min(K, k0 + G);
      // §6.1: the range always contains 0; fixed from the original weight.
      float lo = 0.0f, hi = 0.0f;
      for (int64_t k = k0; k < k1; ++k) {
        lo = std::min(lo, w[n * K + k]);
        hi = std::max(hi, w[n * K + k]);
      }
      wmin0[n * ng + g] = lo;
      wmax0[n * ng + g] = hi;
    }
  params.v.assign(static_cast<size_t>(N * K), 0.0f);
  params.alpha.assign(static_cast<size_t>(N * ng), 1.0f);
  params.beta.assign(static_cast<size_t>(N * ng), 1.0f);
  scale.assign(static_cast<size_t>(N * ng), 0.0f);
  zero.assign(static_cast<size_t>(N * ng), 0.0f);
  scalePass.assign(static_cast<size_t>(N * ng), 0);
  qint.assign(static_cast<size_t>(N * K), 0);
  inRange.assign(static_cast<size_t>(N * K), 0);
  return Status::ok();
}

Status AutoRoundQuantizer::forward(std::vector<float> &wq) {
  if (static_cast<int64_t>(params.v.size()) != N * K ||
      static_cast<int64_t>(params.alpha.size()) != N * ng ||
      static_cast<int64_t>(params.beta.size()) != N * ng)
    return Status::error(name + ": AutoRound parameters have the wrong size");
  wq.resize(static_cast<size_t>(N * K));
  const float floorMag = minScaleMagnitude(cfg.scaleDType);
  const float qmax = static_cast<float>(cfg.qmax());
  const float half = static_cast<float>(1 << (cfg.bits - 1)); // 2^(b-1)
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t g = 0; g < ng; ++g) {
      const int64_t gi = n * ng + g;
      // minmax_scale_bound = (0, 1), applied in place like the reference's
      // `.data.clamp_` so the stored parameter stays inside the bound.
      float &a = params.alpha[gi];
      float &b = params.beta[gi];
      a = std::min(std::max(a, 0.0f), 1.0f);
      b = std::min(std::max(b, 0.0f), 1.0f);
      const float wmin = wmin0[gi] * b, wmax = wmax0[gi] * a;
      float s16, s;
      bool pass;
      if (!cfg.sym) {
        s16 = castToScaleDType((wmax - wmin) / qmax, cfg.scaleDType);
        // torch.clamp(min=) passes the gradient where input >= min.
        pass = s16 >= floorMag;
        s = pass ? s16 : floorMag;
      } else {
        // Signed "full range" scale: the dominant side maps to -2^(b-1).
        const float aNeg = -wmin, aPos = wmax;
        const float mx = std::max(aPos, aNeg);
        const float m = aPos < aNeg ? mx : -mx;
        s16 = castToScaleDType(m / half, cfg.scaleDType);
        if (s16 < 0.0f) {
          pass = s16 <= -floorMag;
          s = pass ? s16 : -floorMag;
        } else { // includes -0.0, which torch.where(scale < 0) sends here
          pass = s16 >= floorMag;
          s = pass ? s16 : floorMag;
        }
      }
      if (!std::isfinite(s16))
        return Status::error(name + ": scale of row " + std::to_string(n) +
                             ", group " + std::to_string(g) + " overflows " +
                             scaleDTypeName(cfg.scaleDType));
      scale[gi] = s;
      scalePass[gi] = pass ? 1 : 0;
      float zp = 0.0f;
      if (!cfg.sym) {
        zp = roundHalfEven(-wmin / s);
        zp = std::min(std::max(zp, 0.0f), qmax); // see the header note
      }
      zero[gi] = zp;
      const float lo = cfg.sym ? -half : 0.0f;
      const float hi = cfg.sym ? half - 1.0f : qmax;
      const int64_t k0 = g * G, k1 = std::min(K, k0 + G);
      for (int64_t k = k0; k < k1; ++k) {
        const int64_t i = n * K + k;
        const float c = roundHalfEven(w[i] / s + params.v[i]) + zp;
        const float q = std::min(std::max(c, lo), hi);
        inRange[i] = (c >= lo && c <= hi) ? 1 : 0;
        qint[i] = static_cast<int16_t>(q);
        wq[i] = s * (q - zp);
      }
    }
  }
  return Status::ok();
}

void AutoRoundQuantizer::backward(const float *dwq, std::vector<float> &dv,
                                  std::vector<float> &dalpha,
                                  std::vector<float> &dbeta) const {
  dv.assign(static_cast<size_t>(N * K), 0.0f);
  dalpha.assign(static_cast<size_t>(N * ng), 0.0f);
  dbeta.assign(static_cast<size_t>(N * ng), 0.0f);
  const float qmax = static_cast<float>(cfg.qmax());
  const float half = static_cast<float>(1 << (cfg.bits - 1));
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t g = 0; g < ng; ++g) {
      const int64_t gi = n * ng + g;
      const float s = scale[gi], zp = zero[gi];
      const float a = params.alpha[gi], b = params.beta[gi];
      const float wmin = wmin0[gi] * b, wmax = wmax0[gi] * a;
      const int64_t k0 = g * G, k1 = std::min(K, k0 + G);
      // Ŵ = s (q - zp), q = clamp(round(W/s + V) + zp); with straight-
      // through rounding and clamp mask m:
      //   dŴ/dV    = s m
      //   dŴ/ds    = (q - zp) - m W/s - (1 - m) wmin/s   (asym, via zp)
      //   dŴ/dwmin = 1 - m                               (asym, via zp)
      //   dŴ/ds    = q - m W/s                           (sym, zp = 0)
      float gs = 0.0f, gwminDirect = 0.0f;
      for (int64_t k = k0; k < k1; ++k) {
        const int64_t i = n * K + k;
        const float gd = dwq[i];
        const bool m = inRange[i] != 0;
        const float q = static_cast<float>(qint[i]);
        dv[i] = m ? gd * s : 0.0f;
        if (!cfg.sym) {
          gs += gd * ((q - zp) - (m ? w[i] / s : wmin / s));
          if (!m)
            gwminDirect += gd;
        } else {
          gs += gd * (q - (m ? w[i] / s : 0.0f));
        }
      }
      // The floor clamp blocks the gradient where it was active; the
      // storage cast is an identity for autograd.
      const float gs16 = scalePass[gi] ? gs : 0.0f;
      float gWmax, gWmin;
      if (!cfg.sym) {
        gWmax = gs16 / qmax;
        gWmin = gwminDirect - gs16 / qmax;
      } else {
        const float aNeg = -wmin, aPos = wmax;
        const float gm = gs16 / half;
        const float gmx = aPos < aNeg ? gm : -gm; // sign is a constant
        float gPos = 0.0f, gNeg = 0.0f;
        if (aPos > aNeg)
          gPos = gmx;
        else if (aPos < aNeg)
          gNeg = gmx;
        else
          gPos = gNeg = 0.5f * gmx; // torch.max(a, b) splits ties
        gWmax = gPos;
        gWmin = -gNeg; // aNeg = -wmin
      }
      dalpha[gi] = gWmax * wmax0[gi];
      dbeta[gi] = gWmin * wmin0[gi];
    }
  }
}

Status AutoRoundQuantizer::exportWeight(QuantizedWeight &out) {
  std::vector<float> wq;
  QC_RETURN_IF_ERROR(forward(wq));
  out.allocate(N, K, ng, cfg);
  const int half = 1 << (cfg.bits - 1);
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t g = 0; g < ng; ++g) {
      const int64_t gi = n * ng + g;
      out.scales[g * N + n] = scale[gi];
      // Symmetric codes are signed; the unsigned export shifts them by
      // 2^(b-1) and stores that as the zero point (§6.1).
      out.zeros[g * N + n] = cfg.sym ? static_cast<float>(half) : zero[gi];
    }
    for (int64_t k = 0; k < K; ++k) {
      const int64_t i = n * K + k;
      out.codes[i] = static_cast<uint8_t>(qint[i] + (cfg.sym ? half : 0));
    }
  }
  return out.verify().withContext(name);
}

//===----------------------------------------------------------------------===//
// Block reconstruction
//===----------------------------------------------------------------------===//

namespace {

/// Uniform integer in [0, n) by rejection, so the draw depends only on the
/// (standardized) mt19937_64 output and not on the library's distribution.
uint64_t uniformBelow(std::mt19937_64 &rng, uint64_t n) {
  const uint64_t maxv = std::numeric_limits<uint64_t>::max();
  const uint64_t limit = maxv - maxv % n; // multiple of n
  uint64_t x;
  do
    x = rng();
  while (x >= limit);
  return x % n;
}

/// Mean squared error between a [rows*D] output and target, in double.
double mse(const float *y, const float *t, int64_t n) {
  double acc = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(y[i]) - t[i];
    acc += d * d;
  }
  return acc / static_cast<double>(n);
}

/// torch.sign: -1, 0 or +1 (a zero gradient leaves the parameter alone).
inline float signOf(float x) {
  return x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : 0.0f);
}

} // namespace

Status
qc::quant::autoRoundBlock(const ModelConfig &config, const BlockWeights &fp,
                          const float *xIn, const float *yTarget, int64_t S,
                          int64_t T, const QuantConfig &qcfg,
                          const AutoRoundOptions &opts,
                          std::array<QuantizedWeight, kNumBlockLinears> &out,
                          AutoRoundReport &report) {
  QC_RETURN_IF_ERROR(fp.validate(config));
  if (S < 1 || T < 1)
    return Status::error("autoRoundBlock: need S >= 1 and T >= 1");
  if (opts.iters < 0 || opts.batchSize < 1)
    return Status::error("autoRoundBlock: iters must be >= 0 and batchSize "
                         ">= 1");
  if (!xIn || !yTarget)
    return Status::error("autoRoundBlock: missing inputs or targets");
  const int64_t D = config.dim;

  std::array<AutoRoundQuantizer, kNumBlockLinears> quant;
  for (BlockLinear l : kAllBlockLinears) {
    int64_t N, K;
    blockLinearShape(config, l, N, K);
    QC_RETURN_IF_ERROR(quant[blockLinearIndex(l)].init(
        fp.linear(l).data(), N, K, qcfg, blockLinearName(l)));
  }
  // Working block: fp norms and biases, fake-quantized linears.
  BlockWeights wq = fp;
  auto refresh = [&]() -> Status {
    for (BlockLinear l : kAllBlockLinears)
      QC_RETURN_IF_ERROR(quant[blockLinearIndex(l)].forward(wq.linear(l)));
    return Status::ok();
  };
  auto fullLoss = [&](double &loss) -> Status {
    QC_RETURN_IF_ERROR(refresh());
    std::vector<float> y(static_cast<size_t>(S * T * D));
    QC_RETURN_IF_ERROR(blockForward(config, wq, xIn, S, T, y.data()));
    loss = mse(y.data(), yTarget, S * T * D);
    return Status::ok();
  };

  report = AutoRoundReport();
  report.bestLoss = std::numeric_limits<double>::infinity();
  if (opts.reportFullLosses)
    QC_RETURN_IF_ERROR(fullLoss(report.rtnLoss));

  const int iters = opts.iters;
  const float lr = opts.lr > 0.0f ? opts.lr : (iters > 0 ? 1.0f / iters : 0);
  const float minmaxLr = opts.minmaxLr > 0.0f ? opts.minmaxLr : lr;
  const int64_t B = std::min<int64_t>(opts.batchSize, S);
  report.batch = B;
  const int64_t batchElems = B * T * D;

  std::array<AutoRoundParams, kNumBlockLinears> best;
  for (int i = 0; i < kNumBlockLinears; ++i)
    best[i] = quant[i].params;

  std::mt19937_64 rng(opts.seed);
  std::vector<int64_t> perm(static_cast<size_t>(S));
  std::vector<float> xb(static_cast<size_t>(batchElems)),
      yb(static_cast<size_t>(batchElems)), y(static_cast<size_t>(batchElems)),
      dy(static_cast<size_t>(batchElems));
  std::vector<float> dv, da, db;
  BlockActivations acts;
  BlockGradients grads;
  for (int t = 0; t < iters; ++t) {
    // Sampler "rand": a fresh random subset every step (randperm[:B]).
    std::iota(perm.begin(), perm.end(), int64_t(0));
    if (B < S)
      for (int64_t i = 0; i < B; ++i) {
        const int64_t j =
            i + static_cast<int64_t>(uniformBelow(rng, uint64_t(S - i)));
        std::swap(perm[i], perm[j]);
      }
    for (int64_t i = 0; i < B; ++i) {
      const int64_t s = perm[i];
      report.batchIndices.push_back(s);
      std::copy(xIn + s * T * D, xIn + (s + 1) * T * D, xb.begin() + i * T * D);
      std::copy(yTarget + s * T * D, yTarget + (s + 1) * T * D,
                yb.begin() + i * T * D);
    }

    QC_RETURN_IF_ERROR(refresh());
    QC_RETURN_IF_ERROR(
        blockForward(config, wq, xb.data(), B, T, y.data(), &acts));
    const double loss = mse(y.data(), yb.data(), batchElems);
    report.lossHistory.push_back(loss);
    if (!std::isfinite(loss))
      return Status::error("autoRoundBlock: non-finite loss at step " +
                           std::to_string(t));
    // The loss belongs to the parameters BEFORE this step's update.
    if (loss < report.bestLoss) {
      report.bestLoss = loss;
      report.bestIter = t;
      for (int i = 0; i < kNumBlockLinears; ++i)
        best[i] = quant[i].params;
    }

    // d mean((y - t)^2) / dy. The reference scales the loss by 1000 before
    // backward; SignSGD only sees signs, so that factor is left out.
    const float k2 = 2.0f / static_cast<float>(batchElems);
    for (int64_t i = 0; i < batchElems; ++i)
      dy[i] = k2 * (y[i] - yb[i]);
    QC_RETURN_IF_ERROR(blockBackward(config, wq, acts, dy.data(), grads));

    // SignSGD with LinearLR(1 -> 0): lr_t = lr (1 - t/iters).
    const float decay = 1.0f - static_cast<float>(t) / iters;
    const float lrT = lr * decay, mmT = minmaxLr * decay;
    report.lrHistory.push_back(lrT);
    for (int li = 0; li < kNumBlockLinears; ++li) {
      quant[li].backward(grads.weight[li].data(), dv, da, db);
      AutoRoundParams &p = quant[li].params;
      for (size_t i = 0; i < p.v.size(); ++i)
        p.v[i] -= lrT * signOf(dv[i]);
      if (opts.enableMinmaxTuning)
        for (size_t i = 0; i < p.alpha.size(); ++i) {
          p.alpha[i] -= mmT * signOf(da[i]);
          p.beta[i] -= mmT * signOf(db[i]);
        }
    }
  }

  // not_use_best_mse = False: quantize with the best parameters.
  for (int i = 0; i < kNumBlockLinears; ++i)
    quant[i].params = best[i];
  if (opts.reportFullLosses)
    QC_RETURN_IF_ERROR(fullLoss(report.finalLoss));
  for (int i = 0; i < kNumBlockLinears; ++i) {
    QC_RETURN_IF_ERROR(quant[i].exportWeight(out[i]));
    // exportWeight clamps alpha/beta like every forward; report those.
    report.params[i] = quant[i].params;
  }
  return Status::ok();
}
