//===- TokenizerTest.cpp - Tests for the llama2.c tokenizer -----*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Checks the tokenizer against the bundled tok512.bin and the golden
// generation in reference_stories260K.json (../shared/models/stories260K,
// via QC_SHARED_DIR). Expected ids were cross-checked with a transcription
// of llama2.c run.c's encode; the heap-based encoder is also compared
// against a literal C++ port of run.c's quadratic loop on random text, and
// hand-built tokenizer files exercise every load error.
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/Tokenizer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

using namespace qc;

namespace {

const std::string kModelDir =
    std::string(QC_SHARED_DIR) + "/models/stories260K";
const std::string kTokPath = kModelDir + "/tok512.bin";

/// The bundled tokenizer, loaded once for all tests.
const Tokenizer &tok512() {
  static Tokenizer tok;
  static bool loaded = false;
  if (!loaded) {
    Status s = Tokenizer::load(kTokPath, 512, tok);
    EXPECT_TRUE(s.isOk()) << s.message();
    loaded = true;
  }
  return tok;
}

std::vector<int> enc(const Tokenizer &t, const std::string &text,
                     bool bos = false, bool eos = false, bool dummy = true) {
  std::vector<int> ids;
  t.encode(text, bos, eos, ids, dummy);
  return ids;
}

/// A literal port of llama2.c run.c's `encode`: rescans every adjacent pair
/// after each merge. Quadratic, but obviously run.c, so it serves as the
/// oracle for the heap-based encoder.
std::vector<int> naiveEncode(const Tokenizer &t, const std::string &text,
                             bool bos, bool eos, bool dummy) {
  std::vector<int> toks;
  if (bos)
    toks.push_back(1);
  if (dummy && !text.empty()) {
    int sp = t.lookup(" ");
    toks.push_back(sp >= 0 ? sp : ' ' + 3);
  }
  std::string buf;
  for (size_t i = 0; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if ((c & 0xC0) != 0x80)
      buf.clear();
    buf.push_back(static_cast<char>(c));
    if (i + 1 < text.size() &&
        (static_cast<unsigned char>(text[i + 1]) & 0xC0) == 0x80 &&
        buf.size() < 4)
      continue;
    int id = t.lookup(buf);
    if (id != -1) {
      toks.push_back(id);
    } else {
      for (char b : buf)
        toks.push_back(static_cast<unsigned char>(b) + 3);
    }
    buf.clear();
  }
  while (true) {
    float bestScore = -1e10f;
    int bestId = -1, bestIdx = -1;
    for (size_t i = 0; i + 1 < toks.size(); ++i) {
      int id = t.lookup(t.piece(toks[i]) + t.piece(toks[i + 1]));
      if (id != -1 && t.score(id) > bestScore) {
        bestScore = t.score(id);
        bestId = id;
        bestIdx = static_cast<int>(i);
      }
    }
    if (bestIdx == -1)
      break;
    toks[bestIdx] = bestId;
    toks.erase(toks.begin() + bestIdx + 1);
  }
  if (eos)
    toks.push_back(2);
  return toks;
}

/// The 259 pieces every llama2.c vocabulary starts with.
std::vector<std::string> basePieces() {
  std::vector<std::string> p = {"<unk>", "\n<s>\n", "\n</s>\n"};
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof(buf), "<0x%02X>", b);
    p.push_back(buf);
  }
  return p;
}

/// Serialises pieces/scores in tokenizer.bin layout.
std::string serialize(const std::vector<std::string> &pieces,
                      const std::vector<float> &scores, int32_t maxLen) {
  std::string out(reinterpret_cast<const char *>(&maxLen), 4);
  for (size_t i = 0; i < pieces.size(); ++i) {
    int32_t len = static_cast<int32_t>(pieces[i].size());
    out.append(reinterpret_cast<const char *>(&scores[i]), 4);
    out.append(reinterpret_cast<const char *>(&len), 4);
    out += pieces[i];
  }
  return out;
}

std::string writeTemp(const std::string &name, const std::string &data) {
  std::string path = ::testing::TempDir() + "qc_tok_" + name + ".bin";
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  return path;
}

/// Loads `data` as a tokenizer file and returns the error ("" on success),
/// checking that errors start with the path.
std::string loadError(const std::string &name, const std::string &data,
                      int64_t vocab) {
  std::string path = writeTemp(name, data);
  Tokenizer t;
  Status s = Tokenizer::load(path, vocab, t);
  std::remove(path.c_str());
  if (s.isOk())
    return "";
  EXPECT_EQ(s.message().rfind(path + ": ", 0), 0u) << s.message();
  return s.message();
}

/// Reads the integer array `key` from the golden JSON without a JSON
/// library (the file is machine-written: `"key": [ 1, 2, ... ]`).
std::vector<int> readJsonIntArray(const std::string &path,
                                  const std::string &key) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  std::vector<int> ids;
  size_t k = s.find("\"" + key + "\"");
  if (k == std::string::npos)
    return ids;
  size_t open = s.find('[', k), close = s.find(']', k);
  std::stringstream nums(s.substr(open + 1, close - open - 1));
  std::string item;
  while (std::getline(nums, item, ','))
    ids.push_back(std::stoi(item));
  return ids;
}

} // namespace

TEST(TokenizerTest, LoadsTok512) {
  const Tokenizer &t = tok512();
  ASSERT_EQ(t.size(), 512);
  EXPECT_EQ(t.maxTokenLength(), 7);
  EXPECT_EQ(t.piece(0), "<unk>");
  EXPECT_EQ(t.piece(1), "\n<s>\n");
  EXPECT_EQ(t.piece(2), "\n</s>\n");
  EXPECT_EQ(t.piece(13), "<0x0A>");
  EXPECT_EQ(t.piece(258), "<0xFF>");
  EXPECT_EQ(t.piece(260), "he");
  EXPECT_EQ(t.score(260), -1.0f);
  EXPECT_EQ(t.piece(286), " was");
  EXPECT_EQ(t.lookup(" "), 410);
  EXPECT_EQ(t.lookup(" was"), 286);
  EXPECT_EQ(t.lookup("no such piece"), -1);
}

TEST(TokenizerTest, EncodesLikeRunC) {
  const Tokenizer &t = tok512();
  // Ids cross-checked with a transcription of run.c's encode.
  EXPECT_EQ(enc(t, "Once upon a time"), (std::vector<int>{403, 407, 261, 378}));
  EXPECT_EQ(enc(t, "Once upon a time", true, true, false),
            (std::vector<int>{1, 441, 416, 331, 407, 261, 378, 2}));
  EXPECT_EQ(enc(t, "Hello, world!"),
            (std::vector<int>{346, 306, 414, 432, 263, 304, 341, 443}));
  EXPECT_EQ(enc(t, "a  b"), (std::vector<int>{261, 410, 268}));
  EXPECT_EQ(enc(t, "Lily"), (std::vector<int>{317}));
  EXPECT_EQ(enc(t, "Lily", false, false, false), (std::vector<int>{438, 310}));
  EXPECT_EQ(enc(t, "h\xC3\xA9llo \xE4\xB8\x96\xE7\x95\x8C \xF0\x9F\x99\x82"),
            (std::vector<int>{270, 485, 306, 414, 410, 231, 187, 153, 234, 152,
                              143, 410, 243, 162, 156, 133}));
  // Empty text: no dummy prefix, only the requested control tokens.
  EXPECT_EQ(enc(t, ""), std::vector<int>{});
  EXPECT_EQ(enc(t, "", true, true), (std::vector<int>{1, 2}));
}

TEST(TokenizerTest, ByteFallback) {
  const Tokenizer &t = tok512();
  // U+4E16 is not a piece: its three UTF-8 bytes E4 B8 96 become b + 3.
  EXPECT_EQ(enc(t, "\xE4\xB8\x96", false, false, false),
            (std::vector<int>{0xE4 + 3, 0xB8 + 3, 0x96 + 3}));
  EXPECT_EQ(enc(t, "\n", false, false, false), (std::vector<int>{13}));
  EXPECT_EQ(enc(t, "\xFF", false, false, false), (std::vector<int>{258}));
  // Stray continuation bytes group together (run.c) and fall back per byte.
  EXPECT_EQ(enc(t, "\x80\x80", false, false, false),
            (std::vector<int>{0x80 + 3, 0x80 + 3}));
  // A NUL byte is encoded, not treated as the end of the text.
  EXPECT_EQ(enc(t, std::string("a\0", 2), false, false, false),
            (std::vector<int>{t.lookup("a"), 3}));
}

TEST(TokenizerTest, RoundTrips) {
  const Tokenizer &t = tok512();
  const std::string texts[] = {
      "Once upon a time, there was a little girl named Lily.",
      "She said, \"Let's go!\"\nThe end.",
      "  leading and trailing spaces  ",
      "caf\xC3\xA9 \xE4\xB8\x96\xE7\x95\x8C \xF0\x9F\x99\x82 \x01\x7F",
      "tabs\tand\r\nCRLF",
      "x",
  };
  for (const std::string &text : texts) {
    // After BOS the decoder drops exactly the dummy-prefix space.
    EXPECT_EQ(t.decode(enc(t, text, true, true)), text);
    // Without BOS the dummy prefix stays visible.
    EXPECT_EQ(t.decode(enc(t, text)), " " + text);
    EXPECT_EQ(t.decode(enc(t, text, false, false, false)), text);
  }
}

TEST(TokenizerTest, DecodePiece) {
  const Tokenizer &t = tok512();
  EXPECT_EQ(t.decodePiece(1, 286), "was");  // space stripped after BOS
  EXPECT_EQ(t.decodePiece(5, 286), " was"); // kept elsewhere
  EXPECT_EQ(t.decodePiece(1, 13), "\n");
  EXPECT_EQ(t.decodePiece(0, 3), std::string(1, '\0'));
  EXPECT_EQ(t.decodePiece(0, 258), "\xFF");
  EXPECT_EQ(t.decodePiece(0, 1), "\n<s>\n");
  EXPECT_EQ(t.decodePiece(0, 512), "");
  EXPECT_EQ(t.decodePiece(0, -1), "");
  EXPECT_EQ(t.decode({1, 403, 407, 2}), "Once upon");
}

TEST(TokenizerTest, GoldenGenerationDecodes) {
  const Tokenizer &t = tok512();
  std::vector<int> ids = readJsonIntArray(
      kModelDir + "/reference_stories260K.json", "greedy_from_bos_200");
  ASSERT_EQ(ids.size(), 201u); // BOS + 200 generated tokens
  ASSERT_EQ(ids[0], 1);
  std::string text = t.decode(ids);
  EXPECT_EQ(text.rfind("Once upon a time, there was a little girl named Lily. "
                       "She loved to play outside in the park.",
                       0),
            0u)
      << text;
  EXPECT_EQ(text.size(), 464u);
  // The model emits canonical tokenizations: re-encoding gives the ids back.
  EXPECT_EQ(enc(t, text), std::vector<int>(ids.begin() + 1, ids.end()));
}

TEST(TokenizerTest, MatchesNaiveRunCOnRandomText) {
  const Tokenizer &t = tok512();
  // clang-format off
  const std::vector<std::string> fragments = {
      "a", "e", "t", "h", "o", " ", " ", "  ", "the", " Once", "Lily", ",",
      ".", "\n", "\n\n", "\xC3\xA9", "\xE4\xB8\x96", "\xF0\x9F\x99\x82",
      "\xFF", "\x80", "\xC3", "ing", " was", "'s", "!", "Tom", "X", "q"};
  // clang-format on
  std::mt19937 rng(12345);
  for (int iter = 0; iter < 400; ++iter) {
    std::string text;
    int n = static_cast<int>(rng() % 40);
    for (int i = 0; i < n; ++i)
      text += fragments[rng() % fragments.size()];
    bool bos = rng() & 1, eos = rng() & 1, dummy = rng() & 1;
    ASSERT_EQ(enc(t, text, bos, eos, dummy),
              naiveEncode(t, text, bos, eos, dummy))
        << "text: '" << text << "'";
  }
}

TEST(TokenizerTest, TiesScoreGatingAndNaiveAgreementOnCustomVocab) {
  std::vector<std::string> pieces = basePieces();
  std::vector<float> scores(pieces.size(), 0.0f);
  auto add = [&](const std::string &p, float s) {
    pieces.push_back(p);
    scores.push_back(s);
  };
  add("a", 0);
  add("b", 0);
  add("c", 0);
  add("ab", -1); // ties with "bc": the leftmost pair must win
  add("bc", -1);
  add("cab", -3); // only reachable through "ca" + "b"
  add("ca", -0.5f);
  add("x", 0);
  add("y", 0);
  add("xy", -1e10f); // at run.c's floor: never merged
  add("yx", -9e9f);  // just above it: merged
  add("z", 0);
  add("zz", std::numeric_limits<float>::quiet_NaN()); // NaN never wins
  Tokenizer t;
  Status s = Tokenizer::create(pieces, scores, t);
  ASSERT_TRUE(s.isOk()) << s.message();
  const int a = t.lookup("a"), b = t.lookup("b"), c = t.lookup("c");
  const int ab = t.lookup("ab"), bc = t.lookup("bc"), ca = t.lookup("ca");
  const int cab = t.lookup("cab");
  const int x = t.lookup("x"), y = t.lookup("y"), yx = t.lookup("yx");
  const int z = t.lookup("z");
  // No " " piece: the dummy prefix falls back to byte 0x20.
  EXPECT_EQ(enc(t, "a"), (std::vector<int>{0x20 + 3, a}));
  // "ab" and "bc" tie at -1: the leftmost pair merges, as in run.c.
  EXPECT_EQ(enc(t, "abc", false, false, false), (std::vector<int>{ab, c}));
  // "ca" (-0.5) goes first; then "bc" (-1) beats "cab" (-3).
  EXPECT_EQ(enc(t, "cabc", false, false, false), (std::vector<int>{ca, bc}));
  EXPECT_EQ(enc(t, "abca", false, false, false), (std::vector<int>{ab, ca}));
  // A merge that only becomes possible after another one ("ca" then "cab").
  EXPECT_EQ(enc(t, "bcab", false, false, false), (std::vector<int>{b, cab}));
  EXPECT_EQ(enc(t, "xy", false, false, false), (std::vector<int>{x, y}));
  EXPECT_EQ(enc(t, "yx", false, false, false), (std::vector<int>{yx}));
  EXPECT_EQ(enc(t, "zz", false, false, false), (std::vector<int>{z, z}));
  EXPECT_EQ(enc(t, "ac", false, false, false), (std::vector<int>{a, c}));

  const char alphabet[] = "abcxyz ";
  std::mt19937 rng(7);
  for (int iter = 0; iter < 500; ++iter) {
    std::string text;
    int n = static_cast<int>(rng() % 24);
    for (int i = 0; i < n; ++i)
      text += alphabet[rng() % (sizeof(alphabet) - 1)];
    ASSERT_EQ(enc(t, text, false, false, false),
              naiveEncode(t, text, false, false, false))
        << "text: '" << text << "'";
  }
}

TEST(TokenizerTest, LongInputEncodesQuickly) {
  const Tokenizer &t = tok512();
  // One long "word" of mergeable text: run.c's rescan loop costs O(n^2)
  // pair lookups on it. A 3 KB prefix is checked against the naive port,
  // then 600 KB must still encode in (much) less than two seconds.
  const std::string unit = "thelittlegirlhadaredball";
  std::string small;
  while (small.size() < 3000)
    small += unit;
  EXPECT_EQ(enc(t, small), naiveEncode(t, small, false, false, true));

  std::string text;
  while (text.size() < 600000)
    text += unit;
  auto start = std::chrono::steady_clock::now();
  std::vector<int> ids = enc(t, text);
  double sec =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  EXPECT_LT(sec, 2.0);
  EXPECT_LT(ids.size(), text.size() * 6 / 10);
  std::printf("[          ] 600 KB single word encoded in %.3f s\n", sec);
  EXPECT_EQ(t.decode(ids), " " + text);
}

TEST(TokenizerTest, LoadErrorsNameFileAndEntry) {
  std::vector<std::string> pieces = basePieces();
  std::vector<float> scores(pieces.size(), 0.0f);
  pieces.push_back(" ");
  scores.push_back(-1.0f);
  const int64_t vocab = static_cast<int64_t>(pieces.size()); // 260
  const std::string good = serialize(pieces, scores, 6);
  EXPECT_EQ(loadError("good", good, vocab), "");

  std::string msg = loadError("trunc", good.substr(0, good.size() - 3), vocab);
  EXPECT_NE(msg.find("tokenizer entry 259"), std::string::npos) << msg;
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;

  msg = loadError("trailing", good + "junk", vocab);
  EXPECT_NE(msg.find("4 trailing bytes after 260"), std::string::npos) << msg;
  msg = loadError("fewer", good, vocab - 1);
  EXPECT_NE(msg.find("trailing bytes"), std::string::npos) << msg;
  msg = loadError("more", good, vocab + 1);
  EXPECT_NE(msg.find("tokenizer entry 260"), std::string::npos) << msg;

  // The real tok512.bin cut inside entry 214 (entries 3.. take 14 bytes
  // from offset 44, so entry 214 starts at byte 2998).
  std::ifstream real(kTokPath, std::ios::binary);
  std::string realBytes((std::istreambuf_iterator<char>(real)),
                        std::istreambuf_iterator<char>());
  ASSERT_EQ(realBytes.size(), 6227u);
  msg = loadError("realtrunc", realBytes.substr(0, 3000), 512);
  EXPECT_NE(msg.find("tokenizer entry 214 (at byte offset 2998): truncated"),
            std::string::npos)
      << msg;

  // Entry 100's length field set to -1 (entries 3.. are 6-byte pieces).
  std::string neg = good;
  // Header 4, then <unk> 8+5, BOS 8+5, EOS 8+6, then 14 bytes per entry.
  const size_t entry100 = 4 + 13 + 13 + 14 + (100 - 3) * 14;
  int32_t minus1 = -1;
  std::memcpy(&neg[entry100 + 4], &minus1, 4);
  msg = loadError("neg", neg, vocab);
  EXPECT_NE(msg.find("tokenizer entry 100"), std::string::npos) << msg;
  EXPECT_NE(msg.find("negative piece length -1"), std::string::npos) << msg;

  // A length beyond max_token_length (would overflow run.c's buffer).
  std::string huge = good;
  int32_t big = 1 << 30;
  std::memcpy(&huge[entry100 + 4], &big, 4);
  msg = loadError("huge", huge, vocab);
  EXPECT_NE(msg.find("tokenizer entry 100"), std::string::npos) << msg;
  EXPECT_NE(msg.find("exceeds the header's max_token_length 6"),
            std::string::npos)
      << msg;

  msg = loadError("maxlen", serialize(pieces, scores, -2), vocab);
  EXPECT_NE(msg.find("max_token_length -2"), std::string::npos) << msg;
  msg = loadError("short", "ab", vocab);
  EXPECT_NE(msg.find("too small"), std::string::npos) << msg;
  msg = loadError("smallvocab", good, 100);
  EXPECT_NE(msg.find("requested vocab size 100"), std::string::npos) << msg;

  std::vector<std::string> badBytes = pieces;
  badBytes[13] = "\n";
  msg = loadError("bytes", serialize(badBytes, scores, 6), vocab);
  EXPECT_NE(msg.find("tokenizer entry 13 is '\n' but byte fallback needs "
                     "'<0x0A>'"),
            std::string::npos)
      << msg;

  Tokenizer t;
  const std::string missing = ::testing::TempDir() + "qc_no_such_tok.bin";
  Status s = Tokenizer::load(missing, 512, t);
  ASSERT_FALSE(s.isOk());
  EXPECT_EQ(s.message().rfind(missing + ": cannot open", 0), 0u) << s.message();
  EXPECT_EQ(t.size(), 0); // untouched on failure
  s = Tokenizer::load(::testing::TempDir(), 512, t);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("not a regular file"), std::string::npos)
      << s.message();
}
