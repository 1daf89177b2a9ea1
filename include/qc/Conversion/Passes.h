//===- Passes.h - Conversion passes of qc -----------------------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//

#ifndef QC_CONVERSION_PASSES_H
#define QC_CONVERSION_PASSES_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"
#include "qc/EnumOptionParser.h"
#include "WQ/IR/WQDialect.h"

namespace mlir::qc {

/// The values of wq-repack-gptq's `zero-dtype` option (an enum option: the
/// option parser rejects any other spelling).
enum class RepackZeroDType {
  /// GPTQ v1 packed integers (stored as zero point - 1).
  I32,
  /// One f16 value per group and row.
  F16,
};

} // namespace mlir::qc

// The enum option's parser, whose error lists the valid spellings.
QC_ENUM_OPTION_PARSER(::mlir::qc::RepackZeroDType)

namespace mlir::qc {

#define GEN_PASS_DECL
#include "qc/Conversion/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "qc/Conversion/Passes.h.inc"

} // namespace mlir::qc

#endif // QC_CONVERSION_PASSES_H
