//===- DenseToLinalg.cpp - Lower dense `llm` ops to linalg ----------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Embedding, RMSNorm, linear/logits and the elementwise ops. Each becomes a
// few `linalg.generic`s on tensors. Loop orders are chosen for the CPU
// path that lowers these to loops: the innermost loop is parallel and runs
// over contiguous memory, which is what LLVM's loop vectorizer handles best.
//
//===----------------------------------------------------------------------===//

#include "qc/Conversion/Utils/LinalgBuilders.h"
#include "LLM/IR/LLMOps.h"
#include "qc/Conversion/LLMToLinalg/LLMToLinalg.h"

#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/IR/AffineMap.h"

using namespace mlir;
using namespace mlir::qc;
using namespace mlir::qc::detail;

namespace {

/// Emits an error and fails unless every operand and result is f32. The
/// lowering accumulates in the element type, and only f32 keeps that
/// accumulation accurate enough for calibration and perplexity.
LogicalResult requireF32(Operation *op, PatternRewriter &rewriter) {
  for (Type t : llvm::concat<Type>(op->getOperandTypes(), op->getResultTypes()))
    if (auto tt = dyn_cast<RankedTensorType>(t))
      if (tt.getElementType().isFloat() && !tt.getElementType().isF32())
        return rewriter.notifyMatchFailure(op, "only f32 tensors are lowered");
  return success();
}

//===----------------------------------------------------------------------===//
// Patterns
//===----------------------------------------------------------------------===//

/// llm.embedding: out[t, d] = table[tokens[t], d], a gather expressed as a
/// generic whose body extracts from the table.
struct EmbeddingLowering : OpRewritePattern<llm::EmbeddingOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(llm::EmbeddingOp op,
                                PatternRewriter &rewriter) const override {
    if (failed(requireF32(op, rewriter)))
      return failure();
    Location loc = op.getLoc();
    MLIRContext *ctx = rewriter.getContext();
    Value table = op.getTable(), tokens = op.getTokens();
    Value empty = emptyTensor(
        rewriter, loc,
        {dimSize(rewriter, loc, tokens, 0), dimSize(rewriter, loc, table, 1)},
        rewriter.getF32Type());
    AffineExpr t, d;
    bindDims(ctx, t, d);
    Value result =
        linalg::GenericOp::create(
            rewriter, loc, empty.getType(), ValueRange{tokens},
            ValueRange{empty},
            ArrayRef<AffineMap>{AffineMap::get(2, 0, {t}, ctx),
                                AffineMap::get(2, 0, {t, d}, ctx)},
            ArrayRef<utils::IteratorType>{kPar, kPar},
            [&](OpBuilder &b, Location l, ValueRange args) {
              Value row =
                  arith::IndexCastOp::create(b, l, b.getIndexType(), args[0]);
              Value col = linalg::IndexOp::create(b, l, 1);
              Value v =
                  tensor::ExtractOp::create(b, l, table, ValueRange{row, col});
              linalg::YieldOp::create(b, l, v);
            })
            .getResult(0);
    rewriter.replaceOp(op, result);
    return success();
  }
};

/// llm.rms_norm, as llama2.c computes it:
///   ss[t]  = sum_d x[t, d]^2                  (fp32)
///   inv[t] = 1 / sqrt(ss[t] / D + eps)
///   out    = weight[d] * (inv[t] * x[t, d])
struct RMSNormLowering : OpRewritePattern<llm::RMSNormOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(llm::RMSNormOp op,
                                PatternRewriter &rewriter) const override {
    if (failed(requireF32(op, rewriter)))
      return failure();
    Location loc = op.getLoc();
    MLIRContext *ctx = rewriter.getContext();
    Value x = op.getX(), w = op.getWeight();
    int64_t width = cast<RankedTensorType>(w.getType()).getDimSize(0);
    OpFoldResult rows = dimSize(rewriter, loc, x, 0);
    AffineExpr t, d;
    bindDims(ctx, t, d);
    AffineMap rowMap = AffineMap::get(2, 0, {t}, ctx);
    AffineMap colMap = AffineMap::get(2, 0, {d}, ctx);
    AffineMap id2 = AffineMap::getMultiDimIdentityMap(2, ctx);

    Value ssInit = filledTensor(rewriter, loc, {rows}, 0.0f);
    Value ss = linalg::GenericOp::create(
                   rewriter, loc, ssInit.getType(), ValueRange{x},
                   ValueRange{ssInit}, ArrayRef<AffineMap>{id2, rowMap},
                   ArrayRef<utils::IteratorType>{kPar, kRed},
                   [](OpBuilder &b, Location l, ValueRange args) {
                     linalg::YieldOp::create(
                         b, l, mulAdd(b, l, args[1], args[0], args[0]));
                   })
                   .getResult(0);

    float eps = op.getEps().convertToFloat();
    Value invEmpty = emptyTensor(rewriter, loc, {rows}, rewriter.getF32Type());
    AffineMap id1 = AffineMap::getMultiDimIdentityMap(1, ctx);
    Value inv =
        linalg::GenericOp::create(
            rewriter, loc, invEmpty.getType(), ValueRange{ss},
            ValueRange{invEmpty}, ArrayRef<AffineMap>{id1, id1},
            ArrayRef<utils::IteratorType>{kPar},
            [&](OpBuilder &b, Location l, ValueRange args) {
              Value n = arith::ConstantOp::create(
                  b, l, b.getF32FloatAttr(static_cast<float>(width)));
              Value e = arith::ConstantOp::create(b, l, b.getF32FloatAttr(eps));
              Value one = arith::ConstantOp::create(b, l, b.getF32FloatAttr(1));
              Value mean = arith::DivFOp::create(b, l, args[0], n);
              Value sum = arith::AddFOp::create(b, l, mean, e);
              Value root = math::SqrtOp::create(b, l, sum);
              linalg::YieldOp::create(
                  b, l, arith::DivFOp::create(b, l, one, root).getResult());
            })
            .getResult(0);

    Value outEmpty =
        emptyTensor(rewriter, loc, {rows, dimSize(rewriter, loc, x, 1)},
                    rewriter.getF32Type());
    Value out =
        linalg::GenericOp::create(
            rewriter, loc, outEmpty.getType(), ValueRange{x, inv, w},
            ValueRange{outEmpty}, ArrayRef<AffineMap>{id2, rowMap, colMap, id2},
            ArrayRef<utils::IteratorType>{kPar, kPar},
            [](OpBuilder &b, Location l, ValueRange args) {
              Value scaled = arith::MulFOp::create(b, l, args[1], args[0]);
              linalg::YieldOp::create(
                  b, l,
                  arith::MulFOp::create(b, l, args[2], scaled).getResult());
            })
            .getResult(0);
    rewriter.replaceOp(op, out);
    return success();
  }
};

/// llm.linear -> x W^T (+ b).
struct LinearLowering : OpRewritePattern<llm::LinearOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(llm::LinearOp op,
                                PatternRewriter &rewriter) const override {
    if (failed(requireF32(op, rewriter)))
      return failure();
    rewriter.replaceOp(op,
                       buildMatmulTransposedB(rewriter, op.getLoc(), op.getX(),
                                              op.getWeight(), op.getBias()));
    return success();
  }
};

/// llm.logits -> x W^T.
struct LogitsLowering : OpRewritePattern<llm::LogitsOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(llm::LogitsOp op,
                                PatternRewriter &rewriter) const override {
    if (failed(requireF32(op, rewriter)))
      return failure();
    rewriter.replaceOp(op,
                       buildMatmulTransposedB(rewriter, op.getLoc(), op.getX(),
                                              op.getWeight(), Value()));
    return success();
  }
};

/// llm.silu_mul: gate * (1 / (1 + exp(-gate))) * up, in llama2.c's order.
struct SiluMulLowering : OpRewritePattern<llm::SiluMulOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(llm::SiluMulOp op,
                                PatternRewriter &rewriter) const override {
    if (failed(requireF32(op, rewriter)))
      return failure();
    if (cast<RankedTensorType>(op.getType()).getRank() != 2)
      return rewriter.notifyMatchFailure(op, "only rank-2 tensors");
    Value out = buildElementwise2D(
        rewriter, op.getLoc(), ValueRange{op.getGate(), op.getUp()},
        rewriter.getF32Type(),
        [](OpBuilder &b, Location l, ValueRange args) -> Value {
          Value one = arith::ConstantOp::create(b, l, b.getF32FloatAttr(1));
          Value neg = arith::NegFOp::create(b, l, args[0]);
          Value e = math::ExpOp::create(b, l, neg);
          Value denom = arith::AddFOp::create(b, l, one, e);
          Value sig = arith::DivFOp::create(b, l, one, denom);
          Value silu = arith::MulFOp::create(b, l, args[0], sig);
          return arith::MulFOp::create(b, l, silu, args[1]);
        });
    rewriter.replaceOp(op, out);
    return success();
  }
};

/// llm.add: elementwise sum.
struct AddLowering : OpRewritePattern<llm::AddOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(llm::AddOp op,
                                PatternRewriter &rewriter) const override {
    if (failed(requireF32(op, rewriter)))
      return failure();
    if (cast<RankedTensorType>(op.getType()).getRank() != 2)
      return rewriter.notifyMatchFailure(op, "only rank-2 tensors");
    Value out = buildElementwise2D(
        rewriter, op.getLoc(), ValueRange{op.getLhs(), op.getRhs()},
        rewriter.getF32Type(),
        [](OpBuilder &b, Location l, ValueRange args) -> Value {
          return arith::AddFOp::create(b, l, args[0], args[1]);
        });
    rewriter.replaceOp(op, out);
    return success();
  }
};

} // namespace

void mlir::qc::populateLLMDenseToLinalgPatterns(RewritePatternSet &patterns) {
  patterns.add<EmbeddingLowering, RMSNormLowering, LinearLowering,
               LogitsLowering, SiluMulLowering, AddLowering>(
      patterns.getContext());
}
