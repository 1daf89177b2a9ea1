//===- GpuRuntime.h - Running an artifact's kernels on a GPU ----*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// GpuRuntime owns one device's primary context and a stream, loads an
// artifact's modules (the cubin built for the device's architecture, else
// PTX that the driver JIT-compiles; always PTX on the qc PTX emulator), holds
// layer tensors in device memory, and launches a layer's variant for a batch
// size M exactly as the manifest says: kernel arguments built from the launch's
// parameter names, grid.y = ceil(M / tileM), workspace sized
// workspaceBytesPerRow * M and zeroed when the variant asks. Every error names
// the layer, variant and kernel.
//
// Nothing here needs the CUDA toolkit at build time (see CudaDriver.h).
//
//===----------------------------------------------------------------------===//

#ifndef QC_RUNTIME_GPURUNTIME_H
#define QC_RUNTIME_GPURUNTIME_H

#include "qc/runtime/Artifact.h"
#include "qc/runtime/CudaDriver.h"
#include "qc/runtime/KernelLayout.h"
#include "qc/runtime/Status.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace qc {

/// What the runtime knows about its device.
struct GpuDeviceInfo {
  std::string name;       ///< e.g. "NVIDIA H100 80GB HBM3"
  int ordinal = 0;        ///< device index
  int ccMajor = 0;        ///< compute capability
  int ccMinor = 0;        ///< compute capability
  int smCount = 0;        ///< multiprocessors
  int l2Bytes = 0;        ///< L2 cache size
  int maxSharedOptin = 0; ///< largest dynamic shared memory per block
  int driverVersion = 0;  ///< e.g. 13000 for CUDA 13.0
  size_t totalMemory = 0; ///< device memory in bytes
  bool emulated = false;  ///< the qc PTX emulator, not a GPU
  /// "sm_90" for compute capability 9.0.
  std::string arch() const;
};

/// Picks the image of `m` to load on a device of compute capability
/// major.minor: a cubin for exactly sm_XYa, else exactly sm_XY, else the
/// newest sm_XW (W <= Y, same major, no 'a' suffix: arch-specific cubins run
/// only on their own architecture), else PTX (the newest "compute_AB" with
/// AB <= XY, or "ptx"). With `ptxOnly` (the PTX emulator, which cannot run
/// SASS) only the PTX images are considered. Returns nullptr when nothing
/// fits.
const ArtifactImage *selectImage(const ArtifactModule &m, int ccMajor,
                                 int ccMinor, bool ptxOnly = false);

class GpuRuntime;

/// A device allocation, freed on destruction.
class DeviceBuffer {
public:
  DeviceBuffer() = default;
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer &&other) noexcept;
  DeviceBuffer &operator=(DeviceBuffer &&other) noexcept;
  DeviceBuffer(const DeviceBuffer &) = delete;
  DeviceBuffer &operator=(const DeviceBuffer &) = delete;

  cuda::CUdeviceptr ptr() const { return p; }
  size_t size() const { return bytes; }

private:
  friend class GpuRuntime;
  const cuda::CudaDriver *driver = nullptr;
  cuda::CUdeviceptr p = 0;
  size_t bytes = 0;
};

/// Device addresses for one launch of a layer, by parameter name. Any
/// parameter a launch names must be set (non-zero); `workspaceBytes` is the
/// capacity at `workspace`.
struct LayerArgs {
  cuda::CUdeviceptr x = 0, y = 0, qweight = 0, scales = 0, zeros = 0, w = 0;
  cuda::CUdeviceptr workspace = 0;
  size_t workspaceBytes = 0;
};

/// A layer's packed weights in device memory.
struct DeviceLayerTensors {
  DeviceBuffer qweight, scales, zeros; ///< zeros empty when symmetric
};

class GpuRuntime {
public:
  /// Loads the driver, opens device `ordinal` and creates a stream. When
  /// the GPU path is unavailable, `state` says why and the Status carries
  /// the one-line explanation (kNoDriverMessage when there is no driver).
  static Status create(std::unique_ptr<GpuRuntime> &out,
                       cuda::DriverState &state, int ordinal = 0,
                       const std::string &library = "libcuda.so.1");
  ~GpuRuntime();
  GpuRuntime(const GpuRuntime &) = delete;
  GpuRuntime &operator=(const GpuRuntime &) = delete;

  const GpuDeviceInfo &device() const { return info; }
  const cuda::CudaDriver &driver() const { return *drv; }
  cuda::CUstream stream() const { return strm; }

  /// Device memory.
  Status alloc(size_t bytes, DeviceBuffer &out, const std::string &what);
  Status upload(cuda::CUdeviceptr dst, const void *src, size_t bytes,
                const std::string &what);
  Status download(void *dst, cuda::CUdeviceptr src, size_t bytes,
                  const std::string &what);
  /// Allocates and uploads `bytes` from `src`.
  Status allocAndUpload(const void *src, size_t bytes, DeviceBuffer &out,
                        const std::string &what);

  /// Loads every module of `a` (see selectImage), resolves every kernel it
  /// lists and checks each launch's shared memory against the device.
  /// `displayName` (the artifact path) starts every message. Replaces any
  /// previously loaded artifact.
  Status loadArtifact(const Artifact &a, const std::string &displayName);

  /// Uploads packed weights.
  Status uploadLayerTensors(const MMA16x64Tensors &t, DeviceLayerTensors &out,
                            const std::string &layerName);

  /// Uploads the packed tensors `layer` references in `a` (fails, naming
  /// the layer, for a kernel-only layer).
  Status uploadLayer(const Artifact &a, const ArtifactLayer &layer,
                     DeviceLayerTensors &out);

  /// Computes y = x W^T for one layer and batch size M and waits for it:
  /// picks the variant whose M range holds M, sizes (and grows) the
  /// runtime's workspace to workspaceBytesPerRow * M, launches and
  /// synchronizes. x: fp16 [M, K], y: fp16 [M, N] device buffers.
  Status runLayer(const ArtifactLayer &layer, const DeviceLayerTensors &w,
                  int M, cuda::CUdeviceptr x, cuda::CUdeviceptr y);

  /// Enqueues `variant`'s launches for batch size M on `stream` (the
  /// runtime's own when null); does not synchronize, so it can be captured
  /// into a CUDA graph. Fails before enqueuing anything when an argument is
  /// missing, the workspace is too small or M is outside the variant.
  Status launch(const ArtifactLayer &layer, const ArtifactVariant &variant,
                int M, const LayerArgs &args, cuda::CUstream stream = nullptr);

  /// Waits for the stream; `what` names the work in the error.
  Status synchronize(const std::string &what);

  /// The image loaded for module `name` ("sm_90a cubin", ...), for reports.
  std::string loadedImage(const std::string &module) const;

private:
  GpuRuntime() = default;
  struct LoadedModule {
    cuda::CUmodule module = nullptr;
    std::string image;                                 ///< "target kind"
    std::map<std::string, cuda::CUfunction> functions; ///< by kernel name
  };
  void unloadModules();

  const cuda::CudaDriver *drv = nullptr;
  GpuDeviceInfo info;
  cuda::CUdevice dev = 0;
  cuda::CUcontext ctx = nullptr;
  cuda::CUstream strm = nullptr;
  std::string artifactName;
  std::map<std::string, LoadedModule> modules;
  DeviceBuffer workspace; ///< runLayer's, grown on demand
};

} // namespace qc

#endif // QC_RUNTIME_GPURUNTIME_H
