//===- Model.cpp - Model configuration and weight validation ----*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// The tensor set a LLaMA-family ModelConfig implies, under Hugging Face
// names, and the checks every importer runs before a model is used:
// configuration sanity, exact tensor set, shapes, value counts and
// finiteness (../shared/docs/RELIABILITY.md section 2.2 rows 9 and 10). The
// errors say what was expected and why, so a config/weights mismatch can be
// fixed without reading this code.
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/Model.h"

#include "qc/runtime/Json.h"

#include <cmath>
#include <memory>
#include <set>

namespace qc {

std::string layerTensorName(int64_t layer, const std::string &suffix) {
  return "model.layers." + std::to_string(layer) + "." + suffix;
}

namespace {

std::string formatShape(const std::vector<int64_t> &shape) {
  std::string r = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i)
      r += ", ";
    r += std::to_string(shape[i]);
  }
  return r + "]";
}

} // namespace

std::vector<TensorSpec> modelTensorSpecs(const ModelConfig &c) {
  int64_t qRows = c.nHeads * c.headDim;
  int64_t kvRows = c.nKVHeads * c.headDim;
  std::vector<TensorSpec> r;
  r.push_back(
      {"model.embed_tokens.weight", {c.vocabSize, c.dim}, "[vocabSize, dim]"});
  for (int64_t l = 0; l < c.nLayers; ++l) {
    auto add = [&](const char *suffix, std::vector<int64_t> shape,
                   const char *formula) {
      r.push_back({layerTensorName(l, suffix), std::move(shape), formula});
    };
    add("input_layernorm.weight", {c.dim}, "[dim]");
    add("self_attn.q_proj.weight", {qRows, c.dim}, "[nHeads*headDim, dim]");
    add("self_attn.k_proj.weight", {kvRows, c.dim}, "[nKVHeads*headDim, dim]");
    add("self_attn.v_proj.weight", {kvRows, c.dim}, "[nKVHeads*headDim, dim]");
    if (c.attentionBias) {
      add("self_attn.q_proj.bias", {qRows}, "[nHeads*headDim]");
      add("self_attn.k_proj.bias", {kvRows}, "[nKVHeads*headDim]");
      add("self_attn.v_proj.bias", {kvRows}, "[nKVHeads*headDim]");
    }
    add("self_attn.o_proj.weight", {c.dim, qRows}, "[dim, nHeads*headDim]");
    add("post_attention_layernorm.weight", {c.dim}, "[dim]");
    add("mlp.gate_proj.weight", {c.hiddenDim, c.dim}, "[hiddenDim, dim]");
    add("mlp.up_proj.weight", {c.hiddenDim, c.dim}, "[hiddenDim, dim]");
    add("mlp.down_proj.weight", {c.dim, c.hiddenDim}, "[dim, hiddenDim]");
  }
  r.push_back({"model.norm.weight", {c.dim}, "[dim]"});
  if (!c.tiedEmbeddings)
    r.push_back({"lm_head.weight", {c.vocabSize, c.dim}, "[vocabSize, dim]"});
  return r;
}

namespace {

/// One-line summary of the sizes the shapes derive from.
std::string configSummary(const ModelConfig &c) {
  return "dim=" + std::to_string(c.dim) +
         ", hiddenDim=" + std::to_string(c.hiddenDim) +
         ", nHeads=" + std::to_string(c.nHeads) +
         ", nKVHeads=" + std::to_string(c.nKVHeads) +
         ", headDim=" + std::to_string(c.headDim) +
         ", vocabSize=" + std::to_string(c.vocabSize);
}

} // namespace

Status validateModelConfig(const ModelConfig &c,
                           const std::string &sourceName) {
  auto fail = [&](const std::string &what) {
    return Status::error(sourceName + ": invalid model config: " + what);
  };
  struct {
    const char *name;
    int64_t value;
  } sizes[] = {{"dim", c.dim},
               {"hiddenDim", c.hiddenDim},
               {"nLayers", c.nLayers},
               {"nHeads", c.nHeads},
               {"nKVHeads", c.nKVHeads},
               {"headDim", c.headDim},
               {"vocabSize", c.vocabSize},
               {"maxSeqLen", c.maxSeqLen}};
  for (const auto &s : sizes)
    if (s.value <= 0)
      return fail(std::string(s.name) + " must be positive, got " +
                  std::to_string(s.value));
  if (c.nHeads % c.nKVHeads != 0)
    return fail("nHeads (" + std::to_string(c.nHeads) +
                ") must be a multiple of nKVHeads (" +
                std::to_string(c.nKVHeads) + ") for grouped-query attention");
  if (c.headDim % 2 != 0)
    return fail("headDim (" + std::to_string(c.headDim) +
                ") must be even: rotary embeddings rotate feature pairs");
  if (!(std::isfinite(c.normEps) && c.normEps > 0))
    return fail("normEps must be positive and finite");
  if (!(std::isfinite(c.ropeTheta) && c.ropeTheta > 0))
    return fail("ropeTheta must be positive and finite");
  if (c.bosId < 0 || c.bosId >= c.vocabSize)
    return fail("bosId " + std::to_string(c.bosId) +
                " is outside the vocabulary [0, " +
                std::to_string(c.vocabSize) + ")");
  if (c.eosId < 0 || c.eosId >= c.vocabSize)
    return fail("eosId " + std::to_string(c.eosId) +
                " is outside the vocabulary [0, " +
                std::to_string(c.vocabSize) + ")");
  // Every tensor's element count must fit in int64 (HostTensor counts in
  // int64, and a wrapped count would validate a tiny buffer as a huge one).
  int64_t qRows, kvRows, tmp;
  if (__builtin_mul_overflow(c.nHeads, c.headDim, &qRows) ||
      __builtin_mul_overflow(c.nKVHeads, c.headDim, &kvRows) ||
      __builtin_mul_overflow(qRows, c.dim, &tmp) ||
      __builtin_mul_overflow(kvRows, c.dim, &tmp) ||
      __builtin_mul_overflow(c.vocabSize, c.dim, &tmp) ||
      __builtin_mul_overflow(c.hiddenDim, c.dim, &tmp))
    return fail("tensor sizes overflow 64 bits (" + configSummary(c) + ")");
  return Status::ok();
}

Status validateModelWeights(const ModelWeights &weights,
                            const std::string &sourceName) {
  const ModelConfig &c = weights.config;
  QC_RETURN_IF_ERROR(validateModelConfig(c, sourceName));
  std::vector<TensorSpec> expected = modelTensorSpecs(c);

  std::vector<const TensorSpec *> missing;
  std::set<std::string> expectedNames;
  for (const TensorSpec &e : expected) {
    expectedNames.insert(e.name);
    if (!weights.find(e.name))
      missing.push_back(&e);
  }
  if (!missing.empty()) {
    std::string msg = sourceName + ": missing tensor " +
                      json::quote(missing[0]->name) + " (shape " +
                      formatShape(missing[0]->shape) + " = " +
                      missing[0]->formula + ")";
    if (missing.size() > 1)
      msg += " and " + std::to_string(missing.size() - 1) + " more";
    if (missing[0]->name == "lm_head.weight")
      msg += "; the config does not tie the embeddings, so lm_head.weight "
             "is required";
    return Status::error(msg);
  }
  for (const auto &kv : weights.tensors) {
    if (expectedNames.count(kv.first))
      continue;
    std::string msg = sourceName + ": unexpected tensor " +
                      json::quote(kv.first) +
                      " (not part of the LLaMA layout the config implies)";
    if (kv.first == "lm_head.weight")
      msg += "; the config ties the embeddings, so lm_head.weight must be "
             "absent";
    else if (kv.first.find("bias") != std::string::npos && !c.attentionBias)
      msg += "; the config has no attention bias";
    return Status::error(msg);
  }

  for (const TensorSpec &e : expected) {
    const HostTensor &t = *weights.find(e.name);
    if (t.shape != e.shape)
      return Status::error(
          sourceName + ": tensor " + json::quote(e.name) + " has shape " +
          formatShape(t.shape) + ", expected " + formatShape(e.shape) + " = " +
          e.formula + " from the config (" + configSummary(c) + ")");
    // Shape equals a validated expectation, so the product cannot overflow.
    uint64_t want = static_cast<uint64_t>(t.numElements());
    if (static_cast<uint64_t>(t.data.size()) != want)
      return Status::error(sourceName + ": tensor " + json::quote(e.name) +
                           " holds " + std::to_string(t.data.size()) +
                           " values but its shape " + formatShape(t.shape) +
                           " needs " + std::to_string(want));
    for (size_t i = 0; i < t.data.size(); ++i) {
      float v = t.data[i];
      if (!std::isfinite(v))
        return Status::error(sourceName + ": tensor " + json::quote(e.name) +
                             " has a non-finite value (" +
                             (std::isnan(v) ? "NaN"
                              : v > 0       ? "+Inf"
                                            : "-Inf") +
                             ") at flat index " + std::to_string(i));
    }
  }
  return Status::ok();
}

} // namespace qc

namespace qc {

Status loadSafetensorsOverlay(const std::string &path, ModelWeights &weights) {
  std::unique_ptr<SafetensorsFile> file;
  QC_RETURN_IF_ERROR(SafetensorsFile::open(path, file));
  for (const TensorInfo &info : file->tensors()) {
    if (info.dtype == DType::F32) {
      HostTensor t;
      t.shape = info.shape;
      QC_RETURN_IF_ERROR(file->readAsF32(info, t.data, /*checkFinite=*/true));
      weights.tensors[info.name] = std::move(t);
      weights.overlaid.insert(info.name);
      continue;
    }
    PackedTensor raw;
    raw.dtype = info.dtype;
    raw.shape = info.shape;
    const uint8_t *data = file->tensorData(info);
    raw.bytes.assign(data, data + info.byteSize());
    weights.packed[info.name] = std::move(raw);
  }
  return Status::ok();
}

} // namespace qc
