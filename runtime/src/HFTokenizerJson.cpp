//===- HFTokenizerJson.cpp - Hugging Face tokenizer.json loader -----------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Translates a tokenizer.json (the serialisation of Hugging Face
// `tokenizers`) into the engine of TokenizerPipeline.h. The file is
// untrusted input: it goes through the runtime's strict JSON parser, every
// member is type-checked, ids are range-checked, and every component type
// or option this engine does not implement is refused with its JSON path
// ("pre_tokenizer.pretokenizers[1].type: ...") rather than skipped, since a
// skipped normalizer or pre-tokenizer silently changes the ids.
//
//===----------------------------------------------------------------------===//

#include "TokenizerPipeline.h"

#include "qc/runtime/Json.h"

#include <algorithm>
#include <limits>

namespace qc {
namespace {

using json::Value;
using tok::AddedToken;
using tok::DecStep;
using tok::NormStep;
using tok::Pipeline;
using tok::PreStep;
using tok::Regex;
using tok::SplitBehavior;

/// Largest id accepted: far above any real vocabulary, low enough that
/// `pieces` cannot be made to allocate gigabytes by one large id.
constexpr int64_t kMaxId = (int64_t(1) << 24) - 1;

/// Reads the JSON members of one tokenizer.json with errors that name the
/// file and the member's path.
class Reader {
public:
  explicit Reader(std::string source) : source(std::move(source)) {}

  Status fail(const std::string &path, const std::string &what) const {
    return Status::error(source + ": " + path + ": " + what);
  }

  /// `v` must be an object.
  Status object(const Value &v, const std::string &path) const {
    if (!v.isObject())
      return fail(path, std::string("expected an object, found ") +
                            json::kindName(v.kind()));
    return Status::ok();
  }

  /// Optional string member (absent or null leaves `out`).
  Status str(const Value &obj, const char *key, const std::string &path,
             std::string &out, bool required = false) const {
    const Value *v = obj.find(key);
    if (!v || v->isNull())
      return required ? fail(path + "." + key, "missing") : Status::ok();
    if (!v->isString())
      return fail(path + "." + key, std::string("expected a string, found ") +
                                        json::kindName(v->kind()));
    out = v->asString();
    return Status::ok();
  }

  /// Optional bool member.
  Status boolean(const Value &obj, const char *key, const std::string &path,
                 bool &out) const {
    const Value *v = obj.find(key);
    if (!v || v->isNull())
      return Status::ok();
    if (!v->isBool())
      return fail(path + "." + key, std::string("expected a bool, found ") +
                                        json::kindName(v->kind()));
    out = v->asBool();
    return Status::ok();
  }

  /// An integer in [lo, hi].
  Status integer(const Value &v, const std::string &path, int64_t lo,
                 int64_t hi, int64_t &out) const {
    if (!v.isInt64() || v.asInt64() < lo || v.asInt64() > hi)
      return fail(path, "expected an integer in [" + std::to_string(lo) + ", " +
                            std::to_string(hi) + "]");
    out = v.asInt64();
    return Status::ok();
  }

  /// A member that must be an array.
  Status array(const Value &obj, const char *key, const std::string &path,
               const Value::Array *&out) const {
    const Value *v = obj.find(key);
    if (!v || !v->isArray())
      return fail(path + "." + key,
                  v ? std::string("expected an array, found ") +
                          json::kindName(v->kind())
                    : std::string("missing"));
    out = &v->asArray();
    return Status::ok();
  }

  /// The "type" member of a component object.
  Status type(const Value &obj, const std::string &path,
              std::string &out) const {
    QC_RETURN_IF_ERROR(object(obj, path));
    return str(obj, "type", path, out, /*required=*/true);
  }

  /// A Split/Replace "pattern": {"String": s} or {"Regex": r}.
  Status pattern(const Value &obj, const std::string &path, std::string &lit,
                 std::shared_ptr<const Regex> &re) const {
    const Value *p = obj.find("pattern");
    std::string where = path + ".pattern";
    if (!p || !p->isObject() || p->asObject().size() != 1)
      return fail(where, "expected {\"String\": ...} or {\"Regex\": ...}");
    const auto &[kind, val] = p->asObject()[0];
    if (!val.isString())
      return fail(where + "." + kind, "expected a string");
    if (kind == "String") {
      lit = val.asString();
      re.reset();
      return Status::ok();
    }
    if (kind == "Regex") {
      Status s = Regex::compile(val.asString(), re);
      return s ? s : fail(where + ".Regex", s.message());
    }
    return fail(where, "unknown pattern kind " + json::quote(kind) +
                           " (expected String or Regex)");
  }

  std::string source;
};

/// An unsupported component: names the path, the type and what is supported.
Status unsupported(const Reader &r, const std::string &path,
                   const std::string &type, const char *supported) {
  return r.fail(path + ".type",
                json::quote(type) + " is not supported (" + supported + ")");
}

Status readNormalizer(const Reader &r, const Value &v, const std::string &path,
                      std::vector<NormStep> &out) {
  if (v.isNull())
    return Status::ok();
  std::string type;
  QC_RETURN_IF_ERROR(r.type(v, path, type));
  if (type == "Sequence") {
    const Value::Array *items;
    QC_RETURN_IF_ERROR(r.array(v, "normalizers", path, items));
    for (size_t i = 0; i < items->size(); ++i)
      QC_RETURN_IF_ERROR(readNormalizer(
          r, (*items)[i], path + ".normalizers[" + std::to_string(i) + "]",
          out));
    return Status::ok();
  }
  if (type == "Prepend") {
    NormStep s{NormStep::Prepend, "", "", nullptr};
    QC_RETURN_IF_ERROR(r.str(v, "prepend", path, s.text, true));
    out.push_back(std::move(s));
    return Status::ok();
  }
  if (type == "Replace") {
    NormStep s{NormStep::Replace, "", "", nullptr};
    QC_RETURN_IF_ERROR(r.pattern(v, path, s.text, s.regex));
    QC_RETURN_IF_ERROR(r.str(v, "content", path, s.content, true));
    if (!s.regex && s.text.empty())
      return r.fail(path + ".pattern", "empty String pattern");
    out.push_back(std::move(s));
    return Status::ok();
  }
  if (type == "NFC") {
    // Applied as a check: encode() refuses text NFC could change.
    out.push_back({NormStep::NfcCheck, "", "", nullptr});
    return Status::ok();
  }
  if (type == "NFD" || type == "NFKC" || type == "NFKD")
    return r.fail(path + ".type",
                  json::quote(type) +
                      " (Unicode normalization) is not supported: this "
                      "build has no Unicode normalization tables");
  return unsupported(r, path, type, "Sequence, Prepend, Replace, NFC");
}

Status readBehavior(const Reader &r, const Value &v, const std::string &path,
                    SplitBehavior &out) {
  std::string b;
  QC_RETURN_IF_ERROR(r.str(v, "behavior", path, b, true));
  static const std::pair<const char *, SplitBehavior> kinds[] = {
      {"Removed", SplitBehavior::Removed},
      {"Isolated", SplitBehavior::Isolated},
      {"MergedWithPrevious", SplitBehavior::MergedWithPrevious},
      {"MergedWithNext", SplitBehavior::MergedWithNext},
      {"Contiguous", SplitBehavior::Contiguous}};
  for (auto &[name, kind] : kinds)
    if (b == name) {
      out = kind;
      return Status::ok();
    }
  return r.fail(path + ".behavior", "unknown behavior " + json::quote(b));
}

/// Reads Metaspace's prepend scheme (new "prepend_scheme" or the older
/// "add_prefix_space" bool).
Status readPrependScheme(const Reader &r, const Value &v,
                         const std::string &path, PreStep::Prepend &out) {
  std::string scheme;
  QC_RETURN_IF_ERROR(r.str(v, "prepend_scheme", path, scheme));
  if (scheme.empty()) {
    bool add = true;
    QC_RETURN_IF_ERROR(r.boolean(v, "add_prefix_space", path, add));
    out = add ? PreStep::Always : PreStep::Never;
    return Status::ok();
  }
  if (scheme == "always")
    out = PreStep::Always;
  else if (scheme == "first")
    out = PreStep::First;
  else if (scheme == "never")
    out = PreStep::Never;
  else
    return r.fail(path + ".prepend_scheme",
                  "unknown scheme " + json::quote(scheme));
  return Status::ok();
}

Status readPreTokenizer(const Reader &r, const Value &v,
                        const std::string &path, std::vector<PreStep> &out) {
  if (v.isNull())
    return Status::ok();
  std::string type;
  QC_RETURN_IF_ERROR(r.type(v, path, type));
  if (type == "Sequence") {
    const Value::Array *items;
    QC_RETURN_IF_ERROR(r.array(v, "pretokenizers", path, items));
    for (size_t i = 0; i < items->size(); ++i)
      QC_RETURN_IF_ERROR(readPreTokenizer(
          r, (*items)[i], path + ".pretokenizers[" + std::to_string(i) + "]",
          out));
    return Status::ok();
  }
  PreStep s{};
  if (type == "Split") {
    s.kind = PreStep::Split;
    QC_RETURN_IF_ERROR(r.pattern(v, path, s.literal, s.regex));
    QC_RETURN_IF_ERROR(readBehavior(r, v, path, s.behavior));
    QC_RETURN_IF_ERROR(r.boolean(v, "invert", path, s.invert));
  } else if (type == "ByteLevel") {
    s.kind = PreStep::ByteLevel;
    QC_RETURN_IF_ERROR(
        r.boolean(v, "add_prefix_space", path, s.addPrefixSpace));
    QC_RETURN_IF_ERROR(r.boolean(v, "use_regex", path, s.useRegex));
  } else if (type == "Digits") {
    // Rust's char::is_numeric is \p{N}; individual digits are isolated one
    // by one, otherwise runs of digits stay together.
    s.kind = PreStep::Split;
    bool individual = false;
    QC_RETURN_IF_ERROR(r.boolean(v, "individual_digits", path, individual));
    QC_RETURN_IF_ERROR(
        Regex::compile(individual ? "\\p{N}" : "\\p{N}+", s.regex));
    s.behavior = SplitBehavior::Isolated;
  } else if (type == "Whitespace") {
    // Hugging Face: keep the matches of \w+|[^\w\s]+, drop the rest.
    s.kind = PreStep::Split;
    QC_RETURN_IF_ERROR(Regex::compile("\\w+|[^\\w\\s]+", s.regex));
    s.behavior = SplitBehavior::Removed;
    s.invert = true;
  } else if (type == "WhitespaceSplit") {
    s.kind = PreStep::Split;
    QC_RETURN_IF_ERROR(Regex::compile("\\s+", s.regex));
    s.behavior = SplitBehavior::Removed;
  } else if (type == "Metaspace") {
    s.kind = PreStep::Metaspace;
    QC_RETURN_IF_ERROR(r.str(v, "replacement", path, s.replacement, true));
    if (s.replacement.empty() || tok::utf8Len(static_cast<unsigned char>(
                                     s.replacement[0])) != s.replacement.size())
      return r.fail(path + ".replacement", "expected one character");
    QC_RETURN_IF_ERROR(readPrependScheme(r, v, path, s.prepend));
    QC_RETURN_IF_ERROR(r.boolean(v, "split", path, s.split));
  } else {
    return unsupported(r, path, type,
                       "Sequence, Split, ByteLevel, Digits, Metaspace, "
                       "Whitespace, WhitespaceSplit");
  }
  out.push_back(std::move(s));
  return Status::ok();
}

Status readDecoder(const Reader &r, const Value &v, const std::string &path,
                   std::vector<DecStep> &out) {
  if (v.isNull())
    return Status::ok();
  std::string type;
  QC_RETURN_IF_ERROR(r.type(v, path, type));
  if (type == "Sequence") {
    const Value::Array *items;
    QC_RETURN_IF_ERROR(r.array(v, "decoders", path, items));
    for (size_t i = 0; i < items->size(); ++i)
      QC_RETURN_IF_ERROR(readDecoder(
          r, (*items)[i], path + ".decoders[" + std::to_string(i) + "]", out));
    return Status::ok();
  }
  DecStep d{};
  if (type == "ByteLevel") {
    d.kind = DecStep::ByteLevel;
  } else if (type == "ByteFallback") {
    d.kind = DecStep::ByteFallback;
  } else if (type == "Fuse") {
    d.kind = DecStep::Fuse;
  } else if (type == "Metaspace") {
    d.kind = DecStep::Metaspace;
    QC_RETURN_IF_ERROR(r.str(v, "replacement", path, d.text, true));
    PreStep::Prepend scheme;
    QC_RETURN_IF_ERROR(readPrependScheme(r, v, path, scheme));
    d.dropFirst = scheme != PreStep::Never;
  } else if (type == "Replace") {
    d.kind = DecStep::Replace;
    std::shared_ptr<const Regex> re;
    QC_RETURN_IF_ERROR(r.pattern(v, path, d.text, re));
    if (re)
      return r.fail(path + ".pattern",
                    "a Regex pattern in a Replace decoder is not supported");
    if (d.text.empty())
      return r.fail(path + ".pattern", "empty String pattern");
    QC_RETURN_IF_ERROR(r.str(v, "content", path, d.content, true));
  } else if (type == "Strip") {
    d.kind = DecStep::Strip;
    QC_RETURN_IF_ERROR(r.str(v, "content", path, d.text, true));
    int64_t a = 0, b = 0;
    const Value *sv = v.find("start"), *ev = v.find("stop");
    if (!sv || !ev)
      return r.fail(path, "Strip needs start and stop");
    QC_RETURN_IF_ERROR(r.integer(*sv, path + ".start", 0, 1 << 20, a));
    QC_RETURN_IF_ERROR(r.integer(*ev, path + ".stop", 0, 1 << 20, b));
    d.start = static_cast<int>(a);
    d.stop = static_cast<int>(b);
  } else {
    return unsupported(r, path, type,
                       "Sequence, ByteLevel, Metaspace, Replace, "
                       "ByteFallback, Fuse, Strip");
  }
  out.push_back(std::move(d));
  return Status::ok();
}

/// Adds what a post-processor puts around a single sequence.
Status readPostProcessor(const Reader &r, const Value &v,
                         const std::string &path, Pipeline &p) {
  if (v.isNull())
    return Status::ok();
  std::string type;
  QC_RETURN_IF_ERROR(r.type(v, path, type));
  if (type == "Sequence") {
    const Value::Array *items;
    QC_RETURN_IF_ERROR(r.array(v, "processors", path, items));
    for (size_t i = 0; i < items->size(); ++i)
      QC_RETURN_IF_ERROR(readPostProcessor(
          r, (*items)[i], path + ".processors[" + std::to_string(i) + "]", p));
    return Status::ok();
  }
  if (type == "ByteLevel")
    return Status::ok(); // only trims offsets, adds no token
  std::vector<int> before, after;
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    auto pairId = [&](const char *key, int &id) -> Status {
      const Value *t = v.find(key);
      std::string where = path + "." + key;
      if (!t || !t->isArray() || t->asArray().size() != 2 ||
          !t->asArray()[0].isString())
        return r.fail(where, "expected [token, id]");
      int64_t x;
      QC_RETURN_IF_ERROR(
          r.integer(t->asArray()[1], where + "[1]", 0, kMaxId, x));
      id = static_cast<int>(x);
      return Status::ok();
    };
    int cls, sep;
    QC_RETURN_IF_ERROR(pairId("cls", cls));
    QC_RETURN_IF_ERROR(pairId("sep", sep));
    before.push_back(cls);
    after.push_back(sep);
  } else if (type == "TemplateProcessing") {
    const Value::Array *single;
    QC_RETURN_IF_ERROR(r.array(v, "single", path, single));
    const Value *specials = v.find("special_tokens");
    if (!specials || !specials->isObject())
      return r.fail(path + ".special_tokens", "expected an object");
    bool seenSequence = false;
    for (size_t i = 0; i < single->size(); ++i) {
      std::string where = path + ".single[" + std::to_string(i) + "]";
      const Value &item = (*single)[i];
      if (!item.isObject() || item.asObject().size() != 1)
        return r.fail(where, "expected {\"SpecialToken\": ...} or "
                             "{\"Sequence\": ...}");
      const auto &[kind, body] = item.asObject()[0];
      std::string id;
      QC_RETURN_IF_ERROR(r.object(body, where + "." + kind));
      QC_RETURN_IF_ERROR(r.str(body, "id", where + "." + kind, id, true));
      if (kind == "Sequence") {
        if (id != "A" || seenSequence)
          return r.fail(where, "a single-sequence template must hold "
                               "sequence A exactly once");
        seenSequence = true;
        continue;
      }
      if (kind != "SpecialToken")
        return r.fail(where, "unknown template item " + json::quote(kind));
      const Value *spec = specials->find(id);
      std::string sw = path + ".special_tokens." + id;
      if (!spec)
        return r.fail(sw, "missing (used by " + where + ")");
      const Value::Array *ids;
      QC_RETURN_IF_ERROR(r.object(*spec, sw));
      QC_RETURN_IF_ERROR(r.array(*spec, "ids", sw, ids));
      for (size_t k = 0; k < ids->size(); ++k) {
        int64_t x;
        QC_RETURN_IF_ERROR(r.integer(
            (*ids)[k], sw + ".ids[" + std::to_string(k) + "]", 0, kMaxId, x));
        (seenSequence ? after : before).push_back(static_cast<int>(x));
      }
    }
    if (!seenSequence)
      return r.fail(path + ".single", "the template has no sequence A");
  } else {
    return unsupported(r, path, type,
                       "Sequence, ByteLevel, TemplateProcessing, "
                       "RobertaProcessing, BertProcessing");
  }
  // A later processor wraps what the earlier ones produced.
  p.prefix.insert(p.prefix.begin(), before.begin(), before.end());
  p.suffix.insert(p.suffix.end(), after.begin(), after.end());
  return Status::ok();
}

Status readModel(const Reader &r, const Value &v, Pipeline &p) {
  const std::string path = "model";
  QC_RETURN_IF_ERROR(r.object(v, path));
  std::string type;
  QC_RETURN_IF_ERROR(r.str(v, "type", path, type));
  if (type.empty() && v.find("merges"))
    type = "BPE"; // old files omit the type; only BPE has merges
  if (type != "BPE")
    return r.fail(path + ".type",
                  json::quote(type) + " is not supported (BPE)");
  tok::Model &m = p.model;
  m.kind = tok::Model::Bpe;

  const Value *dropout = v.find("dropout");
  if (dropout && !dropout->isNull() &&
      (!dropout->isNumber() || dropout->asDouble() != 0.0))
    return r.fail(path + ".dropout",
                  "BPE dropout makes encoding random; only null or 0 is "
                  "supported");
  for (const char *key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    std::string s;
    QC_RETURN_IF_ERROR(r.str(v, key, path, s));
    if (!s.empty())
      return r.fail(path + "." + key, json::quote(s) + " is not supported "
                                                       "(only null or \"\")");
  }
  QC_RETURN_IF_ERROR(r.boolean(v, "fuse_unk", path, m.fuseUnk));
  QC_RETURN_IF_ERROR(r.boolean(v, "byte_fallback", path, m.byteFallback));
  QC_RETURN_IF_ERROR(r.boolean(v, "ignore_merges", path, m.ignoreMerges));

  const Value *vocab = v.find("vocab");
  if (!vocab || !vocab->isObject())
    return r.fail(path + ".vocab", "expected an object {piece: id}");
  int64_t maxId = -1;
  for (const auto &[piece, idv] : vocab->asObject()) {
    int64_t id;
    QC_RETURN_IF_ERROR(
        r.integer(idv, path + ".vocab." + json::quote(piece), 0, kMaxId, id));
    maxId = std::max(maxId, id);
  }
  m.pieces.assign(static_cast<size_t>(maxId + 1), std::string());
  std::vector<char> used(m.pieces.size(), 0);
  m.index.reserve(vocab->asObject().size() * 2);
  for (const auto &[piece, idv] : vocab->asObject()) {
    size_t id = static_cast<size_t>(idv.asInt64());
    if (used[id])
      return r.fail(path + ".vocab." + json::quote(piece),
                    "id " + std::to_string(id) + " is used twice");
    used[id] = 1;
    m.pieces[id] = piece;
    m.index.emplace(piece, static_cast<int>(id));
  }

  std::string unk;
  QC_RETURN_IF_ERROR(r.str(v, "unk_token", path, unk));
  if (!unk.empty()) {
    auto it = m.index.find(unk);
    if (it == m.index.end())
      return r.fail(path + ".unk_token",
                    json::quote(unk) + " is not in the vocabulary");
    m.unkId = it->second;
  }

  const Value::Array *merges;
  QC_RETURN_IF_ERROR(r.array(v, "merges", path, merges));
  m.merges.reserve(merges->size() * 2);
  for (size_t i = 0; i < merges->size(); ++i) {
    std::string where = path + ".merges[" + std::to_string(i) + "]";
    const Value &e = (*merges)[i];
    std::string a, b;
    if (e.isString()) {
      // The older spelling "left right": exactly one space, as Hugging Face
      // requires (pieces cannot hold a space in this spelling).
      const std::string &s = e.asString();
      size_t sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
        return r.fail(where, json::quote(s) +
                                 " is not two tokens separated by one space");
      a = s.substr(0, sp);
      b = s.substr(sp + 1);
    } else if (e.isArray() && e.asArray().size() == 2 &&
               e.asArray()[0].isString() && e.asArray()[1].isString()) {
      a = e.asArray()[0].asString();
      b = e.asArray()[1].asString();
    } else {
      return r.fail(where, "expected \"left right\" or [\"left\", \"right\"]");
    }
    auto ia = m.index.find(a), ib = m.index.find(b), im = m.index.find(a + b);
    if (ia == m.index.end())
      return r.fail(where,
                    "token " + json::quote(a) + " is not in the vocabulary");
    if (ib == m.index.end())
      return r.fail(where,
                    "token " + json::quote(b) + " is not in the vocabulary");
    if (im == m.index.end())
      return r.fail(where, "merged token " + json::quote(a + b) +
                               " is not in the vocabulary");
    // A repeated pair keeps the later rank, as Hugging Face's map does.
    m.merges[(static_cast<uint64_t>(ia->second) << 32) |
             static_cast<uint32_t>(ib->second)] = {static_cast<int>(i),
                                                   im->second};
  }
  return Status::ok();
}

Status readAddedTokens(const Reader &r, const Value &root, Pipeline &p) {
  const Value *v = root.find("added_tokens");
  if (!v || v->isNull())
    return Status::ok();
  if (!v->isArray())
    return r.fail("added_tokens", "expected an array");
  for (size_t i = 0; i < v->asArray().size(); ++i) {
    std::string path = "added_tokens[" + std::to_string(i) + "]";
    const Value &t = v->asArray()[i];
    QC_RETURN_IF_ERROR(r.object(t, path));
    AddedToken a;
    const Value *idv = t.find("id");
    if (!idv)
      return r.fail(path + ".id", "missing");
    int64_t id;
    QC_RETURN_IF_ERROR(r.integer(*idv, path + ".id", 0, kMaxId, id));
    a.id = static_cast<int>(id);
    QC_RETURN_IF_ERROR(r.str(t, "content", path, a.content, true));
    // Hugging Face's default for `normalized` is !special.
    QC_RETURN_IF_ERROR(r.boolean(t, "special", path, a.special));
    a.normalized = !a.special;
    QC_RETURN_IF_ERROR(r.boolean(t, "normalized", path, a.normalized));
    QC_RETURN_IF_ERROR(r.boolean(t, "lstrip", path, a.lstrip));
    QC_RETURN_IF_ERROR(r.boolean(t, "rstrip", path, a.rstrip));
    QC_RETURN_IF_ERROR(r.boolean(t, "single_word", path, a.singleWord));
    p.added.push_back(std::move(a));
  }
  return Status::ok();
}

/// A token named in tokenizer_config.json: a string or an AddedToken
/// object {"content": ...}; "" when absent or null.
Status configToken(const Reader &r, const Value &cfg, const char *key,
                   std::string &out) {
  const Value *v = cfg.find(key);
  if (!v || v->isNull())
    return Status::ok();
  if (v->isString()) {
    out = v->asString();
    return Status::ok();
  }
  if (v->isObject())
    return r.str(*v, "content", key, out, true);
  return r.fail(key, "expected a string or {\"content\": ...}");
}

/// config.json's bos_token_id / eos_token_id: an id, a list (first one
/// used) or null; -1 when absent.
Status configId(const Reader &r, const Value &cfg, const char *key, int &out) {
  const Value *v = cfg.find(key);
  if (!v || v->isNull())
    return Status::ok();
  const Value *x = v;
  if (v->isArray()) {
    if (v->asArray().empty())
      return Status::ok();
    x = &v->asArray()[0];
  }
  int64_t id;
  QC_RETURN_IF_ERROR(r.integer(*x, key, 0, kMaxId, id));
  out = static_cast<int>(id);
  return Status::ok();
}

} // namespace

Status loadHFTokenizerJson(std::string_view tokenizerJson,
                           std::string_view tokenizerConfig,
                           std::string_view modelConfig,
                           const std::string &sourceName,
                           std::unique_ptr<TextTokenizer> &out) {
  Reader r(sourceName);
  Value root;
  if (Status s = json::parse(tokenizerJson, root); !s)
    return Status::error(sourceName + ": " + s.message());
  QC_RETURN_IF_ERROR(r.object(root, "(top level)"));
  for (const char *key : {"truncation", "padding"}) {
    const Value *v = root.find(key);
    if (v && !v->isNull())
      return r.fail(key, "is set; truncation and padding change the ids and "
                         "are not supported (expected null)");
  }
  auto p = std::make_unique<Pipeline>();
  const Value *model = root.find("model");
  if (!model)
    return r.fail("model", "missing");
  QC_RETURN_IF_ERROR(readModel(r, *model, *p));
  QC_RETURN_IF_ERROR(readAddedTokens(r, root, *p));
  static const Value null;
  auto member = [&](const char *k) -> const Value & {
    const Value *v = root.find(k);
    return v ? *v : null;
  };
  QC_RETURN_IF_ERROR(
      readNormalizer(r, member("normalizer"), "normalizer", p->normalizer));
  QC_RETURN_IF_ERROR(readPreTokenizer(r, member("pre_tokenizer"),
                                      "pre_tokenizer", p->preTokenizer));
  QC_RETURN_IF_ERROR(readDecoder(r, member("decoder"), "decoder", p->decoder));
  QC_RETURN_IF_ERROR(
      readPostProcessor(r, member("post_processor"), "post_processor", *p));
  QC_RETURN_IF_ERROR(p->finalize(sourceName));
  for (int id : p->prefix)
    if (id >= p->vocabSize())
      return r.fail("post_processor", "adds id " + std::to_string(id) +
                                          " outside the vocabulary");
  for (int id : p->suffix)
    if (id >= p->vocabSize())
      return r.fail("post_processor", "adds id " + std::to_string(id) +
                                          " outside the vocabulary");

  // BOS / EOS: tokenizer_config.json names them by text, config.json by id;
  // without either, the post-processor's first / last added token.
  Value tcfg, mcfg;
  Reader tr(sourceName + " (tokenizer_config.json)");
  Reader mr(sourceName + " (config.json)");
  if (!tokenizerConfig.empty()) {
    if (Status s = json::parse(tokenizerConfig, tcfg); !s)
      return Status::error(tr.source + ": " + s.message());
    QC_RETURN_IF_ERROR(tr.object(tcfg, "(top level)"));
  }
  if (!modelConfig.empty()) {
    if (Status s = json::parse(modelConfig, mcfg); !s)
      return Status::error(mr.source + ": " + s.message());
    QC_RETURN_IF_ERROR(mr.object(mcfg, "(top level)"));
  }
  auto resolve = [&](const char *tokKey, const char *idKey, int fallback,
                     int &id) -> Status {
    std::string text;
    if (tcfg.isObject())
      QC_RETURN_IF_ERROR(configToken(tr, tcfg, tokKey, text));
    if (!text.empty()) {
      id = p->pieceId(text);
      if (id < 0)
        return tr.fail(tokKey, json::quote(text) + " is not a token");
      return Status::ok();
    }
    id = -1;
    if (mcfg.isObject())
      QC_RETURN_IF_ERROR(configId(mr, mcfg, idKey, id));
    if (id >= p->vocabSize())
      return mr.fail(idKey, std::to_string(id) + " is outside the vocabulary");
    if (id < 0)
      id = fallback;
    return Status::ok();
  };
  QC_RETURN_IF_ERROR(resolve("bos_token", "bos_token_id",
                             p->prefix.empty() ? -1 : p->prefix.front(),
                             p->bos));
  QC_RETURN_IF_ERROR(resolve("eos_token", "eos_token_id",
                             p->suffix.empty() ? -1 : p->suffix.back(),
                             p->eos));
  // transformers rebuilds the post-processor from add_bos_token /
  // add_eos_token when the tokenizer configuration sets them.
  if (tcfg.isObject()) {
    const Value *ab = tcfg.find("add_bos_token");
    const Value *ae = tcfg.find("add_eos_token");
    if ((ab && !ab->isNull()) || (ae && !ae->isNull())) {
      bool addBos = p->addsBos(), addEos = p->addsEos();
      QC_RETURN_IF_ERROR(tr.boolean(tcfg, "add_bos_token", "", addBos));
      QC_RETURN_IF_ERROR(tr.boolean(tcfg, "add_eos_token", "", addEos));
      if (addBos && p->bos < 0)
        return tr.fail("add_bos_token", "is true but no BOS token is named");
      if (addEos && p->eos < 0)
        return tr.fail("add_eos_token", "is true but no EOS token is named");
      p->prefix.clear();
      p->suffix.clear();
      if (addBos)
        p->prefix.push_back(p->bos);
      if (addEos)
        p->suffix.push_back(p->eos);
    }
  }
  bool byteLevel = false;
  for (const PreStep &s : p->preTokenizer)
    byteLevel = byteLevel || s.kind == PreStep::ByteLevel;
  p->description = std::string("tokenizer.json (BPE") +
                   (byteLevel ? ", byte-level" : "") +
                   (p->model.byteFallback ? ", byte fallback" : "") + ")";
  out = std::move(p);
  return Status::ok();
}

} // namespace qc
