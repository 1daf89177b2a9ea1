//===- QuantizedCheckpoint.h - GPTQ/AWQ checkpoint interchange -*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Moves quantized models between qc's IR and the Hugging Face quantized
// checkpoint formats of ../shared/docs/ALGORITHMS.md §8.1 (GPTQ, as
// AutoGPTQ / transformers / vLLM read it) and §8.2 (AutoAWQ GEMM, import
// only). Both directions go through the format-neutral QuantizedWeight of
// the algorithm library and its tested packers, so a layer's codes, scales
// and zero points, and therefore its dequantized weight, survive bit for
// bit.
//
//===----------------------------------------------------------------------===//

#ifndef QC_IMPORT_QUANTIZEDCHECKPOINT_H
#define QC_IMPORT_QUANTIZEDCHECKPOINT_H

#include "qc/Quantization/Algorithms/Packing.h"
#include "qc/runtime/HFCheckpoint.h"
#include "qc/runtime/Model.h"
#include "qc/runtime/Status.h"

#include "mlir/IR/BuiltinOps.h"

#include <string>
#include <vector>

namespace mlir::qc {

//===----------------------------------------------------------------------===//
// Reading a wq.linear back
//===----------------------------------------------------------------------===//

/// Reads the packed operands of the wq.linear `op` (either layout, any bit
/// width, integer or fractional zeros) from `weights` into `out` and its
/// layer name (the qweight parameter's name without ".qweight") into
/// `layer`. Codebook (NF4) layers are refused: they are not uniform grids.
::qc::Status readQuantizedLayer(Operation *op,
                                const ::qc::ModelWeights &weights,
                                std::string &layer,
                                ::qc::quant::QuantizedWeight &out);

/// Reorders the output channels (rows n) of `q`: row d of the result is
/// row srcOfDst[d] of `q` (codes, scale and zero columns). g_idx indexes
/// input channels and is unaffected.
void permuteQuantizedRows(::qc::quant::QuantizedWeight &q,
                          const std::vector<int64_t> &srcOfDst);

//===----------------------------------------------------------------------===//
// Export
//===----------------------------------------------------------------------===//

/// Options of exportGPTQCheckpoint.
struct GPTQExportOptions {
  /// "gptq" (v1, zero points stored minus one; what vLLM and transformers
  /// read) or "gptq_v2" (GPTQModel; zeros as they are). v1 cannot hold an
  /// asymmetric zero point of 0 (§14.5) and refuses such a layer.
  ::qc::quant::GPTQFormat format = ::qc::quant::GPTQFormat::V1;
  /// Files copied into the folder under their own names (a Hugging Face
  /// source's tokenizer files); they may not be named like the files the
  /// export writes.
  std::vector<std::string> copyFiles;
  /// Files written into the folder from memory (a GGUF source's tokenizer
  /// exported as Hugging Face files, exportGgufTokenizerFiles); the same
  /// name rule as copyFiles.
  std::vector<::qc::NamedFile> extraFiles;
  /// Above this many bytes of tensor data per file, the tensors are split
  /// into model-NNNNN-of-NNNNN.safetensors shards plus
  /// model.safetensors.index.json (0 = one model.safetensors).
  uint64_t maxShardBytes = 0;
};

/// The tokenizer (and generation config) files of the Hugging Face
/// checkpoint folder `dir` that exist: tokenizer.json, tokenizer.model,
/// tokenizer_config.json, special_tokens_map.json, added_tokens.json,
/// generation_config.json.
std::vector<std::string> hfTokenizerFiles(const std::string &dir);

/// What exportGPTQCheckpoint wrote, for the tool's summary line.
struct GPTQExportSummary {
  int bits = 0;
  int64_t groupSize = 0;
  bool sym = false;
  bool descAct = false;
  int64_t quantizedLayers = 0;
  /// Layers whose K was padded (§14.6) to whole 32-bit words.
  int64_t paddedLayers = 0;
  /// Entries of the `dynamic` per-module overrides (layers whose
  /// configuration differs from the top-level one, float layers).
  int64_t overrides = 0;
  /// Safetensors files written.
  int64_t shards = 0;
};

/// Writes the quantized `module` (its weights loaded by loadModuleWeights)
/// as a GPTQ checkpoint folder `dir` that transformers + GPTQModel load as
/// is: config.json (the Hugging Face config plus quantization_config),
/// quantize_config.json (the same object: bits, group_size, desc_act, sym,
/// checkpoint_format / format, damp_percent, true_sequential, lm_head,
/// static_groups, pack_dtype, meta) and model.safetensors or shards with an
/// index (fp16 embeddings, norms, classifier and float layers;
/// qweight/qzeros/scales/g_idx per quantized linear). Every decoder linear
/// is a wq.linear without a codebook, with integer zero points and
/// fp16-exact scales, or a float llm.linear. The most common (bits,
/// group_size, sym) is the top-level configuration; other layers get
/// GPTQModel `dynamic` overrides ("+:^name$": {bits, group_size, sym}) and
/// float layers exclusions ("-:^name$": {}). desc_act is set when any layer
/// has a non-trivial g_idx. llama2.c's interleaved q/k output channels are
/// permuted to rotate_half order. K is padded as the loaders size qweight
/// (§14.6: whole 32-bit words, g_idx of the true K, ceil(K / G) groups).
/// The folder is written under a temporary name and renamed into place; an
/// existing `dir` is replaced only if it looks like a checkpoint (a
/// config.json and nothing but regular files), by an atomic exchange.
/// options.copyFiles and options.extraFiles are written in with the rest.
::qc::Status exportGPTQCheckpoint(ModuleOp module,
                                  const ::qc::ModelWeights &weights,
                                  const std::string &dir,
                                  const GPTQExportOptions &options,
                                  GPTQExportSummary *summary = nullptr);

/// Options of exportCompressedTensors.
struct CompressedTensorsExportOptions {
  /// Files copied into the folder (a Hugging Face source's tokenizer).
  std::vector<std::string> copyFiles;
  /// Shard above this many bytes of tensor data per file (0 = one file).
  uint64_t maxShardBytes = 0;
};

/// What exportCompressedTensors wrote.
struct CompressedTensorsExportSummary {
  int64_t quantizedLayers = 0;
  /// config_groups written (one per distinct weight scheme).
  int64_t configGroups = 0;
  /// Float linear layers listed in `ignore`.
  int64_t ignored = 0;
};

/// Writes the quantized `module` as a compressed-tensors `pack-quantized`
/// checkpoint folder (the format llm-compressor writes and vLLM loads,
/// ../shared/docs/ALGORITHMS.md §8.4): per quantized linear
/// weight_packed (int32 [N, ceil(K * b / 32)], codes LSB first along K),
/// weight_scale (fp16 [N, K / G], [N, 1] for the channel strategy),
/// weight_shape (int64 [2] = [N, K]), weight_zero_point (int32
/// [ceil(N * b / 32), K / G], packed along N; asymmetric only) and
/// weight_g_idx (int32 [K]; act-order only, actorder "group"); float
/// tensors in fp16; config.json's quantization_config with one config
/// group per (bits, group size, sym, act-order) scheme, `ignore` listing
/// float linears and lm_head. 4- and 8-bit integer grids with fp16-exact
/// scales only; group sizes must divide K. Written atomically like the
/// GPTQ export.
::qc::Status
exportCompressedTensors(ModuleOp module, const ::qc::ModelWeights &weights,
                        const std::string &dir,
                        const CompressedTensorsExportOptions &options,
                        CompressedTensorsExportSummary *summary = nullptr);

//===----------------------------------------------------------------------===//
// Import
//===----------------------------------------------------------------------===//

/// One quantized linear of a loaded checkpoint, as the IR will reference
/// it: `<layer>.qweight`, `.scales`, and `.qzeros` / `.g_idx` when present.
struct QuantizedLayerInfo {
  std::string layer;
  /// "gptq" or "rows" (dialects/WQ/README.md).
  std::string layout;
  int bits = 4;
  int64_t groupSize = 128;
  bool sym = true;
  int64_t inFeatures = 0;
  int64_t outFeatures = 0;
  bool hasZeros = false;
  bool hasGIdx = false;
};

/// Whether the Hugging Face checkpoint folder `dir` declares a
/// quantization_config in its config.json.
::qc::Status isQuantizedHFCheckpoint(const std::string &dir, bool &quantized);

/// Loads a quantized Hugging Face checkpoint folder: quant_method "gptq"
/// (checkpoint_format gptq or gptq_v2, bits 2/3/4/8, any group size,
/// desc_act with g_idx, sym or asym, K padded or not) or "awq" (version
/// gemm, 4-bit, zero_point true). The tensors are in model.safetensors, an
/// index with shards, or AutoGPTQ's `<model_file_base_name>.safetensors`.
/// Float tensors go to out.tensors as fp32;
/// each quantized linear is unpacked, checked and repacked into the layout
/// the CPU path executes -- `gptq` (v1 zeros) when the weight fits it,
/// else `rows` (an asymmetric zero point of 0, or 3-bit shapes that are
/// not multiples of 32) -- under its checkpoint names in out.packed. A
/// quantized lm_head is dequantized exactly into an fp32 lm_head.weight
/// (the classifier op takes a float matrix). Every malformed case (missing
/// or extra tensors, wrong dtypes or shapes, g_idx out of range, bad
/// padding, unsupported methods or options) is an error naming the file
/// and tensor or field.
::qc::Status loadQuantizedHFCheckpoint(const std::string &dir,
                                       ::qc::ModelWeights &out,
                                       std::vector<QuantizedLayerInfo> &layers);

/// Replaces the llm.linear of each layer in `layers` (found by its weight
/// parameter `<layer>.weight`) with a wq.linear over the packed tensors.
::qc::Status
applyQuantizedLayers(ModuleOp module,
                     const std::vector<QuantizedLayerInfo> &layers);

} // namespace mlir::qc

#endif // QC_IMPORT_QUANTIZEDCHECKPOINT_H
