//===- TestUtil.h - Helpers shared by the runtime tests ---------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//

#ifndef QC_RUNTIME_TEST_TESTUTIL_H
#define QC_RUNTIME_TEST_TESTUTIL_H

#include "qc/runtime/Model.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <stdlib.h>
#include <string>
#include <vector>

namespace qc::test {

/// A fresh directory under the gtest temp dir (named `prefix` + random
/// suffix), removed with its contents by the destructor.
class TempDir {
public:
  explicit TempDir(const std::string &prefix = "qc_") {
    std::string tmpl = testing::TempDir();
    if (tmpl.empty() || tmpl.back() != '/')
      tmpl += '/';
    tmpl += prefix + "XXXXXX";
    EXPECT_NE(::mkdtemp(&tmpl[0]), nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  /// The path of `name` inside the directory.
  std::string file(const std::string &name) const { return path + "/" + name; }
  /// Names of all entries in the directory, sorted.
  std::vector<std::string> list() const {
    std::vector<std::string> r;
    for (const auto &e : std::filesystem::directory_iterator(path))
      r.push_back(e.path().filename().string());
    std::sort(r.begin(), r.end());
    return r;
  }
  std::string path;
};

/// Checks a lazy load against an eager load of the same checkpoint: every
/// tensor starts unread, reads back the eager values by a row range and
/// whole (materialize), and is dropped again by release().
inline void expectLazyEqualsEager(ModelWeights &lazy,
                                  const ModelWeights &eager) {
  ASSERT_EQ(lazy.tensors.size(), eager.tensors.size());
  for (auto &[name, t] : lazy.tensors) {
    SCOPED_TRACE(name);
    const HostTensor *e = eager.find(name);
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(t.shape, e->shape);
    EXPECT_FALSE(t.resident());
    // Rows [1, 3) (or what the tensor has) on their own.
    const int64_t rows = t.rows(), per = e->numElements() / rows;
    const int64_t first = rows > 1 ? 1 : 0,
                  count = std::min<int64_t>(2, rows - first);
    std::vector<float> slice;
    Status s = t.load(first, count, slice);
    ASSERT_TRUE(s.isOk()) << s.message();
    EXPECT_TRUE(
        std::equal(slice.begin(), slice.end(), e->data.begin() + first * per))
        << "rows " << first << " + " << count;
    EXPECT_EQ(slice.size(), static_cast<size_t>(count * per));
    s = lazy.materialize(name);
    ASSERT_TRUE(s.isOk()) << s.message();
    EXPECT_EQ(t.data, e->data);
    lazy.release(name);
    EXPECT_FALSE(t.resident());
  }
}

} // namespace qc::test

#endif // QC_RUNTIME_TEST_TESTUTIL_H
