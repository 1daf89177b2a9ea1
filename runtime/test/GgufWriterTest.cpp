//===- GgufWriterTest.cpp - GGUF writer -----------------------------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Files written by GgufWriter must be read back by qc's validating GGUF
// reader with every key, value and tensor intact; values copied from one
// file into another must come out byte-identical; tensors must sit at
// aligned offsets; malformed tensors are refused by name; and writeFile is
// atomic (a failed write leaves the previous file).
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/GgufWriter.h"

#include "qc/runtime/Safetensors.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include <unistd.h>

namespace {

using namespace qc;

std::vector<uint8_t> f32Bytes(const std::vector<float> &v) {
  std::vector<uint8_t> b(v.size() * 4);
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

/// A Q8_0 block row of `n` (multiple of 32) values q * d, q = i % 17 - 8.
std::vector<uint8_t> q8Row(int64_t n, float d) {
  std::vector<uint8_t> b;
  for (int64_t blk = 0; blk < n / 32; ++blk) {
    uint16_t h = f32ToF16(d);
    b.push_back(static_cast<uint8_t>(h));
    b.push_back(static_cast<uint8_t>(h >> 8));
    for (int i = 0; i < 32; ++i)
      b.push_back(
          static_cast<uint8_t>(static_cast<int8_t>((blk * 32 + i) % 17 - 8)));
  }
  return b;
}

GgufWriter sampleWriter() {
  GgufWriter w;
  w.addString("general.architecture", "llama");
  w.addU32("llama.block_count", 2);
  w.addI32("some.i32", -5);
  w.addU64("some.u64", 1ull << 40);
  w.addF32("llama.rope.freq_base", 10000.0f);
  w.addBool("some.bool", true);
  w.addStringArray("tokenizer.ggml.tokens", {"<s>", "a", "", "\xE2\x96\x81x"});
  w.addF32Array("tokenizer.ggml.scores", {0.0f, -1.5f, 2.0f, 3.25f});
  w.addI32Array("tokenizer.ggml.token_type", {3, 1, 1, 6});
  EXPECT_TRUE(w.addTensor(
      "a.weight", GgmlType::F32, {3, 5},
      f32Bytes({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14})));
  EXPECT_TRUE(w.addTensor("b.weight", GgmlType::Q8_0, {2, 64}, [] {
    auto r = q8Row(128, 0.5f);
    return r;
  }()));
  EXPECT_TRUE(w.addTensor("c.bias", GgmlType::F32, {7},
                          f32Bytes({1, 2, 3, 4, 5, 6, 7})));
  return w;
}

TEST(GgufWriter, ReadBackByTheValidatingReader) {
  GgufWriter w = sampleWriter();
  std::vector<uint8_t> bytes;
  ASSERT_TRUE(w.serialize(bytes));
  std::unique_ptr<GgufFile> f;
  Status s = GgufFile::parse(bytes.data(), bytes.size(), "mem", f);
  ASSERT_TRUE(s) << s.message();
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->alignment(), 32u);
  EXPECT_EQ(f->dataOffset() % 32, 0u);
  std::string arch;
  ASSERT_TRUE(f->getString("general.architecture", arch));
  EXPECT_EQ(arch, "llama");
  uint32_t blocks = 0;
  ASSERT_TRUE(f->getU32("llama.block_count", blocks));
  EXPECT_EQ(blocks, 2u);
  int32_t i32 = 0;
  ASSERT_TRUE(f->getI32("some.i32", i32));
  EXPECT_EQ(i32, -5);
  uint64_t u64 = 0;
  ASSERT_TRUE(f->getU64("some.u64", u64));
  EXPECT_EQ(u64, 1ull << 40);
  float base = 0;
  ASSERT_TRUE(f->getF32("llama.rope.freq_base", base));
  EXPECT_EQ(base, 10000.0f);
  bool b = false;
  ASSERT_TRUE(f->getBool("some.bool", b));
  EXPECT_TRUE(b);
  std::vector<std::string> tokens;
  ASSERT_TRUE(f->getStringArray("tokenizer.ggml.tokens", tokens));
  EXPECT_EQ(tokens,
            (std::vector<std::string>{"<s>", "a", "", "\xE2\x96\x81x"}));
  std::vector<float> scores;
  ASSERT_TRUE(f->getF32Array("tokenizer.ggml.scores", scores));
  EXPECT_EQ(scores, (std::vector<float>{0.0f, -1.5f, 2.0f, 3.25f}));
  std::vector<int32_t> types;
  ASSERT_TRUE(f->getI32Array("tokenizer.ggml.token_type", types));
  EXPECT_EQ(types, (std::vector<int32_t>{3, 1, 1, 6}));
  // Metadata keeps insertion order.
  ASSERT_EQ(f->metadata().size(), 9u);
  EXPECT_EQ(f->metadata()[0].key, "general.architecture");
  EXPECT_EQ(f->metadata()[8].key, "tokenizer.ggml.token_type");

  ASSERT_EQ(f->tensors().size(), 3u);
  const GgufTensorInfo *a = f->findTensor("a.weight");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->dims, (std::vector<uint64_t>{5, 3})) << "innermost first";
  EXPECT_EQ(a->shape(), (std::vector<int64_t>{3, 5}));
  std::vector<float> av;
  ASSERT_TRUE(f->readTensorF32(*a, av));
  for (int i = 0; i < 15; ++i)
    EXPECT_EQ(av[i], static_cast<float>(i));
  const GgufTensorInfo *q = f->findTensor("b.weight");
  ASSERT_TRUE(q);
  EXPECT_EQ(q->type, GgmlType::Q8_0);
  EXPECT_EQ(q->offset % 32, 0u);
  std::vector<float> qv;
  ASSERT_TRUE(f->readTensorF32(*q, qv));
  for (int i = 0; i < 128; ++i)
    ASSERT_EQ(qv[i], 0.5f * static_cast<float>(i % 17 - 8)) << i;
  const GgufTensorInfo *c = f->findTensor("c.bias");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->offset % 32, 0u);
  std::vector<float> cv;
  ASSERT_TRUE(f->readTensorF32(*c, cv));
  EXPECT_EQ(cv, (std::vector<float>{1, 2, 3, 4, 5, 6, 7}));
}

TEST(GgufWriter, CopiedValuesAreByteIdentical) {
  GgufWriter w = sampleWriter();
  std::vector<uint8_t> bytes;
  ASSERT_TRUE(w.serialize(bytes));
  std::unique_ptr<GgufFile> f;
  ASSERT_TRUE(GgufFile::parse(bytes.data(), bytes.size(), "mem", f));
  GgufWriter copy;
  for (const GgufKV &kv : f->metadata())
    copy.addValue(kv.key, kv.value);
  for (const GgufTensorInfo &t : f->tensors()) {
    const uint8_t *p = f->tensorData(t);
    ASSERT_TRUE(copy.addTensor(t.name, t.type, t.shape(),
                               std::vector<uint8_t>(p, p + t.byteSize)));
  }
  std::vector<uint8_t> again;
  ASSERT_TRUE(copy.serialize(again));
  EXPECT_EQ(bytes, again);
}

TEST(GgufWriter, RefusesMalformedTensorsAndKeys) {
  GgufWriter w;
  Status s = w.addTensor("x.weight", GgmlType::Q4_0, {4, 48},
                         std::vector<uint8_t>(4 * 48 / 32 * 18));
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("'x.weight'"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("not whole Q4_0 blocks of 32"), std::string::npos)
      << s.message();
  s = w.addTensor("y.weight", GgmlType::F16, {4, 4}, std::vector<uint8_t>(31));
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("31 bytes, expected 32"), std::string::npos)
      << s.message();
  ASSERT_TRUE(w.addTensor("z", GgmlType::F32, {1}, std::vector<uint8_t>(4)));
  s = w.addTensor("z", GgmlType::F32, {1}, std::vector<uint8_t>(4));
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("added twice"), std::string::npos);
  EXPECT_FALSE(w.addTensor("r", GgmlType::F32, {1, 1, 1, 1, 1},
                           std::vector<uint8_t>(4)));
  w.addU32("k", 1);
  w.addU32("k", 2);
  std::vector<uint8_t> bytes;
  s = w.serialize(bytes);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("'k' is added twice"), std::string::npos);
}

TEST(GgufWriter, WriteFileIsAtomic) {
  std::string path = testing::TempDir() + "/qc_gguf_writer_" +
                     std::to_string(::getpid()) + ".gguf";
  GgufWriter w = sampleWriter();
  ASSERT_TRUE(w.writeFile(path));
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string first = ss.str();
  std::unique_ptr<GgufFile> f;
  ASSERT_TRUE(GgufFile::open(path, f));
  f.reset();
  // A failing second write leaves the first file untouched.
  GgufWriter other;
  other.addString("general.architecture", "other");
  setAtomicWriteFaultForTesting(10);
  EXPECT_FALSE(other.writeFile(path));
  setAtomicWriteFaultForTesting(-1);
  std::ifstream again(path, std::ios::binary);
  std::stringstream ss2;
  ss2 << again.rdbuf();
  EXPECT_EQ(ss2.str(), first);
  std::remove(path.c_str());
}

} // namespace
