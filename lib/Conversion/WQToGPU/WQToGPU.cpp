//===- WQToGPU.cpp - Kernel modules for quantized linear layers -----------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Configuration checks, default variants, the `qc.variants` launch records
// and the convert-wq-to-gpu pass. The kernels themselves are built in
// SplitK.cpp and MMA.cpp; the shared helpers and the in-register dequant
// live in KernelBuilder.cpp.
//
//===----------------------------------------------------------------------===//

#include "qc/Conversion/WQToGPU/WQToGPU.h"
#include "KernelBuilder.h"

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

static StringRef familyName(GPUKernelFamily f) {
  switch (f) {
  case GPUKernelFamily::SplitK:
    return "splitk";
  case GPUKernelFamily::MMA:
    return "mma";
  case GPUKernelFamily::Dequant:
    return "dequant";
  }
  llvm_unreachable("unknown kernel family");
}

LogicalResult
mlir::qc::verifyGPUConfig(const GPULayerConfig &layer,
                          const GPUTileConfig &tile,
                          function_ref<InFlightDiagnostic()> emitError) {
  if (layer.bits != 4)
    return emitError() << "GPU kernels support bits = 4 only (the mma16x64 "
                          "layout), got bits = "
                       << layer.bits;
  if (layer.n <= 0 || layer.k <= 0)
    return emitError() << "layer shape must be positive, got N = " << layer.n
                       << ", K = " << layer.k;
  if (layer.k % 8 != 0)
    return emitError() << "GPU kernels need in_features (K) to be a multiple "
                          "of 8 (activations are read in aligned pairs and "
                          "16-byte chunks), got K = "
                       << layer.k;
  if (layer.groupSize != -1 && (layer.groupSize <= 0 || layer.groupSize % 16))
    return emitError() << "GPU kernels need group_size = -1 or a positive "
                          "multiple of 16 (one group per 16x16 MMA tile), "
                          "got "
                       << layer.groupSize;
  int64_t kc = (layer.k + 63) / 64;
  StringRef fam = familyName(tile.family);
  if (tile.family == GPUKernelFamily::Dequant)
    return success(); // one thread per word, no tiling
  if (tile.minM < 1 || tile.maxM < tile.minM)
    return emitError() << fam << ": invalid M range [" << tile.minM << ", "
                       << tile.maxM << "]";
  if (tile.splitK < 1 || tile.splitK > kc)
    return emitError() << fam << ": split-k must be in [1, " << kc
                       << "] (the number of k64 chunks), got " << tile.splitK;
  if (tile.warps < 1 || tile.warps > 32)
    return emitError() << fam << ": warps must be in [1, 32], got "
                       << tile.warps;
  if (tile.family == GPUKernelFamily::SplitK) {
    if (tile.tileM != 8)
      return emitError() << "splitk: tile-m is fixed to 8 (one n8 MMA "
                            "column tile), got "
                         << tile.tileM;
    if (tile.maxM > 8)
      return emitError() << "splitk serves M <= 8, got an M range up to "
                         << tile.maxM << "; use the mma family above 8";
    if (tile.stages < 1 || tile.stages > 8)
      return emitError() << "splitk: stages (register prefetch depth) must "
                            "be in [1, 8], got "
                         << tile.stages;
    return success();
  }
  if (tile.tileM < 8 || tile.tileM > 128 || tile.tileM % 8)
    return emitError() << "mma: tile-m must be a multiple of 8 in [8, 128], "
                          "got "
                       << tile.tileM;
  if (tile.tilesN < 1 || tile.tilesN > 4)
    return emitError() << "mma: tiles-n must be in [1, 4], got "
                       << tile.tilesN;
  if (tile.stages < 2 || tile.stages > 8)
    return emitError() << "mma: stages must be in [2, 8], got " << tile.stages;
  int64_t threads = 32 * tile.warps;
  if ((tile.tileM * 8) % threads)
    return emitError() << "mma: the x tile (tile-m * 8 = " << tile.tileM * 8
                       << " 16-byte copies) must be a multiple of the "
                       << threads << " threads (32 * warps)";
  int64_t smem = mmaSharedBytes(tile);
  if (smem > 48 * 1024)
    return emitError() << "mma: " << smem
                       << " bytes of shared memory exceed the 48 KiB static "
                          "limit (stages * (tile-m * 128 + warps * tiles-n * "
                          "512))";
  return success();
}

SmallVector<GPUTileConfig>
mlir::qc::defaultGPUTileConfigs(const GPULayerConfig &layer, int64_t numSMs) {
  int64_t nt = (layer.n + 15) / 16, kc = (layer.k + 63) / 64;
  SmallVector<GPUTileConfig> out;
  // splitk: aim for ~4 CTAs per SM while each warp keeps >= 4 chunks.
  GPUTileConfig s;
  s.family = GPUKernelFamily::SplitK;
  s.warps = 4;
  s.stages = 2;
  s.splitK = std::clamp<int64_t>((4 * numSMs + nt - 1) / nt, 1,
                                 std::max<int64_t>(1, kc / 16));
  s.minM = 1;
  s.maxM = 8;
  out.push_back(s);
  struct {
    int64_t tileM, minM, maxM;
  } mmas[] = {{16, 9, 16}, {32, 17, 32}, {64, 33, kOpenEndedM}};
  for (auto m : mmas) {
    GPUTileConfig t;
    t.family = GPUKernelFamily::MMA;
    t.warps = 4;
    t.tilesN = 1;
    t.tileM = m.tileM;
    t.stages = m.tileM <= 32 ? 4 : 3;
    int64_t ctas = (nt + 3) / 4;
    t.splitK = std::clamp<int64_t>((2 * numSMs + ctas - 1) / ctas, 1,
                                   std::max<int64_t>(1, kc / 16));
    t.minM = m.minM;
    t.maxM = m.maxM;
    out.push_back(t);
  }
  GPUTileConfig dq;
  dq.family = GPUKernelFamily::Dequant;
  dq.minM = 1;
  dq.maxM = kOpenEndedM;
  out.push_back(dq);
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
    GPUTileConfig t;
    if (fam == "splitk") {
      t.family = GPUKernelFamily::SplitK;
      t.stages = 2;
      t.minM = 1;
      t.maxM = 8;
    } else if (fam == "mma") {
      t.family = GPUKernelFamily::MMA;
      t.tileM = 64;
      t.stages = 3;
      t.minM = 9;
      t.maxM = kOpenEndedM;
    } else if (fam == "dequant") {
      t.family = GPUKernelFamily::Dequant;
      t.minM = 1;
      t.maxM = kOpenEndedM;
    } else {
      error = "unknown kernel family '" + fam.str() +
              "' (expected splitk, mma or dequant)";
      return failure();
    }
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
                                      {(int32_t)l.block[0],
                                       (int32_t)l.block[1],
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

gpu::GPUModuleOp mlir::qc::buildGPULinearModule(
    OpBuilder &builder, Location loc, StringRef name,
    const GPULayerConfig &layer, ArrayRef<GPUTileConfig> tiles,
    SmallVectorImpl<GPUKernelVariant> &variants) {
  ImplicitLocOpBuilder b(loc, builder);
  auto module = gpu::GPUModuleOp::create(b, name);
  LayerDims d = getLayerDims(layer);
  bool needFinalize = false;
  for (auto [i, tile] : llvm::enumerate(tiles)) {
    GPUKernelVariant v;
    v.family = familyName(tile.family).str();
    v.minM = tile.minM;
    v.maxM = tile.maxM;
    std::string kname = v.family + "_" + std::to_string(i);
    if (tile.family == GPUKernelFamily::MMA)
      kname += "_m" + std::to_string(tile.tileM);
    GPUKernelLaunch launch;
    if (tile.family == GPUKernelFamily::SplitK)
      buildSplitKKernel(b, module, kname, d, tile, launch);
    else if (tile.family == GPUKernelFamily::MMA)
      buildMMAKernel(b, module, kname, d, tile, launch);
    else
      buildDequantKernel(b, module, kname, d, launch);
    v.launches.push_back(launch);
    if (tile.family != GPUKernelFamily::Dequant && tile.splitK > 1) {
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
  module->setAttr("qc.layer",
                  b.getDictionaryAttr({
                      b.getNamedAttr("n", b.getI64IntegerAttr(layer.n)),
                      b.getNamedAttr("k", b.getI64IntegerAttr(layer.k)),
                      b.getNamedAttr("bits", b.getI64IntegerAttr(layer.bits)),
                      b.getNamedAttr("group_size",
                                     b.getI64IntegerAttr(layer.groupSize)),
                      b.getNamedAttr("sym", b.getBoolAttr(layer.sym)),
                  }));
  return module;
}

//===----------------------------------------------------------------------===//
// Pass
//===----------------------------------------------------------------------===//

namespace {

struct ConvertWQToGPUPass
    : qc::impl::ConvertWQToGPUPassBase<ConvertWQToGPUPass> {
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
