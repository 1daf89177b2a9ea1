//===- PtxRunTest.cpp - Tests of qc-ptx-run -------------------------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// The command line, --arg parsing and the PTX entry signature reader run
// everywhere. With the emulator built (QC_EMU_DRIVER_LIBRARY), the
// hand-written PTX examples under test/Emulator/ptx run through the whole
// tool and their outputs are compared with the committed expectations,
// computed by hand from the PTX ISA's tables (see each example's README
// section in test/Emulator/ptx/README.md).
//
//===----------------------------------------------------------------------===//

#include "Npy.h"
#include "PtxRun.h"

#include "TestUtil.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include <sys/wait.h>

namespace qc::ptxrun {
namespace {

Status parse(std::vector<std::string> args, Options &o) {
  args.insert(args.begin(), "qc-ptx-run");
  std::vector<const char *> argv;
  for (auto &a : args)
    argv.push_back(a.c_str());
  bool help;
  return parseArgs(int(argv.size()), argv.data(), o, help);
}

TEST(PtxRunArgs, ParsesTheIssueSyntax) {
  Options o;
  Status st = parse(
      {"k.ptx",    "--kernel",      "k",        "--grid",         "2,3",
       "--block",  "128",           "--shared", "4096",           "--arch",
       "sm_90a",   "--out",         "o",        "--arg",          "x=in:x.npy",
       "--arg",    "y=inout:y.npy", "--arg",    "z=out:f32:16x8", "--arg",
       "n=u32:17", "--arg",         "s=s64:-5", "--arg",          "f=f32:0.5"},
      o);
  ASSERT_TRUE(st) << st.message();
  EXPECT_EQ(o.grid[0], 2u);
  EXPECT_EQ(o.grid[1], 3u);
  EXPECT_EQ(o.grid[2], 1u);
  EXPECT_EQ(o.block[0], 128u);
  EXPECT_EQ(o.sharedBytes, 4096u);
  EXPECT_EQ(o.arch, "sm_90a");
  ASSERT_EQ(o.args.size(), 6u);
  EXPECT_EQ(o.args[0].kind, Arg::In);
  EXPECT_EQ(o.args[1].kind, Arg::InOut);
  EXPECT_EQ(o.args[2].kind, Arg::Out);
  EXPECT_EQ(o.args[2].shape, (std::vector<uint64_t>{16, 8}));
  EXPECT_EQ(o.args[3].value, (std::vector<uint8_t>{17, 0, 0, 0}));
  EXPECT_EQ(o.args[4].value.size(), 8u);
  EXPECT_EQ(o.args[4].value[0], 0xFB);
  float f;
  std::memcpy(&f, o.args[5].value.data(), 4);
  EXPECT_EQ(f, 0.5f);
}

TEST(PtxRunArgs, ErrorsAreClear) {
  Options o;
  auto err = [&](std::vector<std::string> a) {
    Status st = parse(a, o);
    EXPECT_FALSE(st);
    return st.message();
  };
  EXPECT_EQ(err({"k.ptx", "--grid", "1", "--block", "1"}),
            "--kernel is required");
  EXPECT_EQ(err({"k.ptx", "--kernel", "k", "--grid", "0", "--block", "1"}),
            "--grid: \"0\" is not a positive integer");
  EXPECT_EQ(
      err({"k.ptx", "--kernel", "k", "--grid", "1,1,1,1", "--block", "1"}),
      "--grid: \"1,1,1,1\" is not X[,Y[,Z]]");
  EXPECT_EQ(err({"k.ptx", "--kernel", "k", "--grid", "1", "--block", "1",
                 "--arch", "sm_70"}),
            "--arch: \"sm_70\" is not sm_80 or sm_90a");
  EXPECT_EQ(err({"k.ptx", "--kernel", "k", "--grid", "1", "--block", "1",
                 "--arg", "y=out:f32:4"}),
            "--out DIR is required for out/inout arguments");
  Arg a;
  Status st = parseArg("n=u32:4294967296", a);
  EXPECT_EQ(st.message(), "--arg n: \"4294967296\" is not a valid u32 value");
  st = parseArg("n=s32:1x", a);
  EXPECT_EQ(st.message(), "--arg n: \"1x\" is not a valid s32 value");
  st = parseArg("n=u16:1", a);
  EXPECT_EQ(st.message(),
            "--arg n: unknown scalar type \"u16\" (u32, s32, u64, s64, f32, "
            "f64)");
  st = parseArg("y=out:f33:4", a);
  EXPECT_NE(st.message().find("unknown dtype \"f33\""), std::string::npos);
  st = parseArg("y=out:f32:4x0", a);
  EXPECT_EQ(st.message(), "--arg y: dimension \"0\" is not a positive integer");
  st = parseArg("../y=out:f32:4", a);
  EXPECT_NE(st.message().find("no '/' allowed"), std::string::npos);
  st = parseArg("noequals", a);
  EXPECT_NE(st.message().find("expected NAME=KIND:VALUE"), std::string::npos);
}

TEST(PtxRunEntry, ReadsTheParameterList) {
  const std::string ptx = R"(.version 7.0
.target sm_80
// .entry fake(.param .u32 x)   <- a comment, not an entry
.visible .entry other(.param .u64 a) { ret; }
.visible .entry k(
  .param .u64 k_param_0,   /* pointer */
  .param .u32 k_param_1,
  .param .align 8 .b8 k_param_2[16]
)
{ ret; }
)";
  std::vector<PtxParam> ps;
  Status st = entryParams(ptx, "k", "t.ptx", ps);
  ASSERT_TRUE(st) << st.message();
  ASSERT_EQ(ps.size(), 3u);
  EXPECT_EQ(ps[0].name, "k_param_0");
  EXPECT_EQ(ps[0].size, 8u);
  EXPECT_EQ(ps[1].type, ".u32");
  EXPECT_EQ(ps[1].size, 4u);
  EXPECT_EQ(ps[2].name, "k_param_2");
  EXPECT_EQ(ps[2].size, 16u);
  st = entryParams(ptx, "fake", "t.ptx", ps);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.message(), "t.ptx: no .entry named \"fake\"");
  st = entryParams(".entry bad(.param .u64 a", "bad", "t.ptx", ps);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.message(), "t.ptx:1: unterminated parameter list of .entry bad");
}

int run(std::vector<std::string> args, std::string &out, std::string &err,
        const std::string &lib) {
  args.insert(args.begin(), "qc-ptx-run");
  std::vector<const char *> argv;
  for (auto &a : args)
    argv.push_back(a.c_str());
  std::ostringstream o, e;
  int code = ptxRunMain(int(argv.size()), argv.data(), lib, o, e);
  out = o.str();
  err = e.str();
  return code;
}

TEST(PtxRunMain, InputErrorsBeforeAnyDriver) {
  test::TempDir dir;
  {
    std::ofstream f(dir.file("k.ptx"));
    f << ".version 7.0\n.target sm_80\n.address_size 64\n"
         ".visible .entry k(.param .u64 p, .param .u32 n) { ret; }\n";
    std::ofstream g(dir.file("bad.npy"));
    g << "not numpy";
  }
  std::string out, err;
  const std::string lib = "libqc-no-such-emulator.so";
  EXPECT_EQ(
      run({dir.file("k.ptx"), "--kernel", "k", "--grid", "1", "--block", "1",
           "--arg", "p=in:" + dir.file("bad.npy"), "--arg", "n=u32:1"},
          out, err, lib),
      kExitInput);
  EXPECT_NE(err.find("qc-ptx-run: --arg p: " + dir.file("bad.npy") +
                     ": not a valid .npy file: bad magic"),
            std::string::npos)
      << err;
  EXPECT_EQ(run({dir.file("k.ptx"), "--kernel", "k", "--grid", "1", "--block",
                 "1", "--arg", "n=u32:1"},
                out, err, lib),
            kExitUsage);
  EXPECT_NE(err.find("kernel k has 2 parameters but 1 --arg were given"),
            std::string::npos)
      << err;
  EXPECT_EQ(run({dir.file("k.ptx"), "--kernel", "k", "--grid", "1", "--block",
                 "1", "--arg", "p=u32:1", "--arg", "n=u32:1"},
                out, err, lib),
            kExitUsage);
  EXPECT_NE(err.find("--arg p (parameter 0, p .u64): a u32 is 4 bytes, the "
                     "parameter 8"),
            std::string::npos)
      << err;
  EXPECT_EQ(
      run({dir.file("k.ptx"), "--kernel", "k", "--grid", "1", "--block", "1",
           "--out", dir.path, "--arg", "p=out:u8:4", "--arg", "n=u32:1"},
          out, err, lib),
      kExitNoDriver);
  EXPECT_NE(err.find("libqc-no-such-emulator.so not found"), std::string::npos)
      << err;
}

} // namespace
} // namespace qc::ptxrun

namespace qc::ptxrun {
namespace {

const char *const kExamples[] = {"mma_m16n8k16.ptx", "ldmatrix.ptx",
                                 "ldmatrix_race.ptx"};

#ifdef QC_PTXAS
// The hand-written examples are valid PTX for the real assembler (so what
// the emulator accepts there is what a GPU would run).
TEST(PtxExamples, AssembleWithPtxas) {
  test::TempDir dir;
  for (const char *f : kExamples) {
    for (const char *arch : {"sm_80", "sm_90a"}) {
      std::string cmd = std::string(QC_PTXAS) + " -arch=" + arch + " " +
                        QC_PTX_EXAMPLES + "/" + f + " -o " +
                        dir.file("k.cubin") + " 2>&1";
      EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
    }
  }
}
#endif

#ifdef QC_PTX_RUN
/// Runs the qc-ptx-run binary; returns its exit code and its stderr.
int runTool(const std::string &args, std::string &err,
            const test::TempDir &dir) {
  std::string cmd = std::string(QC_PTX_RUN) + " " + args + " >" +
                    dir.file("stdout.txt") + " 2>" + dir.file("stderr.txt");
  int rc = std::system(cmd.c_str());
  std::ifstream f(dir.file("stderr.txt"));
  std::stringstream ss;
  ss << f.rdbuf();
  err = ss.str();
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/// Expects DIR/NAME.npy to equal the committed EXPECTED.npy bit for bit.
void expectSameNpy(const std::string &got, const std::string &expected) {
  npy::Array a, b;
  Status st = npy::read(got, a);
  ASSERT_TRUE(st) << st.message();
  st = npy::read(expected, b);
  ASSERT_TRUE(st) << st.message();
  EXPECT_EQ(a.dtype, b.dtype) << got;
  EXPECT_EQ(a.shape, b.shape) << got;
  ASSERT_EQ(a.data.size(), b.data.size()) << got;
  size_t n = b.dtype.size;
  for (size_t i = 0; i < a.data.size(); i += n)
    ASSERT_EQ(0, std::memcmp(&a.data[i], &b.data[i], n))
        << got << ": element " << i / n << " differs from " << expected;
}

class PtxExamplesOnEmulator : public ::testing::TestWithParam<const char *> {};

// The examples whose expected outputs were computed from the ISA's tables
// (README.md beside them), on both emulated architectures.
TEST_P(PtxExamplesOnEmulator, MatchTheHandDerivedOutputs) {
  const std::string ex = QC_PTX_EXAMPLES, arch = GetParam();
  test::TempDir dir;
  std::string err;
  ASSERT_EQ(runTool(ex +
                        "/mma_m16n8k16.ptx --kernel mma_m16n8k16_f16_f32 "
                        "--grid 1 --block 32 --arch " +
                        arch + " --out " + dir.path + " --arg a=in:" + ex +
                        "/mma_a.npy --arg b=in:" + ex +
                        "/mma_b.npy --arg c=in:" + ex +
                        "/mma_c.npy --arg d=out:f32:32x4",
                    err, dir),
            kExitOk)
      << err;
  expectSameNpy(dir.file("d.npy"), ex + "/mma_d_expected.npy");
  ASSERT_EQ(runTool(ex +
                        "/ldmatrix.ptx --kernel ldmatrix_x4 --grid 1 --block "
                        "32 --arch " +
                        arch + " --out " + dir.path + " --arg tile=in:" + ex +
                        "/ldmatrix_tile.npy --arg x4=out:u32:32x4",
                    err, dir),
            kExitOk)
      << err;
  expectSameNpy(dir.file("x4.npy"), ex + "/ldmatrix_x4_expected.npy");
  ASSERT_EQ(runTool(ex +
                        "/ldmatrix.ptx --kernel ldmatrix_x2_trans --grid 1 "
                        "--block 32 --arch " +
                        arch + " --out " + dir.path + " --arg tile=in:" + ex +
                        "/ldmatrix_tile.npy --arg x2t=out:u32:32x2",
                    err, dir),
            kExitOk)
      << err;
  expectSameNpy(dir.file("x2t.npy"), ex + "/ldmatrix_x2_trans_expected.npy");
}

INSTANTIATE_TEST_SUITE_P(Arch, PtxExamplesOnEmulator,
                         ::testing::Values("sm_80", "sm_90a"));

// The negative example: a missing bar.sync between warps is caught, and the
// message names the kernel and a PTX line of the race.
TEST(PtxExamplesOnEmulatorNegative, MissingBarrierIsARace) {
  const std::string ex = QC_PTX_EXAMPLES;
  test::TempDir dir;
  std::string err;
  EXPECT_EQ(runTool(ex +
                        "/ldmatrix_race.ptx --kernel ldmatrix_race --grid 1 "
                        "--block 64 --out " +
                        dir.path + " --arg tile=in:" + ex +
                        "/ldmatrix_tile.npy --arg x4=out:u32:32x4",
                    err, dir),
            kExitFailed)
      << err;
  EXPECT_NE(err.find("ldmatrix_race"), std::string::npos) << err;
  EXPECT_TRUE(err.find(":41") != std::string::npos ||
              err.find(":56") != std::string::npos ||
              err.find("line 41") != std::string::npos ||
              err.find("line 56") != std::string::npos)
      << err;
  EXPECT_EQ(dir.list(), (std::vector<std::string>{"stderr.txt", "stdout.txt"}))
      << "no output is written for a failed launch";
}
#endif

} // namespace
} // namespace qc::ptxrun
