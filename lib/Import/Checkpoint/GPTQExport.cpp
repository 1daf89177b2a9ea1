//===- GPTQExport.cpp - GPTQ checkpoint export ----------------------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// exportGPTQCheckpoint: a quantized module as a GPTQ folder that
// transformers + GPTQModel load as is (../shared/docs/ALGORITHMS.md §8.1):
// qweight/qzeros/scales/g_idx per layer packed by packGPTQ, K padded to whole
// words (§14.6), the most common scheme at the top level and GPTQModel
// `dynamic` overrides for the others.
//
//===----------------------------------------------------------------------===//

#include "Checkpoint.h"

#include "LLM/IR/LLMOps.h"
#include "WQ/IR/WQOps.h"
#include "qc/Import/QuantizedCheckpoint.h"
#include "qc/runtime/HFCheckpoint.h"
#include "qc/runtime/Json.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <tuple>

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

namespace {

/// One quantization configuration of a GPTQ checkpoint (the top-level one
/// or a `dynamic` override).
struct GPTQLayerConfig {
  int bits;
  int64_t groupSize;
  bool sym;
  bool operator<(const GPTQLayerConfig &o) const {
    return std::tie(bits, groupSize, sym) <
           std::tie(o.bits, o.groupSize, o.sym);
  }
  bool operator==(const GPTQLayerConfig &o) const {
    return bits == o.bits && groupSize == o.groupSize && sym == o.sym;
  }
};

} // namespace

Status mlir::qc::exportGPTQCheckpoint(ModuleOp module,
                                      const ModelWeights &weights,
                                      const std::string &dir,
                                      const GPTQExportOptions &options,
                                      GPTQExportSummary *summary) {
  const ModelConfig &cfg = weights.config;
  auto fail = [&](const std::string &msg) {
    return Status::error(dir + ": " + msg);
  };

  // The quantized layers, in name order (deterministic output), and the
  // decoder linears left in float (written as `-:` dynamic exclusions).
  std::map<std::string, QuantizedWeight> layers;
  std::set<std::string> floatLayers;
  Status walkStatus = Status::ok();
  module.walk([&](Operation *op) -> WalkResult {
    if (auto lin = dyn_cast<llm::LinearOp>(op)) {
      std::string w = paramName(lin.getWeight());
      if (!isProjectionWeight(w)) {
        walkStatus = Status::error(
            "linear layer over '" + w +
            "' is not a decoder projection; a GPTQ checkpoint cannot hold it");
        return WalkResult::interrupt();
      }
      floatLayers.insert(w.substr(0, w.size() - 7));
      return WalkResult::advance();
    }
    if (!isa<wq::LinearOp>(op))
      return WalkResult::advance();
    std::string layer;
    QuantizedWeight q;
    walkStatus = readQuantizedLayer(op, weights, layer, q);
    if (!walkStatus)
      return WalkResult::interrupt();
    layers[layer] = std::move(q);
    return WalkResult::advance();
  });
  if (!walkStatus)
    return fail(walkStatus.message());

  std::vector<::qc::TensorSpec> specs = ::qc::modelTensorSpecs(cfg);
  std::set<std::string> specNames;
  for (const ::qc::TensorSpec &spec : specs) {
    specNames.insert(spec.name);
    if (!isProjectionWeight(spec.name))
      continue;
    std::string layer = spec.name.substr(0, spec.name.size() - 7);
    if (!layers.count(layer) && !floatLayers.count(layer))
      return fail("layer '" + layer +
                  "' has no linear op in the module; the module does not "
                  "compute the model its config describes");
  }
  if (layers.empty())
    return fail("the module has no wq.linear ops; quantize it first (e.g. "
                "quant-opt -wq-rtn) or use --export-hf for a float model");
  // The top-level configuration is the most common one (ties: the first
  // layer's); every other layer gets a GPTQModel `dynamic` override.
  std::map<GPTQLayerConfig, int64_t> counts;
  for (const auto &[name, q] : layers) {
    if (!specNames.count(name + ".weight") ||
        !isProjectionWeight(name + ".weight"))
      return fail("layer '" + name +
                  "' is not a decoder projection of this model; only "
                  "q/k/v/o and gate/up/down projections can be exported as "
                  "GPTQ layers");
    ++counts[{q.bits, q.groupSize, q.sym}];
  }
  const QuantizedWeight &first = layers.begin()->second;
  GPTQLayerConfig base{first.bits, first.groupSize, first.sym};
  for (const auto &[c, n] : counts)
    if (n > counts[base])
      base = c;
  bool descAct = false;
  json::Value dynamic = json::Value::object();
  for (const auto &[name, q] : layers) {
    descAct |= !q.hasTrivialGIdx();
    GPTQLayerConfig c{q.bits, q.groupSize, q.sym};
    if (c == base)
      continue;
    json::Value o = json::Value::object();
    o.set("bits", json::Value::integer(c.bits));
    o.set("group_size", json::Value::integer(c.groupSize));
    o.set("sym", json::Value::boolean(c.sym));
    dynamic.set("+:" + exactPattern(name), std::move(o));
  }
  for (const std::string &name : floatLayers)
    dynamic.set("-:" + exactPattern(name), json::Value::object());

  std::vector<OutTensor> tensors;
  std::map<std::string, std::string> metadata = {{"format", "pt"}};

  int64_t padded = 0;
  for (auto &[name, qIn] : layers) {
    QuantizedWeight q = qIn;
    if (int64_t heads = interleavedRopeHeads(cfg, name + ".weight"))
      permuteQuantizedRows(q, ropePermutation(heads, cfg.headDim));
    // The values were checked to be fp16-exact by packGPTQ; scales of a
    // wider dtype that happen to be exact are accepted.
    q.scaleDType = quant::ScaleDType::F16;
    if (q.bits == 3 && q.rows % 32 != 0)
      return fail("layer '" + name +
                  "': 3-bit GPTQ checkpoints pack qzeros along out_features "
                  "in whole 32-value (3-word) blocks, so out_features must "
                  "be a multiple of 32, got " +
                  std::to_string(q.rows) +
                  "; this model cannot be exported as 3-bit GPTQ");
    quant::GPTQPackOptions packOpts;
    packOpts.format = options.format;
    packOpts.padK = true;
    quant::GPTQTensors t;
    if (Status s = quant::packGPTQ(q, packOpts, t); !s)
      return fail("layer '" + name + "': " + s.message());
    const int64_t N = t.N, ng = t.numGroups;
    tensors.push_back({name + ".qweight",
                       DType::I32,
                       {t.qweightRows(), N},
                       rawBytes(t.qweight)});
    tensors.push_back({name + ".qzeros",
                       DType::I32,
                       {ng, t.qzerosCols()},
                       rawBytes(t.qzeros)});
    tensors.push_back(
        {name + ".scales", DType::F16, {ng, N}, rawBytes(t.scales)});
    tensors.push_back({name + ".g_idx",
                       DType::I32,
                       {static_cast<int64_t>(t.gIdx.size())},
                       rawBytes(t.gIdx)});
    if (t.K != t.inFeatures) {
      // §14.6: qweight holds whole words; the true K is g_idx's length,
      // config.json's and here.
      metadata[name + ".in_features"] = std::to_string(t.inFeatures);
      ++padded;
    }
  }

  // Everything else (float decoder linears included) in fp16, as GPTQ
  // checkpoints store it.
  if (Status st = appendFloatTensorsF16(weights, layers, "GPTQ", tensors); !st)
    return fail(st.message());

  // quantize_config.json as GPTQModel writes it (AutoGPTQ's keys plus
  // format / pack_dtype / lm_head / meta; transformers' GPTQConfig reads
  // the same keys). damp_percent and true_sequential describe how GPTQ
  // ran; qc's defaults (ALGORITHMS.md §3.8) are written, as the loaders
  // only need them to be present.
  const std::string format =
      options.format == quant::GPTQFormat::V1 ? "gptq" : "gptq_v2";
  json::Value qconf = json::Value::object();
  qconf.set("bits", json::Value::integer(base.bits));
  qconf.set("checkpoint_format", json::Value::string(format));
  qconf.set("damp_percent", json::Value::number(0.01));
  qconf.set("desc_act", json::Value::boolean(descAct));
  if (!dynamic.asObject().empty())
    qconf.set("dynamic", std::move(dynamic));
  qconf.set("format", json::Value::string(format));
  qconf.set("group_size", json::Value::integer(base.groupSize));
  qconf.set("lm_head", json::Value::boolean(false));
  json::Value meta = json::Value::object();
  json::Value quantizer = json::Value::array();
  quantizer.push(json::Value::string("qc"));
  meta.set("quantizer", std::move(quantizer));
  qconf.set("meta", std::move(meta));
  qconf.set("model_file_base_name", json::Value::string("model"));
  qconf.set("model_name_or_path", json::Value());
  qconf.set("pack_dtype", json::Value::string("int32"));
  qconf.set("quant_method", json::Value::string("gptq"));
  qconf.set("static_groups", json::Value::boolean(false));
  qconf.set("sym", json::Value::boolean(base.sym));
  qconf.set("true_sequential", json::Value::boolean(true));

  std::vector<FolderFile> files(2);
  files[0].name = "config.json";
  std::string config = ::qc::buildHFConfigJson(cfg, DType::F16, &qconf);
  files[0].bytes.assign(config.begin(), config.end());
  files[1].name = "quantize_config.json";
  json::WriteOptions pretty;
  pretty.pretty = true;
  std::string qtext = json::write(qconf, pretty) + "\n";
  files[1].bytes.assign(qtext.begin(), qtext.end());
  QC_RETURN_IF_ERROR(
      shardTensors(std::move(tensors), options.maxShardBytes, metadata, files));
  for (const std::string &path : options.copyFiles) {
    FolderFile f;
    f.name = fs::path(path).filename().string();
    for (const FolderFile &other : files)
      if (other.name == f.name)
        return fail("cannot copy '" + path + "': the export writes its own " +
                    f.name);
    std::error_code ec;
    uintmax_t size = fs::file_size(path, ec);
    // Tokenizer files are a few MB; the cap keeps a mistaken path (a
    // weight file, a device) from being read whole.
    if (ec || size > (256u << 20))
      return fail("cannot copy '" + path + "': " +
                  (ec ? ec.message() : std::string("larger than 256 MB")));
    std::ifstream in(path, std::ios::binary);
    f.bytes.resize(static_cast<size_t>(size));
    if (!in.read(reinterpret_cast<char *>(f.bytes.data()),
                 static_cast<std::streamsize>(size)))
      return fail("cannot read '" + path + "'");
    files.push_back(std::move(f));
  }
  for (const ::qc::NamedFile &extra : options.extraFiles) {
    if (extra.name.empty() || extra.name == "." || extra.name == ".." ||
        extra.name.find('/') != std::string::npos)
      return fail("cannot write '" + extra.name + "': not a plain file name");
    for (const FolderFile &other : files)
      if (other.name == extra.name)
        return fail("cannot write '" + extra.name +
                    "': the export writes its own " + extra.name);
    FolderFile f;
    f.name = extra.name;
    f.bytes.assign(extra.bytes.begin(), extra.bytes.end());
    files.push_back(std::move(f));
  }
  QC_RETURN_IF_ERROR(writeFolderAtomically(dir, files));

  if (summary) {
    summary->bits = base.bits;
    summary->groupSize = base.groupSize;
    summary->sym = base.sym;
    summary->descAct = descAct;
    summary->quantizedLayers = static_cast<int64_t>(layers.size());
    summary->paddedLayers = padded;
    summary->overrides = static_cast<int64_t>(
        qconf.find("dynamic") ? qconf.find("dynamic")->asObject().size() : 0);
    summary->shards = 0;
    for (const FolderFile &f : files)
      summary->shards += endsWith(f.name, ".safetensors");
  }
  return Status::ok();
}
