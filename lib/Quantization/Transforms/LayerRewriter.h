//===- LayerRewriter.h - Shared plumbing of the quantization passes -*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Every quantization pass does the same IR work around a different
// algorithm: find the llm.linear ops with fp32 parameter weights, fetch the
// weights, quantize, pack, add the packed tensors as new parameters, replace
// the op with wq.linear, and write the overlay file. This header gives the
// passes that loop; each pass supplies only the per-layer algorithm.
//
//===----------------------------------------------------------------------===//

#ifndef QC_LIB_QUANTIZATION_TRANSFORMS_LAYERREWRITER_H
#define QC_LIB_QUANTIZATION_TRANSFORMS_LAYERREWRITER_H

#include "qc/Quantization/Algorithms/Common.h"
#include "qc/runtime/Model.h"

#include "mlir/IR/BuiltinOps.h"

#include <functional>
#include <optional>
#include <string>

namespace mlir::qc {

/// What a pass asks of the shared rewriter.
struct LayerRewriteOptions {
  /// Layers whose name matches this regex stay in full precision.
  std::string exclude;
  /// "gptq" or "rows".
  std::string layout = "gptq";
  /// The overlay file to write.
  std::string weightsOut;
  /// Pass name, used in messages.
  std::string passName;
  /// Called once with the loaded weights before any layer is quantized
  /// (e.g. to check that a calibration trace belongs to them).
  std::function<::qc::Status(const ::qc::ModelWeights &)> checkWeights;
};

/// One quantized layer as a method produces it.
struct LayerResult {
  /// Codes, scales, zeros (integer or fractional), g_idx.
  ::qc::quant::QuantizedWeight weight;
  /// Non-empty for codebook formats (NF4): the value of each code, which
  /// then dequantizes as codebook[q] * scale.
  std::vector<float> codebook;
};

/// Quantizes one layer: `w` is the [N, K] fp32 weight of `layer` (its name
/// without ".weight"). Fills `out` or returns an error naming the layer.
using LayerQuantizer = std::function<::qc::Status(
    const std::string &layer, const float *w, int64_t N, int64_t K,
    LayerResult &out)>;

/// Parses a scale-dtype pass option ("f16", "bf16" or "f32").
std::optional<::qc::quant::ScaleDType> parseScaleDType(llvm::StringRef s);

/// Runs `quantize` over every eligible llm.linear of `module` and rewrites
/// the IR; on failure emits a diagnostic on the module (or layer) and leaves
/// the IR unchanged.
LogicalResult rewriteQuantizedLayers(ModuleOp module,
                                     const LayerRewriteOptions &options,
                                     const LayerQuantizer &quantize);

} // namespace mlir::qc

#endif // QC_LIB_QUANTIZATION_TRANSFORMS_LAYERREWRITER_H
