//===- ModelTokenizer.h - The tokenizer that goes with a model --*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Every tool that turns text into tokens (quant-run, quant-calibrate,
// quant-compile) finds its tokenizer the same way: the one named with
// --tokenizer, else the one the model carries (a GGUF file's embedded
// tokenizer, a Hugging Face folder's tokenizer.json; for a .mlir file, its
// checkpoint's). A llama2.c .bin carries none.
//
//===----------------------------------------------------------------------===//

#ifndef QC_IMPORT_MODELTOKENIZER_H
#define QC_IMPORT_MODELTOKENIZER_H

#include "qc/runtime/Status.h"
#include "qc/runtime/TextTokenizer.h"

#include "mlir/IR/BuiltinOps.h"

#include <memory>
#include <string>
#include <vector>

namespace mlir::qc {

/// Opens the tokenizer for `module` (built by openModel from `modelPath`):
/// `explicitSource` when non-empty (a tokenizer.json, GGUF, model folder or
/// llama2.c tokenizer.bin, the last read with `vocabSize` entries), else the
/// model's own. Fails naming the model when it carries none, and when the
/// tokenizer's ids do not fit the model's vocabulary.
::qc::Status openModelTokenizer(ModuleOp module, const std::string &modelPath,
                                const std::string &explicitSource,
                                int64_t vocabSize,
                                std::unique_ptr<::qc::TextTokenizer> &out);

/// Tokenizes the calibration or evaluation corpus at `textPath`: for a
/// llama2.c tokenizer under the stories260K protocol (paragraphs encoded
/// separately, joined by two newline tokens), for every other tokenizer as
/// one string without special tokens, as transformers and llama.cpp
/// tokenize a corpus. Errors name the file. With `maxTokens` > 0 only the
/// first `maxTokens` tokens are produced, from a prefix of the file just
/// long enough to yield them (a huge text costs no more than a small one),
/// and they equal the first `maxTokens` tokens of the whole file's
/// encoding.
::qc::Status encodeCorpus(const ::qc::TextTokenizer &tok,
                          const std::string &textPath, std::vector<int> &tokens,
                          int64_t maxTokens = 0);

} // namespace mlir::qc

#endif // QC_IMPORT_MODELTOKENIZER_H
