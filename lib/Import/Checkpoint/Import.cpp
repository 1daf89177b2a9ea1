//===- Import.cpp - Quantized Hugging Face checkpoint import --------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// loadQuantizedHFCheckpoint and the registry of import formats: reads
// config.json's quantization_config (quant_method, bits, group size here; the
// rest by the format named by quant_method), walks the model's linear layers,
// lets the format read each quantized one into a QuantizedWeight, and repacks
// it into the layout the CPU path executes. The formats are listed once, in
// Formats.def.
//
//===----------------------------------------------------------------------===//

#include "Checkpoint.h"

#include "LLM/IR/LLMOps.h"
#include "WQ/IR/WQOps.h"
#include "qc/Import/QuantizedCheckpoint.h"
#include "qc/runtime/HFCheckpoint.h"
#include "qc/runtime/Json.h"
#include "qc/runtime/Safetensors.h"

#include "mlir/IR/Builders.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

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
namespace fs = std::filesystem;

//===----------------------------------------------------------------------===//
// The registry
//===----------------------------------------------------------------------===//

const std::vector<const ImportFormat *> &mlir::qc::checkpoint::importFormats() {
  static const std::vector<const ImportFormat *> formats = {
#define QC_IMPORT_FORMAT(Name) &get##Name##ImportFormat(),
#include "Formats.def"
  };
  return formats;
}

const json::Value *ConfigFields::get(std::initializer_list<const char *> keys,
                                     std::string &which) const {
  for (const char *k : keys)
    if (const json::Value *v = q.find(k); v && !v->isNull()) {
      which = k;
      return v;
    }
  which = *keys.begin();
  return nullptr;
}

Status ConfigFields::fail(const std::string &field,
                          const std::string &what) const {
  return Status::error(path + ": quantization_config field \"" + field + "\" " +
                       what);
}

//===----------------------------------------------------------------------===//
// Import
//===----------------------------------------------------------------------===//

/// Whether the Python regular expression `pattern` matches a prefix of
/// `name` (re.match). PCRE2 reads the syntax GPTQModel's patterns use.
Status mlir::qc::checkpoint::pythonReMatch(const std::string &pattern,
                                           const std::string &name,
                                           bool &matched) {
  int code = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code *re =
      pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()),
                    pattern.size(), PCRE2_UTF, &code, &offset, nullptr);
  if (!re) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(code, msg, sizeof(msg));
    return Status::error("regular expression " + json::quote(pattern) +
                         " is invalid at offset " + std::to_string(offset) +
                         ": " + reinterpret_cast<const char *>(msg));
  }
  pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, nullptr);
  int rc = pcre2_match(re, reinterpret_cast<PCRE2_SPTR>(name.data()),
                       name.size(), 0, PCRE2_ANCHORED, md, nullptr);
  pcre2_match_data_free(md);
  pcre2_code_free(re);
  matched = rc >= 0;
  return Status::ok();
}

/// The scheme of module `layer`: the first matching `dynamic` rule's
/// overrides on top of the top-level fields (GPTQModel's dynamic_get);
/// `excluded` when a "-:" rule matches first.
Status mlir::qc::checkpoint::resolveScheme(const std::string &path,
                                           const QuantScheme &s,
                                           const std::string &layer,
                                           QuantScheme &out, bool &excluded) {
  out = s;
  excluded = false;
  for (const DynamicRule &r : s.dynamic) {
    bool m = false;
    if (Status st = pythonReMatch(r.pattern, layer, m); !st)
      return Status::error(path + ": quantization_config \"dynamic\" key " +
                           json::quote(r.key) + ": " + st.message());
    if (!m)
      continue;
    excluded = r.exclude;
    if (r.bits)
      out.bits = *r.bits;
    if (r.groupSize)
      out.groupSize = *r.groupSize;
    if (r.sym)
      out.sym = *r.sym;
    if (r.descAct)
      out.descAct = *r.descAct;
    return Status::ok();
  }
  return Status::ok();
}

namespace {

/// Reads quantization_config (object `q` of `path`): quant_method picks the
/// format, bits and group size are common to all (synonyms as §8.1: w_bit
/// for bits, q_group_size for group_size), the rest is the format's.
Status parseScheme(const std::string &path, const json::Value &q,
                   QuantScheme &out) {
  if (!q.isObject())
    return Status::error(path + ": quantization_config must be an object");
  ConfigFields c{path, q};
  std::string key;
  const json::Value *method = c.get({"quant_method"}, key);
  if (!method || !method->isString())
    return c.fail(key, "is missing or not a string");
  out.method = method->asString();
  out.importer = nullptr;
  std::string supported;
  for (const ImportFormat *f : importFormats()) {
    if (out.method == f->name())
      out.importer = f;
    supported += (supported.empty() ? "" : ", ") + std::string(f->name());
  }
  if (!out.importer)
    return c.fail(key, "is " + json::quote(out.method) +
                           ", which is not supported (supported: " + supported +
                           ")");

  if (!out.importer->topLevelGrid())
    return out.importer->parseConfig(c, out);
  const json::Value *bits = c.get({"bits", "w_bit"}, key);
  if (!bits || !bits->isInt64())
    return c.fail(key, "is missing or not an integer");
  int64_t b = bits->asInt64();
  if (b != 2 && b != 3 && b != 4 && b != 8)
    return c.fail(key, "is " + std::to_string(b) +
                           ", which is not supported (2, 3, 4 or 8)");
  out.bits = static_cast<int>(b);
  const json::Value *group = c.get({"group_size", "q_group_size"}, key);
  if (!group || !group->isInt64())
    return c.fail(key, "is missing or not an integer");
  out.groupSize = group->asInt64();
  if (out.groupSize != -1 && out.groupSize <= 0)
    return c.fail(key, "is " + std::to_string(out.groupSize) +
                           " (expected -1 or a positive group size)");
  return out.importer->parseConfig(c, out);
}

/// Packs `q` into the layout the CPU path executes and records it.
Status packForCpu(QuantizedWeight q, const std::string &layer,
                  ModelWeights &out, QuantizedLayerInfo &info) {
  const int64_t N = q.rows, K = q.cols, ng = q.numGroups();
  bool zeroAtZero = false;
  for (float z : q.zeros)
    zeroAtZero |= !q.sym && z == 0.0f;
  // gptq (v1 zeros) is the interchange layout other backends read; it cannot
  // hold an asymmetric zero of 0, nor 3-bit shapes off whole blocks.
  bool gptq = !zeroAtZero && (q.bits != 3 || (K % 32 == 0 && N % 32 == 0));
  if (q.hasTrivialGIdx())
    q.gIdx.clear();
  info.layer = layer;
  info.layout = gptq ? "gptq" : "rows";
  info.bits = q.bits;
  info.groupSize = q.groupSize;
  info.sym = q.sym;
  info.inFeatures = K;
  info.outFeatures = N;
  info.hasZeros = !q.sym;
  info.hasGIdx = !q.gIdx.empty();
  PackedTensor scales;
  scales.dtype = DType::F16;
  scales.shape = {ng, N};
  std::vector<uint16_t> halves(q.scales.size());
  for (size_t i = 0; i < halves.size(); ++i)
    halves[i] = ::qc::f32ToF16(q.scales[i]);
  scales.bytes = rawBytes(halves);
  out.packed[layer + ".scales"] = std::move(scales);
  if (gptq) {
    quant::GPTQTensors t;
    QC_RETURN_IF_ERROR(quant::packGPTQ(q, {}, t));
    out.packed[layer + ".qweight"] = {
        DType::I32, {t.qweightRows(), N}, rawBytes(t.qweight)};
    if (!q.sym)
      out.packed[layer + ".qzeros"] = {
          DType::I32, {ng, t.qzerosCols()}, rawBytes(t.qzeros)};
    if (info.hasGIdx)
      out.packed[layer + ".g_idx"] = {DType::I32, {K}, rawBytes(t.gIdx)};
    return Status::ok();
  }
  quant::RowsTensors t;
  QC_RETURN_IF_ERROR(quant::packRows(q, {}, t));
  out.packed[layer + ".qweight"] = {
      DType::I32, {N, t.qweightCols()}, rawBytes(t.qweight)};
  if (!q.sym)
    out.packed[layer + ".qzeros"] = {DType::I32, {ng, N}, rawBytes(t.zeros)};
  if (info.hasGIdx)
    out.packed[layer + ".g_idx"] = {DType::I32, {K}, rawBytes(t.gIdx)};
  return Status::ok();
}

/// The checkpoint's weight files: model.safetensors or an index, as for
/// float checkpoints, else AutoGPTQ's own single file
/// `<model_file_base_name>.safetensors` (e.g.
/// gptq_model-4bit-128g.safetensors) named by quantization_config or
/// quantize_config.json.
Status openQuantizedTensorFiles(const std::string &dir,
                                const json::Value &qconf,
                                ::qc::HFTensorFiles &files) {
  std::error_code ec;
  bool standard = fs::exists(joinPath(dir, "model.safetensors"), ec) ||
                  fs::exists(joinPath(dir, "model.safetensors.index.json"), ec);
  const json::Value *base = qconf.find("model_file_base_name");
  json::Value fileConfig;
  if ((!base || !base->isString()) &&
      fs::is_regular_file(joinPath(dir, "quantize_config.json"), ec) &&
      fs::file_size(joinPath(dir, "quantize_config.json"), ec) < (1u << 20)) {
    // An untrusted file: the runtime's hardened parser, not llvm::json
    // (qc/runtime/Json.h says why).
    std::ifstream in(joinPath(dir, "quantize_config.json"));
    std::stringstream text;
    text << in.rdbuf();
    if (json::parse(text.str(), fileConfig) && fileConfig.isObject())
      base = fileConfig.find("model_file_base_name");
  }
  if (standard || !base || !base->isString() || base->asString().empty() ||
      base->asString().find('/') != std::string::npos ||
      base->asString() == "model")
    return ::qc::openHFTensorFiles(dir, files);
  std::string name = base->asString() + ".safetensors";
  if (!fs::is_regular_file(joinPath(dir, name), ec))
    return Status::error(dir +
                         ": neither model.safetensors, "
                         "model.safetensors.index.json nor " +
                         name + " (model_file_base_name) exists");
  files.files.emplace_back();
  files.files[0].fileName = name;
  QC_RETURN_IF_ERROR(
      ::qc::SafetensorsFile::open(joinPath(dir, name), files.files[0].file));
  for (const ::qc::TensorInfo &info : files.files[0].file->tensors())
    files.tensors.emplace(info.name, &files.files[0]);
  return Status::ok();
}

} // namespace

Status mlir::qc::isQuantizedHFCheckpoint(const std::string &dir,
                                         bool &quantized) {
  ModelConfig cfg;
  json::Value qconf;
  QC_RETURN_IF_ERROR(
      ::qc::parseHFConfig(joinPath(dir, "config.json"), cfg, qconf));
  quantized = !qconf.isNull();
  return Status::ok();
}

Status
mlir::qc::loadQuantizedHFCheckpoint(const std::string &dir, ModelWeights &out,
                                    std::vector<QuantizedLayerInfo> &layers) {
  const std::string configPath = joinPath(dir, "config.json");
  ModelConfig cfg;
  json::Value qconf;
  QC_RETURN_IF_ERROR(::qc::parseHFConfig(configPath, cfg, qconf));
  if (qconf.isNull())
    return Status::error(configPath + ": has no quantization_config");
  QuantScheme scheme;
  QC_RETURN_IF_ERROR(parseScheme(configPath, qconf, scheme));

  ::qc::HFTensorFiles files;
  QC_RETURN_IF_ERROR(openQuantizedTensorFiles(dir, qconf, files));
  CheckpointReader reader(dir, files);
  ModelWeights w;
  w.config = cfg;
  std::vector<QuantizedLayerInfo> infos;

  // The tensor that marks a quantized linear ("<layer>.qweight" for GPTQ
  // and AWQ, "<layer>.weight_packed" for compressed-tensors).
  const std::string marker = std::string(".") + scheme.importer->markerTensor();
  if (cfg.tiedEmbeddings && reader.has("lm_head" + marker))
    return Status::error(reader.fileOf("lm_head" + marker) +
                         ": tensor 'lm_head" + marker +
                         "': the classifier is "
                         "quantized but config.json has tie_word_embeddings "
                         "true (it would share the float embedding)");
  for (const ::qc::TensorSpec &spec : ::qc::modelTensorSpecs(cfg)) {
    bool linear =
        isProjectionWeight(spec.name) || spec.name == "lm_head.weight";
    std::string layer = endsWith(spec.name, ".weight")
                            ? spec.name.substr(0, spec.name.size() - 7)
                            : spec.name;
    if (!linear || !reader.has(layer + marker)) {
      ::qc::HostTensor t;
      QC_RETURN_IF_ERROR(reader.readFloat(spec.name, spec.shape, t));
      w.tensors[spec.name] = std::move(t);
      continue;
    }
    if (reader.has(spec.name))
      return Status::error(reader.fileOf(spec.name) + ": layer '" + layer +
                           "' has both a float weight and a " +
                           scheme.importer->markerTensor() +
                           "; the "
                           "checkpoint is ambiguous");
    const int64_t N = spec.shape[0], K = spec.shape[1];
    QuantScheme layerScheme;
    bool excluded = false;
    QC_RETURN_IF_ERROR(
        resolveScheme(configPath, scheme, layer, layerScheme, excluded));
    if (excluded)
      return Status::error(reader.fileOf(layer + marker) + ": tensor '" +
                           layer + marker +
                           "': quantization_config excludes this module from "
                           "quantization (a \"dynamic\" \"-:\" pattern, an "
                           "\"ignore\" entry or no matching config group), "
                           "yet it is stored quantized");
    QuantizedWeight q;
    QC_RETURN_IF_ERROR(
        scheme.importer->readLayer(reader, layerScheme, layer, N, K, q));
    if (spec.name == "lm_head.weight") {
      // llm.logits takes a float matrix; the dequantized classifier is the
      // exact weight the quantized one computes with.
      ::qc::HostTensor t;
      t.shape = spec.shape;
      q.dequantize(t.data);
      w.tensors[spec.name] = std::move(t);
      continue;
    }
    QuantizedLayerInfo info;
    if (Status s = packForCpu(std::move(q), layer, w, info); !s)
      return Status::error(reader.fileOf(layer + marker) + ": layer '" + layer +
                           "': " + s.message());
    infos.push_back(std::move(info));
  }
  // Some exporters save a tied classifier anyway; transformers drops it
  // when it equals the embedding.
  if (cfg.tiedEmbeddings && reader.has("lm_head.weight")) {
    ::qc::HostTensor head;
    QC_RETURN_IF_ERROR(reader.readFloat(
        "lm_head.weight", w.tensors["model.embed_tokens.weight"].shape, head));
    if (head.data != w.tensors["model.embed_tokens.weight"].data)
      return Status::error(reader.fileOf("lm_head.weight") +
                           ": config.json has tie_word_embeddings true but "
                           "lm_head.weight differs from the embedding");
  }
  QC_RETURN_IF_ERROR(reader.checkAllUsed());
  if (infos.empty())
    return Status::error(dir + ": config.json has a quantization_config but no "
                               "linear layer has a quantized weight tensor");
  out = std::move(w);
  layers = std::move(infos);
  return Status::ok();
}

Status
mlir::qc::applyQuantizedLayers(ModuleOp module,
                               const std::vector<QuantizedLayerInfo> &layers) {
  std::map<std::string, const QuantizedLayerInfo *> byWeight;
  for (const QuantizedLayerInfo &l : layers)
    byWeight[l.layer + ".weight"] = &l;
  std::vector<llm::LinearOp> ops;
  module.walk([&](llm::LinearOp op) {
    if (byWeight.count(paramName(op.getWeight())))
      ops.push_back(op);
  });
  if (ops.size() != layers.size())
    return Status::error("the model IR has " + std::to_string(ops.size()) +
                         " of the " + std::to_string(layers.size()) +
                         " quantized layers the checkpoint holds");
  OpBuilder b(module.getContext());
  for (llm::LinearOp op : ops) {
    const QuantizedLayerInfo &l = *byWeight[paramName(op.getWeight())];
    auto layout = *wq::symbolizeLayout(l.layout);
    b.setInsertionPoint(op);
    const int64_t ng = wq::getNumGroups(l.inFeatures, l.groupSize);
    auto param = [&](const std::string &suffix, ArrayRef<int64_t> shape,
                     Type type) -> Value {
      return llm::ParamOp::create(b, op.getLoc(),
                                  RankedTensorType::get(shape, type),
                                  b.getStringAttr(l.layer + suffix));
    };
    Value qweight =
        param(".qweight",
              wq::getQWeightShape(layout, l.bits, l.inFeatures, l.outFeatures),
              b.getI32Type());
    Value scales = param(".scales", {ng, l.outFeatures}, b.getF16Type());
    Value zeros = l.hasZeros
                      ? param(".qzeros",
                              wq::getZerosShape(layout, b.getI32Type(), l.bits,
                                                ng, l.outFeatures),
                              b.getI32Type())
                      : Value();
    Value gIdx =
        l.hasGIdx ? param(".g_idx", {l.inFeatures}, b.getI32Type()) : Value();
    auto linear = wq::LinearOp::create(
        b, op.getLoc(), op.getType(), op.getX(), qweight, scales, zeros, gIdx,
        op.getBias(), b.getI64IntegerAttr(l.bits),
        b.getI64IntegerAttr(l.groupSize), b.getBoolAttr(l.sym),
        b.getI64IntegerAttr(l.inFeatures), b.getI64IntegerAttr(l.outFeatures),
        TypeAttr::get(b.getF16Type()),
        l.hasZeros ? TypeAttr::get(b.getI32Type()) : TypeAttr(),
        wq::LayoutAttr::get(b.getContext(), layout), DenseF32ArrayAttr());
    Value oldWeight = op.getWeight();
    op.replaceAllUsesWith(linear.getResult());
    op.erase();
    if (oldWeight.use_empty())
      oldWeight.getDefiningOp()->erase();
  }
  return Status::ok();
}
