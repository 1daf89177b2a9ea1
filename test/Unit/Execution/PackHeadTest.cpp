//===- PackHeadTest.cpp - Exact 8-bit blocks of an fp32 classifier --------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// packQ8Exact decides whether the decode entry may read the classifier in
// 8-bit blocks (llm-pack-decode-head): only when every value comes back
// bit for bit from what wq.linear dequantizes, s (code - 128). Matrices
// made the way ggml's Q8_0 quantizer makes its blocks must qualify and
// pack into the GPTQ layout; one value off by one ulp, a block whose
// scale is not an f16 value, a negative zero and a width that is not a
// multiple of 32 must not.
//
//===----------------------------------------------------------------------===//

#include "qc/Execution/CpuExecutable.h"
#include "qc/runtime/Safetensors.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

namespace {

/// Rows of Q8_0-dequantized values: per block of 32, d = amax / 127 stored
/// as f16 and q = round(x / d) with the unrounded d (ggml's reference
/// quantizer); blocks listed in `zeroBlocks` are all zero.
std::vector<float> q8Matrix(int64_t rows, int64_t cols, uint64_t seed,
                            std::vector<int64_t> zeroBlocks = {}) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.05f);
  std::vector<float> w(static_cast<size_t>(rows * cols));
  for (int64_t b = 0; b < rows * cols / 32; ++b) {
    float *x = &w[b * 32];
    bool zero =
        std::find(zeroBlocks.begin(), zeroBlocks.end(), b) != zeroBlocks.end();
    float amax = 0;
    for (int64_t i = 0; i < 32; ++i) {
      x[i] = zero ? 0.0f : normal(rng);
      amax = std::max(amax, std::fabs(x[i]));
    }
    float d = amax / 127.0f;
    float d16 = qc::f16ToF32(qc::f32ToF16(d));
    // Integer codes, as ggml stores them (no negative zero).
    for (int64_t i = 0; i < 32; ++i)
      x[i] = d == 0 ? 0.0f
                    : d16 * static_cast<float>(
                                static_cast<int>(std::nearbyint(x[i] / d)));
  }
  return w;
}

TEST(PackQ8Exact, Q8_0BlocksPackIntoTheGptqLayoutBitForBit) {
  const int64_t rows = 5, cols = 96;
  std::vector<float> w = q8Matrix(rows, cols, 7, {4});
  qc::PackedTensor qweight, scales;
  ASSERT_TRUE(mlir::qc::packQ8Exact(w.data(), rows, cols, qweight, scales));
  EXPECT_EQ(qweight.dtype, qc::DType::I32);
  EXPECT_EQ(qweight.shape, (std::vector<int64_t>{cols / 4, rows}));
  EXPECT_EQ(scales.dtype, qc::DType::F16);
  EXPECT_EQ(scales.shape, (std::vector<int64_t>{cols / 32, rows}));
  ASSERT_EQ(qweight.bytes.size(), static_cast<size_t>(cols * rows));
  ASSERT_EQ(scales.bytes.size(), static_cast<size_t>(cols / 32 * rows * 2));
  const auto *words = reinterpret_cast<const uint32_t *>(qweight.bytes.data());
  const auto *s16 = reinterpret_cast<const uint16_t *>(scales.bytes.data());
  for (int64_t n = 0; n < rows; ++n)
    for (int64_t k = 0; k < cols; ++k) {
      uint32_t code = (words[(k / 4) * rows + n] >> (8 * (k % 4))) & 0xFF;
      float s = qc::f16ToF32(s16[(k / 32) * rows + n]);
      float value = s * (static_cast<float>(code) - 128.0f);
      ASSERT_EQ(std::memcmp(&value, &w[n * cols + k], sizeof(float)), 0)
          << "row " << n << " column " << k << ": " << value << " vs "
          << w[n * cols + k];
    }
  // Block 4 (row 1, columns 32..63) is all zero: scale 0, codes 128.
  EXPECT_EQ(s16[1 * rows + 1], 0);
}

TEST(PackQ8Exact, RefusesAnythingThatIsNotExactlyEightBitBlocks) {
  const int64_t rows = 3, cols = 64;
  qc::PackedTensor qweight, scales;
  // One value one ulp off.
  std::vector<float> w = q8Matrix(rows, cols, 11);
  w[70] = std::nextafter(w[70], 1.0f);
  EXPECT_FALSE(mlir::qc::packQ8Exact(w.data(), rows, cols, qweight, scales));
  EXPECT_TRUE(qweight.bytes.empty() && scales.bytes.empty());
  // A block whose largest magnitude gives a scale (1 / 127) that f16
  // cannot hold.
  w = q8Matrix(rows, cols, 11);
  for (int64_t i = 0; i < 32; ++i)
    w[32 + i] = i == 0 ? 1.0f : 0.0f;
  EXPECT_FALSE(mlir::qc::packQ8Exact(w.data(), rows, cols, qweight, scales));
  // A negative zero, which s (128 - 128) = +0 does not give back.
  w = q8Matrix(rows, cols, 11, {2});
  ASSERT_TRUE(mlir::qc::packQ8Exact(w.data(), rows, cols, qweight, scales));
  w[2 * 32 + 5] = -0.0f;
  qc::PackedTensor q2, s2;
  EXPECT_FALSE(mlir::qc::packQ8Exact(w.data(), rows, cols, q2, s2));
  // A width that is not a multiple of the block.
  w = q8Matrix(3, 32, 3);
  EXPECT_FALSE(mlir::qc::packQ8Exact(w.data(), 2, 48, q2, s2));
  // A random fp32 matrix.
  w.assign(64, 0.0f);
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (float &x : w)
    x = u(rng);
  EXPECT_FALSE(mlir::qc::packQ8Exact(w.data(), 1, 64, q2, s2));
}

} // namespace
