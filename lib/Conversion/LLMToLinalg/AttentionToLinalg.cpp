//===- AttentionToLinalg.cpp - Lower llm.attention to linalg --------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Causal grouped-query attention. Query rows are processed in chunks by an
// scf.for over tensors; for a chunk of rows [r0, r0 + R) against keys
// [0, K) (K = r0 + R when causal), six generics compute
//
//   S[h,i,j] = sum_d q[r0+i,h,d] * kT[h/g,d,j]
//   M[h,i]   = max_{j visible} scale * S[h,i,j]          (row max, masked)
//   P[h,i,j] = visible ? exp(scale * S[h,i,j] - M[h,i]) : 0
//   L[h,i]   = sum_j P[h,i,j]
//   O[i,h,d] = (sum_j P[h,i,j] * vT[h/g,d,j]) / L[h,i]
//
// with "visible" meaning j <= r0 + i. k and v are transposed once to
// [KV, hd, T] so that the key loop is innermost and unit-stride. q/k/v are
// viewed as [T, heads, head_dim] with expand_shape so every indexing map
// stays a projected permutation plus the h/g group division (which linalg
// accepts in input maps). The query-to-KV-head mapping
// h -> h floordiv (H/KV) is the grouped-query convention of LLaMA-2/3,
// Mistral and Qwen2. Softmax statistics are fp32.
//
//===----------------------------------------------------------------------===//

#include "Builders.h"
#include "LLM/IR/LLMOps.h"
#include "qc/Conversion/LLMToLinalg/LLMToLinalg.h"

#include "mlir/Dialect/Arith/Utils/Utils.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

#include <limits>

using namespace mlir;
using namespace mlir::qc;
using namespace mlir::qc::detail;

namespace {

/// Query rows per chunk. A chunk's score block [H, chunk, keys] stays in
/// L2 (8 heads x 64 rows x 512 keys x 4 B = 1 MiB), and causal chunks only
/// visit the keys up to their last row, which halves the work of a full
/// window against computing the whole [T, T] square.
constexpr int64_t kQueryChunk = 64;

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

/// [T, KV, hd] -> [KV, hd, T], so that the key/position loop is the
/// innermost, unit-stride one in both attention products.
Value keysLast(OpBuilder &b, Location loc, Value v3) {
  auto type = cast<RankedTensorType>(v3.getType());
  Value empty = emptyTensor(
      b, loc,
      {b.getIndexAttr(type.getDimSize(1)), b.getIndexAttr(type.getDimSize(2)),
       dimSize(b, loc, v3, 0)},
      type.getElementType());
  return linalg::TransposeOp::create(b, loc, v3, empty,
                                     ArrayRef<int64_t>{1, 2, 0})
      .getResult()[0];
}

/// `j <= rowOffset + i` for the loop indices at positions `iDim`, `jDim`.
Value causalVisible(OpBuilder &b, Location l, Value rowOffset, unsigned iDim,
                    unsigned jDim) {
  Value i = linalg::IndexOp::create(b, l, iDim);
  Value j = linalg::IndexOp::create(b, l, jDim);
  Value row = arith::AddIOp::create(b, l, rowOffset, i);
  return arith::CmpIOp::create(b, l, arith::CmpIPredicate::ule, j, row);
}

struct AttentionLowering : OpRewritePattern<llm::AttentionOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(llm::AttentionOp op,
                                PatternRewriter &rewriter) const override {
    auto type = cast<RankedTensorType>(op.getType());
    if (!type.getElementType().isF32())
      return rewriter.notifyMatchFailure(op, "only f32 tensors are lowered");
    Location loc = op.getLoc();
    int64_t heads = op.getNumHeads(), kvHeads = op.getNumKvHeads(),
            headDim = op.getHeadDim();

    Value q = splitHeads(rewriter, loc, op.getQ(), heads, headDim);
    Value kT = keysLast(rewriter, loc,
                        splitHeads(rewriter, loc, op.getK(), kvHeads, headDim));
    Value vT = keysLast(rewriter, loc,
                        splitHeads(rewriter, loc, op.getV(), kvHeads, headDim));
    OpFoldResult tq = dimSize(rewriter, loc, op.getQ(), 0);
    Value numRows = getValueOrCreateConstantIndexOp(rewriter, loc, tq);
    Value numKeys = getValueOrCreateConstantIndexOp(
        rewriter, loc, dimSize(rewriter, loc, op.getK(), 0));
    Value outInit = emptyTensor(
        rewriter, loc,
        {tq, rewriter.getIndexAttr(heads), rewriter.getIndexAttr(headDim)},
        rewriter.getF32Type());

    Value zero = arith::ConstantIndexOp::create(rewriter, loc, 0);
    Value step = arith::ConstantIndexOp::create(rewriter, loc, kQueryChunk);
    auto loop = scf::ForOp::create(
        rewriter, loc, zero, numRows, step, ValueRange{outInit},
        [&](OpBuilder &b, Location l, Value row0, ValueRange iterArgs) {
          Value remaining = arith::SubIOp::create(b, l, numRows, row0);
          Value rows = arith::MinUIOp::create(b, l, remaining, step);
          // Causal rows [row0, row0 + rows) see keys [0, row0 + rows).
          Value keys = op.getCausal()
                           ? Value(arith::AddIOp::create(b, l, row0, rows))
                           : numKeys;
          Value chunk = buildChunk(b, l, op, q, kT, vT, row0, rows, keys);
          auto type3 = cast<RankedTensorType>(iterArgs[0].getType());
          SmallVector<OpFoldResult> offsets = {row0, b.getIndexAttr(0),
                                               b.getIndexAttr(0)};
          SmallVector<OpFoldResult> sizes = {rows,
                                             b.getIndexAttr(type3.getDimSize(1)),
                                             b.getIndexAttr(type3.getDimSize(2))};
          SmallVector<OpFoldResult> strides(3, b.getIndexAttr(1));
          Value updated = tensor::InsertSliceOp::create(
              b, l, chunk, iterArgs[0], offsets, sizes, strides);
          scf::YieldOp::create(b, l, updated);
        });
    Value merged = tensor::CollapseShapeOp::create(
        rewriter, loc, loop.getResult(0),
        ArrayRef<ReassociationIndices>{{0}, {1, 2}});
    rewriter.replaceOp(op, merged);
    return success();
  }

  /// Attention output [rows, H, hd] of query rows [row0, row0 + rows)
  /// against keys [0, keys).
  static Value buildChunk(OpBuilder &b, Location loc, llm::AttentionOp op,
                          Value q, Value kT, Value vT, Value row0, Value rows,
                          Value keys) {
    MLIRContext *ctx = b.getContext();
    int64_t heads = op.getNumHeads(), kvHeads = op.getNumKvHeads(),
            headDim = op.getHeadDim();
    int64_t group = heads / kvHeads;
    bool causal = op.getCausal();
    float scale = op.getScale().convertToFloat();
    OpFoldResult hAttr = b.getIndexAttr(heads);
    OpFoldResult one = b.getIndexAttr(1), zeroA = b.getIndexAttr(0);

    Value qs = tensor::ExtractSliceOp::create(
        b, loc, q, ArrayRef<OpFoldResult>{row0, zeroA, zeroA},
        ArrayRef<OpFoldResult>{rows, hAttr, b.getIndexAttr(headDim)},
        ArrayRef<OpFoldResult>{one, one, one});
    auto keySlice = [&](Value t) -> Value {
      return tensor::ExtractSliceOp::create(
          b, loc, t, ArrayRef<OpFoldResult>{zeroA, zeroA, zeroA},
          ArrayRef<OpFoldResult>{b.getIndexAttr(kvHeads),
                                 b.getIndexAttr(headDim), keys},
          ArrayRef<OpFoldResult>{one, one, one});
    };
    Value ks = keySlice(kT), vs = keySlice(vT);

    AffineExpr h, i, d, j;
    bindDims(ctx, h, i, d, j);
    AffineExpr kvh = h.floorDiv(group);

    // S[h,i,j] = sum_d q[i,h,d] * kT[h/g,d,j]; j innermost and unit-stride.
    Value sInit = filledTensor(b, loc, {hAttr, rows, keys}, 0.0f);
    Value dots =
        linalg::GenericOp::create(
            b, loc, sInit.getType(), ValueRange{qs, ks}, ValueRange{sInit},
            ArrayRef<AffineMap>{AffineMap::get(4, 0, {i, h, d}, ctx),
                                AffineMap::get(4, 0, {kvh, d, j}, ctx),
                                AffineMap::get(4, 0, {h, i, j}, ctx)},
            ArrayRef<utils::IteratorType>{kPar, kPar, kRed, kPar},
            [](OpBuilder &nb, Location l, ValueRange args) {
              linalg::YieldOp::create(nb, l,
                                      mulAdd(nb, l, args[2], args[0], args[1]));
            })
            .getResult(0);

    AffineExpr a0, a1, a2;
    bindDims(ctx, a0, a1, a2);
    AffineMap id3 = AffineMap::getMultiDimIdentityMap(3, ctx);
    AffineMap rowMap = AffineMap::get(3, 0, {a0, a1}, ctx);
    const float negInf = -std::numeric_limits<float>::infinity();

    // Scaled, masked score of the current element.
    auto maskedScore = [&](OpBuilder &nb, Location l, Value dot,
                           Value masked) -> std::pair<Value, Value> {
      Value sc = arith::ConstantOp::create(nb, l, nb.getF32FloatAttr(scale));
      Value s = arith::MulFOp::create(nb, l, dot, sc);
      Value visible = causal ? causalVisible(nb, l, row0, 1, 2) : Value();
      if (visible)
        s = arith::SelectOp::create(nb, l, visible, s, masked);
      return {s, visible};
    };

    // M[h,i] = max over visible j of the scaled score.
    Value mInit = filledTensor(b, loc, {hAttr, rows}, negInf);
    Value rowMax =
        linalg::GenericOp::create(
            b, loc, mInit.getType(), ValueRange{dots}, ValueRange{mInit},
            ArrayRef<AffineMap>{id3, rowMap},
            ArrayRef<utils::IteratorType>{kPar, kPar, kRed},
            [&](OpBuilder &nb, Location l, ValueRange args) {
              Value ninf =
                  arith::ConstantOp::create(nb, l, nb.getF32FloatAttr(negInf));
              Value s = maskedScore(nb, l, args[0], ninf).first;
              linalg::YieldOp::create(
                  nb, l, arith::MaximumFOp::create(nb, l, args[1], s).getResult());
            })
            .getResult(0);

    // P[h,i,j] = visible ? exp(score - M) : 0.
    Value pEmpty = emptyTensor(b, loc, {hAttr, rows, keys}, b.getF32Type());
    Value probs =
        linalg::GenericOp::create(
            b, loc, pEmpty.getType(), ValueRange{dots, rowMax},
            ValueRange{pEmpty}, ArrayRef<AffineMap>{id3, rowMap, id3},
            ArrayRef<utils::IteratorType>{kPar, kPar, kPar},
            [&](OpBuilder &nb, Location l, ValueRange args) {
              Value ninf =
                  arith::ConstantOp::create(nb, l, nb.getF32FloatAttr(negInf));
              // exp(-inf - M) is exactly 0, so masking the score suffices.
              Value s = maskedScore(nb, l, args[0], ninf).first;
              Value e = math::ExpOp::create(
                  nb, l, arith::SubFOp::create(nb, l, s, args[1]));
              linalg::YieldOp::create(nb, l, e);
            })
            .getResult(0);

    // L[h,i] = sum_j P[h,i,j].
    Value lInit = filledTensor(b, loc, {hAttr, rows}, 0.0f);
    Value rowSum =
        linalg::GenericOp::create(
            b, loc, lInit.getType(), ValueRange{probs}, ValueRange{lInit},
            ArrayRef<AffineMap>{id3, rowMap},
            ArrayRef<utils::IteratorType>{kPar, kPar, kRed},
            [](OpBuilder &nb, Location l, ValueRange args) {
              linalg::YieldOp::create(
                  nb, l,
                  arith::AddFOp::create(nb, l, args[1], args[0],
                                        reductionFlags(nb))
                      .getResult());
            })
            .getResult(0);

    // O[i,h,d] = sum_j P[h,i,j] * vT[h/g,d,j]: a unit-stride dot product
    // over j for every (h, i, d).
    Value oInit = filledTensor(b, loc, {rows, hAttr, b.getIndexAttr(headDim)},
                               0.0f);
    Value weighted =
        linalg::GenericOp::create(
            b, loc, oInit.getType(), ValueRange{probs, vs}, ValueRange{oInit},
            ArrayRef<AffineMap>{AffineMap::get(4, 0, {h, i, j}, ctx),
                                AffineMap::get(4, 0, {kvh, d, j}, ctx),
                                AffineMap::get(4, 0, {i, h, d}, ctx)},
            ArrayRef<utils::IteratorType>{kPar, kPar, kPar, kRed},
            [](OpBuilder &nb, Location l, ValueRange args) {
              linalg::YieldOp::create(nb, l,
                                      mulAdd(nb, l, args[2], args[0], args[1]));
            })
            .getResult(0);

    // Normalize by the softmax denominator.
    Value nEmpty = emptyTensor(b, loc, {rows, hAttr, b.getIndexAttr(headDim)},
                               b.getF32Type());
    return linalg::GenericOp::create(
               b, loc, nEmpty.getType(), ValueRange{weighted, rowSum},
               ValueRange{nEmpty},
               ArrayRef<AffineMap>{id3, AffineMap::get(3, 0, {a1, a0}, ctx),
                                   id3},
               ArrayRef<utils::IteratorType>{kPar, kPar, kPar},
               [](OpBuilder &nb, Location l, ValueRange args) {
                 linalg::YieldOp::create(
                     nb, l,
                     arith::DivFOp::create(nb, l, args[0], args[1]).getResult());
               })
        .getResult(0);
  }
};

} // namespace

void mlir::qc::populateLLMAttentionToLinalgPatterns(RewritePatternSet &patterns) {
  patterns.add<AttentionLowering>(patterns.getContext());
}
