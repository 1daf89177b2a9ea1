//===- InitAllPasses.h - Register qc's passes and pipelines -----*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//

#ifndef QC_INITALLPASSES_H
#define QC_INITALLPASSES_H

namespace mlir::qc {

/// Registers every qc pass and named pipeline (and the upstream passes the
/// pipelines are built from) with the global registry.
void registerAllQCPasses();

} // namespace mlir::qc

#endif // QC_INITALLPASSES_H
