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
// accepts in input maps).
//
// llm.kv_cache_attention reuses the same chunk computation with two
// differences: the keys and values are read from a layer of the cache
// ([KV, max_ctx, hd], position-major, so the key maps index (h/g, j, d)
// instead of (h/g, d, j) and no transpose is needed), and the query rows are
// positions [pos, pos + T), so a chunk starting at row r0 sees the keys
// [0, pos + r0 + R) and row i of it the keys j <= pos + r0 + i. The
// query-to-KV-head mapping
// h -> h floordiv (H/KV) is the grouped-query convention of LLaMA-2/3,
// Mistral and Qwen2. Softmax statistics are fp32.
//
//===----------------------------------------------------------------------===//

#include "qc/Conversion/Utils/LinalgBuilders.h"
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
  auto resultType = RankedTensorType::get({type.getDimSize(0), heads, headDim},
                                          type.getElementType());
  SmallVector<OpFoldResult> shape = {
      dimSize(b, loc, v, 0), b.getIndexAttr(heads), b.getIndexAttr(headDim)};
  return tensor::ExpandShapeOp::create(
      b, loc, resultType, v, ArrayRef<ReassociationIndices>{{0}, {1, 2}},
      shape);
}

/// [T, heads, hd] -> [heads, hd, T]: positions become the contiguous
/// dimension, which every attention loop nest iterates innermost.
Value keysLast(OpBuilder &b, Location loc, Value v3) {
  auto type = cast<RankedTensorType>(v3.getType());
  Value empty =
      emptyTensor(b, loc,
                  {b.getIndexAttr(type.getDimSize(1)),
                   b.getIndexAttr(type.getDimSize(2)), dimSize(b, loc, v3, 0)},
                  type.getElementType());
  return linalg::TransposeOp::create(b, loc, v3, empty,
                                     ArrayRef<int64_t>{1, 2, 0})
      .getResult()[0];
}

/// What a chunk of attention needs to know about its op.
struct AttentionShape {
  int64_t heads, kvHeads, headDim;
  float scale;
  bool causal;
  /// Keys and values are [KV, T, hd] (a cache layer) instead of [KV, hd, T].
  bool positionMajorKeys;
};

/// Attention output [rows, H, hd] of query rows [row0, row0 + rows) of `qT`
/// against the keys and values [0, keys) that `sliceKeysValues` returns
/// (called once, after the query slice). `qT` is [heads, hd, T]; the keys
/// are [KV, hd, keys], or [KV, keys, hd] when `positionMajorKeys`. Row i of the
/// chunk is at absolute position `firstPos + i` and sees keys j <= firstPos +
/// i.
///
/// Every intermediate keeps the query row `i` as its last, contiguous
/// dimension and every generic iterates `i` innermost, so each inner loop
/// is a parallel, unit-stride update that LLVM vectorizes (a reduction in
/// the innermost loop would need its accumulator promoted out of memory,
/// which LLVM does not manage here: a row max over j innermost ran scalar
/// and took 70 % of the forward pass).
Value buildChunk(
    OpBuilder &b, Location loc, const AttentionShape &shape, Value qT,
    llvm::function_ref<std::pair<Value, Value>(OpBuilder &, Location)>
        sliceKeysValues,
    Value row0, Value firstPos, Value rows, Value keys) {
  MLIRContext *ctx = b.getContext();
  int64_t heads = shape.heads, headDim = shape.headDim;
  int64_t group = heads / shape.kvHeads;
  bool causal = shape.causal;
  float scale = shape.scale;
  OpFoldResult hAttr = b.getIndexAttr(heads);
  OpFoldResult hdAttr = b.getIndexAttr(headDim);
  OpFoldResult one = b.getIndexAttr(1), zeroA = b.getIndexAttr(0);
  SmallVector<OpFoldResult> unit3(3, one);

  Value qs = tensor::ExtractSliceOp::create(
      b, loc, qT, ArrayRef<OpFoldResult>{zeroA, zeroA, row0},
      ArrayRef<OpFoldResult>{hAttr, hdAttr, rows}, unit3);
  auto [ks, vs] = sliceKeysValues(b, loc);

  // S[h,j,i] = sum_d k[h/g,(d,j)] * qT[h,d,i]; loops (h, j, d, i).
  AffineExpr h, j, d, i;
  bindDims(ctx, h, j, d, i);
  AffineMap keyMap = shape.positionMajorKeys
                         ? AffineMap::get(4, 0, {h.floorDiv(group), j, d}, ctx)
                         : AffineMap::get(4, 0, {h.floorDiv(group), d, j}, ctx);
  Value sInit = filledTensor(b, loc, {hAttr, keys, rows}, 0.0f);
  Value dots =
      linalg::GenericOp::create(
          b, loc, sInit.getType(), ValueRange{ks, qs}, ValueRange{sInit},
          ArrayRef<AffineMap>{keyMap, AffineMap::get(4, 0, {h, d, i}, ctx),
                              AffineMap::get(4, 0, {h, j, i}, ctx)},
          ArrayRef<utils::IteratorType>{kPar, kPar, kRed, kPar},
          [](OpBuilder &nb, Location l, ValueRange args) {
            linalg::YieldOp::create(nb, l,
                                    mulAdd(nb, l, args[2], args[0], args[1]));
          })
          .getResult(0);

  // Loops (h, j, i) for the softmax statistics.
  AffineExpr a0, a1, a2;
  bindDims(ctx, a0, a1, a2);
  AffineMap id3 = AffineMap::getMultiDimIdentityMap(3, ctx);
  AffineMap rowMap = AffineMap::get(3, 0, {a0, a2}, ctx);
  const float negInf = -std::numeric_limits<float>::infinity();

  // The scaled score, or -inf where position j is not visible from row i.
  auto maskedScore = [&](OpBuilder &nb, Location l, Value dot) -> Value {
    Value sc = arith::ConstantOp::create(nb, l, nb.getF32FloatAttr(scale));
    Value s = arith::MulFOp::create(nb, l, dot, sc);
    if (!causal)
      return s;
    Value ii = linalg::IndexOp::create(nb, l, 2);
    Value jj = linalg::IndexOp::create(nb, l, 1);
    Value row = arith::AddIOp::create(nb, l, firstPos, ii);
    Value visible =
        arith::CmpIOp::create(nb, l, arith::CmpIPredicate::ule, jj, row);
    Value ninf = arith::ConstantOp::create(nb, l, nb.getF32FloatAttr(negInf));
    return arith::SelectOp::create(nb, l, visible, s, ninf);
  };

  // M[h,i] = max over visible j of the scaled score.
  Value mInit = filledTensor(b, loc, {hAttr, rows}, negInf);
  Value rowMax =
      linalg::GenericOp::create(
          b, loc, mInit.getType(), ValueRange{dots}, ValueRange{mInit},
          ArrayRef<AffineMap>{id3, rowMap},
          ArrayRef<utils::IteratorType>{kPar, kRed, kPar},
          [&](OpBuilder &nb, Location l, ValueRange args) {
            // Scores are finite or -inf, never NaN, so the cheaper maxnumf
            // is exact here.
            auto fmf = arith::FastMathFlagsAttr::get(
                nb.getContext(),
                arith::FastMathFlags::nnan | arith::FastMathFlags::nsz);
            Value s = maskedScore(nb, l, args[0]);
            linalg::YieldOp::create(
                nb, l,
                arith::MaxNumFOp::create(nb, l, args[1], s, fmf).getResult());
          })
          .getResult(0);

  // P[h,j,i] = exp(masked score - M); exp(-inf) is exactly 0.
  Value pEmpty = emptyTensor(b, loc, {hAttr, keys, rows}, b.getF32Type());
  Value probs = linalg::GenericOp::create(
                    b, loc, pEmpty.getType(), ValueRange{dots, rowMax},
                    ValueRange{pEmpty}, ArrayRef<AffineMap>{id3, rowMap, id3},
                    ArrayRef<utils::IteratorType>{kPar, kPar, kPar},
                    [&](OpBuilder &nb, Location l, ValueRange args) {
                      Value s = maskedScore(nb, l, args[0]);
                      linalg::YieldOp::create(
                          nb, l,
                          math::ExpOp::create(
                              nb, l, arith::SubFOp::create(nb, l, s, args[1]))
                              .getResult());
                    })
                    .getResult(0);

  // L[h,i] = sum_j P[h,j,i].
  Value lInit = filledTensor(b, loc, {hAttr, rows}, 0.0f);
  Value rowSum =
      linalg::GenericOp::create(
          b, loc, lInit.getType(), ValueRange{probs}, ValueRange{lInit},
          ArrayRef<AffineMap>{id3, rowMap},
          ArrayRef<utils::IteratorType>{kPar, kRed, kPar},
          [](OpBuilder &nb, Location l, ValueRange args) {
            linalg::YieldOp::create(
                nb, l,
                arith::AddFOp::create(nb, l, args[1], args[0]).getResult());
          })
          .getResult(0);

  // OT[h,d,i] = sum_j v[h/g,(d,j)] * P[h,j,i]; loops (h, d, j, i).
  AffineExpr oh, od, oj, oi;
  bindDims(ctx, oh, od, oj, oi);
  AffineMap valueMap =
      shape.positionMajorKeys
          ? AffineMap::get(4, 0, {oh.floorDiv(group), oj, od}, ctx)
          : AffineMap::get(4, 0, {oh.floorDiv(group), od, oj}, ctx);
  Value oInit = filledTensor(b, loc, {hAttr, hdAttr, rows}, 0.0f);
  Value weighted =
      linalg::GenericOp::create(
          b, loc, oInit.getType(), ValueRange{vs, probs}, ValueRange{oInit},
          ArrayRef<AffineMap>{valueMap, AffineMap::get(4, 0, {oh, oj, oi}, ctx),
                              AffineMap::get(4, 0, {oh, od, oi}, ctx)},
          ArrayRef<utils::IteratorType>{kPar, kPar, kRed, kPar},
          [](OpBuilder &nb, Location l, ValueRange args) {
            linalg::YieldOp::create(nb, l,
                                    mulAdd(nb, l, args[2], args[0], args[1]));
          })
          .getResult(0);

  // out[i,h,d] = OT[h,d,i] / L[h,i].
  Value nEmpty = emptyTensor(b, loc, {rows, hAttr, hdAttr}, b.getF32Type());
  return linalg::GenericOp::create(
             b, loc, nEmpty.getType(), ValueRange{weighted, rowSum},
             ValueRange{nEmpty},
             ArrayRef<AffineMap>{AffineMap::get(3, 0, {a1, a2, a0}, ctx),
                                 AffineMap::get(3, 0, {a1, a0}, ctx), id3},
             ArrayRef<utils::IteratorType>{kPar, kPar, kPar},
             [](OpBuilder &nb, Location l, ValueRange args) {
               linalg::YieldOp::create(
                   nb, l,
                   arith::DivFOp::create(nb, l, args[0], args[1]).getResult());
             })
      .getResult(0);
}

/// The chunk loop shared by both ops: query rows of `q` ([T, H * hd]) in
/// chunks of kQueryChunk, each computed by `chunkFn(b, loc, row0, rows)`
/// into its slot of a [T, H, hd] result, collapsed to [T, H * hd].
template <typename ChunkFn>
Value chunkedRows(PatternRewriter &rewriter, Location loc, Value q,
                  int64_t heads, int64_t headDim, ChunkFn chunkFn) {
  OpFoldResult tq = dimSize(rewriter, loc, q, 0);
  Value numRows = getValueOrCreateConstantIndexOp(rewriter, loc, tq);
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
        Value chunk = chunkFn(b, l, row0, rows);
        auto type3 = cast<RankedTensorType>(iterArgs[0].getType());
        SmallVector<OpFoldResult> offsets = {row0, b.getIndexAttr(0),
                                             b.getIndexAttr(0)};
        SmallVector<OpFoldResult> sizes = {rows,
                                           b.getIndexAttr(type3.getDimSize(1)),
                                           b.getIndexAttr(type3.getDimSize(2))};
        SmallVector<OpFoldResult> strides(3, b.getIndexAttr(1));
        Value updated = tensor::InsertSliceOp::create(b, l, chunk, iterArgs[0],
                                                      offsets, sizes, strides);
        scf::YieldOp::create(b, l, updated);
      });
  return tensor::CollapseShapeOp::create(
      rewriter, loc, loop.getResult(0),
      ArrayRef<ReassociationIndices>{{0}, {1, 2}});
}

struct AttentionLowering : OpRewritePattern<llm::AttentionOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(llm::AttentionOp op,
                                PatternRewriter &rewriter) const override {
    auto type = cast<RankedTensorType>(op.getType());
    if (!type.getElementType().isF32())
      return rewriter.notifyMatchFailure(op, "only f32 tensors are lowered");
    Location loc = op.getLoc();
    AttentionShape shape{static_cast<int64_t>(op.getNumHeads()),
                         static_cast<int64_t>(op.getNumKvHeads()),
                         static_cast<int64_t>(op.getHeadDim()),
                         op.getScale().convertToFloat(),
                         op.getCausal(),
                         /*positionMajorKeys=*/false};
    int64_t heads = shape.heads, kvHeads = shape.kvHeads,
            headDim = shape.headDim;

    Value qT = keysLast(rewriter, loc,
                        splitHeads(rewriter, loc, op.getQ(), heads, headDim));
    Value kT = keysLast(rewriter, loc,
                        splitHeads(rewriter, loc, op.getK(), kvHeads, headDim));
    Value vT = keysLast(rewriter, loc,
                        splitHeads(rewriter, loc, op.getV(), kvHeads, headDim));
    Value numKeys = getValueOrCreateConstantIndexOp(
        rewriter, loc, dimSize(rewriter, loc, op.getK(), 0));
    Value merged = chunkedRows(
        rewriter, loc, op.getQ(), heads, headDim,
        [&](OpBuilder &b, Location l, Value row0, Value rows) {
          // Causal rows [row0, row0 + rows) see keys [0, row0 + rows).
          Value keys = shape.causal
                           ? Value(arith::AddIOp::create(b, l, row0, rows))
                           : numKeys;
          OpFoldResult zeroA = b.getIndexAttr(0);
          SmallVector<OpFoldResult> unit3(3, b.getIndexAttr(1));
          auto keySlice = [&](Value t) -> Value {
            return tensor::ExtractSliceOp::create(
                b, l, t, ArrayRef<OpFoldResult>{zeroA, zeroA, zeroA},
                ArrayRef<OpFoldResult>{b.getIndexAttr(kvHeads),
                                       b.getIndexAttr(headDim), keys},
                unit3);
          };
          auto slices = [&](OpBuilder &, Location) {
            Value ks = keySlice(kT);
            return std::make_pair(ks, keySlice(vT));
          };
          return buildChunk(b, l, shape, qT, slices, row0, /*firstPos=*/row0,
                            rows, keys);
        });
    rewriter.replaceOp(op, merged);
    return success();
  }
};

/// One query row (decode of a single token) at position `pos` against the
/// keys [0, keys = pos + 1) of one cache layer (`keyLayer`, `valueLayer`:
/// [KV, max_ctx, hd]), all of them visible. `q` is [T, H * hd] with T == 1
/// at run time; the result is [T, H * hd].
///
/// The chunk form above keeps the query row innermost, which for one row
/// leaves a loop of trip count 1 inside the head-dimension reduction: every
/// multiply-add then loads and stores its accumulator, and the 30 copies of
/// that nest took two thirds of a SmolLM2 decode step. Here the scores of
/// each KV head's query group are a `(t, n, k)` x . W^T generic (t = the
/// group's heads, n = keys, k = hd), which qc-vectorize-linear turns into
/// the blocked linear kernel, and the weighted sum of values keeps hd
/// innermost (an axpy per key), a unit-stride parallel update.
Value buildSingleRow(OpBuilder &b, Location loc, const AttentionShape &shape,
                     Value q, Value keyLayer, Value valueLayer, Value keys) {
  MLIRContext *ctx = b.getContext();
  int64_t heads = shape.heads, kvHeads = shape.kvHeads, headDim = shape.headDim;
  int64_t group = heads / kvHeads;
  OpFoldResult zeroA = b.getIndexAttr(0), oneA = b.getIndexAttr(1);
  OpFoldResult hAttr = b.getIndexAttr(heads), hdAttr = b.getIndexAttr(headDim);
  Type f32 = b.getF32Type();

  // q[0] as [H, hd].
  Value qRow = tensor::ExtractSliceOp::create(
      b, loc, RankedTensorType::get({heads * headDim}, f32), q,
      ArrayRef<OpFoldResult>{zeroA, zeroA},
      ArrayRef<OpFoldResult>{oneA, b.getIndexAttr(heads * headDim)},
      ArrayRef<OpFoldResult>{oneA, oneA});
  Value qh = tensor::ExpandShapeOp::create(
      b, loc, RankedTensorType::get({heads, headDim}, f32), qRow,
      ArrayRef<ReassociationIndices>{{0, 1}});

  // S[h, j] = sum_d q[h, d] * K[h / g, j, d], one linear per KV head,
  // written in place into its rows of S.
  AffineExpr t, n, k;
  bindDims(ctx, t, n, k);
  SmallVector<AffineMap> linearMaps = {AffineMap::get(3, 0, {t, k}, ctx),
                                       AffineMap::get(3, 0, {n, k}, ctx),
                                       AffineMap::get(3, 0, {t, n}, ctx)};
  Value scores = emptyTensor(b, loc, {hAttr, keys}, f32);
  Value zeroF = arith::ConstantOp::create(b, loc, b.getF32FloatAttr(0.0f));
  for (int64_t c = 0; c < kvHeads; ++c) {
    OpFoldResult rowA = b.getIndexAttr(c * group), gA = b.getIndexAttr(group);
    Value qGroup = tensor::ExtractSliceOp::create(
        b, loc, qh, ArrayRef<OpFoldResult>{rowA, zeroA},
        ArrayRef<OpFoldResult>{gA, hdAttr}, ArrayRef<OpFoldResult>{oneA, oneA});
    Value kHead = tensor::ExtractSliceOp::create(
        b, loc, RankedTensorType::get({ShapedType::kDynamic, headDim}, f32),
        keyLayer, ArrayRef<OpFoldResult>{b.getIndexAttr(c), zeroA, zeroA},
        ArrayRef<OpFoldResult>{oneA, keys, hdAttr},
        SmallVector<OpFoldResult>(3, oneA));
    SmallVector<OpFoldResult> rowsOffsets = {rowA, zeroA},
                              rowsSizes = {gA, keys}, unit2(2, oneA);
    Value slot = tensor::ExtractSliceOp::create(b, loc, scores, rowsOffsets,
                                                rowsSizes, unit2);
    Value zeroed =
        linalg::FillOp::create(b, loc, ValueRange{zeroF}, ValueRange{slot})
            .getResult(0);
    Value dots = linalg::GenericOp::create(
                     b, loc, zeroed.getType(), ValueRange{qGroup, kHead},
                     ValueRange{zeroed}, linearMaps,
                     ArrayRef<utils::IteratorType>{kPar, kPar, kRed},
                     [](OpBuilder &nb, Location l, ValueRange args) {
                       linalg::YieldOp::create(
                           nb, l, mulAdd(nb, l, args[2], args[0], args[1]));
                     })
                     .getResult(0);
    scores = tensor::InsertSliceOp::create(b, loc, dots, scores, rowsOffsets,
                                           rowsSizes, unit2);
  }

  // Softmax statistics over the keys, loops (h, j).
  AffineExpr a0, a1;
  bindDims(ctx, a0, a1);
  AffineMap id2 = AffineMap::getMultiDimIdentityMap(2, ctx);
  AffineMap headMap = AffineMap::get(2, 0, {a0}, ctx);
  float scale = shape.scale;
  auto scaled = [scale](OpBuilder &nb, Location l, Value s) -> Value {
    Value sc = arith::ConstantOp::create(nb, l, nb.getF32FloatAttr(scale));
    return arith::MulFOp::create(nb, l, s, sc);
  };
  const float negInf = -std::numeric_limits<float>::infinity();
  Value mInit = filledTensor(b, loc, {hAttr}, negInf);
  Value rowMax = linalg::GenericOp::create(
                     b, loc, mInit.getType(), ValueRange{scores},
                     ValueRange{mInit}, ArrayRef<AffineMap>{id2, headMap},
                     ArrayRef<utils::IteratorType>{kPar, kRed},
                     [&](OpBuilder &nb, Location l, ValueRange args) {
                       // Scores are finite (every key is visible), so maxnumf
                       // is exact.
                       auto fmf = arith::FastMathFlagsAttr::get(
                           nb.getContext(), arith::FastMathFlags::nnan |
                                                arith::FastMathFlags::nsz);
                       linalg::YieldOp::create(
                           nb, l,
                           arith::MaxNumFOp::create(nb, l, args[1],
                                                    scaled(nb, l, args[0]), fmf)
                               .getResult());
                     })
                     .getResult(0);
  // result[h, j] = fn(m[h, j], v[h]) for an [H, cols] `m` and an [H] `v`.
  auto perHead =
      [&](Value m, Value v, OpFoldResult cols,
          function_ref<Value(OpBuilder &, Location, Value, Value)> fn)
      -> Value {
    Value empty = emptyTensor(b, loc, {hAttr, cols}, f32);
    return linalg::GenericOp::create(
               b, loc, empty.getType(), ValueRange{m, v}, ValueRange{empty},
               ArrayRef<AffineMap>{id2, headMap, id2},
               ArrayRef<utils::IteratorType>{kPar, kPar},
               [&](OpBuilder &nb, Location l, ValueRange args) {
                 linalg::YieldOp::create(nb, l, fn(nb, l, args[0], args[1]));
               })
        .getResult(0);
  };
  Value probs = perHead(
      scores, rowMax, keys, [&](OpBuilder &nb, Location l, Value s, Value m) {
        Value shifted = arith::SubFOp::create(nb, l, scaled(nb, l, s), m);
        return Value(math::ExpOp::create(nb, l, shifted));
      });
  Value lInit = filledTensor(b, loc, {hAttr}, 0.0f);
  Value rowSum =
      linalg::GenericOp::create(
          b, loc, lInit.getType(), ValueRange{probs}, ValueRange{lInit},
          ArrayRef<AffineMap>{id2, headMap},
          ArrayRef<utils::IteratorType>{kPar, kRed},
          [](OpBuilder &nb, Location l, ValueRange args) {
            linalg::YieldOp::create(
                nb, l,
                arith::AddFOp::create(nb, l, args[1], args[0]).getResult());
          })
          .getResult(0);

  // O[h, d] = sum_j P[h, j] * V[h / g, j, d]; loops (h, j, d), d innermost.
  Value vLayer = tensor::ExtractSliceOp::create(
      b, loc, valueLayer, ArrayRef<OpFoldResult>{zeroA, zeroA, zeroA},
      ArrayRef<OpFoldResult>{b.getIndexAttr(kvHeads), keys, hdAttr},
      SmallVector<OpFoldResult>(3, oneA));
  AffineExpr oh, oj, od;
  bindDims(ctx, oh, oj, od);
  Value oInit = filledTensor(b, loc, {hAttr, hdAttr}, 0.0f);
  Value weighted =
      linalg::GenericOp::create(
          b, loc, oInit.getType(), ValueRange{vLayer, probs}, ValueRange{oInit},
          ArrayRef<AffineMap>{
              AffineMap::get(3, 0, {oh.floorDiv(group), oj, od}, ctx),
              AffineMap::get(3, 0, {oh, oj}, ctx),
              AffineMap::get(3, 0, {oh, od}, ctx)},
          ArrayRef<utils::IteratorType>{kPar, kRed, kPar},
          [](OpBuilder &nb, Location l, ValueRange args) {
            linalg::YieldOp::create(nb, l,
                                    mulAdd(nb, l, args[2], args[0], args[1]));
          })
          .getResult(0);

  // out[0, h * hd + d] = O[h, d] / L[h].
  Value normalized =
      perHead(weighted, rowSum, hdAttr,
              [](OpBuilder &nb, Location l, Value o, Value sum) {
                return Value(arith::DivFOp::create(nb, l, o, sum));
              });
  Value flat = tensor::CollapseShapeOp::create(
      b, loc, RankedTensorType::get({heads * headDim}, f32), normalized,
      ArrayRef<ReassociationIndices>{{0, 1}});
  Value row = tensor::ExpandShapeOp::create(
      b, loc, RankedTensorType::get({1, heads * headDim}, f32), flat,
      ArrayRef<ReassociationIndices>{{0, 1}});
  return tensor::CastOp::create(b, loc, q.getType(), row);
}

struct KVCacheAttentionLowering : OpRewritePattern<llm::KVCacheAttentionOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(llm::KVCacheAttentionOp op,
                                PatternRewriter &rewriter) const override {
    auto type = cast<RankedTensorType>(op.getType());
    if (!type.getElementType().isF32())
      return rewriter.notifyMatchFailure(op, "only f32 tensors are lowered");
    Location loc = op.getLoc();
    AttentionShape shape{static_cast<int64_t>(op.getNumHeads()),
                         static_cast<int64_t>(op.getNumKvHeads()),
                         static_cast<int64_t>(op.getHeadDim()),
                         op.getScale().convertToFloat(),
                         /*causal=*/true,
                         /*positionMajorKeys=*/true};
    int64_t heads = shape.heads, kvHeads = shape.kvHeads,
            headDim = shape.headDim, layer = op.getLayer();
    Value pos = op.getPosition();
    // The layer's [KV, max_ctx, hd] view, taken once, outside everything
    // that loops: the loop nests below then see the layer only through
    // their operands, so every layer's copy of them is the same code (which
    // qc-outline-loop-nests compiles once) instead of one per layer index.
    OpFoldResult zeroL = rewriter.getIndexAttr(0),
                 oneL = rewriter.getIndexAttr(1);
    auto layerView = [&](Value cache) -> Value {
      auto type = RankedTensorType::get(
          {kvHeads, ShapedType::kDynamic, headDim}, rewriter.getF32Type());
      return tensor::ExtractSliceOp::create(
          rewriter, loc, type, cache,
          ArrayRef<OpFoldResult>{rewriter.getIndexAttr(layer), zeroL, zeroL,
                                 zeroL},
          ArrayRef<OpFoldResult>{oneL, rewriter.getIndexAttr(kvHeads),
                                 dimSize(rewriter, loc, cache, 2),
                                 rewriter.getIndexAttr(headDim)},
          SmallVector<OpFoldResult>(4, oneL));
    };
    Value keyLayer = layerView(op.getKeyCache());
    Value valueLayer = layerView(op.getValueCache());
    // One new token, the common case of generation, has its own form
    // (buildSingleRow); prompts of any length take the chunked one.
    Value numRows = tensor::DimOp::create(rewriter, loc, op.getQ(), 0);
    Value oneIdx = arith::ConstantIndexOp::create(rewriter, loc, 1);
    Value single = arith::CmpIOp::create(
        rewriter, loc, arith::CmpIPredicate::eq, numRows, oneIdx);
    auto ifOp =
        scf::IfOp::create(rewriter, loc, TypeRange{op.getType()}, single,
                          /*withElseRegion=*/true);
    rewriter.setInsertionPointToStart(&ifOp.getThenRegion().front());
    Value keysOne = arith::AddIOp::create(rewriter, loc, pos, oneIdx);
    scf::YieldOp::create(rewriter, loc,
                         buildSingleRow(rewriter, loc, shape, op.getQ(),
                                        keyLayer, valueLayer, keysOne));
    rewriter.setInsertionPointToStart(&ifOp.getElseRegion().front());
    Value qT = keysLast(rewriter, loc,
                        splitHeads(rewriter, loc, op.getQ(), heads, headDim));
    Value merged = chunkedRows(
        rewriter, loc, op.getQ(), heads, headDim,
        [&](OpBuilder &b, Location l, Value row0, Value rows) {
          // Rows [row0, row0 + rows) are positions pos + row0 + i and see
          // the cached keys [0, pos + row0 + rows).
          Value firstPos = arith::AddIOp::create(b, l, pos, row0);
          Value keys = arith::AddIOp::create(b, l, firstPos, rows);
          OpFoldResult zeroA = b.getIndexAttr(0);
          auto firstKeys = [&](Value layerTensor) -> Value {
            return tensor::ExtractSliceOp::create(
                b, l, layerTensor, ArrayRef<OpFoldResult>{zeroA, zeroA, zeroA},
                ArrayRef<OpFoldResult>{b.getIndexAttr(kvHeads), keys,
                                       b.getIndexAttr(headDim)},
                SmallVector<OpFoldResult>(3, b.getIndexAttr(1)));
          };
          auto slices = [&](OpBuilder &, Location) {
            Value ks = firstKeys(keyLayer);
            return std::make_pair(ks, firstKeys(valueLayer));
          };
          return buildChunk(b, l, shape, qT, slices, row0, firstPos, rows,
                            keys);
        });
    scf::YieldOp::create(rewriter, loc, merged);
    rewriter.replaceOp(op, ifOp.getResults());
    return success();
  }
};

/// llm.kv_cache_write: rows [T, KV * hd] -> [KV, T, hd] (one transpose of
/// the new rows), inserted at [layer, 0, pos, 0] of the cache.
struct KVCacheWriteLowering : OpRewritePattern<llm::KVCacheWriteOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(llm::KVCacheWriteOp op,
                                PatternRewriter &rewriter) const override {
    auto cacheType = cast<RankedTensorType>(op.getType());
    if (!cacheType.getElementType().isF32())
      return rewriter.notifyMatchFailure(op, "only f32 tensors are lowered");
    Location loc = op.getLoc();
    int64_t kvHeads = cacheType.getDimSize(1),
            headDim = cacheType.getDimSize(3);
    Value rows3 = splitHeads(rewriter, loc, op.getRows(), kvHeads, headDim);
    OpFoldResult t = dimSize(rewriter, loc, op.getRows(), 0);
    Value empty = emptyTensor(
        rewriter, loc,
        {rewriter.getIndexAttr(kvHeads), t, rewriter.getIndexAttr(headDim)},
        rewriter.getF32Type());
    Value headMajor = linalg::TransposeOp::create(rewriter, loc, rows3, empty,
                                                  ArrayRef<int64_t>{1, 0, 2})
                          .getResult()[0];
    OpFoldResult zeroA = rewriter.getIndexAttr(0),
                 oneA = rewriter.getIndexAttr(1);
    Value updated = tensor::InsertSliceOp::create(
        rewriter, loc, headMajor, op.getCache(),
        ArrayRef<OpFoldResult>{rewriter.getIndexAttr(op.getLayer()), zeroA,
                               op.getPosition(), zeroA},
        ArrayRef<OpFoldResult>{oneA, rewriter.getIndexAttr(kvHeads), t,
                               rewriter.getIndexAttr(headDim)},
        SmallVector<OpFoldResult>(4, oneA));
    rewriter.replaceOp(op, updated);
    return success();
  }
};

} // namespace

void mlir::qc::populateLLMAttentionToLinalgPatterns(
    RewritePatternSet &patterns) {
  patterns
      .add<AttentionLowering, KVCacheAttentionLowering, KVCacheWriteLowering>(
          patterns.getContext());
}
