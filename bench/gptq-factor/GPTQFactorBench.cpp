//===- GPTQFactorBench.cpp - Hand-written vs LAPACK inverse Cholesky ------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Times qc::quant::invertCholeskyLower (the inverse-Hessian factor GPTQ
// computes once per layer, and again per damping attempt) with the
// hand-written blocked kernels and with LAPACK, over a range of K, and
// prints the smallest K from which LAPACK is faster: the value
// kLapackMinK in lib/Quantization/Algorithms/GPTQ.cpp should hold. Each
// matrix is a Hessian-like X^T X / T + 1% damping of random activations
// with a few correlated channels, so the factorisation sees the
// conditioning GPTQ does. Also prints the largest relative difference
// between the two results (they agree up to rounding, not bit for bit).
//
// Not a test: timings depend on the machine and its load. Run it on a
// quiet machine:  build/bin/qc-bench-gptq-factor [--reps N] [K ...]
//
//===----------------------------------------------------------------------===//

#include "qc/Quantization/Algorithms/GPTQ.h"

#include <algorithm>
#include <cfloat>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

using qc::quant::FactorBackend;

namespace {

/// Lower triangle of a damped Hessian-like [K, K] matrix (row-major).
std::vector<double> makeHessian(int64_t K, uint32_t seed) {
  const int64_t T = std::max<int64_t>(2 * K, 256);
  std::mt19937 rng(seed);
  std::normal_distribution<double> nd(0.0, 1.0);
  std::vector<double> X(static_cast<size_t>(T * K));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t k = 0; k < K; ++k) {
      double v = nd(rng);
      // Every eighth channel follows its neighbour: a correlated, less
      // well-conditioned Hessian, like real activations.
      if (k % 8 == 7)
        v = 0.9 * X[t * K + k - 1] + 0.1 * v;
      X[t * K + k] = v;
    }
  std::vector<double> H(static_cast<size_t>(K * K), 0.0);
  for (int64_t t = 0; t < T; ++t) {
    const double *x = X.data() + t * K;
    for (int64_t i = 0; i < K; ++i)
      for (int64_t j = 0; j <= i; ++j)
        H[i * K + j] += x[i] * x[j];
  }
  double mean = 0.0;
  for (int64_t i = 0; i < K; ++i)
    mean += H[i * K + i];
  mean /= static_cast<double>(K);
  for (int64_t i = 0; i < K; ++i)
    H[i * K + i] += 0.01 * mean;
  return H;
}

/// Best-of-`reps` seconds of one backend on a copy of `H`; the last result
/// is left in `out`.
double timeBackend(const std::vector<double> &H, int64_t K,
                   FactorBackend backend, int reps, std::vector<double> &out) {
  double maxDiag = 0.0;
  for (int64_t i = 0; i < K; ++i)
    maxDiag = std::max(maxDiag, H[i * K + i]);
  const double tol = static_cast<double>(K) * DBL_EPSILON * maxDiag;
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    out = H;
    int64_t fail = -1;
    auto t0 = std::chrono::steady_clock::now();
    bool ok = qc::quant::invertCholeskyLower(out.data(), K, tol, fail, backend);
    auto t1 = std::chrono::steady_clock::now();
    if (!ok) {
      std::fprintf(stderr, "K=%lld: factorisation failed at %lld\n",
                   static_cast<long long>(K), static_cast<long long>(fail));
      std::exit(1);
    }
    best = std::min(best, std::chrono::duration<double>(t1 - t0).count());
  }
  return best;
}

} // namespace

int main(int argc, char **argv) {
  int reps = 5;
  std::vector<int64_t> sizes;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
      reps = std::max(1, std::atoi(argv[++i]));
      continue;
    }
    char *end = nullptr;
    long long k = std::strtoll(argv[i], &end, 10);
    if (!end || *end || k <= 0) {
      std::fprintf(stderr, "usage: qc-bench-gptq-factor [--reps N] [K ...]\n");
      return 2;
    }
    sizes.push_back(k);
  }
  if (sizes.empty())
    sizes = {16,  32,  48,  64,  96,   128,  192,
             256, 384, 512, 768, 1024, 1536, 2048};

  std::printf("%6s %14s %14s %8s %12s\n", "K", "hand-written", "lapack",
              "speedup", "max rel diff");
  int64_t crossover = -1;
  bool lapackWinsFromHere = false;
  for (int64_t K : sizes) {
    std::vector<double> H = makeHessian(K, static_cast<uint32_t>(K));
    std::vector<double> a, b;
    double th = timeBackend(H, K, FactorBackend::HandWritten, reps, a);
    double tl = timeBackend(H, K, FactorBackend::Lapack, reps, b);
    double maxRel = 0.0, maxAbs = 0.0;
    for (int64_t i = 0; i < K; ++i)
      for (int64_t j = 0; j <= i; ++j)
        maxAbs = std::max(maxAbs, std::fabs(a[i * K + j]));
    for (int64_t i = 0; i < K; ++i)
      for (int64_t j = 0; j <= i; ++j)
        maxRel =
            std::max(maxRel, std::fabs(a[i * K + j] - b[i * K + j]) / maxAbs);
    std::printf("%6lld %12.3f ms %12.3f ms %7.2fx %12.2e\n",
                static_cast<long long>(K), th * 1e3, tl * 1e3, th / tl, maxRel);
    // The crossover: the first K from which LAPACK stays faster.
    if (tl < th) {
      if (!lapackWinsFromHere)
        crossover = K;
      lapackWinsFromHere = true;
    } else {
      lapackWinsFromHere = false;
      crossover = -1;
    }
  }
  if (crossover > 0)
    std::printf("LAPACK is faster from K = %lld on (kLapackMinK is %lld)\n",
                static_cast<long long>(crossover),
                static_cast<long long>(qc::quant::kLapackMinK));
  else
    std::printf("LAPACK is not faster at the largest K measured "
                "(kLapackMinK is %lld)\n",
                static_cast<long long>(qc::quant::kLapackMinK));
  return 0;
}
