//===- LLMDialect.cpp - The `llm` dialect ---------------------------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//

#include "LLM/IR/LLMDialect.h"
#include "LLM/IR/LLMOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::qc::llm;

#include "LLM/IR/LLMOpsDialect.cpp.inc"
#include "LLM/IR/LLMEnums.cpp.inc"
#define GET_ATTRDEF_CLASSES
#include "LLM/IR/LLMAttrs.cpp.inc"

void LLMDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "LLM/IR/LLMOps.cpp.inc"
      >();
  addAttributes<
#define GET_ATTRDEF_LIST
#include "LLM/IR/LLMAttrs.cpp.inc"
      >();
}
