//===- Gguf.cpp - Hardened GGUF reader --------------------------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// The parser walks the header with a bounds-checked cursor: every read asks
// the cursor for a number of bytes first, so nothing is ever read past the
// end of the file, and every count that sizes an allocation (KV pairs,
// tensors, array elements) is first multiplied by the smallest size its
// items can have and compared with the bytes that are left. Validation
// follows the order of llama.cpp's gguf_init_from_file (header, KV pairs,
// alignment, tensor infos, data section) and covers the classes of its
// test-gguf bad files; the messages name the key or tensor at fault.
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/Gguf.h"

#include "qc/runtime/FileMapping.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "the GGUF reader assumes a little-endian host");

namespace qc {

namespace {

/// Bytes of one scalar of a numeric or bool metadata type; 0 for string
/// and array.
uint64_t scalarSize(GgufType t) {
  switch (t) {
  case GgufType::U8:
  case GgufType::I8:
  case GgufType::Bool:
    return 1;
  case GgufType::U16:
  case GgufType::I16:
    return 2;
  case GgufType::U32:
  case GgufType::I32:
  case GgufType::F32:
    return 4;
  case GgufType::U64:
  case GgufType::I64:
  case GgufType::F64:
    return 8;
  default:
    return 0;
  }
}

bool isKnownType(uint32_t t) { return t <= 12; }

bool isSignedInt(GgufType t) {
  return t == GgufType::I8 || t == GgufType::I16 || t == GgufType::I32 ||
         t == GgufType::I64;
}

bool isIntType(GgufType t) {
  return t == GgufType::U8 || t == GgufType::U16 || t == GgufType::U32 ||
         t == GgufType::U64 || isSignedInt(t);
}

/// Reads a little-endian scalar of type `t` from `p`, sign-extending signed
/// integers into the two's-complement u64.
uint64_t readScalar(const uint8_t *p, GgufType t) {
  uint64_t n = scalarSize(t), v = 0;
  for (uint64_t i = n; i-- > 0;)
    v = (v << 8) | p[i];
  if (isSignedInt(t) && n < 8 && (v >> (8 * n - 1)) & 1)
    v |= ~uint64_t(0) << (8 * n);
  return v;
}

std::string quoted(std::string_view s) {
  // Keys and names come from the file: keep messages one printable line.
  std::string r = "'";
  for (char c : s.substr(0, 200)) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F) {
      static const char *hex = "0123456789abcdef";
      r += "\\x";
      r += hex[u >> 4];
      r += hex[u & 15];
    } else {
      r += c;
    }
  }
  if (s.size() > 200)
    r += "...";
  return r + "'";
}

/// The value of an integer scalar as (negative, magnitude).
void intParts(GgufType t, uint64_t bits, bool &neg, uint64_t &mag) {
  if (isSignedInt(t) && static_cast<int64_t>(bits) < 0) {
    neg = true;
    mag = ~bits + 1; // |INT64_MIN| = 2^63 is representable in u64.
  } else {
    neg = false;
    mag = bits;
  }
}

std::string intText(bool neg, uint64_t mag) {
  return (neg ? "-" : "") + std::to_string(mag);
}

/// True when (neg, mag) lies in [-minMag, maxVal].
bool intFits(bool neg, uint64_t mag, uint64_t minMag, uint64_t maxVal) {
  return neg ? mag <= minMag : mag <= maxVal;
}

/// Bounds-checked reader over the untrusted header bytes.
class Cursor {
public:
  Cursor(const uint8_t *base, uint64_t size) : base(base), size(size) {}

  uint64_t pos() const { return at; }
  uint64_t left() const { return size - at; }
  const uint8_t *here() const { return base + at; }

  /// Advances by n bytes if that many are left.
  bool skip(uint64_t n) {
    if (n > left())
      return false;
    at += n;
    return true;
  }
  bool u32(uint32_t &v) {
    if (left() < 4)
      return false;
    v = static_cast<uint32_t>(readScalar(here(), GgufType::U32));
    at += 4;
    return true;
  }
  bool u64(uint64_t &v) {
    if (left() < 8)
      return false;
    v = readScalar(here(), GgufType::U64);
    at += 8;
    return true;
  }

private:
  const uint8_t *base;
  uint64_t size;
  uint64_t at = 0;
};

/// The header parser: produces messages without the file prefix.
class Parser {
public:
  Parser(const uint8_t *base, uint64_t size, const GgufLimits &limits)
      : cur(base, size), limits(limits) {}

  Cursor cur;
  const GgufLimits &limits;

  Status truncated(const std::string &what) const {
    return Status::error("truncated file: " + what + " at byte " +
                         std::to_string(cur.pos()) + " runs past the end (" +
                         std::to_string(cur.pos() + cur.left()) + " bytes)");
  }

  /// A gguf_string: u64 length + bytes (no terminator).
  Status string(const std::string &what, uint64_t cap, std::string_view &out) {
    uint64_t len;
    if (!cur.u64(len))
      return truncated("the length of " + what);
    if (len > cap)
      return Status::error(what + " has length " + std::to_string(len) +
                           ", more than the limit of " + std::to_string(cap));
    if (len > cur.left())
      return Status::error(what + " has length " + std::to_string(len) +
                           " but only " + std::to_string(cur.left()) +
                           " bytes are left in the file (truncated file?)");
    out = std::string_view(reinterpret_cast<const char *>(cur.here()),
                           static_cast<size_t>(len));
    cur.skip(len);
    return Status::ok();
  }

  /// A value of type `type` for key `who` ("metadata key 'k'").
  Status value(const std::string &who, GgufType type, unsigned depth,
               GgufValue &out) {
    out.type = type;
    if (uint64_t n = scalarSize(type)) {
      if (cur.left() < n)
        return truncated("the value of " + who);
      out.scalar = readScalar(cur.here(), type);
      if (type == GgufType::Bool && out.scalar > 1)
        return Status::error(who + " is a bool with value " +
                             std::to_string(out.scalar) + " (must be 0 or 1)");
      cur.skip(n);
      return Status::ok();
    }
    if (type == GgufType::String)
      return string("the string value of " + who, limits.maxStringBytes,
                    out.str);
    return array(who, depth, out);
  }

  Status array(const std::string &who, unsigned depth, GgufValue &out) {
    uint32_t et;
    uint64_t count;
    if (!cur.u32(et))
      return truncated("the element type of " + who);
    if (!isKnownType(et))
      return Status::error(who + " is an array of unknown element type " +
                           std::to_string(et));
    GgufType elem = static_cast<GgufType>(et);
    if (elem == GgufType::Array && depth + 1 >= limits.maxArrayDepth)
      return Status::error(who + " nests arrays deeper than the limit of " +
                           std::to_string(limits.maxArrayDepth));
    if (!cur.u64(count))
      return truncated("the element count of " + who);
    if (count > limits.maxArrayElements)
      return Status::error(who + " is an array of " + std::to_string(count) +
                           " elements, more than the limit of " +
                           std::to_string(limits.maxArrayElements));
    // Every element takes at least this many bytes (a string or array its
    // 8-byte length/count, an array also its 4-byte type): checking the
    // total against the bytes left bounds every allocation below by the
    // file size.
    uint64_t minSize = scalarSize(elem)           ? scalarSize(elem)
                       : elem == GgufType::String ? 8
                                                  : 12;
    uint64_t need;
    if (__builtin_mul_overflow(count, minSize, &need) || need > cur.left())
      return Status::error(who + " claims " + std::to_string(count) + " " +
                           ggufTypeName(elem) + " elements, more than the " +
                           std::to_string(cur.left()) +
                           " bytes left in the file can hold");
    out.elemType = elem;
    out.count = count;
    if (scalarSize(elem)) {
      out.raw = cur.here();
      if (elem == GgufType::Bool)
        for (uint64_t i = 0; i < count; ++i)
          if (out.raw[i] > 1)
            return Status::error(who + " element " + std::to_string(i) +
                                 " is a bool with value " +
                                 std::to_string(out.raw[i]) +
                                 " (must be 0 or 1)");
      cur.skip(need);
      return Status::ok();
    }
    if (elem == GgufType::String) {
      out.strings.reserve(static_cast<size_t>(count));
      for (uint64_t i = 0; i < count; ++i) {
        std::string_view s;
        QC_RETURN_IF_ERROR(string("element " + std::to_string(i) + " of " + who,
                                  limits.maxStringBytes, s));
        out.strings.push_back(s);
      }
      return Status::ok();
    }
    out.items.resize(static_cast<size_t>(count));
    for (uint64_t i = 0; i < count; ++i)
      QC_RETURN_IF_ERROR(array("element " + std::to_string(i) + " of " + who,
                               depth + 1, out.items[i]));
    for (GgufValue &v : out.items)
      v.type = GgufType::Array;
    return Status::ok();
  }
};

} // namespace

std::string ggufQuote(std::string_view name) { return quoted(name); }

const char *ggufTypeName(GgufType type) {
  static const char *names[] = {"u8",  "i8",  "u16",  "i16",    "u32",
                                "i32", "f32", "bool", "string", "array",
                                "u64", "i64", "f64"};
  uint32_t t = static_cast<uint32_t>(type);
  return t <= 12 ? names[t] : "unknown";
}

bool GgufValue::isInteger() const { return isIntType(type); }

std::string GgufValue::typeDescription() const {
  if (type != GgufType::Array)
    return ggufTypeName(type);
  std::string r = "array of ";
  if (elemType == GgufType::Array)
    return r + "arrays";
  return r + ggufTypeName(elemType);
}

std::vector<int64_t> GgufTensorInfo::shape() const {
  std::vector<int64_t> s(dims.rbegin(), dims.rend());
  return s;
}

//===----------------------------------------------------------------------===//
// Opening
//===----------------------------------------------------------------------===//

GgufFile::~GgufFile() { unmapFile(FileMapping{mapping, size}); }

Status GgufFile::error(const std::string &what) const {
  return Status::error(name + ": " + what);
}

Status GgufFile::open(const std::string &path, std::unique_ptr<GgufFile> &out,
                      const GgufLimits &limits) {
  FileMapping m;
  // A file too short to hold any header is not mapped (mmap of length 0
  // fails); validate() reports it as a format error.
  QC_RETURN_IF_ERROR(mapFileReadOnly(path, 1, m));
  std::unique_ptr<GgufFile> file(new GgufFile());
  file->name = path;
  file->size = m.size;
  file->mapping = m.address;
  file->base = static_cast<const uint8_t *>(m.address);
  QC_RETURN_IF_ERROR(file->validate(limits));
  out = std::move(file);
  return Status::ok();
}

Status GgufFile::parse(const uint8_t *data, size_t size,
                       const std::string &displayName,
                       std::unique_ptr<GgufFile> &out,
                       const GgufLimits &limits) {
  std::unique_ptr<GgufFile> file(new GgufFile());
  file->name = displayName;
  file->base = data;
  file->size = data ? size : 0;
  QC_RETURN_IF_ERROR(file->validate(limits));
  out = std::move(file);
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// Validation
//===----------------------------------------------------------------------===//

Status GgufFile::validate(const GgufLimits &limits) {
  Parser p(base, size, limits);
  Cursor &cur = p.cur;
  // Parser messages lack the file prefix; add it to failures only.
  auto fail = [&](const Status &s) { return s ? s : error(s.message()); };

  // Header: magic, version, counts.
  if (size < 4)
    return error("file is " + std::to_string(size) +
                 " bytes, too short for the GGUF magic (truncated file)");
  if (std::memcmp(base, "GGUF", 4) != 0) {
    std::string got;
    for (int i = 0; i < 4; ++i) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "%s%02x", i ? " " : "", base[i]);
      got += buf;
    }
    return error("bad magic " + got +
                 " (expected 'GGUF' = 47 47 55 46): not "
                 "a GGUF file");
  }
  cur.skip(4);
  if (!cur.u32(ver))
    return fail(p.truncated("the version"));
  if (ver == 1)
    return error("GGUF version 1 is not supported (supported: 2, 3); "
                 "convert the file with a current llama.cpp");
  if (ver != 2 && ver != 3) {
    uint32_t swapped = __builtin_bswap32(ver);
    if (swapped == 2 || swapped == 3)
      return error("big-endian GGUF (version " + std::to_string(swapped) +
                   " byte-swapped) is not supported");
    if (ver == 0)
      return error("GGUF version 0 is invalid (supported: 2, 3)");
    return error("GGUF version " + std::to_string(ver) +
                 " is newer than the supported versions (2, 3)");
  }
  uint64_t nTensors, nKV;
  if (!cur.u64(nTensors))
    return fail(p.truncated("the tensor count"));
  if (!cur.u64(nKV))
    return fail(p.truncated("the metadata count"));
  // A tensor info is at least 8 + 4 + 4 + 8 bytes; a pair at least 8 + 4 +
  // 1. Both checks come before anything is allocated.
  if (nTensors > limits.maxTensors)
    return error("tensor count " + std::to_string(nTensors) +
                 " exceeds the limit of " + std::to_string(limits.maxTensors));
  if (nKV > limits.maxKV)
    return error("metadata count " + std::to_string(nKV) +
                 " exceeds the limit of " + std::to_string(limits.maxKV));
  uint64_t minKV, minInfos, minHeader;
  if (__builtin_mul_overflow(nKV, 13, &minKV) ||
      __builtin_mul_overflow(nTensors, 24, &minInfos) ||
      __builtin_add_overflow(minKV, minInfos, &minHeader) ||
      minHeader > cur.left())
    return error(std::to_string(nKV) + " metadata pairs and " +
                 std::to_string(nTensors) + " tensor infos cannot fit in the " +
                 std::to_string(cur.left()) +
                 " bytes left in the file (truncated file?)");

  // Metadata.
  kvs.resize(static_cast<size_t>(nKV));
  for (uint64_t i = 0; i < nKV; ++i) {
    GgufKV &kv = kvs[i];
    std::string_view key;
    QC_RETURN_IF_ERROR(fail(
        p.string("the key of metadata pair " + std::to_string(i), 65535, key)));
    if (key.empty())
      return error("metadata pair " + std::to_string(i) + " has an empty key");
    kv.key.assign(key);
    std::string who = "metadata key " + quoted(key);
    uint32_t t;
    if (!cur.u32(t))
      return fail(p.truncated("the type of " + who));
    if (!isKnownType(t))
      return error(who + " has unknown value type " + std::to_string(t));
    Status s = p.value(who, static_cast<GgufType>(t), 0, kv.value);
    if (!s)
      return fail(s);
  }
  kvIndex.reserve(kvs.size());
  for (size_t i = 0; i < kvs.size(); ++i)
    if (!kvIndex.emplace(kvs[i].key, i).second)
      return error("duplicate metadata key " + quoted(kvs[i].key));

  // Alignment: a wrong type or value must never reach the arithmetic below
  // (llama.cpp PR 26318 crashed on a wrong-typed alignment key).
  if (const GgufValue *a = find("general.alignment")) {
    if (a->type != GgufType::U32)
      return error("metadata key 'general.alignment' has type " +
                   a->typeDescription() + ", expected u32");
    uint64_t v = a->scalar;
    if (v == 0 || (v & (v - 1)) != 0)
      return error("metadata key 'general.alignment' is " + std::to_string(v) +
                   ", not a non-zero power of two");
    if (v > limits.maxAlignment)
      return error("metadata key 'general.alignment' is " + std::to_string(v) +
                   ", more than the limit of " +
                   std::to_string(limits.maxAlignment));
    align = static_cast<uint32_t>(v);
  }

  // Tensor infos.
  infos.resize(static_cast<size_t>(nTensors));
  for (uint64_t i = 0; i < nTensors; ++i) {
    GgufTensorInfo &info = infos[i];
    std::string_view tname;
    QC_RETURN_IF_ERROR(fail(p.string("the name of tensor " + std::to_string(i),
                                     limits.maxStringBytes, tname)));
    if (tname.empty())
      return error("tensor " + std::to_string(i) + " has an empty name");
    info.name.assign(tname);
    std::string who = "tensor " + quoted(tname);
    uint32_t nDims;
    if (!cur.u32(nDims))
      return fail(p.truncated("the dimension count of " + who));
    if (nDims > limits.maxDims)
      return error(who + " has " + std::to_string(nDims) +
                   " dimensions, more than the limit of " +
                   std::to_string(limits.maxDims));
    info.dims.resize(nDims);
    uint64_t elems = 1;
    for (uint32_t d = 0; d < nDims; ++d) {
      uint64_t v;
      if (!cur.u64(v))
        return fail(
            p.truncated("dimension " + std::to_string(d) + " of " + who));
      if (v == 0 || v > static_cast<uint64_t>(INT64_MAX))
        return error(who + " dimension " + std::to_string(d) + " is " +
                     (v == 0 ? std::string("0")
                             : std::to_string(static_cast<int64_t>(v))) +
                     " (must be between 1 and 2^63 - 1)");
      info.dims[d] = v;
      if (__builtin_mul_overflow(elems, v, &elems) ||
          elems > static_cast<uint64_t>(INT64_MAX))
        return error(who + " has too many elements: the product of its "
                           "dimensions exceeds 2^63 - 1");
    }
    info.numElements = elems;
    uint32_t typeId;
    if (!cur.u32(typeId))
      return fail(p.truncated("the type of " + who));
    GgmlTypeTraits traits;
    if (!ggmlTypeTraits(typeId, traits))
      return error(who + " has unknown ggml type id " + std::to_string(typeId));
    info.type = static_cast<GgmlType>(typeId);
    if (info.rowLength() % traits.blockSize != 0)
      return error(who + " has rows of " + std::to_string(info.rowLength()) +
                   " elements, not a multiple of the " + traits.name +
                   " block size " + std::to_string(traits.blockSize));
    if (!ggmlByteSize(info.type, elems, info.byteSize))
      return error(who + " byte size overflows 64 bits");
    if (!cur.u64(info.offset))
      return fail(p.truncated("the data offset of " + who));
    if (info.offset % align != 0)
      return error(who + " has data offset " + std::to_string(info.offset) +
                   ", not a multiple of the alignment " +
                   std::to_string(align));
  }
  tensorIndex.reserve(infos.size());
  for (size_t i = 0; i < infos.size(); ++i)
    if (!tensorIndex.emplace(infos[i].name, i).second)
      return error("duplicate tensor name " + quoted(infos[i].name));

  // Data section: starts at the next multiple of the alignment.
  uint64_t start = cur.pos();
  uint64_t pad = (align - start % align) % align;
  dataStart = start + pad; // cannot overflow: start <= size < 2^63
  if (dataStart > size) {
    if (!infos.empty())
      return error("the data section would start at byte " +
                   std::to_string(dataStart) + ", past the end of the file (" +
                   std::to_string(size) + " bytes; truncated file?)");
    dataStart = size;
  }
  uint64_t avail = size - dataStart;
  for (const GgufTensorInfo &info : infos) {
    uint64_t end;
    if (__builtin_add_overflow(info.offset, info.byteSize, &end) || end > avail)
      return error("tensor " + quoted(info.name) + " (" +
                   ggmlTypeName(info.type) + ", " +
                   std::to_string(info.byteSize) + " bytes at data offset " +
                   std::to_string(info.offset) +
                   ") runs past the end of the data section (" +
                   std::to_string(avail) + " bytes; truncated file?)");
  }
  std::vector<const GgufTensorInfo *> order;
  order.reserve(infos.size());
  for (const GgufTensorInfo &info : infos)
    order.push_back(&info);
  std::sort(order.begin(), order.end(),
            [](const GgufTensorInfo *a, const GgufTensorInfo *b) {
              return a->offset < b->offset;
            });
  for (size_t i = 1; i < order.size(); ++i)
    if (order[i]->offset < order[i - 1]->offset + order[i - 1]->byteSize)
      return error(
          "tensor " + quoted(order[i]->name) + " at data offset " +
          std::to_string(order[i]->offset) + " overlaps tensor " +
          quoted(order[i - 1]->name) + " (bytes [" +
          std::to_string(order[i - 1]->offset) + ", " +
          std::to_string(order[i - 1]->offset + order[i - 1]->byteSize) + "))");
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// Lookup and tensors
//===----------------------------------------------------------------------===//

const GgufValue *GgufFile::find(std::string_view key) const {
  auto it = kvIndex.find(key);
  return it == kvIndex.end() ? nullptr : &kvs[it->second].value;
}

const GgufTensorInfo *GgufFile::findTensor(std::string_view tensorName) const {
  auto it = tensorIndex.find(tensorName);
  return it == tensorIndex.end() ? nullptr : &infos[it->second];
}

Status GgufFile::readTensorF32(std::string_view tensorName,
                               std::vector<float> &out,
                               bool checkFinite) const {
  const GgufTensorInfo *info = findTensor(tensorName);
  if (!info)
    return error("no tensor named " + quoted(tensorName));
  return readTensorF32(*info, out, checkFinite);
}

Status GgufFile::readTensorF32(const GgufTensorInfo &info,
                               std::vector<float> &out,
                               bool checkFinite) const {
  // numElements was checked against the bytes in the file at open.
  return dequantizeElements(info, 0, static_cast<int64_t>(info.numElements),
                            out, checkFinite);
}

Status GgufFile::dequantizeElements(const GgufTensorInfo &info, int64_t first,
                                    int64_t count, std::vector<float> &out,
                                    bool checkFinite) const {
  std::string who = "tensor " + quoted(info.name);
  GgmlTypeTraits traits = ggmlTypeTraits(info.type);
  if (!traits.dequantizable)
    return error(who + " has unsupported type " + traits.name +
                 " (supported: " + dequantizableGgmlTypeNames() + ")");
  std::vector<float> result(static_cast<size_t>(count));
  const uint64_t byteOffset =
      static_cast<uint64_t>(first) / traits.blockSize * traits.typeSize;
  Status s = dequantizeRow(info.type, tensorData(info) + byteOffset,
                           result.data(), count);
  if (!s)
    return error(who + ": " + s.message());
  if (checkFinite) {
    for (size_t i = 0; i < result.size(); ++i) {
      if (!std::isfinite(result[i])) {
        const char *what = std::isnan(result[i]) ? "NaN"
                           : result[i] > 0       ? "+Inf"
                                                 : "-Inf";
        return error(who + " (" + traits.name + ") has a non-finite value (" +
                     what + ") at flat index " +
                     std::to_string(first + static_cast<int64_t>(i)));
      }
    }
  }
  out = std::move(result);
  return Status::ok();
}

namespace {

/// Rows of `info` along shape()[0], elements per row, and whether a row
/// holds whole blocks of its type (so that its bytes can be found).
struct RowGeometry {
  int64_t rows = 1, rowElements = 1;
  bool wholeBlocks = true;
  uint64_t rowBytes = 0;
};

RowGeometry rowGeometry(const GgufTensorInfo &info, const GgmlTypeTraits &t) {
  RowGeometry g;
  g.rows = info.dims.empty() ? 1 : static_cast<int64_t>(info.dims.back());
  g.rowElements =
      g.rows > 0 ? static_cast<int64_t>(info.numElements) / g.rows : 0;
  g.wholeBlocks = t.blockSize > 0 && g.rowElements % t.blockSize == 0;
  if (g.wholeBlocks)
    g.rowBytes =
        static_cast<uint64_t>(g.rowElements) / t.blockSize * t.typeSize;
  return g;
}

} // namespace

Status GgufFile::readRowsF32(const GgufTensorInfo &info, int64_t first,
                             int64_t count, std::vector<float> &out,
                             bool checkFinite) const {
  RowGeometry g = rowGeometry(info, ggmlTypeTraits(info.type));
  if (first < 0 || count < 0 || first > g.rows || count > g.rows - first)
    return error("tensor " + quoted(info.name) + ": rows [" +
                 std::to_string(first) + ", " + std::to_string(first) + " + " +
                 std::to_string(count) + ") are outside its " +
                 std::to_string(g.rows) + " rows");
  if (!g.wholeBlocks) {
    // A 1-D quantized tensor: its blocks span several "rows".
    std::vector<float> all;
    QC_RETURN_IF_ERROR(readTensorF32(info, all, checkFinite));
    out.assign(all.begin() + first * g.rowElements,
               all.begin() + (first + count) * g.rowElements);
    return Status::ok();
  }
  return dequantizeElements(info, first * g.rowElements, count * g.rowElements,
                            out, checkFinite);
}

void GgufFile::releaseRows(const GgufTensorInfo &info, int64_t first,
                           int64_t count) const {
  RowGeometry g = rowGeometry(info, ggmlTypeTraits(info.type));
  if (!mapping || !g.wholeBlocks || count <= 0 || first < 0 ||
      first + count > g.rows)
    return;
  // Only whole pages inside the rows: a neighbour sharing a partial page
  // keeps its mapping.
  uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  uintptr_t begin =
      reinterpret_cast<uintptr_t>(tensorData(info) + first * g.rowBytes);
  uintptr_t end = begin + static_cast<uintptr_t>(count) * g.rowBytes;
  begin = (begin + page - 1) & ~(page - 1);
  end &= ~(page - 1);
  if (end > begin)
    (void)::madvise(reinterpret_cast<void *>(begin), end - begin,
                    MADV_DONTNEED);
}

//===----------------------------------------------------------------------===//
// Typed accessors
//===----------------------------------------------------------------------===//

Status GgufFile::lookup(std::string_view key, const GgufValue *&out) const {
  out = find(key);
  if (!out)
    return error("metadata key " + quoted(key) + " is missing");
  return Status::ok();
}

namespace {

/// Integer scalar of `v` as (neg, mag), or an error text.
bool scalarInt(const GgufValue &v, bool &neg, uint64_t &mag) {
  if (!isIntType(v.type))
    return false;
  intParts(v.type, v.scalar, neg, mag);
  return true;
}

} // namespace

#define QC_GGUF_INT_GETTER(NAME, TYPE, WANT, MINMAG, MAXVAL)                   \
  Status GgufFile::NAME(std::string_view key, TYPE &out) const {               \
    const GgufValue *v;                                                        \
    QC_RETURN_IF_ERROR(lookup(key, v));                                        \
    bool neg;                                                                  \
    uint64_t mag;                                                              \
    if (!scalarInt(*v, neg, mag))                                              \
      return error("metadata key " + quoted(key) + " has type " +              \
                   v->typeDescription() + ", expected an integer (" WANT ")"); \
    if (!intFits(neg, mag, MINMAG, MAXVAL))                                    \
      return error("metadata key " + quoted(key) + " value " +                 \
                   intText(neg, mag) + " does not fit in " WANT);              \
    out = neg ? static_cast<TYPE>(0 - mag) : static_cast<TYPE>(mag);           \
    return Status::ok();                                                       \
  }

QC_GGUF_INT_GETTER(getU8, uint8_t, "u8", 0, 255)
QC_GGUF_INT_GETTER(getU32, uint32_t, "u32", 0, UINT32_MAX)
QC_GGUF_INT_GETTER(getI32, int32_t, "i32", uint64_t(INT32_MAX) + 1, INT32_MAX)
QC_GGUF_INT_GETTER(getU64, uint64_t, "u64", 0, UINT64_MAX)
QC_GGUF_INT_GETTER(getI64, int64_t, "i64", uint64_t(INT64_MAX) + 1, INT64_MAX)

#undef QC_GGUF_INT_GETTER

namespace {

double floatBitsToDouble(GgufType t, uint64_t bits) {
  if (t == GgufType::F32) {
    uint32_t b = static_cast<uint32_t>(bits);
    float f;
    std::memcpy(&f, &b, 4);
    return f;
  }
  double d;
  std::memcpy(&d, &bits, 8);
  return d;
}

/// Narrows an f32/f64 element to float; false when an f64 does not fit.
bool toF32(GgufType t, uint64_t bits, float &out) {
  double d = floatBitsToDouble(t, bits);
  if (t == GgufType::F64 && std::isfinite(d) &&
      std::fabs(d) > static_cast<double>(std::numeric_limits<float>::max()))
    return false;
  out = static_cast<float>(d);
  return true;
}

} // namespace

Status GgufFile::getF32(std::string_view key, float &out) const {
  const GgufValue *v;
  QC_RETURN_IF_ERROR(lookup(key, v));
  if (v->type != GgufType::F32 && v->type != GgufType::F64)
    return error("metadata key " + quoted(key) + " has type " +
                 v->typeDescription() + ", expected f32");
  if (!toF32(v->type, v->scalar, out))
    return error("metadata key " + quoted(key) +
                 " (f64) is outside the "
                 "fp32 range");
  return Status::ok();
}

Status GgufFile::getF64(std::string_view key, double &out) const {
  const GgufValue *v;
  QC_RETURN_IF_ERROR(lookup(key, v));
  if (v->type != GgufType::F32 && v->type != GgufType::F64)
    return error("metadata key " + quoted(key) + " has type " +
                 v->typeDescription() + ", expected f64");
  out = floatBitsToDouble(v->type, v->scalar);
  return Status::ok();
}

Status GgufFile::getBool(std::string_view key, bool &out) const {
  const GgufValue *v;
  QC_RETURN_IF_ERROR(lookup(key, v));
  if (v->type != GgufType::Bool)
    return error("metadata key " + quoted(key) + " has type " +
                 v->typeDescription() + ", expected bool");
  out = v->scalar != 0;
  return Status::ok();
}

Status GgufFile::getStringView(std::string_view key,
                               std::string_view &out) const {
  const GgufValue *v;
  QC_RETURN_IF_ERROR(lookup(key, v));
  if (v->type != GgufType::String)
    return error("metadata key " + quoted(key) + " has type " +
                 v->typeDescription() + ", expected string");
  out = v->str;
  return Status::ok();
}

Status GgufFile::getString(std::string_view key, std::string &out) const {
  std::string_view s;
  QC_RETURN_IF_ERROR(getStringView(key, s));
  out.assign(s);
  return Status::ok();
}

Status GgufFile::getArrayInfo(std::string_view key, GgufType &elemType,
                              uint64_t &count) const {
  const GgufValue *v;
  QC_RETURN_IF_ERROR(lookup(key, v));
  if (v->type != GgufType::Array)
    return error("metadata key " + quoted(key) + " has type " +
                 v->typeDescription() + ", expected an array");
  elemType = v->elemType;
  count = v->count;
  return Status::ok();
}

Status GgufFile::getStringArrayView(std::string_view key,
                                    std::vector<std::string_view> &out) const {
  const GgufValue *v;
  QC_RETURN_IF_ERROR(lookup(key, v));
  if (v->type != GgufType::Array || v->elemType != GgufType::String)
    return error("metadata key " + quoted(key) + " has type " +
                 v->typeDescription() + ", expected array of string");
  out = v->strings;
  return Status::ok();
}

Status GgufFile::getStringArray(std::string_view key,
                                std::vector<std::string> &out) const {
  std::vector<std::string_view> views;
  QC_RETURN_IF_ERROR(getStringArrayView(key, views));
  out.assign(views.begin(), views.end());
  return Status::ok();
}

Status GgufFile::getF32Array(std::string_view key,
                             std::vector<float> &out) const {
  const GgufValue *v;
  QC_RETURN_IF_ERROR(lookup(key, v));
  if (v->type != GgufType::Array ||
      (v->elemType != GgufType::F32 && v->elemType != GgufType::F64))
    return error("metadata key " + quoted(key) + " has type " +
                 v->typeDescription() + ", expected array of f32");
  std::vector<float> r(static_cast<size_t>(v->count));
  uint64_t w = scalarSize(v->elemType);
  for (uint64_t i = 0; i < v->count; ++i)
    if (!toF32(v->elemType, readScalar(v->raw + i * w, v->elemType), r[i]))
      return error("metadata key " + quoted(key) + " element " +
                   std::to_string(i) + " (f64) is outside the fp32 range");
  out = std::move(r);
  return Status::ok();
}

namespace {

/// Decodes an integer array into (neg, mag) pairs checked against a range;
/// `emit(i, neg, mag)` stores element i.
template <typename Emit>
Status intArray(const GgufFile &f, std::string_view key, const GgufValue *v,
                const char *want, uint64_t minMag, uint64_t maxVal, Emit emit) {
  if (v->type != GgufType::Array || !isIntType(v->elemType))
    return f.error("metadata key " + quoted(key) + " has type " +
                   v->typeDescription() + ", expected array of " + want);
  uint64_t w = scalarSize(v->elemType);
  for (uint64_t i = 0; i < v->count; ++i) {
    bool neg;
    uint64_t mag;
    intParts(v->elemType, readScalar(v->raw + i * w, v->elemType), neg, mag);
    if (!intFits(neg, mag, minMag, maxVal))
      return f.error("metadata key " + quoted(key) + " element " +
                     std::to_string(i) + " value " + intText(neg, mag) +
                     " does not fit in " + want);
    emit(static_cast<size_t>(i), neg, mag);
  }
  return Status::ok();
}

} // namespace

Status GgufFile::getI32Array(std::string_view key,
                             std::vector<int32_t> &out) const {
  const GgufValue *v;
  QC_RETURN_IF_ERROR(lookup(key, v));
  std::vector<int32_t> r(
      v->type == GgufType::Array ? static_cast<size_t>(v->count) : 0);
  QC_RETURN_IF_ERROR(intArray(*this, key, v, "i32", uint64_t(INT32_MAX) + 1,
                              INT32_MAX, [&](size_t i, bool neg, uint64_t m) {
                                r[i] = neg ? static_cast<int32_t>(0 - m)
                                           : static_cast<int32_t>(m);
                              }));
  out = std::move(r);
  return Status::ok();
}

Status GgufFile::getU32Array(std::string_view key,
                             std::vector<uint32_t> &out) const {
  const GgufValue *v;
  QC_RETURN_IF_ERROR(lookup(key, v));
  std::vector<uint32_t> r(
      v->type == GgufType::Array ? static_cast<size_t>(v->count) : 0);
  QC_RETURN_IF_ERROR(intArray(
      *this, key, v, "u32", 0, UINT32_MAX,
      [&](size_t i, bool, uint64_t m) { r[i] = static_cast<uint32_t>(m); }));
  out = std::move(r);
  return Status::ok();
}

Status GgufFile::getI64Array(std::string_view key,
                             std::vector<int64_t> &out) const {
  const GgufValue *v;
  QC_RETURN_IF_ERROR(lookup(key, v));
  std::vector<int64_t> r(
      v->type == GgufType::Array ? static_cast<size_t>(v->count) : 0);
  QC_RETURN_IF_ERROR(intArray(*this, key, v, "i64", uint64_t(INT64_MAX) + 1,
                              INT64_MAX, [&](size_t i, bool neg, uint64_t m) {
                                r[i] = neg ? static_cast<int64_t>(0 - m)
                                           : static_cast<int64_t>(m);
                              }));
  out = std::move(r);
  return Status::ok();
}

Status GgufFile::getBoolArray(std::string_view key,
                              std::vector<bool> &out) const {
  const GgufValue *v;
  QC_RETURN_IF_ERROR(lookup(key, v));
  if (v->type != GgufType::Array || v->elemType != GgufType::Bool)
    return error("metadata key " + quoted(key) + " has type " +
                 v->typeDescription() + ", expected array of bool");
  std::vector<bool> r(static_cast<size_t>(v->count));
  for (uint64_t i = 0; i < v->count; ++i)
    r[i] = v->raw[i] != 0;
  out = std::move(r);
  return Status::ok();
}

} // namespace qc
