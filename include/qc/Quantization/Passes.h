//===- Passes.h - Quantization passes of qc ---------------------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//

#ifndef QC_QUANTIZATION_PASSES_H
#define QC_QUANTIZATION_PASSES_H

#include "WQ/IR/WQDialect.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace mlir::qc {

#define GEN_PASS_DECL
#include "qc/Quantization/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "qc/Quantization/Passes.h.inc"

} // namespace mlir::qc

#endif // QC_QUANTIZATION_PASSES_H
