//===- GPTQ.cpp - The wq-gptq pass ----------------------------------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Maps the pass options onto qc::quant::quantizeGPTQ and feeds it each
// layer's Hessian from the calibration trace. Fallbacks (a Hessian that
// stays indefinite after the damping ladder) are not errors: the layer is
// quantized with RTN and a warning says which layer, why, and how much
// damping was tried, as users of the reference tools expect.
//
//===----------------------------------------------------------------------===//

#include "BlockDriver.h"
#include "LayerRewriter.h"

#include "qc/Calibration/Trace.h"
#include "qc/Quantization/Algorithms/GPTQ.h"
#include "qc/Quantization/Passes.h"

namespace mlir::qc {
#define GEN_PASS_DEF_WQGPTQPASS
#include "qc/Quantization/Passes.h.inc"
} // namespace mlir::qc

using namespace mlir;
using namespace mlir::qc;
using ::qc::Status;

namespace {

/// GPTQ of one layer from its Hessian, with the record filled in.
Status gptqLayer(const std::string &layer, const float *w, int64_t n, int64_t k,
                 const float *hessian, int64_t tokens,
                 const ::qc::quant::QuantConfig &cfg,
                 const ::qc::quant::GPTQOptions &gptq, LayerResult &result,
                 std::vector<std::string> &warnings) {
  ::qc::quant::GPTQReport report;
  QC_RETURN_IF_ERROR(::qc::quant::quantizeGPTQ(
      w, n, k, hessian, tokens, cfg, gptq, result.weight, report, layer));
  if (report.fallbackToRTN)
    warnings.push_back(report.fallbackReason);
  result.record.loss = report.loss;
  result.record.damping = report.dampUsed;
  result.record.tokens = tokens;
  result.record.fallback = report.fallbackToRTN;
  result.record.note = report.fallbackReason;
  if (report.deadColumns > 0 && !report.fallbackToRTN)
    result.record.note =
        std::to_string(report.deadColumns) + " dead input channels zeroed";
  // The recovery ladder of §3.7 is reported, never silent.
  if (!report.fallbackToRTN &&
      (report.dampUsed > gptq.dampPercent * (1.0 + 1e-9) + 1e-12 ||
       report.diagFloor > 0.0)) {
    std::string note =
        "layer '" + layer + "': the Hessian (" + std::to_string(tokens) +
        " tokens) is not positive definite with damp-percent " +
        std::to_string(gptq.dampPercent) + "; recovered with damp-percent " +
        std::to_string(report.dampUsed) +
        (report.diagFloor > 0.0
             ? " and diagonal floor " + std::to_string(report.diagFloor)
             : std::string()) +
        " after " + std::to_string(report.attempts) + " attempts";
    warnings.push_back(note);
    result.record.note = note;
  }
  return Status::ok();
}

/// Sequential GPTQ of one block (ALGORITHMS.md §2 step 4): the Hessians
/// come from the block's inputs in the quantized pipeline and, "true
/// sequential", the block is split into the sub-groups [k, v, q], [o],
/// [up, gate], [down], re-running the forward between them so that later
/// Hessians see the earlier sub-groups already quantized.
Status gptqBlock(const ::qc::ModelConfig &config, const BlockInputs &in,
                 ::qc::quant::BlockWeights &w,
                 const ::qc::quant::GPTQOptions &gptq,
                 std::array<LayerResult, ::qc::quant::kNumBlockLinears> &out,
                 std::vector<std::string> &warnings) {
  using ::qc::quant::BlockLinear;
  static const std::vector<std::vector<BlockLinear>> subGroups = {
      {BlockLinear::K, BlockLinear::V, BlockLinear::Q},
      {BlockLinear::O},
      {BlockLinear::Up, BlockLinear::Gate},
      {BlockLinear::Down}};
  // `w` is worked on in place: each quantized linear is replaced by its
  // dequantized weight once done, so the forward of a later sub-group sees
  // the earlier ones quantized (no second copy of the block).
  std::vector<float> y(in.xQuant->size());
  std::array<bool, ::qc::quant::kNumBlockLinears> done{};
  for (const auto &group : subGroups) {
    bool any = false;
    for (BlockLinear l : group)
      any |= in.configs[::qc::quant::blockLinearIndex(l)] != nullptr;
    if (!any)
      continue;
    // The sub-group's linears share one input; accumulate its Hessian in
    // fp32, sequences in order (deterministic).
    int64_t n0 = 0, k = 0;
    ::qc::quant::blockLinearShape(config, group.front(), n0, k);
    ::qc::quant::HessianAccumulator acc(k);
    Status hookStatus = Status::ok();
    auto hook = [&](BlockLinear which, const float *x, int64_t rows,
                    int64_t cols) {
      if (which == group.front() && hookStatus)
        hookStatus = acc.add(x, rows);
    };
    QC_RETURN_IF_ERROR(::qc::quant::blockForward(
        config, w, in.xQuant->data(), in.S, in.T, y.data(), nullptr, hook));
    QC_RETURN_IF_ERROR(hookStatus);
    const std::vector<float> &h = acc.hessian();
    // While the sub-group is quantized, the linears of earlier sub-groups
    // (their dequantized weights are a function of out[]) are dropped and
    // rebuilt after, for the next forward: down_proj's Hessian, the
    // largest, is then factorized beside one linear's weight instead of the
    // whole block's (0.6 GB less at Llama-3-8B's shapes).
    std::vector<BlockLinear> dropped;
    for (BlockLinear l : ::qc::quant::kAllBlockLinears)
      if (done[::qc::quant::blockLinearIndex(l)]) {
        std::vector<float>().swap(w.linear(l));
        dropped.push_back(l);
      }
    for (BlockLinear l : group) {
      int idx = ::qc::quant::blockLinearIndex(l);
      if (!in.configs[idx])
        continue;
      int64_t n = 0, kk = 0;
      ::qc::quant::blockLinearShape(config, l, n, kk);
      QC_RETURN_IF_ERROR(gptqLayer(in.names[idx], w.linear(l).data(), n, kk,
                                   h.data(), acc.tokenCount(), *in.configs[idx],
                                   gptq, out[idx], warnings));
      out[idx].weight.dequantize(w.linear(l));
      done[idx] = true;
    }
    // After the last sub-group the block driver dequantizes out[] itself.
    if (&group != &subGroups.back())
      for (BlockLinear l : dropped)
        out[::qc::quant::blockLinearIndex(l)].weight.dequantize(w.linear(l));
  }
  return Status::ok();
}

struct WQGPTQPass : mlir::qc::impl::WQGPTQPassBase<WQGPTQPass> {
  using Base::Base;
  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (failed(checkOptionRanges(module, "wq-gptq", "gptq",
                                 {{"block-size", blockSize}},
                                 {{"damp-percent", dampPercent}})))
      return signalPassFailure();
    LayerRewriteOptions opts;
    ::qc::CalibrationTrace calib;
    bool seq = sequential;
    if (failed(initRewriteOptions(
            module, "wq-gptq", bits, groupSize, sym, scaleDType, layout,
            exclude, weightsOut, {overrides.begin(), overrides.end()}, opts)) ||
        failed(loadRequiredTrace(module, "wq-gptq", trace, seq, calib, opts)))
      return signalPassFailure();
    std::string tracePath = trace;
    ::qc::quant::GPTQOptions gptq;
    gptq.dampPercent = dampPercent;
    gptq.blockSize = blockSize;
    gptq.actOrder = actOrder;
    gptq.staticGroups = staticGroups;

    std::vector<std::string> warnings;
    LayerQuantizer quantize;
    if (seq) {
      opts.prepare = [&](::qc::ModelWeights &weights, const LayerPlan &plan,
                         const BlockSink &sink) -> Status {
        BlockDriverOptions bopts;
        bopts.passName = "wq-gptq";
        bopts.needQuantizedInputs = true;
        const ::qc::ModelConfig &config = weights.config;
        return runBlockwise(
            weights, calib, plan, bopts,
            [&](const BlockInputs &in, ::qc::quant::BlockWeights &w,
                std::array<LayerResult, ::qc::quant::kNumBlockLinears> &out) {
              return gptqBlock(config, in, w, gptq, out, warnings);
            },
            sink);
      };
      quantize = onlyBlockLayers();
    } else {
      quantize = [&](const std::string &layer, const float *w, int64_t n,
                     int64_t k, const ::qc::quant::QuantConfig &cfg,
                     LayerResult &result) -> Status {
        const ::qc::TraceEntry *e = calib.find(layer);
        if (!e)
          return Status::error(
              "the trace " + tracePath + " has no statistics for layer '" +
              layer + "'" +
              (calib.entries.empty()
                   ? " (it holds sampled sequences only, as quant-compile "
                     "records for the block-wise methods; record per-layer "
                     "statistics with quant-calibrate, or use "
                     "sequential=true)"
                   : ""));
        if (e->width != k)
          return Status::error(
              "layer '" + layer + "' has " + std::to_string(k) +
              " inputs but its trace entry has " + std::to_string(e->width));
        return gptqLayer(layer, w, n, k, e->hessian.data(), e->tokens, cfg,
                         gptq, result, warnings);
      };
    }
    if (failed(setJournal(getOperation(), clone(), journal,
                          /*hasTrace=*/true, opts)))
      return signalPassFailure();
    if (failed(rewriteQuantizedLayers(module, opts, quantize)))
      return signalPassFailure();
    for (const std::string &w : warnings)
      module.emitWarning() << "wq-gptq: " << w;
  }
};

} // namespace
