//===- CudaEmuTest.cpp - Tests of the emulator's CUDA driver shim ---------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// libqc_cuda_emu.so through the runtime's own driver table: device
// attributes, error strings carrying the emulator's message, handle
// validation, launch configuration limits, stream capture and graph replay,
// events, memory; and the module-image reader (PTX text, fatbin with PTX,
// SASS-only cubin, corrupt containers), whose container layouts are also
// checked against files the CUDA toolkit's fatbinary and ptxas write, when
// they are installed.
//
//===----------------------------------------------------------------------===//

#include "ModuleImage.h"

#include "qc/runtime/CudaDriver.h"

#include "TestUtil.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>

namespace qc {
namespace {

using namespace cuda;

/// y[i] = x[i] + M, one thread per element (block x 32, grid y rows).
const char *kAddPtx = R"(.version 7.0
.target sm_80
.address_size 64
.visible .entry add_m(.param .u64 px, .param .u64 py, .param .u32 pm)
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

/// A fatbin container (layout as in ModuleImage.cpp) holding `entries`
/// (kind, arch, flags, payload).
std::vector<uint8_t>
fatbin(const std::vector<std::tuple<uint16_t, uint32_t, uint64_t, std::string>>
           &entries) {
  std::vector<uint8_t> body;
  for (auto &[kind, arch, flags, payload] : entries) {
    std::vector<uint8_t> e(64, 0);
    std::string p = payload;
    p.resize((p.size() + 1 + 7) / 8 * 8, '\0'); // NUL padded to 8
    uint32_t hdr = 64;
    uint64_t size = p.size();
    std::memcpy(&e[0], &kind, 2);
    std::memcpy(&e[4], &hdr, 4);
    std::memcpy(&e[8], &size, 8);
    std::memcpy(&e[28], &arch, 4);
    std::memcpy(&e[40], &flags, 8);
    body.insert(body.end(), e.begin(), e.end());
    body.insert(body.end(), p.begin(), p.end());
  }
  std::vector<uint8_t> f(16, 0);
  uint32_t magic = 0xBA55ED50u;
  uint16_t version = 1, hsize = 16;
  uint64_t bsize = body.size();
  std::memcpy(&f[0], &magic, 4);
  std::memcpy(&f[4], &version, 2);
  std::memcpy(&f[6], &hsize, 2);
  std::memcpy(&f[8], &bsize, 8);
  f.insert(f.end(), body.begin(), body.end());
  return f;
}

TEST(EmuModuleImage, FindsThePtx) {
  std::string ptx;
  emu::ImageKind kind;
  Status st = emu::extractPtx(kAddPtx, 0, ptx, kind);
  ASSERT_TRUE(st) << st.message();
  EXPECT_EQ(kind, emu::ImageKind::PtxText);
  EXPECT_EQ(ptx, kAddPtx);

  // A fatbin with an ELF and two PTX entries: the newest PTX wins.
  std::vector<uint8_t> fb = fatbin({{2, 80, 0x11,
                                     "\x7f"
                                     "ELF..."},
                                    {1, 75, 0x11, "// old\n"},
                                    {1, 80, 0x11, kAddPtx}});
  st = emu::extractPtx(fb.data(), fb.size(), ptx, kind);
  ASSERT_TRUE(st) << st.message();
  EXPECT_EQ(kind, emu::ImageKind::FatbinPtx);
  EXPECT_EQ(ptx, kAddPtx);
  st = emu::extractPtx(fb.data(), 0, ptx, kind); // size from the header
  ASSERT_TRUE(st) << st.message();

  // SASS only, or PTX only compressed: a clear refusal.
  fb = fatbin({{2, 80, 0x11,
                "\x7f"
                "ELF..."}});
  st = emu::extractPtx(fb.data(), fb.size(), ptx, kind);
  ASSERT_FALSE(st);
  EXPECT_EQ(kind, emu::ImageKind::SassOnly);
  EXPECT_NE(st.message().find("holds SASS machine code and no PTX"),
            std::string::npos)
      << st.message();
  fb = fatbin({{1, 80, 0x8011, "compressed"}});
  st = emu::extractPtx(fb.data(), fb.size(), ptx, kind);
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("only compressed PTX"), std::string::npos);

  // Corrupt containers never read out of bounds.
  fb = fatbin({{1, 80, 0x11, kAddPtx}});
  for (size_t cut : {size_t(8), size_t(20), size_t(70), fb.size() - 1}) {
    st = emu::extractPtx(fb.data(), cut, ptx, kind);
    EXPECT_FALSE(st) << cut;
    EXPECT_EQ(kind, emu::ImageKind::Malformed) << cut;
  }
  std::vector<uint8_t> bad = fb;
  uint64_t huge = uint64_t(1) << 40;
  std::memcpy(&bad[16 + 8], &huge, 8); // entry payload size
  st = emu::extractPtx(bad.data(), bad.size(), ptx, kind);
  ASSERT_FALSE(st);
  EXPECT_NE(st.message().find("overruns its container"), std::string::npos);

  // A minimal ELF64 without sections: a cubin of SASS, no PTX.
  std::vector<uint8_t> elf(64, 0);
  std::memcpy(elf.data(),
              "\x7f"
              "ELF",
              4);
  elf[4] = 2;
  uint16_t shentsize = 64;
  std::memcpy(&elf[0x3A], &shentsize, 2);
  st = emu::extractPtx(elf.data(), elf.size(), ptx, kind);
  ASSERT_FALSE(st);
  EXPECT_EQ(kind, emu::ImageKind::SassOnly);
  EXPECT_NE(st.message().find("the cubin (ELF) image holds SASS"),
            std::string::npos)
      << st.message();
  uint64_t shoff = 1000;
  uint16_t shnum = 3;
  std::memcpy(&elf[0x28], &shoff, 8);
  std::memcpy(&elf[0x3C], &shnum, 2);
  st = emu::extractPtx(elf.data(), elf.size(), ptx, kind);
  ASSERT_FALSE(st);
  EXPECT_EQ(kind, emu::ImageKind::Malformed);
}

#if defined(QC_PTXAS)
std::vector<uint8_t> readBytes(const std::string &path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

// The layouts above match what the CUDA toolkit writes.
TEST(EmuModuleImage, ReadsTheToolkitsFiles) {
  test::TempDir dir;
  {
    std::ofstream f(dir.file("k.ptx"));
    f << kAddPtx;
  }
  std::string ptxas = QC_PTXAS;
  std::string bin = ptxas.substr(0, ptxas.rfind('/'));
  ASSERT_EQ(std::system((ptxas + " -arch=sm_80 " + dir.file("k.ptx") + " -o " +
                         dir.file("k.cubin"))
                            .c_str()),
            0);
  std::vector<uint8_t> cubin = readBytes(dir.file("k.cubin"));
  std::string ptx;
  emu::ImageKind kind;
  Status st = emu::extractPtx(cubin.data(), cubin.size(), ptx, kind);
  ASSERT_FALSE(st);
  EXPECT_EQ(kind, emu::ImageKind::SassOnly) << st.message();
  std::string fatbinary = bin + "/fatbinary";
  if (std::system((fatbinary + " --help >/dev/null 2>&1").c_str()) != 0)
    GTEST_SKIP() << "no fatbinary in " << bin;
  ASSERT_EQ(std::system((fatbinary + " --create=" + dir.file("k.fatbin") +
                         " --compress=false --image3=kind=elf,sm=80,file=" +
                         dir.file("k.cubin") +
                         " --image3=kind=ptx,sm=80,file=" + dir.file("k.ptx"))
                            .c_str()),
            0);
  std::vector<uint8_t> fb = readBytes(dir.file("k.fatbin"));
  st = emu::extractPtx(fb.data(), fb.size(), ptx, kind);
  ASSERT_TRUE(st) << st.message();
  EXPECT_EQ(kind, emu::ImageKind::FatbinPtx);
  // fatbinary drops the indentation; the text is otherwise the same.
  auto squeeze = [](std::string t) {
    t.erase(std::remove(t.begin(), t.end(), ' '), t.end());
    return t;
  };
  EXPECT_EQ(squeeze(ptx), squeeze(kAddPtx));
}
#endif

#ifdef QC_EMU_DRIVER_LIBRARY
class CudaEmu : public ::testing::Test {
protected:
  void SetUp() override {
    DriverState state;
    Status st = CudaDriver::load(d, state, QC_EMU_DRIVER_LIBRARY);
    ASSERT_TRUE(st) << st.message();
    ASSERT_EQ(d->cuDevicePrimaryCtxRetain(&ctx, 0), CUDA_SUCCESS);
    ASSERT_EQ(d->cuCtxSetCurrent(ctx), CUDA_SUCCESS);
    char log[1024] = {0};
    int opts[2] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
    void *vals[2] = {log, reinterpret_cast<void *>(uintptr_t(sizeof(log)))};
    ASSERT_EQ(d->cuModuleLoadDataEx(&mod, kAddPtx, 2, opts, vals), CUDA_SUCCESS)
        << log;
    ASSERT_EQ(d->cuModuleGetFunction(&fn, mod, "add_m"), CUDA_SUCCESS);
  }
  void TearDown() override {
    if (mod)
      d->cuModuleUnload(mod);
    if (ctx)
      d->cuDevicePrimaryCtxRelease(0);
  }
  const CudaDriver *d = nullptr;
  CUcontext ctx = nullptr;
  CUmodule mod = nullptr;
  CUfunction fn = nullptr;
};

TEST_F(CudaEmu, DeviceAndErrors) {
  EXPECT_TRUE(d->emulated);
  char name[128];
  ASSERT_EQ(d->cuDeviceGetName(name, sizeof(name), 0), CUDA_SUCCESS);
  EXPECT_STREQ(name, "qc PTX emulator (sm_80, not a GPU)");
  int v = 0;
  ASSERT_EQ(d->cuDeviceGetAttribute(&v, 10, 0), CUDA_SUCCESS); // warp size
  EXPECT_EQ(v, 32);
  ASSERT_EQ(d->cuDeviceGetAttribute(
                &v, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, 0),
            CUDA_SUCCESS);
  EXPECT_EQ(v, 8);
  // An attribute the emulator does not model is an error, never a guess.
  CUresult r = d->cuDeviceGetAttribute(&v, 123456, 0);
  EXPECT_EQ(r, 1);
  EXPECT_NE(d->describe(r).find("device attribute 123456 is not emulated"),
            std::string::npos)
      << d->describe(r);
  CUdevice dev;
  EXPECT_EQ(d->cuDeviceGet(&dev, 1), 101); // CUDA_ERROR_INVALID_DEVICE
  // Unknown handles are rejected, not dereferenced.
  int bogus = 0;
  r = d->cuStreamSynchronize(reinterpret_cast<CUstream>(&bogus));
  EXPECT_EQ(r, 400);
  EXPECT_NE(d->describe(r).find("unknown stream handle"), std::string::npos);
  CUfunction f2;
  r = d->cuModuleGetFunction(&f2, mod, "nope");
  EXPECT_EQ(r, 500);
  EXPECT_NE(d->describe(r).find("no kernel entry \"nope\""), std::string::npos)
      << d->describe(r);
  // A SASS cubin: no binary for this "GPU", with a log saying why.
  std::vector<uint8_t> elf(64, 0);
  std::memcpy(elf.data(),
              "\x7f"
              "ELF",
              4);
  elf[4] = 2;
  uint16_t shentsize = 64;
  std::memcpy(&elf[0x3A], &shentsize, 2);
  char log[512] = {0};
  int opts[2] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
  void *vals[2] = {log, reinterpret_cast<void *>(uintptr_t(sizeof(log)))};
  CUmodule m2 = nullptr;
  EXPECT_EQ(d->cuModuleLoadDataEx(&m2, elf.data(), 2, opts, vals), 209);
  EXPECT_NE(std::string(log).find("executes PTX only"), std::string::npos)
      << log;
}

TEST_F(CudaEmu, LaunchLimitsAndParameterBuffer) {
  CUdeviceptr x, y;
  ASSERT_EQ(d->cuMemAlloc(&x, 128), CUDA_SUCCESS);
  ASSERT_EQ(d->cuMemAlloc(&y, 128), CUDA_SUCCESS);
  std::vector<int32_t> h(32);
  for (int i = 0; i < 32; ++i)
    h[size_t(i)] = i;
  ASSERT_EQ(d->cuMemcpyHtoD(x, h.data(), 128), CUDA_SUCCESS);
  int32_t m = 5;
  void *params[] = {&x, &y, &m};
  CUresult r =
      d->cuLaunchKernel(fn, 1, 1, 1, 2048, 1, 1, 0, nullptr, params, nullptr);
  EXPECT_EQ(r, 1);
  EXPECT_NE(d->describe(r).find("invalid configuration"), std::string::npos);
  r = d->cuLaunchKernel(fn, 1, 1, 1, 32, 1, 1, 64 * 1024, nullptr, params,
                        nullptr);
  EXPECT_EQ(r, 1);
  EXPECT_NE(d->describe(r).find("exceed the kernel's limit of 49152"),
            std::string::npos)
      << d->describe(r);
  // The parameters as one buffer (CU_LAUNCH_PARAM_BUFFER_POINTER / SIZE).
  struct {
    uint64_t x, y;
    int32_t m;
  } buf = {x, y, 7};
  size_t size = sizeof(buf);
  void *extra[] = {reinterpret_cast<void *>(1), &buf,
                   reinterpret_cast<void *>(2), &size, nullptr};
  ASSERT_EQ(
      d->cuLaunchKernel(fn, 1, 1, 1, 32, 1, 1, 0, nullptr, nullptr, extra),
      CUDA_SUCCESS);
  ASSERT_EQ(d->cuMemcpyDtoH(h.data(), y, 128), CUDA_SUCCESS);
  for (int i = 0; i < 32; ++i)
    ASSERT_EQ(h[size_t(i)], i + 7);
  EXPECT_EQ(d->cuMemFree(x), CUDA_SUCCESS);
  EXPECT_EQ(d->cuMemFree(y), CUDA_SUCCESS);
  EXPECT_NE(d->cuMemFree(x), CUDA_SUCCESS); // double free
}

// A captured stream records launches, memsets, copies and event records;
// each graph launch replays them in order with the parameter values of
// capture time.
TEST_F(CudaEmu, CaptureAndReplay) {
  CUstream s;
  ASSERT_EQ(d->cuStreamCreate(&s, 0), CUDA_SUCCESS);
  CUdeviceptr x, y, z;
  ASSERT_EQ(d->cuMemAlloc(&x, 128), CUDA_SUCCESS);
  ASSERT_EQ(d->cuMemAlloc(&y, 128), CUDA_SUCCESS);
  ASSERT_EQ(d->cuMemAlloc(&z, 128), CUDA_SUCCESS);
  ASSERT_EQ(d->cuMemsetD8(x, 0, 128), CUDA_SUCCESS);
  CUevent e0, e1;
  ASSERT_EQ(d->cuEventCreate(&e0, 0), CUDA_SUCCESS);
  ASSERT_EQ(d->cuEventCreate(&e1, 0), CUDA_SUCCESS);
  ASSERT_EQ(d->cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL),
            CUDA_SUCCESS);
  int32_t m = 3;
  void *params[] = {&x, &y, &m};
  ASSERT_EQ(d->cuEventRecord(e0, s), CUDA_SUCCESS);
  ASSERT_EQ(d->cuLaunchKernel(fn, 1, 1, 1, 32, 1, 1, 0, s, params, nullptr),
            CUDA_SUCCESS);
  m = 100; // captured by value: the replay still adds 3
  ASSERT_EQ(d->cuMemcpyDtoDAsync(x, y, 128, s), CUDA_SUCCESS); // x = y
  ASSERT_EQ(d->cuMemsetD8Async(z, 1, 4, s), CUDA_SUCCESS);
  ASSERT_EQ(d->cuEventRecord(e1, s), CUDA_SUCCESS);
  // Nothing ran during capture.
  std::vector<int32_t> h(32, -1);
  ASSERT_EQ(d->cuMemcpyDtoH(h.data(), x, 128), CUDA_SUCCESS);
  EXPECT_EQ(h[0], 0);
  EXPECT_EQ(d->cuStreamSynchronize(s), 900); // capturing
  CUgraph g;
  ASSERT_EQ(d->cuStreamEndCapture(s, &g), CUDA_SUCCESS);
  CUgraphExec ex;
  ASSERT_EQ(d->cuGraphInstantiate(&ex, g, 0), CUDA_SUCCESS);
  for (int i = 0; i < 4; ++i)
    ASSERT_EQ(d->cuGraphLaunch(ex, s), CUDA_SUCCESS);
  ASSERT_EQ(d->cuStreamSynchronize(s), CUDA_SUCCESS);
  ASSERT_EQ(d->cuEventSynchronize(e1), CUDA_SUCCESS);
  ASSERT_EQ(d->cuMemcpyDtoH(h.data(), x, 128), CUDA_SUCCESS);
  for (int i = 0; i < 32; ++i)
    ASSERT_EQ(h[size_t(i)], 12) << i; // four replays of x = x + 3
  uint32_t zw = 0;
  ASSERT_EQ(d->cuMemcpyDtoH(&zw, z, 4), CUDA_SUCCESS);
  EXPECT_EQ(zw, 0x01010101u);
  float ms = -1;
  ASSERT_EQ(d->cuEventElapsedTime(&ms, e0, e1), CUDA_SUCCESS);
  EXPECT_GE(ms, 0.0f);
  EXPECT_EQ(d->cuStreamEndCapture(s, &g), 903); // not capturing
  EXPECT_EQ(d->cuGraphExecDestroy(ex), CUDA_SUCCESS);
  EXPECT_EQ(d->cuGraphDestroy(g), CUDA_SUCCESS);
  EXPECT_EQ(d->cuGraphDestroy(g), 400); // already destroyed
  d->cuEventDestroy(e0);
  d->cuEventDestroy(e1);
  d->cuStreamDestroy(s);
  d->cuMemFree(x);
  d->cuMemFree(y);
  d->cuMemFree(z);
}
#endif

} // namespace
} // namespace qc
