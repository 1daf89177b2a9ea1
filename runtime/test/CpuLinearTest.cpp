//===- CpuLinearTest.cpp - Tests of the CPU path for packed linears -------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/CpuLinear.h"
#include "qc/runtime/Safetensors.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

namespace qc {
namespace {

struct Case {
  int64_t N, K, G;
  bool sym;
  int64_t M;
};

class CpuLinear : public ::testing::TestWithParam<Case> {};

// Against a naive implementation written from the quantization formula
// (codes/scales/zeros before packing), not from the packed tensors.
TEST_P(CpuLinear, MatchesNaiveDequantizeThenMatmul) {
  const Case c = GetParam();
  std::mt19937 rng(uint32_t(c.N * 131 + c.K * 7 + c.M));
  const int64_t G = c.G == -1 ? 1 : (c.K + c.G - 1) / c.G;
  std::vector<uint8_t> codes(size_t(c.N * c.K));
  for (auto &q : codes)
    q = uint8_t(rng() % 16);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> scales(size_t(G * c.N)), zeros;
  for (auto &s : scales)
    s = 0.02f * u(rng) + 0.021f; // > 0
  if (!c.sym) {
    zeros.resize(size_t(G * c.N));
    for (auto &z : zeros)
      z = float(rng() % 16);
  }
  std::vector<float> x(size_t(c.M * c.K));
  for (auto &v : x)
    v = f16ToF32(f32ToF16(u(rng))); // fp16-representable activations
  MMA16x64Tensors t;
  ASSERT_TRUE(packMMA16x64(4, c.N, c.K, c.G, c.sym, codes.data(), scales.data(),
                           c.sym ? nullptr : zeros.data(), t));

  // Naive: dequantize to fp16 values, accumulate in double.
  std::vector<double> naive(size_t(c.M * c.N));
  double norm = 0;
  for (int64_t n = 0; n < c.N; ++n) {
    for (int64_t m = 0; m < c.M; ++m) {
      double acc = 0;
      for (int64_t k = 0; k < c.K; ++k) {
        int64_t g = c.G == -1 ? 0 : k / c.G;
        float s = f16ToF32(f32ToF16(scales[size_t(g * c.N + n)]));
        float z = c.sym ? 8.0f : zeros[size_t(g * c.N + n)];
        float w =
            f16ToF32(f32ToF16(s * (float(codes[size_t(n * c.K + k)]) - z)));
        acc += double(w) * double(x[size_t(m * c.K + k)]);
      }
      naive[size_t(m * c.N + n)] = acc;
      norm += acc * acc;
    }
  }
  ASSERT_GT(norm, 0.0) << "degenerate test data";

  std::vector<float> y;
  Status st = cpuLinearMMA16x64(t, x.data(), c.M, y);
  ASSERT_TRUE(st) << st.message();
  ASSERT_EQ(int64_t(y.size()), c.M * c.N);
  // fp32 accumulation of K products: relative error ~ K * 2^-24.
  double err = relativeL2Error(y.data(), naive.data(), naive.size());
  EXPECT_LT(err, 1e-5) << err;
  for (size_t i = 0; i < y.size(); ++i)
    ASSERT_NEAR(y[i], naive[i], 1e-4 + 1e-4 * std::fabs(naive[i])) << i;

  // The fp16-input overload gives the same result for fp16 values.
  std::vector<uint16_t> xh(x.size());
  for (size_t i = 0; i < x.size(); ++i)
    xh[i] = f32ToF16(x[i]);
  std::vector<float> yh;
  ASSERT_TRUE(cpuLinearMMA16x64(t, xh.data(), c.M, yh));
  EXPECT_EQ(yh, y);

  // The float64 reference on the dequantized weights is the naive result,
  // for all channels and for a subset, with one thread or several.
  std::vector<float> w;
  ASSERT_TRUE(dequantizeAllMMA16x64(t, w));
  std::vector<double> ref;
  referenceLinear(w.data(), c.N, c.K, x.data(), c.M, {}, ref, 3);
  ASSERT_EQ(ref.size(), naive.size());
  for (size_t i = 0; i < ref.size(); ++i)
    ASSERT_NEAR(ref[i], naive[i], 1e-12 * (1 + std::fabs(naive[i])));
  std::vector<int64_t> channels = {c.N - 1, 0};
  std::vector<double> sub;
  referenceLinear(w.data(), c.N, c.K, x.data(), c.M, channels, sub, 1);
  ASSERT_EQ(int64_t(sub.size()), c.M * 2);
  for (int64_t m = 0; m < c.M; ++m) {
    EXPECT_EQ(sub[size_t(m * 2)], ref[size_t(m * c.N + c.N - 1)]);
    EXPECT_EQ(sub[size_t(m * 2 + 1)], ref[size_t(m * c.N)]);
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, CpuLinear,
                         ::testing::Values(Case{17, 172, 32, false, 3},
                                           Case{33, 100, -1, true, 1},
                                           Case{64, 256, 128, false, 5},
                                           Case{5, 65, 16, true, 9}));

TEST(CpuLinearError, RelativeErrorFlagsPoisonAndMismatch) {
  std::vector<double> ref = {1.0, -2.0, 2.0};
  std::vector<float> out = {1.0f, -2.0f, 2.0f};
  EXPECT_EQ(relativeL2Error(out.data(), ref.data(), 3), 0.0);
  out[2] = 2.3f;
  EXPECT_NEAR(relativeL2Error(out.data(), ref.data(), 3), 0.1, 1e-6);
  out[1] = std::numeric_limits<float>::quiet_NaN(); // a poisoned output
  EXPECT_TRUE(std::isnan(relativeL2Error(out.data(), ref.data(), 3)));
  std::vector<double> zero = {0, 0, 0};
  std::vector<float> one = {0, 1, 0};
  EXPECT_TRUE(std::isinf(relativeL2Error(one.data(), zero.data(), 3)));
}

} // namespace
} // namespace qc
