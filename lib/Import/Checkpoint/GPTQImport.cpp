//===- GPTQImport.cpp - GPTQ checkpoint import ----------------------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// quant_method "gptq": AutoGPTQ / GPTQModel checkpoints
// (../shared/docs/ALGORITHMS.md §8.1), v1 or v2 zeros, 2/3/4/8 bits, act-order
// g_idx, K padded to whole words or whole groups, GPTQModel `dynamic`
// per-module overrides; unpacked by unpackGPTQ.
//
//===----------------------------------------------------------------------===//

#include "Checkpoint.h"

#include "qc/runtime/Json.h"

using namespace mlir;
using namespace mlir::qc;
using namespace mlir::qc::checkpoint;
using ::qc::DType;
using ::qc::ModelConfig;
using ::qc::ModelWeights;
using ::qc::PackedTensor;
using ::qc::Status;
using ::qc::quant::QuantizedWeight;
namespace quant = ::qc::quant;
namespace json = ::qc::json;

namespace {

/// Reads the GPTQ tensors of `layer` ([N, K] weight) into `q`.
Status readGPTQLayer(CheckpointReader &r, const QuantScheme &s,
                     const std::string &layer, int64_t N, int64_t K,
                     QuantizedWeight &q) {
  quant::GPTQTensors t;
  t.bits = s.bits;
  t.groupSize = s.groupSize;
  t.sym = s.sym;
  t.format = s.format;
  t.N = N;
  t.inFeatures = K;
  t.numGroups = quant::numGroupsFor(K, s.groupSize);

  FileTensor qw;
  QC_RETURN_IF_ERROR(r.get(layer + ".qweight", qw));
  QC_RETURN_IF_ERROR(r.checkDType(qw, DType::I32));
  if (qw.info->shape.size() != 2 || qw.info->shape[1] != N)
    return Status::error(qw.where + " has shape " +
                         shapeString(qw.info->shape) + ", expected [words, " +
                         std::to_string(N) +
                         "] (codes packed along in_features, one column per "
                         "output feature)");
  // The packed K. Word padding (what the loaders size, §14.6): qweight
  // holds ceil(K * b / 32) rows (whole three-word blocks for 3-bit) and
  // g_idx the true K; the older whole-group padding: more rows, and a
  // g_idx as long as the padded K.
  const int64_t rows = qw.info->shape[0];
  const int64_t wordRows = quant::packedWordCount(K, s.bits);
  int64_t Kp = -1;
  if (rows == wordRows && (s.bits != 3 || K % 32 == 0))
    Kp = K; // bits past K in the last word are ignored, as loaders do
  else if (rows > wordRows && (rows * 32) % s.bits == 0 &&
           (s.bits != 3 || rows % 3 == 0))
    Kp = rows * 32 / s.bits;
  if (Kp < 0)
    return Status::error(
        qw.where + " has " + std::to_string(rows) +
        " rows, expected ceil(in_features " + std::to_string(K) + " * bits " +
        std::to_string(s.bits) + " / 32) = " +
        std::to_string(s.bits == 3 ? quant::gptqPaddedK(K, 3) * 3 / 32
                                   : wordRows) +
        " (or more, for a K padded to whole groups)");
  std::vector<int32_t> gIdx;
  if (r.has(layer + ".g_idx")) {
    FileTensor gi;
    QC_RETURN_IF_ERROR(r.get(layer + ".g_idx", gi));
    QC_RETURN_IF_ERROR(r.checkDType(gi, DType::I32));
    if (gi.info->shape.size() != 1 ||
        (gi.info->shape[0] != K && gi.info->shape[0] != Kp))
      return Status::error(
          gi.where + " has shape " + shapeString(gi.info->shape) +
          ", expected [" + std::to_string(K) + "] (in_features" +
          (Kp != K ? ", or the " + std::to_string(Kp) + " input channels the " +
                         std::to_string(rows) + " qweight rows hold"
                   : std::string()) +
          ")");
    gIdx = fromBytes<int32_t>(gi.file->tensorData(*gi.info),
                              static_cast<size_t>(gi.info->shape[0]));
  } else {
    if (s.descAct)
      return Status::error(r.fileOf(layer + ".qweight") + ": tensor '" + layer +
                           ".g_idx' is missing, and desc_act is true "
                           "(act-order layers need their g_idx)");
    gIdx.resize(static_cast<size_t>(K));
    for (int64_t k = 0; k < K; ++k)
      gIdx[k] = static_cast<int32_t>(s.groupSize > 0 ? k / s.groupSize : 0);
  }
  t.K = Kp;
  t.gIdx = std::move(gIdx);
  t.qweight = fromBytes<int32_t>(qw.file->tensorData(*qw.info),
                                 static_cast<size_t>(qw.info->numElements()));
  if (!r.has(layer + ".qzeros"))
    return Status::error(r.fileOf(layer + ".qweight") + ": tensor '" + layer +
                         ".qzeros' is missing (GPTQ checkpoints store the zero "
                         "points of every quantized layer, symmetric ones "
                         "included)");
  if (!r.has(layer + ".scales"))
    return Status::error(r.fileOf(layer + ".qweight") + ": tensor '" + layer +
                         ".scales' is missing (every quantized layer needs "
                         "its scales)");
  const std::string groups = "ceil(in_features " + std::to_string(K) +
                             " / group_size " + std::to_string(s.groupSize) +
                             ") = " + std::to_string(t.numGroups) + " groups";
  QC_RETURN_IF_ERROR(r.readI32(layer + ".qzeros", {t.numGroups, t.qzerosCols()},
                               t.qzeros,
                               groups + " x zero points packed along "
                                        "out_features"));
  QC_RETURN_IF_ERROR(r.readF16(layer + ".scales", {t.numGroups, N}, t.scales,
                               groups + " x out_features"));
  if (Status st = quant::unpackGPTQ(t, q); !st)
    return Status::error(r.fileOf(layer + ".qweight") + ": layer '" + layer +
                         "': " + st.message());
  return Status::ok();
}

/// quant_method "gptq".
class GPTQFormat final : public ImportFormat {
public:
  const char *name() const override { return "gptq"; }

  Status parseConfig(const ConfigFields &c, QuantScheme &out) const override {
    std::string key;
    const json::Value *desc = c.get({"desc_act"}, key);
    if (desc && !desc->isBool())
      return c.fail(key, "must be true or false");
    out.descAct = desc && desc->asBool();
    const json::Value *sym = c.get({"sym"}, key);
    if (sym && !sym->isBool())
      return c.fail(key, "must be true or false");
    out.sym = !sym || sym->asBool();
    const json::Value *marlin = c.get({"is_marlin_format"}, key);
    if (marlin && marlin->isBool() && marlin->asBool())
      return c.fail(key, "is true: Marlin-packed tensors are not supported");
    const json::Value *format = c.get({"checkpoint_format", "format"}, key);
    std::string f = format && format->isString() ? format->asString() : "gptq";
    if (format && !format->isString())
      return c.fail(key, "must be a string");
    if (f == "gptq")
      out.format = quant::GPTQFormat::V1;
    else if (f == "gptq_v2")
      out.format = quant::GPTQFormat::V2;
    else
      return c.fail(key,
                    "is " + json::quote(f) +
                        ", which is not supported (gptq or gptq_v2; marlin "
                        "and bitblas are kernel repacks)");
    const json::Value *dynamic = c.get({"dynamic"}, key);
    if (dynamic && !dynamic->isObject())
      return c.fail(key, "must be an object of per-module overrides");
    if (dynamic) {
      for (const auto &[k, v] : dynamic->asObject()) {
        DynamicRule r;
        r.key = k;
        r.exclude = k.rfind("-:", 0) == 0;
        r.pattern =
            k.rfind("-:", 0) == 0 || k.rfind("+:", 0) == 0 ? k.substr(2) : k;
        std::string where = "dynamic\" key " + json::quote(k) + " field \"";
        if (!v.isObject())
          return c.fail("dynamic", "entry " + json::quote(k) +
                                       " must be an object of overrides");
        bool ignored = false;
        if (Status st = pythonReMatch(r.pattern, "", ignored); !st)
          return c.fail("dynamic",
                        "key " + json::quote(k) + ": " + st.message());
        if (const json::Value *b = v.find("bits")) {
          if (!b->isInt64() || (b->asInt64() != 2 && b->asInt64() != 3 &&
                                b->asInt64() != 4 && b->asInt64() != 8))
            return c.fail(where + "bits",
                          "is " + json::write(*b) +
                              ", which is not supported (2, 3, 4 or 8)");
          r.bits = static_cast<int>(b->asInt64());
        }
        if (const json::Value *g = v.find("group_size")) {
          if (!g->isInt64() || (g->asInt64() != -1 && g->asInt64() <= 0))
            return c.fail(where + "group_size",
                          "is " + json::write(*g) +
                              " (expected -1 or a positive group size)");
          r.groupSize = g->asInt64();
        }
        for (const char *f : {"sym", "desc_act"}) {
          const json::Value *b = v.find(f);
          if (!b)
            continue;
          if (!b->isBool())
            return c.fail(where + f, "must be true or false");
          (std::string(f) == "sym" ? r.sym : r.descAct) = b->asBool();
        }
        out.dynamic.push_back(std::move(r));
      }
    }
    const json::Value *pack = c.get({"pack_dtype"}, key);
    if (pack && (!pack->isString() || pack->asString() != "int32"))
      return c.fail(key, "must be \"int32\"");
    return Status::ok();
  }

  Status readLayer(CheckpointReader &r, const QuantScheme &s,
                   const std::string &layer, int64_t N, int64_t K,
                   QuantizedWeight &q) const override {
    return readGPTQLayer(r, s, layer, N, K, q);
  }
};

} // namespace

const ImportFormat &mlir::qc::checkpoint::getGPTQImportFormat() {
  static const GPTQFormat format;
  return format;
}
