//===- SmolLM2GoldenTest.cpp - The CPU path against SmolLM2-135M goldens --===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// A real, current model end to end: the bundled SmolLM2-135M-Instruct GGUF
// (Q4_1 linears, Q8_0 embeddings, llama.cpp's Q/K row permutation, tied
// head, GQA 9:3) imported, lowered and JIT-compiled, against
// ../shared/models/smollm2-135m/goldens.json, which transformers computed in
// float32 on the same dequantized weights: the prompt's logits (top-20 ids
// identical, values within 1e-3 of the largest), the residual stream after
// layers 0 and 14 and the final norm (L2 norms within 1e-4 relative), the
// 48-token greedy continuation (identical) and, in the `slow` tests, the
// perplexity of the first 16,384 tokens of valid_head.txt under the
// goldens' protocol (0.1 %). The same checks run on the float32 Hugging
// Face folder that --export-hf writes from the GGUF.
//
//===----------------------------------------------------------------------===//

#include "qc/Execution/CpuExecutable.h"
#include "qc/Execution/Evaluate.h"
#include "qc/Import/LoadModel.h"
#include "qc/Import/ModelBuilder.h"
#include "qc/runtime/GgufModel.h"
#include "qc/runtime/HFCheckpoint.h"
#include "qc/runtime/Json.h"
#include "qc/runtime/Sampler.h"
#include "qc/runtime/TextDataset.h"
#include "qc/runtime/TextTokenizer.h"

#include "mlir/IR/MLIRContext.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <numeric>

namespace {

const std::string kShared = QC_SHARED_DIR;
const std::string kDir = kShared + "/models/smollm2-135m";
const std::string kGguf = kDir + "/SmolLM2-135M-Instruct.Q4_1.gguf";
const std::string kValid = kShared + "/data/tinystories/valid_head.txt";

const qc::json::Value &goldens() {
  static qc::json::Value value = [] {
    std::string text;
    qc::Status s = qc::readTextFile(kDir + "/goldens.json", text);
    EXPECT_TRUE(s) << s.message();
    qc::json::Value v;
    qc::Status p = qc::json::parse(text, v);
    EXPECT_TRUE(p) << p.message();
    return v;
  }();
  return value;
}

std::vector<int> ids(const qc::json::Value &array) {
  std::vector<int> out;
  for (const auto &v : array.asArray())
    out.push_back(static_cast<int>(v.asInt64()));
  return out;
}

/// The model at `path` compiled with its hidden states as extra results.
struct Compiled {
  qc::ModelWeights weights;
  std::unique_ptr<mlir::qc::CpuExecutable> exe;
};

void compileModel(const std::string &path, Compiled &out) {
  mlir::MLIRContext ctx;
  mlir::OwningOpRef<mlir::ModuleOp> plain;
  qc::Status s = mlir::qc::openModel(ctx, path, plain, out.weights);
  ASSERT_TRUE(s) << s.message();
  mlir::qc::CheckpointRef ref;
  ASSERT_TRUE(mlir::qc::getCheckpointRef(*plain, ref));
  mlir::qc::ModelBuildOptions options;
  options.hiddenStates = true;
  auto module =
      mlir::qc::buildModelModule(ctx, out.weights.config, ref, options);
  s = mlir::qc::CpuExecutable::compile(*module, out.weights, out.exe);
  ASSERT_TRUE(s) << s.message();
}

/// Prompt logits, hidden states and the greedy continuation.
void checkForwardGoldens(const Compiled &m) {
  const qc::json::Value &g = goldens();
  const qc::json::Value &lg = *g.find("logits");
  std::vector<int> prompt = ids(*lg.find("prompt_ids"));
  const int64_t T = static_cast<int64_t>(prompt.size());
  const int64_t V = m.weights.config.vocabSize, D = m.weights.config.dim;
  const int64_t L = m.weights.config.nLayers;
  ASSERT_EQ(V, 49152);
  ASSERT_EQ(m.exe->numOutputs(), static_cast<size_t>(L + 2));
  std::vector<std::vector<float>> outs(L + 2);
  std::vector<float *> ptrs;
  for (int64_t i = 0; i < L + 2; ++i) {
    outs[i].resize(T * (i == 0 ? V : D));
    ptrs.push_back(outs[i].data());
  }
  std::vector<int32_t> tokens(prompt.begin(), prompt.end());
  qc::Status s = m.exe->forwardAll(tokens.data(), T, ptrs);
  ASSERT_TRUE(s) << s.message();

  // Last position: top-20 ids identical, values within 1e-3 of the largest.
  const float *last = outs[0].data() + (T - 1) * V;
  const auto &top = lg.find("last_top20")->asArray();
  double largest = top[0].asArray()[1].asDouble();
  std::vector<int> order(V);
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + 20, order.end(),
                    [&](int a, int b) { return last[a] > last[b]; });
  double worst = 0.0;
  for (size_t r = 0; r < top.size(); ++r) {
    int id = static_cast<int>(top[r].asArray()[0].asInt64());
    double expected = top[r].asArray()[1].asDouble();
    EXPECT_EQ(order[r], id) << "rank " << r;
    worst = std::max(worst, std::fabs(last[id] - expected));
  }
  EXPECT_LT(worst, 1e-3 * std::fabs(largest));
  std::cout << "max |logit error| over the golden top-20: " << worst
            << " (largest logit " << largest << ")\n";
  double mx = -INFINITY;
  for (int64_t v = 0; v < V; ++v)
    mx = std::max(mx, static_cast<double>(last[v]));
  double sum = 0.0;
  for (int64_t v = 0; v < V; ++v)
    sum += std::exp(last[v] - mx);
  EXPECT_NEAR(mx + std::log(sum), lg.find("last_logsumexp")->asDouble(),
              1e-3 * std::fabs(largest));
  // Every position: argmax and max logit.
  std::vector<int> argmaxRef = ids(*lg.find("argmax_per_position"));
  const auto &maxRef = lg.find("max_per_position")->asArray();
  for (int64_t t = 0; t < T; ++t) {
    const float *row = outs[0].data() + t * V;
    int arg = static_cast<int>(std::max_element(row, row + V) - row);
    EXPECT_EQ(arg, argmaxRef[t]) << "position " << t;
    EXPECT_NEAR(row[arg], maxRef[t].asDouble(),
                1e-3 * std::fabs(maxRef[t].asDouble()))
        << "position " << t;
  }
  ::testing::Test::RecordProperty("max_abs_logit_error_top20",
                                  std::to_string(worst));

  // Hidden states at the last position.
  const qc::json::Value &hs = *g.find("hidden_states_last_position");
  struct {
    const char *key;
    int64_t output;
  } states[] = {{"after_layer_0", 1},
                {"after_layer_14", 15},
                {"after_final_norm", L + 1}};
  for (const auto &st : states) {
    const qc::json::Value &ref = *hs.find(st.key);
    const float *h = outs[st.output].data() + (T - 1) * D;
    double l2 = 0.0;
    for (int64_t i = 0; i < D; ++i)
      l2 += static_cast<double>(h[i]) * h[i];
    l2 = std::sqrt(l2);
    double refL2 = ref.find("l2")->asDouble();
    EXPECT_NEAR(l2, refL2, 1e-4 * refL2) << st.key;
    const auto &first8 = ref.find("first8")->asArray();
    for (size_t i = 0; i < first8.size(); ++i)
      EXPECT_NEAR(h[i], first8[i].asDouble(), 1e-3 * refL2 / std::sqrt(D))
          << st.key << "[" << i << "]";
  }

  // Greedy continuation: 48 tokens, identical (margins down to 0.015).
  const qc::json::Value &gr = *g.find("greedy_48");
  std::vector<int> expected = ids(*gr.find("new_ids"));
  std::vector<int> seq = ids(*gr.find("prompt_ids"));
  qc::Sampler sampler(V, 0.0f, 0.9f, 1);
  s = mlir::qc::generate(*m.exe, seq, static_cast<int64_t>(expected.size()),
                         sampler, /*stopTokens=*/{}, /*maxContext=*/0);
  ASSERT_TRUE(s) << s.message();
  std::vector<int> got(seq.begin() + prompt.size(), seq.end());
  EXPECT_EQ(got, expected);
}

/// Perplexity of tokens [0, 16384) of valid_head.txt under the goldens'
/// protocol, with the model's own (GGUF-embedded or tokenizer.json)
/// tokenizer.
void checkPerplexity(const Compiled &m, const std::string &tokenizerSource) {
  std::unique_ptr<qc::TextTokenizer> tok;
  qc::Status s = qc::loadTokenizer(tokenizerSource, tok);
  ASSERT_TRUE(s) << s.message();
  std::string text;
  ASSERT_TRUE(qc::readTextFile(kValid, text));
  std::vector<int> tokens;
  s = tok->encode(text, /*addSpecial=*/false, tokens);
  ASSERT_TRUE(s) << s.message();
  const qc::json::Value &g = goldens();
  EXPECT_EQ(static_cast<int64_t>(tokens.size()),
            g.find("tokenizer")->find("valid_head_total_tokens")->asInt64());
  qc::ContextWindowProtocol p;
  p.ctx = 1024;
  p.maxTokens = 16384;
  std::vector<std::vector<int>> windows;
  int64_t scored = 0;
  ASSERT_TRUE(qc::makeContextWindows(tokens, p, windows, scored));
  mlir::qc::PerplexityResult ppl;
  s = mlir::qc::evaluatePerplexity(*m.exe, windows, 2, false, ppl);
  ASSERT_TRUE(s) << s.message();
  const qc::json::Value &ref = *g.find("perplexity");
  EXPECT_EQ(ppl.tokens, ref.find("predicted_tokens")->asInt64());
  double expected = ref.find("ppl")->asDouble();
  EXPECT_NEAR(ppl.perplexity, expected, 1e-3 * expected);
  std::cout << "perplexity " << ppl.perplexity << " vs golden " << expected
            << " (" << ppl.tokens << " predictions)\n";
  ::testing::Test::RecordProperty("perplexity", std::to_string(ppl.perplexity));
}

/// The GGUF compiled once for the tests below.
const Compiled &gguf() {
  static Compiled c = [] {
    Compiled m;
    compileModel(kGguf, m);
    return m;
  }();
  return c;
}

TEST(SmolLM2Golden, GgufLogitsHiddenStatesAndGreedy) {
  ASSERT_TRUE(gguf().exe);
  const qc::ModelConfig &c = gguf().weights.config;
  EXPECT_EQ(c.dim, 576);
  EXPECT_EQ(c.hiddenDim, 1536);
  EXPECT_EQ(c.nLayers, 30);
  EXPECT_EQ(c.nHeads, 9);
  EXPECT_EQ(c.nKVHeads, 3);
  EXPECT_EQ(c.headDim, 64);
  EXPECT_EQ(c.ropeTheta, 100000.0f);
  EXPECT_TRUE(c.tiedEmbeddings);
  EXPECT_EQ(c.ropeLayout, qc::RopeLayout::HalfSplit);
  checkForwardGoldens(gguf());
}

TEST(SmolLM2Golden, GgufPerplexitySlow) {
  ASSERT_TRUE(gguf().exe);
  checkPerplexity(gguf(), kGguf);
}

TEST(SmolLM2Golden, HuggingFaceExportSlow) {
  // --export-hf in float32 from the GGUF, then the same goldens; the
  // tokenizer.json beside the GGUF stands for the one a user's folder has.
  qc::ModelWeights w;
  qc::Status s = qc::loadGgufModel(kGguf, w);
  ASSERT_TRUE(s) << s.message();
  std::string dir =
      testing::TempDir() + "/qc_smollm2_hf_" + std::to_string(getpid());
  std::filesystem::remove_all(dir);
  s = qc::writeHFCheckpoint(dir, w, qc::DType::F32);
  ASSERT_TRUE(s) << s.message();
  Compiled m;
  compileModel(dir, m);
  ASSERT_TRUE(m.exe);
  checkForwardGoldens(m);
  checkPerplexity(m, kDir + "/tokenizer.json");
  std::filesystem::remove_all(dir);
}

} // namespace
