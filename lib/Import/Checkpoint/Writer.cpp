//===- Writer.cpp - Writing checkpoint folders ----------------------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// What every exporter writes with: float tensors in fp16 (q/k rows in
// rotate_half order), safetensors shards with their index, and the folder
// itself, written under a temporary name and renamed or exchanged into place
// so that a reader never sees half a checkpoint.
//
//===----------------------------------------------------------------------===//

#include "Checkpoint.h"

#include "qc/Import/QuantizedCheckpoint.h"
#include "qc/runtime/HFCheckpoint.h"
#include "qc/runtime/Json.h"
#include "qc/runtime/FileMapping.h"
#include "qc/runtime/OutputSafety.h"
#include "qc/runtime/Safetensors.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

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

namespace mlir::qc::checkpoint {

namespace {

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

} // namespace

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

  // A hidden sibling named after this process (FileMapping.h), after
  // removing what killed runs left for the same folder.
  std::string base = dir;
  while (base.size() > 1 && base.back() == '/')
    base.pop_back();
  ::qc::removeStaleTemps(base);
  std::string tmpl = ::qc::tempSiblingTemplate(base, "tmp");
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
    return cleanup(Status::error(dir +
                                 ": cannot set the folder's "
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
Status
appendFloatTensorsF16(const ModelWeights &weights,
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
        return Status::error(
            "tensor '" + spec.name + "' value " + std::to_string(data[i]) +
            " at flat index " + std::to_string(i) +
            " does not fit in fp16, the dtype of " + format + " checkpoints");
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
  std::sort(
      tensors.begin(), tensors.end(),
      [](const OutTensor &a, const OutTensor &b) { return a.name < b.name; });
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

} // namespace mlir::qc::checkpoint

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
