//===- TestUtil.h - Helpers shared by the runtime tests ---------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//

#ifndef QC_RUNTIME_TEST_TESTUTIL_H
#define QC_RUNTIME_TEST_TESTUTIL_H

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

} // namespace qc::test

#endif // QC_RUNTIME_TEST_TESTUTIL_H
