//===- WQToLinalg.h - Reference lowering of `wq` ops ------------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//

#ifndef QC_CONVERSION_WQTOLINALG_WQTOLINALG_H
#define QC_CONVERSION_WQTOLINALG_WQTOLINALG_H

#include "mlir/IR/PatternMatch.h"

namespace mlir::qc {

/// Patterns lowering wq.dequantize and wq.linear to linalg on tensors.
void populateWQToLinalgPatterns(RewritePatternSet &patterns);

} // namespace mlir::qc

#endif // QC_CONVERSION_WQTOLINALG_WQTOLINALG_H
