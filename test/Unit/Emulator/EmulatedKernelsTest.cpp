//===- EmulatedKernelsTest.cpp - Generated kernels on the emulator --------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// The real kernels qc generates, executed instruction by instruction on the
// PTX emulator and compared with a float64 reference. Each case writes an
// artifact with quant-kernelgen (--ptx-images only: PTX for sm_80 and
// sm_90a, no CUDA toolkit needed) and runs the unchanged quant-bench on it
// with QC_CUDA_DRIVER_LIBRARY pointing at the emulator's libqc_cuda_emu.so
// (QC_EMU_ARCH picks the architecture, so the emulated device loads the
// artifact's PTX for that architecture). quant-bench poisons every output,
// runs the variant the dispatcher picks for each M through GpuRuntime,
// checks y against the float64 reference (relative L2 error <= 5e-3, the
// tolerance of the GPU benchmarks: fp16 inputs and outputs, fp32
// accumulation) and, without cuBLAS, checks the dequant kernel's W against
// the host dequantization; the emulator's sanitizer checks are on, so any
// out-of-bounds, misaligned, uninitialized or racy access fails the launch.
//
// The configurations: both architectures x symmetric / asymmetric x group
// sizes 32, 64, 128 and per-channel, on N = 100 (not a multiple of any n
// tile) and K = 200 (a ragged last group for every group size), at
// M = 1, 3 (split-K GEMV), 16, 17 (mma, tile-m 16 and 32) and 100 (tile-m
// 64: a partial last row tile); non-default tilings (split-K > 1 with
// the fp32 workspace and the finalize kernel, two warps, two n tiles per
// warp, other pipeline depths) on N = 72, K = 320; a 520 x 2104 layer whose
// default variants split K (every M boundary of the dispatcher); and layers
// smaller than one tile (8 x 64, 33 x 48 with group size 16). bits = 4 is the
// only width the generator supports (it refuses others, see
// quant-kernelgen-invalid.test); act-order (g_idx) layers are refused by
// quant-kernelgen's model mode, so there is nothing to run for them.
//
// The negative cases break a real kernel or its launch record and expect
// the emulator or the verification to catch it.
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/Artifact.h"
#include "qc/runtime/Json.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include <stdlib.h>
#include <sys/wait.h>

namespace qc {
namespace {

/// A fresh directory, removed afterwards.
struct TempDir {
  TempDir() {
    std::string t = testing::TempDir();
    if (t.empty() || t.back() != '/')
      t += '/';
    t += "qc_emu_XXXXXX";
    EXPECT_NE(mkdtemp(&t[0]), nullptr);
    path = t;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string file(const std::string &n) const { return path + "/" + n; }
  std::string path;
};

std::string slurp(const std::string &path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

/// Runs `cmd` through the shell; returns its exit status, stdout and stderr.
int run(const std::string &cmd, const TempDir &dir, std::string &out,
        std::string &err) {
  std::string full =
      cmd + " >" + dir.file("out.txt") + " 2>" + dir.file("err.txt");
  int rc = std::system(full.c_str());
  out = slurp(dir.file("out.txt"));
  err = slurp(dir.file("err.txt"));
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/// quant-kernelgen with PTX images only.
void generate(const std::string &args, const std::string &artifact,
              const TempDir &dir) {
  std::string out, err;
  std::string cmd = std::string(QC_KERNELGEN) + " " + args +
                    " --targets sm_80,sm_90a --ptx-images only -o " + artifact;
  ASSERT_EQ(run(cmd, dir, out, err), 0) << cmd << "\n" << err;
}

/// quant-bench on the emulator; returns its exit code, stderr, and the
/// parsed JSON report (null when none was written).
int bench(const std::string &artifact, const std::string &arch,
          const std::string &extra, const TempDir &dir, std::string &err,
          json::Value &report) {
  const std::string jsonPath = dir.file("report.json");
  std::filesystem::remove(jsonPath);
  std::string cmd = std::string("QC_CUDA_DRIVER_LIBRARY=") +
                    QC_EMU_DRIVER_LIBRARY + " QC_EMU_ARCH=" + arch + " " +
                    QC_QUANT_BENCH + " --artifact " + artifact + " --json " +
                    jsonPath + " --table " + extra;
  std::string out;
  int code = run(cmd, dir, out, err);
  err = cmd + "\n" + out + err;
  report = json::Value();
  if (std::filesystem::exists(jsonPath))
    (void)json::parse(slurp(jsonPath), report);
  return code;
}

struct Config {
  std::string arch;
  bool sym;
  int groupSize;
  std::string shape;
  std::string tiles; ///< "" = the default variants
  std::string ms;
};

std::string caseName(const Config &c) {
  std::string n =
      c.arch + (c.sym ? "_sym" : "_asym") + "_g" +
      (c.groupSize < 0 ? std::string("ch") : std::to_string(c.groupSize)) +
      "_" + c.shape + (c.tiles.empty() ? "" : "_tiled");
  for (char &ch : n)
    if (!std::isalnum(static_cast<unsigned char>(ch)))
      ch = '_';
  return n;
}

class EmulatedKernels : public ::testing::TestWithParam<Config> {};

TEST_P(EmulatedKernels, MatchTheFloat64Reference) {
  const Config &c = GetParam();
  TempDir dir;
  const std::string art = dir.file("k.qcart");
  std::string args = "--shape " + c.shape + " --group-size " +
                     std::to_string(c.groupSize) + (c.sym ? "" : " --asym");
  if (!c.tiles.empty())
    args += " --tiles '" + c.tiles + "'";
  ASSERT_NO_FATAL_FAILURE(generate(args, art, dir));
  std::string err;
  json::Value r;
  int code = bench(art, c.arch, "--m " + c.ms, dir, err, r);
  ASSERT_EQ(code, 0) << err;
  ASSERT_TRUE(r.isObject()) << err;
  EXPECT_TRUE(r.find("emulated")->asBool());
  EXPECT_EQ(r.find("device")->find("arch")->asString(),
            c.arch == "sm_80" ? "sm_80" : "sm_90");
  const auto &rows = r.find("rows")->asArray();
  size_t expectRows = 1;
  for (char ch : c.ms)
    expectRows += ch == ',';
  ASSERT_EQ(rows.size(), expectRows) << err;
  for (const json::Value &row : rows) {
    SCOPED_TRACE("M = " + std::to_string(row.find("M")->asInt64()) + " (" +
                 row.find("variant")->asString() + ")");
    EXPECT_TRUE(row.find("ok")->asBool()) << row.find("failure")->asString();
    const json::Value *e = row.find("rel_error")->find("ours");
    ASSERT_TRUE(e->isNumber());
    EXPECT_LT(e->asDouble(), 5e-3);
    // Each dequantized weight is one fp16 rounding from the reference.
    const json::Value *w = row.find("rel_error")->find("dequant_w");
    ASSERT_TRUE(w->isNumber());
    EXPECT_LT(w->asDouble(), 1e-3);
    EXPECT_TRUE(row.find("ours_us")->isNull()) << "an emulated time must "
                                                  "never read as a GPU time";
    EXPECT_TRUE(row.find("emulated_ours_us")->isNumber());
  }
}

std::vector<Config> configs() {
  std::vector<Config> v;
  for (const char *arch : {"sm_80", "sm_90a"})
    for (bool sym : {true, false})
      for (int g : {32, 64, 128, -1})
        v.push_back({arch, sym, g, "100x200", "", "1,3,16,17,100"});
  // Split-K > 1 (fp32 workspace, atomics, finalize kernel) in both
  // families, 2 warps, 2 n tiles per warp, other pipeline depths.
  const std::string tiles =
      "splitk:warps=2,split-k=2,stages=3,m=1-8;"
      "mma:tile-m=32,warps=2,tiles-n=2,stages=3,split-k=2,m=9-40;"
      "mma:tile-m=16,warps=4,stages=2,m=41-1000;dequant";
  for (const char *arch : {"sm_80", "sm_90a"})
    for (bool sym : {true, false})
      for (int g : {128, -1})
        v.push_back({arch, sym, g, "72x320", tiles, "1,5,33,50"});
  // A larger layer: several CTAs along N (N = 520, not a multiple of 64),
  // K = 2104 (ragged last group for 32 and 128), where the default
  // variants split K in two (fp32 workspace, atomics, finalize kernel), at
  // every M boundary of the dispatcher.
  for (const char *arch : {"sm_80", "sm_90a"}) {
    v.push_back({arch, true, 128, "520x2104", "", "1,3,8,9,17,32,33,100"});
    v.push_back({arch, false, 32, "520x2104", "", "1,3,8,9,17,32,33,100"});
  }
  // Layers smaller than one tile.
  for (const char *arch : {"sm_80", "sm_90a"}) {
    v.push_back({arch, true, -1, "8x64", "", "1,8,9,100"});
    v.push_back({arch, false, 16, "33x48", "", "1,3,17,33"});
  }
  return v;
}

/// Readable parameters in gtest's failure messages.
void PrintTo(const Config &c, std::ostream *os) { *os << caseName(c); }

INSTANTIATE_TEST_SUITE_P(Suite, EmulatedKernels, ::testing::ValuesIn(configs()),
                         [](const ::testing::TestParamInfo<Config> &i) {
                           return caseName(i.param);
                         });

/// The PTX image of `module` for `target` in `a`, as text.
std::string *ptxOf(Artifact &a, const std::string &target,
                   std::string &storage) {
  for (ArtifactModule &m : a.modules)
    for (ArtifactImage &img : m.images)
      if (img.kind == "ptx" && img.target == target) {
        storage.assign(img.bytes.begin(), img.bytes.end());
        return &storage;
      }
  return nullptr;
}

void setPtx(Artifact &a, const std::string &target, const std::string &ptx) {
  for (ArtifactModule &m : a.modules)
    for (ArtifactImage &img : m.images)
      if (img.kind == "ptx" && img.target == target)
        img.bytes.assign(ptx.begin(), ptx.end());
}

// A real mma kernel with its cp.async waits removed: shared memory is read
// before the asynchronous copies landed. The emulator delivers cp.async data
// at the wait, so the kernel reads stale or uninitialized shared memory and
// the launch fails with the kernel's name and the PTX line.
TEST(EmulatedKernelsNegative, MissingCpAsyncWaitIsCaught) {
  TempDir dir;
  const std::string art = dir.file("k.qcart");
  ASSERT_NO_FATAL_FAILURE(
      generate("--shape 64x256 --group-size 128", art, dir));
  Artifact a;
  ASSERT_TRUE(readArtifact(art, a));
  std::string text;
  ASSERT_NE(ptxOf(a, "compute_80", text), nullptr);
  std::istringstream in(text);
  std::string line, broken;
  int removed = 0;
  while (std::getline(in, line)) {
    if (line.find("cp.async.wait_group") != std::string::npos ||
        line.find("cp.async.wait_all") != std::string::npos) {
      ++removed;
      broken += "\t// (cp.async wait removed by the test)\n";
      continue;
    }
    broken += line + "\n";
  }
  ASSERT_GT(removed, 0) << "the mma kernels use cp.async waits";
  setPtx(a, "compute_80", broken);
  const std::string bad = dir.file("broken.qcart");
  ASSERT_TRUE(writeArtifact(bad, a));
  std::string err;
  json::Value r;
  // M = 17: an mma variant (the one with the cp.async pipeline).
  int code = bench(bad, "sm_80", "--m 17", dir, err, r);
  EXPECT_EQ(code, 5) << err; // kExitGpuError: the launch failed
  EXPECT_NE(err.find("CUDA_ERROR_LAUNCH_FAILED"), std::string::npos) << err;
  EXPECT_NE(err.find("kernel 'mma_"), std::string::npos) << err;
  EXPECT_NE(err.find("line "), std::string::npos) << err;
  // The diagnosis, for the test log.
  size_t at = err.find("qc PTX emulator: kernel");
  if (at != std::string::npos)
    std::cout << "caught: " << err.substr(at, err.find('\n', at) - at) << "\n";
}

// The launch records matter too: a split-K variant whose manifest forgets
// to zero the workspace accumulates the previous run's sums, and a tile
// height larger than the kernel's leaves rows of y unwritten (poisoned NaN);
// the verification catches both.
TEST(EmulatedKernelsNegative, BrokenLaunchRecordsFailVerification) {
  TempDir dir;
  const std::string art = dir.file("k.qcart");
  ASSERT_NO_FATAL_FAILURE(
      generate("--shape 72x320 --group-size 64 --asym --tiles "
               "'splitk:warps=2,split-k=2,m=1-8;mma:tile-m=16,warps=4,m=9-64'",
               art, dir));
  Artifact a;
  ASSERT_TRUE(readArtifact(art, a));
  ASSERT_EQ(a.layers.size(), 1u);
  ArtifactLayer &l = a.layers[0];
  ASSERT_TRUE(l.variants[0].zeroWorkspace);
  l.variants[0].zeroWorkspace = false;
  ASSERT_EQ(l.variants[1].launches[0].tileM, 16u);
  l.variants[1].launches[0].tileM = 32; // grid.y halves: rows 16.. unwritten
  const std::string bad = dir.file("broken.qcart");
  ASSERT_TRUE(writeArtifact(bad, a));
  std::string err;
  json::Value r;
  int code = bench(bad, "sm_80", "--m 1,3,17", dir, err, r);
  EXPECT_EQ(code, 4) << err; // kExitVerifyFailed
  EXPECT_NE(err.find("at M = 3 failed: ours rel. error"), std::string::npos)
      << err;
  EXPECT_NE(err.find("at M = 17 failed: ours rel. error NaN"),
            std::string::npos)
      << err;
}

} // namespace
} // namespace qc
