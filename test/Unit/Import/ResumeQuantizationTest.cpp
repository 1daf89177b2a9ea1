//===- ResumeQuantizationTest.cpp - Killed runs continue exactly ----------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// A quantization pass with a journal (RewriteJournal.h) records each
// finished layer (decoder block) as it goes. These tests kill a pass with
// SIGKILL right after it recorded N units (in a death-test child process,
// so nothing is flushed or cleaned up), run the same pass again on the same
// journal, and check that the overlay and the IR are byte for byte those
// of an uninterrupted run without a journal: per-layer methods (RTN, NF4)
// and the block-wise ones, whose resumed blocks start from the recorded
// activations (sequential GPTQ, AWQ with its folded norms, AutoRound).
// A journal of a different run, or a damaged one, is refused by name.
//
//===----------------------------------------------------------------------===//

#include "ImportTestUtil.h"

#include "mlir/IR/Diagnostics.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <sstream>

using namespace qc::test;

namespace {

std::string readBytes(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// The test's folder, holding stories260K as a bf16 Hugging Face folder
/// and a calibration trace of it. A death-test child re-runs the test body
/// from the start in a new process (threadsafe style, another pid): it
/// finds the parent's folder through the environment and leaves it as it
/// is, so that parent and child quantize the same files.
struct Fixture {
  std::string dir, folder, trace;
  bool child = false;
  explicit Fixture(const std::string &name) {
    std::string var = "QC_RESUME_TEST_DIR_" + name;
    if (const char *inherited = std::getenv(var.c_str())) {
      dir = inherited;
      child = true;
    } else {
      dir = freshDir("resume", name);
      ::setenv(var.c_str(), dir.c_str(), 1);
    }
    folder = dir + "/model";
    trace = dir + "/trace.safetensors";
    if (child)
      return;
    writeStoriesFolder(folder, qc::DType::BF16, 96 << 10);
    writeStoriesTrace(folder, trace, /*samplesOnly=*/false);
  }
};

/// `pass` ("wq-x{...}") with weights-out and, when not empty, journal.
std::string withPaths(const std::string &pass, const std::string &out,
                      const std::string &journal) {
  std::string p = pass.substr(0, pass.size() - 1) + " weights-out=" + out;
  if (!journal.empty())
    p += " journal=" + journal;
  return p + "}";
}

/// Runs the pipeline on a fresh module of `folder`; returns the printed IR
/// with the overlay's path blanked (it differs between runs) and fills
/// `diagnostics` with what the passes said. `ok` says whether it
/// succeeded.
std::string run(const std::string &folder, const std::string &pipeline,
                bool &ok, std::string *diagnostics = nullptr) {
  Model m;
  open(folder, m);
  std::string said;
  mlir::ScopedDiagnosticHandler handler(&context(), [&](mlir::Diagnostic &d) {
    said += d.str() + "\n";
    return mlir::success();
  });
  mlir::PassManager pm(&context());
  EXPECT_TRUE(
      mlir::succeeded(mlir::parsePassPipeline(pipeline, pm, llvm::errs())));
  ok = mlir::succeeded(pm.run(*m.module));
  if (diagnostics)
    *diagnostics = said;
  (*m.module)->removeAttr("llm.weights_overlay");
  std::string ir;
  llvm::raw_string_ostream os(ir);
  m.module->print(os);
  return ir;
}

/// Units journal.json in `journal` lists.
size_t journalUnits(const std::string &journal) {
  auto buffer = llvm::MemoryBuffer::getFile(journal + "/journal.json");
  if (!buffer)
    return 0;
  llvm::Expected<llvm::json::Value> v =
      llvm::json::parse((*buffer)->getBuffer());
  if (!v) {
    llvm::consumeError(v.takeError());
    return 0;
  }
  const llvm::json::Array *units = v->getAsObject()->getArray("units");
  return units ? units->size() : 0;
}

/// Kills `pass` with SIGKILL once its journal holds `units` units (in a
/// child process), resumes it, and checks the result against an
/// uninterrupted run without a journal.
void killResumeAndCompare(const Fixture &f, const std::string &pass,
                          const std::string &name, size_t units) {
  const std::string journal = f.dir + "/" + name + ".journal";
  const std::string killedOut = f.dir + "/" + name + ".resumed.safetensors";
  EXPECT_EXIT(
      {
        ::setenv("QC_TEST_KILL_AFTER_UNITS", std::to_string(units).c_str(), 1);
        bool ok = false;
        run(f.folder, withPaths(pass, killedOut, journal), ok);
        std::exit(ok ? 0 : 1); // not reached: the journal kills the process
      },
      testing::KilledBySignal(SIGKILL), "");
  if (f.child)
    return;
  // The killed run wrote no overlay and left `units` finished units.
  EXPECT_FALSE(std::filesystem::exists(killedOut)) << pass;
  EXPECT_EQ(journalUnits(journal), units) << pass;

  bool ok = false;
  std::string resumedIR =
      run(f.folder, withPaths(pass, killedOut, journal), ok);
  ASSERT_TRUE(ok) << pass;
  const std::string plainOut = f.dir + "/" + name + ".plain.safetensors";
  std::string plainIR = run(f.folder, withPaths(pass, plainOut, ""), ok);
  ASSERT_TRUE(ok) << pass;
  std::string plain = readBytes(plainOut);
  ASSERT_FALSE(plain.empty());
  EXPECT_EQ(readBytes(killedOut), plain) << pass;
  EXPECT_EQ(resumedIR, plainIR) << pass;
}

} // namespace

// Per-layer methods: one unit per layer; the killed run had finished 3 of
// stories260K's 35 linears.
TEST(ResumeQuantization, KilledPerLayerRunsResumeToTheSameOverlay) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Fixture f("perlayer");
  killResumeAndCompare(f, "wq-rtn{bits=4 group-size=32 sym=false}", "rtn", 3);
  killResumeAndCompare(f, "wq-nf4{block-size=32}", "nf4", 7);
  killResumeAndCompare(f,
                       "wq-gptq{bits=3 group-size=32 sequential=false "
                       "trace=" +
                           f.trace + "}",
                       "gptq-layers", 10);
}

// Block-wise methods: one unit per decoder block (stories260K has 5); the
// resumed blocks start from the recorded activations and AWQ's folded
// norms.
TEST(ResumeQuantization, KilledBlockwiseRunsResumeToTheSameOverlay) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  Fixture f("blockwise");
  killResumeAndCompare(f,
                       "wq-gptq{bits=4 group-size=32 sym=false "
                       "act-order=true trace=" +
                           f.trace + "}",
                       "gptq", 2);
  killResumeAndCompare(
      f, "wq-awq{bits=4 group-size=32 sym=false trace=" + f.trace + "}", "awq",
      1);
  killResumeAndCompare(f,
                       "wq-autoround{bits=3 group-size=32 sym=false "
                       "iters=4 trace=" +
                           f.trace + "}",
                       "autoround", 4);
}

// A complete journal restores every layer (nothing is quantized again); a
// journal of the same pass with other options, or of other inputs, is
// refused naming the difference; a damaged one names its file.
TEST(ResumeQuantization, AJournalOfAnotherRunOrADamagedOneIsRefused) {
  Fixture f("refused");
  const std::string journal = f.dir + "/journal";
  const std::string rtn = "wq-rtn{bits=4 group-size=32}";
  bool ok = false;
  std::string first =
      run(f.folder, withPaths(rtn, f.dir + "/a.safetensors", journal), ok);
  ASSERT_TRUE(ok);
  EXPECT_EQ(journalUnits(journal), 35u);
  std::string again =
      run(f.folder, withPaths(rtn, f.dir + "/b.safetensors", journal), ok);
  ASSERT_TRUE(ok);
  EXPECT_EQ(again, first);
  EXPECT_EQ(readBytes(f.dir + "/b.safetensors"),
            readBytes(f.dir + "/a.safetensors"));

  std::string said;
  run(f.folder,
      withPaths("wq-rtn{bits=3 group-size=32}", f.dir + "/c.safetensors",
                journal),
      ok, &said);
  EXPECT_FALSE(ok);
  EXPECT_NE(said.find("holds the journal of a different run"),
            std::string::npos)
      << said;
  EXPECT_NE(said.find("bits=3"), std::string::npos) << said;
  EXPECT_FALSE(std::filesystem::exists(f.dir + "/c.safetensors"));

  // Another pass on the same journal.
  run(f.folder,
      withPaths("wq-hqq{bits=4 group-size=32}", f.dir + "/c.safetensors",
                journal),
      ok, &said);
  EXPECT_FALSE(ok);
  EXPECT_NE(said.find("different run"), std::string::npos) << said;

  // A unit file gone missing.
  std::filesystem::remove(journal + "/unit-00002.safetensors");
  run(f.folder, withPaths(rtn, f.dir + "/c.safetensors", journal), ok, &said);
  EXPECT_FALSE(ok);
  EXPECT_NE(said.find("unit-00002.safetensors"), std::string::npos) << said;
  EXPECT_NE(said.find("to start over"), std::string::npos) << said;

  // An index that is not JSON.
  {
    std::ofstream out(journal + "/journal.json", std::ios::trunc);
    out << "{\"format\": \"qc-rewrite-journal\", \"version\": ";
  }
  run(f.folder, withPaths(rtn, f.dir + "/c.safetensors", journal), ok, &said);
  EXPECT_FALSE(ok);
  EXPECT_NE(said.find("journal.json: not JSON"), std::string::npos) << said;

  // A version from the future.
  {
    std::ofstream out(journal + "/journal.json", std::ios::trunc);
    out << "{\"format\": \"qc-rewrite-journal\", \"version\": 99, "
           "\"identity\": \"\", \"units\": []}";
  }
  run(f.folder, withPaths(rtn, f.dir + "/c.safetensors", journal), ok, &said);
  EXPECT_FALSE(ok);
  EXPECT_NE(said.find("journal version 99"), std::string::npos) << said;
  EXPECT_FALSE(std::filesystem::exists(f.dir + "/c.safetensors"));
}
