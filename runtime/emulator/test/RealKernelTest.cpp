//===- RealKernelTest.cpp - qc's generated kernels on the emulator --------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Runs PTX that qc generated (committed under test/ptx with the command that
// produced it) on the emulator with all checks on: random 4-bit weights
// packed with packMMA16x64, random fp16 activations, and the result compared
// with a float64 reference over the same dequantized weights
// (referenceLinear). Shapes are ragged on purpose: N = 200 is not a multiple
// of the 16-row tile, K = 544 / 1056 leave a partial 64-column slab and a
// partial last group.
//
//===----------------------------------------------------------------------===//

#include "qc/emu/Emulator.h"
#include "qc/runtime/CpuLinear.h"
#include "qc/runtime/KernelLayout.h"

#include "../src/Float.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <random>
#include <sstream>

using namespace qc;
using namespace qc::emu;

namespace {

std::string readPtx(const std::string &name) {
  std::ifstream f(std::string(QC_EMU_TEST_DIR) + "/ptx/" + name);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

struct Layer {
  int64_t N, K, G;
  bool sym;
  MMA16x64Tensors t;
  std::vector<float> w; // dequantized [N, K]
};

Layer makeLayer(int64_t N, int64_t K, int64_t G, bool sym, unsigned seed) {
  Layer L{N, K, G, sym, {}, {}};
  std::mt19937 rng(seed);
  int64_t groups = G < 0 ? 1 : (K + G - 1) / G;
  std::vector<uint8_t> codes(N * K);
  for (auto &c : codes)
    c = uint8_t(rng() % 16);
  std::uniform_real_distribution<float> sd(0.005f, 0.02f);
  std::vector<float> scales(groups * N), zeros(groups * N);
  for (auto &s : scales)
    s = sd(rng) * ((rng() & 1) ? 1.f : -1.f);
  for (auto &z : zeros)
    z = float(rng() % 16);
  Status s = packMMA16x64(4, N, K, G, sym, codes.data(), scales.data(),
                          sym ? nullptr : zeros.data(), L.t);
  EXPECT_TRUE(s.isOk()) << s.message();
  s = dequantizeAllMMA16x64(L.t, L.w);
  EXPECT_TRUE(s.isOk()) << s.message();
  return L;
}

struct Bufs {
  uint64_t x = 0, qweight = 0, scales = 0, zeros = 0, y = 0, ws = 0;
};

template <typename T> uint64_t upload(Device &d, const std::vector<T> &v) {
  uint64_t a = 0;
  EXPECT_TRUE(d.malloc(v.size() * sizeof(T), a).isOk());
  EXPECT_TRUE(d.copyToDevice(a, v.data(), v.size() * sizeof(T)).isOk());
  return a;
}

/// One launch of a variant: kernel name, grid x/z, tile height, block,
/// parameter names.
struct LaunchSpec {
  const char *kernel;
  uint32_t gridX, gridZ, tileM, block;
  std::vector<std::string> params;
};

/// Runs the launches on random x with M rows and compares y with the
/// float64 reference. Returns the relative L2 error.
double runVariant(Device &dev, Module *mod, const Layer &L, int M,
                  const std::vector<LaunchSpec> &launches, bool zeroWs,
                  uint64_t wsBytesPerRow, std::string &err) {
  std::mt19937 rng(1234 + M);
  std::uniform_real_distribution<float> xd(-1.f, 1.f);
  std::vector<uint16_t> xh(size_t(M) * L.K);
  std::vector<float> xf(xh.size());
  for (size_t i = 0; i < xh.size(); ++i) {
    float v = xd(rng);
    if (v == 0)
      v = 0.5f;
    xh[i] = toHalf(v);
    xf[i] = float(halfToDouble(xh[i]));
  }
  Bufs b;
  b.x = upload(dev, xh);
  b.qweight = upload(dev, L.t.qweight);
  b.scales = upload(dev, L.t.scales);
  if (!L.sym)
    b.zeros = upload(dev, L.t.zeros);
  EXPECT_TRUE(dev.malloc(size_t(M) * L.N * 2, b.y).isOk());
  EXPECT_TRUE(dev.memset8(b.y, 0xff, size_t(M) * L.N * 2).isOk()); // NaN poison
  if (wsBytesPerRow) {
    EXPECT_TRUE(dev.malloc(wsBytesPerRow * M, b.ws).isOk());
    EXPECT_TRUE(dev.memset8(b.ws, zeroWs ? 0 : 0xff, wsBytesPerRow * M).isOk());
  }
  int32_t m32 = M;
  for (const LaunchSpec &ls : launches) {
    Kernel *k = nullptr;
    Status s = dev.getKernel(mod, ls.kernel, k);
    if (!s) {
      err = s.message();
      return NAN;
    }
    std::vector<void *> args;
    for (const std::string &p : ls.params) {
      if (p == "x")
        args.push_back(&b.x);
      else if (p == "qweight")
        args.push_back(&b.qweight);
      else if (p == "scales")
        args.push_back(&b.scales);
      else if (p == "zeros")
        args.push_back(&b.zeros);
      else if (p == "y")
        args.push_back(&b.y);
      else if (p == "workspace")
        args.push_back(&b.ws);
      else if (p == "M")
        args.push_back(&m32);
    }
    Dim3 grid{ls.gridX, uint32_t((M + ls.tileM - 1) / ls.tileM), ls.gridZ};
    Dim3 block{ls.block, 1, 1};
    s = dev.launch(k, grid, block, 0, args.data());
    if (!s) {
      err = s.message();
      return NAN;
    }
  }
  std::vector<uint16_t> yh(size_t(M) * L.N);
  EXPECT_TRUE(dev.copyToHost(yh.data(), b.y, yh.size() * 2).isOk());
  std::vector<float> y(yh.size());
  for (size_t i = 0; i < y.size(); ++i)
    y[i] = float(halfToDouble(yh[i]));
  std::vector<double> ref;
  referenceLinear(L.w.data(), L.N, L.K, xf.data(), M, {}, ref, 1);
  for (uint64_t a : {b.x, b.qweight, b.scales, b.zeros, b.y, b.ws})
    if (a)
      (void)dev.free(a);
  return relativeL2Error(y.data(), ref.data(), y.size());
}

// The fp16 output alone costs up to 2^-11 relative per element; fp32
// accumulation adds little at K ~ 1000.
constexpr double kTol = 2e-3;

TEST(EmulatorRealKernel, SymG128AllFamiliesSm90a) {
  DeviceOptions o;
  o.arch = Arch::SM90a;
  o.threads = 2;
  Device dev(o);
  Module *mod = nullptr;
  Status s = dev.loadModule(readPtx("wq_n200_k544_g128_sym_sm90a.ptx"),
                            "wq_n200_k544_g128_sym_sm90a.ptx", mod);
  ASSERT_TRUE(s.isOk()) << s.message();
  Layer L = makeLayer(200, 544, 128, true, 7);
  const std::vector<std::string> p = {"x", "qweight", "scales", "y", "M"};
  struct Case {
    int M;
    LaunchSpec spec;
  } cases[] = {
      {1, {"splitk_0", 13, 1, 8, 128, p}},
      {3, {"splitk_0", 13, 1, 8, 128, p}},
      {8, {"splitk_0", 13, 1, 8, 128, p}},
      {9, {"mma_1_m16", 4, 1, 16, 128, p}},
      {17, {"mma_2_m32", 4, 1, 32, 128, p}},
      {40, {"mma_3_m64", 4, 1, 64, 128, p}},
      {100, {"mma_3_m64", 4, 1, 64, 128, p}},
  };
  for (const Case &c : cases) {
    std::string err;
    auto t0 = std::chrono::steady_clock::now();
    double e = runVariant(dev, mod, L, c.M, {c.spec}, false, 0, err);
    double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
            .count();
    EXPECT_TRUE(err.empty()) << c.spec.kernel << " M=" << c.M << ": " << err;
    EXPECT_LT(e, kTol) << c.spec.kernel << " M=" << c.M;
    std::printf("[emulated] %s M=%d rel.err %.2e, %.3f s\n", c.spec.kernel, c.M,
                e, secs);
  }
}

TEST(EmulatorRealKernel, AsymG32SplitK4Sm80) {
  DeviceOptions o;
  o.arch = Arch::SM80;
  o.threads = 2;
  Device dev(o);
  Module *mod = nullptr;
  Status s = dev.loadModule(readPtx("wq_n200_k1056_g32_asym_splitk4_sm80.ptx"),
                            "wq_n200_k1056_g32_asym_splitk4_sm80.ptx", mod);
  ASSERT_TRUE(s.isOk()) << s.message();
  Layer L = makeLayer(200, 1056, 32, false, 11);
  for (int M : {1, 3, 8}) {
    std::string err;
    double e =
        runVariant(dev, mod, L, M,
                   {{"splitk_0",
                     13,
                     4,
                     8,
                     128,
                     {"x", "qweight", "scales", "zeros", "workspace", "M"}},
                    {"finalize", 1, 1, 1, 256, {"workspace", "y", "M"}}},
                   true, 800, err);
    EXPECT_TRUE(err.empty()) << "splitk M=" << M << ": " << err;
    EXPECT_LT(e, kTol) << "splitk M=" << M;
  }
  for (int M : {9, 17, 100}) {
    std::string err;
    double e = runVariant(dev, mod, L, M,
                          {{"mma_1_m16",
                            4,
                            1,
                            16,
                            128,
                            {"x", "qweight", "scales", "zeros", "y", "M"}}},
                          false, 0, err);
    EXPECT_TRUE(err.empty()) << "mma M=" << M << ": " << err;
    EXPECT_LT(e, kTol) << "mma M=" << M;
  }
}

} // namespace

namespace {

/// Replaces the first line containing `what` after the `.entry entry(` line
/// with a comment; returns false when there is none.
bool dropLine(std::string &ptx, const std::string &entry,
              const std::string &what) {
  size_t e = ptx.find(".entry " + entry + "(");
  if (e == std::string::npos)
    return false;
  size_t p = ptx.find(what, e);
  if (p == std::string::npos)
    return false;
  size_t b = ptx.rfind('\n', p) + 1, end = ptx.find('\n', p);
  ptx.replace(b, end - b, "// (removed by the test)");
  return true;
}

std::string runBroken(const std::string &ptx, const char *kernel,
                      uint32_t tileM) {
  DeviceOptions o;
  o.arch = Arch::SM90a;
  o.threads = 1;
  Device dev(o);
  Module *mod = nullptr;
  Status s = dev.loadModule(ptx, "broken.ptx", mod);
  EXPECT_TRUE(s.isOk()) << s.message();
  if (!s)
    return "";
  Layer L = makeLayer(200, 544, 128, true, 7);
  std::string err;
  runVariant(dev, mod, L, 9,
             {{kernel, 4, 1, tileM, 128, {"x", "qweight", "scales", "y", "M"}}},
             false, 0, err);
  return err;
}

// Acceptance negative tests: a real kernel with a missing cp.async wait or a
// missing barrier is caught, naming the kernel, the block/thread and the
// PTX line of the offending access.
TEST(EmulatorRealKernel, MissingCpAsyncWaitIsCaught) {
  std::string ptx = readPtx("wq_n200_k544_g128_sym_sm90a.ptx");
  ASSERT_TRUE(dropLine(ptx, "mma_1_m16", "cp.async.wait_group"));
  std::string err = runBroken(ptx, "mma_1_m16", 16);
  EXPECT_NE(err.find("kernel 'mma_1_m16' block ("), std::string::npos) << err;
  EXPECT_NE(err.find("thread ("), std::string::npos) << err;
  EXPECT_NE(err.find(", line "), std::string::npos) << err;
  EXPECT_NE(err.find("cp.async"), std::string::npos) << err;
  std::printf("caught: %s\n", err.c_str());
}

TEST(EmulatorRealKernel, MissingBarrierIsCaught) {
  std::string ptx = readPtx("wq_n200_k544_g128_sym_sm90a.ptx");
  ASSERT_TRUE(dropLine(ptx, "mma_1_m16", "bar.sync"));
  std::string err = runBroken(ptx, "mma_1_m16", 16);
  EXPECT_NE(err.find("kernel 'mma_1_m16' block ("), std::string::npos) << err;
  // The warps interleave, so the consumer's ldmatrix meets bytes another
  // warp's cp.async landed in the same barrier interval.
  EXPECT_NE(err.find("shared-memory race: reads offset"), std::string::npos)
      << err;
  EXPECT_NE(err.find("ldmatrix"), std::string::npos) << err;
  EXPECT_NE(err.find(", line "), std::string::npos) << err;
  std::printf("caught: %s\n", err.c_str());
}

} // namespace

namespace {

// The dequantize-only kernel writes W as fp16 [N, K]; it uses the same
// in-register dequantization as the fused kernels, fp16(s * (q - z)), so it
// must agree bit for bit with the CPU's dequantizeAllMMA16x64.
TEST(EmulatorRealKernel, DequantKernelIsExact) {
  DeviceOptions o;
  o.arch = Arch::SM90a;
  o.threads = 2;
  Device dev(o);
  Module *mod = nullptr;
  Status s = dev.loadModule(readPtx("wq_n200_k544_g128_sym_sm90a.ptx"),
                            "wq_n200_k544_g128_sym_sm90a.ptx", mod);
  ASSERT_TRUE(s.isOk()) << s.message();
  Layer L = makeLayer(200, 544, 128, true, 5);
  uint64_t q = upload(dev, L.t.qweight), sc = upload(dev, L.t.scales), w = 0;
  ASSERT_TRUE(dev.malloc(size_t(L.N) * L.K * 2, w).isOk());
  ASSERT_TRUE(dev.memset8(w, 0xff, size_t(L.N) * L.K * 2).isOk());
  Kernel *k = nullptr;
  ASSERT_TRUE(dev.getKernel(mod, "dequant_4", k).isOk());
  void *args[] = {&q, &sc, &w};
  s = dev.launch(k, {59, 1, 1}, {256, 1, 1}, 0, args);
  ASSERT_TRUE(s.isOk()) << s.message();
  std::vector<uint16_t> wh(size_t(L.N) * L.K);
  ASSERT_TRUE(dev.copyToHost(wh.data(), w, wh.size() * 2).isOk());
  size_t bad = 0;
  for (size_t i = 0; i < wh.size(); ++i)
    if (float(halfToDouble(wh[i])) != L.w[i] && bad++ < 5)
      ADD_FAILURE() << "w[" << i / L.K << "][" << i % L.K
                    << "] = " << halfToDouble(wh[i]) << ", expected " << L.w[i];
  EXPECT_EQ(bad, 0u);
}

} // namespace
