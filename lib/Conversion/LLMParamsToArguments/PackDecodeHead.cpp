//===- PackDecodeHead.cpp - The llm-pack-decode-head pass -----------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// A decode step is bound by the bytes it reads, and a small model's widest
// matrix is its classifier: SmolLM2-135M's tied 49,152 x 576 embedding is
// 113 MB in fp32, more than all 30 decoder blocks at 4 bits. The bundled
// GGUF stores it as Q8_0 (int8 codes, an f16 scale per 32), whose values
// the importer widens to fp32 exactly. Reading it back in 8-bit blocks
// therefore multiplies by the same numbers at about a quarter of the
// bytes, and reuses the fused dequantize-linear kernel of the quantized
// layers (8 bits, symmetric: W = s (code - 128) = s q). Only the decode
// entry is rewritten: perplexity runs the forward function, whose fp32
// head and sums stay as they were. The CPU driver decides whether the data
// qualifies (CpuExecutable.cpp) and derives the two parameters this pass
// names.
//
//===----------------------------------------------------------------------===//

#include "qc/Conversion/LLMParamsToArguments/DecodeHead.h"
#include "WQ/IR/WQOps.h"
#include "qc/Conversion/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

namespace mlir::qc {
#define GEN_PASS_DEF_LLMPACKDECODEHEADPASS
#include "qc/Conversion/Passes.h.inc"
} // namespace mlir::qc

using namespace mlir;
using namespace mlir::qc;

DecodeHead mlir::qc::findPackableHead(func::FuncOp fn) {
  DecodeHead found;
  SmallVector<llm::LogitsOp> heads;
  fn.walk([&](llm::LogitsOp op) { heads.push_back(op); });
  if (heads.size() != 1) {
    found.at = fn;
    found.why = "expected one llm.logits in '" + fn.getName().str() +
                "', found " + std::to_string(heads.size());
    return found;
  }
  llm::LogitsOp head = heads.front();
  found.at = head;
  auto param = head.getWeight().getDefiningOp<llm::ParamOp>();
  auto wType = cast<RankedTensorType>(head.getWeight().getType());
  if (!param || !wType.hasStaticShape() || wType.getRank() != 2 ||
      !wType.getElementType().isF32()) {
    found.why = "the classifier's weight must be an fp32 llm.param of static "
                "shape";
    return found;
  }
  if (wType.getDimSize(1) % 32 != 0) {
    found.why = "hidden size " + std::to_string(wType.getDimSize(1)) +
                " is not a multiple of 32";
    return found;
  }
  found.logits = head;
  found.param = param;
  return found;
}

namespace {

struct LLMPackDecodeHeadPass
    : qc::impl::LLMPackDecodeHeadPassBase<LLMPackDecodeHeadPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto fn = module.lookupSymbol<func::FuncOp>(entry);
    if (!fn) {
      module.emitError() << "llm-pack-decode-head: no function '" << entry
                         << "'";
      return signalPassFailure();
    }
    DecodeHead found = findPackableHead(fn);
    if (!found.param) {
      found.at->emitError() << "llm-pack-decode-head: " << found.why;
      return signalPassFailure();
    }
    llm::LogitsOp head = found.logits;
    llm::ParamOp param = found.param;
    auto wType = cast<RankedTensorType>(head.getWeight().getType());
    int64_t vocab = wType.getDimSize(0), hidden = wType.getDimSize(1);
    OpBuilder b(head);
    Location loc = head.getLoc();
    std::string name = param.getName().str();
    // GPTQ layout: [K / 4, V] words of four 8-bit codes, [K / 32, V] f16.
    Value qweight = llm::ParamOp::create(
        b, loc, RankedTensorType::get({hidden / 4, vocab}, b.getI32Type()),
        b.getStringAttr(packedHeadQWeightName(name)));
    Value scales = llm::ParamOp::create(
        b, loc, RankedTensorType::get({hidden / 32, vocab}, b.getF16Type()),
        b.getStringAttr(packedHeadScalesName(name)));
    auto linear = wq::LinearOp::create(
        b, loc, head.getType(), head.getX(), qweight, scales,
        /*zeros=*/Value(), /*g_idx=*/Value(), /*bias=*/Value(),
        b.getI64IntegerAttr(8), b.getI64IntegerAttr(32), b.getBoolAttr(true),
        b.getI64IntegerAttr(hidden), b.getI64IntegerAttr(vocab),
        TypeAttr::get(b.getF16Type()), TypeAttr(),
        wq::LayoutAttr::get(b.getContext(), wq::Layout::gptq),
        DenseF32ArrayAttr());
    head.replaceAllUsesWith(linear.getResult());
    head.erase();
    if (param->use_empty())
      param.erase();
  }
};

} // namespace
