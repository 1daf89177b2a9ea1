//===- Packing.h - Packed integer weight layouts ----------------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Conversions between the format-neutral QuantizedWeight (unpacked codes,
// scales and zero points, Common.h) and the packed tensors of the storage
// formats of ../shared/docs/ALGORITHMS.md §8: the GPTQ checkpoint layout
// (§8.1, as AutoGPTQ / transformers / vLLM read it, zero points "minus one"
// in format v1 or as-is in v2), AutoAWQ's GEMM layout (§8.2) and the plain
// `rows` layout of the CPU path (dialects/WQ/README.md). Every pack function
// has an unpack inverse; pack followed by unpack gives back the same
// QuantizedWeight field for field, so dequantization is bit-exact (§11).
//
// All integer codes are written as LSB-first bit streams over 32-bit words:
// code i of a stream occupies bits [b*i, b*i + b) of the concatenated words.
// For b in {2, 4, 8} this is the "32/b codes per word" packing of §8.1; for
// b = 3 and 32 codes it is exactly GPTQ's interleaved three-word spill
// layout. Plain C++17, no exceptions: every failure is a qc::Status naming
// the rule that was violated.
//
//===----------------------------------------------------------------------===//

#ifndef QC_QUANTIZATION_ALGORITHMS_PACKING_H
#define QC_QUANTIZATION_ALGORITHMS_PACKING_H

#include "qc/Quantization/Algorithms/Common.h"
#include "qc/runtime/Status.h"

#include <cstdint>
#include <vector>

namespace qc {
namespace quant {

//===----------------------------------------------------------------------===//
// Bit streams
//===----------------------------------------------------------------------===//

/// Number of 32-bit words of an LSB-first stream of `count` codes of `bits`
/// bits each: ceil(count * bits / 32).
inline int64_t packedWordCount(int64_t count, int bits) {
  return (count * bits + 31) / 32;
}

/// Packs `count` codes, codes[i * codeStride] (each < 2^bits; higher bits are
/// masked off), as an LSB-first stream into the packedWordCount(count, bits)
/// words words[j * wordStride]. The words are overwritten; the unused high
/// bits of the last word are zero. bits in [1, 8].
void packCodeStream(const uint8_t *codes, int64_t codeStride, int64_t count,
                    int bits, int32_t *words, int64_t wordStride);

/// Inverse of packCodeStream: reads `count` codes of `bits` bits from the
/// stream held in words[j * wordStride] into codes[i * codeStride].
void unpackCodeStream(const int32_t *words, int64_t wordStride, int64_t count,
                      int bits, uint8_t *codes, int64_t codeStride);

//===----------------------------------------------------------------------===//
// GPTQ (§8.1)
//===----------------------------------------------------------------------===//

/// How a GPTQ checkpoint stores its zero points (`checkpoint_format`).
enum class GPTQFormat {
  /// "gptq" (v1): every zero point is stored as (z - 1) mod 2^b; a zero of
  /// 0 cannot be written faithfully and is refused (§8.1 pitfall, §14.5).
  V1,
  /// "gptq_v2" (GPTQModel): zero points stored as they are.
  V2,
};

/// Options of packGPTQ.
struct GPTQPackOptions {
  /// Zero-point convention of the written tensors.
  GPTQFormat format = GPTQFormat::V1;
  /// Pad K (§14.6) the way the loaders users run size qweight
  /// (GPTQModel's GPTQQuantLinear, transformers' GPTQ integration): to whole
  /// 32-bit words only, i.e. to gptqPaddedK(K, b) codes, with pad codes
  /// equal to the last group's zero point (they dequantize to exactly 0).
  /// g_idx keeps the true K entries and there are ceil(K / G) groups (a
  /// ragged last group). Without padK, K must fill whole words for b = 3.
  bool padK = false;
};

/// The tensors of one GPTQ-packed linear layer plus the metadata that a
/// checkpoint keeps in quantize_config.json / file metadata. All tensors are
/// row-major.
struct GPTQTensors {
  /// Code width b in {2, 3, 4, 8}.
  int bits = 4;
  /// Group size G as in quantize_config.json (-1 = per channel).
  int64_t groupSize = 128;
  /// Whether the grid is symmetric (every zero point 2^(b-1)).
  bool sym = true;
  /// Zero-point convention of qzeros.
  GPTQFormat format = GPTQFormat::V1;
  /// True input features (the K of the layer, without padding).
  int64_t inFeatures = 0;
  /// Packed input features: inFeatures, or more with GPTQPackOptions::padK.
  int64_t K = 0;
  /// Output features N.
  int64_t N = 0;
  /// Scale rows: ceil(inFeatures / G), 1 for per-channel.
  int64_t numGroups = 0;
  /// int32 [qweightRows(), N]: column n is the LSB-first stream of the codes
  /// q[n, 0..K) (packed along K).
  std::vector<int32_t> qweight;
  /// int32 [numGroups, qzerosCols()]: row g is the stream of the zero
  /// points z[g, 0..N) (packed along N), stored minus one in v1.
  std::vector<int32_t> qzeros;
  /// fp16 bit patterns [numGroups, N]: scales[g * N + n].
  std::vector<uint16_t> scales;
  /// int32 [inFeatures] (what the exporter writes) or int32 [K] (the older
  /// whole-group padding, whose pad entries name the last group): scale row
  /// of every input channel (§3.5). Pad columns beyond the g_idx belong to
  /// the last group.
  std::vector<int32_t> gIdx;

  /// Rows of qweight: ceil(K * b / 32).
  int64_t qweightRows() const { return packedWordCount(K, bits); }
  /// Columns of qzeros: ceil(N * b / 32).
  int64_t qzerosCols() const { return packedWordCount(N, bits); }
};

/// The packed K of a GPTQ layer with `inFeatures` inputs at `bits`: K
/// rounded up to whole 32-bit words (a multiple of 32 / b), and to whole
/// three-word blocks (a multiple of 32) for b = 3, whose words hold codes
/// that straddle word boundaries. qweight then has gptqPaddedK * b / 32
/// rows = ceil(K * b / 32) for b in {2, 4, 8}.
inline int64_t gptqPaddedK(int64_t inFeatures, int bits) {
  const int64_t unit = bits == 3 ? 32 : 32 / bits;
  return (inFeatures + unit - 1) / unit * unit;
}

/// Packs `q` into the GPTQ layout. Requirements (each violation is an error
/// that names it): q.verify() passes; integer zero points in [0, qmax] (HQQ's
/// fractional zeros must be rounded first, §8.3); scales exactly
/// representable in fp16; for v1 no zero point equal to 0 (use v2 or a
/// symmetric grid); a symmetric weight has every zero 2^(b-1); for b = 3, K
/// (after padding) and N multiples of 32. g_idx is always written (k / G
/// when q.gIdx is empty), as AutoGPTQ does.
Status packGPTQ(const QuantizedWeight &q, const GPTQPackOptions &opts,
                GPTQTensors &out);

/// Checks, from the shape and configuration alone, that a [N, K] weight
/// quantized with `cfg` can be written by packGPTQ without padK: fp16 scales,
/// and for 3-bit codes K and N multiples of 32 (the three-word code blocks
/// along K and the zero-point rows along N). Passes call it before any
/// expensive work so that a layout that cannot hold a layer is refused up
/// front. The data-dependent requirements (a v1 zero point of 0, scales
/// beyond fp16) can only be checked by packGPTQ itself.
Status checkGPTQLayoutFits(int64_t N, int64_t K, const QuantConfig &cfg);

/// Unpacks GPTQ tensors into `out` (scaleDType F16). Validates every shape
/// against the metadata, g_idx ranges, finite scales, the symmetric zero
/// points and that padded columns hold the zero point. v1 zeros are decoded
/// as (stored + 1) mod 2^b. out.gIdx is left empty when g_idx is the
/// default k / G, so that pack/unpack round trips compare equal.
Status unpackGPTQ(const GPTQTensors &t, QuantizedWeight &out);

//===----------------------------------------------------------------------===//
// AWQ GEMM (§8.2)
//===----------------------------------------------------------------------===//

/// AutoAWQ's GEMM nibble order: nibble i of a word holds output channel
/// 8c + kAWQOrder[i].
inline constexpr int kAWQOrder[8] = {0, 2, 4, 6, 1, 3, 5, 7};
/// Inverse of kAWQOrder: output channel 8c + j lives in nibble
/// kAWQReverseOrder[j].
inline constexpr int kAWQReverseOrder[8] = {0, 4, 1, 5, 2, 6, 3, 7};

/// The tensors of one AWQ-GEMM-packed linear layer (4-bit only).
struct AWQTensors {
  /// Input features K.
  int64_t K = 0;
  /// Output features N (a multiple of 8).
  int64_t N = 0;
  /// Group size G (-1 = one group over all of K).
  int64_t groupSize = 128;
  /// Whether every zero point is 8 (symmetric grid). Metadata only; AWQ
  /// checkpoints always carry qzeros.
  bool sym = false;
  /// Scale rows: K / G (1 for per-channel).
  int64_t numGroups = 0;
  /// int32 [K, N / 8]: word (k, c) holds q[8c + kAWQOrder[i], k] in bits
  /// [4i, 4i + 4) (packed along N).
  std::vector<int32_t> qweight;
  /// int32 [numGroups, N / 8]: raw zero points (no minus one), same order.
  std::vector<int32_t> qzeros;
  /// fp16 bit patterns [numGroups, N].
  std::vector<uint16_t> scales;
};

/// Packs `q` into AWQ GEMM tensors. Requirements: q.verify() passes, 4-bit,
/// N % 8 == 0, K % G == 0 (AWQ asserts it; G = -1 is one group), default
/// g_idx (AWQ has none), integer zero points in [0, 15], fp16-exact scales.
Status packAWQ(const QuantizedWeight &q, AWQTensors &out);

/// Unpacks AWQ GEMM tensors (scaleDType F16, empty gIdx), validating shapes,
/// finite scales and symmetric zero points.
Status unpackAWQ(const AWQTensors &t, QuantizedWeight &out);

//===----------------------------------------------------------------------===//
// Rows (CPU path, dialects/WQ/README.md)
//===----------------------------------------------------------------------===//

/// Options of packRows.
struct RowsPackOptions {
  /// Store the zero points as floats (HQQ's fractional zeros, §5.1) instead
  /// of int32. Ignored for symmetric weights, which store no zeros.
  bool floatZeros = false;
};

/// The tensors of one linear layer in the plain `rows` layout: every output
/// row is one LSB-first stream along K, any bit width, any K (ragged groups
/// allowed), scales kept in their storage dtype's values.
struct RowsTensors {
  /// Code width b in {2, 3, 4, 8}.
  int bits = 4;
  /// Group size G (-1 = per channel).
  int64_t groupSize = 128;
  /// Symmetric grid: no zero tensor, every zero point is 2^(b-1).
  bool sym = true;
  /// dtype the scale values are exactly representable in.
  ScaleDType scaleDType = ScaleDType::F16;
  /// Output features N.
  int64_t N = 0;
  /// Input features K.
  int64_t K = 0;
  /// Scale rows: ceil(K / G), 1 for per-channel.
  int64_t numGroups = 0;
  /// int32 [N, qweightCols()]: row n is the stream of q[n, 0..K).
  std::vector<int32_t> qweight;
  /// [numGroups, N] scale values (scales[g * N + n]).
  std::vector<float> scales;
  /// int32 [numGroups, N] zero points; asymmetric integer zeros only.
  std::vector<int32_t> zeros;
  /// [numGroups, N] fractional zero points; asymmetric float zeros only.
  std::vector<float> floatZeros;
  /// int32 [K] scale row per input channel; empty = k / G.
  std::vector<int32_t> gIdx;

  /// Columns of qweight: ceil(K * b / 32).
  int64_t qweightCols() const { return packedWordCount(K, bits); }
};

/// Packs `q` into the rows layout. Requirements: q.verify() passes, scales
/// exactly representable in q.scaleDType, symmetric zeros equal 2^(b-1),
/// and without opts.floatZeros asymmetric zeros that are integers in
/// [0, qmax].
Status packRows(const QuantizedWeight &q, const RowsPackOptions &opts,
                RowsTensors &out);

/// Unpacks rows tensors into `out`, validating shapes, g_idx ranges, finite
/// scales and zeros, and that at most one zero tensor is present (none when
/// symmetric).
Status unpackRows(const RowsTensors &t, QuantizedWeight &out);

} // namespace quant
} // namespace qc

#endif // QC_QUANTIZATION_ALGORITHMS_PACKING_H
