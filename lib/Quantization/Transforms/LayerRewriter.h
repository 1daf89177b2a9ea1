//===- LayerRewriter.h - Shared plumbing of the wq passes -------*- C++ -*-===//
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
#include "qc/Quantization/LayerOverrides.h"
#include "qc/Quantization/Observer.h"
#include "qc/Quantization/Passes.h"
#include "qc/runtime/Model.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

#include <functional>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mlir::qc {

/// The layers a pass will quantize, in IR order, each with its resolved
/// configuration (skipped and excluded layers are absent).
struct LayerPlan {
  std::vector<std::string> order;
  std::map<std::string, ::qc::quant::QuantConfig> configs;
  /// The resolved configuration of `layer`, or nullptr when it stays float.
  const ::qc::quant::QuantConfig *find(const std::string &layer) const {
    auto it = configs.find(layer);
    return it == configs.end() ? nullptr : &it->second;
  }
};

struct LayerResult;
class RewriteJournal;

/// Hands one finished layer to the rewriter, which packs it and moves its
/// tensors to the output's spill file at once (so that a block-wise method
/// holds one block's results, not the model's). Fails naming the layer when
/// the result does not fit it or cannot be packed.
using LayerSink =
    std::function<::qc::Status(const std::string &layer, LayerResult &result)>;

/// What a block-wise method's `prepare` hands its results to.
struct BlockSink {
  LayerSink emit;
  /// The rewrite's journal (RewriteJournal.h), or nullptr: runBlockwise
  /// starts after the blocks it holds and records each block it finishes.
  RewriteJournal *journal = nullptr;
};

/// What a pass asks of the shared rewriter.
struct LayerRewriteOptions {
  /// Layers whose name matches this regex stay in full precision.
  std::string exclude;
  /// The packing layout; Auto: gptq when every planned layer fits it, else
  /// rows for all (checked from the shapes before any layer is quantized).
  WQPackLayout layout = WQPackLayout::Auto;
  /// The overlay file to write.
  std::string weightsOut;
  /// Pass name, used in messages.
  std::string passName;
  /// Called once with the loaded weights before any layer is quantized
  /// (e.g. to check that a calibration trace belongs to them).
  std::function<::qc::Status(const ::qc::ModelWeights &)> checkWeights;
  /// The pass's configuration, before per-layer overrides.
  ::qc::quant::QuantConfig config;
  /// Per-layer overrides (see LayerOverride), in the pass-option syntax.
  std::vector<std::string> overrides;
  /// Called once after checkWeights with the plan, before any layer is
  /// quantized. Block-wise methods do their whole work here, handing each
  /// finished layer to the sink; they may change float tensors of `weights`
  /// (AWQ folds scales into norms), which must then be listed in
  /// weights.overlaid to reach the overlay. `weights` may be lazily opened:
  /// materialize what is read (and release it after).
  std::function<::qc::Status(::qc::ModelWeights &, const LayerPlan &,
                             const BlockSink &)>
      prepare;
  /// Replace no layer: only the float tensors `prepare` changed are written
  /// (AWQ's fold-only mode).
  bool floatOnly = false;
  /// The method may produce fractional zero points (HQQ without
  /// round-zeros), which the gptq layout cannot store.
  bool fractionalZeros = false;
  /// The journal folder (pass option `journal`; RewriteJournal.h): each
  /// finished layer (block) is recorded there, and a later run of the same
  /// pass on the same inputs continues after what it holds. Empty: none.
  std::string journal;
  /// The pass and its options without its paths (setJournal).
  std::string identity;
  /// The fingerprints of the calibration trace the pass reads, if any.
  std::string traceIdentity;
};

/// Sets opts.journal and the identity a journal is checked against: the
/// pass `clone` (Pass::clone() of the running pass, options included) printed
/// with its options, after the paths that differ between runs of the same work
/// (`weights-out`, `journal` and, when `hasTrace`, `trace`, whose contents
/// are identified by its fingerprints) were replaced by "-".
LogicalResult setJournal(ModuleOp module, std::unique_ptr<Pass> clone,
                         const std::string &journal, bool hasTrace,
                         LayerRewriteOptions &opts);

/// One quantized layer as a method produces it.
struct LayerResult {
  /// Codes, scales, zeros (integer or fractional), g_idx.
  ::qc::quant::QuantizedWeight weight;
  /// Non-empty for codebook formats (NF4): the value of each code, which
  /// then dequantizes as codebook[q] * scale.
  std::vector<float> codebook;
  /// What the method reports about the layer (loss, damping, tokens,
  /// fallback); layer, method, config and (if zero) time are filled in by
  /// the rewriter.
  ::qc::LayerRecord record;
  /// Set when the record already went to the observer (block-wise methods
  /// report per block, as the work happens).
  bool reported = false;
};

/// Quantizes one layer: `w` is the [N, K] fp32 weight of `layer` (its name
/// without ".weight"), `cfg` its resolved configuration. Fills `out` or
/// returns an error naming the layer.
using LayerQuantizer = std::function<::qc::Status(
    const std::string &layer, const float *w, int64_t N, int64_t K,
    const ::qc::quant::QuantConfig &cfg, LayerResult &out)>;

/// Mean squared error between `w` [N*K] and the dequantized `q`: the loss
/// reported for calibration-free methods.
inline double weightMSE(const ::qc::quant::QuantizedWeight &q, const float *w) {
  std::vector<float> d;
  q.dequantize(d);
  double se = 0.0;
  for (size_t i = 0; i < d.size(); ++i)
    se +=
        (static_cast<double>(w[i]) - d[i]) * (static_cast<double>(w[i]) - d[i]);
  return d.empty() ? 0.0 : se / static_cast<double>(d.size());
}

/// Checks a pass's numeric options against the method's entries in
/// OptionRanges.h ("rtn", "gptq", ...), before any work: each value out of
/// range emits "<pass>: option <name> = <value> is out of range (valid:
/// ...)" and fails. Options are int64_t in Passes.td, so the check sees the
/// value the user wrote, before any narrowing.
LogicalResult checkOptionRanges(
    ModuleOp module, const std::string &passName, const std::string &method,
    std::initializer_list<std::pair<const char *, int64_t>> ints,
    std::initializer_list<std::pair<const char *, double>> reals = {});

/// Fills what every weight-quantizing pass shares: the base configuration
/// (bits, group size, sym, scale dtype), layout, exclusion, output and
/// overrides. Checks bits and group-size against OptionRanges.h (the enum
/// options scale-dtype and layout were checked by the option parser); on a
/// value out of range emits a diagnostic naming the pass and fails.
LogicalResult initRewriteOptions(ModuleOp module, const std::string &passName,
                                 int64_t bits, int64_t groupSize, bool sym,
                                 ::qc::quant::ScaleDType scaleDType,
                                 WQPackLayout layout,
                                 const std::string &exclude,
                                 const std::string &weightsOut,
                                 const std::vector<std::string> &overrides,
                                 LayerRewriteOptions &opts);

/// Test-only: makes every rewrite read the whole model before quantizing
/// (the path before streaming), so that tests can run the registered passes
/// both ways and compare.
void setLoadWholeModelForTesting(bool wholeModel);

/// Runs `quantize` over every eligible llm.linear of `module` and rewrites
/// the IR; on failure emits a diagnostic on the module (or layer) and leaves
/// the IR unchanged. A Hugging Face checkpoint is opened lazily: each
/// layer's weight (each block's, for the block-wise methods) is read just
/// before it is quantized and freed after, and the packed tensors go to a
/// spill file as they are made, so a method holds one layer (block) at a
/// time.
LogicalResult rewriteQuantizedLayers(ModuleOp module,
                                     const LayerRewriteOptions &options,
                                     const LayerQuantizer &quantize);

} // namespace mlir::qc

#endif // QC_LIB_QUANTIZATION_TRANSFORMS_LAYERREWRITER_H
