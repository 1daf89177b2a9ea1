//===- BlockDriver.h - Block-sequential calibration -------------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// AWQ, AutoRound and sequential GPTQ work one decoder block at a time on
// whole calibration sequences (../shared/docs/ALGORITHMS.md §2): block i
// sees the output of block i-1, computed either with the original float
// weights (AWQ; AutoRound's targets) or with blocks < i already quantized
// (GPTQ; AutoRound's inputs). This driver owns that loop: it starts from
// the trace's sampled block-0 inputs, hands each block's float weights and
// inputs to the method, and propagates both streams with the plain-C++
// reference block (BlockReference.h), so no MLIR is compiled per block.
//
//===----------------------------------------------------------------------===//

#ifndef QC_LIB_QUANTIZATION_TRANSFORMS_BLOCKDRIVER_H
#define QC_LIB_QUANTIZATION_TRANSFORMS_BLOCKDRIVER_H

#include "LayerRewriter.h"

#include "qc/Calibration/Trace.h"
#include "qc/Quantization/Algorithms/BlockReference.h"

#include <array>
#include <map>

namespace mlir::qc {

/// What the driver hands to a method for one block.
struct BlockInputs {
  int64_t layer = 0; ///< decoder block index
  int64_t S = 0, T = 0;
  /// Input of the block from the float pipeline [S*T*D] (empty unless
  /// BlockDriverOptions::needFloatInputs).
  const std::vector<float> *xFloat = nullptr;
  /// Output of the ORIGINAL float block on xFloat (AutoRound's target).
  const std::vector<float> *yFloat = nullptr;
  /// Input of the block from the quantized pipeline (empty unless
  /// BlockDriverOptions::needQuantizedInputs).
  const std::vector<float> *xQuant = nullptr;
  /// Full layer name of each BlockLinear ("model.layers.3.mlp.up_proj").
  std::array<std::string, ::qc::quant::kNumBlockLinears> names;
  /// Resolved configuration of each linear, nullptr when it stays float.
  std::array<const ::qc::quant::QuantConfig *, ::qc::quant::kNumBlockLinears>
      configs{};
};

/// Quantizes one block. `w` holds the block's float weights and may be
/// changed (AWQ folds scales into norms and linears; a linear the method
/// quantizes may be left in any state, GPTQ leaves it dequantized); `out[l]`
/// must be filled for every linear with a non-null config.
using BlockQuantizer = std::function<::qc::Status(
    const BlockInputs &in, ::qc::quant::BlockWeights &w,
    std::array<LayerResult, ::qc::quant::kNumBlockLinears> &out)>;

struct BlockDriverOptions {
  std::string passName;
  bool needFloatInputs = false;
  bool needQuantizedInputs = false;
  /// Keep every linear float: changed linears go back to `weights` too.
  bool floatOnly = false;
};

/// Runs `quantize` over every decoder block in order, using the trace's
/// sampled sequences, and hands each block's results to `sink.emit` as soon
/// as the block is done. A lazily opened block is read before it is
/// quantized and released after. Float tensors
/// the method changed (norms; linears that stay float) are written back to
/// `weights` and listed in weights.overlaid. Reports each block to the
/// observer. Errors name the block. With `sink.journal`, the blocks it
/// holds are not run again (their changed float tensors and the
/// activations entering the next block are restored from it) and each
/// finished block is recorded in it.
::qc::Status
runBlockwise(::qc::ModelWeights &weights, const ::qc::CalibrationTrace &trace,
             const LayerPlan &plan, const BlockDriverOptions &options,
             const BlockQuantizer &quantize, const BlockSink &sink);

/// Checks that `trace` was recorded on `weights` and, when `needSample`,
/// that it holds sampled sequences of the model's width.
::qc::Status checkTrace(const ::qc::CalibrationTrace &trace,
                        const std::string &tracePath,
                        const ::qc::ModelWeights &weights, bool needSample);

/// Reads the trace a calibrated pass requires (its `trace` option) and makes
/// `opts` check, once the weights are loaded, that the trace belongs to them
/// (and holds sampled sequences when `needSample`). Emits a diagnostic
/// naming the pass and fails when the option is empty or the file is not a
/// trace. `trace` must outlive the pass's rewrite.
LogicalResult loadRequiredTrace(ModuleOp module, const std::string &passName,
                                const std::string &tracePath, bool needSample,
                                ::qc::CalibrationTrace &trace,
                                LayerRewriteOptions &opts);

/// The LayerQuantizer of a block-wise pass, whose layers all come from
/// runBlockwise: any other planned layer is an error naming it.
LayerQuantizer onlyBlockLayers();

} // namespace mlir::qc

#endif // QC_LIB_QUANTIZATION_TRANSFORMS_BLOCKDRIVER_H
