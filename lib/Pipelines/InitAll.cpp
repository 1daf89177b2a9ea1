//===- InitAll.cpp - Register qc's passes and pipelines -------------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// registerAllQCPasses: every pass and named pipeline, the top of the
// compiler's library stack. The dialects' registration lives below, in
// lib/Registration (QCDialectRegistration).
//
//===----------------------------------------------------------------------===//

#include "qc/Conversion/Passes.h"
#include "qc/InitAllPasses.h"
#include "qc/Pipelines/Pipelines.h"
#include "qc/Quantization/Passes.h"
#include "qc/Target/CUDA/CUDATarget.h"

#include "mlir/InitAllPasses.h"

void mlir::qc::registerAllQCPasses() {
  registerAllPasses();
  registerQCConversionPasses();
  registerQCQuantizationPasses();
  registerQCPipelines();
  registerQCCUDATargetPasses();
  registerQCCUDATargetPipelines();
}
