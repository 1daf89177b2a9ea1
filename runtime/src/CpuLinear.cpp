//===- CpuLinear.cpp - CPU path and references for packed linears ---------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/CpuLinear.h"
#include "qc/runtime/ThreadPool.h"

#include "qc/runtime/Safetensors.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace qc {

Status cpuLinearMMA16x64(const MMA16x64Tensors &t, const float *x, int64_t M,
                         std::vector<float> &y) {
  if (M < 0)
    return Status::error("cpuLinearMMA16x64: M = " + std::to_string(M));
  std::vector<float> w;
  QC_RETURN_IF_ERROR(dequantizeAllMMA16x64(t, w));
  const int64_t N = t.N, K = t.K;
  y.assign(size_t(M * N), 0.0f);
  for (int64_t m = 0; m < M; ++m) {
    const float *xr = x + m * K;
    for (int64_t n = 0; n < N; ++n) {
      const float *wr = w.data() + n * K;
      float acc = 0.0f;
      for (int64_t k = 0; k < K; ++k)
        acc += xr[k] * wr[k];
      y[size_t(m * N + n)] = acc;
    }
  }
  return Status::ok();
}

Status cpuLinearMMA16x64(const MMA16x64Tensors &t, const uint16_t *x, int64_t M,
                         std::vector<float> &y) {
  if (M < 0)
    return Status::error("cpuLinearMMA16x64: M = " + std::to_string(M));
  std::vector<float> xf(size_t(M * t.K));
  for (size_t i = 0; i < xf.size(); ++i)
    xf[i] = f16ToF32(x[i]);
  return cpuLinearMMA16x64(t, xf.data(), M, y);
}

void referenceLinear(const float *w, int64_t N, int64_t K, const float *x,
                     int64_t M, const std::vector<int64_t> &channels,
                     std::vector<double> &y, unsigned threads) {
  std::vector<int64_t> all;
  const std::vector<int64_t> *ch = &channels;
  if (channels.empty()) {
    all.resize(size_t(N));
    for (int64_t n = 0; n < N; ++n)
      all[size_t(n)] = n;
    ch = &all;
  }
  const int64_t C = int64_t(ch->size());
  y.assign(size_t(M * C), 0.0);
  // Contiguous ranges of channels per item: no shared writes, so the
  // result does not depend on the thread count.
  const int64_t workers =
      threads == 0 ? workerCount(C)
                   : std::max<int64_t>(1, std::min<int64_t>(threads, C));
  const int64_t per = (C + workers - 1) / std::max<int64_t>(workers, 1);
  auto work = [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const float *wr = w + (*ch)[size_t(c)] * K;
      for (int64_t m = 0; m < M; ++m) {
        const float *xr = x + m * K;
        double acc = 0.0;
        for (int64_t k = 0; k < K; ++k)
          acc += double(xr[k]) * double(wr[k]);
        y[size_t(m * C + c)] = acc;
      }
    }
  };
  parallelFor(workers, workers, [&](int64_t i, int64_t) {
    work(i * per, std::min(C, (i + 1) * per));
  });
}

double relativeL2Error(const float *out, const double *ref, size_t n) {
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(out[i]))
      return std::numeric_limits<double>::quiet_NaN();
    double d = double(out[i]) - ref[i];
    num += d * d;
    den += ref[i] * ref[i];
  }
  if (den == 0.0)
    return num == 0.0 ? 0.0 : std::numeric_limits<double>::infinity();
  return std::sqrt(num / den);
}

} // namespace qc
