//===- NF4.cpp - The wq-nf4 pass ------------------------------------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// NF4 blocks are laid out per row: the weight is copied into a [N, Kpad]
// buffer (Kpad = K rounded up to the block size, padded with zeros, which
// change no absmax), so that every block of the flattened buffer is one
// (row, group) and the whole layer's absmax values are double-quantized
// together, as bitsandbytes does for a tensor.
//
//===----------------------------------------------------------------------===//

#include "LayerRewriter.h"

#include "qc/Quantization/Algorithms/NF4.h"
#include "qc/Quantization/Passes.h"

namespace mlir::qc {
#define GEN_PASS_DEF_WQNF4PASS
#include "qc/Quantization/Passes.h.inc"
} // namespace mlir::qc

using namespace mlir;
using namespace mlir::qc;
using ::qc::Status;

namespace {

struct WQNF4Pass : mlir::qc::impl::WQNF4PassBase<WQNF4Pass> {
  using Base::Base;
  void runOnOperation() override {
    if (failed(checkOptionRanges(getOperation(), "wq-nf4", "nf4",
                                 {{"block-size", blockSize}})))
      return signalPassFailure();
    LayerRewriteOptions opts{exclude, WQPackLayout::Rows, weightsOut, "wq-nf4"};
    opts.config.bits = 4;
    opts.config.groupSize = blockSize;
    opts.config.sym = true;
    opts.overrides.assign(overrides.begin(), overrides.end());
    bool dq = doubleQuant;
    auto quantize = [dq](const std::string &layer, const float *w, int64_t n,
                         int64_t k, const ::qc::quant::QuantConfig &c,
                         LayerResult &out) -> Status {
      // Overrides may change the block size (group-size) only.
      if (c.bits != 4 || !c.sym)
        return Status::error("layer '" + layer +
                             "': NF4 is a 4-bit "
                             "codebook format; an override may only change "
                             "group-size (the block size)");
      int64_t bs = c.groupSize;
      if (!::qc::quant::isValidNF4BlockSize(bs))
        return Status::error("NF4 block-size must be a power of two from 32 "
                             "to 4096, got " +
                             std::to_string(bs));
      int64_t groups = (k + bs - 1) / bs, kpad = groups * bs;
      std::vector<float> padded(n * kpad, 0.0f);
      for (int64_t r = 0; r < n; ++r)
        std::copy(w + r * k, w + (r + 1) * k, padded.begin() + r * kpad);
      ::qc::quant::NF4Weight nf4;
      QC_RETURN_IF_ERROR(
          ::qc::quant::quantizeNF4(padded.data(), n * kpad, bs, dq, nf4)
              .withContext("layer '" + layer + "'"));
      std::vector<float> absmax;
      nf4.blockAbsmax(absmax);
      ::qc::quant::QuantizedWeight &q = out.weight;
      ::qc::quant::QuantConfig cfg;
      cfg.bits = 4;
      cfg.groupSize = bs;
      cfg.sym = true;
      cfg.scaleDType = ::qc::quant::ScaleDType::F32;
      q.allocate(n, k, groups, cfg);
      for (int64_t r = 0; r < n; ++r)
        for (int64_t c = 0; c < k; ++c)
          q.codes[r * k + c] = static_cast<uint8_t>(nf4.code(r * kpad + c));
      for (int64_t g = 0; g < groups; ++g)
        for (int64_t r = 0; r < n; ++r) {
          q.scales[g * n + r] = absmax[r * groups + g];
          // The symmetric-grid invariant of QuantizedWeight; the codebook,
          // not the zero point, gives codes their values.
          q.zeros[g * n + r] = 8.0f;
        }
      out.codebook.assign(std::begin(::qc::quant::kNF4CodeBook),
                          std::end(::qc::quant::kNF4CodeBook));
      double se = 0.0;
      for (int64_t r = 0; r < n; ++r)
        for (int64_t c2 = 0; c2 < k; ++c2) {
          double d = w[r * k + c2] - out.codebook[q.codes[r * k + c2]] *
                                         q.scales[(c2 / bs) * n + r];
          se += d * d;
        }
      out.record.loss = se / static_cast<double>(n * k);
      return Status::ok();
    };
    if (failed(setJournal(getOperation(), clone(), journal,
                          /*hasTrace=*/false, opts)))
      return signalPassFailure();
    if (failed(rewriteQuantizedLayers(getOperation(), opts, quantize)))
      signalPassFailure();
  }
};

} // namespace
