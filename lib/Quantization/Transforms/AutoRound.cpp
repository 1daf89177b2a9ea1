//===- AutoRound.cpp - wq-autoround: block-wise SignRound -----------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// The numerics are lib/Quantization/Algorithms/AutoRound (quantizer with
// straight-through gradients, signSGD over one block through the reference
// block's backward); this pass feeds it block by block (BlockDriver):
// tuning inputs from the quantized pipeline, targets from the float one
// (ALGORITHMS.md §2, enable_quanted_input).
//
//===----------------------------------------------------------------------===//

#include "BlockDriver.h"
#include "LayerRewriter.h"

#include "qc/Quantization/Algorithms/AutoRound.h"
#include "qc/Quantization/Passes.h"

namespace mlir::qc {
#define GEN_PASS_DEF_WQAUTOROUNDPASS
#include "qc/Quantization/Passes.h.inc"
} // namespace mlir::qc

using namespace mlir;
using namespace mlir::qc;
using ::qc::Status;
using namespace ::qc::quant;

namespace {

struct WQAutoRoundPass : mlir::qc::impl::WQAutoRoundPassBase<WQAutoRoundPass> {
  using Base::Base;
  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (failed(checkOptionRanges(
            module, "wq-autoround", "autoround",
            {{"iters", iters}, {"batch-size", batchSize}, {"seed", seed}},
            {{"lr", lr}, {"minmax-lr", minmaxLr}})))
      return signalPassFailure();
    LayerRewriteOptions opts;
    ::qc::CalibrationTrace calib;
    if (failed(initRewriteOptions(
            module, "wq-autoround", bits, groupSize, sym, scaleDType, layout,
            exclude, weightsOut, {overrides.begin(), overrides.end()}, opts)) ||
        failed(loadRequiredTrace(module, "wq-autoround", trace,
                                 /*needSample=*/true, calib, opts)))
      return signalPassFailure();
    AutoRoundOptions ar;
    ar.iters = static_cast<int>(iters);
    ar.lr = static_cast<float>(lr);
    ar.minmaxLr = static_cast<float>(minmaxLr);
    ar.batchSize = static_cast<int>(batchSize);
    ar.enableMinmaxTuning = minmaxTuning;
    ar.seed = static_cast<uint64_t>(seed);
    opts.prepare = [&](::qc::ModelWeights &weights, const LayerPlan &plan,
                       const BlockSink &sink) -> Status {
      BlockDriverOptions bopts;
      bopts.passName = "wq-autoround";
      bopts.needFloatInputs = true;
      bopts.needQuantizedInputs = true;
      const ::qc::ModelConfig &config = weights.config;
      return runBlockwise(
          weights, calib, plan, bopts,
          [&](const BlockInputs &in, BlockWeights &w,
              std::array<LayerResult, kNumBlockLinears> &out) -> Status {
            // One grid per block: the signSGD step tunes all linears of the
            // block together against one loss.
            const QuantConfig *cfg = nullptr;
            for (int i = 0; i < kNumBlockLinears; ++i) {
              const QuantConfig *c = in.configs[i];
              if (!c)
                return Status::error(
                    "AutoRound reconstructs whole blocks; '" + in.names[i] +
                    "' is skipped while other linears of its block are not "
                    "(skip whole blocks or use wq-gptq/wq-rtn for it)");
              if (cfg && (c->bits != cfg->bits ||
                          c->groupSize != cfg->groupSize || c->sym != cfg->sym))
                return Status::error("AutoRound needs one configuration per "
                                     "decoder block, but '" +
                                     in.names[i] +
                                     "' differs from the other linears of "
                                     "the block");
              cfg = c;
            }
            std::array<QuantizedWeight, kNumBlockLinears> q;
            AutoRoundReport report;
            QC_RETURN_IF_ERROR(autoRoundBlock(config, w, in.xQuant->data(),
                                              in.yFloat->data(), in.S, in.T,
                                              *cfg, ar, q, report));
            for (int i = 0; i < kNumBlockLinears; ++i) {
              out[i].weight = std::move(q[i]);
              ::qc::LayerRecord &rec = out[i].record;
              rec.loss = report.finalLoss;
              rec.note = "block output MSE: RTN " +
                         std::to_string(report.rtnLoss) + ", tuned " +
                         std::to_string(report.finalLoss) + " (best step " +
                         std::to_string(report.bestIter) + ")";
            }
            return Status::ok();
          },
          sink);
    };
    if (failed(setJournal(getOperation(), clone(), journal,
                          /*hasTrace=*/true, opts)))
      return signalPassFailure();
    if (failed(rewriteQuantizedLayers(module, opts, onlyBlockLayers())))
      signalPassFailure();
  }
};

} // namespace
