//===- CpuLinear.h - CPU path and references for packed linears -*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// The computation the GPU kernels perform, y[M, N] = x[M, K] W^T with W
// stored in the mma16x64 layout, done on the CPU two ways:
//
// - cpuLinearMMA16x64: the CPU path. W is dequantized to its fp16 values
//   (exactly the kernels' dequantization) and accumulated in fp32, which is
//   also what the kernels do, so results agree to accumulation order.
// - referenceLinear: a float64 reference over the same fp16 weights, used to
//   verify GPU results (||out - ref|| / ||ref||) without the reference's own
//   rounding mattering.
//
//===----------------------------------------------------------------------===//

#ifndef QC_RUNTIME_CPULINEAR_H
#define QC_RUNTIME_CPULINEAR_H

#include "qc/runtime/KernelLayout.h"
#include "qc/runtime/Status.h"

#include <cstdint>
#include <vector>

namespace qc {

/// y = x W^T on the CPU: x fp32 [M, K] row-major, y fp32 [M, N]. Fails on an
/// invalid `t` or M < 0.
Status cpuLinearMMA16x64(const MMA16x64Tensors &t, const float *x, int64_t M,
                         std::vector<float> &y);

/// As above with x given as fp16 bit patterns.
Status cpuLinearMMA16x64(const MMA16x64Tensors &t, const uint16_t *x, int64_t M,
                         std::vector<float> &y);

/// float64 reference y[m][c] = sum_k x[m][k] * w[n][k] for the output
/// channels n = channels[c] (all N, in order, when `channels` is empty).
/// w: [N, K] row-major (e.g. from dequantizeAllMMA16x64); y: [M, C]. Uses up
/// to `threads` threads of the process pool (0: its size, ThreadPool.h).
void referenceLinear(const float *w, int64_t N, int64_t K, const float *x,
                     int64_t M, const std::vector<int64_t> &channels,
                     std::vector<double> &y, unsigned threads = 0);

/// ||out - ref||_2 / ||ref||_2 over n values. NaN when any out value is not
/// finite (so a poisoned, unwritten output never passes), infinity when ref
/// is all zeros but out is not.
double relativeL2Error(const float *out, const double *ref, size_t n);

} // namespace qc

#endif // QC_RUNTIME_CPULINEAR_H
