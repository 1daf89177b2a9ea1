//===- LinalgBuilders.cpp - IR builders shared by the lowerings -----------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//

#include "qc/Conversion/Utils/LinalgBuilders.h"

using namespace mlir;
using namespace mlir::qc::detail;

/// Returns `w` ([N, K]) transposed to [K, N].
Value mlir::qc::detail::transpose2D(OpBuilder &b, Location loc, Value w) {
  auto type = cast<RankedTensorType>(w.getType());
  Value empty =
      emptyTensor(b, loc, {dimSize(b, loc, w, 1), dimSize(b, loc, w, 0)},
                  type.getElementType());
  return linalg::TransposeOp::create(b, loc, w, empty, ArrayRef<int64_t>{1, 0})
      .getResult()[0];
}

// Each step of the (t, k, n) nest is out[t, :] += x[t, k] * wT[k, :], a
// unit-stride multiply-add that LLVM vectorizes without horizontal
// reductions (a k-innermost dot product would need its accumulator
// promoted out of memory).
Value mlir::qc::detail::buildMatmulTransposedB(OpBuilder &b, Location loc,
                                               Value x, Value w, Value bias) {
  MLIRContext *ctx = b.getContext();
  SmallVector<OpFoldResult> sizes = {dimSize(b, loc, x, 0),
                                     dimSize(b, loc, w, 0)};
  AffineExpr t, k, n;
  bindDims(ctx, t, k, n);
  Value init;
  if (bias) {
    // Start the accumulation from the bias: out[t, n] = bias[n].
    Value empty = emptyTensor(b, loc, sizes, b.getF32Type());
    AffineExpr i, j;
    bindDims(ctx, i, j);
    init = linalg::GenericOp::create(
               b, loc, empty.getType(), ValueRange{bias}, ValueRange{empty},
               ArrayRef<AffineMap>{AffineMap::get(2, 0, {j}, ctx),
                                   AffineMap::get(2, 0, {i, j}, ctx)},
               ArrayRef<utils::IteratorType>{kPar, kPar},
               [](OpBuilder &nb, Location nloc, ValueRange args) {
                 linalg::YieldOp::create(nb, nloc, args[0]);
               })
               .getResult(0);
  } else {
    init = filledTensor(b, loc, sizes, 0.0f);
  }
  Value wT = transpose2D(b, loc, w);
  SmallVector<AffineMap> maps = {AffineMap::get(3, 0, {t, k}, ctx),
                                 AffineMap::get(3, 0, {k, n}, ctx),
                                 AffineMap::get(3, 0, {t, n}, ctx)};
  return linalg::GenericOp::create(
             b, loc, init.getType(), ValueRange{x, wT}, ValueRange{init}, maps,
             ArrayRef<utils::IteratorType>{kPar, kRed, kPar},
             [](OpBuilder &nb, Location nloc, ValueRange args) {
               linalg::YieldOp::create(
                   nb, nloc, mulAdd(nb, nloc, args[2], args[0], args[1]));
             })
      .getResult(0);
}

Value mlir::qc::detail::buildElementwise2D(
    OpBuilder &b, Location loc, ValueRange inputs, Type resultElementType,
    function_ref<Value(OpBuilder &, Location, ValueRange)> body) {
  MLIRContext *ctx = b.getContext();
  Value first = inputs.front();
  Value empty = emptyTensor(
      b, loc, {dimSize(b, loc, first, 0), dimSize(b, loc, first, 1)},
      resultElementType);
  SmallVector<AffineMap> maps(inputs.size() + 1,
                              AffineMap::getMultiDimIdentityMap(2, ctx));
  return linalg::GenericOp::create(
             b, loc, empty.getType(), inputs, ValueRange{empty}, maps,
             ArrayRef<utils::IteratorType>{kPar, kPar},
             [&](OpBuilder &nb, Location nloc, ValueRange args) {
               linalg::YieldOp::create(nb, nloc,
                                       body(nb, nloc, args.drop_back()));
             })
      .getResult(0);
}
