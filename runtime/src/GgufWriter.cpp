//===- GgufWriter.cpp - Writes GGUF files ---------------------------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Key/value pairs are serialized as they are added (so their order is the
// caller's); tensors are kept with their bytes and laid out at serialize
// time, each at the next multiple of the alignment in the data section.
// Everything is little-endian, as GGUF requires.
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/GgufWriter.h"

#include "qc/runtime/Safetensors.h"

#include <cstring>

namespace qc {

namespace {

void putU32(std::vector<uint8_t> &b, uint32_t v) {
  for (int i = 0; i < 4; ++i)
    b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

void putU64(std::vector<uint8_t> &b, uint64_t v) {
  for (int i = 0; i < 8; ++i)
    b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

void putString(std::vector<uint8_t> &b, std::string_view s) {
  putU64(b, s.size());
  b.insert(b.end(), s.begin(), s.end());
}

/// Bytes of one scalar of `type` (0 for strings and arrays).
size_t scalarBytes(GgufType type) {
  switch (type) {
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

} // namespace

void GgufWriter::beginKey(const std::string &key, GgufType type) {
  if (!keys.insert(key).second && duplicateKey.empty())
    duplicateKey = key;
  ++kvCount;
  putString(kv, key);
  putU32(kv, static_cast<uint32_t>(type));
}

void GgufWriter::addString(const std::string &key, const std::string &value) {
  beginKey(key, GgufType::String);
  putString(kv, value);
}

void GgufWriter::addU32(const std::string &key, uint32_t value) {
  beginKey(key, GgufType::U32);
  putU32(kv, value);
}

void GgufWriter::addI32(const std::string &key, int32_t value) {
  beginKey(key, GgufType::I32);
  putU32(kv, static_cast<uint32_t>(value));
}

void GgufWriter::addU64(const std::string &key, uint64_t value) {
  beginKey(key, GgufType::U64);
  putU64(kv, value);
}

void GgufWriter::addF32(const std::string &key, float value) {
  beginKey(key, GgufType::F32);
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  putU32(kv, bits);
}

void GgufWriter::addBool(const std::string &key, bool value) {
  beginKey(key, GgufType::Bool);
  kv.push_back(value ? 1 : 0);
}

void GgufWriter::addStringArray(const std::string &key,
                                const std::vector<std::string> &values) {
  beginKey(key, GgufType::Array);
  putU32(kv, static_cast<uint32_t>(GgufType::String));
  putU64(kv, values.size());
  for (const std::string &s : values)
    putString(kv, s);
}

void GgufWriter::addF32Array(const std::string &key,
                             const std::vector<float> &values) {
  beginKey(key, GgufType::Array);
  putU32(kv, static_cast<uint32_t>(GgufType::F32));
  putU64(kv, values.size());
  for (float v : values) {
    uint32_t bits;
    std::memcpy(&bits, &v, 4);
    putU32(kv, bits);
  }
}

void GgufWriter::addI32Array(const std::string &key,
                             const std::vector<int32_t> &values) {
  beginKey(key, GgufType::Array);
  putU32(kv, static_cast<uint32_t>(GgufType::I32));
  putU64(kv, values.size());
  for (int32_t v : values)
    putU32(kv, static_cast<uint32_t>(v));
}

void GgufWriter::writeValueBody(const GgufValue &value) {
  if (value.type == GgufType::String) {
    putString(kv, value.str);
    return;
  }
  if (value.type != GgufType::Array) {
    // Scalars keep their bits zero- or sign-extended in `scalar`; the low
    // bytes are the value.
    for (size_t i = 0; i < scalarBytes(value.type); ++i)
      kv.push_back(static_cast<uint8_t>(value.scalar >> (8 * i)));
    return;
  }
  putU32(kv, static_cast<uint32_t>(value.elemType));
  putU64(kv, value.count);
  if (value.elemType == GgufType::String) {
    for (std::string_view s : value.strings)
      putString(kv, s);
  } else if (value.elemType == GgufType::Array) {
    // Each element is itself an array value: its own element type, count
    // and elements.
    for (const GgufValue &item : value.items)
      writeValueBody(item);
  } else if (value.raw) {
    const size_t n = scalarBytes(value.elemType) * value.count;
    kv.insert(kv.end(), value.raw, value.raw + n);
  }
}

void GgufWriter::addValue(const std::string &key, const GgufValue &value) {
  beginKey(key, value.type);
  writeValueBody(value);
}

Status GgufWriter::addTensor(const std::string &name, GgmlType type,
                             const std::vector<int64_t> &shape,
                             std::vector<uint8_t> bytes) {
  const std::string where = "GGUF tensor '" + name + "'";
  if (name.empty())
    return Status::error("GGUF tensor with an empty name");
  if (tensorNames.count(name))
    return Status::error(where + " is added twice");
  if (shape.empty() || shape.size() > 4)
    return Status::error(where + " has rank " + std::to_string(shape.size()) +
                         " (GGUF tensors have 1 to 4 dims)");
  uint64_t count = 1;
  Tensor t;
  t.name = name;
  t.type = type;
  for (auto it = shape.rbegin(); it != shape.rend(); ++it) {
    if (*it <= 0)
      return Status::error(where + " has a non-positive dim");
    t.dims.push_back(static_cast<uint64_t>(*it));
    count *= static_cast<uint64_t>(*it);
  }
  GgmlTypeTraits traits = ggmlTypeTraits(type);
  if (traits.blockSize > 1 && t.dims[0] % traits.blockSize != 0)
    return Status::error(where + ": its rows of " + std::to_string(t.dims[0]) +
                         " values are not whole " + ggmlTypeName(type) +
                         " blocks of " + std::to_string(traits.blockSize));
  uint64_t want = 0;
  if (!ggmlByteSize(type, count, want) || want != bytes.size())
    return Status::error(where + " has " + std::to_string(bytes.size()) +
                         " bytes, expected " + std::to_string(want) + " for " +
                         std::to_string(count) + " " + ggmlTypeName(type) +
                         " values");
  t.bytes = std::move(bytes);
  tensorNames.insert(name);
  tensors.push_back(std::move(t));
  return Status::ok();
}

Status GgufWriter::serialize(std::vector<uint8_t> &out) const {
  if (!duplicateKey.empty())
    return Status::error("GGUF metadata key '" + duplicateKey +
                         "' is added twice");
  out.clear();
  out.insert(out.end(), {'G', 'G', 'U', 'F'});
  putU32(out, 3);
  putU64(out, tensors.size());
  putU64(out, kvCount);
  out.insert(out.end(), kv.begin(), kv.end());
  uint64_t offset = 0;
  std::vector<uint64_t> offsets;
  for (const Tensor &t : tensors) {
    putString(out, t.name);
    putU32(out, static_cast<uint32_t>(t.dims.size()));
    for (uint64_t d : t.dims)
      putU64(out, d);
    putU32(out, static_cast<uint32_t>(t.type));
    putU64(out, offset);
    offsets.push_back(offset);
    offset += (t.bytes.size() + kAlignment - 1) / kAlignment * kAlignment;
  }
  out.resize((out.size() + kAlignment - 1) / kAlignment * kAlignment, 0);
  const size_t dataStart = out.size();
  out.resize(dataStart + offset, 0);
  for (size_t i = 0; i < tensors.size(); ++i)
    if (!tensors[i].bytes.empty())
      std::memcpy(out.data() + dataStart + offsets[i], tensors[i].bytes.data(),
                  tensors[i].bytes.size());
  return Status::ok();
}

Status GgufWriter::writeFile(const std::string &path) const {
  std::vector<uint8_t> bytes;
  QC_RETURN_IF_ERROR(serialize(bytes).withContext(path));
  return writeFileAtomically(path, {{bytes.data(), bytes.size()}});
}

} // namespace qc
