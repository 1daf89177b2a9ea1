//===- DecodeHead.h - The classifier llm-pack-decode-head reads -*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// What llm-pack-decode-head rewrites and the names of the parameters it
// introduces, shared with the CPU driver that decides whether to run it and
// derives those parameters (CpuExecutable.cpp), so that the two cannot
// disagree on which classifier qualifies or how its parts are called.
//
//===----------------------------------------------------------------------===//

#ifndef QC_CONVERSION_LLMPARAMSTOARGUMENTS_DECODEHEAD_H
#define QC_CONVERSION_LLMPARAMSTOARGUMENTS_DECODEHEAD_H

#include "LLM/IR/LLMOps.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

#include <string>

namespace mlir::qc {

/// The classifier of `fn` when llm-pack-decode-head can read it in 8-bit
/// blocks: `fn` holds exactly one llm.logits, whose weight is an fp32
/// llm.param of static [V, K] shape with K % 32 == 0. Otherwise `logits`
/// and `param` are null, `why` says what is missing and `at` is the op to
/// report it on.
struct DecodeHead {
  llm::LogitsOp logits;
  llm::ParamOp param;
  Operation *at = nullptr;
  std::string why;
};
DecodeHead findPackableHead(func::FuncOp fn);

/// Names of the 8-bit codes ([K / 4, V] i32, GPTQ layout) and f16 scales
/// ([K / 32, V]) derived from the classifier parameter `param`.
inline std::string packedHeadQWeightName(StringRef param) {
  return (param + ".q8.qweight").str();
}
inline std::string packedHeadScalesName(StringRef param) {
  return (param + ".q8.scales").str();
}

} // namespace mlir::qc

#endif // QC_CONVERSION_LLMPARAMSTOARGUMENTS_DECODEHEAD_H
