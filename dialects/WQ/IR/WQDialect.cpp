//===- WQDialect.cpp - The `wq` dialect -----------------------------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Registers the `wq` ops and attributes; everything else is generated from
// WQBase.td, WQAttrs.td and WQOps.td.
//
//===----------------------------------------------------------------------===//

#include "WQ/IR/WQDialect.h"
#include "WQ/IR/WQOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::qc::wq;

#include "WQ/IR/WQOpsDialect.cpp.inc"
#include "WQ/IR/WQEnums.cpp.inc"
#define GET_ATTRDEF_CLASSES
#include "WQ/IR/WQAttrs.cpp.inc"

void WQDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "WQ/IR/WQOps.cpp.inc"
      >();
  addAttributes<
#define GET_ATTRDEF_LIST
#include "WQ/IR/WQAttrs.cpp.inc"
      >();
}
