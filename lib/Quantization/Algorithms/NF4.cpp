//===- NF4.cpp - bitsandbytes NF4 quantization ----------------------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Implements NF4 block-wise quantization, its double quantization and the
// dequantization declared in NF4.h (../shared/docs/ALGORITHMS.md §7). The
// arithmetic that decides a code follows bitsandbytes in fp32 and in the
// same order: the block is scaled by the reciprocal of its absmax (not
// divided), the result is clamped to [-1, 1] and compared with strict `>`
// against the midpoints, so a value on a midpoint keeps the lower code.
//
//===----------------------------------------------------------------------===//

#include "qc/Quantization/Algorithms/NF4.h"

#include <algorithm>
#include <cmath>
#include <string>

using namespace qc;
using namespace qc::quant;

namespace {

/// Smallest absmax used for the reciprocal (§7.2): keeps an all-zero block
/// from producing 0 * inf = NaN; such a block then maps to the code of 0.
constexpr float kMinAbsmax = 1e-38f;

/// Number of entries of `sorted` (ascending, `n` of them) strictly below y:
/// the code of y when `sorted` are the decision midpoints. NaN compares
/// false everywhere and yields 0.
int countBelow(const float *sorted, int n, float y) {
  int lo = 0, hi = n;
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    if (y > sorted[mid])
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/// torch.linspace(start, end, steps) in float32 as ATen's scalar CPU kernel
/// evaluates it: the first half counts up from `start`, the second half
/// counts down from `end`, so both ends are exact.
std::vector<float> linspaceF32(float start, float end, int steps) {
  std::vector<float> v(static_cast<size_t>(steps));
  if (steps == 1) {
    v[0] = start;
    return v;
  }
  const float step = (end - start) / static_cast<float>(steps - 1);
  const int halfway = steps / 2;
  for (int i = 0; i < steps; ++i)
    v[i] = i < halfway ? start + step * static_cast<float>(i)
                       : end - step * static_cast<float>(steps - i - 1);
  return v;
}

/// create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8) of
/// §7.3 in float32: for exponent i = 0..6, the midpoints of 2^i + 1
/// boundaries linspace(0.1, 1) scaled by 10^(i-6) and their negatives, plus
/// 0 and 1, sorted. Python's scalar 10**(i-6) is a double that torch rounds
/// to float32 before the float32 product.
std::vector<float> buildDynamicMap() {
  static const double kPow10[7] = {1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0};
  std::vector<float> data;
  data.reserve(256);
  for (int i = 0; i < 7; ++i) {
    const std::vector<float> b = linspaceF32(0.1f, 1.0f, (1 << i) + 1);
    const float scale = static_cast<float>(kPow10[i]);
    for (size_t j = 0; j + 1 < b.size(); ++j) {
      const float mean = (b[j] + b[j + 1]) / 2.0f;
      data.push_back(scale * mean);
      data.push_back(-(scale * mean));
    }
  }
  data.push_back(0.0f);
  data.push_back(1.0f);
  std::sort(data.begin(), data.end());
  return data;
}

} // namespace

int qc::quant::nf4Code(float y) { return countBelow(kNF4Thresholds, 15, y); }

const std::vector<float> &qc::quant::dynamicMap8() {
  static const std::vector<float> map = buildDynamicMap();
  return map;
}

int qc::quant::nearestCodeLowerTie(const float *map, int n, float y) {
  // Midpoints are formed in fp32 on the fly; with an ascending map they are
  // ascending too, so the code is the number of midpoints below y.
  int lo = 0, hi = n - 1;
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    float m = (map[mid] + map[mid + 1]) * 0.5f;
    if (y > m)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

bool qc::quant::isValidNF4BlockSize(int64_t blockSize) {
  switch (blockSize) {
  case 32:
  case 64:
  case 128:
  case 256:
  case 512:
  case 1024:
  case 2048:
  case 4096:
    return true;
  default:
    return false;
  }
}

//===----------------------------------------------------------------------===//
// NF4Weight
//===----------------------------------------------------------------------===//

void NF4Weight::blockAbsmax(std::vector<float> &out) const {
  if (!doubleQuant) {
    out = absmax;
    return;
  }
  const int64_t nb = numBlocks();
  out.resize(static_cast<size_t>(nb));
  for (int64_t b = 0; b < nb; ++b) {
    // Two fp32 roundings, as bitsandbytes dequantizes the nested values
    // (map * absmax2) and then adds the offset in a separate op.
    float v =
        nestedQuantMap[absmaxCodes[b]] * nestedAbsmax[b / nestedBlockSize];
    out[b] = v + nestedOffset;
  }
}

Status NF4Weight::verify() const {
  if (numel <= 0)
    return Status::error("NF4 weight has no elements");
  if (!isValidNF4BlockSize(blockSize))
    return Status::error("NF4 weight has unsupported block size " +
                         std::to_string(blockSize));
  if (static_cast<int64_t>(packed.size()) != (numel + 1) / 2)
    return Status::error("NF4 packed buffer has " +
                         std::to_string(packed.size()) + " bytes, expected " +
                         std::to_string((numel + 1) / 2));
  const int64_t nb = numBlocks();
  if (!doubleQuant) {
    if (static_cast<int64_t>(absmax.size()) != nb)
      return Status::error("NF4 absmax has " + std::to_string(absmax.size()) +
                           " entries, expected " + std::to_string(nb));
    for (size_t i = 0; i < absmax.size(); ++i)
      if (!std::isfinite(absmax[i]))
        return Status::error("NF4 absmax of block " + std::to_string(i) +
                             " is not finite");
    return Status::ok();
  }
  if (!absmax.empty())
    return Status::error(
        "double-quantized NF4 weight also carries fp32 absmax");
  if (static_cast<int64_t>(absmaxCodes.size()) != nb)
    return Status::error("NF4 absmax codes have " +
                         std::to_string(absmaxCodes.size()) +
                         " entries, expected " + std::to_string(nb));
  if (nestedBlockSize <= 0)
    return Status::error("NF4 nested block size must be positive");
  const int64_t nnb = (nb + nestedBlockSize - 1) / nestedBlockSize;
  if (static_cast<int64_t>(nestedAbsmax.size()) != nnb)
    return Status::error("NF4 nested absmax has " +
                         std::to_string(nestedAbsmax.size()) +
                         " entries, expected " + std::to_string(nnb));
  if (nestedQuantMap.size() != 256)
    return Status::error("NF4 nested quant map has " +
                         std::to_string(nestedQuantMap.size()) +
                         " entries, expected 256");
  for (float v : nestedAbsmax)
    if (!std::isfinite(v))
      return Status::error("NF4 nested absmax is not finite");
  for (float v : nestedQuantMap)
    if (!std::isfinite(v))
      return Status::error("NF4 nested quant map has a non-finite entry");
  if (!std::isfinite(nestedOffset))
    return Status::error("NF4 nested offset is not finite");
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// Quantization
//===----------------------------------------------------------------------===//

Status qc::quant::quantizeNF4(const float *w, int64_t numel, int64_t blockSize,
                              bool doubleQuant, NF4Weight &out) {
  if (numel <= 0)
    return Status::error("NF4: invalid element count " + std::to_string(numel));
  if (!w)
    return Status::error("NF4: null weight pointer");
  if (!isValidNF4BlockSize(blockSize))
    return Status::error("NF4: unsupported block size " +
                         std::to_string(blockSize) +
                         " (expected 32, 64, 128, ..., 4096)");
  for (int64_t i = 0; i < numel; ++i)
    if (!std::isfinite(w[i]))
      return Status::error("NF4: non-finite weight " + std::to_string(w[i]) +
                           " at flat index " + std::to_string(i));

  out = NF4Weight();
  out.numel = numel;
  out.blockSize = blockSize;
  out.doubleQuant = doubleQuant;
  const int64_t nb = out.numBlocks();
  out.absmax.resize(static_cast<size_t>(nb));
  out.packed.assign(static_cast<size_t>((numel + 1) / 2), 0);
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t lo = b * blockSize, hi = std::min(numel, lo + blockSize);
    float am = 0.0f;
    for (int64_t i = lo; i < hi; ++i)
      am = std::max(am, std::fabs(w[i]));
    out.absmax[b] = am;
    const float inv = 1.0f / std::max(am, kMinAbsmax);
    for (int64_t i = lo; i < hi; ++i) {
      float y = std::min(std::max(w[i] * inv, -1.0f), 1.0f);
      const uint8_t c = static_cast<uint8_t>(nf4Code(y));
      // First element of a pair in the high nibble (§7.2).
      out.packed[i / 2] |= (i % 2 == 0) ? static_cast<uint8_t>(c << 4) : c;
    }
  }
  if (!doubleQuant)
    return Status::ok();

  // §7.3: centre the absmax values on their mean, then quantize them
  // block-wise (256) with the 8-bit dynamic map. The mean is accumulated in
  // fp64 so that it does not depend on the summation order.
  double sum = 0.0;
  for (float v : out.absmax)
    sum += v;
  out.nestedOffset = static_cast<float>(sum / static_cast<double>(nb));
  out.nestedBlockSize = kNF4NestedBlockSize;
  out.nestedQuantMap = dynamicMap8();
  const float *map = out.nestedQuantMap.data();
  const int64_t nbs = out.nestedBlockSize;
  const int64_t nnb = (nb + nbs - 1) / nbs;
  out.nestedAbsmax.resize(static_cast<size_t>(nnb));
  out.absmaxCodes.resize(static_cast<size_t>(nb));
  std::vector<float> a(static_cast<size_t>(nb));
  for (int64_t b = 0; b < nb; ++b)
    a[b] = out.absmax[b] - out.nestedOffset;
  for (int64_t j = 0; j < nnb; ++j) {
    const int64_t lo = j * nbs, hi = std::min(nb, lo + nbs);
    float am2 = 0.0f;
    for (int64_t b = lo; b < hi; ++b)
      am2 = std::max(am2, std::fabs(a[b]));
    out.nestedAbsmax[j] = am2;
    const float inv = 1.0f / std::max(am2, kMinAbsmax);
    for (int64_t b = lo; b < hi; ++b) {
      float y = std::min(std::max(a[b] * inv, -1.0f), 1.0f);
      out.absmaxCodes[b] =
          static_cast<uint8_t>(nearestCodeLowerTie(map, 256, y));
    }
  }
  out.absmax.clear();
  return Status::ok();
}

void qc::quant::dequantizeNF4(const NF4Weight &q, std::vector<float> &out) {
  std::vector<float> am;
  q.blockAbsmax(am);
  out.resize(static_cast<size_t>(q.numel));
  for (int64_t i = 0; i < q.numel; ++i)
    out[i] = kNF4CodeBook[q.code(i)] * am[i / q.blockSize];
}
