//===- BlockDriver.cpp - Block-sequential calibration for the passes ------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//

#include "BlockDriver.h"
#include "RewriteJournal.h"

#include <chrono>

using namespace mlir;
using namespace mlir::qc;
using ::qc::Status;
using namespace ::qc::quant;

Status mlir::qc::checkTrace(const ::qc::CalibrationTrace &trace,
                            const std::string &tracePath,
                            const ::qc::ModelWeights &weights,
                            bool needSample) {
  std::string fp = ::qc::fingerprintWeights(weights);
  if (fp != trace.modelFingerprint)
    return Status::error("the trace " + tracePath +
                         " was recorded on other weights (model fingerprint " +
                         trace.modelFingerprint + ", this model " + fp +
                         "); record a trace of this model with "
                         "quant-calibrate");
  if (!needSample)
    return Status::ok();
  if (trace.sampleSequences < 1)
    return Status::error("the trace " + tracePath +
                         " holds no sampled sequences (it was recorded with "
                         "--samples 0); record one with quant-calibrate "
                         "--samples N");
  if (trace.hiddenSize != weights.config.dim)
    return Status::error("the trace " + tracePath + " samples have width " +
                         std::to_string(trace.hiddenSize) +
                         ", the model's hidden size is " +
                         std::to_string(weights.config.dim));
  return Status::ok();
}

LogicalResult mlir::qc::loadRequiredTrace(
    ModuleOp module, const std::string &passName, const std::string &tracePath,
    bool needSample, ::qc::CalibrationTrace &trace, LayerRewriteOptions &opts) {
  if (tracePath.empty())
    return module.emitError()
           << passName << ": the trace option is required (a calibration "
           << "trace written by quant-calibrate)";
  // A block-wise method reads only the sampled sequences.
  if (Status s = ::qc::readTrace(tracePath, trace, !needSample); !s)
    return module.emitError() << passName << ": " << s.message();
  // A journal (RewriteJournal.h) belongs to the trace's contents, not to
  // its path.
  opts.traceIdentity =
      trace.fingerprint + " (model " + trace.modelFingerprint + ")";
  opts.checkWeights = [&trace, tracePath,
                       needSample](const ::qc::ModelWeights &w) -> Status {
    return checkTrace(trace, tracePath, w, needSample);
  };
  return success();
}

LayerQuantizer mlir::qc::onlyBlockLayers() {
  return [](const std::string &layer, const float *, int64_t, int64_t,
            const QuantConfig &, LayerResult &) -> Status {
    return Status::error("layer '" + layer +
                         "' is not part of a decoder block; the block-wise "
                         "methods only quantize the seven linears of each "
                         "block (exclude it)");
  };
}

/// Writes back the float tensors of block `layer` that the method changed
/// and that will stay float in the model: norms, biases, and linears that
/// are not quantized. They go to the overlay; their names are added to
/// `changed`.
static void storeChanged(const BlockWeights &orig, const BlockWeights &w,
                         int64_t layer, const BlockInputs &in, bool floatOnly,
                         ::qc::ModelWeights &weights,
                         std::vector<std::string> &changed) {
  auto put = [&](const std::string &suffix, const std::vector<float> &a,
                 const std::vector<float> &b) {
    if (a == b)
      return;
    std::string name = ::qc::layerTensorName(layer, suffix);
    auto it = weights.tensors.find(name);
    if (it == weights.tensors.end() ||
        it->second.numElements() != static_cast<int64_t>(b.size()))
      return;
    it->second.data = b;
    // Now an overlay tensor: never released or read from the checkpoint.
    it->second.load = nullptr;
    weights.overlaid.insert(name);
    changed.push_back(name);
  };
  put("input_layernorm.weight", orig.inputNorm, w.inputNorm);
  put("post_attention_layernorm.weight", orig.postNorm, w.postNorm);
  put("self_attn.q_proj.bias", orig.qBias, w.qBias);
  put("self_attn.k_proj.bias", orig.kBias, w.kBias);
  put("self_attn.v_proj.bias", orig.vBias, w.vBias);
  for (BlockLinear l : kAllBlockLinears)
    if (floatOnly || !in.configs[blockLinearIndex(l)])
      put(std::string(blockLinearName(l)) + ".weight", orig.linear(l),
          w.linear(l));
}

Status mlir::qc::runBlockwise(::qc::ModelWeights &weights,
                              const ::qc::CalibrationTrace &trace,
                              const LayerPlan &plan,
                              const BlockDriverOptions &options,
                              const BlockQuantizer &quantize,
                              const BlockSink &sink) {
  const ::qc::ModelConfig &config = weights.config;
  int64_t S = trace.sampleSequences, T = trace.sampleLength, D = config.dim;
  std::vector<float> xF, yF, xQ, yQ;
  if (options.needFloatInputs)
    xF = trace.blockInput;
  if (options.needQuantizedInputs)
    xQ = trace.blockInput;
  ::qc::QuantizationObserver *observer = ::qc::getQuantizationObserver();
  int64_t reported = 0, total = static_cast<int64_t>(plan.order.size());
  std::set<std::string> inBlocks;

  // Blocks an interrupted run finished: their layers were restored by the
  // rewriter; here come the float tensors they changed and the activations
  // entering the first block still to do.
  int64_t first = 0;
  if (sink.journal && sink.journal->blocksDone() > 0) {
    first = sink.journal->blocksDone();
    if (first > config.nLayers)
      return Status::error(sink.journal->folder() + " records " +
                           std::to_string(first) + " decoder blocks; the " +
                           "model has " + std::to_string(config.nLayers));
    std::vector<float> rF, rQ;
    QC_RETURN_IF_ERROR(sink.journal->restoreBlocks(weights, rF, rQ));
    size_t expect = static_cast<size_t>(S * T * D);
    bool last = first == config.nLayers;
    if ((options.needFloatInputs && !last && rF.size() != expect) ||
        (options.needQuantizedInputs && !last && rQ.size() != expect))
      return Status::error(sink.journal->folder() +
                           ": the recorded activations do not fit this "
                           "trace's samples (remove it to start over)");
    if (options.needFloatInputs)
      xF.swap(rF);
    if (options.needQuantizedInputs)
      xQ.swap(rQ);
    for (int64_t i = 0; i < first; ++i)
      for (BlockLinear l : kAllBlockLinears) {
        std::string name =
            "model.layers." + std::to_string(i) + "." + blockLinearName(l);
        inBlocks.insert(name);
        reported += plan.find(name) != nullptr;
      }
  }

  for (int64_t i = first; i < config.nLayers; ++i) {
    auto start = std::chrono::steady_clock::now();
    std::string where = "decoder block " + std::to_string(i);
    BlockInputs in;
    in.layer = i;
    in.S = S;
    in.T = T;
    int64_t quantized = 0;
    for (BlockLinear l : kAllBlockLinears) {
      int idx = blockLinearIndex(l);
      in.names[idx] =
          "model.layers." + std::to_string(i) + "." + blockLinearName(l);
      in.configs[idx] = plan.find(in.names[idx]);
      quantized += in.configs[idx] != nullptr;
      inBlocks.insert(in.names[idx]);
    }
    // The block's tensors of a lazily opened checkpoint are read for the
    // copy and freed again: the block's fp32 weights are then in `w` only.
    const std::string prefix = "model.layers." + std::to_string(i) + ".";
    std::vector<std::string> blockTensors;
    for (auto it = weights.tensors.lower_bound(prefix);
         it != weights.tensors.end() &&
         it->first.compare(0, prefix.size(), prefix) == 0;
         ++it)
      blockTensors.push_back(it->first);
    for (const std::string &name : blockTensors)
      QC_RETURN_IF_ERROR(weights.materialize(name));
    BlockWeights w;
    Status loaded = loadBlockWeights(weights, i, w).withContext(where);
    for (const std::string &name : blockTensors)
      weights.release(name);
    QC_RETURN_IF_ERROR(loaded);
    // What storeChanged compares against: the norms, biases and the
    // linears that stay float. The quantized linears are not copied (a
    // block of an 8B model is 0.9 GB in fp32).
    BlockWeights orig;
    orig.inputNorm = w.inputNorm;
    orig.postNorm = w.postNorm;
    orig.qBias = w.qBias;
    orig.kBias = w.kBias;
    orig.vBias = w.vBias;
    for (BlockLinear l : kAllBlockLinears)
      if (options.floatOnly || !in.configs[blockLinearIndex(l)])
        orig.linear(l) = w.linear(l);
    if (options.needFloatInputs) {
      // The original block, before the method changes `w`.
      yF.resize(S * T * D);
      QC_RETURN_IF_ERROR(blockForward(config, w, xF.data(), S, T, yF.data())
                             .withContext(where));
      in.xFloat = &xF;
      in.yFloat = &yF;
    }
    if (options.needQuantizedInputs)
      in.xQuant = &xQ;

    std::array<LayerResult, kNumBlockLinears> out;
    std::vector<std::string> changed;
    if (quantized > 0) {
      QC_RETURN_IF_ERROR(quantize(in, w, out).withContext(where));
      storeChanged(orig, w, i, in, options.floatOnly, weights, changed);
    }

    if (options.needQuantizedInputs && i + 1 < config.nLayers) {
      // The quantized pipeline runs the block as the quantized model will:
      // changed norms, dequantized weights where quantized.
      BlockWeights wq = std::move(w); // w is not used after this
      for (BlockLinear l : kAllBlockLinears)
        if (in.configs[blockLinearIndex(l)])
          out[blockLinearIndex(l)].weight.dequantize(wq.linear(l));
      yQ.resize(S * T * D);
      QC_RETURN_IF_ERROR(blockForward(config, wq, xQ.data(), S, T, yQ.data())
                             .withContext(where));
      xQ.swap(yQ);
    }
    if (options.needFloatInputs)
      xF.swap(yF);

    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count();
    for (BlockLinear l : kAllBlockLinears) {
      int idx = blockLinearIndex(l);
      if (!in.configs[idx] || options.floatOnly)
        continue;
      LayerResult &r = out[idx];
      ::qc::LayerRecord &rec = r.record;
      rec.layer = in.names[idx];
      rec.method = options.passName;
      rec.bits = r.weight.bits;
      rec.groupSize = r.weight.groupSize;
      rec.sym = r.weight.sym;
      rec.seconds = seconds / static_cast<double>(quantized);
      if (rec.tokens < 0)
        rec.tokens = S * T;
      r.reported = observer != nullptr;
      if (observer)
        observer->layerDone(rec, reported++, total);
      QC_RETURN_IF_ERROR(sink.emit(in.names[idx], r));
    }
    if (sink.journal) {
      // The activations entering block i + 1 (none after the last).
      static const std::vector<float> none;
      bool last = i + 1 == config.nLayers;
      QC_RETURN_IF_ERROR(sink.journal
                             ->finishUnit(i, &weights, changed,
                                          last ? none : xF, last ? none : xQ)
                             .withContext(where));
    }
  }
  for (const std::string &layer : plan.order)
    if (!inBlocks.count(layer))
      return Status::error("layer '" + layer +
                           "' is not one of the seven linears of a decoder "
                           "block; " +
                           options.passName +
                           " only quantizes those (exclude it)");
  return Status::ok();
}
