//===- GPTQ.h - GPTQ weight quantization ------------------------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// GPTQ (optimal-brain-quantization with lazy batch updates) for one linear
// layer, following ../shared/docs/ALGORITHMS.md §3: Hessian accumulation
// (§3.1), pre-processing in the reference order (§3.2: per-channel params,
// dead columns, static groups, act-order, damping), the blocked main loop
// (§3.3) with the reference's "stale" dynamic-group statistics (§3.4,
// §14.1), g_idx (§3.5) and the numerical-failure ladder of §3.7 that never
// surfaces a raw linear-algebra error. Plain C++17, no exceptions; the
// Cholesky factorisation runs in fp64, everything that defines a code in
// fp32 (§0).
//
//===----------------------------------------------------------------------===//

#ifndef QC_QUANTIZATION_ALGORITHMS_GPTQ_H
#define QC_QUANTIZATION_ALGORITHMS_GPTQ_H

#include "qc/Quantization/Algorithms/Common.h"

#include <cstdint>
#include <string>
#include <vector>

namespace qc {
namespace quant {

/// Options of the GPTQ solver (§3.8 defaults) and of its failure ladder
/// (§3.7). Quantization grid options (bits, group size, sym, scale dtype,
/// MSE search) come from QuantConfig.
struct GPTQOptions {
  /// Relative damping: λ = dampPercent * mean(diag(H)) is added to diag(H)
  /// after the dead-column fix and the permutation (§3.2). >= 0.
  double dampPercent = 0.01;
  /// Lazy-batch block size B (§3.3); only affects speed and, for dynamic
  /// groups that start mid-block, the stale statistics of §3.4. > 0.
  int64_t blockSize = 128;
  /// Process columns by descending diag(H) ("desc_act", §3.2). Ties keep
  /// the original order (stable sort).
  bool actOrder = false;
  /// Compute all group parameters up front from the (dead-column-fixed)
  /// weight in original column order (§3.2 static_groups).
  bool staticGroups = false;
  /// Dynamic-group statistics: false = reference "stale" statistics (read
  /// from the matrix with only the previous blocks' lazy updates, §3.4 and
  /// §14.1, canonical); true = "fresh" statistics from the fully updated
  /// columns.
  bool freshGroupStats = false;

  /// §3.7 step 2: on a failed factorisation retry with dampPercent +=
  /// dampAutoIncrement while the damping stays below maxDampPercent. 0
  /// disables the increments.
  double dampAutoIncrement = 0.0015;
  /// §3.7 step 2 upper bound (exclusive) of the relative damping.
  double maxDampPercent = 1.0;
  /// §3.7 step 3: number of diagonal floors tried, floor_k = max|diag H| *
  /// diagFloorBase * 10^k for k = 0 .. diagFloorAttempts-1; each replaces
  /// diag by max(diag + floor_k, floor_k) and repeats step 2.
  int diagFloorAttempts = 6;
  /// §3.7 step 3 base of the floor, relative to max|diag H|.
  double diagFloorBase = 1e-6;
  /// §3.7 step 4: when every attempt fails (or H is unusable: non-finite,
  /// or no calibration token reached the layer), quantize the layer with
  /// RTN and record the reason in the report. When false, return an error
  /// naming the layer instead.
  bool fallbackToRTN = true;

  /// Checks ranges (non-negative damping, positive block size, ...).
  Status validate() const;
};

/// What happened while quantizing one layer.
struct GPTQReport {
  /// GPTQ's own objective: sum over rows and columns of (w - q)^2 / (2 d^2)
  /// with d the diagonal of the inverse-Hessian Cholesky factor. Equals
  /// 1/2 * sum_n (w0 - q)_n^T H_damped (w0 - q)_n for the H passed in (so it
  /// scales with H; §3.6 loss identity). 0 after an RTN fallback.
  double loss = 0.0;
  /// Relative damping that finally succeeded (dampPercent plus increments).
  double dampUsed = 0.0;
  /// Absolute diagonal shift λ = dampUsed * mean(diag) that was added.
  double dampAbsolute = 0.0;
  /// Diagonal floor applied by §3.7 step 3 (0 when not needed).
  double diagFloor = 0.0;
  /// Input channels with H[i,i] == 0 (their weights were zeroed).
  int64_t deadColumns = 0;
  /// True when the layer was quantized with RTN instead (§3.7 step 4).
  bool fallbackToRTN = false;
  /// Why the fallback happened (empty otherwise); names the layer.
  std::string fallbackReason;
  /// Number of Cholesky factorisations attempted.
  int attempts = 0;
};

/// Quantizes the [N, K] row-major fp32 weight `w` with GPTQ.
///
/// `hessian` is [K, K] row-major fp32 and symmetric: any positive multiple
/// of sum_t x_t x_t^T over the calibration tokens (the canonical 2/T sum of
/// §3.1 as produced by HessianAccumulator, or the unnormalised sum; GPTQ is
/// invariant to the scale, only GPTQReport::loss scales with it). It is not
/// modified. `tokenCount` is the number of calibration tokens behind it:
/// 0 means no token reached the layer (e.g. an MoE expert) and selects the
/// RTN fallback; pass a negative value when unknown.
///
/// On success `out` holds codes in original column order, scales/zeros in
/// the order the groups were produced (§3.4) and a filled gIdx (§3.5), and
/// out.dequantize() reproduces the fake-quantized weight bit for bit. If
/// `fakeQuant` is given it receives that weight ([N*K], original order).
/// Non-finite weights, invalid options and shape errors are returned as
/// errors; numerical trouble with H follows §3.7 and is recorded in
/// `report`.
Status quantizeGPTQ(const float *w, int64_t N, int64_t K, const float *hessian,
                    int64_t tokenCount, const QuantConfig &cfg,
                    const GPTQOptions &opts, QuantizedWeight &out,
                    GPTQReport &report, const std::string &layerName = "",
                    std::vector<float> *fakeQuant = nullptr);

/// Which implementation computes the inverse Cholesky factor inside
/// quantizeGPTQ (and invertCholeskyLower).
enum class FactorBackend {
  /// The hand-written blocked kernels below kLapackMinK, LAPACK from there.
  Auto,
  /// The hand-written blocked Cholesky and triangular inverse (fp64).
  HandWritten,
  /// LAPACK dpotrf + dtrtri through LAPACKE (OpenBLAS when installed).
  Lapack,
};

/// The K from which FactorBackend::Auto uses LAPACK. Measured with
/// bench/gptq-factor (qc-bench-gptq-factor); see the comment at its
/// definition in GPTQ.cpp for the numbers.
extern const int64_t kLapackMinK;

/// Replaces the lower triangle of the symmetric positive definite [n, n]
/// row-major fp64 matrix `A` (only the lower triangle is read) by L^-1,
/// where A = L L^T. A pivot L[j][j]^2 that is not finite or not above `tol`
/// fails the factorisation (a relative tolerance also rejects numerically
/// singular matrices, which LAPACK alone would accept): returns false with
/// the first failing index in `failIndex`. The strict upper triangle is
/// scratch on return. The backends agree up to rounding (about n * eps
/// relative), not bit for bit.
bool invertCholeskyLower(double *A, int64_t n, double tol, int64_t &failIndex,
                         FactorBackend backend = FactorBackend::Auto);

/// Accumulates the GPTQ Hessian H = 2/T * sum_t x_t x_t^T of one layer in
/// fp32 (§3.1) with the running-average update of the references, counting
/// tokens (the canonical normalisation): on a batch of m rows,
/// H <- H * T/(T+m), T <- T+m, H <- H + (2/T) Xb^T Xb. Only the lower
/// triangle is accumulated; hessian() returns the full symmetric matrix.
class HessianAccumulator {
public:
  /// An empty accumulator for K input channels (K > 0); H = 0, T = 0.
  explicit HessianAccumulator(int64_t K);

  /// Adds `rows` activation rows `x` ([rows, K] row-major fp32; padding
  /// tokens must already be excluded, §2.5). Rejects non-finite
  /// activations (H would be poisoned) without changing the state.
  Status add(const float *x, int64_t rows);

  /// Input channels K.
  int64_t numChannels() const { return K; }
  /// Tokens accumulated so far (T).
  int64_t tokenCount() const { return tokens; }
  /// The full symmetric [K*K] row-major Hessian (2/T sum x x^T; all zeros
  /// while T == 0).
  const std::vector<float> &hessian();
  /// Back to H = 0, T = 0.
  void reset();

private:
  int64_t K;
  int64_t tokens = 0;
  /// [K*K]; the lower triangle is authoritative, the upper triangle is
  /// refreshed by hessian().
  std::vector<float> h;
  bool mirrored = true;
};

} // namespace quant
} // namespace qc

#endif // QC_QUANTIZATION_ALGORITHMS_GPTQ_H
