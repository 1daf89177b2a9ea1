//===- Common.cpp - Uniform group-wise quantization primitives --*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Implements the canonical min-max grid, the MSE range search, RTN
// quantization, the QuantizedWeight helpers and the layer-loss helper
// declared in Common.h (../shared/docs/ALGORITHMS.md §0, §1). All arithmetic
// that defines a code is done in fp32 in the same order as the Python
// references so that results are reproducible bit for bit; only reductions
// that never feed a code (errors, losses) are accumulated in fp64.
//
//===----------------------------------------------------------------------===//

#include "qc/Quantization/Algorithms/Common.h"

#include "qc/runtime/Safetensors.h"

#include <algorithm>
#include <cmath>
#include <limits>

using namespace qc;
using namespace qc::quant;

//===----------------------------------------------------------------------===//
// Scalars
//===----------------------------------------------------------------------===//

const char *qc::quant::scaleDTypeName(ScaleDType dtype) {
  switch (dtype) {
  case ScaleDType::F16:
    return "f16";
  case ScaleDType::BF16:
    return "bf16";
  case ScaleDType::F32:
    return "f32";
  }
  return "?";
}

float qc::quant::castToScaleDType(float x, ScaleDType dtype) {
  switch (dtype) {
  case ScaleDType::F16:
    return f16ToF32(f32ToF16(x));
  case ScaleDType::BF16:
    return bf16ToF32(f32ToBF16(x));
  case ScaleDType::F32:
    return x;
  }
  return x;
}

float qc::quant::minScaleMagnitude(ScaleDType dtype) {
  // 1e-5 is not representable in fp16/bf16; take the nearest storage value
  // and step up one ulp if rounding went below, so that the floor both
  // satisfies |s| >= 1e-5 and survives the storage round trip unchanged.
  const float target = 1e-5f;
  switch (dtype) {
  case ScaleDType::F16: {
    uint16_t h = f32ToF16(target);
    float v = f16ToF32(h);
    return v < target ? f16ToF32(static_cast<uint16_t>(h + 1)) : v;
  }
  case ScaleDType::BF16: {
    uint16_t h = f32ToBF16(target);
    float v = bf16ToF32(h);
    return v < target ? bf16ToF32(static_cast<uint16_t>(h + 1)) : v;
  }
  case ScaleDType::F32:
    return target;
  }
  return target;
}

//===----------------------------------------------------------------------===//
// QuantConfig
//===----------------------------------------------------------------------===//

Status QuantConfig::validate(int64_t K) const {
  if (bits != 2 && bits != 3 && bits != 4 && bits != 8)
    return Status::error("unsupported bit width " + std::to_string(bits) +
                         " (expected 2, 3, 4 or 8)");
  if (groupSize == 0 || groupSize < -1)
    return Status::error("invalid group size " + std::to_string(groupSize) +
                         " (expected -1 for per-channel or a positive size)");
  if (K <= 0)
    return Status::error("invalid input-feature count K = " +
                         std::to_string(K));
  if (mseSearch) {
    if (!(mseGrid >= 1.0f) || !std::isfinite(mseGrid))
      return Status::error("MSE search grid must be >= 1");
    if (!(mseMaxShrink > 0.0f && mseMaxShrink <= 1.0f))
      return Status::error("MSE max shrink must be in (0, 1]");
    if (!(mseNorm > 0.0f) || !std::isfinite(mseNorm))
      return Status::error("MSE norm must be positive");
  }
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// Group parameters
//===----------------------------------------------------------------------===//

/// Grid for the range [xmin, xmax] (xmin <= 0 <= xmax, not both zero): the
/// scale is cast to storage and floored before the zero point is derived,
/// so (q, s, z) reproduce the fake-quantized value exactly (§0, §1.6).
static GroupParams makeParams(float xmin, float xmax, const QuantConfig &cfg) {
  const int qmax = cfg.qmax();
  GroupParams p;
  float s = (xmax - xmin) / static_cast<float>(qmax);
  s = castToScaleDType(s, cfg.scaleDType);
  const float floorMag = minScaleMagnitude(cfg.scaleDType);
  // NaN-safe: !(|s| >= floor) also catches a NaN scale.
  if (!(std::fabs(s) >= floorMag))
    s = std::signbit(s) ? -floorMag : floorMag;
  p.scale = s;
  if (cfg.sym) {
    p.zero = static_cast<float>(1 << (cfg.bits - 1));
  } else {
    // In exact arithmetic -xmin/s lies in [0, qmax]; the storage cast can
    // shrink s by half an ulp and push it a hair past qmax, and the scale
    // floor can only pull it towards 0, so clamping never moves an
    // integer the reference would produce.
    float z = roundHalfEven(-xmin / s);
    z = std::min(std::max(z, 0.0f), static_cast<float>(qmax));
    p.zero = z;
  }
  return p;
}

GroupParams qc::quant::computeGroupParams(const float *x, int64_t n,
                                          const QuantConfig &cfg) {
  // §1.1: the range always contains 0.
  float xmin = 0.0f, xmax = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    xmin = std::min(xmin, x[i]);
    xmax = std::max(xmax, x[i]);
  }
  if (cfg.sym) {
    // §1.2 canonical: always symmetric around 0 (not the AutoGPTQ #293
    // behaviour that keeps xmin = 0 for all-non-negative groups).
    xmax = std::max(-xmin, xmax);
    xmin = -xmax;
  }
  if (xmin == 0.0f && xmax == 0.0f) {
    xmin = -1.0f;
    xmax = 1.0f;
  }
  GroupParams best = makeParams(xmin, xmax, cfg);
  if (!cfg.mseSearch)
    return best;

  // §1.5 shrink search. The product is formed in fp32 like the Python
  // int(maxshrink * grid) on fp32 tensors would see it; the tiny tolerance
  // keeps e.g. 0.7f * 100 from truncating to 69.
  const float prod = cfg.mseMaxShrink * cfg.mseGrid;
  const int64_t steps = static_cast<int64_t>(std::floor(prod + 1e-4f));
  const int bits = cfg.bits;
  const double norm = cfg.mseNorm;
  double bestErr = std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < steps; ++i) {
    const float p = static_cast<float>(
        1.0 - static_cast<double>(i) / static_cast<double>(cfg.mseGrid));
    GroupParams cand = makeParams(p * xmin, p * xmax, cfg);
    double err = 0.0;
    for (int64_t k = 0; k < n; ++k) {
      double d =
          std::fabs(static_cast<double>(fakeQuantize(x[k], cand, bits) - x[k]));
      err += norm == 2.0 ? d * d : std::pow(d, norm);
    }
    // Strict comparison: the first (unshrunk) candidate wins ties, so the
    // search can never be worse than plain min-max.
    if (err < bestErr) {
      bestErr = err;
      best = cand;
    }
  }
  return best;
}

//===----------------------------------------------------------------------===//
// QuantizedWeight
//===----------------------------------------------------------------------===//

int64_t QuantizedWeight::numGroups() const {
  return numGroupsFor(cols, groupSize);
}

int64_t QuantizedWeight::groupOf(int64_t k) const {
  if (!gIdx.empty())
    return gIdx[k];
  if (groupSize <= 0)
    return 0;
  return k / groupSize;
}

bool QuantizedWeight::hasTrivialGIdx() const {
  if (gIdx.empty())
    return true;
  for (int64_t k = 0; k < cols; ++k) {
    int64_t expect = groupSize <= 0 ? 0 : k / groupSize;
    if (gIdx[k] != expect)
      return false;
  }
  return true;
}

void QuantizedWeight::allocate(int64_t N, int64_t K, int64_t ngroups,
                               const QuantConfig &cfg) {
  rows = N;
  cols = K;
  bits = cfg.bits;
  groupSize = cfg.groupSize;
  sym = cfg.sym;
  scaleDType = cfg.scaleDType;
  codes.assign(static_cast<size_t>(N * K), 0);
  scales.assign(static_cast<size_t>(ngroups * N), 0.0f);
  zeros.assign(static_cast<size_t>(ngroups * N), 0.0f);
  gIdx.clear();
}

void QuantizedWeight::dequantize(std::vector<float> &w) const {
  w.resize(static_cast<size_t>(rows * cols));
  std::vector<int64_t> groupOfCol(static_cast<size_t>(cols));
  for (int64_t k = 0; k < cols; ++k)
    groupOfCol[k] = groupOf(k);
  for (int64_t n = 0; n < rows; ++n) {
    const uint8_t *q = codes.data() + n * cols;
    float *dst = w.data() + n * cols;
    for (int64_t k = 0; k < cols; ++k)
      dst[k] = dequantizeCode(q[k], params(groupOfCol[k], n));
  }
}

Status QuantizedWeight::verify() const {
  if (rows <= 0 || cols <= 0)
    return Status::error("quantized weight has an empty shape");
  if (bits != 2 && bits != 3 && bits != 4 && bits != 8)
    return Status::error("quantized weight has unsupported bit width " +
                         std::to_string(bits));
  const int64_t ng = numGroups();
  if (static_cast<int64_t>(codes.size()) != rows * cols)
    return Status::error("codes buffer has " + std::to_string(codes.size()) +
                         " entries, expected " + std::to_string(rows * cols));
  if (static_cast<int64_t>(scales.size()) != ng * rows ||
      static_cast<int64_t>(zeros.size()) != ng * rows)
    return Status::error("scales/zeros buffers do not hold numGroups * N = " +
                         std::to_string(ng * rows) + " entries");
  if (!gIdx.empty() && static_cast<int64_t>(gIdx.size()) != cols)
    return Status::error("g_idx has " + std::to_string(gIdx.size()) +
                         " entries, expected K = " + std::to_string(cols));
  for (size_t k = 0; k < gIdx.size(); ++k)
    if (gIdx[k] < 0 || gIdx[k] >= ng)
      return Status::error("g_idx[" + std::to_string(k) + "] = " +
                           std::to_string(gIdx[k]) + " is out of range");
  const int qmax = qmaxForBits(bits);
  for (size_t i = 0; i < codes.size(); ++i)
    if (codes[i] > qmax)
      return Status::error("code at flat index " + std::to_string(i) +
                           " exceeds qmax " + std::to_string(qmax));
  for (size_t i = 0; i < scales.size(); ++i)
    if (!std::isfinite(scales[i]) || scales[i] == 0.0f ||
        !std::isfinite(zeros[i]))
      return Status::error("scale/zero at flat index " + std::to_string(i) +
                           " is zero or not finite");
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// RTN and helpers
//===----------------------------------------------------------------------===//

Status qc::quant::checkFinite(const float *w, int64_t N, int64_t K,
                              const std::string &layerName, const char *what) {
  const int64_t total = N * K;
  for (int64_t i = 0; i < total; ++i) {
    if (!std::isfinite(w[i])) {
      std::string where = layerName.empty() ? std::string("layer")
                                            : "layer '" + layerName + "'";
      return Status::error(
          where + ": non-finite " + what + " " + std::to_string(w[i]) +
          " at flat index " + std::to_string(i) + " (row " +
          std::to_string(i / K) + ", column " + std::to_string(i % K) + ")");
    }
  }
  return Status::ok();
}

Status qc::quant::quantizeRTN(const float *w, int64_t N, int64_t K,
                              const QuantConfig &cfg, QuantizedWeight &out,
                              const std::string &layerName) {
  const std::string ctx =
      layerName.empty() ? std::string("RTN") : "RTN '" + layerName + "'";
  if (N <= 0)
    return Status::error(
        ctx + ": invalid output-feature count N = " + std::to_string(N));
  QC_RETURN_IF_ERROR(cfg.validate(K).withContext(ctx));
  if (!w)
    return Status::error(ctx + ": null weight pointer");
  QC_RETURN_IF_ERROR(checkFinite(w, N, K, layerName));

  const int64_t G = cfg.effectiveGroupSize(K);
  const int64_t ng = numGroupsFor(K, cfg.groupSize);
  out.allocate(N, K, ng, cfg);
  for (int64_t n = 0; n < N; ++n) {
    const float *row = w + n * K;
    for (int64_t g = 0; g < ng; ++g) {
      const int64_t k0 = g * G, k1 = std::min(K, k0 + G);
      GroupParams p = computeGroupParams(row + k0, k1 - k0, cfg);
      if (!std::isfinite(p.scale))
        return Status::error(ctx + ": scale of row " + std::to_string(n) +
                             ", group " + std::to_string(g) +
                             " overflows the " +
                             scaleDTypeName(cfg.scaleDType) +
                             " storage dtype (weights too large)");
      out.scales[g * N + n] = p.scale;
      out.zeros[g * N + n] = p.zero;
      uint8_t *q = out.codes.data() + n * K;
      for (int64_t k = k0; k < k1; ++k)
        q[k] = static_cast<uint8_t>(quantizeCode(row[k], p, cfg.bits));
    }
  }
  return Status::ok();
}

double qc::quant::layerLoss(const float *w, const float *wq, int64_t N,
                            int64_t K, const float *hessian) {
  double total = 0.0;
  if (!hessian) {
    for (int64_t i = 0; i < N * K; ++i) {
      double d = static_cast<double>(w[i]) - static_cast<double>(wq[i]);
      total += d * d;
    }
    return total;
  }
  // d^T H d for four rows at a time: y_r = sum_i d_r[i] * H[i, :] (H is
  // symmetric, so this is H d_r) written as axpys over contiguous rows of H,
  // which vectorise without reassociating a reduction, and each row of H is
  // loaded once per four weight rows.
  std::vector<double> d(static_cast<size_t>(4 * K)),
      y(static_cast<size_t>(4 * K));
  for (int64_t n0 = 0; n0 < N; n0 += 4) {
    const int64_t nr = std::min<int64_t>(4, N - n0);
    std::fill(d.begin(), d.end(), 0.0);
    std::fill(y.begin(), y.end(), 0.0);
    for (int64_t r = 0; r < nr; ++r)
      for (int64_t k = 0; k < K; ++k)
        d[r * K + k] = static_cast<double>(w[(n0 + r) * K + k]) -
                       static_cast<double>(wq[(n0 + r) * K + k]);
    double *y0 = y.data(), *y1 = y0 + K, *y2 = y1 + K, *y3 = y2 + K;
    for (int64_t i = 0; i < K; ++i) {
      const float *h = hessian + i * K;
      const double a0 = d[i], a1 = d[K + i], a2 = d[2 * K + i],
                   a3 = d[3 * K + i];
      if (a0 == 0.0 && a1 == 0.0 && a2 == 0.0 && a3 == 0.0)
        continue;
      for (int64_t j = 0; j < K; ++j) {
        const double hj = h[j];
        y0[j] += a0 * hj;
        y1[j] += a1 * hj;
        y2[j] += a2 * hj;
        y3[j] += a3 * hj;
      }
    }
    for (int64_t r = 0; r < nr; ++r)
      for (int64_t k = 0; k < K; ++k)
        total += d[r * K + k] * y[r * K + k];
  }
  return total;
}
