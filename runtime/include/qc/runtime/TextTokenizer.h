//===- TextTokenizer.h - Tokenizer interface and sources --------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// The tokenizer interface the tools use for text in and text out, whatever
// the model came with: a Hugging Face tokenizer.json (alone or in a model
// folder with tokenizer_config.json and config.json), the tokenizer embedded
// in a GGUF file (tokenizer.ggml.*), or a llama2.c tokenizer.bin. The ids
// are those of Hugging Face `tokenizers` (and, for GGUF, of llama.cpp, which
// agrees with it on the supported pre-tokenizers): perplexities and
// generations are only comparable with other tools' numbers when the text is
// split identically.
//
// Invalid UTF-8 in the text to encode is not an error: byte-level BPE
// encodes the raw bytes (each invalid byte becomes its own pre-token and
// the token of that byte's character; bytes F5-FF, which never occur in
// UTF-8, are usually missing from byte-level vocabularies and are dropped,
// as Hugging Face drops characters a BPE model without an unknown token
// lacks), SentencePiece-style models fall back to <0xHH> byte tokens or the
// unknown token, exactly as they do for unknown characters.
//
//===----------------------------------------------------------------------===//

#ifndef QC_RUNTIME_TEXTTOKENIZER_H
#define QC_RUNTIME_TEXTTOKENIZER_H

#include "qc/runtime/Status.h"
#include "qc/runtime/Tokenizer.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace qc {

/// A tokenizer: text <-> token ids. Implementations are immutable after
/// loading, so one instance may be used from several threads at once.
class TextTokenizer {
public:
  virtual ~TextTokenizer();

  /// Encodes `text` (UTF-8; invalid bytes are tolerated, see the file
  /// comment) into `out`, replacing its contents. Special tokens written in
  /// the text (e.g. "<|im_start|>") are matched as specials, as Hugging Face
  /// does by default. With `addSpecial`, the tokens the source's
  /// configuration adds around a sequence (BOS/EOS: Hugging Face's
  /// add_special_tokens=True) are added; without it, none are.
  virtual Status encode(std::string_view text, bool addSpecial,
                        std::vector<int> &out) const = 0;

  /// The text of `ids`, as Hugging Face's decode: every token goes through
  /// the source's decoder (special tokens too, unless `skipSpecial`), bytes
  /// that do not form valid UTF-8 become U+FFFD the way Hugging Face's
  /// decoders replace them. Ids outside [0, vocabSize()) are skipped. (The
  /// llama2.c tokenizer decodes as run.c: raw bytes, BOS/EOS never shown.)
  virtual std::string decode(const std::vector<int> &ids,
                             bool skipSpecial = false) const = 0;

  /// The raw bytes token `id` contributes to the text when it follows token
  /// `prev` (-1 at the start of the text): for streaming output, where the
  /// bytes of one character may be split over several tokens, so no U+FFFD
  /// replacement happens here; concatenating the pieces of a valid encoding
  /// gives the decoded text. Special tokens give their text (empty for the
  /// llama2.c BOS/EOS). Out-of-range ids give "".
  virtual std::string decodePiece(int prev, int id) const = 0;

  /// Number of ids: one more than the largest id the tokenizer knows.
  virtual int64_t vocabSize() const = 0;

  /// The beginning-of-sequence id, or -1 when the source names none.
  virtual int bosId() const = 0;
  /// The end-of-sequence id, or -1 when the source names none.
  virtual int eosId() const = 0;
  /// True when encode(text, /*addSpecial=*/true) starts with bosId().
  virtual bool addsBos() const = 0;
  /// True when encode(text, /*addSpecial=*/true) ends with eosId().
  virtual bool addsEos() const = 0;

  /// The vocabulary string of `id` as the source stores it (byte-level
  /// pieces in GPT-2's byte-to-unicode spelling, "▁" in SentencePiece
  /// pieces), or "" for an id outside the vocabulary.
  virtual std::string tokenPiece(int id) const = 0;
  /// The id whose vocabulary string is exactly `piece`, or -1.
  virtual int pieceId(std::string_view piece) const = 0;
  /// True if `id` is a special (control) token.
  virtual bool isSpecial(int id) const = 0;
  /// Every special token id, ascending.
  virtual std::vector<int> specialIds() const = 0;

  /// A short description of the source, e.g. "tokenizer.json (BPE,
  /// byte-level)", "GGUF (gpt2 byte-level BPE, pre smollm)", "llama2.c
  /// tokenizer.bin".
  virtual std::string describe() const = 0;

  /// The llama2.c tokenizer behind this one, or nullptr: the stories260K
  /// perplexity protocol (paragraphs encoded separately with run.c's dummy
  /// prefix on the first only) is defined on it alone.
  virtual const Tokenizer *llama2c() const { return nullptr; }
};

/// Options of loadTokenizer().
struct TokenizerLoadOptions {
  /// The vocabulary size of a llama2.c tokenizer.bin (the file does not say;
  /// it is the model's vocab_size). Required for that format only.
  int64_t llama2cVocabSize = 0;
  /// Whether a llama2.c tokenizer adds BOS with addSpecial (run.c does).
  bool llama2cAddBos = true;
};

/// Loads a tokenizer from `source`:
///  - a directory: its tokenizer.json (with tokenizer_config.json and
///    config.json beside it, if present);
///  - a file whose first bytes are "GGUF": the tokenizer.ggml.* metadata;
///  - a file ending in ".json": a Hugging Face tokenizer.json (with the
///    tokenizer_config.json / config.json found beside it, as
///    transformers' from_pretrained on the folder would use);
///  - any other file: a llama2.c tokenizer.bin, which needs
///    `options.llama2cVocabSize`.
/// For tokenizer.json, tokenizer_config.json's add_bos_token /
/// add_eos_token, when present, decide whether BOS/EOS are added (as
/// transformers rebuilds the post-processor from them), and its bos_token /
/// eos_token (else config.json's bos_token_id / eos_token_id, else the
/// post-processor's template) name bosId() / eosId(). Errors name the file
/// and the JSON key or metadata key at fault.
Status loadTokenizer(const std::string &source,
                     std::unique_ptr<TextTokenizer> &out,
                     const TokenizerLoadOptions &options = {});

/// Builds a tokenizer from the text of a tokenizer.json (`sourceName`
/// prefixes errors). `tokenizerConfig` and `modelConfig` are the texts of
/// tokenizer_config.json and config.json, or empty when absent.
Status loadHFTokenizerJson(std::string_view tokenizerJson,
                           std::string_view tokenizerConfig,
                           std::string_view modelConfig,
                           const std::string &sourceName,
                           std::unique_ptr<TextTokenizer> &out);

/// The tokenizer metadata of a GGUF file (the tokenizer.ggml.* keys), as
/// plain data so that any GGUF reader can fill it.
struct GgufTokenizerData {
  /// tokenizer.ggml.model: "gpt2" (byte-level BPE) or "llama" (SentencePiece
  /// with scores and byte fallback).
  std::string model;
  /// tokenizer.ggml.pre ("" when absent: "default").
  std::string pre;
  /// tokenizer.ggml.tokens.
  std::vector<std::string> tokens;
  /// tokenizer.ggml.scores (empty when absent; required for "llama").
  std::vector<float> scores;
  /// tokenizer.ggml.token_type (empty when absent): 1 normal, 2 unknown,
  /// 3 control, 4 user defined, 5 unused, 6 byte.
  std::vector<int32_t> tokenTypes;
  /// tokenizer.ggml.merges, "left right" (required for "gpt2").
  std::vector<std::string> merges;
  /// tokenizer.ggml.{bos,eos,unknown,padding}_token_id (-1 when absent).
  int64_t bosId = -1, eosId = -1, unkId = -1, padId = -1;
  /// tokenizer.ggml.add_bos_token / add_eos_token / add_space_prefix, when
  /// present (otherwise llama.cpp's defaults for the model type apply).
  std::optional<bool> addBos, addEos, addSpacePrefix;
  /// tokenizer.chat_template, when present (only exported, never used to
  /// encode).
  std::optional<std::string> chatTemplate;
};

class GgufFile;

/// Reads the tokenizer.ggml.* keys (and tokenizer.chat_template) of an
/// opened GGUF file; errors name the key.
Status readGgufTokenizerData(const GgufFile &file, GgufTokenizerData &out);

/// Builds a tokenizer from GGUF tokenizer metadata. Unknown models and
/// pre-tokenizer names are refused by name; inconsistent metadata (counts
/// that differ, ids out of range, merges naming unknown tokens) is an error
/// naming the key.
Status loadGgufTokenizer(const GgufTokenizerData &data,
                         const std::string &sourceName,
                         std::unique_ptr<TextTokenizer> &out);

/// Reads a comma- or whitespace-separated list of ids ("1,2,3", "[1, 2]").
Status parseIdList(std::string_view text, std::vector<int> &out);

} // namespace qc

#endif // QC_RUNTIME_TEXTTOKENIZER_H
