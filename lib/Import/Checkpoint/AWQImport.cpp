//===- AWQImport.cpp - AutoAWQ GEMM checkpoint import ---------------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// quant_method "awq": AutoAWQ's GEMM packing (../shared/docs/ALGORITHMS.md
// §8.2), 4-bit with zero points, unpacked by unpackAWQ. Import only.
//
//===----------------------------------------------------------------------===//

#include "Checkpoint.h"

#include <algorithm>
#include <cctype>

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

namespace {

/// Reads the AWQ GEMM tensors of `layer` ([N, K] weight) into `q`.
Status readAWQLayer(CheckpointReader &r, const QuantScheme &s,
                    const std::string &layer, int64_t N, int64_t K,
                    QuantizedWeight &q) {
  const std::string file = r.fileOf(layer + ".qweight");
  if (N % 8 != 0)
    return Status::error(file + ": layer '" + layer + "': out_features " +
                         std::to_string(N) +
                         " is not a multiple of 8, which AWQ GEMM packs per "
                         "word");
  if (s.groupSize > 0 && K % s.groupSize != 0)
    return Status::error(
        file + ": layer '" + layer + "': in_features " + std::to_string(K) +
        " is not a multiple of group_size " + std::to_string(s.groupSize) +
        " (AWQ needs K % G == 0)");
  quant::AWQTensors t;
  t.K = K;
  t.N = N;
  t.groupSize = s.groupSize;
  t.sym = false;
  t.numGroups = s.groupSize > 0 ? K / s.groupSize : 1;
  QC_RETURN_IF_ERROR(r.readI32(layer + ".qweight", {K, N / 8}, t.qweight,
                               "in_features x out_features/8, packed along "
                               "out_features"));
  if (!r.has(layer + ".qzeros"))
    return Status::error(file + ": tensor '" + layer + ".qzeros' is missing");
  QC_RETURN_IF_ERROR(r.readI32(layer + ".qzeros", {t.numGroups, N / 8},
                               t.qzeros, "groups x out_features/8"));
  QC_RETURN_IF_ERROR(r.readF16(layer + ".scales", {t.numGroups, N}, t.scales,
                               "groups x out_features"));
  if (Status st = quant::unpackAWQ(t, q); !st)
    return Status::error(file + ": layer '" + layer + "': " + st.message());
  return Status::ok();
}

/// quant_method "awq".
class AWQFormat final : public ImportFormat {
public:
  const char *name() const override { return "awq"; }

  Status parseConfig(const ConfigFields &c, QuantScheme &out) const override {
    std::string key;
    const json::Value *version = c.get({"version"}, key);
    std::string v =
        version && version->isString() ? version->asString() : "gemm";
    std::transform(v.begin(), v.end(), v.begin(),
                   [](unsigned char ch) { return std::tolower(ch); });
    if (v != "gemm")
      return c.fail(key, "is " + json::quote(v) +
                             ": only AutoAWQ's \"gemm\" packing is supported "
                             "(gemv, gemv_fast, marlin and exllama pack "
                             "differently)");
    if (out.bits != 4)
      return c.fail("bits", "is " + std::to_string(out.bits) +
                                ": the AWQ GEMM layout is 4-bit only");
    const json::Value *zp = c.get({"zero_point"}, key);
    if (zp && (!zp->isBool() || !zp->asBool()))
      return c.fail(key, "must be true: AWQ GEMM checkpoints without zero "
                         "points are not supported");
    out.sym = false;
    return Status::ok();
  }

  Status readLayer(CheckpointReader &r, const QuantScheme &s,
                   const std::string &layer, int64_t N, int64_t K,
                   QuantizedWeight &q) const override {
    return readAWQLayer(r, s, layer, N, K, q);
  }
};

} // namespace

const ImportFormat &mlir::qc::checkpoint::getAWQImportFormat() {
  static const AWQFormat format;
  return format;
}
