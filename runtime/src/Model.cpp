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
  // A corrupted or hostile config must not reach modelTensorSpecs, which
  // lists nLayers * 9 tensors: no real decoder has anywhere near this many.
  constexpr int64_t kMaxLayers = 4096;
  if (c.nLayers > kMaxLayers)
    return fail("nLayers " + std::to_string(c.nLayers) + " is more than " +
                std::to_string(kMaxLayers) + " (a corrupted configuration?)");
  if (c.nHeads % c.nKVHeads != 0)
    return fail("nHeads (" + std::to_string(c.nHeads) +
                ") must be a multiple of nKVHeads (" +
                std::to_string(c.nKVHeads) + ") for grouped-query attention");
  if (c.headDim % 2 != 0)
    return fail("headDim (" + std::to_string(c.headDim) +
                ") must be even: rotary embeddings rotate feature pairs");
  if (c.rotaryDim < 0 || c.rotaryDim > c.headDim || c.rotaryDim % 2 != 0)
    return fail("rotaryDim (" + std::to_string(c.rotaryDim) +
                ") must be even and within headDim (" +
                std::to_string(c.headDim) + ")");
  if (c.rotaryDim != 0 && c.rotaryDim != c.headDim &&
      c.ropeLayout == RopeLayout::Interleaved)
    return fail("a partial rotary dimension needs the rotate_half layout");
  if (!(std::isfinite(c.normEps) && c.normEps > 0))
    return fail("normEps must be positive and finite");
  if (!(std::isfinite(c.ropeTheta) && c.ropeTheta > 0))
    return fail("ropeTheta must be positive and finite");
  {
    RopeParameters rope;
    if (Status s = computeRopeParameters(c, rope); !s)
      return fail(s.message());
  }
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
    // A lazily opened tensor is checked (size, finiteness) when it is read.
    if (!t.resident())
      continue;
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

Status ModelWeights::materialize(const std::string &name) {
  auto it = tensors.find(name);
  if (it == tensors.end() || it->second.resident())
    return Status::ok();
  HostTensor &t = it->second;
  std::vector<float> values;
  QC_RETURN_IF_ERROR(t.load(0, t.rows(), values));
  if (static_cast<int64_t>(values.size()) != t.numElements())
    return Status::error("tensor " + json::quote(name) + ": read " +
                         std::to_string(values.size()) + " values, its shape " +
                         formatShape(t.shape) + " needs " +
                         std::to_string(t.numElements()));
  t.data = std::move(values);
  return Status::ok();
}

Status ModelWeights::materializeAll() {
  for (auto &[name, t] : tensors)
    QC_RETURN_IF_ERROR(materialize(name));
  return Status::ok();
}

void ModelWeights::release(const std::string &name) {
  auto it = tensors.find(name);
  if (it != tensors.end() && it->second.load)
    std::vector<float>().swap(it->second.data);
}

bool ModelWeights::hasLazyTensors() const {
  for (const auto &[name, t] : tensors)
    if (!t.resident())
      return true;
  return false;
}

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

//===----------------------------------------------------------------------===//
// Rotary frequencies
//===----------------------------------------------------------------------===//

namespace qc {

const char *ropeScalingName(RopeScalingType t) {
  switch (t) {
  case RopeScalingType::None:
    return "default";
  case RopeScalingType::Linear:
    return "linear";
  case RopeScalingType::Llama3:
    return "llama3";
  case RopeScalingType::Yarn:
    return "yarn";
  }
  return "?";
}

Status computeRopeParameters(const ModelConfig &c, RopeParameters &out) {
  const int64_t dim = effectiveRotaryDim(c);
  const RopeScaling &s = c.ropeScaling;
  auto fail = [&](const std::string &what) {
    return Status::error(std::string("rope scaling '") +
                         ropeScalingName(s.type) + "': " + what);
  };
  if (dim <= 0 || dim % 2 != 0 || dim > c.headDim)
    return Status::error("rotary dimension " + std::to_string(dim) +
                         " must be even and within head_dim (" +
                         std::to_string(c.headDim) + ")");
  RopeParameters p;
  p.rotaryDim = dim;
  p.isDefault = s.type == RopeScalingType::None && dim == c.headDim;
  // transformers: base ** (arange(0, dim, 2).float() / dim) in fp32, then
  // 1.0 / that. The exponent is an fp32 quotient; pow is evaluated in fp32
  // (the llm.rope lowering does the same for the default case).
  const float base = c.ropeTheta;
  std::vector<float> posFreq(static_cast<size_t>(dim / 2));
  for (int64_t i = 0; i < dim / 2; ++i)
    posFreq[i] =
        std::pow(base, static_cast<float>(2 * i) / static_cast<float>(dim));
  p.invFreq.resize(posFreq.size());
  for (size_t i = 0; i < posFreq.size(); ++i)
    p.invFreq[i] = 1.0f / posFreq[i];

  switch (s.type) {
  case RopeScalingType::None:
    break;
  case RopeScalingType::Linear: {
    if (!(s.factor >= 1.0) || !std::isfinite(s.factor))
      return fail("factor must be a finite number >= 1, got " +
                  std::to_string(s.factor));
    const float f = static_cast<float>(s.factor);
    for (float &v : p.invFreq)
      v /= f;
    break;
  }
  case RopeScalingType::Llama3: {
    if (!(s.factor >= 1.0) || !std::isfinite(s.factor))
      return fail("factor must be a finite number >= 1");
    if (!(s.lowFreqFactor > 0.0) || !(s.highFreqFactor > s.lowFreqFactor))
      return fail("needs 0 < low_freq_factor < high_freq_factor");
    if (s.originalMaxPositions <= 0)
      return fail("needs original_max_position_embeddings > 0");
    // Llama 3.1: wavelengths longer than the original context / low factor
    // are interpolated (divided by factor), shorter than context / high
    // factor kept, and the band between blended linearly in 1/wavelen.
    const float factor = static_cast<float>(s.factor);
    // Evaluated in fp32 like torch's tensor-with-scalar arithmetic.
    const float oldCtx = static_cast<float>(s.originalMaxPositions);
    const float lowF = static_cast<float>(s.lowFreqFactor);
    const float highF = static_cast<float>(s.highFreqFactor);
    const float lowWavelen = static_cast<float>(
        static_cast<double>(s.originalMaxPositions) / s.lowFreqFactor);
    const float highWavelen = static_cast<float>(
        static_cast<double>(s.originalMaxPositions) / s.highFreqFactor);
    for (float &v : p.invFreq) {
      const float wavelen = static_cast<float>(2.0 * M_PI) / v;
      float scaled = wavelen > lowWavelen ? v / factor : v;
      const bool medium = !(wavelen < highWavelen) && !(wavelen > lowWavelen);
      if (medium) {
        const float smooth = (oldCtx / wavelen - lowF) / (highF - lowF);
        scaled = (1.0f - smooth) * scaled / factor + smooth * scaled;
      }
      v = scaled;
    }
    break;
  }
  case RopeScalingType::Yarn: {
    if (!(s.factor >= 1.0) || !std::isfinite(s.factor))
      return fail("factor must be a finite number >= 1");
    const int64_t original =
        s.originalMaxPositions > 0 ? s.originalMaxPositions : c.maxSeqLen;
    if (original <= 0)
      return fail("needs original_max_position_embeddings > 0");
    if (!(s.betaFast > 0.0) || !(s.betaSlow > 0.0))
      return fail("beta_fast and beta_slow must be positive");
    auto mscaleOf = [](double scale, double m) {
      return scale <= 1.0 ? 1.0 : 0.1 * m * std::log(scale) + 1.0;
    };
    double attention = s.attentionFactor;
    if (!(attention > 0.0)) {
      if (s.mscale != 0.0 && s.mscaleAllDim != 0.0)
        attention =
            mscaleOf(s.factor, s.mscale) / mscaleOf(s.factor, s.mscaleAllDim);
      else
        attention = mscaleOf(s.factor, 1.0);
    }
    // The ramp runs over the pair index between the dimensions at which the
    // original context completes beta_fast and beta_slow rotations.
    auto correctionDim = [&](double rotations) {
      return (static_cast<double>(dim) *
              std::log(static_cast<double>(original) /
                       (rotations * 2.0 * M_PI))) /
             (2.0 * std::log(static_cast<double>(base)));
    };
    double low = correctionDim(s.betaFast), high = correctionDim(s.betaSlow);
    if (s.truncate) {
      low = std::floor(low);
      high = std::ceil(high);
    }
    low = std::max(low, 0.0);
    high = std::min(high, static_cast<double>(dim - 1));
    if (low == high)
      high += 0.001; // transformers: avoids a division by zero
    const float factor = static_cast<float>(s.factor);
    for (int64_t i = 0; i < dim / 2; ++i) {
      float ramp = (static_cast<float>(i) - static_cast<float>(low)) /
                   static_cast<float>(high - low);
      ramp = std::min(1.0f, std::max(0.0f, ramp));
      const float extrapolationFactor = 1.0f - ramp;
      const float extrapolation = 1.0f / posFreq[i];
      const float interpolation = 1.0f / (factor * posFreq[i]);
      p.invFreq[i] = interpolation * (1.0f - extrapolationFactor) +
                     extrapolation * extrapolationFactor;
    }
    p.attentionScaling = static_cast<float>(attention);
    break;
  }
  }
  for (float v : p.invFreq)
    if (!std::isfinite(v) || !(v > 0.0f))
      return fail("produced a non-finite or non-positive frequency");
  out = std::move(p);
  return Status::ok();
}

} // namespace qc
