//===- GgufModelTest.cpp - GGUF model import tests --------------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Loads the bundled SmolLM2 GGUF (config, tensor set, a Q8_0 and a Q4_1
// value recomputed here straight from the file's bytes, the Q/K row
// un-permutation), then small hand-made llama and qwen2 GGUF files whose
// Q/K rows are stored with llama.cpp's permutation, and the refusals: other
// architectures, RoPE scaling, partial rotary dims, sliding windows,
// unknown keys and tensors.
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/GgufModel.h"
#include "qc/runtime/HFCheckpoint.h"
#include "qc/runtime/Json.h"

#include "GgufBuilder.h"
#include "TestUtil.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>

#include <unistd.h>

using namespace qc;
using qc::test::GgufBuilder;

namespace {

const std::string kSmol =
    std::string(QC_SHARED_DIR) +
    "/models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf";

/// fp16 at p (little-endian) to float, written out independently of the
/// runtime's converter for normal numbers and zero (enough for scales).
float halfRef(const uint8_t *p) {
  uint16_t h = static_cast<uint16_t>(p[0] | (p[1] << 8));
  int sign = h >> 15, exp = (h >> 10) & 31, man = h & 1023;
  float v = exp == 0 ? std::ldexp(static_cast<float>(man), -24)
                     : std::ldexp(1.0f + man / 1024.0f, exp - 15);
  return sign ? -v : v;
}

/// The llama.cpp converter's permutation of a [heads*hd, in] weight: row
/// h*hd + 2i + e of the result is row h*hd + e*hd/2 + i of `w`.
std::vector<float> llamaCppPermute(const std::vector<float> &w, int heads,
                                   int hd, int in) {
  std::vector<float> r(w.size());
  for (int h = 0; h < heads; ++h)
    for (int i = 0; i < hd / 2; ++i)
      for (int e = 0; e < 2; ++e)
        for (int c = 0; c < in; ++c)
          r[(h * hd + 2 * i + e) * in + c] =
              w[(h * hd + e * hd / 2 + i) * in + c];
  return r;
}

std::vector<float> ramp(size_t n, float scale) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i)
    v[i] = scale * static_cast<float>(static_cast<int>(i % 97) - 48);
  return v;
}

/// A tiny model: dim 8, 2 heads of 4, 1 KV head, FFN 16, 1 layer, vocab 8.
struct Tiny {
  std::string arch = "llama";
  std::vector<float> q = ramp(8 * 8, 0.01f), k = ramp(4 * 8, 0.02f),
                     v = ramp(4 * 8, 0.03f);
  GgufBuilder b;

  explicit Tiny(const std::string &a = "llama", bool write = true) : arch(a) {
    if (write)
      fill();
  }
  void fill(uint32_t blockCount = 1, uint32_t embedding = 8) {
    b.addString("general.architecture", arch);
    b.addU32(arch + ".context_length", 64);
    b.addU32(arch + ".embedding_length", embedding);
    b.addU32(arch + ".block_count", blockCount);
    b.addU32(arch + ".feed_forward_length", 16);
    b.addU32(arch + ".attention.head_count", 2);
    b.addU32(arch + ".attention.head_count_kv", 1);
    b.addF32(arch + ".attention.layer_norm_rms_epsilon", 1e-6f);
    b.addF32(arch + ".rope.freq_base", 5000.0f);
    b.addU32("tokenizer.ggml.bos_token_id", 3);
    b.addU32("tokenizer.ggml.eos_token_id", 4);
  }
  void tensors(bool permuted, bool biases = false, bool withDown = true) {
    b.addF32Tensor("token_embd.weight", {8, 8}, ramp(64, 0.1f));
    b.addF32Tensor("blk.0.attn_norm.weight", {8}, ramp(8, 0.5f));
    b.addF32Tensor("blk.0.attn_q.weight", {8, 8},
                   permuted ? llamaCppPermute(q, 2, 4, 8) : q);
    b.addF32Tensor("blk.0.attn_k.weight", {8, 4},
                   permuted ? llamaCppPermute(k, 1, 4, 8) : k);
    b.addF32Tensor("blk.0.attn_v.weight", {8, 4}, v);
    if (biases) {
      b.addF32Tensor("blk.0.attn_q.bias", {8}, ramp(8, 1));
      b.addF32Tensor("blk.0.attn_k.bias", {4}, ramp(4, 1));
      b.addF32Tensor("blk.0.attn_v.bias", {4}, ramp(4, 1));
    }
    b.addF32Tensor("blk.0.attn_output.weight", {8, 8}, ramp(64, 0.04f));
    b.addF32Tensor("blk.0.ffn_norm.weight", {8}, ramp(8, 0.25f));
    b.addF32Tensor("blk.0.ffn_gate.weight", {8, 16}, ramp(128, 0.05f));
    b.addF32Tensor("blk.0.ffn_up.weight", {8, 16}, ramp(128, 0.06f));
    if (withDown)
      b.addF32Tensor("blk.0.ffn_down.weight", {16, 8}, ramp(128, 0.07f));
    b.addF32Tensor("output_norm.weight", {8}, ramp(8, 0.125f));
  }
  Status load(ModelWeights &w) {
    std::vector<uint8_t> bytes = b.build();
    std::unique_ptr<GgufFile> f;
    QC_RETURN_IF_ERROR(
        GgufFile::parse(bytes.data(), bytes.size(), "tiny.gguf", f));
    return loadGgufModel(*f, w);
  }
};

void expectRefusal(Tiny &t, const std::string &needle) {
  ModelWeights w;
  Status s = t.load(w);
  ASSERT_FALSE(s.isOk()) << "expected: " << needle;
  EXPECT_EQ(s.message().rfind("tiny.gguf", 0), 0u) << s.message();
  EXPECT_NE(s.message().find(needle), std::string::npos) << s.message();
}

} // namespace

TEST(GgufModel, TinyLlamaUnpermutesQK) {
  Tiny t;
  t.tensors(/*permuted=*/true);
  ModelWeights w;
  Status s = t.load(w);
  ASSERT_TRUE(s.isOk()) << s.message();
  const ModelConfig &c = w.config;
  EXPECT_EQ(c.modelType, "llama");
  EXPECT_EQ(c.dim, 8);
  EXPECT_EQ(c.hiddenDim, 16);
  EXPECT_EQ(c.nLayers, 1);
  EXPECT_EQ(c.nHeads, 2);
  EXPECT_EQ(c.nKVHeads, 1);
  EXPECT_EQ(c.headDim, 4);
  EXPECT_EQ(c.vocabSize, 8);
  EXPECT_EQ(c.maxSeqLen, 64);
  EXPECT_EQ(c.normEps, 1e-6f);
  EXPECT_EQ(c.ropeTheta, 5000.0f);
  EXPECT_TRUE(c.tiedEmbeddings);
  EXPECT_FALSE(c.attentionBias);
  EXPECT_EQ(c.bosId, 3);
  EXPECT_EQ(c.eosId, 4);
  EXPECT_EQ(c.ropeLayout, RopeLayout::HalfSplit);
  const HostTensor *q = w.find("model.layers.0.self_attn.q_proj.weight");
  const HostTensor *k = w.find("model.layers.0.self_attn.k_proj.weight");
  const HostTensor *v = w.find("model.layers.0.self_attn.v_proj.weight");
  ASSERT_TRUE(q && k && v);
  EXPECT_EQ(q->shape, (std::vector<int64_t>{8, 8}));
  EXPECT_EQ(k->shape, (std::vector<int64_t>{4, 8}));
  EXPECT_EQ(q->data, t.q);
  EXPECT_EQ(k->data, t.k);
  EXPECT_EQ(v->data, t.v); // V is never permuted
  const HostTensor *down = w.find("model.layers.0.mlp.down_proj.weight");
  ASSERT_TRUE(down);
  EXPECT_EQ(down->shape, (std::vector<int64_t>{8, 16}));
  EXPECT_EQ(w.find("lm_head.weight"), nullptr);
}

TEST(GgufModel, TinyLlamaUntiedHead) {
  Tiny t;
  t.tensors(true);
  t.b.addF32Tensor("output.weight", {8, 8}, ramp(64, 0.3f));
  ModelWeights w;
  Status s = t.load(w);
  ASSERT_TRUE(s.isOk()) << s.message();
  EXPECT_FALSE(w.config.tiedEmbeddings);
  ASSERT_NE(w.find("lm_head.weight"), nullptr);
  EXPECT_EQ(w.find("lm_head.weight")->data, ramp(64, 0.3f));
}

TEST(GgufModel, TinyQwen2KeepsRowsAndBiases) {
  Tiny t("qwen2");
  t.tensors(/*permuted=*/false, /*biases=*/true);
  ModelWeights w;
  Status s = t.load(w);
  ASSERT_TRUE(s.isOk()) << s.message();
  EXPECT_EQ(w.config.modelType, "qwen2");
  EXPECT_TRUE(w.config.attentionBias);
  EXPECT_EQ(w.find("model.layers.0.self_attn.q_proj.weight")->data, t.q);
  EXPECT_EQ(w.find("model.layers.0.self_attn.k_proj.weight")->data, t.k);
  ASSERT_NE(w.find("model.layers.0.self_attn.k_proj.bias"), nullptr);
}

TEST(GgufModel, KeyLengthSetsHeadDim) {
  // head_dim 8 with dim 8 and 2 heads: q_proj is [16, 8].
  Tiny t("llama", false);
  t.fill();
  t.b.addU32("llama.attention.key_length", 8);
  t.b.addU32("llama.attention.value_length", 8);
  t.b.addU32("llama.rope.dimension_count", 8);
  t.b.addF32Tensor("token_embd.weight", {8, 8}, ramp(64, 0.1f));
  t.b.addF32Tensor("blk.0.attn_norm.weight", {8}, ramp(8, 0.5f));
  std::vector<float> q = ramp(16 * 8, 0.01f);
  t.b.addF32Tensor("blk.0.attn_q.weight", {8, 16}, llamaCppPermute(q, 2, 8, 8));
  t.b.addF32Tensor("blk.0.attn_k.weight", {8, 8}, ramp(64, 0.02f));
  t.b.addF32Tensor("blk.0.attn_v.weight", {8, 8}, ramp(64, 0.03f));
  t.b.addF32Tensor("blk.0.attn_output.weight", {16, 8}, ramp(128, 0.04f));
  t.b.addF32Tensor("blk.0.ffn_norm.weight", {8}, ramp(8, 0.25f));
  t.b.addF32Tensor("blk.0.ffn_gate.weight", {8, 16}, ramp(128, 0.05f));
  t.b.addF32Tensor("blk.0.ffn_up.weight", {8, 16}, ramp(128, 0.06f));
  t.b.addF32Tensor("blk.0.ffn_down.weight", {16, 8}, ramp(128, 0.07f));
  t.b.addF32Tensor("output_norm.weight", {8}, ramp(8, 0.125f));
  ModelWeights w;
  Status s = t.load(w);
  ASSERT_TRUE(s.isOk()) << s.message();
  EXPECT_EQ(w.config.headDim, 8);
  EXPECT_EQ(w.find("model.layers.0.self_attn.q_proj.weight")->data, q);
}

TEST(GgufModel, LinearRopeScaling) {
  for (const char *key :
       {"llama.rope.scaling.factor", "llama.rope.scale_linear"})
    for (bool typed : {true, false}) {
      SCOPED_TRACE(std::string(key) + (typed ? " with type" : " alone"));
      Tiny t;
      if (typed)
        t.b.addString("llama.rope.scaling.type", "linear");
      // llama.cpp's default scaling type is linear.
      t.b.addF32(key, 4.0f);
      t.tensors(true);
      ModelWeights w;
      Status s = t.load(w);
      ASSERT_TRUE(s.isOk()) << s.message();
      EXPECT_EQ(w.config.ropeScaling.type, RopeScalingType::Linear);
      EXPECT_EQ(w.config.ropeScaling.factor, 4.0);
      RopeParameters rope;
      ASSERT_TRUE(computeRopeParameters(w.config, rope).isOk());
      ASSERT_EQ(rope.invFreq.size(), 2u);
      EXPECT_FLOAT_EQ(rope.invFreq[1],
                      static_cast<float>(std::pow(5000.0, -0.5) / 4.0));
    }
  // Factor 1 (or 0, llama.cpp's "unset") is no scaling.
  Tiny t;
  t.b.addString("llama.rope.scaling.type", "linear");
  t.b.addF32("llama.rope.scaling.factor", 1.0f);
  t.tensors(true);
  ModelWeights w;
  ASSERT_TRUE(t.load(w).isOk());
  EXPECT_EQ(w.config.ropeScaling.type, RopeScalingType::None);
}

TEST(GgufModel, YarnRopeScaling) {
  Tiny t;
  t.b.addString("llama.rope.scaling.type", "yarn");
  t.b.addF32("llama.rope.scaling.factor", 4.0f);
  t.b.addU32("llama.rope.scaling.original_context_length", 16);
  t.b.addF32("llama.rope.scaling.yarn_beta_fast", 16.0f);
  t.b.addF32("llama.rope.scaling.yarn_beta_slow", 2.0f);
  t.b.addF32("llama.rope.scaling.yarn_attn_factor", 1.25f);
  t.b.addF32("llama.rope.scaling.yarn_ext_factor", 1.0f);
  t.tensors(true);
  ModelWeights w;
  Status s = t.load(w);
  ASSERT_TRUE(s.isOk()) << s.message();
  const RopeScaling &r = w.config.ropeScaling;
  EXPECT_EQ(r.type, RopeScalingType::Yarn);
  EXPECT_EQ(r.factor, 4.0);
  EXPECT_EQ(r.originalMaxPositions, 16);
  EXPECT_EQ(r.betaFast, 16.0);
  EXPECT_EQ(r.betaSlow, 2.0);
  EXPECT_EQ(r.attentionFactor, 1.25);
  EXPECT_TRUE(r.truncate);
  RopeParameters rope;
  ASSERT_TRUE(computeRopeParameters(w.config, rope).isOk());
  EXPECT_FLOAT_EQ(rope.attentionScaling, 1.25f);
  // The Hugging Face config written for it says the same.
  json::Value config;
  ASSERT_TRUE(
      json::parse(buildHFConfigJson(w.config, DType::F32), config).isOk());
  const json::Value *rs = config.find("rope_scaling");
  ASSERT_TRUE(rs && rs->isObject());
  EXPECT_EQ(rs->find("rope_type")->asString(), "yarn");
  EXPECT_EQ(rs->find("factor")->asDouble(), 4.0);
  EXPECT_EQ(rs->find("original_max_position_embeddings")->asInt64(), 16);
  EXPECT_EQ(rs->find("beta_fast")->asDouble(), 16.0);
  EXPECT_EQ(rs->find("beta_slow")->asDouble(), 2.0);
  EXPECT_EQ(rs->find("attention_factor")->asDouble(), 1.25);

  // The attention factor under its other key; without one, transformers'
  // default 0.1 ln(factor) + 1.
  for (bool other : {true, false}) {
    Tiny u;
    u.b.addString("llama.rope.scaling.type", "yarn");
    u.b.addF32("llama.rope.scaling.factor", 4.0f);
    if (other)
      u.b.addF32("llama.rope.scaling.attn_factor", 1.5f);
    u.tensors(true);
    ModelWeights v;
    ASSERT_TRUE(u.load(v).isOk());
    EXPECT_EQ(v.config.ropeScaling.attentionFactor, other ? 1.5 : 0.0);
    EXPECT_EQ(v.config.ropeScaling.originalMaxPositions, 0); // the context
    ASSERT_TRUE(computeRopeParameters(v.config, rope).isOk());
    EXPECT_FLOAT_EQ(rope.attentionScaling,
                    other ? 1.5f : static_cast<float>(0.1 * std::log(4.0) + 1));
  }
}

/// A llama or qwen2 model with head dim 8 (2 heads, dim 8) whose RoPE
/// rotates the first `rot` features of each head; `q` is the Hugging Face
/// q_proj, stored as llama.cpp runs it.
struct PartialRotary {
  Tiny t;
  std::vector<float> q = ramp(16 * 8, 0.01f), k = ramp(8 * 8, 0.02f);
  PartialRotary(const std::string &arch, int rot) : t(arch, false) {
    t.fill(); // 2 heads, 1 KV head
    t.b.addU32(arch + ".attention.key_length", 8);
    t.b.addU32(arch + ".rope.dimension_count", rot);
    // llama: the rotated pairs (i, i + rot/2) of a head are stored as
    // (2i, 2i + 1); the other rows stay. qwen2 (NEOX RoPE) is stored as is.
    auto store = [&](const std::vector<float> &w) {
      if (arch != "llama")
        return w;
      std::vector<float> r = w;
      for (int h = 0; h < static_cast<int>(w.size()) / 64; ++h)
        for (int i = 0; i < rot / 2; ++i)
          for (int e = 0; e < 2; ++e)
            for (int c = 0; c < 8; ++c)
              r[(h * 8 + 2 * i + e) * 8 + c] =
                  w[(h * 8 + e * rot / 2 + i) * 8 + c];
      return r;
    };
    t.b.addF32Tensor("token_embd.weight", {8, 8}, ramp(64, 0.1f));
    t.b.addF32Tensor("blk.0.attn_norm.weight", {8}, ramp(8, 0.5f));
    t.b.addF32Tensor("blk.0.attn_q.weight", {8, 16}, store(q));
    t.b.addF32Tensor("blk.0.attn_k.weight", {8, 8}, store(k));
    t.b.addF32Tensor("blk.0.attn_v.weight", {8, 8}, ramp(64, 0.03f));
    if (arch == "qwen2") {
      t.b.addF32Tensor("blk.0.attn_q.bias", {16}, ramp(16, 1));
      t.b.addF32Tensor("blk.0.attn_k.bias", {8}, ramp(8, 1));
      t.b.addF32Tensor("blk.0.attn_v.bias", {8}, ramp(8, 1));
    }
    t.b.addF32Tensor("blk.0.attn_output.weight", {16, 8}, ramp(128, 0.04f));
    t.b.addF32Tensor("blk.0.ffn_norm.weight", {8}, ramp(8, 0.25f));
    t.b.addF32Tensor("blk.0.ffn_gate.weight", {8, 16}, ramp(128, 0.05f));
    t.b.addF32Tensor("blk.0.ffn_up.weight", {8, 16}, ramp(128, 0.06f));
    t.b.addF32Tensor("blk.0.ffn_down.weight", {16, 8}, ramp(128, 0.07f));
    t.b.addF32Tensor("output_norm.weight", {8}, ramp(8, 0.125f));
  }
};

TEST(GgufModel, PartialRotaryDimension) {
  for (std::string arch : {"llama", "qwen2"}) {
    SCOPED_TRACE(arch);
    PartialRotary m(arch, 4);
    ModelWeights w;
    Status s = m.t.load(w);
    ASSERT_TRUE(s.isOk()) << s.message();
    EXPECT_EQ(w.config.headDim, 8);
    EXPECT_EQ(w.config.rotaryDim, 4);
    EXPECT_EQ(w.find("model.layers.0.self_attn.q_proj.weight")->data, m.q);
    EXPECT_EQ(w.find("model.layers.0.self_attn.k_proj.weight")->data, m.k);
    RopeParameters rope;
    ASSERT_TRUE(computeRopeParameters(w.config, rope).isOk());
    EXPECT_EQ(rope.rotaryDim, 4);
    json::Value config;
    ASSERT_TRUE(
        json::parse(buildHFConfigJson(w.config, DType::F32), config).isOk());
    ASSERT_TRUE(config.find("partial_rotary_factor"));
    EXPECT_EQ(config.find("partial_rotary_factor")->asDouble(), 0.5);
  }
  // dimension_count equal to the head dim is the full rotation.
  PartialRotary full("llama", 8);
  ModelWeights w;
  ASSERT_TRUE(full.t.load(w).isOk());
  EXPECT_EQ(w.config.rotaryDim, 0);
  EXPECT_EQ(w.find("model.layers.0.self_attn.q_proj.weight")->data, full.q);
}

TEST(GgufModel, Refusals) {
  {
    Tiny t("phi3");
    t.tensors(true);
    expectRefusal(t, "architecture 'phi3' is not supported (supported: "
                     "llama, qwen2)");
  }
  {
    Tiny t;
    t.b.addString("llama.rope.scaling.type", "longrope");
    t.tensors(true);
    expectRefusal(t, "metadata key 'llama.rope.scaling.type' is 'longrope': "
                     "this RoPE scaling is not supported");
  }
  {
    Tiny t;
    t.b.addString("llama.rope.scaling.type", "none");
    t.tensors(true);
    ModelWeights w;
    EXPECT_TRUE(t.load(w).isOk());
  }
  {
    Tiny t;
    t.b.addString("llama.rope.scaling.type", "none");
    t.b.addF32("llama.rope.scaling.factor", 8.0f);
    t.tensors(true);
    expectRefusal(t, "metadata key 'llama.rope.scaling.factor' is 8");
  }
  {
    Tiny t;
    t.b.addU32("llama.rope.dimension_count", 3);
    t.tensors(true);
    expectRefusal(t, "metadata key 'llama.rope.dimension_count' is 3: the "
                     "rotated features must be an even number within the "
                     "head dim 4");
  }
  {
    Tiny t;
    t.b.addU32("llama.rope.dimension_count", 6);
    t.tensors(true);
    expectRefusal(t, "metadata key 'llama.rope.dimension_count' is 6");
  }
  {
    Tiny t("qwen2");
    t.b.addU32("qwen2.attention.sliding_window", 32);
    t.tensors(false, true);
    expectRefusal(t, "metadata key 'qwen2.attention.sliding_window': "
                     "sliding-window attention is not supported");
  }
  {
    Tiny t;
    t.b.addF32("llama.rope.scaling.attn_factor", 1.5f);
    t.tensors(true);
    expectRefusal(t, "metadata key 'llama.rope.scaling.attn_factor' is only "
                     "used by YaRN scaling");
  }
  for (const char *key :
       {"rope.scaling.finetuned", "rope.scaling.yarn_log_multiplier"}) {
    Tiny t;
    if (std::string(key) == "rope.scaling.finetuned")
      t.b.addBool(std::string("llama.") + key, true);
    else
      t.b.addF32(std::string("llama.") + key, 0.1f);
    t.tensors(true);
    expectRefusal(t, "metadata key 'llama." + std::string(key) +
                         "': this RoPE variant is not supported");
  }
  {
    Tiny t;
    t.b.addString("llama.rope.scaling.type", "yarn");
    t.b.addF32("llama.rope.scaling.factor", 4.0f);
    t.b.addF32("llama.rope.scaling.yarn_ext_factor", 0.5f);
    t.tensors(true);
    expectRefusal(t, "metadata key 'llama.rope.scaling.yarn_ext_factor' is "
                     "0.5");
  }
  {
    Tiny t;
    t.b.addString("llama.rope.scaling.type", "yarn");
    t.tensors(true);
    expectRefusal(t, "metadata key 'llama.rope.scaling.factor' is missing: "
                     "YaRN scaling needs a factor >= 1");
  }
  {
    Tiny t;
    t.b.addString("llama.rope.scaling.type", "yarn");
    t.b.addF32("llama.rope.scaling.factor", 4.0f);
    t.b.addF32("llama.rope.scaling.attn_factor", 1.5f);
    t.b.addF32("llama.rope.scaling.yarn_attn_factor", 1.25f);
    t.tensors(true);
    expectRefusal(t, "disagree");
  }
  {
    Tiny t;
    t.b.addU32("llama.expert_count", 8);
    t.tensors(true);
    expectRefusal(t, "mixture-of-experts");
  }
  {
    Tiny t;
    t.b.addF32("llama.attn_logit_softcapping", 50.0f);
    t.tensors(true);
    expectRefusal(t, "metadata key 'llama.attn_logit_softcapping' is not "
                     "understood by qc");
  }
  {
    Tiny t;
    t.tensors(true);
    t.b.addF32Tensor("rope_freqs.weight", {2}, {1, 1});
    expectRefusal(t, "tensor 'rope_freqs.weight'");
  }
  {
    Tiny t;
    t.tensors(true);
    t.b.addF32Tensor("blk.0.attn_q_norm.weight", {4}, {1, 1, 1, 1});
    expectRefusal(t, "tensor 'blk.0.attn_q_norm.weight' is not a tensor of a "
                     "llama model");
  }
  {
    Tiny t;
    t.tensors(true);
    t.b.addF32Tensor("blk.1.attn_norm.weight", {8}, ramp(8, 1));
    expectRefusal(t, "tensor 'blk.1.attn_norm.weight' is not a tensor");
  }
  {
    Tiny t;
    t.tensors(true, false, /*withDown=*/false);
    // validateModelWeights names the missing tensor.
    expectRefusal(t, "model.layers.0.mlp.down_proj.weight");
  }
  {
    Tiny t("llama", false);
    t.b.addString("general.architecture", "llama");
    t.b.addU32("llama.embedding_length", 8);
    t.b.addU32("llama.feed_forward_length", 16);
    t.b.addString("llama.block_count", "1");
    t.tensors(true);
    expectRefusal(t, "metadata key 'llama.block_count' has type string");
  }
  {
    Tiny t("llama", false);
    t.b.addString("general.architecture", "llama");
    t.tensors(true);
    expectRefusal(t, "metadata key 'llama.embedding_length' is missing");
  }
  {
    // A lying head size must fail before RoPE tables are sized by it.
    Tiny t;
    t.b.addU32("llama.attention.key_length", 1u << 30);
    t.tensors(true);
    expectRefusal(t, "tensor 'blk.0.attn_q.weight' does not have the shape "
                     "[embedding_length, head_count * head dim] = [8, 2 * "
                     "1073741824]");
  }
  {
    Tiny t("llama", false);
    t.fill(1, /*embedding=*/16);
    t.tensors(true);
    expectRefusal(t, "metadata key 'llama.embedding_length' is 16 but "
                     "'token_embd.weight' rows have 8 elements");
  }
  {
    // A lying layer count must fail before anything is sized by it.
    Tiny t("llama", false);
    t.fill(100000000);
    t.tensors(true);
    expectRefusal(t, "metadata key 'llama.block_count' is 100000000 but the "
                     "file has only 11 tensors");
  }
  {
    // A quantization type qc cannot decode is named with the tensor.
    Tiny u;
    u.tensors(true, false, /*withDown=*/false);
    u.b.addTensor("blk.0.ffn_down.weight", {256, 8}, 16,
                  std::vector<uint8_t>(66 * 8));
    expectRefusal(u, "tensor 'blk.0.ffn_down.weight' has unsupported type "
                     "IQ2_XXS");
  }
}

TEST(GgufModel, TensorNames) {
  std::string hf;
  EXPECT_TRUE(ggufTensorNameToHF("blk.12.ffn_down.weight", 30, hf));
  EXPECT_EQ(hf, "model.layers.12.mlp.down_proj.weight");
  EXPECT_TRUE(ggufTensorNameToHF("blk.0.attn_output.weight", 1, hf));
  EXPECT_EQ(hf, "model.layers.0.self_attn.o_proj.weight");
  EXPECT_TRUE(ggufTensorNameToHF("output_norm.weight", 1, hf));
  EXPECT_EQ(hf, "model.norm.weight");
  EXPECT_FALSE(ggufTensorNameToHF("blk.30.ffn_down.weight", 30, hf));
  EXPECT_FALSE(ggufTensorNameToHF("blk.01.ffn_down.weight", 30, hf));
  EXPECT_FALSE(ggufTensorNameToHF("blk.-1.ffn_down.weight", 30, hf));
  EXPECT_FALSE(ggufTensorNameToHF("blk.1", 30, hf));
  EXPECT_FALSE(
      ggufTensorNameToHF("blk.99999999999999999999.ffn_up.weight", 30, hf));
  EXPECT_FALSE(ggufTensorNameToHF("token_embd", 30, hf));
}

TEST(GgufModel, BundledSmolLM2) {
  std::unique_ptr<GgufFile> f;
  Status s = GgufFile::open(kSmol, f);
  ASSERT_TRUE(s.isOk()) << s.message();
  ModelWeights w;
  s = loadGgufModel(*f, w);
  ASSERT_TRUE(s.isOk()) << s.message();
  const ModelConfig &c = w.config;
  EXPECT_EQ(c.modelType, "llama");
  EXPECT_EQ(c.dim, 576);
  EXPECT_EQ(c.hiddenDim, 1536);
  EXPECT_EQ(c.nLayers, 30);
  EXPECT_EQ(c.nHeads, 9);
  EXPECT_EQ(c.nKVHeads, 3);
  EXPECT_EQ(c.headDim, 64);
  EXPECT_EQ(c.vocabSize, 49152);
  EXPECT_EQ(c.maxSeqLen, 8192);
  EXPECT_EQ(c.normEps, 1e-5f);
  EXPECT_EQ(c.ropeTheta, 100000.0f);
  EXPECT_TRUE(c.tiedEmbeddings);
  EXPECT_EQ(c.bosId, 1);
  EXPECT_EQ(c.eosId, 2);
  EXPECT_EQ(c.ropeLayout, RopeLayout::HalfSplit);
  EXPECT_EQ(w.tensors.size(), 272u);

  // A Q8_0 value recomputed from the raw block: embedding row 1000, column
  // 100 is block (1000*576 + 100) / 32, element 100 % 32.
  const GgufTensorInfo *embd = f->findTensor("token_embd.weight");
  ASSERT_EQ(embd->type, GgmlType::Q8_0);
  {
    size_t flat = 1000 * 576 + 100;
    const uint8_t *blk = f->tensorData(*embd) + (flat / 32) * 34;
    float want = halfRef(blk) *
                 static_cast<float>(static_cast<int8_t>(blk[2 + flat % 32]));
    const HostTensor *e = w.find("model.embed_tokens.weight");
    ASSERT_EQ(e->shape, (std::vector<int64_t>{49152, 576}));
    EXPECT_EQ(e->data[flat], want);
  }
  // A Q4_1 value of V (not permuted): row 37, column 333.
  const GgufTensorInfo *vi = f->findTensor("blk.3.attn_v.weight");
  ASSERT_EQ(vi->type, GgmlType::Q4_1);
  auto q41 = [&](const GgufTensorInfo *t, size_t row, size_t col) {
    size_t flat = row * 576 + col;
    const uint8_t *blk = f->tensorData(*t) + (flat / 32) * 20;
    size_t j = flat % 32;
    int code = j < 16 ? blk[4 + j] & 15 : blk[4 + j - 16] >> 4;
    float d = halfRef(blk), m = halfRef(blk + 2);
    float scaled = d * static_cast<float>(code);
    return scaled + m;
  };
  EXPECT_EQ(
      w.find("model.layers.3.self_attn.v_proj.weight")->data[37 * 576 + 333],
      q41(vi, 37, 333));
  // Q rows: HF row h*64 + e*32 + i is GGUF row h*64 + 2i + e (9 heads); K
  // the same with 3 heads.
  const GgufTensorInfo *qi = f->findTensor("blk.3.attn_q.weight");
  const GgufTensorInfo *ki = f->findTensor("blk.3.attn_k.weight");
  const HostTensor *q = w.find("model.layers.3.self_attn.q_proj.weight");
  const HostTensor *k = w.find("model.layers.3.self_attn.k_proj.weight");
  ASSERT_EQ(q->shape, (std::vector<int64_t>{576, 576}));
  ASSERT_EQ(k->shape, (std::vector<int64_t>{192, 576}));
  for (int h : {0, 4, 8})
    for (int i : {0, 5, 31})
      for (int e : {0, 1})
        for (int col : {0, 77, 575}) {
          size_t hfRow = h * 64 + e * 32 + i, ggRow = h * 64 + 2 * i + e;
          EXPECT_EQ(q->data[hfRow * 576 + col], q41(qi, ggRow, col));
          if (h < 3)
            EXPECT_EQ(k->data[hfRow * 576 + col], q41(ki, ggRow, col));
        }
  // Norms are F32, copied as is.
  std::vector<float> norm;
  ASSERT_TRUE(f->readTensorF32("blk.7.ffn_norm.weight", norm).isOk());
  EXPECT_EQ(w.find("model.layers.7.post_attention_layernorm.weight")->data,
            norm);
}

TEST(GgufModel, IsGgufFile) {
  EXPECT_TRUE(isGgufFile(kSmol));
  qc::test::TempDir dir("qc_ggufm_");
  std::string p = dir.file("x.bin");
  {
    std::ofstream o(p, std::ios::binary);
    o << "GGU";
  }
  EXPECT_FALSE(isGgufFile(p));
  EXPECT_FALSE(isGgufFile(dir.path));
  EXPECT_FALSE(isGgufFile(dir.file("missing")));
  ModelWeights w;
  Status s = loadGgufModel(p, w);
  EXPECT_EQ(s.message(), p + ": file is 3 bytes, too short for the GGUF magic "
                             "(truncated file)");
}

namespace {

/// A file of this test process holding `bytes`, removed when the test
/// ends (tests run repeatedly must not fill the temporary directory).
class TempGguf {
public:
  TempGguf(const std::string &name, const std::vector<uint8_t> &bytes)
      : path(testing::TempDir() + "/gguf_lazy_" + std::to_string(::getpid()) +
             "_" + name + ".gguf") {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char *>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
  }
  ~TempGguf() { std::remove(path.c_str()); }
  TempGguf(const TempGguf &) = delete;
  TempGguf &operator=(const TempGguf &) = delete;

  const std::string path;
};

/// Opens `path` lazily and eagerly and compares them
/// (test::expectLazyEqualsEager; Q/K rows come back un-permuted).
void expectLazyEqualsEager(const std::string &path) {
  ModelWeights eager, lazy;
  Status s = loadGgufModel(path, eager);
  ASSERT_TRUE(s.isOk()) << s.message();
  LoadOptions options;
  options.lazy = true;
  s = loadGgufModel(path, lazy, options);
  ASSERT_TRUE(s.isOk()) << s.message();
  test::expectLazyEqualsEager(lazy, eager);
}

} // namespace

// A lazily opened GGUF file reads the values of an eager load, with
// llama.cpp's Q/K row order undone row by row (full and partial rotary
// dimension), and reports a bad range or value by name when it is read.
TEST(GgufModel, LazyLoadReadsWhatAnEagerLoadReads) {
  Tiny t;
  t.tensors(/*permuted=*/true);
  expectLazyEqualsEager(TempGguf("tiny", t.b.build()).path);
  PartialRotary partial("llama", 4);
  expectLazyEqualsEager(TempGguf("partial", partial.t.b.build()).path);
  PartialRotary qwen("qwen2", 4);
  expectLazyEqualsEager(TempGguf("qwen", qwen.t.b.build()).path);

  // A NaN in down_proj: the lazy open succeeds (nothing is read), reading
  // the tensor fails naming the file, the tensor and the index.
  Tiny bad;
  bad.tensors(true, false, /*withDown=*/false);
  std::vector<float> down = ramp(128, 0.07f);
  down[19] = NAN;
  bad.b.addF32Tensor("blk.0.ffn_down.weight", {16, 8}, down);
  TempGguf file("nan", bad.b.build());
  const std::string &path = file.path;
  ModelWeights w;
  LoadOptions options;
  options.lazy = true;
  Status s = loadGgufModel(path, w, options);
  ASSERT_TRUE(s.isOk()) << s.message();
  s = w.materialize("model.layers.0.mlp.down_proj.weight");
  ASSERT_FALSE(s.isOk());
  EXPECT_EQ(s.message().rfind(path, 0), 0u) << s.message();
  EXPECT_NE(s.message().find("'blk.0.ffn_down.weight'"), std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("NaN) at flat index 19"), std::string::npos)
      << s.message();
  std::vector<float> rows;
  s = w.find("model.layers.0.mlp.down_proj.weight")->load(7, 2, rows);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("outside its 8 rows"), std::string::npos)
      << s.message();
}

// The bundled SmolLM2 (Q8_0 embeddings, Q4_1 linears with permuted Q/K,
// F32 norms): every tensor of a lazy load equals the eager load's.
TEST(GgufModel, BundledSmolLM2LazyLoadEqualsEagerLoad) {
  expectLazyEqualsEager(kSmol);
}
