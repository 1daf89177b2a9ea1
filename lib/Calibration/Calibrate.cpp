//===- Calibrate.cpp - Record calibration traces on the CPU path ----------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Windows are run one after another and accumulated in order: the trace is
// then bit-identical for a given model and text, whatever the machine's
// core count (a requirement for `--seed` reproducibility downstream).
// Hessians accumulate in fp32 as the references do (ALGORITHMS.md §0),
// over the upper triangle, mirrored at the end.
//
//===----------------------------------------------------------------------===//

#include "qc/Calibration/Calibrate.h"

#include "qc/Execution/CpuExecutable.h"
#include "qc/InitAllPasses.h"
#include "qc/runtime/Progress.h"
#include "qc/runtime/TextDataset.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"

#include <algorithm>
#include <cmath>

using namespace mlir;
using namespace mlir::qc;
using ::qc::Status;

/// Keeps up to options.sampleSequences windows of the longest length,
/// evenly spaced over the text (deterministic: no seed needed), as token ids
/// and as the input of decoder block 0, which for the LLaMA family is the
/// embedding row of every token.
static Status sampleSequences(const ::qc::ModelWeights &weights,
                              const std::vector<std::vector<int>> &windows,
                              const CalibrationOptions &options,
                              ::qc::CalibrationTrace &out) {
  if (options.sampleSequences <= 0 || windows.empty())
    return Status::ok();
  size_t T = 0;
  for (const auto &w : windows)
    T = std::max(T, w.size());
  std::vector<size_t> full;
  for (size_t i = 0; i < windows.size(); ++i)
    if (windows[i].size() == T)
      full.push_back(i);
  if (T < static_cast<size_t>(options.windowLen) + 1 && options.warnings)
    options.warnings->push_back(
        "calibration text yields only " + std::to_string(T) +
        " tokens with BOS, less than one window of " +
        std::to_string(options.windowLen + 1) +
        "; the block-wise methods get one sequence of that length");
  int64_t S = std::min<int64_t>(options.sampleSequences, full.size());
  const ::qc::HostTensor *embed = weights.find("model.embed_tokens.weight");
  if (!embed || embed->shape.size() != 2)
    return Status::error("calibration: the model has no "
                         "model.embed_tokens.weight matrix");
  int64_t D = embed->shape[1], V = embed->shape[0];
  // A lazily opened embedding is read row by row for the gather (a
  // Llama-3 table is 2 GB in fp32).
  std::vector<float> lazyRow;
  out.sampleSequences = S;
  out.sampleLength = static_cast<int64_t>(T);
  out.hiddenSize = D;
  out.sampleTokens.resize(S * T);
  out.blockInput.resize(S * T * D);
  for (int64_t s = 0; s < S; ++s) {
    // Evenly spaced: window floor(s * n / S) for s = 0 .. S-1.
    const auto &w = windows[full[s * full.size() / S]];
    for (size_t t = 0; t < T; ++t) {
      int id = w[t];
      if (id < 0 || id >= V)
        return Status::error("calibration: token id " + std::to_string(id) +
                             " is outside the embedding table");
      out.sampleTokens[s * T + t] = id;
      const float *row = nullptr;
      if (embed->resident()) {
        row = embed->data.data() + int64_t(id) * D;
      } else {
        QC_RETURN_IF_ERROR(embed->load(id, 1, lazyRow));
        row = lazyRow.data();
      }
      std::copy_n(row, D, out.blockInput.data() + (s * T + t) * D);
    }
  }
  return Status::ok();
}

/// The fingerprints and settings every trace records.
static void finishTrace(const ::qc::ModelWeights &weights,
                        const std::vector<int> &tokens,
                        const CalibrationOptions &options, size_t windows,
                        int64_t total, ::qc::CalibrationTrace &out) {
  out.modelFingerprint = ::qc::fingerprintWeights(weights);
  out.fingerprint = ::qc::fingerprintCalibration(
      out.modelFingerprint, tokens, options.windowLen, options.maxTokens,
      options.sampleSequences);
  out.settings["text"] = options.textName;
  out.settings["window_len"] = std::to_string(options.windowLen);
  out.settings["max_tokens"] = std::to_string(options.maxTokens);
  out.settings["windows"] = std::to_string(windows);
  out.settings["tokens"] = std::to_string(total);
  out.settings["sample_sequences"] = std::to_string(out.sampleSequences);
  out.settings["sample_length"] = std::to_string(out.sampleLength);
}

Status mlir::qc::collectTrace(ModuleOp model, const ::qc::ModelWeights &weights,
                              const std::vector<int> &tokens,
                              const CalibrationOptions &options,
                              ::qc::CalibrationTrace &out) {
  if (tokens.size() < 2)
    return Status::error("calibration text is too short: it yields " +
                         std::to_string(tokens.size()) +
                         " tokens, at least 2 are needed");
  if (options.samplesOnly) {
    if (options.sampleSequences <= 0)
      return Status::error("calibration: a trace of sampled sequences only "
                           "needs samples > 0");
    out = ::qc::CalibrationTrace();
    auto windows =
        ::qc::makeWindows(tokens, options.maxTokens, options.windowLen,
                          static_cast<int>(weights.config.bosId));
    int64_t total = 0;
    for (const auto &w : windows)
      total += static_cast<int64_t>(w.size());
    QC_RETURN_IF_ERROR(sampleSequences(weights, windows, options, out));
    finishTrace(weights, tokens, options, windows.size(), total, out);
    out.settings["statistics"] = "none (sampled sequences only)";
    return Status::ok();
  }
  registerAllQCPasses();
  OwningOpRef<ModuleOp> module(cast<ModuleOp>(model->clone()));
  std::string diagText;
  ScopedDiagnosticHandler handler(module->getContext(), [&](Diagnostic &d) {
    llvm::raw_string_ostream os(diagText);
    os << d.getLocation() << ": " << d << "\n";
    return success();
  });
  PassManager pm(module->getContext());
  if (failed(
          parsePassPipeline("llm-observe-linear-inputs", pm, llvm::errs())) ||
      failed(pm.run(*module)))
    return Status::error("instrumenting the model failed:\n" + diagText);
  auto fn = module->lookupSymbol<func::FuncOp>("forward");
  auto groups = fn->getAttrOfType<ArrayAttr>("llm.observed");
  std::unique_ptr<CpuExecutable> exe;
  QC_RETURN_IF_ERROR(CpuExecutable::compile(*module, weights, exe));

  size_t numObs = groups.size();
  std::vector<std::string> keys(numObs);
  out = ::qc::CalibrationTrace();
  for (size_t i = 0; i < numObs; ++i) {
    auto layers = cast<ArrayAttr>(groups[i]);
    keys[i] = cast<StringAttr>(layers[0]).str();
    for (Attribute l : layers)
      out.layerToKey[cast<StringAttr>(l).str()] = keys[i];
    ::qc::TraceEntry &e = out.entries[keys[i]];
    e.width = exe->outputWidth(i + 1);
    e.hessian.assign(e.width * e.width, 0.0f);
    e.absMean.assign(e.width, 0.0f);
  }

  auto windows = ::qc::makeWindows(tokens, options.maxTokens, options.windowLen,
                                   static_cast<int>(weights.config.bosId));
  int64_t total = 0;
  for (const auto &w : windows)
    total += static_cast<int64_t>(w.size());
  ::qc::Progress bar("calibration", total, options.progress);
  std::vector<std::vector<float>> buffers(exe->numOutputs());
  std::vector<double> absSums;
  int64_t done = 0;
  for (const auto &w : windows) {
    std::vector<int32_t> ids(w.begin(), w.end());
    int64_t rows = static_cast<int64_t>(ids.size());
    std::vector<float *> ptrs;
    for (size_t o = 0; o < buffers.size(); ++o) {
      buffers[o].resize(rows * exe->outputWidth(o));
      ptrs.push_back(buffers[o].data());
    }
    QC_RETURN_IF_ERROR(exe->forwardAll(ids.data(), rows, ptrs));
    for (size_t i = 0; i < numObs; ++i) {
      ::qc::TraceEntry &e = out.entries[keys[i]];
      int64_t k = e.width;
      const float *x = buffers[i + 1].data();
      for (int64_t r = 0; r < rows; ++r) {
        const float *xr = x + r * k;
        for (int64_t a = 0; a < k; ++a) {
          float xa = xr[a];
          if (!std::isfinite(xa))
            return Status::error("calibration: non-finite activation at the "
                                 "input of '" +
                                 keys[i] + "' (channel " + std::to_string(a) +
                                 ")");
          e.absMean[a] += std::fabs(xa);
        }
      }
      ::qc::accumulateGramUpper(e.hessian.data(), k, x, rows);
      e.tokens += rows;
    }
    done += rows;
    bar.update(done);
  }
  bar.finish();
  for (auto &[key, e] : out.entries) {
    for (int64_t a = 0; a < e.width; ++a)
      for (int64_t c = 0; c < a; ++c)
        e.hessian[a * e.width + c] = e.hessian[c * e.width + a];
    for (float &v : e.absMean)
      v /= static_cast<float>(e.tokens);
  }

  QC_RETURN_IF_ERROR(sampleSequences(weights, windows, options, out));
  finishTrace(weights, tokens, options, windows.size(), total, out);
  return Status::ok();
}
