//===- LinalgBuilders.h - IR builders shared by the lowerings ---*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Shared by the llm and wq lowerings to linalg: helpers that create
// empty/filled tensors with the dynamic sizes of an existing value,
// fast-math arithmetic for reductions, and the x * W^T product whose loop
// order both lowerings rely on.
//
//===----------------------------------------------------------------------===//

#ifndef QC_CONVERSION_UTILS_LINALGBUILDERS_H
#define QC_CONVERSION_UTILS_LINALGBUILDERS_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"

namespace mlir::qc::detail {

/// The size of dimension `dim` of tensor `v`: a constant when static, else
/// a `tensor.dim`.
inline OpFoldResult dimSize(OpBuilder &b, Location loc, Value v, int64_t dim) {
  auto type = cast<RankedTensorType>(v.getType());
  if (!type.isDynamicDim(dim))
    return b.getIndexAttr(type.getDimSize(dim));
  return tensor::DimOp::create(b, loc, v, dim).getResult();
}

/// A `tensor.empty` of the given sizes and element type.
inline Value emptyTensor(OpBuilder &b, Location loc,
                         ArrayRef<OpFoldResult> sizes, Type elementType) {
  return tensor::EmptyOp::create(b, loc, sizes, elementType);
}

/// A tensor of the given sizes filled with the f32 constant `value`.
inline Value filledTensor(OpBuilder &b, Location loc,
                          ArrayRef<OpFoldResult> sizes, float value) {
  Value empty = emptyTensor(b, loc, sizes, b.getF32Type());
  Value cst = arith::ConstantOp::create(b, loc, b.getF32FloatAttr(value));
  return linalg::FillOp::create(b, loc, ValueRange{cst}, ValueRange{empty})
      .getResult(0);
}

/// Fast-math flags for reduction arithmetic. Reassociation lets LLVM
/// vectorize the reduction loops; contraction lets it fuse multiply-adds.
/// Neither changes the op's contract, which does not fix a summation order.
inline arith::FastMathFlagsAttr reductionFlags(OpBuilder &b) {
  return arith::FastMathFlagsAttr::get(b.getContext(),
                                       arith::FastMathFlags::reassoc |
                                           arith::FastMathFlags::contract);
}

/// `acc + a * b` with reduction fast-math flags.
inline Value mulAdd(OpBuilder &b, Location loc, Value acc, Value x, Value y) {
  auto fmf = reductionFlags(b);
  Value prod = arith::MulFOp::create(b, loc, x, y, fmf);
  return arith::AddFOp::create(b, loc, acc, prod, fmf);
}

/// Parallel and reduction iterator kinds, spelled short.
constexpr utils::IteratorType kPar = utils::IteratorType::parallel;
constexpr utils::IteratorType kRed = utils::IteratorType::reduction;

/// A rank-2 elementwise generic over `inputs` (all shaped like the first)
/// producing `resultElementType`, with `body` computing each result element
/// from the input elements.
Value buildElementwise2D(
    OpBuilder &b, Location loc, ValueRange inputs, Type resultElementType,
    function_ref<Value(OpBuilder &, Location, ValueRange)> body);

/// The [T, N] f32 accumulator a linear starts from: bias[n] broadcast over
/// the rows of `x` ([T, K]), or zeros when `bias` is null.
Value buildLinearInit(OpBuilder &b, Location loc, Value x, OpFoldResult n,
                      Value bias);

/// result[t, n] = sum_k x[t, k] * w[n, k] (+ bias[n]) for f32 tensors `x`
/// [T, K] and `w` [N, K] (`bias` [N] or null), as one (t, n, k) generic
/// that reads `w` as stored. The CPU pipeline's qc-vectorize-linear turns
/// exactly this generic into its vector kernel (one decode token would
/// otherwise pay a transposed copy of the weight per call, more than the
/// product itself).
Value buildMatmulTransposedB(OpBuilder &b, Location loc, Value x, Value w,
                             Value bias);

} // namespace mlir::qc::detail

#endif // QC_CONVERSION_UTILS_LINALGBUILDERS_H
