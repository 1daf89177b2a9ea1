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
// Packing follows dialects/WQ/README.md: codes are LSB-first bit streams over
// 32-bit words; `gptq` streams run along K per output column (qweight
// [ceil(K*b/32), N]) with integer zeros stored as z - 1 in streams along N
// (qzeros [groups, ceil(N*b/32)]), `rows` streams run along K per output row
// (qweight [N, ceil(K*b/32)]) with plain i32 zeros [groups, N].
//
//===----------------------------------------------------------------------===//

#include "LayerRewriter.h"

#include "LLM/IR/LLMOps.h"
#include "WQ/IR/WQOps.h"
#include "qc/Import/LoadModel.h"
#include "qc/runtime/Safetensors.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Regex.h"

#include <cstring>

using namespace mlir;
using namespace mlir::qc;
using ::qc::Status;
using ::qc::quant::QuantizedWeight;

namespace {

/// Writes `value` (< 2^bits) as code `index` of the stream held in the
/// words `words[first + index * b / 32 ...]`, where consecutive words of
/// the stream are `stride` apart.
void putCode(std::vector<uint32_t> &words, int64_t first, int64_t stride,
             int64_t index, uint32_t value, int bits) {
  int64_t bit = index * bits;
  int64_t word = bit / 32, shift = bit % 32;
  words[first + word * stride] |= value << shift;
  if (shift + bits > 32)
    words[first + (word + 1) * stride] |= value >> (32 - shift);
}

/// Bytes of a vector of 32-bit words (little-endian host).
std::vector<uint8_t> wordBytes(const std::vector<uint32_t> &words) {
  std::vector<uint8_t> bytes(words.size() * 4);
  std::memcpy(bytes.data(), words.data(), bytes.size());
  return bytes;
}

/// A quantized layer ready to be written: its packed tensors by suffix.
struct PackedLayer {
  std::string layer;
  Operation *op = nullptr;
  QuantizedWeight weight;
  std::map<std::string, ::qc::PackedTensor> tensors; // ".qweight", ...
};

/// Packs `q` into `layout`; fills out.tensors.
Status pack(const QuantizedWeight &q, wq::Layout layout, PackedLayer &out) {
  int64_t n = q.rows, k = q.cols, groups = q.numGroups();
  int bits = q.bits;
  // GPTQ's 3-bit format packs whole 32-code blocks (3 words each).
  if (layout == wq::Layout::gptq && bits == 3 && k % 32 != 0)
    return Status::error("3-bit codes in the gptq layout need K % 32 == 0, "
                         "got K = " + std::to_string(k) +
                         "; use layout=rows or exclude the layer");
  if (layout == wq::Layout::gptq && bits == 3 && !q.sym && n % 32 != 0)
    return Status::error("3-bit zero points in the gptq layout need N % 32 "
                         "== 0, got N = " + std::to_string(n) +
                         "; use layout=rows, sym=true or exclude the layer");
  int64_t kWords = wq::getNumPackedWords(k, bits);
  std::vector<uint32_t> qweight(kWords * n, 0);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < k; ++c) {
      uint32_t code = q.codes[r * k + c];
      if (layout == wq::Layout::gptq)
        putCode(qweight, r, n, c, code, bits); // column r, words strided by N
      else
        putCode(qweight, r * kWords, 1, c, code, bits);
    }
  SmallVector<int64_t, 2> qwShapeSv = wq::getQWeightShape(layout, bits, k, n);
  std::vector<int64_t> qwShape(qwShapeSv.begin(), qwShapeSv.end());
  out.tensors[".qweight"] = {::qc::DType::I32, qwShape, wordBytes(qweight)};

  // Scales [groups, N] in the storage dtype.
  ::qc::PackedTensor scales;
  scales.shape = {groups, n};
  switch (q.scaleDType) {
  case ::qc::quant::ScaleDType::F32: {
    scales.dtype = ::qc::DType::F32;
    scales.bytes.resize(q.scales.size() * 4);
    std::memcpy(scales.bytes.data(), q.scales.data(), scales.bytes.size());
    break;
  }
  case ::qc::quant::ScaleDType::F16:
  case ::qc::quant::ScaleDType::BF16: {
    bool f16 = q.scaleDType == ::qc::quant::ScaleDType::F16;
    scales.dtype = f16 ? ::qc::DType::F16 : ::qc::DType::BF16;
    std::vector<uint16_t> halves(q.scales.size());
    for (size_t i = 0; i < halves.size(); ++i)
      halves[i] = f16 ? ::qc::f32ToF16(q.scales[i]) : ::qc::f32ToBF16(q.scales[i]);
    scales.bytes.resize(halves.size() * 2);
    std::memcpy(scales.bytes.data(), halves.data(), scales.bytes.size());
    break;
  }
  }
  out.tensors[".scales"] = std::move(scales);

  if (!q.sym) {
    uint32_t mask = (1u << bits) - 1;
    if (layout == wq::Layout::gptq) {
      int64_t nWords = wq::getNumPackedWords(n, bits);
      std::vector<uint32_t> qzeros(groups * nWords, 0);
      for (int64_t g = 0; g < groups; ++g)
        for (int64_t r = 0; r < n; ++r) {
          uint32_t z = static_cast<uint32_t>(q.zeros[g * n + r]);
          // GPTQ v1 stores z - 1 (a zero of 0 wraps, which v1 cannot
          // represent faithfully; ../shared/docs/ALGORITHMS.md §14).
          putCode(qzeros, g * nWords, 1, r, (z - 1) & mask, bits);
        }
      out.tensors[".qzeros"] = {::qc::DType::I32, {groups, nWords},
                                wordBytes(qzeros)};
    } else {
      std::vector<uint32_t> zeros(groups * n);
      for (size_t i = 0; i < zeros.size(); ++i)
        zeros[i] = static_cast<uint32_t>(q.zeros[i]);
      out.tensors[".qzeros"] = {::qc::DType::I32, {groups, n}, wordBytes(zeros)};
    }
  }
  if (!q.gIdx.empty()) {
    std::vector<uint32_t> g(q.gIdx.begin(), q.gIdx.end());
    out.tensors[".g_idx"] = {::qc::DType::I32, {k}, wordBytes(g)};
  }
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

std::optional<::qc::quant::ScaleDType>
mlir::qc::parseScaleDType(llvm::StringRef s) {
  if (s == "f16")
    return ::qc::quant::ScaleDType::F16;
  if (s == "bf16")
    return ::qc::quant::ScaleDType::BF16;
  if (s == "f32")
    return ::qc::quant::ScaleDType::F32;
  return std::nullopt;
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
  std::optional<wq::Layout> layout = wq::symbolizeLayout(opts.layout);
  if (!layout)
    return fail("unknown layout '" + opts.layout + "' (expected gptq or rows)");
  llvm::Regex exclude(opts.exclude.empty() ? "$^" : opts.exclude);
  std::string regexError;
  if (!exclude.isValid(regexError))
    return fail("invalid exclude regex '" + opts.exclude + "': " + regexError);

  CheckpointRef ref;
  if (!getCheckpointRef(module, ref))
    return fail("the module does not name its checkpoint (llm.checkpoint); "
                "import it with quant-import");
  ::qc::ModelWeights weights;
  if (Status s = loadCheckpoint(ref, weights); !s)
    return fail(s.message());
  if (auto overlay = module->getAttrOfType<StringAttr>("llm.weights_overlay"))
    if (Status s = ::qc::loadSafetensorsOverlay(overlay.str(), weights); !s)
      return fail(s.message());

  if (opts.checkWeights)
    if (Status s = opts.checkWeights(weights); !s)
      return fail(s.message());

  // Quantize and pack every eligible layer before touching the IR.
  std::vector<PackedLayer> layers;
  WalkResult walk = module.walk([&](llm::LinearOp op) -> WalkResult {
    auto param = op.getWeight().getDefiningOp<llm::ParamOp>();
    if (!param || !param.getName().ends_with(".weight"))
      return WalkResult::advance();
    std::string layer = param.getName().drop_back(strlen(".weight")).str();
    if (exclude.match(layer))
      return WalkResult::advance();
    const ::qc::HostTensor *w = weights.find(param.getName().str());
    if (!w || w->shape.size() != 2) {
      op.emitError() << opts.passName << ": weight '" << param.getName()
                     << "' is not an fp32 matrix in the checkpoint";
      return WalkResult::interrupt();
    }
    PackedLayer packed;
    packed.layer = layer;
    packed.op = op;
    if (Status s = quantize(layer, w->data.data(), w->shape[0], w->shape[1],
                            packed.weight);
        !s) {
      op.emitError() << opts.passName << ": " << s.message();
      return WalkResult::interrupt();
    }
    if (Status s = pack(packed.weight, *layout, packed); !s) {
      op.emitError() << opts.passName << ": layer '" << layer
                     << "': " << s.message();
      return WalkResult::interrupt();
    }
    layers.push_back(std::move(packed));
    return WalkResult::advance();
  });
  if (walk.wasInterrupted())
    return failure();

  // Write every packed tensor (earlier overlays included) atomically.
  for (PackedLayer &l : layers)
    for (auto &[suffix, t] : l.tensors)
      weights.packed[l.layer + suffix] = t;
  ::qc::SafetensorsWriter writer;
  for (const auto &[name, t] : weights.packed)
    if (Status s = writer.addView(name, t.dtype, t.shape, t.bytes.data(),
                                  t.bytes.size());
        !s)
      return fail(s.message());
  llvm::SmallString<256> outPath(opts.weightsOut);
  llvm::sys::fs::make_absolute(outPath);
  if (Status s = writer.writeFile(outPath.str().str()); !s)
    return fail(s.message());

  // Rewrite the IR.
  OpBuilder b(module.getContext());
  for (PackedLayer &l : layers) {
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
    const QuantizedWeight &q = l.weight;
    Type scaleType = cast<RankedTensorType>(scales.getType()).getElementType();
    auto linear = wq::LinearOp::create(
        b, op.getLoc(), op.getType(), op.getX(), qweight, scales, zeros, gIdx,
        op.getBias(), b.getI64IntegerAttr(q.bits),
        b.getI64IntegerAttr(q.groupSize), b.getBoolAttr(q.sym),
        b.getI64IntegerAttr(q.cols), b.getI64IntegerAttr(q.rows),
        TypeAttr::get(scaleType),
        zeros ? TypeAttr::get(b.getI32Type()) : TypeAttr(),
        wq::LayoutAttr::get(b.getContext(), *layout), DenseF32ArrayAttr());
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
