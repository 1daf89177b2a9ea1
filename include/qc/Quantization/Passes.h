//===- Passes.h - Quantization passes of qc ---------------------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//

#ifndef QC_QUANTIZATION_PASSES_H
#define QC_QUANTIZATION_PASSES_H

#include "WQ/IR/WQDialect.h"
#include "qc/EnumOptionParser.h"
#include "qc/Quantization/Algorithms/Common.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace mlir::qc {

/// The values of the `layout` option of the weight-quantizing passes (an
/// enum option: the option parser rejects any other spelling). Not
/// wq::Layout: `auto` is a choice, not a layout, and the GPU layout
/// mma16x64 is made by wq-repack-mma16x64, never by these passes.
enum class WQPackLayout {
  /// gptq when every planned layer fits it (checked from the shapes before
  /// quantizing), otherwise rows for all, reported in a remark.
  Auto,
  /// The GPTQ v1 interchange layout (wq::Layout::gptq).
  GPTQ,
  /// Codes packed along each row (wq::Layout::rows); holds every shape.
  Rows,
};

} // namespace mlir::qc

// The enum options' parser, whose error lists the valid spellings.
QC_ENUM_OPTION_PARSER(::qc::quant::ScaleDType)
QC_ENUM_OPTION_PARSER(::mlir::qc::WQPackLayout)

namespace mlir::qc {

#define GEN_PASS_DECL
#include "qc/Quantization/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "qc/Quantization/Passes.h.inc"

} // namespace mlir::qc

#endif // QC_QUANTIZATION_PASSES_H
