//===- VectorizeLinear.h - Kernels of qc-vectorize-linear -------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// What the pass (VectorizeLinear.cpp) shares with the fused
// dequantize-linear kernel (DequantKernel.cpp).
//
//===----------------------------------------------------------------------===//

#ifndef QC_LIB_CONVERSION_VECTORIZELINEAR_VECTORIZELINEAR_H
#define QC_LIB_CONVERSION_VECTORIZELINEAR_VECTORIZELINEAR_H

#include "mlir/Dialect/Linalg/IR/Linalg.h"

#include <optional>

namespace mlir::qc::detail {

/// How the fused linear's zero points are stored: none (symmetric, the
/// constant 2^(bits - 1)), floats [groups, N] (f32, f16 or bf16), or GPTQ
/// v1 words [groups, ceil(N / c)] holding z - 1 over N.
enum class DequantZeros { Symmetric, Float, Packed };

/// The operands of convert-wq-to-linalg's fused GPTQ-layout linear, on
/// buffers: x [T, K] f32, qweight [ceil(K / c), N] i32 (c = 32 / bits codes
/// per word), scales [groups, N] (f32, f16 or bf16), zeros as `zeroForm`
/// says (null when symmetric), out [T, N] f32.
struct DequantLinearOperands {
  Value x, qweight, scales, zeros, out;
  int64_t bits, groupSize;
  DequantZeros zeroForm;
};

/// The operands of `op` if it is exactly that generic (maps, types and
/// body), with whole words per group; nullopt otherwise.
std::optional<DequantLinearOperands> matchDequantLinear(linalg::GenericOp op);

/// True for a generic on buffers with `inputs` inputs, one init and
/// iterators (parallel, parallel, reduction): the (t, n, k) shape both
/// kernels' matchers start from.
bool isTokenColumnReduction(linalg::GenericOp op, unsigned inputs);

/// Emits, at the builder's position, the kernel body adding to output
/// columns [colBegin, colEnd) of `ops` the products of the K rows in groups
/// [groupBegin, groupEnd): one token row by row, more tokens with
/// `width`-lane vectors in blocks of `colBlock` vectors x `tokenBlock`
/// tokens.
void emitDequantKernel(OpBuilder &b, Location loc,
                       const DequantLinearOperands &ops, Value colBegin,
                       Value colEnd, Value groupBegin, Value groupEnd,
                       int64_t width, int64_t colBlock, int64_t tokenBlock);

} // namespace mlir::qc::detail

#endif // QC_LIB_CONVERSION_VECTORIZELINEAR_VECTORIZELINEAR_H
