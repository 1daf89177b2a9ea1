//===- HFCheckpoint.h - Hugging Face LLaMA-family checkpoints ---*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Imports and exports Hugging Face checkpoint directories of the LLaMA
// family (model_type llama, mistral, qwen2): config.json plus either
// model.safetensors or a model.safetensors.index.json with shards. Loading
// validates config.json against the weights before anything else runs
// (../shared/docs/RELIABILITY.md section 2.2 rows 8-10); writing produces a
// directory transformers loads as-is, converting llama2.c's interleaved RoPE
// layout to Hugging Face's rotate_half layout on the way.
//
//===----------------------------------------------------------------------===//

#ifndef QC_RUNTIME_HFCHECKPOINT_H
#define QC_RUNTIME_HFCHECKPOINT_H

#include "qc/runtime/Json.h"
#include "qc/runtime/Model.h"
#include "qc/runtime/Safetensors.h"
#include "qc/runtime/Status.h"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace qc {

/// Reads a Hugging Face config.json into `out` (ropeLayout HalfSplit).
///
/// Required: model_type (llama, mistral or qwen2), hidden_size,
/// intermediate_size, num_hidden_layers, num_attention_heads, vocab_size,
/// max_position_embeddings, rms_norm_eps. Optional, with transformers'
/// defaults: num_key_value_heads (= heads), head_dim (= hidden / heads),
/// rope_theta (10000), tie_word_embeddings (false), bos_token_id (1) and
/// eos_token_id (2; a list means its first element), attention_bias (false;
/// qwen2 always has q/k/v biases). Refused with an explanation: a non-null
/// rope_scaling, a quantization_config (the checkpoint is already quantized),
/// hidden_act other than silu, llama's attention_bias or mlp_bias set to true
/// (they add o_proj/MLP biases this model format has no place for), and
/// qwen2's use_sliding_window. A mistral sliding_window shorter than
/// max_position_embeddings caps maxSeqLen, inside which attention is
/// unaffected by the window. Errors name `configPath` and the field.
Status parseHFConfig(const std::string &configPath, ModelConfig &out);

/// As above, except that a quantization_config is not refused but copied
/// into `quantizationConfig` (left null when the config has none), for the
/// loaders of quantized checkpoints, which check it themselves. Every other
/// refusal is the same.
Status parseHFConfig(const std::string &configPath, ModelConfig &out,
                     json::Value &quantizationConfig);

/// The safetensors files of a checkpoint directory, opened and checked
/// against each other (and against the index, if sharded), with every
/// tensor's file. Used by loaders that need the stored dtypes (packed
/// integer tensors of quantized checkpoints), not just fp32 values.
struct HFTensorFiles {
  /// One opened weight file.
  struct File {
    std::string fileName; ///< relative to the checkpoint directory
    std::unique_ptr<SafetensorsFile> file;
  };
  std::vector<File> files;
  /// Tensor name -> the file holding it (points into `files`).
  std::map<std::string, const File *> tensors;
};

/// Opens model.safetensors or model.safetensors.index.json and its shards
/// in `dir` with the checks loadHFCheckpoint documents (ambiguous
/// directory, index <-> shard consistency, duplicate tensors).
Status openHFTensorFiles(const std::string &dir, HFTensorFiles &out);

/// The symlink policy of a model folder: `path` (a file of the folder
/// `dir`) must resolve, links followed, to a file inside `dir`, the same
/// rule that refuses "../" in an index's weight_map; the one exception is
/// the Hugging Face hub cache, whose `<repo>/snapshots/<revision>/` links
/// point into the same repository's `<repo>/blobs/`. Applied to the config,
/// the weight files and the tokenizer files an export copies. A path that
/// does not exist passes (its reader reports it).
Status checkInsideModelFolder(const std::string &dir, const std::string &path);

/// True for the RoPE frequency buffers of legacy checkpoints
/// (`*.self_attn.rotary_emb.inv_freq`), which transformers ignores on load.
bool isIgnoredHFBuffer(const std::string &tensorName);

/// Loads the checkpoint in directory `dir`: config.json, then
/// model.safetensors or model.safetensors.index.json and its shards (having
/// both is an error: the directory is ambiguous). For an index, every shard
/// must be a plain file name inside `dir` that exists, every listed tensor
/// must be in its shard, no tensor may be in two shards, and every shard
/// tensor must be listed. F32, F16, BF16 and F64 tensors are converted to
/// fp32 and must be finite. Legacy `rotary_emb.inv_freq` buffers are skipped
/// as transformers does. With tie_word_embeddings, an lm_head.weight equal
/// to the embedding is dropped and a different one is an error. The result
/// then passes validateModelWeights. Errors name the file and tensor.
/// With `options.lazy` no tensor is read: each one gets a loader that reads
/// it from the (mapped, shared) files and releases the mapped pages again,
/// so that processing a checkpoint tensor by tensor keeps at most the
/// tensors in use resident; finiteness is then checked when a tensor is
/// read.
Status loadHFCheckpoint(const std::string &dir, ModelWeights &out,
                        const LoadOptions &options = {});

/// One file written beside a checkpoint's weights (tokenizer files): a plain
/// file name and its contents.
struct NamedFile {
  std::string name;  ///< e.g. "tokenizer.json"
  std::string bytes; ///< the whole file
};

/// Writes `weights` as a Hugging Face checkpoint into `dir` (created if
/// needed): config.json and either model.safetensors or, when the tensors
/// exceed `maxShardBytes` (0 = no limit), shards
/// model-00001-of-0000N.safetensors plus model.safetensors.index.json, and
/// `extraFiles` (the tokenizer files; a name that is not a plain file name
/// or that the checkpoint itself uses is an error). Each file is replaced
/// atomically, config.json last; stale weight files of a previous save
/// with a different sharding are removed afterwards. `dtype` (F32, F16 or
/// BF16) is the stored type, rounded to nearest even. The weights must pass
/// validateModelWeights; an Interleaved model has its q/k rows permuted
/// to the HalfSplit layout the written config implies.
Status writeHFCheckpoint(const std::string &dir, const ModelWeights &weights,
                         DType dtype, uint64_t maxShardBytes = 0,
                         const std::vector<NamedFile> &extraFiles = {});

/// The config.json text writeHFCheckpoint writes for `config` stored as
/// `dtype` (the torch_dtype field), in the HalfSplit RoPE layout; with a
/// non-null `quantizationConfig` it is added as "quantization_config"
/// (quantized checkpoints: GPTQ, AWQ).
std::string buildHFConfigJson(const ModelConfig &config, DType dtype,
                              const json::Value *quantizationConfig = nullptr);

/// Reorders the rows of a q_proj or k_proj weight (or bias, rowLength 1)
/// from the interleaved RoPE layout (llama2.c/Meta: pairs (2i, 2i+1)) to
/// the half-split one (Hugging Face rotate_half: pairs (i, i + headDim/2)),
/// exactly like transformers' convert_llama_weights_to_hf `permute`: row
/// h*headDim + 2i + e moves to h*headDim + e*headDim/2 + i. `src` and `dst`
/// hold nHeads*headDim rows of rowLength floats each and must not overlap;
/// headDim must be even.
void permuteInterleavedToHalfSplit(const float *src, float *dst, int64_t nHeads,
                                   int64_t headDim, int64_t rowLength);

/// Inverse of permuteInterleavedToHalfSplit, same contract.
void permuteHalfSplitToInterleaved(const float *src, float *dst, int64_t nHeads,
                                   int64_t headDim, int64_t rowLength);

} // namespace qc

#endif // QC_RUNTIME_HFCHECKPOINT_H
