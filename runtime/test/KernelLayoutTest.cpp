//===- KernelLayoutTest.cpp - Tests of the mma16x64 weight layout ---------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/KernelLayout.h"
#include "qc/runtime/Safetensors.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

namespace qc {
namespace {

/// Random codes/scales/zeros for one layer (never all zeros: codes cover
/// 0..15, scales are signed and of varied magnitude).
struct RandomLayer {
  int64_t N, K, G, numGroups;
  bool sym;
  std::vector<uint8_t> codes;
  std::vector<float> scales, zeros;

  RandomLayer(int64_t N, int64_t K, int64_t G, bool sym, uint32_t seed)
      : N(N), K(K), G(G), sym(sym) {
    numGroups = G == -1 ? 1 : (K + G - 1) / G;
    std::mt19937 rng(seed);
    codes.resize(size_t(N * K));
    for (auto &c : codes)
      c = uint8_t(rng() % 16);
    std::uniform_real_distribution<float> s(-0.05f, 0.05f);
    scales.resize(size_t(numGroups * N));
    for (auto &v : scales) {
      float x = s(rng); // keep away from 0 so no weight vanishes
      v = x + (x >= 0 ? 1e-3f : -1e-3f);
    }
    if (!sym) {
      zeros.resize(size_t(numGroups * N));
      for (auto &z : zeros)
        z = float(rng() % 16);
    }
  }

  Status pack(MMA16x64Tensors &t) const {
    return packMMA16x64(4, N, K, G, sym, codes.data(), scales.data(),
                        sym ? nullptr : zeros.data(), t);
  }
};

/// fp16 bits -> float minus 1024: the code the kernel's magic-number trick
/// recovers from one half of an f16x2.
float magicToCode(uint16_t h) { return f16ToF32(h) - 1024.0f; }

struct Shape {
  int64_t N, K, G;
  bool sym;
};

class KernelLayoutRoundTrip : public ::testing::TestWithParam<Shape> {};

TEST_P(KernelLayoutRoundTrip, BitExactAndPaddingIsZero) {
  Shape sh = GetParam();
  RandomLayer layer(sh.N, sh.K, sh.G, sh.sym,
                    1234u + uint32_t(sh.N * 7 + sh.K));
  MMA16x64Tensors t;
  Status st = layer.pack(t);
  ASSERT_TRUE(st) << st.message();
  ASSERT_TRUE(validateMMA16x64(t));
  EXPECT_EQ(t.Np % 16, 0);
  EXPECT_EQ(t.Kp % 64, 0);
  EXPECT_GE(t.Np, sh.N);
  EXPECT_LT(t.Np - sh.N, 16);
  EXPECT_GE(t.Kp, sh.K);
  EXPECT_LT(t.Kp - sh.K, 64);
  EXPECT_EQ(int64_t(t.qweight.size()), t.Np * t.Kp / 8);

  std::vector<uint8_t> codes;
  std::vector<float> scales, zeros;
  st = unpackMMA16x64(t, codes, scales, zeros);
  ASSERT_TRUE(st) << st.message();
  EXPECT_EQ(codes, layer.codes);
  ASSERT_EQ(scales.size(), layer.scales.size());
  for (size_t i = 0; i < scales.size(); ++i)
    ASSERT_EQ(scales[i], f16ToF32(f32ToF16(layer.scales[i]))) << i;
  EXPECT_EQ(zeros, layer.zeros);

  // Dequantization matches the formula on real positions and is exactly 0
  // on every padded one.
  for (int64_t n = 0; n < t.Np; ++n) {
    for (int64_t k = 0; k < t.Kp; ++k) {
      float w = dequantizeMMA16x64(t, n, k);
      if (n >= sh.N || k >= sh.K) {
        ASSERT_EQ(w, 0.0f) << "padded (" << n << "," << k << ")";
        continue;
      }
      int64_t g = sh.G == -1 ? 0 : k / sh.G;
      float s = f16ToF32(f32ToF16(layer.scales[size_t(g * sh.N + n)]));
      float z = sh.sym ? 8.0f : layer.zeros[size_t(g * sh.N + n)];
      float q = layer.codes[size_t(n * sh.K + k)];
      ASSERT_EQ(w, f16ToF32(f32ToF16(s * (q - z)))) << n << "," << k;
    }
  }
  std::vector<float> all;
  ASSERT_TRUE(dequantizeAllMMA16x64(t, all));
  ASSERT_EQ(int64_t(all.size()), sh.N * sh.K);
  EXPECT_EQ(all[size_t(sh.N * sh.K - 1)],
            dequantizeMMA16x64(t, sh.N - 1, sh.K - 1));
}

// An implementation of the contract written independently of
// mma16x64Locate: walk the words as a kernel lane would, decode each f16x2
// register with the magic-number trick and compare with W at the fragment
// position PTX defines for a0..a7.
TEST_P(KernelLayoutRoundTrip, LaneViewMatchesPtxFragments) {
  Shape sh = GetParam();
  RandomLayer layer(sh.N, sh.K, sh.G, sh.sym, 99u + uint32_t(sh.K));
  MMA16x64Tensors t;
  ASSERT_TRUE(layer.pack(t));
  auto codeAt = [&](int64_t n, int64_t k) -> float {
    if (n >= sh.N)
      return 0.0f;
    if (k >= sh.K) { // zero point of the (clamped) group
      if (sh.sym)
        return 8.0f;
      int64_t g = sh.G == -1 ? 0 : std::min(k / sh.G, layer.numGroups - 1);
      return layer.zeros[size_t(g * sh.N + n)];
    }
    return layer.codes[size_t(n * sh.K + k)];
  };
  const int rowOff[8] = {0, 0, 8, 8, 0, 0, 8, 8};
  const int colOff[8] = {0, 1, 0, 1, 8, 9, 8, 9};
  size_t w = 0;
  for (int64_t nt = 0; nt < t.Np / 16; ++nt)
    for (int64_t kc = 0; kc < t.Kp / 64; ++kc)
      for (int lane = 0; lane < 32; ++lane)
        for (int j = 0; j < 4; ++j, ++w) {
          uint32_t word = uint32_t(t.qweight[w]);
          int64_t n0 = 16 * nt + lane / 4,
                  k0 = 64 * kc + 16 * j + 2 * (lane % 4);
          for (int i = 0; i < 4; ++i) {
            uint32_t reg = ((word >> (4 * i)) & 0x000F000Fu) | 0x64006400u;
            float lo = magicToCode(uint16_t(reg & 0xFFFF));
            float hi = magicToCode(uint16_t(reg >> 16));
            ASSERT_EQ(lo, codeAt(n0 + rowOff[2 * i], k0 + colOff[2 * i]))
                << "word " << w << " a" << i << ".lo";
            ASSERT_EQ(hi,
                      codeAt(n0 + rowOff[2 * i + 1], k0 + colOff[2 * i + 1]))
                << "word " << w << " a" << i << ".hi";
          }
        }
  EXPECT_EQ(w, t.qweight.size());
}

INSTANTIATE_TEST_SUITE_P(
    OddShapes, KernelLayoutRoundTrip,
    ::testing::Values(
        Shape{1, 1, -1, true}, Shape{16, 64, 64, true},
        Shape{17, 172, 32, false}, Shape{17, 172, 32, true},
        Shape{33, 100, -1, false}, Shape{33, 100, -1, true},
        Shape{5, 65, 16,
              false}, // last padded column's k/G passes the last group
        Shape{40, 300, 128, false}, Shape{24, 128, 7, true},
        Shape{48, 256, 128, false}),
    [](const ::testing::TestParamInfo<Shape> &info) {
      const Shape &s = info.param;
      return "N" + std::to_string(s.N) + "_K" + std::to_string(s.K) + "_G" +
             (s.G == -1 ? std::string("ch") : std::to_string(s.G)) +
             (s.sym ? "_sym" : "_asym");
    });

// Hand-checked: one lane's fragment in a single 16x64 tile.
TEST(KernelLayout, HandCheckedNibbleOrder) {
  const int64_t N = 16, K = 64;
  std::vector<uint8_t> codes(N * K, 8); // 8 = symmetric zero point
  // Lane 5 (r = 1, c = 2), j = 2 (columns 32..47): e0..e7 get the codes
  // 1..7 and 15, distinct from each other and from the background 8.
  auto W = [&](int n, int k) -> uint8_t & { return codes[n * K + k]; };
  W(1, 34) = 1;  // e0
  W(1, 35) = 2;  // e1
  W(9, 34) = 3;  // e2
  W(9, 35) = 4;  // e3
  W(1, 42) = 5;  // e4
  W(1, 43) = 6;  // e5
  W(9, 42) = 7;  // e6
  W(9, 43) = 15; // e7
  std::vector<float> scales(N, 0.5f);
  MMA16x64Tensors t;
  ASSERT_TRUE(
      packMMA16x64(4, N, K, -1, true, codes.data(), scales.data(), nullptr, t));
  ASSERT_EQ(t.qweight.size(), 128u);
  // Word (lane 5, j 2) = 5*4 + 2 = 22. Nibbles low to high:
  // p0=e0 p1=e2 p2=e4 p3=e6 p4=e1 p5=e3 p6=e5 p7=e7.
  EXPECT_EQ(uint32_t(t.qweight[22]), 0xF6427531u);
  for (size_t i = 0; i < t.qweight.size(); ++i)
    if (i != 22)
      EXPECT_EQ(uint32_t(t.qweight[i]), 0x88888888u) << i;
  // The kernel's register a0 is (e0 + 1024, e1 + 1024) as f16x2.
  uint32_t a0 = (uint32_t(t.qweight[22]) & 0x000F000Fu) | 0x64006400u;
  EXPECT_EQ(a0, 0x64026401u);
  EXPECT_EQ(f16ToF32(uint16_t(a0 & 0xFFFF)), 1025.0f);
  // Dequantized: 0.5 * (1 - 8).
  EXPECT_EQ(dequantizeMMA16x64(t, 1, 34), -3.5f);
  EXPECT_EQ(dequantizeMMA16x64(t, 9, 43), 3.5f);
}

// Hand-checked: tiles are ordered n-tile major, then 64-column chunk.
TEST(KernelLayout, HandCheckedTileOrder) {
  const int64_t N = 32, K = 128;
  std::vector<uint8_t> codes(N * K, 8);
  codes[16 * K + 64] = 3; // nt 1, kc 1, lane 0, j 0, e0
  codes[0 * K + 127] = 9; // nt 0, kc 1, col 63 of chunk: j 3, lane 3, e5
  std::vector<float> scales(N, 1.0f);
  MMA16x64Tensors t;
  ASSERT_TRUE(
      packMMA16x64(4, N, K, -1, true, codes.data(), scales.data(), nullptr, t));
  // ((1*2 + 1)*32 + 0)*4 + 0 = 384, nibble 0.
  EXPECT_EQ(uint32_t(t.qweight[384]), 0x88888883u);
  // Column 63 in the chunk: j = 3, cc = 15 -> colHi, c8 = 7 -> lane%4 = 3,
  // odd: e5 -> nibble 6. Word ((0*2 + 1)*32 + 3)*4 + 3 = 143.
  EXPECT_EQ(uint32_t(t.qweight[143]), 0x89888888u);
  int64_t word;
  int nibble;
  mma16x64Locate(t.Kp, 0, 127, word, nibble);
  EXPECT_EQ(word, 143);
  EXPECT_EQ(nibble, 6);
}

TEST(KernelLayout, RejectsBadInputsWithClearMessages) {
  std::vector<uint8_t> codes(16 * 64, 3);
  std::vector<float> scales(16, 0.1f), zeros(16, 8.0f);
  MMA16x64Tensors t;
  Status st = packMMA16x64(3, 16, 64, -1, true, codes.data(), scales.data(),
                           nullptr, t);
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("3-bit"), std::string::npos) << st.message();

  st =
      packMMA16x64(4, 16, 64, 0, true, codes.data(), scales.data(), nullptr, t);
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("group size 0"), std::string::npos);

  st =
      packMMA16x64(4, 0, 64, -1, true, codes.data(), scales.data(), nullptr, t);
  EXPECT_FALSE(st);

  codes[5 * 64 + 7] = 16;
  st = packMMA16x64(4, 16, 64, -1, true, codes.data(), scales.data(), nullptr,
                    t);
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("code [5][7] = 16"), std::string::npos)
      << st.message();
  codes[5 * 64 + 7] = 3;

  zeros[4] = 2.5f;
  st = packMMA16x64(4, 16, 64, -1, false, codes.data(), scales.data(),
                    zeros.data(), t);
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("zero point [0][4]"), std::string::npos)
      << st.message();
  zeros[4] = 16.0f;
  EXPECT_FALSE(packMMA16x64(4, 16, 64, -1, false, codes.data(), scales.data(),
                            zeros.data(), t));
  zeros[4] = 8.0f;

  scales[2] = NAN;
  st = packMMA16x64(4, 16, 64, -1, true, codes.data(), scales.data(), nullptr,
                    t);
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("scale [0][2] is not finite"), std::string::npos)
      << st.message();
  scales[2] = 1e6f;
  st = packMMA16x64(4, 16, 64, -1, true, codes.data(), scales.data(), nullptr,
                    t);
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("overflows fp16"), std::string::npos);
  scales[2] = 0.1f;

  EXPECT_FALSE(packMMA16x64(4, 16, 64, -1, true, codes.data(), scales.data(),
                            zeros.data(), t)); // sym with zeros
  EXPECT_FALSE(packMMA16x64(4, 16, 64, -1, false, codes.data(), scales.data(),
                            nullptr, t)); // asym without zeros
}

TEST(KernelLayout, ValidateCatchesInconsistentTensors) {
  RandomLayer layer(20, 70, 32, false, 5);
  MMA16x64Tensors t;
  ASSERT_TRUE(layer.pack(t));
  MMA16x64Tensors bad = t;
  bad.qweight.pop_back();
  Status st = validateMMA16x64(bad);
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("qweight has"), std::string::npos);
  bad = t;
  bad.sym = true; // now zeros must be empty
  EXPECT_FALSE(validateMMA16x64(bad));
  bad = t;
  bad.Kp = 64;
  EXPECT_FALSE(validateMMA16x64(bad));
  bad = t;
  bad.scales.resize(bad.scales.size() + 1);
  std::vector<uint8_t> c;
  std::vector<float> s, z;
  EXPECT_FALSE(unpackMMA16x64(bad, c, s, z));
  EXPECT_TRUE(std::isnan(dequantizeMMA16x64(t, t.Np, 0)));
}

} // namespace
} // namespace qc
