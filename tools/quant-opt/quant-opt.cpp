//===- quant-opt.cpp - The qc optimizer driver ----------------------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// MlirOptMain with the `llm` and `wq` dialects, every qc pass and pipeline,
// and the upstream dialects and passes the pipelines use. This is the lit
// driver and the tool for inspecting any stage of a lowering.
//
//===----------------------------------------------------------------------===//

#include "qc/InitAllDialects.h"
#include "qc/InitAllPasses.h"

#include "mlir/Tools/mlir-opt/MlirOptMain.h"

int main(int argc, char **argv) {
  mlir::DialectRegistry registry;
  mlir::qc::registerAllQCDialects(registry);
  mlir::qc::registerAllQCPasses();
  return mlir::asMainReturnCode(mlir::MlirOptMain(
      argc, argv, "qc optimizer: weight-only quantization compiler\n",
      registry));
}
