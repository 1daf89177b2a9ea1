//===- GgmlQuantsTest.cpp - ggml dequantization tests -----------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Checks dequantizeRow bit for bit against the committed vectors in
// runtime/test/data/gguf (random raw blocks and the float32 output of the
// `gguf` Python package's dequantize; regenerate them with
// scripts/gen-gguf-vectors.sh), compares the type table with gguf-py's
// GGML_QUANT_SIZES recorded in the manifest, and decodes a few hand-built
// blocks whose values are worked out here independently of gguf-py.
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/GgmlQuants.h"

#include "qc/runtime/Json.h"
#include "qc/runtime/Safetensors.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>

using namespace qc;

namespace {

const std::string kDataDir = QC_GGUF_TEST_DATA;

std::vector<uint8_t> readBytes(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

json::Value manifest() {
  std::vector<uint8_t> text = readBytes(kDataDir + "/manifest.json");
  json::Value v;
  Status s =
      json::parse(std::string_view(reinterpret_cast<const char *>(text.data()),
                                   text.size()),
                  v);
  EXPECT_TRUE(s.isOk()) << s.message();
  return v;
}

uint32_t bitsOf(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

} // namespace

TEST(GgmlQuants, BitExactWithGgufPy) {
  json::Value m = manifest();
  ASSERT_TRUE(m.isObject());
  const json::Value *version = m.find("gguf_version");
  ASSERT_TRUE(version && version->isString() && !version->asString().empty());
  const json::Value *vectors = m.find("vectors");
  ASSERT_TRUE(vectors && vectors->isArray());
  std::vector<std::string> seen;
  for (const json::Value &e : vectors->asArray()) {
    std::string type = e.find("type")->asString();
    uint32_t id = static_cast<uint32_t>(e.find("id")->asUInt64());
    uint64_t n = e.find("elements")->asUInt64();
    SCOPED_TRACE(type + " (gguf " + version->asString() + ")");
    GgmlTypeTraits t;
    ASSERT_TRUE(ggmlTypeTraits(id, t));
    EXPECT_EQ(type, t.name);
    EXPECT_TRUE(t.dequantizable);
    std::vector<uint8_t> in =
        readBytes(kDataDir + "/" + e.find("input")->asString());
    std::vector<uint8_t> outBytes =
        readBytes(kDataDir + "/" + e.find("expected")->asString());
    uint64_t want;
    ASSERT_TRUE(ggmlByteSize(static_cast<GgmlType>(id), n, want));
    ASSERT_EQ(in.size(), want);
    ASSERT_EQ(outBytes.size(), n * 4);
    std::vector<float> expected(n), got(n, -12345.0f);
    std::memcpy(expected.data(), outBytes.data(), outBytes.size());
    Status s =
        dequantizeRow(static_cast<GgmlType>(id), in.data(), got.data(), n);
    ASSERT_TRUE(s.isOk()) << s.message();
    size_t mismatches = 0;
    for (uint64_t i = 0; i < n; ++i) {
      if (bitsOf(got[i]) != bitsOf(expected[i]) && mismatches++ < 5)
        ADD_FAILURE() << type << " element " << i << ": got " << got[i]
                      << " (0x" << std::hex << bitsOf(got[i]) << "), gguf-py "
                      << std::dec << expected[i] << " (0x" << std::hex
                      << bitsOf(expected[i]) << std::dec << ")";
    }
    EXPECT_EQ(mismatches, 0u);
    // Block by block gives the same values (no state across blocks).
    std::vector<float> one(t.blockSize);
    for (uint64_t b = 0; b < n / t.blockSize; b += 3) {
      ASSERT_TRUE(dequantizeRow(static_cast<GgmlType>(id),
                                in.data() + b * t.typeSize, one.data(),
                                t.blockSize)
                      .isOk());
      EXPECT_EQ(0, std::memcmp(one.data(), got.data() + b * t.blockSize,
                               t.blockSize * 4));
    }
    seen.push_back(type);
  }
  EXPECT_EQ(seen, (std::vector<std::string>{
                      "F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0",
                      "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"}));
}

TEST(GgmlQuants, TypeTableMatchesGgufPy) {
  json::Value m = manifest();
  const json::Value *sizes = m.find("quant_sizes");
  ASSERT_TRUE(sizes && sizes->isArray());
  size_t checked = 0;
  for (const json::Value &e : sizes->asArray()) {
    std::string type = e.find("type")->asString();
    uint32_t id = static_cast<uint32_t>(e.find("id")->asUInt64());
    SCOPED_TRACE(type);
    GgmlTypeTraits t;
    ASSERT_TRUE(ggmlTypeTraits(id, t)) << "qc does not know type id " << id;
    EXPECT_EQ(type, t.name);
    EXPECT_EQ(e.find("block_size")->asUInt64(), t.blockSize);
    // gguf-py's Q8_1 entry predates ggml's fp16 d/s (see GgmlQuants.cpp).
    if (type != "Q8_1")
      EXPECT_EQ(e.find("type_size")->asUInt64(), t.typeSize);
    ++checked;
  }
  EXPECT_GE(checked, 30u);
  GgmlTypeTraits t;
  EXPECT_FALSE(ggmlTypeTraits(4, t)); // removed Q4_2
  EXPECT_FALSE(ggmlTypeTraits(31, t));
  EXPECT_FALSE(ggmlTypeTraits(1000, t));
}

TEST(GgmlQuants, HandBuiltBlocks) {
  // Q8_0: d = 0.5 (fp16 0x3800), codes -128, -1, 0, 1, 127, ...
  std::vector<uint8_t> q8(34, 0);
  q8[0] = 0x00;
  q8[1] = 0x38;
  int8_t codes[5] = {-128, -1, 0, 1, 127};
  for (int i = 0; i < 5; ++i)
    q8[2 + i] = static_cast<uint8_t>(codes[i]);
  std::vector<float> y(32);
  ASSERT_TRUE(dequantizeRow(GgmlType::Q8_0, q8.data(), y.data(), 32).isOk());
  EXPECT_EQ(y[0], -64.0f);
  EXPECT_EQ(y[1], -0.5f);
  EXPECT_EQ(y[2], 0.0f);
  EXPECT_EQ(y[4], 63.5f);

  // Q4_1: d = 2 (0x4000), m = -1 (0xBC00); byte l holds element l (low
  // nibble) and element l + 16 (high nibble).
  std::vector<uint8_t> q41(20, 0);
  q41[1] = 0x40;
  q41[3] = 0xBC;
  q41[4] = 0xF3;  // elements 0 = 3, 16 = 15
  q41[19] = 0x1E; // elements 15 = 14, 31 = 1
  ASSERT_TRUE(dequantizeRow(GgmlType::Q4_1, q41.data(), y.data(), 32).isOk());
  EXPECT_EQ(y[0], 5.0f);
  EXPECT_EQ(y[16], 29.0f);
  EXPECT_EQ(y[15], 27.0f);
  EXPECT_EQ(y[31], 1.0f);
  EXPECT_EQ(y[1], -1.0f);

  // Q4_0: d = 1, codes minus 8.
  std::vector<uint8_t> q40(18, 0);
  q40[1] = 0x3C;
  q40[2] = 0x80; // element 0 = 0 - 8, element 16 = 8 - 8
  ASSERT_TRUE(dequantizeRow(GgmlType::Q4_0, q40.data(), y.data(), 32).isOk());
  EXPECT_EQ(y[0], -8.0f);
  EXPECT_EQ(y[16], 0.0f);

  // Q5_0: the fifth bit of element i is bit i of qh.
  std::vector<uint8_t> q50(22, 0);
  q50[1] = 0x3C; // d = 1
  q50[2] = 0x01; // element 0 gets +16
  q50[5] = 0x80; // element 31 gets +16
  q50[6] = 0x0F; // element 0 low nibble 15
  ASSERT_TRUE(dequantizeRow(GgmlType::Q5_0, q50.data(), y.data(), 32).isOk());
  EXPECT_EQ(y[0], 15.0f); // 31 - 16
  EXPECT_EQ(y[31], 0.0f); // 16 - 16
  EXPECT_EQ(y[1], -16.0f);

  // Q6_K: only the first scale and d set; element 0 = d * scale * (q - 32).
  std::vector<uint8_t> q6(210, 0);
  q6[0] = 0x05;   // ql low nibble of element 0
  q6[128] = 0x02; // qh bits 0-1 of element 0: 2 -> +32
  q6[192] = 3;    // scale of sub-block 0
  q6[208] = 0x00;
  q6[209] = 0x3C; // d = 1
  std::vector<float> k(256);
  ASSERT_TRUE(dequantizeRow(GgmlType::Q6_K, q6.data(), k.data(), 256).isOk());
  EXPECT_EQ(k[0], 3.0f * (5 + 32 - 32));
  EXPECT_EQ(k[1], 3.0f * -32);
  EXPECT_EQ(k[16], 0.0f); // sub-block 1 has scale 0
}

TEST(GgmlQuants, Errors) {
  std::vector<uint8_t> raw(66, 0);
  std::vector<float> y(256);
  Status s = dequantizeRow(GgmlType::IQ2_XXS, raw.data(), y.data(), 256);
  ASSERT_FALSE(s.isOk());
  EXPECT_EQ(s.message().rfind("unsupported type IQ2_XXS (supported: F32, F16, "
                              "Q4_0",
                              0),
            0u)
      << s.message();
  s = dequantizeRow(GgmlType::Q4_0, raw.data(), y.data(), 33);
  EXPECT_EQ(s.message(),
            "33 elements of Q4_0 are not a whole number of 32-element blocks");
  uint64_t bytes;
  EXPECT_TRUE(ggmlByteSize(GgmlType::Q6_K, 512, bytes));
  EXPECT_EQ(bytes, 420u);
  EXPECT_FALSE(ggmlByteSize(GgmlType::Q6_K, 100, bytes));
  EXPECT_FALSE(ggmlByteSize(GgmlType::F32, 1ull << 63, bytes));
  EXPECT_STREQ(ggmlTypeName(GgmlType::Q4_K), "Q4_K");
}
