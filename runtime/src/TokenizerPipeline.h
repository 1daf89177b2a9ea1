//===- TokenizerPipeline.h - HF-style tokenizer engine ----------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Internal to the runtime. The encode/decode engine shared by the
// tokenizer.json and GGUF loaders: added-token extraction, normalizers,
// pre-tokenizers, a BPE model (merge ranks, as Hugging Face) or a
// SentencePiece score model (as llama.cpp's SPM), a post-processor reduced
// to the ids it puts before and after a sequence, and decoders. The loaders
// translate their formats into these plain structures; everything a format
// could express but this engine does not implement is refused by the
// loader, never approximated.
//
//===----------------------------------------------------------------------===//

#ifndef QC_RUNTIME_TOKENIZERPIPELINE_H
#define QC_RUNTIME_TOKENIZERPIPELINE_H

#include "qc/runtime/TextTokenizer.h"

#include <array>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace qc {
namespace tok {

/// A compiled PCRE2 pattern (UTF + UCP, JIT when available), matched against
/// possibly invalid UTF-8 (PCRE2_MATCH_INVALID_UTF: invalid bytes never
/// match).
class Regex {
public:
  /// Compiles `pattern`; the error names the pattern and PCRE2's message.
  static Status compile(const std::string &pattern,
                        std::shared_ptr<const Regex> &out);
  ~Regex();
  Regex(const Regex &) = delete;
  Regex &operator=(const Regex &) = delete;

  /// True if the pattern matches somewhere in `s` (errors count as no).
  bool matches(std::string_view s) const;

  /// Every non-overlapping match of the pattern in `s`, left to right, as
  /// [begin, end) byte ranges. An empty match advances by one character.
  Status findAll(std::string_view s,
                 std::vector<std::pair<size_t, size_t>> &out) const;

  /// The source pattern.
  const std::string &pattern() const { return source; }

private:
  Regex() = default;
  void *code = nullptr; ///< pcre2_code_8 *
  std::string source;
};

/// How a Split pre-tokenizer treats the matches (Hugging Face's
/// SplitDelimiterBehavior).
enum class SplitBehavior {
  Removed,
  Isolated,
  MergedWithPrevious,
  MergedWithNext,
  Contiguous
};

/// One normalizer step (Sequence normalizers are flattened).
struct NormStep {
  /// NfcCheck: Unicode NFC where it is provably the identity (see
  /// normalize()); text that NFC might change is refused, not guessed.
  enum Kind { Prepend, Replace, NfcCheck } kind;
  /// Prepend: the prefix; Replace: the literal pattern (when no regex).
  std::string text;
  /// Replace: the replacement.
  std::string content;
  /// Replace with a Regex pattern.
  std::shared_ptr<const Regex> regex;
};

/// One pre-tokenizer step (Sequence pre-tokenizers are flattened).
struct PreStep {
  enum Kind { Split, ByteLevel, Metaspace } kind;
  /// Split: the pattern (regex, or `literal` when null).
  std::shared_ptr<const Regex> regex;
  std::string literal;
  SplitBehavior behavior = SplitBehavior::Isolated;
  bool invert = false;
  /// ByteLevel: prefix space and GPT-2 regex split.
  bool addPrefixSpace = false;
  bool useRegex = true;
  /// Metaspace: replacement ("▁"), prepend scheme, split on it.
  std::string replacement;
  enum Prepend { Never, First, Always } prepend = Always;
  bool split = true;
};

/// One decoder step (Sequence decoders are flattened).
struct DecStep {
  enum Kind { ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip } kind;
  /// Metaspace: replacement; Replace: pattern; Strip: the content char.
  std::string text;
  /// Replace: the replacement.
  std::string content;
  /// Metaspace: whether the first token's leading replacement is dropped.
  bool dropFirst = true;
  /// Strip: how many leading / trailing `text` to remove per token.
  int start = 0, stop = 0;
};

/// A token matched in the raw (or normalized) text before the model runs.
struct AddedToken {
  std::string content;
  int id = -1;
  bool special = false;
  bool lstrip = false, rstrip = false, singleWord = false;
  bool normalized = false;
};

/// The model: vocabulary plus BPE merges (by rank) or SentencePiece scores.
struct Model {
  enum Kind { Bpe, SpmScores } kind = Bpe;
  /// Piece by id ("" for ids the model does not define).
  std::vector<std::string> pieces;
  /// Piece -> id.
  std::unordered_map<std::string, int> index;
  /// Bpe: (left << 32 | right) -> (rank, merged id).
  std::unordered_map<uint64_t, std::pair<int, int>> merges;
  /// SpmScores: score by id.
  std::vector<float> scores;
  int unkId = -1;
  bool byteFallback = false;
  bool fuseUnk = false;
  bool ignoreMerges = false;
  /// "<0xHH>" id of every byte, or -1.
  std::array<int, 256> byteIds{};
};

/// A whole tokenizer: filled by a loader, then finalize()d.
class Pipeline final : public TextTokenizer {
public:
  std::vector<AddedToken> added;
  std::vector<NormStep> normalizer;
  std::vector<PreStep> preTokenizer;
  Model model;
  std::vector<DecStep> decoder;
  /// With addSpecial: ids before and after the sequence.
  std::vector<int> prefix, suffix;
  int bos = -1, eos = -1;
  std::string description;

  /// Builds the lookup tables once the public members are filled: the id
  /// table of added tokens, the normalized forms of normalized added tokens
  /// and the byte-fallback ids. Errors name `sourceName`.
  Status finalize(const std::string &sourceName);

  Status encode(std::string_view text, bool addSpecial,
                std::vector<int> &out) const override;
  std::string decode(const std::vector<int> &ids,
                     bool skipSpecial = false) const override;
  std::string decodePiece(int prev, int id) const override;
  int64_t vocabSize() const override { return size; }
  int bosId() const override { return bos; }
  int eosId() const override { return eos; }
  bool addsBos() const override {
    return bos >= 0 && !prefix.empty() && prefix.front() == bos;
  }
  bool addsEos() const override {
    return eos >= 0 && !suffix.empty() && suffix.back() == eos;
  }
  std::string tokenPiece(int id) const override;
  int pieceId(std::string_view piece) const override;
  bool isSpecial(int id) const override;
  std::vector<int> specialIds() const override;
  std::string describe() const override { return description; }

private:
  /// A stretch of text between added tokens, or an added token's id.
  struct Segment {
    std::string text;
    int id = -1;        ///< >= 0: an added token
    bool first = false; ///< starts at offset 0 of the original text
  };
  /// Candidate added tokens by first byte, longest match form first.
  using Buckets = std::array<std::vector<int>, 256>;
  /// Splits `seg` around the leftmost-longest matches of the added tokens
  /// in `buckets` (Hugging Face's AddedVocabulary::find_matches).
  Status splitAdded(const Segment &seg, const Buckets &buckets,
                    std::vector<Segment> &out) const;
  /// Applies the normalizer steps to `s`.
  Status normalize(std::string &s) const;
  /// Runs the pre-tokenizer on one normalized segment.
  Status preTokenize(const Segment &seg, std::vector<Segment> &pieces) const;
  /// Encodes one pre-token with the model (cached per call in `cache`).
  void encodeWord(const std::string &word,
                  std::unordered_map<std::string, std::vector<int>> &cache,
                  std::vector<int> &out) const;
  void bpeWord(const std::string &word, std::vector<int> &out) const;
  void spmWord(const std::string &word, std::vector<int> &out) const;
  /// Runs the decoder on `tokens`; `raw` keeps invalid UTF-8 bytes as they
  /// are (for decodePiece), `first` says tokens[0] starts the text.
  std::string runDecoder(std::vector<std::string> tokens, bool raw,
                         bool first) const;

  int64_t size = 0;
  /// Added token index by id (-1: none).
  std::unordered_map<int, int> addedById;
  /// Added token content -> id.
  std::unordered_map<std::string, int> addedByContent;
  /// The raw-matched and normalized-matched added tokens, and the form of
  /// each added token that is matched (normalized tokens: the normalizer's
  /// output for their content).
  Buckets rawBuckets, normBuckets;
  bool haveRaw = false, haveNorm = false;
  std::vector<std::string> matchForm;
  /// "\w" for the single_word check.
  std::shared_ptr<const Regex> wordChar;
};

/// Byte -> the GPT-2 byte-to-unicode character (UTF-8).
const std::array<std::string, 256> &byteLevelChars();
/// Decodes GPT-2 byte-level characters back to bytes; false if `s` holds a
/// character outside the byte-level alphabet.
bool byteLevelDecode(std::string_view s, std::string &out);

/// Rust's String::from_utf8_lossy: each maximal invalid subsequence becomes
/// U+FFFD.
std::string utf8Lossy(std::string_view s);

/// Length of the UTF-8 character starting with lead byte `c` (1 for bytes
/// that cannot start one).
size_t utf8Len(unsigned char c);

/// GPT-2's split regex in llama.cpp's spelling (no trailing \s+
/// alternative: whitespace it leaves unmatched becomes a pre-token anyway,
/// so it splits exactly as Hugging Face's ByteLevel regex does).
extern const char *const kGgufGpt2Regex;

/// What one GGUF tokenizer.ggml.pre name means: the split regexes applied
/// in turn (each isolating its matches) before the byte-level mapping, and
/// llama.cpp's per-name flags.
struct GgufPreSpec {
  std::vector<const char *> regexes;
  bool ignoreMerges = false; ///< whole words in the vocabulary skip merging
  bool addBos = false;       ///< llama.cpp adds BOS by default
};

/// The meaning of pre-tokenizer name `name` ("" = "default"), or false for
/// a name this runtime does not implement.
bool ggufPreSpec(const std::string &name, GgufPreSpec &out);

/// The implemented names, comma-separated, for error messages.
extern const char *const kGgufKnownPre;

} // namespace tok
} // namespace qc

#endif // QC_RUNTIME_TOKENIZERPIPELINE_H
