//===- RewriteJournal.h - Resuming an interrupted quantization --*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Quantizing a 70B model takes hours; a run killed at block 60 of 80 should
// not start again at block 0. A journal is a folder in which a quantization
// pass records each finished unit of work (one layer for the per-layer
// methods, one decoder block for the block-wise ones) as it is done:
//
//   journal.json             what is done, and the identity of the run
//   unit-NNNNN.safetensors   one unit's packed tensors (and, for a block,
//                            the float tensors the method changed: AWQ's
//                            folded norms)
//   streams-NNNNN.safetensors  the calibration activations entering the
//                            next block (block-wise methods; only the
//                            latest is kept)
//
// Every file is written under a temporary name, synced and renamed, and
// journal.json is rewritten only after the unit's files are in place, so a
// run killed at any instant leaves a journal that names complete files
// only. A later run of the same pass on the same inputs (the identity: the
// pass and its options, the trace's fingerprint, the checkpoint files' sizes
// and times, the planned layers) restores what is done and continues; the
// result is the same bytes as an uninterrupted run, because the restored
// streams are the exact fp32 activations the killed run would have used.
// A journal of a different run is an error naming the first difference.
//
//===----------------------------------------------------------------------===//

#ifndef QC_LIB_QUANTIZATION_TRANSFORMS_REWRITEJOURNAL_H
#define QC_LIB_QUANTIZATION_TRANSFORMS_REWRITEJOURNAL_H

#include "qc/Quantization/Observer.h"
#include "qc/runtime/Model.h"
#include "qc/runtime/Safetensors.h"
#include "qc/runtime/Status.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace mlir::qc {

/// A layer an earlier run finished, as the journal holds it.
struct JournaledLayer {
  ::qc::LayerRecord record;
  int64_t rows = 0, cols = 0;
  std::vector<float> codebook; ///< NF4's code values; empty otherwise
  /// Its packed tensors' suffixes (".qweight", ...), stored in unit `unit`
  /// under "<layer><suffix>".
  std::vector<std::string> suffixes;
  size_t unit = 0;
};

class RewriteJournal {
public:
  RewriteJournal();
  ~RewriteJournal();
  RewriteJournal(const RewriteJournal &) = delete;
  RewriteJournal &operator=(const RewriteJournal &) = delete;

  /// Opens the journal in folder `dir` (created when absent) for the run
  /// described by `identity` (lines of "key: value"). A journal written by
  /// another run is an error naming the first line that differs; an
  /// unreadable or inconsistent one is an error naming the file.
  ::qc::Status open(const std::string &dir, const std::string &identity);

  /// The folder, for messages.
  const std::string &folder() const { return dir; }

  /// The layers earlier runs finished, in the order they were done.
  const std::vector<JournaledLayer> &layers() const { return done; }
  /// The mapped file of unit `unit` (holds its layers' packed tensors);
  /// `unit` must be one an earlier run wrote (layers()[i].unit).
  const ::qc::SafetensorsFile &unitFile(size_t unit) const;

  /// Number of leading decoder blocks finished (block-wise methods).
  int64_t blocksDone() const { return blocks; }
  /// Puts the float tensors the finished blocks changed back into
  /// `weights` (as overlay tensors) and reads the activations entering
  /// block blocksDone() into `xF` / `xQ` (left empty when the run did not
  /// keep that stream). Errors name the file.
  ::qc::Status restoreBlocks(::qc::ModelWeights &weights,
                             std::vector<float> &xF,
                             std::vector<float> &xQ) const;

  /// Adds a finished layer's packed tensors (by suffix) and what is needed
  /// to rebuild its op to the unit being assembled.
  ::qc::Status addLayer(const std::string &layer,
                        const ::qc::LayerRecord &record, int64_t rows,
                        int64_t cols, const std::vector<float> &codebook,
                        const std::map<std::string, ::qc::PackedTensor> &t);
  /// Writes the unit assembled since the last call. `block` is the decoder
  /// block it completes (-1 for a per-layer unit); for a block,
  /// `floats` names the tensors of `weights` the method changed and `xF`,
  /// `xQ` are the activations entering the next block (empty when not
  /// kept, or after the last block).
  ::qc::Status finishUnit(int64_t block, const ::qc::ModelWeights *weights,
                          const std::vector<std::string> &floats,
                          const std::vector<float> &xF,
                          const std::vector<float> &xQ);

private:
  struct Unit;
  ::qc::Status writeIndex();

  std::string dir, identityText;
  std::vector<std::unique_ptr<Unit>> units;
  std::vector<JournaledLayer> done;
  int64_t blocks = 0;
  std::string streamsFile; ///< file name inside dir, or empty
  /// The unit being assembled.
  std::unique_ptr<::qc::SafetensorsWriter> pending;
  std::vector<JournaledLayer> pendingLayers;
};

} // namespace mlir::qc

#endif // QC_LIB_QUANTIZATION_TRANSFORMS_REWRITEJOURNAL_H
