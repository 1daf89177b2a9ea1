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
  EXPECT_TRUE(l2Cold(o));
  EXPECT_EQ(o.maxRelError, 1e-3);
  ASSERT_TRUE(parse({"--artifact", "k", "--rotate-mb", "256"}, o));
  EXPECT_FALSE(l2Cold(o)); // reported, not refused
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
      {{"--artifact", "k", "--rotate-mb", "0"}, "--rotate-mb"},
      {{"--artifact", "k", "--gemm-peak-n", "8"}, "--gemm-peak-n"},
      {{"--artifact", "k", "--max-rel-error", "-1"}, "not a positive number"},
      {{"--artifact", "k", "--frobnicate"},
       "unknown argument \"--frobnicate\""},
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
  EXPECT_EQ(runMain({"--artifact", path, "--json", json}, out, err),
            kExitNoGpu);
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
    bad[size_t(m * 200 + 199)] =
        f32ToF16(f16ToF32(bad[size_t(m * 200 + 199)]) + 3.0f);
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
  // Packed 4-bit weights 8 MiB, scales+zeros 32*4096*2*2 bytes, x 8 KiB, y 8
  // KiB.
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
  EXPECT_NE(table.find("cuBLAS FP16 GEMM 8192^3 700.0 TFLOP/s"),
            std::string::npos);
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

// An emulated report: every time is labelled, none becomes a throughput, a
// speedup or a JSON field a GPU report would use.
TEST(QuantBenchOutput, EmulatedTimesAreLabelledNeverPerformance) {
  Report r;
  r.deviceName = "qc PTX emulator (sm_80, not a GPU)";
  r.arch = "sm_80";
  r.emulated = true;
  r.cublasNote = "cuBLAS rows skipped: cuBLAS does not run on the qc PTX "
                 "emulator";
  Row a;
  a.layer = "100x200";
  a.N = 100;
  a.K = 200;
  a.M = 3;
  a.variant = "splitk";
  a.oursUs = 2500;
  a.relOurs = 2e-4;
  a.relDequantW = 0;
  a.dequantAvailable = true;
  a.emulated = true;
  a.ok = true;
  computeMetrics(a, NAN);
  EXPECT_TRUE(std::isnan(a.oursTBps));
  EXPECT_TRUE(std::isnan(a.oursTflops));
  EXPECT_GT(a.flops, 0); // counts are still filled
  r.rows = {a};
  std::string table = formatTable(r);
  EXPECT_NE(table.find("EMULATED: every time below is the qc PTX emulator's "
                       "host wall time"),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("emulated us"), std::string::npos);
  EXPECT_EQ(table.find("ours us"), std::string::npos);
  EXPECT_EQ(table.find("measured ceilings"), std::string::npos);
  EXPECT_NE(table.find("cuBLAS rows skipped"), std::string::npos);
  EXPECT_NE(table.find("dequant W err"), std::string::npos);
  json::Value v;
  ASSERT_TRUE(json::parse(json::write(toJson(r)), v)); // NaN -> null
  EXPECT_TRUE(v.find("emulated")->asBool());
  EXPECT_NE(v.find("settings")->find("timing")->asString().find("EMULATED"),
            std::string::npos);
  const json::Value &row = v.find("rows")->asArray()[0];
  EXPECT_TRUE(row.find("emulated")->asBool());
  EXPECT_TRUE(row.find("ours_us")->isNull());
  EXPECT_EQ(row.find("emulated_ours_us")->asDouble(), 2500.0);
  EXPECT_TRUE(row.find("ours_tbps")->isNull());
  EXPECT_TRUE(row.find("speedup_vs_cublas")->isNull());
  EXPECT_EQ(row.find("rel_error")->find("dequant_w")->asDouble(), 0.0);
}

} // namespace
} // namespace bench
} // namespace qc

namespace qc {
namespace bench {
namespace {

#ifdef QC_FAKE_CUDA_LIBRARY
/// Points the runtime at the test double for the lifetime of the object.
struct FakeDriverEnv {
  FakeDriverEnv() {
    setenv("QC_CUDA_DRIVER_LIBRARY", QC_FAKE_CUDA_LIBRARY, 1);
    setenv("QC_CUBLAS_LIBRARY", QC_FAKE_CUDA_LIBRARY, 1);
  }
  ~FakeDriverEnv() {
    unsetenv("QC_CUDA_DRIVER_LIBRARY");
    unsetenv("QC_CUBLAS_LIBRARY");
  }
};

ArtifactLaunch fakeLaunch(const std::string &kernel,
                          std::vector<std::string> params, uint32_t tileM,
                          uint32_t gridZ = 1,
                          const std::string &module = "fake") {
  ArtifactLaunch L;
  L.module = module;
  L.kernel = kernel;
  L.block[0] = 128;
  L.tileM = tileM;
  L.gridZ = gridZ;
  L.params = std::move(params);
  return L;
}

/// Layer "48x200" (asym, G 64): split-K for M <= 4 (workspace zeroed, three
/// K slices, then a reduce), mma above, a dequant variant. Layer "32x128"
/// (sym): a kernel that leaves the last row of y unwritten.
Artifact fakeArtifact() {
  Artifact a;
  a.producer = "QuantBenchTest (fake driver)";
  ArtifactModule m;
  m.name = "fake";
  m.kernels = {"fake_splitk_48_200_64_a", "fake_reduce_48_200_64_a",
               "fake_linear_48_200_64_a", "fake_dequant_48_200_64_a"};
  const std::string image = "//qc-fake-module";
  m.images.push_back({"sm_80", "cubin", {image.begin(), image.end()}});
  a.modules.push_back(m);
  // A module is compiled for one layer configuration: 32x128 has its own.
  ArtifactModule m2;
  m2.name = "fake_32x128";
  m2.kernels = {"fake_partial_32_128_ch_s"};
  m2.images.push_back({"sm_80", "cubin", {image.begin(), image.end()}});
  a.modules.push_back(m2);

  ArtifactLayer l;
  l.name = "48x200";
  l.N = 48;
  l.K = 200;
  l.groupSize = 64;
  l.sym = false;
  ArtifactVariant sk;
  sk.family = "splitk";
  sk.minM = 1;
  sk.maxM = 4;
  sk.workspaceBytesPerRow = 48 * 4;
  sk.zeroWorkspace = true;
  sk.launches = {
      fakeLaunch("fake_splitk_48_200_64_a",
                 {"x", "qweight", "scales", "zeros", "workspace", "M"}, 8, 3),
      fakeLaunch("fake_reduce_48_200_64_a", {"workspace", "y", "M"}, 8)};
  ArtifactVariant mma;
  mma.family = "mma";
  mma.minM = 5;
  mma.maxM = 64;
  mma.launches = {fakeLaunch("fake_linear_48_200_64_a",
                             {"x", "qweight", "scales", "zeros", "y", "M"},
                             16)};
  ArtifactVariant dq;
  dq.family = "dequant";
  dq.minM = 1;
  dq.maxM = 64;
  dq.launches = {fakeLaunch("fake_dequant_48_200_64_a",
                            {"qweight", "scales", "zeros", "w"}, 1)};
  l.variants = {sk, mma, dq};
  a.layers.push_back(l);

  ArtifactLayer bad;
  bad.name = "32x128";
  bad.N = 32;
  bad.K = 128;
  bad.groupSize = -1;
  bad.sym = true;
  ArtifactVariant bv;
  bv.family = "mma";
  bv.minM = 1;
  bv.maxM = 64;
  bv.launches = {fakeLaunch("fake_partial_32_128_ch_s",
                            {"x", "qweight", "scales", "y", "M"}, 16, 1,
                            "fake_32x128")};
  bad.variants = {bv};
  a.layers.push_back(bad);
  return a;
}

// quant-bench end to end on the host-memory test double: the numbers are
// not measurements (the device name in the report says so); what is checked
// is the flow: variant choice by M, argument marshalling, split-K workspace
// zeroing (a stale workspace would double the result), poisoning and
// verification (the partial kernel must fail), dequantize-then-cuBLAS, JSON.
TEST(QuantBenchFakeDriver, EndToEndFlowOnTheTestDouble) {
  FakeDriverEnv env;
  test::TempDir dir;
  const std::string path = dir.file("fake.qcart");
  ASSERT_TRUE(writeArtifact(path, fakeArtifact()));
  const std::string json = dir.file("r.json");
  std::string out, err;
  int code = runMain({"--artifact", path, "--m", "1,3,17", "--reps", "3",
                      "--warmup", "1", "--rotate-mb", "1", "--gemm-peak-n",
                      "64", "--json", json, "--table"},
                     out, err);
  EXPECT_EQ(code, kExitVerifyFailed) << err;
  EXPECT_NE(out.find("qc fake CUDA driver (test double, not a GPU)"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("L2 NOT kept cold"), std::string::npos);
  EXPECT_NE(err.find("layer 32x128 at M = 1 failed: ours rel. error NaN"),
            std::string::npos)
      << err;

  std::ifstream f(json);
  std::stringstream ss;
  ss << f.rdbuf();
  json::Value v;
  ASSERT_TRUE(json::parse(ss.str(), v));
  EXPECT_FALSE(v.find("settings")->find("l2_cold")->asBool());
  const auto &rows = v.find("rows")->asArray();
  ASSERT_EQ(rows.size(), 6u);
  const char *families[3] = {"splitk", "splitk", "mma"};
  for (int i = 0; i < 3; ++i) {
    const json::Value &r = rows[size_t(i)];
    SCOPED_TRACE("48x200 row " + std::to_string(i));
    EXPECT_EQ(r.find("layer")->asString(), "48x200");
    EXPECT_EQ(r.find("variant")->asString(), families[i]);
    EXPECT_TRUE(r.find("ok")->asBool()) << r.find("failure")->asString();
    EXPECT_TRUE(r.find("dequant_available")->asBool());
    for (const char *who : {"ours", "cublas", "dequant_cublas"}) {
      const json::Value *e = r.find("rel_error")->find(who);
      ASSERT_TRUE(e->isNumber()) << who;
      EXPECT_LT(e->asDouble(), 1e-3) << who;
      EXPECT_GT(e->asDouble(), 0.0) << who; // fp16 outputs are not exact
    }
    EXPECT_EQ(r.find("checked_outputs")->asInt64(),
              48 * r.find("M")->asInt64());
  }
  for (int i = 3; i < 6; ++i) {
    const json::Value &r = rows[size_t(i)];
    EXPECT_EQ(r.find("layer")->asString(), "32x128");
    EXPECT_FALSE(r.find("ok")->asBool());
    EXPECT_TRUE(r.find("rel_error")->find("ours")->isNull());
    EXPECT_FALSE(r.find("dequant_available")->asBool());
  }

  // Only the good layer: exit 0.
  EXPECT_EQ(
      runMain({"--artifact", path, "--layer", "48x200", "--m", "2", "--reps",
               "2", "--warmup", "0", "--rotate-mb", "1", "--gemm-peak-n", "64"},
              out, err),
      kExitOk)
      << err;

  // The runtime zeroes the workspace only because the manifest says so:
  // without it, the split-K sums of earlier runs leak into the next M.
  Artifact noZero = fakeArtifact();
  noZero.layers[0].variants[0].zeroWorkspace = false;
  ASSERT_TRUE(writeArtifact(dir.file("nozero.qcart"), noZero));
  EXPECT_EQ(runMain({"--artifact", dir.file("nozero.qcart"), "--layer",
                     "48x200", "--m", "1,3", "--reps", "2", "--warmup", "0",
                     "--rotate-mb", "1", "--gemm-peak-n", "64"},
                    out, err),
            kExitVerifyFailed);
  EXPECT_NE(err.find("layer 48x200 at M = 3 failed: ours rel. error"),
            std::string::npos)
      << err;
}

// Without cuBLAS (not installed, or the emulator) quant-bench still measures
// and verifies its own kernels, says why the cuBLAS columns are empty, and
// checks the dequant kernel on its own output W.
TEST(QuantBenchFakeDriver, WithoutCublasSkipsItsRowsWithANote) {
  FakeDriverEnv env;
  setenv("QC_CUBLAS_LIBRARY", "libqc-no-such-cublas.so", 1);
  test::TempDir dir;
  const std::string path = dir.file("fake.qcart");
  ASSERT_TRUE(writeArtifact(path, fakeArtifact()));
  const std::string json = dir.file("r.json");
  std::string out, err;
  int code = runMain({"--artifact", path, "--layer", "48x200", "--m", "1,17",
                      "--reps", "2", "--warmup", "0", "--rotate-mb", "1",
                      "--json", json, "--table"},
                     out, err);
  EXPECT_EQ(code, kExitOk) << err;
  EXPECT_NE(err.find("quant-bench: cuBLAS rows skipped: cannot load cuBLAS "
                     "(libqc-no-such-cublas.so)"),
            std::string::npos)
      << err;
  EXPECT_NE(out.find("cuBLAS rows skipped"), std::string::npos) << out;
  EXPECT_NE(out.find("dequant W err"), std::string::npos) << out;
  std::ifstream f(json);
  std::stringstream ss;
  ss << f.rdbuf();
  json::Value v;
  ASSERT_TRUE(json::parse(ss.str(), v));
  EXPECT_FALSE(v.find("emulated")->asBool()); // the fake is no emulator
  EXPECT_TRUE(v.find("cublas_note")->isString());
  for (const json::Value &r : v.find("rows")->asArray()) {
    EXPECT_TRUE(r.find("ok")->asBool()) << r.find("failure")->asString();
    EXPECT_TRUE(r.find("cublas_us")->isNull());
    EXPECT_TRUE(r.find("rel_error")->find("cublas")->isNull());
    const json::Value *w = r.find("rel_error")->find("dequant_w");
    ASSERT_TRUE(w->isNumber());
    EXPECT_LT(w->asDouble(), 1e-3);
    EXPECT_TRUE(r.find("ours_us")->isNumber());
  }
}
#endif

} // namespace
} // namespace bench
} // namespace qc
