//===- Gguf.h - Hardened GGUF reader ----------------------------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Reads GGUF files (versions 2 and 3, little-endian): the header, the typed
// metadata key/value pairs, the tensor infos and the tensor data, from a
// read-only memory mapping. Every file is treated as hostile, with the bad-
// file classes of llama.cpp's test-gguf and its GGUF CVE trail as the
// checklist (../shared/docs/RELIABILITY.md): every count, string length,
// array length, dimension, type id, offset and the alignment is validated
// with overflow-checked 64-bit arithmetic before it is used, no allocation
// is sized by a count that has not been checked against the bytes left in
// the file, duplicate keys and tensor names are rejected, and tensors must
// be aligned, inside the file and must not overlap. Errors are one line
// that starts with the file name.
//
// Metadata strings are views into the mapping (no copy); they stay valid as
// long as the GgufFile lives. The typed accessors (getU32, getString,
// getStringArray, ...) return an error naming the key when it is missing or
// has another type; integers convert between widths when the value fits.
//
//===----------------------------------------------------------------------===//

#ifndef QC_RUNTIME_GGUF_H
#define QC_RUNTIME_GGUF_H

#include "qc/runtime/GgmlQuants.h"
#include "qc/runtime/Status.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace qc {

/// Metadata value types (`gguf_type`), with the file's numbering.
enum class GgufType : uint32_t {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  Bool = 7,
  String = 8,
  Array = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
};

/// Lower-case name of a metadata type ("u32", "string", "array", ...).
const char *ggufTypeName(GgufType type);

/// A key or tensor name from a file in single quotes for a one-line error
/// message: control bytes are written as \xNN and names longer than 200
/// bytes are cut with "...".
std::string ggufQuote(std::string_view name);

/// One metadata value. Scalars keep their value in `scalar` (integers and
/// bools zero- or sign-extended per `type`, floats as their bit pattern;
/// use the GgufFile accessors or the helpers below rather than reading it
/// directly). Arrays keep their element type and count; numeric array
/// elements stay in the file (see `raw`), string elements are views into
/// it, and nested arrays are held in `items`.
struct GgufValue {
  GgufType type = GgufType::U8; ///< the value's type
  uint64_t scalar = 0;          ///< numeric scalar or bool, see above
  std::string_view str;         ///< String value (view into the file)

  GgufType elemType = GgufType::U8; ///< Array: element type
  uint64_t count = 0;               ///< Array: number of elements
  /// Array of a numeric or bool type: first byte of `count` little-endian
  /// elements inside the file (not aligned in general).
  const uint8_t *raw = nullptr;
  std::vector<std::string_view> strings; ///< Array of String: the elements
  std::vector<GgufValue> items;          ///< Array of Array: the elements

  /// True for u8..i64 (not bool, not floats).
  bool isInteger() const;
  /// Short human-readable type, e.g. "u32" or "array of string".
  std::string typeDescription() const;
};

/// One key/value pair of the header, in file order.
struct GgufKV {
  std::string key; ///< the key, e.g. "llama.block_count"
  GgufValue value; ///< its value
};

/// One tensor info of a validated header.
struct GgufTensorInfo {
  std::string name;              ///< tensor name, e.g. "blk.0.attn_q.weight"
  GgmlType type = GgmlType::F32; ///< element type
  /// Dims in GGUF order: innermost (contiguous) first; each >= 1.
  std::vector<uint64_t> dims;
  uint64_t offset = 0;      ///< first byte, relative to the data section
  uint64_t byteSize = 0;    ///< bytes the tensor occupies
  uint64_t numElements = 0; ///< product of dims (fits in int64_t)

  /// The dims in PyTorch / row-major order (outermost first): GGUF dims
  /// [576, 192] are the PyTorch shape [192, 576].
  std::vector<int64_t> shape() const;
  /// Elements of the innermost dim (one row), dims[0].
  uint64_t rowLength() const { return dims.empty() ? 1 : dims[0]; }
};

/// Caps applied to untrusted files before anything is allocated. Every
/// count is also checked against the bytes left in the file.
struct GgufLimits {
  uint64_t maxTensors = 1u << 20; ///< tensor infos
  uint64_t maxKV = 1u << 20;      ///< metadata pairs
  /// One tensor name or string value (keys are capped at 65535 bytes).
  uint64_t maxStringBytes = 64ull << 20;
  uint64_t maxArrayElements = 1u << 26; ///< one array's element count
  unsigned maxArrayDepth = 8;           ///< nesting of arrays of arrays
  unsigned maxDims = 4;                 ///< tensor rank (GGML_MAX_DIMS)
  uint64_t maxAlignment = 1u << 20;     ///< largest general.alignment
};

/// A validated, read-only view of one GGUF file. Either memory-maps a file
/// (open) or borrows a caller's buffer (parse).
class GgufFile {
public:
  /// The alignment used when `general.alignment` is absent.
  static constexpr uint32_t kDefaultAlignment = 32;

  /// Memory-maps `path` read-only and validates it. Every error message
  /// starts with `path`.
  static Status open(const std::string &path, std::unique_ptr<GgufFile> &out,
                     const GgufLimits &limits = {});

  /// Validates the in-memory file `data[0, size)`; the buffer is borrowed
  /// and must outlive `out`. Messages start with `displayName`.
  static Status parse(const uint8_t *data, size_t size,
                      const std::string &displayName,
                      std::unique_ptr<GgufFile> &out,
                      const GgufLimits &limits = {});

  /// Unmaps the file if this object mapped it.
  ~GgufFile();
  /// Not copyable: the object may own a mapping.
  GgufFile(const GgufFile &) = delete;
  /// Not copyable: the object may own a mapping.
  GgufFile &operator=(const GgufFile &) = delete;

  /// The path or display name used in messages.
  const std::string &displayName() const { return name; }
  /// The format version (2 or 3).
  uint32_t version() const { return ver; }
  /// The data section alignment (general.alignment or 32).
  uint32_t alignment() const { return align; }
  /// Byte offset of the data section from the start of the file.
  uint64_t dataOffset() const { return dataStart; }
  /// Bytes from the data section's start to the end of the file.
  uint64_t dataSize() const { return size - dataStart; }

  /// Metadata pairs in file order.
  const std::vector<GgufKV> &metadata() const { return kvs; }
  /// The value of `key`, or nullptr.
  const GgufValue *find(std::string_view key) const;
  /// True when `key` is present.
  bool has(std::string_view key) const { return find(key) != nullptr; }

  /// Tensor infos in file order.
  const std::vector<GgufTensorInfo> &tensors() const { return infos; }
  /// The tensor called `tensorName`, or nullptr.
  const GgufTensorInfo *findTensor(std::string_view tensorName) const;
  /// First byte of `info`'s data; `info` must come from this file.
  const uint8_t *tensorData(const GgufTensorInfo &info) const {
    return base + dataStart + info.offset;
  }

  /// Dequantizes tensor `info` (from this file) to fp32, in GGUF element
  /// order (row-major over shape()). Unsupported types fail naming the
  /// tensor and the type; with `checkFinite`, a NaN or infinity is an error
  /// naming the tensor and the first bad flat index.
  Status readTensorF32(const GgufTensorInfo &info, std::vector<float> &out,
                       bool checkFinite = true) const;
  /// As above, by name (an error when there is no such tensor).
  Status readTensorF32(std::string_view tensorName, std::vector<float> &out,
                       bool checkFinite = true) const;
  /// Dequantizes rows [first, first + count) of tensor `info` (rows along
  /// the first dimension of shape(); a 1-D tensor's rows are its elements)
  /// into `out`, as readTensorF32 would give them: a row holds whole
  /// blocks, so rows are read on their own (a 1-D quantized tensor is read
  /// whole and sliced). Errors as readTensorF32's, with flat indices from
  /// the tensor's start; a range outside the tensor is an error.
  Status readRowsF32(const GgufTensorInfo &info, int64_t first, int64_t count,
                     std::vector<float> &out, bool checkFinite = true) const;
  /// Drops the mapped pages that lie wholly inside rows [first, first +
  /// count) of `info` (madvise DONTNEED; no-op for a borrowed buffer), so a
  /// model read row range by row range does not stay resident.
  void releaseRows(const GgufTensorInfo &info, int64_t first,
                   int64_t count) const;

  //===--------------------------------------------------------------------===//
  // Typed metadata accessors. Each fails with "<file>: metadata key 'k' ..."
  // when the key is missing or its type does not match. Integer getters
  // accept any integer type whose value fits the requested width; float
  // getters accept f32 and f64 (getF32: an f64 only when it is finite and
  // within the fp32 range; it is rounded to nearest).
  //===--------------------------------------------------------------------===//

  /// An integer that fits in uint8_t.
  Status getU8(std::string_view key, uint8_t &out) const;
  /// An integer that fits in uint32_t.
  Status getU32(std::string_view key, uint32_t &out) const;
  /// An integer that fits in int32_t.
  Status getI32(std::string_view key, int32_t &out) const;
  /// An integer that fits in uint64_t.
  Status getU64(std::string_view key, uint64_t &out) const;
  /// An integer that fits in int64_t.
  Status getI64(std::string_view key, int64_t &out) const;
  /// An f32 (or an f64 inside the fp32 range).
  Status getF32(std::string_view key, float &out) const;
  /// An f32 or f64.
  Status getF64(std::string_view key, double &out) const;
  /// A bool.
  Status getBool(std::string_view key, bool &out) const;
  /// A string (copied).
  Status getString(std::string_view key, std::string &out) const;
  /// A string as a view into the file (valid while this object lives).
  Status getStringView(std::string_view key, std::string_view &out) const;

  /// The element type and count of array `key`.
  Status getArrayInfo(std::string_view key, GgufType &elemType,
                      uint64_t &count) const;
  /// An array of strings (copied).
  Status getStringArray(std::string_view key,
                        std::vector<std::string> &out) const;
  /// An array of strings as views into the file.
  Status getStringArrayView(std::string_view key,
                            std::vector<std::string_view> &out) const;
  /// An array of f32 (f64 elements inside the fp32 range are accepted).
  Status getF32Array(std::string_view key, std::vector<float> &out) const;
  /// An array of integers that each fit in int32_t.
  Status getI32Array(std::string_view key, std::vector<int32_t> &out) const;
  /// An array of integers that each fit in uint32_t.
  Status getU32Array(std::string_view key, std::vector<uint32_t> &out) const;
  /// An array of integers that each fit in int64_t.
  Status getI64Array(std::string_view key, std::vector<int64_t> &out) const;
  /// An array of bools.
  Status getBoolArray(std::string_view key, std::vector<bool> &out) const;

  /// An error prefixed with the display name.
  Status error(const std::string &what) const;

private:
  /// Dequantizes `count` elements of `info` starting at element `first`
  /// (which must start a block) into `out`: what readTensorF32 and
  /// readRowsF32 share, with their messages (flat indices from the
  /// tensor's start).
  Status dequantizeElements(const GgufTensorInfo &info, int64_t first,
                            int64_t count, std::vector<float> &out,
                            bool checkFinite) const;
  /// Use open() or parse().
  GgufFile() = default;
  /// Runs every header and layout check; fills kvs/infos and the indexes.
  Status validate(const GgufLimits &limits);
  /// The value of `key` or a "missing" error.
  Status lookup(std::string_view key, const GgufValue *&out) const;
  std::string name;              ///< path or display name for messages
  const uint8_t *base = nullptr; ///< first byte of the whole file
  size_t size = 0;               ///< bytes of the whole file
  void *mapping = nullptr;       ///< non-null when this object owns an mmap
  uint32_t ver = 0;              ///< format version
  uint32_t align = kDefaultAlignment; ///< data alignment
  uint64_t dataStart = 0;             ///< data section offset in the file
  std::vector<GgufKV> kvs;            ///< metadata in file order
  std::vector<GgufTensorInfo> infos;  ///< tensors in file order
  std::unordered_map<std::string_view, size_t> kvIndex;     ///< key -> kvs
  std::unordered_map<std::string_view, size_t> tensorIndex; ///< name -> infos
};

} // namespace qc

#endif // QC_RUNTIME_GGUF_H
