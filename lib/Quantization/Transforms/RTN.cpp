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
    auto quantize = [&](const std::string &layer, const float *w, int64_t n,
                        int64_t k, LayerResult &out) {
      return ::qc::quant::quantizeRTN(w, n, k, cfg, out.weight, layer);
    };
    if (failed(rewriteQuantizedLayers(getOperation(), opts, quantize)))
      signalPassFailure();
  }
};

} // namespace
