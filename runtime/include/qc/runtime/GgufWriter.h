//===- GgufWriter.h - Writes GGUF files -------------------------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Serializes metadata and tensors into a version-3 GGUF file, the format
// llama.cpp loads (github.com/ggml-org/ggml docs/gguf.md): header, key/value
// pairs in insertion order, tensor infos, then the data section with every
// tensor at an offset that is a multiple of the alignment. Tensors are
// given as ready-made bytes of their ggml type (blocks for quantized types);
// the writer checks the byte count against the type and shape and that a
// quantized row holds whole blocks. Key/value pairs can be copied verbatim
// from another GGUF file (a tokenizer carried over). Files are written with
// writeFileAtomically (temporary name + rename), so a reader never sees a
// half-written model.
//
//===----------------------------------------------------------------------===//

#ifndef QC_RUNTIME_GGUFWRITER_H
#define QC_RUNTIME_GGUFWRITER_H

#include "qc/runtime/GgmlQuants.h"
#include "qc/runtime/Gguf.h"
#include "qc/runtime/Status.h"

#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace qc {

/// Builds a GGUF file in memory; see the file comment.
class GgufWriter {
public:
  /// A string value.
  void addString(const std::string &key, const std::string &value);
  /// A u32 value.
  void addU32(const std::string &key, uint32_t value);
  /// An i32 value.
  void addI32(const std::string &key, int32_t value);
  /// A u64 value.
  void addU64(const std::string &key, uint64_t value);
  /// An f32 value.
  void addF32(const std::string &key, float value);
  /// A bool value.
  void addBool(const std::string &key, bool value);
  /// An array of strings.
  void addStringArray(const std::string &key,
                      const std::vector<std::string> &values);
  /// An array of f32.
  void addF32Array(const std::string &key, const std::vector<float> &values);
  /// An array of i32.
  void addI32Array(const std::string &key, const std::vector<int32_t> &values);
  /// Copies `value` (any type, arrays of arrays included) as it is in its
  /// source file, under `key`.
  void addValue(const std::string &key, const GgufValue &value);

  /// Whether a key was already added (a key may appear only once).
  bool hasKey(const std::string &key) const { return keys.count(key) != 0; }

  /// Adds tensor `name` of ggml `type` with PyTorch `shape` (outermost
  /// first; written innermost first as GGUF wants) and its `bytes`. Fails
  /// on a duplicate or empty name, a rank outside 1..4, a non-positive
  /// dim, a row that is not whole blocks of `type`, or a byte count that
  /// does not match.
  Status addTensor(const std::string &name, GgmlType type,
                   const std::vector<int64_t> &shape,
                   std::vector<uint8_t> bytes);

  /// The whole file. Fails when a key was added twice.
  Status serialize(std::vector<uint8_t> &out) const;
  /// Writes the file to `path` atomically (writeFileAtomically).
  Status writeFile(const std::string &path) const;

  /// The data section alignment written (general.alignment is not set, so
  /// readers use the default 32).
  static constexpr uint64_t kAlignment = 32;

private:
  struct Tensor {
    std::string name;
    GgmlType type;
    std::vector<uint64_t> dims; // GGUF order
    std::vector<uint8_t> bytes;
  };
  void beginKey(const std::string &key, GgufType type);
  /// Appends `value` without its type tag (an array: element type, count
  /// and elements).
  void writeValueBody(const GgufValue &value);

  std::vector<uint8_t> kv; // serialized key/value pairs
  uint64_t kvCount = 0;
  std::set<std::string> keys;
  std::string duplicateKey;
  std::vector<Tensor> tensors;
  std::set<std::string> tensorNames;
};

} // namespace qc

#endif // QC_RUNTIME_GGUFWRITER_H
