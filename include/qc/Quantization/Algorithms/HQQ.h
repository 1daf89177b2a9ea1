//===- HQQ.h - Half-quadratic quantization ----------------------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Calibration-free Half-Quadratic Quantization (HQQ) of one [N, K] linear
// weight, following ../shared/docs/ALGORITHMS.md §5: asymmetric groups of G
// consecutive input channels of a row (axis = 1, §5.2), raw min/max
// initialization of the inverse scale σ and a float zero point (§5.3), then
// the zero-only half-quadratic solver with the generalized soft-threshold of
// the lp (p < 1) error model, β growing by κ, a single whole-tensor error
// for early stopping and the best zero kept (§5.4, canonical variant).
// The result is a QuantizedWeight whose zero points are fractional floats;
// integer formats need HQQOptions::roundZeros (lossy, §8.3 / §8.7).
//
//===----------------------------------------------------------------------===//

#ifndef QC_QUANTIZATION_ALGORITHMS_HQQ_H
#define QC_QUANTIZATION_ALGORITHMS_HQQ_H

#include "qc/Quantization/Algorithms/Common.h"
#include "qc/runtime/Status.h"

#include <cstdint>
#include <string>
#include <vector>

namespace qc {
namespace quant {

/// Whether the initial zero point -min·σ is rounded to an integer (§5.3,
/// hqq's `round_zero`).
enum class HQQRoundZero {
  /// As hqq_base_quant_config: round only for 4-bit weights.
  Auto,
  /// Never round (float initial zero).
  Never,
  /// Always round.
  Always,
};

/// Solver parameters (§5.4 / §12 defaults) and output options.
struct HQQOptions {
  /// Exponent p of the sparsity-promoting error model φ_p = ||·||_p^p;
  /// 0 < p <= 1 (p = 1 uses the plain soft threshold).
  float lpNorm = 0.7f;
  /// Initial half-quadratic penalty β (> 0).
  float beta = 1e1f;
  /// Growth factor of β after every accepted iteration (>= 1).
  float kappa = 1.01f;
  /// Maximum number of solver iterations (>= 0); 0 gives the plain
  /// min/max initialization (asymmetric RTN with raw min/max, §5.6).
  int iters = 20;
  /// Stop at the first iteration whose error does not decrease (§5.4).
  /// When false every iteration runs (hqq's "slow" v2 preset); the best
  /// zero is kept either way.
  bool earlyStop = true;
  /// Rounding of the initial zero (§5.3). Groups whose range is <= 1e-4
  /// (σ forced to 1) are never rounded: their float zero -min reconstructs
  /// a constant group exactly (§1.6), which rounding would destroy.
  HQQRoundZero roundZeroInit = HQQRoundZero::Auto;
  /// Round the final zeros to integers in [0, qmax] (and recompute the
  /// codes) so that the result fits integer-zero formats (GPTQ, AWQ, rows
  /// int32); lossy, off by default.
  bool roundZeros = false;
  /// Storage dtype of the final zeros: hqq keeps them in the compute dtype
  /// (fp16/bf16); the canonical form is fp32 (§14.8). Codes are computed
  /// with the cast zero. Ignored when roundZeros is set.
  ScaleDType zeroDType = ScaleDType::F32;
  /// Enforce hqq's shape requirements (§5.2): K % G == 0 and, for an
  /// explicit group size, G % 8 == 0. When false a ragged last group per
  /// row is allowed (groups never cross rows) and any G is accepted.
  bool strictShapes = true;

  /// Checks the ranges documented on each field.
  Status validate() const;
};

/// What the solver did.
struct HQQReport {
  /// mean |W - W_r| over the whole tensor for every evaluated iteration t
  /// (errors[t] is the error of the zeros at the start of iteration t, so
  /// errors[0] is the error of the initialization). Computed with the
  /// solver's W_r = (W_q - z) / σ, accumulated in fp64.
  std::vector<double> errors;
  /// Number of zero updates that were kept (the best zeros are those after
  /// this many updates).
  int acceptedIters = 0;
  /// True when the loop stopped because the error did not decrease.
  bool earlyStopped = false;
  /// mean |W - Ŵ| of the returned weight, Ŵ = s · (q - z) with the stored
  /// scales and zeros (QuantizedWeight::dequantize), in fp64.
  double finalError = 0.0;
};

/// Quantizes the [N, K] row-major weight `w` with HQQ. `cfg` gives bits
/// (2, 3, 4, 8), the group size (-1 = one group per row) and the storage
/// dtype of the scales s = 1/σ (the canonical HQQ form is F32, §14.8; F16
/// matches hqq's fp16 compute dtype); cfg.sym and cfg.mseSearch must be
/// false (HQQ is asymmetric and has its own optimizer). Guards (§1.6, §5.3):
/// σ = 1 for groups whose range is <= 1e-4, σ <= 2e4, non-finite weights
/// rejected (naming the layer and index), scales that overflow their dtype
/// rejected. The output has float zeros (unless opts.roundZeros), codes
/// clamp(rne(W·σ + z), 0, qmax), and dequantizes as s · (q - z).
/// Deterministic: the same input gives bit-identical output.
Status quantizeHQQ(const float *w, int64_t N, int64_t K, const QuantConfig &cfg,
                   const HQQOptions &opts, QuantizedWeight &out,
                   HQQReport *report = nullptr,
                   const std::string &layerName = "");

/// The generalized soft-threshold operator of §5.4, the proximal map of
/// |x|^p / β: sign(x) · max(|x| - |x|^(p-1) / β, 0) (p = 1: max(|x| - 1/β,
/// 0)). An exact zero maps to zero (§14.4; |0|^(p-1) is infinite).
float hqqShrink(float x, float beta, float p);

} // namespace quant
} // namespace qc

#endif // QC_QUANTIZATION_ALGORITHMS_HQQ_H
