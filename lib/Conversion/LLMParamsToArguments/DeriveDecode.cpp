//===- DeriveDecode.cpp - The llm-derive-decode pass ----------------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Generation with a KV cache needs a second entry point beside the
// full-window forward function: one that takes the tokens of positions
// [pos, pos + T), stores their keys and values in a cache and attends over
// everything cached so far, so that a generated token costs one position's
// work instead of the whole prefix's. The decode function is derived from
// the forward function rather than built from the model configuration, so
// that whatever the quantization passes did to the forward function (wq
// linears, folded AWQ scales) is what decoding runs too, and the two entry
// points cannot drift apart.
//
// The derivation is local: every op of a LLaMA-family forward pass except
// the rotary embedding and attention acts on each position on its own, so
// the cloned ops are valid for any T; RoPE only needs its position offset,
// and each attention becomes a cache write plus an attention over the cache.
//
//===----------------------------------------------------------------------===//

#include "LLM/IR/LLMOps.h"
#include "qc/Conversion/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Transforms/RegionUtils.h"

namespace mlir::qc {
#define GEN_PASS_DEF_LLMDERIVEDECODEPASS
#include "qc/Conversion/Passes.h.inc"
} // namespace mlir::qc

using namespace mlir;
using namespace mlir::qc;

namespace {

/// True for ops known to compute each position (row) from that position's
/// inputs alone, which is what makes cloning them into the decode function
/// valid for any chunk of positions.
bool isPositionWise(Operation *op) {
  if (isa<llm::RopeOp, llm::AttentionOp>(op))
    return false; // handled explicitly
  StringRef ns = op->getDialect() ? op->getDialect()->getNamespace() : "";
  // llm ops are row-wise by their definitions (LLMOps.td); wq ops are the
  // quantized linears and their parameters; arith only holds constants and
  // scalar arithmetic here.
  return ns == "llm" || ns == "wq" || ns == "arith";
}

struct LLMDeriveDecodePass
    : qc::impl::LLMDeriveDecodePassBase<LLMDeriveDecodePass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto fwd = module.lookupSymbol<func::FuncOp>(entry);
    if (!fwd) {
      module.emitError() << "llm-derive-decode: no function named '" << entry
                         << "'";
      return signalPassFailure();
    }
    if (module.lookupSymbol(decodeEntry)) {
      module.emitError() << "llm-derive-decode: the module already has a "
                            "symbol named '"
                         << decodeEntry << "'";
      return signalPassFailure();
    }
    if (failed(derive(module, fwd)))
      signalPassFailure();
  }

  LogicalResult derive(ModuleOp module, func::FuncOp fwd) {
    MLIRContext *ctx = module.getContext();
    if (fwd.isExternal() || !fwd.getBody().hasOneBlock())
      return fwd.emitError("llm-derive-decode: '")
             << entry << "' must have a body of one block";
    auto tokensType =
        fwd.getNumArguments() == 1
            ? dyn_cast<RankedTensorType>(fwd.getArgumentTypes()[0])
            : RankedTensorType();
    auto logitsType = fwd.getNumResults() >= 1
                          ? dyn_cast<RankedTensorType>(fwd.getResultTypes()[0])
                          : RankedTensorType();
    if (!tokensType || tokensType.getRank() != 1 ||
        !tokensType.getElementType().isInteger(32) || !logitsType ||
        logitsType.getRank() != 2 || logitsType.isDynamicDim(1))
      return fwd.emitError("llm-derive-decode: '")
             << entry
             << "' must map tokens tensor<?xi32> to logits tensor<?xVxf..>";

    // The attention layers fix the cache shape.
    SmallVector<llm::AttentionOp> layers;
    for (Operation &op : fwd.front()) {
      if (auto att = dyn_cast<llm::AttentionOp>(op)) {
        if (!att.getCausal())
          return att.emitOpError("cannot be decoded with a KV cache: it is "
                                 "not causal");
        if (!layers.empty() &&
            (att.getNumKvHeads() != layers[0].getNumKvHeads() ||
             att.getHeadDim() != layers[0].getHeadDim() ||
             att.getType().getElementType() !=
                 layers[0].getType().getElementType()))
          return att.emitOpError("has a key/value shape different from the "
                                 "first attention layer's; one KV cache "
                                 "cannot hold both");
        layers.push_back(att);
        continue;
      }
      if (isa<llm::RopeOp, func::ReturnOp>(op) || isPositionWise(&op))
        continue;
      return op.emitOpError("cannot be decoded with a KV cache: "
                            "llm-derive-decode only knows that llm, wq and "
                            "arith ops act on each position independently");
    }
    if (layers.empty())
      return fwd.emitError("llm-derive-decode: '")
             << entry << "' has no llm.attention to cache";
    for (Operation &op : fwd.front())
      if (auto rope = dyn_cast<llm::RopeOp>(op); rope && rope.getOffset())
        return rope.emitOpError("already has a position offset; derive the "
                                "decode function from the full-window one");

    Type elt = layers[0].getType().getElementType();
    auto cacheType = RankedTensorType::get(
        {static_cast<int64_t>(layers.size()),
         static_cast<int64_t>(layers[0].getNumKvHeads()), ShapedType::kDynamic,
         static_cast<int64_t>(layers[0].getHeadDim())},
        elt);
    auto lastLogitsType = RankedTensorType::get({1, logitsType.getDimSize(1)},
                                                logitsType.getElementType());
    OpBuilder b(ctx);
    b.setInsertionPointAfter(fwd);
    auto fnType =
        b.getFunctionType({tokensType, b.getIndexType(), cacheType, cacheType},
                          {lastLogitsType, cacheType, cacheType});
    auto decode = func::FuncOp::create(b, fwd.getLoc(), decodeEntry, fnType);
    decode.setArgAttr(2, "llm.tied_result", b.getI64IntegerAttr(1));
    decode.setArgAttr(3, "llm.tied_result", b.getI64IntegerAttr(2));
    Block *body = decode.addEntryBlock();
    Value pos = body->getArgument(1);
    Value keyCache = body->getArgument(2), valueCache = body->getArgument(3);

    IRMapping mapping;
    mapping.map(fwd.getArgument(0), body->getArgument(0));
    b.setInsertionPointToStart(body);
    int64_t layer = 0;
    Value logits;
    for (Operation &op : fwd.front()) {
      if (auto ret = dyn_cast<func::ReturnOp>(op)) {
        logits = mapping.lookup(ret.getOperand(0));
        break;
      }
      if (auto att = dyn_cast<llm::AttentionOp>(op)) {
        Location loc = att.getLoc();
        Value q = mapping.lookup(att.getQ());
        Value k = mapping.lookup(att.getK());
        Value v = mapping.lookup(att.getV());
        auto layerAttr = b.getI64IntegerAttr(layer++);
        keyCache = llm::KVCacheWriteOp::create(b, loc, cacheType, keyCache, k,
                                               pos, layerAttr);
        valueCache = llm::KVCacheWriteOp::create(b, loc, cacheType, valueCache,
                                                 v, pos, layerAttr);
        Value out = llm::KVCacheAttentionOp::create(
            b, loc, att.getType(), q, keyCache, valueCache, pos, layerAttr,
            att.getNumHeadsAttr(), att.getNumKvHeadsAttr(),
            att.getHeadDimAttr(), att.getScaleAttr());
        mapping.map(att.getResult(), out);
        continue;
      }
      Operation *clone = b.clone(op, mapping);
      if (auto rope = dyn_cast<llm::RopeOp>(clone))
        rope.getOffsetMutable().assign(pos);
    }

    // Only the last position's logits: the classifier is the widest matrix
    // of a small model, and prefill needs one row of it, not T.
    Location loc = decode.getLoc();
    auto lastRow = [&](Value x) -> Value {
      auto type = cast<RankedTensorType>(x.getType());
      Value rows = tensor::DimOp::create(b, loc, x, 0);
      Value one = arith::ConstantIndexOp::create(b, loc, 1);
      Value last = arith::SubIOp::create(b, loc, rows, one);
      return tensor::ExtractSliceOp::create(
          b, loc,
          RankedTensorType::get({1, type.getDimSize(1)}, type.getElementType()),
          x, ArrayRef<OpFoldResult>{last, b.getIndexAttr(0)},
          ArrayRef<OpFoldResult>{b.getIndexAttr(1),
                                 b.getIndexAttr(type.getDimSize(1))},
          ArrayRef<OpFoldResult>{b.getIndexAttr(1), b.getIndexAttr(1)});
    };
    Value result;
    if (auto head = logits.getDefiningOp<llm::LogitsOp>()) {
      b.setInsertionPoint(head);
      Value x = lastRow(head.getX());
      result = llm::LogitsOp::create(b, head.getLoc(), lastLogitsType, x,
                                     head.getWeight());
      b.setInsertionPointToEnd(body);
    } else {
      b.setInsertionPointToEnd(body);
      result = lastRow(logits);
    }
    func::ReturnOp::create(b, loc, ValueRange{result, keyCache, valueCache});

    // The full-width logits and any extra results of the forward function
    // (observed activations) are dead here.
    IRRewriter rewriter(ctx);
    (void)runRegionDCE(rewriter, decode.getBody());
    return success();
  }
};

} // namespace
