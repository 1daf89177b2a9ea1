//===- GgmlQuants.cpp - ggml tensor types and dequantization ----*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Block layouts follow ggml's definitions (ggml-common.h) and the arithmetic
// follows the `gguf` Python package's dequantize_blocks, operation by
// operation, so that the results are bit-identical to it: for example Q4_K
// computes (d * sc) once per sub-block and then (d*sc) * q - (dmin*m), each
// step rounded to fp32. The file is compiled with -ffp-contract=off and
// every such step is a separate statement, so no compiler may fuse a
// multiply and an add into an FMA (which would round once instead of
// twice and break bit equality).
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/GgmlQuants.h"

#include "qc/runtime/Safetensors.h"

#include <cstring>

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "ggml blocks are little-endian; the decoder assumes the host is");

namespace qc {

namespace {

/// ggml's super-block size for the k-quants.
constexpr uint32_t QK_K = 256;

struct TypeRow {
  uint32_t id;
  GgmlTypeTraits traits;
};

// Sizes from ggml's block structs (ggml-common.h), cross-checked against
// gguf-py's GGML_QUANT_SIZES by GgmlQuantsTest on the committed manifest.
// Q8_1 is the one difference: gguf-py still lists 40 bytes (fp32 d and s),
// while ggml's block_q8_1 holds two fp16 values, 36 bytes; Q8_1 is an
// internal activation format that files do not contain.
constexpr TypeRow kTypes[] = {
    {0, {"F32", 1, 4, true}},
    {1, {"F16", 1, 2, true}},
    {2, {"Q4_0", 32, 2 + 16, true}},
    {3, {"Q4_1", 32, 2 + 2 + 16, true}},
    {6, {"Q5_0", 32, 2 + 4 + 16, true}},
    {7, {"Q5_1", 32, 2 + 2 + 4 + 16, true}},
    {8, {"Q8_0", 32, 2 + 32, true}},
    {9, {"Q8_1", 32, 2 + 2 + 32, false}},
    {10, {"Q2_K", QK_K, QK_K / 16 + QK_K / 4 + 2 + 2, true}},
    {11, {"Q3_K", QK_K, QK_K / 8 + QK_K / 4 + 12 + 2, true}},
    {12, {"Q4_K", QK_K, 2 + 2 + 12 + QK_K / 2, true}},
    {13, {"Q5_K", QK_K, 2 + 2 + 12 + QK_K / 8 + QK_K / 2, true}},
    {14, {"Q6_K", QK_K, QK_K / 2 + QK_K / 4 + QK_K / 16 + 2, true}},
    {15, {"Q8_K", QK_K, 4 + QK_K + QK_K / 16 * 2, false}},
    {16, {"IQ2_XXS", QK_K, 2 + QK_K / 8 * 2, false}},
    {17, {"IQ2_XS", QK_K, 2 + QK_K / 8 * 2 + QK_K / 32, false}},
    {18, {"IQ3_XXS", QK_K, 2 + 3 * QK_K / 8, false}},
    {19, {"IQ1_S", QK_K, 2 + QK_K / 8 + QK_K / 32 * 2, false}},
    {20, {"IQ4_NL", 32, 2 + 16, false}},
    {21,
     {"IQ3_S", QK_K, 2 + QK_K / 4 + QK_K / 32 + QK_K / 8 + QK_K / 64, false}},
    {22, {"IQ2_S", QK_K, 2 + QK_K / 4 + QK_K / 32 + QK_K / 32, false}},
    {23, {"IQ4_XS", QK_K, 2 + 2 + QK_K / 64 + QK_K / 2, false}},
    {24, {"I8", 1, 1, false}},
    {25, {"I16", 1, 2, false}},
    {26, {"I32", 1, 4, false}},
    {27, {"I64", 1, 8, false}},
    {28, {"F64", 1, 8, false}},
    {29, {"IQ1_M", QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32, false}},
    {30, {"BF16", 1, 2, true}},
    {34, {"TQ1_0", QK_K, (QK_K - 4 * QK_K / 64) / 5 + QK_K / 64 + 2, false}},
    {35, {"TQ2_0", QK_K, QK_K / 4 + 2, false}},
    {39, {"MXFP4", 32, 1 + 16, false}},
    {40, {"NVFP4", 64, 4 + 32, false}},
    {41, {"Q1_0", 128, 2 + 16, false}},
};

/// Little-endian u16 at p (any alignment).
inline uint16_t le16(const uint8_t *p) {
  return static_cast<uint16_t>(p[0] | (p[1] << 8));
}

/// fp16 at p widened to fp32 (exact).
inline float half(const uint8_t *p) { return f16ToF32(le16(p)); }

// Each decoder handles one block: `b` points at typeSize bytes, `y` receives
// blockSize floats.

void blockQ4_0(const uint8_t *b, float *y) {
  float d = half(b);
  const uint8_t *qs = b + 2;
  for (int l = 0; l < 16; ++l) {
    y[l] = d * static_cast<float>((qs[l] & 0xF) - 8);
    y[l + 16] = d * static_cast<float>((qs[l] >> 4) - 8);
  }
}

void blockQ4_1(const uint8_t *b, float *y) {
  float d = half(b), m = half(b + 2);
  const uint8_t *qs = b + 4;
  for (int l = 0; l < 16; ++l) {
    float lo = d * static_cast<float>(qs[l] & 0xF);
    float hi = d * static_cast<float>(qs[l] >> 4);
    y[l] = lo + m;
    y[l + 16] = hi + m;
  }
}

void blockQ5_0(const uint8_t *b, float *y) {
  float d = half(b);
  uint32_t qh;
  std::memcpy(&qh, b + 2, 4);
  const uint8_t *qs = b + 6;
  for (int l = 0; l < 16; ++l) {
    int lo = (qs[l] & 0xF) | (((qh >> l) & 1) << 4);
    int hi = (qs[l] >> 4) | (((qh >> (l + 16)) & 1) << 4);
    y[l] = d * static_cast<float>(lo - 16);
    y[l + 16] = d * static_cast<float>(hi - 16);
  }
}

void blockQ5_1(const uint8_t *b, float *y) {
  float d = half(b), m = half(b + 2);
  uint32_t qh;
  std::memcpy(&qh, b + 4, 4);
  const uint8_t *qs = b + 8;
  for (int l = 0; l < 16; ++l) {
    int lo = (qs[l] & 0xF) | (((qh >> l) & 1) << 4);
    int hi = (qs[l] >> 4) | (((qh >> (l + 16)) & 1) << 4);
    float a = d * static_cast<float>(lo);
    float c = d * static_cast<float>(hi);
    y[l] = a + m;
    y[l + 16] = c + m;
  }
}

void blockQ8_0(const uint8_t *b, float *y) {
  float d = half(b);
  for (int l = 0; l < 32; ++l)
    y[l] = static_cast<float>(static_cast<int8_t>(b[2 + l])) * d;
}

void blockQ2_K(const uint8_t *b, float *y) {
  const uint8_t *scales = b;         // QK_K/16: low nibble scale, high min
  const uint8_t *qs = b + QK_K / 16; // QK_K/4: four 2-bit codes per byte
  float d = half(b + QK_K / 16 + QK_K / 4);
  float dmin = half(b + QK_K / 16 + QK_K / 4 + 2);
  // Element c*128 + j*32 + l is bits 2j..2j+1 of qs[c*32 + l]; its
  // sub-block of 16 elements picks the scale.
  for (int i = 0; i < 256; ++i) {
    int c = i / 128, j = (i / 32) % 4, l = i % 32;
    int q = (qs[c * 32 + l] >> (2 * j)) & 3;
    uint8_t sc = scales[i / 16];
    float dl = d * static_cast<float>(sc & 0xF);
    float ml = dmin * static_cast<float>(sc >> 4);
    float v = dl * static_cast<float>(q);
    y[i] = v - ml;
  }
}

void blockQ3_K(const uint8_t *b, float *y) {
  const uint8_t *hmask = b;                    // QK_K/8: high bit, inverted
  const uint8_t *qs = b + QK_K / 8;            // QK_K/4: low two bits
  const uint8_t *sc = b + QK_K / 8 + QK_K / 4; // 12 bytes: 16 6-bit scales
  float d = half(b + QK_K / 8 + QK_K / 4 + 12);
  float dl[16];
  for (int k = 0; k < 16; ++k) {
    int lo = (k < 8 ? sc[k] : sc[k - 8] >> 4) & 0xF;
    int hi = (sc[8 + k % 4] >> (2 * (k / 4))) & 3;
    int s = static_cast<int8_t>(static_cast<uint8_t>(lo | (hi << 4))) - 32;
    dl[k] = d * static_cast<float>(s);
  }
  for (int i = 0; i < 256; ++i) {
    int c = i / 128, j = (i / 32) % 4, l = i % 32;
    int ql = (qs[c * 32 + l] >> (2 * j)) & 3;
    // A set hmask bit means no offset; a clear one subtracts 4.
    int h = ((hmask[l] >> (i / 32)) & 1) ^ 1;
    y[i] = dl[i / 16] * static_cast<float>(ql - (h << 2));
  }
}

/// The eight 6-bit scales and mins of a Q4_K/Q5_K super-block.
void scaleMinK4(const uint8_t *s, uint8_t *sc, uint8_t *mn) {
  for (int j = 0; j < 4; ++j) {
    sc[j] = s[j] & 0x3F;
    mn[j] = s[4 + j] & 0x3F;
    sc[4 + j] = static_cast<uint8_t>((s[8 + j] & 0x0F) | ((s[j] >> 2) & 0x30));
    mn[4 + j] =
        static_cast<uint8_t>((s[8 + j] >> 4) | ((s[4 + j] >> 2) & 0x30));
  }
}

void blockQ4_K(const uint8_t *b, float *y) {
  float d = half(b), dmin = half(b + 2);
  uint8_t sc[8], mn[8];
  scaleMinK4(b + 4, sc, mn);
  const uint8_t *qs = b + 16;
  for (int s = 0; s < 8; ++s) {
    float ds = d * static_cast<float>(sc[s]);
    float dm = dmin * static_cast<float>(mn[s]);
    // Sub-block s holds the low (even s) or high (odd s) nibbles of
    // qs[(s/2)*32, +32).
    const uint8_t *q = qs + (s / 2) * 32;
    int shift = (s % 2) * 4;
    for (int l = 0; l < 32; ++l) {
      float v = ds * static_cast<float>((q[l] >> shift) & 0xF);
      y[s * 32 + l] = v - dm;
    }
  }
}

void blockQ5_K(const uint8_t *b, float *y) {
  float d = half(b), dmin = half(b + 2);
  uint8_t sc[8], mn[8];
  scaleMinK4(b + 4, sc, mn);
  const uint8_t *qh = b + 16;
  const uint8_t *qs = b + 16 + QK_K / 8;
  for (int s = 0; s < 8; ++s) {
    float ds = d * static_cast<float>(sc[s]);
    float dm = dmin * static_cast<float>(mn[s]);
    const uint8_t *q = qs + (s / 2) * 32;
    int shift = (s % 2) * 4;
    for (int l = 0; l < 32; ++l) {
      int v = ((q[l] >> shift) & 0xF) | (((qh[l] >> s) & 1) << 4);
      float p = ds * static_cast<float>(v);
      y[s * 32 + l] = p - dm;
    }
  }
}

void blockQ6_K(const uint8_t *b, float *y) {
  const uint8_t *ql = b;                           // QK_K/2: low nibbles
  const uint8_t *qh = b + QK_K / 2;                // QK_K/4: high two bits
  const uint8_t *scales = b + QK_K / 2 + QK_K / 4; // 16 int8 scales
  float d = half(b + QK_K / 2 + QK_K / 4 + QK_K / 16);
  for (int i = 0; i < 256; ++i) {
    // Low nibble: element c*128 + h*64 + l is nibble h of ql[c*64 + l].
    int c = i / 128, h = (i / 64) % 2, l64 = i % 64;
    int lo = (ql[c * 64 + l64] >> (4 * h)) & 0xF;
    // High bits: element c*128 + j*32 + l is bits 2j.. of qh[c*32 + l].
    int j = (i / 32) % 4, l32 = i % 32;
    int hi = (qh[c * 32 + l32] >> (2 * j)) & 3;
    float ds = d * static_cast<float>(static_cast<int8_t>(scales[i / 16]));
    y[i] = ds * static_cast<float>((lo | (hi << 4)) - 32);
  }
}

} // namespace

bool ggmlTypeTraits(uint32_t id, GgmlTypeTraits &out) {
  for (const TypeRow &row : kTypes) {
    if (row.id == id) {
      out = row.traits;
      return true;
    }
  }
  return false;
}

GgmlTypeTraits ggmlTypeTraits(GgmlType type) {
  GgmlTypeTraits t;
  (void)ggmlTypeTraits(static_cast<uint32_t>(type), t);
  return t;
}

const char *ggmlTypeName(GgmlType type) {
  GgmlTypeTraits t;
  return ggmlTypeTraits(static_cast<uint32_t>(type), t) ? t.name : "unknown";
}

std::string dequantizableGgmlTypeNames() {
  std::string r;
  for (const TypeRow &row : kTypes) {
    if (!row.traits.dequantizable)
      continue;
    if (!r.empty())
      r += ", ";
    r += row.traits.name;
  }
  return r;
}

bool ggmlByteSize(GgmlType type, uint64_t numElements, uint64_t &bytes) {
  GgmlTypeTraits t;
  if (!ggmlTypeTraits(static_cast<uint32_t>(type), t) || t.blockSize == 0 ||
      numElements % t.blockSize != 0)
    return false;
  return !__builtin_mul_overflow(numElements / t.blockSize,
                                 static_cast<uint64_t>(t.typeSize), &bytes);
}

Status dequantizeRow(GgmlType type, const uint8_t *src, float *dst,
                     uint64_t numElements) {
  GgmlTypeTraits t;
  if (!ggmlTypeTraits(static_cast<uint32_t>(type), t))
    return Status::error("unknown ggml type id " +
                         std::to_string(static_cast<uint32_t>(type)));
  if (!t.dequantizable)
    return Status::error(std::string("unsupported type ") + t.name +
                         " (supported: " + dequantizableGgmlTypeNames() + ")");
  if (numElements % t.blockSize != 0)
    return Status::error(std::to_string(numElements) + " elements of " +
                         t.name + " are not a whole number of " +
                         std::to_string(t.blockSize) + "-element blocks");
  uint64_t nBlocks = numElements / t.blockSize;
  void (*block)(const uint8_t *, float *) = nullptr;
  switch (type) {
  case GgmlType::F32:
    if (numElements)
      std::memcpy(dst, src, numElements * 4);
    return Status::ok();
  case GgmlType::F16:
    for (uint64_t i = 0; i < numElements; ++i)
      dst[i] = half(src + 2 * i);
    return Status::ok();
  case GgmlType::BF16:
    for (uint64_t i = 0; i < numElements; ++i)
      dst[i] = bf16ToF32(le16(src + 2 * i));
    return Status::ok();
  case GgmlType::Q4_0:
    block = blockQ4_0;
    break;
  case GgmlType::Q4_1:
    block = blockQ4_1;
    break;
  case GgmlType::Q5_0:
    block = blockQ5_0;
    break;
  case GgmlType::Q5_1:
    block = blockQ5_1;
    break;
  case GgmlType::Q8_0:
    block = blockQ8_0;
    break;
  case GgmlType::Q2_K:
    block = blockQ2_K;
    break;
  case GgmlType::Q3_K:
    block = blockQ3_K;
    break;
  case GgmlType::Q4_K:
    block = blockQ4_K;
    break;
  case GgmlType::Q5_K:
    block = blockQ5_K;
    break;
  case GgmlType::Q6_K:
    block = blockQ6_K;
    break;
  default:
    // Unreachable: the table marks only the types above dequantizable.
    return Status::error(std::string("unsupported type ") + t.name);
  }
  for (uint64_t i = 0; i < nBlocks; ++i)
    block(src + i * t.typeSize, dst + i * t.blockSize);
  return Status::ok();
}

} // namespace qc
