//===- AttentionToLinalg.cpp - Lower llm.attention to linalg --------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Causal grouped-query attention as five generics over [H, T, T] scores:
//
//   S[h,i,j] = scale * sum_d q[i,h,d] * k[j,h/g,d]
//   M[h,i]   = max_{j<=i} S[h,i,j]                     (row max, masked)
//   P[h,i,j] = j<=i ? exp(S[h,i,j] - M[h,i]) : 0
//   L[h,i]   = sum_j P[h,i,j]
//   O[i,h,d] = (sum_j P[h,i,j] * v[j,h/g,d]) / L[h,i]
//
// q/k/v are viewed as [T, heads, head_dim] with expand_shape so every
// indexing map stays a projected permutation plus the h/g group division
// (which linalg accepts in input maps). The query-to-KV-head mapping
// h -> h floordiv (H/KV) is the grouped-query convention of LLaMA-2/3,
// Mistral and Qwen2. Softmax statistics are fp32.
//
//===----------------------------------------------------------------------===//

#include "Builders.h"
#include "LLM/IR/LLMOps.h"
#include "qc/Conversion/LLMToLinalg/LLMToLinalg.h"

#include "mlir/Dialect/Math/IR/Math.h"

#include <limits>

using namespace mlir;
using namespace mlir::qc;
using namespace mlir::qc::detail;

namespace {

/// Views a [T, heads * headDim] tensor as [T, heads, headDim].
Value splitHeads(OpBuilder &b, Location loc, Value v, int64_t heads,
                 int64_t headDim) {
  auto type = cast<RankedTensorType>(v.getType());
  auto resultType = RankedTensorType::get(
      {type.getDimSize(0), heads, headDim}, type.getElementType());
  SmallVector<OpFoldResult> shape = {dimSize(b, loc, v, 0),
                                     b.getIndexAttr(heads),
                                     b.getIndexAttr(headDim)};
  return tensor::ExpandShapeOp::create(
      b, loc, resultType, v, ArrayRef<ReassociationIndices>{{0}, {1, 2}},
      shape);
}

/// `j <= i` for the loop indices at positions `iDim` and `jDim`.
Value causalVisible(OpBuilder &b, Location l, unsigned iDim, unsigned jDim) {
  Value i = linalg::IndexOp::create(b, l, iDim);
  Value j = linalg::IndexOp::create(b, l, jDim);
  return arith::CmpIOp::create(b, l, arith::CmpIPredicate::ule, j, i);
}

struct AttentionLowering : OpRewritePattern<llm::AttentionOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(llm::AttentionOp op,
                                PatternRewriter &rewriter) const override {
    auto type = cast<RankedTensorType>(op.getType());
    if (!type.getElementType().isF32())
      return rewriter.notifyMatchFailure(op, "only f32 tensors are lowered");
    Location loc = op.getLoc();
    MLIRContext *ctx = rewriter.getContext();
    int64_t heads = op.getNumHeads(), kvHeads = op.getNumKvHeads(),
            headDim = op.getHeadDim();
    int64_t group = heads / kvHeads;
    bool causal = op.getCausal();
    float scale = op.getScale().convertToFloat();

    Value q = splitHeads(rewriter, loc, op.getQ(), heads, headDim);
    Value k = splitHeads(rewriter, loc, op.getK(), kvHeads, headDim);
    Value v = splitHeads(rewriter, loc, op.getV(), kvHeads, headDim);
    OpFoldResult tq = dimSize(rewriter, loc, op.getQ(), 0);
    OpFoldResult tk = dimSize(rewriter, loc, op.getK(), 0);
    OpFoldResult hAttr = rewriter.getIndexAttr(heads);

    AffineExpr h, i, j, d;
    bindDims(ctx, h, i, j, d);
    AffineExpr kvh = h.floorDiv(group);

    // S[h,i,j] = scale * sum_d q[i,h,d] * k[j,h/g,d].
    Value sInit = filledTensor(rewriter, loc, {hAttr, tq, tk}, 0.0f);
    Value dots =
        linalg::GenericOp::create(
            rewriter, loc, sInit.getType(), ValueRange{q, k}, ValueRange{sInit},
            ArrayRef<AffineMap>{AffineMap::get(4, 0, {i, h, d}, ctx),
                                AffineMap::get(4, 0, {j, kvh, d}, ctx),
                                AffineMap::get(4, 0, {h, i, j}, ctx)},
            ArrayRef<utils::IteratorType>{kPar, kPar, kPar, kRed},
            [](OpBuilder &b, Location l, ValueRange args) {
              linalg::YieldOp::create(b, l,
                                      mulAdd(b, l, args[2], args[0], args[1]));
            })
            .getResult(0);

    AffineExpr a0, a1, a2;
    bindDims(ctx, a0, a1, a2);
    AffineMap id3 = AffineMap::getMultiDimIdentityMap(3, ctx);
    AffineMap rowMap = AffineMap::get(3, 0, {a0, a1}, ctx);
    const float negInf = -std::numeric_limits<float>::infinity();

    // M[h,i] = max over visible j of scale * dot.
    Value mInit = filledTensor(rewriter, loc, {hAttr, tq}, negInf);
    Value rowMax =
        linalg::GenericOp::create(
            rewriter, loc, mInit.getType(), ValueRange{dots}, ValueRange{mInit},
            ArrayRef<AffineMap>{id3, rowMap},
            ArrayRef<utils::IteratorType>{kPar, kPar, kRed},
            [&](OpBuilder &b, Location l, ValueRange args) {
              Value sc = arith::ConstantOp::create(b, l, b.getF32FloatAttr(scale));
              Value s = arith::MulFOp::create(b, l, args[0], sc);
              if (causal) {
                Value ninf =
                    arith::ConstantOp::create(b, l, b.getF32FloatAttr(negInf));
                s = arith::SelectOp::create(b, l, causalVisible(b, l, 1, 2), s,
                                            ninf);
              }
              linalg::YieldOp::create(
                  b, l, arith::MaximumFOp::create(b, l, args[1], s).getResult());
            })
            .getResult(0);

    // P[h,i,j] = visible ? exp(scale * dot - M) : 0.
    Value pEmpty = emptyTensor(rewriter, loc, {hAttr, tq, tk}, rewriter.getF32Type());
    Value probs =
        linalg::GenericOp::create(
            rewriter, loc, pEmpty.getType(), ValueRange{dots, rowMax},
            ValueRange{pEmpty}, ArrayRef<AffineMap>{id3, rowMap, id3},
            ArrayRef<utils::IteratorType>{kPar, kPar, kPar},
            [&](OpBuilder &b, Location l, ValueRange args) {
              Value sc = arith::ConstantOp::create(b, l, b.getF32FloatAttr(scale));
              Value s = arith::MulFOp::create(b, l, args[0], sc);
              Value e = math::ExpOp::create(
                  b, l, arith::SubFOp::create(b, l, s, args[1]));
              if (causal) {
                Value zero = arith::ConstantOp::create(b, l, b.getF32FloatAttr(0));
                e = arith::SelectOp::create(b, l, causalVisible(b, l, 1, 2), e,
                                            zero);
              }
              linalg::YieldOp::create(b, l, e);
            })
            .getResult(0);

    // L[h,i] = sum_j P[h,i,j].
    Value lInit = filledTensor(rewriter, loc, {hAttr, tq}, 0.0f);
    Value rowSum =
        linalg::GenericOp::create(
            rewriter, loc, lInit.getType(), ValueRange{probs}, ValueRange{lInit},
            ArrayRef<AffineMap>{id3, rowMap},
            ArrayRef<utils::IteratorType>{kPar, kPar, kRed},
            [](OpBuilder &b, Location l, ValueRange args) {
              linalg::YieldOp::create(
                  b, l,
                  arith::AddFOp::create(b, l, args[1], args[0],
                                        reductionFlags(b))
                      .getResult());
            })
            .getResult(0);

    // O[i,h,d] = sum_j P[h,i,j] * v[j,h/g,d]; loop order (h, i, j, d) keeps
    // the head_dim loop innermost over contiguous v and O.
    Value oInit = filledTensor(rewriter, loc,
                               {tq, hAttr, rewriter.getIndexAttr(headDim)}, 0.0f);
    Value weighted =
        linalg::GenericOp::create(
            rewriter, loc, oInit.getType(), ValueRange{probs, v},
            ValueRange{oInit},
            ArrayRef<AffineMap>{AffineMap::get(4, 0, {h, i, j}, ctx),
                                AffineMap::get(4, 0, {j, kvh, d}, ctx),
                                AffineMap::get(4, 0, {i, h, d}, ctx)},
            ArrayRef<utils::IteratorType>{kPar, kPar, kRed, kPar},
            [](OpBuilder &b, Location l, ValueRange args) {
              linalg::YieldOp::create(b, l,
                                      mulAdd(b, l, args[2], args[0], args[1]));
            })
            .getResult(0);

    // Normalize by the softmax denominator.
    Value nEmpty = emptyTensor(rewriter, loc,
                               {tq, hAttr, rewriter.getIndexAttr(headDim)},
                               rewriter.getF32Type());
    Value normalized =
        linalg::GenericOp::create(
            rewriter, loc, nEmpty.getType(), ValueRange{weighted, rowSum},
            ValueRange{nEmpty},
            ArrayRef<AffineMap>{id3, AffineMap::get(3, 0, {a1, a0}, ctx), id3},
            ArrayRef<utils::IteratorType>{kPar, kPar, kPar},
            [](OpBuilder &b, Location l, ValueRange args) {
              linalg::YieldOp::create(
                  b, l, arith::DivFOp::create(b, l, args[0], args[1]).getResult());
            })
            .getResult(0);

    Value merged = tensor::CollapseShapeOp::create(
        rewriter, loc, normalized, ArrayRef<ReassociationIndices>{{0}, {1, 2}});
    rewriter.replaceOp(op, merged);
    return success();
  }
};

} // namespace

void mlir::qc::populateLLMAttentionToLinalgPatterns(RewritePatternSet &patterns) {
  patterns.add<AttentionLowering>(patterns.getContext());
}
