//===- Safetensors.cpp - Hardened safetensors reader and writer -*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// The reader validates in the order the reference implementation does
// (huggingface/safetensors `read_metadata` + `Metadata::validate`), with each
// failure turned into a message that names the file and, where there is one,
// the tensor. Offsets and sizes come from the untrusted header as u64 and
// are only combined with overflow-checked operations. The writer mirrors the
// reference serializer's layout and goes through writeFileAtomically.
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/Safetensors.h"

#include "qc/runtime/FileMapping.h"

#include "qc/runtime/Json.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

// Tensor bytes are little-endian; the F32/F64 paths copy them straight into
// host floats.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "the safetensors reader assumes a little-endian host");

namespace qc {

//===----------------------------------------------------------------------===//
// DType
//===----------------------------------------------------------------------===//

namespace {
/// Spelling and width of one dtype, indexed by the enum value.
struct DTypeEntry {
  DType dtype;
  const char *name;
  unsigned bits;
};
constexpr DTypeEntry kDTypes[] = {
    {DType::BOOL, "BOOL", 8},
    {DType::F4, "F4", 4},
    {DType::F6_E2M3, "F6_E2M3", 6},
    {DType::F6_E3M2, "F6_E3M2", 6},
    {DType::U8, "U8", 8},
    {DType::I8, "I8", 8},
    {DType::F8_E5M2, "F8_E5M2", 8},
    {DType::F8_E4M3, "F8_E4M3", 8},
    {DType::F8_E8M0, "F8_E8M0", 8},
    {DType::F8_E4M3FNUZ, "F8_E4M3FNUZ", 8},
    {DType::F8_E5M2FNUZ, "F8_E5M2FNUZ", 8},
    {DType::I16, "I16", 16},
    {DType::U16, "U16", 16},
    {DType::F16, "F16", 16},
    {DType::BF16, "BF16", 16},
    {DType::I32, "I32", 32},
    {DType::U32, "U32", 32},
    {DType::F32, "F32", 32},
    {DType::C64, "C64", 64},
    {DType::F64, "F64", 64},
    {DType::I64, "I64", 64},
    {DType::U64, "U64", 64},
};
} // namespace

unsigned dtypeBits(DType dtype) {
  return kDTypes[static_cast<size_t>(dtype)].bits;
}

const char *dtypeName(DType dtype) {
  return kDTypes[static_cast<size_t>(dtype)].name;
}

bool parseDType(std::string_view name, DType &out) {
  for (const DTypeEntry &e : kDTypes) {
    if (name == e.name) {
      out = e.dtype;
      return true;
    }
  }
  return false;
}

std::string supportedDTypeNames() {
  std::string r;
  for (const DTypeEntry &e : kDTypes) {
    if (!r.empty())
      r += ", ";
    r += e.name;
  }
  return r;
}

//===----------------------------------------------------------------------===//
// fp16 / bf16
//===----------------------------------------------------------------------===//

static uint32_t floatBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return u;
}

static float bitsFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}

float f16ToF32(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1F;
  uint32_t man = h & 0x3FF;
  if (exp == 0x1F) // Inf/NaN: keep the payload in the top mantissa bits.
    return bitsFloat(sign | 0x7F800000 | (man << 13));
  if (exp != 0) // Normal: rebias 15 -> 127.
    return bitsFloat(sign | ((exp + 112) << 23) | (man << 13));
  if (man == 0)
    return bitsFloat(sign);
  // Subnormal m * 2^-24 is a normal float 1.f * 2^(p - 24), p = top bit.
  unsigned p = 31 - static_cast<unsigned>(__builtin_clz(man));
  uint32_t frac = (man << (23 - p)) & 0x7FFFFF;
  return bitsFloat(sign | ((p + 103) << 23) | frac);
}

uint16_t f32ToF16(float value) {
  uint32_t x = floatBits(value);
  uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  uint32_t ax = x & 0x7FFFFFFF;
  if (ax >= 0x7F800000) {
    if (ax == 0x7F800000)
      return sign | 0x7C00;
    // NaN: keep the top payload bits; only force the quiet bit when they are
    // all zero, so that no NaN collapses into infinity.
    uint32_t m = (ax >> 13) & 0x3FF;
    return static_cast<uint16_t>(sign | 0x7C00 | (m ? m : 0x200));
  }
  // 65520 is halfway between 65504 (odd mantissa) and 2^16: it and
  // everything above round to infinity.
  if (ax >= 0x477FF000)
    return sign | 0x7C00;
  if (ax >= 0x38800000) { // >= 2^-14: normal half.
    uint32_t h = (((ax >> 23) - 112) << 10) | ((ax >> 13) & 0x3FF);
    uint32_t rem = ax & 0x1FFF;
    // A carry out of the mantissa correctly bumps the exponent.
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1)))
      ++h;
    return static_cast<uint16_t>(sign | h);
  }
  // Below 2^-25 everything rounds to zero; 2^-25 itself is a tie to 0.
  if (ax < 0x33000000)
    return sign;
  // Subnormal half: count units of 2^-24. The float is mant * 2^(e - 150),
  // so the shift is 126 - e (between 14 and 24 here).
  uint32_t e = ax >> 23;
  uint32_t mant = (ax & 0x7FFFFF) | 0x800000;
  uint32_t shift = 126 - e;
  uint32_t h = mant >> shift;
  uint32_t rem = mant & ((1u << shift) - 1);
  uint32_t half = 1u << (shift - 1);
  // Rounding up from 0x3FF yields 0x400, the smallest normal: also correct.
  if (rem > half || (rem == half && (h & 1)))
    ++h;
  return static_cast<uint16_t>(sign | h);
}

float bf16ToF32(uint16_t bits) {
  return bitsFloat(static_cast<uint32_t>(bits) << 16);
}

uint16_t f32ToBF16(float value) {
  uint32_t x = floatBits(value);
  if ((x & 0x7FFFFFFF) > 0x7F800000) {
    // NaN: truncate, never round (rounding could carry into infinity).
    uint16_t h = static_cast<uint16_t>(x >> 16);
    return (h & 0x7F) ? h : static_cast<uint16_t>(h | 0x40);
  }
  uint32_t lsb = (x >> 16) & 1;
  x += 0x7FFF + lsb; // Ties to even; overflow rounds into infinity.
  return static_cast<uint16_t>(x >> 16);
}

//===----------------------------------------------------------------------===//
// Reader helpers
//===----------------------------------------------------------------------===//

int64_t TensorInfo::numElements() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

namespace {

/// Formats a list of dims (already validated or raw u64) as "[2, 3]".
template <typename T> std::string formatShape(const std::vector<T> &dims) {
  std::string r = "[";
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i)
      r += ", ";
    r += std::to_string(dims[i]);
  }
  return r + "]";
}

/// Reads a little-endian u64 from 8 bytes.
uint64_t readLE64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i)
    v = (v << 8) | p[i];
  return v;
}

/// True if c is JSON whitespace.
bool isJsonSpace(uint8_t c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

} // namespace

Status rowSlice(const TensorInfo &info, int64_t first, int64_t count,
                TensorInfo &out) {
  std::string who = "tensor " + json::quote(info.name);
  int64_t rows = info.shape.empty() ? 1 : info.shape[0];
  if (first < 0 || count < 0 || first > rows || count > rows - first)
    return Status::error(who + ": rows [" + std::to_string(first) + ", " +
                         std::to_string(first + count) + ") are outside its " +
                         std::to_string(rows) + " rows");
  if (dtypeBits(info.dtype) % 8 != 0)
    return Status::error(who + ": " + dtypeName(info.dtype) +
                         " rows cannot be sliced by bytes");
  // The header was validated, so these products fit (they are at most the
  // tensor's byte size).
  uint64_t rowBytes = rows == 0 ? 0 : info.byteSize() / uint64_t(rows);
  out = info;
  if (!out.shape.empty())
    out.shape[0] = count;
  else if (count == 0)
    out.shape = {0}; // no element of a scalar
  out.begin = info.begin + uint64_t(first) * rowBytes;
  out.end = out.begin + uint64_t(count) * rowBytes;
  return Status::ok();
}

SafetensorsFile::~SafetensorsFile() { unmapFile(FileMapping{mapping, size}); }

void SafetensorsFile::releasePages(const TensorInfo &info) const {
  if (!mapping || info.byteSize() == 0)
    return;
  // Only whole pages inside the tensor: a neighbour sharing a partial page
  // keeps its mapping (dropping it would be harmless, but pointless).
  uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  uintptr_t begin = reinterpret_cast<uintptr_t>(tensorData(info));
  uintptr_t end = begin + info.byteSize();
  begin = (begin + page - 1) & ~(page - 1);
  end &= ~(page - 1);
  if (end > begin)
    (void)::madvise(reinterpret_cast<void *>(begin), end - begin,
                    MADV_DONTNEED);
}

Status SafetensorsFile::error(const std::string &what) const {
  return Status::error(name + ": " + what);
}

const TensorInfo *SafetensorsFile::find(const std::string &tensorName) const {
  auto it = byName.find(tensorName);
  return it == byName.end() ? nullptr : &infos[it->second];
}

Status SafetensorsFile::open(const std::string &path,
                             std::unique_ptr<SafetensorsFile> &out,
                             const SafetensorsLimits &limits) {
  FileMapping m;
  // A file too short to hold any header is not mapped (mmap of length 0
  // fails); validate() reports it as a format error.
  QC_RETURN_IF_ERROR(mapFileReadOnly(path, 8, m));
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->name = path;
  file->size = m.size;
  file->mapping = m.address;
  file->base = static_cast<const uint8_t *>(m.address);
  QC_RETURN_IF_ERROR(file->validate(limits));
  out = std::move(file);
  return Status::ok();
}

Status SafetensorsFile::parse(const uint8_t *data, size_t size,
                              const std::string &displayName,
                              std::unique_ptr<SafetensorsFile> &out,
                              const SafetensorsLimits &limits) {
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->name = displayName;
  file->base = data;
  file->size = data ? size : 0;
  QC_RETURN_IF_ERROR(file->validate(limits));
  out = std::move(file);
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// Header validation
//===----------------------------------------------------------------------===//

namespace {

/// Validation of one tensor entry of the header (RELIABILITY.md rows 5-7).
/// Produces messages without the file prefix; the caller adds it.
class EntryChecker {
public:
  EntryChecker(const std::string &tensorName, const SafetensorsLimits &limits)
      : label("tensor " + json::quote(tensorName)), limits(limits) {}

  Status check(const json::Value &entry, TensorInfo &info) {
    if (!entry.isObject())
      return fail(std::string("entry must be an object, found ") +
                  json::kindName(entry.kind()));
    const json::Value *dtype = nullptr, *shape = nullptr, *offsets = nullptr;
    for (const json::Value::Member &m : entry.asObject()) {
      if (m.first == "dtype")
        dtype = &m.second;
      else if (m.first == "shape")
        shape = &m.second;
      else if (m.first == "data_offsets")
        offsets = &m.second;
      else
        return fail("unexpected key " + json::quote(m.first) +
                    " (expected only dtype, shape, data_offsets)");
    }
    if (!dtype || !shape || !offsets)
      return fail(std::string("missing '") +
                  (!dtype   ? "dtype"
                   : !shape ? "shape"
                            : "data_offsets") +
                  "'");
    QC_RETURN_IF_ERROR(checkDType(*dtype, info));
    uint64_t byteSize = 0;
    QC_RETURN_IF_ERROR(checkShape(*shape, info, byteSize));
    return checkOffsets(*offsets, byteSize, info);
  }

private:
  std::string label;
  const SafetensorsLimits &limits;
  std::vector<uint64_t> rawDims;

  Status fail(const std::string &what) const {
    return Status::error(label + ": " + what);
  }

  Status checkDType(const json::Value &v, TensorInfo &info) {
    if (!v.isString())
      return fail(std::string("'dtype' must be a string, found ") +
                  json::kindName(v.kind()));
    if (!parseDType(v.asString(), info.dtype))
      return fail("unknown dtype " + json::quote(v.asString()) +
                  "; supported: " + supportedDTypeNames());
    return Status::ok();
  }

  /// Checks rank and dims and computes the byte size with checked u64
  /// arithmetic: dims come straight from the file and may be anything up to
  /// 2^64 - 1 (reference test `validation_overflow`).
  Status checkShape(const json::Value &v, TensorInfo &info,
                    uint64_t &byteSize) {
    if (!v.isArray())
      return fail(std::string("'shape' must be an array, found ") +
                  json::kindName(v.kind()));
    const json::Value::Array &dims = v.asArray();
    if (dims.size() > limits.maxRank)
      return fail("shape has " + std::to_string(dims.size()) +
                  " dimensions, more than the limit of " +
                  std::to_string(limits.maxRank));
    for (size_t i = 0; i < dims.size(); ++i) {
      const json::Value &d = dims[i];
      if (d.isInt64() && d.asInt64() < 0)
        return fail("dimension " + std::to_string(i) + " is negative (" +
                    std::to_string(d.asInt64()) + ")");
      if (!d.isUInt64())
        return fail("dimension " + std::to_string(i) +
                    " is not a non-negative integer below 2^64");
      rawDims.push_back(d.asUInt64());
    }
    uint64_t elems = 1;
    for (uint64_t d : rawDims)
      if (__builtin_mul_overflow(elems, d, &elems))
        return fail("element count of shape " + formatShape(rawDims) +
                    " overflows 64 bits");
    uint64_t bits;
    if (__builtin_mul_overflow(elems, dtypeBits(info.dtype), &bits))
      return fail("byte size of shape " + formatShape(rawDims) + " of " +
                  dtypeName(info.dtype) + " overflows 64 bits");
    if (bits % 8 != 0)
      return fail(std::to_string(elems) + " elements of " +
                  std::to_string(dtypeBits(info.dtype)) + "-bit dtype " +
                  dtypeName(info.dtype) +
                  " do not end on a byte boundary (misaligned slice)");
    // Dims are int64 downstream (HostTensor, ModelConfig); a shape whose
    // element count passes the u64 checks can still exceed that.
    constexpr uint64_t kMax = std::numeric_limits<int64_t>::max();
    if (elems > kMax)
      return fail("element count of shape " + formatShape(rawDims) +
                  " exceeds 2^63 - 1");
    for (uint64_t d : rawDims) {
      if (d > kMax)
        return fail("dimension " + std::to_string(d) + " exceeds 2^63 - 1");
      info.shape.push_back(static_cast<int64_t>(d));
    }
    byteSize = bits / 8;
    return Status::ok();
  }

  Status checkOffsets(const json::Value &v, uint64_t byteSize,
                      TensorInfo &info) {
    if (!v.isArray() || v.asArray().size() != 2 || !v.asArray()[0].isUInt64() ||
        !v.asArray()[1].isUInt64())
      return fail("'data_offsets' must be an array of two non-negative "
                  "integers [begin, end]");
    info.begin = v.asArray()[0].asUInt64();
    info.end = v.asArray()[1].asUInt64();
    std::string span = "data_offsets [" + std::to_string(info.begin) + ", " +
                       std::to_string(info.end) + "]";
    if (info.end < info.begin)
      return fail(span + " end before begin (invalid offset)");
    if (info.end - info.begin != byteSize)
      return fail(span + " hold " + std::to_string(info.end - info.begin) +
                  " bytes but shape " + formatShape(info.shape) + " of " +
                  dtypeName(info.dtype) + " needs " + std::to_string(byteSize) +
                  " bytes (invalid tensor info)");
    return Status::ok();
  }
};

} // namespace

Status SafetensorsFile::validate(const SafetensorsLimits &limits) {
  // Row 1/2: the 8-byte prefix, the header cap and the header span.
  if (size < 8)
    return error("file is " + std::to_string(size) +
                 " bytes, too small to hold the 8-byte header length "
                 "(header too small)");
  uint64_t n = readLE64(base);
  if (n > limits.maxHeaderBytes)
    return error(
        "header length " + std::to_string(n) + " exceeds the limit of " +
        std::to_string(limits.maxHeaderBytes) + " bytes (header too large)");
  uint64_t stop;
  if (__builtin_add_overflow(n, uint64_t(8), &stop) || stop > size)
    return error(
        "header length " + std::to_string(n) + " needs " +
        (stop < n ? std::string("more than 2^64") : std::to_string(stop)) +
        " bytes but the file has only " + std::to_string(size) +
        " (invalid header length)");
  headerLen = n;
  std::string_view header(reinterpret_cast<const char *>(base + 8), n);

  // Row 3: UTF-8, leading '{', JSON, object.
  size_t bad = 0;
  if (!json::isValidUtf8(header.data(), header.size(), &bad))
    return error("header is not valid UTF-8 (byte " + std::to_string(8 + bad) +
                 " of the file)");
  size_t first = 0;
  while (first < header.size() && isJsonSpace(header[first]))
    ++first;
  if (first == header.size() || header[first] != '{')
    return error("header must be a JSON object starting with '{'");
  json::Value root;
  json::ParseOptions popts;
  popts.maxDepth = limits.maxJsonDepth;
  size_t jsonOffset = 0;
  Status ps = json::parse(header, root, popts, &jsonOffset);
  if (!ps) {
    // Drop the parser's "JSON error at byte N: " prefix in favour of both
    // the header and the file offset.
    const std::string &pm = ps.message();
    size_t colon = pm.find(": ");
    std::string what = colon == std::string::npos ? pm : pm.substr(colon + 2);
    return error("header is not valid JSON at header byte " +
                 std::to_string(jsonOffset) + " (file byte " +
                 std::to_string(8 + jsonOffset) + "): " + what);
  }
  if (!root.isObject())
    return error("header must be a JSON object");

  // Rows 3, 5-7: each entry on its own.
  infos.reserve(root.asObject().size());
  for (const json::Value::Member &m : root.asObject()) {
    if (m.first == "__metadata__") {
      // The reference reads the map as an Option: null means absent.
      if (m.second.isNull())
        continue;
      if (!m.second.isObject())
        return error(std::string("__metadata__ must be an object, found ") +
                     json::kindName(m.second.kind()));
      for (const json::Value::Member &kv : m.second.asObject()) {
        if (!kv.second.isString())
          return error("__metadata__ value for key " + json::quote(kv.first) +
                       " must be a string, found " +
                       json::kindName(kv.second.kind()));
        meta.emplace(kv.first, kv.second.asString());
      }
      continue;
    }
    TensorInfo info;
    info.name = m.first;
    Status es = EntryChecker(m.first, limits).check(m.second, info);
    if (!es)
      return error(es.message());
    infos.push_back(std::move(info));
  }

  // Row 4: sorted by offsets, the tensors must tile [0, dataSize) exactly.
  // Names break ties between zero-sized tensors so the order is stable.
  std::sort(infos.begin(), infos.end(),
            [](const TensorInfo &a, const TensorInfo &b) {
              if (a.begin != b.begin)
                return a.begin < b.begin;
              if (a.end != b.end)
                return a.end < b.end;
              return a.name < b.name;
            });
  uint64_t expected = 0;
  for (size_t i = 0; i < infos.size(); ++i) {
    const TensorInfo &t = infos[i];
    if (t.begin == expected) {
      expected = t.end;
      continue;
    }
    std::string who = "tensor " + json::quote(t.name) + ": data_offsets [" +
                      std::to_string(t.begin) + ", " + std::to_string(t.end) +
                      "]";
    if (i == 0)
      return error(who + " must begin at 0 (invalid offset: hole before the "
                         "first tensor)");
    std::string prev = "tensor " + json::quote(infos[i - 1].name) +
                       " ending at " + std::to_string(expected);
    if (t.begin > expected)
      return error(who + " leave a " + std::to_string(t.begin - expected) +
                   "-byte hole after " + prev + " (invalid offset)");
    return error(who + " overlap " + prev + " (invalid offset)");
  }
  uint64_t dataBytes = size - stop;
  if (expected != dataBytes) {
    uint64_t wantFile = stop + expected; // <= 2^64: both were validated.
    if (expected > dataBytes)
      return error("file is truncated: tensor " +
                   json::quote(infos.back().name) + " ends at data byte " +
                   std::to_string(expected) + " but the data section has " +
                   std::to_string(dataBytes) + " bytes (expected " +
                   std::to_string(wantFile) + " bytes in all, file has " +
                   std::to_string(size) + ")");
    return error(std::to_string(dataBytes - expected) +
                 " trailing bytes after the last tensor (expected " +
                 std::to_string(wantFile) + " bytes in all, file has " +
                 std::to_string(size) +
                 "); data outside every tensor is rejected to rule out "
                 "polyglot files");
  }

  // Row 8: duplicate names cannot get here (the JSON parser rejects
  // duplicate keys), but the index is the last line of defence.
  byName.reserve(infos.size());
  for (size_t i = 0; i < infos.size(); ++i)
    if (!byName.emplace(infos[i].name, i).second)
      return error("duplicate tensor " + json::quote(infos[i].name));
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// Decoding
//===----------------------------------------------------------------------===//

Status SafetensorsFile::readAsF32(const std::string &tensorName,
                                  std::vector<float> &out,
                                  bool checkFinite) const {
  const TensorInfo *info = find(tensorName);
  if (!info)
    return error("no tensor named " + json::quote(tensorName));
  return readAsF32(*info, out, checkFinite);
}

Status SafetensorsFile::readAsF32(const TensorInfo &info,
                                  std::vector<float> &out,
                                  bool checkFinite) const {
  std::string who = "tensor " + json::quote(info.name);
  if (info.dtype != DType::F32 && info.dtype != DType::F16 &&
      info.dtype != DType::BF16 && info.dtype != DType::F64)
    return error(who + " has dtype " + dtypeName(info.dtype) +
                 ", which cannot be read as fp32 (supported: F32, F16, "
                 "BF16, F64)");
  // The element count was validated against the bytes present in the file,
  // so this allocation is bounded by the file size.
  size_t n = static_cast<size_t>(info.numElements());
  const uint8_t *src = tensorData(info);
  std::vector<float> result(n);
  size_t firstBad = n;
  switch (info.dtype) {
  case DType::F32:
    if (n)
      std::memcpy(result.data(), src, n * sizeof(float));
    break;
  case DType::F16:
  case DType::BF16: {
    bool isHalf = info.dtype == DType::F16;
    for (size_t i = 0; i < n; ++i) {
      uint16_t h = static_cast<uint16_t>(src[2 * i] | (src[2 * i + 1] << 8));
      result[i] = isHalf ? f16ToF32(h) : bf16ToF32(h);
    }
    break;
  }
  default: { // F64
    for (size_t i = 0; i < n; ++i) {
      double v;
      std::memcpy(&v, src + 8 * i, sizeof(v));
      result[i] = static_cast<float>(v);
      if (checkFinite && std::isfinite(v) && !std::isfinite(result[i])) {
        char buf[32];
        auto r = std::to_chars(buf, buf + sizeof(buf), v);
        return error(who + " (F64) value " + std::string(buf, r.ptr) +
                     " at flat index " + std::to_string(i) + " overflows fp32");
      }
    }
    break;
  }
  }
  if (checkFinite) {
    for (size_t i = 0; i < n; ++i) {
      if (!std::isfinite(result[i])) {
        firstBad = i;
        break;
      }
    }
    if (firstBad != n) {
      float v = result[firstBad];
      const char *what = std::isnan(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf";
      return error(who + " (" + dtypeName(info.dtype) + ") has a non-finite " +
                   "value (" + what + ") at flat index " +
                   std::to_string(firstBad));
    }
  }
  out = std::move(result);
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// Atomic file writes
//===----------------------------------------------------------------------===//

static std::atomic<int64_t> gWriteFaultAfter{-1};

void setAtomicWriteFaultForTesting(int64_t failAfterBytes) {
  gWriteFaultAfter.store(failAfterBytes);
}

namespace {

/// write(2) until done, retrying short writes and EINTR. `budget` is the
/// injected-fault allowance (negative = unlimited); it shrinks as bytes go
/// out and produces EIO when exhausted.
bool writeAll(int fd, const uint8_t *p, size_t n, int64_t &budget) {
  while (n > 0) {
    size_t chunk = std::min<size_t>(n, size_t(1) << 30);
    if (budget >= 0) {
      if (budget == 0) {
        errno = EIO;
        return false;
      }
      chunk = std::min<size_t>(chunk, static_cast<size_t>(budget));
    }
    ssize_t w = ::write(fd, p, chunk);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return false;
    }
    if (budget >= 0)
      budget -= w;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

/// pread(2) exactly `n` bytes at `offset`, retrying short reads and EINTR;
/// a premature end of file is EIO.
bool readAllAt(int fd, uint8_t *p, size_t n, uint64_t offset) {
  while (n > 0) {
    ssize_t r = ::pread(fd, p, n, static_cast<off_t>(offset));
    if (r < 0) {
      if (errno == EINTR)
        continue;
      return false;
    }
    if (r == 0) {
      errno = EIO;
      return false;
    }
    p += r;
    n -= static_cast<size_t>(r);
    offset += static_cast<uint64_t>(r);
  }
  return true;
}

/// Copies `piece` to `fd`: from memory, or from its file in 8 MiB chunks
/// through one buffer (bounded memory for spilled gigabytes).
bool writePiece(int fd, const ByteSpan &piece, int64_t &budget) {
  if (piece.fd < 0)
    return writeAll(fd, static_cast<const uint8_t *>(piece.data), piece.size,
                    budget);
  constexpr size_t kChunk = size_t(8) << 20;
  std::vector<uint8_t> buf(std::min(piece.size, kChunk));
  for (size_t done = 0; done < piece.size;) {
    size_t n = std::min(kChunk, piece.size - done);
    if (!readAllAt(piece.fd, buf.data(), n, piece.offset + done) ||
        !writeAll(fd, buf.data(), n, budget))
      return false;
    done += n;
  }
  return true;
}

} // namespace

unsigned permissionsUnderUmask(unsigned requested) {
  // umask() can only be read by setting it; /proc/self/status reports it
  // without that race (Linux >= 4.7), so it is tried first.
  unsigned mask = 0022;
  bool known = false;
  if (std::FILE *f = std::fopen("/proc/self/status", "r")) {
    char line[256];
    while (std::fgets(line, sizeof line, f))
      if (std::sscanf(line, "Umask: %o", &mask) == 1) {
        known = true;
        break;
      }
    std::fclose(f);
  }
  if (!known) {
    mode_t old = ::umask(0);
    ::umask(old);
    mask = static_cast<unsigned>(old);
  }
  return requested & ~mask & 0777u;
}

Status writeFileAtomically(const std::string &path,
                           const std::vector<ByteSpan> &pieces) {
  int64_t budget = gWriteFaultAfter.exchange(-1);
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "."
                    : slash == 0               ? "/"
                                               : path.substr(0, slash);
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  if (base.empty())
    return Status::error(path + ": not a file path");
  // Same directory as the target so that rename() stays on one filesystem
  // and is atomic.
  // What killed runs left for this output goes first (FileMapping.h).
  removeStaleTemps(path);
  std::string tmp = tempSiblingTemplate(path, "tmp");
  int fd = ::mkostemp(&tmp[0], O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    return Status::error(path + ": cannot create a temporary file in " + dir +
                         ": " + std::strerror(err));
  }
  auto failWith = [&](const std::string &what, int err) {
    if (fd >= 0)
      ::close(fd);
    ::unlink(tmp.c_str());
    return Status::error(path + ": " + what + ": " + std::strerror(err) +
                         " (the file was not modified)");
  };
  uint64_t written = 0;
  for (const ByteSpan &piece : pieces) {
    if (!writePiece(fd, piece, budget)) {
      int err = errno;
      return failWith(
          "write failed after " + std::to_string(written) + " bytes", err);
    }
    written += piece.size;
  }
  // mkstemp creates 0600; published files get the mode any other program's
  // output would get under the user's umask.
  if (::fchmod(fd, permissionsUnderUmask(0666)) != 0) {
    int err = errno;
    return failWith("cannot set permissions", err);
  }
  if (::fsync(fd) != 0) {
    int err = errno;
    return failWith("fsync failed", err);
  }
  int closeResult = ::close(fd);
  int closeErr = errno;
  fd = -1;
  if (closeResult != 0)
    return failWith("close failed", closeErr);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    return failWith("cannot rename the temporary file into place", err);
  }
  // Persist the rename itself. Some filesystems refuse fsync on a
  // directory; the data is already durable then, so that is not an error.
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// Writer
//===----------------------------------------------------------------------===//

Status SafetensorsWriter::addEntry(Entry entry) {
  std::string who = "safetensors writer: tensor " + json::quote(entry.name);
  if (entry.name == "__metadata__")
    return Status::error(who + ": the name is reserved");
  if (!json::isValidUtf8(entry.name.data(), entry.name.size()))
    return Status::error(who + ": the name is not valid UTF-8");
  if (index.count(entry.name))
    return Status::error(who + ": added twice");
  uint64_t elems = 1;
  for (int64_t d : entry.shape) {
    if (d < 0)
      return Status::error(who + ": negative dimension in shape " +
                           formatShape(entry.shape));
    if (__builtin_mul_overflow(elems, static_cast<uint64_t>(d), &elems))
      return Status::error(who + ": shape " + formatShape(entry.shape) +
                           " overflows 64 bits");
  }
  uint64_t bits;
  if (__builtin_mul_overflow(elems, dtypeBits(entry.dtype), &bits) ||
      elems > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    return Status::error(who + ": shape " + formatShape(entry.shape) +
                         " is too large");
  if (bits % 8 != 0)
    return Status::error(who + ": " + std::to_string(elems) + " elements of " +
                         dtypeName(entry.dtype) +
                         " do not end on a byte boundary");
  if (bits / 8 != entry.byteCount)
    return Status::error(who + ": shape " + formatShape(entry.shape) + " of " +
                         dtypeName(entry.dtype) + " needs " +
                         std::to_string(bits / 8) + " bytes, got " +
                         std::to_string(entry.byteCount));
  if (spill && !entry.owned.empty()) {
    // Appended to the spill file and released from memory.
    int64_t budget = -1;
    if (!writeAll(spill->fd, entry.owned.data(), entry.owned.size(), budget)) {
      int err = errno;
      return Status::error(spill->outputPath + ": write failed after " +
                           std::to_string(spill->size) + " bytes: " +
                           std::strerror(err) + " (the file was not modified)");
    }
    entry.spillOffset = static_cast<int64_t>(spill->size);
    spill->size += entry.owned.size();
    std::vector<uint8_t>().swap(entry.owned);
    entry.data = nullptr;
  }
  index.emplace(entry.name, entries.size());
  totalData += entry.byteCount;
  entries.push_back(std::make_unique<Entry>(std::move(entry)));
  return Status::ok();
}

SafetensorsWriter::SpillFile::~SpillFile() {
  if (fd >= 0)
    ::close(fd);
}

Status SafetensorsWriter::spillTo(const std::string &dir,
                                  const std::string &outputPath) {
  auto file = std::make_shared<SpillFile>();
  file->outputPath = outputPath;
  // O_TMPFILE makes a file with no name, so nothing is left behind however
  // the process ends; filesystems without it get a named file unlinked at
  // once.
  file->fd = ::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (file->fd < 0) {
    std::string tmpl = dir + "/.qc-spill-XXXXXX";
    file->fd = ::mkostemp(&tmpl[0], O_CLOEXEC);
    if (file->fd >= 0)
      ::unlink(tmpl.c_str());
  }
  if (file->fd < 0) {
    int err = errno;
    return Status::error(outputPath + ": cannot create a temporary file in " +
                         dir + ": " + std::strerror(err));
  }
  spill = std::move(file);
  return Status::ok();
}

Status SafetensorsWriter::add(const std::string &name, DType dtype,
                              const std::vector<int64_t> &shape,
                              std::vector<uint8_t> bytes) {
  Entry e;
  e.name = name;
  e.dtype = dtype;
  e.shape = shape;
  e.byteCount = bytes.size();
  e.owned = std::move(bytes);
  e.data = e.owned.data(); // The heap buffer survives moving the vector.
  return addEntry(std::move(e));
}

Status SafetensorsWriter::addView(const std::string &name, DType dtype,
                                  const std::vector<int64_t> &shape,
                                  const void *data, size_t byteCount) {
  Entry e;
  e.name = name;
  e.dtype = dtype;
  e.shape = shape;
  e.data = static_cast<const uint8_t *>(data);
  e.byteCount = byteCount;
  return addEntry(std::move(e));
}

/// Element count of a caller-supplied shape, or an error; used before
/// reading `data` so that a bad shape never drives an out-of-bounds read.
static Status checkedElementCount(const std::string &name,
                                  const std::vector<int64_t> &shape,
                                  size_t &count) {
  uint64_t n = 1;
  for (int64_t d : shape)
    if (d < 0 || __builtin_mul_overflow(n, static_cast<uint64_t>(d), &n) ||
        n > std::numeric_limits<size_t>::max() / sizeof(float))
      return Status::error("safetensors writer: tensor " + json::quote(name) +
                           ": invalid shape " + formatShape(shape));
  count = static_cast<size_t>(n);
  return Status::ok();
}

Status SafetensorsWriter::addF32(const std::string &name,
                                 const std::vector<int64_t> &shape,
                                 const float *data) {
  return addFromF32(name, shape, data, DType::F32);
}

Status SafetensorsWriter::addFromF32(const std::string &name,
                                     const std::vector<int64_t> &shape,
                                     const float *data, DType storeAs) {
  size_t n = 0;
  QC_RETURN_IF_ERROR(checkedElementCount(name, shape, n));
  std::vector<uint8_t> bytes;
  switch (storeAs) {
  case DType::F32:
    bytes.resize(n * 4);
    if (n)
      std::memcpy(bytes.data(), data, n * 4);
    break;
  case DType::F16:
  case DType::BF16:
    bytes.resize(n * 2);
    for (size_t i = 0; i < n; ++i) {
      uint16_t h =
          storeAs == DType::F16 ? f32ToF16(data[i]) : f32ToBF16(data[i]);
      bytes[2 * i] = static_cast<uint8_t>(h & 0xFF);
      bytes[2 * i + 1] = static_cast<uint8_t>(h >> 8);
    }
    break;
  default:
    return Status::error("safetensors writer: tensor " + json::quote(name) +
                         ": cannot store fp32 data as " + dtypeName(storeAs) +
                         " (supported: F32, F16, BF16)");
  }
  return add(name, storeAs, shape, std::move(bytes));
}

Status SafetensorsWriter::setMetadata(std::map<std::string, std::string> m) {
  for (const auto &kv : m)
    if (!json::isValidUtf8(kv.first.data(), kv.first.size()) ||
        !json::isValidUtf8(kv.second.data(), kv.second.size()))
      return Status::error("safetensors writer: __metadata__ entry " +
                           json::quote(kv.first) + " is not valid UTF-8");
  meta = std::move(m);
  return Status::ok();
}

void SafetensorsWriter::buildHeader(std::string &prefixAndHeader,
                                    std::vector<const Entry *> &order) const {
  order.clear();
  for (const auto &e : entries)
    order.push_back(e.get());
  // DType follows the reference enum, which is ordered by alignment, so
  // this is the reference serializer's order (dtype descending, then name).
  std::sort(order.begin(), order.end(), [](const Entry *a, const Entry *b) {
    if (a->dtype != b->dtype)
      return a->dtype > b->dtype;
    return a->name < b->name;
  });
  json::Value root = json::Value::object();
  if (!meta.empty()) {
    json::Value m = json::Value::object();
    for (const auto &kv : meta)
      m.set(kv.first, json::Value::string(kv.second));
    root.set("__metadata__", std::move(m));
  }
  uint64_t offset = 0;
  for (const Entry *e : order) {
    json::Value t = json::Value::object();
    t.set("dtype", json::Value::string(dtypeName(e->dtype)));
    json::Value shape = json::Value::array();
    for (int64_t d : e->shape)
      shape.push(json::Value::integer(d));
    t.set("shape", std::move(shape));
    json::Value offs = json::Value::array();
    offs.push(json::Value::unsignedInteger(offset));
    offs.push(json::Value::unsignedInteger(offset + e->byteCount));
    t.set("data_offsets", std::move(offs));
    offset += e->byteCount;
    root.set(e->name, std::move(t));
  }
  std::string header = json::write(root);
  // Pad so the data section starts 8-byte aligned, as the reference does.
  header.append((8 - header.size() % 8) % 8, ' ');
  prefixAndHeader.assign(8, '\0');
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i)
    prefixAndHeader[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
  prefixAndHeader += header;
}

Status SafetensorsWriter::serialize(std::vector<uint8_t> &out) const {
  std::string head;
  std::vector<const Entry *> order;
  buildHeader(head, order);
  out.assign(head.begin(), head.end());
  out.reserve(head.size() + totalData);
  for (const Entry *e : order) {
    if (e->spillOffset < 0) {
      out.insert(out.end(), e->data, e->data + e->byteCount);
      continue;
    }
    size_t at = out.size();
    out.resize(at + e->byteCount);
    if (!readAllAt(spill->fd, out.data() + at, e->byteCount,
                   static_cast<uint64_t>(e->spillOffset))) {
      int err = errno;
      return Status::error(
          "safetensors writer: tensor " + json::quote(e->name) +
          ": cannot read the temporary spill file: " + std::strerror(err));
    }
  }
  return Status::ok();
}

Status SafetensorsWriter::writeFile(const std::string &path) const {
  std::string head;
  std::vector<const Entry *> order;
  buildHeader(head, order);
  std::vector<ByteSpan> pieces;
  pieces.push_back({head.data(), head.size()});
  for (const Entry *e : order)
    pieces.push_back(e->spillOffset < 0
                         ? ByteSpan{e->data, e->byteCount}
                         : ByteSpan{nullptr, e->byteCount, spill->fd,
                                    static_cast<uint64_t>(e->spillOffset)});
  return writeFileAtomically(path, pieces);
}

} // namespace qc
