//===- TraceFuzzer.cpp - libFuzzer target for the calibration trace reader ===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Feeds arbitrary bytes to qc::readTrace (lib/Calibration/Trace.cpp: the
// safetensors container, then the trace's metadata, statistics and sampled
// sequences). A rejected input must come with a message naming the file.
// An accepted trace must keep the reader's promises (trap otherwise): every
// entry's Hessian is K*K and abs_mean K values, all finite; the sample
// arrays match S, T and D; every layer maps to an entry; and writing it
// with writeTrace and reading it back gives the same trace.
//
//===----------------------------------------------------------------------===//

#include "MemFile.h"

#include "qc/Calibration/Trace.h"

#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

void check(bool ok) {
  if (!ok)
    __builtin_trap();
}

bool finite(const std::vector<float> &v) {
  for (float x : v)
    if (!std::isfinite(x))
      return false;
  return true;
}

bool same(const qc::CalibrationTrace &a, const qc::CalibrationTrace &b) {
  if (a.entries.size() != b.entries.size() || a.layerToKey != b.layerToKey ||
      a.modelFingerprint != b.modelFingerprint ||
      a.fingerprint != b.fingerprint || a.settings != b.settings ||
      a.sampleSequences != b.sampleSequences ||
      a.sampleLength != b.sampleLength || a.hiddenSize != b.hiddenSize ||
      a.sampleTokens != b.sampleTokens || a.blockInput != b.blockInput)
    return false;
  for (const auto &[key, e] : a.entries) {
    auto it = b.entries.find(key);
    if (it == b.entries.end() || it->second.width != e.width ||
        it->second.tokens != e.tokens || it->second.hessian != e.hessian ||
        it->second.absMean != e.absMean)
      return false;
  }
  return true;
}

/// A per-process scratch file for the write/read round trip.
const std::string &scratchPath() {
  static const std::string path = [] {
    char dir[] = "/tmp/qc-trace-fuzz-XXXXXX";
    if (!mkdtemp(dir))
      std::abort();
    return std::string(dir) + "/roundtrip.trace";
  }();
  return path;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  qc::fuzz::MemFile file(data, size);
  qc::CalibrationTrace trace;
  qc::Status st = qc::readTrace(file.path, trace);
  if (std::getenv("QC_FUZZ_VERBOSE") && st)
    std::fprintf(stderr, "accepted\n");
  if (!st) {
    // QC_FUZZ_VERBOSE=1 prints why an input was rejected (to check seeds).
    if (std::getenv("QC_FUZZ_VERBOSE"))
      std::fprintf(stderr, "rejected: %s\n", st.message().c_str());
    check(st.message().find(file.path) != std::string::npos);
    return 0;
  }
  for (const auto &[key, e] : trace.entries) {
    check(e.width >= 0 && e.tokens >= 0);
    check(static_cast<int64_t>(e.hessian.size()) == e.width * e.width);
    check(static_cast<int64_t>(e.absMean.size()) == e.width);
    check(finite(e.hessian) && finite(e.absMean));
  }
  for (const auto &[layer, key] : trace.layerToKey) {
    check(trace.entries.count(key) == 1);
    check(trace.find(layer) != nullptr);
  }
  if (trace.sampleSequences > 0) {
    int64_t S = trace.sampleSequences, T = trace.sampleLength,
            D = trace.hiddenSize;
    check(static_cast<int64_t>(trace.sampleTokens.size()) == S * T);
    check(static_cast<int64_t>(trace.blockInput.size()) == S * T * D);
    check(finite(trace.blockInput));
  }
  // Round trip. writeTrace refuses metadata keys it would itself write
  // ("format", ...) only implicitly, by overwriting them, so compare after
  // reading back what was written.
  if (!qc::writeTrace(trace, scratchPath()))
    return 0;
  qc::CalibrationTrace again;
  check(qc::readTrace(scratchPath(), again).isOk());
  check(same(trace, again));
  return 0;
}
