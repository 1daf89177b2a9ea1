//===- InitAll.cpp - Register qc's dialects, passes and pipelines ---------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//

#include "LLM/IR/LLMDialect.h"
#include "WQ/IR/WQDialect.h"
#include "qc/Conversion/Passes.h"
#include "qc/InitAllDialects.h"
#include "qc/InitAllPasses.h"
#include "qc/Pipelines/Pipelines.h"
#include "qc/Quantization/Passes.h"
#include "qc/Target/CUDA/CUDATarget.h"

#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
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

void mlir::qc::registerAllQCPasses() {
  registerAllPasses();
  registerQCConversionPasses();
  registerQCQuantizationPasses();
  registerQCPipelines();
  registerQCCUDATargetPasses();
  registerQCCUDATargetPipelines();
}
