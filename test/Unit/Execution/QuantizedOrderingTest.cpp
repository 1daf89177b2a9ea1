//===- QuantizedOrderingTest.cpp - Methods beat RTN on the real model -----===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// The quality orderings as tests: on stories260K, calibrated on
// train_head.txt and evaluated on held-out valid_head.txt, GPTQ, AWQ and
// AutoRound must each beat RTN in perplexity at W4 g32 and W3 g32; and
// AWQ's folding alone (no quantization) must leave the float function
// unchanged. Everything runs through the real
// pipeline: quant-calibrate's collectTrace, the wq-* passes by name, the
// JIT. Evaluation uses the first 32,704 validation tokens (64 windows) to
// keep the test at seconds; the README table uses the whole file.
//
//===----------------------------------------------------------------------===//

#include "qc/Calibration/Calibrate.h"
#include "qc/Execution/CpuExecutable.h"
#include "qc/Execution/Evaluate.h"
#include "qc/Import/LoadModel.h"
#include "qc/InitAllPasses.h"
#include "qc/runtime/TextDataset.h"
#include "qc/runtime/Tokenizer.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "llvm/Support/raw_ostream.h"

#include <gtest/gtest.h>

#include <cstdlib>

namespace {

const std::string kShared = QC_SHARED_DIR;
const std::string kModel = kShared + "/models/stories260K/stories260K.bin";
const std::string kTokenizer = kShared + "/models/stories260K/tok512.bin";

/// A private folder for this process's files: tests of other builds may run
/// at the same time on the same machine and must not share paths.
const std::string &scratchDir() {
  static const std::string dir = [] {
    std::string t = testing::TempDir() + "/qc_ordering_XXXXXX";
    return std::string(mkdtemp(t.data()) ? t.c_str()
                                         : testing::TempDir().c_str());
  }();
  return dir;
}

/// Shared state: the float model, its trace and the validation windows.
struct Fixture {
  mlir::MLIRContext ctx;
  mlir::OwningOpRef<mlir::ModuleOp> model;
  qc::ModelWeights weights;
  std::string tracePath;
  std::vector<std::vector<int>> windows;
};

Fixture &fixture() {
  static Fixture *f = [] {
    auto *f = new Fixture();
    mlir::qc::registerAllQCPasses();
    qc::Status s = mlir::qc::openModel(f->ctx, kModel, f->model, f->weights);
    EXPECT_TRUE(s) << s.message();
    qc::Tokenizer tok;
    EXPECT_TRUE(qc::Tokenizer::load(kTokenizer, 512, tok));
    std::vector<int> calib, valid;
    EXPECT_TRUE(qc::loadPerplexityTokens(
        kShared + "/data/tinystories/train_head.txt", tok, calib));
    EXPECT_TRUE(qc::loadPerplexityTokens(
        kShared + "/data/tinystories/valid_head.txt", tok, valid));
    f->windows = qc::makeWindows(valid, 32704);
    qc::CalibrationTrace trace;
    mlir::qc::CalibrationOptions opts;
    // 32 whole windows (16,384 tokens) for the block-wise methods keep the
    // test at seconds; the README table uses the default 128.
    opts.sampleSequences = 32;
    s = mlir::qc::collectTrace(*f->model, f->weights, calib, opts, trace);
    EXPECT_TRUE(s) << s.message();
    f->tracePath = scratchDir() + "/qc_ordering.trace";
    s = qc::writeTrace(trace, f->tracePath);
    EXPECT_TRUE(s) << s.message();
    return f;
  }();
  return *f;
}

/// Perplexity of the model after running `pipeline` on a clone of it.
double perplexityAfter(const std::string &pipeline) {
  Fixture &f = fixture();
  mlir::OwningOpRef<mlir::ModuleOp> module(
      mlir::cast<mlir::ModuleOp>(f.model->getOperation()->clone()));
  if (!pipeline.empty()) {
    mlir::PassManager pm(&f.ctx);
    EXPECT_TRUE(
        mlir::succeeded(mlir::parsePassPipeline(pipeline, pm, llvm::errs())));
    EXPECT_TRUE(mlir::succeeded(pm.run(*module))) << pipeline;
  }
  // The passes wrote an overlay; load everything as quant-run would.
  qc::ModelWeights weights;
  qc::Status loaded = mlir::qc::loadModuleWeights(*module, weights);
  EXPECT_TRUE(loaded) << loaded.message();
  std::unique_ptr<mlir::qc::CpuExecutable> exe;
  qc::Status s = mlir::qc::CpuExecutable::compile(*module, weights, exe);
  EXPECT_TRUE(s) << s.message();
  if (!s)
    return 1e9;
  mlir::qc::PerplexityResult r;
  EXPECT_TRUE(mlir::qc::evaluatePerplexity(*exe, f.windows, 2, false, r));
  return r.perplexity;
}

std::string pass(const std::string &name, const std::string &options,
                 const std::string &tag) {
  return name + "{" + options + " layout=rows weights-out=" + scratchDir() +
         "/qc_ordering_" + tag + ".safetensors}";
}

TEST(QuantizedOrdering, GPTQBeatsRTNAtW4G32AndW3G32) {
  const std::string trace = " trace=" + fixture().tracePath;
  double fp = perplexityAfter("");
  for (const char *bits : {"4", "3"}) {
    std::string cfg = std::string("bits=") + bits + " group-size=32 sym=false";
    double rtn =
        perplexityAfter(pass("wq-rtn", cfg, std::string("rtn") + bits));
    double gptq = perplexityAfter(
        pass("wq-gptq", cfg + trace, std::string("gptq") + bits));
    double gptqAct =
        perplexityAfter(pass("wq-gptq", cfg + trace + " act-order=true",
                             std::string("gptqact") + bits));
    EXPECT_GT(rtn, fp) << "W" << bits;
    EXPECT_LT(gptq, rtn) << "W" << bits << " g32: GPTQ " << gptq << " vs RTN "
                         << rtn;
    EXPECT_LT(gptqAct, rtn) << "W" << bits << " g32: GPTQ act-order " << gptqAct
                            << " vs RTN " << rtn;
  }
}

TEST(QuantizedOrdering, AWQAndAutoRoundBeatRTNAtW4G32AndW3G32) {
  const std::string trace = " trace=" + fixture().tracePath;
  for (const char *bits : {"4", "3"}) {
    std::string cfg = std::string("bits=") + bits + " group-size=32 sym=false";
    double rtn =
        perplexityAfter(pass("wq-rtn", cfg, std::string("rtn") + bits));
    double awq =
        perplexityAfter(pass("wq-awq", cfg + trace, std::string("awq") + bits));
    double ar = perplexityAfter(
        pass("wq-autoround", cfg + trace, std::string("autoround") + bits));
    EXPECT_LT(awq, rtn) << "W" << bits << " g32: AWQ " << awq << " vs RTN "
                        << rtn;
    EXPECT_LT(ar, rtn) << "W" << bits << " g32: AutoRound " << ar << " vs RTN "
                       << rtn;
  }
}

// AWQ's equivalence transform on its own: scales searched on the real
// calibration data and folded into the norms and linears (no clipping, no
// quantization) leave perplexity unchanged up to fp32 rounding, while the
// norm weights really did change.
TEST(QuantizedOrdering, AWQFoldingAloneKeepsTheFloatFunction) {
  const std::string trace = " trace=" + fixture().tracePath;
  double fp = perplexityAfter("");
  double folded = perplexityAfter(
      pass("wq-awq", "bits=4 group-size=32 quantize=false clip=false" + trace,
           "awqfold"));
  EXPECT_NEAR(folded, fp, 1e-4 * fp);
  qc::ModelWeights overlay;
  qc::Status s = qc::loadSafetensorsOverlay(
      scratchDir() + "/qc_ordering_awqfold.safetensors", overlay);
  ASSERT_TRUE(s) << s.message();
  const qc::HostTensor *norm =
      overlay.find("model.layers.0.input_layernorm.weight");
  const qc::HostTensor *orig =
      fixture().weights.find("model.layers.0.input_layernorm.weight");
  ASSERT_NE(norm, nullptr);
  ASSERT_NE(orig, nullptr);
  EXPECT_NE(norm->data, orig->data);
}

} // namespace
