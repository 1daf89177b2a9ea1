//===- CudaEmu.cpp - The CUDA driver API on the qc PTX emulator -----------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// libqc_cuda_emu.so: the subset of the CUDA driver API that the runtime
// resolves (CudaDriver.cpp: same symbol names, same C ABI), implemented on
// the PTX emulator (qc/emu/Emulator.h). Selected at run time with
//   QC_CUDA_DRIVER_LIBRARY=path/to/libqc_cuda_emu.so
// so that GpuRuntime, the artifact loader and quant-bench run unchanged and
// execute the real PTX the compiler emitted, instruction by instruction.
//
// Semantics that differ from a GPU, and why:
//  - Execution is synchronous: a launch (or memset/copy) on a stream runs
//    to completion inside the call. A failed launch returns
//    CUDA_ERROR_LAUNCH_FAILED from that call (cuLaunchKernel, or
//    cuGraphLaunch for a replayed one) and prints the emulator's message
//    (kernel, block, thread, PTX line) to stderr. It is reported once, by
//    the call that ran the kernel, and is not sticky: the device stays
//    usable (a GPU would report it at the next synchronize and then refuse
//    every call, which only makes tests of failures harder).
//  - cuGetErrorString(code) returns the detailed message of the last error
//    this thread got from the emulator when `code` is that error's code
//    (else the generic description), so CudaDriver::describe and every
//    runtime error carry the emulator's explanation. The pointer stays valid
//    until the thread's next failing call.
//  - A stream being captured records its launches, memsets, copies and
//    event records; cuGraphLaunch replays them in order.
//  - Events read the host's steady clock: timings are the emulator's wall
//    time, never GPU performance (quant-bench labels them "emulated").
//  - Modules are PTX text, or a fatbin/ELF that embeds uncompressed PTX; a
//    SASS-only cubin fails with CUDA_ERROR_NO_BINARY_FOR_GPU (the runtime
//    loads the artifact's PTX image on the emulator, see GpuRuntime.cpp).
//
// Environment (read by cuInit):
//   QC_EMU_ARCH       sm_80 (default) or sm_90a: the reported compute
//                     capability (8.0 / 9.0) and what PTX targets load
//   QC_EMU_CHECKS     0 disables the sanitizer checks (default on)
//   QC_EMU_THREADS    worker threads per launch (default: all cores)
//   QC_EMU_MEMORY_MB  emulated global memory (default 4096, reserved lazily)
//   QC_EMU_SM_COUNT   reported multiprocessor count (default 108 / 132)
//   QC_EMU_DUMP_PTX   a directory: every loaded module is written there as
//                     module-<n>.ptx and its errors name that file
//   QC_EMU_QUIET      1: do not print launch failures to stderr
//
//===----------------------------------------------------------------------===//

#include "ModuleImage.h"
#include "qc/emu/Emulator.h"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace {

using CUresult = int;
using qc::Status;
namespace emu = qc::emu;

// cuda.h (CUDA 13.0) values.
constexpr CUresult kSuccess = 0, kInvalidValue = 1, kOutOfMemory = 2,
                   kNotInitialized = 3, kNoDevice = 100, kInvalidDevice = 101,
                   kInvalidImage = 200, kInvalidContext = 201,
                   kNoBinaryForGpu = 209, kInvalidPtx = 218,
                   kInvalidHandle = 400, kNotFound = 500, kNotReady = 600,
                   kLaunchFailed = 719, kNotSupported = 801,
                   kCaptureUnsupported = 900, kCaptureInvalidated = 901,
                   kCaptureUnmatched = 903, kUnknown = 999;

/// Generic names and descriptions of the codes this library returns.
struct CodeInfo {
  CUresult code;
  const char *name, *text;
};
constexpr CodeInfo kCodes[] = {
    {kSuccess, "CUDA_SUCCESS", "no error"},
    {kInvalidValue, "CUDA_ERROR_INVALID_VALUE", "invalid argument"},
    {kOutOfMemory, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
    {kNotInitialized, "CUDA_ERROR_NOT_INITIALIZED", "initialization error"},
    {kNoDevice, "CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected"},
    {kInvalidDevice, "CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"},
    {kInvalidImage, "CUDA_ERROR_INVALID_IMAGE",
     "device kernel image is invalid"},
    {kInvalidContext, "CUDA_ERROR_INVALID_CONTEXT", "invalid device context"},
    {kNoBinaryForGpu, "CUDA_ERROR_NO_BINARY_FOR_GPU",
     "no kernel image is available for execution on the device"},
    {kInvalidPtx, "CUDA_ERROR_INVALID_PTX", "a PTX JIT compilation failed"},
    {kInvalidHandle, "CUDA_ERROR_INVALID_HANDLE", "invalid resource handle"},
    {kNotFound, "CUDA_ERROR_NOT_FOUND", "named symbol not found"},
    {kNotReady, "CUDA_ERROR_NOT_READY", "device not ready"},
    {kLaunchFailed, "CUDA_ERROR_LAUNCH_FAILED", "unspecified launch failure"},
    {kNotSupported, "CUDA_ERROR_NOT_SUPPORTED", "operation not supported"},
    {kCaptureUnsupported, "CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED",
     "operation not permitted when stream is capturing"},
    {kCaptureInvalidated, "CUDA_ERROR_STREAM_CAPTURE_INVALIDATED",
     "operation failed due to a previous error during capture"},
    {kCaptureUnmatched, "CUDA_ERROR_STREAM_CAPTURE_UNMATCHED",
     "capture was not initiated in this stream"},
    {kUnknown, "CUDA_ERROR_UNKNOWN", "unknown error"},
};

const CodeInfo *codeInfo(CUresult r) {
  for (const CodeInfo &c : kCodes)
    if (c.code == r)
      return &c;
  return nullptr;
}

/// The last detailed error of this thread (see the file comment).
struct LastError {
  CUresult code = kSuccess;
  std::string text;
};
thread_local LastError lastError;

CUresult fail(CUresult code, const std::string &text) {
  lastError.code = code;
  lastError.text = text;
  return code;
}

bool quiet() {
  const char *q = std::getenv("QC_EMU_QUIET");
  return q && *q && std::strcmp(q, "0") != 0;
}

double nowMs() {
  using namespace std::chrono;
  return duration<double, std::milli>(steady_clock::now().time_since_epoch())
      .count();
}

/// One recorded operation of a captured stream.
using Op = std::function<CUresult()>;

struct Stream {
  bool capturing = false;
  bool captureFailed = false;
  std::vector<Op> captured;
};
struct Event {
  bool recorded = false;
  double ms = 0;
};
struct Graph {
  std::vector<Op> ops;
};
struct Module;
struct Function {
  emu::Kernel *kernel = nullptr;
  Module *module = nullptr;
  std::string name;
};
struct Module {
  emu::Module *module = nullptr;
  std::string displayName;
  std::map<std::string, std::unique_ptr<Function>> functions;
};
struct Context {
  int retained = 0;
};

/// The whole driver: one emulated device, created by cuInit.
struct State {
  std::mutex mu;
  bool initialized = false;
  CUresult initError = kSuccess;
  std::string initMessage;
  emu::DeviceOptions options;
  int smCount = 0;
  std::string dumpDir;
  std::unique_ptr<emu::Device> device;
  Context context;
  Stream legacyStream; ///< the NULL stream
  std::set<Stream *> streams;
  std::set<Event *> events;
  std::set<Graph *> graphs, execs;
  std::set<Module *> modules;
  std::set<Function *> functions;
  int modulesLoaded = 0;
  std::string info; ///< qcEmuDriverInfo's text
};

State &state() {
  static State *s = new State(); // never destroyed: handles outlive exit
  return *s;
}

/// Parses an unsigned decimal environment variable; false if malformed.
bool envUnsigned(const char *name, uint64_t lo, uint64_t hi, uint64_t &out,
                 std::string &error) {
  const char *v = std::getenv(name);
  if (!v || !*v)
    return true;
  char *end = nullptr;
  unsigned long long n = std::strtoull(v, &end, 10);
  if (*end || n < lo || n > hi || v[0] == '-') {
    error = std::string(name) + "=\"" + v + "\" is not an integer in [" +
            std::to_string(lo) + ", " + std::to_string(hi) + "]";
    return false;
  }
  out = n;
  return true;
}

CUresult initLocked(State &s) {
  if (s.initialized)
    return s.initError == kSuccess ? kSuccess
                                   : fail(s.initError, s.initMessage);
  s.initialized = true;
  auto bad = [&](const std::string &msg) {
    s.initError = kInvalidValue;
    s.initMessage = "qc PTX emulator: " + msg;
    return fail(s.initError, s.initMessage);
  };
  const char *arch = std::getenv("QC_EMU_ARCH");
  std::string a = arch && *arch ? arch : "sm_80";
  if (a == "sm_80")
    s.options.arch = emu::Arch::SM80;
  else if (a == "sm_90a")
    s.options.arch = emu::Arch::SM90a;
  else
    return bad("QC_EMU_ARCH=\"" + a + "\" is not sm_80 or sm_90a");
  std::string err;
  uint64_t checks = 1, threads = 0, memMb = 4096,
           sms = s.options.arch == emu::Arch::SM80 ? 108 : 132;
  if (!envUnsigned("QC_EMU_CHECKS", 0, 1, checks, err) ||
      !envUnsigned("QC_EMU_THREADS", 0, 1024, threads, err) ||
      !envUnsigned("QC_EMU_MEMORY_MB", 1, uint64_t(1) << 20, memMb, err) ||
      !envUnsigned("QC_EMU_SM_COUNT", 1, 1024, sms, err))
    return bad(err);
  s.options.checks = checks != 0;
  s.options.threads = unsigned(threads);
  s.options.memoryBytes = memMb << 20;
  s.smCount = int(sms);
  if (const char *d = std::getenv("QC_EMU_DUMP_PTX"))
    s.dumpDir = d;
  s.device = std::make_unique<emu::Device>(s.options);
  s.info = std::string("qc PTX emulator (") + emu::archName(s.options.arch) +
           ", checks " + (s.options.checks ? "on" : "off") + ")";
  return kSuccess;
}

/// Locks the state and checks that cuInit succeeded.
#define QC_EMU_ENTER()                                                         \
  State &s = state();                                                          \
  std::lock_guard<std::mutex> lock_(s.mu);                                     \
  if (!s.initialized || s.initError != kSuccess)                               \
    return fail(kNotInitialized, "qc PTX emulator: cuInit has not succeeded");

Stream *streamOf(State &s, void *h, CUresult &r) {
  r = kSuccess;
  if (!h)
    return &s.legacyStream;
  Stream *st = static_cast<Stream *>(h);
  if (!s.streams.count(st)) {
    r = fail(kInvalidHandle, "qc PTX emulator: unknown stream handle");
    return nullptr;
  }
  return st;
}

/// Runs `op` now, or records it when `st` is being captured.
CUresult enqueue(Stream *st, Op op) {
  if (st->capturing) {
    st->captured.push_back(std::move(op));
    return kSuccess;
  }
  return op();
}

CUresult statusToResult(const Status &st, CUresult code) {
  return st ? kSuccess : fail(code, "qc PTX emulator: " + st.message());
}

} // namespace

extern "C" {

/// Present only in the emulator: lets the runtime know it is not a GPU.
__attribute__((visibility("default"))) const char *qcEmuDriverInfo() {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  return s.info.empty() ? "qc PTX emulator (not initialized)" : s.info.c_str();
}

#define QC_EXPORT __attribute__((visibility("default")))

QC_EXPORT CUresult cuInit(unsigned flags) {
  State &s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  if (flags != 0)
    return fail(kInvalidValue, "qc PTX emulator: cuInit flags must be 0");
  return initLocked(s);
}

QC_EXPORT CUresult cuDriverGetVersion(int *v) {
  if (!v)
    return fail(kInvalidValue, "qc PTX emulator: null version pointer");
  *v = 13000; // the API version whose symbols and ABI this library follows
  return kSuccess;
}

QC_EXPORT CUresult cuGetErrorString(CUresult r, const char **str) {
  if (!str)
    return kInvalidValue;
  if (r != kSuccess && r == lastError.code && !lastError.text.empty()) {
    *str = lastError.text.c_str();
    return kSuccess;
  }
  const CodeInfo *c = codeInfo(r);
  *str = c ? c->text : nullptr;
  return c ? kSuccess : kInvalidValue;
}

QC_EXPORT CUresult cuGetErrorName(CUresult r, const char **str) {
  if (!str)
    return kInvalidValue;
  const CodeInfo *c = codeInfo(r);
  *str = c ? c->name : nullptr;
  return c ? kSuccess : kInvalidValue;
}

QC_EXPORT CUresult cuDeviceGetCount(int *count) {
  QC_EMU_ENTER();
  if (!count)
    return fail(kInvalidValue, "qc PTX emulator: null count pointer");
  *count = 1;
  return kSuccess;
}

QC_EXPORT CUresult cuDeviceGet(int *dev, int ordinal) {
  QC_EMU_ENTER();
  if (!dev)
    return fail(kInvalidValue, "qc PTX emulator: null device pointer");
  if (ordinal != 0)
    return fail(kInvalidDevice, "qc PTX emulator: device " +
                                    std::to_string(ordinal) +
                                    " does not exist (one emulated device)");
  *dev = 0;
  return kSuccess;
}

QC_EXPORT CUresult cuDeviceGetName(char *name, int len, int dev) {
  QC_EMU_ENTER();
  if (!name || len <= 0)
    return fail(kInvalidValue, "qc PTX emulator: bad name buffer");
  if (dev != 0)
    return fail(kInvalidDevice,
                "qc PTX emulator: no device " + std::to_string(dev));
  std::snprintf(name, size_t(len), "qc PTX emulator (%s, not a GPU)",
                emu::archName(s.options.arch));
  return kSuccess;
}

QC_EXPORT CUresult cuDeviceGetAttribute(int *v, int attr, int dev) {
  QC_EMU_ENTER();
  if (!v)
    return fail(kInvalidValue, "qc PTX emulator: null value pointer");
  if (dev != 0)
    return fail(kInvalidDevice,
                "qc PTX emulator: no device " + std::to_string(dev));
  const bool h = s.options.arch == emu::Arch::SM90a;
  // The values of the GPUs the architectures stand for (A100 / H100 SXM);
  // the shared-memory limits are the ones the emulator enforces.
  switch (attr) {
  case 1:
    *v = 1024;
    break; // max threads per block
  case 2:
  case 3:
    *v = 1024;
    break; // max block dim x, y
  case 4:
    *v = 64;
    break; // max block dim z
  case 5:
    *v = 2147483647;
    break; // max grid dim x
  case 6:
  case 7:
    *v = 65535;
    break; // max grid dim y, z
  case 8:
    *v = 48 * 1024;
    break; // shared memory per block
  case 9:
    *v = 64 * 1024;
    break; // constant memory
  case 10:
    *v = 32;
    break; // warp size
  case 12:
    *v = 65536;
    break; // registers per block
  case 13:
    *v = h ? 1980000 : 1410000;
    break; // clock rate (kHz)
  case 16:
    *v = s.smCount;
    break; // multiprocessors
  case 17:
    *v = 0;
    break; // kernel exec timeout
  case 18:
    *v = 0;
    break; // integrated
  case 20:
    *v = 0;
    break; // compute mode default
  case 38:
    *v = h ? 50 << 20 : 40 << 20;
    break; // L2 bytes
  case 39:
    *v = 2048;
    break; // threads per SM
  case 41:
    *v = 0;
    break; // unified addressing: no
  case 75:
    *v = h ? 9 : 8;
    break; // compute capability major
  case 76:
    *v = 0;
    break; // minor
  case 81:
    *v = h ? 233472 : 167936;
    break; // shared memory per SM
  case 82:
    *v = 65536;
    break; // registers per SM
  case 97:
    *v = h ? 232448 : 166912;
    break; // opt-in shared per block
  default:
    return fail(kInvalidValue, "qc PTX emulator: device attribute " +
                                   std::to_string(attr) + " is not emulated");
  }
  return kSuccess;
}

QC_EXPORT CUresult cuDevicePrimaryCtxRetain(void **ctx, int dev) {
  QC_EMU_ENTER();
  if (!ctx)
    return fail(kInvalidValue, "qc PTX emulator: null context pointer");
  if (dev != 0)
    return fail(kInvalidDevice,
                "qc PTX emulator: no device " + std::to_string(dev));
  ++s.context.retained;
  *ctx = &s.context;
  return kSuccess;
}

QC_EXPORT CUresult cuDevicePrimaryCtxRelease_v2(int dev) {
  QC_EMU_ENTER();
  if (dev != 0)
    return fail(kInvalidDevice,
                "qc PTX emulator: no device " + std::to_string(dev));
  if (s.context.retained <= 0)
    return fail(kInvalidContext,
                "qc PTX emulator: primary context released more often than "
                "retained");
  --s.context.retained;
  return kSuccess;
}

QC_EXPORT CUresult cuCtxSetCurrent(void *ctx) {
  QC_EMU_ENTER();
  if (ctx && ctx != &s.context)
    return fail(kInvalidContext, "qc PTX emulator: unknown context handle");
  return kSuccess;
}

QC_EXPORT CUresult cuCtxSynchronize() {
  QC_EMU_ENTER();
  return kSuccess;
}

QC_EXPORT CUresult cuModuleLoadDataEx(void **module, const void *image,
                                      unsigned numOptions, int *options,
                                      void **optionValues) {
  QC_EMU_ENTER();
  if (!module || !image)
    return fail(kInvalidValue, "qc PTX emulator: null module or image");
  // The JIT options the runtime passes: an error log buffer and its size.
  char *log = nullptr;
  size_t logSize = 0;
  for (unsigned i = 0; i < numOptions && options && optionValues; ++i) {
    if (options[i] == 5)
      log = static_cast<char *>(optionValues[i]);
    else if (options[i] == 6)
      logSize = size_t(reinterpret_cast<uintptr_t>(optionValues[i]));
  }
  auto failLoad = [&](CUresult code, const std::string &msg) {
    if (log && logSize) {
      std::snprintf(log, logSize, "%s", msg.c_str());
    }
    return fail(code, "qc PTX emulator: " + msg);
  };
  std::string ptx;
  emu::ImageKind kind;
  Status st = emu::extractPtx(image, 0, ptx, kind);
  if (!st)
    return failLoad(kind == emu::ImageKind::SassOnly ? kNoBinaryForGpu
                                                     : kInvalidImage,
                    st.message());
  int n = ++s.modulesLoaded;
  std::string name = "emulated module " + std::to_string(n);
  if (!s.dumpDir.empty()) {
    name = s.dumpDir + "/module-" + std::to_string(n) + ".ptx";
    std::ofstream f(name, std::ios::binary);
    f << ptx;
    if (!f)
      return failLoad(kInvalidValue, "QC_EMU_DUMP_PTX: cannot write " + name);
  }
  emu::Module *m = nullptr;
  st = s.device->loadModule(ptx, name, m);
  if (!st)
    return failLoad(kInvalidPtx, st.message());
  auto *mod = new Module();
  mod->module = m;
  mod->displayName = name;
  s.modules.insert(mod);
  *module = mod;
  return kSuccess;
}

QC_EXPORT CUresult cuModuleUnload(void *module) {
  QC_EMU_ENTER();
  Module *m = static_cast<Module *>(module);
  if (!s.modules.count(m))
    return fail(kInvalidHandle, "qc PTX emulator: unknown module handle");
  for (auto &kv : m->functions)
    s.functions.erase(kv.second.get());
  Status st = s.device->unloadModule(m->module);
  s.modules.erase(m);
  delete m;
  return statusToResult(st, kInvalidHandle);
}

QC_EXPORT CUresult cuModuleGetFunction(void **fn, void *module,
                                       const char *name) {
  QC_EMU_ENTER();
  Module *m = static_cast<Module *>(module);
  if (!fn || !name)
    return fail(kInvalidValue, "qc PTX emulator: null function or name");
  if (!s.modules.count(m))
    return fail(kInvalidHandle, "qc PTX emulator: unknown module handle");
  auto it = m->functions.find(name);
  if (it == m->functions.end()) {
    emu::Kernel *k = nullptr;
    Status st = s.device->getKernel(m->module, name, k);
    if (!st)
      return fail(kNotFound, "qc PTX emulator: " + m->displayName +
                                 ": no kernel entry \"" + name + "\"");
    auto f = std::make_unique<Function>();
    f->kernel = k;
    f->module = m;
    f->name = name;
    s.functions.insert(f.get());
    it = m->functions.emplace(name, std::move(f)).first;
  }
  *fn = it->second.get();
  return kSuccess;
}

QC_EXPORT CUresult cuFuncSetAttribute(void *fn, int attrib, int value) {
  QC_EMU_ENTER();
  Function *f = static_cast<Function *>(fn);
  if (!s.functions.count(f))
    return fail(kInvalidHandle, "qc PTX emulator: unknown function handle");
  if (attrib == 8) { // CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES
    if (value < 0)
      return fail(kInvalidValue, "qc PTX emulator: negative shared size");
    Status st = s.device->setMaxDynamicSharedBytes(f->kernel, uint32_t(value));
    return st ? kSuccess
              : fail(kInvalidValue, "qc PTX emulator: kernel " + f->name +
                                        ": " + st.message());
  }
  if (attrib == 9) // preferred shared memory carveout: a hint
    return kSuccess;
  return fail(kNotSupported, "qc PTX emulator: function attribute " +
                                 std::to_string(attrib) +
                                 " cannot be set on the emulator");
}

QC_EXPORT CUresult cuMemAlloc_v2(unsigned long long *p, size_t bytes) {
  QC_EMU_ENTER();
  if (!p || !bytes)
    return fail(kInvalidValue, "qc PTX emulator: cuMemAlloc of 0 bytes or "
                               "to a null pointer");
  uint64_t a = 0;
  Status st = s.device->malloc(bytes, a);
  if (!st)
    return fail(kOutOfMemory, "qc PTX emulator: " + st.message());
  *p = a;
  return kSuccess;
}

QC_EXPORT CUresult cuMemFree_v2(unsigned long long p) {
  QC_EMU_ENTER();
  if (!p)
    return kSuccess;
  return statusToResult(s.device->free(p), kInvalidValue);
}

QC_EXPORT CUresult cuMemGetInfo_v2(size_t *freeBytes, size_t *total) {
  QC_EMU_ENTER();
  if (!freeBytes || !total)
    return fail(kInvalidValue, "qc PTX emulator: null pointer");
  *freeBytes = size_t(s.device->freeMemory());
  *total = size_t(s.device->totalMemory());
  return kSuccess;
}

QC_EXPORT CUresult cuMemcpyHtoD_v2(unsigned long long d, const void *src,
                                   size_t n) {
  QC_EMU_ENTER();
  if (!n)
    return kSuccess;
  return statusToResult(s.device->copyToDevice(d, src, n), kInvalidValue);
}

QC_EXPORT CUresult cuMemcpyDtoH_v2(void *dst, unsigned long long src,
                                   size_t n) {
  QC_EMU_ENTER();
  if (!n)
    return kSuccess;
  return statusToResult(s.device->copyToHost(dst, src, n), kInvalidValue);
}

QC_EXPORT CUresult cuMemcpyDtoD_v2(unsigned long long d, unsigned long long src,
                                   size_t n) {
  QC_EMU_ENTER();
  if (!n)
    return kSuccess;
  return statusToResult(s.device->copyOnDevice(d, src, n), kInvalidValue);
}

QC_EXPORT CUresult cuMemcpyDtoDAsync_v2(unsigned long long d,
                                        unsigned long long src, size_t n,
                                        void *stream) {
  QC_EMU_ENTER();
  CUresult r;
  Stream *st = streamOf(s, stream, r);
  if (!st)
    return r;
  emu::Device *dev = s.device.get();
  return enqueue(st, [dev, d, src, n]() {
    return n ? statusToResult(dev->copyOnDevice(d, src, n), kInvalidValue)
             : kSuccess;
  });
}

QC_EXPORT CUresult cuMemsetD8_v2(unsigned long long d, unsigned char v,
                                 size_t n) {
  QC_EMU_ENTER();
  if (!n)
    return kSuccess;
  return statusToResult(s.device->memset8(d, v, n), kInvalidValue);
}

QC_EXPORT CUresult cuMemsetD8Async(unsigned long long d, unsigned char v,
                                   size_t n, void *stream) {
  QC_EMU_ENTER();
  CUresult r;
  Stream *st = streamOf(s, stream, r);
  if (!st)
    return r;
  emu::Device *dev = s.device.get();
  return enqueue(st, [dev, d, v, n]() {
    return n ? statusToResult(dev->memset8(d, v, n), kInvalidValue) : kSuccess;
  });
}

QC_EXPORT CUresult cuLaunchKernel(void *fn, unsigned gx, unsigned gy,
                                  unsigned gz, unsigned bx, unsigned by,
                                  unsigned bz, unsigned sharedBytes,
                                  void *stream, void **params, void **extra) {
  QC_EMU_ENTER();
  Function *f = static_cast<Function *>(fn);
  if (!s.functions.count(f))
    return fail(kInvalidHandle, "qc PTX emulator: unknown function handle");
  CUresult r;
  Stream *st = streamOf(s, stream, r);
  if (!st)
    return r;
  const std::string where = "qc PTX emulator: launch of " + f->name;
  // The launch configuration limits a GPU enforces at launch time.
  uint64_t threads = uint64_t(bx) * by * bz;
  if (!gx || !gy || !gz || !bx || !by || !bz || gy > 65535 || gz > 65535 ||
      bx > 1024 || by > 1024 || bz > 64 || threads > 1024 ||
      threads > s.device->maxThreadsPerBlock(f->kernel))
    return fail(kInvalidValue,
                where + ": invalid configuration grid " + std::to_string(gx) +
                    "x" + std::to_string(gy) + "x" + std::to_string(gz) +
                    ", block " + std::to_string(bx) + "x" + std::to_string(by) +
                    "x" + std::to_string(bz));
  if (sharedBytes > s.device->maxDynamicSharedBytes(f->kernel))
    return fail(kInvalidValue,
                where + ": " + std::to_string(sharedBytes) +
                    " bytes of dynamic shared memory exceed the kernel's "
                    "limit of " +
                    std::to_string(s.device->maxDynamicSharedBytes(f->kernel)) +
                    " (cuFuncSetAttribute raises it)");
  // Copy the parameter values now, as the driver does: the caller may
  // reuse its buffers as soon as cuLaunchKernel returns.
  const std::vector<emu::ParamInfo> &ps = s.device->params(f->kernel);
  std::vector<size_t> offsets(ps.size());
  size_t total = 0;
  for (size_t i = 0; i < ps.size(); ++i) {
    size_t al = ps[i].align ? ps[i].align : 1;
    total = (total + al - 1) / al * al;
    offsets[i] = total;
    total += ps[i].size;
  }
  auto bytes = std::make_shared<std::vector<uint8_t>>(total);
  if (params) {
    if (extra)
      return fail(kInvalidValue, where + ": both kernelParams and extra given");
    for (size_t i = 0; i < ps.size(); ++i) {
      if (!params[i])
        return fail(kInvalidValue, where + ": parameter " + std::to_string(i) +
                                       " (" + ps[i].name +
                                       ") is a null pointer");
      std::memcpy(bytes->data() + offsets[i], params[i], ps[i].size);
    }
  } else if (extra) {
    // CU_LAUNCH_PARAM_BUFFER_POINTER (1) / _SIZE (2) / _END (0): one buffer
    // laid out like the .param space.
    const void *buf = nullptr;
    size_t bufSize = 0;
    bool haveSize = false;
    for (size_t i = 0; extra[i] != nullptr; i += 2) {
      uintptr_t key = reinterpret_cast<uintptr_t>(extra[i]);
      if (key == 1)
        buf = extra[i + 1];
      else if (key == 2 && extra[i + 1]) {
        bufSize = *static_cast<size_t *>(extra[i + 1]);
        haveSize = true;
      } else
        return fail(kInvalidValue,
                    where + ": unknown extra key " + std::to_string(key));
    }
    if (!buf || !haveSize || bufSize < total)
      return fail(kInvalidValue,
                  where + ": the extra parameter buffer holds " +
                      std::to_string(bufSize) + " bytes, the kernel's " +
                      "parameters need " + std::to_string(total));
    std::memcpy(bytes->data(), buf, total);
  } else if (!ps.empty()) {
    return fail(kInvalidValue, where + ": the kernel has " +
                                   std::to_string(ps.size()) +
                                   " parameters but none were given");
  }
  emu::Device *dev = s.device.get();
  emu::Kernel *k = f->kernel;
  // The module's name (its QC_EMU_DUMP_PTX file when dumping) tells which
  // PTX text the line numbers of a diagnosis refer to.
  std::string name = f->name + " (" + f->module->displayName + ")";
  emu::Dim3 grid{gx, gy, gz}, block{bx, by, bz};
  return enqueue(st, [=]() {
    std::vector<void *> argv(offsets.size());
    for (size_t i = 0; i < offsets.size(); ++i)
      argv[i] = bytes->data() + offsets[i];
    Status ls = dev->launch(k, grid, block, sharedBytes, argv.data());
    if (ls)
      return kSuccess;
    std::string msg =
        "qc PTX emulator: kernel " + name + " failed: " + ls.message();
    if (!quiet())
      std::fprintf(stderr, "%s\n", msg.c_str());
    return fail(kLaunchFailed, msg);
  });
}

QC_EXPORT CUresult cuStreamCreate(void **stream, unsigned flags) {
  QC_EMU_ENTER();
  if (!stream)
    return fail(kInvalidValue, "qc PTX emulator: null stream pointer");
  (void)flags; // blocking or not: every operation is synchronous here
  Stream *st = new Stream();
  s.streams.insert(st);
  *stream = st;
  return kSuccess;
}

QC_EXPORT CUresult cuStreamDestroy_v2(void *stream) {
  QC_EMU_ENTER();
  Stream *st = static_cast<Stream *>(stream);
  if (!s.streams.count(st))
    return fail(kInvalidHandle, "qc PTX emulator: unknown stream handle");
  s.streams.erase(st);
  delete st;
  return kSuccess;
}

QC_EXPORT CUresult cuStreamSynchronize(void *stream) {
  QC_EMU_ENTER();
  CUresult r;
  Stream *st = streamOf(s, stream, r);
  if (!st)
    return r;
  if (st->capturing)
    return fail(kCaptureUnsupported,
                "qc PTX emulator: cuStreamSynchronize on a capturing stream");
  return kSuccess;
}

QC_EXPORT CUresult cuEventCreate(void **event, unsigned flags) {
  QC_EMU_ENTER();
  if (!event)
    return fail(kInvalidValue, "qc PTX emulator: null event pointer");
  (void)flags;
  Event *e = new Event();
  s.events.insert(e);
  *event = e;
  return kSuccess;
}

QC_EXPORT CUresult cuEventDestroy_v2(void *event) {
  QC_EMU_ENTER();
  Event *e = static_cast<Event *>(event);
  if (!s.events.count(e))
    return fail(kInvalidHandle, "qc PTX emulator: unknown event handle");
  s.events.erase(e);
  delete e;
  return kSuccess;
}

QC_EXPORT CUresult cuEventRecord(void *event, void *stream) {
  QC_EMU_ENTER();
  Event *e = static_cast<Event *>(event);
  if (!s.events.count(e))
    return fail(kInvalidHandle, "qc PTX emulator: unknown event handle");
  CUresult r;
  Stream *st = streamOf(s, stream, r);
  if (!st)
    return r;
  return enqueue(st, [e]() {
    e->recorded = true;
    e->ms = nowMs();
    return kSuccess;
  });
}

QC_EXPORT CUresult cuEventSynchronize(void *event) {
  QC_EMU_ENTER();
  if (!s.events.count(static_cast<Event *>(event)))
    return fail(kInvalidHandle, "qc PTX emulator: unknown event handle");
  return kSuccess;
}

QC_EXPORT CUresult cuEventElapsedTime_v2(float *ms, void *start, void *end) {
  QC_EMU_ENTER();
  Event *a = static_cast<Event *>(start), *b = static_cast<Event *>(end);
  if (!ms)
    return fail(kInvalidValue, "qc PTX emulator: null result pointer");
  if (!s.events.count(a) || !s.events.count(b))
    return fail(kInvalidHandle, "qc PTX emulator: unknown event handle");
  if (!a->recorded || !b->recorded)
    return fail(kInvalidHandle, "qc PTX emulator: event not recorded");
  *ms = float(b->ms - a->ms);
  return kSuccess;
}

QC_EXPORT CUresult cuStreamBeginCapture_v2(void *stream, int mode) {
  QC_EMU_ENTER();
  (void)mode; // one thread drives the emulator: every mode behaves alike
  if (!stream)
    return fail(kCaptureUnsupported,
                "qc PTX emulator: the NULL stream cannot be captured");
  CUresult r;
  Stream *st = streamOf(s, stream, r);
  if (!st)
    return r;
  if (st->capturing)
    return fail(kInvalidValue, "qc PTX emulator: stream already capturing");
  st->capturing = true;
  st->captured.clear();
  return kSuccess;
}

QC_EXPORT CUresult cuStreamEndCapture(void *stream, void **graph) {
  QC_EMU_ENTER();
  CUresult r;
  Stream *st = streamOf(s, stream, r);
  if (!st)
    return r;
  if (!graph)
    return fail(kInvalidValue, "qc PTX emulator: null graph pointer");
  if (!st->capturing)
    return fail(kCaptureUnmatched,
                "qc PTX emulator: the stream is not capturing");
  st->capturing = false;
  Graph *g = new Graph{std::move(st->captured)};
  st->captured.clear();
  s.graphs.insert(g);
  *graph = g;
  return kSuccess;
}

QC_EXPORT CUresult cuGraphInstantiateWithFlags(void **exec, void *graph,
                                               unsigned long long flags) {
  QC_EMU_ENTER();
  Graph *g = static_cast<Graph *>(graph);
  if (!exec)
    return fail(kInvalidValue, "qc PTX emulator: null exec pointer");
  if (!s.graphs.count(g))
    return fail(kInvalidHandle, "qc PTX emulator: unknown graph handle");
  (void)flags;
  Graph *e = new Graph(*g);
  s.execs.insert(e);
  *exec = e;
  return kSuccess;
}

QC_EXPORT CUresult cuGraphLaunch(void *exec, void *stream) {
  QC_EMU_ENTER();
  Graph *e = static_cast<Graph *>(exec);
  if (!s.execs.count(e))
    return fail(kInvalidHandle, "qc PTX emulator: unknown graph exec handle");
  CUresult r;
  Stream *st = streamOf(s, stream, r);
  if (!st)
    return r;
  for (const Op &op : e->ops) {
    r = enqueue(st, op);
    if (r != kSuccess)
      return r;
  }
  return kSuccess;
}

QC_EXPORT CUresult cuGraphExecDestroy(void *exec) {
  QC_EMU_ENTER();
  Graph *e = static_cast<Graph *>(exec);
  if (!s.execs.count(e))
    return fail(kInvalidHandle, "qc PTX emulator: unknown graph exec handle");
  s.execs.erase(e);
  delete e;
  return kSuccess;
}

QC_EXPORT CUresult cuGraphDestroy(void *graph) {
  QC_EMU_ENTER();
  Graph *g = static_cast<Graph *>(graph);
  if (!s.graphs.count(g))
    return fail(kInvalidHandle, "qc PTX emulator: unknown graph handle");
  s.graphs.erase(g);
  delete g;
  return kSuccess;
}

} // extern "C"
