//===- CompressedTensorsExport.cpp - compressed-tensors export ------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// exportCompressedTensors: a quantized module as a compressed-tensors
// `pack-quantized` folder (llm-compressor's format, vLLM loads it;
// ../shared/docs/ALGORITHMS.md §8.4), one config group per weight scheme.
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

/// One compressed-tensors weight scheme (a config group).
struct CTScheme {
  int bits;
  int64_t groupSize; // -1: channel strategy
  bool sym;
  bool operator<(const CTScheme &o) const {
    return std::tie(bits, groupSize, sym) <
           std::tie(o.bits, o.groupSize, o.sym);
  }
};

/// The QuantizationArgs of `s` as compressed-tensors serializes them
/// (compressed_tensors/quantization/quant_args.py, QuantizationArgs).
json::Value ctWeightsArgs(const CTScheme &s) {
  json::Value w = json::Value::object();
  w.set("actorder", json::Value());
  w.set("block_structure", json::Value());
  w.set("dynamic", json::Value::boolean(false));
  w.set("group_size",
        s.groupSize > 0 ? json::Value::integer(s.groupSize) : json::Value());
  w.set("num_bits", json::Value::integer(s.bits));
  w.set("observer", json::Value::string("minmax"));
  w.set("observer_kwargs", json::Value::object());
  w.set("strategy", json::Value::string(s.groupSize > 0 ? "group" : "channel"));
  w.set("symmetric", json::Value::boolean(s.sym));
  w.set("type", json::Value::string("int"));
  return w;
}

} // namespace

Status
mlir::qc::exportCompressedTensors(ModuleOp module, const ModelWeights &weights,
                                  const std::string &dir,
                                  const CompressedTensorsExportOptions &options,
                                  CompressedTensorsExportSummary *summary) {
  const ModelConfig &cfg = weights.config;
  auto fail = [&](const std::string &msg) {
    return Status::error(dir + ": " + msg);
  };
  std::map<std::string, QuantizedWeight> layers;
  std::set<std::string> floatLayers;
  Status walkStatus = Status::ok();
  module.walk([&](Operation *op) -> WalkResult {
    if (auto lin = dyn_cast<llm::LinearOp>(op)) {
      std::string w = paramName(lin.getWeight());
      if (endsWith(w, ".weight"))
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
  if (layers.empty())
    return fail("the module has no wq.linear ops; quantize it first");

  std::vector<OutTensor> tensors;
  std::map<CTScheme, std::vector<std::string>> groups;
  for (auto &[name, qIn] : layers) {
    QuantizedWeight q = qIn;
    auto where = [&](const std::string &what) {
      return fail("layer '" + name + "' (" + std::to_string(q.bits) +
                  " bits, group size " + std::to_string(q.groupSize) +
                  (q.sym ? ", sym" : ", asym") + "): " + what);
    };
    if (q.bits != 4 && q.bits != 8)
      return where("pack-quantized int weights are 4 or 8 bits for vLLM's "
                   "WNA16 kernels");
    if (q.groupSize > 0 && q.cols % q.groupSize != 0)
      return where("in_features " + std::to_string(q.cols) +
                   " is not a multiple of the group size; compressed-tensors' "
                   "group strategy sizes weight_scale as in_features // "
                   "group_size (use group size -1, the channel strategy)");
    if (int64_t heads = interleavedRopeHeads(cfg, name + ".weight"))
      permuteQuantizedRows(q, ropePermutation(heads, cfg.headDim));
    const int64_t N = q.rows, K = q.cols, ng = q.numGroups();
    const int pf = 32 / q.bits;
    for (size_t i = 0; i < q.scales.size(); ++i)
      if (::qc::f16ToF32(::qc::f32ToF16(q.scales[i])) != q.scales[i])
        return where("scale " + std::to_string(q.scales[i]) +
                     " is not exactly representable in fp16, the dtype of "
                     "weight_scale (quantize with scale-dtype=f16)");
    for (float z : q.zeros)
      if (z != std::floor(z))
        return where("fractional (HQQ) zero points cannot be stored");
    // weight_packed [N, ceil(K / pf)]: row n's codes LSB first along K;
    // the stored value is the signed code plus 2^(b-1), i.e. qc's unsigned
    // code (pack_to_int32). Padding bits are 0, as np.pad leaves them.
    const int64_t words = (K + pf - 1) / pf;
    std::vector<int32_t> packed(static_cast<size_t>(N * words), 0);
    for (int64_t n = 0; n < N; ++n)
      quant::packCodeStream(q.codes.data() + n * K, 1, K, q.bits,
                            packed.data() + n * words, 1);
    tensors.push_back(
        {name + ".weight_packed", DType::I32, {N, words}, rawBytes(packed)});
    // weight_scale [N, K / G] (channel: [N, 1]) in the model dtype.
    std::vector<uint16_t> scales(static_cast<size_t>(N * ng));
    for (int64_t n = 0; n < N; ++n)
      for (int64_t g = 0; g < ng; ++g)
        scales[n * ng + g] = ::qc::f32ToF16(q.scales[g * N + n]);
    tensors.push_back(
        {name + ".weight_scale", DType::F16, {N, ng}, rawBytes(scales)});
    std::vector<int64_t> shape = {N, K};
    tensors.push_back(
        {name + ".weight_shape", DType::I64, {2}, rawBytes(shape)});
    if (!q.sym) {
      // weight_zero_point [ceil(N / pf), K / G]: zero points packed along
      // N (dim 0), stored as signed zp + 2^(b-1) = qc's unsigned zero.
      const int64_t zrows = (N + pf - 1) / pf;
      std::vector<int32_t> zp(static_cast<size_t>(zrows * ng), 0);
      std::vector<uint8_t> col(static_cast<size_t>(N));
      for (int64_t g = 0; g < ng; ++g) {
        for (int64_t n = 0; n < N; ++n)
          col[n] = static_cast<uint8_t>(q.zeros[g * N + n]);
        quant::packCodeStream(col.data(), 1, N, q.bits, zp.data() + g, ng);
      }
      tensors.push_back(
          {name + ".weight_zero_point", DType::I32, {zrows, ng}, rawBytes(zp)});
    } else {
      for (float z : q.zeros)
        if (z != static_cast<float>(1 << (q.bits - 1)))
          return where("a symmetric zero point is not 2^(b-1)");
    }
    // compressed-tensors removed actorder "group" (a per-channel g_idx):
    // its QuantizationArgs now refuse it, so transformers and vLLM cannot
    // load such a folder (measured with compressed-tensors 0.20.1 by
    // scripts/interop-check.sh). Act-order with static groups keeps
    // contiguous groups (a trivial g_idx) and exports.
    if (!q.hasTrivialGIdx())
      return where("its act-order g_idx regroups input channels, which "
                   "compressed-tensors no longer stores (actorder \"group\" "
                   "was removed); quantize with act-order=false or "
                   "static-groups=true, or export as GPTQ");
    groups[{q.bits, q.groupSize, q.sym}].push_back(name);
  }

  if (Status st =
          appendFloatTensorsF16(weights, layers, "compressed-tensors", tensors);
      !st)
    return fail(st.message());

  // quantization_config (compressed_tensors/config, QuantizationConfig):
  // one config group per scheme; with several schemes each group targets
  // its modules by exact "re:" patterns (is_match: re.match on the module
  // name), else the whole Linear class. Float linears and the classifier
  // are in `ignore`.
  json::Value configGroups = json::Value::object();
  int index = 0;
  for (const auto &[scheme, names] : groups) {
    json::Value g = json::Value::object();
    g.set("input_activations", json::Value());
    g.set("output_activations", json::Value());
    json::Value targets = json::Value::array();
    if (groups.size() == 1)
      targets.push(json::Value::string("Linear"));
    else
      for (const std::string &n : names)
        targets.push(json::Value::string("re:" + exactPattern(n)));
    g.set("targets", std::move(targets));
    g.set("weights", ctWeightsArgs(scheme));
    configGroups.set("group_" + std::to_string(index++), std::move(g));
  }
  json::Value ignore = json::Value::array();
  for (const std::string &n : floatLayers)
    ignore.push(json::Value::string(n));
  ignore.push(json::Value::string("lm_head"));
  json::Value qconf = json::Value::object();
  qconf.set("config_groups", std::move(configGroups));
  qconf.set("format", json::Value::string("pack-quantized"));
  qconf.set("global_compression_ratio", json::Value());
  qconf.set("ignore", std::move(ignore));
  qconf.set("kv_cache_scheme", json::Value());
  qconf.set("quant_method", json::Value::string("compressed-tensors"));
  qconf.set("quantization_status", json::Value::string("compressed"));

  std::vector<FolderFile> files(1);
  files[0].name = "config.json";
  std::string config = ::qc::buildHFConfigJson(cfg, DType::F16, &qconf);
  files[0].bytes.assign(config.begin(), config.end());
  QC_RETURN_IF_ERROR(shardTensors(std::move(tensors), options.maxShardBytes,
                                  {{"format", "pt"}}, files));
  for (const std::string &path : options.copyFiles) {
    FolderFile f;
    f.name = fs::path(path).filename().string();
    for (const FolderFile &other : files)
      if (other.name == f.name)
        return fail("cannot copy '" + path + "': the export writes its own " +
                    f.name);
    std::error_code ec;
    uintmax_t size = fs::file_size(path, ec);
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
  QC_RETURN_IF_ERROR(writeFolderAtomically(dir, files));
  if (summary) {
    summary->quantizedLayers = static_cast<int64_t>(layers.size());
    summary->configGroups = static_cast<int64_t>(groups.size());
    summary->ignored = static_cast<int64_t>(floatLayers.size());
  }
  return Status::ok();
}
