//===- HQQ.cpp - The wq-hqq pass ------------------------------------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Maps the pass options onto qc::quant::quantizeHQQ. The reference HQQ
// requires K % group == 0; this pass allows a ragged last group (the
// bundled model's K = 172), like the other methods here.
//
//===----------------------------------------------------------------------===//

#include "LayerRewriter.h"

#include "qc/Quantization/Algorithms/HQQ.h"
#include "qc/Quantization/Passes.h"

namespace mlir::qc {
#define GEN_PASS_DEF_WQHQQPASS
#include "qc/Quantization/Passes.h.inc"
} // namespace mlir::qc

using namespace mlir;
using namespace mlir::qc;
using ::qc::Status;

namespace {

struct WQHQQPass : mlir::qc::impl::WQHQQPassBase<WQHQQPass> {
  using Base::Base;
  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (failed(checkOptionRanges(
            module, "wq-hqq", "hqq", {{"iters", iters}},
            {{"lp-norm", lpNorm}, {"beta", beta}, {"kappa", kappa}})))
      return signalPassFailure();
    LayerRewriteOptions opts;
    if (failed(initRewriteOptions(module, "wq-hqq", bits, groupSize,
                                  /*sym=*/false, scaleDType, layout, exclude,
                                  weightsOut,
                                  {overrides.begin(), overrides.end()}, opts)))
      return signalPassFailure();
    opts.fractionalZeros = !roundZeros;
    ::qc::quant::HQQOptions hqq;
    hqq.lpNorm = static_cast<float>(lpNorm);
    hqq.beta = static_cast<float>(beta);
    hqq.kappa = static_cast<float>(kappa);
    hqq.iters = static_cast<int>(iters);
    hqq.roundZeros = roundZeros;
    hqq.strictShapes = false;
    auto quantize = [&](const std::string &layer, const float *w, int64_t n,
                        int64_t k, const ::qc::quant::QuantConfig &c,
                        LayerResult &out) -> Status {
      if (c.sym)
        return Status::error("layer '" + layer +
                             "': HQQ is asymmetric; an "
                             "override may not set sym=true");
      QC_RETURN_IF_ERROR(::qc::quant::quantizeHQQ(w, n, k, c, hqq, out.weight,
                                                  nullptr, layer));
      out.record.loss = weightMSE(out.weight, w);
      return Status::ok();
    };
    if (failed(setJournal(getOperation(), clone(), journal,
                          /*hasTrace=*/false, opts)))
      return signalPassFailure();
    if (failed(rewriteQuantizedLayers(module, opts, quantize)))
      signalPassFailure();
  }
};

} // namespace
