//===- TokenizerPipeline.cpp - Hugging Face-style tokenizer engine --------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Encoding follows Hugging Face `tokenizers` step by step, because the ids
// must be identical: added tokens are cut out of the raw text first
// (leftmost-longest), the rest is normalized, normalized added tokens are
// cut out next, the pre-tokenizer splits what remains into words, and the
// model turns each word into ids. BPE applies merges by rank with a heap
// over a linked list of symbols and recognises stale heap entries the way
// Hugging Face's Word::merge_all does (the pair at the position must still
// merge into the same id), which matters when two merges make one token.
// Words repeat a lot in real text, so each encode() call caches the ids of
// the words it has seen. Regular expressions are PCRE2 with UTF and UCP, so
// \p{L}, \p{N} and \s follow the Unicode tables as Rust's regex and
// Oniguruma do, rather than a hand-written approximation.
//
//===----------------------------------------------------------------------===//

#include "TokenizerPipeline.h"

#include "qc/runtime/Json.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <queue>

namespace qc {

TextTokenizer::~TextTokenizer() = default;

namespace tok {

//===----------------------------------------------------------------------===//
// UTF-8 and byte-level helpers
//===----------------------------------------------------------------------===//

size_t utf8Len(unsigned char c) {
  if (c < 0x80)
    return 1;
  if ((c & 0xE0) == 0xC0)
    return 2;
  if ((c & 0xF0) == 0xE0)
    return 3;
  if ((c & 0xF8) == 0xF0)
    return 4;
  return 1;
}

namespace {

/// Length of the character at s[i]: its UTF-8 length when the continuation
/// bytes are there, else 1 (a stray byte is a character of its own).
size_t charLenAt(std::string_view s, size_t i) {
  size_t n = utf8Len(static_cast<unsigned char>(s[i]));
  if (i + n > s.size())
    return 1;
  for (size_t k = 1; k < n; ++k)
    if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80)
      return 1;
  return n;
}

/// Appends code point `cp` as UTF-8.
void appendUtf8(std::string &out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

/// Length of the Unicode White_Space character at s[i] (what Rust's
/// char::is_whitespace and regex \s accept), or 0.
size_t whitespaceAt(std::string_view s, size_t i) {
  unsigned char c = static_cast<unsigned char>(s[i]);
  if (c == ' ' || (c >= 0x09 && c <= 0x0D))
    return 1;
  size_t n = charLenAt(s, i);
  if (n == 1)
    return 0;
  uint32_t cp = c & (0xFF >> (n + 1));
  for (size_t k = 1; k < n; ++k)
    cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  bool ws = cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
            (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
            cp == 0x202F || cp == 0x205F || cp == 0x3000;
  return ws ? n : 0;
}

/// Start of the run of whitespace that ends `s` (s.size() if none).
size_t trailingSpaceStart(std::string_view s) {
  size_t start = s.size();
  // Walk characters forwards (UTF-8 cannot be walked backwards safely when
  // it may be invalid) and remember where the current whitespace run began.
  size_t i = 0;
  while (i < s.size()) {
    size_t w = whitespaceAt(s, i);
    if (w) {
      if (start == s.size())
        start = i;
      i += w;
    } else {
      start = s.size();
      i += charLenAt(s, i);
    }
  }
  return start;
}

/// Length of the run of whitespace that starts `s`.
size_t leadingSpaceLen(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    size_t w = whitespaceAt(s, i);
    if (!w)
      break;
    i += w;
  }
  return i;
}

/// Replaces every non-overlapping occurrence of `from` (non-empty) in `s`.
std::string replaceAll(std::string_view s, std::string_view from,
                       std::string_view to) {
  if (from.empty())
    return std::string(s);
  std::string out;
  out.reserve(s.size());
  size_t pos = 0;
  while (true) {
    size_t hit = s.find(from, pos);
    if (hit == std::string_view::npos)
      break;
    out.append(s.substr(pos, hit - pos));
    out.append(to);
    pos = hit + from.size();
  }
  out.append(s.substr(pos));
  return out;
}

/// The byte b of a "<0xHH>" token, or -1.
int byteTokenValue(std::string_view t) {
  if (t.size() != 6 || t.compare(0, 3, "<0x") != 0 || t[5] != '>')
    return -1;
  auto hex = [](char c) {
    if (c >= '0' && c <= '9')
      return c - '0';
    if (c >= 'a' && c <= 'f')
      return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
      return c - 'A' + 10;
    return -1;
  };
  int hi = hex(t[3]), lo = hex(t[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

/// Code point -> byte for the byte-level alphabet (0..323), or -1.
const std::array<int, 324> &byteLevelInverse() {
  static const std::array<int, 324> inv = [] {
    std::array<int, 324> a;
    a.fill(-1);
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) ||
                       (b >= 0xAE && b <= 0xFF);
      a[printable ? b : 256 + extra++] = b;
    }
    return a;
  }();
  return inv;
}

} // namespace

const std::array<std::string, 256> &byteLevelChars() {
  // GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves,
  // the others are mapped in order to U+0100 onwards so that every byte is
  // a visible character.
  static const std::array<std::string, 256> chars = [] {
    std::array<std::string, 256> c;
    const auto &inv = byteLevelInverse();
    for (uint32_t cp = 0; cp < inv.size(); ++cp)
      if (inv[cp] >= 0)
        appendUtf8(c[inv[cp]], cp);
    return c;
  }();
  return chars;
}

bool byteLevelDecode(std::string_view s, std::string &out) {
  const auto &inv = byteLevelInverse();
  std::string r;
  r.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    uint32_t cp;
    if (c < 0x80) {
      cp = c;
      i += 1;
    } else if ((c & 0xE0) == 0xC0 && i + 1 < s.size()) {
      cp = ((c & 0x1F) << 6) | (static_cast<unsigned char>(s[i + 1]) & 0x3F);
      i += 2;
    } else {
      return false; // every byte-level character is below U+0800
    }
    if (cp >= inv.size() || inv[cp] < 0)
      return false;
    r.push_back(static_cast<char>(inv[cp]));
  }
  out += r;
  return true;
}

std::string utf8Lossy(std::string_view s) {
  static const char kReplacement[] = "\xEF\xBF\xBD";
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  const size_t n = s.size();
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  while (i < n) {
    unsigned char c = byte(i);
    if (c < 0x80) {
      out.push_back(static_cast<char>(c));
      ++i;
      continue;
    }
    // The "maximal subpart" rule (Unicode 3.9, as Rust applies it): consume
    // the longest prefix of a well-formed sequence, emit one U+FFFD for it.
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
      need = 1;
    else if (c >= 0xE0 && c <= 0xEF) {
      need = 2;
      if (c == 0xE0)
        lo = 0xA0;
      if (c == 0xED)
        hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      need = 3;
      if (c == 0xF0)
        lo = 0x90;
      if (c == 0xF4)
        hi = 0x8F;
    } else {
      out += kReplacement;
      ++i;
      continue;
    }
    size_t k = 1;
    bool ok = true;
    for (; k <= need; ++k) {
      if (i + k >= n) {
        ok = false;
        break;
      }
      unsigned char b = byte(i + k);
      unsigned char l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
      if (b < l || b > h) {
        ok = false;
        break;
      }
    }
    if (ok) {
      out.append(s.substr(i, need + 1));
      i += need + 1;
    } else {
      out += kReplacement;
      i += k;
    }
  }
  return out;
}

//===----------------------------------------------------------------------===//
// Regex
//===----------------------------------------------------------------------===//

Regex::~Regex() {
  if (code)
    pcre2_code_free(static_cast<pcre2_code *>(code));
}

Status Regex::compile(const std::string &pattern,
                      std::shared_ptr<const Regex> &out) {
  int err = 0;
  PCRE2_SIZE errOffset = 0;
  pcre2_code *c = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()),
                                pattern.size(),
                                PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF,
                                &err, &errOffset, nullptr);
  if (!c) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof(msg));
    return Status::error("cannot compile regex " + json::quote(pattern) +
                         " at offset " + std::to_string(errOffset) + ": " +
                         reinterpret_cast<const char *>(msg));
  }
  // JIT is an optimisation only: without it (no JIT support on this CPU or
  // build) the interpreter gives the same matches.
  (void)pcre2_jit_compile(c, PCRE2_JIT_COMPLETE);
  std::shared_ptr<Regex> r(new Regex());
  r->code = c;
  r->source = pattern;
  out = std::move(r);
  return Status::ok();
}

Status Regex::findAll(std::string_view s,
                      std::vector<std::pair<size_t, size_t>> &out) const {
  out.clear();
  auto *c = static_cast<pcre2_code *>(code);
  pcre2_match_data *md = pcre2_match_data_create_from_pattern(c, nullptr);
  if (!md)
    return Status::error("out of memory for regex match data");
  auto subject = reinterpret_cast<PCRE2_SPTR>(s.data());
  size_t off = 0;
  uint32_t options = 0;
  Status status = Status::ok();
  while (off <= s.size()) {
    int rc = pcre2_match(c, subject, s.size(), off, options, md, nullptr);
    if (rc == PCRE2_ERROR_NOMATCH)
      break;
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT && !(options & PCRE2_NO_JIT)) {
      // A long run (e.g. megabytes of spaces) can exhaust the JIT's small
      // default stack; the interpreter uses the heap instead.
      options |= PCRE2_NO_JIT;
      continue;
    }
    if (rc < 0) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(rc, msg, sizeof(msg));
      status = Status::error("regex " + json::quote(source) +
                             " failed at byte " + std::to_string(off) + ": " +
                             reinterpret_cast<const char *>(msg));
      break;
    }
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    size_t b = ov[0], e = ov[1];
    if (e > b) {
      out.emplace_back(b, e);
      off = e;
    } else {
      // Empty matches split nothing (empty pieces are dropped); step over
      // one character so the search makes progress.
      if (b >= s.size())
        break;
      off = b + charLenAt(s, b);
    }
  }
  pcre2_match_data_free(md);
  return status;
}

bool Regex::matches(std::string_view s) const {
  std::vector<std::pair<size_t, size_t>> m;
  if (!findAll(s, m))
    return false;
  return !m.empty();
}

//===----------------------------------------------------------------------===//
// Pipeline: setup and lookups
//===----------------------------------------------------------------------===//

Status Pipeline::finalize(const std::string &sourceName) {
  size = static_cast<int64_t>(model.pieces.size());
  addedById.clear();
  addedByContent.clear();
  for (size_t i = 0; i < added.size(); ++i) {
    const AddedToken &a = added[i];
    if (a.id < 0)
      return Status::error(sourceName + ": added token " +
                           json::quote(a.content) + " has a negative id");
    size = std::max<int64_t>(size, int64_t(a.id) + 1);
    addedById[a.id] = static_cast<int>(i);
    addedByContent.emplace(a.content, a.id);
  }
  model.byteIds.fill(-1);
  for (int b = 0; b < 256; ++b) {
    static const char *hex = "0123456789ABCDEF";
    std::string name = "<0x00>";
    name[3] = hex[b >> 4];
    name[4] = hex[b & 15];
    auto it = model.index.find(name);
    if (it != model.index.end())
      model.byteIds[b] = it->second;
  }
  matchForm.assign(added.size(), std::string());
  for (auto &b : rawBuckets)
    b.clear();
  for (auto &b : normBuckets)
    b.clear();
  haveRaw = haveNorm = false;
  for (size_t i = 0; i < added.size(); ++i) {
    std::string form = added[i].content;
    if (added[i].normalized)
      QC_RETURN_IF_ERROR(normalize(form).withContext(sourceName));
    if (form.empty())
      continue; // an empty pattern would match everywhere; HF skips it too
    matchForm[i] = form;
    Buckets &bk = added[i].normalized ? normBuckets : rawBuckets;
    (added[i].normalized ? haveNorm : haveRaw) = true;
    bk[static_cast<unsigned char>(form[0])].push_back(static_cast<int>(i));
  }
  for (Buckets *bk : {&rawBuckets, &normBuckets})
    for (auto &b : *bk)
      std::sort(b.begin(), b.end(), [&](int x, int y) {
        // Longest first; equal lengths keep the file's order.
        if (matchForm[x].size() != matchForm[y].size())
          return matchForm[x].size() > matchForm[y].size();
        return x < y;
      });
  QC_RETURN_IF_ERROR(Regex::compile("\\w", wordChar));
  return Status::ok();
}

std::string Pipeline::tokenPiece(int id) const {
  auto it = addedById.find(id);
  if (it != addedById.end())
    return added[it->second].content;
  if (id >= 0 && static_cast<size_t>(id) < model.pieces.size())
    return model.pieces[id];
  return std::string();
}

int Pipeline::pieceId(std::string_view piece) const {
  auto a = addedByContent.find(std::string(piece));
  if (a != addedByContent.end())
    return a->second;
  auto it = model.index.find(std::string(piece));
  return it == model.index.end() ? -1 : it->second;
}

bool Pipeline::isSpecial(int id) const {
  auto it = addedById.find(id);
  return it != addedById.end() && added[it->second].special;
}

std::vector<int> Pipeline::specialIds() const {
  std::vector<int> ids;
  for (const AddedToken &a : added)
    if (a.special)
      ids.push_back(a.id);
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

//===----------------------------------------------------------------------===//
// Pipeline: encoding
//===----------------------------------------------------------------------===//

Status Pipeline::splitAdded(const Segment &seg, const Buckets &buckets,
                            std::vector<Segment> &out) const {
  const std::string &s = seg.text;
  size_t startOffset = 0;
  auto emitText = [&](size_t b, size_t e) {
    if (e > b)
      out.push_back({s.substr(b, e - b), -1, seg.first && b == 0});
  };
  size_t p = 0;
  while (p < s.size()) {
    const std::vector<int> &cands = buckets[static_cast<unsigned char>(s[p])];
    int hit = -1;
    for (int idx : cands) {
      const std::string &f = matchForm[idx];
      if (s.compare(p, f.size(), f) == 0) {
        hit = idx;
        break;
      }
    }
    if (hit < 0) {
      ++p;
      continue;
    }
    const AddedToken &tok = added[hit];
    size_t start = p, stop = p + matchForm[hit].size();
    p = stop; // matches never overlap, discarded ones included
    if (tok.singleWord) {
      // Only a match with no word character right before or after it.
      bool startOk = true;
      if (start > 0) {
        size_t q = start - 1;
        while (q > 0 && (static_cast<unsigned char>(s[q]) & 0xC0) == 0x80)
          --q;
        startOk = !wordChar->matches(std::string_view(s).substr(q, start - q));
      }
      bool stopOk = stop == s.size() ||
                    !wordChar->matches(
                        std::string_view(s).substr(stop, charLenAt(s, stop)));
      if (!startOk || !stopOk)
        continue;
    }
    if (tok.lstrip)
      start = std::max(trailingSpaceStart(std::string_view(s).substr(0, start)),
                       startOffset);
    if (tok.rstrip) {
      stop += leadingSpaceLen(std::string_view(s).substr(stop));
      p = stop;
    }
    emitText(startOffset, start);
    out.push_back({std::string(), tok.id, false});
    startOffset = stop;
  }
  emitText(startOffset, s.size());
  return Status::ok();
}

namespace {

/// True when every string made of `cp` and other such characters is
/// already in NFC: the character's NFC_Quick_Check is Yes and its canonical
/// combining class is 0 (so no reordering or composition can involve it).
/// Conservative on purpose: whole blocks known to satisfy both (Latin up to
/// the spacing modifiers, Cyrillic letters, punctuation, CJK, kana without
/// the combining voicing marks, Hangul syllables, fullwidth forms, emoji,
/// private use); anything else is reported rather than approximated.
bool nfcStable(uint32_t cp) {
  static const std::pair<uint32_t, uint32_t> kRanges[] = {
      {0x0000, 0x02FF},  {0x0400, 0x0482}, {0x048A, 0x04FF}, {0x200B, 0x205F},
      {0x20A0, 0x20C0},  {0x2500, 0x27BF}, {0x3000, 0x3029}, {0x3030, 0x3098},
      {0x309B, 0x30FF},  {0x3400, 0x4DBF}, {0x4E00, 0x9FFF}, {0xAC00, 0xD7A3},
      {0xE000, 0xF8FF},  {0xFE00, 0xFE0F}, {0xFF01, 0xFFEF}, {0x1F000, 0x1FAFF},
      {0x20000, 0x2EBEF}};
  for (auto &[lo, hi] : kRanges)
    if (cp >= lo && cp <= hi)
      return true;
  return false;
}

/// Checks that NFC leaves `s` unchanged; invalid UTF-8 bytes are left to
/// the model (NFC cannot apply to them).
Status checkNfc(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    size_t n = charLenAt(s, i);
    unsigned char c = static_cast<unsigned char>(s[i]);
    uint32_t cp = n == 1 ? c : (c & (0xFF >> (n + 1)));
    for (size_t k = 1; k < n; ++k)
      cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    if (n > 1 && !nfcStable(cp)) {
      char hex[16];
      std::snprintf(hex, sizeof(hex), "U+%04X", cp);
      return Status::error(
          std::string("the NFC normalizer may change character ") + hex +
          " at byte " + std::to_string(i) +
          " and this build has no Unicode normalization tables; only text "
          "that NFC provably leaves unchanged can be encoded");
    }
    i += n;
  }
  return Status::ok();
}

} // namespace

Status Pipeline::normalize(std::string &s) const {
  for (const NormStep &n : normalizer) {
    switch (n.kind) {
    case NormStep::NfcCheck:
      QC_RETURN_IF_ERROR(checkNfc(s));
      break;
    case NormStep::Prepend:
      if (!s.empty())
        s = n.text + s;
      break;
    case NormStep::Replace:
      if (n.regex) {
        std::vector<std::pair<size_t, size_t>> m;
        QC_RETURN_IF_ERROR(n.regex->findAll(s, m));
        std::string r;
        size_t pos = 0;
        for (auto &[b, e] : m) {
          r.append(s, pos, b - pos);
          r += n.content;
          pos = e;
        }
        r.append(s, pos, std::string::npos);
        s = std::move(r);
      } else {
        s = replaceAll(s, n.text, n.content);
      }
      break;
    }
  }
  return Status::ok();
}

namespace {

/// A part of a pre-token while splitting: [b, e) and whether it matched.
struct Part {
  size_t b, e;
  bool match;
};

/// Applies a split behaviour (Hugging Face's SplitDelimiterBehavior) to the
/// parts that cover a string; returns the kept [b, e) ranges.
std::vector<std::pair<size_t, size_t>> applyBehavior(std::vector<Part> parts,
                                                     SplitBehavior how) {
  std::vector<Part> acc;
  switch (how) {
  case SplitBehavior::Isolated:
    acc = std::move(parts);
    break;
  case SplitBehavior::Removed:
    for (const Part &p : parts)
      if (!p.match)
        acc.push_back(p);
    break;
  case SplitBehavior::MergedWithPrevious: {
    bool prevMatch = false;
    for (const Part &p : parts) {
      if (p.match && !prevMatch && !acc.empty())
        acc.back().e = p.e;
      else
        acc.push_back(p);
      prevMatch = p.match;
    }
    break;
  }
  case SplitBehavior::MergedWithNext: {
    bool prevMatch = false;
    for (size_t i = parts.size(); i-- > 0;) {
      const Part &p = parts[i];
      if (p.match && !prevMatch && !acc.empty())
        acc.back().b = p.b;
      else
        acc.push_back(p);
      prevMatch = p.match;
    }
    std::reverse(acc.begin(), acc.end());
    break;
  }
  case SplitBehavior::Contiguous: {
    bool prevMatch = false;
    for (const Part &p : parts) {
      if (p.match == prevMatch && !acc.empty())
        acc.back().e = p.e;
      else
        acc.push_back(p);
      prevMatch = p.match;
    }
    break;
  }
  }
  std::vector<std::pair<size_t, size_t>> out;
  for (const Part &p : acc)
    if (p.e > p.b)
      out.emplace_back(p.b, p.e);
  return out;
}

/// Splits `s` at the matches `m` into covering parts.
std::vector<Part> coverParts(size_t n,
                             const std::vector<std::pair<size_t, size_t>> &m,
                             bool invert) {
  std::vector<Part> parts;
  size_t prev = 0;
  for (auto &[b, e] : m) {
    if (b > prev)
      parts.push_back({prev, b, invert});
    parts.push_back({b, e, !invert});
    prev = e;
  }
  if (prev < n)
    parts.push_back({prev, n, invert});
  return parts;
}

/// The GPT-2 pre-tokenization regex that ByteLevel(use_regex) applies.
const char *kGpt2Pattern =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|"
    "\\s+(?!\\S)|\\s+";

} // namespace

Status Pipeline::preTokenize(const Segment &seg,
                             std::vector<Segment> &pieces) const {
  pieces.clear();
  pieces.push_back(seg);
  std::vector<Segment> next;
  std::vector<std::pair<size_t, size_t>> m;
  auto splitInto = [&](const Segment &p,
                       const std::vector<std::pair<size_t, size_t>> &ranges) {
    for (auto &[b, e] : ranges)
      next.push_back({p.text.substr(b, e - b), -1, p.first && b == 0});
  };
  for (const PreStep &step : preTokenizer) {
    next.clear();
    for (Segment &p : pieces) {
      switch (step.kind) {
      case PreStep::Split: {
        if (step.regex) {
          QC_RETURN_IF_ERROR(step.regex->findAll(p.text, m));
        } else {
          m.clear();
          if (!step.literal.empty())
            for (size_t pos = p.text.find(step.literal);
                 pos != std::string::npos;
                 pos = p.text.find(step.literal, pos + step.literal.size()))
              m.emplace_back(pos, pos + step.literal.size());
        }
        splitInto(p, applyBehavior(coverParts(p.text.size(), m, step.invert),
                                   step.behavior));
        break;
      }
      case PreStep::ByteLevel: {
        Segment q = p;
        if (step.addPrefixSpace && (q.text.empty() || q.text[0] != ' '))
          q.text.insert(q.text.begin(), ' ');
        size_t firstNew = next.size();
        if (step.useRegex) {
          static std::shared_ptr<const Regex> gpt2;
          static Status gpt2Status = Regex::compile(kGpt2Pattern, gpt2);
          QC_RETURN_IF_ERROR(gpt2Status);
          QC_RETURN_IF_ERROR(gpt2->findAll(q.text, m));
          splitInto(q, applyBehavior(coverParts(q.text.size(), m, false),
                                     SplitBehavior::Isolated));
        } else if (!q.text.empty()) {
          next.push_back(q);
        }
        const auto &chars = byteLevelChars();
        for (size_t i = firstNew; i < next.size(); ++i) {
          std::string mapped;
          mapped.reserve(next[i].text.size() * 2);
          for (char c : next[i].text)
            mapped += chars[static_cast<unsigned char>(c)];
          next[i].text = std::move(mapped);
        }
        break;
      }
      case PreStep::Metaspace: {
        Segment q = p;
        q.text = replaceAll(q.text, " ", step.replacement);
        bool starts =
            q.text.compare(0, step.replacement.size(), step.replacement) == 0;
        if (!starts && (step.prepend == PreStep::Always ||
                        (step.prepend == PreStep::First && q.first)))
          q.text = step.replacement + q.text;
        if (step.split) {
          m.clear();
          for (size_t pos = q.text.find(step.replacement);
               pos != std::string::npos;
               pos =
                   q.text.find(step.replacement, pos + step.replacement.size()))
            m.emplace_back(pos, pos + step.replacement.size());
          splitInto(q, applyBehavior(coverParts(q.text.size(), m, false),
                                     SplitBehavior::MergedWithNext));
        } else if (!q.text.empty()) {
          next.push_back(q);
        }
        break;
      }
      }
    }
    pieces.swap(next);
  }
  return Status::ok();
}

void Pipeline::bpeWord(const std::string &w, std::vector<int> &out) const {
  struct Sym {
    int id;
    int prev, next;
    bool alive;
  };
  std::vector<Sym> syms;
  syms.reserve(w.size());
  int unk = -1; // pending unknown (fused or not yet added)
  auto add = [&](int id) {
    int n = static_cast<int>(syms.size());
    syms.push_back({id, n - 1, -1, true});
    if (n > 0)
      syms[n - 1].next = n;
  };
  size_t i = 0;
  std::string ch;
  while (i < w.size()) {
    size_t n = charLenAt(w, i);
    ch.assign(w, i, n);
    i += n;
    auto it = model.index.find(ch);
    if (it != model.index.end()) {
      if (unk >= 0) {
        add(unk);
        unk = -1;
      }
      add(it->second);
      continue;
    }
    if (model.byteFallback) {
      bool all = true;
      for (char c : ch)
        all = all && model.byteIds[static_cast<unsigned char>(c)] >= 0;
      if (all) {
        // Hugging Face adds the byte tokens without flushing a pending
        // unknown first; the pending one lands after them.
        for (char c : ch)
          add(model.byteIds[static_cast<unsigned char>(c)]);
        continue;
      }
    }
    if (model.unkId >= 0) {
      if (unk >= 0 && !model.fuseUnk)
        add(unk);
      unk = model.unkId;
    }
  }
  if (unk >= 0)
    add(unk);

  auto mergeOf = [&](int a, int b) -> const std::pair<int, int> * {
    auto it = model.merges.find((static_cast<uint64_t>(a) << 32) |
                                static_cast<uint32_t>(b));
    return it == model.merges.end() ? nullptr : &it->second;
  };
  struct Cand {
    int rank, pos, newId;
  };
  auto greater = [](const Cand &a, const Cand &b) {
    return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
  };
  std::priority_queue<Cand, std::vector<Cand>, decltype(greater)> heap(greater);
  for (size_t k = 0; k + 1 < syms.size(); ++k)
    if (auto *m = mergeOf(syms[k].id, syms[k + 1].id))
      heap.push({m->first, static_cast<int>(k), m->second});
  while (!heap.empty()) {
    Cand c = heap.top();
    heap.pop();
    Sym &l = syms[c.pos];
    if (!l.alive || l.next < 0)
      continue;
    Sym &r = syms[l.next];
    const auto *m = mergeOf(l.id, r.id);
    if (!m || m->second != c.newId)
      continue; // stale: the pair here changed since it was queued
    l.id = c.newId;
    r.alive = false;
    l.next = r.next;
    if (r.next >= 0)
      syms[r.next].prev = c.pos;
    if (l.prev >= 0)
      if (auto *pm = mergeOf(syms[l.prev].id, l.id))
        heap.push({pm->first, l.prev, pm->second});
    if (l.next >= 0)
      if (auto *nm = mergeOf(l.id, syms[l.next].id))
        heap.push({nm->first, c.pos, nm->second});
  }
  for (int k = syms.empty() ? -1 : 0; k >= 0; k = syms[k].next)
    out.push_back(syms[k].id);
}

void Pipeline::spmWord(const std::string &w, std::vector<int> &out) const {
  // llama.cpp's SentencePiece merge: start from characters, repeatedly
  // join the adjacent pair whose concatenation is a token with the highest
  // score (leftmost on ties), then emit each symbol as its token, as the
  // two symbols it was made of, or as byte tokens.
  struct Sym {
    size_t off, n;
    int prev, next;
  };
  std::vector<Sym> syms;
  for (size_t i = 0; i < w.size();) {
    size_t n =
        std::min(utf8Len(static_cast<unsigned char>(w[i])), w.size() - i);
    int k = static_cast<int>(syms.size());
    syms.push_back({i, n, k - 1, i + n == w.size() ? -1 : k + 1});
    i += n;
  }
  struct Bigram {
    float score;
    int left, right;
    size_t size;
  };
  auto less = [](const Bigram &a, const Bigram &b) {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  };
  std::priority_queue<Bigram, std::vector<Bigram>, decltype(less)> queue(less);
  auto tryAdd = [&](int l, int r) {
    if (l < 0 || r < 0)
      return;
    std::string text = w.substr(syms[l].off, syms[l].n + syms[r].n);
    auto it = model.index.find(text);
    if (it == model.index.end())
      return;
    queue.push({model.scores[it->second], l, r, text.size()});
  };
  for (int k = 1; k < static_cast<int>(syms.size()); ++k)
    tryAdd(k - 1, k);
  while (!queue.empty()) {
    Bigram b = queue.top();
    queue.pop();
    Sym &l = syms[b.left], &r = syms[b.right];
    if (l.n == 0 || r.n == 0 || l.n + r.n != b.size)
      continue;
    l.n += r.n;
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0)
      syms[r.next].prev = b.left;
    tryAdd(l.prev, b.left);
    tryAdd(b.left, l.next);
  }
  // Every merged symbol is a token by construction, so only single
  // characters missing from the vocabulary remain: they become byte tokens
  // (the unknown token when a byte token is missing).
  for (int k = syms.empty() ? -1 : 0; k >= 0; k = syms[k].next) {
    auto it = model.index.find(w.substr(syms[k].off, syms[k].n));
    if (it != model.index.end()) {
      out.push_back(it->second);
      continue;
    }
    for (size_t j = 0; j < syms[k].n; ++j) {
      int id = model.byteIds[static_cast<unsigned char>(w[syms[k].off + j])];
      if (id < 0)
        id = model.unkId;
      if (id >= 0)
        out.push_back(id);
    }
  }
}

void Pipeline::encodeWord(
    const std::string &word,
    std::unordered_map<std::string, std::vector<int>> &cache,
    std::vector<int> &out) const {
  if (model.ignoreMerges) {
    auto it = model.index.find(word);
    if (it != model.index.end()) {
      out.push_back(it->second);
      return;
    }
  }
  auto hit = cache.find(word);
  if (hit != cache.end()) {
    out.insert(out.end(), hit->second.begin(), hit->second.end());
    return;
  }
  std::vector<int> ids;
  if (model.kind == Model::Bpe)
    bpeWord(word, ids);
  else
    spmWord(word, ids);
  out.insert(out.end(), ids.begin(), ids.end());
  // Bound the cache so that a pathological input (millions of distinct
  // long words) cannot grow it without limit.
  if (word.size() < 256 && cache.size() < (1u << 18))
    cache.emplace(word, std::move(ids));
}

Status Pipeline::encode(std::string_view text, bool addSpecial,
                        std::vector<int> &out) const {
  out.clear();
  if (addSpecial)
    out = prefix;
  std::unordered_map<std::string, std::vector<int>> cache;
  std::vector<Segment> raw, norm, pieces;
  Segment whole{std::string(text), -1, true};
  if (haveRaw)
    QC_RETURN_IF_ERROR(splitAdded(whole, rawBuckets, raw));
  else if (!whole.text.empty())
    raw.push_back(std::move(whole));
  for (Segment &seg : raw) {
    if (seg.id >= 0) {
      out.push_back(seg.id);
      continue;
    }
    QC_RETURN_IF_ERROR(normalize(seg.text));
    norm.clear();
    if (haveNorm)
      QC_RETURN_IF_ERROR(splitAdded(seg, normBuckets, norm));
    else if (!seg.text.empty())
      norm.push_back(seg);
    for (const Segment &n : norm) {
      if (n.id >= 0) {
        out.push_back(n.id);
        continue;
      }
      QC_RETURN_IF_ERROR(preTokenize(n, pieces));
      for (const Segment &p : pieces)
        encodeWord(p.text, cache, out);
    }
  }
  if (addSpecial)
    out.insert(out.end(), suffix.begin(), suffix.end());
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// Pipeline: decoding
//===----------------------------------------------------------------------===//

std::string Pipeline::runDecoder(std::vector<std::string> tokens, bool raw,
                                 bool first) const {
  if (decoder.empty()) {
    // Hugging Face joins the tokens with spaces when there is no decoder.
    std::string s;
    for (size_t i = 0; i < tokens.size(); ++i)
      s += (i ? " " : "") + tokens[i];
    return s;
  }
  static const char kReplacement[] = "\xEF\xBF\xBD";
  for (const DecStep &d : decoder) {
    switch (d.kind) {
    case DecStep::ByteLevel: {
      std::string bytes;
      for (const std::string &t : tokens)
        if (!byteLevelDecode(t, bytes))
          bytes += t;
      tokens.assign(1, raw ? bytes : utf8Lossy(bytes));
      break;
    }
    case DecStep::Metaspace:
      for (size_t i = 0; i < tokens.size(); ++i)
        tokens[i] = replaceAll(tokens[i], d.text,
                               i == 0 && first && d.dropFirst ? "" : " ");
      break;
    case DecStep::Replace:
      for (std::string &t : tokens)
        t = replaceAll(t, d.text, d.content);
      break;
    case DecStep::ByteFallback: {
      std::vector<std::string> r;
      std::string pending;
      size_t pendingCount = 0;
      auto flush = [&]() {
        if (!pendingCount)
          return;
        if (raw || json::isValidUtf8(pending.data(), pending.size())) {
          r.push_back(pending);
        } else {
          for (size_t k = 0; k < pendingCount; ++k)
            r.push_back(kReplacement);
        }
        pending.clear();
        pendingCount = 0;
      };
      for (std::string &t : tokens) {
        int b = byteTokenValue(t);
        if (b >= 0) {
          pending.push_back(static_cast<char>(b));
          ++pendingCount;
        } else {
          flush();
          r.push_back(std::move(t));
        }
      }
      flush();
      tokens.swap(r);
      break;
    }
    case DecStep::Fuse: {
      std::string all;
      for (const std::string &t : tokens)
        all += t;
      tokens.assign(1, all);
      break;
    }
    case DecStep::Strip:
      for (std::string &t : tokens) {
        const std::string &c = d.text;
        size_t b = 0, e = t.size();
        for (int k = 0; first && k < d.start && !c.empty() &&
                        t.compare(b, c.size(), c) == 0 && b + c.size() <= e;
             ++k)
          b += c.size();
        for (int k = 0; k < d.stop && !c.empty() && e >= b + c.size() &&
                        t.compare(e - c.size(), c.size(), c) == 0;
             ++k)
          e -= c.size();
        t = t.substr(b, e - b);
      }
      break;
    }
  }
  std::string s;
  for (const std::string &t : tokens)
    s += t;
  return s;
}

std::string Pipeline::decode(const std::vector<int> &ids,
                             bool skipSpecial) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int id : ids) {
    if (id < 0 || id >= size)
      continue;
    if (skipSpecial && isSpecial(id))
      continue;
    tokens.push_back(tokenPiece(id));
  }
  return runDecoder(std::move(tokens), /*raw=*/false, /*first=*/true);
}

std::string Pipeline::decodePiece(int prev, int id) const {
  if (id < 0 || id >= size)
    return std::string();
  bool first = prev < 0 || isSpecial(prev);
  return runDecoder({tokenPiece(id)}, /*raw=*/true, first);
}

} // namespace tok
} // namespace qc
