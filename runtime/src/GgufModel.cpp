//===- GgufModel.cpp - GGUF file to ModelWeights ----------------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Metadata keys follow llama.cpp's naming (`<arch>.embedding_length`,
// `<arch>.attention.head_count_kv`, ...). Every key under the architecture's
// prefix must be one this file understands: an unknown key could change
// the computation (a new RoPE variant, a softcap, experts), so it is an
// error naming the key rather than something silently dropped. The same
// holds for tensor names.
//
// llama.cpp's converter stores the llama architecture's Q and K weights
// with the rows of each head interleaved (its RoPE pairs features 2i and
// 2i+1); undoing that gives the Hugging Face rotate_half layout. qwen2 is
// stored unpermuted (llama.cpp runs it with NEOX-style RoPE), so its rows
// are kept as they are.
//
// RoPE keys are mapped to what transformers computes for the same model:
// `rope.dimension_count` below the head size is a partial rotary embedding
// (rotaryDim; llama.cpp rotates the first dimension_count features of each
// head and passes the rest through, as transformers' partial_rotary_factor
// does), `rope.scaling.type` linear and yarn with their parameters (the
// values convert_hf_to_gguf.py copies from the Hugging Face rope_scaling).
// What has no exact equivalent (llama3-style rope_freqs.weight factors,
// rope.scaling.finetuned, YaRN's log multiplier or an extrapolation factor
// other than 1, sliding windows) is refused with the key's name.
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/GgufModel.h"

#include "qc/runtime/GgmlQuants.h"
#include "qc/runtime/HFCheckpoint.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <set>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace qc {

namespace {

/// Keys under `<arch>.` that parseGgufConfig reads or checks.
const char *const kKnownArchKeys[] = {
    "context_length",
    "embedding_length",
    "block_count",
    "feed_forward_length",
    "attention.head_count",
    "attention.head_count_kv",
    "attention.key_length",
    "attention.value_length",
    "attention.layer_norm_rms_epsilon",
    "rope.freq_base",
    "rope.dimension_count",
    "rope.scaling.type",
    "rope.scaling.factor",
    "rope.scale_linear",
    "rope.scaling.attn_factor",
    "rope.scaling.original_context_length",
    "rope.scaling.yarn_attn_factor",
    "rope.scaling.yarn_beta_fast",
    "rope.scaling.yarn_beta_slow",
    "rope.scaling.yarn_ext_factor",
    "vocab_size",
};

std::string q(const std::string &s) { return ggufQuote(s); }

/// Reads an optional u32-representable key into an int64_t.
Status optionalInt(const GgufFile &f, const std::string &key, int64_t &out) {
  if (!f.has(key))
    return Status::ok();
  uint32_t v;
  QC_RETURN_IF_ERROR(f.getU32(key, v));
  out = v;
  return Status::ok();
}

Status requiredInt(const GgufFile &f, const std::string &key, int64_t &out) {
  uint32_t v;
  QC_RETURN_IF_ERROR(f.getU32(key, v));
  out = v;
  return Status::ok();
}

/// Reads an optional f32 key; `present` says whether it was there.
Status optionalF32(const GgufFile &f, const std::string &key, double &out,
                   bool &present) {
  present = f.has(key);
  if (!present)
    return Status::ok();
  float v = 0;
  QC_RETURN_IF_ERROR(f.getF32(key, v));
  if (!std::isfinite(v))
    return f.error("metadata key " + q(key) + " is not finite");
  out = v;
  return Status::ok();
}

/// The RoPE keys: partial rotary dimension and scaling, into `c` (whose
/// headDim and maxSeqLen are set).
Status parseGgufRope(const GgufFile &f, const std::string &arch,
                     ModelConfig &c) {
  const std::string p = arch + ".";
  if (f.has(p + "rope.dimension_count")) {
    int64_t rot = 0;
    QC_RETURN_IF_ERROR(requiredInt(f, p + "rope.dimension_count", rot));
    if (rot <= 0 || rot > c.headDim || rot % 2 != 0)
      return f.error("metadata key " + q(p + "rope.dimension_count") + " is " +
                     std::to_string(rot) +
                     ": the rotated features must be an even number within "
                     "the head dim " +
                     std::to_string(c.headDim));
    c.rotaryDim = rot == c.headDim ? 0 : rot;
  }

  // llama.cpp's defaults: scaling type "linear" when the key is absent, the
  // factor from rope.scaling.factor or its older name rope.scale_linear,
  // 0 meaning 1 (no scaling).
  std::string type = "linear";
  const bool hasType = f.has(p + "rope.scaling.type");
  if (hasType)
    QC_RETURN_IF_ERROR(f.getString(p + "rope.scaling.type", type));
  double factor = 0.0;
  bool hasFactor = false;
  std::string factorKey = p + "rope.scaling.factor";
  QC_RETURN_IF_ERROR(optionalF32(f, factorKey, factor, hasFactor));
  if (!hasFactor && f.has(p + "rope.scale_linear")) {
    factorKey = p + "rope.scale_linear";
    QC_RETURN_IF_ERROR(optionalF32(f, factorKey, factor, hasFactor));
  }
  const bool scales = hasFactor && factor != 0.0 && factor != 1.0;

  // YaRN-only keys.
  double attn = 0, attnYarn = 0, betaFast = 32.0, betaSlow = 1.0, ext = 1.0;
  bool hasAttn, hasAttnYarn, hasBetaFast, hasBetaSlow, hasExt;
  QC_RETURN_IF_ERROR(
      optionalF32(f, p + "rope.scaling.attn_factor", attn, hasAttn));
  QC_RETURN_IF_ERROR(optionalF32(f, p + "rope.scaling.yarn_attn_factor",
                                 attnYarn, hasAttnYarn));
  QC_RETURN_IF_ERROR(
      optionalF32(f, p + "rope.scaling.yarn_beta_fast", betaFast, hasBetaFast));
  QC_RETURN_IF_ERROR(
      optionalF32(f, p + "rope.scaling.yarn_beta_slow", betaSlow, hasBetaSlow));
  QC_RETURN_IF_ERROR(
      optionalF32(f, p + "rope.scaling.yarn_ext_factor", ext, hasExt));
  int64_t original = 0;
  const bool hasOriginal = f.has(p + "rope.scaling.original_context_length");
  if (hasOriginal)
    QC_RETURN_IF_ERROR(
        requiredInt(f, p + "rope.scaling.original_context_length", original));

  RopeScaling &s = c.ropeScaling;
  s = RopeScaling();
  if (type == "yarn") {
    if (!hasFactor || !(factor >= 1.0))
      return f.error("metadata key " + q(factorKey) +
                     (hasFactor ? " is " + std::to_string(factor) + ": "
                                : " is missing: ") +
                     "YaRN scaling needs a factor >= 1");
    s.type = RopeScalingType::Yarn;
    s.factor = factor;
    s.originalMaxPositions = original; // 0: the context length
    s.betaFast = betaFast;
    s.betaSlow = betaSlow;
    // Both keys carry transformers' attention_factor (convert_hf_to_gguf.py
    // writes the second; some model classes the first).
    if (hasAttn && hasAttnYarn && attn != attnYarn)
      return f.error("metadata keys " + q(p + "rope.scaling.attn_factor") +
                     " and " + q(p + "rope.scaling.yarn_attn_factor") +
                     " disagree (" + std::to_string(attn) + " and " +
                     std::to_string(attnYarn) + ")");
    if (hasAttn || hasAttnYarn) {
      s.attentionFactor = hasAttnYarn ? attnYarn : attn;
      if (!(s.attentionFactor > 0.0))
        return f.error("metadata key " +
                       q(p + (hasAttnYarn ? "rope.scaling.yarn_attn_factor"
                                          : "rope.scaling.attn_factor")) +
                       " must be positive");
    }
    // transformers' YaRN blends the interpolated and extrapolated
    // frequencies with the plain ramp, i.e. llama.cpp's extrapolation
    // factor 1.
    if (hasExt && ext != 1.0)
      return f.error("metadata key " + q(p + "rope.scaling.yarn_ext_factor") +
                     " is " + std::to_string(ext) +
                     ": only 1 (transformers' YaRN) is supported");
    return Status::ok();
  }
  // Not YaRN: its parameters would be ignored, which hides a mistake.
  const std::pair<bool, const char *> yarnOnly[] = {
      {hasAttn, "rope.scaling.attn_factor"},
      {hasAttnYarn, "rope.scaling.yarn_attn_factor"},
      {hasBetaFast, "rope.scaling.yarn_beta_fast"},
      {hasBetaSlow, "rope.scaling.yarn_beta_slow"},
      {hasExt, "rope.scaling.yarn_ext_factor"},
      {hasOriginal, "rope.scaling.original_context_length"}};
  for (auto &[present, key] : yarnOnly)
    if (present)
      return f.error("metadata key " + q(p + key) +
                     " is only used by YaRN "
                     "scaling, but the scaling type is " +
                     q(hasType ? type : "linear (the default)"));
  if (type == "linear") {
    if (scales) {
      if (!(factor > 0.0))
        return f.error("metadata key " + q(factorKey) + " is " +
                       std::to_string(factor) + ": must be positive");
      s.type = RopeScalingType::Linear;
      s.factor = factor;
    }
    return Status::ok();
  }
  if (type == "none") {
    // llama.cpp ignores the factor then; a file saying both is ambiguous.
    if (scales)
      return f.error("metadata key " + q(factorKey) + " is " +
                     std::to_string(factor) + " but " +
                     q(p + "rope.scaling.type") +
                     " is 'none': ambiguous RoPE scaling");
    return Status::ok();
  }
  return f.error("metadata key " + q(p + "rope.scaling.type") + " is " +
                 q(type) +
                 ": this RoPE scaling is not supported (supported: none, "
                 "linear, yarn)");
}

/// Refusals for metadata that would change the model's function.
Status checkUnsupported(const GgufFile &f, const std::string &arch,
                        int64_t headDim) {
  const std::string p = arch + ".";
  for (const GgufKV &kv : f.metadata()) {
    if (kv.key.compare(0, p.size(), p) != 0)
      continue;
    std::string rest = kv.key.substr(p.size());
    bool known = false;
    for (const char *k : kKnownArchKeys)
      known = known || rest == k;
    if (known)
      continue;
    if (rest.find("sliding_window") != std::string::npos)
      return f.error("metadata key " + q(kv.key) +
                     ": sliding-window attention is not supported");
    if (rest.compare(0, 5, "rope.") == 0)
      return f.error("metadata key " + q(kv.key) +
                     ": this RoPE variant is not supported");
    if (rest.compare(0, 6, "expert") == 0)
      return f.error("metadata key " + q(kv.key) +
                     ": mixture-of-experts models are not supported");
    return f.error("metadata key " + q(kv.key) +
                   " is not understood by qc (it may change the model's "
                   "function, so it is not ignored)");
  }
  if (f.has(p + "attention.value_length")) {
    int64_t v = 0;
    QC_RETURN_IF_ERROR(requiredInt(f, p + "attention.value_length", v));
    if (v != headDim)
      return f.error("metadata key " + q(p + "attention.value_length") +
                     " is " + std::to_string(v) + " but the key length is " +
                     std::to_string(headDim) +
                     ": different key and value head sizes are not "
                     "supported");
  }
  if (f.findTensor("rope_freqs.weight"))
    return f.error("tensor 'rope_freqs.weight' (per-frequency RoPE factors, "
                   "llama3-style scaling) is not supported");
  return Status::ok();
}

/// Maps "blk.N.<suffix>" suffixes to Hugging Face layer suffixes.
struct LayerName {
  const char *gguf;
  const char *hf;
};
constexpr LayerName kLayerNames[] = {
    {"attn_norm.weight", "input_layernorm.weight"},
    {"ffn_norm.weight", "post_attention_layernorm.weight"},
    {"attn_q.weight", "self_attn.q_proj.weight"},
    {"attn_k.weight", "self_attn.k_proj.weight"},
    {"attn_v.weight", "self_attn.v_proj.weight"},
    {"attn_q.bias", "self_attn.q_proj.bias"},
    {"attn_k.bias", "self_attn.k_proj.bias"},
    {"attn_v.bias", "self_attn.v_proj.bias"},
    {"attn_output.weight", "self_attn.o_proj.weight"},
    {"ffn_gate.weight", "mlp.gate_proj.weight"},
    {"ffn_up.weight", "mlp.up_proj.weight"},
    {"ffn_down.weight", "mlp.down_proj.weight"},
};

} // namespace

bool ggufTensorNameToHF(const std::string &name, int64_t nLayers,
                        std::string &hf) {
  if (name == "token_embd.weight") {
    hf = "model.embed_tokens.weight";
    return true;
  }
  if (name == "output_norm.weight") {
    hf = "model.norm.weight";
    return true;
  }
  if (name == "output.weight") {
    hf = "lm_head.weight";
    return true;
  }
  if (name.compare(0, 4, "blk.") != 0)
    return false;
  size_t i = 4;
  int64_t layer = 0;
  // Decimal without sign or leading zeros, below nLayers.
  if (i >= name.size() || name[i] < '0' || name[i] > '9' ||
      (name[i] == '0' && i + 1 < name.size() && name[i + 1] != '.'))
    return false;
  while (i < name.size() && name[i] >= '0' && name[i] <= '9') {
    layer = layer * 10 + (name[i] - '0');
    if (layer >= nLayers)
      return false;
    ++i;
  }
  if (i >= name.size() || name[i] != '.')
    return false;
  std::string suffix = name.substr(i + 1);
  for (const LayerName &n : kLayerNames) {
    if (suffix == n.gguf) {
      hf = layerTensorName(layer, n.hf);
      return true;
    }
  }
  return false;
}

Status parseGgufConfig(const GgufFile &f, ModelConfig &out) {
  std::string arch;
  QC_RETURN_IF_ERROR(f.getString("general.architecture", arch));
  if (arch != "llama" && arch != "qwen2")
    return f.error("architecture " + q(arch) +
                   " is not supported (supported: llama, qwen2)");
  const std::string p = arch + ".";
  ModelConfig c;
  c.modelType = arch;
  QC_RETURN_IF_ERROR(requiredInt(f, p + "embedding_length", c.dim));
  QC_RETURN_IF_ERROR(requiredInt(f, p + "feed_forward_length", c.hiddenDim));
  QC_RETURN_IF_ERROR(requiredInt(f, p + "block_count", c.nLayers));
  QC_RETURN_IF_ERROR(requiredInt(f, p + "attention.head_count", c.nHeads));
  c.nKVHeads = c.nHeads;
  QC_RETURN_IF_ERROR(optionalInt(f, p + "attention.head_count_kv", c.nKVHeads));
  QC_RETURN_IF_ERROR(requiredInt(f, p + "context_length", c.maxSeqLen));
  QC_RETURN_IF_ERROR(
      f.getF32(p + "attention.layer_norm_rms_epsilon", c.normEps));
  c.ropeTheta = 10000.0f;
  if (f.has(p + "rope.freq_base"))
    QC_RETURN_IF_ERROR(f.getF32(p + "rope.freq_base", c.ropeTheta));
  if (f.has(p + "attention.key_length")) {
    QC_RETURN_IF_ERROR(requiredInt(f, p + "attention.key_length", c.headDim));
  } else {
    if (c.nHeads <= 0 || c.dim % c.nHeads != 0)
      return f.error("metadata key " + q(p + "embedding_length") + " (" +
                     std::to_string(c.dim) +
                     ") is not a multiple of the head count (" +
                     std::to_string(c.nHeads) + ") and " +
                     q(p + "attention.key_length") + " is absent");
    c.headDim = c.dim / c.nHeads;
  }
  QC_RETURN_IF_ERROR(checkUnsupported(f, arch, c.headDim));
  QC_RETURN_IF_ERROR(parseGgufRope(f, arch, c));
  // Every layer has at least 9 tensors. Checking the layer count against
  // the file before validateModelConfig/validateModelWeights keeps a lying
  // block_count from sizing their per-layer lists (found by the fuzzer).
  if (c.nLayers > static_cast<int64_t>(f.tensors().size() / 9))
    return f.error("metadata key " + q(p + "block_count") + " is " +
                   std::to_string(c.nLayers) + " but the file has only " +
                   std::to_string(f.tensors().size()) +
                   " tensors (a layer has at least 9)");

  const GgufTensorInfo *embd = f.findTensor("token_embd.weight");
  if (!embd)
    return f.error("tensor 'token_embd.weight' is missing");
  if (embd->dims.size() != 2)
    return f.error("tensor 'token_embd.weight' has " +
                   std::to_string(embd->dims.size()) +
                   " dimensions, expected 2");
  c.vocabSize = static_cast<int64_t>(embd->dims[1]);
  if (f.has(p + "vocab_size")) {
    int64_t v = 0;
    QC_RETURN_IF_ERROR(requiredInt(f, p + "vocab_size", v));
    if (v != c.vocabSize)
      return f.error("metadata key " + q(p + "vocab_size") + " is " +
                     std::to_string(v) + " but 'token_embd.weight' has " +
                     std::to_string(c.vocabSize) + " rows");
  }
  // Check the sizes that validateModelConfig works with (it builds
  // per-frequency RoPE tables of headDim/2 entries) against the tensors
  // first, so that a lying key can only size work by what the file holds.
  if (embd->dims[0] != static_cast<uint64_t>(c.dim))
    return f.error("metadata key " + q(p + "embedding_length") + " is " +
                   std::to_string(c.dim) +
                   " but 'token_embd.weight' rows have " +
                   std::to_string(embd->dims[0]) + " elements");
  const GgufTensorInfo *q0 = f.findTensor("blk.0.attn_q.weight");
  if (!q0)
    return f.error("tensor 'blk.0.attn_q.weight' is missing");
  uint64_t qRows;
  if (q0->dims.size() != 2 ||
      __builtin_mul_overflow(static_cast<uint64_t>(c.nHeads),
                             static_cast<uint64_t>(c.headDim), &qRows) ||
      q0->dims[1] != qRows || q0->dims[0] != static_cast<uint64_t>(c.dim))
    return f.error("tensor 'blk.0.attn_q.weight' does not have the shape "
                   "[embedding_length, head_count * head dim] = [" +
                   std::to_string(c.dim) + ", " + std::to_string(c.nHeads) +
                   " * " + std::to_string(c.headDim) +
                   "] the metadata implies");
  c.tiedEmbeddings = f.findTensor("output.weight") == nullptr;
  c.attentionBias = f.findTensor("blk.0.attn_q.bias") != nullptr;
  if (arch == "qwen2" && !c.attentionBias)
    return f.error("tensor 'blk.0.attn_q.bias' is missing (qwen2 has q/k/v "
                   "biases)");
  c.ropeLayout = RopeLayout::HalfSplit;
  if (f.has("tokenizer.ggml.bos_token_id")) {
    uint32_t v;
    QC_RETURN_IF_ERROR(f.getU32("tokenizer.ggml.bos_token_id", v));
    c.bosId = v;
  }
  if (f.has("tokenizer.ggml.eos_token_id")) {
    uint32_t v;
    QC_RETURN_IF_ERROR(f.getU32("tokenizer.ggml.eos_token_id", v));
    c.eosId = v;
  }
  QC_RETURN_IF_ERROR(validateModelConfig(c, f.displayName()));
  out = c;
  return Status::ok();
}

namespace {

/// Reads the tensors of `f` into `w` (config already parsed): whole, or,
/// with `keepAlive` (the file, shared with the loaders), lazily.
Status loadGgufTensors(const GgufFile &f, ModelWeights &w,
                       std::shared_ptr<const GgufFile> keepAlive) {
  const ModelConfig &c = w.config;
  bool unpermute = c.modelType == "llama";
  for (const GgufTensorInfo &info : f.tensors()) {
    std::string hf;
    if (!ggufTensorNameToHF(info.name, c.nLayers, hf))
      return f.error("tensor " + q(info.name) + " is not a tensor of a " +
                     c.modelType +
                     " model that qc knows (or its layer index is out of "
                     "range)");
    HostTensor t;
    t.shape = info.shape();
    auto endsWith = [&](const char *s) {
      size_t n = std::strlen(s);
      return hf.size() >= n && hf.compare(hf.size() - n, n, s) == 0;
    };
    int64_t heads = 0;
    if (unpermute && (endsWith("self_attn.q_proj.weight") ||
                      endsWith("self_attn.k_proj.weight"))) {
      heads = endsWith("q_proj.weight") ? c.nHeads : c.nKVHeads;
      if (t.shape.size() != 2 || t.shape[0] != heads * c.headDim)
        return f.error("tensor " + q(info.name) + " has shape " +
                       (t.shape.size() == 2
                            ? "[" + std::to_string(t.shape[0]) + ", " +
                                  std::to_string(t.shape[1]) + "]"
                            : std::to_string(t.shape.size()) + "-D") +
                       ", expected " + std::to_string(heads * c.headDim) +
                       " rows (" + std::to_string(heads) + " heads of " +
                       std::to_string(c.headDim) + ")");
    }
    // llama.cpp rotates the pairs (2i, 2i+1) of the first
    // effectiveRotaryDim features of each head: those rows go to the
    // rotate_half positions (i, i + rot/2) of a head of rot features; the
    // unrotated rest keeps its order (Q and K alike, so their dot products
    // are unchanged).
    const int64_t rot = heads ? effectiveRotaryDim(c) : 0;
    if (keepAlive) {
      // Dequantized only when a pass reaches the layer; its type is checked
      // now, as an eager load would.
      GgmlTypeTraits traits = ggmlTypeTraits(info.type);
      if (!traits.dequantizable)
        return f.error("tensor " + q(info.name) + " has unsupported type " +
                       traits.name +
                       " (supported: " + dequantizableGgmlTypeNames() + ")");
      const GgufTensorInfo *ti = &info;
      const int64_t headDim = c.headDim;
      t.load = [keepAlive, ti, heads, headDim,
                rot](int64_t first, int64_t count, std::vector<float> &out) {
        if (!heads) {
          Status s = keepAlive->readRowsF32(*ti, first, count, out, true);
          keepAlive->releaseRows(*ti, first, count);
          return s;
        }
        // Row o of the un-permuted tensor is row src(o) of the file.
        const int64_t half = rot / 2;
        const int64_t len = ti->shape()[1];
        out.resize(static_cast<size_t>(count * len));
        std::vector<float> row;
        for (int64_t o = first; o < first + count; ++o) {
          const int64_t r = o % headDim;
          const int64_t src = r < rot ? o - r + 2 * (r % half) + r / half : o;
          QC_RETURN_IF_ERROR(keepAlive->readRowsF32(*ti, src, 1, row, true));
          std::copy(row.begin(), row.end(), out.begin() + (o - first) * len);
        }
        // The rows read are those of the heads [first, first + count)
        // touches.
        const int64_t h0 = first / headDim * headDim;
        const int64_t h1 = std::min(
            ti->shape()[0], (first + count + headDim - 1) / headDim * headDim);
        keepAlive->releaseRows(*ti, h0, h1 - h0);
        return Status::ok();
      };
    } else {
      QC_RETURN_IF_ERROR(f.readTensorF32(info, t.data, true));
      if (heads) {
        const int64_t len = t.shape[1];
        std::vector<float> un(t.data);
        for (int64_t h = 0; h < heads; ++h)
          permuteInterleavedToHalfSplit(t.data.data() + h * c.headDim * len,
                                        un.data() + h * c.headDim * len, 1, rot,
                                        len);
        t.data = std::move(un);
      }
    }
    if (!w.tensors.emplace(hf, std::move(t)).second)
      return f.error("two tensors map to '" + hf + "'");
  }
  return validateModelWeights(w, f.displayName());
}

} // namespace

Status loadGgufModel(const GgufFile &f, ModelWeights &out) {
  ModelWeights w;
  QC_RETURN_IF_ERROR(parseGgufConfig(f, w.config));
  QC_RETURN_IF_ERROR(loadGgufTensors(f, w, nullptr));
  out = std::move(w);
  return Status::ok();
}

Status loadGgufModel(const std::string &path, ModelWeights &out,
                     const LoadOptions &options) {
  std::unique_ptr<GgufFile> opened;
  QC_RETURN_IF_ERROR(GgufFile::open(path, opened));
  if (!options.lazy)
    return loadGgufModel(*opened, out);
  // Shared with the loaders, which keep the file mapped.
  std::shared_ptr<const GgufFile> file(std::move(opened));
  ModelWeights w;
  QC_RETURN_IF_ERROR(parseGgufConfig(*file, w.config));
  QC_RETURN_IF_ERROR(loadGgufTensors(*file, w, file));
  out = std::move(w);
  return Status::ok();
}

bool isGgufFile(const std::string &path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  struct stat st;
  char magic[4];
  bool ok = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
            ::read(fd, magic, 4) == 4 && std::memcmp(magic, "GGUF", 4) == 0;
  ::close(fd);
  return ok;
}

} // namespace qc
