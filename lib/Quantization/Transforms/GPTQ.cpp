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

struct WQGPTQPass : mlir::qc::impl::WQGPTQPassBase<WQGPTQPass> {
  using Base::Base;
  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto scaleType = parseScaleDType(scaleDType);
    if (!scaleType) {
      module.emitError() << "wq-gptq: unknown scale-dtype '" << scaleDType
                         << "' (expected f16, bf16 or f32)";
      return signalPassFailure();
    }
    if (trace.empty()) {
      module.emitError("wq-gptq: the trace option is required (a calibration "
                       "trace written by quant-calibrate)");
      return signalPassFailure();
    }
    ::qc::CalibrationTrace calib;
    if (Status s = ::qc::readTrace(trace, calib); !s) {
      module.emitError() << "wq-gptq: " << s.message();
      return signalPassFailure();
    }
    ::qc::quant::QuantConfig cfg;
    cfg.bits = static_cast<int>(bits);
    cfg.groupSize = groupSize;
    cfg.sym = sym;
    cfg.scaleDType = *scaleType;
    ::qc::quant::GPTQOptions gptq;
    gptq.dampPercent = dampPercent;
    gptq.blockSize = blockSize;
    gptq.actOrder = actOrder;
    gptq.staticGroups = staticGroups;

    LayerRewriteOptions opts{exclude, layout, weightsOut, "wq-gptq"};
    std::string tracePath = trace;
    opts.checkWeights = [&](const ::qc::ModelWeights &w) -> Status {
      std::string fp = ::qc::fingerprintWeights(w);
      if (fp != calib.modelFingerprint)
        return Status::error("the trace " + tracePath +
                             " was recorded on other weights (model "
                             "fingerprint " + calib.modelFingerprint +
                             ", this model " + fp + "); record a trace of "
                             "this model with quant-calibrate");
      return Status::ok();
    };
    std::vector<std::string> warnings;
    auto quantize = [&](const std::string &layer, const float *w, int64_t n,
                        int64_t k, LayerResult &result) -> Status {
      const ::qc::TraceEntry *e = calib.find(layer);
      if (!e)
        return Status::error("the trace " + tracePath + " has no statistics "
                             "for layer '" + layer + "'");
      if (e->width != k)
        return Status::error("layer '" + layer + "' has " + std::to_string(k) +
                             " inputs but its trace entry has " +
                             std::to_string(e->width));
      ::qc::quant::GPTQReport report;
      QC_RETURN_IF_ERROR(::qc::quant::quantizeGPTQ(
          w, n, k, e->hessian.data(), e->tokens, cfg, gptq, result.weight,
          report, layer));
      if (report.fallbackToRTN)
        warnings.push_back(report.fallbackReason);
      return Status::ok();
    };
    if (failed(rewriteQuantizedLayers(module, opts, quantize)))
      return signalPassFailure();
    for (const std::string &w : warnings)
      module.emitWarning() << "wq-gptq: " << w;
  }
};

} // namespace
