//===- RopeToLinalg.cpp - Lower llm.rope to linalg ------------------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Rotary embeddings in two steps: a [T, head_dim/2] table of cos/sin of
// pos * theta^(-2i/head_dim) (pos = offset + row when the op has an
// offset), computed once per op in fp32 exactly as
// llama2.c and transformers do (the table is tiny next to the tensor it
// rotates, so recomputing it per op costs nothing measurable), then one
// elementwise generic that rotates each feature with its partner.
//
//===----------------------------------------------------------------------===//

#include "qc/Conversion/Utils/LinalgBuilders.h"
#include "LLM/IR/LLMOps.h"
#include "qc/Conversion/LLMToLinalg/LLMToLinalg.h"

#include "mlir/Dialect/Math/IR/Math.h"

using namespace mlir;
using namespace mlir::qc;
using namespace mlir::qc::detail;

namespace {

/// Index-typed constant.
Value indexConst(OpBuilder &b, Location loc, int64_t v) {
  return arith::ConstantIndexOp::create(b, loc, v);
}

struct RopeLowering : OpRewritePattern<llm::RopeOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(llm::RopeOp op,
                                PatternRewriter &rewriter) const override {
    auto type = cast<RankedTensorType>(op.getType());
    if (!type.getElementType().isF32())
      return rewriter.notifyMatchFailure(op, "only f32 tensors are lowered");
    Location loc = op.getLoc();
    MLIRContext *ctx = rewriter.getContext();
    Value x = op.getX();
    int64_t headDim = op.getHeadDim();
    // Partial rotary: only the first rotaryDim features of a head rotate.
    int64_t rotaryDim = op.getRotaryDim().value_or(headDim);
    int64_t half = rotaryDim / 2;
    bool partial = rotaryDim != headDim;
    float theta = op.getTheta().convertToFloat();
    std::optional<ArrayRef<float>> invFreq = op.getInvFreq();
    float attentionScaling = op.getAttentionScaling()
                                 ? op.getAttentionScaling()->convertToFloat()
                                 : 1.0f;
    // Given frequencies (scaled RoPE) travel as a constant vector.
    Value freqTable;
    if (invFreq) {
      auto freqType = RankedTensorType::get({half}, rewriter.getF32Type());
      freqTable = arith::ConstantOp::create(
          rewriter, loc, freqType, DenseElementsAttr::get(freqType, *invFreq));
    }
    bool interleaved = op.getLayout() == llm::RopeLayout::interleaved;
    Value offset = op.getOffset();
    OpFoldResult rows = dimSize(rewriter, loc, x, 0);

    // cos/sin table [T, head_dim/2].
    Value cosEmpty =
        emptyTensor(rewriter, loc, {rows, rewriter.getIndexAttr(half)},
                    rewriter.getF32Type());
    Value sinEmpty =
        emptyTensor(rewriter, loc, {rows, rewriter.getIndexAttr(half)},
                    rewriter.getF32Type());
    AffineMap id2 = AffineMap::getMultiDimIdentityMap(2, ctx);
    auto table = linalg::GenericOp::create(
        rewriter, loc, TypeRange{cosEmpty.getType(), sinEmpty.getType()},
        ValueRange{}, ValueRange{cosEmpty, sinEmpty},
        ArrayRef<AffineMap>{id2, id2},
        ArrayRef<utils::IteratorType>{kPar, kPar},
        [&](OpBuilder &b, Location l, ValueRange) {
          Type i64 = b.getI64Type(), f32 = b.getF32Type();
          Value t = linalg::IndexOp::create(b, l, 0);
          Value i = linalg::IndexOp::create(b, l, 1);
          // Row t holds position offset + t (decoding with a KV cache).
          if (offset)
            t = arith::AddIOp::create(b, l, t, offset);
          Value pos = arith::SIToFPOp::create(
              b, l, f32, arith::IndexCastOp::create(b, l, i64, t));
          Value freq;
          if (freqTable) {
            freq = tensor::ExtractOp::create(b, l, freqTable, ValueRange{i});
          } else {
            Value twoI = arith::MulIOp::create(b, l, i, indexConst(b, l, 2));
            Value twoIf = arith::SIToFPOp::create(
                b, l, f32, arith::IndexCastOp::create(b, l, i64, twoI));
            Value hd = arith::ConstantOp::create(
                b, l, b.getF32FloatAttr(static_cast<float>(rotaryDim)));
            Value base =
                arith::ConstantOp::create(b, l, b.getF32FloatAttr(theta));
            Value one = arith::ConstantOp::create(b, l, b.getF32FloatAttr(1));
            Value expo = arith::DivFOp::create(b, l, twoIf, hd);
            freq = arith::DivFOp::create(
                b, l, one, math::PowFOp::create(b, l, base, expo));
          }
          Value angle = arith::MulFOp::create(b, l, pos, freq);
          Value cosV = math::CosOp::create(b, l, angle);
          Value sinV = math::SinOp::create(b, l, angle);
          if (attentionScaling != 1.0f) {
            // YaRN: transformers multiplies cos and sin (fp32) by it.
            Value sc = arith::ConstantOp::create(
                b, l, b.getF32FloatAttr(attentionScaling));
            cosV = arith::MulFOp::create(b, l, cosV, sc);
            sinV = arith::MulFOp::create(b, l, sinV, sc);
          }
          linalg::YieldOp::create(b, l, ValueRange{cosV, sinV});
        });
    Value cosT = table.getResult(0), sinT = table.getResult(1);

    Value outEmpty =
        emptyTensor(rewriter, loc, {rows, dimSize(rewriter, loc, x, 1)},
                    rewriter.getF32Type());
    Value out =
        linalg::GenericOp::create(
            rewriter, loc, outEmpty.getType(), ValueRange{x},
            ValueRange{outEmpty}, ArrayRef<AffineMap>{id2, id2},
            ArrayRef<utils::IteratorType>{kPar, kPar},
            [&](OpBuilder &b, Location l, ValueRange args) {
              Value t = linalg::IndexOp::create(b, l, 0);
              Value c = linalg::IndexOp::create(b, l, 1);
              Value local =
                  arith::RemUIOp::create(b, l, c, indexConst(b, l, headDim));
              Value pairIdx, partner, isFirst, rotated;
              if (interleaved) {
                // Features (2i, 2i+1) of a head form pair i.
                Value two = indexConst(b, l, 2);
                pairIdx = arith::DivUIOp::create(b, l, local, two);
                Value parity = arith::RemUIOp::create(b, l, local, two);
                isFirst = arith::CmpIOp::create(b, l, arith::CmpIPredicate::eq,
                                                parity, indexConst(b, l, 0));
                partner = arith::SelectOp::create(
                    b, l, isFirst,
                    arith::AddIOp::create(b, l, c, indexConst(b, l, 1)),
                    arith::SubIOp::create(b, l, c, indexConst(b, l, 1)));
              } else {
                // Features (i, i + rotary_dim/2) of a head form pair i.
                Value h = indexConst(b, l, half);
                isFirst = arith::CmpIOp::create(b, l, arith::CmpIPredicate::ult,
                                                local, h);
                pairIdx = arith::SelectOp::create(
                    b, l, isFirst, local,
                    arith::SubIOp::create(b, l, local, h));
                partner = arith::SelectOp::create(
                    b, l, isFirst, arith::AddIOp::create(b, l, c, h),
                    arith::SubIOp::create(b, l, c, h));
                if (partial) {
                  // Features at or past rotary_dim pass through; their
                  // (unused) table lookups are pointed at valid indices.
                  rotated =
                      arith::CmpIOp::create(b, l, arith::CmpIPredicate::ult,
                                            local, indexConst(b, l, rotaryDim));
                  Value zero = indexConst(b, l, 0);
                  pairIdx =
                      arith::SelectOp::create(b, l, rotated, pairIdx, zero);
                  partner = arith::SelectOp::create(b, l, rotated, partner, c);
                }
              }
              Value p =
                  tensor::ExtractOp::create(b, l, x, ValueRange{t, partner});
              Value cs =
                  tensor::ExtractOp::create(b, l, cosT, ValueRange{t, pairIdx});
              Value sn =
                  tensor::ExtractOp::create(b, l, sinT, ValueRange{t, pairIdx});
              Value xc = arith::MulFOp::create(b, l, args[0], cs);
              Value ps = arith::MulFOp::create(b, l, p, sn);
              // First of a pair: x*cos - p*sin; second: p*sin + x*cos.
              Value first = arith::SubFOp::create(b, l, xc, ps);
              Value second = arith::AddFOp::create(b, l, ps, xc);
              Value result =
                  arith::SelectOp::create(b, l, isFirst, first, second);
              if (rotated)
                result =
                    arith::SelectOp::create(b, l, rotated, result, args[0]);
              linalg::YieldOp::create(b, l, result);
            })
            .getResult(0);
    rewriter.replaceOp(op, out);
    return success();
  }
};

} // namespace

void mlir::qc::populateLLMRopeToLinalgPatterns(RewritePatternSet &patterns) {
  patterns.add<RopeLowering>(patterns.getContext());
}
