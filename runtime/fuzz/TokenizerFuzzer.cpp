//===- TokenizerFuzzer.cpp - libFuzzer target for the tokenizers ----------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Two untrusted inputs meet the tokenizer: tokenizer.json files and the text
// to encode. The first input byte picks which one the rest is:
//  - even: a tokenizer.json; when it loads, a fixed text is encoded and
//    decoded with it (regexes, merges and added tokens from the input run);
//  - odd: text (any bytes, invalid UTF-8 included) encoded with two fixed
//    tokenizers, a byte-level one whose vocabulary holds every byte, and a
//    SentencePiece-style one with byte fallback. Both must give the input's
//    bytes back through decodePiece(), which any lost or reordered byte
//    would break.
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/TextTokenizer.h"

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

namespace {

/// A byte-level BPE tokenizer.json over the 256 byte characters with a few
/// merges, the GPT-2 regex and one special token.
std::string byteLevelJson() {
  std::string vocab;
  // GPT-2's byte-to-unicode alphabet, as JSON escapes.
  int extra = 0;
  for (int b = 0; b < 256; ++b) {
    bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) ||
                     (b >= 0xAE && b <= 0xFF);
    int cp = printable ? b : 256 + extra++;
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%s\"\\u%04x\":%d", b ? "," : "", cp, b);
    vocab += buf;
  }
  vocab += ",\"\\u0120t\":256,\"he\":257,\"\\u0120the\":258,\"ab\":259";
  return "{\"version\":\"1.0\",\"added_tokens\":[{\"id\":260,\"content\":"
         "\"<|x|>\",\"special\":true}],\"normalizer\":null,"
         "\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":["
         "{\"type\":\"Digits\",\"individual_digits\":true},"
         "{\"type\":\"ByteLevel\",\"add_prefix_space\":false}]},"
         "\"post_processor\":null,\"decoder\":{\"type\":\"ByteLevel\"},"
         "\"model\":{\"type\":\"BPE\",\"vocab\":{" +
         vocab +
         "},\"merges\":[\"\\u0120 t\",\"h e\",\"\\u0120t he\",\"a b\"]}}";
}

/// A SentencePiece-style tokenizer.json: "▁" normalizer, byte fallback.
std::string sentencePieceJson() {
  std::string vocab = "\"<unk>\":0,\"<s>\":1,\"</s>\":2";
  for (int b = 0; b < 256; ++b) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), ",\"<0x%02X>\":%d", b, b + 3);
    vocab += buf;
  }
  vocab += ",\"\\u2581\":259,\"a\":260,\"\\u2581a\":261";
  return "{\"version\":\"1.0\",\"added_tokens\":[{\"id\":1,\"content\":"
         "\"<s>\",\"special\":true}],\"normalizer\":{\"type\":\"Sequence\","
         "\"normalizers\":[{\"type\":\"Prepend\",\"prepend\":\"\\u2581\"},"
         "{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":"
         "\"\\u2581\"}]},\"pre_tokenizer\":null,\"post_processor\":null,"
         "\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":"
         "\"Replace\",\"pattern\":{\"String\":\"\\u2581\"},\"content\":\" \"},"
         "{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"},{\"type\":\"Strip\","
         "\"content\":\" \",\"start\":1,\"stop\":0}]},\"model\":{\"type\":"
         "\"BPE\",\"unk_token\":\"<unk>\",\"byte_fallback\":true,\"vocab\":{" +
         vocab + "},\"merges\":[[\"\\u2581\",\"a\"]]}}";
}

const qc::TextTokenizer &fixed(int which) {
  static std::unique_ptr<qc::TextTokenizer> toks[2];
  if (!toks[which]) {
    qc::Status s =
        qc::loadHFTokenizerJson(which ? sentencePieceJson() : byteLevelJson(),
                                "", "", "fixed", toks[which]);
    if (!s)
      std::abort(); // the fixed tokenizers are part of this target
  }
  return *toks[which];
}

/// Concatenated decodePiece() of `ids`.
std::string streamed(const qc::TextTokenizer &t, const std::vector<int> &ids) {
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i)
    s += t.decodePiece(i ? ids[i - 1] : -1, ids[i]);
  return s;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size == 0)
    return 0;
  std::string rest(reinterpret_cast<const char *>(data) + 1, size - 1);
  std::vector<int> ids;
  if ((data[0] & 1) == 0) {
    std::unique_ptr<qc::TextTokenizer> t;
    if (!qc::loadHFTokenizerJson(rest, "", "", "fuzz.json", t))
      return 0;
    if (t->encode("Hello world 123 \xE6\x97\xA5\xFF <s>", true, ids)) {
      (void)t->decode(ids);
      (void)t->decode(ids, true);
      (void)streamed(*t, ids);
    }
    return 0;
  }
  // Text: byte-level gives every byte back unless the text spells the
  // special token (which decodes to its own text, so still the same bytes).
  const qc::TextTokenizer &bl = fixed(0);
  if (!bl.encode(rest, false, ids))
    std::abort();
  if (streamed(bl, ids) != rest)
    std::abort();
  (void)bl.decode(ids);
  // SentencePiece with byte fallback: the text comes back with the
  // normalizer's changes undone, except that a "▁" in the input comes back
  // as a space and the leading space of the first piece is stripped.
  const qc::TextTokenizer &sp = fixed(1);
  if (!sp.encode(rest, true, ids))
    std::abort();
  (void)sp.decode(ids);
  (void)streamed(sp, ids);
  return 0;
}
