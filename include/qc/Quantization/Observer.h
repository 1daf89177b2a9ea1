//===- Observer.h - Per-layer events of the quantization passes -*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// The quantization passes report every layer they finish (its loss, the
// damping used, tokens seen, any fallback and why, the time it took) to an
// observer, if one is installed. quant-compile installs one that prints
// progress with an ETA and writes report.json; under quant-opt nothing is
// installed and the passes stay quiet. The records deliberately stay out of
// the IR: times would make two otherwise identical runs differ.
//
//===----------------------------------------------------------------------===//

#ifndef QC_QUANTIZATION_OBSERVER_H
#define QC_QUANTIZATION_OBSERVER_H

#include <cmath>
#include <cstdint>
#include <string>

namespace qc {

/// What a pass did to one layer. Fields a method does not produce keep
/// their "absent" value (NaN or -1).
struct LayerRecord {
  std::string layer;  ///< e.g. "model.layers.0.self_attn.q_proj"
  std::string method; ///< pass name, e.g. "wq-gptq"
  int bits = 0;
  int64_t groupSize = 0;
  bool sym = false;
  /// The method's own objective (GPTQ: 1/2 sum dW^T H dW; AWQ: the chosen
  /// scaling group's output MSE; AutoRound: the block's output MSE;
  /// RTN/HQQ/NF4: the weight MSE).
  double loss = NAN;
  /// Relative damping that succeeded (GPTQ).
  double damping = NAN;
  /// Calibration tokens that reached the layer (-1 = calibration-free).
  int64_t tokens = -1;
  /// True when the method fell back (GPTQ -> RTN, AWQ scales -> 1).
  bool fallback = false;
  /// Why, or other notes worth reading.
  std::string note;
  /// Wall time spent on the layer (block-wise methods: its share of the
  /// block).
  double seconds = 0.0;
};

/// Receives progress and per-layer records from the passes.
class QuantizationObserver {
public:
  virtual ~QuantizationObserver();
  /// A pass starts work on `layers` layers.
  virtual void passStarted(const std::string &pass, int64_t layers) = 0;
  /// Layer `index` (0-based) of `layers` is done.
  virtual void layerDone(const LayerRecord &record, int64_t index,
                         int64_t layers) = 0;
  /// Called when the records of `count` layers an interrupted run had
  /// finished are restored from the journal folder `journal`; the next
  /// `count` calls of layerDone pass them, with their original times.
  virtual void layersResumed(int64_t count, const std::string &journal) {
    (void)count;
    (void)journal;
  }
};

/// Installs `observer` (nullptr removes it) for this thread; returns the
/// previous one. The caller keeps ownership.
QuantizationObserver *setQuantizationObserver(QuantizationObserver *observer);

/// The observer of this thread, or nullptr.
QuantizationObserver *getQuantizationObserver();

} // namespace qc

#endif // QC_QUANTIZATION_OBSERVER_H
