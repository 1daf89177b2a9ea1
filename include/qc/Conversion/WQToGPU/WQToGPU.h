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
//===----------------------------------------------------------------------===//

#ifndef QC_CONVERSION_WQTOGPU_WQTOGPU_H
#define QC_CONVERSION_WQTOGPU_WQTOGPU_H

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/Support/LLVM.h"

#include <cstdint>
#include <string>
#include <vector>

namespace mlir::qc {

/// One quantized linear layer as the kernels see it: W is N x K (rows are
/// output channels), `bits`-bit codes, groups of `groupSize` input channels
/// along K (-1: one group per row), symmetric (z = 2^(bits-1)) or with an
/// fp16 zero-point tensor.
struct GPULayerConfig {
  int64_t n = 0, k = 0;
  int64_t bits = 4;
  int64_t groupSize = 128;
  bool sym = true;
};

/// The kernel families. `splitk` serves M <= 8 (one n8 MMA column tile of
/// activations, W as the A operand, K split over warps and CTAs); `mma` is
/// the tensor-core GEMM for M up to ~128 (cp.async pipeline, ldmatrix);
/// `dequant` only writes W as fp16 (the dequantize-then-cuBLAS baseline).
enum class GPUKernelFamily { SplitK, MMA, Dequant };

/// A tiling configuration. Fields that a family does not use are ignored.
struct GPUTileConfig {
  GPUKernelFamily family = GPUKernelFamily::SplitK;
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

/// How the runtime launches one kernel (mirrors ArtifactLaunch).
struct GPUKernelLaunch {
  std::string kernel;
  uint32_t block[3] = {1, 1, 1};
  uint32_t gridX = 1, tileM = 1, gridZ = 1, sharedBytes = 0;
  SmallVector<std::string> params;
};

/// One variant: the launches that compute y for M in [minM, maxM], in order.
struct GPUKernelVariant {
  std::string family;
  int64_t minM = 1, maxM = 1;
  SmallVector<GPUKernelLaunch> launches;
  uint64_t workspaceBytesPerRow = 0;
  bool zeroWorkspace = false;
};

/// Checks that the kernels can serve `layer` with `tile` and reports why not
/// through `emitError` (4-bit only, G a multiple of 16 or -1, K % 8 == 0,
/// tile limits, 48 KiB of static shared memory).
LogicalResult verifyGPUConfig(const GPULayerConfig &layer,
                              const GPUTileConfig &tile,
                              function_ref<InFlightDiagnostic()> emitError);

/// The default variants for a layer: splitk for M in [1, 8], then mma with
/// tileM 16 / 32 / 64 up to M = 2^30, then the dequant baseline. `numSMs`
/// sizes the split-K factor.
SmallVector<GPUTileConfig> defaultGPUTileConfigs(const GPULayerConfig &layer,
                                                 int64_t numSMs = 132);

/// Name of the kernel module for a layer, e.g. "wq_n4096_k4096_b4_g128_sym".
std::string getGPUModuleName(const GPULayerConfig &layer);

/// Builds one gpu.module named `name` at the builder's insertion point with
/// the kernels of every config in `tiles` (configs must pass
/// verifyGPUConfig) and returns their launches in `variants`. The module
/// carries the same information as a `qc.variants` attribute.
gpu::GPUModuleOp buildGPULinearModule(OpBuilder &builder, Location loc,
                                      StringRef name,
                                      const GPULayerConfig &layer,
                                      ArrayRef<GPUTileConfig> tiles,
                                      SmallVectorImpl<GPUKernelVariant> &variants);

/// Parses a tile list as written in pass options and by quant-kernelgen:
/// entries separated by ';', each `family:key=value,...`, e.g.
/// "splitk:warps=4,split-k=8,m=1-8;mma:tile-m=64,warps=4,stages=4,m=9-128".
/// Keys: warps, split-k, tile-m, tiles-n, stages, m (range a-b).
LogicalResult parseGPUTileConfigs(StringRef text,
                                  SmallVectorImpl<GPUTileConfig> &out,
                                  std::string &error);

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
