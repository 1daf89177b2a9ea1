//===- KVCacheTest.cpp - KV-cached decoding against full recomputation ----===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// The decode entry point (llm-derive-decode: prefill into a KV cache, then
// one position per call) must give the logits the full-window forward
// function gives for the same positions. Position offsets are where decode
// bugs hide (RoPE at positions > 0, the causal mask of rows that start past
// 0, cache slots of the right layer), so random models of every RoPE variant
// the importer produces (interleaved and half layouts, partial rotary_dim,
// linear / llama3 / YaRN scaling, head_dim != dim / heads, GQA and MHA) are
// decoded in several chunkings: a prompt longer than one attention chunk,
// single-token steps, and multi-token chunks at positions > 0. On the
// bundled stories260K model, greedy and seeded sampled generation with the
// cache must produce the same tokens as recomputing the prefix, from logits
// within 1e-4 relative; the context limit stops both the same way.
//
//===----------------------------------------------------------------------===//

#include "qc/Execution/CpuExecutable.h"
#include "qc/Execution/Evaluate.h"
#include "qc/Import/LoadModel.h"
#include "qc/Import/ModelBuilder.h"
#include "qc/runtime/Sampler.h"

#include "mlir/IR/MLIRContext.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

namespace {

using qc::ModelConfig;
using qc::ModelWeights;

const std::string kShared = QC_SHARED_DIR;
const std::string kStories = kShared + "/models/stories260K/stories260K.bin";

/// Largest |a[i] - b[i]| over the largest |b[i]| of one logits row.
double relativeError(const float *a, const float *b, int64_t n) {
  double worst = 0.0, scale = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    worst = std::max(worst, std::fabs(static_cast<double>(a[i]) - b[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(b[i])));
  }
  return worst / std::max(scale, 1e-30);
}

/// N(0, 0.3^2) weights, norm weights around 1.
ModelWeights randomModel(const ModelConfig &cfg, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.3f);
  ModelWeights w;
  w.config = cfg;
  for (const qc::TensorSpec &spec : qc::modelTensorSpecs(cfg)) {
    qc::HostTensor t;
    t.shape = spec.shape;
    t.data.resize(t.numElements());
    float offset = spec.name.find("norm") != std::string::npos ? 1.0f : 0.0f;
    for (float &v : t.data)
      v = offset + normal(rng);
    w.tensors[spec.name] = std::move(t);
  }
  return w;
}

struct Case {
  const char *name;
  int64_t dim, hidden, layers, heads, kvHeads, vocab;
  qc::RopeLayout layout;
  qc::RopeScalingType scaling = qc::RopeScalingType::None;
  double factor = 1.0;
  /// 0 = head dim.
  int64_t rotaryDim = 0;
  /// 0 = dim / heads.
  int64_t headDim = 0;
};

void PrintTo(const Case &c, std::ostream *os) { *os << c.name; }

class DecodeMatchesForward : public testing::TestWithParam<Case> {};

TEST_P(DecodeMatchesForward, EveryChunking) {
  const Case &tc = GetParam();
  ModelConfig cfg;
  cfg.modelType = "llama";
  cfg.dim = tc.dim;
  cfg.hiddenDim = tc.hidden;
  cfg.nLayers = tc.layers;
  cfg.nHeads = tc.heads;
  cfg.nKVHeads = tc.kvHeads;
  cfg.headDim = tc.headDim ? tc.headDim : tc.dim / tc.heads;
  cfg.rotaryDim = tc.rotaryDim;
  cfg.ropeTheta = tc.scaling == qc::RopeScalingType::None ? 10000.0f : 500.0f;
  cfg.ropeScaling.type = tc.scaling;
  cfg.ropeScaling.factor = tc.factor;
  if (tc.scaling == qc::RopeScalingType::Llama3) {
    cfg.ropeScaling.lowFreqFactor = 1.0;
    cfg.ropeScaling.highFreqFactor = 4.0;
    cfg.ropeScaling.originalMaxPositions = 64;
  }
  if (tc.scaling == qc::RopeScalingType::Yarn)
    cfg.ropeScaling.originalMaxPositions = 64;
  cfg.vocabSize = tc.vocab;
  cfg.maxSeqLen = 512;
  cfg.tiedEmbeddings = true;
  cfg.ropeLayout = tc.layout;
  ModelWeights w = randomModel(cfg, 77 + tc.dim);

  mlir::MLIRContext ctx;
  auto module = mlir::qc::buildModelModule(ctx, cfg, {"llama2c", "<memory>"});
  mlir::qc::CpuCompileOptions options;
  options.decode = true;
  std::unique_ptr<mlir::qc::CpuExecutable> exe;
  qc::Status s = mlir::qc::CpuExecutable::compile(*module, w, exe, options);
  ASSERT_TRUE(s) << s.message();
  ASSERT_TRUE(exe->hasForward() && exe->hasDecode());

  // 90 positions: past one 64-row attention chunk, and past the YaRN /
  // llama3 original context of 64 positions.
  const int64_t n = 90, vocab = tc.vocab;
  std::mt19937 rng(5);
  std::vector<int32_t> tokens(n);
  for (int32_t &t : tokens)
    t = static_cast<int32_t>(rng() % vocab);
  std::vector<float> full(n * vocab);
  ASSERT_TRUE(exe->forward(tokens.data(), n, full.data()));

  // Chunk sizes, consumed in order until the sequence is used up: a long
  // prefill (two attention chunks) then single steps; a short prefill then
  // multi-token chunks at positions > 0 (one crossing the chunk boundary
  // of its own rows); one token at a time from position 0.
  const std::vector<std::vector<int64_t>> chunkings = {
      {70, 1}, {5, 3, 7, 66, 1}, {1}};
  for (const std::vector<int64_t> &chunks : chunkings) {
    mlir::qc::KVCache cache;
    ASSERT_TRUE(exe->createCache(n, cache));
    std::vector<float> logits(vocab);
    size_t c = 0;
    while (cache.length < n) {
      int64_t len =
          std::min(chunks[std::min(c++, chunks.size() - 1)], n - cache.length);
      int64_t first = cache.length;
      s = exe->decode(tokens.data() + first, len, cache, logits.data());
      ASSERT_TRUE(s) << s.message();
      ASSERT_EQ(cache.length, first + len);
      int64_t last = first + len - 1;
      EXPECT_LT(relativeError(logits.data(), full.data() + last * vocab, vocab),
                1e-4)
          << "position " << last << " (chunk of " << len << " at " << first
          << ", chunking starting " << chunks[0] << ")";
    }
    // A full cache refuses more positions instead of writing past it.
    s = exe->decode(tokens.data(), 1, cache, logits.data());
    EXPECT_FALSE(s);
    EXPECT_NE(s.message().find("do not fit the KV cache of 90 positions"),
              std::string::npos)
        << s.message();
  }
}

INSTANTIATE_TEST_SUITE_P(
    RopeVariants, DecodeMatchesForward,
    testing::Values(
        Case{"gqa_interleaved", 32, 48, 2, 4, 2, 40,
             qc::RopeLayout::Interleaved},
        Case{"mha_half", 24, 40, 2, 2, 2, 33, qc::RopeLayout::HalfSplit},
        Case{"linear_scaling", 32, 48, 1, 4, 2, 29, qc::RopeLayout::HalfSplit,
             qc::RopeScalingType::Linear, 4.0},
        Case{"llama3_scaling_head_dim_24", 32, 40, 1, 2, 1, 23,
             qc::RopeLayout::HalfSplit, qc::RopeScalingType::Llama3, 8.0, 0,
             24},
        Case{"yarn_partial_rotary", 32, 24, 2, 4, 2, 19,
             qc::RopeLayout::HalfSplit, qc::RopeScalingType::Yarn, 4.0, 4},
        Case{"partial_rotary", 24, 24, 1, 2, 2, 13, qc::RopeLayout::HalfSplit,
             qc::RopeScalingType::None, 1.0, 6}),
    [](const testing::TestParamInfo<Case> &info) { return info.param.name; });

/// stories260K compiled with both entry points.
struct Stories {
  mlir::MLIRContext ctx;
  qc::ModelWeights weights;
  std::unique_ptr<mlir::qc::CpuExecutable> exe;
};

Stories &stories() {
  static Stories *model = [] {
    auto *m = new Stories;
    mlir::OwningOpRef<mlir::ModuleOp> module;
    qc::Status s = mlir::qc::openModel(m->ctx, kStories, module, m->weights);
    EXPECT_TRUE(s) << s.message();
    mlir::qc::CpuCompileOptions options;
    options.decode = true;
    if (s)
      s = mlir::qc::CpuExecutable::compile(*module, m->weights, m->exe,
                                           options);
    EXPECT_TRUE(s) << s.message();
    return m;
  }();
  return *model;
}

/// Generates `count` tokens after `prompt` with and without the cache and
/// expects the same tokens drawn from logits within 1e-4 relative.
void expectSameGeneration(const std::vector<int> &prompt, int64_t count,
                          float temperature, uint64_t seed,
                          int64_t maxContext) {
  Stories &m = stories();
  ASSERT_TRUE(m.exe);
  int64_t vocab = m.exe->vocabSize();
  std::vector<int> toks[2];
  std::vector<float> traces[2];
  mlir::qc::GenerationStats stats[2];
  for (int path = 0; path < 2; ++path) {
    toks[path] = prompt;
    qc::Sampler sampler(vocab, temperature, 0.9f, seed);
    mlir::qc::GenerateOptions options;
    options.kvCache = path == 0;
    options.logitsTrace = &traces[path];
    qc::Status s = mlir::qc::generate(*m.exe, toks[path], count, sampler, {},
                                      maxContext, &stats[path], options);
    ASSERT_TRUE(s) << s.message();
    EXPECT_EQ(stats[path].kvCache, path == 0);
  }
  EXPECT_EQ(toks[0], toks[1]);
  EXPECT_EQ(stats[0].generated, stats[1].generated);
  EXPECT_EQ(stats[0].contextFull, stats[1].contextFull);
  ASSERT_EQ(traces[0].size(), traces[1].size());
  for (size_t row = 0; row * vocab < traces[0].size(); ++row)
    ASSERT_LT(relativeError(traces[0].data() + row * vocab,
                            traces[1].data() + row * vocab, vocab),
              1e-4)
        << "generated token " << row;
}

TEST(StoriesKVCache, GreedyFromBos) {
  expectSameGeneration({1}, 200, 0.0f, 0, 512);
}

TEST(StoriesKVCache, SampledWithSeedAfterPrompt) {
  // "Once upon a time, there was a little girl" (tok512 ids) as the prompt,
  // so that prefill covers several positions at once.
  expectSameGeneration(
      {1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421}, 120,
      0.9f, 5, 512);
}

TEST(StoriesKVCache, StopsAtTheContextLimit) {
  // A 40-position context: the cache is sized to it and generation stops
  // when it is full, exactly as recomputation does.
  expectSameGeneration({1, 403, 407}, 100, 0.0f, 0, 40);
  Stories &m = stories();
  std::vector<int> toks = {1, 403, 407};
  qc::Sampler sampler(m.exe->vocabSize(), 0.0f, 0.9f, 0);
  mlir::qc::GenerationStats stats;
  ASSERT_TRUE(mlir::qc::generate(*m.exe, toks, 100, sampler, {}, 40, &stats));
  EXPECT_TRUE(stats.contextFull);
  EXPECT_EQ(stats.generated, 37);
  EXPECT_EQ(toks.size(), 40u);
}

TEST(StoriesKVCache, DecodeOnlyExecutable) {
  // Compiled without the forward entry point (what quant-run --generate
  // does), generation still works and forward() says why it cannot run.
  Stories &ref = stories();
  mlir::MLIRContext ctx;
  mlir::OwningOpRef<mlir::ModuleOp> module;
  qc::ModelWeights weights;
  ASSERT_TRUE(mlir::qc::openModel(ctx, kStories, module, weights));
  mlir::qc::CpuCompileOptions options;
  options.forward = false;
  options.decode = true;
  std::unique_ptr<mlir::qc::CpuExecutable> exe;
  qc::Status s =
      mlir::qc::CpuExecutable::compile(*module, weights, exe, options);
  ASSERT_TRUE(s) << s.message();
  EXPECT_FALSE(exe->hasForward());
  std::vector<int> a = {1}, b = {1};
  qc::Sampler sa(512, 0.0f, 0.9f, 0), sb(512, 0.0f, 0.9f, 0);
  ASSERT_TRUE(mlir::qc::generate(*exe, a, 30, sa, {}, 512));
  mlir::qc::GenerateOptions recompute;
  recompute.kvCache = false;
  ASSERT_TRUE(
      mlir::qc::generate(*ref.exe, b, 30, sb, {}, 512, nullptr, recompute));
  EXPECT_EQ(a, b);
  std::vector<float> logits(512);
  int32_t bos = 1;
  s = exe->forward(&bos, 1, logits.data());
  EXPECT_FALSE(s);
  EXPECT_NE(s.message().find("without its full-window entry point"),
            std::string::npos)
      << s.message();
  mlir::qc::GenerateOptions noCache;
  noCache.kvCache = false;
  std::vector<int> c = {1};
  s = mlir::qc::generate(*exe, c, 3, sa, {}, 512, nullptr, noCache);
  EXPECT_FALSE(s);
}

TEST(StoriesKVCache, RejectsBadDecodeCalls) {
  Stories &m = stories();
  mlir::qc::KVCache cache;
  ASSERT_TRUE(m.exe->createCache(8, cache));
  std::vector<float> logits(512);
  int32_t bad = 512;
  qc::Status s = m.exe->decode(&bad, 1, cache, logits.data());
  EXPECT_FALSE(s);
  EXPECT_NE(s.message().find("token 512 at position 0 is outside"),
            std::string::npos)
      << s.message();
  EXPECT_EQ(cache.length, 0);
  std::vector<int32_t> nine(9, 1);
  s = m.exe->decode(nine.data(), 9, cache, logits.data());
  EXPECT_FALSE(s);
  EXPECT_NE(s.message().find("9 tokens at position 0 do not fit the KV cache "
                             "of 8 positions"),
            std::string::npos)
      << s.message();
  mlir::qc::KVCache foreign;
  foreign.capacity = 8;
  s = m.exe->decode(nine.data(), 1, foreign, logits.data());
  EXPECT_FALSE(s);
  EXPECT_FALSE(m.exe->createCache(0, cache));
}

} // namespace
