//===- GpuBench.cpp - The kernel benchmarking driver (GPU side) -----------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// How one configuration is measured (../shared/docs/PERF.md section 4):
//
// 1. Verify: poison the output (0xFF bytes: fp16 NaN), run once, compare
//    with the float64 reference. A kernel that skips part of the output
//    leaves NaN there and fails.
// 2. Time: capture L launches into a CUDA graph, launch i reading weight
//    copy i % copies, where the copies total more than --rotate-mb (> 256
//    MB, several times any current L2), so each launch reads its weights
//    from DRAM as in a real model where every layer's weights are read
//    once per token. Replay the graph --warmup times, then --reps times
//    between two CUDA events; a sample is the graph time / L, which removes
//    the per-launch CPU overhead a real model also hides with graphs. The
//    reported time is the median sample.
//
//===----------------------------------------------------------------------===//

#include "QuantBench.h"

#include "qc/runtime/CpuLinear.h"
#include "qc/runtime/CudaDriver.h"
#include "qc/runtime/GpuRuntime.h"
#include "qc/runtime/Safetensors.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <ostream>

namespace qc {
namespace bench {

using namespace cuda;

namespace {

/// Runs `f` at scope exit.
struct Defer {
  std::function<void()> f;
  ~Defer() {
    if (f)
      f();
  }
};

/// Captures `launches` calls of `enqueue(stream, i)` into a graph and
/// returns the median time per launch in microseconds.
Status timeGraph(GpuRuntime &rt, int launches, const Options &o,
                 const std::function<Status(CUstream, int)> &enqueue,
                 const std::string &what, double &medianUs) {
  const CudaDriver &d = rt.driver();
  CUstream s = rt.stream();
  QC_RETURN_IF_ERROR(
      d.check(d.cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL),
              what + ": cuStreamBeginCapture"));
  Status st = Status::ok();
  for (int i = 0; i < launches && st; ++i)
    st = enqueue(s, i);
  CUgraph graph = nullptr;
  CUresult r = d.cuStreamEndCapture(s, &graph);
  Defer freeGraph{[&] {
    if (graph)
      d.cuGraphDestroy(graph);
  }};
  QC_RETURN_IF_ERROR(st);
  QC_RETURN_IF_ERROR(d.check(r, what + ": cuStreamEndCapture"));
  CUgraphExec exec = nullptr;
  QC_RETURN_IF_ERROR(d.check(d.cuGraphInstantiate(&exec, graph, 0),
                             what + ": cuGraphInstantiate"));
  CUevent start = nullptr, stop = nullptr;
  Defer freeAll{[&] {
    if (exec)
      d.cuGraphExecDestroy(exec);
    if (start)
      d.cuEventDestroy(start);
    if (stop)
      d.cuEventDestroy(stop);
  }};
  QC_RETURN_IF_ERROR(d.check(d.cuEventCreate(&start, CU_EVENT_DEFAULT),
                             what + ": cuEventCreate"));
  QC_RETURN_IF_ERROR(d.check(d.cuEventCreate(&stop, CU_EVENT_DEFAULT),
                             what + ": cuEventCreate"));
  for (int i = 0; i < o.warmup; ++i)
    QC_RETURN_IF_ERROR(d.check(d.cuGraphLaunch(exec, s), what + ": warm-up"));
  QC_RETURN_IF_ERROR(d.check(d.cuStreamSynchronize(s), what + ": warm-up"));
  std::vector<double> samples;
  for (int i = 0; i < o.reps; ++i) {
    QC_RETURN_IF_ERROR(
        d.check(d.cuEventRecord(start, s), what + ": cuEventRecord"));
    QC_RETURN_IF_ERROR(
        d.check(d.cuGraphLaunch(exec, s), what + ": cuGraphLaunch"));
    QC_RETURN_IF_ERROR(
        d.check(d.cuEventRecord(stop, s), what + ": cuEventRecord"));
    QC_RETURN_IF_ERROR(
        d.check(d.cuEventSynchronize(stop), what + ": timed run"));
    float ms = 0;
    QC_RETURN_IF_ERROR(d.check(d.cuEventElapsedTime(&ms, start, stop),
                               what + ": cuEventElapsedTime"));
    samples.push_back(double(ms) * 1000.0 / launches);
  }
  std::sort(samples.begin(), samples.end());
  size_t n = samples.size();
  medianUs =
      n % 2 ? samples[n / 2] : 0.5 * (samples[n / 2 - 1] + samples[n / 2]);
  return Status::ok();
}

/// Launches per graph: a multiple of `copies` (each copy read equally
/// often), at least 20 so event resolution (~0.5 us) is negligible.
int launchesFor(int copies) { return copies * ((20 + copies - 1) / copies); }

int copiesFor(uint64_t rotateBytes, uint64_t perCopy) {
  return int(std::max<uint64_t>(2, (rotateBytes + perCopy - 1) / perCopy));
}

class LayerBench {
public:
  /// `blas` is null when cuBLAS is unavailable (always on the emulator):
  /// the cuBLAS rows are then skipped and the dequant kernel is verified on
  /// its own output W.
  LayerBench(GpuRuntime &rt, const CublasLib *blas, cublasHandle_t handle,
             const Options &o, std::ostream &progress)
      : rt(rt), d(rt.driver()), blas(blas), handle(handle), o(o),
        progress(progress) {}

  Status run(const Artifact &a, const ArtifactLayer &l, size_t layerIndex,
             double copyTBps, std::vector<Row> &rows);

private:
  Status gemm(CUstream s, CUdeviceptr w, CUdeviceptr x, CUdeviceptr y, int M,
              const std::string &what) {
    const float alpha = 1.0f, beta = 0.0f;
    int r = blas->cublasSetStream(handle, s);
    if (r == 0)
      // Row-major y[M,N] = x[M,K] W[N,K]^T is column-major y^T = W^T' x^T:
      // W (K x N column-major) transposed, x (K x M column-major).
      r = blas->cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, int(N), M,
                             int(K), &alpha, reinterpret_cast<void *>(w),
                             CUDA_R_16F, int(K), reinterpret_cast<void *>(x),
                             CUDA_R_16F, int(K), &beta,
                             reinterpret_cast<void *>(y), CUDA_R_16F, int(N),
                             CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    if (r != 0)
      return Status::error(what + ": cublasGemmEx failed with status " +
                           std::to_string(r));
    return Status::ok();
  }

  /// Poisons y (and `alsoPoison`), runs `enqueue` once, and verifies y.
  Status verifyOnce(const std::function<Status(CUstream, int)> &enqueue, int M,
                    CUdeviceptr alsoPoison, size_t alsoBytes,
                    const std::vector<int64_t> &channels,
                    const std::vector<double> &ref, const std::string &what,
                    Verification &v) {
    QC_RETURN_IF_ERROR(d.check(
        d.cuMemsetD8Async(y.ptr(), 0xFF, size_t(M) * N * 2, rt.stream()),
        what + ": poisoning y"));
    if (alsoPoison)
      QC_RETURN_IF_ERROR(
          d.check(d.cuMemsetD8Async(alsoPoison, 0xFF, alsoBytes, rt.stream()),
                  what + ": poisoning w"));
    QC_RETURN_IF_ERROR(enqueue(rt.stream(), 0));
    QC_RETURN_IF_ERROR(rt.synchronize(what));
    std::vector<uint16_t> out(size_t(M) * size_t(N));
    QC_RETURN_IF_ERROR(
        rt.download(out.data(), y.ptr(), out.size() * 2, what + " y"));
    v = verifyOutput(out.data(), M, N, channels, ref, o.maxRelError);
    return Status::ok();
  }

  GpuRuntime &rt;
  const CudaDriver &d;
  const CublasLib *blas;
  cublasHandle_t handle;
  const Options &o;
  std::ostream &progress;
  int64_t N = 0, K = 0;
  DeviceBuffer x, y, workspace, wDequant;
};

Status LayerBench::run(const Artifact &a, const ArtifactLayer &l,
                       size_t layerIndex, double copyTBps,
                       std::vector<Row> &rows) {
  const std::string lw = o.artifact + ": layer \"" + l.name + "\"";
  N = l.N;
  K = l.K;
  MMA16x64Tensors t;
  if (l.tensors.empty())
    QC_RETURN_IF_ERROR(
        randomLayerTensors(l, o.seed * 1000003u + layerIndex, t));
  else // a model artifact: its own packed weights
    QC_RETURN_IF_ERROR(layerTensors(a, l, t).withContext(o.artifact));
  std::vector<float> wf;
  QC_RETURN_IF_ERROR(dequantizeAllMMA16x64(t, wf).withContext(lw));
  // The same weights for cuBLAS: the fp16 values the kernel dequantizes to.
  std::vector<uint16_t> wh(wf.size());
  for (size_t i = 0; i < wf.size(); ++i)
    wh[i] = f32ToF16(wf[i]);

  // Rotated copies of the packed weights and of the fp16 weights.
  const uint64_t perCopy =
      t.qweight.size() * 4 + t.scales.size() * 2 + t.zeros.size() * 2;
  // On the emulator there is no cache to keep cold and every launch costs
  // real CPU time: one copy, one launch per graph.
  const bool emulated = rt.device().emulated;
  const int copies = emulated ? 1 : copiesFor(o.rotateBytes, perCopy);
  std::vector<DeviceLayerTensors> q(static_cast<size_t>(copies));
  QC_RETURN_IF_ERROR(rt.uploadLayerTensors(t, q[0], l.name));
  for (int i = 1; i < copies; ++i) {
    DeviceLayerTensors &c = q[size_t(i)];
    const std::string what = lw + ": weight copy " + std::to_string(i);
    QC_RETURN_IF_ERROR(rt.alloc(q[0].qweight.size(), c.qweight, what));
    QC_RETURN_IF_ERROR(rt.alloc(q[0].scales.size(), c.scales, what));
    QC_RETURN_IF_ERROR(
        d.check(d.cuMemcpyDtoD(c.qweight.ptr(), q[0].qweight.ptr(),
                               q[0].qweight.size()),
                what));
    QC_RETURN_IF_ERROR(d.check(
        d.cuMemcpyDtoD(c.scales.ptr(), q[0].scales.ptr(), q[0].scales.size()),
        what));
    if (!t.sym) {
      QC_RETURN_IF_ERROR(rt.alloc(q[0].zeros.size(), c.zeros, what));
      QC_RETURN_IF_ERROR(d.check(
          d.cuMemcpyDtoD(c.zeros.ptr(), q[0].zeros.ptr(), q[0].zeros.size()),
          what));
    }
  }
  const int wCopies =
      emulated || !blas ? 1 : copiesFor(o.rotateBytes, uint64_t(wh.size()) * 2);
  std::vector<DeviceBuffer> wd(static_cast<size_t>(wCopies));
  QC_RETURN_IF_ERROR(rt.allocAndUpload(wh.data(), wh.size() * 2, wd[0],
                                       lw + ": fp16 weights"));
  for (int i = 1; i < wCopies; ++i) {
    QC_RETURN_IF_ERROR(
        rt.alloc(wd[0].size(), wd[size_t(i)], lw + ": fp16 copy"));
    QC_RETURN_IF_ERROR(
        d.check(d.cuMemcpyDtoD(wd[size_t(i)].ptr(), wd[0].ptr(), wd[0].size()),
                lw + ": fp16 copy"));
  }

  const int maxM = *std::max_element(o.ms.begin(), o.ms.end());
  QC_RETURN_IF_ERROR(rt.alloc(size_t(maxM) * K * 2, x, lw + ": x"));
  QC_RETURN_IF_ERROR(rt.alloc(size_t(maxM) * N * 2, y, lw + ": y"));
  uint64_t wsPerRow = 0;
  for (const auto &v : l.variants)
    wsPerRow = std::max(wsPerRow, v.workspaceBytesPerRow);
  workspace = DeviceBuffer();
  if (wsPerRow)
    QC_RETURN_IF_ERROR(
        rt.alloc(size_t(wsPerRow) * maxM, workspace, lw + ": workspace"));
  const ArtifactVariant *dq = findVariantByAbi(l, KernelAbi::DequantW);
  wDequant = DeviceBuffer();
  if (dq)
    QC_RETURN_IF_ERROR(
        rt.alloc(size_t(N) * K * 2, wDequant, lw + ": dequantized w"));
  // Every copy and upload above has landed before anything is measured.
  QC_RETURN_IF_ERROR(d.check(d.cuCtxSynchronize(), lw + ": setting up"));
  auto argsFor = [&](int copy) {
    LayerArgs args;
    const DeviceLayerTensors &c = q[size_t(copy % copies)];
    args.x = x.ptr();
    args.y = y.ptr();
    args.qweight = c.qweight.ptr();
    args.scales = c.scales.ptr();
    args.zeros = t.sym ? 0 : c.zeros.ptr();
    args.workspace = workspace.ptr();
    args.workspaceBytes = workspace.size();
    args.w = wDequant.ptr();
    return args;
  };

  for (int M : o.ms) {
    Row row;
    row.layer = l.name;
    row.N = N;
    row.K = K;
    row.bits = l.bits;
    row.groupSize = l.groupSize;
    row.sym = l.sym;
    row.M = M;
    row.dequantAvailable = dq != nullptr;
    const std::string mw = lw + " M=" + std::to_string(M);
    std::vector<uint16_t> xh = randomActivations(
        M, K, o.seed * 7919u + layerIndex * 65536u + uint64_t(M));
    QC_RETURN_IF_ERROR(rt.upload(x.ptr(), xh.data(), xh.size() * 2, mw + " x"));
    QC_RETURN_IF_ERROR(d.check(d.cuCtxSynchronize(), mw + ": uploading x"));
    std::vector<float> xf(xh.size());
    for (size_t i = 0; i < xh.size(); ++i)
      xf[i] = f16ToF32(xh[i]);
    std::vector<int64_t> channels = verifyChannels(N, K, M);
    std::vector<double> ref;
    referenceLinear(wf.data(), N, K, xf.data(), M, channels, ref);
    std::vector<std::string> failures;
    auto check = [&](const char *who, const Verification &v, double &rel) {
      rel = v.relError;
      row.checked = v.checked;
      if (!v.ok)
        failures.push_back(std::string(who) + " rel. error " +
                           (std::isnan(v.relError)
                                ? std::string("NaN (output not fully written?)")
                                : std::to_string(v.relError)) +
                           " > " + std::to_string(o.maxRelError));
    };

    // Ours.
    if (const ArtifactVariant *v = selectVariant(l, M)) {
      row.variant = v->family;
      auto enqueue = [&](CUstream s, int i) {
        return rt.launch(l, *v, M, argsFor(i), s);
      };
      Verification ver;
      QC_RETURN_IF_ERROR(
          verifyOnce(enqueue, M, 0, 0, channels, ref, mw + " ours", ver));
      check("ours", ver, row.relOurs);
      QC_RETURN_IF_ERROR(timeGraph(rt, emulated ? 1 : launchesFor(copies), o,
                                   enqueue, mw + " ours", row.oursUs));
    } else {
      failures.push_back("no kernel variant covers M = " + std::to_string(M));
    }

    // cuBLAS FP16 on the same (dequantized) weights.
    if (blas) {
      auto enqueue = [&](CUstream s, int i) {
        return gemm(s, wd[size_t(i % wCopies)].ptr(), x.ptr(), y.ptr(), M,
                    mw + " cuBLAS");
      };
      Verification ver;
      QC_RETURN_IF_ERROR(
          verifyOnce(enqueue, M, 0, 0, channels, ref, mw + " cuBLAS", ver));
      check("cuBLAS", ver, row.relCublas);
      QC_RETURN_IF_ERROR(timeGraph(rt, launchesFor(wCopies), o, enqueue,
                                   mw + " cuBLAS", row.cublasUs));
    }

    // Without cuBLAS the dequant kernel is still checked: its fp16 W must
    // equal the host dequantization (up to fp16 rounding).
    if (dq && !blas) {
      const std::string what = mw + " dequant kernel";
      QC_RETURN_IF_ERROR(d.check(
          d.cuMemsetD8Async(wDequant.ptr(), 0xFF, wDequant.size(), rt.stream()),
          what + ": poisoning w"));
      QC_RETURN_IF_ERROR(rt.launch(l, *dq, M, argsFor(0)));
      QC_RETURN_IF_ERROR(rt.synchronize(what));
      std::vector<uint16_t> got(size_t(N) * size_t(K));
      QC_RETURN_IF_ERROR(
          rt.download(got.data(), wDequant.ptr(), got.size() * 2, what + " w"));
      std::vector<float> gotF(got.size());
      for (size_t i = 0; i < got.size(); ++i)
        gotF[i] = f16ToF32(got[i]);
      std::vector<double> refW(wf.begin(), wf.end());
      double rel = relativeL2Error(gotF.data(), refW.data(), gotF.size());
      row.relDequantW = rel;
      if (!(std::isfinite(rel) && rel <= o.maxRelError))
        failures.push_back("dequant kernel W rel. error " +
                           (std::isnan(rel)
                                ? std::string("NaN (W not fully written?)")
                                : std::to_string(rel)) +
                           " > " + std::to_string(o.maxRelError));
    }

    // Dequantize (our "dequant" kernel) then cuBLAS.
    if (dq && blas) {
      auto enqueue = [&](CUstream s, int i) -> Status {
        QC_RETURN_IF_ERROR(rt.launch(l, *dq, M, argsFor(i), s));
        return gemm(s, wDequant.ptr(), x.ptr(), y.ptr(), M,
                    mw + " dequant+cuBLAS");
      };
      Verification ver;
      QC_RETURN_IF_ERROR(verifyOnce(enqueue, M, wDequant.ptr(), wDequant.size(),
                                    channels, ref, mw + " dequant+cuBLAS",
                                    ver));
      check("dequant+cuBLAS", ver, row.relDequant);
      QC_RETURN_IF_ERROR(timeGraph(rt, launchesFor(copies), o, enqueue,
                                   mw + " dequant+cuBLAS", row.dequantUs));
    }

    row.emulated = emulated;
    computeMetrics(row, copyTBps);
    row.ok = failures.empty();
    for (const auto &f : failures)
      row.failure += (row.failure.empty() ? "" : "; ") + f;
    progress << "quant-bench: " << l.name << " M=" << M << ": ours "
             << row.oursUs << " us" << (emulated ? " (emulated)" : "");
    if (blas)
      progress << ", cuBLAS " << row.cublasUs << " us";
    progress << (row.ok ? "" : " [" + row.failure + "]") << "\n";
    rows.push_back(std::move(row));
  }
  return Status::ok();
}

/// Device-to-device copy bandwidth (read + write bytes per second).
Status measureCopy(GpuRuntime &rt, const Options &o, double &tbps) {
  const CudaDriver &d = rt.driver();
  size_t freeBytes = 0, total = 0;
  QC_RETURN_IF_ERROR(
      d.check(d.cuMemGetInfo(&freeBytes, &total), "cuMemGetInfo"));
  size_t bytes = std::min<size_t>(size_t(512) << 20, freeBytes / 4);
  DeviceBuffer src, dst;
  QC_RETURN_IF_ERROR(rt.alloc(bytes, src, "copy-bandwidth source"));
  QC_RETURN_IF_ERROR(rt.alloc(bytes, dst, "copy-bandwidth destination"));
  QC_RETURN_IF_ERROR(d.check(d.cuMemsetD8(src.ptr(), 0x5A, bytes), "memset"));
  QC_RETURN_IF_ERROR(d.check(d.cuCtxSynchronize(), "copy-bandwidth setup"));
  double us = 0;
  Options co = o;
  co.reps = std::min(o.reps, 50);
  QC_RETURN_IF_ERROR(timeGraph(
      rt, 4, co,
      [&](CUstream s, int) {
        return d.check(d.cuMemcpyDtoDAsync(dst.ptr(), src.ptr(), bytes, s),
                       "cuMemcpyDtoDAsync");
      },
      "copy bandwidth", us));
  tbps = 2.0 * double(bytes) / (us * 1e-6) / 1e12;
  return Status::ok();
}

/// The FP16 tensor-core ceiling: cuBLAS on an n^3 GEMM (--gemm-peak-n,
/// default 8192; fp32 accumulate) over non-zero data (0x11 bytes: fp16
/// 6.5e-4, no overflow).
Status measureGemmPeak(GpuRuntime &rt, const CublasLib &blas,
                       cublasHandle_t handle, const Options &o,
                       double &tflops) {
  const CudaDriver &d = rt.driver();
  const int n = o.gemmPeakN;
  const size_t bytes = size_t(n) * n * 2;
  DeviceBuffer A, B, C;
  QC_RETURN_IF_ERROR(rt.alloc(bytes, A, "GEMM-peak A"));
  QC_RETURN_IF_ERROR(rt.alloc(bytes, B, "GEMM-peak B"));
  QC_RETURN_IF_ERROR(rt.alloc(bytes, C, "GEMM-peak C"));
  QC_RETURN_IF_ERROR(d.check(d.cuMemsetD8(A.ptr(), 0x11, bytes), "memset"));
  QC_RETURN_IF_ERROR(d.check(d.cuMemsetD8(B.ptr(), 0x11, bytes), "memset"));
  QC_RETURN_IF_ERROR(d.check(d.cuCtxSynchronize(), "GEMM-peak setup"));
  const float alpha = 1.0f, beta = 0.0f;
  auto gemm = [&](CUstream s, int) -> Status {
    int r = blas.cublasSetStream(handle, s);
    if (r == 0)
      r = blas.cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, n, n, n, &alpha,
                            reinterpret_cast<void *>(A.ptr()), CUDA_R_16F, n,
                            reinterpret_cast<void *>(B.ptr()), CUDA_R_16F, n,
                            &beta, reinterpret_cast<void *>(C.ptr()),
                            CUDA_R_16F, n, CUBLAS_COMPUTE_32F,
                            CUBLAS_GEMM_DEFAULT);
    if (r != 0)
      return Status::error("GEMM peak: cublasGemmEx failed with status " +
                           std::to_string(r));
    return Status::ok();
  };
  QC_RETURN_IF_ERROR(gemm(rt.stream(), 0)); // workspace set up outside capture
  QC_RETURN_IF_ERROR(rt.synchronize("GEMM peak"));
  Options go = o;
  go.reps = std::min(o.reps, 20);
  double us = 0;
  QC_RETURN_IF_ERROR(timeGraph(rt, 3, go, gemm, "GEMM peak", us));
  tflops = 2.0 * double(n) * n * n / (us * 1e-6) / 1e12;
  return Status::ok();
}

} // namespace

Status runOnGpu(const Options &o, const Artifact &a,
                const std::vector<const ArtifactLayer *> &layers,
                Report &report, int &code, std::ostream &progress) {
  std::unique_ptr<GpuRuntime> rt;
  DriverState state;
  Status st = GpuRuntime::create(rt, state, o.device);
  if (!st) {
    code = state == DriverState::Ready ? kExitGpuError : kExitNoGpu;
    if (state == DriverState::NotFound)
      return Status::error(
          "no CUDA driver (libcuda.so.1 not found): GPU path unavailable, "
          "nothing to measure");
    return st;
  }
  code = kExitGpuError;
  const GpuDeviceInfo &dev = rt->device();
  // cuBLAS is optional: without it (always on the emulator, where a real
  // libcublas would talk to a real GPU) our kernels are still measured and
  // verified and the cuBLAS columns stay empty.
  const CublasLib *blas = nullptr;
  cublasHandle_t handle = nullptr;
  if (dev.emulated) {
    report.cublasNote = "cuBLAS rows skipped: cuBLAS does not run on the qc "
                        "PTX emulator";
  } else if (Status bs = CublasLib::load(blas); !bs) {
    blas = nullptr;
    report.cublasNote = "cuBLAS rows skipped: " + bs.message();
  } else if (int r = blas->cublasCreate(&handle); r != 0) {
    blas = nullptr;
    report.cublasNote =
        "cuBLAS rows skipped: cublasCreate failed with status " +
        std::to_string(r);
  }
  Defer destroy{[&] {
    if (blas && handle)
      blas->cublasDestroy(handle);
  }};
  if (blas)
    blas->cublasGetVersion(handle, &report.cublasVersion);
  else
    progress << "quant-bench: " << report.cublasNote << "\n";
  QC_RETURN_IF_ERROR(rt->loadArtifact(a, o.artifact));

  report.deviceName = dev.name;
  report.arch = dev.arch();
  report.smCount = dev.smCount;
  report.driverVersion = dev.driverVersion;
  report.emulated = dev.emulated;
  report.date = utcNow();
  report.artifact = o.artifact;
  report.producer = a.producer;
  report.options = o;
  if (dev.emulated) {
    // Emulated wall time is no performance figure: no ceilings, few reps.
    report.options.reps = std::min(o.reps, 2);
    report.options.warmup = 0;
    progress << "quant-bench: " << dev.name
             << ": EMULATED, timings are the emulator's host wall time, not "
                "GPU performance (reps capped at "
             << report.options.reps
             << ", no warm-up, no weight rotation, no ceilings)\n";
  } else {
    QC_RETURN_IF_ERROR(measureCopy(*rt, o, report.copyTBps));
    if (blas)
      QC_RETURN_IF_ERROR(
          measureGemmPeak(*rt, *blas, handle, o, report.gemmTflops));
    progress << "quant-bench: " << dev.name << " (" << dev.arch()
             << "), device-to-device copy " << report.copyTBps
             << " TB/s, cuBLAS FP16 GEMM " << o.gemmPeakN << "^3 "
             << report.gemmTflops << " TFLOP/s\n";
  }
  LayerBench lb(*rt, blas, handle, report.options, progress);
  for (size_t i = 0; i < layers.size(); ++i)
    QC_RETURN_IF_ERROR(lb.run(a, *layers[i], i, report.copyTBps, report.rows));
  code = kExitOk;
  return Status::ok();
}

} // namespace bench
} // namespace qc
