//===- WQToGPU.cpp - Kernel modules for quantized linear layers -----------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// The dispatcher: configuration checks, default variants, tile-spec
// parsing, module construction with the `qc.variants` launch records, and
// the convert-wq-to-gpu pass. Every family-specific decision is a call into
// the kernel-family registry (KernelFamily.h: SplitK.cpp, MMA.cpp,
// Dequant.cpp) and every format-specific one into the weight-decoder
// registry (WeightDecoder.h: Int4Decoder.cpp); nothing here names a family
// or a code width.
//
//===----------------------------------------------------------------------===//

#include "qc/Conversion/WQToGPU/WQToGPU.h"
#include "KernelFamily.h"

#include "qc/Conversion/Passes.h"

#include "WQ/IR/WQOps.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "llvm/ADT/StringExtras.h"

#include <set>

namespace mlir::qc {
#define GEN_PASS_DEF_CONVERTWQTOGPUPASS
#include "qc/Conversion/Passes.h.inc"
} // namespace mlir::qc

using namespace mlir;
using namespace mlir::qc;
using namespace mlir::qc::gpugen;

//===----------------------------------------------------------------------===//
// Configurations
//===----------------------------------------------------------------------===//

std::string mlir::qc::checkGPUWeightFormat(const GPULayerConfig &layer) {
  std::string why;
  findWeightDecoder(layer, why);
  return why;
}

std::string mlir::qc::checkGPULayer(const GPULayerConfig &layer) {
  if (std::string why = checkGPUWeightFormat(layer); !why.empty())
    return why;
  if (layer.n <= 0 || layer.k <= 0)
    return "layer shape must be positive, got N = " + std::to_string(layer.n) +
           ", K = " + std::to_string(layer.k);
  if (layer.k % 8 != 0)
    return "GPU kernels need in_features (K) to be a multiple of 8 "
           "(activations are read in aligned pairs and 16-byte chunks), got "
           "K = " +
           std::to_string(layer.k);
  if (layer.groupSize != -1 && (layer.groupSize <= 0 || layer.groupSize % 16))
    return "GPU kernels need group_size = -1 or a positive multiple of 16 "
           "(one group per 16x16 MMA tile), got " +
           std::to_string(layer.groupSize);
  return "";
}

/// The registered family names for messages: "splitk, mma or dequant".
static std::string familyNames() {
  std::string out;
  ArrayRef<std::unique_ptr<KernelFamily>> fams = getKernelFamilies();
  for (size_t i = 0; i < fams.size(); ++i)
    out += (i == 0                 ? ""
            : i + 1 == fams.size() ? " or "
                                   : ", ") +
           fams[i]->name().str();
  return out;
}

LogicalResult
mlir::qc::verifyGPUConfig(const GPULayerConfig &layer,
                          const GPUTileConfig &tile,
                          function_ref<InFlightDiagnostic()> emitError) {
  if (std::string why = checkGPULayer(layer); !why.empty())
    return emitError() << why;
  const KernelFamily *family = findKernelFamily(tile.family);
  if (!family)
    return emitError() << "unknown kernel family '" << tile.family
                       << "' (expected " << familyNames() << ")";
  std::string why;
  const WeightDecoder *decoder = findWeightDecoder(layer, why);
  if (failed(
          family->verifyTile(getLayerDims(layer), tile, *decoder, emitError)))
    return failure();
  SharedMemoryNeeds smem = family->sharedMemory(tile, *decoder);
  // Limits every family shares (a family usually reports its own first,
  // with its formula).
  if (smem.staticBytes > kMaxStaticSharedBytes)
    return emitError() << tile.family << ": " << smem.staticBytes
                       << " bytes of static shared memory exceed the 48 KiB "
                          "limit";
  if (smem.dynamicBytes > kMaxDynamicSharedBytes)
    return emitError() << tile.family << ": " << smem.dynamicBytes
                       << " bytes of dynamic shared memory exceed the "
                       << kMaxDynamicSharedBytes
                       << " bytes any supported GPU grants a CTA";
  return success();
}

SmallVector<GPUTileConfig>
mlir::qc::defaultGPUTileConfigs(const GPULayerConfig &layer, int64_t numSMs) {
  SmallVector<GPUTileConfig> out;
  for (const auto &family : getKernelFamilies())
    family->addDefaultTiles(layer, numSMs, out);
  return out;
}

std::vector<GPURegistryEntry> mlir::qc::listGPUKernelFamilies() {
  std::vector<GPURegistryEntry> out;
  for (const auto &f : getKernelFamilies())
    out.push_back(
        {f->name().str(), f->summary().str(), ::qc::kernelAbiName(f->abi())});
  return out;
}

std::vector<GPURegistryEntry> mlir::qc::listGPUWeightDecoders() {
  std::vector<GPURegistryEntry> out;
  for (const auto &d : getWeightDecoders())
    out.push_back({d->name().str(), d->summary().str(), ""});
  return out;
}

std::string mlir::qc::getGPUModuleName(const GPULayerConfig &layer) {
  std::string g = layer.groupSize == -1 ? std::string("c")
                                        : std::to_string(layer.groupSize);
  return "wq_n" + std::to_string(layer.n) + "_k" + std::to_string(layer.k) +
         "_b" + std::to_string(layer.bits) + "_g" + g +
         (layer.sym ? "_sym" : "_asym");
}

LogicalResult mlir::qc::parseGPUTileConfigs(StringRef text,
                                            SmallVectorImpl<GPUTileConfig> &out,
                                            std::string &error) {
  SmallVector<StringRef> entries;
  text.split(entries, ';', -1, /*KeepEmpty=*/false);
  for (StringRef entry : entries) {
    entry = entry.trim();
    auto [fam, rest] = entry.split(':');
    const KernelFamily *family = findKernelFamily(fam);
    if (!family) {
      error = "unknown kernel family '" + fam.str() + "' (expected " +
              familyNames() + ")";
      return failure();
    }
    GPUTileConfig t = family->defaultTile();
    SmallVector<StringRef> kvs;
    rest.split(kvs, ',', -1, false);
    for (StringRef kv : kvs) {
      auto [key, value] = kv.trim().split('=');
      if (key == "m") {
        auto [lo, hi] = value.split('-');
        if (lo.getAsInteger(10, t.minM) || hi.getAsInteger(10, t.maxM)) {
          error = "bad M range '" + value.str() + "' (expected a-b)";
          return failure();
        }
        continue;
      }
      int64_t v;
      if (value.getAsInteger(10, v)) {
        error = "bad value '" + value.str() + "' for '" + key.str() + "'";
        return failure();
      }
      if (key == "warps")
        t.warps = v;
      else if (key == "split-k")
        t.splitK = v;
      else if (key == "tile-m")
        t.tileM = v;
      else if (key == "tiles-n")
        t.tilesN = v;
      else if (key == "stages")
        t.stages = v;
      else {
        error = "unknown tile key '" + key.str() +
                "' (expected warps, split-k, tile-m, tiles-n, stages or m)";
        return failure();
      }
    }
    out.push_back(t);
  }
  return success();
}

//===----------------------------------------------------------------------===//
// Module construction
//===----------------------------------------------------------------------===//

/// The launch records as an attribute (what quant-kernelgen writes into the
/// artifact, kept in the IR for inspection and tests).
static Attribute variantsToAttr(Builder &b, ArrayRef<GPUKernelVariant> vs) {
  SmallVector<Attribute> out;
  for (const GPUKernelVariant &v : vs) {
    SmallVector<Attribute> launches;
    for (const GPUKernelLaunch &l : v.launches) {
      SmallVector<Attribute> params;
      for (const std::string &p : l.params)
        params.push_back(b.getStringAttr(p));
      launches.push_back(b.getDictionaryAttr({
          b.getNamedAttr("kernel", b.getStringAttr(l.kernel)),
          b.getNamedAttr("block", b.getDenseI32ArrayAttr(
                                      {(int32_t)l.block[0], (int32_t)l.block[1],
                                       (int32_t)l.block[2]})),
          b.getNamedAttr("grid_x", b.getI64IntegerAttr(l.gridX)),
          b.getNamedAttr("tile_m", b.getI64IntegerAttr(l.tileM)),
          b.getNamedAttr("grid_z", b.getI64IntegerAttr(l.gridZ)),
          b.getNamedAttr("shared_bytes", b.getI64IntegerAttr(l.sharedBytes)),
          b.getNamedAttr("params", b.getArrayAttr(params)),
      }));
    }
    out.push_back(b.getDictionaryAttr({
        b.getNamedAttr("family", b.getStringAttr(v.family)),
        b.getNamedAttr("min_m", b.getI64IntegerAttr(v.minM)),
        b.getNamedAttr("max_m", b.getI64IntegerAttr(v.maxM)),
        b.getNamedAttr("launches", b.getArrayAttr(launches)),
        b.getNamedAttr("workspace_bytes_per_row",
                       b.getI64IntegerAttr(v.workspaceBytesPerRow)),
        b.getNamedAttr("zero_workspace", b.getBoolAttr(v.zeroWorkspace)),
    }));
  }
  return b.getArrayAttr(out);
}

gpu::GPUModuleOp
mlir::qc::buildGPULinearModule(OpBuilder &builder, Location loc, StringRef name,
                               const GPULayerConfig &layer,
                               ArrayRef<GPUTileConfig> tiles,
                               SmallVectorImpl<GPUKernelVariant> &variants) {
  ImplicitLocOpBuilder b(loc, builder);
  auto module = gpu::GPUModuleOp::create(b, name);
  LayerDims d = getLayerDims(layer);
  std::string why;
  const WeightDecoder *decoder = findWeightDecoder(layer, why);
  assert(decoder && "layer must pass verifyGPUConfig");
  bool needFinalize = false;
  for (auto [i, tile] : llvm::enumerate(tiles)) {
    const KernelFamily *family = findKernelFamily(tile.family);
    assert(family && "tile must pass verifyGPUConfig");
    GPUKernelVariant v;
    v.family = family->name().str();
    v.abi = family->abi();
    v.minM = tile.minM;
    v.maxM = tile.maxM;
    std::string kname = family->kernelName(i, tile);
    GPUKernelLaunch launch;
    family->build(b, module, kname, d, *decoder, tile, launch);
    v.launches.push_back(launch);
    if (family->usesSplitKWorkspace(tile)) {
      // The fp32 partials of the K slices meet in the workspace; the
      // finalize kernel (one per module) rounds them to y.
      GPUKernelLaunch fin;
      fin.kernel = "finalize";
      fin.block[0] = 256;
      fin.gridX = (d.n + 255) / 256;
      fin.tileM = 1;
      fin.params = {"workspace", "y", "M"};
      v.launches.push_back(fin);
      v.workspaceBytesPerRow = 4 * d.n;
      v.zeroWorkspace = true;
      needFinalize = true;
    }
    variants.push_back(v);
  }
  if (needFinalize) {
    GPUKernelLaunch fin;
    buildFinalizeKernel(b, module, "finalize", d, fin);
  }
  module->setAttr("qc.variants", variantsToAttr(b, variants));
  module->setAttr(
      "qc.layer",
      b.getDictionaryAttr({
          b.getNamedAttr("n", b.getI64IntegerAttr(layer.n)),
          b.getNamedAttr("k", b.getI64IntegerAttr(layer.k)),
          b.getNamedAttr("bits", b.getI64IntegerAttr(layer.bits)),
          b.getNamedAttr("group_size", b.getI64IntegerAttr(layer.groupSize)),
          b.getNamedAttr("sym", b.getBoolAttr(layer.sym)),
      }));
  return module;
}

//===----------------------------------------------------------------------===//
// Pass
//===----------------------------------------------------------------------===//

namespace {

struct ConvertWQToGPUPass
    : mlir::qc::impl::ConvertWQToGPUPassBase<ConvertWQToGPUPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();

    SmallVector<GPUTileConfig> tileList;
    if (!tiles.empty()) {
      std::string err;
      if (failed(parseGPUTileConfigs(tiles, tileList, err))) {
        module.emitError() << "convert-wq-to-gpu: " << err;
        return signalPassFailure();
      }
    }

    // Kernel-only layers from the `shapes` option ("NxK").
    SmallVector<GPULayerConfig> layers;
    for (const std::string &s : shapes) {
      auto [nStr, kStr] = StringRef(s).split('x');
      GPULayerConfig l;
      if (StringRef(nStr).getAsInteger(10, l.n) ||
          StringRef(kStr).getAsInteger(10, l.k)) {
        module.emitError() << "convert-wq-to-gpu: bad shape '" << s
                           << "' (expected NxK, e.g. 4096x11008)";
        return signalPassFailure();
      }
      l.bits = bits;
      l.groupSize = groupSize;
      l.sym = sym;
      layers.push_back(l);
    }

    // Layers of the module: every wq.linear in the kernels' layout (the
    // kernels are named by configuration, so equal layers share a module).
    SmallVector<Operation *> layerOps(layers.size(), module);
    bool wrongLayout = false;
    module.walk([&](wq::LinearOp op) {
      if (op.getLayout() != wq::Layout::mma16x64) {
        op.emitError("convert-wq-to-gpu: the GPU kernels read the mma16x64 "
                     "layout; run wq-repack-mma16x64 first (layout ")
            << wq::stringifyLayout(op.getLayout()) << ")";
        wrongLayout = true;
        return;
      }
      GPULayerConfig l;
      l.n = op.getOutFeatures();
      l.k = op.getInFeatures();
      l.bits = op.getBits();
      l.groupSize = op.getGroupSize();
      l.sym = op.getSym();
      l.actOrder = bool(op.getGIdx());
      l.codebook = bool(op.getCodebook());
      layers.push_back(l);
      layerOps.push_back(op);
    });
    if (wrongLayout)
      return signalPassFailure();

    OpBuilder b(module.getContext());
    b.setInsertionPointToEnd(module.getBody());
    std::set<std::string> seen;
    for (auto [l, where] : llvm::zip(layers, layerOps)) {
      std::string name = getGPUModuleName(l);
      if (!seen.insert(name).second)
        continue;
      SmallVector<GPUTileConfig> cfgs =
          tileList.empty() ? defaultGPUTileConfigs(l, numSms) : tileList;
      for (const GPUTileConfig &t : cfgs)
        if (failed(verifyGPUConfig(l, t, [&] { return where->emitError(); })))
          return signalPassFailure();
      SmallVector<GPUKernelVariant> variants;
      buildGPULinearModule(b, module.getLoc(), name, l, cfgs, variants);
    }
    module->setAttr(gpu::GPUDialect::getContainerModuleAttrName(),
                    b.getUnitAttr());
  }
};

} // namespace
