//===- KernelLayout.cpp - Weight layouts read by the GPU kernels ----------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Packing is a scatter: every (n, k) of the padded Np x Kp matrix is written
// once, through mma16x64Locate, the single place that encodes the fragment
// order. Unpacking and dequantization read through the same function, so a
// round trip checks the bijection but not the order itself; the hand-written
// tile test in KernelLayoutTest pins the order to the PTX fragment layout.
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/KernelLayout.h"

#include "qc/runtime/Safetensors.h"

#include <cmath>
#include <limits>
#include <string>

namespace qc {

namespace {
/// "NxK" for messages.
std::string shapeName(int64_t N, int64_t K) {
  return std::to_string(N) + "x" + std::to_string(K);
}
} // namespace

Status mma16x64Dims(int bits, int64_t N, int64_t K, int64_t groupSize,
                    int64_t &Np, int64_t &Kp, int64_t &numGroups) {
  if (bits != 4)
    return Status::error("mma16x64 layout: " + std::to_string(bits) +
                         "-bit codes are not supported (only 4-bit)");
  if (N < 1 || K < 1)
    return Status::error("mma16x64 layout: invalid shape " + shapeName(N, K) +
                         " (both dims must be >= 1)");
  // 2^40 weights is far beyond any layer and keeps every product below
  // (Np*Kp, bytes, word indices) well inside int64_t.
  if (N > (int64_t(1) << 40) / K)
    return Status::error("mma16x64 layout: shape " + shapeName(N, K) +
                         " is too large (more than 2^40 weights)");
  if (groupSize != -1 && groupSize < 1)
    return Status::error("mma16x64 layout: invalid group size " +
                         std::to_string(groupSize) + " (must be -1 or >= 1)");
  Np = (N + 15) / 16 * 16;
  Kp = (K + 63) / 64 * 64;
  numGroups = groupSize == -1 ? 1 : (K + groupSize - 1) / groupSize;
  return Status::ok();
}

void mma16x64Locate(int64_t Kp, int64_t n, int64_t k, int64_t &word,
                    int &nibble) {
  int64_t nt = n / 16, kc = k / 64;
  int rr = int(n % 16), kk = int(k % 64);
  int j = kk / 16, cc = kk % 16;
  // Fragment coordinates: row r (+8 when hi), column c = 2*(lane%4) (+1 when
  // odd, +8 when colHi).
  int r = rr % 8, hi = rr / 8;
  int colHi = cc / 8, c8 = cc % 8, odd = c8 % 2;
  int lane = r * 4 + c8 / 2;
  // e0..e7 in PTX order: (r,c) (r,c+1) (r+8,c) (r+8,c+1) then the same at
  // column +8.
  int e = colHi * 4 + hi * 2 + odd;
  // e_{2i} sits in nibble i, e_{2i+1} in nibble i+4, so that one shift and
  // mask 0x000F000F yields the f16x2 pair (a_i) in the low/high halves.
  nibble = e / 2 + 4 * (e % 2);
  word = ((nt * (Kp / 64) + kc) * 32 + lane) * 4 + j;
}

int64_t groupMMA16x64(const MMA16x64Tensors &t, int64_t k) {
  if (t.groupSize == -1)
    return 0;
  int64_t g = k / t.groupSize;
  return g < t.numGroups ? g : t.numGroups - 1;
}

unsigned codeMMA16x64(const MMA16x64Tensors &t, int64_t n, int64_t k) {
  int64_t word;
  int nibble;
  mma16x64Locate(t.Kp, n, k, word, nibble);
  return (uint32_t(t.qweight[size_t(word)]) >> (4 * nibble)) & 0xF;
}

Status packMMA16x64(int bits, int64_t N, int64_t K, int64_t groupSize, bool sym,
                    const uint8_t *codes, const float *scales,
                    const float *zeros, MMA16x64Tensors &out) {
  int64_t Np, Kp, G;
  QC_RETURN_IF_ERROR(mma16x64Dims(bits, N, K, groupSize, Np, Kp, G));
  if (!codes || !scales)
    return Status::error("packMMA16x64: codes and scales are required");
  if (sym && zeros)
    return Status::error(
        "packMMA16x64: symmetric layer given a zeros array (z is 2^(bits-1))");
  if (!sym && !zeros)
    return Status::error("packMMA16x64: asymmetric layer needs zeros");
  const unsigned maxCode = (1u << bits) - 1;
  const std::string where = "packMMA16x64 " + shapeName(N, K) + ": ";

  MMA16x64Tensors t;
  t.bits = bits;
  t.N = N;
  t.K = K;
  t.Np = Np;
  t.Kp = Kp;
  t.groupSize = groupSize;
  t.numGroups = G;
  t.sym = sym;
  t.scales.assign(size_t(G * Np), 0);
  if (!sym)
    t.zeros.assign(size_t(G * Np), 0);
  std::vector<unsigned> zeroInt(size_t(G * Np), 1u << (bits - 1));
  for (int64_t g = 0; g < G; ++g) {
    for (int64_t n = 0; n < N; ++n) {
      float s = scales[g * N + n];
      if (!std::isfinite(s))
        return Status::error(where + "scale [" + std::to_string(g) + "][" +
                             std::to_string(n) + "] is not finite");
      uint16_t h = f32ToF16(s);
      if (!std::isfinite(f16ToF32(h)))
        return Status::error(where + "scale [" + std::to_string(g) + "][" +
                             std::to_string(n) + "] = " + std::to_string(s) +
                             " overflows fp16");
      t.scales[size_t(g * Np + n)] = h;
      if (!sym) {
        float z = zeros[g * N + n];
        if (!(z >= 0.0f && z <= float(maxCode)) || z != std::floor(z))
          return Status::error(
              where + "zero point [" + std::to_string(g) + "][" +
              std::to_string(n) + "] = " + std::to_string(z) +
              " is not an integer in [0, " + std::to_string(maxCode) + "]");
        t.zeros[size_t(g * Np + n)] = f32ToF16(z);
        zeroInt[size_t(g * Np + n)] = unsigned(z);
      }
    }
  }

  t.qweight.assign(size_t(Np * Kp / 8), 0);
  for (int64_t n = 0; n < Np; ++n) {
    for (int64_t k = 0; k < Kp; ++k) {
      unsigned q;
      if (n >= N) {
        q = 0; // with scale 0: dequantizes to 0
      } else if (k >= K) {
        q = zeroInt[size_t(groupMMA16x64(t, k) * Np + n)]; // q - z = 0
      } else {
        q = codes[n * K + k];
        if (q > maxCode)
          return Status::error(where + "code [" + std::to_string(n) + "][" +
                               std::to_string(k) + "] = " + std::to_string(q) +
                               " does not fit in " + std::to_string(bits) +
                               " bits");
      }
      int64_t word;
      int nibble;
      mma16x64Locate(Kp, n, k, word, nibble);
      t.qweight[size_t(word)] = int32_t(uint32_t(t.qweight[size_t(word)]) |
                                        (uint32_t(q) << (4 * nibble)));
    }
  }
  out = std::move(t);
  return Status::ok();
}

Status validateMMA16x64(const MMA16x64Tensors &t) {
  int64_t Np, Kp, G;
  QC_RETURN_IF_ERROR(mma16x64Dims(t.bits, t.N, t.K, t.groupSize, Np, Kp, G));
  const std::string where = "mma16x64 tensors " + shapeName(t.N, t.K) + ": ";
  if (t.Np != Np || t.Kp != Kp || t.numGroups != G)
    return Status::error(where + "padded dims " + shapeName(t.Np, t.Kp) +
                         " / " + std::to_string(t.numGroups) +
                         " groups do not match the shape (expected " +
                         shapeName(Np, Kp) + " / " + std::to_string(G) + ")");
  if (int64_t(t.qweight.size()) != Np * Kp / 8)
    return Status::error(where + "qweight has " +
                         std::to_string(t.qweight.size()) +
                         " words, expected " + std::to_string(Np * Kp / 8));
  if (int64_t(t.scales.size()) != G * Np)
    return Status::error(where + "scales has " +
                         std::to_string(t.scales.size()) +
                         " elements, expected " + std::to_string(G * Np));
  int64_t wantZeros = t.sym ? 0 : G * Np;
  if (int64_t(t.zeros.size()) != wantZeros)
    return Status::error(where + "zeros has " + std::to_string(t.zeros.size()) +
                         " elements, expected " + std::to_string(wantZeros) +
                         (t.sym ? " (symmetric layers have none)" : ""));
  return Status::ok();
}

Status unpackMMA16x64(const MMA16x64Tensors &t, std::vector<uint8_t> &codes,
                      std::vector<float> &scales, std::vector<float> &zeros) {
  QC_RETURN_IF_ERROR(validateMMA16x64(t));
  const int64_t N = t.N, K = t.K, Np = t.Np, G = t.numGroups;
  codes.assign(size_t(N * K), 0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k)
      codes[size_t(n * K + k)] = uint8_t(codeMMA16x64(t, n, k));
  scales.assign(size_t(G * N), 0.0f);
  zeros.clear();
  if (!t.sym)
    zeros.assign(size_t(G * N), 0.0f);
  for (int64_t g = 0; g < G; ++g) {
    for (int64_t n = 0; n < N; ++n) {
      scales[size_t(g * N + n)] = f16ToF32(t.scales[size_t(g * Np + n)]);
      if (!t.sym)
        zeros[size_t(g * N + n)] = f16ToF32(t.zeros[size_t(g * Np + n)]);
    }
  }
  return Status::ok();
}

float dequantizeMMA16x64(const MMA16x64Tensors &t, int64_t n, int64_t k) {
  if (n < 0 || k < 0 || n >= t.Np || k >= t.Kp)
    return std::numeric_limits<float>::quiet_NaN();
  int64_t g = groupMMA16x64(t, k);
  float s = f16ToF32(t.scales[size_t(g * t.Np + n)]);
  float z = t.sym ? float(1 << (t.bits - 1))
                  : f16ToF32(t.zeros[size_t(g * t.Np + n)]);
  float q = float(codeMMA16x64(t, n, k));
  // s has 11 significant bits and |q - z| < 16, so the fp32 product is exact
  // and the only rounding is the one to fp16: the value the contract fixes
  // for the kernels (and the CPU path's f16 dequantization).
  return f16ToF32(f32ToF16(s * (q - z)));
}

Status dequantizeAllMMA16x64(const MMA16x64Tensors &t, std::vector<float> &w) {
  QC_RETURN_IF_ERROR(validateMMA16x64(t));
  w.assign(size_t(t.N * t.K), 0.0f);
  for (int64_t n = 0; n < t.N; ++n)
    for (int64_t k = 0; k < t.K; ++k)
      w[size_t(n * t.K + k)] = dequantizeMMA16x64(t, n, k);
  return Status::ok();
}

} // namespace qc
