//===- Recipe.h - quant-compile recipes and their validation ----*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// A recipe is a JSON file that selects a quantization method, its options
// and per-layer overrides; quant-compile turns it into one quantization
// pass invocation (the pipeline text is printed and recorded, so every run
// can be replayed with quant-opt). Validation happens before any
// calibration, on the model's real layer list, so that a 70B run fails in
// seconds rather than after an hour: every layer whose group size does not
// divide K, every format rule a layer breaks, non-finite weights, and a
// memory estimate.
//
//   {
//     "method": "gptq",                  // rtn nf4 gptq awq hqq autoround
//     "bits": 4, "group_size": 128, "sym": false,
//     "scale_dtype": "f16", "layout": "gptq",
//     "options": {"act_order": true, "damp_percent": 0.01},
//     "calibration": {"window": 511, "max_tokens": 0, "samples": 128},
//     "require_divisible_groups": false,
//     "overrides": [{"match": "layers\\.0\\.", "bits": 8},
//                   {"match": "down_proj", "skip": true}]
//   }
//
//===----------------------------------------------------------------------===//

#ifndef QC_DRIVER_RECIPE_H
#define QC_DRIVER_RECIPE_H

#include "qc/runtime/Json.h"
#include "qc/runtime/Model.h"
#include "qc/runtime/Status.h"

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace qc {

/// A parsed recipe.
struct Recipe {
  std::string method;
  int bits = 4;
  int64_t groupSize = 128;
  bool sym = false;
  std::string scaleDType; ///< empty = the method's default
  std::string layout;     ///< empty = the method's default
  /// Method-specific pass options, already in pass-option spelling
  /// ("act-order", "true").
  std::vector<std::pair<std::string, std::string>> options;
  /// Per-layer overrides in the passes' syntax ("REGEX:bits=8").
  std::vector<std::string> overrides;
  int64_t window = 511;
  int64_t maxTokens = 0;
  int64_t samples = 128;
  bool requireDivisibleGroups = false;
  std::optional<uint64_t> seed;
  /// The recipe as read (echoed into report.json).
  json::Value source;
};

/// Reads and checks a recipe; errors name the file and the key.
Status parseRecipe(const std::string &path, Recipe &out);

/// Whether `method` needs a calibration trace.
bool methodNeedsCalibration(const std::string &method);

/// Whether the recipe's method reads per-layer input statistics from the
/// trace (GPTQ with sequential=false). The block-wise methods (AWQ,
/// AutoRound, sequential GPTQ) read only its sampled sequences, so
/// quant-compile records just those for them (no forward pass over the
/// calibration text, and the model is never held whole).
bool recipeNeedsLayerStatistics(const Recipe &r);

/// The pass pipeline quant-compile runs, e.g.
/// "builtin.module(wq-gptq{bits=4 ... trace=T weights-out=W})", with
/// "journal=J" when `journal` is not empty.
std::string recipePipeline(const Recipe &recipe, const std::string &trace,
                           const std::string &weightsOut,
                           const std::string &journal = "");

/// One linear layer the recipe would quantize.
struct PlannedLayer {
  std::string name;
  int64_t N = 0, K = 0;
  int bits = 4;
  int64_t groupSize = 128;
  bool sym = false;
};

/// What validation found.
struct ValidationResult {
  std::vector<PlannedLayer> layers;
  /// Layers whose group size does not divide K (ragged last group).
  std::vector<std::string> raggedGroups;
  /// Every rule broken, one line each (empty when valid).
  std::vector<std::string> errors;
  /// Estimated peak resident memory of the run, bytes.
  double peakBytes = 0.0;
  /// Physical memory of this machine, bytes (0 if unknown).
  double physicalBytes = 0.0;
  /// With layout "auto" (the default of RTN, GPTQ, AWQ and AutoRound): why
  /// the gptq layout cannot hold the model, so that the passes will use the
  /// rows layout; empty when the gptq layout fits (or was not asked for).
  std::string layoutNote;
};

/// Validates `recipe` against `weights` (the fp32 model) before calibration:
/// per-layer configuration after overrides, format rules of the chosen
/// layout, finiteness of every weight, memory. Collects every problem
/// instead of stopping at the first; the Status is an error exactly when
/// result.errors is non-empty, and then lists them all.
Status validateRecipe(const Recipe &recipe, const ModelWeights &weights,
                      ValidationResult &result);

} // namespace qc

#endif // QC_DRIVER_RECIPE_H
