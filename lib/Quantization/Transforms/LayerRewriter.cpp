//===- LayerRewriter.cpp - Shared plumbing of the quantization passes -----===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// The rewrite is transactional: all layers are quantized and packed first,
// the overlay is written (atomically, to a temporary then renamed), and only
// then is the IR changed. A failure anywhere leaves both the module and the
// previous overlay untouched.
//
// Packing (dialects/WQ/README.md) is delegated to the algorithm library's
// packers, which refuse what a layout cannot represent (e.g. a zero point of
// 0 in GPTQ v1, 3-bit codes with K % 32 != 0 in the gptq layout).
//
//===----------------------------------------------------------------------===//

#include "LayerRewriter.h"
#include "RewriteJournal.h"

#include "LLM/IR/LLMOps.h"
#include "WQ/IR/WQOps.h"
#include "qc/Import/LoadModel.h"
#include "qc/runtime/OutputSafety.h"
#include "qc/Quantization/Algorithms/OptionRanges.h"
#include "qc/Quantization/Algorithms/Packing.h"
#include "qc/runtime/Safetensors.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Regex.h"

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <set>

using namespace mlir;
using namespace mlir::qc;
using ::qc::Status;
using ::qc::quant::QuantizedWeight;

namespace {

/// Bytes of a vector of 32-bit values (little-endian host).
template <typename T>
std::vector<uint8_t> rawBytes(const std::vector<T> &values) {
  std::vector<uint8_t> bytes(values.size() * sizeof(T));
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

/// A quantized layer ready to be written: its packed tensors by suffix.
struct PackedLayer {
  std::string layer;
  Operation *op = nullptr;
  LayerResult result;
  std::map<std::string, ::qc::PackedTensor> tensors; // ".qweight", ...
};

/// Scales [groups, N] in their storage dtype.
::qc::PackedTensor packScales(const std::vector<float> &values,
                              ::qc::quant::ScaleDType type, int64_t groups,
                              int64_t n) {
  ::qc::PackedTensor t;
  t.shape = {groups, n};
  if (type == ::qc::quant::ScaleDType::F32) {
    t.dtype = ::qc::DType::F32;
    t.bytes = rawBytes(values);
    return t;
  }
  bool f16 = type == ::qc::quant::ScaleDType::F16;
  t.dtype = f16 ? ::qc::DType::F16 : ::qc::DType::BF16;
  std::vector<uint16_t> halves(values.size());
  for (size_t i = 0; i < halves.size(); ++i)
    halves[i] = f16 ? ::qc::f32ToF16(values[i]) : ::qc::f32ToBF16(values[i]);
  t.bytes = rawBytes(halves);
  return t;
}

/// Packs `q` into `layout` with the tested packers of
/// lib/Quantization/Algorithms/Packing (GPTQ v1 interchange or rows) and
/// fills out.tensors. A g_idx equal to the default k / G is not emitted.
Status pack(QuantizedWeight q, wq::Layout layout, PackedLayer &out) {
  if (q.hasTrivialGIdx())
    q.gIdx.clear();
  int64_t n = q.rows, groups = q.numGroups();
  if (layout == wq::Layout::gptq) {
    if (q.scaleDType != ::qc::quant::ScaleDType::F16)
      return Status::error("the gptq layout stores fp16 scales; use "
                           "scale-dtype=f16 or layout=rows");
    ::qc::quant::GPTQTensors t;
    QC_RETURN_IF_ERROR(::qc::quant::packGPTQ(q, {}, t));
    out.tensors[".qweight"] = {
        ::qc::DType::I32, {t.qweightRows(), n}, rawBytes(t.qweight)};
    ::qc::PackedTensor scales;
    scales.dtype = ::qc::DType::F16;
    scales.shape = {groups, n};
    scales.bytes = rawBytes(t.scales);
    out.tensors[".scales"] = std::move(scales);
    if (!q.sym)
      out.tensors[".qzeros"] = {
          ::qc::DType::I32, {groups, t.qzerosCols()}, rawBytes(t.qzeros)};
    if (!q.gIdx.empty())
      out.tensors[".g_idx"] = {::qc::DType::I32, {q.cols}, rawBytes(t.gIdx)};
    return Status::ok();
  }
  ::qc::quant::RowsTensors t;
  // Fractional zero points (HQQ) are stored as floats.
  ::qc::quant::RowsPackOptions rowsOptions;
  for (float z : q.zeros)
    rowsOptions.floatZeros |= !q.sym && z != std::nearbyint(z);
  QC_RETURN_IF_ERROR(::qc::quant::packRows(q, rowsOptions, t));
  out.tensors[".qweight"] = {
      ::qc::DType::I32, {n, t.qweightCols()}, rawBytes(t.qweight)};
  out.tensors[".scales"] = packScales(t.scales, q.scaleDType, groups, n);
  if (!q.sym && rowsOptions.floatZeros)
    out.tensors[".qzeros"] = {
        ::qc::DType::F32, {groups, n}, rawBytes(t.floatZeros)};
  else if (!q.sym)
    out.tensors[".qzeros"] = {::qc::DType::I32, {groups, n}, rawBytes(t.zeros)};
  if (!q.gIdx.empty())
    out.tensors[".g_idx"] = {::qc::DType::I32, {q.cols}, rawBytes(t.gIdx)};
  return Status::ok();
}

/// The MLIR element type of a packed tensor's dtype.
Type elementTypeOf(OpBuilder &b, ::qc::DType dtype) {
  switch (dtype) {
  case ::qc::DType::F16:
    return b.getF16Type();
  case ::qc::DType::BF16:
    return b.getBF16Type();
  case ::qc::DType::F32:
    return b.getF32Type();
  default:
    return b.getI32Type();
  }
}

} // namespace

::qc::QuantizationObserver::~QuantizationObserver() = default;

static thread_local ::qc::QuantizationObserver *currentObserver = nullptr;

::qc::QuantizationObserver * ::qc::setQuantizationObserver(
    ::qc::QuantizationObserver *observer) {
  std::swap(observer, currentObserver);
  return observer;
}

::qc::QuantizationObserver * ::qc::getQuantizationObserver() {
  return currentObserver;
}

LogicalResult mlir::qc::checkOptionRanges(
    ModuleOp module, const std::string &passName, const std::string &method,
    std::initializer_list<std::pair<const char *, int64_t>> ints,
    std::initializer_list<std::pair<const char *, double>> reals) {
  for (const auto &[name, value] : ints)
    if (Status s = ::qc::quant::checkIntOption(method, name, value); !s)
      return module.emitError() << passName << ": option " << s.message();
  for (const auto &[name, value] : reals)
    if (Status s = ::qc::quant::checkRealOption(method, name, value); !s)
      return module.emitError() << passName << ": option " << s.message();
  return success();
}

LogicalResult mlir::qc::initRewriteOptions(
    ModuleOp module, const std::string &passName, int64_t bits,
    int64_t groupSize, bool sym, ::qc::quant::ScaleDType scaleDType,
    WQPackLayout layout, const std::string &exclude,
    const std::string &weightsOut, const std::vector<std::string> &overrides,
    LayerRewriteOptions &opts) {
  // "wq-gptq" -> "gptq": the method's entry in OptionRanges.h.
  std::string method = llvm::StringRef(passName).drop_front(3).str();
  if (failed(checkOptionRanges(module, passName, method,
                               {{"bits", bits}, {"group-size", groupSize}})))
    return failure();
  opts = LayerRewriteOptions{exclude, layout, weightsOut, passName};
  opts.config.bits = static_cast<int>(bits);
  opts.config.groupSize = groupSize;
  opts.config.sym = sym;
  opts.config.scaleDType = scaleDType;
  opts.overrides = overrides;
  return success();
}

LogicalResult mlir::qc::setJournal(ModuleOp module, std::unique_ptr<Pass> clone,
                                   const std::string &journal, bool hasTrace,
                                   LayerRewriteOptions &opts) {
  opts.journal = journal;
  if (journal.empty())
    return success();
  std::string error;
  auto onError = [&](const Twine &msg) {
    error = msg.str();
    return failure();
  };
  std::string blank = "weights-out=- journal=-";
  if (hasTrace)
    blank += " trace=-";
  if (failed(clone->initializeOptions(blank, onError)))
    return module.emitError() << "internal error: " << error;
  llvm::raw_string_ostream os(opts.identity);
  clone->printAsTextualPipeline(os);
  return success();
}

/// The identity of a journaled rewrite (RewriteJournal.h): the pass, the
/// trace, every input file's size and modification time, the layout and
/// each planned layer's configuration, one "key: value" per line so that a
/// mismatch can name what changed.
static std::string journalIdentity(ModuleOp module,
                                   const LayerRewriteOptions &opts,
                                   wq::Layout layout, const LayerPlan &plan) {
  std::string id = "pass: " + opts.identity + "\n";
  if (!opts.traceIdentity.empty())
    id += "trace: " + opts.traceIdentity + "\n";
  std::vector<std::string> inputs;
  CheckpointRef ref;
  if (getCheckpointRef(module, ref))
    inputs = ::qc::inputFilesOf(ref.path);
  if (auto overlay = module->getAttrOfType<StringAttr>("llm.weights_overlay"))
    inputs.push_back(overlay.str());
  for (const std::string &path : inputs) {
    llvm::SmallString<256> abs(path);
    llvm::sys::fs::make_absolute(abs);
    llvm::sys::fs::file_status st;
    std::string stamp = "missing";
    if (!llvm::sys::fs::status(abs, st))
      stamp = std::to_string(st.getSize()) + " bytes, modified " +
              std::to_string(
                  st.getLastModificationTime().time_since_epoch().count());
    id += "input: " + abs.str().str() + " " + stamp + "\n";
  }
  id += std::string("layout: ") +
        (layout == wq::Layout::rows ? "rows" : "gptq") + "\n";
  for (const std::string &layer : plan.order) {
    const ::qc::quant::QuantConfig &c = plan.configs.at(layer);
    id += "layer: " + layer + " bits=" + std::to_string(c.bits) +
          " group-size=" + std::to_string(c.groupSize) +
          " sym=" + (c.sym ? "true" : "false") + "\n";
  }
  return id;
}

static std::atomic<bool> gLoadWholeModelForTesting{false};

void mlir::qc::setLoadWholeModelForTesting(bool wholeModel) {
  gLoadWholeModelForTesting.store(wholeModel);
}

LogicalResult mlir::qc::rewriteQuantizedLayers(ModuleOp module,
                                               const LayerRewriteOptions &opts,
                                               const LayerQuantizer &quantize) {
  auto fail = [&](const Twine &msg) {
    return module.emitError() << opts.passName << ": " << msg;
  };
  if (opts.weightsOut.empty())
    return fail("the weights-out option is required (the safetensors file "
                "that receives the packed tensors)");
  // The option parser admits only auto, gptq and rows (WQPackLayout).
  const bool autoLayout = opts.layout == WQPackLayout::Auto;
  wq::Layout layout =
      opts.layout == WQPackLayout::Rows ? wq::Layout::rows : wq::Layout::gptq;
  llvm::Regex exclude(opts.exclude.empty() ? "$^" : opts.exclude);
  std::string regexError;
  if (!exclude.isValid(regexError))
    return fail("invalid exclude regex '" + opts.exclude + "': " + regexError);

  std::vector<LayerOverride> overrides;
  if (Status s = parseLayerOverrides(opts.overrides, overrides); !s)
    return fail(s.message());

  // The overlay must not replace any file of the checkpoint it is computed
  // from. Rewriting the module's current overlay is allowed (passes chained
  // in one pipeline do it): it is read whole before the new one is written
  // atomically, and every tensor it held is carried over.
  {
    std::vector<std::string> inputs;
    CheckpointRef ref;
    if (getCheckpointRef(module, ref))
      inputs = ::qc::inputFilesOf(ref.path);
    if (Status s = ::qc::checkOutputIsNotAnInput(opts.weightsOut, inputs,
                                                 "weights-out");
        !s)
      return fail(s.message());
  }

  // Streaming (see rewriteQuantizedLayers): weights are read as each layer
  // (block) is reached.
  bool wholeModel = gLoadWholeModelForTesting.load();
  ::qc::ModelWeights weights;
  ::qc::LoadOptions loadOptions;
  loadOptions.lazy = true;
  if (Status s = loadModuleWeights(module, weights, loadOptions); !s)
    return fail(s.message());
  if (wholeModel)
    if (Status s = weights.materializeAll(); !s)
      return fail(s.message());

  if (opts.checkWeights)
    if (Status s = opts.checkWeights(weights); !s)
      return fail(s.message());

  // The plan: every eligible layer with its resolved configuration, and the
  // first linear of each layer, on which per-layer diagnostics are reported
  // (so that they point at the offending op, not at the whole module).
  LayerPlan plan;
  std::map<std::string, Operation *> firstOpOf;
  module.walk([&](llm::LinearOp op) {
    auto param = op.getWeight().getDefiningOp<llm::ParamOp>();
    if (!param || !param.getName().ends_with(".weight"))
      return;
    std::string layer = param.getName().drop_back(strlen(".weight")).str();
    if (exclude.match(layer))
      return;
    ::qc::quant::QuantConfig cfg = opts.config;
    if (!resolveLayerConfig(overrides, layer, cfg) || plan.configs.count(layer))
      return;
    plan.order.push_back(layer);
    plan.configs[layer] = cfg;
    firstOpOf[layer] = op;
  });

  // The layout must hold every planned layer: checked from the shapes now,
  // before calibration-driven methods spend minutes on the layers.
  if (layout == wq::Layout::gptq && !opts.floatOnly) {
    std::string misfit;
    Operation *misfitOp = nullptr;
    for (const std::string &layer : plan.order) {
      const ::qc::HostTensor *w = weights.find(layer + ".weight");
      if (!w || w->shape.size() != 2)
        continue; // Reported with the layer below.
      Status s = ::qc::quant::checkGPTQLayoutFits(w->shape[0], w->shape[1],
                                                  *plan.find(layer));
      if (s && opts.fractionalZeros)
        s = Status::error("fractional zero points cannot be stored in the "
                          "gptq layout (set round-zeros=true)");
      if (s)
        continue;
      misfit = "layer '" + layer + "' [" + std::to_string(w->shape[0]) + "x" +
               std::to_string(w->shape[1]) + "]: " + s.message();
      misfitOp = firstOpOf[layer];
      break;
    }
    if (!misfit.empty() && !autoLayout)
      return misfitOp->emitError()
             << opts.passName << ": " << misfit
             << "; use layout=rows (or layout=auto, which picks rows when the "
                "gptq layout cannot hold a layer)";
    if (!misfit.empty()) {
      layout = wq::Layout::rows;
      module.emitRemark() << opts.passName
                          << ": layout=auto chose the rows layout for every "
                             "layer because "
                          << misfit;
    }
  }

  ::qc::QuantizationObserver *observer = ::qc::getQuantizationObserver();
  if (observer)
    observer->passStarted(opts.passName, plan.order.size());
  // The output path, and the writer that collects the packed tensors in a
  // spill file beside it as each layer is done (so that the packed model
  // is never all in memory).
  llvm::SmallString<256> outPath(opts.weightsOut);
  llvm::sys::fs::make_absolute(outPath);
  ::qc::SafetensorsWriter writer;
  if (Status s = writer.spillTo(llvm::sys::path::parent_path(outPath).str(),
                                outPath.str().str());
      !s)
    return fail(s.message());

  // Every quantized layer is packed and its bytes moved to the writer as
  // soon as it is done; `layers` keeps what the IR rewrite needs (shapes,
  // dtypes, the layer's parameters). Entries made by a block-wise method's
  // sink have no op yet: the walk below adds one entry per linear op.
  std::vector<PackedLayer> layers;
  std::map<std::string, size_t> packedIndex; // layer -> its entry in layers
  // Layers passed to the observer so far (its progress index; `layers`
  // also holds a second entry per op for restored and block-wise layers).
  int64_t reportedCount = 0;
  std::unique_ptr<RewriteJournal> journal;
  if (!opts.journal.empty())
    journal = std::make_unique<RewriteJournal>();
  std::set<std::string> written; // tensor names added
  auto commit = [&](const std::string &layer, LayerResult &result,
                    Operation *op,
                    std::chrono::steady_clock::time_point start) -> Status {
    PackedLayer packed;
    packed.layer = layer;
    packed.op = op;
    packed.result = std::move(result);
    if (!packed.result.codebook.empty() && layout != wq::Layout::rows)
      return Status::error("layer '" + layer +
                           "': codebook formats are stored in the rows "
                           "layout");
    QC_RETURN_IF_ERROR(pack(packed.result.weight, layout, packed)
                           .withContext("layer '" + layer + "'"));
    ::qc::LayerRecord &rec = packed.result.record;
    rec.layer = layer;
    rec.method = opts.passName;
    rec.bits = packed.result.weight.bits;
    rec.groupSize = packed.result.weight.groupSize;
    rec.sym = packed.result.weight.sym;
    if (rec.seconds == 0.0)
      rec.seconds = std::chrono::duration<double>(
                        std::chrono::steady_clock::now() - start)
                        .count();
    if (observer && !packed.result.reported)
      observer->layerDone(rec, reportedCount++, plan.order.size());
    if (journal)
      QC_RETURN_IF_ERROR(journal->addLayer(
          layer, rec, packed.result.weight.rows, packed.result.weight.cols,
          packed.result.codebook, packed.tensors));
    for (auto &[suffix, t] : packed.tensors) {
      QC_RETURN_IF_ERROR(
          writer.add(layer + suffix, t.dtype, t.shape, std::move(t.bytes)));
      written.insert(layer + suffix);
      std::vector<uint8_t>().swap(t.bytes);
    }
    QuantizedWeight &q = packed.result.weight;
    std::vector<uint8_t>().swap(q.codes);
    std::vector<float>().swap(q.scales);
    std::vector<float>().swap(q.zeros);
    std::vector<int32_t>().swap(q.gIdx);
    packedIndex[layer] = layers.size();
    layers.push_back(std::move(packed));
    return Status::ok();
  };

  if (journal) {
    // Layers an interrupted run finished: their tensors are read from the
    // journal's files (kept mapped until the overlay is written) and their
    // ops are rewritten like the others'.
    if (Status s = journal->open(opts.journal,
                                 journalIdentity(module, opts, layout, plan));
        !s)
      return fail(s.message());
    if (observer && !journal->layers().empty())
      observer->layersResumed(journal->layers().size(), opts.journal);
    for (const JournaledLayer &j : journal->layers()) {
      const ::qc::HostTensor *w = weights.find(j.record.layer + ".weight");
      if (!plan.find(j.record.layer) || packedIndex.count(j.record.layer) ||
          !w || w->shape.size() != 2 || w->shape[0] != j.rows ||
          w->shape[1] != j.cols)
        return fail(opts.journal + ": layer '" + j.record.layer +
                    "' does not match a layer this run quantizes (remove " +
                    opts.journal + " to start over)");
      PackedLayer packed;
      packed.layer = j.record.layer;
      packed.result.record = j.record;
      packed.result.codebook = j.codebook;
      QuantizedWeight &q = packed.result.weight;
      q.bits = j.record.bits;
      q.groupSize = j.record.groupSize;
      q.sym = j.record.sym;
      q.rows = j.rows;
      q.cols = j.cols;
      const ::qc::SafetensorsFile &file = journal->unitFile(j.unit);
      for (const std::string &suffix : j.suffixes) {
        const ::qc::TensorInfo *info = file.find(j.record.layer + suffix);
        ::qc::PackedTensor &t = packed.tensors[suffix];
        t.dtype = info->dtype;
        t.shape = info->shape;
        if (Status s = writer.addView(info->name, info->dtype, info->shape,
                                      file.tensorData(*info), info->byteSize());
            !s)
          return fail(s.message());
        written.insert(info->name);
      }
      if (observer)
        observer->layerDone(j.record, reportedCount++, plan.order.size());
      packedIndex[packed.layer] = layers.size();
      layers.push_back(std::move(packed));
    }
  }

  if (opts.prepare) {
    LayerSink sink = [&](const std::string &layer,
                         LayerResult &result) -> Status {
      const ::qc::HostTensor *w = weights.find(layer + ".weight");
      if (!plan.find(layer) || !w || w->shape.size() != 2 ||
          result.weight.rows != w->shape[0] ||
          result.weight.cols != w->shape[1])
        return Status::error("layer '" + layer +
                             "': internal error: the method's result does "
                             "not match a planned layer");
      if (packedIndex.count(layer))
        return Status::error("layer '" + layer +
                             "': internal error: quantized twice");
      return commit(layer, result, nullptr, std::chrono::steady_clock::now());
    };
    if (Status s = opts.prepare(weights, plan, BlockSink{sink, journal.get()});
        !s)
      return fail(s.message());
  }

  // Quantize and pack every eligible layer before touching the IR.
  WalkResult walk = module.walk([&](llm::LinearOp op) -> WalkResult {
    auto param = op.getWeight().getDefiningOp<llm::ParamOp>();
    if (!param || !param.getName().ends_with(".weight"))
      return WalkResult::advance();
    std::string layer = param.getName().drop_back(strlen(".weight")).str();
    const ::qc::quant::QuantConfig *cfg = plan.find(layer);
    if (!cfg || opts.floatOnly)
      return WalkResult::advance();
    const ::qc::HostTensor *w = weights.find(param.getName().str());
    if (!w || w->shape.size() != 2) {
      op.emitError() << opts.passName << ": weight '" << param.getName()
                     << "' is not an fp32 matrix in the checkpoint";
      return WalkResult::interrupt();
    }
    // Done already (by a block-wise method, or for an earlier linear on
    // the same weight): the op reuses those tensors.
    if (auto it = packedIndex.find(layer); it != packedIndex.end()) {
      PackedLayer again = layers[it->second];
      again.op = op;
      layers.push_back(std::move(again));
      return WalkResult::advance();
    }
    auto start = std::chrono::steady_clock::now();
    if (Status s = weights.materialize(param.getName().str()); !s) {
      op.emitError() << opts.passName << ": " << s.message();
      return WalkResult::interrupt();
    }
    LayerResult result;
    Status quantized =
        quantize(layer, w->data.data(), w->shape[0], w->shape[1], *cfg, result);
    weights.release(param.getName().str());
    if (quantized)
      quantized = commit(layer, result, op, start);
    if (quantized && journal)
      quantized = journal->finishUnit(-1, nullptr, {}, {}, {});
    if (!quantized) {
      op.emitError() << opts.passName << ": " << quantized.message();
      return WalkResult::interrupt();
    }
    return WalkResult::advance();
  });
  if (walk.wasInterrupted())
    return failure();

  // Packed tensors of earlier overlays that no layer replaced are carried
  // over.
  for (const auto &[name, t] : weights.packed)
    if (!written.count(name))
      if (Status s = writer.addView(name, t.dtype, t.shape, t.bytes.data(),
                                    t.bytes.size());
          !s)
        return fail(s.message());
  // Float tensors that live in the overlay (f32 scales of earlier passes,
  // norms AWQ folded scales into) are carried over.
  for (const std::string &name : weights.overlaid)
    if (const ::qc::HostTensor *t = weights.find(name))
      if (Status s = writer.addF32(name, t->shape, t->data.data()); !s)
        return fail(s.message());
  // Under quant-opt the file is staged: published only when the whole run
  // (the IR output included) succeeded. Asked only now, so that a failed
  // pass stages nothing.
  std::string stageError;
  std::string writePath = ::qc::stagePath(outPath.str().str(), stageError);
  if (writePath.empty())
    return fail(stageError);
  if (Status s = writer.writeFile(writePath); !s) {
    // The user named the final path; the staged sibling is an internal
    // name (and is removed when the run fails), so errors name the former.
    std::string msg = s.message();
    const std::string finalPath = outPath.str().str();
    if (writePath != finalPath)
      for (size_t at = msg.find(writePath); at != std::string::npos;
           at = msg.find(writePath, at + finalPath.size()))
        msg.replace(at, writePath.size(), finalPath);
    return fail(msg);
  }

  // Rewrite the IR.
  OpBuilder b(module.getContext());
  for (PackedLayer &l : layers) {
    if (!l.op)
      continue; // a block-wise method's entry; its ops have their own
    auto op = cast<llm::LinearOp>(l.op);
    b.setInsertionPoint(op);
    auto param = [&](const std::string &suffix) -> Value {
      auto it = l.tensors.find(suffix);
      if (it == l.tensors.end())
        return Value();
      auto type = RankedTensorType::get(it->second.shape,
                                        elementTypeOf(b, it->second.dtype));
      return llm::ParamOp::create(b, op.getLoc(), type,
                                  b.getStringAttr(l.layer + suffix));
    };
    Value qweight = param(".qweight"), scales = param(".scales"),
          zeros = param(".qzeros"), gIdx = param(".g_idx");
    const QuantizedWeight &q = l.result.weight;
    Type scaleType = cast<RankedTensorType>(scales.getType()).getElementType();
    auto linear = wq::LinearOp::create(
        b, op.getLoc(), op.getType(), op.getX(), qweight, scales, zeros, gIdx,
        op.getBias(), b.getI64IntegerAttr(q.bits),
        b.getI64IntegerAttr(q.groupSize), b.getBoolAttr(q.sym),
        b.getI64IntegerAttr(q.cols), b.getI64IntegerAttr(q.rows),
        TypeAttr::get(scaleType),
        zeros ? TypeAttr::get(
                    cast<RankedTensorType>(zeros.getType()).getElementType())
              : TypeAttr(),
        wq::LayoutAttr::get(b.getContext(), layout),
        l.result.codebook.empty()
            ? DenseF32ArrayAttr()
            : DenseF32ArrayAttr::get(b.getContext(), l.result.codebook));
    Value oldWeight = op.getWeight();
    op.replaceAllUsesWith(linear.getResult());
    op.erase();
    if (oldWeight.use_empty())
      oldWeight.getDefiningOp()->erase();
  }
  module->setAttr("llm.weights_overlay",
                  StringAttr::get(module.getContext(), outPath.str()));
  return success();
}
