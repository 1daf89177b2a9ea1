//===- Checkpoint.h - Shared internals of the formats -----------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// The one interface a quantized Hugging Face checkpoint format implements
// to be imported (ImportFormat: its quantization_config fields and how one
// layer's tensors become a QuantizedWeight), the registry that lists the
// formats (Formats.def), and the helpers the format files share: tensor
// lookup and checks, the checkpoint reader, fp16 float tensors, shards and
// atomic folder writes. Private to lib/Import; the public entry points are
// in qc/Import/QuantizedCheckpoint.h.
//
// Adding an import format: one file defining a class derived from
// ImportFormat and `const ImportFormat &get<Name>ImportFormat()`, plus one
// line QC_IMPORT_FORMAT(<Name>) in Formats.def and its source line in
// lib/Import/CMakeLists.txt.
//
//===----------------------------------------------------------------------===//

#ifndef QC_LIB_IMPORT_CHECKPOINT_CHECKPOINT_H
#define QC_LIB_IMPORT_CHECKPOINT_CHECKPOINT_H

#include "qc/Quantization/Algorithms/Packing.h"
#include "qc/runtime/HFCheckpoint.h"
#include "qc/runtime/Json.h"
#include "qc/runtime/Model.h"
#include "qc/runtime/Safetensors.h"
#include "qc/runtime/Status.h"

#include "mlir/IR/Value.h"

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace mlir::qc::checkpoint {

using ::qc::DType;
using ::qc::ModelConfig;
using ::qc::ModelWeights;
using ::qc::Status;
using ::qc::quant::QuantizedWeight;
namespace quant = ::qc::quant;
namespace json = ::qc::json;

class ImportFormat;

//===----------------------------------------------------------------------===//
// Small helpers
//===----------------------------------------------------------------------===//

/// The bytes of `values`, as stored in a safetensors file (little endian).
template <typename T>
std::vector<uint8_t> rawBytes(const std::vector<T> &values) {
  std::vector<uint8_t> out(values.size() * sizeof(T));
  if (!out.empty())
    std::memcpy(out.data(), values.data(), out.size());
  return out;
}

/// `count` values of type T read from `data`.
template <typename T>
std::vector<T> fromBytes(const uint8_t *data, size_t count) {
  std::vector<T> out(count);
  if (count)
    std::memcpy(out.data(), data, count * sizeof(T));
  return out;
}

/// "[a, b]".
std::string shapeString(const std::vector<int64_t> &shape);
/// Whether `s` ends with `suffix`.
bool endsWith(const std::string &s, const std::string &suffix);
/// `dir`/`name`.
std::string joinPath(const std::string &dir, const std::string &name);
/// The name of the llm.param defining `v`, or empty.
std::string paramName(Value v);

/// A parameter as stored: a packed tensor, or an fp32 one (the overlay
/// loader files F32 tensors, such as f32 scales, with the float weights).
struct StoredTensor {
  DType dtype = DType::U8;
  std::vector<int64_t> shape;
  const uint8_t *data = nullptr;
  size_t bytes = 0;
};

/// Finds parameter `name` among the packed tensors, then the float ones.
Status findStored(const ModelWeights &w, const std::string &name,
                  StoredTensor &out);
/// Fails naming `name` unless `t` has one of `dtypes` and exactly `shape`.
Status expectTensor(const StoredTensor &t, const std::string &name,
                    const std::vector<DType> &dtypes,
                    const std::vector<int64_t> &shape);
/// Float values of an F16/BF16/F32 tensor.
std::vector<float> decodeFloats(const StoredTensor &t);
/// The scale dtype of a wq.linear's scale_dtype attribute type.
::qc::quant::ScaleDType scaleDTypeOf(Type t);
/// True for the output projections a LLaMA-family decoder has; the
/// modelTensorSpecs names of their weights end in "_proj.weight".
bool isProjectionWeight(const std::string &name);
/// `^name$` as a Python regular expression matching exactly `name`
/// (GPTQModel matches `dynamic` keys with re.match against module names).
std::string exactPattern(const std::string &name);
/// srcOfDst[d] = the interleaved channel that rotate_half channel d comes
/// from.
std::vector<int64_t> ropePermutation(int64_t heads, int64_t headDim);

//===----------------------------------------------------------------------===//
// Writing
//===----------------------------------------------------------------------===//

/// One file of a checkpoint folder, in memory until the folder is written.
struct FolderFile {
  std::string name;
  std::vector<uint8_t> bytes;
};

/// A tensor of a checkpoint being written, before it is assigned a shard.
struct OutTensor {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

/// Writes `files` as the folder `dir` so that `dir` is, at every moment,
/// either absent / the previous folder or the complete new one (a sibling
/// temporary folder renamed or atomically exchanged into place). An
/// existing `dir` is replaced only if it looks like a checkpoint.
Status writeFolderAtomically(std::string dir,
                             const std::vector<FolderFile> &files);

/// The heads whose rows the q or k projection `name` (weight or bias) of a
/// llama2.c (interleaved RoPE) model must be permuted over to reach
/// transformers' rotate_half order; 0 for every other tensor and model.
int64_t interleavedRopeHeads(const ModelConfig &cfg, const std::string &name);

/// Appends, in fp16, every tensor the model's config implies except the
/// weights of the `quantized` layers (q/k rows in rotate_half order); fails
/// naming the tensor when one is missing, mis-shaped or not representable
/// in fp16; `format` names the checkpoint kind in that message.
Status
appendFloatTensorsF16(const ModelWeights &weights,
                      const std::map<std::string, QuantizedWeight> &quantized,
                      const std::string &format,
                      std::vector<OutTensor> &tensors);

/// Splits `tensors` into safetensors files of at most `maxShardBytes` of
/// tensor data each (0 = one model.safetensors), plus
/// model.safetensors.index.json when there is more than one.
Status shardTensors(std::vector<OutTensor> tensors, uint64_t maxShardBytes,
                    const std::map<std::string, std::string> &metadata,
                    std::vector<FolderFile> &files);

//===----------------------------------------------------------------------===//
// Reading
//===----------------------------------------------------------------------===//

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
struct QuantScheme {
  /// quantization_config.quant_method, and the format it names.
  std::string method;
  const ImportFormat *importer = nullptr;
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
                     bool &matched);

/// The scheme of module `layer`: the first matching `dynamic` rule's
/// overrides on top of the top-level fields (GPTQModel's dynamic_get);
/// `excluded` when a "-:" rule matches first.
Status resolveScheme(const std::string &path, const QuantScheme &s,
                     const std::string &layer, QuantScheme &out,
                     bool &excluded);

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

//===----------------------------------------------------------------------===//
// The import-format interface and its registry
//===----------------------------------------------------------------------===//

/// The quantization_config object `q` of the file `path`, for a format's
/// parseConfig.
struct ConfigFields {
  const std::string &path;
  const ::qc::json::Value &q;

  /// The first of `keys` that is present and not null (its key in
  /// `which`); else null, with the first key in `which`.
  const ::qc::json::Value *get(std::initializer_list<const char *> keys,
                               std::string &which) const;
  /// `<path>: quantization_config field "<field>" <what>`.
  Status fail(const std::string &field, const std::string &what) const;
};

/// One quantized checkpoint format that can be imported, named by the
/// quant_method of config.json's quantization_config.
class ImportFormat {
public:
  virtual ~ImportFormat() = default;
  /// The quant_method value ("gptq", "awq").
  virtual const char *name() const = 0;
  /// The suffix of the tensor whose presence marks a linear layer as
  /// quantized ("qweight" for GPTQ and AWQ).
  virtual const char *markerTensor() const { return "qweight"; }
  /// Whether quantization_config holds bits and group_size at its top
  /// level (GPTQ, AWQ); a format that nests them (compressed-tensors'
  /// config_groups) sets them itself in parseConfig.
  virtual bool topLevelGrid() const { return true; }
  /// Reads the format's own fields of quantization_config into `out`
  /// (method, format, bits and group size are already set there); errors
  /// name the file and field (ConfigFields::fail).
  virtual Status parseConfig(const ConfigFields &c, QuantScheme &out) const = 0;
  /// Reads the tensors of the quantized linear `layer` (weight [N, K]) under
  /// scheme `s` into `q`, checking every shape, dtype and range; errors
  /// name the file and tensor.
  virtual Status readLayer(CheckpointReader &r, const QuantScheme &s,
                           const std::string &layer, int64_t N, int64_t K,
                           QuantizedWeight &q) const = 0;
};

// One accessor per format, defined in the format's file.
#define QC_IMPORT_FORMAT(Name) const ImportFormat &get##Name##ImportFormat();
#include "Formats.def"

/// Every import format, in Formats.def order.
const std::vector<const ImportFormat *> &importFormats();

} // namespace mlir::qc::checkpoint

#endif // QC_LIB_IMPORT_CHECKPOINT_CHECKPOINT_H
