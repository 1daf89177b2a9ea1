//===- QuantizedCheckpoint.cpp - GPTQ / AWQ checkpoint interchange --------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Export: every wq.linear is read back into a QuantizedWeight, permuted to
// rotate_half order if the model came from llama2.c, and packed with
// packGPTQ; float tensors are stored as fp16 as GPTQ checkpoints do. Import:
// every quantized layer of the file is unpacked (unpackGPTQ / unpackAWQ
// check shapes, g_idx ranges, padding and symmetric zeros) and repacked
// into a layout the CPU lowering executes. Going through the unpacked form
// in both directions keeps one set of tested packers responsible for the
// bits, and makes the checks of a hostile file the same as the checks of
// the packers' own round trips.
//
//===----------------------------------------------------------------------===//

#include "qc/Import/QuantizedCheckpoint.h"

#include "LLM/IR/LLMOps.h"
#include "WQ/IR/WQOps.h"
#include "qc/runtime/HFCheckpoint.h"
#include "qc/runtime/Json.h"
#include "qc/runtime/Safetensors.h"

#include "mlir/IR/Builders.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <tuple>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

using namespace mlir;
using namespace mlir::qc;
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

//===----------------------------------------------------------------------===//
// Small helpers
//===----------------------------------------------------------------------===//

template <typename T>
std::vector<uint8_t> rawBytes(const std::vector<T> &values) {
  std::vector<uint8_t> bytes(values.size() * sizeof(T));
  if (!bytes.empty())
    std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

template <typename T>
std::vector<T> fromBytes(const uint8_t *data, size_t count) {
  std::vector<T> out(count);
  if (count)
    std::memcpy(out.data(), data, count * sizeof(T));
  return out;
}

std::string shapeString(const std::vector<int64_t> &shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

bool endsWith(const std::string &s, const std::string &suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string joinPath(const std::string &dir, const std::string &name) {
  return dir.empty() || dir.back() == '/' ? dir + name : dir + "/" + name;
}

/// The name of the llm.param defining `v`, or empty.
std::string paramName(Value v) {
  if (!v)
    return "";
  if (auto p = v.getDefiningOp<llm::ParamOp>())
    return p.getName().str();
  return "";
}

/// A parameter as stored: a packed tensor, or an fp32 one (the overlay
/// loader files F32 tensors, such as f32 scales, with the float weights).
struct StoredTensor {
  DType dtype = DType::U8;
  std::vector<int64_t> shape;
  const uint8_t *data = nullptr;
  size_t bytes = 0;
};

Status findStored(const ModelWeights &w, const std::string &name,
                  StoredTensor &out) {
  auto p = w.packed.find(name);
  if (p != w.packed.end()) {
    out = {p->second.dtype, p->second.shape, p->second.bytes.data(),
           p->second.bytes.size()};
    return Status::ok();
  }
  if (const ::qc::HostTensor *t = w.find(name)) {
    out = {DType::F32, t->shape,
           reinterpret_cast<const uint8_t *>(t->data.data()),
           t->data.size() * sizeof(float)};
    return Status::ok();
  }
  return Status::error("tensor '" + name +
                       "' is in neither the checkpoint nor the overlay");
}

Status expectTensor(const StoredTensor &t, const std::string &name,
                    const std::vector<DType> &dtypes,
                    const std::vector<int64_t> &shape) {
  if (std::find(dtypes.begin(), dtypes.end(), t.dtype) == dtypes.end())
    return Status::error("tensor '" + name + "' has dtype " +
                         ::qc::dtypeName(t.dtype) + ", expected " +
                         ::qc::dtypeName(dtypes[0]));
  if (t.shape != shape)
    return Status::error("tensor '" + name + "' has shape " +
                         shapeString(t.shape) + ", expected " +
                         shapeString(shape));
  return Status::ok();
}

/// Float values of an F16/BF16/F32 tensor.
std::vector<float> decodeFloats(const StoredTensor &t) {
  size_t n = t.bytes / (::qc::dtypeBits(t.dtype) / 8);
  std::vector<float> out(n);
  if (t.dtype == DType::F32) {
    std::memcpy(out.data(), t.data, n * sizeof(float));
    return out;
  }
  std::vector<uint16_t> halves = fromBytes<uint16_t>(t.data, n);
  for (size_t i = 0; i < n; ++i)
    out[i] = t.dtype == DType::F16 ? ::qc::f16ToF32(halves[i])
                                   : ::qc::bf16ToF32(halves[i]);
  return out;
}

quant::ScaleDType scaleDTypeOf(Type t) {
  if (t.isF16())
    return quant::ScaleDType::F16;
  if (t.isBF16())
    return quant::ScaleDType::BF16;
  return quant::ScaleDType::F32;
}

/// True for the output projections a LLaMA-family decoder has; the
/// modelTensorSpecs names of their weights end in "_proj.weight".
bool isProjectionWeight(const std::string &name) {
  return endsWith(name, "_proj.weight");
}

/// srcOfDst[d] = the interleaved channel that rotate_half channel d comes
/// from, derived from the float export's own row permutation so the two
/// exports cannot disagree.
std::vector<int64_t> ropePermutation(int64_t heads, int64_t headDim) {
  std::vector<float> index(static_cast<size_t>(heads * headDim));
  for (size_t i = 0; i < index.size(); ++i)
    index[i] = static_cast<float>(i);
  std::vector<float> permuted(index.size());
  ::qc::permuteInterleavedToHalfSplit(index.data(), permuted.data(), heads,
                                      headDim, 1);
  std::vector<int64_t> srcOfDst(index.size());
  for (size_t d = 0; d < index.size(); ++d)
    srcOfDst[d] = static_cast<int64_t>(permuted[d]);
  return srcOfDst;
}

} // namespace

void mlir::qc::permuteQuantizedRows(QuantizedWeight &q,
                                    const std::vector<int64_t> &srcOfDst) {
  const int64_t N = q.rows, K = q.cols, ng = q.numGroups();
  QuantizedWeight p = q;
  for (int64_t d = 0; d < N; ++d) {
    int64_t s = srcOfDst[d];
    std::memcpy(p.codes.data() + d * K, q.codes.data() + s * K,
                static_cast<size_t>(K));
    for (int64_t g = 0; g < ng; ++g) {
      p.scales[g * N + d] = q.scales[g * N + s];
      p.zeros[g * N + d] = q.zeros[g * N + s];
    }
  }
  q = std::move(p);
}


//===----------------------------------------------------------------------===//
// Reading a wq.linear back
//===----------------------------------------------------------------------===//

Status mlir::qc::readQuantizedLayer(Operation *op, const ModelWeights &weights,
                                    std::string &layer, QuantizedWeight &out) {
  auto lin = dyn_cast<wq::LinearOp>(op);
  if (!lin)
    return Status::error("not a wq.linear op");
  std::string qwName = paramName(lin.getQweight());
  if (!endsWith(qwName, ".qweight"))
    return Status::error("a wq.linear's qweight is not an llm.param named "
                         "'<layer>.qweight'");
  layer = qwName.substr(0, qwName.size() - strlen(".qweight"));
  auto fail = [&](const Status &s) {
    return s.withContext("layer '" + layer + "'");
  };
  if (lin.getCodebook())
    return fail(Status::error(
        "has a codebook (NF4): its codes are not a uniform integer grid, so "
        "no GPTQ/AWQ-style tensors can hold them"));

  const int bits = static_cast<int>(lin.getBits());
  const int64_t G = lin.getGroupSize(), K = lin.getInFeatures(),
                N = lin.getOutFeatures();
  const int64_t ng = wq::getNumGroups(K, G);
  const bool sym = lin.getSym();
  const wq::Layout layout = lin.getLayout();

  StoredTensor qw, sc, zs, gi;
  std::string scName = paramName(lin.getScales()),
              zName = paramName(lin.getZeros()),
              gName = paramName(lin.getGIdx());
  if (scName.empty() || (lin.getZeros() && zName.empty()) ||
      (lin.getGIdx() && gName.empty()))
    return fail(Status::error("a packed operand is not an llm.param"));
  QC_RETURN_IF_ERROR(fail(findStored(weights, qwName, qw)));
  QC_RETURN_IF_ERROR(fail(findStored(weights, scName, sc)));
  auto qwShape = wq::getQWeightShape(layout, bits, K, N);
  QC_RETURN_IF_ERROR(
      fail(expectTensor(qw, qwName, {DType::I32}, {qwShape[0], qwShape[1]})));
  QC_RETURN_IF_ERROR(fail(expectTensor(
      sc, scName, {DType::F16, DType::BF16, DType::F32}, {ng, N})));
  std::vector<float> scales = decodeFloats(sc);
  std::vector<int32_t> gIdx;
  if (!gName.empty()) {
    QC_RETURN_IF_ERROR(fail(findStored(weights, gName, gi)));
    QC_RETURN_IF_ERROR(fail(expectTensor(gi, gName, {DType::I32}, {K})));
    gIdx = fromBytes<int32_t>(gi.data, static_cast<size_t>(K));
  }
  bool floatZeros = false;
  if (!zName.empty()) {
    QC_RETURN_IF_ERROR(fail(findStored(weights, zName, zs)));
    floatZeros = zs.dtype != DType::I32;
    int64_t cols = layout == wq::Layout::gptq && !floatZeros
                       ? quant::packedWordCount(N, bits)
                       : N;
    QC_RETURN_IF_ERROR(fail(expectTensor(
        zs, zName,
        floatZeros ? std::vector<DType>{DType::F32, DType::F16, DType::BF16}
                   : std::vector<DType>{DType::I32},
        {ng, cols})));
  }

  if (layout == wq::Layout::gptq) {
    quant::GPTQTensors t;
    t.bits = bits;
    t.groupSize = G;
    t.sym = sym;
    t.format = quant::GPTQFormat::V1;
    t.inFeatures = t.K = K;
    t.N = N;
    t.numGroups = ng;
    t.qweight = fromBytes<int32_t>(qw.data, qw.bytes / 4);
    // unpackGPTQ takes fp16 patterns; the real values are restored below,
    // so scales of other dtypes are not rounded.
    t.scales.resize(scales.size());
    for (size_t i = 0; i < scales.size(); ++i)
      t.scales[i] = ::qc::f32ToF16(std::isfinite(scales[i]) ? scales[i] : 0.0f);
    if (!zName.empty() && !floatZeros) {
      t.qzeros = fromBytes<int32_t>(zs.data, zs.bytes / 4);
    } else {
      // Symmetric layers carry no zeros in the IR; v1 stores 2^(b-1) as
      // 2^(b-1) - 1. Fractional (HQQ) zeros are kept unpacked as floats in
      // the gptq layout: unpack with a stand-in (stored 0, decoded 1) and
      // put the real values back below.
      std::vector<uint8_t> row(static_cast<size_t>(N),
                               sym ? (1 << (bits - 1)) - 1 : 0);
      int64_t cols = quant::packedWordCount(N, bits);
      t.qzeros.assign(static_cast<size_t>(ng * cols), 0);
      for (int64_t g = 0; g < ng; ++g)
        quant::packCodeStream(row.data(), 1, N, bits,
                              t.qzeros.data() + g * cols, 1);
    }
    t.gIdx = gIdx;
    if (t.gIdx.empty()) {
      t.gIdx.resize(static_cast<size_t>(K));
      for (int64_t k = 0; k < K; ++k)
        t.gIdx[k] = static_cast<int32_t>(G > 0 ? k / G : 0);
    }
    QC_RETURN_IF_ERROR(fail(quant::unpackGPTQ(t, out)));
    out.scales = scales;
    out.scaleDType = scaleDTypeOf(lin.getScaleDtype());
    if (floatZeros)
      out.zeros = decodeFloats(zs);
  } else {
    quant::RowsTensors t;
    t.bits = bits;
    t.groupSize = G;
    t.sym = sym;
    t.scaleDType = scaleDTypeOf(lin.getScaleDtype());
    t.N = N;
    t.K = K;
    t.numGroups = ng;
    t.qweight = fromBytes<int32_t>(qw.data, qw.bytes / 4);
    t.scales = scales;
    if (!zName.empty()) {
      if (floatZeros)
        t.floatZeros = decodeFloats(zs);
      else
        t.zeros = fromBytes<int32_t>(zs.data, zs.bytes / 4);
    }
    t.gIdx = gIdx;
    QC_RETURN_IF_ERROR(fail(quant::unpackRows(t, out)));
  }
  return fail(out.verify());
}

//===----------------------------------------------------------------------===//
// Export
//===----------------------------------------------------------------------===//

namespace {

/// One file of a checkpoint folder, in memory until the folder is written.
struct FolderFile {
  std::string name;
  std::vector<uint8_t> bytes;
};

/// Whether `dir` may be replaced: empty, or a checkpoint folder (holds a
/// config.json and only regular files). Anything else is someone's
/// directory and is never deleted.
Status checkReplaceable(const std::string &dir) {
  std::error_code ec;
  bool hasConfig = false, empty = true;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end;
       it.increment(ec)) {
    empty = false;
    if (!it->is_regular_file(ec) || it->is_symlink(ec))
      return Status::error(dir + ": exists and holds '" +
                           it->path().filename().string() +
                           "', which is not a regular file; refusing to "
                           "replace a folder that is not a checkpoint");
    hasConfig |= it->path().filename() == "config.json";
  }
  if (ec)
    return Status::error(dir + ": cannot list the folder: " + ec.message());
  if (!empty && !hasConfig)
    return Status::error(dir + ": exists, is not empty and has no "
                               "config.json; refusing to replace a folder "
                               "that is not a checkpoint");
  return Status::ok();
}

void fsyncPath(const std::string &path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

/// Writes `files` as the folder `dir` so that `dir` is, at every moment,
/// either absent / the previous folder or the complete new one: the files
/// go into a fresh sibling temporary folder (each fsynced by
/// writeFileAtomically), which is then renamed to `dir`, or atomically
/// exchanged with an existing `dir` whose old contents are then removed.
Status writeFolderAtomically(std::string dir,
                             const std::vector<FolderFile> &files) {
  while (dir.size() > 1 && dir.back() == '/')
    dir.pop_back();
  struct stat st;
  bool exists = ::lstat(dir.c_str(), &st) == 0;
  if (exists && !S_ISDIR(st.st_mode))
    return Status::error(dir + ": exists and is not a folder");
  if (exists)
    QC_RETURN_IF_ERROR(checkReplaceable(dir));
  std::string parent = fs::path(dir).parent_path().string();
  if (parent.empty())
    parent = ".";
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec)
    return Status::error(parent +
                         ": cannot create the folder: " + ec.message());

  std::string tmpl = dir + ".tmp-XXXXXX";
  if (!::mkdtemp(&tmpl[0])) {
    int err = errno;
    return Status::error(
        dir +
        ": cannot create a temporary folder beside it: " + std::strerror(err));
  }
  const std::string tmp = tmpl;
  auto cleanup = [&](Status s) {
    std::error_code ignored;
    fs::remove_all(tmp, ignored);
    return s;
  };
  // mkdtemp makes the folder 0700; the published checkpoint gets the mode
  // mkdir would give it under the user's umask.
  if (::chmod(tmp.c_str(), ::qc::permissionsUnderUmask(0777)) != 0) {
    int err = errno;
    return cleanup(Status::error(dir + ": cannot set the folder's "
                                       "permissions: " +
                                 std::strerror(err)));
  }
  for (const FolderFile &f : files)
    if (Status s = ::qc::writeFileAtomically(
            joinPath(tmp, f.name), {{f.bytes.data(), f.bytes.size()}});
        !s)
      return cleanup(s);
  fsyncPath(tmp);
  if (!exists) {
    if (::rename(tmp.c_str(), dir.c_str()) != 0) {
      int err = errno;
      return cleanup(Status::error(dir +
                                   ": cannot rename the finished "
                                   "temporary folder into place: " +
                                   std::strerror(err)));
    }
  } else if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, dir.c_str(),
                         RENAME_EXCHANGE) != 0) {
    int err = errno;
    return cleanup(Status::error(
        dir +
        ": cannot atomically exchange the existing folder with the "
        "new checkpoint (" +
        std::strerror(err) + "); the old folder is unchanged"));
  }
  // After an exchange `tmp` holds the previous checkpoint.
  std::error_code ignored;
  fs::remove_all(tmp, ignored);
  fsyncPath(parent);
  return Status::ok();
}


} // namespace

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

/// `^name$` as a Python regular expression matching exactly `name`
/// (GPTQModel matches `dynamic` keys with re.match against module names).
std::string exactPattern(const std::string &name) {
  std::string out = "^";
  for (char c : name) {
    if (std::strchr(".^$*+?()[]{}|\\", c))
      out += '\\';
    out += c;
  }
  return out + "$";
}

/// A tensor of a checkpoint being written, before it is assigned a shard.
struct OutTensor {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

/// The heads whose rows the q or k projection `name` (weight or bias) of a
/// llama2.c (interleaved RoPE) model must be permuted over to reach
/// transformers' rotate_half order; 0 for every other tensor and model.
int64_t interleavedRopeHeads(const ModelConfig &cfg, const std::string &name) {
  if (cfg.ropeLayout != ::qc::RopeLayout::Interleaved)
    return 0;
  if (name.find(".self_attn.q_proj.") != std::string::npos)
    return cfg.nHeads;
  if (name.find(".self_attn.k_proj.") != std::string::npos)
    return cfg.nKVHeads;
  return 0;
}

/// Appends, in fp16 (the dtype quantized checkpoints store them in), every
/// tensor the model's config implies except the weights of the `quantized`
/// layers: embeddings, norms, classifier, biases and float decoder linears,
/// q/k rows in rotate_half order. Fails naming the tensor when one is
/// missing, mis-shaped or holds a value fp16 cannot represent; `format`
/// names the checkpoint kind in that message.
Status appendFloatTensorsF16(const ModelWeights &weights,
                             const std::map<std::string, QuantizedWeight> &quantized,
                             const std::string &format,
                             std::vector<OutTensor> &tensors) {
  const ModelConfig &cfg = weights.config;
  for (const ::qc::TensorSpec &spec : ::qc::modelTensorSpecs(cfg)) {
    if (isProjectionWeight(spec.name) &&
        quantized.count(spec.name.substr(0, spec.name.size() - 7)))
      continue;
    const ::qc::HostTensor *t = weights.find(spec.name);
    if (!t || t->shape != spec.shape)
      return Status::error("tensor '" + spec.name +
                           "' is missing from the model's weights or has the "
                           "wrong shape");
    std::vector<float> data = t->data;
    if (int64_t heads = interleavedRopeHeads(cfg, spec.name))
      ::qc::permuteInterleavedToHalfSplit(
          t->data.data(), data.data(), heads, cfg.headDim,
          spec.shape.size() == 2 ? spec.shape[1] : 1);
    std::vector<uint16_t> halves(data.size());
    for (size_t i = 0; i < data.size(); ++i) {
      if (!std::isfinite(data[i]) || std::fabs(data[i]) > 65504.0f)
        return Status::error("tensor '" + spec.name + "' value " +
                             std::to_string(data[i]) + " at flat index " +
                             std::to_string(i) +
                             " does not fit in fp16, the dtype of " + format +
                             " checkpoints");
      halves[i] = ::qc::f32ToF16(data[i]);
    }
    tensors.push_back({spec.name, DType::F16, spec.shape, rawBytes(halves)});
  }
  return Status::ok();
}

/// Splits `tensors` (in name order) into safetensors files of at most
/// `maxShardBytes` of tensor data each (0 = one model.safetensors), the way
/// writeHFCheckpoint and transformers' save_pretrained shard: greedily, a
/// tensor above the limit alone in its shard, plus
/// model.safetensors.index.json when there is more than one.
Status shardTensors(std::vector<OutTensor> tensors, uint64_t maxShardBytes,
                    const std::map<std::string, std::string> &metadata,
                    std::vector<FolderFile> &files) {
  std::sort(tensors.begin(), tensors.end(),
            [](const OutTensor &a, const OutTensor &b) {
              return a.name < b.name;
            });
  std::vector<std::vector<const OutTensor *>> plan(1);
  uint64_t inShard = 0, total = 0;
  for (const OutTensor &t : tensors) {
    if (maxShardBytes && !plan.back().empty() &&
        inShard + t.bytes.size() > maxShardBytes) {
      plan.emplace_back();
      inShard = 0;
    }
    plan.back().push_back(&t);
    inShard += t.bytes.size();
    total += t.bytes.size();
  }
  json::Value weightMap = json::Value::object();
  for (size_t i = 0; i < plan.size(); ++i) {
    char name[64];
    if (plan.size() == 1)
      std::snprintf(name, sizeof(name), "model.safetensors");
    else
      std::snprintf(name, sizeof(name), "model-%05zu-of-%05zu.safetensors",
                    i + 1, plan.size());
    ::qc::SafetensorsWriter writer;
    for (const OutTensor *t : plan[i]) {
      QC_RETURN_IF_ERROR(writer.addView(t->name, t->dtype, t->shape,
                                        t->bytes.data(), t->bytes.size()));
      weightMap.set(t->name, json::Value::string(name));
    }
    QC_RETURN_IF_ERROR(writer.setMetadata(metadata));
    FolderFile f;
    f.name = name;
    QC_RETURN_IF_ERROR(writer.serialize(f.bytes));
    files.push_back(std::move(f));
  }
  if (plan.size() > 1) {
    json::Value meta = json::Value::object();
    meta.set("total_size", json::Value::unsignedInteger(total));
    json::Value index = json::Value::object();
    index.set("metadata", std::move(meta));
    index.set("weight_map", std::move(weightMap));
    json::WriteOptions pretty;
    pretty.pretty = true;
    std::string text = json::write(index, pretty) + "\n";
    files.push_back({"model.safetensors.index.json",
                     std::vector<uint8_t>(text.begin(), text.end())});
  }
  return Status::ok();
}

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
    tensors.push_back({name + ".qweight", DType::I32, {t.qweightRows(), N},
                       rawBytes(t.qweight)});
    tensors.push_back({name + ".qzeros", DType::I32, {ng, t.qzerosCols()},
                       rawBytes(t.qzeros)});
    tensors.push_back(
        {name + ".scales", DType::F16, {ng, N}, rawBytes(t.scales)});
    tensors.push_back({name + ".g_idx", DType::I32,
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
  if (Status st = appendFloatTensorsF16(weights, layers, "GPTQ", tensors);
      !st)
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

//===----------------------------------------------------------------------===//
// compressed-tensors export
//===----------------------------------------------------------------------===//

namespace {

/// One compressed-tensors weight scheme (a config group).
struct CTScheme {
  int bits;
  int64_t groupSize; // -1: channel strategy
  bool sym;
  bool actOrder;
  bool operator<(const CTScheme &o) const {
    return std::tie(bits, groupSize, sym, actOrder) <
           std::tie(o.bits, o.groupSize, o.sym, o.actOrder);
  }
};

/// The QuantizationArgs of `s` as compressed-tensors serializes them
/// (compressed_tensors/quantization/quant_args.py, QuantizationArgs).
json::Value ctWeightsArgs(const CTScheme &s) {
  json::Value w = json::Value::object();
  w.set("actorder",
        s.actOrder ? json::Value::string("group") : json::Value());
  w.set("block_structure", json::Value());
  w.set("dynamic", json::Value::boolean(false));
  w.set("group_size", s.groupSize > 0 ? json::Value::integer(s.groupSize)
                                      : json::Value());
  w.set("num_bits", json::Value::integer(s.bits));
  w.set("observer", json::Value::string("minmax"));
  w.set("observer_kwargs", json::Value::object());
  w.set("strategy",
        json::Value::string(s.groupSize > 0 ? "group" : "channel"));
  w.set("symmetric", json::Value::boolean(s.sym));
  w.set("type", json::Value::string("int"));
  return w;
}

} // namespace

Status mlir::qc::exportCompressedTensors(ModuleOp module,
                                         const ModelWeights &weights,
                                         const std::string &dir,
                                         const CompressedTensorsExportOptions
                                             &options,
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
    tensors.push_back({name + ".weight_packed", DType::I32, {N, words},
                       rawBytes(packed)});
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
      tensors.push_back({name + ".weight_zero_point", DType::I32, {zrows, ng},
                         rawBytes(zp)});
    } else {
      for (float z : q.zeros)
        if (z != static_cast<float>(1 << (q.bits - 1)))
          return where("a symmetric zero point is not 2^(b-1)");
    }
    const bool actOrder = !q.hasTrivialGIdx();
    if (actOrder) {
      std::vector<int32_t> g(static_cast<size_t>(K));
      for (int64_t k = 0; k < K; ++k)
        g[k] = static_cast<int32_t>(q.groupOf(k));
      tensors.push_back(
          {name + ".weight_g_idx", DType::I32, {K}, rawBytes(g)});
    }
    groups[{q.bits, q.groupSize, q.sym, actOrder}].push_back(name);
  }

  if (Status st = appendFloatTensorsF16(weights, layers, "compressed-tensors",
                                       tensors);
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

std::vector<std::string> mlir::qc::hfTokenizerFiles(const std::string &dir) {
  std::vector<std::string> out;
  for (const char *name : {"tokenizer.json", "tokenizer.model",
                           "tokenizer_config.json", "special_tokens_map.json",
                           "added_tokens.json", "generation_config.json"}) {
    std::error_code ec;
    std::string path = joinPath(dir, name);
    if (fs::is_regular_file(path, ec))
      out.push_back(path);
  }
  return out;
}

//===----------------------------------------------------------------------===//
// Import
//===----------------------------------------------------------------------===//

namespace {

/// One GPTQModel `dynamic` entry: a Python regular expression matched
/// (re.match: anchored at the start) against module names, "-:" excluding
/// the module from quantization, else ("+:" or no prefix) overriding the
/// listed fields.
struct DynamicRule {
  std::string key;
  std::string pattern;
  bool exclude = false;
  std::optional<int> bits;
  std::optional<int64_t> groupSize;
  std::optional<bool> sym;
  std::optional<bool> descAct;
};

/// The parts of a quantization_config the loader acts on.
struct Scheme {
  std::string method; // "gptq" or "awq"
  int bits = 4;
  int64_t groupSize = 128;
  bool sym = true;
  bool descAct = false;
  quant::GPTQFormat format = quant::GPTQFormat::V1;
  std::vector<DynamicRule> dynamic;
};

/// Whether the Python regular expression `pattern` matches a prefix of
/// `name` (re.match). PCRE2 reads the syntax GPTQModel's patterns use.
Status pythonReMatch(const std::string &pattern, const std::string &name,
                     bool &matched) {
  int code = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code *re = pcre2_compile(
      reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
      PCRE2_UTF, &code, &offset, nullptr);
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
Status resolveScheme(const std::string &path, const Scheme &s,
                     const std::string &layer, Scheme &out, bool &excluded) {
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

/// Reads quantization_config (object `q` of `path`). Synonyms as §8.1:
/// w_bit for bits, q_group_size for group_size; GPTQModel's "format" for
/// checkpoint_format.
Status parseScheme(const std::string &path, const json::Value &q, Scheme &out) {
  auto fail = [&](const std::string &field, const std::string &what) {
    return Status::error(path + ": quantization_config field \"" + field +
                         "\" " + what);
  };
  if (!q.isObject())
    return Status::error(path + ": quantization_config must be an object");
  auto get = [&](std::initializer_list<const char *> keys,
                 std::string &which) -> const json::Value * {
    for (const char *k : keys)
      if (const json::Value *v = q.find(k); v && !v->isNull()) {
        which = k;
        return v;
      }
    which = *keys.begin();
    return nullptr;
  };
  std::string key;
  const json::Value *method = get({"quant_method"}, key);
  if (!method || !method->isString())
    return fail(key, "is missing or not a string");
  out.method = method->asString();
  if (out.method != "gptq" && out.method != "awq")
    return fail(key, "is " + json::quote(out.method) +
                         ", which is not supported (supported: gptq, awq)");

  const json::Value *bits = get({"bits", "w_bit"}, key);
  if (!bits || !bits->isInt64())
    return fail(key, "is missing or not an integer");
  int64_t b = bits->asInt64();
  if (b != 2 && b != 3 && b != 4 && b != 8)
    return fail(key, "is " + std::to_string(b) +
                         ", which is not supported (2, 3, 4 or 8)");
  out.bits = static_cast<int>(b);
  const json::Value *group = get({"group_size", "q_group_size"}, key);
  if (!group || !group->isInt64())
    return fail(key, "is missing or not an integer");
  out.groupSize = group->asInt64();
  if (out.groupSize != -1 && out.groupSize <= 0)
    return fail(key, "is " + std::to_string(out.groupSize) +
                         " (expected -1 or a positive group size)");

  if (out.method == "awq") {
    const json::Value *version = get({"version"}, key);
    std::string v =
        version && version->isString() ? version->asString() : "gemm";
    std::transform(v.begin(), v.end(), v.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    if (v != "gemm")
      return fail(key, "is " + json::quote(v) +
                           ": only AutoAWQ's \"gemm\" packing is supported "
                           "(gemv, gemv_fast, marlin and exllama pack "
                           "differently)");
    if (out.bits != 4)
      return fail("bits", "is " + std::to_string(out.bits) +
                              ": the AWQ GEMM layout is 4-bit only");
    const json::Value *zp = get({"zero_point"}, key);
    if (zp && (!zp->isBool() || !zp->asBool()))
      return fail(key, "must be true: AWQ GEMM checkpoints without zero "
                       "points are not supported");
    out.sym = false;
    return Status::ok();
  }

  const json::Value *desc = get({"desc_act"}, key);
  if (desc && !desc->isBool())
    return fail(key, "must be true or false");
  out.descAct = desc && desc->asBool();
  const json::Value *sym = get({"sym"}, key);
  if (sym && !sym->isBool())
    return fail(key, "must be true or false");
  out.sym = !sym || sym->asBool();
  const json::Value *marlin = get({"is_marlin_format"}, key);
  if (marlin && marlin->isBool() && marlin->asBool())
    return fail(key, "is true: Marlin-packed tensors are not supported");
  const json::Value *format = get({"checkpoint_format", "format"}, key);
  std::string f = format && format->isString() ? format->asString() : "gptq";
  if (format && !format->isString())
    return fail(key, "must be a string");
  if (f == "gptq")
    out.format = quant::GPTQFormat::V1;
  else if (f == "gptq_v2")
    out.format = quant::GPTQFormat::V2;
  else
    return fail(key, "is " + json::quote(f) +
                         ", which is not supported (gptq or gptq_v2; marlin "
                         "and bitblas are kernel repacks)");
  const json::Value *dynamic = get({"dynamic"}, key);
  if (dynamic && !dynamic->isObject())
    return fail(key, "must be an object of per-module overrides");
  if (dynamic) {
    for (const auto &[k, v] : dynamic->asObject()) {
      DynamicRule r;
      r.key = k;
      r.exclude = k.rfind("-:", 0) == 0;
      r.pattern = k.rfind("-:", 0) == 0 || k.rfind("+:", 0) == 0
                      ? k.substr(2)
                      : k;
      std::string where = "dynamic\" key " + json::quote(k) + " field \"";
      if (!v.isObject())
        return fail("dynamic", "entry " + json::quote(k) +
                                   " must be an object of overrides");
      bool ignored = false;
      if (Status st = pythonReMatch(r.pattern, "", ignored); !st)
        return fail("dynamic", "key " + json::quote(k) + ": " + st.message());
      if (const json::Value *b = v.find("bits")) {
        if (!b->isInt64() || (b->asInt64() != 2 && b->asInt64() != 3 &&
                              b->asInt64() != 4 && b->asInt64() != 8))
          return fail(where + "bits",
                      "is " + json::write(*b) +
                          ", which is not supported (2, 3, 4 or 8)");
        r.bits = static_cast<int>(b->asInt64());
      }
      if (const json::Value *g = v.find("group_size")) {
        if (!g->isInt64() || (g->asInt64() != -1 && g->asInt64() <= 0))
          return fail(where + "group_size",
                      "is " + json::write(*g) +
                          " (expected -1 or a positive group size)");
        r.groupSize = g->asInt64();
      }
      for (const char *f : {"sym", "desc_act"}) {
        const json::Value *b = v.find(f);
        if (!b)
          continue;
        if (!b->isBool())
          return fail(where + f, "must be true or false");
        (std::string(f) == "sym" ? r.sym : r.descAct) = b->asBool();
      }
      out.dynamic.push_back(std::move(r));
    }
  }
  const json::Value *pack = get({"pack_dtype"}, key);
  if (pack && (!pack->isString() || pack->asString() != "int32"))
    return fail(key, "must be \"int32\"");
  return Status::ok();
}

/// A checkpoint tensor located in its file, with the file's path for
/// messages.
struct FileTensor {
  const ::qc::SafetensorsFile *file = nullptr;
  const ::qc::TensorInfo *info = nullptr;
  std::string where; // "<dir>/<file>: tensor '<name>'"
};

class CheckpointReader {
public:
  CheckpointReader(const std::string &dir, ::qc::HFTensorFiles &files)
      : dir(dir), files(files) {}

  bool has(const std::string &name) const { return files.tensors.count(name); }

  /// Looks up `name` and marks it consumed.
  Status get(const std::string &name, FileTensor &out) {
    auto it = files.tensors.find(name);
    if (it == files.tensors.end())
      return Status::error(dir + ": tensor '" + name + "' is missing");
    used.insert(name);
    out.file = it->second->file.get();
    out.info = out.file->find(name);
    out.where = joinPath(dir, it->second->fileName) + ": tensor '" + name + "'";
    return Status::ok();
  }

  /// An I32 tensor of exactly `shape`.
  Status readI32(const std::string &name, const std::vector<int64_t> &shape,
                 std::vector<int32_t> &out, const std::string &why) {
    FileTensor t;
    QC_RETURN_IF_ERROR(get(name, t));
    QC_RETURN_IF_ERROR(checkDType(t, DType::I32));
    if (t.info->shape != shape)
      return Status::error(t.where + " has shape " +
                           shapeString(t.info->shape) + ", expected " +
                           shapeString(shape) + " (" + why + ")");
    out = fromBytes<int32_t>(t.file->tensorData(*t.info),
                             static_cast<size_t>(t.info->numElements()));
    return Status::ok();
  }

  /// fp16 scales of exactly `shape`, as bit patterns.
  Status readF16(const std::string &name, const std::vector<int64_t> &shape,
                 std::vector<uint16_t> &out, const std::string &why) {
    FileTensor t;
    QC_RETURN_IF_ERROR(get(name, t));
    QC_RETURN_IF_ERROR(checkDType(t, DType::F16));
    if (t.info->shape != shape)
      return Status::error(t.where + " has shape " +
                           shapeString(t.info->shape) + ", expected " +
                           shapeString(shape) + " (" + why + ")");
    out = fromBytes<uint16_t>(t.file->tensorData(*t.info),
                              static_cast<size_t>(t.info->numElements()));
    return Status::ok();
  }

  Status checkDType(const FileTensor &t, DType want) {
    if (t.info->dtype != want)
      return Status::error(t.where + " has dtype " +
                           ::qc::dtypeName(t.info->dtype) + ", expected " +
                           ::qc::dtypeName(want));
    return Status::ok();
  }

  /// A float tensor converted to fp32 (finite), of exactly `shape`.
  Status readFloat(const std::string &name, const std::vector<int64_t> &shape,
                   ::qc::HostTensor &out) {
    FileTensor t;
    QC_RETURN_IF_ERROR(get(name, t));
    if (t.info->shape != shape)
      return Status::error(t.where + " has shape " +
                           shapeString(t.info->shape) + ", expected " +
                           shapeString(shape));
    out.shape = shape;
    return t.file->readAsF32(*t.info, out.data, true);
  }

  /// The first tensor that nothing consumed, if any.
  Status checkAllUsed() const {
    for (const auto &kv : files.tensors)
      if (!used.count(kv.first) && !::qc::isIgnoredHFBuffer(kv.first))
        return Status::error(
            joinPath(dir, kv.second->fileName) + ": unexpected tensor '" +
            kv.first +
            "': it is not a parameter of the model config.json describes, "
            "nor a qweight/qzeros/scales/g_idx of one of its quantized "
            "linear layers");
    return Status::ok();
  }

  std::string fileOf(const std::string &name) const {
    auto it = files.tensors.find(name);
    return it == files.tensors.end() ? dir
                                     : joinPath(dir, it->second->fileName);
  }

private:
  const std::string &dir;
  ::qc::HFTensorFiles &files;
  std::set<std::string> used;
};

/// Reads the GPTQ tensors of `layer` ([N, K] weight) into `q`.
Status readGPTQLayer(CheckpointReader &r, const Scheme &s,
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
      return Status::error(gi.where + " has shape " +
                           shapeString(gi.info->shape) + ", expected [" +
                           std::to_string(K) + "] (in_features" +
                           (Kp != K ? ", or the " + std::to_string(Kp) +
                                          " input channels the " +
                                          std::to_string(rows) +
                                          " qweight rows hold"
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
  const std::string groups =
      "ceil(in_features " + std::to_string(K) + " / group_size " +
      std::to_string(s.groupSize) + ") = " + std::to_string(t.numGroups) +
      " groups";
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

/// Reads the AWQ GEMM tensors of `layer` ([N, K] weight) into `q`.
Status readAWQLayer(CheckpointReader &r, const Scheme &s,
                    const std::string &layer, int64_t N, int64_t K,
                    QuantizedWeight &q) {
  const std::string file = r.fileOf(layer + ".qweight");
  if (N % 8 != 0)
    return Status::error(file + ": layer '" + layer + "': out_features " +
                         std::to_string(N) +
                         " is not a multiple of 8, which AWQ GEMM packs per "
                         "word");
  if (s.groupSize > 0 && K % s.groupSize != 0)
    return Status::error(
        file + ": layer '" + layer + "': in_features " + std::to_string(K) +
        " is not a multiple of group_size " + std::to_string(s.groupSize) +
        " (AWQ needs K % G == 0)");
  quant::AWQTensors t;
  t.K = K;
  t.N = N;
  t.groupSize = s.groupSize;
  t.sym = false;
  t.numGroups = s.groupSize > 0 ? K / s.groupSize : 1;
  QC_RETURN_IF_ERROR(r.readI32(layer + ".qweight", {K, N / 8}, t.qweight,
                               "in_features x out_features/8, packed along "
                               "out_features"));
  if (!r.has(layer + ".qzeros"))
    return Status::error(file + ": tensor '" + layer + ".qzeros' is missing");
  QC_RETURN_IF_ERROR(r.readI32(layer + ".qzeros", {t.numGroups, N / 8},
                               t.qzeros, "groups x out_features/8"));
  QC_RETURN_IF_ERROR(r.readF16(layer + ".scales", {t.numGroups, N}, t.scales,
                               "groups x out_features"));
  if (Status st = quant::unpackAWQ(t, q); !st)
    return Status::error(file + ": layer '" + layer + "': " + st.message());
  return Status::ok();
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
  Scheme scheme;
  QC_RETURN_IF_ERROR(parseScheme(configPath, qconf, scheme));

  ::qc::HFTensorFiles files;
  QC_RETURN_IF_ERROR(openQuantizedTensorFiles(dir, qconf, files));
  CheckpointReader reader(dir, files);
  ModelWeights w;
  w.config = cfg;
  std::vector<QuantizedLayerInfo> infos;

  if (cfg.tiedEmbeddings && reader.has("lm_head.qweight"))
    return Status::error(reader.fileOf("lm_head.qweight") +
                         ": tensor 'lm_head.qweight': the classifier is "
                         "quantized but config.json has tie_word_embeddings "
                         "true (it would share the float embedding)");
  for (const ::qc::TensorSpec &spec : ::qc::modelTensorSpecs(cfg)) {
    bool linear =
        isProjectionWeight(spec.name) || spec.name == "lm_head.weight";
    std::string layer = endsWith(spec.name, ".weight")
                            ? spec.name.substr(0, spec.name.size() - 7)
                            : spec.name;
    if (!linear || !reader.has(layer + ".qweight")) {
      ::qc::HostTensor t;
      QC_RETURN_IF_ERROR(reader.readFloat(spec.name, spec.shape, t));
      w.tensors[spec.name] = std::move(t);
      continue;
    }
    if (reader.has(spec.name))
      return Status::error(reader.fileOf(spec.name) + ": layer '" + layer +
                           "' has both a float weight and a qweight; the "
                           "checkpoint is ambiguous");
    const int64_t N = spec.shape[0], K = spec.shape[1];
    Scheme layerScheme;
    bool excluded = false;
    QC_RETURN_IF_ERROR(
        resolveScheme(configPath, scheme, layer, layerScheme, excluded));
    if (excluded)
      return Status::error(reader.fileOf(layer + ".qweight") + ": tensor '" +
                           layer +
                           ".qweight': quantization_config \"dynamic\" "
                           "excludes this module from quantization (a \"-:\" "
                           "pattern), yet it is stored quantized");
    QuantizedWeight q;
    QC_RETURN_IF_ERROR(
        scheme.method == "gptq"
            ? readGPTQLayer(reader, layerScheme, layer, N, K, q)
            : readAWQLayer(reader, layerScheme, layer, N, K, q));
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
      return Status::error(reader.fileOf(layer + ".qweight") + ": layer '" +
                           layer + "': " + s.message());
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
                               "linear layer has a qweight tensor");
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
