//===- GPTQ.cpp - GPTQ weight quantization ----------------------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Implements GPTQ for one linear layer (../shared/docs/ALGORITHMS.md §3) and
// the Hessian accumulator of §3.1.
//
// Layout and numerics. Everything is row-major. The inverse-Hessian factor
// U (H^-1 = U^T U, U upper) is obtained in fp64 without forming H^-1: if
// H = R R^T with R upper triangular (a Cholesky factorisation of H with the
// index order reversed), then H^-1 = R^-T R^-1, so U = R^-1. That is one
// Cholesky plus one triangular inverse instead of the reference's
// Cholesky, cholesky_inverse and second Cholesky, and it is the same matrix
// up to rounding. U is then rounded to fp32 and the main loop runs in fp32
// as in the references (§0). The three dense kernels (Hessian accumulation,
// the Cholesky trailing update and the lazy GPTQ update) share one
// cache-blocked "C -= A * B" kernel whose inner loop is an axpy over
// contiguous memory: it vectorises without reassociating any sum, so every
// output element is accumulated in a fixed order and results are
// bit-reproducible run to run.
//
//===----------------------------------------------------------------------===//

#include "qc/Quantization/Algorithms/GPTQ.h"

#include <lapacke.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <numeric>

using namespace qc;
using namespace qc::quant;

//===----------------------------------------------------------------------===//
// Dense kernels
//===----------------------------------------------------------------------===//

namespace {

/// Four output rows, one depth step pair: c_r[j] (+/-)= a_r0*b0[j] then
/// a_r1*b1[j], in that order for every j (so the result does not depend on
/// the vector width). Restrict-qualified so the loop vectorises without
/// run-time alias checks.
template <typename T, bool Sub>
inline void microKernel4x2(T *__restrict c0, T *__restrict c1, T *__restrict c2,
                           T *__restrict c3, const T *__restrict b0,
                           const T *__restrict b1, T a00, T a01, T a10, T a11,
                           T a20, T a21, T a30, T a31, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    const T x0 = b0[j], x1 = b1[j];
    if constexpr (Sub) {
      c0[j] = (c0[j] - a00 * x0) - a01 * x1;
      c1[j] = (c1[j] - a10 * x0) - a11 * x1;
      c2[j] = (c2[j] - a20 * x0) - a21 * x1;
      c3[j] = (c3[j] - a30 * x0) - a31 * x1;
    } else {
      c0[j] = (c0[j] + a00 * x0) + a01 * x1;
      c1[j] = (c1[j] + a10 * x0) + a11 * x1;
      c2[j] = (c2[j] + a20 * x0) + a21 * x1;
      c3[j] = (c3[j] + a30 * x0) + a31 * x1;
    }
  }
}

/// Four output rows, one depth step.
template <typename T, bool Sub>
inline void microKernel4x1(T *__restrict c0, T *__restrict c1, T *__restrict c2,
                           T *__restrict c3, const T *__restrict b0, T a0, T a1,
                           T a2, T a3, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    const T x = b0[j];
    if constexpr (Sub) {
      c0[j] -= a0 * x;
      c1[j] -= a1 * x;
      c2[j] -= a2 * x;
      c3[j] -= a3 * x;
    } else {
      c0[j] += a0 * x;
      c1[j] += a1 * x;
      c2[j] += a2 * x;
      c3[j] += a3 * x;
    }
  }
}

/// One output row, one depth step.
template <typename T, bool Sub>
inline void microKernel1x1(T *__restrict c0, const T *__restrict b0, T a0,
                           int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    if constexpr (Sub)
      c0[j] -= a0 * b0[j];
    else
      c0[j] += a0 * b0[j];
  }
}

/// Shape hints for gemmAcc.
enum GemmFlags : unsigned {
  GemmPlain = 0,
  /// C is square and aligned with the global index space; only its lower
  /// triangle (j <= i) is needed. A few entries just above the diagonal are
  /// computed too (harmless: the upper triangle is ignored or overwritten).
  GemmLowerC = 1,
  /// B[m][j] == 0 for j > m (B lower triangular in global indices), so
  /// depth steps m < j0 are skipped for the column tile starting at j0.
  GemmLowerB = 2,
};

/// C[i][j] (+/-)= sum_m A[i][m] * B[m][j] for i < M, j < Ncols, m < P, with
/// the depth summed in increasing m directly into C. Blocked so that a
/// PC x NC tile of B stays in L2 while four rows of C sit in L1.
template <typename T, bool Sub>
void gemmAcc(int64_t M, int64_t Ncols, int64_t P, const T *A, int64_t lda,
             const T *B, int64_t ldb, T *C, int64_t ldc,
             unsigned flags = GemmPlain) {
  constexpr int64_t NC = 1024 / static_cast<int64_t>(sizeof(T));
  constexpr int64_t PC = 128;
  const bool lowerC = flags & GemmLowerC;
  const bool lowerB = flags & GemmLowerB;
  for (int64_t j0 = 0; j0 < Ncols; j0 += NC) {
    const int64_t jn = std::min(NC, Ncols - j0);
    const int64_t mStart = lowerB ? std::min(j0, P) : 0;
    for (int64_t m0 = mStart; m0 < P; m0 += PC) {
      const int64_t m1 = std::min(m0 + PC, P);
      int64_t i = lowerC ? std::max<int64_t>(0, j0 - 3) & ~int64_t(3) : 0;
      for (; i + 4 <= M; i += 4) {
        int64_t n = jn;
        if (lowerC)
          n = std::min(jn, i + 4 - j0);
        if (n <= 0)
          continue;
        T *c0 = C + i * ldc + j0, *c1 = c0 + ldc, *c2 = c1 + ldc,
          *c3 = c2 + ldc;
        const T *a0 = A + i * lda, *a1 = a0 + lda, *a2 = a1 + lda,
                *a3 = a2 + lda;
        int64_t m = m0;
        for (; m + 2 <= m1; m += 2)
          microKernel4x2<T, Sub>(c0, c1, c2, c3, B + m * ldb + j0,
                                 B + (m + 1) * ldb + j0, a0[m], a0[m + 1],
                                 a1[m], a1[m + 1], a2[m], a2[m + 1], a3[m],
                                 a3[m + 1], n);
        for (; m < m1; ++m)
          microKernel4x1<T, Sub>(c0, c1, c2, c3, B + m * ldb + j0, a0[m], a1[m],
                                 a2[m], a3[m], n);
      }
      for (; i < M; ++i) {
        int64_t n = jn;
        if (lowerC)
          n = std::min(jn, i + 1 - j0);
        if (n <= 0)
          continue;
        T *c0 = C + i * ldc + j0;
        const T *a0 = A + i * lda;
        for (int64_t m = m0; m < m1; ++m)
          microKernel1x1<T, Sub>(c0, B + m * ldb + j0, a0[m], n);
      }
    }
  }
}

/// In-place lower Cholesky factorisation A = L L^T of the [n, n] row-major
/// fp64 matrix (lower triangle read, L written there; the upper triangle is
/// scratch). Right-looking with panels of 64 columns; the trailing update
/// goes through gemmAcc. A pivot that is not finite or not above `tol` fails
/// the factorisation (LAPACK only rejects pivots <= 0; the relative
/// tolerance also rejects numerically singular matrices whose inverse
/// factor would be garbage). Returns false and the failing index then.
bool choleskyLowerInPlace(double *A, int64_t n, double tol,
                          int64_t &failIndex) {
  constexpr int64_t NB = 64;
  std::vector<double> panelT;
  for (int64_t k0 = 0; k0 < n; k0 += NB) {
    const int64_t k1 = std::min(k0 + NB, n), kb = k1 - k0;
    // Diagonal block (its left part was already updated by earlier panels).
    for (int64_t j = k0; j < k1; ++j) {
      double *Lj = A + j * n;
      double d = Lj[j];
      for (int64_t m = k0; m < j; ++m)
        d -= Lj[m] * Lj[m];
      if (!(d > tol) || !std::isfinite(d)) {
        failIndex = j;
        return false;
      }
      const double ljj = std::sqrt(d);
      Lj[j] = ljj;
      for (int64_t i = j + 1; i < k1; ++i) {
        double *Li = A + i * n;
        double s = Li[j];
        for (int64_t m = k0; m < j; ++m)
          s -= Li[m] * Lj[m];
        Li[j] = s / ljj;
      }
    }
    if (k1 == n)
      break;
    // Panel below the diagonal block: row by row (row i stays in L1).
    for (int64_t i = k1; i < n; ++i) {
      double *Li = A + i * n;
      for (int64_t j = k0; j < k1; ++j) {
        const double *Lj = A + j * n;
        double s = Li[j];
        for (int64_t m = k0; m < j; ++m)
          s -= Li[m] * Lj[m];
        Li[j] = s / Lj[j];
      }
    }
    // Trailing update A22 -= L21 L21^T (lower triangle only).
    const int64_t rn = n - k1;
    panelT.resize(static_cast<size_t>(kb * rn));
    for (int64_t i = 0; i < rn; ++i)
      for (int64_t m = 0; m < kb; ++m)
        panelT[m * rn + i] = A[(k1 + i) * n + k0 + m];
    gemmAcc<double, true>(rn, rn, kb, A + k1 * n + k0, n, panelT.data(), rn,
                          A + k1 * n + k1, n, GemmLowerC);
  }
  return true;
}

/// Replaces the lower-triangular L ([n, n] row-major, lower part) by L^-1,
/// row block by row block: from L X = I, row i of X is (e_i - sum_{m<i}
/// L[i][m] X[m][:]) / L[i][i]. Rows of earlier blocks enter through gemmAcc
/// (X is lower triangular, so depth steps above a column tile are skipped);
/// the block itself is solved row by row into a buffer and then copied over
/// L (whose rows are still needed until then).
void invertLowerInPlace(double *L, int64_t n) {
  constexpr int64_t NB = 64;
  // gemmAcc(GemmLowerB) reads whole tiles of X, so its strict upper triangle
  // must be zero (the Cholesky left scratch there).
  for (int64_t i = 0; i < n; ++i)
    std::fill(L + i * n + i + 1, L + (i + 1) * n, 0.0);
  std::vector<double> buf(static_cast<size_t>(NB * n));
  for (int64_t r0 = 0; r0 < n; r0 += NB) {
    const int64_t r1 = std::min(r0 + NB, n), rb = r1 - r0;
    std::fill(buf.begin(), buf.begin() + rb * n, 0.0);
    if (r0 > 0)
      gemmAcc<double, true>(rb, r0, r0, L + r0 * n, n, L, n, buf.data(), n,
                            GemmLowerB);
    for (int64_t i = 0; i < rb; ++i) {
      const int64_t gi = r0 + i;
      double *row = buf.data() + i * n;
      const double *Li = L + gi * n;
      for (int64_t m = r0; m < gi; ++m)
        microKernel1x1<double, true>(row, buf.data() + (m - r0) * n, Li[m],
                                     m + 1);
      row[gi] += 1.0;
      const double piv = Li[gi];
      for (int64_t j = 0; j <= gi; ++j)
        row[j] /= piv;
    }
    for (int64_t i = 0; i < rb; ++i)
      std::copy(buf.begin() + i * n, buf.begin() + i * n + r0 + i + 1,
                L + (r0 + i) * n);
  }
}

} // namespace

//===----------------------------------------------------------------------===//
// Inverse Cholesky factor: hand-written or LAPACK
//===----------------------------------------------------------------------===//

// Crossover measured with qc-bench-gptq-factor (bench/gptq-factor; best of
// 7, both paths single-threaded) on the development machine: 2 shared
// x86-64 cores, Debian 12, GCC 12 -O3, OpenBLAS 0.3.21. Hand-written vs
// LAPACK: K = 64: 0.030 vs 0.034 ms, K = 80: 0.056 vs 0.060 ms, K = 96:
// 0.093 vs 0.072 ms, K = 128: 0.21 vs 0.15 ms, K = 256: 1.3 vs 0.84 ms,
// K = 1024: 232 vs 91 ms, K = 2048: 1560 vs 407 ms. LAPACK wins from
// K = 96 on, and by 2.5-4x at the K of real layers (576 and up); below, the
// hand-written kernels save LAPACK's call and packing overhead. The two
// results differ by at most ~1e-13 relative (fp64), below the fp32 U the
// GPTQ loop uses, except where a value rounds the other way.
const int64_t qc::quant::kLapackMinK = 96;

// OpenBLAS's thread-count setter, declared weak: present when the LAPACK
// provider is OpenBLAS, null with the reference LAPACK (single-threaded).
extern "C" void openblas_set_num_threads(int) __attribute__((weak));

namespace {

/// Runs OpenBLAS single-threaded, once per process. Its pthread build
/// otherwise starts a thread per core for every dpotrf: on a loaded
/// machine (the development one runs several builds on two cores) that
/// made a K = 256 factorisation take 500 ms instead of 1 ms, and a result
/// that depends on the thread count would no longer be the same on every
/// machine. GPTQ's own loops are single-threaded too.
void pinLapackThreads() {
  static const bool pinned = [] {
    if (openblas_set_num_threads)
      openblas_set_num_threads(1);
    return true;
  }();
  (void)pinned;
}

/// LAPACK path. A row-major lower triangle is a column-major upper one, so
/// dpotrf('U') and dtrtri('U') work on the buffer as it is (no transpose
/// copy): the column-major U with A = U^T U is our row-major L, and U^-1
/// in column-major order is L^-1 in row-major order.
bool invertCholeskyLowerLapack(double *A, int64_t n, double tol,
                               int64_t &failIndex) {
  pinLapackThreads();
  const lapack_int ln = static_cast<lapack_int>(n);
  // LAPACKE_dpotrf checks the triangle for NaN first (an error, -4), so a
  // poisoned matrix fails like it does in the hand-written kernel.
  lapack_int info = LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'U', ln, A, ln);
  if (info != 0) {
    failIndex = info > 0 ? info - 1 : 0;
    return false;
  }
  // The relative pivot tolerance of the hand-written kernel: pivot j is
  // L[j][j]^2 (the value it took the square root of).
  for (int64_t j = 0; j < n; ++j) {
    const double d = A[j * n + j] * A[j * n + j];
    if (!(d > tol) || !std::isfinite(d)) {
      failIndex = j;
      return false;
    }
  }
  info = LAPACKE_dtrtri(LAPACK_COL_MAJOR, 'U', 'N', ln, A, ln);
  if (info != 0) {
    failIndex = info > 0 ? info - 1 : 0;
    return false;
  }
  return true;
}

} // namespace

bool qc::quant::invertCholeskyLower(double *A, int64_t n, double tol,
                                    int64_t &failIndex, FactorBackend backend) {
  if (backend == FactorBackend::Lapack ||
      (backend == FactorBackend::Auto && n >= kLapackMinK))
    return invertCholeskyLowerLapack(A, n, tol, failIndex);
  if (!choleskyLowerInPlace(A, n, tol, failIndex))
    return false;
  invertLowerInPlace(A, n);
  return true;
}

//===----------------------------------------------------------------------===//
// GPTQOptions
//===----------------------------------------------------------------------===//

Status GPTQOptions::validate() const {
  if (!(dampPercent >= 0.0) || !std::isfinite(dampPercent))
    return Status::error("damp percent must be a finite value >= 0");
  if (blockSize <= 0)
    return Status::error("GPTQ block size must be positive, got " +
                         std::to_string(blockSize));
  if (!(dampAutoIncrement >= 0.0) || !std::isfinite(dampAutoIncrement))
    return Status::error("damp auto-increment must be a finite value >= 0");
  if (!(maxDampPercent > 0.0) || !std::isfinite(maxDampPercent))
    return Status::error("maximum damp percent must be positive");
  if (diagFloorAttempts < 0 || diagFloorAttempts > 30)
    return Status::error("diagonal floor attempts must be in [0, 30]");
  if (!(diagFloorBase > 0.0) || !std::isfinite(diagFloorBase))
    return Status::error("diagonal floor base must be positive");
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// Inverse-Hessian factor with the §3.7 ladder
//===----------------------------------------------------------------------===//

namespace {

/// The inverse factor U ([K*K] fp32, upper part valid, zeros below), held
/// in the first half of the malloc'ed fp64 workspace it was computed in,
/// which is then shrunk (realloc). At K = 14,336 (Llama-3-8B's down_proj)
/// a separate fp32 U would add 0.8 GB beside the 1.6 GB fp64 workspace at
/// the peak of a block's quantization.
class FactorBuffer {
public:
  /// `bytes` of uninitialized storage; throws std::bad_alloc like a vector.
  void allocate(size_t bytes) {
    if (!raw || size < bytes) {
      raw.reset(static_cast<unsigned char *>(std::malloc(bytes)));
      if (!raw)
        throw std::bad_alloc();
      size = bytes;
    }
  }
  double *f64() { return reinterpret_cast<double *>(raw.get()); }
  const float *f32() const {
    return reinterpret_cast<const float *>(raw.get());
  }
  /// Keeps only the first `bytes` (a shrinking realloc returns the tail's
  /// pages to the system; the data stays).
  void shrink(size_t bytes) {
    unsigned char *old = raw.release();
    void *p = std::realloc(old, bytes);
    raw.reset(p ? static_cast<unsigned char *>(p) : old);
    size = p ? bytes : size;
  }
  unsigned char *bytes() { return raw.get(); }

private:
  struct Free {
    void operator()(unsigned char *p) const { std::free(p); }
  };
  std::unique_ptr<unsigned char, Free> raw;
  size_t size = 0;
};

/// Builds U (H^-1 = U^T U, fp32 upper) for the permuted, dead-fixed Hessian,
/// following the failure ladder of §3.7.
class InverseFactor {
public:
  InverseFactor(const float *H, int64_t K, const std::vector<int64_t> &perm,
                const std::vector<char> &dead, GPTQReport &report)
      : H(H), K(K), perm(perm), dead(dead), report(report) {
    baseDiag.resize(static_cast<size_t>(K));
    maxAbsDiag = 0.0;
    for (int64_t i = 0; i < K; ++i) {
      const int64_t p = perm[i];
      baseDiag[i] = dead[p] ? 1.0 : static_cast<double>(H[p * K + p]);
      maxAbsDiag = std::max(maxAbsDiag, std::fabs(baseDiag[i]));
    }
    if (!(maxAbsDiag > 0.0) || !std::isfinite(maxAbsDiag))
      maxAbsDiag = 1.0;
  }

  /// Runs the ladder; on success fills `U` ([K*K], upper part valid) and the
  /// damping fields of the report. Returns false when every attempt failed.
  bool run(const GPTQOptions &opts, FactorBuffer &U) {
    for (int step = -1; step < opts.diagFloorAttempts; ++step) {
      const double floorAbs =
          step < 0 ? 0.0
                   : maxAbsDiag * opts.diagFloorBase * std::pow(10.0, step);
      if (runDampingLadder(opts, floorAbs, U))
        return true;
    }
    return false;
  }

private:
  /// §3.7 step 2 at a fixed floor. The reference scans p0, p0 + inc, ...
  /// linearly; positive definiteness of H + λI is monotone in λ, so the
  /// first success of that scan is found here by galloping then bisection
  /// (same answer, O(log) factorisations instead of up to ~660).
  bool runDampingLadder(const GPTQOptions &opts, double floorAbs,
                        FactorBuffer &U) {
    const double p0 = opts.dampPercent, inc = opts.dampAutoIncrement;
    if (attempt(p0, floorAbs, U))
      return true;
    if (inc <= 0.0)
      return false;
    // Largest j with p0 + j*inc < maxDampPercent.
    int64_t jmax = 0;
    if (p0 + inc < opts.maxDampPercent)
      jmax =
          static_cast<int64_t>(std::ceil((opts.maxDampPercent - p0) / inc) - 1);
    while (jmax > 0 && p0 + jmax * inc >= opts.maxDampPercent)
      --jmax;
    if (jmax <= 0)
      return false;
    int64_t lo = 0, hi = -1; // lo fails; hi succeeds
    for (int64_t j = 1;; j *= 2) {
      const int64_t jj = std::min(j, jmax);
      if (attempt(p0 + jj * inc, floorAbs, U)) {
        hi = jj;
        break;
      }
      lo = jj;
      if (jj == jmax)
        return false;
    }
    bool lastWasHi = true;
    while (hi - lo > 1) {
      const int64_t mid = lo + (hi - lo) / 2;
      if (attempt(p0 + mid * inc, floorAbs, U)) {
        hi = mid;
        lastWasHi = true;
      } else {
        lo = mid;
        lastWasHi = false;
      }
    }
    if (!lastWasHi)
      return attempt(p0 + hi * inc, floorAbs, U);
    return true;
  }

  /// One factorisation of H' = JPHPJ + floor + λI (J = index reversal so
  /// that a plain lower Cholesky yields the upper-lower factor R, see the
  /// file comment). Leaves U filled and the report updated on success.
  bool attempt(double dampPercent, double floorAbs, FactorBuffer &U) {
    ++report.attempts;
    const size_t KK = static_cast<size_t>(K) * static_cast<size_t>(K);
    A.allocate(KK * sizeof(double));
    double *a = A.f64();
    // Diagonal with the floor of §3.7 step 3: max(d + f, f).
    std::vector<double> diag(baseDiag);
    if (floorAbs > 0.0)
      for (double &d : diag)
        d = std::max(d + floorAbs, floorAbs);
    double mean = 0.0;
    for (double d : diag)
      mean += d;
    mean /= static_cast<double>(K);
    const double lambda = dampPercent * mean;
    double maxDiag = 0.0;
    for (int64_t r = 0; r < K; ++r) {
      const int64_t i = K - 1 - r; // row of the permuted matrix
      const int64_t pi = perm[i];
      double *dst = a + r * K;
      for (int64_t c = 0; c <= r; ++c) {
        const int64_t j = K - 1 - c;
        const int64_t pj = perm[j];
        // Dead columns: H[i,i] = 1 and (for a PSD matrix) a zero row.
        dst[c] =
            (dead[pi] || dead[pj]) ? 0.0 : static_cast<double>(H[pi * K + pj]);
      }
      dst[r] = diag[i] + lambda;
      maxDiag = std::max(maxDiag, dst[r]);
    }
    if (!(maxDiag > 0.0) || !std::isfinite(maxDiag))
      return false;
    const double tol = static_cast<double>(K) * DBL_EPSILON * maxDiag;
    int64_t failIndex = -1;
    if (!invertCholeskyLower(a, K, tol, failIndex))
      return false;
    // U[i][k] = Rinv[i][k] = Linv[K-1-i][K-1-k] for k >= i. Checked first,
    // so that a failed attempt leaves A for the next one to overwrite.
    for (int64_t i = 0; i < K; ++i) {
      const double *src = a + (K - 1 - i) * K;
      for (int64_t k = i; k < K; ++k)
        if (!std::isfinite(static_cast<float>(src[K - 1 - k])))
          return false;
      if (!(static_cast<float>(src[K - 1 - i]) > 0.0f))
        return false;
    }
    // Linv[K-1-i][K-1-k] sits at flat index K*K-1-(i*K+k): reversing the
    // whole array puts U[i][k] at i*K+k. Then each value is narrowed in
    // place, in increasing order: float f lands on bytes [4f, 4f+4), inside
    // doubles that were already read (f/2 <= f). memcpy keeps the byte
    // reuse well-defined. The fp64 half is then given back.
    std::reverse(a, a + KK);
    unsigned char *bytes = A.bytes();
    for (int64_t i = 0; i < K; ++i)
      for (int64_t k = 0; k < K; ++k) {
        const size_t f = static_cast<size_t>(i * K + k);
        double d;
        std::memcpy(&d, bytes + f * sizeof(double), sizeof(double));
        const float v = k < i ? 0.0f : static_cast<float>(d);
        std::memcpy(bytes + f * sizeof(float), &v, sizeof(float));
      }
    A.shrink(KK * sizeof(float));
    std::swap(U, A);
    report.dampUsed = dampPercent;
    report.dampAbsolute = lambda;
    report.diagFloor = floorAbs;
    return true;
  }

  const float *H;
  int64_t K;
  const std::vector<int64_t> &perm;
  const std::vector<char> &dead;
  GPTQReport &report;
  std::vector<double> baseDiag;
  double maxAbsDiag = 1.0;
  FactorBuffer A;
};

std::string layerContext(const std::string &layerName) {
  return layerName.empty() ? std::string("GPTQ") : "GPTQ '" + layerName + "'";
}

Status scaleOverflow(const std::string &ctx, int64_t n, int64_t g,
                     const QuantConfig &cfg) {
  return Status::error(ctx + ": scale of row " + std::to_string(n) +
                       ", group " + std::to_string(g) + " overflows the " +
                       scaleDTypeName(cfg.scaleDType) +
                       " storage dtype (weights too large)");
}

} // namespace

//===----------------------------------------------------------------------===//
// quantizeGPTQ
//===----------------------------------------------------------------------===//

Status qc::quant::quantizeGPTQ(const float *w, int64_t N, int64_t K,
                               const float *hessian, int64_t tokenCount,
                               const QuantConfig &cfg, const GPTQOptions &opts,
                               QuantizedWeight &out, GPTQReport &report,
                               const std::string &layerName,
                               std::vector<float> *fakeQuant) {
  const std::string ctx = layerContext(layerName);
  report = GPTQReport();
  if (N <= 0)
    return Status::error(
        ctx + ": invalid output-feature count N = " + std::to_string(N));
  QC_RETURN_IF_ERROR(cfg.validate(K).withContext(ctx));
  QC_RETURN_IF_ERROR(opts.validate().withContext(ctx));
  if (!w || !hessian)
    return Status::error(ctx + ": null weight or Hessian pointer");
  QC_RETURN_IF_ERROR(checkFinite(w, N, K, layerName));

  const int64_t G = cfg.effectiveGroupSize(K);
  const int64_t ng = numGroupsFor(K, cfg.groupSize);
  const bool perChannel = ng == 1 && cfg.groupSize <= 0;

  // §3.7 step 4: RTN for the whole layer, with the reason recorded.
  auto fallback = [&](const std::string &why) -> Status {
    const std::string reason = ctx + ": " + why;
    if (!opts.fallbackToRTN)
      return Status::error(reason + " (RTN fallback disabled)");
    GPTQReport r;
    r.attempts = report.attempts;
    r.deadColumns = report.deadColumns;
    r.fallbackToRTN = true;
    r.fallbackReason = reason;
    report = r;
    QC_RETURN_IF_ERROR(quantizeRTN(w, N, K, cfg, out, layerName));
    out.gIdx.resize(static_cast<size_t>(K));
    for (int64_t k = 0; k < K; ++k)
      out.gIdx[k] = static_cast<int32_t>(perChannel ? 0 : k / G);
    if (fakeQuant)
      out.dequantize(*fakeQuant);
    return Status::ok();
  };

  if (tokenCount == 0)
    return fallback("no calibration tokens reached this layer (empty "
                    "Hessian)");
  for (int64_t i = 0; i < K * K; ++i)
    if (!std::isfinite(hessian[i]))
      return fallback("Hessian entry (" + std::to_string(i / K) + ", " +
                      std::to_string(i % K) + ") is not finite");

  // §3.2 in the reference order.
  std::vector<float> W(w, w + N * K);
  std::vector<GroupParams> channelParams;
  if (perChannel) {
    // Per-channel params come from W before dead-column zeroing.
    channelParams.resize(static_cast<size_t>(N));
    for (int64_t n = 0; n < N; ++n) {
      channelParams[n] = computeGroupParams(W.data() + n * K, K, cfg);
      if (!std::isfinite(channelParams[n].scale))
        return scaleOverflow(ctx, n, 0, cfg);
    }
  }
  std::vector<char> dead(static_cast<size_t>(K), 0);
  std::vector<double> diag(static_cast<size_t>(K));
  for (int64_t i = 0; i < K; ++i) {
    const float d = hessian[i * K + i];
    if (d == 0.0f) {
      dead[i] = 1;
      ++report.deadColumns;
      for (int64_t n = 0; n < N; ++n)
        W[n * K + i] = 0.0f;
    }
    diag[i] = dead[i] ? 1.0 : static_cast<double>(d);
  }
  // Every input channel dead: the reference rule above would zero the whole
  // layer (its output becomes 0 whatever the input). That is only right
  // when no activation ever reaches the layer, which is the empty-Hessian
  // case already handled with RTN; with a positive token count it means a
  // broken trace, so the layer keeps its weights (RTN) and the report says
  // why, like every other unusable Hessian (§3.7 step 4).
  if (report.deadColumns == K)
    return fallback("the Hessian diagonal is zero for every input channel "
                    "(all-zero Hessian from " +
                    std::to_string(tokenCount) +
                    " tokens); GPTQ would zero the whole layer");
  const bool useStatic = opts.staticGroups && !perChannel;
  std::vector<GroupParams> staticParams;
  if (useStatic) {
    // Before any permutation, on the dead-fixed W, original group order.
    staticParams.resize(static_cast<size_t>(ng * N));
    for (int64_t n = 0; n < N; ++n)
      for (int64_t g = 0; g < ng; ++g) {
        const int64_t k0 = g * G, k1 = std::min(K, k0 + G);
        GroupParams p = computeGroupParams(W.data() + n * K + k0, k1 - k0, cfg);
        if (!std::isfinite(p.scale))
          return scaleOverflow(ctx, n, g, cfg);
        staticParams[g * N + n] = p;
      }
  }
  std::vector<int64_t> perm(static_cast<size_t>(K));
  std::iota(perm.begin(), perm.end(), int64_t(0));
  if (opts.actOrder)
    std::stable_sort(perm.begin(), perm.end(),
                     [&](int64_t a, int64_t b) { return diag[a] > diag[b]; });

  FactorBuffer factorBuffer;
  {
    InverseFactor factor(hessian, K, perm, dead, report);
    if (!factor.run(opts, factorBuffer)) {
      char detail[160];
      std::snprintf(detail, sizeof(detail),
                    " damped Cholesky attempts (relative damping below %g of "
                    "mean(diag), diagonal floor up to %g of max|diag|)",
                    opts.maxDampPercent,
                    opts.diagFloorAttempts > 0
                        ? opts.diagFloorBase *
                              std::pow(10.0, opts.diagFloorAttempts - 1)
                        : 0.0);
      return fallback("Hessian is not positive definite after " +
                      std::to_string(report.attempts) + detail);
    }
  }

  const float *U = factorBuffer.f32();
  // Permuted working copy (the "full matrix" W of §3.3, receiving only the
  // lazy block updates).
  std::vector<float> Wp(static_cast<size_t>(N * K));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < K; ++c)
      Wp[n * K + c] = W[n * K + perm[c]];
  W.clear();
  W.shrink_to_fit();

  out.allocate(N, K, ng, cfg);
  out.gIdx.resize(static_cast<size_t>(K));
  for (int64_t k = 0; k < K; ++k)
    out.gIdx[k] = static_cast<int32_t>(perChannel ? 0 : k / G);
  if (opts.actOrder && !useStatic && !perChannel)
    for (int64_t c = 0; c < K; ++c)
      out.gIdx[perm[c]] = static_cast<int32_t>(c / G); // §3.5
  if (perChannel)
    for (int64_t n = 0; n < N; ++n) {
      out.scales[n] = channelParams[n].scale;
      out.zeros[n] = channelParams[n].zero;
    }
  if (useStatic)
    for (int64_t i = 0; i < ng * N; ++i) {
      out.scales[i] = staticParams[i].scale;
      out.zeros[i] = staticParams[i].zero;
    }
  if (fakeQuant)
    fakeQuant->assign(static_cast<size_t>(N * K), 0.0f);

  const int64_t B = std::min(opts.blockSize, K);
  std::vector<float> E(static_cast<size_t>(N * B));
  std::vector<float> U1(static_cast<size_t>(B * B));
  std::vector<float> w1(static_cast<size_t>(B));
  std::vector<float> groupBuf(static_cast<size_t>(G));
  std::vector<GroupParams> current(static_cast<size_t>(N));
  double loss = 0.0;

  for (int64_t i1 = 0; i1 < K; i1 += B) {
    const int64_t i2 = std::min(i1 + B, K), bs = i2 - i1;
    for (int64_t j = 0; j < bs; ++j)
      std::copy(U + (i1 + j) * K + i1, U + (i1 + j) * K + i2,
                U1.begin() + j * B);
    // Rows are independent given U: each row's block is processed start to
    // finish in L1, reading the block's diagonal part of U from U1.
    for (int64_t n = 0; n < N; ++n) {
      float *wrow = Wp.data() + n * K;
      std::copy(wrow + i1, wrow + i2, w1.begin());
      float *e = E.data() + n * B;
      double rowLoss = 0.0;
      for (int64_t j = 0; j < bs; ++j) {
        const int64_t c = i1 + j, orig = perm[c];
        GroupParams p;
        if (perChannel) {
          p = channelParams[n];
        } else if (useStatic) {
          p = staticParams[(orig / G) * N + n];
        } else if (c % G == 0) {
          const int64_t cend = std::min(K, c + G);
          const float *src = wrow + c; // stale (reference) statistics
          if (opts.freshGroupStats) {
            // Columns inside this block carry the intra-block updates;
            // later ones only the lazy updates they have had.
            const int64_t inBlock = std::min(cend, i2) - c;
            std::copy(w1.begin() + j, w1.begin() + j + inBlock,
                      groupBuf.begin());
            std::copy(wrow + c + inBlock, wrow + cend,
                      groupBuf.begin() + inBlock);
            src = groupBuf.data();
          }
          bool finite = true;
          for (int64_t t = 0; t < cend - c; ++t)
            finite &= std::isfinite(src[t]);
          if (!finite)
            return fallback("GPTQ updates diverged (non-finite weight at "
                            "processed column " +
                            std::to_string(c) + ")");
          p = computeGroupParams(src, cend - c, cfg);
          if (!std::isfinite(p.scale))
            return scaleOverflow(ctx, n, c / G, cfg);
          out.scales[(c / G) * N + n] = p.scale;
          out.zeros[(c / G) * N + n] = p.zero;
          current[n] = p;
        } else {
          p = current[n];
        }
        const float x = w1[j];
        if (!std::isfinite(x))
          return fallback("GPTQ updates diverged (non-finite weight at "
                          "processed column " +
                          std::to_string(c) + ")");
        const int code = quantizeCode(x, p, cfg.bits);
        const float q = dequantizeCode(code, p);
        out.codes[n * K + orig] = static_cast<uint8_t>(code);
        if (fakeQuant)
          (*fakeQuant)[n * K + orig] = q;
        const float d = U1[j * B + j];
        const float diff = x - q;
        const float err = diff / d;
        rowLoss += static_cast<double>(diff) * diff /
                   (static_cast<double>(d) * d) / 2.0;
        e[j] = err;
        // Intra-block update of the remaining columns of this block.
        if (j + 1 < bs)
          microKernel1x1<float, true>(
              w1.data() + j + 1, U1.data() + j * B + j + 1, err, bs - j - 1);
      }
      loss += rowLoss;
    }
    // Lazy batch update of every later column: W[:, i2:] -= E U[i1:i2, i2:].
    if (i2 < K)
      gemmAcc<float, true>(N, K - i2, bs, E.data(), B, U + i1 * K + i2, K,
                           Wp.data() + i2, K);
  }
  report.loss = loss;
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// HessianAccumulator
//===----------------------------------------------------------------------===//

HessianAccumulator::HessianAccumulator(int64_t K)
    : K(K > 0 ? K : 0), h(static_cast<size_t>(this->K * this->K), 0.0f) {}

void HessianAccumulator::reset() {
  tokens = 0;
  std::fill(h.begin(), h.end(), 0.0f);
  mirrored = true;
}

Status HessianAccumulator::add(const float *x, int64_t rows) {
  if (rows < 0)
    return Status::error("Hessian accumulation: negative row count");
  if (rows == 0)
    return Status::ok(); // e.g. an MoE expert that received no token
  if (!x)
    return Status::error("Hessian accumulation: null activation pointer");
  QC_RETURN_IF_ERROR(checkFinite(x, rows, K, "", "activation")
                         .withContext("Hessian accumulation"));
  // Running average in the tokens-counted canonical form (§3.1): the two
  // scalars are rounded to fp32 as the fp32 reference tensors see them.
  const double total = static_cast<double>(tokens + rows);
  const float beta = static_cast<float>(static_cast<double>(tokens) / total);
  const float alpha = static_cast<float>(2.0 / total);
  for (int64_t i = 0; i < K; ++i)
    for (int64_t j = 0; j <= i; ++j)
      h[i * K + j] *= beta;
  tokens += rows;
  mirrored = false;
  // H(lower) += (alpha X^T) X, in chunks of tokens so the transposed chunk
  // stays small; gemmAcc keeps a tile of X in cache while rows of H stream.
  constexpr int64_t TC = 256;
  std::vector<float> xt(static_cast<size_t>(K * std::min(TC, rows)));
  for (int64_t t0 = 0; t0 < rows; t0 += TC) {
    const int64_t tn = std::min(TC, rows - t0);
    for (int64_t t = 0; t < tn; ++t)
      for (int64_t k = 0; k < K; ++k)
        xt[k * tn + t] = alpha * x[(t0 + t) * K + k];
    gemmAcc<float, false>(K, K, tn, xt.data(), tn, x + t0 * K, K, h.data(), K,
                          GemmLowerC);
  }
  return Status::ok();
}

const std::vector<float> &HessianAccumulator::hessian() {
  if (!mirrored) {
    for (int64_t i = 0; i < K; ++i)
      for (int64_t j = i + 1; j < K; ++j)
        h[i * K + j] = h[j * K + i];
    mirrored = true;
  }
  return h;
}
