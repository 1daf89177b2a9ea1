//===- GgufModel.h - GGUF file to ModelWeights ------------------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Turns a GGUF file of a LLaMA-family model into the in-memory ModelWeights
// every qc tool uses: the `general.architecture` metadata becomes a
// ModelConfig, the tensors get their Hugging Face names and PyTorch shapes,
// are dequantized to fp32 bit-exactly (GgmlQuants.h), and llama.cpp's row
// permutation of the Q and K projections (llama architecture only) is
// undone so that RoPE uses the HalfSplit (rotate_half) layout. Metadata
// that changes the model's function in a way ModelConfig cannot express
// (RoPE scaling, partial rotary dimensions, sliding windows, experts, ...)
// is refused with an error naming the key, never ignored.
//
//===----------------------------------------------------------------------===//

#ifndef QC_RUNTIME_GGUFMODEL_H
#define QC_RUNTIME_GGUFMODEL_H

#include "qc/runtime/Gguf.h"
#include "qc/runtime/Model.h"
#include "qc/runtime/Status.h"

#include <string>

namespace qc {

/// Reads the model configuration from `file`'s metadata: architecture
/// llama or qwen2 (anything else is refused by name), sizes, heads, KV
/// heads, head dim (`<arch>.attention.key_length` when present), context
/// length (maxSeqLen), RMS epsilon, RoPE base, bos/eos from
/// `tokenizer.ggml.*`, tied output when there is no `output.weight`, and
/// the vocabulary size from `token_embd.weight`. Validated with
/// validateModelConfig. Errors start with the file name.
Status parseGgufConfig(const GgufFile &file, ModelConfig &out);

/// The Hugging Face name of GGUF tensor `ggufName` ("blk.3.attn_q.weight"
/// -> "model.layers.3.self_attn.q_proj.weight") for a model with `nLayers`
/// layers; false for a name qc does not know or a layer index out of range.
bool ggufTensorNameToHF(const std::string &ggufName, int64_t nLayers,
                        std::string &hfName);

/// Loads the GGUF model at `path`: configuration (parseGgufConfig), every
/// tensor dequantized to fp32 under its Hugging Face name in PyTorch shape,
/// Q/K rows un-permuted for the llama architecture, RopeLayout HalfSplit;
/// checked with validateModelWeights (exact tensor set, shapes, finite
/// values). Errors name the file and the tensor or key at fault. With
/// `options.lazy`, tensors keep their shape and a loader instead: rows are
/// dequantized (and Q/K rows un-permuted) from the mapped file when
/// ModelWeights::materialize asks, and their pages dropped after, so a
/// quantization pass holds one layer; a non-finite value is then reported
/// when its tensor is read.
Status loadGgufModel(const std::string &path, ModelWeights &out,
                     const LoadOptions &options = {});

/// As above for an already opened file (always read whole).
Status loadGgufModel(const GgufFile &file, ModelWeights &out);

/// True when `path` looks like a GGUF file: it is a regular file that
/// starts with the magic "GGUF" (the content is not validated).
bool isGgufFile(const std::string &path);

} // namespace qc

#endif // QC_RUNTIME_GGUFMODEL_H
