//===- TokenizerExport.cpp - GGUF tokenizer to Hugging Face files ---------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Turns GGUF tokenizer metadata into tokenizer.json and its companion files
// (see TokenizerExport.h). Every choice mirrors what loadGgufTokenizer
// builds, so that the written file, read by qc's tokenizer.json loader or by
// Hugging Face `tokenizers`, splits text into the same ids as the GGUF file:
//  - the pre-tokenizer is written in the idiomatic Hugging Face form where
//    one exists (ByteLevel with its GPT-2 regex; Digits + ByteLevel for
//    SmolLM / StarCoder, as their own tokenizer.json files spell it) and as
//    Split(Regex, Isolated) steps followed by a regex-less ByteLevel
//    otherwise;
//  - merges are written as [left, right] pairs, the spelling that allows
//    spaces inside pieces; a pair GGUF lists twice keeps its first rank
//    (llama.cpp's rule; Hugging Face would keep the last);
//  - SentencePiece scores become merges the way transformers'
//    SentencePieceExtractor derives them: every split of a piece into two
//    vocabulary pieces, ranked by the piece's score, best first;
//  - BOS/EOS are added by a TemplateProcessing post-processor and stated
//    again as add_bos_token / add_eos_token (transformers rebuilds the
//    post-processor from those for some tokenizer classes).
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/TokenizerExport.h"

#include "TokenizerPipeline.h"
#include "qc/runtime/Gguf.h"
#include "qc/runtime/Json.h"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

namespace qc {
namespace {

using json::Value;

/// llama.cpp's token types that the GGUF tokenizer matches as added tokens.
constexpr int32_t kUnknownType = 2, kControlType = 3, kUserDefinedType = 4;

Value str(const std::string &s) { return Value::string(s); }

/// {"type": type}.
Value typed(const char *type) {
  Value v = Value::object();
  v.set("type", str(type));
  return v;
}

/// Hugging Face's ByteLevel pre-tokenizer / decoder / post-processor object.
Value byteLevel(bool addPrefixSpace, bool trimOffsets, bool useRegex) {
  Value v = typed("ByteLevel");
  v.set("add_prefix_space", Value::boolean(addPrefixSpace));
  v.set("trim_offsets", Value::boolean(trimOffsets));
  v.set("use_regex", Value::boolean(useRegex));
  return v;
}

/// {"String": s} or {"Regex": s}, the pattern spelling of Split / Replace.
Value pattern(const char *kind, const std::string &s) {
  Value v = Value::object();
  v.set(kind, str(s));
  return v;
}

/// The pre_tokenizer of a byte-level vocabulary with pre name `spec`.
Value byteLevelPreTokenizer(const tok::GgufPreSpec &spec) {
  const std::string gpt2 = tok::kGgufGpt2Regex;
  if (spec.regexes.size() == 1 && spec.regexes[0] == gpt2)
    return byteLevel(false, true, true);
  Value seq = typed("Sequence");
  Value steps = Value::array();
  if (spec.regexes.size() == 2 && std::string(spec.regexes[0]) == "\\p{N}" &&
      spec.regexes[1] == gpt2) {
    // Hugging Face's Digits(individual) isolates each character for which
    // Rust's char::is_numeric holds: exactly \p{N}.
    Value d = typed("Digits");
    d.set("individual_digits", Value::boolean(true));
    steps.push(std::move(d));
    steps.push(byteLevel(false, true, true));
  } else {
    for (const char *re : spec.regexes) {
      Value s = typed("Split");
      s.set("pattern", pattern("Regex", re));
      s.set("behavior", str("Isolated"));
      s.set("invert", Value::boolean(false));
      steps.push(std::move(s));
    }
    steps.push(byteLevel(false, true, false));
  }
  seq.set("pretokenizers", std::move(steps));
  return seq;
}

/// A TemplateProcessing post-processor adding `bos` before and `eos` after
/// each sequence (either may be empty).
Value templateProcessing(const std::string &bos, int bosId,
                         const std::string &eos, int eosId) {
  auto special = [](const std::string &t, int typeId = 0) {
    Value inner = Value::object();
    inner.set("id", str(t));
    inner.set("type_id", Value::integer(typeId));
    Value v = Value::object();
    v.set("SpecialToken", std::move(inner));
    return v;
  };
  auto sequence = [](const char *id, int typeId) {
    Value inner = Value::object();
    inner.set("id", str(id));
    inner.set("type_id", Value::integer(typeId));
    Value v = Value::object();
    v.set("Sequence", std::move(inner));
    return v;
  };
  Value single = Value::array(), pair = Value::array();
  if (!bos.empty())
    single.push(special(bos));
  single.push(sequence("A", 0));
  if (!eos.empty())
    single.push(special(eos));
  // The pair template as transformers' Llama tokenizer builds it: the
  // specials around each sequence, those of the second with type id 1.
  if (!bos.empty())
    pair.push(special(bos));
  pair.push(sequence("A", 0));
  if (!eos.empty())
    pair.push(special(eos));
  if (!bos.empty())
    pair.push(special(bos, 1));
  pair.push(sequence("B", 1));
  if (!eos.empty())
    pair.push(special(eos, 1));
  Value specials = Value::object();
  auto addSpecial = [&](const std::string &t, int id) {
    Value e = Value::object();
    e.set("id", str(t));
    Value ids = Value::array();
    ids.push(Value::integer(id));
    e.set("ids", std::move(ids));
    Value toks = Value::array();
    toks.push(str(t));
    e.set("tokens", std::move(toks));
    specials.set(t, std::move(e));
  };
  if (!bos.empty())
    addSpecial(bos, bosId);
  if (!eos.empty())
    addSpecial(eos, eosId);
  Value v = typed("TemplateProcessing");
  v.set("single", std::move(single));
  v.set("pair", std::move(pair));
  v.set("special_tokens", std::move(specials));
  return v;
}

/// Offsets of the UTF-8 character starts of `s` after the first (the split
/// points SentencePieceExtractor tries: Python indexes code points).
std::vector<size_t> charSplitPoints(const std::string &s) {
  std::vector<size_t> out;
  size_t i = 0;
  while (i < s.size()) {
    i += std::max<size_t>(1, tok::utf8Len(static_cast<unsigned char>(s[i])));
    if (i < s.size())
      out.push_back(i);
  }
  return out;
}

} // namespace

Status exportHFTokenizer(const GgufTokenizerData &d,
                         const HFTokenizerExportOptions &options,
                         const std::string &sourceName,
                         std::vector<NamedFile> &out) {
  out.clear();
  auto fail = [&](const std::string &key, const std::string &what) {
    return Status::error(sourceName + ": metadata key '" + key + "': " + what +
                         " (cannot write it as tokenizer.json)");
  };
  // Everything loadGgufTokenizer refuses (unknown model or pre name,
  // inconsistent counts, ids out of range, bad merges) is refused here too;
  // the loaded tokenizer also says whether BOS/EOS are added.
  std::unique_ptr<TextTokenizer> ggufTok;
  QC_RETURN_IF_ERROR(loadGgufTokenizer(d, sourceName, ggufTok));
  const bool addBos = ggufTok->addsBos(), addEos = ggufTok->addsEos();

  const size_t n = d.tokens.size();
  std::unordered_map<std::string, int> index;
  index.reserve(n * 2);
  for (size_t i = 0; i < n; ++i)
    if (!index.emplace(d.tokens[i], static_cast<int>(i)).second)
      return fail("tokenizer.ggml.tokens",
                  "token " + json::quote(d.tokens[i]) + " appears twice (ids " +
                      std::to_string(index[d.tokens[i]]) + " and " +
                      std::to_string(i) +
                      "); a tokenizer.json vocabulary holds each string once");
  auto piece = [&](int64_t id) {
    return id >= 0 ? str(d.tokens[static_cast<size_t>(id)]) : Value();
  };

  Value root = Value::object();
  root.set("version", str("1.0"));
  root.set("truncation", Value());
  root.set("padding", Value());

  // Added tokens: never normalized, because the GGUF tokenizer matches them
  // in the raw text before any normalizer runs.
  Value added = Value::array();
  for (size_t i = 0; i < d.tokenTypes.size(); ++i) {
    int32_t t = d.tokenTypes[i];
    if (t != kUnknownType && t != kControlType && t != kUserDefinedType)
      continue;
    Value a = Value::object();
    a.set("id", Value::integer(static_cast<int64_t>(i)));
    a.set("content", str(d.tokens[i]));
    a.set("single_word", Value::boolean(false));
    a.set("lstrip", Value::boolean(false));
    a.set("rstrip", Value::boolean(false));
    a.set("normalized", Value::boolean(false));
    a.set("special", Value::boolean(t != kUserDefinedType));
    added.push(std::move(a));
  }
  root.set("added_tokens", std::move(added));

  Value model = typed("BPE");
  model.set("dropout", Value());
  model.set("unk_token", piece(d.unkId));
  model.set("continuing_subword_prefix", Value());
  model.set("end_of_word_suffix", Value());
  model.set("fuse_unk", Value::boolean(false));
  Value merges = Value::array();
  auto pairOf = [](const std::string &a, const std::string &b) {
    Value m = Value::array();
    m.push(Value::string(a));
    m.push(Value::string(b));
    return m;
  };

  std::string tokenizerClass;
  if (d.model == "gpt2") {
    tok::GgufPreSpec spec;
    tok::ggufPreSpec(d.pre, spec); // known: loadGgufTokenizer checked it
    root.set("normalizer", Value());
    root.set("pre_tokenizer", byteLevelPreTokenizer(spec));
    root.set("post_processor",
             addBos || addEos
                 ? templateProcessing(addBos ? d.tokens[d.bosId] : "",
                                      static_cast<int>(d.bosId),
                                      addEos ? d.tokens[d.eosId] : "",
                                      static_cast<int>(d.eosId))
                 : byteLevel(true, false, true));
    root.set("decoder", byteLevel(true, true, true));
    model.set("byte_fallback", Value::boolean(false));
    model.set("ignore_merges", Value::boolean(spec.ignoreMerges));
    std::unordered_set<std::string> seen;
    for (const std::string &s : d.merges) {
      // Split as loadGgufTokenizer does: at the first space after the
      // first byte.
      size_t sp = s.find(' ', 1);
      std::string a = s.substr(0, sp), b = s.substr(sp + 1);
      if (!seen.insert(a + '\0' + b).second)
        continue; // llama.cpp keeps a repeated pair's first rank
      merges.push(pairOf(a, b));
    }
    tokenizerClass = "PreTrainedTokenizerFast";
  } else { // "llama": loadGgufTokenizer accepts nothing else
    const bool spacePrefix = d.addSpacePrefix.value_or(true);
    const std::string meta = "\xE2\x96\x81"; // U+2581
    Value norm = typed("Sequence");
    Value ns = Value::array();
    if (spacePrefix) {
      Value p = typed("Prepend");
      p.set("prepend", str(meta));
      ns.push(std::move(p));
    }
    Value r = typed("Replace");
    r.set("pattern", pattern("String", " "));
    r.set("content", str(meta));
    ns.push(std::move(r));
    norm.set("normalizers", std::move(ns));
    root.set("normalizer", std::move(norm));
    root.set("pre_tokenizer", Value());
    root.set("post_processor",
             templateProcessing(
                 addBos ? d.tokens[d.bosId] : "", static_cast<int>(d.bosId),
                 addEos ? d.tokens[d.eosId] : "", static_cast<int>(d.eosId)));
    Value dec = typed("Sequence");
    Value ds = Value::array();
    Value dr = typed("Replace");
    dr.set("pattern", pattern("String", meta));
    dr.set("content", str(" "));
    ds.push(std::move(dr));
    ds.push(typed("ByteFallback"));
    ds.push(typed("Fuse"));
    if (spacePrefix) {
      Value st = typed("Strip");
      st.set("content", str(" "));
      st.set("start", Value::integer(1));
      st.set("stop", Value::integer(0));
      ds.push(std::move(st));
    }
    dec.set("decoders", std::move(ds));
    root.set("decoder", std::move(dec));
    model.set("byte_fallback", Value::boolean(true));
    model.set("ignore_merges", Value::boolean(false));

    // SentencePiece merges the adjacent pair whose merged piece scores
    // best, left-most first among equal scores; a rank-ordered merge list
    // reproduces that only when no two mergeable pieces tie.
    struct Merge {
      float score;
      int left, right;
    };
    std::vector<Merge> list;
    std::unordered_map<float, int> scoreOwner;
    for (size_t i = 0; i < n; ++i) {
      const std::string &t = d.tokens[i];
      size_t before = list.size();
      for (size_t at : charSplitPoints(t)) {
        auto l = index.find(t.substr(0, at)), r = index.find(t.substr(at));
        if (l != index.end() && r != index.end())
          list.push_back({d.scores[i], l->second, r->second});
      }
      if (list.size() == before)
        continue;
      auto [it, inserted] =
          scoreOwner.emplace(d.scores[i], static_cast<int>(i));
      if (!inserted)
        return fail("tokenizer.ggml.scores",
                    "tokens " + std::to_string(it->second) + " " +
                        json::quote(d.tokens[it->second]) + " and " +
                        std::to_string(i) + " " + json::quote(t) +
                        " have the same score " + std::to_string(d.scores[i]) +
                        ": ranked merges cannot reproduce SentencePiece's "
                        "order between them");
      std::sort(list.begin() + before, list.end(),
                [](const Merge &a, const Merge &b) {
                  return a.left != b.left ? a.left < b.left : a.right < b.right;
                });
    }
    std::stable_sort(
        list.begin(), list.end(),
        [](const Merge &a, const Merge &b) { return a.score > b.score; });
    for (const Merge &m : list)
      merges.push(pairOf(d.tokens[m.left], d.tokens[m.right]));
    tokenizerClass = "PreTrainedTokenizerFast";
  }
  Value vocab = Value::object();
  for (size_t i = 0; i < n; ++i)
    vocab.set(d.tokens[i], Value::integer(static_cast<int64_t>(i)));
  model.set("vocab", std::move(vocab));
  model.set("merges", std::move(merges));
  root.set("model", std::move(model));

  json::WriteOptions pretty;
  pretty.pretty = true;
  out.push_back({"tokenizer.json", json::write(root, pretty) + "\n"});

  // tokenizer_config.json. PreTrainedTokenizerFast takes tokenizer.json as
  // it is; the Llama classes would rebuild the normalizer from their own
  // options.
  Value tc = Value::object();
  tc.set("add_bos_token", Value::boolean(addBos));
  tc.set("add_eos_token", Value::boolean(addEos));
  Value stm = Value::object();
  const std::pair<const char *, int64_t> specials[] = {{"bos_token", d.bosId},
                                                       {"eos_token", d.eosId},
                                                       {"unk_token", d.unkId},
                                                       {"pad_token", d.padId}};
  for (auto &[key, id] : specials)
    if (id >= 0) {
      tc.set(key, piece(id));
      stm.set(key, piece(id));
    }
  tc.set("clean_up_tokenization_spaces", Value::boolean(false));
  if (options.modelMaxLength > 0)
    tc.set("model_max_length", Value::integer(options.modelMaxLength));
  tc.set("tokenizer_class", str(tokenizerClass));
  if (d.chatTemplate)
    tc.set("chat_template", str(*d.chatTemplate));
  out.push_back({"tokenizer_config.json", json::write(tc, pretty) + "\n"});
  out.push_back({"special_tokens_map.json", json::write(stm, pretty) + "\n"});

  Value gc = Value::object();
  const std::pair<const char *, int64_t> genIds[] = {{"bos_token_id", d.bosId},
                                                     {"eos_token_id", d.eosId},
                                                     {"pad_token_id", d.padId}};
  for (auto &[key, id] : genIds)
    if (id >= 0)
      gc.set(key, Value::integer(id));
  out.push_back({"generation_config.json", json::write(gc, pretty) + "\n"});
  return Status::ok();
}

Status exportGgufTokenizerFiles(const std::string &ggufPath,
                                std::vector<NamedFile> &out) {
  out.clear();
  std::unique_ptr<GgufFile> f;
  QC_RETURN_IF_ERROR(GgufFile::open(ggufPath, f));
  // A file without a tokenizer has nothing to export (as a Hugging Face
  // folder without tokenizer files has nothing to copy).
  if (!f->has("tokenizer.ggml.model"))
    return Status::ok();
  GgufTokenizerData d;
  QC_RETURN_IF_ERROR(readGgufTokenizerData(*f, d));
  HFTokenizerExportOptions options;
  if (f->has("general.architecture")) {
    std::string arch;
    QC_RETURN_IF_ERROR(f->getString("general.architecture", arch));
    std::string key = arch + ".context_length";
    if (f->has(key)) {
      uint32_t ctx = 0;
      QC_RETURN_IF_ERROR(f->getU32(key, ctx));
      options.modelMaxLength = ctx;
    }
  }
  return exportHFTokenizer(d, options, ggufPath, out);
}

} // namespace qc
