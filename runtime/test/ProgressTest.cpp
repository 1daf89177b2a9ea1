//===- ProgressTest.cpp - Tests of the progress reporter ------------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// The reporter writes to a temporary FILE in its non-interactive (log) mode,
// where output is deterministic: one line per 10 % bucket, then a final line.
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/Progress.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

namespace {

/// Reads back everything written to `f`.
std::string contents(std::FILE *f) {
  std::fflush(f);
  std::rewind(f);
  std::string out;
  char buf[256];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0)
    out.append(buf, n);
  return out;
}

int countLines(const std::string &s) {
  int n = 0;
  for (char c : s)
    n += c == '\n';
  return n;
}

TEST(ProgressTest, LogModePrintsBucketsAndFinalLine) {
  std::FILE *f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  {
    qc::Progress p("scoring", 100, /*enabled=*/true, f, /*interactive=*/false);
    for (int i = 1; i <= 100; ++i)
      p.update(i);
    p.finish();
  }
  std::string out = contents(f);
  std::fclose(f);
  EXPECT_NE(out.find("scoring"), std::string::npos) << out;
  EXPECT_NE(out.find("100/100"), std::string::npos) << out;
  EXPECT_NE(out.find("100.0%"), std::string::npos) << out;
  // At most one line per 10 % bucket plus the final line, and no carriage
  // returns in a log.
  EXPECT_LE(countLines(out), 11) << out;
  EXPECT_GE(countLines(out), 2) << out;
  EXPECT_EQ(out.find('\r'), std::string::npos) << out;
}

TEST(ProgressTest, DisabledPrintsNothing) {
  std::FILE *f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  {
    qc::Progress p("quiet", 10, /*enabled=*/false, f, /*interactive=*/false);
    p.update(5);
    p.finish();
  }
  EXPECT_EQ(contents(f), "");
  std::fclose(f);
}

TEST(ProgressTest, InteractiveModeRedrawsInPlaceAndEndsTheLine) {
  std::FILE *f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  {
    qc::Progress p("tokens", 4, /*enabled=*/true, f, /*interactive=*/true);
    p.update(4);
    p.finish();
  }
  std::string out = contents(f);
  std::fclose(f);
  EXPECT_NE(out.find('\r'), std::string::npos) << out;
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(out.back(), '\n');
  EXPECT_NE(out.find("4/4"), std::string::npos) << out;
}

TEST(ProgressTest, UpdatesAboveTotalAreClamped) {
  std::FILE *f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  {
    qc::Progress p("x", 10, /*enabled=*/true, f, /*interactive=*/false);
    p.update(25);
    p.finish();
  }
  std::string out = contents(f);
  std::fclose(f);
  EXPECT_EQ(out.find("25/10"), std::string::npos) << out;
  EXPECT_NE(out.find("10/10"), std::string::npos) << out;
}

} // namespace
