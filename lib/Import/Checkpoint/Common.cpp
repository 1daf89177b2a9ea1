//===- Common.cpp - Shared helpers of the checkpoint formats --------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// The helpers every quantized-checkpoint format file uses (Checkpoint.h):
// tensors looked up by parameter name, shapes and dtypes checked, fp16/bf16
// decoded, RoPE row permutations; and readQuantizedLayer, which reads a
// wq.linear back into the format-neutral QuantizedWeight every exporter
// starts from.
//
//===----------------------------------------------------------------------===//

#include "Checkpoint.h"

#include "LLM/IR/LLMOps.h"
#include "WQ/IR/WQOps.h"
#include "qc/Import/QuantizedCheckpoint.h"
#include "qc/runtime/HFCheckpoint.h"

#include <algorithm>
#include <cmath>
#include <cstring>

using namespace mlir;
using namespace mlir::qc;
using namespace mlir::qc::checkpoint;
using ::qc::DType;
using ::qc::ModelConfig;
using ::qc::ModelWeights;
using ::qc::PackedTensor;
using ::qc::Status;
using ::qc::quant::QuantizedWeight;
namespace quant = ::qc::quant;
namespace json = ::qc::json;
namespace fs = std::filesystem;

namespace mlir::qc::checkpoint {

std::string shapeString(const std::vector<int64_t> &shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

bool endsWith(const std::string &s, const std::string &suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string joinPath(const std::string &dir, const std::string &name) {
  return dir.empty() || dir.back() == '/' ? dir + name : dir + "/" + name;
}

/// The name of the llm.param defining `v`, or empty.
std::string paramName(Value v) {
  if (!v)
    return "";
  if (auto p = v.getDefiningOp<llm::ParamOp>())
    return p.getName().str();
  return "";
}

Status findStored(const ModelWeights &w, const std::string &name,
                  StoredTensor &out) {
  auto p = w.packed.find(name);
  if (p != w.packed.end()) {
    out = {p->second.dtype, p->second.shape, p->second.bytes.data(),
           p->second.bytes.size()};
    return Status::ok();
  }
  if (const ::qc::HostTensor *t = w.find(name)) {
    out = {DType::F32, t->shape,
           reinterpret_cast<const uint8_t *>(t->data.data()),
           t->data.size() * sizeof(float)};
    return Status::ok();
  }
  return Status::error("tensor '" + name +
                       "' is in neither the checkpoint nor the overlay");
}

Status expectTensor(const StoredTensor &t, const std::string &name,
                    const std::vector<DType> &dtypes,
                    const std::vector<int64_t> &shape) {
  if (std::find(dtypes.begin(), dtypes.end(), t.dtype) == dtypes.end())
    return Status::error("tensor '" + name + "' has dtype " +
                         ::qc::dtypeName(t.dtype) + ", expected " +
                         ::qc::dtypeName(dtypes[0]));
  if (t.shape != shape)
    return Status::error("tensor '" + name + "' has shape " +
                         shapeString(t.shape) + ", expected " +
                         shapeString(shape));
  return Status::ok();
}

/// Float values of an F16/BF16/F32 tensor.
std::vector<float> decodeFloats(const StoredTensor &t) {
  size_t n = t.bytes / (::qc::dtypeBits(t.dtype) / 8);
  std::vector<float> out(n);
  if (t.dtype == DType::F32) {
    std::memcpy(out.data(), t.data, n * sizeof(float));
    return out;
  }
  std::vector<uint16_t> halves = fromBytes<uint16_t>(t.data, n);
  for (size_t i = 0; i < n; ++i)
    out[i] = t.dtype == DType::F16 ? ::qc::f16ToF32(halves[i])
                                   : ::qc::bf16ToF32(halves[i]);
  return out;
}

quant::ScaleDType scaleDTypeOf(Type t) {
  if (t.isF16())
    return quant::ScaleDType::F16;
  if (t.isBF16())
    return quant::ScaleDType::BF16;
  return quant::ScaleDType::F32;
}

/// True for the output projections a LLaMA-family decoder has; the
/// modelTensorSpecs names of their weights end in "_proj.weight".
bool isProjectionWeight(const std::string &name) {
  return endsWith(name, "_proj.weight");
}

/// srcOfDst[d] = the interleaved channel that rotate_half channel d comes
/// from, derived from the float export's own row permutation so the two
/// exports cannot disagree.
std::vector<int64_t> ropePermutation(int64_t heads, int64_t headDim) {
  std::vector<float> index(static_cast<size_t>(heads * headDim));
  for (size_t i = 0; i < index.size(); ++i)
    index[i] = static_cast<float>(i);
  std::vector<float> permuted(index.size());
  ::qc::permuteInterleavedToHalfSplit(index.data(), permuted.data(), heads,
                                      headDim, 1);
  std::vector<int64_t> srcOfDst(index.size());
  for (size_t d = 0; d < index.size(); ++d)
    srcOfDst[d] = static_cast<int64_t>(permuted[d]);
  return srcOfDst;
}

/// `^name$` as a Python regular expression matching exactly `name`
/// (GPTQModel matches `dynamic` keys with re.match against module names).
std::string exactPattern(const std::string &name) {
  std::string out = "^";
  for (char c : name) {
    if (std::strchr(".^$*+?()[]{}|\\", c))
      out += '\\';
    out += c;
  }
  return out + "$";
}

} // namespace mlir::qc::checkpoint

void mlir::qc::permuteQuantizedRows(QuantizedWeight &q,
                                    const std::vector<int64_t> &srcOfDst) {
  const int64_t N = q.rows, K = q.cols, ng = q.numGroups();
  QuantizedWeight p = q;
  for (int64_t d = 0; d < N; ++d) {
    int64_t s = srcOfDst[d];
    std::memcpy(p.codes.data() + d * K, q.codes.data() + s * K,
                static_cast<size_t>(K));
    for (int64_t g = 0; g < ng; ++g) {
      p.scales[g * N + d] = q.scales[g * N + s];
      p.zeros[g * N + d] = q.zeros[g * N + s];
    }
  }
  q = std::move(p);
}

//===----------------------------------------------------------------------===//
// Reading a wq.linear back
//===----------------------------------------------------------------------===//

Status mlir::qc::readQuantizedLayer(Operation *op, const ModelWeights &weights,
                                    std::string &layer, QuantizedWeight &out) {
  auto lin = dyn_cast<wq::LinearOp>(op);
  if (!lin)
    return Status::error("not a wq.linear op");
  std::string qwName = paramName(lin.getQweight());
  if (!endsWith(qwName, ".qweight"))
    return Status::error("a wq.linear's qweight is not an llm.param named "
                         "'<layer>.qweight'");
  layer = qwName.substr(0, qwName.size() - strlen(".qweight"));
  auto fail = [&](const Status &s) {
    return s.withContext("layer '" + layer + "'");
  };
  if (lin.getCodebook())
    return fail(Status::error(
        "has a codebook (NF4): its codes are not a uniform integer grid, so "
        "no GPTQ/AWQ-style tensors can hold them"));

  const int bits = static_cast<int>(lin.getBits());
  const int64_t G = lin.getGroupSize(), K = lin.getInFeatures(),
                N = lin.getOutFeatures();
  const int64_t ng = wq::getNumGroups(K, G);
  const bool sym = lin.getSym();
  const wq::Layout layout = lin.getLayout();

  StoredTensor qw, sc, zs, gi;
  std::string scName = paramName(lin.getScales()),
              zName = paramName(lin.getZeros()),
              gName = paramName(lin.getGIdx());
  if (scName.empty() || (lin.getZeros() && zName.empty()) ||
      (lin.getGIdx() && gName.empty()))
    return fail(Status::error("a packed operand is not an llm.param"));
  QC_RETURN_IF_ERROR(fail(findStored(weights, qwName, qw)));
  QC_RETURN_IF_ERROR(fail(findStored(weights, scName, sc)));
  // Only the two interchange layouts are read back here. The GPU layout
  // mma16x64 has a 1-D qweight (its shape has one extent), which this code
  // once indexed as [words, N] and read past; its tiles are no GPTQ/rows
  // words either, so such a layer is refused by name.
  if (layout != wq::Layout::gptq && layout != wq::Layout::rows)
    return fail(Status::error(
        "has layout " + wq::stringifyLayout(layout).str() +
        ", which no checkpoint format holds (the exports read the gptq and "
        "rows layouts)"));
  auto qwShape = wq::getQWeightShape(layout, bits, K, N);
  QC_RETURN_IF_ERROR(
      fail(expectTensor(qw, qwName, {DType::I32},
                        std::vector<int64_t>(qwShape.begin(), qwShape.end()))));
  QC_RETURN_IF_ERROR(fail(expectTensor(
      sc, scName, {DType::F16, DType::BF16, DType::F32}, {ng, N})));
  std::vector<float> scales = decodeFloats(sc);
  std::vector<int32_t> gIdx;
  if (!gName.empty()) {
    QC_RETURN_IF_ERROR(fail(findStored(weights, gName, gi)));
    QC_RETURN_IF_ERROR(fail(expectTensor(gi, gName, {DType::I32}, {K})));
    gIdx = fromBytes<int32_t>(gi.data, static_cast<size_t>(K));
  }
  bool floatZeros = false;
  if (!zName.empty()) {
    QC_RETURN_IF_ERROR(fail(findStored(weights, zName, zs)));
    floatZeros = zs.dtype != DType::I32;
    int64_t cols = layout == wq::Layout::gptq && !floatZeros
                       ? quant::packedWordCount(N, bits)
                       : N;
    QC_RETURN_IF_ERROR(fail(expectTensor(
        zs, zName,
        floatZeros ? std::vector<DType>{DType::F32, DType::F16, DType::BF16}
                   : std::vector<DType>{DType::I32},
        {ng, cols})));
  }

  if (layout == wq::Layout::gptq) {
    quant::GPTQTensors t;
    t.bits = bits;
    t.groupSize = G;
    t.sym = sym;
    t.format = quant::GPTQFormat::V1;
    t.inFeatures = t.K = K;
    t.N = N;
    t.numGroups = ng;
    t.qweight = fromBytes<int32_t>(qw.data, qw.bytes / 4);
    // unpackGPTQ takes fp16 patterns; the real values are restored below,
    // so scales of other dtypes are not rounded.
    t.scales.resize(scales.size());
    for (size_t i = 0; i < scales.size(); ++i)
      t.scales[i] = ::qc::f32ToF16(std::isfinite(scales[i]) ? scales[i] : 0.0f);
    if (!zName.empty() && !floatZeros) {
      t.qzeros = fromBytes<int32_t>(zs.data, zs.bytes / 4);
    } else {
      // Symmetric layers carry no zeros in the IR; v1 stores 2^(b-1) as
      // 2^(b-1) - 1. Fractional (HQQ) zeros are kept unpacked as floats in
      // the gptq layout: unpack with a stand-in (stored 0, decoded 1) and
      // put the real values back below.
      std::vector<uint8_t> row(static_cast<size_t>(N),
                               sym ? (1 << (bits - 1)) - 1 : 0);
      int64_t cols = quant::packedWordCount(N, bits);
      t.qzeros.assign(static_cast<size_t>(ng * cols), 0);
      for (int64_t g = 0; g < ng; ++g)
        quant::packCodeStream(row.data(), 1, N, bits,
                              t.qzeros.data() + g * cols, 1);
    }
    t.gIdx = gIdx;
    if (t.gIdx.empty()) {
      t.gIdx.resize(static_cast<size_t>(K));
      for (int64_t k = 0; k < K; ++k)
        t.gIdx[k] = static_cast<int32_t>(G > 0 ? k / G : 0);
    }
    QC_RETURN_IF_ERROR(fail(quant::unpackGPTQ(t, out)));
    out.scales = scales;
    out.scaleDType = scaleDTypeOf(lin.getScaleDtype());
    if (floatZeros)
      out.zeros = decodeFloats(zs);
  } else {
    quant::RowsTensors t;
    t.bits = bits;
    t.groupSize = G;
    t.sym = sym;
    t.scaleDType = scaleDTypeOf(lin.getScaleDtype());
    t.N = N;
    t.K = K;
    t.numGroups = ng;
    t.qweight = fromBytes<int32_t>(qw.data, qw.bytes / 4);
    t.scales = scales;
    if (!zName.empty()) {
      if (floatZeros)
        t.floatZeros = decodeFloats(zs);
      else
        t.zeros = fromBytes<int32_t>(zs.data, zs.bytes / 4);
    }
    t.gIdx = gIdx;
    QC_RETURN_IF_ERROR(fail(quant::unpackRows(t, out)));
  }
  return fail(out.verify());
}
