//===- NF4.h - bitsandbytes NF4 quantization --------------------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// 4-bit NormalFloat (NF4) quantization as bitsandbytes does it
// (../shared/docs/ALGORITHMS.md §7): a fixed 16-entry code book (§7.1),
// block-wise absmax scaling of the flattened tensor with nearest-code
// rounding whose ties go to the lower code (§7.2), two codes per byte with
// the first element in the high nibble, and optional double quantization of
// the per-block absmax statistics with an 8-bit dynamic code book, blocks of
// 256 and a mean offset (§7.3, QLoRA "DQ"). The layout of NF4Weight mirrors
// the tensors of a bitsandbytes checkpoint (§8.5). Plain C++17, no
// exceptions.
//
//===----------------------------------------------------------------------===//

#ifndef QC_QUANTIZATION_ALGORITHMS_NF4_H
#define QC_QUANTIZATION_ALGORITHMS_NF4_H

#include "qc/runtime/Status.h"

#include <cstdint>
#include <vector>

namespace qc {
namespace quant {

/// The NF4 code book (§7.1): the float32 value of each stored 4-bit code,
/// ascending. 8 positive quantiles, 7 negative, and an exact 0 at code 7.
inline constexpr float kNF4CodeBook[16] = {
    -1.0f,
    -0.6961928009986877f,
    -0.5250730514526367f,
    -0.39491748809814453f,
    -0.28444138169288635f,
    -0.18477343022823334f,
    -0.09105003625154495f,
    0.0f,
    0.07958029955625534f,
    0.16093020141124725f,
    0.24611230194568634f,
    0.33791524171829224f,
    0.44070982933044434f,
    0.5626170039176941f,
    0.7229568362236023f,
    1.0f,
};

/// The decision thresholds of bitsandbytes' NF4 quantizer (§7.2), ascending:
/// kNF4Thresholds[i] is the midpoint between codes i and i + 1. A value y
/// maps to the number of thresholds strictly below it, so a value exactly on
/// a midpoint takes the lower code.
inline constexpr float kNF4Thresholds[15] = {
    -0.8480964004993439f,   -0.6106329262256622f,  -0.4599952697753906f,
    -0.33967943489551544f,  -0.23460740596055984f, -0.13791173323988914f,
    -0.045525018125772476f, 0.03979014977812767f,  0.1202552504837513f,
    0.2035212516784668f,    0.2920137718319893f,   0.3893125355243683f,
    0.5016634166240692f,    0.6427869200706482f,   0.8614784181118011f,
};

/// Default NF4 block size (elements per absmax), §7.2 / §12.
inline constexpr int64_t kNF4DefaultBlockSize = 64;
/// Block size of the double quantization of the absmax values (§7.3).
inline constexpr int64_t kNF4NestedBlockSize = 256;

/// NF4 code of a normalized value y in [-1, 1] (nearest code, ties to the
/// lower code). NaN maps to code 0, as bitsandbytes' comparison tree does.
int nf4Code(float y);

/// bitsandbytes' signed 8-bit dynamic code book (§7.3,
/// create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8)),
/// rebuilt in float32: 256 distinct values ascending from about -0.99297 to
/// 1.0 with an exact 0 at index 127. §14.3: it may differ from the table a
/// particular bitsandbytes build ships by one ulp in some entries, which is
/// why NF4Weight stores the map it was quantized with.
const std::vector<float> &dynamicMap8();

/// Index of the nearest entry of the ascending code book `map` (size n) to
/// y; a value exactly on the midpoint of two neighbours takes the lower
/// index. Used for the 8-bit nested quantization.
int nearestCodeLowerTie(const float *map, int n, float y);

/// An NF4-quantized tensor of `numel` elements, flattened row-major (§7.2).
/// Field names follow the checkpoint keys of §8.5.
struct NF4Weight {
  /// Number of elements of the original tensor.
  int64_t numel = 0;
  /// Elements per block (one absmax each); the last block may be shorter.
  int64_t blockSize = kNF4DefaultBlockSize;
  /// ceil(numel / 2) bytes: byte j = (code[2j] << 4) | code[2j + 1]; an odd
  /// numel pads the last low nibble with 0.
  std::vector<uint8_t> packed;
  /// Whether the absmax statistics are double-quantized (§7.3).
  bool doubleQuant = false;
  /// [numBlocks()] fp32 absmax of every block (max |x|, 0 for an all-zero
  /// block). Present only when !doubleQuant.
  std::vector<float> absmax;
  /// [numBlocks()] 8-bit codes of absmax - nestedOffset in nestedQuantMap.
  /// Present only when doubleQuant.
  std::vector<uint8_t> absmaxCodes;
  /// [ceil(numBlocks() / nestedBlockSize)] fp32 absmax of every nested block
  /// of (absmax - nestedOffset). Present only when doubleQuant.
  std::vector<float> nestedAbsmax;
  /// [256] the nested code book (dynamicMap8() when produced here). Present
  /// only when doubleQuant.
  std::vector<float> nestedQuantMap;
  /// Mean of the absmax values, subtracted before the nested quantization.
  float nestedOffset = 0.0f;
  /// Elements per nested block (256).
  int64_t nestedBlockSize = kNF4NestedBlockSize;

  /// ceil(numel / blockSize).
  int64_t numBlocks() const {
    return blockSize > 0 ? (numel + blockSize - 1) / blockSize : 0;
  }
  /// The stored 4-bit code of element i (0 <= i < numel).
  int code(int64_t i) const {
    uint8_t b = packed[static_cast<size_t>(i / 2)];
    return (i % 2 == 0) ? (b >> 4) : (b & 0xF);
  }
  /// The absmax of every block as dequantization uses it: the stored value,
  /// or with double quantization nestedQuantMap[code] * nestedAbsmax[blk] +
  /// nestedOffset evaluated in fp32 (one product, one sum).
  void blockAbsmax(std::vector<float> &out) const;
  /// Structural checks: sizes of every buffer, allowed block sizes, finite
  /// statistics, a 256-entry nested map.
  Status verify() const;
};

/// Whether `blockSize` is one bitsandbytes accepts for 4-bit quantization:
/// 32, 64, 128, 256, 512, 1024, 2048 or 4096 (§7.2).
bool isValidNF4BlockSize(int64_t blockSize);

/// Quantizes the `numel` values `w` (a tensor flattened row-major) to NF4
/// with blocks of `blockSize` (§7.2): per block absmax = max |x| in fp32,
/// y = clamp(x * (1 / max(absmax, 1e-38)), -1, 1), code = nf4Code(y). With
/// `doubleQuant`, the absmax values are double-quantized (§7.3): offset =
/// mean(absmax) (accumulated in fp64, stored fp32), a = absmax - offset,
/// blockwise absmax quantization of `a` with blocks of 256 against
/// dynamicMap8() (again multiplying by the reciprocal of the block absmax,
/// as the same bitsandbytes kernel does). Fails on numel <= 0, a null
/// pointer, an unsupported block size, or a non-finite input (naming its
/// index).
Status quantizeNF4(const float *w, int64_t numel, int64_t blockSize,
                   bool doubleQuant, NF4Weight &out);

/// Dequantizes `q` into `out` ([q.numel] fp32): out[i] =
/// kNF4CodeBook[code(i)] * absmax[i / blockSize], with the absmax of
/// blockAbsmax(). `q` must satisfy q.verify().
void dequantizeNF4(const NF4Weight &q, std::vector<float> &out);

} // namespace quant
} // namespace qc

#endif // QC_QUANTIZATION_ALGORITHMS_NF4_H
