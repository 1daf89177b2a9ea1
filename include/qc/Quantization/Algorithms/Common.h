//===- Common.h - Uniform group-wise quantization primitives ----*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// The shared vocabulary of every weight-only quantization algorithm in qc:
// the quantization configuration, the per-(row, group) affine grid (scale and
// zero point) of the canonical min-max quantizer, code/dequantization helpers,
// the QuantizedWeight container that every method (RTN, GPTQ, AWQ, ...)
// produces, round-to-nearest (RTN) quantization and a layer-loss helper used
// to compare methods. The numerics follow ../shared/docs/ALGORITHMS.md §0 and
// §1 (canonical grid of §1.1 / §1.2, MSE search of §1.5, edge cases of §1.6).
//
// The library is plain C++17 without MLIR/LLVM types and without exceptions;
// failures are reported through qc::Status. Weights use the PyTorch
// nn.Linear layout: W is [N, K] row-major (N = out_features, K =
// in_features) and groups are runs of consecutive input channels of one row.
//
//===----------------------------------------------------------------------===//

#ifndef QC_QUANTIZATION_ALGORITHMS_COMMON_H
#define QC_QUANTIZATION_ALGORITHMS_COMMON_H

#include "qc/runtime/Status.h"

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace qc {
namespace quant {

//===----------------------------------------------------------------------===//
// Scalars
//===----------------------------------------------------------------------===//

/// Storage precision of the per-group scales (§0: fp16 in GPTQ/AWQ
/// checkpoints, bf16 allowed in compressed-tensors, fp32 for HQQ-style
/// float formats).
enum class ScaleDType { F16, BF16, F32 };

/// Returns a short lower-case name ("f16", "bf16", "f32") for diagnostics.
const char *scaleDTypeName(ScaleDType dtype);

/// Rounds `x` to the nearest value representable in `dtype` (ties to even)
/// and returns it as a float. F32 is the identity. Values beyond the fp16
/// range become +-infinity (callers check finiteness where it matters).
float castToScaleDType(float x, ScaleDType dtype);

/// Smallest scale magnitude allowed after the storage cast: the smallest
/// value of `dtype` that is >= 1e-5 (§1.6: clamp |s| >= 1e-5 after the cast
/// so that an fp16 underflow never yields s == 0). Exactly representable in
/// `dtype`.
float minScaleMagnitude(ScaleDType dtype);

/// Round half to even, the rounding of torch.round used by every reference
/// (§0). Uses std::nearbyint under the default FE_TONEAREST mode; never
/// std::round, which rounds halves away from zero.
inline float roundHalfEven(float x) { return std::nearbyint(x); }

/// Largest unsigned code for `bits`: 2^bits - 1.
inline int qmaxForBits(int bits) { return (1 << bits) - 1; }

/// Number of groups along K for group size `groupSize` (-1 = one group per
/// row): ceil(K / G); the last group may be ragged (§0, §1.4).
inline int64_t numGroupsFor(int64_t K, int64_t groupSize) {
  if (groupSize <= 0 || groupSize >= K)
    return K > 0 ? 1 : 0;
  return (K + groupSize - 1) / groupSize;
}

//===----------------------------------------------------------------------===//
// Configuration and group parameters
//===----------------------------------------------------------------------===//

/// Parameters of uniform group-wise integer quantization (§1, §12).
struct QuantConfig {
  /// Code width b in {2, 3, 4, 8}; codes are unsigned in [0, 2^b - 1].
  int bits = 4;
  /// Input channels per group G; -1 = one group per output row
  /// (per-channel). A ragged last group is allowed here (numGroups =
  /// ceil(K/G)); packed formats that need K % G == 0 check that themselves.
  int64_t groupSize = 128;
  /// Symmetric (canonical GPTQ sym of §1.2: z = 2^(b-1), xmin = -xmax'
  /// always) or asymmetric (§1.1: min-max grid whose range contains 0).
  bool sym = true;
  /// Storage dtype of the scales; scales are cast to it before the zero
  /// point and the codes are computed (§0).
  ScaleDType scaleDType = ScaleDType::F16;
  /// Optional MSE range search of §1.5 (GPTQ Quantizer(mse=True)).
  bool mseSearch = false;
  /// §1.5 grid: candidate shrink factors p = 1 - i/mseGrid.
  float mseGrid = 100;
  /// §1.5: i ranges over [0, floor(mseMaxShrink * mseGrid)).
  float mseMaxShrink = 0.8f;
  /// §1.5: error norm, sum |Q(x) - x|^mseNorm.
  float mseNorm = 2.4f;

  /// Checks the configuration for a layer with `K` input channels: bits in
  /// {2,3,4,8}, groupSize == -1 or > 0, K > 0, sane MSE parameters.
  Status validate(int64_t K) const;
  /// The group size with -1 resolved to K (one group per row).
  int64_t effectiveGroupSize(int64_t K) const {
    return groupSize <= 0 ? K : groupSize;
  }
  /// 2^bits - 1.
  int qmax() const { return qmaxForBits(bits); }
};

/// Affine parameters of one (row, group): Ŵ = scale * (q - zero). `scale` is
/// exactly representable in the storage dtype and |scale| >= 1e-5; `zero`
/// is an integer value in [0, qmax] for the integer formats.
struct GroupParams {
  float scale = 1.0f;
  float zero = 0.0f;
};

/// Computes the canonical grid for the `n` values `x` of one group (§1.1
/// asym / §1.2 canonical GPTQ sym), casting the scale to cfg.scaleDType and
/// clamping |s| >= minScaleMagnitude before deriving the zero point. An
/// all-zero group uses the range (-1, +1). With cfg.mseSearch, the §1.5
/// shrink search picks the candidate with the smallest sum |Q(x)-x|^norm
/// (candidate scales are cast too; the unshrunk grid is the first candidate,
/// so the search is never worse than min-max in that norm). `x` must be
/// finite and n > 0.
GroupParams computeGroupParams(const float *x, int64_t n,
                               const QuantConfig &cfg);

/// The code of `x` on grid `p`: clamp(rne(x / s) + z, 0, 2^bits - 1).
inline int quantizeCode(float x, const GroupParams &p, int bits) {
  float q = roundHalfEven(x / p.scale) + p.zero;
  float qmax = static_cast<float>(qmaxForBits(bits));
  q = q < 0.0f ? 0.0f : (q > qmax ? qmax : q);
  return static_cast<int>(q);
}

/// The dequantized value s * (q - z), evaluated in fp32 exactly as the
/// references do (q - z is exact for integer codes and zeros).
inline float dequantizeCode(int q, const GroupParams &p) {
  return p.scale * (static_cast<float>(q) - p.zero);
}

/// Fake quantization of one value: dequantizeCode(quantizeCode(x)).
inline float fakeQuantize(float x, const GroupParams &p, int bits) {
  return dequantizeCode(quantizeCode(x, p, bits), p);
}

//===----------------------------------------------------------------------===//
// Quantized weight container
//===----------------------------------------------------------------------===//

/// A quantized linear weight in an unpacked, format-neutral form. Packers
/// (GPTQ v1/v2, AWQ GEMM, compressed-tensors, Marlin) consume it. The
/// invariant is dequantize(codes, scales, zeros, gIdx) == the fake-quantized
/// weight the producing algorithm computed, bit for bit in fp32.
struct QuantizedWeight {
  /// Output features N.
  int64_t rows = 0;
  /// Input features K (the true K, never padded).
  int64_t cols = 0;
  /// Code width b.
  int bits = 4;
  /// Group size G as configured (-1 = per channel).
  int64_t groupSize = 128;
  /// Whether the grid is the symmetric one (zeros all 2^(b-1)).
  bool sym = true;
  /// Storage dtype the scale values are representable in.
  ScaleDType scaleDType = ScaleDType::F16;
  /// [N*K] row-major codes, codes[n*K + k] in [0, 2^b - 1].
  std::vector<uint8_t> codes;
  /// [numGroups * N] scales, scales[g*N + n] (the layout of GPTQ's
  /// `scales` tensor, [numGroups, N]); exactly representable in scaleDType.
  std::vector<float> scales;
  /// [numGroups * N] zero points, zeros[g*N + n]; integer-valued in
  /// [0, qmax] for the integer formats.
  std::vector<float> zeros;
  /// [K] group (scale row) of each input channel in original column order
  /// (§3.5); empty means the default k / G (and 0 for G == -1).
  std::vector<int32_t> gIdx;

  /// Number of scale rows: ceil(K/G), or 1 for per-channel.
  int64_t numGroups() const;
  /// Scale row used by input channel k (gIdx[k] if present, else k / G).
  int64_t groupOf(int64_t k) const;
  /// Parameters of (row n, group g).
  GroupParams params(int64_t g, int64_t n) const {
    return GroupParams{scales[g * rows + n], zeros[g * rows + n]};
  }
  /// True when gIdx is empty or equal to k / G for every k (kernels that
  /// ignore g_idx are only correct then, §3.5).
  bool hasTrivialGIdx() const;
  /// Resizes the buffers for an N x K weight with `ngroups` scale rows and
  /// the given configuration; contents are zeroed and gIdx cleared.
  void allocate(int64_t N, int64_t K, int64_t ngroups, const QuantConfig &cfg);
  /// Writes the [N*K] row-major dequantized weight s * (q - z) into `w`.
  void dequantize(std::vector<float> &w) const;
  /// Structural checks: buffer sizes, code range, gIdx range, finite scales.
  Status verify() const;
};

//===----------------------------------------------------------------------===//
// RTN and helpers
//===----------------------------------------------------------------------===//

/// Returns an error naming `layerName` and the first non-finite element
/// (flat index and (row, col) for an N x K matrix) of `w`, or ok.
Status checkFinite(const float *w, int64_t N, int64_t K,
                   const std::string &layerName, const char *what = "weight");

/// Round-to-nearest quantization of the [N, K] row-major weight `w` with
/// the canonical grid of each (row, group) (§1, RTN of §12). Rejects
/// non-finite weights (naming the layer and the first bad index), an invalid
/// configuration, and scales that overflow the storage dtype. gIdx is left
/// empty (default k / G).
Status quantizeRTN(const float *w, int64_t N, int64_t K, const QuantConfig &cfg,
                   QuantizedWeight &out, const std::string &layerName = "");

/// Layer reconstruction loss between W and Ŵ (both [N, K] row-major):
/// with a Hessian H ([K, K] row-major fp32, symmetric), the GPTQ objective
/// tr((W - Ŵ) H (W - Ŵ)^T) = sum_n d_n^T H d_n; without (hessian ==
/// nullptr), the plain squared error sum (W - Ŵ)^2. Accumulated in fp64.
/// Note GPTQ's internal loss (GPTQReport::loss) is half of this quantity on
/// the damped Hessian.
double layerLoss(const float *w, const float *wq, int64_t N, int64_t K,
                 const float *hessian = nullptr);

} // namespace quant
} // namespace qc

#endif // QC_QUANTIZATION_ALGORITHMS_COMMON_H
