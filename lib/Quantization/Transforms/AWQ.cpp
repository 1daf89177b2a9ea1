//===- AWQ.cpp - wq-awq: activation-aware weight quantization -------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// The numerics are lib/Quantization/Algorithms/AWQ (scale search, folding,
// clip search, AWQ grid); this pass runs them block by block on the trace's
// sampled sequences (BlockDriver) and expresses the folding in the graph:
// the norms' new weights go to the overlay and the norms are marked.
//
//===----------------------------------------------------------------------===//

#include "BlockDriver.h"
#include "LayerRewriter.h"

#include "LLM/IR/LLMOps.h"
#include "qc/Quantization/Algorithms/AWQ.h"
#include "qc/Quantization/Passes.h"

namespace mlir::qc {
#define GEN_PASS_DEF_WQAWQPASS
#include "qc/Quantization/Passes.h.inc"
} // namespace mlir::qc

using namespace mlir;
using namespace mlir::qc;
using ::qc::Status;
using namespace ::qc::quant;

namespace {

/// The single configuration of a block's quantized linears: AWQ searches one
/// scale per scaling group against one quantization grid, so mixing bits or
/// group sizes inside a block is refused (mixing across blocks is fine).
Status blockConfig(const BlockInputs &in, QuantConfig &cfg) {
  const QuantConfig *first = nullptr;
  for (int i = 0; i < kNumBlockLinears; ++i) {
    const QuantConfig *c = in.configs[i];
    if (!c)
      continue;
    if (first && (c->bits != first->bits || c->groupSize != first->groupSize ||
                  c->sym != first->sym))
      return Status::error("AWQ needs one configuration per decoder block, "
                           "but '" +
                           in.names[i] +
                           "' differs from the other "
                           "linears of the block (override whole blocks, "
                           "e.g. 'layers\\.3\\.:bits=8')");
    if (!first)
      first = c;
  }
  cfg = *first;
  return Status::ok();
}

struct WQAWQPass : mlir::qc::impl::WQAWQPassBase<WQAWQPass> {
  using Base::Base;
  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (failed(checkOptionRanges(module, "wq-awq", "awq", {{"n-grid", nGrid}},
                                 {{"max-shrink", maxShrink}})))
      return signalPassFailure();
    LayerRewriteOptions opts;
    ::qc::CalibrationTrace calib;
    if (failed(initRewriteOptions(
            module, "wq-awq", bits, groupSize, sym, scaleDType, layout, exclude,
            weightsOut, {overrides.begin(), overrides.end()}, opts)) ||
        failed(loadRequiredTrace(module, "wq-awq", trace, /*needSample=*/true,
                                 calib, opts)))
      return signalPassFailure();
    opts.floatOnly = !quantize;
    AWQOptions awq;
    awq.nGrid = static_cast<int>(nGrid);
    awq.duoScaling = duoScaling;
    awq.applyClip = clip;
    awq.maxShrink = static_cast<float>(maxShrink);
    std::vector<std::string> notes;
    std::set<std::string> changed;
    opts.prepare = [&](::qc::ModelWeights &weights, const LayerPlan &plan,
                       const BlockSink &sink) -> Status {
      BlockDriverOptions bopts;
      bopts.passName = "wq-awq";
      bopts.needFloatInputs = true;
      bopts.floatOnly = !quantize;
      const ::qc::ModelConfig &config = weights.config;
      std::set<std::string> before = weights.overlaid;
      Status s = runBlockwise(
          weights, calib, plan, bopts,
          [&](const BlockInputs &in, BlockWeights &w,
              std::array<LayerResult, kNumBlockLinears> &out) -> Status {
            QuantConfig cfg;
            QC_RETURN_IF_ERROR(blockConfig(in, cfg));
            std::array<QuantizedWeight, kNumBlockLinears> q;
            AWQBlockResult r;
            QC_RETURN_IF_ERROR(awqBlock(config, w, in.xFloat->data(), in.S,
                                        in.T, cfg, awq, q, r));
            for (const AWQGroupResult &g : r.groups) {
              if (!g.applied)
                continue;
              if (g.fellBack)
                notes.push_back("block " + std::to_string(in.layer) +
                                ", group " + awqGroupName(g.group) +
                                ": every scale candidate gave a non-finite "
                                "loss; scales fell back to 1");
              for (BlockLinear l : awqGroupLayers(g.group)) {
                ::qc::LayerRecord &rec = out[blockLinearIndex(l)].record;
                rec.loss = g.bestIndex >= 0 ? g.losses[g.bestIndex] : NAN;
                rec.fallback = g.fellBack;
                rec.note = std::string("scaling group ") +
                           awqGroupName(g.group) + ", ratio " +
                           std::to_string(g.bestRatio);
              }
            }
            for (int i = 0; i < kNumBlockLinears; ++i)
              out[i].weight = std::move(q[i]);
            return Status::ok();
          },
          sink);
      for (const std::string &n : weights.overlaid)
        if (!before.count(n))
          changed.insert(n);
      return s;
    };
    if (failed(setJournal(getOperation(), clone(), journal,
                          /*hasTrace=*/true, opts)))
      return signalPassFailure();
    if (failed(rewriteQuantizedLayers(module, opts, onlyBlockLayers())))
      return signalPassFailure();
    // Make the folding visible: the norms whose weight now comes from the
    // overlay.
    module.walk([&](llm::RMSNormOp norm) {
      if (auto p = norm.getWeight().getDefiningOp<llm::ParamOp>())
        if (changed.count(p.getName().str()))
          norm->setAttr("awq.scaled", UnitAttr::get(module.getContext()));
    });
    for (const std::string &n : notes)
      module.emitWarning() << "wq-awq: " << n;
  }
};

} // namespace
