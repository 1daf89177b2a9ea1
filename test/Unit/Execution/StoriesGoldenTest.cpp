//===- StoriesGoldenTest.cpp - The CPU path against stories260K goldens ---===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// End-to-end checks of import -> llm IR -> linalg -> LLVM JIT on the real
// bundled model, against ../shared/models/stories260K/reference_stories260K
// .json: position-0 logits (1e-4 relative), 200 greedy tokens (exact), and
// perplexity of the first 16,384 validation tokens (0.1 %). The same checks
// run again on a Hugging Face checkpoint exported from the llama2.c model
// (rotate_half RoPE layout, permuted q/k rows) and re-imported.
//
//===----------------------------------------------------------------------===//

#include "qc/Execution/CpuExecutable.h"
#include "qc/Execution/Evaluate.h"
#include "qc/Import/LoadModel.h"
#include "qc/runtime/HFCheckpoint.h"
#include "qc/runtime/Json.h"
#include "qc/runtime/Llama2C.h"
#include "qc/runtime/Sampler.h"
#include "qc/runtime/TextDataset.h"
#include "qc/runtime/Tokenizer.h"

#include "mlir/IR/MLIRContext.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>

namespace {

const std::string kShared = QC_SHARED_DIR;
const std::string kModel = kShared + "/models/stories260K/stories260K.bin";
const std::string kTokenizer = kShared + "/models/stories260K/tok512.bin";
const std::string kReference =
    kShared + "/models/stories260K/reference_stories260K.json";
const std::string kValid = kShared + "/data/tinystories/valid_head.txt";

/// The reference JSON, parsed once.
const qc::json::Value &reference() {
  static qc::json::Value value = [] {
    std::string text;
    qc::Status s = qc::readTextFile(kReference, text);
    EXPECT_TRUE(s) << s.message();
    qc::json::Value v;
    qc::Status p = qc::json::parse(text, v);
    EXPECT_TRUE(p) << p.message();
    return v;
  }();
  return value;
}

/// Compiles the model at `path` (file, HF folder or .mlir).
std::unique_ptr<mlir::qc::CpuExecutable> compile(mlir::MLIRContext &ctx,
                                                 const std::string &path,
                                                 qc::ModelWeights &weights) {
  mlir::OwningOpRef<mlir::ModuleOp> module;
  qc::Status s = mlir::qc::openModel(ctx, path, module, weights);
  EXPECT_TRUE(s) << s.message();
  if (!s)
    return nullptr;
  std::unique_ptr<mlir::qc::CpuExecutable> exe;
  s = mlir::qc::CpuExecutable::compile(*module, weights, exe);
  EXPECT_TRUE(s) << s.message();
  return exe;
}

/// Runs the three golden checks on a compiled model.
void checkGoldens(const mlir::qc::CpuExecutable &exe) {
  const qc::json::Value &ref = reference();
  // Position-0 logits from BOS alone.
  const qc::json::Value *pos0 = ref.find("logits_pos0_full");
  ASSERT_NE(pos0, nullptr);
  ASSERT_EQ(pos0->asArray().size(), 512u);
  std::vector<float> logits(512);
  int32_t bos = 1;
  ASSERT_TRUE(exe.forward(&bos, 1, logits.data()));
  double maxAbsRef = 0.0;
  for (const auto &v : pos0->asArray())
    maxAbsRef = std::max(maxAbsRef, std::fabs(v.asDouble()));
  for (size_t i = 0; i < 512; ++i) {
    double expected = pos0->asArray()[i].asDouble();
    EXPECT_NEAR(logits[i], expected, 1e-4 * maxAbsRef) << "logit " << i;
  }

  // Greedy generation from BOS.
  const qc::json::Value *greedy = ref.find("greedy_from_bos_200");
  ASSERT_NE(greedy, nullptr);
  std::vector<int> expectedIds;
  for (const auto &v : greedy->asArray())
    expectedIds.push_back(static_cast<int>(v.asInt64()));
  std::vector<int> ids = {1};
  qc::Sampler sampler(512, 0.0f, 0.9f, 1);
  ASSERT_TRUE(
      mlir::qc::generate(exe, ids, static_cast<int64_t>(expectedIds.size()) - 1,
                         sampler, /*stopTokens=*/{}, /*maxContext=*/512));
  EXPECT_EQ(ids, expectedIds);

  // Perplexity on the first 16,384 validation tokens.
  qc::Tokenizer tok;
  ASSERT_TRUE(qc::Tokenizer::load(kTokenizer, 512, tok));
  std::vector<int> tokens;
  ASSERT_TRUE(qc::loadPerplexityTokens(kValid, tok, tokens));
  auto windows = qc::makeWindows(tokens, 16384);
  mlir::qc::PerplexityResult ppl;
  ASSERT_TRUE(mlir::qc::evaluatePerplexity(exe, windows, 2, false, ppl));
  EXPECT_EQ(ppl.tokens, 16384);
  double expectedPpl =
      ref.find("ppl_tinystories_valid_head")->find("ppl")->asDouble();
  EXPECT_NEAR(ppl.perplexity, expectedPpl, 1e-3 * expectedPpl);
}

TEST(StoriesGolden, Llama2CPath) {
  mlir::MLIRContext ctx;
  qc::ModelWeights weights;
  auto exe = compile(ctx, kModel, weights);
  ASSERT_TRUE(exe);
  checkGoldens(*exe);
}

TEST(StoriesGolden, HuggingFaceExportReimport) {
  qc::ModelWeights original;
  ASSERT_TRUE(qc::loadLlama2C(kModel, original));
  std::string dir =
      testing::TempDir() + "/qc_stories_hf_" + std::to_string(getpid());
  std::filesystem::remove_all(dir);
  qc::Status s = qc::writeHFCheckpoint(dir, original, qc::DType::F32);
  ASSERT_TRUE(s) << s.message();
  mlir::MLIRContext ctx;
  qc::ModelWeights weights;
  auto exe = compile(ctx, dir, weights);
  ASSERT_TRUE(exe);
  EXPECT_EQ(weights.config.ropeLayout, qc::RopeLayout::HalfSplit);
  checkGoldens(*exe);
  std::filesystem::remove_all(dir);
}

TEST(StoriesGolden, ForwardRejectsOutOfVocabularyTokens) {
  mlir::MLIRContext ctx;
  qc::ModelWeights weights;
  auto exe = compile(ctx, kModel, weights);
  ASSERT_TRUE(exe);
  std::vector<float> logits(2 * 512);
  int32_t ids[2] = {1, 512};
  qc::Status s = exe->forward(ids, 2, logits.data());
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("token 512 at position 1"), std::string::npos)
      << s.message();
}

} // namespace
