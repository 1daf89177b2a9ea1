//===- CompressedTensorsImport.cpp - compressed-tensors import ------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// quant_method "compressed-tensors", format "pack-quantized" (the format
// llm-compressor writes and vLLM loads; ../shared/docs/ALGORITHMS.md §8.4):
// integer weight-only config groups with the group or channel strategy,
// symmetric or not, with or without activation-order g_idx. Per layer:
// weight_packed [N, ceil(K * b / 32)] int32 (row n's codes LSB first along
// K, stored as the signed code plus 2^(b-1), i.e. the unsigned code),
// weight_scale [N, K / G] (channel: [N, 1]) in the model's float dtype,
// weight_zero_point [ceil(N * b / 32), K / G] int32 packed along N (asym),
// weight_shape [2] = (N, K), and weight_g_idx [K] for actorder "group".
// Everything that changes the model's function and that qc does not run
// (activation quantization, a KV-cache scheme, sparsity, float or block
// weight types) is refused by name, never ignored.
//
//===----------------------------------------------------------------------===//

#include "Checkpoint.h"

#include "qc/runtime/Json.h"

#include <cctype>

using namespace mlir;
using namespace mlir::qc;
using namespace mlir::qc::checkpoint;
using ::qc::DType;
using ::qc::Status;
using ::qc::quant::QuantizedWeight;
namespace quant = ::qc::quant;
namespace json = ::qc::json;

namespace {

/// The regular expression (re.match) of one `targets` or `ignore` entry:
/// "re:<pattern>" as written, a module name exactly. Class names ("Linear"
/// is handled by the caller) are not supported.
Status targetPattern(const ConfigFields &c, const std::string &field,
                     const std::string &target, std::string &pattern) {
  if (target.rfind("re:", 0) == 0) {
    pattern = target.substr(3);
    bool ignored = false;
    if (Status st = pythonReMatch(pattern, "", ignored); !st)
      return c.fail(field,
                    "entry " + json::quote(target) + ": " + st.message());
    return Status::ok();
  }
  // Module names are lower case ("lm_head", "model.layers.0.mlp.up_proj");
  // a capitalised entry names a module class ("LlamaDecoderLayer").
  if (target.empty() || std::isupper(static_cast<unsigned char>(target[0])))
    return c.fail(field, "entry " + json::quote(target) +
                             " is a module class name; only \"Linear\", "
                             "\"re:\" patterns and module names are supported");
  pattern = exactPattern(target);
  return Status::ok();
}

/// One config group's `weights` (QuantizationArgs) as a scheme.
Status parseWeights(const ConfigFields &c, const std::string &field,
                    const json::Value &w, int &bits, int64_t &groupSize,
                    bool &sym, bool &descAct) {
  if (!w.isObject())
    return c.fail(field, "must be an object (QuantizationArgs)");
  auto str = [&](const char *k, std::string &out) -> Status {
    const json::Value *v = w.find(k);
    if (!v || v->isNull()) {
      out.clear();
      return Status::ok();
    }
    if (!v->isString())
      return c.fail(field + "." + k, "must be a string");
    out = v->asString();
    return Status::ok();
  };
  std::string type, strategy, actorder;
  QC_RETURN_IF_ERROR(str("type", type));
  QC_RETURN_IF_ERROR(str("strategy", strategy));
  QC_RETURN_IF_ERROR(str("actorder", actorder));
  if (type != "int")
    return c.fail(field + ".type", "is " + json::quote(type) +
                                       ": only integer weights are "
                                       "supported (pack-quantized int)");
  const json::Value *nb = w.find("num_bits");
  // pack_to_int32 puts 32 / b whole codes in a word; for b = 2, 4, 8 that
  // is qc's LSB-first stream, for 3 bits it is not (two bits unused per
  // word), so 3-bit pack-quantized is refused rather than misread.
  if (!nb || !nb->isInt64() ||
      (nb->asInt64() != 2 && nb->asInt64() != 4 && nb->asInt64() != 8))
    return c.fail(field + ".num_bits",
                  "is " + (nb ? json::write(*nb) : std::string("missing")) +
                      " (2, 4 or 8 are supported)");
  bits = static_cast<int>(nb->asInt64());
  const json::Value *symmetric = w.find("symmetric");
  if (!symmetric || !symmetric->isBool())
    return c.fail(field + ".symmetric", "must be true or false");
  sym = symmetric->asBool();
  if (const json::Value *d = w.find("dynamic");
      d && !(d->isBool() && !d->asBool()))
    return c.fail(field + ".dynamic",
                  "is " + json::write(*d) +
                      ": dynamic (runtime) quantization of weights is not "
                      "supported");
  if (strategy == "group") {
    const json::Value *g = w.find("group_size");
    if (!g || !g->isInt64() || g->asInt64() <= 0)
      return c.fail(field + ".group_size",
                    "must be a positive integer for the group strategy");
    groupSize = g->asInt64();
  } else if (strategy == "channel") {
    groupSize = -1;
  } else {
    return c.fail(field + ".strategy",
                  "is " + json::quote(strategy) +
                      ": only the group and channel strategies are supported");
  }
  // actorder "group" stores weight_g_idx; "weight" (and "static") reorder
  // during quantization but keep contiguous groups, so none is needed.
  if (!actorder.empty() && actorder != "group" && actorder != "weight" &&
      actorder != "static")
    return c.fail(field + ".actorder",
                  "is " + json::quote(actorder) +
                      " (expected null, \"group\", \"weight\" or \"static\")");
  descAct = actorder == "group";
  return Status::ok();
}

class CompressedTensorsFormat final : public ImportFormat {
public:
  const char *name() const override { return "compressed-tensors"; }
  const char *markerTensor() const override { return "weight_packed"; }
  bool topLevelGrid() const override { return false; }

  Status parseConfig(const ConfigFields &c, QuantScheme &out) const override {
    std::string key;
    const json::Value *format = c.get({"format"}, key);
    if (!format || !format->isString() ||
        format->asString() != "pack-quantized")
      return c.fail(
          "format",
          "is " + (format ? json::write(*format) : std::string("missing")) +
              ": only \"pack-quantized\" is supported (integer "
              "weights packed into int32)");
    if (const json::Value *st = c.get({"quantization_status"}, key);
        st && !(st->isString() && st->asString() == "compressed"))
      return c.fail(key, "is " + json::write(*st) +
                             ": only compressed checkpoints can be read");
    for (const char *k : {"kv_cache_scheme", "sparsity_config"})
      if (c.get({k}, key) != nullptr)
        return c.fail(key, "is set: qc does not run " +
                               std::string(std::string(k) == "kv_cache_scheme"
                                               ? "a quantized KV cache"
                                               : "sparse weights") +
                               ", and ignoring it would change the model");
    const json::Value *groups = c.get({"config_groups"}, key);
    if (!groups || !groups->isObject() || groups->asObject().empty())
      return c.fail("config_groups", "must be a non-empty object");

    out.dynamic.clear();
    // "ignore" first: it wins over every target.
    if (const json::Value *ig = c.get({"ignore"}, key)) {
      if (!ig->isArray())
        return c.fail(key, "must be an array of module names or patterns");
      for (const json::Value &e : ig->asArray()) {
        if (!e.isString())
          return c.fail(key, "must hold strings");
        DynamicRule r;
        r.key = e.asString();
        r.exclude = true;
        if (r.key == "Linear")
          return c.fail(key, "ignores every Linear: nothing is quantized");
        QC_RETURN_IF_ERROR(targetPattern(c, "ignore", r.key, r.pattern));
        out.dynamic.push_back(std::move(r));
      }
    }
    bool linearGroup = false;
    for (const auto &[gname, g] : groups->asObject()) {
      const std::string field = "config_groups." + gname;
      if (!g.isObject())
        return c.fail(field, "must be an object");
      for (const char *k : {"input_activations", "output_activations"})
        if (const json::Value *a = g.find(k); a && !a->isNull())
          return c.fail(field + "." + k,
                        "is set: activation quantization is not supported "
                        "(qc quantizes weights only)");
      const json::Value *w = g.find("weights");
      if (!w || w->isNull())
        return c.fail(field + ".weights", "is missing");
      int bits = 4;
      int64_t groupSize = -1;
      bool sym = true, descAct = false;
      QC_RETURN_IF_ERROR(parseWeights(c, field + ".weights", *w, bits,
                                      groupSize, sym, descAct));
      const json::Value *targets = g.find("targets");
      if (!targets || !targets->isArray() || targets->asArray().empty())
        return c.fail(field + ".targets", "must be a non-empty array");
      for (const json::Value &t : targets->asArray()) {
        if (!t.isString())
          return c.fail(field + ".targets", "must hold strings");
        if (t.asString() == "Linear") {
          if (linearGroup)
            return c.fail(field + ".targets",
                          "targets \"Linear\" a second time");
          linearGroup = true;
          out.bits = bits;
          out.groupSize = groupSize;
          out.sym = sym;
          out.descAct = descAct;
          continue;
        }
        DynamicRule r;
        r.key = t.asString();
        QC_RETURN_IF_ERROR(
            targetPattern(c, field + ".targets", r.key, r.pattern));
        r.bits = bits;
        r.groupSize = groupSize;
        r.sym = sym;
        r.descAct = descAct;
        out.dynamic.push_back(std::move(r));
      }
    }
    // Without a group for every Linear, an unmatched module is not
    // quantized.
    if (!linearGroup) {
      DynamicRule r;
      r.key = "(no config group)";
      r.pattern = ".*";
      r.exclude = true;
      out.dynamic.push_back(std::move(r));
    }
    return Status::ok();
  }

  Status readLayer(CheckpointReader &r, const QuantScheme &s,
                   const std::string &layer, int64_t N, int64_t K,
                   QuantizedWeight &q) const override {
    const int b = s.bits;
    const std::string file = r.fileOf(layer + ".weight_packed");
    auto fail = [&](const std::string &what) {
      return Status::error(file + ": layer '" + layer + "': " + what);
    };
    if (s.groupSize > 0 && K % s.groupSize != 0)
      return fail("in_features " + std::to_string(K) +
                  " is not a multiple of group_size " +
                  std::to_string(s.groupSize) +
                  " (compressed-tensors' group strategy needs whole groups)");
    const int64_t ng = s.groupSize > 0 ? K / s.groupSize : 1;

    // weight_shape: the layer's (N, K), as stored.
    FileTensor shapeT;
    QC_RETURN_IF_ERROR(r.get(layer + ".weight_shape", shapeT));
    if (shapeT.info->shape != std::vector<int64_t>{2} ||
        (shapeT.info->dtype != DType::I64 && shapeT.info->dtype != DType::I32))
      return Status::error(shapeT.where + " must be an int64 [2] (N, K)");
    int64_t stored[2];
    if (shapeT.info->dtype == DType::I64) {
      std::vector<int64_t> v =
          fromBytes<int64_t>(shapeT.file->tensorData(*shapeT.info), 2);
      stored[0] = v[0];
      stored[1] = v[1];
    } else {
      std::vector<int32_t> v =
          fromBytes<int32_t>(shapeT.file->tensorData(*shapeT.info), 2);
      stored[0] = v[0];
      stored[1] = v[1];
    }
    if (stored[0] != N || stored[1] != K)
      return Status::error(shapeT.where + " is [" + std::to_string(stored[0]) +
                           ", " + std::to_string(stored[1]) +
                           "], but config.json makes the layer [" +
                           std::to_string(N) + ", " + std::to_string(K) + "]");

    std::vector<int32_t> packed;
    const int64_t words = quant::packedWordCount(K, b);
    QC_RETURN_IF_ERROR(r.readI32(layer + ".weight_packed", {N, words}, packed,
                                 "out_features x ceil(in_features * bits / "
                                 "32) words, codes along in_features"));
    quant::QuantConfig cfg;
    cfg.bits = b;
    cfg.groupSize = s.groupSize;
    cfg.sym = s.sym;
    q.allocate(N, K, ng, cfg);
    for (int64_t n = 0; n < N; ++n)
      quant::unpackCodeStream(packed.data() + n * words, 1, K, b,
                              q.codes.data() + n * K, 1);

    // weight_scale in the model's float dtype; qc's scales are [G, N].
    FileTensor scaleT;
    QC_RETURN_IF_ERROR(r.get(layer + ".weight_scale", scaleT));
    if (scaleT.info->shape != std::vector<int64_t>{N, ng})
      return Status::error(scaleT.where + " has shape " +
                           shapeString(scaleT.info->shape) + ", expected [" +
                           std::to_string(N) + ", " + std::to_string(ng) +
                           "] (out_features x groups)");
    std::vector<float> scales;
    QC_RETURN_IF_ERROR(scaleT.file->readAsF32(*scaleT.info, scales, true)
                           .withContext(scaleT.where));
    q.scaleDType = scaleT.info->dtype == DType::F16    ? quant::ScaleDType::F16
                   : scaleT.info->dtype == DType::BF16 ? quant::ScaleDType::BF16
                                                       : quant::ScaleDType::F32;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t g = 0; g < ng; ++g)
        q.scales[g * N + n] = scales[n * ng + g];

    // Zero points: packed along N (asym), else 2^(b-1).
    if (!s.sym) {
      std::vector<int32_t> zp;
      const int64_t zrows = quant::packedWordCount(N, b);
      QC_RETURN_IF_ERROR(r.readI32(layer + ".weight_zero_point", {zrows, ng},
                                   zp,
                                   "ceil(out_features * bits / 32) words x "
                                   "groups, zero points along out_features"));
      std::vector<uint8_t> col(static_cast<size_t>(N));
      for (int64_t g = 0; g < ng; ++g) {
        quant::unpackCodeStream(zp.data() + g, ng, N, b, col.data(), 1);
        for (int64_t n = 0; n < N; ++n)
          q.zeros[g * N + n] = static_cast<float>(col[n]);
      }
    } else {
      if (r.has(layer + ".weight_zero_point"))
        return fail("has a weight_zero_point but its config group is "
                    "symmetric");
      for (float &z : q.zeros)
        z = static_cast<float>(1 << (b - 1));
    }

    if (r.has(layer + ".weight_g_idx")) {
      std::vector<int32_t> g;
      QC_RETURN_IF_ERROR(r.readI32(layer + ".weight_g_idx", {K}, g,
                                   "one group index per input channel"));
      for (int64_t k = 0; k < K; ++k)
        if (g[k] < 0 || g[k] >= ng)
          return Status::error(r.fileOf(layer + ".weight_g_idx") +
                               ": tensor '" + layer + ".weight_g_idx': entry " +
                               std::to_string(k) + " is " +
                               std::to_string(g[k]) + ", outside [0, " +
                               std::to_string(ng) + ")");
      q.gIdx = std::move(g);
    } else if (s.descAct) {
      return fail("actorder is \"group\" but weight_g_idx is missing");
    }
    if (Status st = q.verify(); !st)
      return fail(st.message());
    return Status::ok();
  }
};

} // namespace

const ImportFormat &mlir::qc::checkpoint::getCompressedTensorsImportFormat() {
  static const CompressedTensorsFormat format;
  return format;
}
