//===- GgufTest.cpp - GGUF reader tests -------------------------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Reads small GGUF files written in memory by GgufBuilder (every metadata
// type, the typed accessors and their errors), then the bad-file classes of
// llama.cpp's test-gguf (../shared/docs/RELIABILITY.md): each file is a
// valid one with exactly one field corrupted, and each must fail with one
// line naming the file and the problem. Also truncation at every byte, and
// the bundled SmolLM2 GGUF (via QC_SHARED_DIR).
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/Gguf.h"
#include "qc/runtime/GgufModel.h"

#include "GgufBuilder.h"
#include "TestUtil.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>

using namespace qc;
using qc::test::GgufBuilder;
using qc::test::GgufBytes;
using qc::test::patchU32;
using qc::test::patchU64;

namespace {

const std::string kFile = "test.gguf";

/// Parses `bytes`; returns the status (and the file in `out` on success,
/// which borrows `bytes`: keep them alive while it is used).
Status parseBytes(const std::vector<uint8_t> &bytes,
                  std::unique_ptr<GgufFile> *out = nullptr) {
  std::unique_ptr<GgufFile> f;
  Status s = GgufFile::parse(bytes.data(), bytes.size(), kFile, f);
  if (out)
    *out = std::move(f);
  return s;
}

/// Expects a failure whose single-line message starts with the file name
/// and contains `needle`.
void expectError(const std::vector<uint8_t> &bytes, const std::string &needle) {
  Status s = parseBytes(bytes);
  ASSERT_FALSE(s.isOk()) << "accepted a bad file; expected: " << needle;
  EXPECT_EQ(s.message().rfind(kFile + ": ", 0), 0u) << s.message();
  EXPECT_NE(s.message().find(needle), std::string::npos) << s.message();
  EXPECT_EQ(s.message().find('\n'), std::string::npos) << s.message();
}

/// A valid file with two tensors and a few pairs: the base of the bad files.
GgufBuilder baseBuilder() {
  GgufBuilder b;
  b.addString("general.architecture", "llama");
  b.addU32("general.alignment", 32);
  b.addU32("llama.block_count", 2);
  b.addF32Tensor("a.weight", {4, 2}, {1, 2, 3, 4, 5, 6, 7, 8});
  b.addF32Tensor("b.weight", {3}, {-1, 0.5f, 2});
  return b;
}

std::vector<uint8_t> base(GgufBuilder::Layout *l = nullptr) {
  return baseBuilder().build(l);
}

} // namespace

//===----------------------------------------------------------------------===//
// Valid files
//===----------------------------------------------------------------------===//

TEST(GgufReader, ReadsEveryMetadataType) {
  GgufBuilder b;
  GgufBytes v;
  b.addRaw("t.u8", 0, {200});
  b.addRaw("t.i8", 1, {0xFE}); // -2
  b.addRaw("t.u16", 2, {0x34, 0x12});
  b.addRaw("t.i16", 3, {0x00, 0x80}); // -32768
  b.addU32("t.u32", 4000000000u);
  b.addI32("t.i32", -7);
  b.addF32("t.f32", 1.5f);
  b.addBool("t.bool", true);
  b.addString("t.string", "héllo");
  b.addU64("t.u64", 1ull << 40);
  {
    GgufBytes x;
    x.u64(static_cast<uint64_t>(-5));
    b.addRaw("t.i64", 11, x.b);
    GgufBytes y;
    double d = 0.25;
    uint64_t u;
    std::memcpy(&u, &d, 8);
    y.u64(u);
    b.addRaw("t.f64", 12, y.b);
  }
  b.addStringArray("t.strings", {"a", "", "ccc"});
  b.addI32Array("t.i32s", {1, -2, 3});
  b.addF32Array("t.f32s", {0.5f, -1});
  {
    // Array of two arrays of u8.
    GgufBytes x;
    x.u32(9);
    x.u64(2);
    x.u32(0);
    x.u64(2);
    x.u8(1);
    x.u8(2);
    x.u32(0);
    x.u64(0);
    b.addRaw("t.nested", 9, x.b);
  }
  std::unique_ptr<GgufFile> f;
  std::vector<uint8_t> bytes = b.build(); // must outlive f
  ASSERT_TRUE(parseBytes(bytes, &f).isOk());
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->alignment(), 32u);
  EXPECT_EQ(f->metadata().size(), 16u);
  EXPECT_EQ(f->metadata()[0].key, "t.u8");

  uint32_t u32;
  int32_t i32;
  uint64_t u64;
  int64_t i64;
  uint8_t u8;
  ASSERT_TRUE(f->getU32("t.u8", u32).isOk());
  EXPECT_EQ(u32, 200u);
  ASSERT_TRUE(f->getI32("t.i8", i32).isOk());
  EXPECT_EQ(i32, -2);
  ASSERT_TRUE(f->getU32("t.u16", u32).isOk());
  EXPECT_EQ(u32, 0x1234u);
  ASSERT_TRUE(f->getI64("t.i16", i64).isOk());
  EXPECT_EQ(i64, -32768);
  ASSERT_TRUE(f->getU64("t.u32", u64).isOk());
  EXPECT_EQ(u64, 4000000000u);
  ASSERT_TRUE(f->getI32("t.i32", i32).isOk());
  EXPECT_EQ(i32, -7);
  ASSERT_TRUE(f->getU64("t.u64", u64).isOk());
  EXPECT_EQ(u64, 1ull << 40);
  ASSERT_TRUE(f->getI64("t.i64", i64).isOk());
  EXPECT_EQ(i64, -5);
  ASSERT_TRUE(f->getU8("t.u8", u8).isOk());
  EXPECT_EQ(u8, 200);
  float fl;
  double db;
  ASSERT_TRUE(f->getF32("t.f32", fl).isOk());
  EXPECT_EQ(fl, 1.5f);
  ASSERT_TRUE(f->getF32("t.f64", fl).isOk());
  EXPECT_EQ(fl, 0.25f);
  ASSERT_TRUE(f->getF64("t.f32", db).isOk());
  EXPECT_EQ(db, 1.5);
  bool bo = false;
  ASSERT_TRUE(f->getBool("t.bool", bo).isOk());
  EXPECT_TRUE(bo);
  std::string s;
  ASSERT_TRUE(f->getString("t.string", s).isOk());
  EXPECT_EQ(s, "héllo");

  std::vector<std::string> strs;
  ASSERT_TRUE(f->getStringArray("t.strings", strs).isOk());
  EXPECT_EQ(strs, (std::vector<std::string>{"a", "", "ccc"}));
  std::vector<int32_t> ints;
  ASSERT_TRUE(f->getI32Array("t.i32s", ints).isOk());
  EXPECT_EQ(ints, (std::vector<int32_t>{1, -2, 3}));
  std::vector<int64_t> longs;
  ASSERT_TRUE(f->getI64Array("t.i32s", longs).isOk());
  EXPECT_EQ(longs, (std::vector<int64_t>{1, -2, 3}));
  std::vector<float> floats;
  ASSERT_TRUE(f->getF32Array("t.f32s", floats).isOk());
  EXPECT_EQ(floats, (std::vector<float>{0.5f, -1}));
  GgufType et;
  uint64_t n;
  ASSERT_TRUE(f->getArrayInfo("t.nested", et, n).isOk());
  EXPECT_EQ(et, GgufType::Array);
  EXPECT_EQ(n, 2u);
  const GgufValue *nested = f->find("t.nested");
  ASSERT_NE(nested, nullptr);
  ASSERT_EQ(nested->items.size(), 2u);
  EXPECT_EQ(nested->items[0].count, 2u);
  EXPECT_EQ(nested->items[0].raw[1], 2);
  EXPECT_EQ(nested->typeDescription(), "array of arrays");
}

TEST(GgufReader, AccessorErrorsNameTheKey) {
  GgufBuilder b;
  b.addString("k.str", "x");
  b.addI32("k.neg", -1);
  b.addU64("k.big", 1ull << 33);
  b.addI32Array("k.ints", {1, -1});
  b.addStringArray("k.strs", {"a"});
  std::unique_ptr<GgufFile> f;
  std::vector<uint8_t> bytes = b.build(); // must outlive f
  ASSERT_TRUE(parseBytes(bytes, &f).isOk());
  uint32_t u32;
  int32_t i32;
  std::string s;
  float fl;
  Status st = f->getU32("k.missing", u32);
  EXPECT_EQ(st.message(), "test.gguf: metadata key 'k.missing' is missing");
  st = f->getU32("k.str", u32);
  EXPECT_EQ(st.message(), "test.gguf: metadata key 'k.str' has type string, "
                          "expected an integer (u32)");
  st = f->getU32("k.neg", u32);
  EXPECT_EQ(st.message(),
            "test.gguf: metadata key 'k.neg' value -1 does not fit in u32");
  st = f->getI32("k.big", i32);
  EXPECT_EQ(st.message(), "test.gguf: metadata key 'k.big' value 8589934592 "
                          "does not fit in i32");
  st = f->getString("k.neg", s);
  EXPECT_EQ(st.message(),
            "test.gguf: metadata key 'k.neg' has type i32, expected string");
  st = f->getF32("k.str", fl);
  EXPECT_NE(st.message().find("'k.str' has type string, expected f32"),
            std::string::npos);
  std::vector<uint32_t> us;
  st = f->getU32Array("k.ints", us);
  EXPECT_EQ(st.message(), "test.gguf: metadata key 'k.ints' element 1 value "
                          "-1 does not fit in u32");
  std::vector<float> fs;
  st = f->getF32Array("k.strs", fs);
  EXPECT_EQ(st.message(), "test.gguf: metadata key 'k.strs' has type array "
                          "of string, expected array of f32");
  std::vector<std::string> ss;
  st = f->getStringArray("k.ints", ss);
  EXPECT_NE(st.message().find("'k.ints' has type array of i32"),
            std::string::npos);
}

TEST(GgufReader, TensorInfosAndData) {
  GgufBuilder::Layout l;
  std::vector<uint8_t> bytes = base(&l);
  std::unique_ptr<GgufFile> f;
  ASSERT_TRUE(parseBytes(bytes, &f).isOk());
  ASSERT_EQ(f->tensors().size(), 2u);
  const GgufTensorInfo *a = f->findTensor("a.weight");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->dims, (std::vector<uint64_t>{4, 2}));
  EXPECT_EQ(a->shape(), (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(a->numElements, 8u);
  EXPECT_EQ(a->byteSize, 32u);
  EXPECT_EQ(a->offset, 0u);
  EXPECT_EQ(f->dataOffset(), l.dataStart);
  EXPECT_EQ(f->findTensor("b.weight")->offset, 32u);
  std::vector<float> v;
  ASSERT_TRUE(f->readTensorF32("b.weight", v).isOk());
  EXPECT_EQ(v, (std::vector<float>{-1, 0.5f, 2}));
  EXPECT_EQ(f->findTensor("nope"), nullptr);
  Status s = f->readTensorF32("nope", v);
  EXPECT_EQ(s.message(), "test.gguf: no tensor named 'nope'");
}

TEST(GgufReader, Version2IsAccepted) {
  GgufBuilder b = baseBuilder();
  b.version = 2;
  std::unique_ptr<GgufFile> f;
  std::vector<uint8_t> bytes = b.build(); // must outlive f
  ASSERT_TRUE(parseBytes(bytes, &f).isOk());
  EXPECT_EQ(f->version(), 2u);
}

TEST(GgufReader, NoTensorsNoData) {
  GgufBuilder b;
  b.addString("general.architecture", "llama");
  std::vector<uint8_t> bytes = b.build();
  // Without tensors the data section may be absent altogether.
  std::vector<uint8_t> trimmed(bytes.begin(), bytes.end());
  while (trimmed.size() > 24 + 8 + 20 + 4 + 8 + 5)
    trimmed.pop_back();
  std::unique_ptr<GgufFile> f;
  ASSERT_TRUE(parseBytes(trimmed, &f).isOk());
  EXPECT_EQ(f->dataSize(), 0u);
}

TEST(GgufReader, LargeAlignment) {
  GgufBuilder b;
  b.alignment = 64;
  b.addU32("general.alignment", 64);
  b.addF32Tensor("a", {3}, {1, 2, 3});
  b.addF32Tensor("b", {1}, {4});
  std::unique_ptr<GgufFile> f;
  std::vector<uint8_t> bytes = b.build(); // must outlive f
  ASSERT_TRUE(parseBytes(bytes, &f).isOk());
  EXPECT_EQ(f->alignment(), 64u);
  EXPECT_EQ(f->dataOffset() % 64, 0u);
  EXPECT_EQ(f->findTensor("b")->offset, 64u);
}

TEST(GgufReader, UnsupportedTypeIsNamedOnRead) {
  GgufBuilder b;
  // IQ2_XXS: 256 elements in 66 bytes. The file is valid; reading the
  // tensor as fp32 is what fails.
  b.addTensor("blk.0.attn_q.weight", {256}, 16, std::vector<uint8_t>(66));
  std::unique_ptr<GgufFile> f;
  std::vector<uint8_t> bytes = b.build(); // must outlive f
  ASSERT_TRUE(parseBytes(bytes, &f).isOk());
  std::vector<float> v;
  Status s = f->readTensorF32("blk.0.attn_q.weight", v);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("tensor 'blk.0.attn_q.weight' has unsupported "
                             "type IQ2_XXS"),
            std::string::npos)
      << s.message();
}

TEST(GgufReader, NonFiniteValuesAreReported) {
  GgufBuilder b;
  b.addF32Tensor("x", {3}, {1, NAN, 2});
  std::unique_ptr<GgufFile> f;
  std::vector<uint8_t> bytes = b.build(); // must outlive f
  ASSERT_TRUE(parseBytes(bytes, &f).isOk());
  std::vector<float> v;
  Status s = f->readTensorF32("x", v);
  EXPECT_EQ(s.message(),
            "test.gguf: tensor 'x' (F32) has a non-finite value (NaN) at flat "
            "index 1");
  EXPECT_TRUE(f->readTensorF32("x", v, false).isOk());
}

TEST(GgufReader, OpenFromDisk) {
  qc::test::TempDir dir("qc_gguf_");
  std::string path = dir.file("m.gguf");
  std::vector<uint8_t> bytes = base();
  {
    std::ofstream o(path, std::ios::binary);
    o.write(reinterpret_cast<const char *>(bytes.data()), bytes.size());
  }
  std::unique_ptr<GgufFile> f;
  ASSERT_TRUE(GgufFile::open(path, f).isOk());
  EXPECT_EQ(f->tensors().size(), 2u);
  std::string empty = dir.file("empty.gguf");
  {
    std::ofstream o(empty, std::ios::binary);
  }
  Status s = GgufFile::open(empty, f);
  EXPECT_EQ(s.message(), empty + ": file is 0 bytes, too short for the GGUF "
                                 "magic (truncated file)");
  s = GgufFile::open(dir.file("missing.gguf"), f);
  EXPECT_NE(s.message().find("cannot open"), std::string::npos);
  s = GgufFile::open(dir.path, f);
  EXPECT_NE(s.message().find("not a regular file"), std::string::npos);
}

//===----------------------------------------------------------------------===//
// Bad files (llama.cpp test-gguf classes)
//===----------------------------------------------------------------------===//

TEST(GgufBadFile, BadMagic) {
  std::vector<uint8_t> b = base();
  b[3] = 'X';
  expectError(b, "bad magic 47 47 55 58");
}

TEST(GgufBadFile, BadVersion) {
  std::vector<uint8_t> b = base();
  patchU32(b, 4, 1);
  expectError(b, "GGUF version 1 is not supported");
  patchU32(b, 4, 4);
  expectError(b, "GGUF version 4 is newer than the supported versions");
  patchU32(b, 4, 0);
  expectError(b, "version 0 is invalid");
  patchU32(b, 4, 0x03000000);
  expectError(b, "big-endian GGUF");
}

TEST(GgufBadFile, AbsurdCounts) {
  std::vector<uint8_t> b = base();
  patchU64(b, 8, ~uint64_t(0));
  expectError(b, "tensor count 18446744073709551615 exceeds the limit");
  b = base();
  patchU64(b, 16, ~uint64_t(0));
  expectError(b, "metadata count 18446744073709551615 exceeds the limit");
  b = base();
  patchU64(b, 16, 100000);
  expectError(b, "cannot fit in the");
}

TEST(GgufBadFile, BadKeySize) {
  GgufBuilder::Layout l;
  std::vector<uint8_t> b = base(&l);
  patchU64(b, l.kv[1], ~uint64_t(0));
  expectError(b, "the key of metadata pair 1 has length 18446744073709551615, "
                 "more than the limit");
  b = base(&l);
  patchU64(b, l.kv[1], 60000);
  expectError(b, "only");
  b = base(&l);
  patchU64(b, l.kv[1], 0);
  expectError(b, "empty key");
}

TEST(GgufBadFile, BadKVType) {
  GgufBuilder::Layout l;
  std::vector<uint8_t> b = base(&l);
  size_t typePos = l.kv[2] + 8 + std::strlen("llama.block_count");
  patchU32(b, typePos, 13);
  expectError(b, "metadata key 'llama.block_count' has unknown value type 13");
  patchU32(b, typePos, ~uint32_t(0));
  expectError(b, "unknown value type 4294967295");
}

TEST(GgufBadFile, DuplicateKey) {
  GgufBuilder b = baseBuilder();
  b.addU32("llama.block_count", 3);
  expectError(b.build(), "duplicate metadata key 'llama.block_count'");
}

TEST(GgufBadFile, BadAlignment) {
  for (uint32_t a : {0u, 13u, 3u}) {
    GgufBuilder b;
    b.addU32("general.alignment", a);
    expectError(b.build(), "'general.alignment' is " + std::to_string(a) +
                               ", not a non-zero power of two");
  }
  GgufBuilder big;
  big.addU32("general.alignment", 1u << 30);
  expectError(big.build(), "more than the limit");
  GgufBuilder wrongType;
  wrongType.addU64("general.alignment", 32);
  expectError(wrongType.build(),
              "metadata key 'general.alignment' has type u64, expected u32");
  GgufBuilder str;
  str.addString("general.alignment", "32");
  expectError(str.build(), "has type string, expected u32");
}

TEST(GgufBadFile, InconsistentAlignment) {
  // Offsets laid out for 32 while the file says 64: the second tensor's
  // offset (32) is misaligned.
  GgufBuilder b;
  b.addU32("general.alignment", 64);
  b.addF32Tensor("a", {1}, {1});
  b.addF32Tensor("b", {1}, {2});
  expectError(b.build(), "tensor 'b' has data offset 32, not a multiple of the "
                         "alignment 64");
}

TEST(GgufBadFile, BadValues) {
  GgufBuilder b;
  b.addRaw("k.bool", 7, {2});
  expectError(b.build(), "metadata key 'k.bool' is a bool with value 2");
  GgufBuilder s;
  {
    GgufBytes x;
    x.u64(~uint64_t(0) - 3);
    s.addRaw("k.s", 8, x.b);
  }
  expectError(s.build(), "the string value of metadata key 'k.s' has length");
  GgufBuilder arr;
  {
    GgufBytes x;
    x.u32(4);
    x.u64(~uint64_t(0));
    arr.addRaw("k.arr", 9, x.b);
  }
  expectError(arr.build(),
              "metadata key 'k.arr' is an array of "
              "18446744073709551615 elements, more than the limit");
  GgufBuilder arr2;
  {
    GgufBytes x;
    x.u32(8);
    x.u64(1000);
    arr2.addRaw("k.arr", 9, x.b);
  }
  expectError(arr2.build(), "claims 1000 string elements, more than the");
  GgufBuilder badElem;
  {
    GgufBytes x;
    x.u32(77);
    x.u64(0);
    badElem.addRaw("k.arr", 9, x.b);
  }
  expectError(badElem.build(), "is an array of unknown element type 77");
  GgufBuilder deep;
  {
    GgufBytes x;
    for (int i = 0; i < 20; ++i) {
      x.u32(9);
      x.u64(1);
    }
    x.u32(0);
    x.u64(0);
    deep.addRaw("k.deep", 9, x.b);
  }
  expectError(deep.build(), "nests arrays deeper than the limit of 8");
}

TEST(GgufBadFile, TensorNameSize) {
  GgufBuilder::Layout l;
  std::vector<uint8_t> b = base(&l);
  patchU64(b, l.tensors[0].name, ~uint64_t(0));
  expectError(b, "the name of tensor 0 has length 18446744073709551615");
  b = base(&l);
  patchU64(b, l.tensors[1].name, 0);
  expectError(b, "tensor 1 has an empty name");
}

TEST(GgufBadFile, TooManyDims) {
  GgufBuilder::Layout l;
  std::vector<uint8_t> b = base(&l);
  patchU32(b, l.tensors[0].nDims, 5);
  expectError(b, "tensor 'a.weight' has 5 dimensions, more than the limit of "
                 "4");
  patchU32(b, l.tensors[0].nDims, ~uint32_t(0));
  expectError(b, "4294967295 dimensions");
}

TEST(GgufBadFile, BadShape) {
  GgufBuilder::Layout l;
  std::vector<uint8_t> b = base(&l);
  patchU64(b, l.tensors[0].dims + 8, 0);
  expectError(b, "tensor 'a.weight' dimension 1 is 0");
  patchU64(b, l.tensors[0].dims + 8, ~uint64_t(0));
  expectError(b, "tensor 'a.weight' dimension 1 is -1");
}

TEST(GgufBadFile, ElementCountTooBig) {
  GgufBuilder b;
  // Four dims of 4 * INT32_MAX each: the product overflows 64 bits.
  uint64_t d = 4ull * INT32_MAX;
  b.addTensor("big", {d, d, d, d}, 0, {});
  expectError(b.build(), "tensor 'big' has too many elements");
  // Fits in int64 elements but not in bytes (F32: 4 each), or in the file.
  GgufBuilder c;
  c.addTensor("big", {1ull << 62}, 0, {});
  expectError(c.build(), "tensor 'big' byte size overflows 64 bits");
  GgufBuilder e;
  e.addTensor("big", {1ull << 40}, 0, {});
  expectError(e.build(), "tensor 'big' (F32, 4398046511104 bytes at data "
                         "offset 0) runs past the end of the data section");
}

TEST(GgufBadFile, BadType) {
  GgufBuilder::Layout l;
  std::vector<uint8_t> b = base(&l);
  patchU32(b, l.tensors[1].type, 4); // removed Q4_2
  expectError(b, "tensor 'b.weight' has unknown ggml type id 4");
  patchU32(b, l.tensors[1].type, 1000);
  expectError(b, "unknown ggml type id 1000");
}

TEST(GgufBadFile, RowNotWholeBlocks) {
  GgufBuilder b;
  b.addTensor("q", {33}, 2, std::vector<uint8_t>(18));
  expectError(b.build(), "tensor 'q' has rows of 33 elements, not a multiple "
                         "of the Q4_0 block size 32");
}

TEST(GgufBadFile, BadOffset) {
  GgufBuilder::Layout l;
  std::vector<uint8_t> b = base(&l);
  patchU64(b, l.tensors[1].offset, 33);
  expectError(b, "tensor 'b.weight' has data offset 33, not a multiple of the "
                 "alignment 32");
  patchU64(b, l.tensors[1].offset, ~uint64_t(0) - 31);
  expectError(b, "tensor 'b.weight' (F32, 12 bytes at data offset "
                 "18446744073709551584) runs past the end");
  patchU64(b, l.tensors[1].offset, 64);
  expectError(b, "runs past the end of the data section");
  patchU64(b, l.tensors[1].offset, 0);
  expectError(b, "tensor 'b.weight' at data offset 0 overlaps tensor "
                 "'a.weight'");
}

TEST(GgufBadFile, DuplicateTensorName) {
  GgufBuilder b = baseBuilder();
  b.addF32Tensor("a.weight", {1}, {0});
  expectError(b.build(), "duplicate tensor name 'a.weight'");
  // Names from the file are escaped so that the message stays one line.
  GgufBuilder c;
  c.addF32Tensor("x\ny", {1}, {0});
  c.addF32Tensor("x\ny", {1}, {0});
  expectError(c.build(), "duplicate tensor name 'x\\x0ay'");
  EXPECT_EQ(ggufQuote(std::string(300, 'k')).size(), 205u);
}

TEST(GgufBadFile, DataOneByteShort) {
  GgufBuilder b;
  b.addF32Tensor("a", {8}, {1, 2, 3, 4, 5, 6, 7, 8}); // exactly 32 bytes
  std::vector<uint8_t> bytes = b.build();
  ASSERT_TRUE(parseBytes(bytes).isOk());
  bytes.pop_back();
  expectError(bytes, "tensor 'a' (F32, 32 bytes at data offset 0) runs past "
                     "the end of the data section (31 bytes; truncated file?)");
}

TEST(GgufBadFile, TruncatedAtEveryByte) {
  GgufBuilder b = baseBuilder();
  b.addStringArray("tokenizer.ggml.tokens", {"a", "bb", "ccc"});
  b.addI32Array("tokenizer.ggml.token_type", {1, 1, 3});
  std::vector<uint8_t> bytes = b.build();
  ASSERT_TRUE(parseBytes(bytes).isOk());
  // Every prefix that ends before the last tensor's last byte must fail
  // (the builder pads after the last tensor; cutting that padding is fine).
  std::unique_ptr<GgufFile> f;
  ASSERT_TRUE(parseBytes(bytes, &f).isOk());
  size_t needed = f->dataOffset() + f->findTensor("b.weight")->offset + 12;
  for (size_t n = 0; n < needed; ++n) {
    // A fresh heap copy of exactly n bytes, so that ASan sees any read past
    // the end.
    std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + n);
    cut.shrink_to_fit();
    Status s = parseBytes(cut);
    ASSERT_FALSE(s.isOk()) << "accepted a file cut at " << n << " bytes";
    EXPECT_EQ(s.message().rfind(kFile + ": ", 0), 0u) << s.message();
  }
}

//===----------------------------------------------------------------------===//
// The bundled SmolLM2 GGUF
//===----------------------------------------------------------------------===//

TEST(GgufReader, BundledSmolLM2) {
  std::string path = std::string(QC_SHARED_DIR) +
                     "/models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf";
  std::unique_ptr<GgufFile> f;
  Status s = GgufFile::open(path, f);
  ASSERT_TRUE(s.isOk()) << s.message();
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->tensors().size(), 272u);
  EXPECT_EQ(f->metadata().size(), 33u);
  int q41 = 0, q80 = 0, f32 = 0;
  for (const GgufTensorInfo &t : f->tensors()) {
    q41 += t.type == GgmlType::Q4_1;
    q80 += t.type == GgmlType::Q8_0;
    f32 += t.type == GgmlType::F32;
  }
  EXPECT_EQ(q41, 210);
  EXPECT_EQ(q80, 1);
  EXPECT_EQ(f32, 61);
  std::string arch;
  ASSERT_TRUE(f->getString("general.architecture", arch).isOk());
  EXPECT_EQ(arch, "llama");
  uint32_t v;
  ASSERT_TRUE(f->getU32("llama.block_count", v).isOk());
  EXPECT_EQ(v, 30u);
  ASSERT_TRUE(f->getU32("llama.embedding_length", v).isOk());
  EXPECT_EQ(v, 576u);
  ASSERT_TRUE(f->getU32("llama.attention.head_count_kv", v).isOk());
  EXPECT_EQ(v, 3u);
  ASSERT_TRUE(f->getU32("tokenizer.ggml.bos_token_id", v).isOk());
  EXPECT_EQ(v, 1u);
  float theta;
  ASSERT_TRUE(f->getF32("llama.rope.freq_base", theta).isOk());
  EXPECT_EQ(theta, 100000.0f);
  std::string model;
  ASSERT_TRUE(f->getString("tokenizer.ggml.model", model).isOk());
  EXPECT_EQ(model, "gpt2");
  std::vector<std::string_view> tokens, merges;
  ASSERT_TRUE(f->getStringArrayView("tokenizer.ggml.tokens", tokens).isOk());
  EXPECT_EQ(tokens.size(), 49152u);
  EXPECT_EQ(tokens[0], "<|endoftext|>");
  EXPECT_EQ(tokens[1], "<|im_start|>");
  ASSERT_TRUE(f->getStringArrayView("tokenizer.ggml.merges", merges).isOk());
  EXPECT_EQ(merges.size(), 48900u);
  std::vector<int32_t> types;
  ASSERT_TRUE(f->getI32Array("tokenizer.ggml.token_type", types).isOk());
  ASSERT_EQ(types.size(), 49152u);
  EXPECT_EQ(types[0], 3); // control
  EXPECT_EQ(types[16], 3);
  EXPECT_EQ(types[17], 1); // normal
  const GgufTensorInfo *k = f->findTensor("blk.0.attn_k.weight");
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(k->dims, (std::vector<uint64_t>{576, 192}));
  EXPECT_EQ(k->shape(), (std::vector<int64_t>{192, 576}));
  EXPECT_EQ(k->type, GgmlType::Q4_1);
  EXPECT_EQ(k->byteSize, 192u * 576 / 32 * 20);
}

//===----------------------------------------------------------------------===//
// Fuzzer seed corpus (runtime/fuzz/gguf-corpus)
//===----------------------------------------------------------------------===//

namespace {

/// Small valid files covering the reader's paths: every metadata type,
/// quantized tensors, version 2 with a larger alignment, a tiny llama.
std::vector<std::pair<std::string, std::vector<uint8_t>>> seedFiles() {
  std::vector<std::pair<std::string, std::vector<uint8_t>>> seeds;
  {
    GgufBuilder b;
    b.addRaw("t.u8", 0, {7});
    b.addRaw("t.i16", 3, {0x00, 0x80});
    b.addI32("t.i32", -7);
    b.addU64("t.u64", 1ull << 40);
    b.addF32("t.f32", 0.5f);
    b.addBool("t.bool", true);
    b.addString("t.string", "text");
    b.addStringArray("t.strings", {"a", "bc"});
    b.addI32Array("t.ints", {1, -1});
    b.addF32Array("t.floats", {1.5f});
    GgufBytes x;
    x.u32(9);
    x.u64(1);
    x.u32(0);
    x.u64(2);
    x.u8(1);
    x.u8(2);
    b.addRaw("t.nested", 9, x.b);
    seeds.push_back({"metadata.gguf", b.build()});
  }
  {
    GgufBuilder b;
    b.addString("general.architecture", "llama");
    std::vector<uint8_t> q40(18 * 2, 0x5A), q80(34, 0x11), q4k(144, 0x33),
        q6k(210, 0x77), f16(8, 0x3C), bf16(8, 0x3F);
    for (std::vector<uint8_t> *v : {&q40, &q80})
      (*v)[1] = 0x3C; // scale 1.0 in the first block
    q40[19] = 0x38;
    q4k[1] = 0x3C;
    q4k[3] = 0x38;
    q6k[209] = 0x3C;
    b.addTensor("q4_0", {32, 2}, 2, q40);
    b.addTensor("q8_0", {32}, 8, q80);
    b.addTensor("q4_k", {256}, 12, q4k);
    b.addTensor("q6_k", {256}, 14, q6k);
    b.addTensor("f16", {4}, 1, f16);
    b.addTensor("bf16", {2, 2}, 30, bf16);
    seeds.push_back({"quantized.gguf", b.build()});
  }
  {
    GgufBuilder b;
    b.version = 2;
    b.alignment = 64;
    b.addU32("general.alignment", 64);
    b.addF32Tensor("a", {3, 1}, {1, 2, 3});
    b.addF32Tensor("b", {1}, {4});
    seeds.push_back({"v2-align64.gguf", b.build()});
  }
  {
    GgufBuilder b;
    b.addString("general.architecture", "llama");
    b.addU32("llama.context_length", 16);
    b.addU32("llama.embedding_length", 4);
    b.addU32("llama.block_count", 1);
    b.addU32("llama.feed_forward_length", 8);
    b.addU32("llama.attention.head_count", 2);
    b.addU32("llama.attention.head_count_kv", 1);
    b.addF32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
    b.addF32("llama.rope.freq_base", 10000.0f);
    b.addU32("tokenizer.ggml.bos_token_id", 1);
    b.addU32("tokenizer.ggml.eos_token_id", 2);
    auto vals = [](size_t n) {
      std::vector<float> v(n);
      for (size_t i = 0; i < n; ++i)
        v[i] = 0.125f * static_cast<float>(static_cast<int>(i % 7) - 3);
      return v;
    };
    b.addF32Tensor("token_embd.weight", {4, 4}, vals(16));
    b.addF32Tensor("blk.0.attn_norm.weight", {4}, vals(4));
    b.addF32Tensor("blk.0.attn_q.weight", {4, 4}, vals(16));
    b.addF32Tensor("blk.0.attn_k.weight", {4, 2}, vals(8));
    b.addF32Tensor("blk.0.attn_v.weight", {4, 2}, vals(8));
    b.addF32Tensor("blk.0.attn_output.weight", {4, 4}, vals(16));
    b.addF32Tensor("blk.0.ffn_norm.weight", {4}, vals(4));
    b.addF32Tensor("blk.0.ffn_gate.weight", {4, 8}, vals(32));
    b.addF32Tensor("blk.0.ffn_up.weight", {4, 8}, vals(32));
    b.addF32Tensor("blk.0.ffn_down.weight", {8, 4}, vals(32));
    b.addF32Tensor("output_norm.weight", {4}, vals(4));
    seeds.push_back({"tiny-llama.gguf", b.build()});
  }
  return seeds;
}

} // namespace

/// Checks that the committed seeds are exactly what seedFiles() builds and
/// that each is accepted. With QC_WRITE_GGUF_CORPUS=1 in the environment it
/// (re)writes them first.
TEST(GgufFuzzCorpus, SeedsAreValidAndUpToDate) {
  const std::string dir = QC_GGUF_FUZZ_CORPUS;
  bool write = std::getenv("QC_WRITE_GGUF_CORPUS") != nullptr;
  for (const auto &seed : seedFiles()) {
    SCOPED_TRACE(seed.first);
    std::string path = dir + "/" + seed.first;
    if (write) {
      std::ofstream o(path, std::ios::binary);
      o.write(reinterpret_cast<const char *>(seed.second.data()),
              static_cast<std::streamsize>(seed.second.size()));
    }
    std::ifstream in(path, std::ios::binary);
    ASSERT_TRUE(in.good()) << "missing seed " << path;
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), {});
    EXPECT_EQ(bytes, seed.second) << "stale seed; rerun with "
                                     "QC_WRITE_GGUF_CORPUS=1";
    std::unique_ptr<GgufFile> f;
    Status s = GgufFile::open(path, f);
    EXPECT_TRUE(s.isOk()) << s.message();
    if (seed.first == "tiny-llama.gguf") {
      // The fuzzer also reaches the model import from this seed.
      ModelWeights w;
      s = loadGgufModel(path, w);
      EXPECT_TRUE(s.isOk()) << s.message();
    }
  }
}

TEST(GgufBadFile, BundledSmolLM2CutAnywhere) {
  // Cuts of the real file's 2 MB header (tokenizer arrays included) and of
  // its data: every prefix shorter than the end of the last tensor fails.
  std::string path = std::string(QC_SHARED_DIR) +
                     "/models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf";
  std::unique_ptr<GgufFile> f;
  ASSERT_TRUE(GgufFile::open(path, f).isOk());
  uint64_t end = 0;
  for (const GgufTensorInfo &t : f->tensors())
    end = std::max(end, f->dataOffset() + t.offset + t.byteSize);
  std::ifstream in(path, std::ios::binary);
  std::vector<uint8_t> head(static_cast<size_t>(f->dataOffset()));
  in.read(reinterpret_cast<char *>(head.data()),
          static_cast<std::streamsize>(head.size()));
  ASSERT_TRUE(in.good());
  std::vector<size_t> cuts;
  for (size_t n = 0; n < 4096; ++n)
    cuts.push_back(n);
  for (size_t i = 1; i <= 400; ++i)
    cuts.push_back(head.size() * i / 401);
  cuts.push_back(head.size() - 1);
  for (size_t n : cuts) {
    std::unique_ptr<GgufFile> g;
    Status s = GgufFile::parse(head.data(), n, kFile, g);
    ASSERT_FALSE(s.isOk()) << "accepted a cut at " << n;
    EXPECT_EQ(s.message().rfind(kFile + ": ", 0), 0u) << s.message();
  }
  // Header complete but the data one byte short of the last tensor's end:
  // only the sizes matter, so a zero-filled buffer stands in for the data.
  std::vector<uint8_t> shortFile(static_cast<size_t>(end - 1), 0);
  std::copy(head.begin(), head.end(), shortFile.begin());
  std::unique_ptr<GgufFile> g;
  Status s = GgufFile::parse(shortFile.data(), shortFile.size(), kFile, g);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("runs past the end of the data section"),
            std::string::npos)
      << s.message();
  shortFile.push_back(0);
  EXPECT_TRUE(
      GgufFile::parse(shortFile.data(), shortFile.size(), kFile, g).isOk());
}
