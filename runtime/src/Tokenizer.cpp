//===- Tokenizer.cpp - llama2.c BPE tokenizer -------------------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Loads llama2.c tokenizer.bin files and implements run.c's greedy BPE.
// run.c rescans the whole token list after every merge (O(n^2) per text,
// with a binary search and sprintf per pair); here every candidate pair sits
// in a max-heap ordered by (score, position) over a doubly linked list, and
// stale heap entries are recognised by per-node version counters. Popping
// the best valid entry is exactly run.c's "highest score, leftmost on ties"
// choice, so the output is identical while the cost is O(n log n).
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/Tokenizer.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <queue>

#include <sys/stat.h>

namespace qc {
namespace {

/// run.c starts its best-score search at -1e10f with a strict `>`, so a
/// pair whose merged piece scores at or below this (or NaN) never merges.
constexpr float kMinMergeScore = -1e10f;

/// The byte-fallback piece of byte `b`: "<0xHH>" with upper-case hex, as
/// SentencePiece names them.
std::string bytePiece(int b) {
  static const char *hex = "0123456789ABCDEF";
  std::string s = "<0x00>";
  s[3] = hex[(b >> 4) & 15];
  s[4] = hex[b & 15];
  return s;
}

/// Value of hex digit `c`, or -1.
int hexValue(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/// Reads a little-endian 32-bit value at `pos`; the caller checked bounds.
template <typename T> T readLE(const std::string &buf, size_t pos) {
  static_assert(sizeof(T) == 4, "4-byte fields only");
  T v;
  std::memcpy(&v, buf.data() + pos, 4);
  return v;
}

/// A merge candidate: the pair (left, right) of list nodes merging into
/// `merged` with `score`. `leftVer`/`rightVer` snapshot the nodes' versions
/// so entries invalidated by later merges can be skipped when popped.
struct Candidate {
  float score;
  int left;
  int right;
  int merged;
  uint32_t leftVer;
  uint32_t rightVer;
};

/// Heap order: higher score first; on equal scores the leftmost pair, which
/// is run.c's strict `>` scan from the left. Node indices are original
/// positions and merges keep the left node, so index order is list order.
struct CandidateLess {
  bool operator()(const Candidate &a, const Candidate &b) const {
    if (a.score != b.score)
      return a.score < b.score;
    return a.left > b.left;
  }
};

} // namespace

Status Tokenizer::load(const std::string &path, int64_t vocabSize,
                       Tokenizer &out) {
  if (vocabSize < kByteOffset + 256 || vocabSize > kMaxVocab)
    return Status::error(path + ": requested vocab size " +
                         std::to_string(vocabSize) + " is outside [259, " +
                         std::to_string(kMaxVocab) +
                         "] (3 control tokens + 256 byte tokens minimum)");
  // A directory opens fine as an ifstream on Linux and then reports a bogus
  // size, so reject anything that is not a regular file up front.
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
    return Status::error(path + ": not a regular file");
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return Status::error(path +
                         ": cannot open tokenizer: " + std::strerror(errno));
  in.seekg(0, std::ios::end);
  std::streamoff fileSize = in.tellg();
  in.seekg(0, std::ios::beg);
  if (fileSize < 0)
    return Status::error(path + ": cannot determine the tokenizer file size");
  if (fileSize > kMaxFileBytes)
    return Status::error(path + ": tokenizer file is " +
                         std::to_string(fileSize) + " bytes, above the " +
                         std::to_string(kMaxFileBytes) + "-byte limit");
  std::string buf(static_cast<size_t>(fileSize), '\0');
  in.read(&buf[0], fileSize);
  if (!in || in.gcount() != fileSize)
    return Status::error(path + ": cannot read the tokenizer file");

  const size_t size = buf.size();
  if (size < 4)
    return Status::error(path + ": file is " + std::to_string(size) +
                         " bytes, too small for the max_token_length header");
  int32_t maxLen = readLE<int32_t>(buf, 0);
  if (maxLen < 0 || maxLen > kMaxPieceBytes)
    return Status::error(path + ": max_token_length " + std::to_string(maxLen) +
                         " is outside [0, " + std::to_string(kMaxPieceBytes) +
                         "]");

  // Every entry needs at least 8 bytes, so never reserve more entries than
  // the file could hold: a huge vocabSize then fails below, naming the
  // entry where the data runs out, without a large allocation first.
  const size_t plausible =
      std::min(static_cast<size_t>(vocabSize), (size - 4) / 8);
  std::vector<std::string> pieces;
  std::vector<float> scores;
  pieces.reserve(plausible);
  scores.reserve(plausible);
  size_t pos = 4;
  for (int64_t i = 0; i < vocabSize; ++i) {
    auto entryError = [&](const std::string &what) {
      return Status::error(path + ": tokenizer entry " + std::to_string(i) +
                           " (at byte offset " + std::to_string(pos) +
                           "): " + what);
    };
    if (size - pos < 8)
      return entryError("truncated: the file ends inside the score/length "
                        "fields");
    float score = readLE<float>(buf, pos);
    int32_t len = readLE<int32_t>(buf, pos + 4);
    if (len < 0)
      return entryError("negative piece length " + std::to_string(len));
    if (len > maxLen)
      return entryError("piece length " + std::to_string(len) +
                        " exceeds the header's max_token_length " +
                        std::to_string(maxLen));
    if (size - pos - 8 < static_cast<size_t>(len))
      return entryError("truncated: piece of " + std::to_string(len) +
                        " bytes runs past the end of the file");
    pieces.emplace_back(buf, pos + 8, static_cast<size_t>(len));
    scores.push_back(score);
    pos += 8 + static_cast<size_t>(len);
  }
  if (pos != size)
    return Status::error(path + ": " + std::to_string(size - pos) +
                         " trailing bytes after " + std::to_string(vocabSize) +
                         " tokenizer entries (does the vocab size match the "
                         "file?)");
  return build(std::move(pieces), std::move(scores), maxLen, path, out);
}

Status Tokenizer::create(std::vector<std::string> pieces,
                         std::vector<float> scores, Tokenizer &out,
                         const std::string &sourceName) {
  size_t longest = 0;
  for (const std::string &p : pieces)
    longest = std::max(longest, p.size());
  if (longest > static_cast<size_t>(kMaxPieceBytes))
    return Status::error(sourceName + ": a piece is longer than " +
                         std::to_string(kMaxPieceBytes) + " bytes");
  return build(std::move(pieces), std::move(scores),
               static_cast<int32_t>(longest), sourceName, out);
}

Status Tokenizer::build(std::vector<std::string> pieces,
                        std::vector<float> scores, int32_t maxTokenLength,
                        const std::string &sourceName, Tokenizer &out) {
  if (pieces.size() != scores.size())
    return Status::error(sourceName + ": " + std::to_string(pieces.size()) +
                         " pieces but " + std::to_string(scores.size()) +
                         " scores");
  if (pieces.size() < static_cast<size_t>(kByteOffset + 256) ||
      pieces.size() > static_cast<size_t>(kMaxVocab))
    return Status::error(
        sourceName + ": vocabulary of " + std::to_string(pieces.size()) +
        " pieces is outside [259, " + std::to_string(kMaxVocab) + "]");
  // encode() maps an unknown byte b to id b + 3 blindly, as run.c does; make
  // sure that id really is the byte's piece.
  for (int b = 0; b < 256; ++b) {
    std::string want = bytePiece(b);
    if (pieces[b + kByteOffset] != want)
      return Status::error(sourceName + ": tokenizer entry " +
                           std::to_string(b + kByteOffset) + " is '" +
                           pieces[b + kByteOffset] +
                           "' but byte fallback needs '" + want + "'");
  }

  Tokenizer t;
  t.maxTokenLen = maxTokenLength;
  t.pieceToId.reserve(pieces.size() * 2);
  for (size_t i = 0; i < pieces.size(); ++i)
    t.pieceToId.emplace(pieces[i], static_cast<int>(i)); // keeps lowest id
  t.singleByte.fill(-1);
  for (int b = 0; b < 256; ++b) {
    auto it = t.pieceToId.find(std::string(1, static_cast<char>(b)));
    if (it != t.pieceToId.end())
      t.singleByte[b] = it->second;
  }
  auto sp = t.pieceToId.find(" ");
  t.spaceId = sp != t.pieceToId.end() ? sp->second : ' ' + kByteOffset;

  // Precompute every mergeable pair by splitting each piece at every
  // position: (a, b) merges into lookup(piece[a] + piece[b]), so the pairs
  // that can merge are exactly the splits of existing pieces. Every id that
  // carries a split's string takes part, so repeated pieces behave too.
  std::unordered_map<std::string, std::vector<int>> idsOf;
  idsOf.reserve(pieces.size() * 2);
  for (size_t i = 0; i < pieces.size(); ++i)
    idsOf[pieces[i]].push_back(static_cast<int>(i));
  for (const auto &entry : t.pieceToId) {
    const std::string &s = entry.first;
    int merged = entry.second;
    // `!(x > y)` rather than `x <= y` so that NaN scores are excluded too.
    if (!(scores[merged] > kMinMergeScore))
      continue;
    for (size_t k = 0; k <= s.size(); ++k) {
      auto left = idsOf.find(s.substr(0, k));
      if (left == idsOf.end())
        continue;
      auto right = idsOf.find(s.substr(k));
      if (right == idsOf.end())
        continue;
      for (int a : left->second)
        for (int b : right->second)
          t.merges[(static_cast<uint64_t>(a) << 32) |
                   static_cast<uint32_t>(b)] = merged;
    }
  }
  t.pieces = std::move(pieces);
  t.scores = std::move(scores);
  out = std::move(t);
  return Status::ok();
}

int Tokenizer::lookup(const std::string &s) const {
  auto it = pieceToId.find(s);
  return it == pieceToId.end() ? -1 : it->second;
}

int Tokenizer::mergeOf(int left, int right) const {
  auto it = merges.find((static_cast<uint64_t>(left) << 32) |
                        static_cast<uint32_t>(right));
  return it == merges.end() ? -1 : it->second;
}

void Tokenizer::encode(const std::string &text, bool bos, bool eos,
                       std::vector<int> &out, bool dummyPrefix) const {
  out.clear();
  if (pieces.empty())
    return;
  std::vector<int> toks;
  toks.reserve(text.size() + 2);
  if (bos)
    toks.push_back(kBosId);
  if (dummyPrefix && !text.empty())
    toks.push_back(spaceId);

  // Split into code points the way run.c does: a non-continuation byte
  // starts a group, continuation bytes (10xxxxxx) extend it up to 4 bytes,
  // and stray continuation bytes form groups of their own.
  const size_t n = text.size();
  std::string group;
  for (size_t i = 0; i < n; ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if ((c & 0xC0) != 0x80)
      group.clear();
    group.push_back(static_cast<char>(c));
    if (i + 1 < n && (static_cast<unsigned char>(text[i + 1]) & 0xC0) == 0x80 &&
        group.size() < 4)
      continue;
    int id = group.size() == 1
                 ? singleByte[static_cast<unsigned char>(group[0])]
                 : lookup(group);
    if (id >= 0) {
      toks.push_back(id);
    } else {
      for (char g : group)
        toks.push_back(static_cast<unsigned char>(g) + kByteOffset);
    }
    group.clear();
  }

  // Greedy merging over a linked list of the initial tokens.
  const int count = static_cast<int>(toks.size());
  if (count > 1) {
    std::vector<int> next(count), prev(count);
    std::vector<uint32_t> version(count, 0);
    std::vector<char> alive(count, 1);
    for (int i = 0; i < count; ++i) {
      next[i] = i + 1 < count ? i + 1 : -1;
      prev[i] = i - 1;
    }
    std::vector<Candidate> storage;
    storage.reserve(count);
    std::priority_queue<Candidate, std::vector<Candidate>, CandidateLess> heap(
        CandidateLess(), std::move(storage));
    auto consider = [&](int l, int r) {
      if (l < 0 || r < 0)
        return;
      int m = mergeOf(toks[l], toks[r]);
      if (m >= 0)
        heap.push({scores[m], l, r, m, version[l], version[r]});
    };
    for (int i = 0; i + 1 < count; ++i)
      consider(i, i + 1);
    while (!heap.empty()) {
      Candidate c = heap.top();
      heap.pop();
      if (!alive[c.left] || !alive[c.right] || next[c.left] != c.right ||
          version[c.left] != c.leftVer || version[c.right] != c.rightVer)
        continue; // a neighbouring merge changed this pair since it was queued
      toks[c.left] = c.merged;
      ++version[c.left];
      alive[c.right] = 0;
      next[c.left] = next[c.right];
      if (next[c.right] >= 0)
        prev[next[c.right]] = c.left;
      consider(prev[c.left], c.left);
      consider(c.left, next[c.left]);
    }
    out.reserve(count + 1);
    for (int i = 0; i >= 0; i = next[i])
      out.push_back(toks[i]);
  } else {
    out = std::move(toks);
  }
  if (eos)
    out.push_back(kEosId);
}

std::string Tokenizer::decodePiece(int prev, int token) const {
  if (token < 0 || token >= static_cast<int>(pieces.size()))
    return std::string();
  const std::string &p = pieces[token];
  size_t start = 0;
  // SentencePiece's decoder drops the dummy-prefix space of the first word.
  if (prev == kBosId && !p.empty() && p[0] == ' ')
    start = 1;
  // "<0xHH>" pieces stand for the raw byte (e.g. "\n" or part of a UTF-8
  // sequence); run.c parses them with sscanf("<0x%02hhX>").
  if (p.size() - start == 6 && p.compare(start, 3, "<0x") == 0 &&
      p[start + 5] == '>') {
    int hi = hexValue(p[start + 3]), lo = hexValue(p[start + 4]);
    if (hi >= 0 && lo >= 0)
      return std::string(1, static_cast<char>(hi * 16 + lo));
  }
  return p.substr(start);
}

std::string Tokenizer::decode(const std::vector<int> &ids) const {
  std::string text;
  int prev = -1;
  for (int id : ids) {
    if (id != kBosId && id != kEosId)
      text += decodePiece(prev, id);
    prev = id;
  }
  return text;
}

} // namespace qc
