//===- QuantBenchTest.cpp - Tests of quant-bench's host-side parts --------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Everything quant-bench does without a GPU: arguments, artifact errors, the
// no-GPU exit, seeded weights, verification against the float64 reference,
// metrics, table and JSON. Reports built here are synthetic (hand-set
// times), labelled as such, and never GPU measurements.
//
//===----------------------------------------------------------------------===//

#include "QuantBench.h"

#include "TestUtil.h"
#include "qc/runtime/CpuLinear.h"
#include "qc/runtime/CudaDriver.h"
#include "qc/runtime/Safetensors.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>

namespace qc {
namespace bench {
namespace {

Status parse(std::vector<std::string> args, Options &o) {
  args.insert(args.begin(), "quant-bench");
  std::vector<const char *> argv;
  for (auto &a : args)
    argv.push_back(a.c_str());
  bool help;
  return parseArgs(int(argv.size()), argv.data(), o, help);
}

int runMain(std::vector<std::string> args, std::string &out, std::string &err) {
  args.insert(args.begin(), "quant-bench");
  std::vector<const char *> argv;
  for (auto &a : args)
    argv.push_back(a.c_str());
  std::ostringstream o, e;
  int code = quantBenchMain(int(argv.size()), argv.data(), o, e);
  out = o.str();
  err = e.str();
  return code;
}

ArtifactLayer kernelOnlyLayer(const std::string &name, int64_t N, int64_t K,
                              int64_t G, bool sym) {
  ArtifactLayer l;
  l.name = name;
  l.N = N;
  l.K = K;
  l.groupSize = G;
  l.sym = sym;
  ArtifactVariant v;
  v.family = "mma";
  v.minM = 1;
  v.maxM = 256;
  ArtifactLaunch L;
  L.module = "m";
  L.kernel = "k";
  L.block[0] = 128;
  L.params = {"x", "qweight", "scales", "y", "M"};
  if (!sym)
    L.params.insert(L.params.begin() + 3, "zeros");
  v.launches.push_back(L);
  l.variants.push_back(v);
  return l;
}

Artifact kernelArtifact() {
  Artifact a;
  a.producer = "QuantBenchTest";
  ArtifactModule m;
  m.name = "m";
  m.kernels = {"k"};
  m.images.push_back({"ptx", "ptx", {'/', '/'}});
  a.modules.push_back(m);
  a.layers.push_back(kernelOnlyLayer("64x256", 64, 256, 128, true));
  return a;
}

TEST(QuantBenchArgs, DefaultsAndLists) {
  Options o;
  Status st = parse({"--artifact", "k.qcart"}, o);
  ASSERT_TRUE(st) << st.message();
  EXPECT_EQ(o.ms, (std::vector<int>{1, 2, 4, 8, 16, 32, 64, 128, 256}));
  EXPECT_TRUE(o.table); // no --json: the table
  EXPECT_GT(o.rotateBytes, uint64_t(256) << 20);
  ASSERT_TRUE(parse({"--artifact", "k", "--m", "3,17", "--reps", "7", "--json",
                     "o.json", "--layer", "a", "--layer", "b", "--rotate-mb",
                     "1024", "--max-rel-error", "1e-3"},
                    o));
  EXPECT_EQ(o.ms, (std::vector<int>{3, 17}));
  EXPECT_EQ(o.reps, 7);
  EXPECT_FALSE(o.table);
  EXPECT_EQ(o.layers, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(o.rotateBytes, uint64_t(1024) << 20);
  EXPECT_EQ(o.maxRelError, 1e-3);
}

TEST(QuantBenchArgs, ErrorsAreClear) {
  struct Case {
    std::vector<std::string> args;
    const char *expect;
  };
  std::vector<Case> cases = {
      {{}, "--artifact is required"},
      {{"--artifact"}, "--artifact needs a value"},
      {{"--artifact", "k", "--m", "1,0"}, "\"0\" is not a batch size"},
      {{"--artifact", "k", "--m", "1,x"}, "\"x\" is not a batch size"},
      {{"--artifact", "k", "--reps", "0"}, "--reps: \"0\" is not an integer"},
      {{"--artifact", "k", "--rotate-mb", "100"}, "--rotate-mb"},
      {{"--artifact", "k", "--max-rel-error", "-1"}, "not a positive number"},
      {{"--artifact", "k", "--frobnicate"}, "unknown argument \"--frobnicate\""},
  };
  for (const Case &c : cases) {
    Options o;
    Status st = parse(c.args, o);
    ASSERT_FALSE(st) << c.expect;
    EXPECT_NE(st.message().find(c.expect), std::string::npos) << st.message();
  }
  std::string out, err;
  EXPECT_EQ(runMain({"--m", "5"}, out, err), kExitUsage);
  EXPECT_NE(err.find("quant-bench: --artifact is required"), std::string::npos);
  EXPECT_EQ(runMain({"--help"}, out, err), kExitOk);
  EXPECT_NE(out.find("usage: quant-bench"), std::string::npos);
}

TEST(QuantBenchMain, ArtifactErrorsNameTheFile) {
  test::TempDir dir;
  std::string out, err;
  EXPECT_EQ(runMain({"--artifact", dir.file("missing.qcart")}, out, err),
            kExitArtifact);
  EXPECT_NE(err.find(dir.file("missing.qcart") + ": cannot open"),
            std::string::npos)
      << err;

  const std::string path = dir.file("k.qcart");
  ASSERT_TRUE(writeArtifact(path, kernelArtifact()));
  EXPECT_EQ(runMain({"--artifact", path, "--layer", "nope"}, out, err),
            kExitArtifact);
  EXPECT_NE(err.find("no layer \"nope\""), std::string::npos) << err;

  // A truncated artifact.
  std::vector<uint8_t> bytes;
  ASSERT_TRUE(serializeArtifact(kernelArtifact(), bytes));
  {
    std::ofstream f(dir.file("cut.qcart"), std::ios::binary);
    f.write(reinterpret_cast<const char *>(bytes.data()),
            std::streamsize(bytes.size() / 2));
  }
  EXPECT_EQ(runMain({"--artifact", dir.file("cut.qcart")}, out, err),
            kExitArtifact);
  EXPECT_NE(err.find("cut.qcart: truncated"), std::string::npos) << err;

  Artifact empty;
  ASSERT_TRUE(writeArtifact(dir.file("empty.qcart"), empty));
  EXPECT_EQ(runMain({"--artifact", dir.file("empty.qcart")}, out, err),
            kExitArtifact);
  EXPECT_NE(err.find("has no layers"), std::string::npos) << err;
}

TEST(QuantBenchMain, WithoutAGpuOneLineAndADistinctExitCode) {
  const cuda::CudaDriver *d;
  cuda::DriverState state;
  (void)cuda::CudaDriver::load(d, state);
  if (state == cuda::DriverState::Ready)
    GTEST_SKIP() << "a CUDA driver is present; this test is for machines "
                    "without one";
  test::TempDir dir;
  const std::string path = dir.file("k.qcart");
  ASSERT_TRUE(writeArtifact(path, kernelArtifact()));
  std::string out, err;
  const std::string json = dir.file("r.json");
  EXPECT_EQ(runMain({"--artifact", path, "--json", json}, out, err), kExitNoGpu);
  EXPECT_TRUE(out.empty()) << out;
  ASSERT_FALSE(err.empty());
  EXPECT_EQ(err.find('\n'), err.size() - 1) << "more than one line: " << err;
  if (state == cuda::DriverState::NotFound)
    EXPECT_EQ(err, "quant-bench: no CUDA driver (libcuda.so.1 not found): GPU "
                   "path unavailable, nothing to measure\n");
  EXPECT_EQ(dir.list(), std::vector<std::string>{"k.qcart"}) << "no results "
                                                                "written";
}

TEST(QuantBenchWeights, SeededAndScaledForOrderOneOutputs) {
  ArtifactLayer l = kernelOnlyLayer("96x300", 96, 300, 64, false);
  MMA16x64Tensors a, b, c;
  ASSERT_TRUE(randomLayerTensors(l, 5, a));
  ASSERT_TRUE(randomLayerTensors(l, 5, b));
  ASSERT_TRUE(randomLayerTensors(l, 6, c));
  EXPECT_EQ(a.qweight, b.qweight);
  EXPECT_EQ(a.scales, b.scales);
  EXPECT_EQ(a.zeros, b.zeros);
  EXPECT_NE(a.qweight, c.qweight);
  std::vector<uint16_t> x = randomActivations(4, 300, 9);
  EXPECT_EQ(x, randomActivations(4, 300, 9));
  std::vector<float> y;
  ASSERT_TRUE(cpuLinearMMA16x64(a, x.data(), 4, y));
  double ss = 0;
  for (float v : y)
    ss += double(v) * v;
  double rms = std::sqrt(ss / double(y.size()));
  EXPECT_GT(rms, 0.1);
  EXPECT_LT(rms, 10.0);
}

TEST(QuantBenchVerify, ChannelsSampleCoversTheEnds) {
  auto all = verifyChannels(100, 64, 4);
  ASSERT_EQ(all.size(), 100u);
  auto sub = verifyChannels(28672, 8192, 256);
  ASSERT_GE(sub.size(), 64u);
  ASSERT_LT(sub.size(), 28672u);
  EXPECT_EQ(sub.front(), 0);
  EXPECT_EQ(sub.back(), 28671);
  EXPECT_TRUE(std::is_sorted(sub.begin(), sub.end()));
  EXPECT_EQ(std::adjacent_find(sub.begin(), sub.end()), sub.end());
}

// The verification a GPU row goes through, fed with a correct fp16 output
// (the CPU path rounded to fp16), a wrong one and a poisoned one.
TEST(QuantBenchVerify, AcceptsCorrectRejectsWrongAndPoisoned) {
  ArtifactLayer l = kernelOnlyLayer("200x512", 200, 512, 128, true);
  MMA16x64Tensors t;
  ASSERT_TRUE(randomLayerTensors(l, 1, t));
  const int64_t M = 3;
  std::vector<uint16_t> x = randomActivations(M, 512, 2);
  std::vector<float> y, w, xf(x.size());
  ASSERT_TRUE(cpuLinearMMA16x64(t, x.data(), M, y));
  ASSERT_TRUE(dequantizeAllMMA16x64(t, w));
  for (size_t i = 0; i < x.size(); ++i)
    xf[i] = f16ToF32(x[i]);
  std::vector<int64_t> ch = verifyChannels(200, 512, M, 64 * 512 * M);
  ASSERT_LT(ch.size(), 200u);
  std::vector<double> ref;
  referenceLinear(w.data(), 200, 512, xf.data(), M, ch, ref);
  std::vector<uint16_t> yh(y.size());
  for (size_t i = 0; i < y.size(); ++i)
    yh[i] = f32ToF16(y[i]);
  Verification v = verifyOutput(yh.data(), M, 200, ch, ref, 5e-3);
  EXPECT_TRUE(v.ok) << v.relError;
  EXPECT_LT(v.relError, 1e-3); // fp16 output rounding
  EXPECT_GT(v.relError, 0.0);
  EXPECT_EQ(v.checked, M * int64_t(ch.size()));

  std::vector<uint16_t> bad = yh;
  for (int64_t m = 0; m < M; ++m) // a wrong output channel (sampled: 199)
    bad[size_t(m * 200 + 199)] = f32ToF16(f16ToF32(bad[size_t(m * 200 + 199)]) + 3.0f);
  v = verifyOutput(bad.data(), M, 200, ch, ref, 5e-3);
  EXPECT_FALSE(v.ok) << v.relError;

  bad = yh;
  bad[size_t(1 * 200 + 0)] = 0xFFFF; // poison left in place
  v = verifyOutput(bad.data(), M, 200, ch, ref, 5e-3);
  EXPECT_FALSE(v.ok);
  EXPECT_TRUE(std::isnan(v.relError));
}

TEST(QuantBenchMetrics, HandComputed) {
  Row r;
  r.N = 4096;
  r.K = 4096;
  r.groupSize = 128;
  r.sym = false;
  r.M = 1;
  r.oursUs = 10.0;
  r.cublasUs = 25.0;
  computeMetrics(r, 3.0);
  // Packed 4-bit weights 8 MiB, scales+zeros 32*4096*2*2 bytes, x 8 KiB, y 8 KiB.
  double bytes = 4096.0 * 4096 / 2 + 32.0 * 4096 * 4 + 8192 + 8192;
  EXPECT_DOUBLE_EQ(r.oursBytes, bytes);
  EXPECT_DOUBLE_EQ(r.oursTBps, bytes / 10e-6 / 1e12);
  EXPECT_DOUBLE_EQ(r.oursPctCopy, r.oursTBps / 3.0 * 100);
  EXPECT_DOUBLE_EQ(r.flops, 2.0 * 4096 * 4096);
  EXPECT_DOUBLE_EQ(r.speedup, 2.5);
  EXPECT_DOUBLE_EQ(r.cublasBytes, 4096.0 * 4096 * 2 + 8192 + 8192);
  EXPECT_TRUE(std::isnan(r.dequantSpeedup)); // not measured
}

Report syntheticReport() {
  Report r;
  r.deviceName = "synthetic test report (not a GPU measurement)";
  r.arch = "sm_00";
  r.date = "2026-01-01T00:00:00Z";
  r.artifact = "k.qcart";
  r.producer = "QuantBenchTest";
  r.copyTBps = 3.0;
  r.gemmTflops = 700.0;
  Row a;
  a.layer = "4096x4096";
  a.N = a.K = 4096;
  a.groupSize = 128;
  a.M = 1;
  a.variant = "splitk";
  a.oursUs = 10;
  a.cublasUs = 20;
  a.relOurs = 3e-4;
  a.relCublas = 2e-4;
  a.checked = 4096;
  a.ok = true;
  computeMetrics(a, r.copyTBps);
  Row b = a;
  b.M = 16;
  b.variant = "mma";
  b.ok = false;
  b.relOurs = NAN;
  b.failure = "ours rel. error NaN (output not fully written?) > 0.005";
  computeMetrics(b, r.copyTBps);
  r.rows = {a, b};
  return r;
}

TEST(QuantBenchOutput, TableAndJson) {
  Report r = syntheticReport();
  std::string table = formatTable(r);
  EXPECT_NE(table.find("synthetic test report"), std::string::npos);
  EXPECT_NE(table.find("cuBLAS us"), std::string::npos);
  EXPECT_NE(table.find("cuBLAS FP16 GEMM 8192^3 700.0 TFLOP/s"), std::string::npos);
  EXPECT_NE(table.find("2.00x"), std::string::npos);
  EXPECT_NE(table.find("unavailable"), std::string::npos); // no dequant variant
  EXPECT_NE(table.find("FAIL: ours rel. error NaN"), std::string::npos);

  test::TempDir dir;
  ASSERT_TRUE(writeJson(dir.file("r.json"), r));
  std::ifstream f(dir.file("r.json"));
  std::stringstream ss;
  ss << f.rdbuf();
  json::Value v;
  Status st = json::parse(ss.str(), v);
  ASSERT_TRUE(st) << st.message();
  EXPECT_EQ(v.find("schema")->asString(), "qc-bench-kernels");
  EXPECT_EQ(v.find("device")->find("name")->asString(), r.deviceName);
  EXPECT_EQ(v.find("date")->asString(), r.date);
  EXPECT_EQ(v.find("copy_tbps")->asDouble(), 3.0);
  EXPECT_EQ(v.find("gemm_tflops")->asDouble(), 700.0);
  const auto &rows = v.find("rows")->asArray();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].find("M")->asInt64(), 1);
  EXPECT_EQ(rows[0].find("speedup_vs_cublas")->asDouble(), 2.0);
  EXPECT_TRUE(rows[0].find("dequant_cublas_us")->isNull());
  EXPECT_FALSE(rows[0].find("dequant_available")->asBool());
  EXPECT_TRUE(rows[0].find("ok")->asBool());
  EXPECT_FALSE(rows[1].find("ok")->asBool());
  EXPECT_TRUE(rows[1].find("rel_error")->find("ours")->isNull());
  EXPECT_EQ(utcNow().size(), 20u);
}

} // namespace
} // namespace bench
} // namespace qc
