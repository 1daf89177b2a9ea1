//===- LLMOps.h - Operations of the `llm` dialect ---------------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//

#ifndef QC_LLM_IR_LLMOPS_H
#define QC_LLM_IR_LLMOPS_H

#include "LLM/IR/LLMDialect.h"
#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "LLM/IR/LLMEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "LLM/IR/LLMAttrs.h.inc"

#define GET_OP_CLASSES
#include "LLM/IR/LLMOps.h.inc"

#endif // QC_LLM_IR_LLMOPS_H
