//===- ImportTestUtil.h - Import/export test fixtures -----------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Helpers the checkpoint import/export GoogleTests share: per-process
// scratch folders, opening a model, running a quantization pipeline on it
// (and reloading its overlay), reading every wq.linear back dequantized, and
// stories260K as a Hugging Face folder with a calibration trace of it.
//
//===----------------------------------------------------------------------===//

#ifndef QC_TEST_UNIT_IMPORT_IMPORTTESTUTIL_H
#define QC_TEST_UNIT_IMPORT_IMPORTTESTUTIL_H

#include "WQ/IR/WQOps.h"
#include "qc/Calibration/Calibrate.h"
#include "qc/Calibration/Trace.h"
#include "qc/Import/LoadModel.h"
#include "qc/Import/QuantizedCheckpoint.h"
#include "qc/InitAllPasses.h"
#include "qc/Quantization/Algorithms/Packing.h"
#include "qc/runtime/HFCheckpoint.h"
#include "qc/runtime/Llama2C.h"
#include "qc/runtime/TextDataset.h"
#include "qc/runtime/Tokenizer.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "llvm/Support/raw_ostream.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace qc::test {

/// A fresh, empty directory for one test; `prefix` names the suite and the
/// pid keeps test processes that ctest runs in parallel apart.
inline std::string freshDir(const std::string &prefix,
                            const std::string &name) {
  std::string dir = testing::TempDir() + "/" + prefix + "_" +
                    std::to_string(::getpid()) + "_" + name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

/// A model opened from disk plus its weights.
struct Model {
  mlir::OwningOpRef<mlir::ModuleOp> module;
  qc::ModelWeights weights;
};

/// One context for the test process, with qc's passes registered.
inline mlir::MLIRContext &context() {
  static mlir::MLIRContext *ctx = [] {
    mlir::qc::registerAllQCPasses();
    return new mlir::MLIRContext();
  }();
  return *ctx;
}

inline void open(const std::string &path, Model &m) {
  qc::Status s = mlir::qc::openModel(context(), path, m.module, m.weights);
  ASSERT_TRUE(s) << s.message();
}

/// Runs `pipeline` on `m` and reloads its weights (module + overlay).
inline void runPasses(Model &m, const std::string &pipeline) {
  mlir::PassManager pm(&context());
  ASSERT_TRUE(
      mlir::succeeded(mlir::parsePassPipeline(pipeline, pm, llvm::errs())));
  ASSERT_TRUE(mlir::succeeded(pm.run(*m.module))) << pipeline;
  m.weights = qc::ModelWeights();
  qc::Status s = mlir::qc::loadModuleWeights(*m.module, m.weights);
  ASSERT_TRUE(s) << s.message();
}

/// Dequantized [N, K] weight of every wq.linear, by layer name.
inline std::map<std::string, std::vector<float>>
dequantizedLayers(const Model &m) {
  std::map<std::string, std::vector<float>> out;
  m.module.get().walk([&](mlir::qc::wq::LinearOp op) {
    std::string layer;
    qc::quant::QuantizedWeight q;
    qc::Status s = mlir::qc::readQuantizedLayer(op, m.weights, layer, q);
    EXPECT_TRUE(s) << s.message();
    q.dequantize(out[layer]);
  });
  return out;
}

/// stories260K written as a Hugging Face folder `dir` in `dtype`, in shards
/// of at most `shardBytes` (0 = one file).
inline std::string writeStoriesFolder(const std::string &dir, qc::DType dtype,
                                      uint64_t shardBytes) {
  qc::ModelWeights w;
  qc::Status s = qc::loadLlama2C(
      std::string(QC_SHARED_DIR) + "/models/stories260K/stories260K.bin", w);
  EXPECT_TRUE(s) << s.message();
  s = qc::writeHFCheckpoint(dir, w, dtype, shardBytes);
  EXPECT_TRUE(s) << s.message();
  return dir;
}

/// A calibration trace of the stories260K model at `folder` written to
/// `path` (256-token windows of train_head.txt, 8 sampled), with per-layer
/// statistics or the sampled sequences only.
inline std::string writeStoriesTrace(const std::string &folder,
                                     const std::string &path,
                                     bool samplesOnly) {
  const std::string shared = QC_SHARED_DIR;
  Model m;
  open(folder, m);
  qc::Tokenizer tok;
  EXPECT_TRUE(
      qc::Tokenizer::load(shared + "/models/stories260K/tok512.bin", 512, tok));
  std::vector<int> calib;
  EXPECT_TRUE(qc::loadPerplexityTokens(
      shared + "/data/tinystories/train_head.txt", tok, calib));
  mlir::qc::CalibrationOptions copts;
  copts.windowLen = 255;
  copts.maxTokens = 256 * 8;
  copts.sampleSequences = 8;
  copts.samplesOnly = samplesOnly;
  qc::CalibrationTrace trace;
  qc::Status s =
      mlir::qc::collectTrace(*m.module, m.weights, calib, copts, trace);
  EXPECT_TRUE(s) << s.message();
  EXPECT_EQ(trace.entries.empty(), samplesOnly);
  EXPECT_EQ(trace.sampleSequences, 8);
  s = qc::writeTrace(trace, path);
  EXPECT_TRUE(s) << s.message();
  return path;
}

} // namespace qc::test

#endif // QC_TEST_UNIT_IMPORT_IMPORTTESTUTIL_H
