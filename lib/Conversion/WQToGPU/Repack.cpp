//===- Repack.cpp - gptq <-> mma16x64 repacking of constant weights -------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// wq-repack-mma16x64 rewrites 4-bit `wq.linear` / `wq.dequantize` ops in the
// GPTQ v1 layout into the GPU kernels' mma16x64 layout; wq-repack-gptq is
// the inverse (for tests and for the CPU path). Both go through codes,
// scales and zero points as plain arrays and the runtime's tested
// packMMA16x64 / unpackMMA16x64 (runtime/include/qc/runtime/KernelLayout.h),
// so a round trip is bit exact.
//
// Scope: packed operands must be `arith.constant`s (small models and tests);
// parameters held in a safetensors overlay are reported, not repacked.
//
//===----------------------------------------------------------------------===//

#include "qc/Conversion/Passes.h"
#include "qc/Conversion/WQToGPU/WQToGPU.h"
#include "qc/Quantization/Algorithms/Packing.h"

#include "WQ/IR/WQOps.h"
#include "qc/runtime/KernelLayout.h"

#include "mlir/IR/PatternMatch.h"
#include "llvm/Support/Endian.h"

namespace mlir::qc {
#define GEN_PASS_DEF_WQREPACKMMA16X64PASS
#define GEN_PASS_DEF_WQREPACKGPTQPASS
#include "qc/Conversion/Passes.h.inc"
} // namespace mlir::qc

using namespace mlir;
using namespace mlir::qc;

void mlir::qc::unpackGPTQCodes4(int64_t n, int64_t k, const int32_t *qweight,
                                std::vector<uint8_t> &codes) {
  codes.assign(n * k, 0);
  for (int64_t col = 0; col < n; ++col)
    ::qc::quant::unpackCodeStream(qweight + col, n, k, 4,
                                  codes.data() + col * k, 1);
}

void mlir::qc::unpackGPTQZerosV1(int64_t n, int64_t groups,
                                 const int32_t *qzeros,
                                 std::vector<float> &zeros) {
  int64_t words = ::qc::quant::packedWordCount(n, 4);
  std::vector<uint8_t> stored(n);
  zeros.clear();
  for (int64_t g = 0; g < groups; ++g) {
    ::qc::quant::unpackCodeStream(qzeros + g * words, 1, n, 4, stored.data(),
                                  1);
    for (int64_t i = 0; i < n; ++i)
      zeros.push_back(float((stored[i] + 1) & 15));
  }
}

namespace {

/// The elements of a constant integer tensor operand, or failure.
FailureOr<std::vector<int32_t>> constInts(Value v) {
  DenseIntElementsAttr attr;
  if (!v || !matchPattern(v, m_Constant(&attr)))
    return failure();
  std::vector<int32_t> out;
  out.reserve(attr.getNumElements());
  for (const APInt &x : attr.getValues<APInt>())
    out.push_back((int32_t)x.getSExtValue());
  return out;
}

/// The elements of a constant f16 tensor operand as floats, or failure.
FailureOr<std::vector<float>> constF16(Value v) {
  DenseFPElementsAttr attr;
  if (!v || !matchPattern(v, m_Constant(&attr)) ||
      !attr.getElementType().isF16())
    return failure();
  std::vector<float> out;
  for (const APFloat &x : attr.getValues<APFloat>())
    out.push_back(x.convertToFloat());
  return out;
}

Value intConst(OpBuilder &b, Location loc, ArrayRef<int64_t> shape,
               ArrayRef<int32_t> data) {
  auto type = RankedTensorType::get(shape, b.getI32Type());
  return arith::ConstantOp::create(b, loc,
                                   DenseIntElementsAttr::get(type, data));
}

Value f16Const(OpBuilder &b, Location loc, ArrayRef<int64_t> shape,
               ArrayRef<uint16_t> bits) {
  auto type = RankedTensorType::get(shape, b.getF16Type());
  SmallVector<APFloat> vals;
  for (uint16_t h : bits)
    vals.push_back(APFloat(APFloat::IEEEhalf(), APInt(16, h)));
  return arith::ConstantOp::create(b, loc,
                                   DenseFPElementsAttr::get(type, vals));
}

/// Rebuilds `op` (wq.linear or wq.dequantize) with new packed operands,
/// layout and zero dtype.
template <typename OpT>
void replaceWith(OpT op, Value qweight, Value scales, Value zeros,
                 wq::Layout layout, Type zeroDtype) {
  OpBuilder b(op);
  OperationState state(op.getLoc(), op->getName());
  SmallVector<Value> operands;
  if constexpr (std::is_same_v<OpT, wq::LinearOp>)
    operands.push_back(op.getX());
  operands.append({qweight, scales});
  if (zeros)
    operands.push_back(zeros);
  int32_t hasBias = 0;
  if constexpr (std::is_same_v<OpT, wq::LinearOp>)
    if (Value bias = op.getBias()) {
      operands.push_back(bias);
      hasBias = 1;
    }
  state.addOperands(operands);
  state.addTypes(op->getResultTypes());
  state.addAttributes(op->getAttrs());
  state.attributes.set("layout", wq::LayoutAttr::get(op.getContext(), layout));
  if (zeroDtype)
    state.attributes.set("zero_dtype", TypeAttr::get(zeroDtype));
  else
    state.attributes.erase("zero_dtype");
  // Segment sizes: [x,] qweight, scales, zeros, g_idx, [bias].
  SmallVector<int32_t> segments;
  if constexpr (std::is_same_v<OpT, wq::LinearOp>)
    segments = {1, 1, 1, zeros ? 1 : 0, 0, hasBias};
  else
    segments = {1, 1, zeros ? 1 : 0, 0};
  state.attributes.set("operandSegmentSizes", b.getDenseI32ArrayAttr(segments));
  Operation *newOp = b.create(state);
  op->replaceAllUsesWith(newOp->getResults());
  op->erase();
}

/// gptq (v1, 4-bit, constants) -> mma16x64.
template <typename OpT> LogicalResult toMMA(OpT op) {
  if (op.getLayout() != wq::Layout::gptq)
    return success();
  if (op.getBits() != 4 || op.getCodebook() || op.getGIdx() ||
      !op.getScaleDtype().isF16())
    return op.emitOpError("wq-repack-mma16x64: only 4-bit gptq layers with "
                          "f16 scales and without g_idx or codebook can be "
                          "repacked");
  int64_t n = op.getOutFeatures(), k = op.getInFeatures();
  int64_t groups = wq::getNumGroups(k, op.getGroupSize());
  auto qw = constInts(op.getQweight());
  auto sc = constF16(op.getScales());
  if (failed(qw) || failed(sc) ||
      (op.getZeros() && failed(constInts(op.getZeros())) &&
       failed(constF16(op.getZeros()))))
    return op.emitOpError("wq-repack-mma16x64: packed operands must be "
                          "arith.constant tensors (parameters in an overlay "
                          "file are not repacked yet)");
  std::vector<uint8_t> codes;
  unpackGPTQCodes4(n, k, qw->data(), codes);
  std::vector<float> zeros;
  if (Value z = op.getZeros()) {
    if (auto zi = constInts(z); succeeded(zi)) {
      unpackGPTQZerosV1(n, groups, zi->data(), zeros);
    } else {
      zeros = *constF16(z);
    }
  }
  ::qc::MMA16x64Tensors t;
  ::qc::Status s =
      ::qc::packMMA16x64(4, n, k, op.getGroupSize(), op.getSym(), codes.data(),
                         sc->data(), zeros.empty() ? nullptr : zeros.data(), t);
  if (!s)
    return op.emitOpError("wq-repack-mma16x64: ") << s.message();
  OpBuilder b(op);
  Location loc = op.getLoc();
  Value qwv = intConst(b, loc, {(int64_t)t.qweight.size()}, t.qweight);
  Value scv = f16Const(b, loc, {t.numGroups, t.Np}, t.scales);
  Value zv = t.sym ? Value() : f16Const(b, loc, {t.numGroups, t.Np}, t.zeros);
  replaceWith(op, qwv, scv, zv, wq::Layout::mma16x64,
              t.sym ? Type() : b.getF16Type());
  return success();
}

/// mma16x64 (constants) -> gptq v1 with i32 or f16 zeros.
template <typename OpT> LogicalResult toGPTQ(OpT op, bool floatZeros) {
  if (op.getLayout() != wq::Layout::mma16x64)
    return success();
  int64_t n = op.getOutFeatures(), k = op.getInFeatures();
  auto qw = constInts(op.getQweight());
  auto sc = constF16(op.getScales());
  auto zf = op.getZeros() ? constF16(op.getZeros())
                          : FailureOr<std::vector<float>>(std::vector<float>());
  if (failed(qw) || failed(sc) || failed(zf))
    return op.emitOpError("wq-repack-gptq: packed operands must be "
                          "arith.constant tensors");
  ::qc::MMA16x64Tensors t;
  ::qc::Status s =
      ::qc::mma16x64Dims(4, n, k, op.getGroupSize(), t.Np, t.Kp, t.numGroups);
  if (!s)
    return op.emitOpError("wq-repack-gptq: ") << s.message();
  t.bits = 4;
  t.N = n;
  t.K = k;
  t.groupSize = op.getGroupSize();
  t.sym = op.getSym();
  t.qweight = *qw;
  auto halves = [](ArrayRef<float> v) {
    std::vector<uint16_t> out;
    for (float f : v) {
      bool lost;
      APFloat h(f);
      h.convert(APFloat::IEEEhalf(), APFloat::rmNearestTiesToEven, &lost);
      out.push_back((uint16_t)h.bitcastToAPInt().getZExtValue());
    }
    return out;
  };
  t.scales = halves(*sc);
  t.zeros = halves(*zf);
  std::vector<uint8_t> codes;
  std::vector<float> scales, zeros;
  if (::qc::Status u = ::qc::unpackMMA16x64(t, codes, scales, zeros); !u)
    return op.emitOpError("wq-repack-gptq: ") << u.message();

  int64_t groups = t.numGroups, words = ::qc::quant::packedWordCount(k, 4);
  std::vector<int32_t> qwOut(words * n);
  for (int64_t col = 0; col < n; ++col)
    ::qc::quant::packCodeStream(codes.data() + col * k, 1, k, 4,
                                qwOut.data() + col, n);
  OpBuilder b(op);
  Location loc = op.getLoc();
  std::vector<uint16_t> scOut = halves(scales);
  Value zv;
  Type zt;
  if (!t.sym) {
    if (floatZeros) {
      zv = f16Const(b, loc, {groups, n}, halves(zeros));
      zt = b.getF16Type();
    } else {
      int64_t zw = ::qc::quant::packedWordCount(n, 4);
      std::vector<int32_t> qz(groups * zw);
      std::vector<uint8_t> stored(n);
      for (int64_t g = 0; g < groups; ++g) {
        for (int64_t i = 0; i < n; ++i) {
          int z = (int)zeros[g * n + i];
          if (z == 0)
            return op.emitOpError("wq-repack-gptq: zero point 0 (group ")
                   << g << ", row " << i
                   << ") cannot be stored in GPTQ v1 integer zeros; use "
                      "zero-dtype=f16";
          stored[i] = (uint8_t)(z - 1);
        }
        ::qc::quant::packCodeStream(stored.data(), 1, n, 4, qz.data() + g * zw,
                                    1);
      }
      zv = intConst(b, loc, {groups, zw}, qz);
      zt = b.getI32Type();
    }
  }
  replaceWith(op, intConst(b, loc, {words, n}, qwOut),
              f16Const(b, loc, {groups, n}, scOut), zv, wq::Layout::gptq, zt);
  return success();
}

struct WQRepackMMA16x64Pass
    : mlir::qc::impl::WQRepackMMA16x64PassBase<WQRepackMMA16x64Pass> {
  void runOnOperation() override {
    SmallVector<Operation *> ops;
    getOperation()->walk([&](Operation *op) {
      if (isa<wq::LinearOp, wq::DequantizeOp>(op))
        ops.push_back(op);
    });
    for (Operation *op : ops) {
      LogicalResult r = isa<wq::LinearOp>(op)
                            ? toMMA(cast<wq::LinearOp>(op))
                            : toMMA(cast<wq::DequantizeOp>(op));
      if (failed(r))
        return signalPassFailure();
    }
  }
};

struct WQRepackGPTQPass
    : mlir::qc::impl::WQRepackGPTQPassBase<WQRepackGPTQPass> {
  using Base::Base;
  void runOnOperation() override {
    SmallVector<Operation *> ops;
    getOperation()->walk([&](Operation *op) {
      if (isa<wq::LinearOp, wq::DequantizeOp>(op))
        ops.push_back(op);
    });
    // The option parser admits only i32 and f16.
    bool f16 = zeroDtype == RepackZeroDType::F16;
    for (Operation *op : ops) {
      LogicalResult r = isa<wq::LinearOp>(op)
                            ? toGPTQ(cast<wq::LinearOp>(op), f16)
                            : toGPTQ(cast<wq::DequantizeOp>(op), f16);
      if (failed(r))
        return signalPassFailure();
    }
  }
};

} // namespace
