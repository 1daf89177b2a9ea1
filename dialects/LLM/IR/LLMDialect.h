//===- LLMDialect.h - The `llm` dialect -------------------------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//

#ifndef QC_LLM_IR_LLMDIALECT_H
#define QC_LLM_IR_LLMDIALECT_H

#include "mlir/IR/Dialect.h"

#include "LLM/IR/LLMOpsDialect.h.inc"

#endif // QC_LLM_IR_LLMDIALECT_H
