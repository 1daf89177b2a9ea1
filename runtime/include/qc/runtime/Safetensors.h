//===- Safetensors.h - Hardened safetensors reader and writer ---*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Reads and writes the safetensors container (8-byte little-endian header
// length N, N bytes of UTF-8 JSON header, then the raw tensor data). The
// reader treats every file as hostile and implements the checks of
// ../shared/docs/RELIABILITY.md section 2.2 rows 1-8: it never touches a byte
// past the end of the file, does all size arithmetic in checked 64-bit
// integers before allocating anything, and requires the tensors to tile the
// data section exactly (no holes, overlaps or trailing bytes). The writer
// produces the same layout as the reference implementation and replaces
// files atomically.
//
//===----------------------------------------------------------------------===//

#ifndef QC_RUNTIME_SAFETENSORS_H
#define QC_RUNTIME_SAFETENSORS_H

#include "qc/runtime/Status.h"

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace qc {

//===----------------------------------------------------------------------===//
// Element types
//===----------------------------------------------------------------------===//

/// Every dtype string the safetensors format defines, spelled as in the
/// file. The enumerators are in the reference implementation's order.
enum class DType : uint8_t {
  BOOL,        ///< one byte per bool
  F4,          ///< 4-bit float (E2M1), two per byte
  F6_E2M3,     ///< 6-bit float, packed
  F6_E3M2,     ///< 6-bit float, packed
  U8,          ///< unsigned byte
  I8,          ///< signed byte
  F8_E5M2,     ///< 8-bit float, 5 exponent bits
  F8_E4M3,     ///< 8-bit float, 4 exponent bits (the "fn" variant)
  F8_E8M0,     ///< power-of-two scale (microscaling formats)
  F8_E4M3FNUZ, ///< AMD-style E4M3 (no negative zero, NaN at 0x80)
  F8_E5M2FNUZ, ///< AMD-style E5M2
  I16,         ///< signed 16-bit integer
  U16,         ///< unsigned 16-bit integer
  F16,         ///< IEEE binary16
  BF16,        ///< bfloat16
  I32,         ///< signed 32-bit integer
  U32,         ///< unsigned 32-bit integer
  F32,         ///< IEEE binary32
  C64,         ///< complex of two F32
  F64,         ///< IEEE binary64
  I64,         ///< signed 64-bit integer
  U64,         ///< unsigned 64-bit integer
};

/// Bits per element (4 for F4, 6 for the F6 types, 64 for C64, ...).
unsigned dtypeBits(DType dtype);

/// The dtype's spelling in a safetensors header, e.g. "BF16".
const char *dtypeName(DType dtype);

/// Parses a header dtype string; returns false for anything not in DType.
bool parseDType(std::string_view name, DType &out);

/// All accepted dtype strings, comma separated, for error messages.
std::string supportedDTypeNames();

//===----------------------------------------------------------------------===//
// fp16 / bf16 conversion
//===----------------------------------------------------------------------===//

/// IEEE binary16 bit pattern to float. Exact for every input (subnormals,
/// infinities and NaN payloads included).
float f16ToF32(uint16_t bits);

/// Float to IEEE binary16, rounding to nearest with ties to even. Values of
/// magnitude >= 65520 become infinity, values <= 2^-25 become (signed) zero,
/// and NaN stays NaN with the top mantissa bits kept, so every f16 pattern
/// survives f16 -> f32 -> f16 unchanged.
uint16_t f32ToF16(float value);

/// bfloat16 bit pattern to float (exact: bf16 is the top half of a float).
float bf16ToF32(uint16_t bits);

/// Float to bfloat16, rounding to nearest with ties to even; overflow
/// becomes infinity and NaN stays NaN (never rounded into infinity).
uint16_t f32ToBF16(float value);

//===----------------------------------------------------------------------===//
// Reader
//===----------------------------------------------------------------------===//

/// One tensor entry of a validated header.
struct TensorInfo {
  std::string name;           ///< key in the header
  DType dtype = DType::F32;   ///< element type
  std::vector<int64_t> shape; ///< dims, each >= 0 (empty for a scalar)
  uint64_t begin = 0;         ///< first byte, relative to the data section
  uint64_t end = 0;           ///< one past the last byte, same origin

  /// Bytes the tensor occupies (end - begin).
  uint64_t byteSize() const { return end - begin; }
  /// Product of the dims; the reader guarantees it fits in int64_t.
  int64_t numElements() const;
};

/// Rows [first, first + count) of `info` along its first dimension, as a
/// tensor entry of the same file (same name and dtype, shape[0] = count),
/// which readAsF32 and releasePages accept. A scalar is one row (only
/// [0, 1) selects it). Fails on a range outside the tensor or a dtype
/// narrower than a byte.
Status rowSlice(const TensorInfo &info, int64_t first, int64_t count,
                TensorInfo &out);

/// Caps applied to untrusted files before anything is allocated.
struct SafetensorsLimits {
  /// Largest accepted header (the reference implementation's 100 MB).
  uint64_t maxHeaderBytes = 100000000;
  /// Largest accepted tensor rank.
  unsigned maxRank = 16;
  /// JSON nesting cap; a valid header needs 3 levels.
  unsigned maxJsonDepth = 16;
};

/// A validated, read-only view of one safetensors file. Either memory-maps a
/// file (open) or borrows a caller's buffer (parse); in both cases the
/// constructor-time checks guarantee that every TensorInfo lies inside the
/// data section and that the tensors cover it exactly.
class SafetensorsFile {
public:
  /// Memory-maps `path` read-only and validates it. Every error message
  /// starts with `path`. Note that a file truncated by another process while
  /// mapped can still raise SIGBUS on access; nothing portable prevents that.
  static Status open(const std::string &path,
                     std::unique_ptr<SafetensorsFile> &out,
                     const SafetensorsLimits &limits = {});

  /// Validates the in-memory file `data[0, size)`. The buffer is borrowed,
  /// not copied, and must outlive `out`. Error messages start with
  /// `displayName`.
  static Status parse(const uint8_t *data, size_t size,
                      const std::string &displayName,
                      std::unique_ptr<SafetensorsFile> &out,
                      const SafetensorsLimits &limits = {});

  /// Unmaps the file if this object mapped it.
  ~SafetensorsFile();
  /// Not copyable: the object may own a mapping.
  SafetensorsFile(const SafetensorsFile &) = delete;
  /// Not copyable: the object may own a mapping.
  SafetensorsFile &operator=(const SafetensorsFile &) = delete;

  /// The path or display name used in messages.
  const std::string &displayName() const { return name; }
  /// Tensors in data-offset order.
  const std::vector<TensorInfo> &tensors() const { return infos; }
  /// The tensor called `tensorName`, or nullptr.
  const TensorInfo *find(const std::string &tensorName) const;
  /// The `__metadata__` map (empty when absent).
  const std::map<std::string, std::string> &metadata() const { return meta; }
  /// Bytes of the JSON header (N), excluding the 8-byte length prefix.
  uint64_t headerSize() const { return headerLen; }
  /// Bytes of the data section, equal to the last tensor's end.
  uint64_t dataSize() const { return size - 8 - headerLen; }
  /// Start of `info`'s bytes; `info` must come from this file. Not aligned
  /// in general: the format only aligns the data section to 8 bytes.
  const uint8_t *tensorData(const TensorInfo &info) const {
    return base + 8 + headerLen + info.begin;
  }

  /// Decodes tensor `tensorName` (F32, F16, BF16 or F64) into fp32 values in
  /// row-major order. With `checkFinite`, a NaN or infinity (or an F64 value
  /// outside the fp32 range) is an error naming the file, the tensor and the
  /// first bad flat index; the format itself does not forbid them.
  Status readAsF32(const std::string &tensorName, std::vector<float> &out,
                   bool checkFinite = true) const;
  /// As above for a tensor already looked up; `info` must come from this
  /// file.
  Status readAsF32(const TensorInfo &info, std::vector<float> &out,
                   bool checkFinite = true) const;

  /// Drops this process's pages of `info`'s bytes (madvise DONTNEED on the
  /// whole pages inside it) when the file is mapped: the next read maps
  /// them again from the page cache. A reader that streams a checkpoint
  /// larger than memory calls it after converting each tensor, so that
  /// the mapped file does not accumulate in the resident set.
  void releasePages(const TensorInfo &info) const;

private:
  /// Use open() or parse().
  SafetensorsFile() = default;
  /// Runs every header and layout check; fills infos/byName/meta.
  Status validate(const SafetensorsLimits &limits);
  /// Error prefixed with the display name.
  Status error(const std::string &what) const;

  std::string name;              ///< path or display name for messages
  const uint8_t *base = nullptr; ///< first byte of the whole file
  size_t size = 0;               ///< bytes of the whole file
  void *mapping = nullptr;       ///< non-null when this object owns an mmap
  uint64_t headerLen = 0;        ///< N, the JSON header length
  std::vector<TensorInfo> infos; ///< tensors sorted by offset
  std::unordered_map<std::string, size_t> byName; ///< name -> infos index
  std::map<std::string, std::string> meta;        ///< __metadata__
};

//===----------------------------------------------------------------------===//
// Writer
//===----------------------------------------------------------------------===//

/// A run of bytes to write; see writeFileAtomically. The bytes are either
/// in memory at `data` or, when `fd` >= 0, in that open file at `offset`
/// (read in bounded chunks, so writing gigabytes spilled to disk does not
/// bring them back into memory).
struct ByteSpan {
  const void *data;    ///< first byte (unused when fd >= 0)
  size_t size;         ///< byte count
  int fd = -1;         ///< file holding the bytes, or -1
  uint64_t offset = 0; ///< where they start in `fd`
};

/// Writes the concatenation of `pieces` to `path` so that readers only ever
/// see the old file or the complete new one: the bytes go to a temporary
/// file in the same directory, which is fsynced and then renamed over
/// `path` (the directory is fsynced afterwards). On any failure the
/// temporary file is removed and `path` is untouched. Replacing by rename
/// also leaves a still-mapped old file intact (RELIABILITY.md row 19). The
/// file gets mode 0666 minus the umask.
Status writeFileAtomically(const std::string &path,
                           const std::vector<ByteSpan> &pieces);

/// The permission bits a new file or folder gets when created with
/// `requested` (0666 for files, 0777 for folders) under the process's umask,
/// as open(2) and mkdir(2) would give them. Temporary files and folders made
/// with mkstemp/mkdtemp (0600/0700) are set to this before being published,
/// so qc's outputs honour the user's umask like any other program's.
unsigned permissionsUnderUmask(unsigned requested);

/// Test-only fault injection: the next writeFileAtomically call (only that
/// one) fails with EIO after writing `failAfterBytes` bytes to its
/// temporary file. A negative value disarms it. Not thread-safe with
/// concurrent writers.
void setAtomicWriteFaultForTesting(int64_t failAfterBytes);

/// Builds a safetensors file from named tensors. Output is deterministic
/// and byte-identical to the reference serializer's (safetensors 0.8):
/// tensors are laid out by DType in decreasing enum order, which puts wider
/// elements first and keeps every tensor naturally aligned, then by name;
/// the header is compact JSON with `__metadata__` first, padded with spaces
/// to a multiple of 8 bytes.
class SafetensorsWriter {
public:
  /// Adds a tensor whose little-endian bytes are `bytes` (moved in). Fails
  /// on a duplicate or reserved name, a name that is not valid UTF-8, a
  /// negative dim, a size overflow, or a byte count that does not match
  /// shape and dtype.
  Status add(const std::string &name, DType dtype,
             const std::vector<int64_t> &shape, std::vector<uint8_t> bytes);

  /// Like add() but borrows `data[0, byteCount)` instead of copying it; the
  /// buffer must stay alive and unchanged until the last write.
  Status addView(const std::string &name, DType dtype,
                 const std::vector<int64_t> &shape, const void *data,
                 size_t byteCount);

  /// Adds an F32 tensor copied from `data` (numElements(shape) values).
  Status addF32(const std::string &name, const std::vector<int64_t> &shape,
                const float *data);

  /// Adds `data` (numElements(shape) fp32 values) stored as `storeAs`,
  /// which must be F32, F16 or BF16 (rounded to nearest even).
  Status addFromF32(const std::string &name, const std::vector<int64_t> &shape,
                    const float *data, DType storeAs);

  /// From now on, the bytes of every tensor added by copy (add, addF32,
  /// addFromF32) go to an unnamed temporary file in directory `dir` instead
  /// of memory, and are copied from there by writeFile / serialize; views
  /// stay borrowed. A writer that assembles an output larger than memory
  /// (the packed tensors of a 70B model) holds only the header in RAM.
  /// The file disappears with the writer, also when the process dies.
  /// Errors of the spill name `outputPath`, the file being assembled, as
  /// writeFile's do ("<outputPath>: write failed after N bytes: ...").
  Status spillTo(const std::string &dir, const std::string &outputPath);

  /// Sets the `__metadata__` string map (written only when non-empty).
  Status setMetadata(std::map<std::string, std::string> metadata);

  /// Number of tensors added.
  size_t numTensors() const { return entries.size(); }
  /// Total bytes of tensor data.
  uint64_t dataBytes() const { return totalData; }

  /// Produces the complete file in memory.
  Status serialize(std::vector<uint8_t> &out) const;

  /// Writes the file to `path` with writeFileAtomically.
  Status writeFile(const std::string &path) const;

private:
  /// One tensor: either owned bytes or a borrowed view.
  struct Entry {
    std::string name;              ///< header key
    DType dtype;                   ///< element type
    std::vector<int64_t> shape;    ///< dims
    std::vector<uint8_t> owned;    ///< the bytes when copied in
    const uint8_t *data = nullptr; ///< the bytes (owned or borrowed)
    size_t byteCount = 0;          ///< bytes at `data`
    int64_t spillOffset = -1;      ///< where they are in the spill file
  };
  /// The spill file of spillTo (closed with the last writer using it).
  struct SpillFile {
    int fd = -1;
    uint64_t size = 0;      ///< bytes written so far
    std::string outputPath; ///< named in errors
    ~SpillFile();
  };
  /// Checks name/shape/size and registers the entry.
  Status addEntry(Entry entry);
  /// The 8-byte length prefix plus padded header, and the layout order.
  void buildHeader(std::string &prefixAndHeader,
                   std::vector<const Entry *> &order) const;

  std::vector<std::unique_ptr<Entry>> entries;   ///< in insertion order
  std::unordered_map<std::string, size_t> index; ///< name -> entries index
  std::map<std::string, std::string> meta;       ///< __metadata__
  uint64_t totalData = 0;                        ///< sum of byteCount
  std::shared_ptr<SpillFile> spill;              ///< set by spillTo
};

} // namespace qc

#endif // QC_RUNTIME_SAFETENSORS_H
