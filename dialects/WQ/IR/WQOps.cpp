//===- WQOps.cpp - Verifiers of the `wq` operations -----------------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// The verifiers hold every invariant that ties the packed tensors to the
// quantization scheme: the shapes of qweight / scales / zeros / g_idx follow
// from (bits, group_size, in_features, out_features, layout), and the
// operand roles from (sym, codebook). ODS already checked the
// attribute-local rules (bits in {2, 3, 4, 8}, group_size -1 or positive,
// positive feature counts, the allowed scale/zero dtypes).
//
// Packed operands (weights, scales, zeros, g_idx, bias) must have exactly
// the expected static shape: they are model parameters, known when the op
// is built. Activations may have dynamic sizes, which are compatible with
// anything, as in the `llm` dialect.
//
//===----------------------------------------------------------------------===//

#include "WQ/IR/WQOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/IR/OpImplementation.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/MathExtras.h"

#include <cmath>

using namespace mlir;
using namespace mlir::qc::wq;

//===----------------------------------------------------------------------===//
// Shape rules
//===----------------------------------------------------------------------===//

int64_t mlir::qc::wq::getNumGroups(int64_t inFeatures, int64_t groupSize) {
  if (groupSize == -1)
    return 1;
  return llvm::divideCeil(inFeatures, groupSize);
}

int64_t mlir::qc::wq::getNumPackedWords(int64_t count, int64_t bits) {
  return llvm::divideCeil(count * bits, 32);
}

SmallVector<int64_t, 2> mlir::qc::wq::getQWeightShape(Layout layout,
                                                      int64_t bits,
                                                      int64_t inFeatures,
                                                      int64_t outFeatures) {
  int64_t words = getNumPackedWords(inFeatures, bits);
  switch (layout) {
  case Layout::gptq:
    return {words, outFeatures};
  case Layout::rows:
    return {outFeatures, words};
  case Layout::mma16x64:
    // alignTo returns uint64_t; the shape is int64_t (no overflow: the
    // verifier bounds the features far below 2^31).
    return {static_cast<int64_t>(llvm::alignTo(outFeatures, 16) *
                                 llvm::alignTo(inFeatures, 64) * bits / 32)};
  }
  llvm_unreachable("unknown wq layout");
}

SmallVector<int64_t, 2> mlir::qc::wq::getScalesShape(Layout layout,
                                                     int64_t numGroups,
                                                     int64_t outFeatures) {
  if (layout == Layout::mma16x64)
    return {numGroups, (int64_t)llvm::alignTo(outFeatures, 16)};
  return {numGroups, outFeatures};
}

SmallVector<int64_t, 2> mlir::qc::wq::getZerosShape(Layout layout,
                                                    Type zeroType, int64_t bits,
                                                    int64_t numGroups,
                                                    int64_t outFeatures) {
  if (layout == Layout::gptq && isa<IntegerType>(zeroType))
    return {numGroups, getNumPackedWords(outFeatures, bits)};
  if (layout == Layout::mma16x64)
    return {numGroups, (int64_t)llvm::alignTo(outFeatures, 16)};
  return {numGroups, outFeatures};
}

//===----------------------------------------------------------------------===//
// Helpers
//===----------------------------------------------------------------------===//

/// True when two dimension sizes can be equal at run time.
static bool dimsCompatible(int64_t a, int64_t b) {
  return ShapedType::isDynamic(a) || ShapedType::isDynamic(b) || a == b;
}

/// Prints a shape as `[a, b]` (dynamic sizes as `?`).
static std::string formatShape(ArrayRef<int64_t> shape) {
  std::string s = "[";
  llvm::raw_string_ostream os(s);
  llvm::interleaveComma(shape, os, [&](int64_t d) {
    if (ShapedType::isDynamic(d))
      os << "?";
    else
      os << d;
  });
  os << "]";
  return s;
}

/// The scheme attributes and packed operands both ops share, read once so
/// that one function verifies them.
struct PackedWeights {
  int64_t bits, groupSize, inFeatures, outFeatures, numGroups;
  bool sym;
  Layout layout;
  Type scaleDtype;
  std::optional<Type> zeroDtype;
  std::optional<ArrayRef<float>> codebook;
  RankedTensorType qweight, scales;
  RankedTensorType zeros, gIdx; // null when absent
};

template <typename OpT> static PackedWeights getPackedWeights(OpT op) {
  PackedWeights p;
  p.bits = op.getBits();
  p.groupSize = op.getGroupSize();
  p.inFeatures = op.getInFeatures();
  p.outFeatures = op.getOutFeatures();
  p.numGroups = op.getNumGroups();
  p.sym = op.getSym();
  p.layout = op.getLayout();
  p.scaleDtype = op.getScaleDtype();
  p.zeroDtype = op.getZeroDtype();
  p.codebook = op.getCodebook();
  p.qweight = op.getQweight().getType();
  p.scales = op.getScales().getType();
  if (Value zeros = op.getZeros())
    p.zeros = cast<RankedTensorType>(zeros.getType());
  if (Value gIdx = op.getGIdx())
    p.gIdx = cast<RankedTensorType>(gIdx.getType());
  return p;
}

/// Verifies the scheme against the packed operands. Checks run from the
/// attributes outwards (codebook, zero-point roles, layout preconditions),
/// then operand by operand, so the first error names the root cause.
static LogicalResult verifyPackedWeights(Operation *op,
                                         const PackedWeights &p) {
  StringRef layoutName = stringifyLayout(p.layout);
  int64_t k = p.inFeatures, n = p.outFeatures;

  // NF4-style codebook: code q dequantizes to codebook[q] * scale.
  if (p.codebook) {
    int64_t expected = int64_t(1) << p.bits;
    if (static_cast<int64_t>(p.codebook->size()) != expected)
      return op->emitOpError("codebook must have ")
             << expected << " entries (2^bits) for bits = " << p.bits
             << ", got " << p.codebook->size();
    if (p.bits != 4)
      return op->emitOpError("a codebook is only supported with bits = 4 "
                             "(NF4), got bits = ")
             << p.bits;
    for (auto [i, v] : llvm::enumerate(*p.codebook))
      if (!std::isfinite(v))
        return op->emitOpError("codebook entry ")
               << i << " must be finite, got " << v;
    if (!p.sym)
      return op->emitOpError(
          "a codebook is symmetric (absmax-scaled): sym must be true");
    if (p.zeros)
      return op->emitOpError("zeros must be absent with a codebook");
  } else if (p.sym && p.zeros) {
    return op->emitOpError("zeros must be absent with sym = true (the zero "
                           "point is 2^(bits-1) = ")
           << (int64_t(1) << (p.bits - 1)) << ")";
  } else if (!p.sym && !p.zeros) {
    return op->emitOpError("zeros are required with sym = false");
  }

  if (p.zeros && !p.zeroDtype)
    return op->emitOpError("zero_dtype is required when zeros are present");
  if (!p.zeros && p.zeroDtype)
    return op->emitOpError("zero_dtype ")
           << *p.zeroDtype << " must be absent when zeros are absent";

  // GPTQ's 3-bit scheme packs 32 codes into 3 words; AutoGPTQ sizes the
  // tensors as K / 32 * 3 rows (and N / 32 * 3 qzeros columns), so only
  // whole 32-code blocks are interchangeable.
  if (p.layout == Layout::gptq && p.bits == 3) {
    if (k % 32 != 0)
      return op->emitOpError("layout gptq with bits = 3 requires in_features "
                             "to be a multiple of 32, got ")
             << k;
    if (p.zeros && isa<IntegerType>(*p.zeroDtype) && n % 32 != 0)
      return op->emitOpError("layout gptq with bits = 3 and integer zeros "
                             "requires out_features to be a multiple of 32, "
                             "got ")
             << n;
  }

  // The GPU kernel layout: 4-bit codes, fp16 scales and zeros, groups in
  // k order (no act-order permutation), no codebook.
  if (p.layout == Layout::mma16x64) {
    if (p.bits != 4)
      return op->emitOpError("layout mma16x64 holds 4-bit codes, got bits = ")
             << p.bits;
    if (p.codebook)
      return op->emitOpError("layout mma16x64 does not support a codebook");
    if (p.gIdx)
      return op->emitOpError("layout mma16x64 has no g_idx (groups follow k; "
                             "reorder act-order weights before repacking)");
    if (!p.scaleDtype.isF16())
      return op->emitOpError("layout mma16x64 requires scale_dtype f16, got ")
             << p.scaleDtype;
    if (p.zeroDtype && !p.zeroDtype->isF16())
      return op->emitOpError("layout mma16x64 requires zero_dtype f16, got ")
             << *p.zeroDtype;
  }

  // qweight.
  SmallVector<int64_t, 2> qwShape = getQWeightShape(p.layout, p.bits, k, n);
  if (p.qweight.getShape() != ArrayRef<int64_t>(qwShape))
    return op->emitOpError("expected qweight of shape ")
           << formatShape(qwShape) << " for bits = " << p.bits << ", K = " << k
           << ", N = " << n << " in layout " << layoutName << ", got "
           << p.qweight;
  if (!p.qweight.getElementType().isInteger(32))
    return op->emitOpError("expected qweight of element type i32 in layout ")
           << layoutName << ", got " << p.qweight.getElementType();

  // scales.
  SmallVector<int64_t, 2> sShape = getScalesShape(p.layout, p.numGroups, n);
  if (p.scales.getShape() != ArrayRef<int64_t>(sShape))
    return op->emitOpError("expected scales of shape ")
           << formatShape(sShape) << " (groups = " << p.numGroups
           << " for K = " << k << ", group_size = " << p.groupSize
           << "; N = " << n
           << (p.layout == Layout::mma16x64 ? " padded to 16" : "") << "), got "
           << p.scales;
  if (p.scales.getElementType() != p.scaleDtype)
    return op->emitOpError("scales element type ")
           << p.scales.getElementType() << " does not match scale_dtype "
           << p.scaleDtype;

  // zeros.
  if (p.zeros) {
    Type zt = *p.zeroDtype;
    if (p.layout == Layout::gptq && isa<IntegerType>(zt) && !zt.isInteger(32))
      return op->emitOpError("layout gptq packs integer zeros into i32 "
                             "words: zero_dtype must be i32 or a float "
                             "type, got ")
             << zt;
    SmallVector<int64_t, 2> zShape =
        getZerosShape(p.layout, zt, p.bits, p.numGroups, n);
    if (p.zeros.getShape() != ArrayRef<int64_t>(zShape))
      return op->emitOpError("expected zeros of shape ")
             << formatShape(zShape) << " for zero_dtype " << zt
             << ", bits = " << p.bits << ", groups = " << p.numGroups
             << ", N = " << n << " in layout " << layoutName << ", got "
             << p.zeros;
    if (p.zeros.getElementType() != zt)
      return op->emitOpError("zeros element type ")
             << p.zeros.getElementType() << " does not match zero_dtype " << zt;
  }

  // g_idx (act-order): the group of each input channel.
  if (p.gIdx) {
    if (p.groupSize == -1)
      return op->emitOpError("g_idx requires group_size != -1 (per-channel "
                             "quantization has a single group)");
    if (p.gIdx.getShape() != ArrayRef<int64_t>{k})
      return op->emitOpError("expected g_idx of shape [")
             << k << "] (K), got " << p.gIdx;
  }
  return success();
}

//===----------------------------------------------------------------------===//
// wq.linear
//===----------------------------------------------------------------------===//

LogicalResult LinearOp::verify() {
  if (failed(verifyPackedWeights(*this, getPackedWeights(*this))))
    return failure();
  int64_t k = getInFeatures(), n = getOutFeatures();
  auto x = getX().getType();
  auto result = getResult().getType();
  if (x.getRank() != 2)
    return emitOpError("x must be rank 2 ([T, K]), got ") << x;
  if (!dimsCompatible(x.getDimSize(1), k))
    return emitOpError("x has ")
           << x.getDimSize(1)
           << " input features, expected in_features = " << k;
  if (result.getRank() != 2)
    return emitOpError("result must be rank 2 ([T, N]), got ") << result;
  if (result.getElementType() != x.getElementType())
    return emitOpError("result element type ")
           << result.getElementType() << " must match the element type of x ("
           << x.getElementType() << ")";
  if (!dimsCompatible(result.getDimSize(1), n))
    return emitOpError("result has ")
           << result.getDimSize(1)
           << " output features, expected out_features = " << n;
  if (!dimsCompatible(result.getDimSize(0), x.getDimSize(0)))
    return emitOpError("result rows (")
           << result.getDimSize(0) << ") do not match the rows of x ("
           << x.getDimSize(0) << ")";
  if (Value bias = getBias()) {
    auto b = cast<RankedTensorType>(bias.getType());
    if (b.getShape() != ArrayRef<int64_t>{n})
      return emitOpError("expected bias of shape [") << n << "] (N), got " << b;
    if (b.getElementType() != x.getElementType())
      return emitOpError("bias element type ")
             << b.getElementType() << " must match the element type of x ("
             << x.getElementType() << ")";
  }
  return success();
}

//===----------------------------------------------------------------------===//
// wq.dequantize
//===----------------------------------------------------------------------===//

LogicalResult DequantizeOp::verify() {
  if (failed(verifyPackedWeights(*this, getPackedWeights(*this))))
    return failure();
  SmallVector<int64_t, 2> shape = {getOutFeatures(), getInFeatures()};
  auto result = getResult().getType();
  if (result.getShape() != ArrayRef<int64_t>(shape))
    return emitOpError("expected result of shape ")
           << formatShape(shape) << " ([N, K]), got " << result;
  return success();
}

#define GET_OP_CLASSES
#include "WQ/IR/WQOps.cpp.inc"
