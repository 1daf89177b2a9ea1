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
// prefix gives, drawn from logits within 1e-4 relative (the decode entry
// reads the tied Q8_0 classifier in 8-bit blocks, the forward function in
// fp32: the same values summed in another order). Labelled `slow`:
// compiling both entry points of a 30-layer model takes most of a minute.
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

const std::string kGguf =
    std::string(QC_SHARED_DIR) +
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
  // The GGUF's tied Q8_0 embedding: the decode entry reads the classifier
  // in 8-bit blocks while the forward function compared against keeps fp32.
  EXPECT_TRUE(exe->decodeHeadPacked());
  int64_t vocab = exe->vocabSize();

  // Recomputing the prefix for each token yields, for the token after
  // position p, row p of the forward pass over the whole final sequence
  // (attention is causal); so one forward pass over prompt + generated
  // tokens gives every logits row the recomputing path would sample from,
  // at a fraction of its cost, and replaying the seeded sampler over those
  // rows gives the tokens it would draw.
  for (float temperature : {0.0f, 0.8f}) {
    std::vector<int> toks = prompt;
    std::vector<float> trace;
    qc::Sampler sampler(vocab, temperature, 0.9f, 11);
    mlir::qc::GenerateOptions opts;
    opts.logitsTrace = &trace;
    mlir::qc::GenerationStats stats;
    s = mlir::qc::generate(*exe, toks, 16, sampler, {},
                           weights.config.maxSeqLen, &stats, opts);
    ASSERT_TRUE(s) << s.message();
    ASSERT_TRUE(stats.kvCache);
    ASSERT_EQ(stats.generated, 16);
    ASSERT_EQ(trace.size(), static_cast<size_t>(16 * vocab));

    std::vector<int32_t> ids(toks.begin(), toks.end() - 1);
    std::vector<float> full(ids.size() * vocab);
    s = exe->forward(ids.data(), static_cast<int64_t>(ids.size()), full.data());
    ASSERT_TRUE(s) << s.message();
    qc::Sampler replay(vocab, temperature, 0.9f, 11);
    for (int64_t i = 0; i < 16; ++i) {
      const float *ref = full.data() + (prompt.size() - 1 + i) * vocab;
      const float *got = trace.data() + i * vocab;
      double worst = 0.0, scale = 0.0;
      for (int64_t v = 0; v < vocab; ++v) {
        worst =
            std::max(worst, std::fabs(static_cast<double>(got[v]) - ref[v]));
        scale = std::max(scale, std::fabs(static_cast<double>(ref[v])));
      }
      EXPECT_LT(worst, 1e-4 * scale)
          << "temperature " << temperature << ", generated token " << i;
      EXPECT_EQ(replay.sample(ref), toks[prompt.size() + i])
          << "temperature " << temperature << ", generated token " << i;
    }
  }
}

} // namespace
