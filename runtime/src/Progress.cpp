//===- Progress.cpp - Console progress reporting ----------------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Formats and rate-limits progress lines. Terminal detection uses isatty on
// the sink's descriptor: in-place redraws are only readable on a terminal
// and would fill log files with '\r' noise, so logs get one line per ~10%.
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/Progress.h"

#include <unistd.h>

namespace qc {
namespace {

/// Minimum time between two in-place redraws (about 10 per second).
constexpr std::chrono::milliseconds kRedrawInterval(100);

/// "12.3s", "4m05s" or "2h07m": compact enough for one terminal line.
std::string formatDuration(double seconds) {
  char buf[32];
  if (!(seconds >= 0) || seconds > 1e8)
    return "?";
  if (seconds < 60)
    std::snprintf(buf, sizeof(buf), "%.1fs", seconds);
  else if (seconds < 3600)
    std::snprintf(buf, sizeof(buf), "%dm%02ds", static_cast<int>(seconds) / 60,
                  static_cast<int>(seconds) % 60);
  else
    std::snprintf(buf, sizeof(buf), "%dh%02dm",
                  static_cast<int>(seconds) / 3600,
                  static_cast<int>(seconds) % 3600 / 60);
  return buf;
}

} // namespace

Progress::Progress(std::string label, int64_t total, bool enabled)
    : Progress(std::move(label), total, enabled, stderr,
               enabled && ::isatty(::fileno(stderr)) == 1) {}

Progress::Progress(std::string label, int64_t total, bool enabled,
                   std::FILE *sink, bool interactive)
    : label(std::move(label)), total(total), enabled(enabled && sink),
      sink(sink), interactive(interactive),
      start(std::chrono::steady_clock::now()), lastDraw(start) {}

Progress::~Progress() {
  if (enabled && lineOpen) {
    std::fputc('\n', sink);
    std::fflush(sink);
  }
}

void Progress::update(int64_t value) {
  if (!enabled || finished)
    return;
  done = value < 0 ? 0 : value;
  if (total > 0 && done > total)
    done = total;
  if (interactive) {
    auto now = std::chrono::steady_clock::now();
    // Always draw the first update so a slow first step is visible at once.
    if (lineOpen && now - lastDraw < kRedrawInterval)
      return;
    lastDraw = now;
    print(/*final=*/false);
    return;
  }
  if (total <= 0)
    return;
  int64_t bucket = done * 10 / total;
  if (bucket <= lastBucket)
    return;
  lastBucket = bucket;
  print(/*final=*/false);
}

void Progress::finish() {
  if (!enabled || finished)
    return;
  if (total > 0)
    done = total;
  // Off a terminal the 100% line may already be out; do not repeat it.
  if (interactive || total <= 0 || lastBucket < 10)
    print(/*final=*/true);
  finished = true;
}

void Progress::print(bool final) {
  double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0.0;
  std::string line = label + "  " + std::to_string(done);
  char buf[64];
  if (total > 0) {
    line += "/" + std::to_string(total);
    std::snprintf(buf, sizeof(buf), "  %5.1f%%",
                  100.0 * static_cast<double>(done) /
                      static_cast<double>(total));
    line += buf;
  }
  line += "  " + formatDuration(elapsed);
  if (total > 0 && !final)
    line +=
        "  ETA " +
        (done > 0 ? formatDuration(elapsed * static_cast<double>(total - done) /
                                   static_cast<double>(done))
                  : std::string("?"));
  std::snprintf(buf, sizeof(buf), rate < 100 ? "  %.2f/s" : "  %.0f/s", rate);
  line += buf;
  if (interactive) {
    // "\033[K" clears the rest of a previous, longer line.
    std::fprintf(sink, "\r%s\033[K", line.c_str());
    lineOpen = !final;
    if (final)
      std::fputc('\n', sink);
  } else {
    std::fprintf(sink, "%s\n", line.c_str());
  }
  std::fflush(sink);
}

} // namespace qc
