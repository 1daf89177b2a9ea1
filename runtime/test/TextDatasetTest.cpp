//===- TextDatasetTest.cpp - Tests for the perplexity protocol --*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Encodes the bundled TinyStories heads (../shared/data/tinystories via
// QC_SHARED_DIR) under the perplexity protocol and checks token counts from
// reference_stories260K.json plus stream hashes and edge ids from an
// independent Python transcription; then windowing and the error paths.
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/TextDataset.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

using namespace qc;

namespace {

const std::string kShared = QC_SHARED_DIR;

const Tokenizer &tok512() {
  static Tokenizer tok;
  static bool loaded = false;
  if (!loaded) {
    Status s =
        Tokenizer::load(kShared + "/models/stories260K/tok512.bin", 512, tok);
    EXPECT_TRUE(s.isOk()) << s.message();
    loaded = true;
  }
  return tok;
}

/// 64-bit FNV-1a over the ids (as uint32), matching the Python checker.
uint64_t fnv(const std::vector<int> &ids, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n && i < ids.size(); ++i) {
    h ^= static_cast<uint32_t>(ids[i]);
    h *= 0x100000001b3ull;
  }
  return h;
}

std::string writeTemp(const std::string &name, const std::string &data) {
  std::string path = ::testing::TempDir() + "qc_text_" + name + ".txt";
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  return path;
}

} // namespace

TEST(TextDatasetTest, ValidHeadMatchesReference) {
  std::vector<int> tokens;
  auto start = std::chrono::steady_clock::now();
  Status s = loadPerplexityTokens(kShared + "/data/tinystories/valid_head.txt",
                                  tok512(), tokens);
  double sec =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  ASSERT_TRUE(s.isOk()) << s.message();
  // n_tokens_total of ppl_tinystories_valid_head.
  ASSERT_EQ(tokens.size(), 392082u);
  EXPECT_EQ(std::vector<int>(tokens.begin(), tokens.begin() + 12),
            (std::vector<int>{301, 427, 309, 426, 301, 427, 309, 394, 265, 262,
                              415, 271}));
  EXPECT_EQ(std::vector<int>(tokens.end() - 8, tokens.end()),
            (std::vector<int>{282, 285, 431, 304, 423, 303, 331, 426}));
  EXPECT_EQ(fnv(tokens, 16384), 0x4752b4f667b16d93ull);
  EXPECT_EQ(fnv(tokens, tokens.size()), 0xa52963aca4791c44ull);
  std::printf("[          ] valid_head.txt (794,375 bytes) read + encoded in "
              "%.3f s\n",
              sec);
  // Regression guard against quadratic merging (expected: ~0.1 s).
  EXPECT_LT(sec, 3.0);
}

TEST(TextDatasetTest, TrainHeadMatchesReference) {
  std::vector<int> tokens;
  Status s = loadPerplexityTokens(kShared + "/data/tinystories/train_head.txt",
                                  tok512(), tokens);
  ASSERT_TRUE(s.isOk()) << s.message();
  ASSERT_EQ(tokens.size(), 100706u);
  EXPECT_EQ(std::vector<int>(tokens.begin(), tokens.begin() + 6),
            (std::vector<int>{385, 328, 432, 261, 376, 298}));
  EXPECT_EQ(fnv(tokens, 16384), 0xb1157e98a388245dull);
  EXPECT_EQ(fnv(tokens, tokens.size()), 0xe00cf45db1796aedull);
}

TEST(TextDatasetTest, WindowsOfFirst16384Tokens) {
  std::vector<int> tokens;
  ASSERT_TRUE(loadPerplexityTokens(kShared + "/data/tinystories/valid_head.txt",
                                   tok512(), tokens)
                  .isOk());
  std::vector<std::vector<int>> windows = makeWindows(tokens, 16384);
  // 32 full windows of 511 + a partial one of 16384 - 32 * 511 = 32 tokens.
  ASSERT_EQ(windows.size(), 33u);
  int64_t scored = 0;
  for (size_t w = 0; w < windows.size(); ++w) {
    ASSERT_EQ(windows[w].size(), w < 32 ? 512u : 33u) << "window " << w;
    EXPECT_EQ(windows[w][0], 1);
    EXPECT_TRUE(std::equal(windows[w].begin() + 1, windows[w].end(),
                           tokens.begin() + w * 511))
        << "window " << w;
    scored += static_cast<int64_t>(windows[w].size()) - 1;
  }
  EXPECT_EQ(scored, 16384);
}

TEST(TextDatasetTest, MakeWindowsEdgeCases) {
  std::vector<int> t = {10, 11, 12, 13, 14, 15};
  using W = std::vector<std::vector<int>>;
  EXPECT_EQ(makeWindows(t, 0, 3), (W{{1, 10, 11, 12}, {1, 13, 14, 15}}));
  EXPECT_EQ(makeWindows(t, -1, 4), (W{{1, 10, 11, 12, 13}, {1, 14, 15}}));
  EXPECT_EQ(makeWindows(t, 100, 4, 7), (W{{7, 10, 11, 12, 13}, {7, 14, 15}}));
  EXPECT_EQ(makeWindows(t, 5, 2), (W{{1, 10, 11}, {1, 12, 13}, {1, 14}}));
  EXPECT_EQ(makeWindows(t, 0, 0), W{});
  EXPECT_EQ(makeWindows({}, 0, 511), W{});
}

TEST(TextDatasetTest, SplitsAndStripsParagraphs) {
  using P = std::vector<std::string>;
  EXPECT_EQ(splitParagraphs("  a b \n\n\n c\nd\n\n\n\n \t \n\ne  \n"),
            (P{"a b", "c\nd", "e"}));
  EXPECT_EQ(splitParagraphs("one"), (P{"one"}));
  EXPECT_EQ(splitParagraphs("\n\n\n\n"), P{});
  EXPECT_EQ(splitParagraphs(""), P{});
}

TEST(TextDatasetTest, JoinsParagraphsWithTwoNewlines) {
  std::vector<int> tokens;
  Status s = encodePerplexityText("Once upon a time\n\n\n  Lily  \n\n",
                                  tok512(), tokens, "mem");
  ASSERT_TRUE(s.isOk()) << s.message();
  // Dummy-prefix space only on the first paragraph: "Lily" is 438 310, not
  // " Lily" (317).
  EXPECT_EQ(tokens, (std::vector<int>{403, 407, 261, 378, 13, 13, 438, 310}));
}

TEST(TextDatasetTest, ErrorsNameTheFile) {
  std::vector<int> tokens = {42};
  const std::string missing = ::testing::TempDir() + "qc_no_such_text.txt";
  Status s = loadPerplexityTokens(missing, tok512(), tokens);
  ASSERT_FALSE(s.isOk());
  EXPECT_EQ(s.message().rfind(missing + ": cannot open", 0), 0u) << s.message();
  EXPECT_EQ(tokens, std::vector<int>{42}); // untouched on failure

  for (const std::string &content :
       {std::string(""), std::string("\n\n \n\t\n")}) {
    std::string path = writeTemp("blank", content);
    s = loadPerplexityTokens(path, tok512(), tokens);
    std::remove(path.c_str());
    ASSERT_FALSE(s.isOk());
    EXPECT_EQ(s.message().rfind(path + ": no text to evaluate", 0), 0u)
        << s.message();
  }

  std::string text;
  s = readTextFile(::testing::TempDir(), text);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("not a regular file"), std::string::npos)
      << s.message();

  std::string path = writeTemp("ok", "abc\n");
  ASSERT_TRUE(readTextFile(path, text).isOk());
  std::remove(path.c_str());
  EXPECT_EQ(text, "abc\n");
}

TEST(TextDatasetTest, ContextWindowsWithoutBos) {
  std::vector<int> t = {10, 11, 12, 13, 14, 15, 16};
  using W = std::vector<std::vector<int>>;
  ContextWindowProtocol p;
  p.ctx = 3;
  W w;
  int64_t scored = 0;
  ASSERT_TRUE(makeContextWindows(t, p, w, scored));
  // The last window {16} predicts nothing and is dropped.
  EXPECT_EQ(w, (W{{10, 11, 12}, {13, 14, 15}}));
  EXPECT_EQ(scored, 4);
  // The goldens' protocol: 16,384 tokens in windows of 1,024 predict
  // 16 * 1,023 = 16,368 tokens.
  std::vector<int> many(20000, 5);
  p.ctx = 1024;
  p.maxTokens = 16384;
  ASSERT_TRUE(makeContextWindows(many, p, w, scored));
  EXPECT_EQ(w.size(), 16u);
  EXPECT_EQ(scored, 16368);
  EXPECT_EQ(describeContextWindows(p, 20000),
            "text tokenized as one string, non-overlapping windows of 1024 "
            "tokens, no BOS, each window scored on its own, tokens [0, "
            "16384) of 20000");
}

TEST(TextDatasetTest, ContextWindowsWithBosAndSkip) {
  std::vector<int> t = {10, 11, 12, 13, 14, 15, 16};
  using W = std::vector<std::vector<int>>;
  ContextWindowProtocol p;
  p.ctx = 3;
  p.bosEachWindow = true;
  p.bosId = 1;
  p.skipTokens = 2;
  p.maxTokens = 4;
  W w;
  int64_t scored = 0;
  ASSERT_TRUE(makeContextWindows(t, p, w, scored));
  EXPECT_EQ(w, (W{{1, 12, 13}, {1, 14, 15}}));
  EXPECT_EQ(scored, 4);
  p.maxTokens = 0;
  ASSERT_TRUE(makeContextWindows(t, p, w, scored));
  EXPECT_EQ(w, (W{{1, 12, 13}, {1, 14, 15}, {1, 16}}));
  EXPECT_EQ(scored, 5);
}

TEST(TextDatasetTest, ContextWindowsRejectBadOptions) {
  std::vector<int> t = {10, 11, 12};
  ContextWindowProtocol p;
  std::vector<std::vector<int>> w;
  int64_t scored = 0;
  p.ctx = 1;
  Status s = makeContextWindows(t, p, w, scored);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("--ctx must be at least 2"), std::string::npos);
  p.ctx = 4;
  p.bosEachWindow = true;
  s = makeContextWindows(t, p, w, scored);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("names no BOS token"), std::string::npos);
  p.bosEachWindow = false;
  p.skipTokens = 3;
  s = makeContextWindows(t, p, w, scored);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("--skip-tokens 3 leaves nothing of the 3 tokens"),
            std::string::npos);
}
