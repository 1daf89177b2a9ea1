//===- NpyTest.cpp - Tests of the .npy reader and writer ------------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Round trips, files as NumPy writes them (hand-assembled bytes: version 1
// and 2 headers, '|u1' and '<f2' descrs, 0-d and empty arrays), and one
// clear error for each way a file can be malformed.
//
//===----------------------------------------------------------------------===//

#include "Npy.h"

#include "TestUtil.h"

#include <gtest/gtest.h>

#include <cstring>

namespace qc::npy {
namespace {

/// The bytes of a .npy file with header text `h` (padded as NumPy does)
/// and `data`, format `major`.
std::vector<uint8_t> file(std::string h, const std::vector<uint8_t> &data,
                          int major = 1, bool pad = true) {
  size_t pre = major == 1 ? 10 : 12;
  if (pad) {
    size_t total = (pre + h.size() + 1 + 63) / 64 * 64;
    h.append(total - pre - h.size() - 1, ' ');
    h += '\n';
  }
  std::vector<uint8_t> b = {0x93, 'N', 'U', 'M', 'P', 'Y', uint8_t(major), 0};
  b.push_back(uint8_t(h.size()));
  b.push_back(uint8_t(h.size() >> 8));
  if (major != 1) {
    b.push_back(0);
    b.push_back(0);
  }
  b.insert(b.end(), h.begin(), h.end());
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

std::string parseError(const std::vector<uint8_t> &b) {
  Array a;
  Status st = parse(b, "t.npy", a);
  EXPECT_FALSE(st);
  return st.message();
}

TEST(Npy, ReadsWhatNumPyWrites) {
  // np.save of np.arange(6, dtype=np.float32).reshape(2, 3).
  std::vector<uint8_t> data(24);
  for (int i = 0; i < 6; ++i) {
    float f = float(i);
    std::memcpy(&data[size_t(i) * 4], &f, 4);
  }
  Array a;
  Status st = parse(
      file("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", data),
      "t.npy", a);
  ASSERT_TRUE(st) << st.message();
  EXPECT_EQ(a.dtype, (DType{'f', 4}));
  EXPECT_EQ(a.shape, (std::vector<uint64_t>{2, 3}));
  EXPECT_EQ(a.data, data);

  // Version 2, '|u1', a 1-d shape, double quotes, no trailing comma.
  st = parse(file("{\"descr\": \"|u1\", \"shape\": (3,), \"fortran_order\": "
                  "False}",
                  {1, 2, 3}, 2),
             "t.npy", a);
  ASSERT_TRUE(st) << st.message();
  EXPECT_EQ(a.dtype.name(), "uint8");
  EXPECT_EQ(a.shape, (std::vector<uint64_t>{3}));

  // 0-d (one element) and empty arrays.
  st = parse(file("{'descr': '<i8', 'fortran_order': False, 'shape': (), }",
                  std::vector<uint8_t>(8, 7)),
             "t.npy", a);
  ASSERT_TRUE(st) << st.message();
  EXPECT_EQ(a.elements(), 1u);
  st = parse(
      file("{'descr': '<f2', 'fortran_order': False, 'shape': (0, 4), }", {}),
      "t.npy", a);
  ASSERT_TRUE(st) << st.message();
  EXPECT_EQ(a.elements(), 0u);
  // Fortran order of a vector is C order.
  st = parse(file("{'descr': '<u2', 'fortran_order': True, 'shape': (1, 2), }",
                  {1, 0, 2, 0}),
             "t.npy", a);
  EXPECT_TRUE(st) << st.message();
}

TEST(Npy, WriteThenReadRoundTrips) {
  test::TempDir dir;
  Array a;
  a.dtype = {'i', 2};
  a.shape = {3, 1, 2};
  for (int i = 0; i < 12; ++i)
    a.data.push_back(uint8_t(i * 7));
  ASSERT_TRUE(write(dir.file("a.npy"), a));
  std::vector<uint8_t> bytes = serialize(a);
  EXPECT_EQ((10 + (bytes[8] | bytes[9] << 8)) % 64, 0); // aligned data
  Array b;
  Status st = read(dir.file("a.npy"), b);
  ASSERT_TRUE(st) << st.message();
  EXPECT_EQ(b.dtype, a.dtype);
  EXPECT_EQ(b.shape, a.shape);
  EXPECT_EQ(b.data, a.data);
  EXPECT_EQ(a.dtype.descr(), "<i2");
  EXPECT_EQ((DType{'b', 1}).descr(), "|b1");
}

TEST(Npy, MalformedFilesAreClearErrors) {
  const std::string ok =
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
  std::vector<uint8_t> data(8, 0);
  auto has = [](const std::string &msg, const std::string &part) {
    return msg.find(part) != std::string::npos;
  };
  std::string m = parseError({'N', 'U', 'M', 'P', 'Y'});
  EXPECT_TRUE(has(m, "t.npy: not a valid .npy file: bad magic")) << m;
  std::vector<uint8_t> v = file(ok, data);
  v[6] = 9;
  EXPECT_TRUE(has(parseError(v), "unsupported format version 9.0"));
  v = file(ok, data);
  v[8] = 0xFF;
  v[9] = 0xFF;
  EXPECT_TRUE(has(parseError(v), "header length 65535 exceeds the file"));
  EXPECT_TRUE(has(parseError(file(ok, std::vector<uint8_t>(7))),
                  "the data is 7 bytes but shape (2,) of float32 needs 8"));
  EXPECT_TRUE(has(parseError(file(ok, std::vector<uint8_t>(9))),
                  "the data is 9 bytes"));
  EXPECT_TRUE(has(
      parseError(file(
          "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", data)),
      "big-endian dtype '>f4' is not supported"));
  EXPECT_TRUE(has(
      parseError(file(
          "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", data)),
      "unsupported dtype '<c8'"));
  EXPECT_TRUE(
      has(parseError(file("{'descr': [('a', '<f4')], 'fortran_order': False, "
                          "'shape': (1,), }",
                          data)),
          "structured dtypes are not supported"));
  EXPECT_TRUE(
      has(parseError(
              file("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }",
                   std::vector<uint8_t>(16))),
          "Fortran-order arrays are not supported"));
  EXPECT_TRUE(has(parseError(file("{'descr': '<f4', 'shape': (2,), }", data)),
                  "lacks the key 'fortran_order'"));
  EXPECT_TRUE(has(
      parseError(file("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), "
                      "'extra': 1}",
                      data)),
      "unexpected key 'extra'"));
  EXPECT_TRUE(has(
      parseError(file(
          "{'descr': '<f4', 'fortran_order': False, 'shape': (2), }", data)),
      "'shape' (n) must be written (n,)"));
  EXPECT_TRUE(has(
      parseError(file(
          "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", data)),
      "non-negative integers"));
  EXPECT_TRUE(
      has(parseError(file("{'descr': '<f4', 'fortran_order': False, 'shape': "
                          "(99999999999, 99999999999), }",
                          data)),
          "too large"));
  EXPECT_TRUE(has(
      parseError(file("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), "
                      "} junk",
                      data)),
      "unexpected text after the header dict"));
  EXPECT_TRUE(has(parseError(file("{'descr': '<f4", data, 1, false)),
                  "unterminated string"));
  Array a;
  Status st = read("/nonexistent/x.npy", a);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.message(), "/nonexistent/x.npy: cannot open");
}

TEST(Npy, DTypeNames) {
  DType d;
  ASSERT_TRUE(parseDTypeName("f16", d));
  EXPECT_EQ(d, (DType{'f', 2}));
  ASSERT_TRUE(parseDTypeName("uint64", d));
  EXPECT_EQ(d, (DType{'u', 8}));
  Status st = parseDTypeName("float128", d);
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("unknown dtype \"float128\""), std::string::npos);
}

} // namespace
} // namespace qc::npy
