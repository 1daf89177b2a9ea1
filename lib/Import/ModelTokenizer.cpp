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

#include <algorithm>
#include <cstdint>

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
    return Status::error(
        source + ": the tokenizer has " + std::to_string(out->vocabSize()) +
        " ids but the model " + modelPath + " only " +
        std::to_string(vocabSize) + ": they do not belong together");
  return Status::ok();
}

Status mlir::qc::encodeCorpus(const ::qc::TextTokenizer &tok,
                              const std::string &textPath,
                              std::vector<int> &tokens, int64_t maxTokens) {
  // Tokenizes a prefix of the file that grows (doubling) until it yields
  // the tokens wanted, so that calibrating on 256 tokens of a 40 GB text
  // costs what it costs on a small one. The prefix is cut at a boundary
  // (prefixCut) at a paragraph break, else a line break or a space. Under
  // the llama2.c protocol a paragraph break is exact (paragraphs are
  // encoded separately, so the tokens before it are the whole text's);
  // any other cut (a tokenizer.json / GGUF tokenizer, or a text without
  // blank lines) must yield kMargin tokens beyond those kept, so that the
  // pre-tokens and merges near the cut, which may differ from the whole
  // text's, are never among them. CorpusPrefixTest checks the result
  // against the whole-text encoding for both kinds of cut.
  constexpr int64_t kMargin = 256;
  const ::qc::Tokenizer *l = tok.llama2c();
  auto encode = [&](const std::string &text, std::vector<int> &out) {
    if (l)
      return ::qc::encodePerplexityText(text, *l, out, textPath);
    return tok.encode(text, /*addSpecial=*/false, out).withContext(textPath);
  };
  uint64_t bytes =
      maxTokens > 0 ? std::max<uint64_t>(uint64_t(1) << 16,
                                         static_cast<uint64_t>(maxTokens) * 16)
                    : UINT64_MAX;
  auto grow = [&] { bytes = bytes > UINT64_MAX / 2 ? UINT64_MAX : bytes * 2; };
  for (;;) {
    std::string text;
    bool whole = true;
    if (maxTokens > 0)
      QC_RETURN_IF_ERROR(::qc::readTextPrefix(textPath, bytes, text, whole));
    else
      QC_RETURN_IF_ERROR(::qc::readTextFile(textPath, text));
    bool paragraph = false;
    if (!whole) {
      size_t cut = ::qc::prefixCut(text, paragraph);
      if (cut == 0) {
        grow();
        continue;
      }
      text.resize(cut);
    }
    // Under the llama2.c protocol a cut at a paragraph break is exact (the
    // paragraphs are encoded separately); any other cut needs the margin.
    const bool exact = whole || (l && paragraph);
    tokens.clear();
    // An empty prefix (only whitespace so far) is not yet an error.
    Status s = encode(text, tokens);
    if (!s && (whole || l == nullptr))
      return s;
    if (whole || (s && static_cast<int64_t>(tokens.size()) >=
                           maxTokens + (exact ? 0 : kMargin))) {
      if (tokens.empty())
        return Status::error(textPath + ": the text holds no token");
      if (maxTokens > 0 && static_cast<int64_t>(tokens.size()) > maxTokens)
        tokens.resize(static_cast<size_t>(maxTokens));
      return Status::ok();
    }
    grow();
  }
}
