//===- GpuRuntimeTest.cpp - Tests of the CUDA driver loader and runtime ---===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Tests that need a GPU skip with one line when there is no driver. The
// others check what can be checked without one: the driver and cuBLAS
// symbol names against the CUDA toolkit's libraries (when installed), the
// no-driver message, image selection, and that the PTX test kernel the GPU
// tests launch is valid PTX (assembled with ptxas when available).
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/GpuRuntime.h"

#include "TestUtil.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <fstream>

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

/// A GPU runtime, or a skip with the runtime's one-line reason.
#define QC_GPU_OR_SKIP(rt)                                                     \
  std::unique_ptr<GpuRuntime> rt;                                              \
  {                                                                            \
    DriverState state;                                                         \
    Status st_ = GpuRuntime::create(rt, state);                                \
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
  }
  std::string cmd = std::string(QC_PTXAS) + " -arch=sm_80 " + dir.file("k.ptx") +
                    " -o " + dir.file("k.cubin") + " 2>&1";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
}
#endif

ArtifactModule moduleWith(std::vector<std::pair<std::string, std::string>> imgs) {
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

  ArtifactModule c = moduleWith({{"compute_80", "ptx"}, {"compute_90a", "ptx"}});
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
      {"compute_80", "ptx", std::vector<uint8_t>(kTestPtx, kTestPtx + std::strlen(kTestPtx))});
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
  EXPECT_NE(st.message().find("layer \"16x64\": no kernel variant covers M = 65"),
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

} // namespace
} // namespace qc
