//===- GgufExport.h - Quantized qc models as llama.cpp GGUF -----*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Writes a quantized qc module as a GGUF file llama.cpp runs: llama
// architecture metadata from the model config, the tokenizer carried over
// (tokenizer.* keys of a source GGUF verbatim, or built from a byte-level
// BPE tokenizer.json the way llama.cpp's converter does), Q/K rows in
// llama.cpp's (interleaved) order, tensors under llama.cpp's names. qc's
// quantized layers map onto ggml blocks without re-quantizing where they
// fit exactly: 4-bit asymmetric group-32 -> Q4_1 (w = d q + m with
// m = -scale * zero rounded to fp16: the change is measured and reported),
// 4-bit symmetric group-32 -> Q4_0, 8-bit symmetric group-32 -> Q8_0.
//
//===----------------------------------------------------------------------===//

#ifndef QC_IMPORT_GGUFEXPORT_H
#define QC_IMPORT_GGUFEXPORT_H

#include "qc/runtime/GgufWriter.h"
#include "qc/runtime/Model.h"
#include "qc/runtime/Status.h"

#include "mlir/IR/BuiltinOps.h"

#include <map>
#include <string>
#include <vector>

namespace mlir::qc {

/// Options of exportGguf.
struct GgufExportOptions {
  /// Copy every `tokenizer.*` key of this GGUF file verbatim.
  std::string tokenizerGguf;
  /// Else build the tokenizer keys from this tokenizer.json (byte-level
  /// BPE only; tokenizer_config.json beside it supplies the special tokens,
  /// add_bos_token and the chat template).
  std::string tokenizerJson;
  /// Write no tokenizer (a file llama.cpp cannot run; for tests of the
  /// weights only).
  bool allowNoTokenizer = false;
  /// Store token_embd as Q8_0 (ggml's own rounding) instead of F16.
  bool embeddingQ8 = false;
};

/// What exportGguf wrote.
struct GgufExportSummary {
  /// Tensors per ggml type name ("Q4_1", "F32", ...).
  std::map<std::string, int64_t> typeCounts;
  /// Quantized layers whose K is not whole 32-value blocks, stored as their
  /// dequantized weight in F16.
  std::vector<std::string> f16Layers;
  /// Largest and mean absolute change of the dequantized weights of the
  /// quantized layers (ggml's dequantization of the written blocks minus
  /// qc's), from the fp16 rounding of d / m (and of F16 fallbacks).
  double maxAbsChange = 0.0;
  double meanAbsChange = 0.0;
  /// Where the tokenizer came from.
  std::string tokenizer;
};

/// llama.cpp's name of the Hugging Face tensor `hfName` of a llama model
/// ("model.layers.3.self_attn.q_proj.weight" -> "blk.3.attn_q.weight");
/// false for a name llama.cpp's llama architecture does not have.
bool hfTensorNameToGguf(const std::string &hfName, std::string &ggufName);

/// Builds llama.cpp's tokenizer keys (tokenizer.ggml.model "gpt2", pre,
/// tokens, token_type, merges, special token ids, add_bos_token,
/// add_space_prefix, chat_template) from the byte-level BPE tokenizer.json
/// at `path` for a vocabulary of `vocabSize` rows, as llama.cpp's
/// convert_hf_to_gguf.py does (ids without a token become "[PAD<id>]").
/// Other tokenizer types are refused by name.
::qc::Status addTokenizerJsonKeys(const std::string &path, int64_t vocabSize,
                                  ::qc::GgufWriter &writer,
                                  std::string *description = nullptr);

/// Writes the quantized `module` (weights from loadModuleWeights) as the
/// GGUF file `path` (atomically). Every decoder linear must be a wq.linear
/// whose configuration has an exact ggml block type (see the file comment)
/// with contiguous groups (no act-order g_idx); a layer whose K is not a
/// multiple of 32 is stored as its dequantized weight in F16 and listed in
/// the summary. Norms are F32, the embedding (and an untied classifier)
/// F16 or Q8_0. Anything else -- another configuration, a float linear, an
/// architecture other than llama -- is an error naming the layer or key.
::qc::Status exportGguf(ModuleOp module, const ::qc::ModelWeights &weights,
                        const std::string &path,
                        const GgufExportOptions &options,
                        GgufExportSummary *summary = nullptr);

} // namespace mlir::qc

#endif // QC_IMPORT_GGUFEXPORT_H
