//===- Trace.h - Calibration traces -----------------------------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// A calibration trace records what every linear layer saw on calibration
// text: H = sum_t x_t x_t^T (fp32, [K, K]), the token count, and mean |x| per
// input channel. It is a safetensors file: one "<key>.hessian" and
// "<key>.abs_mean" per observed activation (layers that read the same
// activation share one key), a sample of whole calibration sequences for
// the block-wise methods ("sample.tokens" [S, T] and "sample.block_input"
// [S, T, D], the input of the first decoder block: AWQ, AutoRound and
// sequential GPTQ run them through the blocks themselves, ALGORITHMS.md §2),
// and metadata mapping every layer to its key,
// the token count, the settings, and two fingerprints: of the model's
// weights, and of model + calibration tokens + settings. A pass given a
// trace recorded for other weights refuses it.
//
//===----------------------------------------------------------------------===//

#ifndef QC_CALIBRATION_TRACE_H
#define QC_CALIBRATION_TRACE_H

#include "qc/runtime/Model.h"
#include "qc/runtime/Status.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace qc {

/// Statistics of one observed activation.
struct TraceEntry {
  int64_t width = 0;          ///< K
  int64_t tokens = 0;         ///< rows accumulated
  std::vector<float> hessian; ///< [K*K] sum x x^T, symmetric
  std::vector<float> absMean; ///< [K] mean |x|
};

/// A whole calibration trace.
struct CalibrationTrace {
  /// Observation key -> statistics.
  std::map<std::string, TraceEntry> entries;
  /// Layer name -> observation key.
  std::map<std::string, std::string> layerToKey;
  /// Fingerprint of the weights the trace was recorded on.
  std::string modelFingerprint;
  /// Fingerprint of weights + calibration tokens + settings.
  std::string fingerprint;
  /// Free-form settings (text file, windows, tokens), for the record.
  std::map<std::string, std::string> settings;
  /// Sampled sequences (S of T tokens each, BOS first) for block-wise
  /// methods; S = 0 when the trace holds none.
  int64_t sampleSequences = 0;
  int64_t sampleLength = 0;
  /// Width D of blockInput rows.
  int64_t hiddenSize = 0;
  /// Token ids [S * T].
  std::vector<int32_t> sampleTokens;
  /// Input of decoder block 0 for those tokens, [S * T * D] fp32.
  std::vector<float> blockInput;

  /// The statistics of `layer`, or nullptr.
  const TraceEntry *find(const std::string &layer) const;
};

/// Adds sum_r x_r x_r^T over the `rows` rows of `x` ([rows x k],
/// row-major) to the upper triangle (column >= row) of `h` ([k x k],
/// row-major), in fp32, skipping the products of a zero x_r[a] (as the
/// references' dense update would leave a +0 sum unchanged). Every element
/// is summed over the rows in their order, one multiply and one add per
/// row, so the result is bit-identical to the plain per-row update and
/// does not depend on the thread count; the work is split over tiles of
/// h's rows that stay in cache while x streams past (the per-row update
/// streamed all of h once per token, which made recording a SmolLM2 trace
/// memory-bound).
void accumulateGramUpper(float *h, int64_t k, const float *x, int64_t rows);

/// A stable 64-bit FNV-1a fingerprint (hex) of every tensor of `weights`
/// (names, shapes, dtypes, bytes) and its configuration.
std::string fingerprintWeights(const ModelWeights &weights);

/// Fingerprint (hex) of a trace's inputs: the model fingerprint, the
/// calibration token ids and the windowing settings.
std::string fingerprintCalibration(const std::string &modelFingerprint,
                                   const std::vector<int> &tokens,
                                   int64_t windowLen, int64_t maxTokens,
                                   int64_t sampleSequences = 0);

/// FNV-1a over `bytes`, continuing from `hash`.
uint64_t fnv1a(const void *bytes, size_t size,
               uint64_t hash = 1469598103934665603ull);

/// Writes `trace` to `path` atomically.
Status writeTrace(const CalibrationTrace &trace, const std::string &path);

/// Reads a trace, checking shapes and metadata; errors name the file.
/// Without `withStatistics` the per-layer Hessians and means are checked
/// for presence and shape but not read (the block-wise methods use only the
/// sampled sequences; an 8B model's Hessians are gigabytes).
Status readTrace(const std::string &path, CalibrationTrace &trace,
                 bool withStatistics = true);

} // namespace qc

#endif // QC_CALIBRATION_TRACE_H
