//===- TextTokenizerTest.cpp - Tokenizer interface tests --------*- C++ -*-===//
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
    while (i < text.size() &&
           (static_cast<unsigned char>(text[i]) & 0xC0) == 0x80)
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
  int64_t want =
      g.find("tokenizer")->find("valid_head_total_tokens")->asInt64();
  std::string text = readFile(kValidHead);
  auto t0 = std::chrono::steady_clock::now();
  std::vector<int> ids = enc(*tok, text);
  double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
          .count();
  EXPECT_EQ(static_cast<int64_t>(ids.size()), want);
  EXPECT_EQ(tok->decode(ids), text);
  // The brief's bound: the 1.7 MB file in a few seconds on a busy core.
  EXPECT_LT(secs, 10.0) << "encoding valid_head.txt took " << secs << " s";
}

TEST_P(SmolGoldens, RandomStringsMatchTokenizers) {
  // 300 random strings over tricky characters (scripts, combining marks,
  // emoji, whitespace kinds, special-token text), ids from Hugging Face
  // `tokenizers` on the same tokenizer.json (scripts/gen-tokenizer-vectors).
  auto tok = load(GetParam());
  ASSERT_TRUE(tok);
  json::Value v = readJson(kDataDir + "/smollm2_random.json");
  const auto &cases = v.find("cases")->asArray();
  ASSERT_EQ(cases.size(), 300u);
  for (const json::Value &c : cases) {
    const std::string &text = c.find("text")->asString();
    std::vector<int> ids = idsOf(*c.find("ids"));
    EXPECT_EQ(enc(*tok, text), ids) << json::quote(text);
    EXPECT_EQ(tok->decode(ids), c.find("decoded")->asString())
        << json::quote(text);
  }
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

namespace {

//===----------------------------------------------------------------------===//
// Hand-written tokenizer.json files against Hugging Face `tokenizers`
//===----------------------------------------------------------------------===//

TEST(HFVectors, EveryCaseMatchesTokenizers) {
  json::Value e = readJson(kDataDir + "/expected.json");
  const json::Value *all = e.find("tokenizers");
  ASSERT_TRUE(all && all->isObject());
  ASSERT_EQ(all->asObject().size(), 6u);
  for (const auto &[name, t] : all->asObject()) {
    SCOPED_TRACE(name);
    auto tok = load(kDataDir + "/" + t.find("file")->asString());
    ASSERT_TRUE(tok);
    for (const json::Value &c : t.find("cases")->asArray()) {
      const std::string &text = c.find("text")->asString();
      SCOPED_TRACE(json::quote(text));
      std::vector<int> ids = idsOf(*c.find("ids"));
      EXPECT_EQ(enc(*tok, text, false), ids);
      EXPECT_EQ(enc(*tok, text, true), idsOf(*c.find("ids_special")));
      EXPECT_EQ(tok->decode(ids), c.find("decoded")->asString());
      EXPECT_EQ(tok->decode(ids, /*skipSpecial=*/true),
                c.find("decoded_skip")->asString());
    }
  }
}

TEST(HFVectors, ConfigurationIsReported) {
  auto sp = load(kDataDir + "/sp_byte_fallback.json");
  ASSERT_TRUE(sp);
  EXPECT_EQ(sp->bosId(), 1); // from the post-processor's template
  EXPECT_TRUE(sp->addsBos());
  EXPECT_FALSE(sp->addsEos());
  EXPECT_EQ(sp->specialIds(), (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(sp->pieceId("<0x41>"), 3 + 0x41);
  EXPECT_EQ(sp->tokenPiece(3 + 0x41), "<0x41>");
  EXPECT_TRUE(sp->isSpecial(1));
  EXPECT_FALSE(sp->isSpecial(3));
  // Streaming: the first token's "▁" is dropped, later ones become spaces,
  // byte-fallback pieces are raw bytes.
  std::vector<int> ids = enc(*sp, "hello world 日本");
  std::string streamed;
  for (size_t i = 0; i < ids.size(); ++i)
    streamed += sp->decodePiece(i ? ids[i - 1] : -1, ids[i]);
  EXPECT_EQ(streamed, "hello world 日本");

  auto roberta = load(kDataDir + "/gpt2_roberta.json");
  ASSERT_TRUE(roberta);
  EXPECT_TRUE(roberta->addsBos());
  EXPECT_TRUE(roberta->addsEos());
  EXPECT_EQ(roberta->bosId(), 0);
  EXPECT_EQ(roberta->eosId(), 2);

  auto meta = load(kDataDir + "/metaspace_pairs.json");
  ASSERT_TRUE(meta);
  EXPECT_FALSE(meta->addsBos());
  EXPECT_TRUE(meta->addsEos());
  EXPECT_FALSE(meta->isSpecial(meta->pieceId("cat"))); // a non-special added
}

TEST(HFVectors, InvalidUtf8EncodesTheRawBytes) {
  // Byte-level BPE: each invalid byte is a pre-token of its own and becomes
  // the id of that byte's character; decoding gives the bytes back (and
  // decode() replaces them with U+FFFD as Hugging Face does).
  auto tok = load(kSmolJson);
  ASSERT_TRUE(tok);
  std::string bad = std::string("ab\xC3") + "cd\x80" + " \xE6\x97";
  std::vector<int> ids = enc(*tok, bad);
  std::string raw;
  for (size_t i = 0; i < ids.size(); ++i)
    raw += tok->decodePiece(i ? ids[i - 1] : -1, ids[i]);
  EXPECT_EQ(raw, bad);
  EXPECT_EQ(tok->decode(ids), "ab\xEF\xBF\xBD"
                              "cd\xEF\xBF\xBD \xEF\xBF\xBD");
  EXPECT_NE(std::find(ids.begin(), ids.end(), tok->pieceId("\xC3\x83")),
            ids.end()); // byte C3 is the character U+00C3
  // Bytes F5..FF never occur in UTF-8, so this vocabulary has no piece for
  // them, and a BPE model without an unknown token drops characters it
  // lacks (as Hugging Face does): they vanish from the ids.
  EXPECT_EQ(enc(*tok, "a\xFF"), enc(*tok, "a"));
  // SentencePiece with byte fallback: <0xHH> tokens.
  auto sp = load(kDataDir + "/sp_byte_fallback.json");
  ASSERT_TRUE(sp);
  std::vector<int> spIds = enc(*sp, "\xFF");
  EXPECT_EQ(spIds.back(), 3 + 0xFF);
}

TEST(HFVectors, NfcRefusesTextItCannotProve) {
  auto tok = load(kDataDir + "/qwen2_nfc.json");
  ASSERT_TRUE(tok);
  // "e" + COMBINING ACUTE ACCENT: NFC would compose it into U+00E9.
  std::vector<int> ids;
  Status s = tok->encode("cafe\xCC\x81", false, ids);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("U+0301 at byte 4"), std::string::npos)
      << s.message();
  // Precomposed text is encoded.
  EXPECT_TRUE(tok->encode("caf\xC3\xA9", false, ids).isOk());
}

TEST(HFVectors, FolderConfigurationDecidesBosAndEos) {
  qc::test::TempDir dir("qc_tok_");
  auto write = [&](const std::string &name, const std::string &text) {
    std::ofstream f(dir.file(name), std::ios::binary);
    f << text;
  };
  write("tokenizer.json", readFile(kDataDir + "/sp_byte_fallback.json"));
  write("tokenizer_config.json",
        "{\"add_bos_token\": false, \"add_eos_token\": true,"
        " \"bos_token\": {\"content\": \"<s>\"}, \"eos_token\": \"</s>\"}");
  auto tok = load(dir.path);
  ASSERT_TRUE(tok);
  EXPECT_FALSE(tok->addsBos());
  EXPECT_TRUE(tok->addsEos());
  std::vector<int> plain = enc(*tok, "hello");
  std::vector<int> special = enc(*tok, "hello", true);
  plain.push_back(2);
  EXPECT_EQ(special, plain);

  // config.json names the ids when tokenizer_config.json does not.
  write("tokenizer_config.json", "{}");
  write("config.json", "{\"bos_token_id\": 2, \"eos_token_id\": [0, 1]}");
  tok = load(dir.path);
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->bosId(), 2);
  EXPECT_EQ(tok->eosId(), 0);
  EXPECT_FALSE(tok->addsBos()); // the template adds <s> (1), not id 2

  write("tokenizer_config.json", "{\"bos_token\": \"<nope>\"}");
  std::unique_ptr<TextTokenizer> t;
  Status s = loadTokenizer(dir.path, t);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("tokenizer_config.json"), std::string::npos);
  EXPECT_NE(s.message().find("bos_token: \"<nope>\" is not a token"),
            std::string::npos)
      << s.message();
}

/// GGUF "llama" metadata made from the SentencePiece-style tokenizer.json:
/// the same pieces, each merged piece scored by its merge's rank (earlier
/// merges score higher), byte tokens typed as bytes.
GgufTokenizerData ggufFromSp(const json::Value &doc) {
  GgufTokenizerData d;
  d.model = "llama";
  const auto &vocab = doc.find("model")->find("vocab")->asObject();
  d.tokens.resize(vocab.size());
  for (const auto &[piece, id] : vocab)
    d.tokens[id.asInt64()] = piece;
  d.scores.assign(d.tokens.size(), 0.f);
  d.tokenTypes.assign(d.tokens.size(), 1);
  const auto &merges = doc.find("model")->find("merges")->asArray();
  for (size_t r = 0; r < merges.size(); ++r) {
    std::string m = merges[r].asString();
    std::string merged = m.substr(0, m.find(' ')) + m.substr(m.find(' ') + 1);
    for (size_t i = 0; i < d.tokens.size(); ++i)
      if (d.tokens[i] == merged)
        d.scores[i] = -static_cast<float>(r);
  }
  d.tokenTypes[0] = 2;
  d.tokenTypes[1] = d.tokenTypes[2] = 3;
  for (int b = 0; b < 256; ++b)
    d.tokenTypes[3 + b] = 6;
  d.bosId = 1;
  d.eosId = 2;
  d.unkId = 0;
  return d;
}

TEST(GgufSentencePiece, AgreesWithTheEquivalentTokenizerJson) {
  json::Value doc = readJson(kDataDir + "/sp_byte_fallback.json");
  std::unique_ptr<TextTokenizer> gguf;
  ASSERT_TRUE(loadGgufTokenizer(ggufFromSp(doc), "sp.gguf", gguf).isOk());
  auto hf = load(kDataDir + "/sp_byte_fallback.json");
  ASSERT_TRUE(hf);
  EXPECT_TRUE(gguf->addsBos()); // llama.cpp's default for SentencePiece
  json::Value e = readJson(kDataDir + "/expected.json");
  for (const json::Value &c : e.find("tokenizers")
                                  ->find("sp_byte_fallback")
                                  ->find("cases")
                                  ->asArray()) {
    const std::string &text = c.find("text")->asString();
    SCOPED_TRACE(json::quote(text));
    std::vector<int> ids = idsOf(*c.find("ids"));
    EXPECT_EQ(enc(*gguf, text), ids);
    EXPECT_EQ(enc(*gguf, text, true), idsOf(*c.find("ids_special")));
    EXPECT_EQ(gguf->decode(ids), c.find("decoded")->asString());
    EXPECT_EQ(gguf->decode(ids, true), c.find("decoded_skip")->asString());
  }
  // Without the space prefix (tokenizer.ggml.add_space_prefix = false).
  GgufTokenizerData d = ggufFromSp(doc);
  d.addSpacePrefix = false;
  d.addBos = false;
  ASSERT_TRUE(loadGgufTokenizer(d, "sp.gguf", gguf).isOk());
  std::vector<int> ids = enc(*gguf, "hello world", true);
  EXPECT_EQ(gguf->decode(ids), "hello world");
  EXPECT_NE(ids, enc(*hf, "hello world"));
}

//===----------------------------------------------------------------------===//
// The llama2.c tokenizer behind the interface
//===----------------------------------------------------------------------===//

TEST(Llama2cSource, SameIdsAsTheExistingTokenizer) {
  const std::string path = kShared + "/models/stories260K/tok512.bin";
  Tokenizer ref;
  ASSERT_TRUE(Tokenizer::load(path, 512, ref).isOk());
  TokenizerLoadOptions o;
  o.llama2cVocabSize = 512;
  auto tok = load(path, o);
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->vocabSize(), 512);
  EXPECT_TRUE(tok->addsBos());
  EXPECT_EQ(tok->bosId(), 1);
  for (std::string text :
       {"Once upon a time, there was a little girl.", "", "日本 \xFF tabs\t"}) {
    std::vector<int> want, got = enc(*tok, text, true);
    ref.encode(text, true, false, want);
    EXPECT_EQ(got, want) << text;
    EXPECT_EQ(enc(*tok, text, false), [&] {
      std::vector<int> w;
      ref.encode(text, false, false, w);
      return w;
    }());
    EXPECT_EQ(tok->decode(got), ref.decode(want));
  }
  std::unique_ptr<TextTokenizer> t;
  Status s = loadTokenizer(path, t); // no vocabulary size
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("vocabulary size"), std::string::npos)
      << s.message();
}

//===----------------------------------------------------------------------===//
// Bad inputs
//===----------------------------------------------------------------------===//

/// Loads the tokenizer.json text `text` and returns the error message.
std::string jsonError(const std::string &text) {
  std::unique_ptr<TextTokenizer> t;
  Status s = loadHFTokenizerJson(text, "", "", "bad.json", t);
  EXPECT_FALSE(s.isOk());
  return s.message();
}

/// A minimal valid tokenizer.json with `patch` replacing "MODEL" etc.
std::string doc(const std::string &model, const std::string &pre = "null",
                const std::string &norm = "null",
                const std::string &dec = "null") {
  return "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,"
         "\"added_tokens\":[],\"normalizer\":" +
         norm + ",\"pre_tokenizer\":" + pre +
         ",\"post_processor\":null,\"decoder\":" + dec + ",\"model\":" + model +
         "}";
}

const std::string kGoodModel =
    "{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2},"
    "\"merges\":[\"a b\"]}";

TEST(BadTokenizerJson, ClearErrors) {
  // Sanity: the base document loads and merges.
  std::unique_ptr<TextTokenizer> t;
  ASSERT_TRUE(
      loadHFTokenizerJson(doc(kGoodModel), "", "", "ok.json", t).isOk());
  EXPECT_EQ(enc(*t, "abab"), (std::vector<int>{2, 2}));

  std::string m = jsonError("{\"model\": [1, 2,}");
  EXPECT_NE(m.find("bad.json: JSON error at byte"), std::string::npos) << m;
  m = jsonError(doc("{\"type\":\"Unigram\",\"vocab\":[]}"));
  EXPECT_NE(m.find("model.type: \"Unigram\" is not supported"),
            std::string::npos)
      << m;
  m = jsonError(doc(kGoodModel, "{\"type\":\"BertPreTokenizer\"}"));
  EXPECT_NE(m.find("pre_tokenizer.type: \"BertPreTokenizer\" is not "
                   "supported"),
            std::string::npos)
      << m;
  m = jsonError(doc(kGoodModel,
                    "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":"
                    "\"ByteLevel\"},{\"type\":\"Punctuation\"}]}"));
  EXPECT_NE(m.find("pre_tokenizer.pretokenizers[1].type: \"Punctuation\""),
            std::string::npos)
      << m;
  m = jsonError(doc(kGoodModel, "null", "{\"type\":\"NFKC\"}"));
  EXPECT_NE(m.find("normalizer.type: \"NFKC\""), std::string::npos) << m;
  m = jsonError(doc(kGoodModel, "null", "null", "{\"type\":\"WordPiece\"}"));
  EXPECT_NE(m.find("decoder.type: \"WordPiece\" is not supported"),
            std::string::npos)
      << m;
  m = jsonError(doc("{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2},"
                    "\"merges\":[\"a c\"]}"));
  EXPECT_NE(m.find("model.merges[0]: token \"c\" is not in the vocabulary"),
            std::string::npos)
      << m;
  m = jsonError(doc("{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},"
                    "\"merges\":[[\"a\",\"b\"]]}"));
  EXPECT_NE(m.find("model.merges[0]: merged token \"ab\" is not in the "
                   "vocabulary"),
            std::string::npos)
      << m;
  m = jsonError(doc("{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2},"
                    "\"merges\":[\"ab\"]}"));
  EXPECT_NE(m.find("model.merges[0]"), std::string::npos) << m;
  m = jsonError(doc("{\"type\":\"BPE\",\"vocab\":{\"a\":-4},\"merges\":[]}"));
  EXPECT_NE(m.find("model.vocab.\"a\": expected an integer"), std::string::npos)
      << m;
  m = jsonError(doc("{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":0},"
                    "\"merges\":[]}"));
  EXPECT_NE(m.find("is used twice"), std::string::npos) << m;
  m = jsonError(doc(kGoodModel,
                    "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(\"},"
                    "\"behavior\":\"Isolated\",\"invert\":false}"));
  EXPECT_NE(m.find("pre_tokenizer.pattern.Regex: cannot compile regex"),
            std::string::npos)
      << m;
  m = jsonError(doc(kGoodModel,
                    "{\"type\":\"Split\",\"pattern\":{\"String\":\"x\"},"
                    "\"behavior\":\"Sideways\"}"));
  EXPECT_NE(m.find("pre_tokenizer.behavior: unknown behavior"),
            std::string::npos)
      << m;
  m = jsonError(doc("{\"type\":\"BPE\",\"dropout\":0.1,\"vocab\":{},"
                    "\"merges\":[]}"));
  EXPECT_NE(m.find("model.dropout"), std::string::npos) << m;
  m = jsonError(doc("{\"type\":\"BPE\",\"unk_token\":\"<unk>\",\"vocab\":{},"
                    "\"merges\":[]}"));
  EXPECT_NE(m.find("model.unk_token: \"<unk>\" is not in the vocabulary"),
            std::string::npos)
      << m;
  m = jsonError("{\"version\":\"1.0\",\"truncation\":{\"max_length\":8},"
                "\"model\":" +
                kGoodModel + "}");
  EXPECT_NE(m.find("truncation: is set"), std::string::npos) << m;
  m = jsonError("[]");
  EXPECT_NE(m.find("expected an object"), std::string::npos) << m;

  // Missing files name the path.
  Status s = loadTokenizer(kDataDir + "/no-such-tokenizer.json", t);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("no-such-tokenizer.json"), std::string::npos);
  qc::test::TempDir dir("qc_tok_");
  s = loadTokenizer(dir.path, t);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("has no tokenizer.json"), std::string::npos);
}

TEST(BadGgufTokenizer, ClearErrors) {
  GgufTokenizerData d;
  d.model = "gpt2";
  d.tokens = {"a", "b", "ab"};
  d.merges = {"a b"};
  std::unique_ptr<TextTokenizer> t;
  ASSERT_TRUE(loadGgufTokenizer(d, "m.gguf", t).isOk());
  EXPECT_EQ(enc(*t, "abab"), (std::vector<int>{2, 2}));

  auto err = [&](const GgufTokenizerData &x) {
    std::unique_ptr<TextTokenizer> r;
    Status s = loadGgufTokenizer(x, "m.gguf", r);
    EXPECT_FALSE(s.isOk());
    return s.message();
  };
  GgufTokenizerData x = d;
  x.pre = "deepseek-llm";
  std::string m = err(x);
  EXPECT_NE(m.find("'tokenizer.ggml.pre': \"deepseek-llm\" is not supported"),
            std::string::npos)
      << m;
  x = d;
  x.model = "bert";
  m = err(x);
  EXPECT_NE(m.find("'tokenizer.ggml.model': \"bert\" is not supported"),
            std::string::npos)
      << m;
  x = d;
  x.merges = {"a c"};
  m = err(x);
  EXPECT_NE(m.find("'tokenizer.ggml.merges': merge 0"), std::string::npos) << m;
  x = d;
  x.bosId = 7;
  m = err(x);
  EXPECT_NE(m.find("'tokenizer.ggml.bos_token_id': 7 is outside"),
            std::string::npos)
      << m;
  x = d;
  x.scores = {0.f};
  m = err(x);
  EXPECT_NE(m.find("'tokenizer.ggml.scores': 1 scores for 3 tokens"),
            std::string::npos)
      << m;
  x = d;
  x.tokenTypes = {1, 1, 9};
  m = err(x);
  EXPECT_NE(m.find("unknown type 9"), std::string::npos) << m;
  x = d;
  x.addBos = true;
  m = err(x);
  EXPECT_NE(m.find("add_bos_token"), std::string::npos) << m;
}

//===----------------------------------------------------------------------===//
// quant-tokenize
//===----------------------------------------------------------------------===//

int runTool(std::vector<std::string> args, std::string &out, std::string &err) {
  args.insert(args.begin(), "quant-tokenize");
  std::vector<char *> argv;
  for (std::string &a : args)
    argv.push_back(a.data());
  std::ostringstream o, e;
  int rc = tools::quantTokenizeMain(static_cast<int>(argv.size()), argv.data(),
                                    o, e);
  out = o.str();
  err = e.str();
  return rc;
}

TEST(QuantTokenize, JsonForOneString) {
  std::string out, err;
  ASSERT_EQ(runTool({kSmolGguf, "--text", "Hello world", "--json", "--pieces"},
                    out, err),
            0)
      << err;
  json::Value v;
  ASSERT_TRUE(json::parse(out, v).isOk()) << out;
  EXPECT_EQ(idsOf(*v.find("ids")), (std::vector<int>{19556, 905}));
  EXPECT_FALSE(v.find("bos_added")->asBool());
  EXPECT_FALSE(v.find("eos_added")->asBool());
  EXPECT_EQ(v.find("count")->asInt64(), 2);
  ASSERT_TRUE(v.find("pieces"));
  EXPECT_EQ(v.find("pieces")->asArray()[1].asString(), " world");

  // The BOS a configuration adds is reported.
  ASSERT_EQ(runTool({kDataDir + "/sp_byte_fallback.json", "--text", "hello",
                     "--json"},
                    out, err),
            0)
      << err;
  ASSERT_TRUE(json::parse(out, v).isOk()) << out;
  EXPECT_TRUE(v.find("bos_added")->asBool());
  EXPECT_EQ(v.find("ids")->asArray()[0].asInt64(), 1);
  ASSERT_EQ(runTool({kDataDir + "/sp_byte_fallback.json", "--text", "hello",
                     "--json", "--no-add-special"},
                    out, err),
            0);
  ASSERT_TRUE(json::parse(out, v).isOk()) << out;
  EXPECT_FALSE(v.find("bos_added")->asBool());
  EXPECT_NE(v.find("ids")->asArray()[0].asInt64(), 1);

  // A llama2.c tokenizer.bin adds BOS as run.c does.
  ASSERT_EQ(runTool({kShared + "/models/stories260K/tok512.bin", "--vocab-size",
                     "512", "--text", "Once upon", "--json"},
                    out, err),
            0)
      << err;
  ASSERT_TRUE(json::parse(out, v).isOk()) << out;
  EXPECT_TRUE(v.find("bos_added")->asBool());
  EXPECT_EQ(v.find("ids")->asArray()[0].asInt64(), 1);

  // Plain output and --decode.
  ASSERT_EQ(runTool({kSmolDir, "--text", "Hello world"}, out, err), 0);
  EXPECT_EQ(out, "19556 905\n");
  ASSERT_EQ(runTool({kSmolJson, "--decode", "[19556, 905, 2]"}, out, err), 0);
  EXPECT_EQ(out, "Hello world<|im_end|>\n");
  qc::test::TempDir dir("qc_tok_");
  {
    std::ofstream f(dir.file("in.txt"), std::ios::binary);
    f << "don't we'll I'm";
  }
  ASSERT_EQ(runTool({kSmolJson, "--file", dir.file("in.txt")}, out, err), 0);
  EXPECT_EQ(out, "12420 982 392 3060 339 5248\n");
}

TEST(QuantTokenize, ErrorsAreOneLine) {
  std::string out, err;
  EXPECT_EQ(runTool({}, out, err), 2);
  EXPECT_NE(err.find("missing SOURCE"), std::string::npos);
  EXPECT_EQ(runTool({kSmolJson, "--bogus"}, out, err), 2);
  EXPECT_NE(err.find("unknown option '--bogus'"), std::string::npos);
  EXPECT_EQ(runTool({kSmolJson, "--decode", "1,x"}, out, err), 1);
  EXPECT_NE(err.find("--decode"), std::string::npos);
  EXPECT_EQ(runTool({kSmolJson, "--decode", "99999999"}, out, err), 1);
  EXPECT_NE(err.find("outside the vocabulary"), std::string::npos);
  EXPECT_EQ(runTool({"/nonexistent/tokenizer.json", "--text", "x"}, out, err),
            1);
  EXPECT_NE(err.find("/nonexistent/tokenizer.json"), std::string::npos);
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1);
  EXPECT_EQ(runTool({"--help"}, out, err), 0);
  EXPECT_NE(out.find("example:"), std::string::npos);
}

TEST(IdList, Parses) {
  std::vector<int> ids;
  ASSERT_TRUE(parseIdList("1,2, 3", ids).isOk());
  EXPECT_EQ(ids, (std::vector<int>{1, 2, 3}));
  ASSERT_TRUE(parseIdList(" [4 5,6] ", ids).isOk());
  EXPECT_EQ(ids, (std::vector<int>{4, 5, 6}));
  ASSERT_TRUE(parseIdList("[]", ids).isOk());
  EXPECT_TRUE(ids.empty());
  EXPECT_FALSE(parseIdList("[1, 2", ids).isOk());
  EXPECT_FALSE(parseIdList("-1", ids).isOk());
  EXPECT_FALSE(parseIdList("99999999999", ids).isOk());
}

} // namespace
