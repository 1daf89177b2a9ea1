//===- ModelTest.cpp - Tests for model config/weight validation -*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// validateModelConfig and validateModelWeights on a tiny in-memory LLaMA
// (dim 8, 2 layers, 2 heads, 1 KV head, vocab 16): the valid model passes,
// and each kind of damage produces an error naming the source and tensor.
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/Model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

using namespace qc;

namespace {

/// A tiny valid untied model with deterministic, distinct values.
ModelWeights tinyModel(bool tied = false, bool bias = false) {
  ModelWeights w;
  ModelConfig &c = w.config;
  c.dim = 8;
  c.hiddenDim = 16;
  c.nLayers = 2;
  c.nHeads = 2;
  c.nKVHeads = 1;
  c.headDim = 4;
  c.vocabSize = 16;
  c.maxSeqLen = 32;
  c.tiedEmbeddings = tied;
  c.attentionBias = bias;
  float seed = 0.0f;
  auto add = [&](const std::string &name, std::vector<int64_t> shape) {
    HostTensor t;
    t.shape = shape;
    t.data.resize(static_cast<size_t>(t.numElements()));
    for (float &v : t.data)
      v = std::sin(seed += 0.37f);
    w.tensors[name] = std::move(t);
  };
  // The tensor set and order the config implies, as the validator sees it.
  for (const TensorSpec &spec : modelTensorSpecs(c))
    add(spec.name, spec.shape);
  return w;
}

/// Expects failure whose message starts with "src: " and has `fragments`.
void expectInvalid(const ModelWeights &w, std::vector<std::string> fragments) {
  Status s = validateModelWeights(w, "src");
  ASSERT_FALSE(s.isOk());
  EXPECT_EQ(s.message().rfind("src: ", 0), 0u) << s.message();
  for (const std::string &f : fragments)
    EXPECT_NE(s.message().find(f), std::string::npos)
        << "missing '" << f << "' in: " << s.message();
}

} // namespace

TEST(ModelNames, LayerTensorName) {
  EXPECT_EQ(layerTensorName(0, "input_layernorm.weight"),
            "model.layers.0.input_layernorm.weight");
  EXPECT_EQ(layerTensorName(31, "mlp.down_proj.weight"),
            "model.layers.31.mlp.down_proj.weight");
}

TEST(ModelValidate, TinyModelsPass) {
  EXPECT_TRUE(validateModelWeights(tinyModel(), "src").isOk());
  EXPECT_TRUE(validateModelWeights(tinyModel(/*tied=*/true), "src").isOk());
  EXPECT_TRUE(
      validateModelWeights(tinyModel(false, /*bias=*/true), "src").isOk());
  EXPECT_EQ(tinyModel().tensors.size(), 1u + 2u * 9u + 2u);
}

TEST(ModelValidate, MissingTensor) {
  ModelWeights w = tinyModel();
  w.tensors.erase("model.layers.1.mlp.down_proj.weight");
  expectInvalid(w, {"missing tensor \"model.layers.1.mlp.down_proj.weight\"",
                    "[8, 16] = [dim, hiddenDim]"});
  w = tinyModel();
  w.tensors.erase("model.norm.weight");
  w.tensors.erase("model.embed_tokens.weight");
  expectInvalid(w,
                {"missing tensor \"model.embed_tokens.weight\"", "and 1 more"});
}

TEST(ModelValidate, UntiedModelNeedsLmHead) {
  ModelWeights w = tinyModel();
  w.tensors.erase("lm_head.weight");
  expectInvalid(
      w, {"missing tensor \"lm_head.weight\"", "does not tie the embeddings"});
}

TEST(ModelValidate, TiedModelMustNotHaveLmHead) {
  ModelWeights w = tinyModel();
  w.config.tiedEmbeddings = true;
  expectInvalid(
      w, {"unexpected tensor \"lm_head.weight\"", "ties the embeddings"});
}

TEST(ModelValidate, UnexpectedTensor) {
  ModelWeights w = tinyModel();
  w.tensors["model.layers.2.mlp.up_proj.weight"] =
      w.tensors["model.layers.1.mlp.up_proj.weight"];
  expectInvalid(w, {"unexpected tensor \"model.layers.2.mlp.up_proj.weight\""});
  w = tinyModel();
  w.tensors["model.layers.0.self_attn.q_proj.bias"].shape = {8};
  w.tensors["model.layers.0.self_attn.q_proj.bias"].data.assign(8, 0.0f);
  expectInvalid(w,
                {"unexpected tensor \"model.layers.0.self_attn.q_proj.bias\"",
                 "no attention bias"});
}

TEST(ModelValidate, BiasModelNeedsBiases) {
  ModelWeights w = tinyModel(false, true);
  w.tensors.erase("model.layers.0.self_attn.k_proj.bias");
  expectInvalid(w, {"missing tensor \"model.layers.0.self_attn.k_proj.bias\"",
                    "[4] = [nKVHeads*headDim]"});
}

TEST(ModelValidate, WrongShapeReportsExpectedAndActual) {
  ModelWeights w = tinyModel();
  HostTensor &k = w.tensors["model.layers.0.self_attn.k_proj.weight"];
  k.shape = {8, 4}; // same element count, transposed
  expectInvalid(w, {"tensor \"model.layers.0.self_attn.k_proj.weight\" has "
                    "shape [8, 4], expected [4, 8] = [nKVHeads*headDim, dim]",
                    "nKVHeads=1", "headDim=4"});
  w = tinyModel();
  w.tensors["model.embed_tokens.weight"].shape = {16};
  expectInvalid(w, {"\"model.embed_tokens.weight\" has shape [16], expected "
                    "[16, 8]"});
}

TEST(ModelValidate, DataSizeMustMatchShape) {
  ModelWeights w = tinyModel();
  w.tensors["model.norm.weight"].data.pop_back();
  expectInvalid(w, {"tensor \"model.norm.weight\" holds 7 values but its "
                    "shape [8] needs 8"});
}

TEST(ModelValidate, NonFiniteValuesReportFirstIndex) {
  ModelWeights w = tinyModel();
  auto &d = w.tensors["model.layers.1.self_attn.o_proj.weight"].data;
  d[9] = std::numeric_limits<float>::infinity();
  d[5] = std::nanf("");
  expectInvalid(w, {"tensor \"model.layers.1.self_attn.o_proj.weight\" has a "
                    "non-finite value (NaN) at flat index 5"});
  d[5] = 0.0f;
  expectInvalid(w, {"(+Inf) at flat index 9"});
  d[9] = -std::numeric_limits<float>::infinity();
  expectInvalid(w, {"(-Inf) at flat index 9"});
}

TEST(ModelConfigCheck, SanityChecks) {
  auto check = [](void (*mutate)(ModelConfig &), const char *fragment) {
    ModelWeights w = tinyModel();
    mutate(w.config);
    Status s = validateModelConfig(w.config, "cfg");
    ASSERT_FALSE(s.isOk()) << fragment;
    EXPECT_EQ(s.message().rfind("cfg: invalid model config: ", 0), 0u)
        << s.message();
    EXPECT_NE(s.message().find(fragment), std::string::npos) << s.message();
    // validateModelWeights runs the same checks first.
    Status sw = validateModelWeights(w, "cfg");
    EXPECT_EQ(sw.message(), s.message());
  };
  check([](ModelConfig &c) { c.dim = 0; }, "dim must be positive, got 0");
  check([](ModelConfig &c) { c.nLayers = -1; }, "nLayers must be positive");
  check([](ModelConfig &c) { c.maxSeqLen = 0; }, "maxSeqLen must be positive");
  check([](ModelConfig &c) { c.nKVHeads = 3; },
        "nHeads (2) must be a multiple of nKVHeads (3)");
  check([](ModelConfig &c) { c.headDim = 3; }, "headDim (3) must be even");
  check([](ModelConfig &c) { c.normEps = 0.0f; }, "normEps");
  check([](ModelConfig &c) { c.ropeTheta = NAN; }, "ropeTheta");
  check([](ModelConfig &c) { c.bosId = 16; }, "bosId 16 is outside");
  check([](ModelConfig &c) { c.eosId = -1; }, "eosId -1 is outside");
  check(
      [](ModelConfig &c) {
        c.vocabSize = int64_t(1) << 40;
        c.dim = int64_t(1) << 30;
      },
      "overflow 64 bits");
  ModelWeights ok = tinyModel();
  EXPECT_TRUE(validateModelConfig(ok.config, "cfg").isOk());
}
