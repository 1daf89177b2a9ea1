//===- LLMToLinalg.h - Lowering `llm` ops to linalg -------------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//

#ifndef QC_CONVERSION_LLMTOLINALG_LLMTOLINALG_H
#define QC_CONVERSION_LLMTOLINALG_LLMTOLINALG_H

#include "mlir/IR/PatternMatch.h"

namespace mlir::qc {

/// Patterns lowering embedding, rms_norm, linear, logits, silu_mul and add.
void populateLLMDenseToLinalgPatterns(RewritePatternSet &patterns);

/// Patterns lowering llm.rope.
void populateLLMRopeToLinalgPatterns(RewritePatternSet &patterns);

/// Patterns lowering llm.attention (causal, grouped KV heads) and the KV
/// cache ops llm.kv_cache_write and llm.kv_cache_attention.
void populateLLMAttentionToLinalgPatterns(RewritePatternSet &patterns);

/// All of the above.
void populateLLMToLinalgPatterns(RewritePatternSet &patterns);

} // namespace mlir::qc

#endif // QC_CONVERSION_LLMTOLINALG_LLMTOLINALG_H
