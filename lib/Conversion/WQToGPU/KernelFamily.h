//===- KernelFamily.h - The kernel-family interface -------------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Private to lib/Conversion/WQToGPU. A KernelFamily is one way of computing
// a quantized linear layer on the GPU (splitk, mma, dequant, ...): which
// layers and tilings it serves, its tile-spec defaults and default
// variants, its shared-memory needs, the kernel ABI its launches follow and
// the builder of its kernel. The dispatcher (WQToGPU.cpp: parsing,
// verification, default variants, module construction), quant-kernelgen
// and, through the artifact's manifest, the runtime and quant-bench read
// only this interface: no code outside a family's own file names it.
//
// Registration: each family is one file X.cpp defining createX() (declared
// by Registry.def, which CMake generates from the list in this directory's
// CMakeLists.txt); the list order is the registry's order (default
// variants, listings). See docs/ARCHITECTURE.md, "Adding a kernel family".
//
//===----------------------------------------------------------------------===//

#ifndef QC_LIB_CONVERSION_WQTOGPU_KERNELFAMILY_H
#define QC_LIB_CONVERSION_WQTOGPU_KERNELFAMILY_H

#include "KernelBuilder.h"
#include "WeightDecoder.h"

#include "qc/runtime/KernelAbi.h"

#include <memory>

namespace mlir::qc::gpugen {

/// Shared memory one CTA of a kernel uses, in bytes.
struct SharedMemoryNeeds {
  /// Declared in the kernel (llvm.mlir.global in address space 3); the
  /// PTX ISA caps it at 48 KiB.
  int64_t staticBytes = 0;
  /// Requested at launch (GPUKernelLaunch::sharedBytes); above 48 KiB the
  /// runtime opts the kernel in with cuFuncSetAttribute(
  /// CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES) and refuses a device
  /// whose opt-in limit is lower (GpuRuntime::loadArtifact).
  int64_t dynamicBytes = 0;
};

/// The largest static shared memory of a kernel (PTX ISA).
constexpr int64_t kMaxStaticSharedBytes = 48 * 1024;
/// The largest dynamic shared memory any supported GPU grants a CTA (sm_90:
/// 227 KiB; sm_80: 163 KiB, checked per device by the runtime).
constexpr int64_t kMaxDynamicSharedBytes = 227 * 1024;

/// One kernel family. Implementations are stateless singletons owned by
/// the registry (getKernelFamilies()).
class KernelFamily {
public:
  virtual ~KernelFamily();

  /// The name in tile specs, kernel names, qc.variants and the artifact.
  virtual StringRef name() const = 0;
  /// One line for listings and --help.
  virtual StringRef summary() const = 0;
  /// The ABI of its launches: which parameters they take and whether the
  /// runtime chooses the variant by M (recorded in the artifact manifest).
  virtual ::qc::KernelAbi abi() const = 0;

  /// A tile-spec entry "name:key=value,..." starts from this (family set);
  /// the keys then override fields.
  virtual GPUTileConfig defaultTile() const = 0;
  /// Appends the variants this family contributes to a layer's defaults
  /// (defaultGPUTileConfigs; registry order, each family's M ranges).
  virtual void addDefaultTiles(const GPULayerConfig &layer, int64_t numSMs,
                               SmallVectorImpl<GPUTileConfig> &out) const = 0;

  /// Applicability: whether the family can build `tile` for a layer with
  /// dims `d` decoded by `decoder`; reports the first reason it cannot
  /// through `emitError`. The layer itself has passed the family-
  /// independent checks (shape, K % 8, group size, a decoder).
  virtual LogicalResult
  verifyTile(const LayerDims &d, const GPUTileConfig &tile,
             const WeightDecoder &decoder,
             function_ref<InFlightDiagnostic()> emitError) const = 0;
  /// Shared memory of the kernel for `tile`.
  virtual SharedMemoryNeeds sharedMemory(const GPUTileConfig &tile,
                                         const WeightDecoder &decoder) const {
    (void)tile;
    (void)decoder;
    return {};
  }
  /// Whether a variant of `tile` adds fp32 partials into the workspace and
  /// needs the module's `finalize` launch after its own (split-K).
  virtual bool usesSplitKWorkspace(const GPUTileConfig &tile) const {
    return tile.splitK > 1;
  }
  /// The kernel name of the `index`-th variant of a module.
  virtual std::string kernelName(int64_t index,
                                 const GPUTileConfig &tile) const {
    (void)tile;
    return name().str() + "_" + std::to_string(index);
  }

  /// Builds kernel `kernel` for `tile` into `module` and describes its
  /// launch (geometry, dynamic shared memory, parameters).
  virtual void build(ImplicitLocOpBuilder &b, gpu::GPUModuleOp module,
                     StringRef kernel, const LayerDims &d,
                     const WeightDecoder &decoder, const GPUTileConfig &tile,
                     GPUKernelLaunch &launch) const = 0;
};

/// Every registered family, in registration order.
ArrayRef<std::unique_ptr<KernelFamily>> getKernelFamilies();

/// The family called `name`, or null.
const KernelFamily *findKernelFamily(StringRef name);

/// The checks every tiled family shares (M range, split-K within the
/// number of k64 chunks, warps in [1, 32]); messages start with the family
/// name.
LogicalResult verifyCommonTiling(const KernelFamily &family, const LayerDims &d,
                                 const GPUTileConfig &tile,
                                 function_ref<InFlightDiagnostic()> emitError);

// The factories of the registered families and decoders, one per file.
#define QC_KERNEL_FAMILY(X) std::unique_ptr<KernelFamily> create##X();
#define QC_WEIGHT_DECODER(X) std::unique_ptr<WeightDecoder> create##X();
#include "Registry.def"
#undef QC_KERNEL_FAMILY
#undef QC_WEIGHT_DECODER

} // namespace mlir::qc::gpugen

#endif // QC_LIB_CONVERSION_WQTOGPU_KERNELFAMILY_H
