//===- CorpusPrefixTest.cpp - A corpus's first N tokens from a prefix -----===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// encodeCorpus with a token limit tokenizes only a growing prefix of the
// text (a 40 MB calibration text used to be tokenized whole before
// --max-tokens applied). The tokens it keeps must be exactly the first N
// tokens of the whole text's encoding, for both protocols: llama2.c
// paragraphs (stories260K) and a byte-level BPE tokenizer.json (SmolLM2),
// including cuts inside a long line and between multi-byte characters.
//
//===----------------------------------------------------------------------===//

#include "qc/Import/ModelTokenizer.h"
#include "qc/runtime/TextDataset.h"
#include "qc/runtime/TextTokenizer.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

namespace {

const std::string kShared = QC_SHARED_DIR;
const std::string kValid = kShared + "/data/tinystories/valid_head.txt";

std::unique_ptr<qc::TextTokenizer> load(const std::string &source,
                                        int64_t llama2cVocab = 0) {
  std::unique_ptr<qc::TextTokenizer> tok;
  qc::TokenizerLoadOptions o;
  o.llama2cVocabSize = llama2cVocab;
  qc::Status s = qc::loadTokenizer(source, tok, o);
  EXPECT_TRUE(s.isOk()) << s.message();
  return tok;
}

/// Every limit gives the whole encoding's first tokens.
void checkPrefixes(const qc::TextTokenizer &tok, const std::string &path,
                   const std::vector<int64_t> &limits) {
  std::vector<int> whole;
  qc::Status s = mlir::qc::encodeCorpus(tok, path, whole);
  ASSERT_TRUE(s.isOk()) << s.message();
  ASSERT_FALSE(whole.empty());
  for (int64_t n : limits) {
    std::vector<int> part;
    s = mlir::qc::encodeCorpus(tok, path, part, n);
    ASSERT_TRUE(s.isOk()) << s.message();
    size_t want = std::min<size_t>(static_cast<size_t>(n), whole.size());
    ASSERT_EQ(part.size(), want) << path << " limit " << n;
    EXPECT_TRUE(std::equal(part.begin(), part.end(), whole.begin()))
        << path << " limit " << n;
  }
}

std::string writeTemp(const std::string &name, const std::string &text) {
  std::string path = ::testing::TempDir() + "/qc_corpusprefix_" +
                     std::to_string(::getpid()) + "_" + name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

TEST(CorpusPrefixTest, Llama2cParagraphsMatchTheWholeText) {
  auto tok = load(kShared + "/models/stories260K/tok512.bin", 512);
  ASSERT_TRUE(tok);
  ASSERT_NE(tok->llama2c(), nullptr);
  checkPrefixes(*tok, kValid, {1, 255, 4096, 30000, 120000, 100000000});
}

TEST(CorpusPrefixTest, ByteLevelBpeMatchesTheWholeText) {
  auto tok = load(kShared + "/models/smollm2-135m/tokenizer.json");
  ASSERT_TRUE(tok);
  checkPrefixes(*tok, kValid, {1, 256, 4096, 30000, 100000000});
}

TEST(CorpusPrefixTest, CutsInsideALongLineAndBetweenCharacters) {
  auto tok = load(kShared + "/models/smollm2-135m/tokenizer.json");
  ASSERT_TRUE(tok);
  // One 300 KB line of words (the cut falls after a space), and one of
  // two-byte characters with no space at all (the cut backs off to a
  // character boundary).
  std::string words, accents;
  for (int i = 0; i < 30000; ++i)
    words += "lumière" + std::to_string(i % 97) + " ";
  for (int i = 0; i < 150000; ++i)
    accents += (i % 7 == 0) ? "ß" : "é";
  std::string a = writeTemp("words.txt", words);
  std::string b = writeTemp("accents.txt", accents);
  checkPrefixes(*tok, a, {10, 5000, 20000});
  checkPrefixes(*tok, b, {10, 5000});
  ::unlink(a.c_str());
  ::unlink(b.c_str());
}

TEST(CorpusPrefixTest, Llama2cTextWithoutBlankLines) {
  // One paragraph of many lines: the cut falls at a line break, inside the
  // paragraph, and the margin keeps the kept tokens exact.
  auto tok = load(kShared + "/models/stories260K/tok512.bin", 512);
  ASSERT_TRUE(tok);
  std::string lines;
  for (int i = 0; i < 8000; ++i)
    lines += "Once upon a time there was a little cat number " +
             std::to_string(i % 113) + " who liked to play.\n";
  std::string path = writeTemp("lines.txt", lines);
  checkPrefixes(*tok, path, {10, 3000, 20000});
  ::unlink(path.c_str());
}

TEST(CorpusPrefixTest, ErrorsStillNameTheFile) {
  auto tok = load(kShared + "/models/smollm2-135m/tokenizer.json");
  ASSERT_TRUE(tok);
  std::string empty = writeTemp("empty.txt", "");
  std::vector<int> ids;
  qc::Status s = mlir::qc::encodeCorpus(*tok, empty, ids, 256);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find(empty), std::string::npos) << s.message();
  ::unlink(empty.c_str());
  s = mlir::qc::encodeCorpus(*tok, kShared + "/no/such.txt", ids, 256);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("no/such.txt"), std::string::npos);
}

TEST(CorpusPrefixTest, PrefixCutBoundaries) {
  bool paragraph = false;
  EXPECT_EQ(qc::prefixCut("ab\n\ncd\nef", paragraph), 4u);
  EXPECT_TRUE(paragraph);
  EXPECT_EQ(qc::prefixCut("ab cd\nef gh", paragraph), 6u);
  EXPECT_FALSE(paragraph);
  EXPECT_EQ(qc::prefixCut("abc def", paragraph), 4u);
  // "xé" cut inside é's second byte: back to before é.
  EXPECT_EQ(qc::prefixCut(std::string("x\xc3\xa9\xc3"), paragraph), 3u);
  EXPECT_EQ(qc::prefixCut("", paragraph), 0u);
}

} // namespace
