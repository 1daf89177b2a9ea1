//===- Progress.h - Console progress reporting ------------------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// A small progress reporter for long phases (calibration, quantization,
// packing, perplexity evaluation): users of other quantizers report silent
// phases as "hangs", so every loop over layers or windows reports progress
// with elapsed time, ETA and rate. The counts come from the caller's loop.
//
//===----------------------------------------------------------------------===//

#ifndef QC_RUNTIME_PROGRESS_H
#define QC_RUNTIME_PROGRESS_H

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace qc {

/// Reports `label  done/total  pct%  elapsed  ETA  rate/s` on stderr. On a
/// terminal the line is redrawn in place ('\r') at most about 10 times per
/// second; otherwise (logs, CI) a full line is printed each time another
/// ~10% is done, so logs stay short. A disabled reporter prints nothing.
/// Not thread-safe: call it from the thread that drives the loop.
class Progress {
public:
  /// Reports on stderr, redrawing in place when stderr is a terminal.
  /// `total` <= 0 means unknown: only the count, elapsed time and rate are
  /// shown, and (off a terminal) nothing until finish().
  Progress(std::string label, int64_t total, bool enabled);

  /// Reports on `sink` (must outlive this object); `interactive` selects the
  /// in-place redraw mode. For tests and for callers with their own stream.
  Progress(std::string label, int64_t total, bool enabled, std::FILE *sink,
           bool interactive);

  /// Ends an in-place line left open by an unfinished report, so later
  /// output does not overwrite it. Does not claim completion.
  ~Progress();

  Progress(const Progress &) = delete;
  Progress &operator=(const Progress &) = delete;

  /// Records that `done` units are complete (absolute, not a delta; values
  /// above total are clamped) and prints if the rate limit allows.
  void update(int64_t done);

  /// Prints the final state (done = total when the total is known) and ends
  /// the line. Later calls to update() or finish() do nothing.
  void finish();

private:
  /// Writes one report line for the current count; `final` ends it with
  /// '\n' even in interactive mode.
  void print(bool final);

  std::string label;     ///< Printed first on every line.
  int64_t total;         ///< Units to do; <= 0 when unknown.
  bool enabled;          ///< False: every call is a no-op.
  std::FILE *sink;       ///< Where lines go (stderr by default).
  bool interactive;      ///< Redraw in place with '\r' (a terminal).
  int64_t done = 0;      ///< Last count passed to update().
  bool finished = false; ///< finish() has run.
  /// Interactive mode: a '\r' line is on screen without its newline.
  bool lineOpen = false;
  /// Non-interactive mode: the last 10% bucket printed.
  int64_t lastBucket = 0;
  std::chrono::steady_clock::time_point start;    ///< Construction time.
  std::chrono::steady_clock::time_point lastDraw; ///< Last in-place redraw.
};

} // namespace qc

#endif // QC_RUNTIME_PROGRESS_H
