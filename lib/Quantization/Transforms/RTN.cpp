//===- RTN.cpp - The wq-rtn pass ------------------------------------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Round-to-nearest: the baseline every other method is measured against.
// The numerics are qc::quant::quantizeRTN; this file maps the pass options
// onto it.
//
//===----------------------------------------------------------------------===//

#include "LayerRewriter.h"

#include "qc/Quantization/Passes.h"

namespace mlir::qc {
#define GEN_PASS_DEF_WQRTNPASS
#include "qc/Quantization/Passes.h.inc"
} // namespace mlir::qc

using namespace mlir;
using namespace mlir::qc;

namespace {

struct WQRTNPass : mlir::qc::impl::WQRTNPassBase<WQRTNPass> {
  using Base::Base;
  void runOnOperation() override {
    LayerRewriteOptions opts;
    if (failed(initRewriteOptions(getOperation(), "wq-rtn", bits, groupSize,
                                  sym, scaleDType, layout, exclude, weightsOut,
                                  {overrides.begin(), overrides.end()}, opts)))
      return signalPassFailure();
    auto quantize = [&](const std::string &layer, const float *w, int64_t n,
                        int64_t k, const ::qc::quant::QuantConfig &c,
                        LayerResult &out) -> ::qc::Status {
      QC_RETURN_IF_ERROR(
          ::qc::quant::quantizeRTN(w, n, k, c, out.weight, layer));
      out.record.loss = weightMSE(out.weight, w);
      return ::qc::Status::ok();
    };
    if (failed(setJournal(getOperation(), clone(), journal,
                          /*hasTrace=*/false, opts)))
      return signalPassFailure();
    if (failed(rewriteQuantizedLayers(getOperation(), opts, quantize)))
      signalPassFailure();
  }
};

} // namespace
