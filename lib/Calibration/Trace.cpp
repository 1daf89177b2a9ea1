//===- Trace.cpp - Calibration traces -------------------------------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//

#include "qc/Calibration/Trace.h"

#include "qc/runtime/Safetensors.h"
#include "qc/runtime/ThreadPool.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>

using namespace qc;

const TraceEntry *CalibrationTrace::find(const std::string &layer) const {
  auto key = layerToKey.find(layer);
  if (key == layerToKey.end())
    return nullptr;
  auto it = entries.find(key->second);
  return it == entries.end() ? nullptr : &it->second;
}

namespace {

/// Rows [a0, a1) of the upper triangle. Built for AVX-512, AVX2 and the
/// baseline (the loader picks one per machine); contraction into fused
/// multiply-adds is off, so every clone does the same multiply and add per
/// element and the trace does not depend on the machine's vector width.
#if defined(__clang__)
#define QC_GRAM_ATTRS target_clones("avx512f", "avx2", "default")
#else
#define QC_GRAM_ATTRS                                                          \
  target_clones("avx512f", "avx2", "default"), optimize("fp-contract=off")
#endif
__attribute__((QC_GRAM_ATTRS)) void gramTile(float *h, int64_t k,
                                             const float *x, int64_t rows,
                                             int64_t a0, int64_t a1) {
#if defined(__clang__)
#pragma clang fp contract(off)
#endif
  for (int64_t r = 0; r < rows; ++r) {
    const float *xr = x + r * k;
    for (int64_t a = a0; a < a1; ++a) {
      const float xa = xr[a];
      if (xa == 0.0f)
        continue;
      float *hrow = h + a * k;
      for (int64_t c = a; c < k; ++c)
        hrow[c] += xa * xr[c];
    }
  }
}

} // namespace

void qc::accumulateGramUpper(float *h, int64_t k, const float *x,
                             int64_t rows) {
  if (k <= 0 || rows <= 0)
    return;
  // About 128 KB of h per tile: it stays in L2 while every row of x (a few
  // KB) is read once per tile.
  constexpr int64_t kTileBytes = 128 * 1024;
  const int64_t tileRows = std::max<int64_t>(
      1, kTileBytes / (k * static_cast<int64_t>(sizeof(float))));
  const int64_t tiles = (k + tileRows - 1) / tileRows;
  parallelFor(tiles, workerCount(tiles), [&](int64_t t, int64_t) {
    gramTile(h, k, x, rows, t * tileRows, std::min(k, (t + 1) * tileRows));
  });
}

uint64_t qc::fnv1a(const void *bytes, size_t size, uint64_t hash) {
  const auto *p = static_cast<const uint8_t *>(bytes);
  for (size_t i = 0; i < size; ++i) {
    hash ^= p[i];
    hash *= 1099511628211ull;
  }
  return hash;
}

static std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string qc::fingerprintWeights(const ModelWeights &weights) {
  uint64_t h = fnv1a("qc-weights-v1", 13);
  const ModelConfig &c = weights.config;
  int64_t dims[] = {c.dim,      c.hiddenDim, c.nLayers,  c.nHeads,
                    c.nKVHeads, c.headDim,   c.vocabSize};
  h = fnv1a(dims, sizeof dims, h);
  // std::map iterates in name order, so the hash is independent of load
  // order.
  for (const auto &[name, t] : weights.tensors) {
    h = fnv1a(name.data(), name.size(), h);
    h = fnv1a(t.shape.data(), t.shape.size() * sizeof(int64_t), h);
    if (t.resident()) {
      h = fnv1a(t.data.data(), t.data.size() * sizeof(float), h);
      continue;
    }
    // A lazily opened tensor is read for the hash and dropped again (the
    // same values, hence the same fingerprint, as an eager load). A tensor
    // that cannot be read hashes as empty; its reader reports it by name
    // when the pass needs it.
    // Hashed in slices of about 16M values: FNV-1a continues across them,
    // so this is the hash of the whole tensor, without holding it.
    int64_t rows = t.rows();
    int64_t perRow =
        rows == 0 ? 1 : std::max<int64_t>(1, t.numElements() / rows);
    int64_t step = std::max<int64_t>(1, (int64_t(1) << 24) / perRow);
    std::vector<float> values;
    for (int64_t r = 0; r < rows; r += step) {
      if (!t.load(r, std::min(step, rows - r), values))
        break;
      h = fnv1a(values.data(), values.size() * sizeof(float), h);
    }
  }
  for (const auto &[name, t] : weights.packed) {
    h = fnv1a(name.data(), name.size(), h);
    h = fnv1a(t.shape.data(), t.shape.size() * sizeof(int64_t), h);
    h = fnv1a(t.bytes.data(), t.bytes.size(), h);
  }
  return hex64(h);
}

std::string qc::fingerprintCalibration(const std::string &modelFingerprint,
                                       const std::vector<int> &tokens,
                                       int64_t windowLen, int64_t maxTokens,
                                       int64_t sampleSequences) {
  uint64_t h = fnv1a(modelFingerprint.data(), modelFingerprint.size());
  h = fnv1a(tokens.data(), tokens.size() * sizeof(int), h);
  int64_t settings[] = {windowLen, maxTokens, sampleSequences};
  return hex64(fnv1a(settings, sizeof settings, h));
}

Status qc::writeTrace(const CalibrationTrace &trace, const std::string &path) {
  SafetensorsWriter writer;
  std::map<std::string, std::string> meta = trace.settings;
  meta["format"] = "qc-calibration-trace-v1";
  meta["model_fingerprint"] = trace.modelFingerprint;
  meta["fingerprint"] = trace.fingerprint;
  for (const auto &[layer, key] : trace.layerToKey)
    meta["layer:" + layer] = key;
  for (const auto &[key, e] : trace.entries) {
    meta["tokens:" + key] = std::to_string(e.tokens);
    QC_RETURN_IF_ERROR(
        writer.addF32(key + ".hessian", {e.width, e.width}, e.hessian.data()));
    QC_RETURN_IF_ERROR(
        writer.addF32(key + ".abs_mean", {e.width}, e.absMean.data()));
  }
  if (trace.sampleSequences > 0) {
    int64_t S = trace.sampleSequences, T = trace.sampleLength,
            D = trace.hiddenSize;
    if (static_cast<int64_t>(trace.sampleTokens.size()) != S * T ||
        static_cast<int64_t>(trace.blockInput.size()) != S * T * D)
      return Status::error(path + ": the trace's sample has inconsistent "
                                  "sizes (internal error)");
    QC_RETURN_IF_ERROR(writer.addView("sample.tokens", DType::I32, {S, T},
                                      trace.sampleTokens.data(),
                                      trace.sampleTokens.size() * 4));
    QC_RETURN_IF_ERROR(writer.addF32("sample.block_input", {S, T, D},
                                     trace.blockInput.data()));
  }
  QC_RETURN_IF_ERROR(writer.setMetadata(std::move(meta)));
  return writer.writeFile(path);
}

Status qc::readTrace(const std::string &path, CalibrationTrace &trace,
                     bool withStatistics) {
  std::unique_ptr<SafetensorsFile> file;
  QC_RETURN_IF_ERROR(SafetensorsFile::open(path, file));
  const auto &meta = file->metadata();
  auto get = [&](const std::string &k) -> const std::string * {
    auto it = meta.find(k);
    return it == meta.end() ? nullptr : &it->second;
  };
  const std::string *format = get("format");
  if (!format || *format != "qc-calibration-trace-v1")
    return Status::error(path + ": not a qc calibration trace (metadata "
                                "'format' is missing or unknown)");
  trace = CalibrationTrace();
  for (const auto &[k, v] : meta) {
    if (k.rfind("layer:", 0) == 0)
      trace.layerToKey[k.substr(6)] = v;
    else if (k == "model_fingerprint")
      trace.modelFingerprint = v;
    else if (k == "fingerprint")
      trace.fingerprint = v;
    else if (k.rfind("tokens:", 0) != 0 && k != "format")
      trace.settings[k] = v;
  }
  for (const auto &[layer, key] : trace.layerToKey) {
    if (trace.entries.count(key))
      continue;
    TraceEntry e;
    const TensorInfo *h = file->find(key + ".hessian");
    const TensorInfo *a = file->find(key + ".abs_mean");
    const std::string *tokens = get("tokens:" + key);
    if (!h || !a || !tokens)
      return Status::error(path + ": layer '" + layer + "' refers to '" + key +
                           "', whose statistics are missing");
    if (h->shape.size() != 2 || h->shape[0] != h->shape[1] ||
        a->shape.size() != 1 || a->shape[0] != h->shape[0])
      return Status::error(path + ": '" + key +
                           "' has inconsistent hessian/abs_mean shapes");
    e.width = h->shape[0];
    char *end = nullptr;
    e.tokens = std::strtoll(tokens->c_str(), &end, 10);
    if (!end || *end || e.tokens < 0)
      return Status::error(path + ": bad token count for '" + key + "'");
    if (withStatistics) {
      QC_RETURN_IF_ERROR(file->readAsF32(*h, e.hessian, true));
      QC_RETURN_IF_ERROR(file->readAsF32(*a, e.absMean, true));
    }
    trace.entries[key] = std::move(e);
  }
  const TensorInfo *tok = file->find("sample.tokens");
  const TensorInfo *inp = file->find("sample.block_input");
  if (!tok != !inp)
    return Status::error(path + ": 'sample.tokens' and 'sample.block_input' "
                                "must both be present or both absent");
  if (tok) {
    if (tok->dtype != DType::I32 || tok->shape.size() != 2 ||
        inp->shape.size() != 3 || inp->shape[0] != tok->shape[0] ||
        inp->shape[1] != tok->shape[1] || tok->shape[0] < 1 ||
        tok->shape[1] < 1 || inp->shape[2] < 1)
      return Status::error(path + ": the sampled sequences have inconsistent "
                                  "shapes (expected sample.tokens i32 [S, T] "
                                  "and sample.block_input [S, T, D])");
    trace.sampleSequences = tok->shape[0];
    trace.sampleLength = tok->shape[1];
    trace.hiddenSize = inp->shape[2];
    trace.sampleTokens.resize(tok->numElements());
    std::memcpy(trace.sampleTokens.data(), file->tensorData(*tok),
                trace.sampleTokens.size() * 4);
    QC_RETURN_IF_ERROR(file->readAsF32(*inp, trace.blockInput, true));
  }
  return Status::ok();
}
