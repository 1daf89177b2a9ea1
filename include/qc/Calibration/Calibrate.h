//===- Calibrate.h - Record calibration traces on the CPU path --*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//

#ifndef QC_CALIBRATION_CALIBRATE_H
#define QC_CALIBRATION_CALIBRATE_H

#include "qc/Calibration/Trace.h"

#include "mlir/IR/BuiltinOps.h"

#include <string>
#include <vector>

namespace mlir::qc {

/// How calibration text is cut and scored.
struct CalibrationOptions {
  /// Tokens per window (each window is prefixed with BOS).
  int64_t windowLen = 511;
  /// Use at most this many tokens (0 = all).
  int64_t maxTokens = 0;
  /// Whole windows kept as the trace's sample for the block-wise methods
  /// (AWQ, AutoRound, sequential GPTQ): at most this many, evenly spaced
  /// over the text (0 = none). ALGORITHMS.md §2 uses 128.
  int64_t sampleSequences = 128;
  /// Receives non-fatal notes (e.g. text shorter than one window).
  std::vector<std::string> *warnings = nullptr;
  /// Recorded in the trace's settings.
  std::string textName;
  bool progress = false;
  /// Record the sampled sequences only: no model run and no per-layer
  /// statistics. That is all the block-wise methods read (they compute
  /// their statistics block by block from the samples), so their
  /// calibration takes no forward pass and never holds the whole model; a
  /// method that needs per-layer statistics (GPTQ with sequential=false)
  /// then reports that the trace has none.
  bool samplesOnly = false;
};

/// Instruments a clone of `model` with `llm-observe-linear-inputs`, runs it
/// on `tokens` (windows as in perplexity, in order, so the result does not
/// depend on threads) and accumulates every linear's input statistics.
/// Errors: an empty token stream, fewer tokens than one window's worth of
/// context (less than 2), non-finite activations (naming the layer).
::qc::Status collectTrace(ModuleOp model, const ::qc::ModelWeights &weights,
                          const std::vector<int> &tokens,
                          const CalibrationOptions &options,
                          ::qc::CalibrationTrace &out);

} // namespace mlir::qc

#endif // QC_CALIBRATION_CALIBRATE_H
