//===- LLMToLinalg.cpp - The convert-llm-to-linalg pass -------------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Applies the dense, rope and attention patterns, then reports every `llm`
// compute op that could not be lowered (today: non-f32 element types) as an
// error rather than leaving half-lowered IR behind.
//
//===----------------------------------------------------------------------===//

#include "qc/Conversion/LLMToLinalg/LLMToLinalg.h"
#include "LLM/IR/LLMOps.h"
#include "qc/Conversion/Passes.h"

#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::qc {
#define GEN_PASS_DEF_CONVERTLLMTOLINALGPASS
#include "qc/Conversion/Passes.h.inc"
} // namespace mlir::qc

using namespace mlir;
using namespace mlir::qc;

void mlir::qc::populateLLMToLinalgPatterns(RewritePatternSet &patterns) {
  populateLLMDenseToLinalgPatterns(patterns);
  populateLLMRopeToLinalgPatterns(patterns);
  populateLLMAttentionToLinalgPatterns(patterns);
}

namespace {
struct ConvertLLMToLinalgPass
    : qc::impl::ConvertLLMToLinalgPassBase<ConvertLLMToLinalgPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    populateLLMToLinalgPatterns(patterns);
    // Lowered ops are never revisited, so one top-down sweep suffices; the
    // driver still iterates until nothing matches.
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns)))) {
      getOperation().emitError("convert-llm-to-linalg did not converge");
      return signalPassFailure();
    }
    bool failedAny = false;
    getOperation().walk([&](Operation *op) {
      if (!isa<llm::LLMDialect>(op->getDialect()) || isa<llm::ParamOp>(op))
        return;
      op->emitOpError("cannot be lowered to linalg: only f32 tensors are "
                      "supported by the CPU lowering");
      failedAny = true;
    });
    if (failedAny)
      signalPassFailure();
  }
};
} // namespace
