//===- KernelLayout.h - Weight layouts read by the GPU kernels --*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// The "mma16x64" layout of 4-bit weights: the fused dequantize-GEMM kernels
// compute Y^T = W X^T with W (N x K) as the A operand of
// mma.sync.m16n8k16.row.col.f32.f16.f16.f32, so the packed words are ordered
// so that one lane's 128-bit load holds its A fragments for a 16 x 64 slab of
// W (four MMAs) and a shift/mask/or turns a word into f16x2 registers
// without any shuffle. The exact word and nibble order is fixed by the GPU
// contract shared with the code generator (the repacking pass and
// quant-bench both pack with packMMA16x64); it is repeated here:
//
//   Np = ceil(N/16)*16, Kp = ceil(K/64)*64.
//   qweight word ((nt*(Kp/64) + kc)*32 + lane)*4 + j holds the 8 codes lane
//   `lane` needs for the 16x16 tile (rows 16*nt.., columns 64*kc + 16*j..):
//   with r = lane/4, c = 2*(lane%4) (relative to the tile)
//     e0=W[r][c]   e1=W[r][c+1]   e2=W[r+8][c]   e3=W[r+8][c+1]
//     e4=W[r][c+8] e5=W[r][c+9]   e6=W[r+8][c+8] e7=W[r+8][c+9]
//   and nibble i holds e_{2i}, nibble i+4 holds e_{2i+1} (i = 0..3), so
//   ((w >> 4i) & 0x000F000F) | 0x64006400 is the f16x2 (e_{2i}+1024,
//   e_{2i+1}+1024).
//   scales: fp16 [groups, Np]; zeros (asym only): fp16 [groups, Np] holding
//   the integer zero point; symmetric layers use z = 2^(bits-1).
//   W[n][k] = fp16(s[g][n] * (q - z)), g = k / G (G = -1: one group).
//
// Padding makes padded weights dequantize to exactly zero: rows n >= N have
// code 0 and scale 0; columns k >= K hold the zero point of their group,
// where the group of a padded column is min(k / G, groups - 1) (k / G can
// pass the last group when G < 64).
//
//===----------------------------------------------------------------------===//

#ifndef QC_RUNTIME_KERNELLAYOUT_H
#define QC_RUNTIME_KERNELLAYOUT_H

#include "qc/runtime/Status.h"

#include <cstdint>
#include <vector>

namespace qc {

/// One linear layer's weights in the mma16x64 layout. scales/zeros hold
/// fp16 bit patterns.
struct MMA16x64Tensors {
  int bits = 4;                 ///< code width; only 4 is supported
  int64_t N = 0;                ///< output channels (rows of W)
  int64_t K = 0;                ///< input channels (columns of W)
  int64_t Np = 0;               ///< N rounded up to 16
  int64_t Kp = 0;               ///< K rounded up to 64
  int64_t groupSize = -1;       ///< G, or -1 for one group per output channel
  int64_t numGroups = 1;        ///< ceil(K / G), 1 when G = -1
  bool sym = true;              ///< symmetric: no zeros tensor, z = 2^(bits-1)
  std::vector<int32_t> qweight; ///< Np*Kp/8 words in the order above
  std::vector<uint16_t> scales; ///< fp16 [numGroups, Np]
  std::vector<uint16_t> zeros;  ///< fp16 [numGroups, Np]; empty when sym
};

/// Np, Kp and numGroups for a shape; fails (naming the bad value) unless
/// bits == 4, N >= 1, K >= 1 and groupSize is -1 or >= 1. Also fails when
/// the packed sizes would not fit comfortably in memory arithmetic
/// (N*K > 2^40).
Status mma16x64Dims(int bits, int64_t N, int64_t K, int64_t groupSize,
                    int64_t &Np, int64_t &Kp, int64_t &numGroups);

/// Packs row-major codes [N*K] (each < 2^bits), scales [numGroups*N]
/// (row-major [group][n], finite, rounded to fp16 here) and, for asym,
/// zeros [numGroups*N] (integers in [0, 2^bits - 1]; null when sym) into
/// `out`. Fails with a message naming the first bad element.
Status packMMA16x64(int bits, int64_t N, int64_t K, int64_t groupSize, bool sym,
                    const uint8_t *codes, const float *scales,
                    const float *zeros, MMA16x64Tensors &out);

/// Checks that `t`'s fields agree with each other and with its vector
/// sizes (the checks a reader of untrusted tensors needs before indexing).
Status validateMMA16x64(const MMA16x64Tensors &t);

/// Inverse of packMMA16x64: codes [N*K], scales [numGroups*N] as floats (the
/// fp16 values) and zeros [numGroups*N] (empty when sym). Validates `t`
/// first.
Status unpackMMA16x64(const MMA16x64Tensors &t, std::vector<uint8_t> &codes,
                      std::vector<float> &scales, std::vector<float> &zeros);

/// Index of the qweight word holding W[n][k] (n < Np, k < Kp) and the
/// nibble (0..7) inside it.
void mma16x64Locate(int64_t Kp, int64_t n, int64_t k, int64_t &word,
                    int &nibble);

/// The stored code of W[n][k] for n < Np, k < Kp (padding included).
unsigned codeMMA16x64(const MMA16x64Tensors &t, int64_t n, int64_t k);

/// The group of column k (k < Kp): min(k / G, numGroups - 1), 0 when G = -1.
int64_t groupMMA16x64(const MMA16x64Tensors &t, int64_t k);

/// The dequantized weight W[n][k] exactly as the kernels compute it:
/// fp16(s * (q - z)) returned as float. Padded positions (n < Np, k < Kp)
/// give 0; positions outside [0,Np)x[0,Kp) give NaN. `t` must be valid.
float dequantizeMMA16x64(const MMA16x64Tensors &t, int64_t n, int64_t k);

/// All of W (N x K, row-major, padding dropped) dequantized as above; the
/// CPU path and the references use it. Validates `t` first.
Status dequantizeAllMMA16x64(const MMA16x64Tensors &t, std::vector<float> &w);

} // namespace qc

#endif // QC_RUNTIME_KERNELLAYOUT_H
