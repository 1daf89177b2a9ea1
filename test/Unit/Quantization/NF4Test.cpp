//===- NF4Test.cpp - Tests of NF4 quantization ------------------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Unit tests of NF4.h: the code book against its normal-quantile
// derivation (../shared/docs/ALGORITHMS.md §7.1), the thresholds and their
// lower-code ties, the §7.2 test vector and nibble order, exact round trips
// of code points, error bounds, degenerate and ragged blocks, the 8-bit
// dynamic map and the double quantization of §7.3, and input validation.
//
//===----------------------------------------------------------------------===//

#include "qc/Quantization/Algorithms/NF4.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

using namespace qc;
using namespace qc::quant;

namespace {

/// Standard normal quantile by bisection on erfc (double precision),
/// independent of any table.
double normalPpf(double p) {
  double lo = -10.0, hi = 10.0;
  for (int i = 0; i < 200; ++i) {
    double mid = 0.5 * (lo + hi);
    double cdf = 0.5 * std::erfc(-mid / std::sqrt(2.0));
    (cdf < p ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

std::vector<float> gaussian(int64_t n, unsigned seed, float sigma = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, sigma);
  std::vector<float> v(static_cast<size_t>(n));
  for (float &x : v)
    x = d(rng);
  return v;
}

/// Largest half gap between consecutive NF4 codes: the worst-case error of
/// a normalized value.
float maxHalfGap() {
  float g = 0.0f;
  for (int i = 0; i < 15; ++i)
    g = std::max(g, (kNF4CodeBook[i + 1] - kNF4CodeBook[i]) / 2.0f);
  return g;
}

} // namespace

//===----------------------------------------------------------------------===//
// Code book and thresholds
//===----------------------------------------------------------------------===//

TEST(NF4Test, CodeBookMatchesNormalQuantiles) {
  // §7.1: 8 positive quantiles at linspace(offset, 0.5, 9)[:-1], 7 negative
  // at linspace(offset, 0.5, 8)[:-1], an exact zero, normalized by the max.
  const double offset = 0.9677083;
  std::vector<double> v;
  for (int i = 0; i < 8; ++i)
    v.push_back(normalPpf(offset + (0.5 - offset) * i / 8.0));
  for (int i = 0; i < 7; ++i)
    v.push_back(-normalPpf(offset + (0.5 - offset) * i / 7.0));
  v.push_back(0.0);
  std::sort(v.begin(), v.end());
  const double mx = v.back();
  ASSERT_EQ(v.size(), 16u);
  for (int i = 0; i < 16; ++i)
    EXPECT_NEAR(kNF4CodeBook[i], v[i] / mx, 2e-6) << "code " << i;
  // Structure: ascending, exact -1, 0 at code 7, exact 1.
  EXPECT_EQ(kNF4CodeBook[0], -1.0f);
  EXPECT_EQ(kNF4CodeBook[7], 0.0f);
  EXPECT_EQ(kNF4CodeBook[15], 1.0f);
  for (int i = 0; i < 15; ++i)
    EXPECT_LT(kNF4CodeBook[i], kNF4CodeBook[i + 1]);
}

TEST(NF4Test, ThresholdsAreMidpoints) {
  for (int i = 0; i < 15; ++i) {
    double mid =
        (static_cast<double>(kNF4CodeBook[i]) + kNF4CodeBook[i + 1]) / 2;
    EXPECT_NEAR(kNF4Thresholds[i], mid, 1e-7) << i;
    EXPECT_GT(kNF4Thresholds[i], kNF4CodeBook[i]);
    EXPECT_LT(kNF4Thresholds[i], kNF4CodeBook[i + 1]);
  }
}

TEST(NF4Test, CodesAreNearestAndTiesGoLower) {
  for (int i = 0; i < 16; ++i)
    EXPECT_EQ(nf4Code(kNF4CodeBook[i]), i);
  for (int i = 0; i < 15; ++i) {
    const float t = kNF4Thresholds[i];
    EXPECT_EQ(nf4Code(t), i) << "a value on a midpoint takes the lower code";
    EXPECT_EQ(nf4Code(std::nextafter(t, 2.0f)), i + 1);
    EXPECT_EQ(nf4Code(std::nextafter(t, -2.0f)), i);
  }
  EXPECT_EQ(nf4Code(-1.0f), 0);
  EXPECT_EQ(nf4Code(1.0f), 15);
  EXPECT_EQ(nf4Code(NAN), 0);
  // Exhaustive nearest-code check on a fine grid.
  for (int j = -1000; j <= 1000; ++j) {
    float y = static_cast<float>(j) / 1000.0f;
    int c = nf4Code(y);
    for (int k = 0; k < 16; ++k)
      ASSERT_LE(std::fabs(y - kNF4CodeBook[c]), std::fabs(y - kNF4CodeBook[k]))
          << "y = " << y;
  }
}

TEST(NF4Test, TiesGoLowerThroughQuantize) {
  // A block holding 1.0 has absmax 1 and reciprocal 1, so y == x exactly.
  std::vector<float> w(64, 0.0f);
  w[0] = 1.0f;
  for (int i = 0; i < 15; ++i)
    w[1 + i] = kNF4Thresholds[i];
  NF4Weight q;
  ASSERT_TRUE(quantizeNF4(w.data(), 64, 64, false, q));
  for (int i = 0; i < 15; ++i)
    EXPECT_EQ(q.code(1 + i), i);
}

//===----------------------------------------------------------------------===//
// Quantization
//===----------------------------------------------------------------------===//

TEST(NF4Test, SpecTestVector) {
  // §7.2: [1.0, -1.0, 0.5, 0.0, 0.1, ...] with absmax 1 -> codes 15, 0, 12,
  // 7, 8 -> bytes 0xF0, 0xC7, 0x8? (first element in the high nibble).
  std::vector<float> w(64, 0.0f);
  w[0] = 1.0f;
  w[1] = -1.0f;
  w[2] = 0.5f;
  w[3] = 0.0f;
  w[4] = 0.1f;
  NF4Weight q;
  ASSERT_TRUE(quantizeNF4(w.data(), 64, 64, false, q));
  ASSERT_EQ(q.packed.size(), 32u);
  EXPECT_EQ(q.packed[0], 0xF0);
  EXPECT_EQ(q.packed[1], 0xC7);
  EXPECT_EQ(q.packed[2] >> 4, 0x8);
  EXPECT_EQ(q.packed[2], 0x87); // w[5] = 0 -> code 7
  ASSERT_EQ(q.absmax.size(), 1u);
  EXPECT_EQ(q.absmax[0], 1.0f);
  std::vector<float> d;
  dequantizeNF4(q, d);
  EXPECT_EQ(d[2], kNF4CodeBook[12]);
  EXPECT_EQ(d[4], kNF4CodeBook[8]);
}

TEST(NF4Test, CodePointsRoundTripExactly) {
  for (float absmax : {1.0f, 2.5f, 0.0371f, 1234.5f}) {
    std::vector<float> w(128);
    for (int i = 0; i < 128; ++i)
      w[i] = kNF4CodeBook[(i * 7 + i / 16) % 16] * absmax;
    // Make sure every block reaches +-absmax exactly.
    w[0] = absmax;
    w[64] = -absmax;
    NF4Weight q;
    ASSERT_TRUE(quantizeNF4(w.data(), 128, 64, false, q));
    std::vector<float> d;
    dequantizeNF4(q, d);
    EXPECT_EQ(d, w) << "absmax " << absmax;
  }
}

TEST(NF4Test, ErrorBoundAndNearestCode) {
  for (int64_t bs : {32, 64, 256}) {
    std::vector<float> w = gaussian(4096 + 17, 3, 0.02f);
    NF4Weight q;
    ASSERT_TRUE(
        quantizeNF4(w.data(), static_cast<int64_t>(w.size()), bs, false, q));
    ASSERT_TRUE(q.verify());
    std::vector<float> d;
    dequantizeNF4(q, d);
    const float gap = maxHalfGap();
    for (size_t i = 0; i < w.size(); ++i) {
      const float am = q.absmax[i / bs];
      ASSERT_LE(std::fabs(w[i] - d[i]), am * gap * (1.0f + 1e-5f)) << i;
      // The stored code is the nearest one to the normalized value.
      const float y = w[i] / am;
      const int c = q.code(static_cast<int64_t>(i));
      for (int k = 0; k < 16; ++k)
        ASSERT_LE(std::fabs(y - kNF4CodeBook[c]),
                  std::fabs(y - kNF4CodeBook[k]) + 1e-6f);
    }
    // Absmax is max |x| of each block.
    for (int64_t b = 0; b < q.numBlocks(); ++b) {
      float am = 0.0f;
      for (int64_t i = b * bs; i < std::min<int64_t>(w.size(), (b + 1) * bs);
           ++i)
        am = std::max(am, std::fabs(w[i]));
      EXPECT_EQ(q.absmax[b], am);
    }
  }
}

TEST(NF4Test, AllZeroBlock) {
  std::vector<float> w(192, 0.0f);
  for (int i = 64; i < 128; ++i)
    w[i] = 0.01f * static_cast<float>(i - 96);
  for (bool dq : {false, true}) {
    NF4Weight q;
    ASSERT_TRUE(quantizeNF4(w.data(), 192, 64, dq, q));
    std::vector<float> d;
    dequantizeNF4(q, d);
    for (int i = 0; i < 64; ++i) {
      EXPECT_EQ(q.code(i), 7) << "zero maps to the exact-zero code";
      EXPECT_EQ(d[i], 0.0f);
    }
    for (float v : d)
      EXPECT_TRUE(std::isfinite(v));
  }
}

TEST(NF4Test, OddLengthAndPartialBlock) {
  std::vector<float> w = gaussian(101, 4);
  NF4Weight q;
  ASSERT_TRUE(quantizeNF4(w.data(), 101, 64, false, q));
  EXPECT_EQ(q.numBlocks(), 2);
  EXPECT_EQ(q.packed.size(), 51u);
  EXPECT_EQ(q.packed[50] & 0xF, 0) << "odd length pads the low nibble with 0";
  float am = 0.0f;
  for (int i = 64; i < 101; ++i)
    am = std::max(am, std::fabs(w[i]));
  EXPECT_EQ(q.absmax[1], am);
  std::vector<float> d;
  dequantizeNF4(q, d);
  EXPECT_EQ(d.size(), 101u);
  EXPECT_EQ(d[100], kNF4CodeBook[q.packed[50] >> 4] * am);
}

TEST(NF4Test, Validation) {
  std::vector<float> w = gaussian(256, 5);
  NF4Weight q;
  for (int64_t bs : {0, 16, 48, 100, 8192})
    EXPECT_FALSE(quantizeNF4(w.data(), 256, bs, false, q)) << bs;
  for (int64_t bs : {32, 64, 128, 4096})
    EXPECT_TRUE(quantizeNF4(w.data(), 256, bs, false, q)) << bs;
  EXPECT_FALSE(quantizeNF4(w.data(), 0, 64, false, q));
  EXPECT_FALSE(quantizeNF4(nullptr, 256, 64, false, q));
  w[77] = NAN;
  Status s = quantizeNF4(w.data(), 256, 64, false, q);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("index 77"), std::string::npos) << s.message();

  // verify() catches inconsistent buffers.
  std::vector<float> ok = gaussian(256, 6);
  ASSERT_TRUE(quantizeNF4(ok.data(), 256, 64, true, q));
  ASSERT_TRUE(q.verify());
  NF4Weight bad = q;
  bad.packed.pop_back();
  EXPECT_FALSE(bad.verify());
  bad = q;
  bad.nestedQuantMap.pop_back();
  EXPECT_FALSE(bad.verify());
  bad = q;
  bad.absmaxCodes.push_back(0);
  EXPECT_FALSE(bad.verify());
  bad = q;
  bad.absmax.push_back(1.0f);
  EXPECT_FALSE(bad.verify());
}

//===----------------------------------------------------------------------===//
// Double quantization
//===----------------------------------------------------------------------===//

TEST(NF4Test, DynamicMapStructure) {
  const std::vector<float> &m = dynamicMap8();
  ASSERT_EQ(m.size(), 256u);
  for (int i = 0; i < 255; ++i)
    ASSERT_LT(m[i], m[i + 1]) << i;
  EXPECT_EQ(m[127], 0.0f);
  EXPECT_EQ(m[255], 1.0f);
  // Most negative: -(1 - 0.9/64 / 2) = -0.99296875 (§7.3).
  EXPECT_NEAR(m[0], -0.99296875f, 1e-6f);
  // Symmetric apart from the extra +1: m[i] == -m[254 - i].
  for (int i = 0; i < 127; ++i)
    EXPECT_EQ(m[i], -m[254 - i]) << i;
  // Smallest magnitude: 1e-6 * (0.1 + 1) / 2.
  EXPECT_NEAR(m[128], 5.5e-7f, 1e-12f);
  // Seven decades of 2^i entries each (for positives).
  int perDecade[7] = {0};
  for (int i = 128; i < 255; ++i)
    ++perDecade[static_cast<int>(std::floor(std::log10(m[i]) + 7.0))];
  for (int i = 0; i < 7; ++i)
    EXPECT_EQ(perDecade[i], 1 << i) << "decade " << i;
}

TEST(NF4Test, NearestCodeLowerTie) {
  const float map[3] = {0.0f, 1.0f, 2.0f};
  EXPECT_EQ(nearestCodeLowerTie(map, 3, 0.5f), 0);
  EXPECT_EQ(nearestCodeLowerTie(map, 3, std::nextafter(0.5f, 1.0f)), 1);
  EXPECT_EQ(nearestCodeLowerTie(map, 3, 1.5f), 1);
  EXPECT_EQ(nearestCodeLowerTie(map, 3, 1.6f), 2);
  EXPECT_EQ(nearestCodeLowerTie(map, 3, -5.0f), 0);
  EXPECT_EQ(nearestCodeLowerTie(map, 3, 5.0f), 2);
  const std::vector<float> &m = dynamicMap8();
  std::mt19937 rng(8);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (int i = 0; i < 2000; ++i) {
    float y = u(rng);
    if (i % 3 == 0)
      y *= 1e-3f;
    int c = nearestCodeLowerTie(m.data(), 256, y);
    for (int k = 0; k < 256; ++k)
      ASSERT_LE(std::fabs(y - m[c]), std::fabs(y - m[k])) << y;
  }
}

TEST(NF4Test, DoubleQuantStatistics) {
  // 600 blocks of 64 -> 3 nested blocks of 256 (the last one ragged).
  std::vector<float> w = gaussian(600 * 64, 9, 0.03f);
  // Vary the block scales so that the absmax values spread out.
  for (size_t i = 0; i < w.size(); ++i)
    w[i] *= 1.0f + static_cast<float>((i / 64) % 13) / 4.0f;
  NF4Weight plain, dq;
  ASSERT_TRUE(
      quantizeNF4(w.data(), static_cast<int64_t>(w.size()), 64, false, plain));
  ASSERT_TRUE(
      quantizeNF4(w.data(), static_cast<int64_t>(w.size()), 64, true, dq));
  ASSERT_TRUE(dq.verify());
  EXPECT_TRUE(dq.absmax.empty());
  EXPECT_EQ(dq.absmaxCodes.size(), 600u);
  EXPECT_EQ(dq.nestedAbsmax.size(), 3u);
  EXPECT_EQ(dq.nestedQuantMap, dynamicMap8());
  EXPECT_EQ(dq.nestedBlockSize, 256);
  // The 4-bit codes do not depend on how the absmax is stored.
  EXPECT_EQ(dq.packed, plain.packed);

  double mean = 0.0;
  for (float a : plain.absmax)
    mean += a;
  mean /= 600.0;
  EXPECT_NEAR(dq.nestedOffset, mean, 1e-7 * mean);

  // Each nested absmax is max |absmax - offset| of its block, and the
  // reconstructed absmax is within half a map gap (<= 0.0071 near +-1).
  std::vector<float> am;
  dq.blockAbsmax(am);
  for (int64_t j = 0; j < 3; ++j) {
    float mx = 0.0f;
    for (int64_t b = j * 256; b < std::min<int64_t>(600, (j + 1) * 256); ++b)
      mx = std::max(mx, std::fabs(plain.absmax[b] - dq.nestedOffset));
    EXPECT_EQ(dq.nestedAbsmax[j], mx);
  }
  // The error scales with the nested block's spread, not with the block's
  // own absmax, so small absmax values see larger relative errors; on
  // average the statistics stay within a fraction of a percent.
  double meanRel = 0.0;
  for (int64_t b = 0; b < 600; ++b) {
    const float bound = 0.0071f * dq.nestedAbsmax[b / 256] + 1e-7f;
    ASSERT_LE(std::fabs(am[b] - plain.absmax[b]), bound) << b;
    meanRel += std::fabs(am[b] - plain.absmax[b]) /
               static_cast<double>(plain.absmax[b]) / 600.0;
  }
  EXPECT_LT(meanRel, 0.01);
  // Each absmax code is the map entry nearest to (absmax - offset) / absmax2.
  const std::vector<float> &m = dynamicMap8();
  for (int64_t b = 0; b < 600; ++b) {
    const float y =
        (plain.absmax[b] - dq.nestedOffset) / dq.nestedAbsmax[b / 256];
    const float chosen = std::fabs(y - m[dq.absmaxCodes[b]]);
    for (int k = 0; k < 256; ++k)
      ASSERT_LE(chosen, std::fabs(y - m[k]) + 1e-6f) << b;
  }

  // The double-quantized tensor stays close to the plain one.
  std::vector<float> d1, d2;
  dequantizeNF4(plain, d1);
  dequantizeNF4(dq, d2);
  double err1 = 0.0, diff = 0.0;
  for (size_t i = 0; i < w.size(); ++i) {
    err1 += std::fabs(w[i] - d1[i]);
    diff += std::fabs(d1[i] - d2[i]);
  }
  EXPECT_LT(diff, 0.05 * err1);
}

TEST(NF4Test, DoubleQuantOfEqualAbsmaxIsExact) {
  // Every block has absmax 2.5: offset = 2.5, a = 0 everywhere, nested
  // absmax 0 and code 127 (the map's 0), so the absmax comes back exactly.
  std::vector<float> w = gaussian(64 * 300, 10, 0.3f);
  for (size_t b = 0; b < 300; ++b) {
    for (size_t i = 0; i < 64; ++i)
      w[b * 64 + i] = std::max(-2.0f, std::min(2.0f, w[b * 64 + i]));
    w[b * 64 + b % 64] = (b % 2) ? 2.5f : -2.5f;
  }
  NF4Weight plain, dq;
  ASSERT_TRUE(quantizeNF4(w.data(), 64 * 300, 64, false, plain));
  ASSERT_TRUE(quantizeNF4(w.data(), 64 * 300, 64, true, dq));
  EXPECT_EQ(dq.nestedOffset, 2.5f);
  for (uint8_t c : dq.absmaxCodes)
    EXPECT_EQ(c, 127);
  std::vector<float> d1, d2;
  dequantizeNF4(plain, d1);
  dequantizeNF4(dq, d2);
  EXPECT_EQ(d1, d2);
}
