//===- GgufBuilder.h - Writes GGUF files for the tests ----------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// A small GGUF serializer for tests: metadata pairs and tensors go in, the
// bytes of a version-3 file come out, together with the byte positions of
// the header fields so that a test can corrupt exactly one of them (the way
// llama.cpp's test-gguf builds its bad files). Values are written raw, so a
// test can also produce files the format forbids (wrong types, bad counts).
//
//===----------------------------------------------------------------------===//

#ifndef QC_RUNTIME_TEST_GGUFBUILDER_H
#define QC_RUNTIME_TEST_GGUFBUILDER_H

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace qc::test {

/// Appends little-endian integers and GGUF strings to a byte vector.
struct GgufBytes {
  std::vector<uint8_t> b;
  void u8(uint8_t v) { b.push_back(v); }
  void u32(uint32_t v) {
    for (int i = 0; i < 4; ++i)
      b.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  void u64(uint64_t v) {
    for (int i = 0; i < 8; ++i)
      b.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  void f32(float v) {
    uint32_t u;
    std::memcpy(&u, &v, 4);
    u32(u);
  }
  void str(const std::string &s) {
    u64(s.size());
    b.insert(b.end(), s.begin(), s.end());
  }
  void raw(const std::vector<uint8_t> &r) {
    b.insert(b.end(), r.begin(), r.end());
  }
};

/// Builds a GGUF file; see the file comment.
class GgufBuilder {
public:
  /// Byte positions of the fields of one tensor info in the built file.
  struct TensorPos {
    size_t name = 0;   ///< the name's u64 length
    size_t nDims = 0;  ///< u32 n_dims
    size_t dims = 0;   ///< first u64 dim
    size_t type = 0;   ///< u32 ggml type
    size_t offset = 0; ///< u64 data offset
  };
  /// Where the header fields ended up (filled by build()).
  struct Layout {
    size_t version = 4, nTensors = 8, nKV = 16;
    std::vector<size_t> kv;         ///< each pair's key length field
    std::vector<TensorPos> tensors; ///< each tensor info
    size_t headerEnd = 0;           ///< end of the tensor infos
    size_t dataStart = 0;           ///< start of the data section
  };

  uint32_t version = 3;
  uint32_t alignment = 32; ///< layout alignment (also write general.alignment
                           ///< yourself when it is not 32)

  /// A pair whose value bytes (after the u32 type) are `valueBytes`.
  void addRaw(const std::string &key, uint32_t type,
              const std::vector<uint8_t> &valueBytes) {
    kvs.push_back({key, type, valueBytes});
  }
  void addU32(const std::string &key, uint32_t v) {
    GgufBytes x;
    x.u32(v);
    addRaw(key, 4, x.b);
  }
  void addI32(const std::string &key, int32_t v) {
    GgufBytes x;
    x.u32(static_cast<uint32_t>(v));
    addRaw(key, 5, x.b);
  }
  void addU64(const std::string &key, uint64_t v) {
    GgufBytes x;
    x.u64(v);
    addRaw(key, 10, x.b);
  }
  void addF32(const std::string &key, float v) {
    GgufBytes x;
    x.f32(v);
    addRaw(key, 6, x.b);
  }
  void addBool(const std::string &key, bool v) {
    addRaw(key, 7, {static_cast<uint8_t>(v)});
  }
  void addString(const std::string &key, const std::string &v) {
    GgufBytes x;
    x.str(v);
    addRaw(key, 8, x.b);
  }
  void addStringArray(const std::string &key,
                      const std::vector<std::string> &v) {
    GgufBytes x;
    x.u32(8);
    x.u64(v.size());
    for (const std::string &s : v)
      x.str(s);
    addRaw(key, 9, x.b);
  }
  void addI32Array(const std::string &key, const std::vector<int32_t> &v) {
    GgufBytes x;
    x.u32(5);
    x.u64(v.size());
    for (int32_t e : v)
      x.u32(static_cast<uint32_t>(e));
    addRaw(key, 9, x.b);
  }
  void addF32Array(const std::string &key, const std::vector<float> &v) {
    GgufBytes x;
    x.u32(6);
    x.u64(v.size());
    for (float e : v)
      x.f32(e);
    addRaw(key, 9, x.b);
  }

  /// A tensor with GGUF-order dims and raw data bytes; laid out in
  /// insertion order, each padded to the alignment.
  void addTensor(const std::string &name, const std::vector<uint64_t> &dims,
                 uint32_t type, const std::vector<uint8_t> &data) {
    tensors.push_back({name, dims, type, data});
  }
  /// A float32 tensor.
  void addF32Tensor(const std::string &name, const std::vector<uint64_t> &dims,
                    const std::vector<float> &values) {
    std::vector<uint8_t> d(values.size() * 4);
    if (!values.empty())
      std::memcpy(d.data(), values.data(), d.size());
    addTensor(name, dims, 0, d);
  }

  /// The file's bytes; `layout` receives the field positions.
  std::vector<uint8_t> build(Layout *layout = nullptr) const {
    Layout l;
    GgufBytes x;
    x.b = {'G', 'G', 'U', 'F'};
    x.u32(version);
    x.u64(tensors.size());
    x.u64(kvs.size());
    for (const KV &kv : kvs) {
      l.kv.push_back(x.b.size());
      x.str(kv.key);
      x.u32(kv.type);
      x.raw(kv.value);
    }
    uint64_t offset = 0;
    for (const Tensor &t : tensors) {
      TensorPos p;
      p.name = x.b.size();
      x.str(t.name);
      p.nDims = x.b.size();
      x.u32(static_cast<uint32_t>(t.dims.size()));
      p.dims = x.b.size();
      for (uint64_t d : t.dims)
        x.u64(d);
      p.type = x.b.size();
      x.u32(t.type);
      p.offset = x.b.size();
      x.u64(offset);
      offset += (t.data.size() + alignment - 1) / alignment * alignment;
      l.tensors.push_back(p);
    }
    l.headerEnd = x.b.size();
    while (x.b.size() % alignment)
      x.u8(0);
    l.dataStart = x.b.size();
    for (const Tensor &t : tensors) {
      x.raw(t.data);
      while ((x.b.size() - l.dataStart) % alignment)
        x.u8(0);
    }
    if (layout)
      *layout = l;
    return x.b;
  }

private:
  struct KV {
    std::string key;
    uint32_t type;
    std::vector<uint8_t> value;
  };
  struct Tensor {
    std::string name;
    std::vector<uint64_t> dims;
    uint32_t type;
    std::vector<uint8_t> data;
  };
  std::vector<KV> kvs;
  std::vector<Tensor> tensors;
};

/// Overwrites the little-endian u32/u64 at `pos`.
inline void patchU32(std::vector<uint8_t> &b, size_t pos, uint32_t v) {
  for (int i = 0; i < 4; ++i)
    b[pos + i] = static_cast<uint8_t>(v >> (8 * i));
}
inline void patchU64(std::vector<uint8_t> &b, size_t pos, uint64_t v) {
  for (int i = 0; i < 8; ++i)
    b[pos + i] = static_cast<uint8_t>(v >> (8 * i));
}

} // namespace qc::test

#endif // QC_RUNTIME_TEST_GGUFBUILDER_H
