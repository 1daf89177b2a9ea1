//===- InitAllDialects.cpp - Register qc's and upstream dialects ----------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// registerAllQCDialects in a library of its own, just above the dialects:
// the importer (which parses .mlir models) and the executor need the
// dialects without the passes and pipelines, and the pipelines sit above
// the quantization passes, which sit above the importer. Keeping this in
// QCPipelines made QCImport -> QCPipelines -> QCQuantizationTransforms ->
// QCImport a link cycle (cmake/QCLayers.cmake lists the layers).
//
//===----------------------------------------------------------------------===//

#include "qc/InitAllDialects.h"

#include "LLM/IR/LLMDialect.h"
#include "WQ/IR/WQDialect.h"

#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"

void mlir::qc::registerAllQCDialects(DialectRegistry &registry) {
  registry.insert<llm::LLMDialect>();
  registry.insert<wq::WQDialect>();
  registerAllDialects(registry);
  registerAllExtensions(registry);
  registerAllToLLVMIRTranslations(registry);
  // gpu-module-to-binary translates gpu.modules through these.
  registerAllGPUToLLVMIRTranslations(registry);
}
