//===- Llama2C.h - llama2.c checkpoint importer -----------------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Reads Karpathy's llama2.c "v0" checkpoint format (`model.bin`, as written
// by llama2.c's export.py legacy path and as the bundled stories260K model
// ships) into the shared in-memory ModelWeights, renaming every array to its
// Hugging Face tensor name so the rest of the compiler sees one naming
// scheme whatever the source format.
//
//===----------------------------------------------------------------------===//

#ifndef QC_RUNTIME_LLAMA2C_H
#define QC_RUNTIME_LLAMA2C_H

#include "qc/runtime/Model.h"
#include "qc/runtime/Status.h"

#include <cstdint>
#include <string>

namespace qc {

/// The seven int32 values that open a llama2.c v0 checkpoint, in file order.
struct Llama2CHeader {
  int32_t dim = 0;       ///< Model width.
  int32_t hiddenDim = 0; ///< SwiGLU inner width.
  int32_t nLayers = 0;   ///< Number of decoder layers.
  int32_t nHeads = 0;    ///< Query heads.
  int32_t nKVHeads = 0;  ///< Key/value heads (GQA).
  /// Vocabulary size; negative means the classifier is untied and stored
  /// after the (unused) RoPE tables at the end of the file.
  int32_t vocabSize = 0;
  int32_t seqLen = 0; ///< Maximum sequence length (sizes the RoPE tables).
};

/// Size in bytes of the llama2.c v0 header (7 x int32).
constexpr int64_t kLlama2CHeaderBytes = 7 * 4;

/// Upper bounds on header fields. They are far above any model llama2.c can
/// run but keep every size computation well inside int64 and turn a
/// corrupted header into a clear error instead of a huge allocation.
constexpr int64_t kLlama2CMaxDim = 1 << 16;       ///< dim, n_heads, n_kv_heads
constexpr int64_t kLlama2CMaxHiddenDim = 1 << 18; ///< hidden_dim
constexpr int64_t kLlama2CMaxLayers = 1 << 10;    ///< n_layers
constexpr int64_t kLlama2CMaxVocab = 1 << 22;     ///< |vocab_size|
constexpr int64_t kLlama2CMaxSeqLen = 1 << 22;    ///< seq_len

/// Checks a header's values (positivity, caps, dim % nHeads == 0,
/// nHeads % nKVHeads == 0, even head size) and, on success, stores in
/// `expectedBytes` the exact file size the header implies. `path` only
/// prefixes error messages.
Status validateLlama2CHeader(const Llama2CHeader &header,
                             const std::string &path, int64_t &expectedBytes);

/// Loads the llama2.c v0 checkpoint at `path` into `out` (replacing its
/// contents). Tensors get Hugging Face names and [out, in] shapes:
/// model.embed_tokens.weight [vocab, dim], per layer input_layernorm,
/// self_attn.{q,k,v,o}_proj, post_attention_layernorm,
/// mlp.{gate,down,up}_proj, then model.norm.weight and, for an untied
/// classifier only, lm_head.weight [vocab, dim]. The RoPE tables stored in
/// the file are skipped: they are recomputed from ropeTheta.
///
/// Fails, with a message starting with `path`, when the file cannot be read,
/// its header is invalid, its size is not exactly what the header implies,
/// or any weight is NaN/Inf (the message names the tensor and the first bad
/// flat index). Nothing is allocated before the file size is validated.
///
/// With `options.lazy` no weight is read: each tensor gets its shape and a
/// loader that reads rows of it from the file when asked
/// (ModelWeights::materialize), checked finite then, so quantization can
/// stream the model one layer or block at a time as it does Hugging Face
/// folders and GGUF files.
Status loadLlama2C(const std::string &path, ModelWeights &out,
                   const LoadOptions &options = {});

} // namespace qc

#endif // QC_RUNTIME_LLAMA2C_H
