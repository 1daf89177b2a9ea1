//===- TokenizerExportTest.cpp - GGUF tokenizer to HF files tests ---------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Checks exportHFTokenizer / exportGgufTokenizerFiles: the tokenizer.json
// written for the bundled SmolLM2 GGUF (../shared/models/smollm2-135m via
// QC_SHARED_DIR) equals, as JSON values, the vocabulary, merges, added
// tokens and pre-tokenizer of the tokenizer.json Hugging Face publishes for
// the same model, and, loaded by qc, gives the goldens' ids and the GGUF
// tokenizer's ids; a hand-built GGUF file with a SentencePiece ("llama")
// vocabulary round-trips to the ids `tokenizers` computed for the
// equivalent tokenizer.json (test/data/tokenizers/expected.json); every
// other pre-tokenizer name is exported and compared with the GGUF
// tokenizer; what cannot be written exactly is refused by key.
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/TokenizerExport.h"

#include "GgufBuilder.h"
#include "TestUtil.h"

#include "qc/runtime/Json.h"

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <map>

using namespace qc;

namespace {

const std::string kShared = QC_SHARED_DIR;
const std::string kSmolDir = kShared + "/models/smollm2-135m";
const std::string kSmolGguf = kSmolDir + "/SmolLM2-135M-Instruct.Q4_1.gguf";
const std::string kValidHead = kShared + "/data/tinystories/valid_head.txt";
const std::string kDataDir = QC_TOKENIZER_TEST_DATA;

std::string readFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  return std::string(std::istreambuf_iterator<char>(in),
                     std::istreambuf_iterator<char>());
}

json::Value parseJson(const std::string &text, const std::string &what) {
  json::Value v;
  Status s = json::parse(text, v);
  EXPECT_TRUE(s.isOk()) << what << ": " << s.message();
  return v;
}

std::vector<int> idsOf(const json::Value &arr) {
  std::vector<int> ids;
  for (const json::Value &x : arr.asArray())
    ids.push_back(static_cast<int>(x.asInt64()));
  return ids;
}

std::vector<int> enc(const TextTokenizer &t, const std::string &text,
                     bool addSpecial = false) {
  std::vector<int> ids;
  Status s = t.encode(text, addSpecial, ids);
  EXPECT_TRUE(s.isOk()) << s.message();
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

/// The vocabulary as an ordered map: JSON objects are equal whatever the
/// order of their members.
std::map<std::string, int64_t> vocabMap(const json::Value &v) {
  std::map<std::string, int64_t> m;
  for (const auto &[k, id] : v.asObject())
    m[k] = id.asInt64();
  return m;
}

/// Writes `files` into `dir`.
void writeFiles(const std::vector<NamedFile> &files, const std::string &dir) {
  for (const NamedFile &f : files) {
    std::ofstream out(dir + "/" + f.name, std::ios::binary);
    out << f.bytes;
    ASSERT_TRUE(out.good()) << f.name;
  }
}

const NamedFile *findFile(const std::vector<NamedFile> &files,
                          const std::string &name) {
  for (const NamedFile &f : files)
    if (f.name == name)
      return &f;
  return nullptr;
}

std::unique_ptr<TextTokenizer> loadOk(const std::string &source) {
  std::unique_ptr<TextTokenizer> t;
  Status s = loadTokenizer(source, t);
  EXPECT_TRUE(s.isOk()) << s.message();
  return t;
}

/// The SmolLM2 GGUF's tokenizer exported into a temporary folder (once).
class SmolExport : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    dir = new test::TempDir("qc_tokexport_");
    files = new std::vector<NamedFile>();
    Status s = exportGgufTokenizerFiles(kSmolGguf, *files);
    ASSERT_TRUE(s.isOk()) << s.message();
    writeFiles(*files, dir->path);
  }
  static void TearDownTestSuite() {
    delete dir;
    delete files;
  }
  static test::TempDir *dir;
  static std::vector<NamedFile> *files;
};
test::TempDir *SmolExport::dir = nullptr;
std::vector<NamedFile> *SmolExport::files = nullptr;

TEST_F(SmolExport, WritesTheFourFiles) {
  EXPECT_EQ(dir->list(), (std::vector<std::string>{"generation_config.json",
                                                   "special_tokens_map.json",
                                                   "tokenizer.json",
                                                   "tokenizer_config.json"}));
}

TEST_F(SmolExport, StructureEqualsHuggingFacesFile) {
  json::Value got = parseJson(readFile(dir->file("tokenizer.json")), "got");
  json::Value want =
      parseJson(readFile(kSmolDir + "/tokenizer.json"), "tokenizer.json");
  const json::Value *gm = got.find("model"), *wm = want.find("model");
  ASSERT_TRUE(gm && wm);
  EXPECT_EQ(vocabMap(*gm->find("vocab")), vocabMap(*wm->find("vocab")));
  EXPECT_TRUE(*gm->find("merges") == *wm->find("merges"));
  EXPECT_EQ(gm->find("merges")->asArray().size(), 48900u);
  for (const char *key : {"type", "byte_fallback", "ignore_merges",
                          "continuing_subword_prefix", "end_of_word_suffix"})
    EXPECT_TRUE(*gm->find(key) == *wm->find(key)) << key;
  for (const char *key : {"added_tokens", "normalizer", "pre_tokenizer",
                          "post_processor", "decoder"})
    EXPECT_TRUE(*got.find(key) == *want.find(key))
        << key << ": " << json::write(*got.find(key)).substr(0, 400) << "\nvs "
        << json::write(*want.find(key)).substr(0, 400);
}

TEST_F(SmolExport, ConfigFilesMatchTheModel) {
  json::Value tc = parseJson(readFile(dir->file("tokenizer_config.json")),
                             "tokenizer_config.json");
  json::Value ref = parseJson(readFile(kSmolDir + "/tokenizer_config.json"),
                              "reference tokenizer_config.json");
  for (const char *key : {"add_bos_token", "bos_token", "eos_token",
                          "pad_token", "model_max_length", "chat_template"}) {
    ASSERT_TRUE(tc.find(key)) << key;
    EXPECT_TRUE(*tc.find(key) == *ref.find(key))
        << key << ": " << json::write(*tc.find(key)) << " vs "
        << json::write(*ref.find(key));
  }
  EXPECT_FALSE(tc.find("add_eos_token")->asBool());
  json::Value gc = parseJson(readFile(dir->file("generation_config.json")),
                             "generation_config.json");
  json::Value gref = parseJson(readFile(kSmolDir + "/generation_config.json"),
                               "reference generation_config.json");
  EXPECT_TRUE(*gc.find("bos_token_id") == *gref.find("bos_token_id"));
  EXPECT_TRUE(*gc.find("eos_token_id") == *gref.find("eos_token_id"));
}

TEST_F(SmolExport, IdsEqualGoldensAndTheGguf) {
  auto exported = loadOk(dir->path);
  auto gguf = loadOk(kSmolGguf);
  ASSERT_TRUE(exported && gguf);
  json::Value g = parseJson(readFile(kSmolDir + "/goldens.json"), "goldens");
  const json::Value *t = g.find("tokenizer");
  ASSERT_TRUE(t);
  EXPECT_EQ(exported->bosId(), t->find("bos_id")->asInt64());
  EXPECT_EQ(exported->eosId(), t->find("eos_id")->asInt64());
  EXPECT_EQ(exported->addsBos(), t->find("add_bos")->asBool());
  EXPECT_EQ(exported->addsEos(), gguf->addsEos());
  EXPECT_EQ(exported->vocabSize(), gguf->vocabSize());
  EXPECT_EQ(exported->specialIds(), gguf->specialIds());
  const auto &cases = t->find("cases")->asArray();
  ASSERT_EQ(cases.size(), 12u);
  for (const json::Value &c : cases) {
    const std::string &text = c.find("text")->asString();
    SCOPED_TRACE(json::quote(text));
    std::vector<int> want = idsOf(*c.find("ids"));
    EXPECT_EQ(enc(*exported, text), want);
    EXPECT_EQ(enc(*exported, text, true), enc(*gguf, text, true));
    EXPECT_EQ(exported->decode(want), text);
    EXPECT_EQ(exported->decode(want, true), gguf->decode(want, true));
  }
  const json::Value *v = t->find("valid_head_first_2000_chars");
  ASSERT_TRUE(v);
  std::string text = firstChars(readFile(kValidHead), 2000);
  std::vector<int> want = idsOf(*v->find("ids"));
  EXPECT_EQ(enc(*exported, text), want);
  EXPECT_EQ(enc(*gguf, text), want);
}

//===----------------------------------------------------------------------===//
// SentencePiece ("llama") vocabulary in a hand-built GGUF file
//===----------------------------------------------------------------------===//

/// The GGUF tokenizer metadata of test/data/tokenizers/sp_byte_fallback.json
/// (a Llama-2-style tokenizer.json): the same pieces, each merged piece
/// scored by its merge's rank (earlier merges score higher), byte tokens
/// typed as bytes, <unk> unknown, <s> and </s> control.
GgufTokenizerData spData() {
  json::Value doc = parseJson(readFile(kDataDir + "/sp_byte_fallback.json"),
                              "sp_byte_fallback.json");
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
        d.scores[i] = -static_cast<float>(r) - 1.f;
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

/// A GGUF file holding only `d`'s tokenizer metadata (and a chat template).
std::vector<uint8_t> ggufOf(const GgufTokenizerData &d) {
  test::GgufBuilder b;
  b.addString("general.architecture", "llama");
  b.addU32("llama.context_length", 4096);
  b.addString("tokenizer.ggml.model", d.model);
  if (!d.pre.empty())
    b.addString("tokenizer.ggml.pre", d.pre);
  b.addStringArray("tokenizer.ggml.tokens", d.tokens);
  if (!d.scores.empty())
    b.addF32Array("tokenizer.ggml.scores", d.scores);
  b.addI32Array("tokenizer.ggml.token_type", d.tokenTypes);
  if (!d.merges.empty())
    b.addStringArray("tokenizer.ggml.merges", d.merges);
  b.addU32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(d.bosId));
  b.addU32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(d.eosId));
  b.addU32("tokenizer.ggml.unknown_token_id", static_cast<uint32_t>(d.unkId));
  b.addString("tokenizer.chat_template", "{{ messages }}");
  return b.build();
}

TEST(SentencePieceExport, HandBuiltGgufRoundTrips) {
  test::TempDir dir("qc_tokexport_sp_");
  std::string gguf = dir.file("sp.gguf");
  {
    std::vector<uint8_t> bytes = ggufOf(spData());
    std::ofstream out(gguf, std::ios::binary);
    out.write(reinterpret_cast<const char *>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
  }
  std::vector<NamedFile> files;
  Status s = exportGgufTokenizerFiles(gguf, files);
  ASSERT_TRUE(s.isOk()) << s.message();
  std::string folder = dir.path + "/hf";
  ASSERT_TRUE(std::filesystem::create_directory(folder));
  writeFiles(files, folder);

  json::Value tj = parseJson(readFile(folder + "/tokenizer.json"), "tj");
  json::Value ref = parseJson(readFile(kDataDir + "/sp_byte_fallback.json"),
                              "sp_byte_fallback.json");
  // transformers' form of a SentencePiece BPE: the same normalizer, decoder
  // and BOS template as the hand-written Llama-style file (whose pair
  // template, unused for single texts, is spelled differently).
  for (const char *key :
       {"normalizer", "pre_tokenizer", "decoder", "added_tokens"})
    EXPECT_TRUE(*tj.find(key) == *ref.find(key))
        << key << ": " << json::write(*tj.find(key));
  for (const char *key : {"type", "single", "special_tokens"})
    EXPECT_TRUE(*tj.find("post_processor")->find(key) ==
                *ref.find("post_processor")->find(key))
        << key;
  EXPECT_TRUE(tj.find("model")->find("byte_fallback")->asBool());
  EXPECT_EQ(tj.find("model")->find("unk_token")->asString(), "<unk>");
  json::Value tc = parseJson(readFile(folder + "/tokenizer_config.json"), "");
  EXPECT_EQ(tc.find("chat_template")->asString(), "{{ messages }}");
  EXPECT_EQ(tc.find("model_max_length")->asInt64(), 4096);
  EXPECT_TRUE(tc.find("add_bos_token")->asBool());

  auto exported = loadOk(folder);
  auto fromGguf = loadOk(gguf);
  ASSERT_TRUE(exported && fromGguf);
  EXPECT_TRUE(exported->addsBos());
  EXPECT_EQ(exported->bosId(), 1);
  EXPECT_EQ(exported->eosId(), 2);
  json::Value e = parseJson(readFile(kDataDir + "/expected.json"), "");
  const auto &cases =
      e.find("tokenizers")->find("sp_byte_fallback")->find("cases")->asArray();
  ASSERT_GT(cases.size(), 10u);
  for (const json::Value &c : cases) {
    const std::string &text = c.find("text")->asString();
    SCOPED_TRACE(json::quote(text));
    std::vector<int> ids = idsOf(*c.find("ids"));
    EXPECT_EQ(enc(*exported, text), ids);
    EXPECT_EQ(enc(*exported, text, true), idsOf(*c.find("ids_special")));
    EXPECT_EQ(enc(*fromGguf, text, true), idsOf(*c.find("ids_special")));
    EXPECT_EQ(exported->decode(ids), c.find("decoded")->asString());
    EXPECT_EQ(exported->decode(ids, true), c.find("decoded_skip")->asString());
  }
}

TEST(SentencePieceExport, GgufWithoutTokenizerGivesNoFiles) {
  test::TempDir dir("qc_tokexport_none_");
  test::GgufBuilder b;
  b.addString("general.architecture", "llama");
  std::vector<uint8_t> bytes = b.build();
  {
    std::ofstream out(dir.file("none.gguf"), std::ios::binary);
    out.write(reinterpret_cast<const char *>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
  }
  std::vector<NamedFile> files = {{"stale", "x"}};
  Status s = exportGgufTokenizerFiles(dir.file("none.gguf"), files);
  ASSERT_TRUE(s.isOk()) << s.message();
  EXPECT_TRUE(files.empty());
  // A tokenizer that is there but broken is an error naming the key.
  b.addString("tokenizer.ggml.model", "gpt2");
  bytes = b.build();
  {
    std::ofstream out(dir.file("bad.gguf"), std::ios::binary);
    out.write(reinterpret_cast<const char *>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
  }
  s = exportGgufTokenizerFiles(dir.file("bad.gguf"), files);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("tokenizer.ggml.tokens"), std::string::npos)
      << s.message();
}

TEST(SentencePieceExport, NoSpacePrefixAndEos) {
  GgufTokenizerData d = spData();
  d.addSpacePrefix = false;
  d.addBos = false;
  d.addEos = true;
  std::vector<NamedFile> files;
  Status s = exportHFTokenizer(d, {}, "sp.gguf", files);
  ASSERT_TRUE(s.isOk()) << s.message();
  test::TempDir dir("qc_tokexport_sp2_");
  writeFiles(files, dir.path);
  auto exported = loadOk(dir.path);
  std::unique_ptr<TextTokenizer> gguf;
  ASSERT_TRUE(loadGgufTokenizer(d, "sp.gguf", gguf).isOk());
  ASSERT_TRUE(exported);
  EXPECT_FALSE(exported->addsBos());
  EXPECT_TRUE(exported->addsEos());
  for (std::string text :
       {"hello world", " two  spaces ", "café <s> x", "日本語", "a\nb"}) {
    EXPECT_EQ(enc(*exported, text, true), enc(*gguf, text, true)) << text;
    EXPECT_EQ(exported->decode(enc(*gguf, text)),
              gguf->decode(enc(*gguf, text)));
  }
  json::Value tc = parseJson(findFile(files, "tokenizer_config.json")->bytes,
                             "tokenizer_config.json");
  EXPECT_EQ(tc.find("model_max_length"), nullptr); // unknown: left out
}

//===----------------------------------------------------------------------===//
// Every pre-tokenizer name, on a byte-level vocabulary
//===----------------------------------------------------------------------===//

/// A small byte-level GGUF vocabulary: the 256 byte characters, a few
/// merges, control and user-defined tokens.
GgufTokenizerData byteLevelData(const std::string &pre) {
  // GPT-2's byte-to-unicode characters, in byte order.
  std::vector<std::string> chars;
  auto utf8 = [](uint32_t c) {
    std::string s;
    if (c < 0x80) {
      s += static_cast<char>(c);
    } else {
      s += static_cast<char>(0xC0 | (c >> 6));
      s += static_cast<char>(0x80 | (c & 0x3F));
    }
    return s;
  };
  int extra = 0;
  for (int b = 0; b < 256; ++b) {
    bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) ||
                     (b >= 0xAE && b <= 0xFF);
    chars.push_back(utf8(printable ? b : 256 + extra++));
  }
  GgufTokenizerData d;
  d.model = "gpt2";
  d.pre = pre;
  d.tokens = {"<|endoftext|>", "<|im_start|>", "<tool>"};
  d.tokens.insert(d.tokens.end(), chars.begin(), chars.end());
  const std::string sp = chars[' '];
  const char *const merges[][2] = {
      {"h", "e"}, {"l", "l"}, {"he", "ll"}, {"hell", "o"}, {"", "w"},
      {"o", "r"}, {"1", "2"}, {"12", "3"},  {"'", "s"},    {"", "t"}};
  for (auto &m : merges) {
    std::string a = m[0][0] ? m[0] : sp, b = m[1];
    d.merges.push_back(a + " " + b);
    if (std::find(d.tokens.begin(), d.tokens.end(), a + b) == d.tokens.end())
      d.tokens.push_back(a + b);
  }
  d.merges.push_back("h e"); // repeated: the first rank stays
  d.tokenTypes.assign(d.tokens.size(), 1);
  d.tokenTypes[0] = d.tokenTypes[1] = 3;
  d.tokenTypes[2] = 4;
  d.bosId = 1;
  d.eosId = 0;
  return d;
}

TEST(ByteLevelExport, EveryKnownPreNameEncodesAsTheGguf) {
  const std::vector<std::string> texts = {
      "hello world 12345 and 3.14159",
      "  two  spaces\tand\ttabs\n\nnew",
      "don't we'll I'm HELLO's",
      "café naïve 日本語 🙂 end",
      "<|im_start|>user<tool>hi<|endoftext|>\n",
      "\r\n\r\n  x  \n",
      "١٢٣ ½ Ⅻ 4567890"};
  for (std::string pre :
       {"", "default", "gpt2", "llama-bpe", "llama3", "dbrx", "qwen2", "smollm",
        "starcoder", "falcon3", "command-r"}) {
    SCOPED_TRACE(pre);
    GgufTokenizerData d = byteLevelData(pre);
    std::unique_ptr<TextTokenizer> gguf;
    ASSERT_TRUE(loadGgufTokenizer(d, "t.gguf", gguf).isOk());
    std::vector<NamedFile> files;
    Status s = exportHFTokenizer(d, {}, "t.gguf", files);
    ASSERT_TRUE(s.isOk()) << s.message();
    test::TempDir dir("qc_tokexport_bl_");
    writeFiles(files, dir.path);
    auto exported = loadOk(dir.path);
    ASSERT_TRUE(exported);
    EXPECT_EQ(exported->addsBos(), gguf->addsBos());
    EXPECT_EQ(exported->specialIds(), gguf->specialIds());
    EXPECT_FALSE(exported->isSpecial(2)); // user-defined: added, not special
    for (const std::string &text : texts) {
      SCOPED_TRACE(json::quote(text));
      std::vector<int> want = enc(*gguf, text, true);
      EXPECT_EQ(enc(*exported, text, true), want);
      EXPECT_EQ(exported->decode(want), gguf->decode(want));
    }
    // The repeated merge is written once.
    json::Value tj =
        parseJson(findFile(files, "tokenizer.json")->bytes, "tokenizer.json");
    EXPECT_EQ(tj.find("model")->find("merges")->asArray().size(),
              d.merges.size() - 1);
  }
}

//===----------------------------------------------------------------------===//
// Refusals
//===----------------------------------------------------------------------===//

std::string exportError(const GgufTokenizerData &d) {
  std::vector<NamedFile> files;
  Status s = exportHFTokenizer(d, {}, "bad.gguf", files);
  EXPECT_FALSE(s.isOk());
  return s.message();
}

TEST(TokenizerExportErrors, NameTheKey) {
  GgufTokenizerData d = byteLevelData("gpt2");
  d.pre = "deepseek-coder";
  std::string m = exportError(d);
  EXPECT_NE(m.find("bad.gguf"), std::string::npos) << m;
  EXPECT_NE(m.find("tokenizer.ggml.pre"), std::string::npos) << m;
  EXPECT_NE(m.find("deepseek-coder"), std::string::npos) << m;

  d = byteLevelData("gpt2");
  d.tokens.push_back("he"); // a second "he"
  d.tokenTypes.push_back(1);
  m = exportError(d);
  EXPECT_NE(m.find("tokenizer.ggml.tokens"), std::string::npos) << m;
  EXPECT_NE(m.find("appears twice"), std::string::npos) << m;

  GgufTokenizerData sp = spData();
  // Two mergeable pieces with one score: SentencePiece's tie-break is by
  // position, which a merge rank cannot express.
  int a = -1, b = -1;
  for (size_t i = 0; i < sp.tokens.size(); ++i)
    if (sp.scores[i] < 0)
      (a < 0 ? a : b) = static_cast<int>(i);
  ASSERT_GE(b, 0);
  sp.scores[b] = sp.scores[a];
  m = exportError(sp);
  EXPECT_NE(m.find("tokenizer.ggml.scores"), std::string::npos) << m;
  EXPECT_NE(m.find("same score"), std::string::npos) << m;

  sp = spData();
  sp.model = "bert";
  m = exportError(sp);
  EXPECT_NE(m.find("tokenizer.ggml.model"), std::string::npos) << m;
}

} // namespace
