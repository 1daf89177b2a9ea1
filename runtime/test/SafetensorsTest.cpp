//===- SafetensorsTest.cpp - Tests for safetensors I/O ----------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Every bad-input case of ../shared/docs/RELIABILITY.md section 2.2 rows 1-8
// as a hand-built file, including the reference implementation's unit-test
// suite (json attack, incomplete buffer, header too large/small, invalid
// length, non-UTF-8, not JSON, whitespace, zero-sized tensors, invalid info,
// validation overflow), plus writer byte-exactness, round trips, atomic
// replacement and exhaustive fp16/bf16 conversion checks.
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/Safetensors.h"

#include "TestUtil.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

using namespace qc;
namespace fs = std::filesystem;

namespace {

const char *const kName = "bad.safetensors";

/// Bytes of a file: 8-byte little-endian `declaredLen`, `header`, `data`.
std::vector<uint8_t> fileBytes(const std::string &header,
                               const std::string &data, uint64_t declaredLen) {
  std::vector<uint8_t> out(8);
  for (int i = 0; i < 8; ++i)
    out[i] = static_cast<uint8_t>(declaredLen >> (8 * i));
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

/// As above with the true header length.
std::vector<uint8_t> fileBytes(const std::string &header,
                               const std::string &data = "") {
  return fileBytes(header, data, header.size());
}

/// Raw bytes given as a string literal (may contain NULs).
std::vector<uint8_t> rawBytes(const char *s, size_t n) {
  return std::vector<uint8_t>(s, s + n);
}

Status parseBytes(const std::vector<uint8_t> &bytes,
                  std::unique_ptr<SafetensorsFile> &out,
                  const SafetensorsLimits &limits = {}) {
  return SafetensorsFile::parse(bytes.data(), bytes.size(), kName, out, limits);
}

/// Asserts that `bytes` is rejected with a message that starts with the file
/// name and contains every fragment.
void expectRejected(const std::vector<uint8_t> &bytes,
                    std::vector<std::string> fragments,
                    const SafetensorsLimits &limits = {}) {
  std::unique_ptr<SafetensorsFile> f;
  Status s = parseBytes(bytes, f, limits);
  ASSERT_FALSE(s.isOk()) << "accepted a bad file";
  EXPECT_EQ(f, nullptr);
  EXPECT_EQ(s.message().rfind(std::string(kName) + ": ", 0), 0u) << s.message();
  for (const std::string &frag : fragments)
    EXPECT_NE(s.message().find(frag), std::string::npos)
        << "missing '" << frag << "' in: " << s.message();
}

/// A single I32 [2,2] tensor named "test" at [0,16]: the reference tests'
/// 60-byte header.
const std::string kTestHeader =
    "{\"test\":{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}";

/// Temporary directories named after this suite.
struct TempDir : qc::test::TempDir {
  TempDir() : qc::test::TempDir("qc_st_") {}
};

void writeRaw(const std::string &path, const std::vector<uint8_t> &bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char *>(bytes.data()), bytes.size());
}

std::string readRaw(const std::string &path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

uint32_t bitsOf(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

float floatOf(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

std::vector<uint8_t> floatBytes(const std::vector<float> &v) {
  std::vector<uint8_t> b(v.size() * 4);
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

} // namespace

//===----------------------------------------------------------------------===//
// The reference implementation's test suite
//===----------------------------------------------------------------------===//

TEST(SafetensorsReference, Deserialization) {
  auto bytes = fileBytes(kTestHeader, std::string(16, '\0'));
  ASSERT_EQ(bytes[0], '<'); // the reference test's length byte
  std::unique_ptr<SafetensorsFile> f;
  ASSERT_TRUE(parseBytes(bytes, f).isOk());
  ASSERT_EQ(f->tensors().size(), 1u);
  const TensorInfo *t = f->find("test");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->dtype, DType::I32);
  EXPECT_EQ(t->shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(t->begin, 0u);
  EXPECT_EQ(t->end, 16u);
  EXPECT_EQ(f->headerSize(), 60u);
  EXPECT_EQ(f->dataSize(), 16u);
  EXPECT_EQ(f->tensorData(*t), bytes.data() + 68);
  EXPECT_EQ(f->find("nope"), nullptr);
}

TEST(SafetensorsReference, EmptyShapeIsAScalar) {
  auto bytes = fileBytes(
      "{\"test\":{\"dtype\":\"I32\",\"shape\":[],\"data_offsets\":[0,4]}}",
      std::string(4, '\0'));
  std::unique_ptr<SafetensorsFile> f;
  ASSERT_TRUE(parseBytes(bytes, f).isOk());
  EXPECT_TRUE(f->find("test")->shape.empty());
  EXPECT_EQ(f->find("test")->numElements(), 1);
}

TEST(SafetensorsReference, JsonAttackOverlappingTensors) {
  std::string header = "{";
  for (int i = 0; i < 10; ++i) {
    if (i)
      header += ",";
    header += "\"weight_" + std::to_string(i) +
              "\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}";
  }
  header += "}";
  expectRejected(fileBytes(header, std::string(16, '\0')),
                 {"tensor \"weight_", "overlap", "invalid offset"});
}

TEST(SafetensorsReference, MetadataIncompleteBufferPolyglot) {
  std::string extra = "extra_bogus_data_for_polyglot_file";
  expectRejected(
      fileBytes(kTestHeader, std::string(16, '\0') + extra),
      {"34 trailing bytes", "expected 84 bytes", "file has 118", "polyglot"});
}

TEST(SafetensorsReference, MetadataIncompleteBufferTwoBytesShort) {
  expectRejected(fileBytes(kTestHeader, std::string(14, '\0')),
                 {"truncated", "tensor \"test\"", "ends at data byte 16",
                  "data section has 14 bytes", "expected 84 bytes",
                  "file has 82"});
}

TEST(SafetensorsReference, HeaderTooLarge) {
  auto bytes = fileBytes(kTestHeader, std::string(16, '\0'));
  bytes[5] = bytes[6] = bytes[7] = 0xFF; // "<\0\0\0\0\xff\xff\xff"
  expectRejected(bytes, {"header length 18446742974197923900",
                         "exceeds the limit of 100000000 bytes"});
}

TEST(SafetensorsReference, HeaderTooSmall) {
  expectRejected({}, {"file is 0 bytes", "header too small"});
  expectRejected(rawBytes("\x05\0\0\0\0\0\0", 7), {"file is 7 bytes"});
}

TEST(SafetensorsReference, InvalidHeaderLength) {
  expectRejected(rawBytes("<\0\0\0\0\0\0\0", 8),
                 {"header length 60 needs 68 bytes", "the file has only 8",
                  "invalid header length"});
}

TEST(SafetensorsReference, NonUtf8Header) {
  expectRejected(rawBytes("\x01\0\0\0\0\0\0\0\xff", 9),
                 {"not valid UTF-8", "byte 8 of the file"});
}

TEST(SafetensorsReference, NotJson) {
  expectRejected(rawBytes("\x01\0\0\0\0\0\0\0{", 9),
                 {"not valid JSON", "file byte 9", "end of input"});
}

TEST(SafetensorsReference, WhitespacePaddedHeaderAccepted) {
  std::unique_ptr<SafetensorsFile> f;
  auto trailing = rawBytes("\x06\0\0\0\0\0\0\0{}\x0D\x20\x09\x0A", 14);
  ASSERT_TRUE(parseBytes(trailing, f).isOk());
  EXPECT_TRUE(f->tensors().empty());
  // Leading whitespace before '{' is tolerated as well.
  auto leading = rawBytes("\x06\0\0\0\0\0\0\0\x09\x0A{}\x0D\x20", 14);
  ASSERT_TRUE(parseBytes(leading, f).isOk());
}

TEST(SafetensorsReference, ZeroSizedTensorAccepted) {
  auto bytes = fileBytes(
      "{\"test\":{\"dtype\":\"I32\",\"shape\":[2,0],\"data_offsets\":[0, 0]}}");
  ASSERT_EQ(bytes.size(), 68u);
  std::unique_ptr<SafetensorsFile> f;
  ASSERT_TRUE(parseBytes(bytes, f).isOk());
  EXPECT_EQ(f->find("test")->shape, (std::vector<int64_t>{2, 0}));
  EXPECT_EQ(f->find("test")->byteSize(), 0u);
  EXPECT_EQ(f->find("test")->numElements(), 0);
}

TEST(SafetensorsReference, InvalidInfo) {
  expectRejected(
      fileBytes("{\"test\":{\"dtype\":\"I32\",\"shape\":[2,2],\"data_offsets\":"
                "[0, 4]}}"),
      {"tensor \"test\"", "hold 4 bytes", "[2, 2] of I32 needs 16 bytes"});
}

TEST(SafetensorsReference, ValidationOverflow) {
  // Element count overflow: 2 * (2^64 - 2).
  expectRejected(
      fileBytes(
          "{\"test\":{\"dtype\":\"I32\",\"shape\":[2,18446744073709551614],"
          "\"data_offsets\":[0,16]}}",
          std::string(16, '\0')),
      {"tensor \"test\"", "element count", "overflows 64 bits"});
  // Byte size overflow: 2 * (2^63 - 1) elements fit, times 4 bytes do not.
  expectRejected(
      fileBytes(
          "{\"test\":{\"dtype\":\"I32\",\"shape\":[2,9223372036854775807],"
          "\"data_offsets\":[0,16]}}",
          std::string(16, '\0')),
      {"tensor \"test\"", "byte size", "overflows 64 bits"});
}

//===----------------------------------------------------------------------===//
// Header-level cases beyond the reference suite
//===----------------------------------------------------------------------===//

TEST(SafetensorsHeader, ConfigurableHeaderCap) {
  auto bytes = fileBytes(kTestHeader, std::string(16, '\0'));
  SafetensorsLimits limits;
  limits.maxHeaderBytes = 59;
  expectRejected(bytes, {"exceeds the limit of 59 bytes"}, limits);
  limits.maxHeaderBytes = 60;
  std::unique_ptr<SafetensorsFile> f;
  EXPECT_TRUE(parseBytes(bytes, f, limits).isOk());
}

TEST(SafetensorsHeader, LengthPlusEightWraps) {
  // With the cap lifted, N = 2^64 - 1 makes N + 8 wrap; it must be caught.
  SafetensorsLimits limits;
  limits.maxHeaderBytes = std::numeric_limits<uint64_t>::max();
  auto bytes = fileBytes("{}", "", std::numeric_limits<uint64_t>::max());
  expectRejected(bytes, {"needs more than 2^64 bytes", "invalid header length"},
                 limits);
  auto beyond = fileBytes("{}", "", 1000);
  expectRejected(beyond,
                 {"header length 1000 needs 1008 bytes", "file has only 10"});
}

TEST(SafetensorsHeader, MustBeAnObjectStartingWithBrace) {
  expectRejected(fileBytes("[]      "), {"must be a JSON object starting "
                                         "with '{'"});
  expectRejected(fileBytes("   5    "), {"starting with '{'"});
  expectRejected(fileBytes("        "), {"starting with '{'"});
  expectRejected(fileBytes("{} []   "), {"not valid JSON", "after the JSON "
                                                           "value"});
}

TEST(SafetensorsHeader, JsonErrorReportsOffset) {
  expectRejected(fileBytes("{\"a\" 1}"),
                 {"header is not valid JSON at header byte 5 (file byte 13): "
                  "unexpected character '1' after object key, expected ':'"});
}

TEST(SafetensorsHeader, DeepNestingRejected) {
  std::string header =
      "{\"a\":" + std::string(100, '[') + std::string(100, ']') + "}";
  expectRejected(fileBytes(header), {"not valid JSON", "nesting deeper"});
}

TEST(SafetensorsHeader, DuplicateTensorNames) {
  std::string entry = "{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}";
  expectRejected(
      fileBytes("{\"dup\":" + entry + ",\"dup\":" + entry + "}", "x"),
      {"duplicate object key \"dup\""});
}

TEST(SafetensorsHeader, Metadata) {
  std::unique_ptr<SafetensorsFile> f;
  auto ok = fileBytes("{\"__metadata__\":{\"format\":\"pt\",\"a\":\"b\"}}");
  ASSERT_TRUE(parseBytes(ok, f).isOk());
  EXPECT_EQ(f->metadata().at("format"), "pt");
  EXPECT_EQ(f->metadata().at("a"), "b");
  EXPECT_TRUE(f->tensors().empty());
  auto nullMeta = fileBytes("{\"__metadata__\":null}");
  ASSERT_TRUE(parseBytes(nullMeta, f).isOk());
  EXPECT_TRUE(f->metadata().empty());
  expectRejected(fileBytes("{\"__metadata__\":{\"format\":1}}"),
                 {"__metadata__ value for key \"format\"",
                  "must be a string, found number"});
  expectRejected(fileBytes("{\"__metadata__\":[\"pt\"]}"),
                 {"__metadata__ must be an object, found array"});
}

//===----------------------------------------------------------------------===//
// Tensor entries (rows 5-7)
//===----------------------------------------------------------------------===//

namespace {
/// A one-tensor header "t" with the given entry body.
std::vector<uint8_t> oneTensor(const std::string &entry,
                               const std::string &data = "") {
  return fileBytes("{\"t\":" + entry + "}", data);
}
} // namespace

TEST(SafetensorsEntry, MissingAndWrongTypedFields) {
  expectRejected(oneTensor("{\"shape\":[1],\"data_offsets\":[0,1]}", "x"),
                 {"tensor \"t\"", "missing 'dtype'"});
  expectRejected(oneTensor("{\"dtype\":\"U8\",\"data_offsets\":[0,1]}", "x"),
                 {"tensor \"t\"", "missing 'shape'"});
  expectRejected(oneTensor("{\"dtype\":\"U8\",\"shape\":[1]}", "x"),
                 {"tensor \"t\"", "missing 'data_offsets'"});
  expectRejected(
      oneTensor("{\"dtype\":8,\"shape\":[1],\"data_offsets\":[0,1]}", "x"),
      {"tensor \"t\"", "'dtype' must be a string, found number"});
  expectRejected(
      oneTensor("{\"dtype\":\"U8\",\"shape\":\"1\",\"data_offsets\":[0,1]}",
                "x"),
      {"tensor \"t\"", "'shape' must be an array, found string"});
  for (const char *offs :
       {"[0]", "[0,1,2]", "[-1,0]", "[\"0\",\"1\"]", "[0,1.5]", "{}"})
    expectRejected(
        oneTensor(
            std::string("{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":") +
                offs + "}",
            "x"),
        {"tensor \"t\"", "'data_offsets' must be an array of two"});
  expectRejected(oneTensor("5"), {"tensor \"t\"", "entry must be an object, "
                                                  "found number"});
  expectRejected(oneTensor("{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":"
                           "[0,1],\"extra\":0}",
                           "x"),
                 {"tensor \"t\"", "unexpected key \"extra\""});
}

TEST(SafetensorsEntry, BadDimensions) {
  expectRejected(
      oneTensor("{\"dtype\":\"U8\",\"shape\":[-1,4],\"data_offsets\":[0,0]}"),
      {"tensor \"t\"", "dimension 0 is negative (-1)"});
  expectRejected(
      oneTensor("{\"dtype\":\"U8\",\"shape\":[1,2.5],\"data_offsets\":[0,0]}"),
      {"tensor \"t\"", "dimension 1 is not a non-negative integer"});
  expectRejected(oneTensor("{\"dtype\":\"U8\",\"shape\":[18446744073709551616],"
                           "\"data_offsets\":[0,0]}"),
                 {"tensor \"t\"", "dimension 0 is not a non-negative integer "
                                  "below 2^64"});
  expectRejected(
      oneTensor("{\"dtype\":\"U8\",\"shape\":[null],\"data_offsets\":[0,0]}"),
      {"tensor \"t\"", "dimension 0"});
  expectRejected(
      oneTensor("{\"dtype\":\"U8\",\"shape\":[-0],\"data_offsets\":[0,0]}"),
      {"tensor \"t\"", "dimension 0 is not a non-negative integer"});
  // A zero dim hides any other dim from the overflow checks; it must still
  // fit in int64.
  expectRejected(
      oneTensor("{\"dtype\":\"I32\",\"shape\":[0,9223372036854775808],"
                "\"data_offsets\":[0,0]}"),
      {"tensor \"t\"", "dimension 9223372036854775808 exceeds "
                       "2^63 - 1"});
}

TEST(SafetensorsEntry, RankCap) {
  std::string dims17 = "[1";
  for (int i = 1; i < 17; ++i)
    dims17 += ",1";
  dims17 += "]";
  expectRejected(oneTensor("{\"dtype\":\"U8\",\"shape\":" + dims17 +
                               ",\"data_offsets\":[0,1]}",
                           "x"),
                 {"tensor \"t\"", "shape has 17 dimensions, more than the "
                                  "limit of 16"});
  std::string dims16 = dims17.substr(0, dims17.size() - 3) + "]";
  std::unique_ptr<SafetensorsFile> f;
  EXPECT_TRUE(parseBytes(oneTensor("{\"dtype\":\"U8\",\"shape\":" + dims16 +
                                       ",\"data_offsets\":[0,1]}",
                                   "x"),
                         f)
                  .isOk());
  EXPECT_EQ(f->find("t")->shape.size(), 16u);
}

TEST(SafetensorsEntry, UnknownDtypeNamesTensorAndSupportedSet) {
  expectRejected(
      oneTensor("{\"dtype\":\"F7\",\"shape\":[1],\"data_offsets\":[0,1]}", "x"),
      {"tensor \"t\"", "unknown dtype \"F7\"", "supported: BOOL, F4,",
       "F8_E4M3FNUZ", "BF16", "U64"});
  // Lowercase is not a dtype either.
  expectRejected(
      oneTensor("{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}",
                "xxxx"),
      {"unknown dtype \"f32\""});
}

TEST(SafetensorsEntry, SubByteMustEndOnByteBoundary) {
  expectRejected(
      oneTensor("{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]}",
                "xx"),
      {"tensor \"t\"", "3 elements of 4-bit dtype F4 do not end on a byte "
                       "boundary"});
  expectRejected(oneTensor("{\"dtype\":\"F6_E2M3\",\"shape\":[2],"
                           "\"data_offsets\":[0,2]}",
                           "xx"),
                 {"tensor \"t\"", "6-bit dtype F6_E2M3"});
  std::unique_ptr<SafetensorsFile> f;
  EXPECT_TRUE(parseBytes(oneTensor("{\"dtype\":\"F4\",\"shape\":[2,2],"
                                   "\"data_offsets\":[0,2]}",
                                   "xx"),
                         f)
                  .isOk());
  EXPECT_TRUE(parseBytes(oneTensor("{\"dtype\":\"F6_E3M2\",\"shape\":[4],"
                                   "\"data_offsets\":[0,3]}",
                                   "xxx"),
                         f)
                  .isOk());
}

TEST(SafetensorsEntry, EndBeforeBegin) {
  expectRejected(
      oneTensor("{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[16,0]}"),
      {"tensor \"t\"", "data_offsets [16, 0] end before begin"});
}

//===----------------------------------------------------------------------===//
// Layout (row 4)
//===----------------------------------------------------------------------===//

namespace {
std::string u8Entry(const std::string &name, uint64_t b, uint64_t e) {
  return "\"" + name + "\":{\"dtype\":\"U8\",\"shape\":[" +
         std::to_string(e - b) + "],\"data_offsets\":[" + std::to_string(b) +
         "," + std::to_string(e) + "]}";
}
} // namespace

TEST(SafetensorsLayout, HoleRejected) {
  expectRejected(
      fileBytes("{" + u8Entry("a", 0, 16) + "," + u8Entry("b", 20, 36) + "}",
                std::string(36, 'x')),
      {"tensor \"b\"", "data_offsets [20, 36]", "4-byte hole",
       "after tensor \"a\" ending at 16"});
}

TEST(SafetensorsLayout, FirstTensorMustStartAtZero) {
  expectRejected(
      fileBytes("{" + u8Entry("late", 8, 24) + "}", std::string(24, 'x')),
      {"tensor \"late\"", "must begin at 0"});
}

TEST(SafetensorsLayout, OverlapRejected) {
  expectRejected(
      fileBytes("{" + u8Entry("a", 0, 16) + "," + u8Entry("b", 8, 24) + "}",
                std::string(24, 'x')),
      {"tensor \"b\"", "overlap tensor \"a\" ending at 16"});
}

TEST(SafetensorsLayout, OffsetsPastTheBufferRejected) {
  expectRejected(fileBytes("{" + u8Entry("a", 0, 16) + "," +
                               u8Entry("b", 16, 1000000) + "}",
                           std::string(16, 'x')),
                 {"truncated", "tensor \"b\" ends at data byte 1000000",
                  "data section has 16 bytes"});
}

TEST(SafetensorsLayout, HeaderOrderDoesNotMatterAndZeroSizedTensorsTile) {
  // Listed out of order, with two zero-sized tensors sharing an offset.
  std::string header = "{" + u8Entry("c", 10, 12) + "," +
                       u8Entry("z2", 10, 10) + "," + u8Entry("a", 0, 10) + "," +
                       u8Entry("z1", 10, 10) + "}";
  std::unique_ptr<SafetensorsFile> f;
  auto bytes = fileBytes(header, std::string(12, 'x'));
  ASSERT_TRUE(parseBytes(bytes, f).isOk());
  ASSERT_EQ(f->tensors().size(), 4u);
  EXPECT_EQ(f->tensors()[0].name, "a");
  EXPECT_EQ(f->tensors()[1].name, "z1");
  EXPECT_EQ(f->tensors()[2].name, "z2");
  EXPECT_EQ(f->tensors()[3].name, "c");
}

//===----------------------------------------------------------------------===//
// DType table
//===----------------------------------------------------------------------===//

TEST(SafetensorsDType, AllReferenceDtypesParse) {
  struct {
    const char *name;
    unsigned bits;
  } expected[] = {
      {"BOOL", 8},    {"F4", 4},          {"F6_E2M3", 6},     {"F6_E3M2", 6},
      {"U8", 8},      {"I8", 8},          {"F8_E5M2", 8},     {"F8_E4M3", 8},
      {"F8_E8M0", 8}, {"F8_E4M3FNUZ", 8}, {"F8_E5M2FNUZ", 8}, {"I16", 16},
      {"U16", 16},    {"F16", 16},        {"BF16", 16},       {"I32", 32},
      {"U32", 32},    {"F32", 32},        {"C64", 64},        {"F64", 64},
      {"I64", 64},    {"U64", 64}};
  for (const auto &e : expected) {
    DType d;
    ASSERT_TRUE(parseDType(e.name, d)) << e.name;
    EXPECT_STREQ(dtypeName(d), e.name);
    EXPECT_EQ(dtypeBits(d), e.bits) << e.name;
  }
  DType d;
  EXPECT_FALSE(parseDType("F8_E4M3FN", d));
  EXPECT_FALSE(parseDType("", d));
  EXPECT_EQ(supportedDTypeNames().substr(0, 10), "BOOL, F4, ");
}

//===----------------------------------------------------------------------===//
// Decoding to fp32
//===----------------------------------------------------------------------===//

namespace {
/// A file with one tensor "w" of `dtype` and shape {n} holding `raw`.
std::vector<uint8_t> typedFile(const char *dtype, size_t n,
                               const std::string &raw) {
  return fileBytes("{\"w\":{\"dtype\":\"" + std::string(dtype) +
                       "\",\"shape\":[" + std::to_string(n) +
                       "],\"data_offsets\":[0," + std::to_string(raw.size()) +
                       "]}}",
                   raw);
}

template <typename T> std::string rawOf(const std::vector<T> &v) {
  return std::string(reinterpret_cast<const char *>(v.data()),
                     v.size() * sizeof(T));
}
} // namespace

TEST(SafetensorsRead, DecodesF32F16BF16F64) {
  std::unique_ptr<SafetensorsFile> f;
  std::vector<float> out;

  auto f32 = typedFile("F32", 3, rawOf<float>({1.5f, -2.0f, 1e-30f}));
  ASSERT_TRUE(parseBytes(f32, f).isOk());
  ASSERT_TRUE(f->readAsF32("w", out).isOk());
  EXPECT_EQ(out, (std::vector<float>{1.5f, -2.0f, 1e-30f}));

  // 1.0, -2.0, 65504 (max), 2^-24 (smallest subnormal), -0.
  auto f16 = typedFile(
      "F16", 5, rawOf<uint16_t>({0x3C00, 0xC000, 0x7BFF, 0x0001, 0x8000}));
  ASSERT_TRUE(parseBytes(f16, f).isOk());
  ASSERT_TRUE(f->readAsF32("w", out).isOk());
  ASSERT_EQ(out.size(), 5u);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -2.0f);
  EXPECT_EQ(out[2], 65504.0f);
  EXPECT_EQ(out[3], std::ldexp(1.0f, -24));
  EXPECT_EQ(bitsOf(out[4]), 0x80000000u);

  // bf16 1.0 = 0x3F80, pi ~ 0x4049 (3.140625), -inf excluded here.
  auto bf16 = typedFile("BF16", 2, rawOf<uint16_t>({0x3F80, 0x4049}));
  ASSERT_TRUE(parseBytes(bf16, f).isOk());
  ASSERT_TRUE(f->readAsF32("w", out).isOk());
  EXPECT_EQ(out, (std::vector<float>{1.0f, 3.140625f}));

  auto f64 = typedFile("F64", 2, rawOf<double>({0.25, -1e10}));
  ASSERT_TRUE(parseBytes(f64, f).isOk());
  ASSERT_TRUE(f->readAsF32("w", out).isOk());
  EXPECT_EQ(out, (std::vector<float>{0.25f, -1e10f}));
}

TEST(SafetensorsRead, UnalignedDataIsReadCorrectly) {
  // A U8 tensor of 1 byte first pushes the F32 tensor off 4-byte alignment.
  std::vector<float> vals = {3.0f, -7.25f};
  std::string header =
      "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
      "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[1,9]}}";
  auto bytes = fileBytes(header, "x" + rawOf(vals));
  std::unique_ptr<SafetensorsFile> f;
  ASSERT_TRUE(parseBytes(bytes, f).isOk());
  std::vector<float> out;
  ASSERT_TRUE(f->readAsF32("b", out).isOk());
  EXPECT_EQ(out, vals);
}

TEST(SafetensorsRead, ErrorsNameFileTensorAndDtype) {
  std::unique_ptr<SafetensorsFile> f;
  std::vector<float> out;
  auto i32 = typedFile("I32", 1, rawOf<int32_t>({7}));
  ASSERT_TRUE(parseBytes(i32, f).isOk());
  Status s = f->readAsF32("w", out);
  ASSERT_FALSE(s.isOk());
  EXPECT_EQ(s.message().rfind(kName, 0), 0u);
  EXPECT_NE(s.message().find("tensor \"w\" has dtype I32"), std::string::npos)
      << s.message();
  s = f->readAsF32("missing", out);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("no tensor named \"missing\""), std::string::npos);
}

TEST(SafetensorsRead, NonFiniteValuesReportFirstIndex) {
  std::unique_ptr<SafetensorsFile> f;
  std::vector<float> out;
  auto nan = typedFile("F32", 5, rawOf<float>({1, 2, 3, NAN, INFINITY}));
  ASSERT_TRUE(parseBytes(nan, f).isOk());
  Status s = f->readAsF32("w", out);
  ASSERT_FALSE(s.isOk());
  EXPECT_EQ(s.message(), std::string(kName) +
                             ": tensor \"w\" (F32) has a non-finite value "
                             "(NaN) at flat index 3");
  // Opting out returns the values unchanged.
  ASSERT_TRUE(f->readAsF32("w", out, /*checkFinite=*/false).isOk());
  EXPECT_TRUE(std::isnan(out[3]));
  EXPECT_TRUE(std::isinf(out[4]));

  auto inf = typedFile("F16", 2, rawOf<uint16_t>({0x3C00, 0xFC00}));
  ASSERT_TRUE(parseBytes(inf, f).isOk());
  s = f->readAsF32("w", out);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("(F16) has a non-finite value (-Inf) at flat "
                             "index 1"),
            std::string::npos)
      << s.message();

  auto big = typedFile("F64", 2, rawOf<double>({1.0, 1e300}));
  ASSERT_TRUE(parseBytes(big, f).isOk());
  s = f->readAsF32("w", out);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("value 1e+300 at flat index 1 overflows fp32"),
            std::string::npos)
      << s.message();
}

TEST(SafetensorsRead, ZeroSizedTensor) {
  std::unique_ptr<SafetensorsFile> f;
  auto bytes = typedFile("F32", 0, "");
  ASSERT_TRUE(parseBytes(bytes, f).isOk());
  std::vector<float> out = {1.0f};
  ASSERT_TRUE(f->readAsF32("w", out).isOk());
  EXPECT_TRUE(out.empty());
}

//===----------------------------------------------------------------------===//
// Opening files
//===----------------------------------------------------------------------===//

TEST(SafetensorsOpen, ErrorsNameThePath) {
  TempDir dir;
  std::unique_ptr<SafetensorsFile> f;
  std::string missing = dir.file("missing.safetensors");
  Status s = SafetensorsFile::open(missing, f);
  ASSERT_FALSE(s.isOk());
  EXPECT_EQ(s.message().rfind(missing + ": cannot open", 0), 0u) << s.message();

  s = SafetensorsFile::open(dir.path, f);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("not a regular file"), std::string::npos);

  // A FIFO named like a weight file: refused at once, never waited on for
  // a writer (the file is opened non-blocking before it is checked).
  std::string fifo = dir.file("model.safetensors");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  s = SafetensorsFile::open(fifo, f);
  ASSERT_FALSE(s.isOk());
  EXPECT_EQ(s.message(), fifo + ": not a regular file");

  std::string empty = dir.file("empty.safetensors");
  writeRaw(empty, {});
  s = SafetensorsFile::open(empty, f);
  ASSERT_FALSE(s.isOk());
  EXPECT_EQ(s.message(), empty + ": file is 0 bytes, too small to hold the "
                                 "8-byte header length (header too small)");

  std::string truncated = dir.file("truncated.safetensors");
  writeRaw(truncated, fileBytes(kTestHeader, std::string(14, '\0')));
  s = SafetensorsFile::open(truncated, f);
  ASSERT_FALSE(s.isOk());
  EXPECT_EQ(s.message().rfind(truncated + ": file is truncated", 0), 0u)
      << s.message();
}

TEST(SafetensorsOpen, MapsAValidFile) {
  TempDir dir;
  std::string path = dir.file("ok.safetensors");
  writeRaw(path, typedFile("F32", 2, rawOf<float>({4.0f, 5.0f})));
  std::unique_ptr<SafetensorsFile> f;
  ASSERT_TRUE(SafetensorsFile::open(path, f).isOk());
  EXPECT_EQ(f->displayName(), path);
  std::vector<float> out;
  ASSERT_TRUE(f->readAsF32("w", out).isOk());
  EXPECT_EQ(out, (std::vector<float>{4.0f, 5.0f}));
}

//===----------------------------------------------------------------------===//
// Writer
//===----------------------------------------------------------------------===//

TEST(SafetensorsWriter, MatchesReferenceSerializationByteForByte) {
  // safetensors tensor.rs test_serialization.
  SafetensorsWriter w;
  std::vector<float> data = {0, 1, 2, 3, 4, 5};
  ASSERT_TRUE(w.addF32("attn.0", {1, 2, 3}, data.data()).isOk());
  std::vector<uint8_t> out;
  ASSERT_TRUE(w.serialize(out).isOk());
  std::vector<uint8_t> expected = {
      64,  0,   0,   0,   0,   0,   0,   0,   123, 34,  97,  116, 116, 110,
      46,  48,  34,  58,  123, 34,  100, 116, 121, 112, 101, 34,  58,  34,
      70,  51,  50,  34,  44,  34,  115, 104, 97,  112, 101, 34,  58,  91,
      49,  44,  50,  44,  51,  93,  44,  34,  100, 97,  116, 97,  95,  111,
      102, 102, 115, 101, 116, 115, 34,  58,  91,  48,  44,  50,  52,  93,
      125, 125, 0,   0,   0,   0,   0,   0,   128, 63,  0,   0,   0,   64,
      0,   0,   64,  64,  0,   0,   128, 64,  0,   0,   160, 64};
  EXPECT_EQ(out, expected);
}

TEST(SafetensorsWriter, MatchesReferencePaddingAndMetadata) {
  // test_serialization_forced_alignement: 7 spaces of padding.
  SafetensorsWriter w;
  std::vector<float> data = {0, 1, 2, 3, 4, 5};
  ASSERT_TRUE(w.addF32("attn0", {1, 1, 2, 3}, data.data()).isOk());
  std::vector<uint8_t> out;
  ASSERT_TRUE(w.serialize(out).isOk());
  ASSERT_EQ(out.size(), 8u + 72u + 24u);
  EXPECT_EQ(out[0], 72);
  std::string header(out.begin() + 8, out.begin() + 80);
  EXPECT_EQ(header, "{\"attn0\":{\"dtype\":\"F32\",\"shape\":[1,1,2,3],"
                    "\"data_offsets\":[0,24]}}       ");

  // test_empty: "{}" plus six spaces; with metadata, 40 bytes.
  SafetensorsWriter empty;
  ASSERT_TRUE(empty.serialize(out).isOk());
  EXPECT_EQ(out, (std::vector<uint8_t>{8, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ',
                                       ' ', ' ', ' ', ' ', ' '}));
  ASSERT_TRUE(empty.setMetadata({{"framework", "pt"}}).isOk());
  ASSERT_TRUE(empty.serialize(out).isOk());
  EXPECT_EQ(std::string(out.begin() + 8, out.end()),
            "{\"__metadata__\":{\"framework\":\"pt\"}}     ");
  EXPECT_EQ(out[0], 40);
}

TEST(SafetensorsWriter, MatchesSafetensors08MixedDtypeOutput) {
  // Header and layout produced by the reference Python package 0.8.0 for
  // these tensors (save(..., metadata={"format": "pt"})): dtype-descending
  // order, name order among equal dtypes, two spaces of padding.
  const std::string refHeader =
      "{\"__metadata__\":{\"format\":\"pt\"},"
      "\"w.f64\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,16]},"
      "\"e.empty\":{\"dtype\":\"F32\",\"shape\":[0,2],\"data_offsets\":[16,16]}"
      ","
      "\"w.f32\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[16,32]},"
      "\"i.idx\":{\"dtype\":\"I32\",\"shape\":[3],\"data_offsets\":[32,44]},"
      "\"h.half\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[44,50]},"
      "\"b.bytes\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[50,52]},"
      "\"m.mask\":{\"dtype\":\"BOOL\",\"shape\":[1],\"data_offsets\":[52,53]}}"
      "  ";
  ASSERT_EQ(refHeader.size(), 456u);
  std::vector<double> f64 = {1.5, -2.0};
  std::vector<float> f32 = {0.5f, 1.0f, 2.0f, -4.0f};
  std::vector<int32_t> idx = {1, 2, 3};
  std::vector<uint16_t> half = {0x3C00, 0xB800, 0x7BFF}; // 1, -0.5, 65504
  std::string data = rawOf(f64) + rawOf(f32) + rawOf(idx) + rawOf(half) +
                     std::string("\x07\x09\x01", 3);
  std::vector<uint8_t> reference = fileBytes(refHeader, data);
  ASSERT_EQ(reference.size(), 517u);

  SafetensorsWriter w;
  ASSERT_TRUE(w.setMetadata({{"format", "pt"}}).isOk());
  auto bytesOf = [](const std::string &s) {
    return std::vector<uint8_t>(s.begin(), s.end());
  };
  ASSERT_TRUE(w.add("m.mask", DType::BOOL, {1}, {1}).isOk());
  ASSERT_TRUE(w.add("b.bytes", DType::U8, {2}, {7, 9}).isOk());
  ASSERT_TRUE(w.add("h.half", DType::F16, {3}, bytesOf(rawOf(half))).isOk());
  ASSERT_TRUE(w.add("i.idx", DType::I32, {3}, bytesOf(rawOf(idx))).isOk());
  ASSERT_TRUE(w.addF32("w.f32", {2, 2}, f32.data()).isOk());
  ASSERT_TRUE(w.add("e.empty", DType::F32, {0, 2}, {}).isOk());
  ASSERT_TRUE(w.add("w.f64", DType::F64, {2}, bytesOf(rawOf(f64))).isOk());
  std::vector<uint8_t> out;
  ASSERT_TRUE(w.serialize(out).isOk());
  EXPECT_EQ(out, reference);

  std::unique_ptr<SafetensorsFile> f;
  ASSERT_TRUE(parseBytes(reference, f).isOk());
  std::vector<float> got;
  ASSERT_TRUE(f->readAsF32("h.half", got).isOk());
  EXPECT_EQ(got, (std::vector<float>{1.0f, -0.5f, 65504.0f}));
  ASSERT_TRUE(f->readAsF32("w.f64", got).isOk());
  EXPECT_EQ(got, (std::vector<float>{1.5f, -2.0f}));
}

TEST(SafetensorsWriter, LayoutIsAlignedAndDeterministic) {
  SafetensorsWriter w;
  std::vector<float> one = {1.0f};
  ASSERT_TRUE(w.add("a_half", DType::F16, {3}, {1, 2, 3, 4, 5, 6}).isOk());
  ASSERT_TRUE(w.addF32("z_float", {1}, one.data()).isOk());
  ASSERT_TRUE(w.add("b_byte", DType::U8, {1}, {9}).isOk());
  ASSERT_TRUE(
      w.add("c_double", DType::F64, {1}, std::vector<uint8_t>(8, 7)).isOk());
  std::vector<uint8_t> out;
  ASSERT_TRUE(w.serialize(out).isOk());
  std::unique_ptr<SafetensorsFile> f;
  ASSERT_TRUE(parseBytes(out, f).isOk());
  // Widest first, then by name.
  ASSERT_EQ(f->tensors().size(), 4u);
  EXPECT_EQ(f->tensors()[0].name, "c_double");
  EXPECT_EQ(f->tensors()[1].name, "z_float");
  EXPECT_EQ(f->tensors()[2].name, "a_half");
  EXPECT_EQ(f->tensors()[3].name, "b_byte");
  EXPECT_EQ((8 + f->headerSize()) % 8, 0u);
  for (const TensorInfo &t : f->tensors())
    EXPECT_EQ(t.begin % (dtypeBits(t.dtype) / 8), 0u) << t.name;
  // Equal widths follow the reference dtype order (F32 before I32), not
  // the name.
  SafetensorsWriter mixed;
  ASSERT_TRUE(mixed.add("a_int", DType::I32, {1}, {1, 0, 0, 0}).isOk());
  ASSERT_TRUE(mixed.addF32("z_float", {1}, one.data()).isOk());
  ASSERT_TRUE(mixed.add("m_bf16", DType::BF16, {1}, {0, 0}).isOk());
  ASSERT_TRUE(mixed.add("n_f16", DType::F16, {1}, {0, 0}).isOk());
  std::vector<uint8_t> mixedBytes;
  ASSERT_TRUE(mixed.serialize(mixedBytes).isOk());
  ASSERT_TRUE(parseBytes(mixedBytes, f).isOk());
  EXPECT_EQ(f->tensors()[0].name, "z_float");
  EXPECT_EQ(f->tensors()[1].name, "a_int");
  EXPECT_EQ(f->tensors()[2].name, "m_bf16");
  EXPECT_EQ(f->tensors()[3].name, "n_f16");
  // Same input, same bytes, whatever the insertion order.
  SafetensorsWriter w2;
  ASSERT_TRUE(w2.add("b_byte", DType::U8, {1}, {9}).isOk());
  ASSERT_TRUE(
      w2.add("c_double", DType::F64, {1}, std::vector<uint8_t>(8, 7)).isOk());
  ASSERT_TRUE(w2.addF32("z_float", {1}, one.data()).isOk());
  ASSERT_TRUE(w2.add("a_half", DType::F16, {3}, {1, 2, 3, 4, 5, 6}).isOk());
  std::vector<uint8_t> out2;
  ASSERT_TRUE(w2.serialize(out2).isOk());
  EXPECT_EQ(out, out2);
}

TEST(SafetensorsWriter, RoundTripAllKinds) {
  SafetensorsWriter w;
  std::vector<float> vals = {0.5f, -1.25f, 3.0f, 1e-3f, 7.0f, -0.0f};
  ASSERT_TRUE(w.addF32("f32", {2, 3}, vals.data()).isOk());
  ASSERT_TRUE(w.addFromF32("f16", {6}, vals.data(), DType::F16).isOk());
  ASSERT_TRUE(w.addFromF32("bf16", {3, 2}, vals.data(), DType::BF16).isOk());
  ASSERT_TRUE(w.add("packed", DType::F4, {2, 3}, {0x12, 0x34, 0x56}).isOk());
  ASSERT_TRUE(w.add("empty", DType::I64, {0, 5}, {}).isOk());
  ASSERT_TRUE(w.add("scalar", DType::I32, {}, {1, 0, 0, 0}).isOk());
  ASSERT_TRUE(w.setMetadata({{"format", "pt"}, {"note", "h\xC3\xA9"}}).isOk());
  EXPECT_EQ(w.numTensors(), 6u);
  EXPECT_EQ(w.dataBytes(), 24u + 12u + 12u + 3u + 0u + 4u);
  std::vector<uint8_t> out;
  ASSERT_TRUE(w.serialize(out).isOk());
  std::unique_ptr<SafetensorsFile> f;
  ASSERT_TRUE(parseBytes(out, f).isOk());
  EXPECT_EQ(f->metadata().at("note"), "h\xC3\xA9");
  std::vector<float> got;
  ASSERT_TRUE(f->readAsF32("f32", got).isOk());
  EXPECT_EQ(got, vals);
  ASSERT_TRUE(f->readAsF32("f16", got).isOk());
  for (size_t i = 0; i < vals.size(); ++i)
    EXPECT_EQ(got[i], f16ToF32(f32ToF16(vals[i])));
  ASSERT_TRUE(f->readAsF32("bf16", got).isOk());
  for (size_t i = 0; i < vals.size(); ++i)
    EXPECT_EQ(got[i], bf16ToF32(f32ToBF16(vals[i])));
  const TensorInfo *packed = f->find("packed");
  ASSERT_NE(packed, nullptr);
  EXPECT_EQ(packed->dtype, DType::F4);
  EXPECT_EQ(
      std::vector<uint8_t>(f->tensorData(*packed), f->tensorData(*packed) + 3),
      (std::vector<uint8_t>{0x12, 0x34, 0x56}));
  EXPECT_EQ(f->find("empty")->shape, (std::vector<int64_t>{0, 5}));
  EXPECT_TRUE(f->find("scalar")->shape.empty());
}

TEST(SafetensorsWriter, RejectsBadTensors) {
  SafetensorsWriter w;
  ASSERT_TRUE(w.add("x", DType::U8, {2}, {1, 2}).isOk());
  Status s = w.add("x", DType::U8, {2}, {1, 2});
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("tensor \"x\": added twice"), std::string::npos);
  s = w.add("__metadata__", DType::U8, {1}, {1});
  EXPECT_NE(s.message().find("reserved"), std::string::npos);
  s = w.add("y", DType::F32, {2}, {1, 2, 3});
  EXPECT_NE(s.message().find("[2] of F32 needs 8 bytes, got 3"),
            std::string::npos)
      << s.message();
  s = w.add("neg", DType::U8, {-1}, {});
  EXPECT_NE(s.message().find("negative dimension"), std::string::npos);
  s = w.add("odd", DType::F4, {3}, {1, 2});
  EXPECT_NE(s.message().find("byte boundary"), std::string::npos);
  s = w.add("bad\xFF", DType::U8, {1}, {1});
  EXPECT_NE(s.message().find("not valid UTF-8"), std::string::npos);
  s = w.add("huge", DType::U8, {INT64_MAX, 4}, {});
  EXPECT_NE(s.message().find("overflows"), std::string::npos) << s.message();
  float v = 1.0f;
  s = w.addFromF32("int", {1}, &v, DType::I32);
  EXPECT_NE(s.message().find("cannot store fp32 data as I32"),
            std::string::npos);
  s = w.addF32("negf", {-2}, &v);
  EXPECT_NE(s.message().find("invalid shape [-2]"), std::string::npos);
  EXPECT_EQ(w.numTensors(), 1u) << "failed adds must not register tensors";
}

TEST(SafetensorsWriter, WriteFileRoundTrip) {
  TempDir dir;
  SafetensorsWriter w;
  std::vector<float> vals = {1, 2, 3, 4};
  ASSERT_TRUE(w.addView("v", DType::F32, {2, 2}, vals.data(), 16).isOk());
  std::string path = dir.file("m.safetensors");
  ASSERT_TRUE(w.writeFile(path).isOk());
  std::unique_ptr<SafetensorsFile> f;
  ASSERT_TRUE(SafetensorsFile::open(path, f).isOk());
  std::vector<float> got;
  ASSERT_TRUE(f->readAsF32("v", got).isOk());
  EXPECT_EQ(got, vals);
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, permissionsUnderUmask(0666));
  EXPECT_EQ(dir.list(), std::vector<std::string>{"m.safetensors"});
}

// A spilling writer holds tensors added by copy in an unnamed temporary
// file and produces the same file, byte for byte, as one holding them in
// memory; views stay borrowed; fault injection still fails cleanly while
// copying spilled bytes.
TEST(SafetensorsWriter, SpilledTensorsWriteTheSameFile) {
  TempDir dir;
  std::vector<float> big(3 << 20); // 12 MiB: more than one copy chunk
  for (size_t i = 0; i < big.size(); ++i)
    big[i] = static_cast<float>(i % 9973) * 0.25f;
  std::vector<float> view = {1, 2, 3};
  auto fill = [&](SafetensorsWriter &w) {
    ASSERT_TRUE(w.addF32("b.big", {3, 1 << 20}, big.data()).isOk());
    ASSERT_TRUE(w.addView("a.view", DType::F32, {3}, view.data(), 12).isOk());
    ASSERT_TRUE(w.addFromF32("c.half", {3}, view.data(), DType::BF16).isOk());
    ASSERT_TRUE(
        w.add("d.codes", DType::U8, {5}, std::vector<uint8_t>{1, 2, 3, 4, 5})
            .isOk());
    ASSERT_TRUE(w.add("e.empty", DType::I32, {0}, {}).isOk());
  };
  SafetensorsWriter inMemory, spilled;
  ASSERT_TRUE(spilled.spillTo(dir.path, dir.file("b.safetensors")).isOk());
  fill(inMemory);
  fill(spilled);
  // The spill file has no name: the folder stays empty.
  EXPECT_TRUE(dir.list().empty());
  std::vector<uint8_t> a, b;
  ASSERT_TRUE(inMemory.serialize(a).isOk());
  ASSERT_TRUE(spilled.serialize(b).isOk());
  EXPECT_EQ(a, b);
  ASSERT_TRUE(inMemory.writeFile(dir.file("a.safetensors")).isOk());
  ASSERT_TRUE(spilled.writeFile(dir.file("b.safetensors")).isOk());
  EXPECT_EQ(readRaw(dir.file("a.safetensors")),
            readRaw(dir.file("b.safetensors")));

  setAtomicWriteFaultForTesting(9 << 20);
  Status s = spilled.writeFile(dir.file("b.safetensors"));
  EXPECT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("not modified"), std::string::npos) << s.message();
  EXPECT_EQ(readRaw(dir.file("a.safetensors")),
            readRaw(dir.file("b.safetensors")));
  EXPECT_EQ(dir.list(),
            (std::vector<std::string>{"a.safetensors", "b.safetensors"}));
  // A folder that cannot hold the spill file is one clear error.
  SafetensorsWriter nowhere;
  s = nowhere.spillTo(dir.file("missing"), dir.file("out.safetensors"));
  EXPECT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("cannot create a temporary file"),
            std::string::npos)
      << s.message();
}

// Row slices read the rows they name; a scalar is one row; ranges outside
// the tensor are errors naming it.
TEST(SafetensorsFile, RowSlicesReadTheirRows) {
  TempDir dir;
  std::vector<float> m = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
  float one = 42.0f;
  SafetensorsWriter w;
  ASSERT_TRUE(w.addFromF32("m", {4, 3}, m.data(), DType::BF16).isOk());
  ASSERT_TRUE(w.addF32("s", {}, &one).isOk());
  ASSERT_TRUE(w.writeFile(dir.file("m.safetensors")).isOk());
  std::unique_ptr<SafetensorsFile> f;
  ASSERT_TRUE(SafetensorsFile::open(dir.file("m.safetensors"), f).isOk());
  TensorInfo rows;
  std::vector<float> got;
  ASSERT_TRUE(rowSlice(*f->find("m"), 1, 2, rows).isOk());
  EXPECT_EQ(rows.shape, (std::vector<int64_t>{2, 3}));
  ASSERT_TRUE(f->readAsF32(rows, got).isOk());
  EXPECT_EQ(got, (std::vector<float>{3, 4, 5, 6, 7, 8}));
  ASSERT_TRUE(rowSlice(*f->find("s"), 0, 1, rows).isOk());
  ASSERT_TRUE(f->readAsF32(rows, got).isOk());
  EXPECT_EQ(got, std::vector<float>{42.0f});
  for (auto [first, count] :
       {std::pair<int64_t, int64_t>{3, 2}, {-1, 1}, {0, 5}, {5, 0}}) {
    Status s = rowSlice(*f->find("m"), first, count, rows);
    EXPECT_FALSE(s.isOk()) << first << " " << count;
    EXPECT_NE(s.message().find("\"m\""), std::string::npos) << s.message();
  }
  EXPECT_FALSE(rowSlice(*f->find("s"), 1, 1, rows).isOk());
}

// Dropping a tensor's pages leaves its bytes readable (they come back from
// the file).
TEST(SafetensorsFile, ReleasedPagesReadBackTheSame) {
  TempDir dir;
  std::vector<float> vals(1 << 20);
  for (size_t i = 0; i < vals.size(); ++i)
    vals[i] = static_cast<float>(i) * 0.5f;
  SafetensorsWriter w;
  ASSERT_TRUE(w.addF32("x", {1 << 20}, vals.data()).isOk());
  ASSERT_TRUE(w.addF32("y", {3}, vals.data()).isOk());
  ASSERT_TRUE(w.writeFile(dir.file("m.safetensors")).isOk());
  std::unique_ptr<SafetensorsFile> f;
  ASSERT_TRUE(SafetensorsFile::open(dir.file("m.safetensors"), f).isOk());
  for (int round = 0; round < 2; ++round) {
    std::vector<float> x, y;
    ASSERT_TRUE(f->readAsF32("x", x).isOk());
    f->releasePages(*f->find("x"));
    f->releasePages(*f->find("y"));
    ASSERT_TRUE(f->readAsF32("y", y).isOk());
    EXPECT_EQ(x, vals);
    EXPECT_EQ(y, std::vector<float>(vals.begin(), vals.begin() + 3));
  }
}

// The published file's mode follows the umask (0666 minus it), as any other
// program's output does; mkstemp's 0600 must not leak out.
TEST(SafetensorsWriter, WrittenFileHonoursTheUmask) {
  TempDir dir;
  std::vector<float> vals = {1, 2};
  for (mode_t mask : {mode_t(022), mode_t(027), mode_t(002)}) {
    mode_t old = ::umask(mask);
    EXPECT_EQ(permissionsUnderUmask(0666), 0666u & ~unsigned(mask));
    EXPECT_EQ(permissionsUnderUmask(0777), 0777u & ~unsigned(mask));
    SafetensorsWriter w;
    ASSERT_TRUE(w.addView("v", DType::F32, {2}, vals.data(), 8).isOk());
    std::string path = dir.file("u" + std::to_string(mask) + ".safetensors");
    Status s = w.writeFile(path);
    ::umask(old);
    ASSERT_TRUE(s.isOk()) << s.message();
    struct stat st;
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0666u & ~unsigned(mask)) << "umask " << mask;
  }
}

//===----------------------------------------------------------------------===//
// Atomic replacement (row 19)
//===----------------------------------------------------------------------===//

TEST(SafetensorsAtomicWrite, InjectedWriteErrorLeavesTargetUntouched) {
  TempDir dir;
  std::string path = dir.file("model.safetensors");
  writeRaw(path, rawBytes("OLD CONTENT", 11));
  SafetensorsWriter w;
  std::vector<float> vals(100, 1.0f);
  ASSERT_TRUE(w.addF32("t", {100}, vals.data()).isOk());
  for (int64_t failAfter : {0, 5, 200}) {
    setAtomicWriteFaultForTesting(failAfter);
    Status s = w.writeFile(path);
    ASSERT_FALSE(s.isOk()) << failAfter;
    EXPECT_EQ(s.message().rfind(path + ": write failed after", 0), 0u)
        << s.message();
    EXPECT_NE(s.message().find("not modified"), std::string::npos);
    EXPECT_EQ(readRaw(path), "OLD CONTENT");
    EXPECT_EQ(dir.list(), std::vector<std::string>{"model.safetensors"})
        << "temporary file left behind";
  }
  // The fault is one-shot: the next write goes through.
  ASSERT_TRUE(w.writeFile(path).isOk());
  std::unique_ptr<SafetensorsFile> f;
  ASSERT_TRUE(SafetensorsFile::open(path, f).isOk());
  EXPECT_EQ(f->find("t")->numElements(), 100);
}

TEST(SafetensorsAtomicWrite, FailedRenameCleansUp) {
  TempDir dir;
  // The target is a non-empty directory: rename() must fail, whoever we run
  // as, after all data has been written to the temporary file.
  std::string target = dir.file("target");
  fs::create_directory(target);
  writeRaw(target + "/keep", rawBytes("k", 1));
  SafetensorsWriter w;
  Status s = w.writeFile(target);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("cannot rename"), std::string::npos)
      << s.message();
  EXPECT_TRUE(fs::is_directory(target));
  EXPECT_EQ(readRaw(target + "/keep"), "k");
  EXPECT_EQ(dir.list(), std::vector<std::string>{"target"});
}

TEST(SafetensorsAtomicWrite, MissingDirectory) {
  TempDir dir;
  std::string path = dir.file("no/such/dir/m.safetensors");
  SafetensorsWriter w;
  Status s = w.writeFile(path);
  ASSERT_FALSE(s.isOk());
  EXPECT_EQ(s.message().rfind(path + ": cannot create a temporary file", 0), 0u)
      << s.message();
}

TEST(SafetensorsAtomicWrite, ReplacingAMappedFileKeepsTheOldMapping) {
  TempDir dir;
  std::string path = dir.file("m.safetensors");
  std::vector<float> oldVals = {1, 2, 3}, newVals = {7, 8, 9, 10};
  SafetensorsWriter w1, w2;
  ASSERT_TRUE(w1.addF32("t", {3}, oldVals.data()).isOk());
  ASSERT_TRUE(w2.addF32("t", {4}, newVals.data()).isOk());
  ASSERT_TRUE(w1.writeFile(path).isOk());
  std::unique_ptr<SafetensorsFile> mapped;
  ASSERT_TRUE(SafetensorsFile::open(path, mapped).isOk());
  ASSERT_TRUE(w2.writeFile(path).isOk());
  std::vector<float> got;
  ASSERT_TRUE(mapped->readAsF32("t", got).isOk());
  EXPECT_EQ(got, oldVals);
  std::unique_ptr<SafetensorsFile> fresh;
  ASSERT_TRUE(SafetensorsFile::open(path, fresh).isOk());
  ASSERT_TRUE(fresh->readAsF32("t", got).isOk());
  EXPECT_EQ(got, newVals);
}

//===----------------------------------------------------------------------===//
// fp16 / bf16 conversion
//===----------------------------------------------------------------------===//

namespace {
/// Independent f16 decoder: the value from the IEEE definition.
double f16Reference(uint16_t h) {
  int sign = (h & 0x8000) ? -1 : 1;
  int exp = (h >> 10) & 0x1F;
  int man = h & 0x3FF;
  if (exp == 0)
    return sign * std::ldexp(static_cast<double>(man), -24);
  if (exp == 31)
    return man ? NAN : sign * INFINITY;
  return sign * std::ldexp(static_cast<double>(1024 + man), exp - 25);
}
} // namespace

TEST(SafetensorsFp16, DecodeMatchesDefinitionForAllPatterns) {
  for (uint32_t p = 0; p <= 0xFFFF; ++p) {
    float got = f16ToF32(static_cast<uint16_t>(p));
    double want = f16Reference(static_cast<uint16_t>(p));
    if (std::isnan(want)) {
      ASSERT_TRUE(std::isnan(got)) << p;
      // The payload survives in the top mantissa bits, sign included.
      ASSERT_EQ((bitsOf(got) >> 13) & 0x3FF, p & 0x3FFu) << p;
      ASSERT_EQ(bitsOf(got) >> 31, p >> 15) << p;
    } else {
      ASSERT_EQ(static_cast<double>(got), want) << p;
      ASSERT_EQ(std::signbit(got), (p & 0x8000) != 0) << p;
    }
  }
}

TEST(SafetensorsFp16, AllPatternsRoundTrip) {
  for (uint32_t p = 0; p <= 0xFFFF; ++p) {
    ASSERT_EQ(f32ToF16(f16ToF32(static_cast<uint16_t>(p))), p) << std::hex << p;
    ASSERT_EQ(f32ToBF16(bf16ToF32(static_cast<uint16_t>(p))), p)
        << std::hex << p;
  }
}

TEST(SafetensorsFp16, F16RoundsToNearestTiesToEven) {
  // Every pair of adjacent positive finite halves, and their negatives: the
  // exact midpoint goes to the even pattern, anything off it to the nearer.
  for (uint32_t p = 0; p < 0x7BFF; ++p) {
    double a = f16Reference(static_cast<uint16_t>(p));
    double b = f16Reference(static_cast<uint16_t>(p + 1));
    float mid = static_cast<float>((a + b) / 2); // exact in fp32
    ASSERT_EQ(static_cast<double>(mid), (a + b) / 2);
    uint16_t even = (p & 1) ? p + 1 : p;
    ASSERT_EQ(f32ToF16(mid), even) << std::hex << p;
    ASSERT_EQ(f32ToF16(-mid), even | 0x8000) << std::hex << p;
    ASSERT_EQ(f32ToF16(std::nextafter(mid, INFINITY)), p + 1) << std::hex << p;
    ASSERT_EQ(f32ToF16(std::nextafter(mid, 0.0f)), p) << std::hex << p;
  }
  // Overflow: 65520 is the tie between 65504 (odd) and 2^16 -> infinity.
  EXPECT_EQ(f32ToF16(65520.0f), 0x7C00);
  EXPECT_EQ(f32ToF16(std::nextafter(65520.0f, 0.0f)), 0x7BFF);
  EXPECT_EQ(f32ToF16(-1e30f), 0xFC00);
  EXPECT_EQ(f32ToF16(INFINITY), 0x7C00);
  // Underflow: 2^-25 is the tie between 0 and the smallest subnormal.
  EXPECT_EQ(f32ToF16(std::ldexp(1.0f, -25)), 0x0000);
  EXPECT_EQ(f32ToF16(std::nextafter(std::ldexp(1.0f, -25), 1.0f)), 0x0001);
  EXPECT_EQ(f32ToF16(-std::ldexp(1.0f, -26)), 0x8000);
  EXPECT_EQ(f32ToF16(1e-45f), 0x0000);
}

TEST(SafetensorsFp16, BF16RoundsToNearestTiesToEven) {
  for (uint32_t p = 0; p < 0x7F7F; ++p) {
    float a = bf16ToF32(static_cast<uint16_t>(p));
    float b = bf16ToF32(static_cast<uint16_t>(p + 1));
    uint32_t midBits = (static_cast<uint32_t>(p) << 16) | 0x8000;
    float mid = floatOf(midBits); // halfway between a and b
    ASSERT_GT(mid, a);
    ASSERT_LT(mid, b);
    uint16_t even = (p & 1) ? p + 1 : p;
    ASSERT_EQ(f32ToBF16(mid), even) << std::hex << p;
    ASSERT_EQ(f32ToBF16(-mid), even | 0x8000) << std::hex << p;
    ASSERT_EQ(f32ToBF16(floatOf(midBits + 1)), p + 1) << std::hex << p;
    ASSERT_EQ(f32ToBF16(floatOf(midBits - 1)), p) << std::hex << p;
  }
  // The largest finite bf16 (0x7F7F, odd) ties up into infinity.
  EXPECT_EQ(f32ToBF16(floatOf(0x7F7F8000)), 0x7F80);
  EXPECT_EQ(f32ToBF16(floatOf(0x7F7F7FFF)), 0x7F7F);
  EXPECT_EQ(f32ToBF16(-INFINITY), 0xFF80);
}

TEST(SafetensorsFp16, NaNNeverBecomesInfinity) {
  // Payload only in the low bits that the narrowing drops.
  float lowNan = floatOf(0x7F800001);
  ASSERT_TRUE(std::isnan(lowNan));
  EXPECT_EQ(f32ToF16(lowNan), 0x7E00);
  EXPECT_EQ(f32ToBF16(lowNan), 0x7FC0);
  EXPECT_EQ(f32ToF16(floatOf(0xFFFFFFFF)), 0xFFFF);
  EXPECT_EQ(f32ToBF16(floatOf(0xFFFFFFFF)), 0xFFFF);
  // A NaN whose rounding increment would carry into the exponent.
  EXPECT_EQ(f32ToBF16(floatOf(0x7FFFFFFF)), 0x7FFF);
}

#if defined(__FLT16_MANT_DIG__)
TEST(SafetensorsFp16, MatchesCompilerFloat16OnSampledFloats) {
  // An independent oracle: the compiler's IEEE float -> _Float16
  // conversion, on about a million patterns spread over all 2^32.
  for (uint64_t p = 0; p <= 0xFFFFFFFFull; p += 4093) {
    float f = floatOf(static_cast<uint32_t>(p));
    if (std::isnan(f))
      continue;
    _Float16 h = static_cast<_Float16>(f);
    uint16_t want;
    std::memcpy(&want, &h, 2);
    ASSERT_EQ(f32ToF16(f), want) << std::hex << p;
  }
}
#endif
