//===- Tokenizer.h - llama2.c BPE tokenizer ---------------------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// The SentencePiece-style BPE tokenizer of llama2.c, read from its
// `tokenizer.bin` export (e.g. the bundled tok512.bin). Encoding reproduces
// llama2.c run.c's `encode` token for token, because perplexity numbers are
// only comparable when every tool splits the evaluation text identically;
// it uses a heap over a linked list instead of run.c's quadratic rescans.
//
//===----------------------------------------------------------------------===//

#ifndef QC_RUNTIME_TOKENIZER_H
#define QC_RUNTIME_TOKENIZER_H

#include "qc/runtime/Status.h"

#include <array>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace qc {

/// A llama2.c BPE vocabulary: pieces (raw bytes, SentencePiece's U+2581
/// already replaced by a space) with merge scores. Ids 0, 1, 2 are <unk>,
/// BOS and EOS; ids 3..258 are the byte-fallback pieces "<0x00>".."<0xFF>".
class Tokenizer {
public:
  /// Id of the beginning-of-sequence token (fixed by llama2.c).
  static constexpr int kBosId = 1;
  /// Id of the end-of-sequence token (fixed by llama2.c).
  static constexpr int kEosId = 2;
  /// Byte b falls back to token b + kByteOffset.
  static constexpr int kByteOffset = 3;
  /// Largest accepted vocabulary / per-piece length / file size; they only
  /// exist to reject corrupted inputs before allocating.
  static constexpr int64_t kMaxVocab = 1 << 22;      ///< Pieces.
  static constexpr int64_t kMaxPieceBytes = 1 << 16; ///< Bytes per piece.
  static constexpr int64_t kMaxFileBytes = int64_t(1) << 30; ///< File bytes.

  /// An empty tokenizer (size() == 0); fill it with load() or create().
  Tokenizer() = default;

  /// Reads a llama2.c tokenizer.bin holding exactly `vocabSize` entries:
  /// int32 max_token_length, then per entry float32 score, int32 byte
  /// length and the bytes. Fails, naming `path` and the entry index, on a
  /// missing/truncated file, negative or oversized lengths, trailing bytes
  /// (usually a vocabSize that does not match the file) or byte-fallback
  /// pieces that are not "<0xHH>". `out` is only written on success.
  static Status load(const std::string &path, int64_t vocabSize,
                     Tokenizer &out);

  /// Builds a tokenizer from in-memory pieces and scores (same checks as
  /// load(); `sourceName` prefixes errors). Used by tests and by importers
  /// of other tokenizer formats.
  static Status create(std::vector<std::string> pieces,
                       std::vector<float> scores, Tokenizer &out,
                       const std::string &sourceName = "<memory>");

  /// Encodes `text` (UTF-8 bytes) into `out`, replacing its contents,
  /// exactly as llama2.c run.c's `encode`: optional BOS; when `dummyPrefix`
  /// and `text` is non-empty, the " " token; each UTF-8 code point (at most
  /// 4 bytes, as run.c groups them) as its piece or, when absent, its bytes
  /// as byte-fallback ids; then repeatedly merge the adjacent pair whose
  /// concatenation is a piece with the highest score (leftmost on ties,
  /// scores must exceed -1e10); optional EOS. Unlike run.c's C strings, a
  /// NUL byte in `text` is encoded (as <0x00>) rather than ending the text.
  void encode(const std::string &text, bool bos, bool eos,
              std::vector<int> &out, bool dummyPrefix = true) const;

  /// The bytes token `token` stands for when it follows `prev`, as run.c's
  /// `decode`: a leading space is dropped right after BOS, and "<0xHH>"
  /// byte pieces become the raw byte. Out-of-range ids give "".
  std::string decodePiece(int prev, int token) const;

  /// Concatenates decodePiece over `ids`. BOS and EOS produce no text (they
  /// still count as the previous token), so the ids of a generation that
  /// starts with BOS decode to the plain story text.
  std::string decode(const std::vector<int> &ids) const;

  /// Number of pieces.
  int64_t size() const { return static_cast<int64_t>(pieces.size()); }

  /// The raw piece of `id` (caller guarantees 0 <= id < size()).
  const std::string &piece(int id) const { return pieces[id]; }

  /// The merge score of `id` (caller guarantees 0 <= id < size()).
  float score(int id) const { return scores[id]; }

  /// The id whose piece is exactly `s` (the lowest such id if the vocabulary
  /// repeats a piece), or -1.
  int lookup(const std::string &s) const;

  /// The header's max_token_length (for create(): the longest piece).
  int32_t maxTokenLength() const { return maxTokenLen; }

private:
  /// Validates and indexes pieces/scores; shared by load() and create().
  static Status build(std::vector<std::string> pieces,
                      std::vector<float> scores, int32_t maxTokenLength,
                      const std::string &sourceName, Tokenizer &out);

  /// Id that merging (left, right) yields, or -1 when the pair never merges.
  int mergeOf(int left, int right) const;

  /// Piece bytes by id.
  std::vector<std::string> pieces;
  /// Merge score by id (higher merges first).
  std::vector<float> scores;
  /// The file header's max_token_length.
  int32_t maxTokenLen = 0;
  /// Piece -> lowest id with that piece.
  std::unordered_map<std::string, int> pieceToId;
  /// Single-byte piece -> id (or -1): the common case of code point lookup
  /// without hashing a std::string.
  std::array<int, 256> singleByte{};
  /// (left << 32 | right) -> merged id, precomputed for every pair whose
  /// concatenation is a piece with a mergeable score (> -1e10).
  std::unordered_map<uint64_t, int> merges;
  /// The id of " " used as the dummy prefix (byte fallback if absent).
  int spaceId = -1;
};

} // namespace qc

#endif // QC_RUNTIME_TOKENIZER_H
