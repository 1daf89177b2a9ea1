//===- AWQ.h - Activation-aware weight quantization -------------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// AWQ, ../shared/docs/ALGORITHMS.md §4, on one LLaMA-family decoder block:
// per-input-channel scales s searched on a grid of exponents of the
// activation magnitudes (§4.3), folded into the preceding RMSNorm or linear
// by the equivalence transform of §4.4 (so the fp function is unchanged),
// then a per-(row, group) clipping search (§4.5) and the final AWQ-grid
// quantization (§4.6).
//
// The search measures sub-module outputs with BlockReference; all four
// scaling groups are searched against the UNSCALED block and applied
// together, as the reference does. Calibration inputs are the outputs of the
// previous block computed with fp weights (§2, step 4).
//
//===----------------------------------------------------------------------===//

#ifndef QC_QUANTIZATION_ALGORITHMS_AWQ_H
#define QC_QUANTIZATION_ALGORITHMS_AWQ_H

#include "qc/Quantization/Algorithms/BlockReference.h"
#include "qc/Quantization/Algorithms/Common.h"
#include "qc/runtime/Model.h"
#include "qc/runtime/Status.h"

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace qc {
namespace quant {

/// Options of the AWQ search (§4.7 defaults).
struct AWQOptions {
  /// Exponent grid: alpha = i / nGrid for i in [0, nGrid) (alpha = 1 is
  /// never tried).
  int nGrid = 20;
  /// AutoAWQ "duo scaling" (s = x_mean^a / (w_mean^(1-a) + 1e-4)); false is
  /// the llm-awq / paper form s = x_mean^a.
  bool duoScaling = true;
  /// Run the weight clipping search of §4.5.
  bool applyClip = true;
  /// Clip shrink factors 1 - i/clipGrid for i < floor(maxShrink*clipGrid).
  float maxShrink = 0.5f;
  /// Clip grid.
  int clipGrid = 20;
  /// Tokens the clip search keeps: rows are subsampled with stride
  /// max(1, rows / nSampleTokens).
  int64_t nSampleTokens = 512;
};

/// The four scaling groups of a LLaMA/Qwen2/Mistral block (§4.1).
enum class AWQGroup : int {
  /// input_layernorm -> q/k/v; loss on the self_attn output.
  QKV = 0,
  /// v_proj rows -> o_proj; loss on o_proj's output. Only when v_proj and
  /// o_proj have the same shape (skipped for grouped-query attention).
  VO,
  /// post_attention_layernorm -> gate/up; loss on the mlp output.
  GateUp,
  /// up_proj rows -> down_proj; loss on down_proj's output.
  UpDown,
};

/// Number of AWQGroup values.
constexpr int kNumAWQGroups = 4;

/// Human-readable name of a group ("qkv", "v->o", "gate/up", "up->down").
const char *awqGroupName(AWQGroup g);

/// The linears that receive `x s` on their input columns in group `g`.
std::vector<BlockLinear> awqGroupLayers(AWQGroup g);

/// Whether group `g` exists for `config` (v->o needs v and o of equal
/// shape: nKVHeads == nHeads and nHeads*headDim == dim).
bool awqGroupApplies(const ModelConfig &config, AWQGroup g);

/// Outcome of the scale search of one group.
struct AWQGroupResult {
  /// Which group this is.
  AWQGroup group = AWQGroup::QKV;
  /// False when the group does not apply (see awqGroupApplies); then
  /// `scales` is empty and nothing is folded.
  bool applied = false;
  /// The chosen per-input-channel scales [K of the group's layers]; all
  /// finite and positive. Folding divides the previous op by them.
  std::vector<float> scales;
  /// L(alpha_i) for every grid point (MSE of the inspected module output,
  /// accumulated in double); +inf where non-finite.
  std::vector<double> losses;
  /// Index of the first strict minimum of `losses` (-1 if none finite).
  int bestIndex = -1;
  /// bestIndex / nGrid (-1 if none finite).
  float bestRatio = -1.0f;
  /// Every loss was non-finite and the group fell back to s = 1 (§10.6).
  bool fellBack = false;
};

/// Everything awqSearchBlock found for one block.
struct AWQBlockResult {
  /// Indexed by AWQGroup.
  std::array<AWQGroupResult, kNumAWQGroups> groups;
  /// Clip maxima per linear (indexed by BlockLinear): [N * numGroups] at
  /// n * numGroups + g, to be applied to the SCALED weight as
  /// W <- clamp(W, -m, m); empty for q/k (never clipped, §4.5) and when
  /// clipping is disabled.
  std::array<std::vector<float>, kNumBlockLinears> clipMax;
};

/// x_mean[c] = mean over `rows` of |x[t, c]| (§4.2) for x [rows, K];
/// accumulated in double, returned as float.
std::vector<float> awqInputMean(const float *x, int64_t rows, int64_t K);

/// w_mean[c] of §4.2 (duo scaling) for the layers `ws` (each [N_i, K],
/// rows stacked): each weight is divided by (max |w| of its row group +
/// 1e-6), then averaged over all rows. Groups follow §0 (`groupSize` -1 =
/// whole row; the last group may be ragged, §14.7).
std::vector<float> awqWeightMean(const std::vector<const float *> &ws,
                                 const std::vector<int64_t> &rowsPerLayer,
                                 int64_t K, int64_t groupSize);

/// The candidate scales of §4.3 for exponent `ratio`: x_mean^ratio (over
/// (w_mean^(1-ratio) + 1e-4) when `duo`), clamped to >= 1e-4, divided by
/// sqrt(max * min), non-finite entries replaced by 1.
std::vector<float> awqScalesForRatio(const std::vector<float> &xMean,
                                     const std::vector<float> &wMean,
                                     float ratio, bool duo);

/// AWQ fake quantization (§1.1 "AWQ" row) of w [N, K] into out [N, K]
/// (may alias w). Asymmetric: raw group min/max (0 not forced in),
/// s = cast(max(max - min, 1e-5) / qmax), z = clamp(-round(min/s), 0,
/// qmax). With cfg.sym the AWQ `zero_point=False` grid: s =
/// cast(max(absmax, 1e-5) / (2^(b-1) - 1)), q in [-2^(b-1), 2^(b-1) - 1].
/// Scales are cast to cfg.scaleDType before any code is computed (§14.8).
void awqPseudoQuantize(const float *w, int64_t N, int64_t K,
                       const QuantConfig &cfg, float *out);

/// Final AWQ quantization (§4.6) of w [N, K] with the grid of
/// awqPseudoQuantize; symmetric codes are exported shifted by 2^(b-1) with
/// that as the zero point. Rejects non-finite weights and scale overflow.
Status awqQuantizeWeight(const float *w, int64_t N, int64_t K,
                         const QuantConfig &cfg, QuantizedWeight &out,
                         const std::string &name = "");

/// L(s) of §4.3 for group `g`: mean((M_w(inp) - M_w'(inp))^2) accumulated
/// in double, where M is the group's inspected module (self_attn, o_proj,
/// mlp or down_proj), w the given weights and w' = w with every layer of
/// the group replaced by Q(W diag(s)) diag(s)^-1 (Q = awqPseudoQuantize).
/// `inp` [S*T, K] is the common input of the group's layers, which is also
/// the module's input. Empty `scales` means s = 1 (plain AWQ-grid RTN).
Status awqGroupLoss(const ModelConfig &config, const BlockWeights &w,
                    AWQGroup g, const float *inp, int64_t S, int64_t T,
                    const std::vector<float> &scales, const QuantConfig &cfg,
                    double &loss);

/// Runs the whole AWQ search on one block: captures the linear inputs of
/// the fp block on `x` [S, T, D], searches the scales of every applicable
/// group against the unscaled block, folds them into a copy, divides the
/// cached inputs, and (if enabled) runs the clip search on the scaled
/// copy. `w` is not modified.
Status awqSearchBlock(const ModelConfig &config, const BlockWeights &w,
                      const float *x, int64_t S, int64_t T,
                      const QuantConfig &cfg, const AWQOptions &opts,
                      AWQBlockResult &out);

/// Folds the scales of `r` into `w` (§4.4): norm weight /= s or previous
/// linear's output rows (and bias) /= s, the group's layers' input columns
/// *= s. Exact in real arithmetic, so the block's fp function is unchanged
/// up to rounding. Fails on a size mismatch or a non-finite result.
Status applyAWQScales(BlockWeights &w, const AWQBlockResult &r);

/// Clamps every linear of the (already scaled) `w` to its clip maxima
/// (§4.5, W <- clamp(W, -m, m) per (row, group) of `cfg`'s grouping).
/// Fails on a size mismatch.
Status applyAWQClip(const ModelConfig &config, BlockWeights &w,
                    const AWQBlockResult &r, const QuantConfig &cfg);

/// Quantizes the seven linears of `w` with awqQuantizeWeight.
Status awqQuantizeBlock(const ModelConfig &config, const BlockWeights &w,
                        const QuantConfig &cfg,
                        std::array<QuantizedWeight, kNumBlockLinears> &out);

/// The full per-block pipeline: awqSearchBlock, applyAWQScales,
/// applyAWQClip, awqQuantizeBlock. On return `w` holds the scaled and
/// clipped fp weights (norms included) that the quantized model uses.
Status awqBlock(const ModelConfig &config, BlockWeights &w, const float *x,
                int64_t S, int64_t T, const QuantConfig &cfg,
                const AWQOptions &opts,
                std::array<QuantizedWeight, kNumBlockLinears> &out,
                AWQBlockResult &result);

} // namespace quant
} // namespace qc

#endif // QC_QUANTIZATION_ALGORITHMS_AWQ_H
