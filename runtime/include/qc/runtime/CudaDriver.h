//===- CudaDriver.h - The CUDA driver API, loaded at run time ---*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// The runtime must build and start on machines without CUDA, so it never
// links libcuda (a binary linked with -lcuda does not even start without
// the driver) and never includes cuda.h (the toolkit may be absent at build
// time). Instead it opens libcuda.so.1 with dlopen and looks up the few
// entry points it uses, declared here with the CUDA 13 signatures and the
// versioned symbol names cuda.h maps them to (cuMemAlloc -> cuMemAlloc_v2,
// cuGraphInstantiate -> cuGraphInstantiateWithFlags, ...). The same is done
// for cuBLAS (libcublas.so.13), which quant-bench compares against.
//
//===----------------------------------------------------------------------===//

#ifndef QC_RUNTIME_CUDADRIVER_H
#define QC_RUNTIME_CUDADRIVER_H

#include "qc/runtime/Status.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace qc {
namespace cuda {

// Driver API types, ABI-identical to cuda.h's (64-bit host).
using CUresult = int;
using CUdevice = int;
using CUdeviceptr = unsigned long long;
using CUcontext = struct CUctx_st *;
using CUmodule = struct CUmod_st *;
using CUfunction = struct CUfunc_st *;
using CUstream = struct CUstream_st *;
using CUevent = struct CUevent_st *;
using CUgraph = struct CUgraph_st *;
using CUgraphExec = struct CUgraphExec_st *;

// The enumerator values used, from cuda.h (CUDA 13.0).
constexpr CUresult CUDA_SUCCESS = 0;
constexpr CUresult CUDA_ERROR_STUB_LIBRARY = 34;
constexpr CUresult CUDA_ERROR_NO_DEVICE = 100;
constexpr int CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16;
constexpr int CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE = 38;
constexpr int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75;
constexpr int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76;
constexpr int CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97;
constexpr int CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8;
constexpr int CU_JIT_ERROR_LOG_BUFFER = 5;
constexpr int CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES = 6;
constexpr unsigned CU_EVENT_DEFAULT = 0;
constexpr int CU_STREAM_CAPTURE_MODE_THREAD_LOCAL = 1;

/// Why the GPU path is unavailable, when it is.
enum class DriverState {
  Ready,    ///< libcuda loaded and cuInit succeeded
  NotFound, ///< libcuda.so.1 could not be opened
  NoDevice, ///< the library loaded but cuInit failed (no GPU, stub library)
  Broken,   ///< the library lacks an entry point this build needs
};

/// The one line printed when there is no driver, so that every tool says
/// the same thing.
extern const char *const kNoDriverMessage;

/// The driver's entry points. Obtain one with CudaDriver::load; it stays
/// loaded for the life of the process (unloading libcuda is not supported by
/// NVIDIA and would invalidate every handle).
struct CudaDriver {
  CUresult (*cuInit)(unsigned flags);
  CUresult (*cuDriverGetVersion)(int *version);
  CUresult (*cuGetErrorString)(CUresult error, const char **str);
  CUresult (*cuGetErrorName)(CUresult error, const char **str);
  CUresult (*cuDeviceGetCount)(int *count);
  CUresult (*cuDeviceGet)(CUdevice *device, int ordinal);
  CUresult (*cuDeviceGetName)(char *name, int len, CUdevice dev);
  CUresult (*cuDeviceGetAttribute)(int *value, int attrib, CUdevice dev);
  CUresult (*cuDevicePrimaryCtxRetain)(CUcontext *ctx, CUdevice dev);
  CUresult (*cuDevicePrimaryCtxRelease)(CUdevice dev); // _v2
  CUresult (*cuCtxSetCurrent)(CUcontext ctx);
  CUresult (*cuCtxSynchronize)();
  CUresult (*cuModuleLoadDataEx)(CUmodule *module, const void *image,
                                 unsigned numOptions, int *options,
                                 void **optionValues);
  CUresult (*cuModuleUnload)(CUmodule module);
  CUresult (*cuModuleGetFunction)(CUfunction *fn, CUmodule module,
                                  const char *name);
  CUresult (*cuFuncSetAttribute)(CUfunction fn, int attrib, int value);
  CUresult (*cuMemAlloc)(CUdeviceptr *ptr, size_t bytes); // _v2
  CUresult (*cuMemFree)(CUdeviceptr ptr);                 // _v2
  CUresult (*cuMemGetInfo)(size_t *free, size_t *total);  // _v2
  CUresult (*cuMemcpyHtoD)(CUdeviceptr dst, const void *src, size_t bytes);
  CUresult (*cuMemcpyDtoH)(void *dst, CUdeviceptr src, size_t bytes);
  CUresult (*cuMemcpyDtoD)(CUdeviceptr dst, CUdeviceptr src, size_t bytes);
  CUresult (*cuMemcpyDtoDAsync)(CUdeviceptr dst, CUdeviceptr src, size_t bytes,
                                CUstream stream);
  CUresult (*cuMemsetD8)(CUdeviceptr dst, unsigned char value, size_t n);
  CUresult (*cuMemsetD8Async)(CUdeviceptr dst, unsigned char value, size_t n,
                              CUstream stream);
  CUresult (*cuLaunchKernel)(CUfunction fn, unsigned gx, unsigned gy,
                             unsigned gz, unsigned bx, unsigned by, unsigned bz,
                             unsigned sharedBytes, CUstream stream,
                             void **params, void **extra);
  CUresult (*cuStreamCreate)(CUstream *stream, unsigned flags);
  CUresult (*cuStreamDestroy)(CUstream stream); // _v2
  CUresult (*cuStreamSynchronize)(CUstream stream);
  CUresult (*cuEventCreate)(CUevent *event, unsigned flags);
  CUresult (*cuEventDestroy)(CUevent event); // _v2
  CUresult (*cuEventRecord)(CUevent event, CUstream stream);
  CUresult (*cuEventSynchronize)(CUevent event);
  CUresult (*cuEventElapsedTime)(float *ms, CUevent start, CUevent end); // _v2
  CUresult (*cuStreamBeginCapture)(CUstream stream, int mode);           // _v2
  CUresult (*cuStreamEndCapture)(CUstream stream, CUgraph *graph);
  CUresult (*cuGraphInstantiate)(CUgraphExec *exec, CUgraph graph,
                                 unsigned long long flags); // WithFlags
  CUresult (*cuGraphLaunch)(CUgraphExec exec, CUstream stream);
  CUresult (*cuGraphExecDestroy)(CUgraphExec exec);
  CUresult (*cuGraphDestroy)(CUgraph graph);

  /// True when the library is the qc PTX emulator (libqc_cuda_emu.so, which
  /// exports qcEmuDriverInfo): it executes PTX on the CPU, so the runtime
  /// loads PTX images and tools label its timings "emulated".
  bool emulated = false;

  /// Opens `library` (default libcuda.so.1, or $QC_CUDA_DRIVER_LIBRARY when
  /// set, e.g. the PTX emulator's libqc_cuda_emu.so), resolves every entry
  /// point and runs cuInit(0). `state` says which step failed; the Status says
  /// why (for NotFound: kNoDriverMessage followed by nothing else). Loading is
  /// done once per library path; later calls return the same table.
  static Status load(const CudaDriver *&out, DriverState &state,
                     const std::string &library = "libcuda.so.1");

  /// "CUDA_ERROR_OUT_OF_MEMORY (2): out of memory" for `r`.
  std::string describe(CUresult r) const;

  /// OK for CUDA_SUCCESS; otherwise an error "<what>: <describe(r)>".
  Status check(CUresult r, const std::string &what) const;
};

/// Resolves every driver entry point from an already opened library handle
/// without calling cuInit; used by the test that checks the symbol names
/// against the toolkit's stub libcuda.so. Returns the first missing name in
/// the error.
Status resolveDriverSymbols(void *dlHandle, CudaDriver &out);

//===----------------------------------------------------------------------===//
// cuBLAS
//===----------------------------------------------------------------------===//

using cublasHandle_t = struct cublasContext *;
using cublasStatus_t = int;
constexpr int CUBLAS_OP_N = 0, CUBLAS_OP_T = 1;
constexpr int CUDA_R_16F = 2, CUDA_R_32F = 0;
constexpr int CUBLAS_COMPUTE_32F = 68;
constexpr int CUBLAS_GEMM_DEFAULT = -1;

/// cuBLAS entry points (libcublas.so.13), loaded like the driver.
struct CublasLib {
  cublasStatus_t (*cublasCreate)(cublasHandle_t *handle);               // _v2
  cublasStatus_t (*cublasDestroy)(cublasHandle_t handle);               // _v2
  cublasStatus_t (*cublasSetStream)(cublasHandle_t handle, CUstream s); // _v2
  cublasStatus_t (*cublasGetVersion)(cublasHandle_t handle, int *v);    // _v2
  cublasStatus_t (*cublasGemmEx)(cublasHandle_t handle, int transa, int transb,
                                 int m, int n, int k, const void *alpha,
                                 const void *A, int Atype, int lda,
                                 const void *B, int Btype, int ldb,
                                 const void *beta, void *C, int Ctype, int ldc,
                                 int computeType, int algo);

  /// Opens `library` (default libcublas.so.13, or $QC_CUBLAS_LIBRARY when
  /// set) and resolves the entry points (no handle is created).
  static Status load(const CublasLib *&out,
                     const std::string &library = "libcublas.so.13");
};

} // namespace cuda
} // namespace qc

#endif // QC_RUNTIME_CUDADRIVER_H
