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
// bit-identical to it; only the order of the sum over K differs. One token
// (a decode step) takes another loop nest that factors the scale and zero
// point out of each group's sum (emitRows). Groups
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

/// Whether `shift` is index_cast((index(dim) % perWord) * bits): the bit
/// position of code i = index(dim) in its word.
bool isSlotShift(Value shift, unsigned dim, int64_t perWord, int64_t bits) {
  auto cast = shift.getDefiningOp<arith::IndexCastOp>();
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
  return index && index.getDim() == dim;
}

/// `v` widened to f32 from block argument `index` (itself, or an extf).
bool isWidenedArg(Value v, Block &body, unsigned index) {
  if (auto ext = v.getDefiningOp<arith::ExtFOp>())
    v = ext.getIn();
  return isArg(v, body, index);
}

/// If `v` is `(word >> shift) & mask` (operands of the andi in either
/// order), the `word` and `shift` values.
bool matchMaskedShift(Value v, int64_t bits, Value &word, Value &shift) {
  Value lhs, rhs;
  if (!commuted<arith::AndIOp>(v, lhs, rhs))
    return false;
  int64_t mask = (int64_t(1) << bits) - 1;
  if (!isConstant(rhs, mask))
    std::swap(lhs, rhs);
  auto shr = lhs.getDefiningOp<arith::ShRUIOp>();
  if (!isConstant(rhs, mask) || !shr)
    return false;
  word = shr.getLhs();
  shift = shr.getRhs();
  return true;
}

/// Matches the body convert-wq-to-linalg builds for the fused linear:
///   yield(acc + x * (S * (uitofp((word >> ((k % c) * b)) & m) - Z)))
/// with block arguments (x, word, scale, [zero,] acc), S the scale widened
/// to f32 and Z the zero point in the form `zeros` says; constants may have
/// been hoisted out of the body by canonicalization.
bool matchBody(Block &body, int64_t perWord, int64_t bits, DequantZeros zeros) {
  unsigned accIndex = zeros == DequantZeros::Symmetric ? 3 : 4;
  auto yield = cast<linalg::YieldOp>(body.getTerminator());
  Value lhs, rhs;
  if (!commuted<arith::AddFOp>(yield.getValues()[0], lhs, rhs))
    return false;
  Value prod = isArg(lhs, body, accIndex)   ? rhs
               : isArg(rhs, body, accIndex) ? lhs
                                            : Value();
  if (!prod || !commuted<arith::MulFOp>(prod, lhs, rhs))
    return false;
  Value weight = isArg(lhs, body, 0)   ? rhs
                 : isArg(rhs, body, 0) ? lhs
                                       : Value();
  if (!weight || !commuted<arith::MulFOp>(weight, lhs, rhs))
    return false;
  Value centred = isWidenedArg(lhs, body, 2)   ? rhs
                  : isWidenedArg(rhs, body, 2) ? lhs
                                               : Value();
  auto sub = centred ? centred.getDefiningOp<arith::SubFOp>() : nullptr;
  if (!sub)
    return false;
  auto toFloat = sub.getLhs().getDefiningOp<arith::UIToFPOp>();
  Value word, shift;
  if (!toFloat || !matchMaskedShift(toFloat.getIn(), bits, word, shift) ||
      !isArg(word, body, 1) || !isSlotShift(shift, 2, perWord, bits))
    return false;
  Value zero = sub.getRhs();
  switch (zeros) {
  case DequantZeros::Symmetric: {
    FloatAttr value;
    return matchPattern(zero, m_Constant(&value)) &&
           value.getValueAsDouble() == double(int64_t(1) << (bits - 1));
  }
  case DequantZeros::Float:
    return isWidenedArg(zero, body, 3);
  case DequantZeros::Packed: {
    // uitofp(((zword >> ((n % c) * b)) + 1) & m)
    auto zf = zero.getDefiningOp<arith::UIToFPOp>();
    int64_t mask = (int64_t(1) << bits) - 1;
    Value sum, m, shifted, one;
    if (!zf || !commuted<arith::AndIOp>(zf.getIn(), sum, m))
      return false;
    if (!isConstant(m, mask))
      std::swap(sum, m);
    if (!isConstant(m, mask) || !commuted<arith::AddIOp>(sum, shifted, one))
      return false;
    if (!isConstant(one, 1))
      std::swap(shifted, one);
    auto shr = shifted.getDefiningOp<arith::ShRUIOp>();
    return isConstant(one, 1) && shr && isArg(shr.getLhs(), body, 3) &&
           isSlotShift(shr.getRhs(), 1, perWord, bits);
  }
  }
  return false;
}

/// Whether `t` is a scale element type the kernel widens (or reads) as f32.
bool isScaleType(Type t) { return t.isF32() || t.isF16() || t.isBF16(); }

} // namespace

std::optional<DequantLinearOperands>
mlir::qc::detail::matchDequantLinear(linalg::GenericOp op) {
  unsigned inputs = op.getNumDpsInputs();
  if (!isTokenColumnReduction(op, inputs) || (inputs != 3 && inputs != 4))
    return std::nullopt;
  // The word and group divisors are read off the maps.
  SmallVector<AffineMap> maps = op.getIndexingMapsArray();
  MLIRContext *ctx = op.getContext();
  AffineExpr t, n, k;
  bindDims(ctx, t, n, k);
  auto divisorOf = [&](AffineMap map) -> int64_t {
    if (map.getNumResults() != 2 || map.getResult(1) != n)
      return 0;
    auto div = dyn_cast<AffineBinaryOpExpr>(map.getResult(0));
    if (!div || div.getKind() != AffineExprKind::FloorDiv || div.getLHS() != k)
      return 0;
    auto c = dyn_cast<AffineConstantExpr>(div.getRHS());
    return c ? c.getValue() : 0;
  };
  int64_t perWord = divisorOf(maps[1]), group = divisorOf(maps[2]);
  if (!(perWord == 16 || perWord == 8 || perWord == 4) || group <= 0 ||
      group % perWord != 0)
    return std::nullopt;
  if (maps[0] != AffineMap::get(3, 0, {t, k}, ctx) ||
      maps.back() != AffineMap::get(3, 0, {t, n}, ctx))
    return std::nullopt;
  DequantLinearOperands ops;
  ops.x = op.getDpsInputs()[0];
  ops.qweight = op.getDpsInputs()[1];
  ops.scales = op.getDpsInputs()[2];
  ops.out = op.getDpsInits()[0];
  ops.bits = 32 / perWord;
  ops.groupSize = group;
  ops.zeroForm = DequantZeros::Symmetric;
  Type f32 = Float32Type::get(ctx), i32 = IntegerType::get(ctx, 32);
  if (inputs == 4) {
    ops.zeros = op.getDpsInputs()[3];
    auto zType = dyn_cast<MemRefType>(ops.zeros.getType());
    if (maps[3] == maps[2] && zType && isScaleType(zType.getElementType())) {
      ops.zeroForm = DequantZeros::Float;
    } else if (maps[3] ==
               AffineMap::get(3, 0, {k.floorDiv(group), n.floorDiv(perWord)},
                              ctx)) {
      ops.zeroForm = DequantZeros::Packed;
      if (!isRank2UnitStride(ops.zeros, i32))
        return std::nullopt;
    } else {
      return std::nullopt;
    }
    if (!isRank2UnitStride(ops.zeros, zType.getElementType()))
      return std::nullopt;
  }
  auto sType = dyn_cast<MemRefType>(ops.scales.getType());
  if (!isRank2UnitStride(ops.x, f32) || !isRank2UnitStride(ops.qweight, i32) ||
      !sType || !isScaleType(sType.getElementType()) ||
      !isRank2UnitStride(ops.scales, sType.getElementType()) ||
      !isRank2UnitStride(ops.out, f32))
    return std::nullopt;
  if (!matchBody(op.getRegion().front(), perWord, ops.bits, ops.zeroForm))
    return std::nullopt;
  return ops;
}

namespace {

/// Column vectors per chunk of the one-token path: 64 x 16 lanes keep 4 KiB
/// of accumulators in L1 and read 4 KiB of each packed row in one run.
constexpr int64_t kRowChunk = 64;

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
    auto isBF16 = [](Value v) {
      return v && cast<MemRefType>(v.getType()).getElementType().isBF16();
    };
    // At the kernel's entry: an alloca inside a loop would grow the stack
    // on every iteration.
    if (isBF16(ops.scales) || isBF16(ops.zeros))
      staging = memref::AllocaOp::create(
          b, loc, MemRefType::get({width}, b.getBF16Type()));
    codeMask = splat((int64_t(1) << ops.bits) - 1);
    c0 = constant(0);
    tokens = memref::DimOp::create(b, loc, ops.x, 0);
    depth = memref::DimOp::create(b, loc, ops.x, 1);
    groups = arith::CeilDivUIOp::create(b, loc, depth, constant(ops.groupSize));
  }

  /// Columns [colBegin, colEnd): blocks of `colBlock` full vectors, then
  /// single vectors masked to what is left; within each, blocks of
  /// `tokenBlock` tokens, then single tokens.
  /// Columns [colBegin, colEnd), groups [groupBegin, groupEnd): one token
  /// streams the packed rows (emitRows), more go through register blocks
  /// (emitBlocks).
  void emit(Value colBegin, Value colEnd, Value groupBegin, Value groupEnd,
            int64_t colBlock, int64_t tokenBlock) {
    firstGroup = groupBegin;
    endGroup = groupEnd;
    Value one = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, tokens,
                                      constant(1));
    scf::IfOp::create(
        b, loc, one,
        [&](OpBuilder &nb, Location) {
          OpBuilder::InsertionGuard guard(b);
          b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
          emitRows(colBegin, colEnd);
          scf::YieldOp::create(b, loc);
        },
        [&](OpBuilder &nb, Location) {
          OpBuilder::InsertionGuard guard(b);
          b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
          emitBlocks(colBegin, colEnd, colBlock, tokenBlock);
          scf::YieldOp::create(b, loc);
        });
  }

private:
  /// One token (a decode step) is bound by reading the packed words.
  /// Walking down K in a block of a few columns, as emitBlocks does, reads
  /// 64-128 bytes of each packed row and then jumps a whole row ahead,
  /// which the hardware prefetchers do not follow. Here the columns are
  /// taken in chunks of up to kRowChunk vectors whose accumulators live in
  /// a stack buffer (in L1); for each group, each column vector takes its
  /// group's few packed rows side by side, from left to right. The
  /// dispatcher gives each thread whole rows of a range of groups
  /// (qc_rt_parallel_dequant_linear) rather than a slice of every row.
  ///
  /// Per code, forming s * (f32(code) - z) costs a shift, a mask, a
  /// conversion, a subtraction and a multiplication before the FMA, which
  /// made the kernel compute-bound at a third of memory speed. Here the
  /// affine form is taken out of the group's sum, as llama.cpp's Q4_1 dot
  /// product does:
  ///   sum_k x_k s (q_k - z) = s (sum_k x_k q_k - z sum_k x_k),
  /// and the shift is taken off the codes: code j of a word is masked in
  /// place, (q & (m << j b)) = q_j 2^(j b), converted exactly (below 2^31
  /// except for the top code, which is shifted down instead), and
  /// multiplied by x_k 2^(-j b), prescaled once per call in a stack buffer
  /// (a power-of-two scaling, exact unless |x_k| is below 2^-98). A code is
  /// then a mask, a conversion and an FMA with a broadcast operand. The
  /// products are those of the reference; the sums differ from it in
  /// order and by the group factoring (rounding only: the kernel tests
  /// bound it against float64).
  void emitRows(Value colBegin, Value colEnd) {
    int64_t chunk = kRowChunk * width;
    Value acc = memref::AllocaOp::create(
        b, loc, MemRefType::get({chunk}, b.getF32Type()));
    Value groupV = constant(ops.groupSize), perWordV = constant(perWord);
    Type f32 = b.getF32Type();
    // The prescaled activations of this call's groups, K-ordered from
    // kFirst: xs[k - kFirst] = x[0, k] 2^(-(k % c) b).
    Value kFirst = arith::MinUIOp::create(
        b, loc, arith::MulIOp::create(b, loc, firstGroup, groupV), depth);
    Value kLast = arith::MinUIOp::create(
        b, loc, arith::MulIOp::create(b, loc, endGroup, groupV), depth);
    Value kSpan = arith::SubIOp::create(b, loc, kLast, kFirst);
    Value xs = memref::AllocaOp::create(
        b, loc, MemRefType::get({ShapedType::kDynamic}, f32),
        ValueRange{kSpan});
    loop(kFirst, kLast, 1, [&](Value k) {
      // The top code is shifted down, not masked in place: scale 1.
      Value slot = arith::RemUIOp::create(b, loc, k, perWordV);
      Value top = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, slot,
                                        constant(perWord - 1));
      slot = arith::SelectOp::create(b, loc, top, c0, slot);
      // 2^(-slot b) from its exponent bits: (127 - slot b) << 23.
      Value expo = arith::SubIOp::create(
          b, loc, constant(127),
          arith::MulIOp::create(b, loc, slot, constant(ops.bits)));
      Value pow = arith::BitcastOp::create(
          b, loc, f32,
          arith::ShLIOp::create(
              b, loc, arith::IndexCastOp::create(b, loc, b.getI32Type(), expo),
              arith::ConstantOp::create(b, loc, b.getI32IntegerAttr(23))));
      Value xk = memref::LoadOp::create(b, loc, ops.x, ValueRange{c0, k});
      memref::StoreOp::create(
          b, loc, arith::MulFOp::create(b, loc, xk, pow), xs,
          ValueRange{arith::SubIOp::create(b, loc, k, kFirst)});
    });
    // sum_k x_k of each of this call's groups, once for all column chunks.
    Value groupSums = memref::AllocaOp::create(
        b, loc, MemRefType::get({ShapedType::kDynamic}, f32),
        ValueRange{arith::SubIOp::create(b, loc, endGroup, firstGroup)});
    Value zeroF = arith::ConstantOp::create(b, loc, b.getF32FloatAttr(0));
    loop(firstGroup, endGroup, 1, [&](Value g) {
      Value kBegin = arith::MulIOp::create(b, loc, g, groupV);
      Value kEnd = arith::MinUIOp::create(
          b, loc, arith::AddIOp::create(b, loc, kBegin, groupV), depth);
      Value sum =
          accLoop(kBegin, kEnd, zeroF, [&](Value k, ValueRange carried) {
            return SmallVector<Value>{arith::AddFOp::create(
                b, loc, carried[0],
                memref::LoadOp::create(b, loc, ops.x, ValueRange{c0, k}))};
          })[0];
      memref::StoreOp::create(
          b, loc, sum, groupSums,
          ValueRange{arith::SubIOp::create(b, loc, g, firstGroup)});
    });
    // The next group's packed rows are prefetched a group ahead of their
    // use (at most 16 rows: a group as wide as K has no next group).
    Value lastRow = arith::SubIOp::create(
        b, loc, memref::DimOp::create(b, loc, ops.qweight, 0), constant(1));
    int64_t rowsPerGroup = std::min<int64_t>(ops.groupSize / perWord, 16);
    // Code j of a word in place: masked (j < c - 1) or shifted down (the
    // top code, whose in-place value may not fit a signed 32-bit integer).
    SmallVector<Value> inPlace;
    int64_t mask = (int64_t(1) << ops.bits) - 1;
    for (int64_t j = 0; j < perWord; ++j)
      inPlace.push_back(j + 1 < perWord
                            ? splat(static_cast<int32_t>(static_cast<uint32_t>(
                                  mask << (j * ops.bits))))
                            : splat(j * ops.bits));
    loop(colBegin, colEnd, chunk, [&](Value first) {
      Value span = arith::SubIOp::create(
          b, loc, arith::MinUIOp::create(b, loc, plus(first, chunk), colEnd),
          first);
      // Lanes of the buffer past `span` see masked (zero) weights and are
      // never stored.
      overVectors(span, [&](Value off, Value) {
        vector::StoreOp::create(b, loc, zero, acc, ValueRange{off});
      });
      loop(firstGroup, endGroup, 1, [&](Value g) {
        Value kBegin = arith::MulIOp::create(b, loc, g, groupV);
        Value kEnd = arith::MinUIOp::create(
            b, loc, arith::AddIOp::create(b, loc, kBegin, groupV), depth);
        Value wordBegin = arith::DivUIOp::create(b, loc, kBegin, perWordV);
        Value wordEnd = arith::DivUIOp::create(b, loc, kEnd, perWordV);
        Value kWhole = arith::MulIOp::create(b, loc, wordEnd, perWordV);
        Value partialCodes = arith::SubIOp::create(
            b, loc, arith::MaxUIOp::create(b, loc, kEnd, kWhole), kWhole);
        Value sumV = vector::BroadcastOp::create(
            b, loc, vecType,
            memref::LoadOp::create(
                b, loc, groupSums,
                ValueRange{arith::SubIOp::create(b, loc, g, firstGroup)}));
        overVectors(span, [&](Value off, Value mask) {
          Value col = arith::AddIOp::create(b, loc, first, off);
          // Short runs of many rows (a few KB each) are what the hardware
          // prefetchers follow worst: the next group's rows at these
          // columns are requested while this group's are used.
          for (int64_t r = 0; r < rowsPerGroup; ++r)
            memref::PrefetchOp::create(
                b, loc, ops.qweight,
                ValueRange{
                    arith::MinUIOp::create(b, loc, plus(wordEnd, r), lastRow),
                    col},
                /*isWrite=*/false, /*localityHint=*/3, /*isDataCache=*/true);
          // dot = sum_k x_k q_k over the whole words...
          Value dot = accLoop(
              wordBegin, wordEnd, zero, [&](Value w, ValueRange carried) {
                Value q = load(wordType, ops.qweight, w, col, mask, zeroWords);
                Value base = arith::SubIOp::create(
                    b, loc, arith::MulIOp::create(b, loc, w, perWordV), kFirst);
                Value d = carried[0];
                for (int64_t j = 0; j < perWord; ++j) {
                  Value code =
                      j + 1 < perWord
                          ? arith::AndIOp::create(b, loc, q, inPlace[j])
                                .getResult()
                          : arith::ShRUIOp::create(b, loc, q, inPlace[j])
                                .getResult();
                  Value xj = vector::BroadcastOp::create(
                      b, loc, vecType,
                      memref::LoadOp::create(b, loc, xs,
                                             ValueRange{plus(base, j)}));
                  d = vector::FMAOp::create(
                      b, loc, xj,
                      arith::SIToFPOp::create(b, loc, vecType, code), d);
                }
                return SmallVector<Value>{d};
              })[0];
          // ... and the codes of a last, partial word, one at a time (its
          // word is loaded only when there is one: it is past the end of
          // qweight otherwise).
          dot =
              accLoop(c0, partialCodes, dot, [&](Value j, ValueRange carried) {
                Value shift = vector::BroadcastOp::create(
                    b, loc, wordType,
                    arith::IndexCastOp::create(
                        b, loc, b.getI32Type(),
                        arith::MulIOp::create(b, loc, j, constant(ops.bits))));
                Value q =
                    load(wordType, ops.qweight, wordEnd, col, mask, zeroWords);
                Value code = arith::AndIOp::create(
                    b, loc, arith::ShRUIOp::create(b, loc, q, shift), codeMask);
                Value xj = vector::BroadcastOp::create(
                    b, loc, vecType,
                    memref::LoadOp::create(
                        b, loc, ops.x,
                        ValueRange{c0,
                                   arith::AddIOp::create(b, loc, kWhole, j)}));
                return SmallVector<Value>{vector::FMAOp::create(
                    b, loc, xj, arith::UIToFPOp::create(b, loc, vecType, code),
                    carried[0])};
              })[0];
          // a += s (dot - z sum_k x_k)
          Value s = widened(ops.scales, g, col, mask);
          Value z = zeroPoints(g, col, mask);
          Value centred = vector::FMAOp::create(
              b, loc, arith::NegFOp::create(b, loc, z), sumV, dot);
          Value a =
              vector::LoadOp::create(b, loc, vecType, acc, ValueRange{off});
          vector::StoreOp::create(b, loc,
                                  vector::FMAOp::create(b, loc, s, centred, a),
                                  acc, ValueRange{off});
        });
      });
      overVectors(span, [&](Value off, Value mask) {
        Value col = arith::AddIOp::create(b, loc, first, off);
        Value old = load(vecType, ops.out, c0, col, mask, zero);
        store(arith::AddFOp::create(b, loc, old,
                                    vector::LoadOp::create(b, loc, vecType, acc,
                                                           ValueRange{off})),
              c0, col, mask);
      });
    });
  }

  /// `body(offset, mask)` for the vectors covering [0, span): whole ones
  /// unmasked, then one masked to what is left.
  void overVectors(Value span, function_ref<void(Value, Value)> body) {
    Value whole = arith::SubIOp::create(
        b, loc, span, arith::RemUIOp::create(b, loc, span, constant(width)));
    loop(c0, whole, width, [&](Value off) { body(off, Value()); });
    Value some =
        arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult, whole, span);
    scf::IfOp::create(b, loc, some, [&](OpBuilder &nb, Location) {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
      Value left = arith::SubIOp::create(b, loc, span, whole);
      body(whole, vector::CreateMaskOp::create(b, loc, maskType, left));
      scf::YieldOp::create(b, loc);
    });
  }

  /// The dequantized weights s * (f32((q >> shift) & mask) - z), with the
  /// reference's operations in its order.
  Value weight(Value q, Value shift, Value s, Value z) {
    Value bitsOf = arith::AndIOp::create(
        b, loc, arith::ShRUIOp::create(b, loc, q, shift), codeMask);
    Value f = arith::UIToFPOp::create(b, loc, vecType, bitsOf);
    return arith::MulFOp::create(b, loc, s,
                                 arith::SubFOp::create(b, loc, f, z));
  }

  void store(Value v, Value row, Value col, Value mask) {
    if (mask)
      vector::MaskedStoreOp::create(b, loc, ops.out, ValueRange{row, col}, mask,
                                    v);
    else
      vector::StoreOp::create(b, loc, v, ops.out, ValueRange{row, col});
  }

  /// Several tokens: blocks of `colBlock` full vectors, then single vectors
  /// masked to what is left; within each, blocks of `tokenBlock` tokens,
  /// then single tokens.
  void emitBlocks(Value colBegin, Value colEnd, int64_t colBlock,
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

  /// base[row, col:col + width] (masked) as f32: f16 and bf16 are widened.
  Value widened(Value base, Value row, Value col, Value mask) {
    Type element = cast<MemRefType>(base.getType()).getElementType();
    if (element.isF32())
      return load(vecType, base, row, col, mask, zero);
    auto type = VectorType::get({width}, element);
    Value passthru =
        mask ? arith::ConstantOp::create(b, loc, b.getZeroAttr(type)) : Value();
    if (!element.isBF16())
      return arith::ExtFOp::create(b, loc, vecType,
                                   load(type, base, row, col, mask, passthru));
    // LLVM scalarizes a masked load of bfloat lanes on hosts without
    // AVX-512 BF16 and converts every lane through a soft-float library
    // call. The lanes of a masked bf16 vector are instead copied one by one
    // into a zeroed stack vector and loaded from there.
    Value v;
    if (mask) {
      Value lanes = mask.getDefiningOp<vector::CreateMaskOp>().getOperand(0);
      vector::StoreOp::create(b, loc, passthru, staging, ValueRange{c0});
      loop(c0, lanes, 1, [&](Value i) {
        Value lane = memref::LoadOp::create(
            b, loc, base,
            ValueRange{row, arith::AddIOp::create(b, loc, col, i)});
        memref::StoreOp::create(b, loc, lane, staging, ValueRange{i});
      });
      v = vector::LoadOp::create(b, loc, type, staging, ValueRange{c0});
    } else {
      v = load(type, base, row, col, Value(), Value());
    }
    // bf16 is the high half of an f32: widened with integer operations
    // (a vector fpext from bfloat has the same library-call problem).
    auto halfType = VectorType::get({width}, b.getI16Type());
    Value bits = arith::ExtUIOp::create(
        b, loc, wordType, vector::BitCastOp::create(b, loc, halfType, v));
    return arith::BitcastOp::create(
        b, loc, vecType, arith::ShLIOp::create(b, loc, bits, splat(16)));
  }

  /// The zero points of group `g` for columns [col, col + width) (masked),
  /// computed as the reference does: the constant 2^(b - 1), the stored
  /// float widened, or code n of the group's GPTQ v1 stream plus one,
  /// masked to b bits. A packed vector's codes come from the words n / c
  /// of its lanes (once per group and column vector).
  Value zeroPoints(Value g, Value col, Value mask) {
    switch (ops.zeroForm) {
    case DequantZeros::Symmetric:
      return arith::ConstantOp::create(
          b, loc,
          DenseElementsAttr::get(vecType,
                                 ArrayRef<Attribute>{b.getF32FloatAttr(
                                     float(int64_t(1) << (ops.bits - 1)))}));
    case DequantZeros::Float:
      return widened(ops.zeros, g, col, mask);
    case DequantZeros::Packed:
      break;
    }
    // The codes of columns [col, col + width) lie in width / c consecutive
    // words when col is a multiple of c (the dispatcher's chunks are
    // multiples of 64 columns, so this is the common case): one short load
    // and a lane shuffle instead of a gather, whose 16 loads cost as much
    // as the rest of a group's work at g32.
    if (width % perWord == 0) {
      Value aligned = arith::CmpIOp::create(
          b, loc, arith::CmpIPredicate::eq,
          arith::RemUIOp::create(b, loc, col, constant(perWord)), c0);
      auto ifOp = scf::IfOp::create(
          b, loc, aligned,
          [&](OpBuilder &nb, Location) {
            OpBuilder::InsertionGuard guard(b);
            b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
            scf::YieldOp::create(b, loc, packedZeroPointsAligned(g, col, mask));
          },
          [&](OpBuilder &nb, Location) {
            OpBuilder::InsertionGuard guard(b);
            b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
            scf::YieldOp::create(b, loc,
                                 packedZeroPointsGathered(g, col, mask));
          });
      return ifOp.getResult(0);
    }
    return packedZeroPointsGathered(g, col, mask);
  }

  /// zeroPoints' packed codes for a vector whose first column is a
  /// multiple of c: words (col / c) + [0, width / c), lane i taking word
  /// i / c's code i % c.
  Value packedZeroPointsAligned(Value g, Value col, Value mask) {
    int64_t words = width / perWord;
    auto shortType = VectorType::get({words}, b.getI32Type());
    Value first = arith::DivUIOp::create(b, loc, col, constant(perWord));
    Value loaded;
    if (mask) {
      // The words that hold a lane below the mask's bound.
      Value lanes = mask.getDefiningOp<vector::CreateMaskOp>().getOperand(0);
      Value needed =
          arith::CeilDivUIOp::create(b, loc, lanes, constant(perWord));
      Value wordMask = vector::CreateMaskOp::create(
          b, loc, VectorType::get({words}, b.getI1Type()), needed);
      loaded = vector::MaskedLoadOp::create(
          b, loc, shortType, ops.zeros, ValueRange{g, first}, wordMask,
          arith::ConstantOp::create(b, loc, b.getZeroAttr(shortType)));
    } else {
      loaded = vector::LoadOp::create(b, loc, shortType, ops.zeros,
                                      ValueRange{g, first});
    }
    SmallVector<int64_t> spread;
    SmallVector<Attribute> shifts;
    for (int64_t i = 0; i < width; ++i) {
      spread.push_back(i / perWord);
      shifts.push_back(b.getI32IntegerAttr((i % perWord) * ops.bits));
    }
    Value wide = vector::ShuffleOp::create(b, loc, loaded, loaded, spread);
    return gptqV1ZeroPoints(
        wide, arith::ConstantOp::create(
                  b, loc, DenseElementsAttr::get(wordType, shifts)));
  }

  /// zeroPoints' packed codes at any column: a gather of each lane's word.
  Value packedZeroPointsGathered(Value g, Value col, Value mask) {
    // Lane i's column col + i, as i32: 32-bit gather indices (N < 2^31).
    Value lanes = arith::AddIOp::create(
        b, loc,
        vector::BroadcastOp::create(
            b, loc, wordType,
            arith::IndexCastOp::create(b, loc, b.getI32Type(), col)),
        arith::ConstantOp::create(
            b, loc,
            DenseElementsAttr::get(
                wordType,
                llvm::to_vector(llvm::map_range(llvm::seq<int64_t>(0, width),
                                                [&](int64_t i) -> Attribute {
                                                  return b.getI32IntegerAttr(i);
                                                })))));
    Value words = arith::DivUIOp::create(b, loc, lanes, splat(perWord));
    Value shifts = arith::MulIOp::create(
        b, loc, arith::RemUIOp::create(b, loc, lanes, splat(perWord)),
        splat(ops.bits));
    Value all = mask ? mask
                     : arith::ConstantOp::create(
                           b, loc, DenseElementsAttr::get(maskType, true));
    Value gathered = vector::GatherOp::create(
        b, loc, wordType, ops.zeros, ValueRange{g, c0}, words, all, zeroWords);
    return gptqV1ZeroPoints(gathered, shifts);
  }

  /// The zero points of GPTQ v1 zero words, one per lane, whose lane's code
  /// starts at bit `shifts`: ((word >> shift) + 1) masked to b bits, as f32.
  Value gptqV1ZeroPoints(Value words, Value shifts) {
    Value stored = arith::ShRUIOp::create(b, loc, words, shifts);
    Value code = arith::AndIOp::create(
        b, loc, arith::AddIOp::create(b, loc, stored, splat(1)), codeMask);
    return arith::UIToFPOp::create(b, loc, vecType, code);
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
      Value w = weight(words[c], shift, s[c], z[c]);
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
        accLoop(firstGroup, endGroup, init, [&](Value g, ValueRange carried) {
          SmallVector<Value> s, z;
          for (Value col : cols) {
            s.push_back(widened(ops.scales, g, col, mask));
            z.push_back(zeroPoints(g, col, mask));
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
        store(arith::AddFOp::create(b, loc, old, acc[i * cb + c]), row, cols[c],
              mask);
      }
  }

  OpBuilder &b;
  Location loc;
  DequantLinearOperands ops;
  int64_t width, perWord;
  VectorType vecType, wordType, maskType;
  Value zero, zeroWords, codeMask, c0, tokens, depth, groups, firstGroup,
      endGroup;
  /// width bf16 lanes (masked bf16 loads, widened()); null without bf16.
  Value staging;
};

} // namespace

void mlir::qc::detail::emitDequantKernel(OpBuilder &b, Location loc,
                                         const DequantLinearOperands &ops,
                                         Value colBegin, Value colEnd,
                                         Value groupBegin, Value groupEnd,
                                         int64_t width, int64_t colBlock,
                                         int64_t tokenBlock) {
  DequantEmitter(b, loc, ops, width)
      .emit(colBegin, colEnd, groupBegin, groupEnd, colBlock, tokenBlock);
}
