//===- GpuRuntimeTest.cpp - Tests of the CUDA driver loader and runtime ---===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Tests that need a device run on the GPU when there is one, else on the
// qc PTX emulator (libqc_cuda_emu.so, which executes the PTX test kernels
// instruction by instruction), else skip with one line. The others check
// what can be checked without one: the driver and cuBLAS symbol names
// against the CUDA toolkit's libraries (when installed), the no-driver
// message, image selection, and that the PTX test kernels are valid PTX
// (assembled with ptxas when available). The host-memory test double
// (FakeCuda.cpp) is used only where no PTX could stand in: loading cubins.
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/GpuRuntime.h"

#include "qc/runtime/CpuLinear.h"
#include "qc/runtime/Safetensors.h"

#include "TestUtil.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>

#include <dlfcn.h>

namespace qc {
namespace {

using namespace cuda;

/// y[i] = x[i] + M for i = ctaid.y * ntid.x + tid.x, parameters (x, y, M):
/// checks the runtime's argument order, int32 M and grid.y = ceil(M/tileM).
const char *kTestPtx = R"(.version 7.0
.target sm_80
.address_size 64

.visible .entry qc_test_add_m(.param .u64 px, .param .u64 py, .param .u32 pm)
{
  .reg .b32 %r<8>;
  .reg .b64 %rd<8>;
  ld.param.u64 %rd1, [px];
  ld.param.u64 %rd2, [py];
  ld.param.u32 %r1, [pm];
  cvta.to.global.u64 %rd1, %rd1;
  cvta.to.global.u64 %rd2, %rd2;
  mov.u32 %r2, %ctaid.y;
  mov.u32 %r3, %ntid.x;
  mov.u32 %r4, %tid.x;
  mad.lo.u32 %r5, %r2, %r3, %r4;
  mul.wide.u32 %rd3, %r5, 4;
  add.s64 %rd4, %rd1, %rd3;
  add.s64 %rd5, %rd2, %rd3;
  ld.global.u32 %r6, [%rd4];
  add.s32 %r7, %r6, %r1;
  st.global.u32 [%rd5], %r7;
  ret;
}
)";

/// y[i] = x[i] + 2 qweight[i] + 3 scales[i] + 4 zeros[i] + 5 M (u32) for
/// i = tid.x, parameters (x, qweight, scales, zeros, y, M): any two
/// arguments swapped by the runtime give a different y.
const char *kArgsPtx = R"(.version 7.0
.target sm_80
.address_size 64

.visible .entry qc_test_args(.param .u64 px, .param .u64 pq, .param .u64 ps,
                             .param .u64 pz, .param .u64 py, .param .u32 pm)
{
  .reg .b32 %r<8>;
  .reg .b64 %rd<12>;
  ld.param.u64 %rd0, [px];
  ld.param.u64 %rd1, [pq];
  ld.param.u64 %rd2, [ps];
  ld.param.u64 %rd3, [pz];
  ld.param.u64 %rd4, [py];
  ld.param.u32 %r0, [pm];
  cvta.to.global.u64 %rd0, %rd0;
  cvta.to.global.u64 %rd1, %rd1;
  cvta.to.global.u64 %rd2, %rd2;
  cvta.to.global.u64 %rd3, %rd3;
  cvta.to.global.u64 %rd4, %rd4;
  mov.u32 %r1, %tid.x;
  mul.wide.u32 %rd5, %r1, 4;
  add.s64 %rd6, %rd0, %rd5;
  ld.global.u32 %r2, [%rd6];
  add.s64 %rd7, %rd1, %rd5;
  ld.global.u32 %r3, [%rd7];
  add.s64 %rd8, %rd2, %rd5;
  ld.global.u32 %r4, [%rd8];
  add.s64 %rd9, %rd3, %rd5;
  ld.global.u32 %r5, [%rd9];
  mad.lo.u32 %r6, %r3, 2, %r2;
  mad.lo.u32 %r6, %r4, 3, %r6;
  mad.lo.u32 %r6, %r5, 4, %r6;
  mad.lo.u32 %r6, %r0, 5, %r6;
  add.s64 %rd10, %rd4, %rd5;
  st.global.u32 [%rd10], %r6;
  ret;
}
)";

/// A runtime on the GPU when there is one, else on the qc PTX emulator
/// (when built), else a skip with the runtime's one-line reason.
std::string gpuOrEmulator() {
  const CudaDriver *d = nullptr;
  DriverState state;
  if (CudaDriver::load(d, state))
    return "libcuda.so.1";
#ifdef QC_EMU_DRIVER_LIBRARY
  return QC_EMU_DRIVER_LIBRARY;
#else
  return "libcuda.so.1";
#endif
}

#define QC_GPU_OR_SKIP(rt)                                                     \
  std::unique_ptr<GpuRuntime> rt;                                              \
  {                                                                            \
    DriverState state;                                                         \
    Status st_ = GpuRuntime::create(rt, state, 0, gpuOrEmulator());            \
    if (state != DriverState::Ready)                                           \
      GTEST_SKIP() << st_.message();                                           \
    ASSERT_TRUE(st_) << st_.message();                                         \
  }

TEST(CudaDriver, WithoutADriverSaysSoInOneLine) {
  const CudaDriver *d = nullptr;
  DriverState state;
  Status st = CudaDriver::load(d, state);
  if (state == DriverState::Ready) {
    EXPECT_NE(d, nullptr);
    GTEST_SKIP() << "a CUDA driver is present on this machine";
  }
  ASSERT_FALSE(st);
  EXPECT_EQ(d, nullptr);
  EXPECT_EQ(st.message().find('\n'), std::string::npos);
  if (state == DriverState::NotFound)
    EXPECT_EQ(st.message(), kNoDriverMessage);
  // The same answer again (the result is cached, never re-dlopened).
  DriverState again;
  Status st2 = CudaDriver::load(d, again);
  EXPECT_EQ(again, state);
  EXPECT_EQ(st2.message(), st.message());
}

TEST(CudaDriver, MissingLibraryIsNotFound) {
  const CudaDriver *d = nullptr;
  DriverState state;
  Status st = CudaDriver::load(d, state, "libqc-no-such-driver.so.1");
  ASSERT_FALSE(st);
  EXPECT_EQ(state, DriverState::NotFound);
  EXPECT_EQ(st.message().rfind("no CUDA driver (libqc-no-such-driver.so.1 not "
                               "found): GPU path unavailable",
                               0),
            0u)
      << st.message();
}

#ifdef QC_CUDA_STUB_LIBCUDA
// The toolkit's stub libcuda exports every driver symbol of its CUDA
// version, so this checks the versioned names this build looks up.
TEST(CudaDriver, EverySymbolResolvesInTheToolkitStub) {
  void *h = dlopen(QC_CUDA_STUB_LIBCUDA, RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(h, nullptr) << dlerror();
  CudaDriver d{};
  Status st = resolveDriverSymbols(h, d);
  EXPECT_TRUE(st) << st.message();
  EXPECT_NE(d.cuGraphInstantiate, nullptr);
  EXPECT_NE(d.cuLaunchKernel, nullptr);
  // Loading it as the driver: cuInit fails (a stub), which is "no device".
  const CudaDriver *drv = nullptr;
  DriverState state;
  st = CudaDriver::load(drv, state, QC_CUDA_STUB_LIBCUDA);
  ASSERT_FALSE(st);
  EXPECT_EQ(state, DriverState::NoDevice);
  EXPECT_NE(st.message().find("cuInit failed"), std::string::npos)
      << st.message();
}
#else
TEST(CudaDriver, EverySymbolResolvesInTheToolkitStub) {
  GTEST_SKIP() << "no CUDA toolkit stub libcuda.so at configure time";
}
#endif

#ifdef QC_CUDA_CUBLAS
TEST(CudaDriver, CublasSymbolsResolve) {
  const CublasLib *lib = nullptr;
  Status st = CublasLib::load(lib, QC_CUDA_CUBLAS);
  ASSERT_TRUE(st) << st.message();
  EXPECT_NE(lib->cublasGemmEx, nullptr);
  st = CublasLib::load(lib, "libqc-no-such-cublas.so");
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("cannot load cuBLAS"), std::string::npos);
}
#else
TEST(CudaDriver, CublasSymbolsResolve) {
  GTEST_SKIP() << "no cuBLAS in the CUDA toolkit at configure time";
}
#endif

#ifdef QC_PTXAS
TEST(GpuRuntime, TestKernelIsValidPtx) {
  test::TempDir dir;
  {
    std::ofstream f(dir.file("k.ptx"));
    f << kTestPtx;
    std::ofstream g(dir.file("args.ptx"));
    g << kArgsPtx;
  }
  for (const char *k : {"k.ptx", "args.ptx"}) {
    std::string cmd = std::string(QC_PTXAS) + " -arch=sm_80 " + dir.file(k) +
                      " -o " + dir.file("k.cubin") + " 2>&1";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
}
#endif

ArtifactModule
moduleWith(std::vector<std::pair<std::string, std::string>> imgs) {
  ArtifactModule m;
  m.name = "m";
  m.kernels = {"k"};
  for (auto &i : imgs)
    m.images.push_back({i.first, i.second, {1}});
  return m;
}

TEST(GpuRuntime, SelectImageByComputeCapability) {
  ArtifactModule m = moduleWith({{"sm_80", "cubin"},
                                 {"sm_90a", "cubin"},
                                 {"sm_86", "cubin"},
                                 {"ptx", "ptx"}});
  EXPECT_EQ(selectImage(m, 9, 0)->target, "sm_90a");
  EXPECT_EQ(selectImage(m, 8, 0)->target, "sm_80");
  EXPECT_EQ(selectImage(m, 8, 6)->target, "sm_86");
  EXPECT_EQ(selectImage(m, 8, 9)->target, "sm_86"); // newest same-major
  EXPECT_EQ(selectImage(m, 12, 0)->target, "ptx");  // new major: JIT
  EXPECT_EQ(selectImage(m, 10, 0)->target, "ptx");  // sm_90a never elsewhere

  ArtifactModule c =
      moduleWith({{"compute_80", "ptx"}, {"compute_90a", "ptx"}});
  EXPECT_EQ(selectImage(c, 9, 0)->target, "compute_90a");
  EXPECT_EQ(selectImage(c, 8, 9)->target, "compute_80");
  EXPECT_EQ(selectImage(c, 7, 5), nullptr); // PTX for 8.0 cannot JIT to 7.5
  ArtifactModule onlyA = moduleWith({{"sm_90a", "cubin"}});
  EXPECT_EQ(selectImage(onlyA, 8, 0), nullptr);
}

/// A kernel-only layer running the test kernel: one launch of 32 threads
/// per row of M.
Artifact testArtifact() {
  Artifact a;
  a.producer = "GpuRuntimeTest";
  ArtifactModule m;
  m.name = "test";
  m.kernels = {"qc_test_add_m"};
  m.images.push_back(
      {"compute_80", "ptx",
       std::vector<uint8_t>(kTestPtx, kTestPtx + std::strlen(kTestPtx))});
  a.modules.push_back(m);
  ArtifactLayer l;
  l.name = "16x64";
  l.N = 16;
  l.K = 64;
  ArtifactVariant v;
  v.family = "mma";
  v.minM = 1;
  v.maxM = 64;
  ArtifactLaunch L;
  L.module = "test";
  L.kernel = "qc_test_add_m";
  L.block[0] = 32;
  L.tileM = 1;
  L.params = {"x", "y", "M"};
  v.launches.push_back(L);
  l.variants.push_back(v);
  a.layers.push_back(l);
  return a;
}

TEST(GpuRuntime, LaunchesByTheManifest) {
  QC_GPU_OR_SKIP(rt);
  Artifact a = testArtifact();
  ASSERT_TRUE(validateArtifact(a, "test"));
  Status st = rt->loadArtifact(a, "test.qcart");
  ASSERT_TRUE(st) << st.message();
  EXPECT_EQ(rt->loadedImage("test"), "compute_80 ptx");
  const int M = 5;
  std::vector<int32_t> x(M * 32), y(M * 32, -1);
  for (size_t i = 0; i < x.size(); ++i)
    x[i] = int32_t(i * 3 + 1);
  DeviceBuffer dx, dy;
  ASSERT_TRUE(rt->allocAndUpload(x.data(), x.size() * 4, dx, "x"));
  ASSERT_TRUE(rt->allocAndUpload(y.data(), y.size() * 4, dy, "y"));
  LayerArgs args;
  args.x = dx.ptr();
  args.y = dy.ptr();
  const ArtifactLayer &l = a.layers[0];
  st = rt->launch(l, *selectVariant(l, M), M, args);
  ASSERT_TRUE(st) << st.message();
  ASSERT_TRUE(rt->synchronize("test kernel"));
  ASSERT_TRUE(rt->download(y.data(), dy.ptr(), y.size() * 4, "y"));
  for (size_t i = 0; i < y.size(); ++i)
    ASSERT_EQ(y[i], x[i] + M) << i;

  // runLayer: variant selection, launch and synchronization in one call.
  DeviceLayerTensors none; // the test kernel reads no weights
  st = rt->runLayer(l, none, 3, dx.ptr(), dy.ptr());
  ASSERT_TRUE(st) << st.message();
  ASSERT_TRUE(rt->download(y.data(), dy.ptr(), y.size() * 4, "y"));
  for (size_t i = 0; i < 3 * 32; ++i)
    ASSERT_EQ(y[i], x[i] + 3) << i;
  st = rt->runLayer(l, none, 65, dx.ptr(), dy.ptr());
  ASSERT_FALSE(st);
  EXPECT_NE(
      st.message().find("layer \"16x64\": no kernel variant covers M = 65"),
      std::string::npos)
      << st.message();

  // Errors name the layer and kernel and enqueue nothing.
  LayerArgs missing = args;
  missing.y = 0;
  st = rt->launch(l, l.variants[0], M, missing);
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("layer \"16x64\": mma variant: launch 0 (kernel "
                              "\"qc_test_add_m\"): parameter \"y\" has no "
                              "device buffer"),
            std::string::npos)
      << st.message();
  st = rt->launch(l, l.variants[0], 65, args);
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("outside its range"), std::string::npos);
}

TEST(GpuRuntime, MissingKernelInImageIsReported) {
  QC_GPU_OR_SKIP(rt);
  Artifact a = testArtifact();
  a.modules[0].kernels.push_back("not_in_the_ptx");
  Status st = rt->loadArtifact(a, "test.qcart");
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("test.qcart: module \"test\": kernel "
                              "\"not_in_the_ptx\" is not in its compute_80 ptx "
                              "image"),
            std::string::npos)
      << st.message();
}

#ifdef QC_FAKE_CUDA_LIBRARY
// GpuRuntime on the host-memory test double of the driver (FakeCuda.cpp; not
// a GPU): choosing and loading a cubin, which neither the emulator (PTX
// only) nor a machine without a GPU can do.
class GpuRuntimeOnTestDouble : public ::testing::Test {
protected:
  void SetUp() override {
    DriverState state;
    Status st = GpuRuntime::create(rt, state, 0, QC_FAKE_CUDA_LIBRARY);
    ASSERT_TRUE(st) << st.message();
    ASSERT_EQ(state, DriverState::Ready);
  }
  Artifact artifact(std::vector<std::string> kernels,
                    std::vector<std::string> targets) {
    Artifact a;
    ArtifactModule m;
    m.name = "fake";
    m.kernels = std::move(kernels);
    const std::string image = "//qc-fake-module";
    for (auto &t : targets)
      m.images.push_back({t, "cubin", {image.begin(), image.end()}});
    a.modules.push_back(m);
    ArtifactLayer l;
    l.name = "16x64";
    l.N = 16;
    l.K = 64;
    ArtifactVariant v;
    v.family = "mma";
    v.minM = 1;
    v.maxM = 8;
    ArtifactLaunch L;
    L.module = "fake";
    L.kernel = a.modules[0].kernels[0];
    L.block[0] = 64;
    L.tileM = 8;
    L.params = {"x", "qweight", "scales", "y", "M"};
    v.launches.push_back(L);
    l.variants.push_back(v);
    a.layers.push_back(l);
    return a;
  }
  std::unique_ptr<GpuRuntime> rt;
};

TEST_F(GpuRuntimeOnTestDouble, PicksTheImageForTheDevice) {
  EXPECT_NE(rt->device().name.find("test double"), std::string::npos);
  EXPECT_EQ(rt->device().arch(), "sm_80");
  Artifact a = artifact({"fake_linear_16_64_ch_s"}, {"sm_90a", "sm_80"});
  Status st = rt->loadArtifact(a, "t.qcart");
  ASSERT_TRUE(st) << st.message();
  EXPECT_EQ(rt->loadedImage("fake"), "sm_80 cubin");

  a = artifact({"fake_linear_16_64_ch_s"}, {"sm_90a"});
  st = rt->loadArtifact(a, "t.qcart");
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("t.qcart: module \"fake\": no image runs on "
                              "sm_80"),
            std::string::npos)
      << st.message();
}

#endif

#ifdef QC_EMU_DRIVER_LIBRARY
// GpuRuntime on the qc PTX emulator: the real driver calls, the PTX test
// kernels executed instruction by instruction.
class GpuRuntimeOnEmulator : public ::testing::Test {
protected:
  void SetUp() override {
    DriverState state;
    Status st = GpuRuntime::create(rt, state, 0, QC_EMU_DRIVER_LIBRARY);
    ASSERT_TRUE(st) << st.message();
    ASSERT_EQ(state, DriverState::Ready);
  }
  /// One kernel-only layer "16x64" launching `kernel` of a module with
  /// `images` (target, kind, text) once per row tile of 8.
  Artifact artifact(const std::string &kernel,
                    std::vector<std::vector<std::string>> images,
                    std::vector<std::string> params) {
    Artifact a;
    ArtifactModule m;
    m.name = "emu";
    m.kernels = {kernel};
    for (auto &i : images)
      m.images.push_back({i[0], i[1], {i[2].begin(), i[2].end()}});
    a.modules.push_back(m);
    ArtifactLayer l;
    l.name = "16x64";
    l.N = 16;
    l.K = 64;
    ArtifactVariant v;
    v.family = "mma";
    v.minM = 1;
    v.maxM = 8;
    ArtifactLaunch L;
    L.module = "emu";
    L.kernel = kernel;
    L.block[0] = 32;
    L.tileM = 8;
    L.params = std::move(params);
    v.launches.push_back(L);
    l.variants.push_back(v);
    a.layers.push_back(l);
    return a;
  }
  std::unique_ptr<GpuRuntime> rt;
};

TEST_F(GpuRuntimeOnEmulator, ReportsItselfAndLoadsPtxNotCubins) {
  EXPECT_TRUE(rt->device().emulated);
  EXPECT_TRUE(rt->driver().emulated);
  EXPECT_NE(rt->device().name.find("qc PTX emulator"), std::string::npos);
  EXPECT_NE(rt->device().name.find("not a GPU"), std::string::npos);
  EXPECT_EQ(rt->device().arch(), "sm_80");
  EXPECT_EQ(rt->device().maxSharedOptin, 166912);
  // A cubin is SASS the emulator cannot run: the PTX image is loaded even
  // though a GPU of this compute capability would take the cubin.
  Artifact a = artifact("qc_test_add_m",
                        {{"sm_80", "cubin",
                          "\x7f"
                          "ELF not really"},
                         {"compute_80", "ptx", kTestPtx}},
                        {"x", "y", "M"});
  Status st = rt->loadArtifact(a, "t.qcart");
  ASSERT_TRUE(st) << st.message();
  EXPECT_EQ(rt->loadedImage("emu"), "compute_80 ptx");
  a = artifact("qc_test_add_m",
               {{"sm_80", "cubin",
                 "\x7f"
                 "ELF"}},
               {"x", "y", "M"});
  st = rt->loadArtifact(a, "t.qcart");
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("t.qcart: module \"emu\": no PTX image runs on "
                              "sm_80 (qc PTX emulator (sm_80, not a GPU)); "
                              "the artifact has sm_80 cubin"),
            std::string::npos)
      << st.message();
  // PTX the emulator's parser rejects: the JIT log carries the line.
  a = artifact("qc_test_add_m",
               {{"compute_80", "ptx",
                 ".version 7.0\n.target sm_80\n"
                 ".address_size 64\n"
                 ".visible .entry qc_test_add_m() {\n"
                 "  frobnicate.u32 %r1;\n}\n"}},
               {});
  st = rt->loadArtifact(a, "t.qcart");
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("t.qcart: module \"emu\": loading the "
                              "compute_80 ptx image on sm_80 failed: "
                              "CUDA_ERROR_INVALID_PTX (218)"),
            std::string::npos)
      << st.message();
  EXPECT_NE(st.message().find(":5"), std::string::npos) << st.message();
}

TEST_F(GpuRuntimeOnEmulator, ErrorsNameTheModuleLayerAndKernel) {
  Artifact a = artifact("qc_test_add_m", {{"compute_80", "ptx", kTestPtx}},
                        {"x", "y", "M"});
  a.modules[0].kernels.push_back("missing_kernel");
  Status st = rt->loadArtifact(a, "t.qcart");
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("t.qcart: module \"emu\": kernel "
                              "\"missing_kernel\" is not in its compute_80 "
                              "ptx image: CUDA_ERROR_NOT_FOUND (500)"),
            std::string::npos)
      << st.message();

  a = artifact("qc_test_add_m", {{"compute_80", "ptx", kTestPtx}},
               {"x", "y", "M"});
  a.layers[0].variants[0].launches[0].sharedBytes = 240000;
  st = rt->loadArtifact(a, "t.qcart");
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("layer \"16x64\": mma kernel \"qc_test_add_m\" "
                              "needs 240000 bytes of shared memory; qc PTX "
                              "emulator (sm_80, not a GPU) allows 166912"),
            std::string::npos)
      << st.message();

  // An artifact that breaks a cross reference is refused before loading.
  a = artifact("qc_test_add_m", {{"compute_80", "ptx", kTestPtx}},
               {"x", "y", "M"});
  a.layers[0].variants[0].launches[0].kernel = "other";
  st = rt->loadArtifact(a, "t.qcart");
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("kernel \"other\" is missing from module"),
            std::string::npos)
      << st.message();
}

TEST_F(GpuRuntimeOnEmulator, RunLayerPassesArgumentsByName) {
  Artifact a = artifact("qc_test_args", {{"compute_80", "ptx", kArgsPtx}},
                        {"x", "qweight", "scales", "zeros", "y", "M"});
  a.layers[0].sym = false; // the layer has zero points
  Status st = rt->loadArtifact(a, "t.qcart");
  ASSERT_TRUE(st) << st.message();
  auto fill = [](uint32_t base) {
    std::vector<uint32_t> v(32);
    for (uint32_t i = 0; i < 32; ++i)
      v[i] = base + i;
    return v;
  };
  std::vector<uint32_t> x = fill(1), q = fill(1000), sc = fill(100000),
                        z = fill(10000000), y(32, 0xFFFFFFFFu);
  DeviceBuffer dx, dy;
  DeviceLayerTensors w;
  ASSERT_TRUE(rt->allocAndUpload(x.data(), 128, dx, "x"));
  ASSERT_TRUE(rt->allocAndUpload(y.data(), 128, dy, "y"));
  ASSERT_TRUE(rt->allocAndUpload(q.data(), 128, w.qweight, "qweight"));
  ASSERT_TRUE(rt->allocAndUpload(sc.data(), 128, w.scales, "scales"));
  ASSERT_TRUE(rt->allocAndUpload(z.data(), 128, w.zeros, "zeros"));
  const int M = 7;
  st = rt->runLayer(a.layers[0], w, M, dx.ptr(), dy.ptr());
  ASSERT_TRUE(st) << st.message();
  ASSERT_TRUE(rt->download(y.data(), dy.ptr(), 128, "y"));
  for (uint32_t i = 0; i < 32; ++i)
    ASSERT_EQ(y[i], x[i] + 2 * q[i] + 3 * sc[i] + 4 * z[i] + 5 * M) << i;

  LayerArgs args;
  args.x = dx.ptr();
  args.qweight = w.qweight.ptr();
  args.scales = w.scales.ptr();
  args.y = dy.ptr(); // zeros missing
  st = rt->launch(a.layers[0], a.layers[0].variants[0], M, args);
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("t.qcart: layer \"16x64\": mma variant: launch "
                              "0 (kernel \"qc_test_args\"): parameter "
                              "\"zeros\" has no device buffer"),
            std::string::npos)
      << st.message();
}

// A kernel that goes wrong on the emulator fails its launch, and the
// runtime's error carries the emulator's diagnosis: kernel, block, thread,
// PTX line.
TEST_F(GpuRuntimeOnEmulator, AFaultyLaunchCarriesTheEmulatorsMessage) {
  Artifact a = artifact("qc_test_add_m", {{"compute_80", "ptx", kTestPtx}},
                        {"x", "y", "M"});
  a.layers[0].variants[0].launches[0].tileM = 1; // one block row per M
  ASSERT_TRUE(rt->loadArtifact(a, "t.qcart"));
  DeviceBuffer dx, dy;
  std::vector<int32_t> x(32, 1);
  ASSERT_TRUE(rt->allocAndUpload(x.data(), 128, dx, "x")); // one row only
  ASSERT_TRUE(rt->allocAndUpload(x.data(), 128, dy, "y"));
  DeviceLayerTensors none;
  // M = 8: block rows 1..7 read x[32..255], past the 128-byte allocation
  // (and past every other one).
  Status st = rt->runLayer(a.layers[0], none, 8, dx.ptr(), dy.ptr());
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("CUDA_ERROR_LAUNCH_FAILED (719)"),
            std::string::npos)
      << st.message();
  EXPECT_NE(st.message().find("qc_test_add_m"), std::string::npos)
      << st.message();
  EXPECT_NE(st.message().find("block (0,"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("line "), std::string::npos) << st.message();
  // The device stays usable: the next launch runs (M = 1 fits).
  st = rt->runLayer(a.layers[0], none, 1, dx.ptr(), dy.ptr());
  EXPECT_TRUE(st) << st.message();
}
#endif

} // namespace
} // namespace qc
