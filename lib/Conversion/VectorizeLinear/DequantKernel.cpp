//===- DequantKernel.cpp - Fused dequantize-linear CPU kernel -------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// The CPU kernel of a packed GPTQ-layout linear (convert-wq-to-linalg's
// fused generic): out[t, n] += x[t, k] * s[g, n] * (code(k, n) - z[g, n]),
// with code(k, n) bits [(k % c) b, (k % c) b + b) of qweight[k / c, n]
// (c = 32 / b codes per word) and g = k / G.
//
// In the GPTQ layout the words of consecutive output columns are adjacent,
// so the output columns go in vector lanes: one vector load brings c codes
// of each of V columns, and every code is a shift, a mask and a conversion
// away from a weight vector, which is then used by all the tokens of the
// block. Nothing is reduced across lanes, and the dequantized weight never
// exists in memory (a decode step reads b / 32 of the bytes of an f32 copy):
//
//   for each block of C x V columns, for each block of T tokens:
//     acc[T][C] = 0                              (vector<V x f32> each)
//     for each group g:
//       s[C], z[C] = scales[g, cols], zeros[g, cols]
//       for each word w of the group:
//         q[C] = qweight[w, cols]                (vector<V x i32>)
//         for j in [0, c):                       (unrolled)
//           W[C] = s * (f32((q >> j b) & (2^b - 1)) - z)
//           acc[t][c] = fma(broadcast(x[t, w c + j]), W[c], acc[t][c])
//     out[t, cols] += acc
//
// W is formed with the same two f32 operations, in the same order, as the
// reference dequantization (convert-wq-to-linalg), so the weights are
// bit-identical to it; only the order of the sum over K differs. Groups
// hold whole words (G % c == 0, checked by the matcher), so a word never
// straddles two groups; a K that is not a multiple of c ends in a partial
// word, taken one code at a time.
//
//===----------------------------------------------------------------------===//

#include "VectorizeLinear.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/Matchers.h"

using namespace mlir;
using namespace mlir::qc::detail;

namespace {

bool isRank2UnitStride(Value v, Type element) {
  auto type = dyn_cast<MemRefType>(v.getType());
  return type && type.getRank() == 2 && type.getElementType() == element &&
         type.isLastDimUnitStride();
}

bool isArg(Value v, Block &block, unsigned index) {
  auto arg = dyn_cast<BlockArgument>(v);
  return arg && arg.getOwner() == &block && arg.getArgNumber() == index;
}

/// Whether `v` is the integer constant `expected`.
bool isConstant(Value v, int64_t expected) {
  APInt value;
  return matchPattern(v, m_ConstantInt(&value)) &&
         value.getSExtValue() == expected;
}

/// The binary op of type OpT that defines `v` and has `a` and `b` as its
/// operands in either order, if any.
template <typename OpT> OpT commuted(Value v, Value &lhs, Value &rhs) {
  auto op = v.getDefiningOp<OpT>();
  if (!op)
    return nullptr;
  lhs = op.getLhs();
  rhs = op.getRhs();
  return op;
}

/// Matches the body convert-wq-to-linalg builds for the fused linear:
///   yield(acc + x * (s * (uitofp((word >> ((k % c) * b)) & m) - z)))
/// with block arguments (x, word, s, z, acc); constants may have been
/// hoisted out of the body by canonicalization.
bool matchBody(Block &body, int64_t perWord, int64_t bits) {
  auto yield = cast<linalg::YieldOp>(body.getTerminator());
  Value lhs, rhs;
  if (!commuted<arith::AddFOp>(yield.getValues()[0], lhs, rhs))
    return false;
  Value prod = isArg(lhs, body, 4) ? rhs : isArg(rhs, body, 4) ? lhs : Value();
  if (!prod || !commuted<arith::MulFOp>(prod, lhs, rhs))
    return false;
  Value weight = isArg(lhs, body, 0)   ? rhs
                 : isArg(rhs, body, 0) ? lhs
                                       : Value();
  if (!weight || !commuted<arith::MulFOp>(weight, lhs, rhs))
    return false;
  Value centred = isArg(lhs, body, 2)   ? rhs
                  : isArg(rhs, body, 2) ? lhs
                                        : Value();
  auto sub = centred ? centred.getDefiningOp<arith::SubFOp>() : nullptr;
  if (!sub || !isArg(sub.getRhs(), body, 3))
    return false;
  auto toFloat = sub.getLhs().getDefiningOp<arith::UIToFPOp>();
  if (!toFloat)
    return false;
  auto masked = toFloat.getIn().getDefiningOp<arith::AndIOp>();
  if (!masked)
    return false;
  Value shifted = masked.getLhs(), mask = masked.getRhs();
  if (!isConstant(mask, (int64_t(1) << bits) - 1))
    std::swap(shifted, mask);
  auto shr = shifted.getDefiningOp<arith::ShRUIOp>();
  if (!isConstant(mask, (int64_t(1) << bits) - 1) || !shr ||
      !isArg(shr.getLhs(), body, 1))
    return false;
  auto cast = shr.getRhs().getDefiningOp<arith::IndexCastOp>();
  auto mul = cast ? cast.getIn().getDefiningOp<arith::MulIOp>() : nullptr;
  if (!mul)
    return false;
  Value slotV = mul.getLhs(), bitsV = mul.getRhs();
  if (!isConstant(bitsV, bits))
    std::swap(slotV, bitsV);
  auto rem = slotV.getDefiningOp<arith::RemUIOp>();
  if (!isConstant(bitsV, bits) || !rem || !isConstant(rem.getRhs(), perWord))
    return false;
  auto index = rem.getLhs().getDefiningOp<linalg::IndexOp>();
  return index && index.getDim() == 2;
}

} // namespace

std::optional<DequantLinearOperands>
mlir::qc::detail::matchDequantLinear(linalg::GenericOp op) {
  if (!isTokenColumnReduction(op, 4))
    return std::nullopt;
  // The word and group divisors are read off the maps.
  SmallVector<AffineMap> maps = op.getIndexingMapsArray();
  auto divisorOf = [](AffineMap map) -> int64_t {
    if (map.getNumResults() != 2 ||
        map.getResult(1) != getAffineDimExpr(1, map.getContext()))
      return 0;
    auto div = dyn_cast<AffineBinaryOpExpr>(map.getResult(0));
    if (!div || div.getKind() != AffineExprKind::FloorDiv ||
        div.getLHS() != getAffineDimExpr(2, map.getContext()))
      return 0;
    auto c = dyn_cast<AffineConstantExpr>(div.getRHS());
    return c ? c.getValue() : 0;
  };
  int64_t perWord = divisorOf(maps[1]), group = divisorOf(maps[2]);
  if (!(perWord == 16 || perWord == 8 || perWord == 4) || group <= 0 ||
      group % perWord != 0 || maps[3] != maps[2])
    return std::nullopt;
  MLIRContext *ctx = op.getContext();
  AffineExpr t, n, k;
  bindDims(ctx, t, n, k);
  if (maps[0] != AffineMap::get(3, 0, {t, k}, ctx) ||
      maps[4] != AffineMap::get(3, 0, {t, n}, ctx))
    return std::nullopt;
  DequantLinearOperands ops{op.getDpsInputs()[0],
                            op.getDpsInputs()[1],
                            op.getDpsInputs()[2],
                            op.getDpsInputs()[3],
                            op.getDpsInits()[0],
                            32 / perWord,
                            group};
  Type f32 = Float32Type::get(ctx);
  if (!isRank2UnitStride(ops.x, f32) ||
      !isRank2UnitStride(ops.qweight, IntegerType::get(ctx, 32)) ||
      !isRank2UnitStride(ops.scales, f32) ||
      !isRank2UnitStride(ops.zeros, f32) || !isRank2UnitStride(ops.out, f32))
    return std::nullopt;
  if (!matchBody(op.getRegion().front(), perWord, ops.bits))
    return std::nullopt;
  return ops;
}

namespace {

class DequantEmitter {
public:
  DequantEmitter(OpBuilder &b, Location loc, const DequantLinearOperands &ops,
                 int64_t width)
      : b(b), loc(loc), ops(ops), width(width),
        vecType(VectorType::get({width}, b.getF32Type())),
        wordType(VectorType::get({width}, b.getI32Type())),
        maskType(VectorType::get({width}, b.getI1Type())) {
    perWord = 32 / ops.bits;
    zero = arith::ConstantOp::create(b, loc, b.getZeroAttr(vecType));
    zeroWords = arith::ConstantOp::create(b, loc, b.getZeroAttr(wordType));
    codeMask = splat((int64_t(1) << ops.bits) - 1);
    c0 = constant(0);
    tokens = memref::DimOp::create(b, loc, ops.x, 0);
    depth = memref::DimOp::create(b, loc, ops.x, 1);
    groups = arith::CeilDivUIOp::create(b, loc, depth, constant(ops.groupSize));
  }

  /// Columns [colBegin, colEnd): blocks of `colBlock` full vectors, then
  /// single vectors masked to what is left; within each, blocks of
  /// `tokenBlock` tokens, then single tokens.
  void emit(Value colBegin, Value colEnd, int64_t colBlock,
            int64_t tokenBlock) {
    int64_t blockCols = colBlock * width;
    Value span = arith::SubIOp::create(b, loc, colEnd, colBegin);
    Value fullCols = arith::AddIOp::create(
        b, loc, colBegin,
        arith::SubIOp::create(
            b, loc, span,
            arith::RemUIOp::create(b, loc, span, constant(blockCols))));
    Value fullTokens = arith::SubIOp::create(
        b, loc, tokens,
        arith::RemUIOp::create(b, loc, tokens, constant(tokenBlock)));
    auto overTokens = [&](Value n, int64_t c, Value mask) {
      loop(c0, fullTokens, tokenBlock,
           [&](Value t) { emitBlock(t, n, tokenBlock, c, mask); });
      loop(fullTokens, tokens, 1,
           [&](Value t) { emitBlock(t, n, 1, c, mask); });
    };
    loop(colBegin, fullCols, blockCols,
         [&](Value n) { overTokens(n, colBlock, Value()); });
    loop(fullCols, colEnd, width, [&](Value n) {
      Value left = arith::MinUIOp::create(
          b, loc, arith::SubIOp::create(b, loc, colEnd, n), constant(width));
      overTokens(n, 1, vector::CreateMaskOp::create(b, loc, maskType, left));
    });
  }

private:
  Value constant(int64_t v) {
    return arith::ConstantIndexOp::create(b, loc, v);
  }
  Value plus(Value v, int64_t offset) {
    return offset == 0 ? v : arith::AddIOp::create(b, loc, v, constant(offset));
  }
  Value splat(int64_t v) {
    return arith::ConstantOp::create(
        b, loc,
        DenseElementsAttr::get(wordType,
                               ArrayRef<Attribute>{b.getI32IntegerAttr(v)}));
  }

  void loop(Value lb, Value ub, int64_t step,
            function_ref<void(Value)> bodyFn) {
    auto forOp = scf::ForOp::create(b, loc, lb, ub, constant(step));
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPoint(forOp.getBody()->getTerminator());
    bodyFn(forOp.getInductionVar());
  }

  /// A loop carrying the accumulators; `bodyFn` returns their next values.
  SmallVector<Value>
  accLoop(Value lb, Value ub, ValueRange acc,
          function_ref<SmallVector<Value>(Value, ValueRange)> bodyFn) {
    auto forOp = scf::ForOp::create(
        b, loc, lb, ub, constant(1), acc,
        [&](OpBuilder &nb, Location, Value i, ValueRange carried) {
          OpBuilder::InsertionGuard guard(b);
          b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
          scf::YieldOp::create(b, loc, bodyFn(i, carried));
        });
    return SmallVector<Value>(forOp.getResults());
  }

  Value load(VectorType type, Value base, Value row, Value col, Value mask,
             Value passthru) {
    if (!mask)
      return vector::LoadOp::create(b, loc, type, base, ValueRange{row, col});
    return vector::MaskedLoadOp::create(b, loc, type, base,
                                        ValueRange{row, col}, mask, passthru);
  }

  /// acc[i][c] += x[t + i, k] * W(code) for one code of every column
  /// vector: `words[c] >> shift` holds it in its low bits.
  SmallVector<Value> code(Value t, int64_t tb, Value k, ValueRange words,
                          Value shift, ArrayRef<Value> s, ArrayRef<Value> z,
                          ValueRange acc) {
    int64_t cb = words.size();
    SmallVector<Value> xs;
    for (int64_t i = 0; i < tb; ++i)
      xs.push_back(vector::BroadcastOp::create(
          b, loc, vecType,
          memref::LoadOp::create(b, loc, ops.x, ValueRange{plus(t, i), k})));
    SmallVector<Value> next(acc);
    for (int64_t c = 0; c < cb; ++c) {
      Value bitsOf = arith::AndIOp::create(
          b, loc, arith::ShRUIOp::create(b, loc, words[c], shift), codeMask);
      Value q = arith::UIToFPOp::create(b, loc, vecType, bitsOf);
      Value w = arith::MulFOp::create(b, loc, s[c],
                                      arith::SubFOp::create(b, loc, q, z[c]));
      for (int64_t i = 0; i < tb; ++i)
        next[i * cb + c] =
            vector::FMAOp::create(b, loc, xs[i], w, next[i * cb + c]);
    }
    return next;
  }

  void emitBlock(Value t, Value n, int64_t tb, int64_t cb, Value mask) {
    SmallVector<Value> cols;
    for (int64_t c = 0; c < cb; ++c)
      cols.push_back(plus(n, c * width));
    SmallVector<Value> init(tb * cb, zero);
    Value groupV = constant(ops.groupSize), perWordV = constant(perWord);
    SmallVector<Value> acc =
        accLoop(c0, groups, init, [&](Value g, ValueRange carried) {
          SmallVector<Value> s, z;
          for (Value col : cols) {
            s.push_back(load(vecType, ops.scales, g, col, mask, zero));
            z.push_back(load(vecType, ops.zeros, g, col, mask, zero));
          }
          Value kBegin = arith::MulIOp::create(b, loc, g, groupV);
          Value kEnd = arith::MinUIOp::create(
              b, loc, arith::AddIOp::create(b, loc, kBegin, groupV), depth);
          Value wordBegin = arith::DivUIOp::create(b, loc, kBegin, perWordV);
          Value wordEnd = arith::DivUIOp::create(b, loc, kEnd, perWordV);
          auto wordsAt = [&](Value w) {
            SmallVector<Value> words;
            for (Value col : cols)
              words.push_back(
                  load(wordType, ops.qweight, w, col, mask, zeroWords));
            return words;
          };
          // Whole words: c codes each, shifts known.
          SmallVector<Value> a = accLoop(
              wordBegin, wordEnd, carried, [&](Value w, ValueRange inner) {
                SmallVector<Value> words = wordsAt(w);
                Value k0 = arith::MulIOp::create(b, loc, w, perWordV);
                SmallVector<Value> next(inner);
                for (int64_t j = 0; j < perWord; ++j)
                  next = code(t, tb, plus(k0, j), words, splat(j * ops.bits), s,
                              z, next);
                return next;
              });
          // The codes of a last, partial word (K % c of them, in the last
          // group only).
          Value kWhole = arith::MulIOp::create(b, loc, wordEnd, perWordV);
          Value partial = arith::CmpIOp::create(
              b, loc, arith::CmpIPredicate::ult, kWhole, kEnd);
          auto ifOp = scf::IfOp::create(
              b, loc, partial,
              [&](OpBuilder &nb, Location) {
                OpBuilder::InsertionGuard guard(b);
                b.setInsertionPoint(nb.getInsertionBlock(),
                                    nb.getInsertionPoint());
                SmallVector<Value> words = wordsAt(wordEnd);
                Value codes = arith::SubIOp::create(b, loc, kEnd, kWhole);
                scf::YieldOp::create(
                    b, loc,
                    accLoop(c0, codes, a, [&](Value j, ValueRange inner) {
                      Value shift = arith::IndexCastOp::create(
                          b, loc, b.getI32Type(),
                          arith::MulIOp::create(b, loc, j, constant(ops.bits)));
                      return code(
                          t, tb, arith::AddIOp::create(b, loc, kWhole, j),
                          words,
                          vector::BroadcastOp::create(b, loc, wordType, shift),
                          s, z, inner);
                    }));
              },
              [&](OpBuilder &nb, Location) {
                scf::YieldOp::create(nb, loc, a);
              });
          return SmallVector<Value>(ifOp.getResults());
        });
    for (int64_t i = 0; i < tb; ++i)
      for (int64_t c = 0; c < cb; ++c) {
        Value row = plus(t, i);
        Value old = load(vecType, ops.out, row, cols[c], mask, zero);
        Value sum = arith::AddFOp::create(b, loc, old, acc[i * cb + c]);
        if (mask)
          vector::MaskedStoreOp::create(b, loc, ops.out,
                                        ValueRange{row, cols[c]}, mask, sum);
        else
          vector::StoreOp::create(b, loc, sum, ops.out,
                                  ValueRange{row, cols[c]});
      }
  }

  OpBuilder &b;
  Location loc;
  DequantLinearOperands ops;
  int64_t width, perWord;
  VectorType vecType, wordType, maskType;
  Value zero, zeroWords, codeMask, c0, tokens, depth, groups;
};

} // namespace

void mlir::qc::detail::emitDequantKernel(OpBuilder &b, Location loc,
                                         const DequantLinearOperands &ops,
                                         Value colBegin, Value colEnd,
                                         int64_t width, int64_t colBlock,
                                         int64_t tokenBlock) {
  DequantEmitter(b, loc, ops, width)
      .emit(colBegin, colEnd, colBlock, tokenBlock);
}
