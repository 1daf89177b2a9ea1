//===- FakeCuda.cpp - A host-memory test double of libcuda and cuBLAS -----===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// TEST DOUBLE, NOT A GPU. A shared library exporting the CUDA driver and
// cuBLAS entry points the runtime resolves (same symbol names and ABI), so
// that GpuRuntime and quant-bench can be run end to end on a machine
// without a GPU: selected with QC_CUDA_DRIVER_LIBRARY / QC_CUBLAS_LIBRARY.
// It checks the orchestration (argument marshalling by name, grids,
// workspace sizing and zeroing, poisoning, stream capture and graph replay,
// verification, report) and nothing about real kernels or timings: its
// "device" memory is host memory, its "kernels" are host functions named
// fake_<kind>_<N>_<K>_<G|ch>_<s|a>, and its events read the host clock.
// The device name says so, so no report made with it can pass for GPU data.
//
// Real PTX runs on the qc PTX emulator (runtime/emulator: the GPU runtime
// tests use it when there is no GPU, and test/Unit/Emulator runs every
// generated kernel through quant-bench on it). This double stays for what
// the emulator cannot do: loading cubins (the emulator runs PTX only) and
// standing in for cuBLAS, so that quant-bench's cuBLAS and
// dequantize-then-cuBLAS rows are exercised.
//
// Kernels (parameters in this order):
//   linear  (x, qweight, scales, [zeros], y, M)   y = x W^T, fp32 accumulate
//   partial (same)                                as linear but skips row M-1
//   splitk  (x, qweight, scales, [zeros], workspace, M)
//           workspace[m][n] += the grid.z slice of the dot product
//   reduce  (workspace, y, M)                     y = fp16(workspace)
//   dequant (qweight, scales, [zeros], w)         w = fp16 W [N, K]
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/KernelLayout.h"
#include "qc/runtime/Safetensors.h"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace {

using Op = std::function<void()>;

struct Stream {
  bool capturing = false;
  std::vector<Op> captured;
};
struct Graph {
  std::vector<Op> ops;
};
struct Event {
  double ms = 0;
};
struct Kernel {
  std::string kind;
  int64_t N = 0, K = 0, G = -1;
  bool sym = true;
};
struct Blas {
  Stream *stream = nullptr;
};

constexpr int kSuccess = 0, kInvalidValue = 1, kInvalidImage = 200,
              kNotFound = 500;

Stream defaultStream;

Stream *streamOf(void *s) {
  return s ? static_cast<Stream *>(s) : &defaultStream;
}

/// Runs `op` now, or records it when the stream is being captured.
void enqueue(void *s, Op op) {
  Stream *st = streamOf(s);
  if (st->capturing)
    st->captured.push_back(std::move(op));
  else
    op();
}

double nowMs() {
  using namespace std::chrono;
  return duration<double, std::milli>(steady_clock::now().time_since_epoch())
      .count();
}

template <typename T> T *dev(uint64_t p) { return reinterpret_cast<T *>(p); }

/// The packed tensors at device addresses, as MMA16x64Tensors.
qc::MMA16x64Tensors view(const Kernel &k, uint64_t qw, uint64_t sc,
                         uint64_t zr) {
  qc::MMA16x64Tensors t;
  t.bits = 4;
  t.N = k.N;
  t.K = k.K;
  t.groupSize = k.G;
  t.sym = k.sym;
  (void)qc::mma16x64Dims(4, k.N, k.K, k.G, t.Np, t.Kp, t.numGroups);
  t.qweight.assign(dev<int32_t>(qw), dev<int32_t>(qw) + t.Np * t.Kp / 8);
  t.scales.assign(dev<uint16_t>(sc), dev<uint16_t>(sc) + t.numGroups * t.Np);
  if (!k.sym)
    t.zeros.assign(dev<uint16_t>(zr), dev<uint16_t>(zr) + t.numGroups * t.Np);
  return t;
}

/// fake_<kind>_<N>_<K>_<G|ch>_<s|a>
bool parseKernel(const std::string &name, Kernel &k) {
  char kind[32], g[16], s;
  long long N, K;
  if (std::sscanf(name.c_str(), "fake_%31[a-z]_%lld_%lld_%15[a-z0-9]_%c", kind,
                  &N, &K, g, &s) != 5)
    return false;
  k.kind = kind;
  k.N = N;
  k.K = K;
  k.G = std::strcmp(g, "ch") == 0 ? -1 : std::atoll(g);
  k.sym = s == 's';
  return k.kind == "linear" || k.kind == "partial" || k.kind == "splitk" ||
         k.kind == "reduce" || k.kind == "dequant";
}

} // namespace

extern "C" {

int cuInit(unsigned) { return kSuccess; }
int cuDriverGetVersion(int *v) {
  *v = 13000;
  return kSuccess;
}
int cuGetErrorString(int, const char **s) {
  *s = "error reported by the fake CUDA driver";
  return kSuccess;
}
int cuGetErrorName(int, const char **s) {
  *s = "CUDA_ERROR_FAKE";
  return kSuccess;
}
int cuDeviceGetCount(int *c) {
  *c = 1;
  return kSuccess;
}
int cuDeviceGet(int *d, int ordinal) {
  *d = ordinal;
  return ordinal == 0 ? kSuccess : kInvalidValue;
}
int cuDeviceGetName(char *name, int len, int) {
  std::snprintf(name, size_t(len),
                "qc fake CUDA driver (test double, not a GPU)");
  return kSuccess;
}
int cuDeviceGetAttribute(int *v, int attr, int) {
  switch (attr) {
  case 75:
    *v = 8;
    break; // compute capability major
  case 76:
    *v = 0;
    break; // minor
  case 16:
    *v = 4;
    break; // SMs
  case 38:
    *v = 1 << 20;
    break; // L2
  case 97:
    *v = 227 * 1024;
    break; // opt-in shared memory
  default:
    return kInvalidValue;
  }
  return kSuccess;
}
int cuDevicePrimaryCtxRetain(void **ctx, int) {
  *ctx = &defaultStream;
  return kSuccess;
}
int cuDevicePrimaryCtxRelease_v2(int) { return kSuccess; }
int cuCtxSetCurrent(void *) { return kSuccess; }
int cuCtxSynchronize() { return kSuccess; }

int cuModuleLoadDataEx(void **module, const void *image, unsigned, int *,
                       void **) {
  if (std::strncmp(static_cast<const char *>(image), "//qc-fake-module", 16))
    return kInvalidImage;
  *module = new int(0);
  return kSuccess;
}
int cuModuleUnload(void *module) {
  delete static_cast<int *>(module);
  return kSuccess;
}
int cuModuleGetFunction(void **fn, void *, const char *name) {
  Kernel k;
  if (!parseKernel(name, k))
    return kNotFound;
  *fn = new Kernel(k); // lives for the process, like a loaded function
  return kSuccess;
}
int cuFuncSetAttribute(void *, int, int) { return kSuccess; }

int cuMemAlloc_v2(uint64_t *p, size_t bytes) {
  void *m = std::aligned_alloc(256, (bytes + 255) / 256 * 256);
  if (!m)
    return 2; // out of memory
  *p = reinterpret_cast<uint64_t>(m);
  return kSuccess;
}
int cuMemFree_v2(uint64_t p) {
  std::free(reinterpret_cast<void *>(p));
  return kSuccess;
}
int cuMemGetInfo_v2(size_t *freeBytes, size_t *total) {
  *freeBytes = size_t(64) << 20; // keeps quant-bench's copy test small
  *total = size_t(1) << 30;
  return kSuccess;
}
int cuMemcpyHtoD_v2(uint64_t d, const void *s, size_t n) {
  std::memcpy(dev<void>(d), s, n);
  return kSuccess;
}
int cuMemcpyDtoH_v2(void *d, uint64_t s, size_t n) {
  std::memcpy(d, dev<void>(s), n);
  return kSuccess;
}
int cuMemcpyDtoD_v2(uint64_t d, uint64_t s, size_t n) {
  std::memcpy(dev<void>(d), dev<void>(s), n);
  return kSuccess;
}
int cuMemcpyDtoDAsync_v2(uint64_t d, uint64_t s, size_t n, void *stream) {
  enqueue(stream, [=] { std::memcpy(dev<void>(d), dev<void>(s), n); });
  return kSuccess;
}
int cuMemsetD8_v2(uint64_t d, unsigned char v, size_t n) {
  std::memset(dev<void>(d), v, n);
  return kSuccess;
}
int cuMemsetD8Async(uint64_t d, unsigned char v, size_t n, void *stream) {
  enqueue(stream, [=] { std::memset(dev<void>(d), v, n); });
  return kSuccess;
}

int cuLaunchKernel(void *fn, unsigned, unsigned gy, unsigned gz, unsigned,
                   unsigned, unsigned, unsigned, void *stream, void **params,
                   void **) {
  const Kernel k = *static_cast<Kernel *>(fn);
  // Parameter values are read now, as the real driver does.
  auto ptr = [&](int i) { return *static_cast<uint64_t *>(params[i]); };
  const int z = k.sym ? 0 : 1; // one more pointer before the output
  const int64_t N = k.N, K = k.K;
  if (k.kind == "linear" || k.kind == "partial" || k.kind == "splitk") {
    uint64_t x = ptr(0), qw = ptr(1), sc = ptr(2), zr = k.sym ? 0 : ptr(3);
    uint64_t out = ptr(3 + z);
    int32_t M = *static_cast<int32_t *>(params[4 + z]);
    // Each launch is one block row per tile; the fake only checks that the
    // grid covers M at the tile size the kernel name cannot tell, so it
    // requires gy >= 1.
    if (gy < 1 || M < 1)
      return kInvalidValue;
    enqueue(stream, [=] {
      std::vector<float> w;
      (void)qc::dequantizeAllMMA16x64(view(k, qw, sc, zr), w);
      const int64_t rows = k.kind == "partial" ? M - 1 : M;
      for (int64_t m = 0; m < rows; ++m)
        for (int64_t n = 0; n < N; ++n) {
          if (k.kind == "splitk") {
            for (unsigned s = 0; s < gz; ++s) {
              int64_t k0 = K * s / gz, k1 = K * (s + 1) / gz;
              float acc = 0;
              for (int64_t kk = k0; kk < k1; ++kk)
                acc += qc::f16ToF32(dev<uint16_t>(x)[m * K + kk]) *
                       w[size_t(n * K + kk)];
              dev<float>(out)[m * N + n] += acc; // needs a zeroed workspace
            }
          } else {
            float acc = 0;
            for (int64_t kk = 0; kk < K; ++kk)
              acc += qc::f16ToF32(dev<uint16_t>(x)[m * K + kk]) *
                     w[size_t(n * K + kk)];
            dev<uint16_t>(out)[m * N + n] = qc::f32ToF16(acc);
          }
        }
    });
  } else if (k.kind == "reduce") {
    uint64_t ws = ptr(0), y = ptr(1);
    int32_t M = *static_cast<int32_t *>(params[2]);
    enqueue(stream, [=] {
      for (int64_t i = 0; i < int64_t(M) * N; ++i)
        dev<uint16_t>(y)[i] = qc::f32ToF16(dev<float>(ws)[i]);
    });
  } else { // dequant
    uint64_t qw = ptr(0), sc = ptr(1), zr = k.sym ? 0 : ptr(2), w = ptr(2 + z);
    enqueue(stream, [=] {
      std::vector<float> v;
      (void)qc::dequantizeAllMMA16x64(view(k, qw, sc, zr), v);
      for (size_t i = 0; i < v.size(); ++i)
        dev<uint16_t>(w)[i] = qc::f32ToF16(v[i]);
    });
  }
  return kSuccess;
}

int cuStreamCreate(void **s, unsigned) {
  *s = new Stream();
  return kSuccess;
}
int cuStreamDestroy_v2(void *s) {
  delete static_cast<Stream *>(s);
  return kSuccess;
}
int cuStreamSynchronize(void *) { return kSuccess; }
int cuEventCreate(void **e, unsigned) {
  *e = new Event();
  return kSuccess;
}
int cuEventDestroy_v2(void *e) {
  delete static_cast<Event *>(e);
  return kSuccess;
}
int cuEventRecord(void *e, void *stream) {
  Event *ev = static_cast<Event *>(e);
  enqueue(stream, [ev] { ev->ms = nowMs(); });
  return kSuccess;
}
int cuEventSynchronize(void *) { return kSuccess; }
int cuEventElapsedTime_v2(float *ms, void *a, void *b) {
  *ms = float(static_cast<Event *>(b)->ms - static_cast<Event *>(a)->ms);
  return kSuccess;
}
int cuStreamBeginCapture_v2(void *s, int) {
  Stream *st = streamOf(s);
  if (st->capturing)
    return kInvalidValue;
  st->capturing = true;
  st->captured.clear();
  return kSuccess;
}
int cuStreamEndCapture(void *s, void **graph) {
  Stream *st = streamOf(s);
  if (!st->capturing)
    return kInvalidValue;
  st->capturing = false;
  *graph = new Graph{std::move(st->captured)};
  st->captured.clear();
  return kSuccess;
}
int cuGraphInstantiateWithFlags(void **exec, void *graph, unsigned long long) {
  *exec = new Graph(*static_cast<Graph *>(graph));
  return kSuccess;
}
int cuGraphLaunch(void *exec, void *stream) {
  for (const Op &op : static_cast<Graph *>(exec)->ops)
    enqueue(stream, op);
  return kSuccess;
}
int cuGraphExecDestroy(void *exec) {
  delete static_cast<Graph *>(exec);
  return kSuccess;
}
int cuGraphDestroy(void *graph) {
  delete static_cast<Graph *>(graph);
  return kSuccess;
}

// cuBLAS: only what quant-bench calls (fp16 in/out, op(A) = A^T, B as is).
int cublasCreate_v2(void **h) {
  *h = new Blas();
  return 0;
}
int cublasDestroy_v2(void *h) {
  delete static_cast<Blas *>(h);
  return 0;
}
int cublasSetStream_v2(void *h, void *s) {
  static_cast<Blas *>(h)->stream = streamOf(s);
  return 0;
}
int cublasGetVersion_v2(void *, int *v) {
  *v = 0; // not cuBLAS
  return 0;
}
int cublasGemmEx(void *h, int ta, int tb, int m, int n, int k,
                 const void *alpha, const void *A, int at, int lda,
                 const void *B, int bt, int ldb, const void *beta, void *C,
                 int ct, int ldc, int compute, int) {
  if (ta != 1 || tb != 0 || at != 2 || bt != 2 || ct != 2 || compute != 68)
    return 15; // CUBLAS_STATUS_NOT_SUPPORTED
  const float al = *static_cast<const float *>(alpha),
              be = *static_cast<const float *>(beta);
  const uint16_t *a = static_cast<const uint16_t *>(A),
                 *b = static_cast<const uint16_t *>(B);
  uint16_t *c = static_cast<uint16_t *>(C);
  enqueue(static_cast<Blas *>(h)->stream, [=] {
    // Column-major C[i + j*ldc] = al * sum_l A[l + i*lda] * B[l + j*ldb].
    for (int j = 0; j < n; ++j)
      for (int i = 0; i < m; ++i) {
        float acc = 0;
        for (int l = 0; l < k; ++l)
          acc += qc::f16ToF32(a[l + size_t(i) * lda]) *
                 qc::f16ToF32(b[l + size_t(j) * ldb]);
        float old = be != 0 ? be * qc::f16ToF32(c[i + size_t(j) * ldc]) : 0.0f;
        c[i + size_t(j) * ldc] = qc::f32ToF16(al * acc + old);
      }
  });
  return 0;
}

} // extern "C"
