//===- WQToLinalg.cpp - Reference lowering of `wq` ops to linalg ----------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Dequantization follows dialects/WQ/README.md exactly: codes are LSB-first
// bit streams over 32-bit words, so code i of a stream starts at bit b*i of
// word (b*i)/32 and may continue into the next word (b = 3). The body reads
// both words as one 64-bit value, shifts and masks; for codes that do not
// straddle, the second word's bits are masked away. The "next" word index
// is clamped to the last word so that it never reads out of bounds.
//
//===----------------------------------------------------------------------===//

#include "qc/Conversion/WQToLinalg/WQToLinalg.h"

#include "WQ/IR/WQOps.h"
#include "qc/Conversion/Passes.h"
#include "qc/Conversion/Utils/LinalgBuilders.h"

#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::qc {
#define GEN_PASS_DEF_CONVERTWQTOLINALGPASS
#include "qc/Conversion/Passes.h.inc"
} // namespace mlir::qc

using namespace mlir;
using namespace mlir::qc;
using namespace mlir::qc::detail;

namespace {

/// The operands and attributes wq.linear and wq.dequantize share.
struct Scheme {
  Value qweight, scales, zeros, gIdx;
  int64_t bits, groupSize, inFeatures, outFeatures;
  bool sym;
  wq::Layout layout;
  std::optional<ArrayRef<float>> codebook;

  template <typename OpT> static Scheme from(OpT op) {
    Scheme s;
    s.qweight = op.getQweight();
    s.scales = op.getScales();
    s.zeros = op.getZeros();
    s.gIdx = op.getGIdx();
    s.bits = op.getBits();
    s.groupSize = op.getGroupSize();
    s.inFeatures = op.getInFeatures();
    s.outFeatures = op.getOutFeatures();
    s.sym = op.getSym();
    s.layout = op.getLayout();
    s.codebook = op.getCodebook();
    return s;
  }
};

Value idx(OpBuilder &b, Location l, int64_t v) {
  return arith::ConstantIndexOp::create(b, l, v);
}
Value i64c(OpBuilder &b, Location l, int64_t v) {
  return arith::ConstantIntOp::create(b, l, b.getI64Type(), v);
}

/// Code `i` (an index value) of the bit stream held in `words`, where the
/// stream's word w is `words[fixed, w]` (streamDim = 1) or `words[w, fixed]`
/// (streamDim = 0). Returns the code as an i64 in [0, 2^bits).
Value extractCode(OpBuilder &b, Location l, Value words, int streamDim,
                  Value fixed, Value i, int64_t bits) {
  auto type = cast<RankedTensorType>(words.getType());
  int64_t numWords = type.getDimSize(streamDim);
  Value bitPos = arith::MulIOp::create(b, l, i, idx(b, l, bits));
  Value word = arith::DivUIOp::create(b, l, bitPos, idx(b, l, 32));
  Value shift = arith::RemUIOp::create(b, l, bitPos, idx(b, l, 32));
  Value next = arith::MinUIOp::create(
      b, l, arith::AddIOp::create(b, l, word, idx(b, l, 1)),
      idx(b, l, numWords - 1));
  auto at = [&](Value w) -> Value {
    SmallVector<Value, 2> indices = streamDim == 1
                                        ? SmallVector<Value, 2>{fixed, w}
                                        : SmallVector<Value, 2>{w, fixed};
    Value v = tensor::ExtractOp::create(b, l, words, indices);
    if (!v.getType().isInteger(32))
      v = arith::ExtUIOp::create(b, l, b.getI32Type(), v);
    return arith::ExtUIOp::create(b, l, b.getI64Type(), v);
  };
  Value lo = at(word);
  Value hi = arith::ShLIOp::create(b, l, at(next), i64c(b, l, 32));
  Value both = arith::OrIOp::create(b, l, lo, hi);
  Value sh = arith::IndexCastOp::create(b, l, b.getI64Type(), shift);
  Value shifted = arith::ShRUIOp::create(b, l, both, sh);
  return arith::AndIOp::create(b, l, shifted, i64c(b, l, (1LL << bits) - 1));
}

/// Widens a float scalar to f32.
Value toF32(OpBuilder &b, Location l, Value v) {
  if (v.getType().isF32())
    return v;
  return arith::ExtFOp::create(b, l, b.getF32Type(), v);
}

/// scales[g, n] of a wq op as f32.
Value scaleAt(OpBuilder &b, Location l, const Scheme &s, Value g, Value n) {
  return toF32(b, l,
               tensor::ExtractOp::create(b, l, s.scales, ValueRange{g, n}));
}

/// The zero point z[g, n] of a non-codebook wq op as f32: 2^(b-1) when
/// symmetric, else read from `zeros` in whichever form the layout stores.
Value zeroAt(OpBuilder &b, Location l, const Scheme &s, Value g, Value n) {
  if (s.sym)
    return arith::ConstantOp::create(
        b, l, b.getF32FloatAttr(float(1LL << (s.bits - 1))));
  Type zt = cast<RankedTensorType>(s.zeros.getType()).getElementType();
  if (isa<FloatType>(zt))
    return toF32(b, l,
                 tensor::ExtractOp::create(b, l, s.zeros, ValueRange{g, n}));
  if (s.layout == wq::Layout::gptq) {
    // GPTQ v1 stores z - 1 as a stream over N per group.
    Value stored = extractCode(b, l, s.zeros, 1, g, n, s.bits);
    Value zi = arith::AndIOp::create(
        b, l, arith::AddIOp::create(b, l, stored, i64c(b, l, 1)),
        i64c(b, l, (1LL << s.bits) - 1));
    return arith::UIToFPOp::create(b, l, b.getF32Type(), zi);
  }
  Value zi = tensor::ExtractOp::create(b, l, s.zeros, ValueRange{g, n});
  return arith::UIToFPOp::create(b, l, b.getF32Type(), zi);
}

/// The dequantized [N, K] f32 weight of a wq op.
Value buildDequantize(OpBuilder &b, Location loc, const Scheme &s) {
  MLIRContext *ctx = b.getContext();
  int64_t n = s.outFeatures, k = s.inFeatures;
  int64_t group = s.groupSize == -1 ? k : s.groupSize;
  Value codebook;
  if (s.codebook) {
    auto cbType =
        RankedTensorType::get({(int64_t)s.codebook->size()}, b.getF32Type());
    codebook = arith::ConstantOp::create(
        b, loc, DenseElementsAttr::get(cbType, *s.codebook));
  }
  Value empty = emptyTensor(b, loc, {b.getIndexAttr(n), b.getIndexAttr(k)},
                            b.getF32Type());
  AffineMap id2 = AffineMap::getMultiDimIdentityMap(2, ctx);
  return linalg::GenericOp::create(
             b, loc, empty.getType(), ValueRange{}, ValueRange{empty},
             ArrayRef<AffineMap>{id2},
             ArrayRef<utils::IteratorType>{kPar, kPar},
             [&](OpBuilder &nb, Location l, ValueRange) {
               Value row = linalg::IndexOp::create(nb, l, 0);
               Value col = linalg::IndexOp::create(nb, l, 1);
               // gptq: qweight[word, n] holds column n's stream over K;
               // rows: qweight[n, word] holds row n's stream over K.
               Value code =
                   s.layout == wq::Layout::gptq
                       ? extractCode(nb, l, s.qweight, 0, row, col, s.bits)
                       : extractCode(nb, l, s.qweight, 1, row, col, s.bits);
               Value g;
               if (s.gIdx) {
                 Value gi =
                     tensor::ExtractOp::create(nb, l, s.gIdx, ValueRange{col});
                 g = arith::IndexCastOp::create(nb, l, nb.getIndexType(), gi);
               } else {
                 g = arith::DivUIOp::create(nb, l, col, idx(nb, l, group));
               }
               Value scale = scaleAt(nb, l, s, g, row);
               Value w;
               if (codebook) {
                 Value ci =
                     arith::IndexCastOp::create(nb, l, nb.getIndexType(), code);
                 Value v =
                     tensor::ExtractOp::create(nb, l, codebook, ValueRange{ci});
                 w = arith::MulFOp::create(nb, l, v, scale);
               } else {
                 Value q =
                     arith::UIToFPOp::create(nb, l, nb.getF32Type(), code);
                 Value z = zeroAt(nb, l, s, g, row);
                 w = arith::MulFOp::create(nb, l, scale,
                                           arith::SubFOp::create(nb, l, q, z));
               }
               linalg::YieldOp::create(nb, l, w);
             })
      .getResult(0);
}

/// Whether the linear can be one fused generic that reads the packed codes
/// directly (buildFusedLinear): GPTQ layout with i32 words holding whole
/// codes (b = 2, 4, 8), no act-order permutation, no codebook, and groups
/// of whole words so that a word never spans two groups.
bool hasFusedForm(const Scheme &s) {
  if (s.layout != wq::Layout::gptq || s.codebook || s.gIdx ||
      !(s.bits == 2 || s.bits == 4 || s.bits == 8) ||
      !cast<RankedTensorType>(s.qweight.getType())
           .getElementType()
           .isInteger(32))
    return false;
  int64_t group = s.groupSize == -1 ? s.inFeatures : s.groupSize;
  return group % (32 / s.bits) == 0;
}

/// How the fused generic reads the zero points: a constant (symmetric),
/// the stored float [groups, N] tensor, the stored GPTQ v1 stream (z - 1
/// packed over N per group, whole codes per word), or anything else first
/// gathered into an f32 [groups, N] tensor.
enum class FusedZeros { Sym, Float, Packed, Gathered };

FusedZeros fusedZerosOf(const Scheme &s) {
  if (s.sym)
    return FusedZeros::Sym;
  Type zt = cast<RankedTensorType>(s.zeros.getType()).getElementType();
  if (zt.isF32() || zt.isF16() || zt.isBF16())
    return FusedZeros::Float;
  if (zt.isInteger(32) && s.layout == wq::Layout::gptq)
    return FusedZeros::Packed;
  return FusedZeros::Gathered;
}

/// x W^T (+ bias) as one (t, n, k) generic that dequantizes each weight as
/// it multiplies: code k of column n is bits [(k % c) b, (k % c) b + b) of
/// qweight[k / c, n] (c = 32 / b codes per word) and W[n, k] =
/// scales[g, n] * (code - z[g, n]) with g = k / G, the same f32 operations
/// as buildDequantize. The generic reads the scales (f32, f16 or bf16) and
/// the zero points in their stored form, so that nothing is computed from
/// the weights alone on every call: a symmetric zero is a constant, float
/// zeros are widened, and GPTQ v1 zeros are unpacked from word n / c of
/// their group's row (bits (n % c) b, plus one, as zeroAt does). Only zero
/// points stored some other way are first gathered into an f32 [groups, N]
/// tensor. qc-vectorize-linear turns this generic into a kernel that keeps
/// N in vector lanes and never materializes W; anywhere else it is a
/// correct, if slow, loop nest.
Value buildFusedLinear(OpBuilder &b, Location loc, const Scheme &s, Value x,
                       Value bias) {
  MLIRContext *ctx = b.getContext();
  int64_t n = s.outFeatures, k = s.inFeatures;
  int64_t group = s.groupSize == -1 ? k : s.groupSize;
  int64_t groups = (k + group - 1) / group;
  int64_t perWord = 32 / s.bits;
  AffineMap id2 = AffineMap::getMultiDimIdentityMap(2, ctx);
  FusedZeros zeroForm = fusedZerosOf(s);
  Value zeros;
  if (zeroForm == FusedZeros::Gathered) {
    Value empty = emptyTensor(
        b, loc, {b.getIndexAttr(groups), b.getIndexAttr(n)}, b.getF32Type());
    zeros =
        linalg::GenericOp::create(
            b, loc, empty.getType(), ValueRange{}, ValueRange{empty},
            ArrayRef<AffineMap>{id2}, ArrayRef<utils::IteratorType>{kPar, kPar},
            [&](OpBuilder &nb, Location l, ValueRange) {
              Value g = linalg::IndexOp::create(nb, l, 0);
              Value col = linalg::IndexOp::create(nb, l, 1);
              linalg::YieldOp::create(nb, l, zeroAt(nb, l, s, g, col));
            })
            .getResult(0);
  } else if (zeroForm != FusedZeros::Sym) {
    zeros = s.zeros;
  }

  Value init = buildLinearInit(b, loc, x, b.getIndexAttr(n), bias);
  AffineExpr t, nn, kk;
  bindDims(ctx, t, nn, kk);
  AffineMap groupMap = AffineMap::get(3, 0, {kk.floorDiv(group), nn}, ctx);
  SmallVector<Value> inputs = {x, s.qweight, s.scales};
  SmallVector<AffineMap> maps = {
      AffineMap::get(3, 0, {t, kk}, ctx),
      AffineMap::get(3, 0, {kk.floorDiv(perWord), nn}, ctx), groupMap};
  if (zeros) {
    inputs.push_back(zeros);
    maps.push_back(
        zeroForm == FusedZeros::Packed
            ? AffineMap::get(3, 0, {kk.floorDiv(group), nn.floorDiv(perWord)},
                             ctx)
            : groupMap);
  }
  maps.push_back(AffineMap::get(3, 0, {t, nn}, ctx));
  return linalg::GenericOp::create(
             b, loc, init.getType(), inputs, ValueRange{init}, maps,
             ArrayRef<utils::IteratorType>{kPar, kPar, kRed},
             [&](OpBuilder &nb, Location l, ValueRange args) {
               Type i32 = nb.getI32Type();
               Value mask = arith::ConstantIntOp::create(nb, l, i32,
                                                         (1LL << s.bits) - 1);
               // Bits [(i % c) b, (i % c) b + b) of `word`, i = index `dim`.
               auto codeOf = [&](Value word, unsigned dim) {
                 Value slot = arith::RemUIOp::create(
                     nb, l, linalg::IndexOp::create(nb, l, dim),
                     idx(nb, l, perWord));
                 Value shift = arith::IndexCastOp::create(
                     nb, l, i32,
                     arith::MulIOp::create(nb, l, slot, idx(nb, l, s.bits)));
                 return arith::ShRUIOp::create(nb, l, word, shift);
               };
               Value code =
                   arith::AndIOp::create(nb, l, codeOf(args[1], 2), mask);
               Value q = arith::UIToFPOp::create(nb, l, nb.getF32Type(), code);
               Value scale = toF32(nb, l, args[2]);
               Value z;
               switch (zeroForm) {
               case FusedZeros::Sym:
                 z = arith::ConstantOp::create(
                     nb, l, nb.getF32FloatAttr(float(1LL << (s.bits - 1))));
                 break;
               case FusedZeros::Packed:
                 // Stored z - 1: ((word >> shift) + 1) & mask, as zeroAt.
                 z = arith::UIToFPOp::create(
                     nb, l, nb.getF32Type(),
                     arith::AndIOp::create(
                         nb, l,
                         arith::AddIOp::create(
                             nb, l, codeOf(args[3], 1),
                             arith::ConstantIntOp::create(nb, l, i32, 1)),
                         mask));
                 break;
               case FusedZeros::Float:
               case FusedZeros::Gathered:
                 z = toF32(nb, l, args[3]);
                 break;
               }
               Value w = arith::MulFOp::create(
                   nb, l, scale, arith::SubFOp::create(nb, l, q, z));
               linalg::YieldOp::create(nb, l,
                                       mulAdd(nb, l, args.back(), args[0], w));
             })
      .getResult(0);
}

struct DequantizeLowering : OpRewritePattern<wq::DequantizeOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(wq::DequantizeOp op,
                                PatternRewriter &rewriter) const override {
    if (op.getLayout() == wq::Layout::mma16x64)
      return rewriter.notifyMatchFailure(op, "GPU kernel layout");
    Value w = buildDequantize(rewriter, op.getLoc(), Scheme::from(op));
    auto resultType = cast<RankedTensorType>(op.getType());
    if (!resultType.getElementType().isF32()) {
      // Round the f32 weights to the requested element type.
      Type elt = resultType.getElementType();
      w = buildElementwise2D(
          rewriter, op.getLoc(), ValueRange{w}, elt,
          [elt](OpBuilder &b, Location l, ValueRange args) -> Value {
            return arith::TruncFOp::create(b, l, elt, args[0]);
          });
    }
    rewriter.replaceOp(op, w);
    return success();
  }
};

struct LinearLowering : OpRewritePattern<wq::LinearOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(wq::LinearOp op,
                                PatternRewriter &rewriter) const override {
    if (op.getLayout() == wq::Layout::mma16x64)
      return rewriter.notifyMatchFailure(op, "GPU kernel layout");
    if (!cast<RankedTensorType>(op.getX().getType()).getElementType().isF32())
      return rewriter.notifyMatchFailure(op, "only f32 activations");
    Scheme scheme = Scheme::from(op);
    if (hasFusedForm(scheme)) {
      rewriter.replaceOp(op, buildFusedLinear(rewriter, op.getLoc(), scheme,
                                              op.getX(), op.getBias()));
      return success();
    }
    Value w = buildDequantize(rewriter, op.getLoc(), scheme);
    rewriter.replaceOp(op, buildMatmulTransposedB(rewriter, op.getLoc(),
                                                  op.getX(), w, op.getBias()));
    return success();
  }
};

struct ConvertWQToLinalgPass
    : qc::impl::ConvertWQToLinalgPassBase<ConvertWQToLinalgPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    populateWQToLinalgPatterns(patterns);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      return signalPassFailure();
    bool failedAny = false;
    getOperation().walk([&](Operation *op) {
      if (!isa<wq::WQDialect>(op->getDialect()))
        return;
      auto layout = op->getAttrOfType<wq::LayoutAttr>("layout");
      if (layout && layout.getValue() == wq::Layout::mma16x64) {
        op->emitOpError("cannot be lowered to linalg: layout mma16x64 is the "
                        "GPU kernels' layout (repack to gptq with "
                        "wq-repack-gptq for the CPU path)");
        failedAny = true;
        return;
      }
      op->emitOpError("cannot be lowered to linalg: only f32 activations "
                      "are supported by the CPU lowering");
      failedAny = true;
    });
    if (failedAny)
      signalPassFailure();
  }
};

} // namespace

void mlir::qc::populateWQToLinalgPatterns(RewritePatternSet &patterns) {
  patterns.add<DequantizeLowering, LinearLowering>(patterns.getContext());
}
