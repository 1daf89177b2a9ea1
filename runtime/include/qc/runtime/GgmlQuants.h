//===- GgmlQuants.h - ggml tensor types and dequantization ------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// The element types a GGUF tensor can have (ggml's `ggml_type` ids), their
// block geometry (elements per block, bytes per block), and dequantization
// to fp32 of the types users meet: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0,
// Q5_1 and the k-quants Q2_K .. Q6_K. The results are bit-identical to the
// `gguf` Python package's `gguf.quants.dequantize` (and hence to what
// transformers' GGUF loader produces): every product and sum is one IEEE
// fp32 operation in the same order as the reference, never fused.
// The other known types (IQ*, TQ*, MXFP4, integer types, ...) have their
// geometry here so that a file using them can still be validated and its
// metadata read, but dequantizing them is a clear "unsupported type" error.
//
//===----------------------------------------------------------------------===//

#ifndef QC_RUNTIME_GGMLQUANTS_H
#define QC_RUNTIME_GGMLQUANTS_H

#include "qc/runtime/Status.h"

#include <cstddef>
#include <cstdint>
#include <string>

namespace qc {

/// ggml tensor type ids as stored in a GGUF tensor info (`ggml_type`). Ids
/// 4, 5 and 31-33, 36-38 belonged to formats ggml has since removed; they
/// are unknown here, as in current llama.cpp.
enum class GgmlType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
  NVFP4 = 40,
  Q1_0 = 41,
};

/// Geometry of one ggml type.
struct GgmlTypeTraits {
  const char *name = nullptr; ///< ggml's spelling, e.g. "Q4_K"
  uint32_t blockSize = 0;     ///< elements per block (1 for plain types)
  uint32_t typeSize = 0;      ///< bytes per block
  bool dequantizable = false; ///< dequantizeRow supports it
};

/// Looks up the raw type id `id` (straight from a file); returns false for
/// an id that is not a known ggml type.
bool ggmlTypeTraits(uint32_t id, GgmlTypeTraits &out);

/// Traits of a known type (the enum only holds known ids).
GgmlTypeTraits ggmlTypeTraits(GgmlType type);

/// ggml's name of `type`, e.g. "Q4_1".
const char *ggmlTypeName(GgmlType type);

/// The names of the types dequantizeRow supports, comma separated, for
/// error messages.
std::string dequantizableGgmlTypeNames();

/// Bytes that `numElements` elements of `type` occupy, or false when
/// `numElements` is not a multiple of the block size or the byte count
/// overflows 64 bits.
bool ggmlByteSize(GgmlType type, uint64_t numElements, uint64_t &bytes);

/// Dequantizes `numElements` consecutive elements of `type` (a whole number
/// of blocks) from `src` (at least ggmlByteSize bytes, no alignment needed)
/// into `dst`. Fails, without writing, for a type that is not dequantizable
/// ("unsupported type IQ2_XXS") or a count that is not a multiple of the
/// block size. Non-finite scales are passed through (the caller checks
/// finiteness where it matters).
Status dequantizeRow(GgmlType type, const uint8_t *src, float *dst,
                     uint64_t numElements);

} // namespace qc

#endif // QC_RUNTIME_GGMLQUANTS_H
