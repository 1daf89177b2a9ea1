//===- KVCacheSmolLM2Test.cpp - KV-cached decoding of SmolLM2-135M --------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// The KV-cached decode entry point on a real current model (the bundled
// SmolLM2-135M GGUF: GQA 9:3, half-split RoPE with theta 1e5, tied head,
// Q4_1 linears dequantized at import): 16 tokens after a short prompt,
// greedy and sampled with a seed, must be the tokens that recomputing the
// prefix gives, drawn from logits within 1e-4 relative. Labelled `slow`:
// the recomputing side runs the full-window forward pass per token.
//
//===----------------------------------------------------------------------===//

#include "qc/Execution/CpuExecutable.h"
#include "qc/Execution/Evaluate.h"
#include "qc/Import/LoadModel.h"
#include "qc/Import/ModelTokenizer.h"
#include "qc/runtime/Sampler.h"
#include "qc/runtime/TextTokenizer.h"

#include "mlir/IR/MLIRContext.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

namespace {

const std::string kGguf = std::string(QC_SHARED_DIR) +
                          "/models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf";

TEST(SmolLM2KVCache, SameTokensAndLogitsAsRecomputing) {
  mlir::MLIRContext ctx;
  mlir::OwningOpRef<mlir::ModuleOp> module;
  qc::ModelWeights weights;
  qc::Status s = mlir::qc::openModel(ctx, kGguf, module, weights);
  ASSERT_TRUE(s) << s.message();
  std::unique_ptr<qc::TextTokenizer> tok;
  s = mlir::qc::openModelTokenizer(*module, kGguf, "", weights.config.vocabSize,
                                   tok);
  ASSERT_TRUE(s) << s.message();
  std::vector<int> prompt;
  ASSERT_TRUE(tok->encode("Once upon a time, a small robot", true, prompt));
  ASSERT_GE(prompt.size(), 5u);
  mlir::qc::CpuCompileOptions options;
  options.decode = true;
  std::unique_ptr<mlir::qc::CpuExecutable> exe;
  s = mlir::qc::CpuExecutable::compile(*module, weights, exe, options);
  ASSERT_TRUE(s) << s.message();
  int64_t vocab = exe->vocabSize();

  for (float temperature : {0.0f, 0.8f}) {
    std::vector<int> toks[2];
    std::vector<float> traces[2];
    for (int path = 0; path < 2; ++path) {
      toks[path] = prompt;
      qc::Sampler sampler(vocab, temperature, 0.9f, 11);
      mlir::qc::GenerateOptions opts;
      opts.kvCache = path == 0;
      opts.logitsTrace = &traces[path];
      mlir::qc::GenerationStats stats;
      s = mlir::qc::generate(*exe, toks[path], 16, sampler, {},
                             weights.config.maxSeqLen, &stats, opts);
      ASSERT_TRUE(s) << s.message();
      EXPECT_EQ(stats.generated, 16);
      EXPECT_EQ(stats.kvCache, path == 0);
    }
    EXPECT_EQ(toks[0], toks[1]) << "temperature " << temperature;
    ASSERT_EQ(traces[0].size(), traces[1].size());
    for (size_t row = 0; row * vocab < traces[0].size(); ++row) {
      double worst = 0.0, scale = 0.0;
      for (int64_t v = 0; v < vocab; ++v) {
        double a = traces[0][row * vocab + v], b = traces[1][row * vocab + v];
        worst = std::max(worst, std::fabs(a - b));
        scale = std::max(scale, std::fabs(b));
      }
      EXPECT_LT(worst, 1e-4 * scale)
          << "temperature " << temperature << ", generated token " << row;
    }
  }
}

} // namespace
