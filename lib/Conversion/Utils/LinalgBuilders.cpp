//===- LinalgBuilders.cpp - IR builders shared by the lowerings -----------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//

#include "qc/Conversion/Utils/LinalgBuilders.h"

using namespace mlir;
using namespace mlir::qc::detail;

// The weight is read as stored, [N, K]: the (t, n, k) nest reduces along
// rows of both operands. As plain loops that is a dot product per output;
// the CPU pipeline's qc-vectorize-linear recognizes exactly this generic and
// replaces it with register-blocked vector code (no transposed copy of the
// weight on every call, which used to cost more than the product for one
// decode token).
Value mlir::qc::detail::buildLinearInit(OpBuilder &b, Location loc, Value x,
                                        OpFoldResult n, Value bias) {
  MLIRContext *ctx = b.getContext();
  SmallVector<OpFoldResult> sizes = {dimSize(b, loc, x, 0), n};
  if (!bias)
    return filledTensor(b, loc, sizes, 0.0f);
  // Start the accumulation from the bias: out[t, n] = bias[n].
  Value empty = emptyTensor(b, loc, sizes, b.getF32Type());
  AffineExpr i, j;
  bindDims(ctx, i, j);
  return linalg::GenericOp::create(
             b, loc, empty.getType(), ValueRange{bias}, ValueRange{empty},
             ArrayRef<AffineMap>{AffineMap::get(2, 0, {j}, ctx),
                                 AffineMap::get(2, 0, {i, j}, ctx)},
             ArrayRef<utils::IteratorType>{kPar, kPar},
             [](OpBuilder &nb, Location nloc, ValueRange args) {
               linalg::YieldOp::create(nb, nloc, args[0]);
             })
      .getResult(0);
}

Value mlir::qc::detail::buildMatmulTransposedB(OpBuilder &b, Location loc,
                                               Value x, Value w, Value bias) {
  MLIRContext *ctx = b.getContext();
  Value init = buildLinearInit(b, loc, x, dimSize(b, loc, w, 0), bias);
  AffineExpr t, n, k;
  bindDims(ctx, t, n, k);
  SmallVector<AffineMap> maps = {AffineMap::get(3, 0, {t, k}, ctx),
                                 AffineMap::get(3, 0, {n, k}, ctx),
                                 AffineMap::get(3, 0, {t, n}, ctx)};
  return linalg::GenericOp::create(
             b, loc, init.getType(), ValueRange{x, w}, ValueRange{init}, maps,
             ArrayRef<utils::IteratorType>{kPar, kPar, kRed},
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
