//===- GpuRuntime.cpp - Running an artifact's kernels on a GPU ------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/GpuRuntime.h"

#include "qc/runtime/Json.h"

#include <cstring>

namespace qc {

using namespace cuda;

std::string GpuDeviceInfo::arch() const {
  return "sm_" + std::to_string(ccMajor) + std::to_string(ccMinor);
}

namespace {

/// Parses "sm_90a" / "compute_80" / "sm_100f" into (90, 'a') etc.
bool parseArch(const std::string &target, const char *prefix, int &cc,
               char &suffix) {
  size_t n = std::strlen(prefix);
  if (target.compare(0, n, prefix) != 0)
    return false;
  size_t i = n;
  cc = 0;
  while (i < target.size() && target[i] >= '0' && target[i] <= '9')
    cc = cc * 10 + (target[i++] - '0');
  if (i == n)
    return false;
  suffix = i < target.size() ? target[i] : 0;
  return true;
}

} // namespace

const ArtifactImage *selectImage(const ArtifactModule &m, int ccMajor,
                                 int ccMinor, bool ptxOnly) {
  const int cc = ccMajor * 10 + ccMinor;
  const ArtifactImage *best = nullptr;
  int bestRank = -1;
  for (const ArtifactImage &img : m.images) {
    int c;
    char sfx;
    int rank = -1;
    if (img.kind == "cubin" && !ptxOnly &&
        parseArch(img.target, "sm_", c, sfx)) {
      if (sfx == 'a' && c == cc)
        rank = 3000; // arch-specific features of exactly this GPU
      else if (sfx == 0 && c == cc)
        rank = 2000;
      else if ((sfx == 0 || sfx == 'f') && c / 10 == ccMajor && c <= cc)
        rank = 1000 + c; // same major: binary compatible
    } else if (img.kind == "ptx") {
      if (img.target == "ptx")
        rank = 1;
      else if (parseArch(img.target, "compute_", c, sfx) &&
               (sfx == 0 ? c <= cc : c == cc))
        rank = 10 + c;
    }
    if (rank > bestRank) {
      bestRank = rank;
      best = &img;
    }
  }
  return bestRank >= 0 ? best : nullptr;
}

DeviceBuffer::~DeviceBuffer() {
  if (p && driver)
    driver->cuMemFree(p);
}

DeviceBuffer::DeviceBuffer(DeviceBuffer &&o) noexcept
    : driver(o.driver), p(o.p), bytes(o.bytes) {
  o.p = 0;
  o.bytes = 0;
}

DeviceBuffer &DeviceBuffer::operator=(DeviceBuffer &&o) noexcept {
  if (this != &o) {
    if (p && driver)
      driver->cuMemFree(p);
    driver = o.driver;
    p = o.p;
    bytes = o.bytes;
    o.p = 0;
    o.bytes = 0;
  }
  return *this;
}

Status GpuRuntime::create(std::unique_ptr<GpuRuntime> &out, DriverState &state,
                          int ordinal, const std::string &library) {
  const CudaDriver *d = nullptr;
  QC_RETURN_IF_ERROR(CudaDriver::load(d, state, library));
  std::unique_ptr<GpuRuntime> rt(new GpuRuntime());
  rt->drv = d;
  rt->info.emulated = d->emulated;
  int count = 0;
  QC_RETURN_IF_ERROR(d->check(d->cuDeviceGetCount(&count), "cuDeviceGetCount"));
  if (ordinal < 0 || ordinal >= count) {
    state = DriverState::NoDevice;
    return Status::error("CUDA device " + std::to_string(ordinal) +
                         " does not exist (" + std::to_string(count) +
                         " devices)");
  }
  QC_RETURN_IF_ERROR(
      d->check(d->cuDeviceGet(&rt->dev, ordinal), "cuDeviceGet"));
  GpuDeviceInfo &i = rt->info;
  i.ordinal = ordinal;
  char name[256] = {0};
  QC_RETURN_IF_ERROR(d->check(
      d->cuDeviceGetName(name, sizeof(name) - 1, rt->dev), "cuDeviceGetName"));
  i.name = name;
  auto attr = [&](int a, int &v, const char *what) {
    return d->check(d->cuDeviceGetAttribute(&v, a, rt->dev),
                    std::string("cuDeviceGetAttribute(") + what + ")");
  };
  QC_RETURN_IF_ERROR(attr(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR,
                          i.ccMajor, "compute capability major"));
  QC_RETURN_IF_ERROR(attr(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR,
                          i.ccMinor, "compute capability minor"));
  QC_RETURN_IF_ERROR(
      attr(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, i.smCount, "SM count"));
  QC_RETURN_IF_ERROR(attr(CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE, i.l2Bytes, "L2"));
  QC_RETURN_IF_ERROR(attr(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN,
                          i.maxSharedOptin, "max shared memory per block"));
  QC_RETURN_IF_ERROR(
      d->check(d->cuDriverGetVersion(&i.driverVersion), "cuDriverGetVersion"));
  QC_RETURN_IF_ERROR(d->check(d->cuDevicePrimaryCtxRetain(&rt->ctx, rt->dev),
                              "cuDevicePrimaryCtxRetain"));
  QC_RETURN_IF_ERROR(d->check(d->cuCtxSetCurrent(rt->ctx), "cuCtxSetCurrent"));
  size_t freeBytes = 0;
  QC_RETURN_IF_ERROR(
      d->check(d->cuMemGetInfo(&freeBytes, &i.totalMemory), "cuMemGetInfo"));
  // A blocking stream (flags 0): it is ordered after the synchronous-looking
  // cuMemcpy/cuMemset calls, which run on the legacy default stream and may
  // still be in flight when they return (device-to-device copies, memsets).
  QC_RETURN_IF_ERROR(
      d->check(d->cuStreamCreate(&rt->strm, 0), "cuStreamCreate"));
  state = DriverState::Ready;
  out = std::move(rt);
  return Status::ok();
}

void GpuRuntime::unloadModules() {
  for (auto &kv : modules)
    if (kv.second.module)
      drv->cuModuleUnload(kv.second.module);
  modules.clear();
}

GpuRuntime::~GpuRuntime() {
  if (!drv)
    return;
  if (ctx)
    drv->cuCtxSetCurrent(ctx);
  workspace = DeviceBuffer();
  unloadModules();
  if (strm)
    drv->cuStreamDestroy(strm);
  if (ctx)
    drv->cuDevicePrimaryCtxRelease(dev);
}

Status GpuRuntime::alloc(size_t bytes, DeviceBuffer &out,
                         const std::string &what) {
  DeviceBuffer b;
  b.driver = drv;
  // cuMemAlloc rejects 0 bytes; keep a valid address for empty tensors.
  QC_RETURN_IF_ERROR(drv->check(drv->cuMemAlloc(&b.p, bytes ? bytes : 1),
                                "cuMemAlloc of " + std::to_string(bytes) +
                                    " bytes for " + what));
  b.bytes = bytes;
  out = std::move(b);
  return Status::ok();
}

Status GpuRuntime::upload(CUdeviceptr dst, const void *src, size_t bytes,
                          const std::string &what) {
  if (!bytes)
    return Status::ok();
  return drv->check(drv->cuMemcpyHtoD(dst, src, bytes), "upload of " + what);
}

Status GpuRuntime::download(void *dst, CUdeviceptr src, size_t bytes,
                            const std::string &what) {
  if (!bytes)
    return Status::ok();
  return drv->check(drv->cuMemcpyDtoH(dst, src, bytes), "download of " + what);
}

Status GpuRuntime::allocAndUpload(const void *src, size_t bytes,
                                  DeviceBuffer &out, const std::string &what) {
  QC_RETURN_IF_ERROR(alloc(bytes, out, what));
  return upload(out.ptr(), src, bytes, what);
}

Status GpuRuntime::loadArtifact(const Artifact &a,
                                const std::string &displayName) {
  unloadModules();
  artifactName = displayName;
  // The lookups below rely on every cross reference resolving.
  QC_RETURN_IF_ERROR(validateArtifact(a, displayName));
  for (const ArtifactModule &m : a.modules) {
    const std::string where = displayName + ": module " + json::quote(m.name);
    // The emulator executes PTX only (a cubin is SASS machine code): it
    // gets the PTX image that a GPU of its compute capability would JIT.
    const ArtifactImage *img =
        selectImage(m, info.ccMajor, info.ccMinor, info.emulated);
    if (!img) {
      std::string have;
      for (const auto &i : m.images)
        have += (have.empty() ? "" : ", ") + i.target + " " + i.kind;
      return Status::error(where + ": no " +
                           (info.emulated ? "PTX image" : "image") +
                           " runs on " + info.arch() + " (" + info.name +
                           "); the artifact has " + have);
    }
    LoadedModule lm;
    lm.image = img->target + " " + img->kind;
    std::vector<uint8_t> ptx;
    const void *data = img->bytes.data();
    if (img->kind == "ptx") { // the JIT wants a NUL-terminated string
      ptx = img->bytes;
      ptx.push_back(0);
      data = ptx.data();
    }
    char log[8192] = {0};
    int opts[2] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
    void *vals[2] = {log, reinterpret_cast<void *>(uintptr_t(sizeof(log) - 1))};
    CUresult r = drv->cuModuleLoadDataEx(&lm.module, data, 2, opts, vals);
    if (r != CUDA_SUCCESS) {
      unloadModules();
      return Status::error(where + ": loading the " + lm.image + " image on " +
                           info.arch() + " failed: " + drv->describe(r) +
                           (log[0] ? std::string("; log: ") + log : ""));
    }
    for (const std::string &k : m.kernels) {
      CUfunction f = nullptr;
      r = drv->cuModuleGetFunction(&f, lm.module, k.c_str());
      if (r != CUDA_SUCCESS) {
        drv->cuModuleUnload(lm.module);
        unloadModules();
        return Status::error(where + ": kernel " + json::quote(k) +
                             " is not in its " + lm.image +
                             " image: " + drv->describe(r));
      }
      lm.functions[k] = f;
    }
    modules[m.name] = std::move(lm);
  }
  // Opt every kernel into the dynamic shared memory its launches need (the
  // default cap is 48 KB) and refuse launches the device cannot run.
  for (const ArtifactLayer &l : a.layers)
    for (const ArtifactVariant &v : l.variants)
      for (const ArtifactLaunch &L : v.launches) {
        const std::string where = displayName + ": layer " +
                                  json::quote(l.name) + ": " + v.family +
                                  " kernel " + json::quote(L.kernel);
        if (int64_t(L.sharedBytes) > info.maxSharedOptin)
          return Status::error(
              where + " needs " + std::to_string(L.sharedBytes) +
              " bytes of shared memory; " + info.name + " allows " +
              std::to_string(info.maxSharedOptin));
        CUfunction f = modules.at(L.module).functions.at(L.kernel);
        QC_RETURN_IF_ERROR(drv->check(
            drv->cuFuncSetAttribute(
                f, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                int(L.sharedBytes)),
            where + ": cuFuncSetAttribute(max dynamic shared memory)"));
      }
  return Status::ok();
}

Status GpuRuntime::uploadLayerTensors(const MMA16x64Tensors &t,
                                      DeviceLayerTensors &out,
                                      const std::string &layerName) {
  QC_RETURN_IF_ERROR(validateMMA16x64(t).withContext("layer " + layerName));
  const std::string w = "layer " + json::quote(layerName);
  QC_RETURN_IF_ERROR(allocAndUpload(t.qweight.data(), t.qweight.size() * 4,
                                    out.qweight, w + " qweight"));
  QC_RETURN_IF_ERROR(allocAndUpload(t.scales.data(), t.scales.size() * 2,
                                    out.scales, w + " scales"));
  if (!t.sym)
    QC_RETURN_IF_ERROR(allocAndUpload(t.zeros.data(), t.zeros.size() * 2,
                                      out.zeros, w + " zeros"));
  return Status::ok();
}

Status GpuRuntime::uploadLayer(const Artifact &a, const ArtifactLayer &layer,
                               DeviceLayerTensors &out) {
  MMA16x64Tensors t;
  QC_RETURN_IF_ERROR(layerTensors(a, layer, t));
  return uploadLayerTensors(t, out, layer.name);
}

Status GpuRuntime::runLayer(const ArtifactLayer &layer,
                            const DeviceLayerTensors &w, int M, CUdeviceptr x,
                            CUdeviceptr y) {
  const ArtifactVariant *v = selectVariant(layer, M);
  if (!v)
    return Status::error("layer " + json::quote(layer.name) +
                         ": no kernel variant covers M = " + std::to_string(M));
  size_t need = size_t(v->workspaceBytesPerRow) * size_t(M > 0 ? M : 0);
  if (need > workspace.size())
    QC_RETURN_IF_ERROR(alloc(
        need, workspace, "the workspace of layer " + json::quote(layer.name)));
  LayerArgs args;
  args.x = x;
  args.y = y;
  args.qweight = w.qweight.ptr();
  args.scales = w.scales.ptr();
  args.zeros = w.zeros.ptr();
  args.workspace = workspace.ptr();
  args.workspaceBytes = workspace.size();
  QC_RETURN_IF_ERROR(launch(layer, *v, M, args));
  return synchronize("layer " + json::quote(layer.name) + ": " + v->family +
                     " variant at M = " + std::to_string(M));
}

Status GpuRuntime::launch(const ArtifactLayer &layer,
                          const ArtifactVariant &variant, int M,
                          const LayerArgs &args, CUstream stream) {
  if (!stream)
    stream = strm;
  const std::string where =
      (artifactName.empty() ? std::string() : artifactName + ": ") + "layer " +
      json::quote(layer.name) + ": " + variant.family + " variant";
  if (variantAbi(variant) == KernelAbi::Gemm &&
      (M < variant.minM || M > variant.maxM))
    return Status::error(where + ": M = " + std::to_string(M) +
                         " is outside its range [" +
                         std::to_string(variant.minM) + ", " +
                         std::to_string(variant.maxM) + "]");
  if (M < 1)
    return Status::error(where + ": M must be >= 1");
  const size_t workspaceBytes =
      size_t(variant.workspaceBytesPerRow) * size_t(M);
  if (workspaceBytes > 0 && args.workspaceBytes < workspaceBytes)
    return Status::error(where + ": needs " + std::to_string(workspaceBytes) +
                         " workspace bytes for M = " + std::to_string(M) +
                         ", given " + std::to_string(args.workspaceBytes));

  // Resolve everything before enqueuing, so a bad argument never leaves half
  // a layer computed.
  struct Prepared {
    CUfunction fn;
    std::vector<void *> params;
    unsigned grid[3];
  };
  std::vector<Prepared> prepared;
  int32_t m32 = M;
  for (size_t li = 0; li < variant.launches.size(); ++li) {
    const ArtifactLaunch &L = variant.launches[li];
    const std::string lw = where + ": launch " + std::to_string(li) +
                           " (kernel " + json::quote(L.kernel) + ")";
    auto mod = modules.find(L.module);
    if (mod == modules.end())
      return Status::error(lw + ": module " + json::quote(L.module) +
                           " is not loaded (call loadArtifact)");
    auto fn = mod->second.functions.find(L.kernel);
    if (fn == mod->second.functions.end())
      return Status::error(lw + ": kernel not found in module " +
                           json::quote(L.module));
    Prepared p;
    p.fn = fn->second;
    for (const std::string &name : L.params) {
      const CUdeviceptr *ptr = nullptr;
      if (name == "x")
        ptr = &args.x;
      else if (name == "y")
        ptr = &args.y;
      else if (name == "qweight")
        ptr = &args.qweight;
      else if (name == "scales")
        ptr = &args.scales;
      else if (name == "zeros")
        ptr = &args.zeros;
      else if (name == "w")
        ptr = &args.w;
      else if (name == "workspace")
        ptr = &args.workspace;
      if (name == "M") {
        p.params.push_back(&m32);
        continue;
      }
      if (!ptr)
        return Status::error(lw + ": unknown parameter " + json::quote(name));
      if (*ptr == 0)
        return Status::error(lw + ": parameter " + json::quote(name) +
                             " has no device buffer");
      // cuLaunchKernel copies the values these point at when it is called.
      p.params.push_back(const_cast<CUdeviceptr *>(ptr));
    }
    uint64_t gy = (uint64_t(M) + L.tileM - 1) / L.tileM;
    if (gy > 65535)
      return Status::error(lw + ": grid.y = " + std::to_string(gy) +
                           " exceeds 65535");
    p.grid[0] = L.gridX;
    p.grid[1] = unsigned(gy);
    p.grid[2] = L.gridZ;
    prepared.push_back(std::move(p));
  }
  if (variant.zeroWorkspace)
    QC_RETURN_IF_ERROR(drv->check(
        drv->cuMemsetD8Async(args.workspace, 0, workspaceBytes, stream),
        where + ": zeroing the workspace"));
  for (size_t li = 0; li < prepared.size(); ++li) {
    const ArtifactLaunch &L = variant.launches[li];
    Prepared &p = prepared[li];
    QC_RETURN_IF_ERROR(drv->check(
        drv->cuLaunchKernel(p.fn, p.grid[0], p.grid[1], p.grid[2], L.block[0],
                            L.block[1], L.block[2], L.sharedBytes, stream,
                            p.params.data(), nullptr),
        where + ": launch " + std::to_string(li) + " (kernel " +
            json::quote(L.kernel) + ", grid " + std::to_string(p.grid[0]) +
            "x" + std::to_string(p.grid[1]) + "x" + std::to_string(p.grid[2]) +
            ", block " + std::to_string(L.block[0]) + "x" +
            std::to_string(L.block[1]) + "x" + std::to_string(L.block[2]) +
            ", " + std::to_string(L.sharedBytes) + " B shared)"));
  }
  return Status::ok();
}

Status GpuRuntime::synchronize(const std::string &what) {
  return drv->check(drv->cuStreamSynchronize(strm), what);
}

std::string GpuRuntime::loadedImage(const std::string &module) const {
  auto it = modules.find(module);
  return it == modules.end() ? std::string() : it->second.image;
}

} // namespace qc
