//===- PackingTest.cpp - Tests of the packed weight layouts -----*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Unit tests of Packing.h: hand-computed words for every bit width, the
// 3-bit spill layout checked against the three-word formula of
// ../shared/docs/ALGORITHMS.md §8.1 written out independently here, the v1
// zero-minus-one convention, AWQ's nibble order (§8.2), bit-exact pack /
// unpack round trips for every layout, width and shape (ragged groups,
// act-order g_idx, §14.6 padding), and every refusal and validation error.
//
//===----------------------------------------------------------------------===//

#include "qc/Quantization/Algorithms/Packing.h"

#include "qc/runtime/Safetensors.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

using namespace qc;
using namespace qc::quant;

namespace {

/// A random QuantizedWeight with fp16-exact scales (both signs, as AutoRound
/// produces) and zeros in [zmin, qmax] (all 2^(b-1) when symmetric).
QuantizedWeight randomWeight(int64_t N, int64_t K, int bits, int64_t G,
                             bool sym, unsigned seed, int zmin = 1,
                             bool actOrder = false) {
  std::mt19937 rng(seed);
  QuantConfig cfg;
  cfg.bits = bits;
  cfg.groupSize = G;
  cfg.sym = sym;
  cfg.scaleDType = ScaleDType::F16;
  QuantizedWeight q;
  const int64_t ng = numGroupsFor(K, G);
  q.allocate(N, K, ng, cfg);
  const int qmax = qmaxForBits(bits);
  std::uniform_int_distribution<int> code(0, qmax), zero(zmin, qmax);
  std::uniform_real_distribution<float> mag(1e-3f, 2.0f);
  for (auto &c : q.codes)
    c = static_cast<uint8_t>(code(rng));
  for (size_t i = 0; i < q.scales.size(); ++i) {
    float s = castToScaleDType(mag(rng), ScaleDType::F16);
    q.scales[i] = (rng() & 1) ? -s : s;
    q.zeros[i] = sym ? static_cast<float>(1 << (bits - 1))
                     : static_cast<float>(zero(rng));
  }
  if (actOrder) {
    q.gIdx.resize(static_cast<size_t>(K));
    std::uniform_int_distribution<int> grp(0, static_cast<int>(ng - 1));
    for (auto &g : q.gIdx)
      g = grp(rng);
  }
  return q;
}

/// Field-by-field equality (so dequantization is bit-identical too).
void expectSame(const QuantizedWeight &a, const QuantizedWeight &b) {
  EXPECT_EQ(a.rows, b.rows);
  EXPECT_EQ(a.cols, b.cols);
  EXPECT_EQ(a.bits, b.bits);
  EXPECT_EQ(a.groupSize, b.groupSize);
  EXPECT_EQ(a.sym, b.sym);
  EXPECT_EQ(a.codes, b.codes);
  EXPECT_EQ(a.scales, b.scales);
  EXPECT_EQ(a.zeros, b.zeros);
  EXPECT_EQ(a.gIdx, b.gIdx);
  std::vector<float> da, db;
  a.dequantize(da);
  b.dequantize(db);
  EXPECT_EQ(da, db);
}

uint32_t u32(int32_t v) { return static_cast<uint32_t>(v); }

/// Extracts bits [lo, lo + n) of `v`.
uint32_t bitsOf(uint32_t v, int lo, int n) {
  return (v >> lo) & ((1u << n) - 1);
}

/// Decodes 32 3-bit values from three words with the explicit formula of
/// §8.1 (w0: v0..v9 and the low 2 bits of v10; w1: bit 2 of v10, v11..v20,
/// low bit of v21; w2: high 2 bits of v21, v22..v31). Independent of the
/// stream implementation under test.
void decode3Bit(uint32_t w0, uint32_t w1, uint32_t w2, uint8_t *v) {
  for (int j = 0; j < 10; ++j)
    v[j] = static_cast<uint8_t>(bitsOf(w0, 3 * j, 3));
  v[10] = static_cast<uint8_t>(bitsOf(w0, 30, 2) | (bitsOf(w1, 0, 1) << 2));
  for (int j = 0; j < 10; ++j)
    v[11 + j] = static_cast<uint8_t>(bitsOf(w1, 3 * j + 1, 3));
  v[21] = static_cast<uint8_t>(bitsOf(w1, 31, 1) | (bitsOf(w2, 0, 2) << 1));
  for (int j = 0; j < 10; ++j)
    v[22 + j] = static_cast<uint8_t>(bitsOf(w2, 3 * j + 2, 3));
}

/// Reads code r of a GPTQ column the "textbook" way for b in {2, 4, 8}:
/// word r / (32/b), shift b * (r % (32/b)).
uint32_t gptqTextbookCode(const GPTQTensors &t, int64_t k, int64_t n) {
  if (t.bits == 3) {
    uint8_t v[32];
    int64_t blk = k / 32;
    decode3Bit(u32(t.qweight[(3 * blk) * t.N + n]),
               u32(t.qweight[(3 * blk + 1) * t.N + n]),
               u32(t.qweight[(3 * blk + 2) * t.N + n]), v);
    return v[k % 32];
  }
  const int per = 32 / t.bits;
  return bitsOf(u32(t.qweight[(k / per) * t.N + n]), t.bits * (k % per),
                t.bits);
}

/// Zero point of (g, n) from GPTQ tensors the textbook way.
uint32_t gptqTextbookZero(const GPTQTensors &t, int64_t g, int64_t n) {
  const int64_t cols = t.qzerosCols();
  uint32_t stored;
  if (t.bits == 3) {
    uint8_t v[32];
    int64_t blk = n / 32;
    const int32_t *row = t.qzeros.data() + g * cols;
    decode3Bit(u32(row[3 * blk]), u32(row[3 * blk + 1]), u32(row[3 * blk + 2]),
               v);
    stored = v[n % 32];
  } else {
    const int per = 32 / t.bits;
    stored =
        bitsOf(u32(t.qzeros[g * cols + n / per]), t.bits * (n % per), t.bits);
  }
  return t.format == GPTQFormat::V1 ? stored + 1 : stored;
}

/// §8.1 dequantization straight from the packed tensors:
/// W[n, k] = scales[g, n] * (q[k, n] - z[g, n]) with g = g_idx[k].
std::vector<float> dequantGPTQTextbook(const GPTQTensors &t) {
  std::vector<float> w(static_cast<size_t>(t.N * t.K));
  for (int64_t n = 0; n < t.N; ++n)
    for (int64_t k = 0; k < t.K; ++k) {
      // Word-padding columns beyond g_idx belong to the last group.
      const int64_t g =
          k < static_cast<int64_t>(t.gIdx.size()) ? t.gIdx[k] : t.numGroups - 1;
      const float s = f16ToF32(t.scales[g * t.N + n]);
      const float q = static_cast<float>(gptqTextbookCode(t, k, n));
      const float z = static_cast<float>(gptqTextbookZero(t, g, n));
      w[n * t.K + k] = s * (q - z);
    }
  return w;
}

} // namespace

//===----------------------------------------------------------------------===//
// Bit streams: words computed by hand
//===----------------------------------------------------------------------===//

TEST(PackingTest, StreamHandWords) {
  // 4-bit: 0..7 LSB first.
  uint8_t c4[8] = {0, 1, 2, 3, 4, 5, 6, 7};
  int32_t w = 0;
  packCodeStream(c4, 1, 8, 4, &w, 1);
  EXPECT_EQ(u32(w), 0x76543210u);
  // 2-bit: sixteen codes 0,1,2,3,... -> byte 0b11100100 = 0xE4 repeated.
  uint8_t c2[16];
  for (int i = 0; i < 16; ++i)
    c2[i] = static_cast<uint8_t>(i % 4);
  packCodeStream(c2, 1, 16, 2, &w, 1);
  EXPECT_EQ(u32(w), 0xE4E4E4E4u);
  // 8-bit: 1, 2, 3, 4.
  uint8_t c8[4] = {1, 2, 3, 4};
  packCodeStream(c8, 1, 4, 8, &w, 1);
  EXPECT_EQ(u32(w), 0x04030201u);
  // 3-bit: eleven 7s fill the first word and spill bit 2 of code 10.
  uint8_t c3[11];
  for (auto &c : c3)
    c = 7;
  int32_t w3[2] = {0, 0};
  packCodeStream(c3, 1, 11, 3, w3, 1);
  EXPECT_EQ(u32(w3[0]), 0xFFFFFFFFu);
  EXPECT_EQ(u32(w3[1]), 0x1u);
}

TEST(PackingTest, StreamPartialWordAndStrides) {
  // Five 4-bit codes: one word, high nibbles zero.
  uint8_t c[5] = {0xF, 0x1, 0x2, 0x3, 0xA};
  int32_t w = -1;
  packCodeStream(c, 1, 5, 4, &w, 1);
  EXPECT_EQ(u32(w), 0x000A321Fu);
  // Strided codes and words: every other code into every third word.
  uint8_t codes[20];
  for (int i = 0; i < 20; ++i)
    codes[i] = static_cast<uint8_t>(i);
  int32_t words[6] = {0, 0, 0, 0, 0, 0};
  // Codes 0,2,...,18 (10 codes, 8-bit) -> 3 words at stride 2.
  packCodeStream(codes, 2, 10, 8, words, 2);
  EXPECT_EQ(u32(words[0]), 0x06040200u);
  EXPECT_EQ(u32(words[2]), 0x0E0C0A08u);
  EXPECT_EQ(u32(words[4]), 0x00001210u);
  EXPECT_EQ(words[1], 0);
  uint8_t back[10];
  unpackCodeStream(words, 2, 10, 8, back, 1);
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(back[i], 2 * i);
}

TEST(PackingTest, StreamRoundTripsEveryWidth) {
  std::mt19937 rng(7);
  for (int bits : {1, 2, 3, 4, 5, 8})
    for (int64_t count : {1, 7, 31, 32, 33, 96, 172}) {
      std::vector<uint8_t> codes(static_cast<size_t>(count)),
          back(codes.size());
      for (auto &c : codes)
        c = static_cast<uint8_t>(rng() & ((1u << bits) - 1));
      std::vector<int32_t> words(
          static_cast<size_t>(packedWordCount(count, bits)));
      packCodeStream(codes.data(), 1, count, bits, words.data(), 1);
      unpackCodeStream(words.data(), 1, count, bits, back.data(), 1);
      EXPECT_EQ(codes, back) << bits << " bits, " << count << " codes";
      // Unused high bits of the last word stay zero.
      const int used = static_cast<int>((count * bits) % 32);
      if (used != 0) {
        EXPECT_EQ(u32(words.back()) >> used, 0u);
      }
    }
}

//===----------------------------------------------------------------------===//
// GPTQ
//===----------------------------------------------------------------------===//

TEST(PackingTest, GPTQQWeightHandExample) {
  // N = 2 columns, K = 8: row 0 codes 0..7, row 1 codes 15..8.
  QuantizedWeight q = randomWeight(2, 8, 4, -1, /*sym=*/true, 1);
  for (int k = 0; k < 8; ++k) {
    q.codes[k] = static_cast<uint8_t>(k);
    q.codes[8 + k] = static_cast<uint8_t>(15 - k);
  }
  GPTQTensors t;
  ASSERT_TRUE(packGPTQ(q, {}, t));
  ASSERT_EQ(t.qweightRows(), 1);
  ASSERT_EQ(t.qweight.size(), 2u); // [1, N]
  EXPECT_EQ(u32(t.qweight[0]), 0x76543210u);
  EXPECT_EQ(u32(t.qweight[1]), 0x89ABCDEFu);
  // Symmetric 4-bit: z = 8 stored as 7 in every nibble (N = 2 -> 2 nibbles).
  ASSERT_EQ(t.qzeros.size(), 1u);
  EXPECT_EQ(u32(t.qzeros[0]), 0x77u);
  EXPECT_EQ(t.gIdx, std::vector<int32_t>(8, 0));
}

TEST(PackingTest, GPTQSymZerosWords) {
  // §8.1: symmetric checkpoints have qzeros words 0x77777777 (4-bit);
  // 2-bit z = 2 -> stored 1 -> 0x55555555; 8-bit z = 128 -> 0x7F7F7F7F.
  struct Case {
    int bits;
    uint32_t word;
  } cases[] = {{2, 0x55555555u}, {4, 0x77777777u}, {8, 0x7F7F7F7Fu}};
  for (const Case &c : cases) {
    QuantizedWeight q = randomWeight(32, 64, c.bits, 32, true, 3);
    GPTQTensors t;
    ASSERT_TRUE(packGPTQ(q, {}, t));
    for (int32_t word : t.qzeros)
      EXPECT_EQ(u32(word), c.word) << c.bits << " bits";
  }
}

TEST(PackingTest, GPTQV1ZeroMinusOne) {
  // Asymmetric 4-bit, N = 8, one group: zeros 8,1,2,3,4,5,6,15 are stored
  // as 7,0,1,2,3,4,5,14 -> 0xE5432107; v2 stores them as they are.
  QuantizedWeight q = randomWeight(8, 32, 4, -1, /*sym=*/false, 2);
  const float zs[8] = {8, 1, 2, 3, 4, 5, 6, 15};
  for (int n = 0; n < 8; ++n)
    q.zeros[n] = zs[n];
  GPTQTensors v1, v2;
  ASSERT_TRUE(packGPTQ(q, {}, v1));
  ASSERT_EQ(v1.qzeros.size(), 1u);
  EXPECT_EQ(u32(v1.qzeros[0]), 0xE5432107u);
  GPTQPackOptions o2;
  o2.format = GPTQFormat::V2;
  ASSERT_TRUE(packGPTQ(q, o2, v2));
  EXPECT_EQ(u32(v2.qzeros[0]), 0xF6543218u);
  // Both decode back to the same zeros.
  QuantizedWeight b1, b2;
  ASSERT_TRUE(unpackGPTQ(v1, b1));
  ASSERT_TRUE(unpackGPTQ(v2, b2));
  expectSame(q, b1);
  expectSame(q, b2);
}

TEST(PackingTest, GPTQV1RefusesZeroPointZero) {
  QuantizedWeight q = randomWeight(8, 32, 2, -1, false, 4);
  q.zeros[5] = 0.0f;
  GPTQTensors t;
  Status s = packGPTQ(q, {}, t);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("gptq_v2"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("row 5"), std::string::npos) << s.message();
  // v2 stores it faithfully.
  GPTQPackOptions o;
  o.format = GPTQFormat::V2;
  ASSERT_TRUE(packGPTQ(q, o, t));
  QuantizedWeight back;
  ASSERT_TRUE(unpackGPTQ(t, back));
  expectSame(q, back);
}

TEST(PackingTest, GPTQV1DecodesWrappedZeroModulo) {
  // A v1 file written by a buggy packer holds z = 0 as qmax; a correct
  // reader re-masks: (15 + 1) mod 16 = 0, not 16.
  QuantizedWeight q = randomWeight(8, 8, 4, -1, false, 5);
  GPTQTensors t;
  ASSERT_TRUE(packGPTQ(q, {}, t));
  t.qzeros[0] = static_cast<int32_t>((u32(t.qzeros[0]) & ~0xFu) | 0xFu);
  QuantizedWeight back;
  ASSERT_TRUE(unpackGPTQ(t, back));
  EXPECT_EQ(back.zeros[0], 0.0f);
}

TEST(PackingTest, GPTQ3BitMatchesSpecFormula) {
  // Random codes and zeros, K = 96 (three blocks), N = 64 (two blocks).
  QuantizedWeight q = randomWeight(64, 96, 3, 32, false, 6);
  GPTQTensors t;
  ASSERT_TRUE(packGPTQ(q, {}, t));
  ASSERT_EQ(t.qweightRows(), 9);
  ASSERT_EQ(t.qzerosCols(), 6);
  for (int64_t n = 0; n < 64; ++n)
    for (int64_t k = 0; k < 96; ++k)
      ASSERT_EQ(gptqTextbookCode(t, k, n), q.codes[n * 96 + k])
          << n << "," << k;
  for (int64_t g = 0; g < 3; ++g)
    for (int64_t n = 0; n < 64; ++n)
      ASSERT_EQ(static_cast<float>(gptqTextbookZero(t, g, n)),
                q.zeros[g * 64 + n]);
}

TEST(PackingTest, GPTQDequantFromPackedMatches) {
  // The §8.1 dequantization formula applied to the packed tensors gives the
  // weight's own dequantization bit for bit, for every width and act-order.
  for (int bits : {2, 3, 4, 8})
    for (bool act : {false, true}) {
      QuantizedWeight q =
          randomWeight(32, 128, bits, 32, false, 10 + bits, 1, act);
      GPTQTensors t;
      ASSERT_TRUE(packGPTQ(q, {}, t));
      std::vector<float> expect;
      q.dequantize(expect);
      EXPECT_EQ(dequantGPTQTextbook(t), expect) << bits << " bits, act " << act;
    }
}

TEST(PackingTest, GPTQRoundTripsAllWidthsAndShapes) {
  struct Shape {
    int64_t N, K, G;
  } shapes[] = {{32, 64, 32}, {64, 128, 128}, {32, 172, 32}, {7, 13, -1},
                {40, 96, 64}, {32, 172, -1},  {96, 256, 64}, {1, 1, -1}};
  for (int bits : {2, 3, 4, 8})
    for (const Shape &s : shapes)
      for (bool sym : {false, true})
        for (GPTQFormat f : {GPTQFormat::V1, GPTQFormat::V2})
          for (bool act : {false, true}) {
            SCOPED_TRACE(::testing::Message()
                         << bits << " bits, N " << s.N << ", K " << s.K
                         << ", G " << s.G << ", sym " << sym << ", v"
                         << (f == GPTQFormat::V1 ? 1 : 2) << ", act " << act);
            QuantizedWeight q = randomWeight(s.N, s.K, bits, s.G, sym,
                                             static_cast<unsigned>(s.K * bits),
                                             f == GPTQFormat::V1 ? 1 : 0, act);
            GPTQPackOptions o;
            o.format = f;
            GPTQTensors t;
            Status st = packGPTQ(q, o, t);
            const bool allowed = bits != 3 || (s.K % 32 == 0 && s.N % 32 == 0);
            ASSERT_EQ(static_cast<bool>(st), allowed) << st.message();
            if (!allowed)
              continue;
            EXPECT_EQ(t.qweight.size(),
                      static_cast<size_t>(t.qweightRows() * s.N));
            EXPECT_EQ(t.qweightRows(), (s.K * bits + 31) / 32);
            EXPECT_EQ(
                t.qzeros.size(),
                static_cast<size_t>(q.numGroups() * ((s.N * bits + 31) / 32)));
            QuantizedWeight back;
            Status us = unpackGPTQ(t, back);
            ASSERT_TRUE(us) << us.message();
            // unpackGPTQ drops a g_idx equal to the default k / G (with one
            // group a random act-order g_idx is all zeros).
            if (q.hasTrivialGIdx())
              q.gIdx.clear();
            expectSame(q, back);
          }
}

TEST(PackingTest, GPTQ3BitRaggedShapesRefused) {
  QuantizedWeight q = randomWeight(32, 172, 3, 32, false, 11);
  GPTQTensors t;
  Status s = packGPTQ(q, {}, t);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("K % 32"), std::string::npos) << s.message();
  QuantizedWeight q2 = randomWeight(20, 64, 3, 32, false, 12);
  s = packGPTQ(q2, {}, t);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("N % 32"), std::string::npos) << s.message();
}

TEST(PackingTest, GPTQPadKDequantizesPadToZero) {
  // §14.6, the loaders' rule (GPTQModel gptqmodel/nn_modules/qlinear/
  // __init__.py, GPTQQuantLinear._register_gptq_buffers: scales/qzeros
  // ceil(in_features / group_size) rows, g_idx [in_features]): K = 172,
  // G = 32 pads K to whole words only -- 176 for 4-bit (qweight 22 rows),
  // 192 for 3-bit (whole three-word blocks, 18 rows) -- keeps g_idx at 172
  // and 6 groups; pad columns hold the zero point.
  struct Case {
    int bits;
    int64_t Kp, rows;
  } cases[] = {{2, 176, 11}, {3, 192, 18}, {4, 176, 22}, {8, 172, 43}};
  for (const Case &c : cases) {
    QuantizedWeight q = randomWeight(32, 172, c.bits, 32, false, 13);
    GPTQPackOptions o;
    o.padK = true;
    o.format = GPTQFormat::V2; // random zeros may be 0
    GPTQTensors t;
    ASSERT_TRUE(packGPTQ(q, o, t)) << c.bits;
    EXPECT_EQ(t.inFeatures, 172);
    EXPECT_EQ(t.K, c.Kp) << c.bits;
    EXPECT_EQ(gptqPaddedK(172, c.bits), c.Kp);
    EXPECT_EQ(t.numGroups, 6);
    EXPECT_EQ(t.qweightRows(), c.rows) << c.bits;
    EXPECT_EQ(t.gIdx.size(), 172u);
    std::vector<float> w = dequantGPTQTextbook(t), expect;
    q.dequantize(expect);
    for (int64_t n = 0; n < 32; ++n)
      for (int64_t k = 0; k < c.Kp; ++k)
        ASSERT_EQ(w[n * c.Kp + k], k < 172 ? expect[n * 172 + k] : 0.0f);
    QuantizedWeight back;
    ASSERT_TRUE(unpackGPTQ(t, back));
    expectSame(q, back);
  }
  // G = 128: 2 groups, g_idx k / G for the true K only.
  QuantizedWeight q = randomWeight(8, 172, 4, 128, true, 14);
  GPTQPackOptions o;
  o.padK = true;
  GPTQTensors t;
  ASSERT_TRUE(packGPTQ(q, o, t));
  EXPECT_EQ(t.K, 176);
  EXPECT_EQ(t.numGroups, 2);
  ASSERT_EQ(t.gIdx.size(), 172u);
  for (int64_t k = 0; k < 172; ++k)
    EXPECT_EQ(t.gIdx[k], k / 128);
  QuantizedWeight back;
  ASSERT_TRUE(unpackGPTQ(t, back));
  expectSame(q, back);
}

TEST(PackingTest, GPTQUnpackAcceptsTheOlderWholeGroupPadding) {
  // Files written before the loaders' rule was followed pad K = 172 to 192
  // (whole groups) with g_idx [192] whose pad entries name the last group.
  QuantizedWeight q = randomWeight(16, 172, 4, 32, true, 31);
  GPTQTensors t;
  ASSERT_TRUE(packGPTQ(q, {}, t));
  // Re-pack by hand at Kp = 192.
  GPTQTensors old = t;
  old.K = 192;
  old.gIdx.resize(192, 5);
  old.qweight.assign(static_cast<size_t>(old.qweightRows() * old.N), 0);
  std::vector<uint8_t> row(192);
  for (int64_t n = 0; n < 16; ++n) {
    for (int64_t k = 0; k < 192; ++k)
      row[k] = k < 172 ? q.codes[n * 172 + k] : 8;
    packCodeStream(row.data(), 1, 192, 4, old.qweight.data() + n, 16);
  }
  QuantizedWeight back;
  ASSERT_TRUE(unpackGPTQ(old, back));
  expectSame(q, back);
  // A g_idx of neither length is refused.
  old.gIdx.resize(180, 5);
  Status s = unpackGPTQ(old, back);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("g_idx has 180 entries"), std::string::npos)
      << s.message();
}

TEST(PackingTest, GPTQPackRefusals) {
  GPTQTensors t;
  // Scale not representable in fp16.
  QuantizedWeight q = randomWeight(8, 32, 4, 32, false, 15);
  q.scales[3] = 0.1f;
  Status s = packGPTQ(q, {}, t);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("fp16"), std::string::npos) << s.message();
  // Fractional (HQQ) zero point.
  q = randomWeight(8, 32, 4, 32, false, 15);
  q.zeros[2] = 3.25f;
  s = packGPTQ(q, {}, t);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("not an integer"), std::string::npos);
  // Symmetric flag with a non-centred zero.
  q = randomWeight(8, 32, 4, 32, true, 15);
  q.zeros[0] = 3.0f;
  EXPECT_FALSE(packGPTQ(q, {}, t));
  // Code out of range (QuantizedWeight::verify).
  q = randomWeight(8, 32, 4, 32, true, 15);
  q.codes[9] = 16;
  EXPECT_FALSE(packGPTQ(q, {}, t));
}

TEST(PackingTest, GPTQUnpackValidation) {
  QuantizedWeight q = randomWeight(32, 64, 4, 32, false, 16);
  GPTQTensors good;
  ASSERT_TRUE(packGPTQ(q, {}, good));
  QuantizedWeight out;

  GPTQTensors t = good;
  t.qweight.pop_back();
  Status s = unpackGPTQ(t, out);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("qweight"), std::string::npos) << s.message();

  t = good;
  t.qzeros.push_back(0);
  EXPECT_FALSE(unpackGPTQ(t, out));

  t = good;
  t.scales.resize(t.scales.size() - 1);
  EXPECT_FALSE(unpackGPTQ(t, out));

  t = good;
  t.gIdx[3] = 2; // only 2 groups
  s = unpackGPTQ(t, out);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("g_idx[3]"), std::string::npos) << s.message();

  t = good;
  t.scales[1] = 0x7C00; // +inf
  EXPECT_FALSE(unpackGPTQ(t, out));

  t = good;
  t.numGroups = 3;
  EXPECT_FALSE(unpackGPTQ(t, out));

  t = good;
  t.sym = true; // random asymmetric zeros contradict the metadata
  s = unpackGPTQ(t, out);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("symmetric"), std::string::npos) << s.message();

  t = good;
  t.bits = 5;
  EXPECT_FALSE(unpackGPTQ(t, out));

  // A padded column whose code is not the zero point.
  QuantizedWeight r = randomWeight(8, 20, 4, -1, false, 17);
  GPTQPackOptions o;
  o.padK = true;
  ASSERT_TRUE(packGPTQ(r, o, t));
  ASSERT_EQ(t.K, 24);
  ASSERT_TRUE(unpackGPTQ(t, out));
  // Row 0, k = 23: word 2 of column 0, top nibble.
  t.qweight[2 * t.N + 0] ^= static_cast<int32_t>(0x10000000u);
  s = unpackGPTQ(t, out);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("padded input column 23"), std::string::npos)
      << s.message();
}

TEST(PackingTest, GPTQTrivialGIdxUnpacksEmpty) {
  QuantizedWeight q = randomWeight(8, 64, 4, 32, true, 18);
  q.gIdx.resize(64);
  for (int k = 0; k < 64; ++k)
    q.gIdx[k] = k / 32;
  GPTQTensors t;
  ASSERT_TRUE(packGPTQ(q, {}, t));
  QuantizedWeight back;
  ASSERT_TRUE(unpackGPTQ(t, back));
  EXPECT_TRUE(back.gIdx.empty());
  EXPECT_EQ(back.codes, q.codes);
}

//===----------------------------------------------------------------------===//
// AWQ
//===----------------------------------------------------------------------===//

TEST(PackingTest, AWQOrderHandExample) {
  // N = 8, K = 1: q[n, 0] = n -> nibble i holds channel ORDER[i] =
  // 0,2,4,6,1,3,5,7 -> 0x75316420. Zeros 15 - n -> 0x8ACE9BDF.
  QuantizedWeight q = randomWeight(8, 1, 4, -1, false, 19);
  for (int n = 0; n < 8; ++n) {
    q.codes[n] = static_cast<uint8_t>(n);
    q.zeros[n] = static_cast<float>(15 - n);
  }
  AWQTensors t;
  ASSERT_TRUE(packAWQ(q, t));
  ASSERT_EQ(t.qweight.size(), 1u);
  EXPECT_EQ(u32(t.qweight[0]), 0x75316420u);
  ASSERT_EQ(t.qzeros.size(), 1u);
  EXPECT_EQ(u32(t.qzeros[0]), 0x8ACE9BDFu);
  // The reverse order is the inverse permutation.
  for (int j = 0; j < 8; ++j)
    EXPECT_EQ(kAWQOrder[kAWQReverseOrder[j]], j);
  QuantizedWeight back;
  ASSERT_TRUE(unpackAWQ(t, back));
  expectSame(q, back);
}

TEST(PackingTest, AWQLayoutIsAlongN) {
  // qweight is [K, N/8]: element (k, c) holds channels 8c..8c+7 of input k.
  QuantizedWeight q = randomWeight(16, 64, 4, 32, false, 20, 0);
  AWQTensors t;
  ASSERT_TRUE(packAWQ(q, t));
  ASSERT_EQ(t.qweight.size(), static_cast<size_t>(64 * 2));
  ASSERT_EQ(t.qzeros.size(), static_cast<size_t>(2 * 2));
  ASSERT_EQ(t.scales.size(), static_cast<size_t>(2 * 16));
  for (int64_t k = 0; k < 64; ++k)
    for (int64_t n = 0; n < 16; ++n) {
      uint32_t word = u32(t.qweight[k * 2 + n / 8]);
      uint32_t nib = bitsOf(word, 4 * kAWQReverseOrder[n % 8], 4);
      ASSERT_EQ(nib, q.codes[n * 64 + k]);
    }
}

TEST(PackingTest, AWQRoundTrips) {
  struct Shape {
    int64_t N, K, G;
  } shapes[] = {{8, 32, 32}, {64, 128, 128}, {16, 96, 32}, {24, 172, -1}};
  for (const Shape &s : shapes)
    for (bool sym : {false, true}) {
      QuantizedWeight q = randomWeight(s.N, s.K, 4, s.G, sym, 21, 0);
      AWQTensors t;
      ASSERT_TRUE(packAWQ(q, t));
      QuantizedWeight back;
      ASSERT_TRUE(unpackAWQ(t, back));
      expectSame(q, back);
    }
}

TEST(PackingTest, AWQRefusals) {
  AWQTensors t;
  EXPECT_FALSE(packAWQ(randomWeight(8, 32, 3, 32, false, 22), t));
  EXPECT_FALSE(packAWQ(randomWeight(8, 32, 8, 32, false, 22), t));
  Status s = packAWQ(randomWeight(12, 32, 4, 32, false, 22), t);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("N % 8"), std::string::npos) << s.message();
  s = packAWQ(randomWeight(8, 172, 4, 32, false, 22), t);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("K % G"), std::string::npos) << s.message();
  s = packAWQ(randomWeight(8, 64, 4, 32, false, 22, 0, /*actOrder=*/true), t);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("g_idx"), std::string::npos) << s.message();
  QuantizedWeight q = randomWeight(8, 32, 4, 32, false, 22);
  q.zeros[1] = 0.5f;
  EXPECT_FALSE(packAWQ(q, t));
}

TEST(PackingTest, AWQUnpackValidation) {
  AWQTensors good;
  ASSERT_TRUE(packAWQ(randomWeight(16, 64, 4, 32, false, 23), good));
  QuantizedWeight out;
  AWQTensors t = good;
  t.qweight.pop_back();
  EXPECT_FALSE(unpackAWQ(t, out));
  t = good;
  t.N = 12;
  EXPECT_FALSE(unpackAWQ(t, out));
  t = good;
  t.groupSize = 48;
  EXPECT_FALSE(unpackAWQ(t, out));
  t = good;
  t.sym = true;
  EXPECT_FALSE(unpackAWQ(t, out));
  t = good;
  t.scales[0] = 0x7E00; // NaN
  EXPECT_FALSE(unpackAWQ(t, out));
}

TEST(PackingTest, AWQToGPTQConversionIsLossless) {
  // §8.2: unpack, re-pack along K, store z - 1 (zeros >= 1 here).
  QuantizedWeight q = randomWeight(64, 128, 4, 32, false, 24, 1);
  AWQTensors a;
  ASSERT_TRUE(packAWQ(q, a));
  QuantizedWeight mid;
  ASSERT_TRUE(unpackAWQ(a, mid));
  GPTQTensors g;
  ASSERT_TRUE(packGPTQ(mid, {}, g));
  std::vector<float> expect;
  q.dequantize(expect);
  EXPECT_EQ(dequantGPTQTextbook(g), expect);
}

//===----------------------------------------------------------------------===//
// Rows
//===----------------------------------------------------------------------===//

TEST(PackingTest, RowsHandExample) {
  // Row-major streams along K: row 1 of a 2 x 8 4-bit weight is word 1.
  QuantizedWeight q = randomWeight(2, 8, 4, -1, false, 25);
  for (int k = 0; k < 8; ++k) {
    q.codes[k] = static_cast<uint8_t>(15 - k);
    q.codes[8 + k] = static_cast<uint8_t>(k);
  }
  RowsTensors t;
  ASSERT_TRUE(packRows(q, {}, t));
  ASSERT_EQ(t.qweight.size(), 2u);
  EXPECT_EQ(u32(t.qweight[0]), 0x89ABCDEFu);
  EXPECT_EQ(u32(t.qweight[1]), 0x76543210u);
  ASSERT_EQ(t.zeros.size(), 2u);
  EXPECT_EQ(t.zeros[0], static_cast<int32_t>(q.zeros[0]));
  EXPECT_TRUE(t.floatZeros.empty());
}

TEST(PackingTest, RowsRoundTripsAllWidthsAndShapes) {
  struct Shape {
    int64_t N, K, G;
  } shapes[] = {{32, 64, 32}, {32, 172, 32}, {7, 13, -1},
                {5, 172, 64}, {3, 100, 128}, {1, 1, -1}};
  for (int bits : {2, 3, 4, 8})
    for (const Shape &s : shapes)
      for (bool sym : {false, true})
        for (bool act : {false, true}) {
          SCOPED_TRACE(::testing::Message()
                       << bits << " bits, N " << s.N << ", K " << s.K << ", G "
                       << s.G << ", sym " << sym);
          QuantizedWeight q =
              randomWeight(s.N, s.K, bits, s.G, sym, 26, 0, act);
          RowsTensors t;
          ASSERT_TRUE(packRows(q, {}, t));
          EXPECT_EQ(t.qweightCols(), (s.K * bits + 31) / 32);
          EXPECT_EQ(t.zeros.empty(), sym);
          QuantizedWeight back;
          Status us = unpackRows(t, back);
          ASSERT_TRUE(us) << us.message();
          expectSame(q, back);
        }
}

TEST(PackingTest, RowsFloatZerosAndScaleDTypes) {
  // HQQ-style: fractional zeros and fp32 scales survive only with
  // floatZeros; the integer form refuses them.
  QuantizedWeight q = randomWeight(6, 40, 4, 8, false, 27);
  q.scaleDType = ScaleDType::F32;
  for (size_t i = 0; i < q.zeros.size(); ++i) {
    q.zeros[i] = 0.37f * static_cast<float>(i % 11) - 0.5f;
    q.scales[i] = 0.001f * static_cast<float>(i + 1) / 3.0f;
  }
  RowsTensors t;
  Status s = packRows(q, {}, t);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("not an integer"), std::string::npos);
  RowsPackOptions o;
  o.floatZeros = true;
  ASSERT_TRUE(packRows(q, o, t));
  EXPECT_TRUE(t.zeros.empty());
  EXPECT_EQ(t.floatZeros.size(), q.zeros.size());
  QuantizedWeight back;
  ASSERT_TRUE(unpackRows(t, back));
  expectSame(q, back);
  EXPECT_EQ(back.scaleDType, ScaleDType::F32);
  // A scale that is not representable in the declared dtype is refused.
  q.scaleDType = ScaleDType::BF16;
  EXPECT_FALSE(packRows(q, o, t));
}

TEST(PackingTest, RowsUnpackValidation) {
  RowsTensors good;
  ASSERT_TRUE(packRows(randomWeight(8, 40, 3, 16, false, 28), {}, good));
  QuantizedWeight out;
  ASSERT_TRUE(unpackRows(good, out));
  RowsTensors t = good;
  t.qweight.push_back(0);
  EXPECT_FALSE(unpackRows(t, out));
  t = good;
  t.zeros.clear(); // asymmetric without zeros
  EXPECT_FALSE(unpackRows(t, out));
  t = good;
  t.floatZeros.assign(t.zeros.size(), 1.0f); // both kinds of zeros
  EXPECT_FALSE(unpackRows(t, out));
  t = good;
  t.sym = true; // symmetric with zeros
  EXPECT_FALSE(unpackRows(t, out));
  t = good;
  t.zeros[0] = 8; // out of range for 3 bits
  EXPECT_FALSE(unpackRows(t, out));
  t = good;
  t.gIdx.assign(40, 0);
  t.gIdx[39] = 3; // ceil(40/16) = 3 groups
  EXPECT_FALSE(unpackRows(t, out));
  t = good;
  t.scales[0] = NAN;
  EXPECT_FALSE(unpackRows(t, out));
}
