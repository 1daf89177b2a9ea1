//===- LLMOps.cpp - Verifiers of the `llm` operations ---------------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Verifiers check the shape contracts stated in LLMOps.td. Dynamic sizes
// (usually the token count T) are compatible with anything; static sizes
// must agree exactly, so a mismatched checkpoint is caught at import time
// rather than as a wrong answer at run time.
//
//===----------------------------------------------------------------------===//

#include "LLM/IR/LLMOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/IR/OpImplementation.h"

#include <cmath>

using namespace mlir;
using namespace mlir::qc::llm;

/// True when two dimension sizes can be equal at run time.
static bool dimsCompatible(int64_t a, int64_t b) {
  return ShapedType::isDynamic(a) || ShapedType::isDynamic(b) || a == b;
}

/// Emits "`what` must be rank `rank`" unless `type` has that rank.
static LogicalResult checkRank(Operation *op, RankedTensorType type,
                               int64_t rank, StringRef what) {
  if (type.getRank() != rank)
    return op->emitOpError()
           << what << " must be rank " << rank << ", got " << type;
  return success();
}

/// Emits an error unless dimension `ia` of `a` can equal dimension `ib` of `b`.
static LogicalResult checkDim(Operation *op, RankedTensorType a, int64_t ia,
                              StringRef aName, RankedTensorType b, int64_t ib,
                              StringRef bName) {
  if (!dimsCompatible(a.getDimSize(ia), b.getDimSize(ib)))
    return op->emitOpError()
           << aName << " dimension " << ia << " (" << a.getDimSize(ia)
           << ") does not match " << bName << " dimension " << ib << " ("
           << b.getDimSize(ib) << ")";
  return success();
}

/// Emits an error unless all of `types` share one element type.
static LogicalResult checkSameElementType(Operation *op,
                                          ArrayRef<RankedTensorType> types) {
  for (RankedTensorType t : types)
    if (t.getElementType() != types.front().getElementType())
      return op->emitOpError()
             << "operands and result must share one element type, got "
             << types.front().getElementType() << " and " << t.getElementType();
  return success();
}

/// Emits an error unless dimension `i` of `type` is static or equals
/// `expected` (when static).
static LogicalResult checkFeatureDim(Operation *op, RankedTensorType type,
                                     int64_t i, int64_t expected,
                                     StringRef what) {
  int64_t size = type.getDimSize(i);
  if (!ShapedType::isDynamic(size) && size != expected)
    return op->emitOpError()
           << what << " must have " << expected << " features, got " << size;
  return success();
}

LogicalResult ParamOp::verify() {
  if (getName().empty())
    return emitOpError("parameter name must not be empty");
  if (!getType().hasStaticShape())
    return emitOpError("parameter type must have a static shape, got ")
           << getType();
  return success();
}

LogicalResult EmbeddingOp::verify() {
  auto table = getTable().getType();
  auto result = getResult().getType();
  auto tokens = getTokens().getType();
  if (failed(checkRank(*this, table, 2, "table")) ||
      failed(checkRank(*this, result, 2, "result")) ||
      failed(checkSameElementType(*this, {table, result})) ||
      failed(checkDim(*this, result, 1, "result", table, 1, "table")))
    return failure();
  if (!dimsCompatible(result.getDimSize(0), tokens.getDimSize(0)))
    return emitOpError("result rows (")
           << result.getDimSize(0) << ") do not match the token count ("
           << tokens.getDimSize(0) << ")";
  return success();
}

LogicalResult RMSNormOp::verify() {
  auto x = getX().getType();
  auto w = getWeight().getType();
  auto result = getResult().getType();
  if (failed(checkRank(*this, x, 2, "input")) ||
      failed(checkRank(*this, w, 1, "weight")) ||
      failed(checkSameElementType(*this, {x, w, result})) ||
      failed(checkDim(*this, x, 1, "input", w, 0, "weight")))
    return failure();
  if (x != result)
    return emitOpError("result type ")
           << result << " must equal the input type " << x;
  return success();
}

LogicalResult LinearOp::verify() {
  auto x = getX().getType();
  auto w = getWeight().getType();
  auto result = getResult().getType();
  if (failed(checkRank(*this, x, 2, "input")) ||
      failed(checkRank(*this, w, 2, "weight")) ||
      failed(checkRank(*this, result, 2, "result")) ||
      failed(checkSameElementType(*this, {x, w, result})) ||
      failed(checkDim(*this, x, 1, "input", w, 1, "weight")) ||
      failed(checkDim(*this, result, 1, "result", w, 0, "weight")) ||
      failed(checkDim(*this, result, 0, "result", x, 0, "input")))
    return failure();
  if (Value bias = getBias()) {
    auto b = cast<RankedTensorType>(bias.getType());
    if (failed(checkRank(*this, b, 1, "bias")) ||
        failed(checkSameElementType(*this, {x, b})) ||
        failed(checkDim(*this, b, 0, "bias", w, 0, "weight")))
      return failure();
  }
  return success();
}

LogicalResult RopeOp::verify() {
  auto x = getX().getType();
  if (failed(checkRank(*this, x, 2, "input")))
    return failure();
  int64_t headDim = getHeadDim();
  if (headDim % 2 != 0)
    return emitOpError("head_dim must be even, got ") << headDim;
  int64_t rotaryDim = getRotaryDim().value_or(headDim);
  if (rotaryDim % 2 != 0 || rotaryDim > headDim)
    return emitOpError("rotary_dim must be even and at most head_dim (")
           << headDim << "), got " << rotaryDim;
  if (rotaryDim != headDim && getLayout() == RopeLayout::interleaved)
    return emitOpError("a partial rotary_dim needs the half layout");
  if (auto freq = getInvFreq()) {
    if (static_cast<int64_t>(freq->size()) != rotaryDim / 2)
      return emitOpError("inv_freq must hold rotary_dim / 2 = ")
             << rotaryDim / 2 << " values, got " << freq->size();
    for (float f : *freq)
      if (!(f > 0.0f) || !std::isfinite(f))
        return emitOpError("inv_freq values must be positive and finite");
  }
  return checkFeatureDim(*this, x, 1, getNumHeads() * headDim, "input");
}

LogicalResult AttentionOp::verify() {
  auto q = getQ().getType();
  auto k = getK().getType();
  auto v = getV().getType();
  auto result = getResult().getType();
  int64_t heads = getNumHeads(), kvHeads = getNumKvHeads(),
          headDim = getHeadDim();
  if (failed(checkRank(*this, q, 2, "q")) ||
      failed(checkRank(*this, k, 2, "k")) ||
      failed(checkRank(*this, v, 2, "v")) ||
      failed(checkRank(*this, result, 2, "result")) ||
      failed(checkSameElementType(*this, {q, k, v, result})))
    return failure();
  if (heads % kvHeads != 0)
    return emitOpError("num_heads (")
           << heads << ") must be a multiple of num_kv_heads (" << kvHeads
           << ")";
  if (failed(checkFeatureDim(*this, q, 1, heads * headDim, "q")) ||
      failed(checkFeatureDim(*this, k, 1, kvHeads * headDim, "k")) ||
      failed(checkFeatureDim(*this, v, 1, kvHeads * headDim, "v")) ||
      failed(checkFeatureDim(*this, result, 1, heads * headDim, "result")) ||
      failed(checkDim(*this, k, 0, "k", q, 0, "q")) ||
      failed(checkDim(*this, v, 0, "v", q, 0, "q")) ||
      failed(checkDim(*this, result, 0, "result", q, 0, "q")))
    return failure();
  return success();
}

/// Checks a KV cache type against the layer index and the head shape:
/// `[layers, kvHeads, max_ctx, headDim]` with `layer < layers`.
static LogicalResult checkCache(Operation *op, RankedTensorType cache,
                                StringRef what, int64_t layer, int64_t kvHeads,
                                int64_t headDim) {
  if (!ShapedType::isDynamic(cache.getDimSize(0)) &&
      layer >= cache.getDimSize(0))
    return op->emitOpError("layer ")
           << layer << " is out of range for a " << what << " of "
           << cache.getDimSize(0) << " layers";
  if (!dimsCompatible(cache.getDimSize(1), kvHeads))
    return op->emitOpError()
           << what << " dimension 1 (" << cache.getDimSize(1)
           << ") must be the number of key/value heads (" << kvHeads << ")";
  if (!dimsCompatible(cache.getDimSize(3), headDim))
    return op->emitOpError()
           << what << " dimension 3 (" << cache.getDimSize(3)
           << ") must be the head dimension (" << headDim << ")";
  return success();
}

LogicalResult KVCacheWriteOp::verify() {
  auto cache = getCache().getType();
  auto rows = getRows().getType();
  if (failed(checkRank(*this, rows, 2, "rows")) ||
      failed(checkSameElementType(*this, {cache, rows})))
    return failure();
  // The row width is the cache's heads x head_dim; without static cache
  // dimensions there is nothing to compare.
  int64_t kvHeads = cache.getDimSize(1), headDim = cache.getDimSize(3);
  if (ShapedType::isDynamic(kvHeads) || ShapedType::isDynamic(headDim))
    return emitOpError("cache dimensions 1 (key/value heads) and 3 (head "
                       "dimension) must be static, got ")
           << cache;
  if (failed(checkCache(*this, cache, "cache", getLayer(), kvHeads, headDim)))
    return failure();
  return checkFeatureDim(*this, rows, 1, kvHeads * headDim, "rows");
}

LogicalResult KVCacheAttentionOp::verify() {
  auto q = getQ().getType();
  auto kc = getKeyCache().getType();
  auto vc = getValueCache().getType();
  auto result = getResult().getType();
  int64_t heads = getNumHeads(), kvHeads = getNumKvHeads(),
          headDim = getHeadDim();
  if (failed(checkRank(*this, q, 2, "q")) ||
      failed(checkRank(*this, result, 2, "result")) ||
      failed(checkSameElementType(*this, {q, kc, vc, result})))
    return failure();
  if (kc != vc)
    return emitOpError("key and value caches must have one type, got ")
           << kc << " and " << vc;
  if (heads % kvHeads != 0)
    return emitOpError("num_heads (")
           << heads << ") must be a multiple of num_kv_heads (" << kvHeads
           << ")";
  if (failed(
          checkCache(*this, kc, "key cache", getLayer(), kvHeads, headDim)) ||
      failed(checkFeatureDim(*this, q, 1, heads * headDim, "q")) ||
      failed(checkFeatureDim(*this, result, 1, heads * headDim, "result")) ||
      failed(checkDim(*this, result, 0, "result", q, 0, "q")))
    return failure();
  return success();
}

LogicalResult LogitsOp::verify() {
  auto x = getX().getType();
  auto w = getWeight().getType();
  auto result = getResult().getType();
  if (failed(checkRank(*this, x, 2, "input")) ||
      failed(checkRank(*this, w, 2, "weight")) ||
      failed(checkRank(*this, result, 2, "result")) ||
      failed(checkSameElementType(*this, {x, w, result})) ||
      failed(checkDim(*this, x, 1, "input", w, 1, "weight")) ||
      failed(checkDim(*this, result, 1, "result", w, 0, "weight")) ||
      failed(checkDim(*this, result, 0, "result", x, 0, "input")))
    return failure();
  return success();
}

#define GET_OP_CLASSES
#include "LLM/IR/LLMOps.cpp.inc"
