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
    auto scaleType = parseScaleDType(scaleDType);
    if (!scaleType) {
      getOperation().emitError() << "wq-rtn: unknown scale-dtype '"
                                 << scaleDType << "' (expected f16, bf16 or f32)";
      return signalPassFailure();
    }
    ::qc::quant::QuantConfig cfg;
    cfg.bits = static_cast<int>(bits);
    cfg.groupSize = groupSize;
    cfg.sym = sym;
    cfg.scaleDType = *scaleType;
    LayerRewriteOptions opts{exclude, layout, weightsOut, "wq-rtn"};
    opts.config = cfg;
    opts.overrides.assign(overrides.begin(), overrides.end());
    auto quantize = [&](const std::string &layer, const float *w, int64_t n,
                        int64_t k, const ::qc::quant::QuantConfig &c,
                        LayerResult &out) -> ::qc::Status {
      QC_RETURN_IF_ERROR(
          ::qc::quant::quantizeRTN(w, n, k, c, out.weight, layer));
      out.record.loss = weightMSE(out.weight, w);
      return ::qc::Status::ok();
    };
    if (failed(rewriteQuantizedLayers(getOperation(), opts, quantize)))
      signalPassFailure();
  }
};

} // namespace
