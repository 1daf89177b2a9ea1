//===- OutputSafetyTest.cpp - Tests of output-safety helpers --------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// An output is never an input (device and inode), and a folder is written as
// a whole: a new folder appears only on commit, an existing one is refused
// without force and replaced whole with it, a folder holding an input is
// refused even with force, and a run that never commits leaves neither its
// temporary folder nor any change behind.
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/OutputSafety.h"
#include "qc/runtime/FileMapping.h"

#include "TestUtil.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sys/wait.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace qc;
using qc::test::TempDir;

namespace {

void writeText(const std::string &path, const std::string &text) {
  std::ofstream(path, std::ios::binary) << text;
}

std::string readText(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

bool contains(const Status &s, const std::string &text) {
  return s.message().find(text) != std::string::npos;
}

} // namespace

TEST(OutputIsNotAnInput, SameFileBySpellingOrLink) {
  TempDir dir;
  writeText(dir.file("model.safetensors"), "x");
  ASSERT_EQ(::symlink("model.safetensors", dir.file("link").c_str()), 0);
  std::vector<std::string> inputs = inputFilesOf(dir.path);
  EXPECT_FALSE(checkOutputIsNotAnInput(dir.path + "/./model.safetensors",
                                       inputs, "weights-out")
                   .isOk());
  Status s = checkOutputIsNotAnInput(dir.file("link"), inputs, "weights-out");
  ASSERT_FALSE(s.isOk());
  EXPECT_TRUE(contains(s, "nothing was written")) << s.message();
  EXPECT_TRUE(checkOutputIsNotAnInput(dir.file("new.safetensors"), inputs, "-o")
                  .isOk());
}

TEST(OutputFolder, NewFolderAppearsOnlyOnCommit) {
  TempDir dir;
  std::string dest = dir.file("a/b/out");
  OutputFolder out;
  ASSERT_TRUE(out.begin(dest, false, {}, "-o").isOk());
  EXPECT_NE(out.tempPath(), dest);
  writeText(out.tempPath() + "/model.mlir", "new");
  EXPECT_NE(::access(dest.c_str(), F_OK), 0);
  ASSERT_TRUE(out.commit().isOk());
  EXPECT_EQ(readText(dest + "/model.mlir"), "new");
  // Only the output folder is left in its parent: no temporary sibling.
  std::vector<std::string> names;
  for (const auto &e : std::filesystem::directory_iterator(dir.file("a/b")))
    names.push_back(e.path().filename().string());
  EXPECT_EQ(names, std::vector<std::string>{"out"});
}

TEST(OutputFolder, FailedRunLeavesNothing) {
  TempDir dir;
  std::string dest = dir.file("out");
  {
    OutputFolder out;
    ASSERT_TRUE(out.begin(dest, false, {}, "-o").isOk());
    writeText(out.tempPath() + "/partial", "half");
    // No commit: an error return of the tool.
  }
  EXPECT_EQ(dir.list(), std::vector<std::string>{});
}

TEST(OutputFolder, ExistingFolderNeedsForceAndIsReplacedWhole) {
  TempDir dir;
  std::string dest = dir.file("out");
  ASSERT_EQ(::mkdir(dest.c_str(), 0777), 0);
  writeText(dest + "/trace.safetensors", "old trace");
  writeText(dest + "/model.mlir", "old");

  OutputFolder refused;
  Status s = refused.begin(dest, false, {}, "-o");
  ASSERT_FALSE(s.isOk());
  EXPECT_TRUE(contains(s, "already exists; pass --force")) << s.message();
  EXPECT_EQ(dir.list(), std::vector<std::string>{"out"});

  {
    // A forced run that fails: the old folder is untouched.
    OutputFolder failed;
    ASSERT_TRUE(failed.begin(dest, true, {}, "-o").isOk());
    writeText(failed.tempPath() + "/model.mlir", "half");
  }
  EXPECT_EQ(readText(dest + "/model.mlir"), "old");
  EXPECT_EQ(dir.list(), std::vector<std::string>{"out"});

  OutputFolder out;
  ASSERT_TRUE(out.begin(dest + "/", true, {}, "-o").isOk());
  writeText(out.tempPath() + "/model.mlir", "new");
  ASSERT_TRUE(out.commit().isOk());
  EXPECT_EQ(readText(dest + "/model.mlir"), "new");
  // The old run's trace went with the old folder.
  EXPECT_NE(::access((dest + "/trace.safetensors").c_str(), F_OK), 0);
  EXPECT_EQ(dir.list(), std::vector<std::string>{"out"});
}

TEST(OutputFolder, EmptyFolderIsUsedWithoutForce) {
  TempDir dir;
  std::string dest = dir.file("out");
  ASSERT_EQ(::mkdir(dest.c_str(), 0777), 0);
  OutputFolder out;
  ASSERT_TRUE(out.begin(dest, false, {}, "-o").isOk());
  writeText(out.tempPath() + "/x", "1");
  ASSERT_TRUE(out.commit().isOk());
  EXPECT_EQ(readText(dest + "/x"), "1");
}

TEST(OutputFolder, FolderHoldingAnInputIsRefusedEvenWithForce) {
  TempDir dir;
  std::string dest = dir.file("out");
  ASSERT_EQ(::mkdir(dest.c_str(), 0777), 0);
  writeText(dest + "/trace.safetensors", "trace");
  OutputFolder out;
  Status s =
      out.begin(dir.path + "/./out", true, {dest + "/trace.safetensors"}, "-o");
  ASSERT_FALSE(s.isOk());
  EXPECT_TRUE(contains(s, "holds the input")) << s.message();
  // The input folder itself, reached through a link.
  ASSERT_EQ(::symlink(dest.c_str(), dir.file("alias").c_str()), 0);
  s = out.begin(dest, true, {dir.file("alias")}, "-o");
  ASSERT_FALSE(s.isOk());
  EXPECT_TRUE(contains(s, "holds the input")) << s.message();
  EXPECT_EQ(readText(dest + "/trace.safetensors"), "trace");
}

TEST(OutputFolder, NotAFolderIsRefused) {
  TempDir dir;
  writeText(dir.file("file"), "x");
  OutputFolder out;
  Status s = out.begin(dir.file("file"), true, {}, "-o");
  ASSERT_FALSE(s.isOk());
  EXPECT_TRUE(contains(s, "is not a folder")) << s.message();
  ASSERT_EQ(::symlink(dir.path.c_str(), dir.file("link").c_str()), 0);
  EXPECT_FALSE(out.begin(dir.file("link"), true, {}, "-o").isOk());
  EXPECT_FALSE(checkOutputFolder(".", true, {}, "-o").isOk());
  EXPECT_EQ(readText(dir.file("file")), "x");
}

TEST(OutputFolder, FolderThatIsNotAnOutputIsNeverReplaced) {
  TempDir dir;
  std::string dest = dir.file("docs");
  ASSERT_EQ(::mkdir(dest.c_str(), 0777), 0);
  ASSERT_EQ(::mkdir((dest + "/sub").c_str(), 0777), 0);
  writeText(dest + "/notes.txt", "keep");
  OutputFolder out;
  Status s = out.begin(dest, true, {}, "-o");
  ASSERT_FALSE(s.isOk());
  EXPECT_TRUE(contains(s, "holds 'sub', which is not a regular file"))
      << s.message();
  EXPECT_EQ(readText(dest + "/notes.txt"), "keep");
}

namespace {

/// The id of a process that has exited (a child reaped at once).
pid_t deadPid() {
  pid_t child = ::fork();
  if (child == 0)
    ::_exit(0);
  int status = 0;
  ::waitpid(child, &status, 0);
  return child;
}

} // namespace

// A run killed by SIGKILL cannot clean up; its temporaries carry its process
// id, and the next run for the same output removes those whose process is
// gone (files and folders), never a live process's and never another
// output's.
TEST(StaleTemps, NextRunRemovesWhatKilledRunsLeft) {
  TempDir dir;
  const std::string dead = std::to_string(deadPid());
  const std::string live = std::to_string(::getppid());
  writeText(dir.file(".out.safetensors.tmp-" + dead + "-abc123"), "x");
  writeText(dir.file(".out.safetensors.staged-" + dead + "-abc123"), "x");
  ASSERT_EQ(
      ::mkdir(dir.file(".out.safetensors.old-" + dead + "-abc123").c_str(),
              0700),
      0);
  writeText(dir.file(".out.safetensors.old-" + dead + "-abc123/inner"), "x");
  writeText(dir.file(".out.safetensors.tmp-" + live + "-abc123"), "live");
  writeText(dir.file(".other.tmp-" + dead + "-abc123"), "other output");
  writeText(dir.file(".out.safetensors.tmp-" + dead + "-toolong1"), "odd");
  writeText(dir.file("out.safetensors"), "the output");
  removeStaleTemps(dir.file("out.safetensors"));
  std::vector<std::string> want = {".other.tmp-" + dead + "-abc123",
                                   ".out.safetensors.tmp-" + dead + "-toolong1",
                                   ".out.safetensors.tmp-" + live + "-abc123",
                                   "out.safetensors"};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(dir.list(), want);
}

TEST(StaleTemps, TemplatesNameTheProcess) {
  std::string t = tempSiblingTemplate("a/b/model.safetensors", "staged");
  EXPECT_EQ(t, "a/b/.model.safetensors.staged-" + std::to_string(::getpid()) +
                   "-XXXXXX");
  EXPECT_EQ(tempSiblingTemplate("out", "tmp"),
            ".out.tmp-" + std::to_string(::getpid()) + "-XXXXXX");
}
