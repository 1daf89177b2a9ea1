//===- CudaDriver.cpp - The CUDA driver API, loaded at run time -----------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/CudaDriver.h"

#include <cstdlib>
#include <map>
#include <mutex>

#include <dlfcn.h>

namespace qc {
namespace cuda {

const char *const kNoDriverMessage =
    "no CUDA driver (libcuda.so.1 not found): GPU path unavailable, using the "
    "CPU path";

namespace {

/// Looks up `name` in `handle` into the function pointer `fn`.
template <typename Fn>
Status resolve(void *handle, const char *name, Fn &fn,
               const std::string &library) {
  dlerror();
  void *p = dlsym(handle, name);
  if (!p)
    return Status::error(library + ": missing entry point " +
                         std::string(name) +
                         " (driver older than this build needs?)");
  fn = reinterpret_cast<Fn>(p);
  return Status::ok();
}

} // namespace

Status resolveDriverSymbols(void *h, CudaDriver &d) {
  const std::string lib = "libcuda";
#define QC_SYM(field, symbol)                                                  \
  QC_RETURN_IF_ERROR(resolve(h, symbol, d.field, lib))
  // The symbol names are the ones cuda.h (CUDA 13) maps the API names to.
  QC_SYM(cuInit, "cuInit");
  QC_SYM(cuDriverGetVersion, "cuDriverGetVersion");
  QC_SYM(cuGetErrorString, "cuGetErrorString");
  QC_SYM(cuGetErrorName, "cuGetErrorName");
  QC_SYM(cuDeviceGetCount, "cuDeviceGetCount");
  QC_SYM(cuDeviceGet, "cuDeviceGet");
  QC_SYM(cuDeviceGetName, "cuDeviceGetName");
  QC_SYM(cuDeviceGetAttribute, "cuDeviceGetAttribute");
  QC_SYM(cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
  QC_SYM(cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2");
  QC_SYM(cuCtxSetCurrent, "cuCtxSetCurrent");
  QC_SYM(cuCtxSynchronize, "cuCtxSynchronize");
  QC_SYM(cuModuleLoadDataEx, "cuModuleLoadDataEx");
  QC_SYM(cuModuleUnload, "cuModuleUnload");
  QC_SYM(cuModuleGetFunction, "cuModuleGetFunction");
  QC_SYM(cuFuncSetAttribute, "cuFuncSetAttribute");
  QC_SYM(cuMemAlloc, "cuMemAlloc_v2");
  QC_SYM(cuMemFree, "cuMemFree_v2");
  QC_SYM(cuMemGetInfo, "cuMemGetInfo_v2");
  QC_SYM(cuMemcpyHtoD, "cuMemcpyHtoD_v2");
  QC_SYM(cuMemcpyDtoH, "cuMemcpyDtoH_v2");
  QC_SYM(cuMemcpyDtoD, "cuMemcpyDtoD_v2");
  QC_SYM(cuMemcpyDtoDAsync, "cuMemcpyDtoDAsync_v2");
  QC_SYM(cuMemsetD8, "cuMemsetD8_v2");
  QC_SYM(cuMemsetD8Async, "cuMemsetD8Async");
  QC_SYM(cuLaunchKernel, "cuLaunchKernel");
  QC_SYM(cuStreamCreate, "cuStreamCreate");
  QC_SYM(cuStreamDestroy, "cuStreamDestroy_v2");
  QC_SYM(cuStreamSynchronize, "cuStreamSynchronize");
  QC_SYM(cuEventCreate, "cuEventCreate");
  QC_SYM(cuEventDestroy, "cuEventDestroy_v2");
  QC_SYM(cuEventRecord, "cuEventRecord");
  QC_SYM(cuEventSynchronize, "cuEventSynchronize");
  QC_SYM(cuEventElapsedTime, "cuEventElapsedTime_v2");
  QC_SYM(cuStreamBeginCapture, "cuStreamBeginCapture_v2");
  QC_SYM(cuStreamEndCapture, "cuStreamEndCapture");
  QC_SYM(cuGraphInstantiate, "cuGraphInstantiateWithFlags");
  QC_SYM(cuGraphLaunch, "cuGraphLaunch");
  QC_SYM(cuGraphExecDestroy, "cuGraphExecDestroy");
  QC_SYM(cuGraphDestroy, "cuGraphDestroy");
#undef QC_SYM
  return Status::ok();
}

Status CudaDriver::load(const CudaDriver *&out, DriverState &state,
                        const std::string &requested) {
  // QC_CUDA_DRIVER_LIBRARY replaces the default library (a driver installed
  // outside the loader's path, or the runtime tests' test double).
  std::string library = requested;
  if (library == "libcuda.so.1")
    if (const char *env = std::getenv("QC_CUDA_DRIVER_LIBRARY"))
      if (*env)
        library = env;
  // One table per library path for the whole process: cuInit is cheap to
  // repeat but the handle must never be closed while contexts exist.
  struct Loaded {
    std::unique_ptr<CudaDriver> driver;
    DriverState state = DriverState::NotFound;
    std::string error;
  };
  static std::mutex mu;
  static std::map<std::string, Loaded> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(library);
  if (it == cache.end()) {
    Loaded l;
    void *h = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      l.state = DriverState::NotFound;
      l.error = library == "libcuda.so.1"
                    ? std::string(kNoDriverMessage)
                    : "no CUDA driver (" + library +
                          " not found): GPU path unavailable, using the CPU "
                          "path";
    } else {
      auto d = std::make_unique<CudaDriver>();
      Status st = resolveDriverSymbols(h, *d);
      d->emulated = dlsym(h, "qcEmuDriverInfo") != nullptr;
      if (!st) {
        l.state = DriverState::Broken;
        l.error = st.message();
      } else {
        CUresult r = d->cuInit(0);
        if (r != CUDA_SUCCESS) {
          l.state = DriverState::NoDevice;
          l.error = "CUDA driver found but cuInit failed (" + d->describe(r) +
                    "): GPU path unavailable, using the CPU path";
        } else {
          l.state = DriverState::Ready;
          l.driver = std::move(d);
        }
      }
    }
    it = cache.emplace(library, std::move(l)).first;
  }
  state = it->second.state;
  if (state != DriverState::Ready) {
    out = nullptr;
    return Status::error(it->second.error);
  }
  out = it->second.driver.get();
  return Status::ok();
}

std::string CudaDriver::describe(CUresult r) const {
  const char *name = nullptr, *text = nullptr;
  if (cuGetErrorName(r, &name) != CUDA_SUCCESS || !name)
    name = "unknown CUDA error";
  if (cuGetErrorString(r, &text) != CUDA_SUCCESS || !text)
    text = "no description";
  return std::string(name) + " (" + std::to_string(r) + "): " + text;
}

Status CudaDriver::check(CUresult r, const std::string &what) const {
  if (r == CUDA_SUCCESS)
    return Status::ok();
  return Status::error(what + ": " + describe(r));
}

Status CublasLib::load(const CublasLib *&out, const std::string &requested) {
  std::string library = requested; // QC_CUBLAS_LIBRARY: as for the driver
  if (library == "libcublas.so.13")
    if (const char *env = std::getenv("QC_CUBLAS_LIBRARY"))
      if (*env)
        library = env;
  static std::mutex mu;
  static std::map<std::string,
                  std::pair<std::unique_ptr<CublasLib>, std::string>>
      cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(library);
  if (it == cache.end()) {
    std::unique_ptr<CublasLib> lib;
    std::string error;
    void *h = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      const char *e = dlerror();
      error = "cannot load cuBLAS (" + library + "): " + (e ? e : "not found");
    } else {
      lib = std::make_unique<CublasLib>();
      Status st = Status::ok();
#define QC_SYM(field, symbol)                                                  \
  if (st)                                                                      \
    st = resolve(h, symbol, lib->field, library);
      QC_SYM(cublasCreate, "cublasCreate_v2");
      QC_SYM(cublasDestroy, "cublasDestroy_v2");
      QC_SYM(cublasSetStream, "cublasSetStream_v2");
      QC_SYM(cublasGetVersion, "cublasGetVersion_v2");
      QC_SYM(cublasGemmEx, "cublasGemmEx");
#undef QC_SYM
      if (!st) {
        error = st.message();
        lib.reset();
      }
    }
    it = cache.emplace(library, std::make_pair(std::move(lib), error)).first;
  }
  out = it->second.first.get();
  if (!out)
    return Status::error(it->second.second);
  return Status::ok();
}

} // namespace cuda
} // namespace qc
