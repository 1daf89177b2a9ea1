//===- Model.h - Model configuration and fp32 weights -----------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// The in-memory form of a LLaMA-family model shared by every importer
// (llama2.c `.bin`, Hugging Face safetensors) and exporter: a configuration
// plus fp32 tensors keyed by their Hugging Face names
// ("model.layers.0.self_attn.q_proj.weight", ...). The compiler's IR refers
// to parameters by these names; execution resolves them here.
//
//===----------------------------------------------------------------------===//

#ifndef QC_RUNTIME_MODEL_H
#define QC_RUNTIME_MODEL_H

#include "qc/runtime/Safetensors.h"
#include "qc/runtime/Status.h"

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace qc {

/// How rotary embeddings pair the features of one head.
enum class RopeLayout {
  /// llama2.c / Meta: pairs (2i, 2i+1).
  Interleaved,
  /// Hugging Face `rotate_half`: pairs (i, i + head_dim/2).
  HalfSplit,
};

/// How the rotary frequencies are rescaled for long contexts (transformers'
/// `rope_scaling` / `rope_parameters`, llama.cpp's `rope.scaling.*`).
enum class RopeScalingType {
  None,   ///< theta^(-2i/d) unchanged ("default")
  Linear, ///< every frequency divided by `factor` (position interpolation)
  Llama3, ///< Llama 3.1: low frequencies / factor, a smooth band between
  Yarn,   ///< YaRN: per-frequency ramp + attention (cos/sin) scaling
};

/// Parameters of a RoPE scaling; which fields matter depends on `type`.
struct RopeScaling {
  RopeScalingType type = RopeScalingType::None;
  double factor = 1.0;
  /// Llama3: the frequency band edges.
  double lowFreqFactor = 1.0, highFreqFactor = 4.0;
  /// Llama3 and YaRN: the context the model was trained with before
  /// scaling (0 = max_position_embeddings, for YaRN).
  int64_t originalMaxPositions = 0;
  /// YaRN: the ramp's rotation counts, an explicit attention factor (0 =
  /// derived from factor / mscale / mscaleAllDim), and whether the ramp
  /// bounds are rounded outwards to integers.
  double betaFast = 32.0, betaSlow = 1.0;
  double attentionFactor = 0.0;
  double mscale = 0.0, mscaleAllDim = 0.0;
  bool truncate = true;
};

/// Architecture hyper-parameters of a LLaMA-family decoder.
struct ModelConfig {
  /// "llama", "mistral" or "qwen2" (HF `model_type`); "llama" for llama2.c.
  std::string modelType = "llama";
  int64_t dim = 0;       ///< hidden_size
  int64_t hiddenDim = 0; ///< intermediate_size (SwiGLU width)
  int64_t nLayers = 0;   ///< num_hidden_layers
  int64_t nHeads = 0;    ///< num_attention_heads
  int64_t nKVHeads = 0;  ///< num_key_value_heads (GQA); equals nHeads for MHA
  int64_t headDim = 0;   ///< dim / nHeads unless the config says otherwise
  int64_t vocabSize = 0; ///< rows of the embedding table
  int64_t maxSeqLen = 0; ///< max_position_embeddings / llama2.c seq_len
  float normEps = 1e-5f; ///< RMSNorm epsilon
  float ropeTheta = 10000.0f;
  bool tiedEmbeddings = true; ///< lm_head shares embed_tokens
  bool attentionBias = false; ///< q/k/v projections carry a bias (qwen2)
  RopeLayout ropeLayout = RopeLayout::HalfSplit;
  /// Features of each head that RoPE rotates (transformers'
  /// head_dim * partial_rotary_factor); 0 means all of headDim. The rest
  /// pass through unrotated.
  int64_t rotaryDim = 0;
  RopeScaling ropeScaling;
  /// Sliding-window attention width (0 = none). qc runs such a model only
  /// for contexts within the window, where it equals full attention, so
  /// maxSeqLen is capped to it; kept to explain the cap in errors.
  int64_t slidingWindow = 0;
  int64_t bosId = 1;
  int64_t eosId = 2;
};

/// The rotary embedding a configuration implies, resolved to numbers: the
/// angle of pair i at position p is p * invFreq[i] (fp32), and cos/sin are
/// multiplied by attentionScaling (YaRN; 1 otherwise).
struct RopeParameters {
  int64_t rotaryDim = 0;      ///< rotated features per head (even)
  std::vector<float> invFreq; ///< rotaryDim / 2 frequencies
  float attentionScaling = 1.0f;
  /// True when the frequencies are theta^(-2i/headDim) over the whole head
  /// with no scaling: the form the llm.rope op computes by itself.
  bool isDefault = true;
};

/// The effective rotary dimension of `c` (rotaryDim, or headDim when 0).
inline int64_t effectiveRotaryDim(const ModelConfig &c) {
  return c.rotaryDim > 0 ? c.rotaryDim : c.headDim;
}

/// Computes the rotary frequencies of `c` exactly as transformers'
/// modeling_rope_utils does in fp32 (default, linear, llama3 and yarn), so
/// that a scaled model computes what its reference implementation computes.
/// Fails naming the parameter when the scaling is inconsistent (factor < 1,
/// low >= high frequency factor, ...).
Status computeRopeParameters(const ModelConfig &c, RopeParameters &out);

/// Name of a scaling type as transformers spells it ("default", "linear",
/// "llama3", "yarn").
const char *ropeScalingName(RopeScalingType t);

/// Reads rows [first, first + count) (along the first dimension) of a
/// lazily opened tensor as fp32 values, row-major, checked finite, into
/// `out`; errors name the file and the tensor. Reading part of a tensor
/// lets a consumer stream a matrix larger than it wants resident (hashing
/// a 128k-row head, gathering embedding rows).
using TensorLoader = std::function<Status(int64_t first, int64_t count,
                                          std::vector<float> &out)>;

/// A dense fp32 tensor, row-major. A tensor of a checkpoint opened lazily
/// (LoadOptions::lazy) has its shape and a `load` function but no `data`
/// until ModelWeights::materialize reads it.
struct HostTensor {
  std::vector<int64_t> shape;
  std::vector<float> data;
  /// Set for a lazily opened tensor: where its values come from.
  TensorLoader load;
  /// Whether `data` holds the values (always, unless lazily opened and not
  /// materialized).
  bool resident() const { return !load || !data.empty() || numElements() == 0; }
  /// Rows along the first dimension, the unit a TensorLoader reads (a
  /// scalar is one row).
  int64_t rows() const { return shape.empty() ? 1 : shape[0]; }
  /// Number of elements implied by `shape`.
  int64_t numElements() const {
    int64_t n = 1;
    for (int64_t d : shape)
      n *= d;
    return n;
  }
};

/// A tensor kept in its stored dtype: packed integer codes, fp16 scales,
/// act-order indices. Row-major bytes, little-endian.
struct PackedTensor {
  DType dtype = DType::U8;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

/// A whole model held in memory: fp32 parameters plus, for quantized
/// layers, their packed tensors.
struct ModelWeights {
  ModelConfig config;
  /// Tensors keyed by Hugging Face name. A tied model has no "lm_head.weight".
  std::map<std::string, HostTensor> tensors;
  /// Tensors that are not fp32 (a quantized model's qweight, scales, qzeros,
  /// g_idx), keyed by name; never validated against `config`.
  std::map<std::string, PackedTensor> packed;
  /// Names of `tensors` that came from (or must go to) an overlay rather
  /// than the original checkpoint: f32 scales, and float weights a pass
  /// changed (AWQ's folded norm weights). A pass writing a new overlay
  /// carries these over together with `packed`.
  std::set<std::string> overlaid;

  /// Returns the tensor or nullptr. A lazily opened tensor may not be
  /// resident: materialize it before reading `data`.
  const HostTensor *find(const std::string &name) const {
    auto it = tensors.find(name);
    return it == tensors.end() ? nullptr : &it->second;
  }

  /// Reads tensor `name` into memory if it is lazily opened and not
  /// resident (a no-op otherwise, and for a name that does not exist).
  Status materialize(const std::string &name);
  /// Reads every lazily opened tensor: the model as an eager load gives it,
  /// for code that needs all of it (calibration, block-wise methods).
  Status materializeAll();
  /// Frees the values of tensor `name` when they can be read again (a
  /// lazily opened tensor); eagerly loaded tensors are kept.
  void release(const std::string &name);
  /// Whether some tensor is lazily opened and not resident.
  bool hasLazyTensors() const;
};

/// How a checkpoint is opened.
struct LoadOptions {
  /// Float tensors are not read: each gets its shape and a loader, and is
  /// read on demand (ModelWeights::materialize), so a model larger than
  /// memory can be processed one tensor at a time. Hugging Face folders
  /// (F32/F16/BF16/F64 safetensors), GGUF files and llama2.c checkpoints
  /// support it; packed tensors of a quantized checkpoint are read eagerly.
  bool lazy = false;
};

/// Adds every tensor of the safetensors file `path` to `weights`: F32
/// tensors replace or join `tensors` (checked finite), everything else goes
/// to `packed` as raw bytes. Used for the weights a quantization pass writes
/// beside the original checkpoint.
Status loadSafetensorsOverlay(const std::string &path, ModelWeights &weights);

/// One tensor a configuration implies, with the formula behind its shape
/// (for error messages).
struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  const char *formula;
};

/// Every tensor a LLaMA-family `config` implies, in Hugging Face order
/// (embedding; per layer norms, q/k/v (+ biases), o, MLP; final norm;
/// lm_head when untied). Assumes a config that passed validateModelConfig.
std::vector<TensorSpec> modelTensorSpecs(const ModelConfig &config);

/// Hugging Face tensor names of layer `layer`'s parameters.
std::string layerTensorName(int64_t layer, const std::string &suffix);

/// Checks the configuration on its own: every size positive, nHeads a
/// multiple of nKVHeads, an even headDim (RoPE rotates pairs), positive
/// finite normEps and ropeTheta, bos/eos ids inside the vocabulary, and
/// every implied tensor size representable in int64. Errors start with
/// `sourceName` and name the offending field.
Status validateModelConfig(const ModelConfig &config,
                           const std::string &sourceName);

/// Checks that `weights` holds exactly the tensors `config` implies, with the
/// implied shapes, and that every value is finite. The error names the
/// tensor (and, for non-finite values, the first bad index).
Status validateModelWeights(const ModelWeights &weights,
                            const std::string &sourceName);

} // namespace qc

#endif // QC_RUNTIME_MODEL_H
