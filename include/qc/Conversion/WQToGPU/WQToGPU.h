//===- WQToGPU.h - Fused dequantize-GEMM kernel generation ------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Builds `gpu.module`s of fused dequantize-GEMM kernels for one weight-only
// quantized linear layer y[M, N] = x[M, K] W^T, W read in the "mma16x64"
// kernel layout (runtime/include/qc/runtime/KernelLayout.h, restated in
// dialects/WQ/README.md). The layer's shape and scheme are compile-time
// constants of the kernels; M is a runtime argument. The kernels use the
// gpu, nvgpu, nvvm, arith, vector, scf and llvm dialects and lower with
// `qc-gpu-to-binary` (include/qc/Target/CUDA/CUDATarget.h).
//
// Kernel ABI (shared with the runtime): every pointer is an i64 device
// address passed by value (nvgpu types in gpu.func arguments do not lower),
// M is an i32. The launch geometry of every kernel is returned as
// GPUKernelVariant records and attached to the module as `qc.variants`.
//
// The kernel families (splitk, mma, dequant, ...) and the weight decoders
// (int4) are registries private to lib/Conversion/WQToGPU (KernelFamily.h,
// WeightDecoder.h); this header names no family: tile configurations carry
// the family's name, and listGPUKernelFamilies() / listGPUWeightDecoders()
// describe what is registered.
//
//===----------------------------------------------------------------------===//

#ifndef QC_CONVERSION_WQTOGPU_WQTOGPU_H
#define QC_CONVERSION_WQTOGPU_WQTOGPU_H

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/Support/LLVM.h"

#include "qc/runtime/KernelAbi.h"

#include <cstdint>
#include <string>
#include <vector>

namespace mlir::qc {

/// One quantized linear layer as the kernels see it: W is N x K (rows are
/// output channels), `bits`-bit codes, groups of `groupSize` input channels
/// along K (-1: one group per row), symmetric (z = 2^(bits-1)) or with an
/// fp16 zero-point tensor. `actOrder` (a g_idx permutation) and `codebook`
/// (NF4) describe formats that need their own weight decoder.
struct GPULayerConfig {
  int64_t n = 0, k = 0;
  int64_t bits = 4;
  int64_t groupSize = 128;
  bool sym = true;
  bool actOrder = false;
  bool codebook = false;
};

/// A tiling configuration of one kernel family (by its registered name:
/// "splitk", "mma", "dequant", ...). Fields that a family does not use are
/// ignored.
struct GPUTileConfig {
  std::string family = "splitk";
  /// splitk: warps per CTA splitting the K range of one n16 tile (reduced
  /// through shared memory); mma: warps per CTA along N.
  int64_t warps = 4;
  /// CTAs along K (grid.z). Above 1 the partial sums are added into an fp32
  /// workspace [M, N] with atomics and a second kernel writes y.
  int64_t splitK = 1;
  /// Activation rows per CTA (grid.y = ceil(M / tileM)). splitk: 8.
  int64_t tileM = 8;
  /// mma: n16 tiles per warp.
  int64_t tilesN = 1;
  /// mma: cp.async pipeline depth (shared-memory stages); splitk: 128-bit
  /// weight loads a warp keeps in flight ahead of its MMAs (register
  /// prefetch depth).
  int64_t stages = 2;
  /// The M range this variant serves (inclusive).
  int64_t minM = 1, maxM = 8;
};

/// The largest M a variant can serve: variants (and dequant's tileM, so
/// that grid.y = 1) use it to mean "no upper bound".
constexpr int64_t kOpenEndedM = int64_t(1) << 30;

/// A CUtensorMap kernel parameter (Hopper TMA): the runtime encodes it with
/// cuTensorMapEncodeTiled for the tensor named `tensor` and passes the
/// 128-byte descriptor by value. Prepared for TMA families; no registered
/// family uses one yet and the artifact format cannot record one, so
/// quant-kernelgen refuses such a launch with a message.
struct GPUTensorMapParam {
  /// The tensor described: an artifact parameter name ("x", "qweight").
  std::string tensor;
  /// Bytes per element (2 for fp16, 4 for packed i32 words).
  uint32_t elementBytes = 2;
  /// Box (the tile one TMA copy moves into shared memory), innermost
  /// dimension first, in elements.
  SmallVector<uint32_t, 5> box;
  /// Shared-memory swizzle of the box: 0 (none), 32, 64 or 128 bytes.
  uint32_t swizzleBytes = 0;
};

/// How the runtime launches one kernel (mirrors ArtifactLaunch).
struct GPUKernelLaunch {
  std::string kernel;
  uint32_t block[3] = {1, 1, 1};
  uint32_t gridX = 1, tileM = 1, gridZ = 1;
  /// Dynamic shared memory per CTA. Above 48 KiB the runtime opts the
  /// kernel in (cuFuncSetAttribute, MAX_DYNAMIC_SHARED_SIZE_BYTES) when it
  /// loads the artifact, and refuses a device that allows less.
  uint32_t sharedBytes = 0;
  /// Parameter names in argument order (ArtifactLaunch::params); a
  /// tensor-map parameter is named "tmap:<tensor>" and described in
  /// `tensorMaps`.
  SmallVector<std::string> params;
  /// The tensor-map parameters, in the order of their "tmap:" params.
  std::vector<GPUTensorMapParam> tensorMaps;
};

/// One variant: the launches that compute y for M in [minM, maxM], in order.
struct GPUKernelVariant {
  std::string family;
  /// The ABI of the family's launches (recorded in the artifact).
  ::qc::KernelAbi abi = ::qc::KernelAbi::Gemm;
  int64_t minM = 1, maxM = 1;
  SmallVector<GPUKernelLaunch> launches;
  uint64_t workspaceBytesPerRow = 0;
  bool zeroWorkspace = false;
};

/// The reason no registered weight decoder can decode `layer`'s format
/// (code width, codebook, act-order), or "" when one can.
std::string checkGPUWeightFormat(const GPULayerConfig &layer);

/// The reason no kernel can serve `layer` whatever the tiling (no weight
/// decoder for its format, shape, K % 8, group size), or "" when some can.
std::string checkGPULayer(const GPULayerConfig &layer);

/// Checks that the kernels can serve `layer` with `tile` and reports why not
/// through `emitError`: checkGPULayer, then the family's applicability
/// (tile limits, 48 KiB of static shared memory, the decoder's word count).
LogicalResult verifyGPUConfig(const GPULayerConfig &layer,
                              const GPUTileConfig &tile,
                              function_ref<InFlightDiagnostic()> emitError);

/// The default variants for a layer: each registered family's, in registry
/// order (splitk for M in [1, 8], then mma with tileM 16 / 32 / 64 up to
/// M = 2^30, then the dequant baseline). `numSMs` sizes the split-K factor.
SmallVector<GPUTileConfig> defaultGPUTileConfigs(const GPULayerConfig &layer,
                                                 int64_t numSMs = 132);

/// Name of the kernel module for a layer, e.g. "wq_n4096_k4096_b4_g128_sym".
std::string getGPUModuleName(const GPULayerConfig &layer);

/// Builds one gpu.module named `name` at the builder's insertion point with
/// the kernels of every config in `tiles` (configs must pass
/// verifyGPUConfig) and returns their launches in `variants`. The module
/// carries the same information as a `qc.variants` attribute.
gpu::GPUModuleOp
buildGPULinearModule(OpBuilder &builder, Location loc, StringRef name,
                     const GPULayerConfig &layer, ArrayRef<GPUTileConfig> tiles,
                     SmallVectorImpl<GPUKernelVariant> &variants);

/// Parses a tile list as written in pass options and by quant-kernelgen:
/// entries separated by ';', each `family:key=value,...`, e.g.
/// "splitk:warps=4,split-k=8,m=1-8;mma:tile-m=64,warps=4,stages=4,m=9-128".
/// Keys: warps, split-k, tile-m, tiles-n, stages, m (range a-b).
LogicalResult parseGPUTileConfigs(StringRef text,
                                  SmallVectorImpl<GPUTileConfig> &out,
                                  std::string &error);

/// A registered kernel family or weight decoder, for listings and help.
struct GPURegistryEntry {
  std::string name;    ///< "splitk", "int4", ...
  std::string summary; ///< one line
  /// Families: the ABI of their launches ("gemm", "dequant_w").
  std::string abi;
};

/// The registered kernel families, in registry order.
std::vector<GPURegistryEntry> listGPUKernelFamilies();

/// The registered weight decoders, in registry order.
std::vector<GPURegistryEntry> listGPUWeightDecoders();

/// Unpacks the 4-bit codes of a GPTQ-layout qweight ([ceil(K/8), N]
/// row-major, column n = LSB-first stream of q[n, 0..K)) into row-major
/// codes [N*K] (the input of packMMA16x64).
void unpackGPTQCodes4(int64_t n, int64_t k, const int32_t *qweight,
                      std::vector<uint8_t> &codes);

/// Decodes GPTQ v1 integer zeros ([groups, ceil(N/8)], stored z - 1) into
/// float zero points [groups*N].
void unpackGPTQZerosV1(int64_t n, int64_t groups, const int32_t *qzeros,
                       std::vector<float> &zeros);

} // namespace mlir::qc

#endif // QC_CONVERSION_WQTOGPU_WQTOGPU_H
