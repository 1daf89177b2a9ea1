//===- InitAllDialects.h - Register qc's and upstream dialects --*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//

#ifndef QC_INITALLDIALECTS_H
#define QC_INITALLDIALECTS_H

#include "mlir/IR/DialectRegistry.h"

namespace mlir::qc {

/// Adds the `llm` and `wq` dialects plus every upstream dialect, extension
/// and LLVM-IR translation the qc pipelines use.
void registerAllQCDialects(DialectRegistry &registry);

} // namespace mlir::qc

#endif // QC_INITALLDIALECTS_H
