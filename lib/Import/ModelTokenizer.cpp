//===- ModelTokenizer.cpp - The tokenizer that goes with a model ----------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//

#include "qc/Import/ModelTokenizer.h"

#include "qc/Import/ModelBuilder.h"
#include "qc/runtime/TextDataset.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

using namespace mlir;
using namespace mlir::qc;
using ::qc::Status;

Status mlir::qc::openModelTokenizer(ModuleOp module,
                                    const std::string &modelPath,
                                    const std::string &explicitSource,
                                    int64_t vocabSize,
                                    std::unique_ptr<::qc::TextTokenizer> &out) {
  std::string source = explicitSource;
  if (source.empty()) {
    CheckpointRef ref;
    if (!getCheckpointRef(module, ref))
      return Status::error(modelPath + ": the model names no checkpoint, so "
                                       "it carries no tokenizer; pass "
                                       "--tokenizer");
    if (ref.format == "gguf") {
      source = ref.path;
    } else if (ref.format == "hf") {
      SmallString<256> json(ref.path);
      llvm::sys::path::append(json, "tokenizer.json");
      if (!llvm::sys::fs::exists(json))
        return Status::error(
            modelPath + ": the Hugging Face folder " + ref.path +
            " has no tokenizer.json; pass --tokenizer (a tokenizer.json, a "
            "GGUF file or a model folder)");
      source = ref.path;
    } else {
      return Status::error(modelPath +
                           ": a llama2.c checkpoint carries no tokenizer; "
                           "pass --tokenizer (e.g. its tokenizer.bin)");
    }
  }
  ::qc::TokenizerLoadOptions options;
  options.llama2cVocabSize = vocabSize;
  QC_RETURN_IF_ERROR(::qc::loadTokenizer(source, out, options));
  if (out->vocabSize() > vocabSize)
    return Status::error(source + ": the tokenizer has " +
                         std::to_string(out->vocabSize()) +
                         " ids but the model " + modelPath + " only " +
                         std::to_string(vocabSize) +
                         ": they do not belong together");
  return Status::ok();
}

Status mlir::qc::encodeCorpus(const ::qc::TextTokenizer &tok,
                              const std::string &textPath,
                              std::vector<int> &tokens) {
  if (const ::qc::Tokenizer *l = tok.llama2c())
    return ::qc::loadPerplexityTokens(textPath, *l, tokens);
  std::string text;
  QC_RETURN_IF_ERROR(::qc::readTextFile(textPath, text));
  QC_RETURN_IF_ERROR(tok.encode(text, /*addSpecial=*/false, tokens)
                         .withContext(textPath));
  if (tokens.empty())
    return Status::error(textPath + ": the text holds no token");
  return Status::ok();
}
