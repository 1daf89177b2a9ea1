//===- Packing.cpp - Packed integer weight layouts ------------------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Implements the GPTQ (§8.1), AWQ GEMM (§8.2) and `rows` packers and their
// inverses declared in Packing.h (../shared/docs/ALGORITHMS.md). Packing is
// pure bit manipulation on values the producer already fixed, so the checks
// below only make sure that nothing is lost on the way: codes in range,
// zero points that the target can hold, scales that survive the fp16 cast,
// and shapes consistent with the metadata when reading foreign tensors.
//
//===----------------------------------------------------------------------===//

#include "qc/Quantization/Algorithms/Packing.h"

#include "qc/runtime/Safetensors.h"

#include <cmath>
#include <cstring>
#include <numeric>
#include <string>

using namespace qc;
using namespace qc::quant;

//===----------------------------------------------------------------------===//
// Bit streams
//===----------------------------------------------------------------------===//

void qc::quant::packCodeStream(const uint8_t *codes, int64_t codeStride,
                               int64_t count, int bits, int32_t *words,
                               int64_t wordStride) {
  const int64_t nWords = packedWordCount(count, bits);
  const uint32_t mask = (1u << bits) - 1u;
  // Accumulate in 64 bits so that a code straddling two words (3-bit) is
  // split without special cases: the low part closes the current word and
  // the high part starts the next one.
  uint64_t acc = 0;
  int filled = 0;
  int64_t w = 0;
  for (int64_t i = 0; i < count; ++i) {
    acc |= static_cast<uint64_t>(codes[i * codeStride] & mask) << filled;
    filled += bits;
    if (filled >= 32) {
      words[w++ * wordStride] =
          static_cast<int32_t>(static_cast<uint32_t>(acc));
      acc >>= 32;
      filled -= 32;
    }
  }
  if (w < nWords)
    words[w * wordStride] = static_cast<int32_t>(static_cast<uint32_t>(acc));
}

void qc::quant::unpackCodeStream(const int32_t *words, int64_t wordStride,
                                 int64_t count, int bits, uint8_t *codes,
                                 int64_t codeStride) {
  const int64_t nWords = packedWordCount(count, bits);
  const uint32_t mask = (1u << bits) - 1u;
  uint64_t acc = 0;
  int avail = 0;
  int64_t w = 0;
  for (int64_t i = 0; i < count; ++i) {
    if (avail < bits && w < nWords) {
      acc |=
          static_cast<uint64_t>(static_cast<uint32_t>(words[w++ * wordStride]))
          << avail;
      avail += 32;
    }
    codes[i * codeStride] = static_cast<uint8_t>(acc & mask);
    acc >>= bits;
    avail -= bits;
  }
}

//===----------------------------------------------------------------------===//
// Shared checks
//===----------------------------------------------------------------------===//

namespace {

/// "row n, group g" for diagnostics.
std::string at(int64_t g, int64_t n) {
  return "group " + std::to_string(g) + ", row " + std::to_string(n);
}

/// Checks that every scale of `q` is exactly representable in fp16 (the
/// GPTQ and AWQ checkpoints store fp16 scales; anything else would be
/// rounded silently and break the bit-exact dequantization).
Status checkF16Scales(const QuantizedWeight &q, const std::string &ctx) {
  for (int64_t g = 0; g < q.numGroups(); ++g)
    for (int64_t n = 0; n < q.rows; ++n) {
      const float s = q.scales[g * q.rows + n];
      if (castToScaleDType(s, ScaleDType::F16) != s)
        return Status::error(ctx + ": scale " + std::to_string(s) + " of " +
                             at(g, n) +
                             " is not exactly representable in fp16 (quantize "
                             "with scaleDType = f16)");
    }
  return Status::ok();
}

/// Checks that every scale of `q` is exactly representable in q.scaleDType.
Status checkStorageScales(const QuantizedWeight &q, const std::string &ctx) {
  for (size_t i = 0; i < q.scales.size(); ++i)
    if (castToScaleDType(q.scales[i], q.scaleDType) != q.scales[i])
      return Status::error(ctx + ": scale " + std::to_string(q.scales[i]) +
                           " of " + at(i / q.rows, i % q.rows) +
                           " is not representable in its storage dtype " +
                           scaleDTypeName(q.scaleDType));
  return Status::ok();
}

/// Checks that the zero points of `q` are integers in [0, qmax] (integer
/// zero-point formats) and that a symmetric weight has every zero at
/// 2^(b-1).
Status checkIntegerZeros(const QuantizedWeight &q, const std::string &ctx) {
  const float qmax = static_cast<float>(qmaxForBits(q.bits));
  const float mid = static_cast<float>(1 << (q.bits - 1));
  for (size_t i = 0; i < q.zeros.size(); ++i) {
    const float z = q.zeros[i];
    if (q.sym && z != mid)
      return Status::error(ctx + ": symmetric weight has zero point " +
                           std::to_string(z) + " at " +
                           at(i / q.rows, i % q.rows) + " (expected " +
                           std::to_string(static_cast<int>(mid)) + ")");
    if (z != std::nearbyint(z) || z < 0.0f || z > qmax)
      return Status::error(
          ctx + ": zero point " + std::to_string(z) + " at " +
          at(i / q.rows, i % q.rows) + " is not an integer in [0, " +
          std::to_string(static_cast<int>(qmax)) +
          "] (fractional HQQ zeros must be rounded before integer packing)");
  }
  return Status::ok();
}

/// Checks that a symmetric unpacked weight has every zero at 2^(b-1).
Status checkSymZeros(const QuantizedWeight &out, const std::string &ctx) {
  if (!out.sym)
    return Status::ok();
  const float mid = static_cast<float>(1 << (out.bits - 1));
  for (size_t i = 0; i < out.zeros.size(); ++i)
    if (out.zeros[i] != mid)
      return Status::error(ctx +
                           ": metadata says symmetric but zero point at " +
                           at(i / out.rows, i % out.rows) + " is " +
                           std::to_string(out.zeros[i]));
  return Status::ok();
}

/// Validates a tensor's element count against its expected shape.
Status checkSize(size_t actual, int64_t d0, int64_t d1, const char *name,
                 const std::string &ctx) {
  if (static_cast<int64_t>(actual) != d0 * d1)
    return Status::error(ctx + ": " + name + " has " + std::to_string(actual) +
                         " elements, expected [" + std::to_string(d0) + ", " +
                         std::to_string(d1) + "]");
  return Status::ok();
}

bool validBits(int bits) {
  return bits == 2 || bits == 3 || bits == 4 || bits == 8;
}

/// fp16 bit patterns -> float scales, rejecting non-finite values (a zero
/// scale is accepted: it is a legal, if useless, checkpoint value).
Status decodeF16Scales(const std::vector<uint16_t> &bits, int64_t N,
                       std::vector<float> &scales, const std::string &ctx) {
  scales.resize(bits.size());
  for (size_t i = 0; i < bits.size(); ++i) {
    scales[i] = f16ToF32(bits[i]);
    if (!std::isfinite(scales[i]))
      return Status::error(ctx + ": scale at " + at(i / N, i % N) +
                           " is not finite");
  }
  return Status::ok();
}

} // namespace

//===----------------------------------------------------------------------===//
// GPTQ
//===----------------------------------------------------------------------===//

Status qc::quant::packGPTQ(const QuantizedWeight &q,
                           const GPTQPackOptions &opts, GPTQTensors &out) {
  const std::string ctx = "GPTQ pack";
  QC_RETURN_IF_ERROR(q.verify().withContext(ctx));
  QC_RETURN_IF_ERROR(checkIntegerZeros(q, ctx));
  QC_RETURN_IF_ERROR(checkF16Scales(q, ctx));

  const int bits = q.bits;
  const int64_t N = q.rows, K = q.cols, ng = q.numGroups();
  const uint32_t qmax = static_cast<uint32_t>(qmaxForBits(bits));
  if (opts.format == GPTQFormat::V1)
    for (size_t i = 0; i < q.zeros.size(); ++i)
      if (q.zeros[i] == 0.0f)
        return Status::error(
            ctx + ": zero point 0 at " + at(i / N, i % N) +
            " cannot be stored in GPTQ v1 (it stores z - 1 and would wrap to " +
            std::to_string(qmax) +
            "); write checkpoint_format gptq_v2 or use a symmetric grid");

  // §14.6 padding: whole words only, as the loaders size qweight.
  const int64_t Kp = opts.padK ? gptqPaddedK(K, bits) : K;
  if (bits == 3 && Kp % 32 != 0)
    return Status::error(ctx +
                         ": 3-bit codes need K % 32 == 0 (whole "
                         "three-word blocks), got K = " +
                         std::to_string(K) +
                         "; pack with padK or use the rows layout");
  if (bits == 3 && N % 32 != 0)
    return Status::error(ctx +
                         ": 3-bit zero points need N % 32 == 0, got N = " +
                         std::to_string(N) + "; use the rows layout");

  out = GPTQTensors();
  out.bits = bits;
  out.groupSize = q.groupSize;
  out.sym = q.sym;
  out.format = opts.format;
  out.inFeatures = K;
  out.K = Kp;
  out.N = N;
  out.numGroups = ng;

  // g_idx has the true K entries: the loaders index scales with it.
  out.gIdx.resize(static_cast<size_t>(K));
  for (int64_t k = 0; k < K; ++k)
    out.gIdx[k] = static_cast<int32_t>(q.groupOf(k));

  // qweight: column n holds the stream of row n's codes, words N apart.
  out.qweight.assign(static_cast<size_t>(out.qweightRows() * N), 0);
  std::vector<uint8_t> row(static_cast<size_t>(Kp));
  for (int64_t n = 0; n < N; ++n) {
    std::memcpy(row.data(), q.codes.data() + n * K, static_cast<size_t>(K));
    // Pad codes equal the zero point so that padded columns dequantize to 0.
    for (int64_t k = K; k < Kp; ++k)
      row[k] = static_cast<uint8_t>(q.zeros[(ng - 1) * N + n]);
    packCodeStream(row.data(), 1, Kp, bits, out.qweight.data() + n, N);
  }

  // qzeros: row g is the stream of the (possibly minus-one) zero points.
  out.qzeros.assign(static_cast<size_t>(ng * out.qzerosCols()), 0);
  std::vector<uint8_t> zrow(static_cast<size_t>(N));
  for (int64_t g = 0; g < ng; ++g) {
    for (int64_t n = 0; n < N; ++n) {
      uint32_t z = static_cast<uint32_t>(q.zeros[g * N + n]);
      // v1 never sees z == 0 here (refused above), so z - 1 needs no wrap.
      zrow[n] = static_cast<uint8_t>(opts.format == GPTQFormat::V1 ? z - 1 : z);
    }
    packCodeStream(zrow.data(), 1, N, bits,
                   out.qzeros.data() + g * out.qzerosCols(), 1);
  }

  out.scales.resize(q.scales.size());
  for (size_t i = 0; i < q.scales.size(); ++i)
    out.scales[i] = f32ToF16(q.scales[i]);
  return Status::ok();
}

Status qc::quant::checkGPTQLayoutFits(int64_t N, int64_t K,
                                      const QuantConfig &cfg) {
  if (cfg.scaleDType != ScaleDType::F16)
    return Status::error("the gptq layout stores fp16 scales (scale-dtype is "
                         "not f16)");
  // Same conditions as packGPTQ (without padK) for 3-bit codes.
  if (cfg.bits == 3 && K % 32 != 0)
    return Status::error("3-bit codes in the gptq layout need K % 32 == 0, "
                         "got K = " +
                         std::to_string(K));
  if (cfg.bits == 3 && N % 32 != 0)
    return Status::error("3-bit zero points in the gptq layout need N % 32 "
                         "== 0, got N = " +
                         std::to_string(N));
  return Status::ok();
}

Status qc::quant::unpackGPTQ(const GPTQTensors &t, QuantizedWeight &out) {
  const std::string ctx = "GPTQ unpack";
  if (!validBits(t.bits))
    return Status::error(ctx + ": unsupported bit width " +
                         std::to_string(t.bits));
  if (t.groupSize == 0 || t.groupSize < -1)
    return Status::error(ctx + ": invalid group size " +
                         std::to_string(t.groupSize));
  if (t.N <= 0 || t.inFeatures <= 0 || t.K < t.inFeatures)
    return Status::error(ctx + ": invalid shape (inFeatures " +
                         std::to_string(t.inFeatures) + ", packed K " +
                         std::to_string(t.K) + ", N " + std::to_string(t.N) +
                         ")");
  if (t.bits == 3 && (t.K % 32 != 0 || t.N % 32 != 0))
    return Status::error(ctx + ": 3-bit tensors need K and N multiples of 32");
  const int64_t N = t.N, K = t.inFeatures, Kp = t.K;
  const int64_t ng = numGroupsFor(K, t.groupSize);
  if (t.numGroups != ng)
    return Status::error(
        ctx + ": " + std::to_string(t.numGroups) +
        " groups, expected ceil(K / G) = " + std::to_string(ng));
  QC_RETURN_IF_ERROR(
      checkSize(t.qweight.size(), t.qweightRows(), N, "qweight", ctx));
  QC_RETURN_IF_ERROR(
      checkSize(t.qzeros.size(), ng, t.qzerosCols(), "qzeros", ctx));
  QC_RETURN_IF_ERROR(checkSize(t.scales.size(), ng, N, "scales", ctx));
  // g_idx covers the true K (word padding) or every packed column (the
  // older whole-group padding).
  const int64_t gLen = static_cast<int64_t>(t.gIdx.size());
  if (gLen != K && gLen != Kp)
    return Status::error(ctx + ": g_idx has " + std::to_string(gLen) +
                         " entries, expected in_features " + std::to_string(K) +
                         (Kp != K
                              ? " (or the padded " + std::to_string(Kp) + ")"
                              : std::string()));
  for (int64_t k = 0; k < gLen; ++k)
    if (t.gIdx[k] < 0 || t.gIdx[k] >= ng)
      return Status::error(ctx + ": g_idx[" + std::to_string(k) +
                           "] = " + std::to_string(t.gIdx[k]) +
                           " is out of range [0, " + std::to_string(ng) + ")");

  QuantConfig cfg;
  cfg.bits = t.bits;
  cfg.groupSize = t.groupSize;
  cfg.sym = t.sym;
  cfg.scaleDType = ScaleDType::F16;
  out.allocate(N, K, ng, cfg);
  QC_RETURN_IF_ERROR(decodeF16Scales(t.scales, N, out.scales, ctx));

  // Zeros. v1 decodes (stored + 1) mod 2^b: re-masking is what a correct
  // loader must do (§8.1 pitfall), and it maps a wrapped qmax back to 0.
  const uint32_t qmax = static_cast<uint32_t>(qmaxForBits(t.bits));
  std::vector<uint8_t> zrow(static_cast<size_t>(N));
  for (int64_t g = 0; g < ng; ++g) {
    unpackCodeStream(t.qzeros.data() + g * t.qzerosCols(), 1, N, t.bits,
                     zrow.data(), 1);
    for (int64_t n = 0; n < N; ++n) {
      uint32_t z = zrow[n];
      if (t.format == GPTQFormat::V1)
        z = (z + 1) & qmax;
      out.zeros[g * N + n] = static_cast<float>(z);
    }
  }
  QC_RETURN_IF_ERROR(checkSymZeros(out, ctx));

  std::vector<uint8_t> row(static_cast<size_t>(Kp));
  for (int64_t n = 0; n < N; ++n) {
    unpackCodeStream(t.qweight.data() + n, N, Kp, t.bits, row.data(), 1);
    std::memcpy(out.codes.data() + n * K, row.data(), static_cast<size_t>(K));
    for (int64_t k = K; k < Kp; ++k)
      if (static_cast<float>(row[k]) !=
          out.zeros[(k < gLen ? t.gIdx[k] : ng - 1) * N + n])
        return Status::error(
            ctx + ": padded input column " + std::to_string(k) + " of row " +
            std::to_string(n) +
            " does not hold its zero point (it would not dequantize to 0)");
  }

  // Keep g_idx only when it differs from the default k / G.
  bool trivial = true;
  for (int64_t k = 0; k < K && trivial; ++k)
    trivial = t.gIdx[k] == (t.groupSize > 0 ? k / t.groupSize : 0);
  if (!trivial)
    out.gIdx.assign(t.gIdx.begin(), t.gIdx.begin() + K);
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// AWQ GEMM
//===----------------------------------------------------------------------===//

namespace {

/// Packs the 8 consecutive channels [8c, 8c + 8) of `vals` (indexed by
/// channel through `get`) in AWQ's interleaved nibble order.
template <typename Get> int32_t packAWQWord(int64_t c, Get get) {
  uint32_t word = 0;
  for (int i = 0; i < 8; ++i)
    word |= (static_cast<uint32_t>(get(8 * c + kAWQOrder[i])) & 0xFu)
            << (4 * i);
  return static_cast<int32_t>(word);
}

/// Nibble of output channel 8c + j in an AWQ word.
inline uint32_t awqNibble(int32_t word, int j) {
  return (static_cast<uint32_t>(word) >> (4 * kAWQReverseOrder[j])) & 0xFu;
}

} // namespace

Status qc::quant::packAWQ(const QuantizedWeight &q, AWQTensors &out) {
  const std::string ctx = "AWQ pack";
  QC_RETURN_IF_ERROR(q.verify().withContext(ctx));
  if (q.bits != 4)
    return Status::error(ctx + ": the AWQ GEMM layout is 4-bit only, got " +
                         std::to_string(q.bits) + " bits");
  const int64_t N = q.rows, K = q.cols;
  if (N % 8 != 0)
    return Status::error(ctx +
                         ": N % 8 == 0 required (8 channels per word), "
                         "got N = " +
                         std::to_string(N));
  if (q.groupSize > 0 && K % q.groupSize != 0)
    return Status::error(ctx +
                         ": K % G == 0 required, got K = " + std::to_string(K) +
                         ", G = " + std::to_string(q.groupSize));
  if (!q.hasTrivialGIdx())
    return Status::error(ctx + ": AWQ has no g_idx; the weight's act-order "
                               "g_idx is not the default k / G");
  QC_RETURN_IF_ERROR(checkIntegerZeros(q, ctx));
  QC_RETURN_IF_ERROR(checkF16Scales(q, ctx));

  const int64_t ng = q.numGroups(), cols = N / 8;
  out = AWQTensors();
  out.K = K;
  out.N = N;
  out.groupSize = q.groupSize;
  out.sym = q.sym;
  out.numGroups = ng;
  out.qweight.resize(static_cast<size_t>(K * cols));
  for (int64_t k = 0; k < K; ++k)
    for (int64_t c = 0; c < cols; ++c)
      out.qweight[k * cols + c] =
          packAWQWord(c, [&](int64_t n) { return q.codes[n * K + k]; });
  out.qzeros.resize(static_cast<size_t>(ng * cols));
  for (int64_t g = 0; g < ng; ++g)
    for (int64_t c = 0; c < cols; ++c)
      out.qzeros[g * cols + c] = packAWQWord(c, [&](int64_t n) {
        return static_cast<uint32_t>(q.zeros[g * N + n]);
      });
  out.scales.resize(q.scales.size());
  for (size_t i = 0; i < q.scales.size(); ++i)
    out.scales[i] = f32ToF16(q.scales[i]);
  return Status::ok();
}

Status qc::quant::unpackAWQ(const AWQTensors &t, QuantizedWeight &out) {
  const std::string ctx = "AWQ unpack";
  if (t.K <= 0 || t.N <= 0 || t.N % 8 != 0)
    return Status::error(ctx + ": invalid shape K = " + std::to_string(t.K) +
                         ", N = " + std::to_string(t.N) +
                         " (N must be a positive multiple of 8)");
  if (t.groupSize == 0 || t.groupSize < -1 ||
      (t.groupSize > 0 && t.K % t.groupSize != 0))
    return Status::error(ctx + ": group size " + std::to_string(t.groupSize) +
                         " does not divide K = " + std::to_string(t.K));
  const int64_t N = t.N, K = t.K, cols = N / 8;
  const int64_t ng = numGroupsFor(K, t.groupSize);
  if (t.numGroups != ng)
    return Status::error(ctx + ": " + std::to_string(t.numGroups) +
                         " groups, expected K / G = " + std::to_string(ng));
  QC_RETURN_IF_ERROR(checkSize(t.qweight.size(), K, cols, "qweight", ctx));
  QC_RETURN_IF_ERROR(checkSize(t.qzeros.size(), ng, cols, "qzeros", ctx));
  QC_RETURN_IF_ERROR(checkSize(t.scales.size(), ng, N, "scales", ctx));

  QuantConfig cfg;
  cfg.bits = 4;
  cfg.groupSize = t.groupSize;
  cfg.sym = t.sym;
  cfg.scaleDType = ScaleDType::F16;
  out.allocate(N, K, ng, cfg);
  QC_RETURN_IF_ERROR(decodeF16Scales(t.scales, N, out.scales, ctx));
  for (int64_t k = 0; k < K; ++k)
    for (int64_t c = 0; c < cols; ++c)
      for (int j = 0; j < 8; ++j)
        out.codes[(8 * c + j) * K + k] =
            static_cast<uint8_t>(awqNibble(t.qweight[k * cols + c], j));
  for (int64_t g = 0; g < ng; ++g)
    for (int64_t c = 0; c < cols; ++c)
      for (int j = 0; j < 8; ++j)
        out.zeros[g * N + 8 * c + j] =
            static_cast<float>(awqNibble(t.qzeros[g * cols + c], j));
  return checkSymZeros(out, ctx);
}

//===----------------------------------------------------------------------===//
// Rows
//===----------------------------------------------------------------------===//

Status qc::quant::packRows(const QuantizedWeight &q,
                           const RowsPackOptions &opts, RowsTensors &out) {
  const std::string ctx = "rows pack";
  QC_RETURN_IF_ERROR(q.verify().withContext(ctx));
  QC_RETURN_IF_ERROR(checkStorageScales(q, ctx));
  const bool floatZeros = !q.sym && opts.floatZeros;
  if (!floatZeros)
    QC_RETURN_IF_ERROR(checkIntegerZeros(q, ctx));

  const int64_t N = q.rows, K = q.cols;
  out = RowsTensors();
  out.bits = q.bits;
  out.groupSize = q.groupSize;
  out.sym = q.sym;
  out.scaleDType = q.scaleDType;
  out.N = N;
  out.K = K;
  out.numGroups = q.numGroups();
  const int64_t wc = out.qweightCols();
  out.qweight.assign(static_cast<size_t>(N * wc), 0);
  for (int64_t n = 0; n < N; ++n)
    packCodeStream(q.codes.data() + n * K, 1, K, q.bits,
                   out.qweight.data() + n * wc, 1);
  out.scales = q.scales;
  if (floatZeros) {
    out.floatZeros = q.zeros;
  } else if (!q.sym) {
    out.zeros.resize(q.zeros.size());
    for (size_t i = 0; i < q.zeros.size(); ++i)
      out.zeros[i] = static_cast<int32_t>(q.zeros[i]);
  }
  out.gIdx = q.gIdx;
  return Status::ok();
}

Status qc::quant::unpackRows(const RowsTensors &t, QuantizedWeight &out) {
  const std::string ctx = "rows unpack";
  if (!validBits(t.bits))
    return Status::error(ctx + ": unsupported bit width " +
                         std::to_string(t.bits));
  if (t.groupSize == 0 || t.groupSize < -1)
    return Status::error(ctx + ": invalid group size " +
                         std::to_string(t.groupSize));
  if (t.N <= 0 || t.K <= 0)
    return Status::error(ctx + ": invalid shape N = " + std::to_string(t.N) +
                         ", K = " + std::to_string(t.K));
  const int64_t N = t.N, K = t.K, ng = numGroupsFor(K, t.groupSize);
  if (t.numGroups != ng)
    return Status::error(
        ctx + ": " + std::to_string(t.numGroups) +
        " groups, expected ceil(K / G) = " + std::to_string(ng));
  QC_RETURN_IF_ERROR(
      checkSize(t.qweight.size(), N, t.qweightCols(), "qweight", ctx));
  QC_RETURN_IF_ERROR(checkSize(t.scales.size(), ng, N, "scales", ctx));
  if (t.sym && (!t.zeros.empty() || !t.floatZeros.empty()))
    return Status::error(ctx + ": a symmetric weight carries no zero points");
  if (!t.sym && t.zeros.empty() == t.floatZeros.empty())
    return Status::error(ctx + ": an asymmetric weight needs exactly one of "
                               "integer or float zero points");
  if (!t.gIdx.empty()) {
    QC_RETURN_IF_ERROR(checkSize(t.gIdx.size(), 1, K, "g_idx", ctx));
    for (int64_t k = 0; k < K; ++k)
      if (t.gIdx[k] < 0 || t.gIdx[k] >= ng)
        return Status::error(ctx + ": g_idx[" + std::to_string(k) + "] = " +
                             std::to_string(t.gIdx[k]) + " is out of range");
  }

  QuantConfig cfg;
  cfg.bits = t.bits;
  cfg.groupSize = t.groupSize;
  cfg.sym = t.sym;
  cfg.scaleDType = t.scaleDType;
  out.allocate(N, K, ng, cfg);
  for (size_t i = 0; i < t.scales.size(); ++i)
    if (!std::isfinite(t.scales[i]))
      return Status::error(ctx + ": scale at " + at(i / N, i % N) +
                           " is not finite");
  out.scales = t.scales;
  if (t.sym) {
    out.zeros.assign(out.zeros.size(), static_cast<float>(1 << (t.bits - 1)));
  } else if (!t.zeros.empty()) {
    QC_RETURN_IF_ERROR(checkSize(t.zeros.size(), ng, N, "zeros", ctx));
    const int32_t qmax = qmaxForBits(t.bits);
    for (size_t i = 0; i < t.zeros.size(); ++i) {
      if (t.zeros[i] < 0 || t.zeros[i] > qmax)
        return Status::error(ctx + ": zero point " +
                             std::to_string(t.zeros[i]) + " at " +
                             at(i / N, i % N) + " is out of range");
      out.zeros[i] = static_cast<float>(t.zeros[i]);
    }
  } else {
    QC_RETURN_IF_ERROR(
        checkSize(t.floatZeros.size(), ng, N, "float zeros", ctx));
    for (size_t i = 0; i < t.floatZeros.size(); ++i)
      if (!std::isfinite(t.floatZeros[i]))
        return Status::error(ctx + ": zero point at " + at(i / N, i % N) +
                             " is not finite");
    out.zeros = t.floatZeros;
  }
  const int64_t wc = t.qweightCols();
  for (int64_t n = 0; n < N; ++n)
    unpackCodeStream(t.qweight.data() + n * wc, 1, K, t.bits,
                     out.codes.data() + n * K, 1);
  out.gIdx = t.gIdx;
  return Status::ok();
}
