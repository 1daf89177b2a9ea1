//===- LayerOverrides.h - Per-layer configuration overrides -----*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// One syntax, one resolution rule for per-layer overrides, shared by the
// passes' `overrides` option and quant-compile's recipes (which validates a
// recipe before any calibration by resolving every layer the same way the
// passes will).
//
//===----------------------------------------------------------------------===//

#ifndef QC_QUANTIZATION_LAYEROVERRIDES_H
#define QC_QUANTIZATION_LAYEROVERRIDES_H

#include "qc/Quantization/Algorithms/Common.h"
#include "qc/runtime/Status.h"

#include <optional>
#include <string>
#include <vector>

namespace mlir::qc {

/// One per-layer override: layers whose name the regex matches (a search,
/// not a full match, POSIX extended syntax) are skipped or get other bits /
/// group size / symmetry. Later overrides win.
struct LayerOverride {
  std::string pattern;
  bool skip = false;
  std::optional<int> bits;
  std::optional<int64_t> groupSize;
  std::optional<bool> sym;
};

/// Parses overrides written "REGEX:skip" or "REGEX:key=value[:key=value]"
/// with keys bits, group-size, sym (true/false). Errors name the entry.
::qc::Status parseLayerOverrides(const std::vector<std::string> &entries,
                                 std::vector<LayerOverride> &out);

/// The configuration of `layer`: `base` with every matching override
/// applied in order. Returns false when the layer is skipped.
bool resolveLayerConfig(const std::vector<LayerOverride> &overrides,
                        const std::string &layer,
                        ::qc::quant::QuantConfig &cfg);

} // namespace mlir::qc

#endif // QC_QUANTIZATION_LAYEROVERRIDES_H
