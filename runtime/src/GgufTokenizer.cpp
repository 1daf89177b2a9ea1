//===- GgufTokenizer.cpp - The tokenizer embedded in GGUF files -----------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Builds the engine of TokenizerPipeline.h from GGUF's tokenizer.ggml.*
// metadata the way llama.cpp interprets it: "gpt2" is byte-level BPE whose
// pre-tokenizer is named by tokenizer.ggml.pre (each name stands for a list
// of split regexes applied in turn, as in llama.cpp's llama-vocab.cpp),
// "llama" is SentencePiece with scores, a space prefix and <0xHH> byte
// fallback. Control, user-defined and unknown-type tokens are matched in the
// text as added tokens. A pre-tokenizer name this file does not know is
// refused by name: guessing a regex would give plausible but wrong ids.
//
//===----------------------------------------------------------------------===//

#include "TokenizerPipeline.h"

#include "qc/runtime/Json.h"

#include <cstring>

namespace qc {
namespace {

using tok::AddedToken;
using tok::DecStep;
using tok::NormStep;
using tok::Pipeline;
using tok::PreStep;
using tok::Regex;
using tok::SplitBehavior;

/// llama.cpp's token types.
enum TokenType : int32_t {
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6
};

} // namespace

namespace tok {
namespace {

/// GPT-2's split regex; see kGgufGpt2Regex.
const char *const kGpt2 =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|"
    "\\s+(?!\\S)";
/// Llama 3's split regex (case-insensitive contractions spelled out).
const char *const kLlama3 =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|"
    "[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/// Qwen 2's split regex: as Llama 3's but one digit per pre-token.
const char *const kQwen2 =
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|"
    "[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

} // namespace

const char *const kGgufGpt2Regex = kGpt2;

bool ggufPreSpec(const std::string &name, GgufPreSpec &out) {
  out = GgufPreSpec();
  if (name.empty() || name == "default" || name == "gpt2" || name == "mpt" ||
      name == "olmo" || name == "jais" || name == "gpt-2") {
    out.regexes = {kGpt2};
    return true;
  }
  if (name == "llama3" || name == "llama-v3" || name == "llama-bpe" ||
      name == "falcon3" || name == "pixtral") {
    out.regexes = {kLlama3};
    out.ignoreMerges = true;
    out.addBos = true;
    return true;
  }
  if (name == "dbrx" || name == "smaug-bpe") {
    out.regexes = {kLlama3};
    return true;
  }
  if (name == "qwen2" || name == "stablelm2" || name == "hunyuan") {
    out.regexes = {kQwen2};
    return true;
  }
  if (name == "smollm" || name == "starcoder" || name == "refact" ||
      name == "command-r" || name == "codeshell" || name == "exaone" ||
      name == "minerva-7b") {
    out.regexes = {"\\p{N}", kGpt2};
    return true;
  }
  return false;
}

const char *const kGgufKnownPre =
    "default, gpt2, mpt, olmo, jais, llama3, llama-bpe, falcon3, pixtral, "
    "dbrx, smaug-bpe, qwen2, stablelm2, hunyuan, smollm, starcoder, refact, "
    "command-r, codeshell, exaone, minerva-7b";

} // namespace tok

Status loadGgufTokenizer(const GgufTokenizerData &d,
                         const std::string &sourceName,
                         std::unique_ptr<TextTokenizer> &out) {
  auto fail = [&](const std::string &key, const std::string &what) {
    return Status::error(sourceName + ": metadata key '" + key + "': " + what);
  };
  const size_t n = d.tokens.size();
  if (n == 0)
    return fail("tokenizer.ggml.tokens", "missing or empty");
  if (n > (size_t(1) << 24))
    return fail("tokenizer.ggml.tokens",
                std::to_string(n) + " tokens is more than supported (2^24)");
  if (!d.scores.empty() && d.scores.size() != n)
    return fail("tokenizer.ggml.scores", std::to_string(d.scores.size()) +
                                             " scores for " +
                                             std::to_string(n) + " tokens");
  if (!d.tokenTypes.empty() && d.tokenTypes.size() != n)
    return fail("tokenizer.ggml.token_type",
                std::to_string(d.tokenTypes.size()) + " types for " +
                    std::to_string(n) + " tokens");
  const std::pair<const char *, int64_t> ids[] = {
      {"tokenizer.ggml.bos_token_id", d.bosId},
      {"tokenizer.ggml.eos_token_id", d.eosId},
      {"tokenizer.ggml.unknown_token_id", d.unkId},
      {"tokenizer.ggml.padding_token_id", d.padId}};
  for (auto &[key, id] : ids)
    if (id < -1 || id >= static_cast<int64_t>(n))
      return fail(key, std::to_string(id) + " is outside the " +
                           std::to_string(n) + " tokens");

  auto p = std::make_unique<Pipeline>();
  tok::Model &m = p->model;
  m.pieces = d.tokens;
  m.index.reserve(n * 2);
  // llama.cpp's token -> id map keeps the last id of a repeated token.
  for (size_t i = 0; i < n; ++i)
    m.index[d.tokens[i]] = static_cast<int>(i);
  for (size_t i = 0; i < d.tokenTypes.size(); ++i) {
    int32_t t = d.tokenTypes[i];
    if (t < kNormal || t > kByte)
      return fail("tokenizer.ggml.token_type", "token " + std::to_string(i) +
                                                   " has unknown type " +
                                                   std::to_string(t));
    if (t == kUnknown || t == kControl || t == kUserDefined) {
      AddedToken a;
      a.content = d.tokens[i];
      a.id = static_cast<int>(i);
      a.special = t != kUserDefined;
      p->added.push_back(std::move(a));
    }
  }
  m.unkId = static_cast<int>(d.unkId);
  p->bos = static_cast<int>(d.bosId);
  p->eos = static_cast<int>(d.eosId);

  bool addBos = false;
  if (d.model == "gpt2") {
    tok::GgufPreSpec spec;
    if (!tok::ggufPreSpec(d.pre, spec))
      return fail("tokenizer.ggml.pre",
                  json::quote(d.pre) +
                      " is not supported (known: " + tok::kGgufKnownPre + ")");
    for (const char *re : spec.regexes) {
      PreStep s{};
      s.kind = PreStep::Split;
      s.behavior = SplitBehavior::Isolated;
      QC_RETURN_IF_ERROR(Regex::compile(re, s.regex));
      p->preTokenizer.push_back(std::move(s));
    }
    PreStep bl{};
    bl.kind = PreStep::ByteLevel;
    bl.useRegex = false;
    p->preTokenizer.push_back(std::move(bl));
    m.kind = tok::Model::Bpe;
    m.ignoreMerges = spec.ignoreMerges;
    if (d.merges.empty())
      return fail("tokenizer.ggml.merges", "missing (required for gpt2)");
    m.merges.reserve(d.merges.size() * 2);
    for (size_t i = 0; i < d.merges.size(); ++i) {
      const std::string &s = d.merges[i];
      // llama.cpp splits at the first space after the first byte.
      size_t sp = s.size() > 1 ? s.find(' ', 1) : std::string::npos;
      std::string where = "merge " + std::to_string(i) + " " + json::quote(s);
      if (sp == std::string::npos)
        return fail("tokenizer.ggml.merges", where + " has no space");
      std::string a = s.substr(0, sp), b = s.substr(sp + 1);
      auto ia = m.index.find(a), ib = m.index.find(b), im = m.index.find(a + b);
      if (ia == m.index.end() || ib == m.index.end())
        return fail("tokenizer.ggml.merges",
                    where + " names a token that is not in the vocabulary");
      if (im == m.index.end())
        return fail("tokenizer.ggml.merges",
                    where + ": the merged token is not in the vocabulary");
      uint64_t key = (static_cast<uint64_t>(ia->second) << 32) |
                     static_cast<uint32_t>(ib->second);
      // The first (best) rank of a repeated pair wins, as in llama.cpp.
      m.merges.emplace(key, std::make_pair(static_cast<int>(i), im->second));
    }
    p->decoder.push_back({DecStep::ByteLevel, "", "", true, 0, 0});
    addBos = spec.addBos;
    p->description = "GGUF (gpt2 byte-level BPE, pre " +
                     (d.pre.empty() ? std::string("default") : d.pre) + ")";
  } else if (d.model == "llama") {
    if (d.scores.empty())
      return fail("tokenizer.ggml.scores", "missing (required for llama)");
    m.kind = tok::Model::SpmScores;
    m.scores = d.scores;
    m.byteFallback = true;
    bool spacePrefix = d.addSpacePrefix.value_or(true);
    if (spacePrefix)
      p->normalizer.push_back({NormStep::Prepend, "\xE2\x96\x81", "", nullptr});
    p->normalizer.push_back({NormStep::Replace, " ", "\xE2\x96\x81", nullptr});
    p->decoder.push_back({DecStep::Replace, "\xE2\x96\x81", " ", true, 0, 0});
    p->decoder.push_back({DecStep::ByteFallback, "", "", true, 0, 0});
    p->decoder.push_back({DecStep::Fuse, "", "", true, 0, 0});
    if (spacePrefix)
      p->decoder.push_back({DecStep::Strip, " ", "", true, 1, 0});
    addBos = true;
    p->description = "GGUF (llama SentencePiece)";
  } else {
    return fail("tokenizer.ggml.model",
                json::quote(d.model) + " is not supported (gpt2, llama)");
  }
  addBos = d.addBos.value_or(addBos);
  bool addEos = d.addEos.value_or(false);
  if (addBos && p->bos < 0)
    return fail("tokenizer.ggml.add_bos_token",
                "is true but tokenizer.ggml.bos_token_id is absent");
  if (addEos && p->eos < 0)
    return fail("tokenizer.ggml.add_eos_token",
                "is true but tokenizer.ggml.eos_token_id is absent");
  if (addBos)
    p->prefix.push_back(p->bos);
  if (addEos)
    p->suffix.push_back(p->eos);
  QC_RETURN_IF_ERROR(p->finalize(sourceName));
  if (m.kind == tok::Model::SpmScores)
    for (int b = 0; b < 256; ++b)
      if (m.byteIds[b] < 0 && m.unkId < 0)
        return fail("tokenizer.ggml.tokens",
                    "byte token <0x" +
                        std::string(1, "0123456789ABCDEF"[b >> 4]) +
                        std::string(1, "0123456789ABCDEF"[b & 15]) +
                        "> is missing and there is no unknown token");
  out = std::move(p);
  return Status::ok();
}

} // namespace qc
