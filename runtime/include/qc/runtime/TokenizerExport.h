//===- TokenizerExport.h - GGUF tokenizer to Hugging Face files -*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Writes the tokenizer embedded in a GGUF file (tokenizer.ggml.*) as the
// files a Hugging Face model folder carries: tokenizer.json,
// tokenizer_config.json, special_tokens_map.json and generation_config.json.
// The written tokenizer.json encodes exactly as the GGUF tokenizer does
// (loadGgufTokenizer): a byte-level "gpt2" vocabulary becomes a BPE model
// with the same vocabulary and merges and the pre-tokenizer its
// tokenizer.ggml.pre name stands for; a SentencePiece "llama" vocabulary
// becomes the BPE-with-byte-fallback form transformers' own Llama converter
// writes (merges ranked by the merged piece's score, the U+2581 normalizer
// and decoder). Control, unknown-type and user-defined tokens become added
// tokens. What cannot be written exactly is refused with an error naming
// the metadata key: a pre-tokenizer name qc does not implement, repeated
// vocabulary strings (a JSON vocabulary maps each string to one id), and
// SentencePiece scores tied between two mergeable pieces (a ranked merge
// list cannot reproduce SentencePiece's left-most-first tie-break).
//
//===----------------------------------------------------------------------===//

#ifndef QC_RUNTIME_TOKENIZEREXPORT_H
#define QC_RUNTIME_TOKENIZEREXPORT_H

#include "qc/runtime/HFCheckpoint.h"
#include "qc/runtime/Status.h"
#include "qc/runtime/TextTokenizer.h"

#include <cstdint>
#include <string>
#include <vector>

namespace qc {

/// Options of exportHFTokenizer().
struct HFTokenizerExportOptions {
  /// tokenizer_config.json's model_max_length (the model's context length);
  /// 0 leaves it out (transformers then assumes no limit).
  int64_t modelMaxLength = 0;
};

/// Builds the Hugging Face tokenizer files of GGUF tokenizer metadata
/// `data` into `out` (replacing its contents): tokenizer.json,
/// tokenizer_config.json (add_bos_token / add_eos_token as the GGUF
/// tokenizer applies them, the bos / eos / unk / pad tokens,
/// model_max_length, chat_template when the GGUF has one),
/// special_tokens_map.json and generation_config.json (bos / eos / pad
/// ids). The metadata is first validated by loadGgufTokenizer, so its
/// errors apply; `sourceName` prefixes every error.
Status exportHFTokenizer(const GgufTokenizerData &data,
                         const HFTokenizerExportOptions &options,
                         const std::string &sourceName,
                         std::vector<NamedFile> &out);

/// exportHFTokenizer for the tokenizer of the GGUF file at `ggufPath`, with
/// model_max_length taken from `<general.architecture>.context_length`. A
/// file without tokenizer.ggml.model has no tokenizer: `out` is left empty.
Status exportGgufTokenizerFiles(const std::string &ggufPath,
                                std::vector<NamedFile> &out);

} // namespace qc

#endif // QC_RUNTIME_TOKENIZEREXPORT_H
