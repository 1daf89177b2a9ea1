//===- WQDialect.h - The `wq` dialect ---------------------------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Declares the weight-only quantized `wq` dialect (see WQBase.td and
// README.md next to this file).
//
//===----------------------------------------------------------------------===//

#ifndef QC_WQ_IR_WQDIALECT_H
#define QC_WQ_IR_WQDIALECT_H

#include "mlir/IR/Dialect.h"

#include "WQ/IR/WQOpsDialect.h.inc"

#endif // QC_WQ_IR_WQDIALECT_H
