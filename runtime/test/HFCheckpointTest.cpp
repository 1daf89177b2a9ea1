//===- HFCheckpointTest.cpp - Tests for HF checkpoint I/O -------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// A tiny LLaMA (dim 8, 2 layers, 2 heads, 1 KV head, vocab 16) written with
// writeHFCheckpoint in F32/F16/BF16, single-file and sharded, and loaded
// back; then each config.json, index and shard defect is introduced by
// editing the written files, and the loader must name the file and tensor.
// The RoPE permutation is checked against its definition and by showing
// that attention scores are unchanged by the layout conversion.
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/HFCheckpoint.h"
#include "qc/runtime/Json.h"

#include "TestUtil.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <set>

#include <unistd.h>

using namespace qc;
using qc::json::Value;
namespace fs = std::filesystem;

namespace {

/// A tiny valid model with deterministic, distinct values.
ModelWeights tinyModel(bool tied = false, const std::string &type = "llama") {
  ModelWeights w;
  ModelConfig &c = w.config;
  c.modelType = type;
  c.dim = 8;
  c.hiddenDim = 16;
  c.nLayers = 2;
  c.nHeads = 2;
  c.nKVHeads = 1;
  c.headDim = 4;
  c.vocabSize = 16;
  c.maxSeqLen = 32;
  c.normEps = 1e-5f;
  c.ropeTheta = 10000.0f;
  c.tiedEmbeddings = tied;
  c.attentionBias = type == "qwen2";
  c.bosId = 1;
  c.eosId = 2;
  float seed = 0.0f;
  auto add = [&](const std::string &name, std::vector<int64_t> shape) {
    HostTensor t;
    t.shape = shape;
    t.data.resize(static_cast<size_t>(t.numElements()));
    for (float &v : t.data)
      v = std::sin(seed += 0.731f) * 1.7f;
    w.tensors[name] = std::move(t);
  };
  // The tensor set and order the config implies, as the validator sees it.
  for (const TensorSpec &spec : modelTensorSpecs(c))
    add(spec.name, spec.shape);
  return w;
}

/// Temporary directories named after this suite.
struct TempDir : qc::test::TempDir {
  TempDir() : qc::test::TempDir("qc_hf_") {}
};

std::string readText(const std::string &path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

void writeText(const std::string &path, const std::string &text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
}

Value readJson(const std::string &path) {
  Value v;
  Status s = json::parse(readText(path), v);
  EXPECT_TRUE(s.isOk()) << path << ": " << s.message();
  return v;
}

void writeJson(const std::string &path, const Value &v) {
  json::WriteOptions o;
  o.pretty = true;
  writeText(path, json::write(v, o));
}

/// A copy of object `v` without member `key`.
Value without(const Value &v, const std::string &key) {
  Value r = Value::object();
  for (const auto &m : v.asObject())
    if (m.first != key)
      r.set(m.first, m.second);
  return r;
}

/// Applies `edit` to dir/config.json.
void editConfig(const TempDir &dir, const std::function<void(Value &)> &edit) {
  Value cfg = readJson(dir.file("config.json"));
  edit(cfg);
  writeJson(dir.file("config.json"), cfg);
}

/// One tensor of a safetensors file, with its raw bytes.
struct RawTensor {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

std::vector<RawTensor> readAll(const std::string &path) {
  std::unique_ptr<SafetensorsFile> f;
  Status s = SafetensorsFile::open(path, f);
  EXPECT_TRUE(s.isOk()) << s.message();
  std::vector<RawTensor> r;
  if (!f)
    return r;
  for (const TensorInfo &t : f->tensors())
    r.push_back({t.name, t.dtype, t.shape,
                 std::vector<uint8_t>(f->tensorData(t),
                                      f->tensorData(t) + t.byteSize())});
  return r;
}

void writeAll(const std::string &path, const std::vector<RawTensor> &ts) {
  SafetensorsWriter w;
  ASSERT_TRUE(w.setMetadata({{"format", "pt"}}).isOk());
  for (const RawTensor &t : ts)
    ASSERT_TRUE(w.add(t.name, t.dtype, t.shape, t.bytes).isOk()) << t.name;
  ASSERT_TRUE(w.writeFile(path).isOk());
}

/// Asserts that loading `dir` fails with every fragment in the message.
void expectLoadError(const TempDir &dir, std::vector<std::string> fragments) {
  ModelWeights w;
  Status s = loadHFCheckpoint(dir.path, w);
  ASSERT_FALSE(s.isOk()) << "loaded a bad checkpoint";
  for (const std::string &f : fragments)
    EXPECT_NE(s.message().find(f), std::string::npos)
        << "missing '" << f << "' in: " << s.message();
}

/// Writes `w` into `dir` and expects success.
void writeOk(const TempDir &dir, const ModelWeights &w,
             DType dtype = DType::F32, uint64_t maxShardBytes = 0) {
  Status s = writeHFCheckpoint(dir.path, w, dtype, maxShardBytes);
  ASSERT_TRUE(s.isOk()) << s.message();
}

ModelWeights loadOk(const TempDir &dir) {
  ModelWeights w;
  Status s = loadHFCheckpoint(dir.path, w);
  EXPECT_TRUE(s.isOk()) << s.message();
  return w;
}

void expectSameConfig(const ModelConfig &a, const ModelConfig &b) {
  EXPECT_EQ(a.modelType, b.modelType);
  EXPECT_EQ(a.dim, b.dim);
  EXPECT_EQ(a.hiddenDim, b.hiddenDim);
  EXPECT_EQ(a.nLayers, b.nLayers);
  EXPECT_EQ(a.nHeads, b.nHeads);
  EXPECT_EQ(a.nKVHeads, b.nKVHeads);
  EXPECT_EQ(a.headDim, b.headDim);
  EXPECT_EQ(a.vocabSize, b.vocabSize);
  EXPECT_EQ(a.maxSeqLen, b.maxSeqLen);
  EXPECT_EQ(a.normEps, b.normEps);
  EXPECT_EQ(a.ropeTheta, b.ropeTheta);
  EXPECT_EQ(a.tiedEmbeddings, b.tiedEmbeddings);
  EXPECT_EQ(a.attentionBias, b.attentionBias);
  EXPECT_EQ(a.bosId, b.bosId);
  EXPECT_EQ(a.eosId, b.eosId);
  EXPECT_EQ(b.ropeLayout, RopeLayout::HalfSplit);
}

/// Loaded values must equal `round(original)` exactly.
void expectRoundedEqual(const ModelWeights &orig, const ModelWeights &got,
                        float (*round)(float)) {
  ASSERT_EQ(orig.tensors.size(), got.tensors.size());
  for (const auto &kv : orig.tensors) {
    const HostTensor *g = got.find(kv.first);
    ASSERT_NE(g, nullptr) << kv.first;
    ASSERT_EQ(g->shape, kv.second.shape) << kv.first;
    ASSERT_EQ(g->data.size(), kv.second.data.size());
    for (size_t i = 0; i < g->data.size(); ++i)
      ASSERT_EQ(g->data[i], round(kv.second.data[i]))
          << kv.first << "[" << i << "]";
  }
}

float identity(float v) { return v; }
float viaF16(float v) { return f16ToF32(f32ToF16(v)); }
float viaBF16(float v) { return bf16ToF32(f32ToBF16(v)); }

} // namespace

//===----------------------------------------------------------------------===//
// Round trips
//===----------------------------------------------------------------------===//

TEST(HFCheckpointRoundTrip, F32SingleFileIsExact) {
  TempDir dir;
  ModelWeights w = tinyModel();
  writeOk(dir, w);
  EXPECT_EQ(dir.list(),
            (std::vector<std::string>{"config.json", "model.safetensors"}));
  ModelWeights got = loadOk(dir);
  expectSameConfig(w.config, got.config);
  expectRoundedEqual(w, got, identity);
  std::unique_ptr<SafetensorsFile> f;
  ASSERT_TRUE(SafetensorsFile::open(dir.file("model.safetensors"), f).isOk());
  EXPECT_EQ(f->metadata().at("format"), "pt");
}

// A lazy load reads nothing up front: every tensor has its shape and
// reads, on materialize, exactly what an eager load holds; release frees
// it and it can be read again.
TEST(HFCheckpointLazy, MaterializedTensorsEqualAnEagerLoad) {
  for (DType dt : {DType::F32, DType::BF16}) {
    TempDir dir;
    ModelWeights w = tinyModel();
    writeOk(dir, w, dt, /*maxShardBytes=*/512);
    ModelWeights eager = loadOk(dir), lazy;
    LoadOptions options;
    options.lazy = true;
    Status s = loadHFCheckpoint(dir.path, lazy, options);
    ASSERT_TRUE(s.isOk()) << s.message();
    ASSERT_EQ(lazy.tensors.size(), eager.tensors.size());
    EXPECT_TRUE(lazy.hasLazyTensors());
    for (const auto &[name, t] : lazy.tensors) {
      EXPECT_FALSE(t.resident()) << name;
      EXPECT_TRUE(t.data.empty()) << name;
      EXPECT_EQ(t.shape, eager.tensors.at(name).shape) << name;
    }
    const std::string q = "model.layers.1.self_attn.q_proj.weight";
    ASSERT_TRUE(lazy.materialize(q).isOk());
    EXPECT_EQ(lazy.find(q)->data, eager.find(q)->data);
    lazy.release(q);
    EXPECT_FALSE(lazy.find(q)->resident());
    ASSERT_TRUE(lazy.materializeAll().isOk());
    EXPECT_FALSE(lazy.hasLazyTensors());
    for (const auto &[name, t] : eager.tensors)
      EXPECT_EQ(lazy.find(name)->data, t.data) << name;
    // Eagerly loaded tensors are never released.
    eager.release(q);
    EXPECT_EQ(eager.find(q)->data.size(), 8u * 8u);
  }
}

// What an eager load reports at once, a lazy one reports when it reads the
// tensor (naming file and tensor); what needs no values (an integer dtype,
// a tied head that differs) is still reported at open.
TEST(HFCheckpointLazy, BadTensorsAreReportedByName) {
  TempDir dir;
  ModelWeights w = tinyModel();
  writeOk(dir, w);
  std::vector<RawTensor> ts = readAll(dir.file("model.safetensors"));
  const std::string victim = "model.layers.0.mlp.up_proj.weight";
  for (RawTensor &t : ts)
    if (t.name == victim) {
      float nan = std::numeric_limits<float>::quiet_NaN();
      std::memcpy(t.bytes.data() + 4 * 5, &nan, 4);
    }
  writeAll(dir.file("model.safetensors"), ts);
  ModelWeights lazy;
  LoadOptions options;
  options.lazy = true;
  ASSERT_TRUE(loadHFCheckpoint(dir.path, lazy, options).isOk());
  Status s = lazy.materialize(victim);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find(victim), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("model.safetensors"), std::string::npos);
  EXPECT_NE(s.message().find("NaN"), std::string::npos) << s.message();
  EXPECT_FALSE(lazy.materializeAll().isOk());

  for (RawTensor &t : ts)
    if (t.name == victim) {
      t.dtype = DType::I32;
    }
  writeAll(dir.file("model.safetensors"), ts);
  ModelWeights again;
  s = loadHFCheckpoint(dir.path, again, options);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find(victim), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("I32"), std::string::npos) << s.message();
}

TEST(HFCheckpointLazy, TiedHeadIsComparedWithoutAnEagerLoad) {
  for (bool same : {true, false}) {
    TempDir dir;
    ModelWeights w = tinyModel(/*tied=*/true);
    writeOk(dir, w);
    // Exporters that save the shared matrix twice: lm_head next to it.
    std::vector<RawTensor> ts = readAll(dir.file("model.safetensors"));
    for (const RawTensor &t : std::vector<RawTensor>(ts))
      if (t.name == "model.embed_tokens.weight") {
        RawTensor head = t;
        head.name = "lm_head.weight";
        if (!same)
          head.bytes[0] ^= 1;
        ts.push_back(head);
      }
    writeAll(dir.file("model.safetensors"), ts);
    ModelWeights lazy;
    LoadOptions options;
    options.lazy = true;
    Status s = loadHFCheckpoint(dir.path, lazy, options);
    EXPECT_EQ(s.isOk(), same) << s.message();
    if (same) {
      EXPECT_EQ(lazy.find("lm_head.weight"), nullptr);
      EXPECT_FALSE(lazy.find("model.embed_tokens.weight")->resident());
    } else {
      EXPECT_NE(s.message().find("differs"), std::string::npos) << s.message();
    }
  }
}

TEST(HFCheckpointRoundTrip, F16AndBF16RoundToNearestEven) {
  for (DType dt : {DType::F16, DType::BF16}) {
    TempDir dir;
    ModelWeights w = tinyModel();
    writeOk(dir, w, dt);
    ModelWeights got = loadOk(dir);
    expectSameConfig(w.config, got.config);
    expectRoundedEqual(w, got, dt == DType::F16 ? viaF16 : viaBF16);
    std::unique_ptr<SafetensorsFile> f;
    ASSERT_TRUE(SafetensorsFile::open(dir.file("model.safetensors"), f).isOk());
    for (const TensorInfo &t : f->tensors())
      EXPECT_EQ(t.dtype, dt) << t.name;
    EXPECT_EQ(readJson(dir.file("config.json")).find("torch_dtype")->asString(),
              dt == DType::F16 ? "float16" : "bfloat16");
  }
}

TEST(HFCheckpointRoundTrip, ShardedWritesIndexAndLoadsBack) {
  for (DType dt : {DType::F32, DType::BF16}) {
    TempDir dir;
    ModelWeights w = tinyModel();
    // The largest tensor (16x8) is 512 bytes in F32: several shards.
    writeOk(dir, w, dt, 600);
    std::vector<std::string> files = dir.list();
    ASSERT_GT(files.size(), 3u);
    size_t n = files.size() - 2; // minus config and index
    char last[64];
    std::snprintf(last, sizeof(last), "model-%05zu-of-%05zu.safetensors", n, n);
    EXPECT_EQ(files[0], "config.json");
    EXPECT_EQ(files[1], "model-00001-of-" + std::string(last).substr(15));
    EXPECT_EQ(files[n], last);
    EXPECT_EQ(files.back(), "model.safetensors.index.json");

    Value index = readJson(dir.file("model.safetensors.index.json"));
    const Value *map = index.find("weight_map");
    ASSERT_NE(map, nullptr);
    ASSERT_EQ(map->asObject().size(), w.tensors.size());
    uint64_t total = 0;
    for (const auto &kv : w.tensors)
      total += kv.second.data.size() * (dt == DType::F32 ? 4 : 2);
    EXPECT_EQ(index.find("metadata")->find("total_size")->asUInt64(), total);
    // Keys sorted, and every shard within the limit unless it holds a
    // single tensor.
    for (size_t i = 1; i < map->asObject().size(); ++i)
      EXPECT_LT(map->asObject()[i - 1].first, map->asObject()[i].first);
    for (size_t i = 1; i <= n; ++i) {
      std::vector<RawTensor> ts = readAll(dir.file(files[i]));
      uint64_t bytes = 0;
      for (const RawTensor &t : ts)
        bytes += t.bytes.size();
      EXPECT_TRUE(bytes <= 600 || ts.size() == 1) << files[i];
    }

    ModelWeights got = loadOk(dir);
    expectSameConfig(w.config, got.config);
    expectRoundedEqual(w, got, dt == DType::F32 ? identity : viaBF16);
  }
}

TEST(HFCheckpointRoundTrip, TiedQwen2AndMistral) {
  {
    TempDir dir;
    ModelWeights w = tinyModel(/*tied=*/true, "qwen2");
    writeOk(dir, w);
    Value cfg = readJson(dir.file("config.json"));
    EXPECT_EQ(cfg.find("architectures")->asArray()[0].asString(),
              "Qwen2ForCausalLM");
    EXPECT_TRUE(cfg.find("tie_word_embeddings")->asBool());
    EXPECT_EQ(cfg.find("attention_bias"), nullptr);
    ModelWeights got = loadOk(dir);
    EXPECT_TRUE(got.config.attentionBias);
    EXPECT_EQ(got.find("lm_head.weight"), nullptr);
    expectRoundedEqual(w, got, identity);
  }
  {
    TempDir dir;
    ModelWeights w = tinyModel(false, "mistral");
    writeOk(dir, w);
    Value cfg = readJson(dir.file("config.json"));
    EXPECT_EQ(cfg.find("architectures")->asArray()[0].asString(),
              "MistralForCausalLM");
    ASSERT_NE(cfg.find("sliding_window"), nullptr);
    EXPECT_TRUE(cfg.find("sliding_window")->isNull());
    ModelWeights got = loadOk(dir);
    expectSameConfig(w.config, got.config);
  }
}

TEST(HFCheckpointRoundTrip, ConfigJsonContents) {
  TempDir dir;
  writeOk(dir, tinyModel(), DType::BF16);
  std::string text = readText(dir.file("config.json"));
  // Floats in their shortest form, keys sorted, trailing newline.
  EXPECT_NE(text.find("\"rms_norm_eps\": 1e-05,"), std::string::npos) << text;
  EXPECT_NE(text.find("\"rope_theta\": 10000,"), std::string::npos) << text;
  EXPECT_NE(text.find("\"rope_scaling\": null,"), std::string::npos) << text;
  EXPECT_EQ(text.back(), '\n');
  Value cfg = readJson(dir.file("config.json"));
  std::vector<std::string> keys;
  for (const auto &m : cfg.asObject())
    keys.push_back(m.first);
  EXPECT_TRUE(std::is_sorted(keys.begin(), keys.end()));
  EXPECT_EQ(cfg.find("architectures")->asArray()[0].asString(),
            "LlamaForCausalLM");
  EXPECT_EQ(cfg.find("model_type")->asString(), "llama");
  EXPECT_EQ(cfg.find("hidden_size")->asInt64(), 8);
  EXPECT_EQ(cfg.find("intermediate_size")->asInt64(), 16);
  EXPECT_EQ(cfg.find("num_key_value_heads")->asInt64(), 1);
  EXPECT_EQ(cfg.find("head_dim")->asInt64(), 4);
  EXPECT_EQ(cfg.find("hidden_act")->asString(), "silu");
  EXPECT_FALSE(cfg.find("tie_word_embeddings")->asBool());
  EXPECT_FALSE(cfg.find("attention_bias")->asBool());
}

TEST(HFCheckpointRoundTrip, RewritingWithOtherShardingRemovesStaleFiles) {
  TempDir dir;
  ModelWeights w = tinyModel();
  writeOk(dir, w, DType::F32, 600);
  writeText(dir.file("tokenizer.json"), "{}"); // not ours: must survive
  writeOk(dir, w, DType::F32, 0);
  EXPECT_EQ(dir.list(),
            (std::vector<std::string>{"config.json", "model.safetensors",
                                      "tokenizer.json"}));
  loadOk(dir);
  writeOk(dir, w, DType::F32, 600);
  std::vector<std::string> files = dir.list();
  EXPECT_EQ(std::count(files.begin(), files.end(), "model.safetensors"), 0);
  EXPECT_EQ(std::count(files.begin(), files.end(), "tokenizer.json"), 1);
  loadOk(dir);
}

TEST(HFCheckpointRoundTrip, FailedWriteKeepsThePreviousCheckpoint) {
  TempDir dir;
  ModelWeights a = tinyModel();
  writeOk(dir, a);
  ModelWeights b = tinyModel();
  for (auto &kv : b.tensors)
    for (float &v : kv.second.data)
      v *= 2;
  setAtomicWriteFaultForTesting(100);
  Status s = writeHFCheckpoint(dir.path, b, DType::F32);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("model.safetensors: write failed"),
            std::string::npos)
      << s.message();
  EXPECT_EQ(dir.list(),
            (std::vector<std::string>{"config.json", "model.safetensors"}));
  expectRoundedEqual(a, loadOk(dir), identity);
}

TEST(HFCheckpointWrite, RejectsInvalidInput) {
  TempDir dir;
  ModelWeights w = tinyModel();
  Status s = writeHFCheckpoint(dir.path, w, DType::I8);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("cannot write a checkpoint as I8"),
            std::string::npos);
  w.tensors["model.norm.weight"].data[2] = std::nanf("");
  s = writeHFCheckpoint(dir.path, w, DType::F16);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("tensor \"model.norm.weight\" has a non-finite "
                             "value (NaN) at flat index 2"),
            std::string::npos)
      << s.message();
  w = tinyModel();
  w.config.modelType = "gpt2";
  s = writeHFCheckpoint(dir.path, w, DType::F32);
  EXPECT_NE(s.message().find("model type \"gpt2\" cannot be written"),
            std::string::npos);
  w = tinyModel();
  w.config.attentionBias = true; // llama cannot express q/k/v-only biases
  s = writeHFCheckpoint(dir.path, w, DType::F32);
  EXPECT_NE(s.message().find("use qwen2"), std::string::npos) << s.message();
  EXPECT_TRUE(dir.list().empty()) << "nothing may be written on failure";
}

//===----------------------------------------------------------------------===//
// RoPE layout
//===----------------------------------------------------------------------===//

TEST(HFPermute, MatchesTransformersPermute) {
  // One head, headDim 4, rows of length 1: interleaved pairs (0,1), (2,3)
  // become half-split pairs (0,2), (1,3).
  float src[4] = {10, 11, 12, 13}, dst[4];
  permuteInterleavedToHalfSplit(src, dst, 1, 4, 1);
  EXPECT_EQ(std::vector<float>(dst, dst + 4),
            (std::vector<float>{10, 12, 11, 13}));
  // Two heads, headDim 6, rows of length 2: row h*6 + 2i + e -> h*6 + 3e + i.
  std::vector<float> s(24), d(24);
  for (int i = 0; i < 24; ++i)
    s[i] = static_cast<float>(i);
  permuteInterleavedToHalfSplit(s.data(), d.data(), 2, 6, 2);
  for (int h = 0; h < 2; ++h)
    for (int i = 0; i < 3; ++i)
      for (int e = 0; e < 2; ++e)
        for (int c = 0; c < 2; ++c)
          EXPECT_EQ(d[(h * 6 + 3 * e + i) * 2 + c],
                    s[(h * 6 + 2 * i + e) * 2 + c]);
}

TEST(HFPermute, InverseRestoresTheInput) {
  std::vector<float> s(3 * 8 * 5), mid(s.size()), back(s.size());
  for (size_t i = 0; i < s.size(); ++i)
    s[i] = std::cos(static_cast<float>(i) * 1.3f);
  permuteInterleavedToHalfSplit(s.data(), mid.data(), 3, 8, 5);
  EXPECT_NE(mid, s);
  permuteHalfSplitToInterleaved(mid.data(), back.data(), 3, 8, 5);
  EXPECT_EQ(back, s);
}

namespace {
/// y = W x for W [rows, cols] row-major.
std::vector<double> matVec(const std::vector<float> &w, const float *x,
                           int64_t rows, int64_t cols) {
  std::vector<double> y(rows, 0.0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      y[r] += double(w[r * cols + c]) * x[c];
  return y;
}

/// Applies RoPE at position `pos` to each head of `v` in place; pairs are
/// (2i, 2i+1) when interleaved, (i, i + headDim/2) otherwise, with the same
/// frequency theta^(-2i/headDim) for pair i.
void rope(std::vector<double> &v, int64_t headDim, int pos, bool interleaved) {
  int64_t half = headDim / 2;
  for (size_t h = 0; h < v.size() / headDim; ++h)
    for (int64_t i = 0; i < half; ++i) {
      double ang = pos * std::pow(10000.0, -2.0 * i / headDim);
      size_t a = h * headDim + (interleaved ? 2 * i : i);
      size_t b = h * headDim + (interleaved ? 2 * i + 1 : i + half);
      double x = v[a], y = v[b];
      v[a] = x * std::cos(ang) - y * std::sin(ang);
      v[b] = x * std::sin(ang) + y * std::cos(ang);
    }
}
} // namespace

TEST(HFPermute, AttentionScoresAreUnchangedByTheConversion) {
  // The point of the permutation: Interleaved weights with interleaved RoPE
  // and the permuted weights with rotate_half RoPE give identical scores.
  ModelWeights w = tinyModel();
  const auto &wq = w.tensors["model.layers.0.self_attn.q_proj.weight"].data;
  const auto &wk = w.tensors["model.layers.0.self_attn.k_proj.weight"].data;
  std::vector<float> pq(wq.size()), pk(wk.size());
  permuteInterleavedToHalfSplit(wq.data(), pq.data(), 2, 4, 8);
  permuteInterleavedToHalfSplit(wk.data(), pk.data(), 1, 4, 8);
  float x1[8], x2[8];
  for (int i = 0; i < 8; ++i) {
    x1[i] = std::sin(i + 0.5f);
    x2[i] = std::cos(i * 0.7f);
  }
  for (int pos : {0, 1, 5, 17}) {
    std::vector<double> q1 = matVec(wq, x1, 8, 8), k1 = matVec(wk, x2, 4, 8);
    std::vector<double> q2 = matVec(pq, x1, 8, 8), k2 = matVec(pk, x2, 4, 8);
    rope(q1, 4, pos, true);
    rope(k1, 4, pos + 3, true);
    rope(q2, 4, pos, false);
    rope(k2, 4, pos + 3, false);
    for (int h = 0; h < 2; ++h) { // both query heads share KV head 0
      double s1 = 0, s2 = 0;
      for (int d = 0; d < 4; ++d) {
        s1 += q1[h * 4 + d] * k1[d];
        s2 += q2[h * 4 + d] * k2[d];
      }
      EXPECT_NEAR(s1, s2, 1e-9) << "pos " << pos << " head " << h;
    }
  }
}

TEST(HFPermute, InterleavedModelIsWrittenHalfSplit) {
  TempDir dir;
  ModelWeights w = tinyModel(false, "qwen2"); // biases get permuted too
  w.config.ropeLayout = RopeLayout::Interleaved;
  writeOk(dir, w);
  ModelWeights got = loadOk(dir);
  EXPECT_EQ(got.config.ropeLayout, RopeLayout::HalfSplit);
  for (int l = 0; l < 2; ++l) {
    for (const char *proj : {"q_proj", "k_proj"}) {
      int64_t heads = proj[0] == 'q' ? 2 : 1;
      for (const char *kind : {"weight", "bias"}) {
        std::string name =
            layerTensorName(l, std::string("self_attn.") + proj + "." + kind);
        const HostTensor &orig = w.tensors[name];
        std::vector<float> want(orig.data.size());
        permuteInterleavedToHalfSplit(orig.data.data(), want.data(), heads, 4,
                                      kind[0] == 'w' ? 8 : 1);
        EXPECT_EQ(got.find(name)->data, want) << name;
        EXPECT_NE(got.find(name)->data, orig.data) << name;
      }
    }
    std::string v = layerTensorName(l, "self_attn.v_proj.weight");
    EXPECT_EQ(got.find(v)->data, w.tensors[v].data) << "v is not rotated";
  }
}

//===----------------------------------------------------------------------===//
// config.json
//===----------------------------------------------------------------------===//

namespace {
/// Writes a checkpoint, edits its config, and expects parseHFConfig to fail
/// naming config.json and every fragment.
void expectConfigError(const std::function<void(Value &)> &edit,
                       std::vector<std::string> fragments) {
  TempDir dir;
  writeOk(dir, tinyModel());
  editConfig(dir, edit);
  ModelConfig c;
  std::string path = dir.file("config.json");
  Status s = parseHFConfig(path, c);
  ASSERT_FALSE(s.isOk());
  EXPECT_EQ(s.message().rfind(path + ": ", 0), 0u) << s.message();
  for (const std::string &f : fragments)
    EXPECT_NE(s.message().find(f), std::string::npos)
        << "missing '" << f << "' in: " << s.message();
  // The loader reports the same problem.
  expectLoadError(dir, fragments);
}

/// Writes a checkpoint, edits its config and returns the parsed config.
ModelConfig configAfter(const std::function<void(Value &)> &edit,
                        const std::string &type = "llama") {
  TempDir dir;
  writeOk(dir, tinyModel(false, type));
  editConfig(dir, edit);
  ModelConfig c;
  Status s = parseHFConfig(dir.file("config.json"), c);
  EXPECT_TRUE(s.isOk()) << s.message();
  return c;
}
} // namespace

TEST(HFConfig, UnknownModelType) {
  expectConfigError(
      [](Value &c) { c.set("model_type", Value::string("gpt2")); },
      {"field \"model_type\" is \"gpt2\"", "supported: llama, mistral, qwen2"});
  expectConfigError([](Value &c) { c = without(c, "model_type"); },
                    {"field \"model_type\" is missing"});
}

TEST(HFConfig, MissingOrWrongTypedFields) {
  for (const char *field :
       {"hidden_size", "intermediate_size", "num_hidden_layers",
        "num_attention_heads", "vocab_size", "max_position_embeddings",
        "rms_norm_eps"})
    expectConfigError([&](Value &c) { c = without(c, field); },
                      {std::string("field \"") + field + "\" is missing"});
  expectConfigError([](Value &c) { c.set("hidden_size", Value::string("8")); },
                    {"field \"hidden_size\" must be an integer, found string"});
  expectConfigError([](Value &c) { c.set("hidden_size", Value::number(8.5)); },
                    {"field \"hidden_size\" must be an integer, found number"});
  expectConfigError(
      [](Value &c) { c.set("tie_word_embeddings", Value::integer(1)); },
      {"field \"tie_word_embeddings\" must be true or false"});
  expectConfigError(
      [](Value &c) { c.set("eos_token_id", Value::string("</s>")); },
      {"field \"eos_token_id\" must be an integer or a list of integers"});
  expectConfigError([](Value &c) { c.set("rope_theta", Value::boolean(true)); },
                    {"field \"rope_theta\" must be a number, found bool"});
}

TEST(HFConfig, RefusesAlreadyQuantizedCheckpoints) {
  expectConfigError(
      [](Value &c) {
        Value q = Value::object();
        q.set("quant_method", Value::string("gptq"));
        q.set("bits", Value::integer(4));
        c.set("quantization_config", q);
      },
      {"field \"quantization_config\" is present (quant_method \"gptq\")",
       "already quantized"});
}

TEST(HFConfig, QuantizedCheckpointLoadersGetTheQuantizationConfig) {
  TempDir dir;
  writeOk(dir, tinyModel());
  Value q = Value::object();
  q.set("quant_method", Value::string("awq"));
  q.set("bits", Value::integer(4));
  editConfig(dir, [&](Value &c) { c.set("quantization_config", q); });
  ModelConfig c;
  Value got;
  Status s = parseHFConfig(dir.file("config.json"), c, got);
  ASSERT_TRUE(s.isOk()) << s.message();
  EXPECT_TRUE(got == q);
  EXPECT_EQ(c.dim, tinyModel().config.dim);
  // The other refusals still apply.
  editConfig(dir, [](Value &c) { c.set("hidden_act", Value::string("gelu")); });
  EXPECT_FALSE(parseHFConfig(dir.file("config.json"), c, got).isOk());

  // A float config has none; the writer's text round-trips one.
  TempDir plain;
  writeOk(plain, tinyModel());
  ASSERT_TRUE(parseHFConfig(plain.file("config.json"), c, got).isOk());
  EXPECT_TRUE(got.isNull());
  writeText(plain.file("config.json"),
            buildHFConfigJson(tinyModel().config, DType::F16, &q));
  ASSERT_TRUE(parseHFConfig(plain.file("config.json"), c, got).isOk());
  EXPECT_TRUE(got == q);
  EXPECT_EQ(readJson(plain.file("config.json")).find("torch_dtype")->asString(),
            "float16");
}

TEST(HFConfig, RefusesUnsupportedFeatures) {
  // RoPE scaling types qc does not implement, and unknown parameters.
  for (const char *type : {"dynamic", "longrope", "su"})
    expectConfigError(
        [&](Value &c) {
          Value r = Value::object();
          r.set("type", Value::string(type));
          r.set("factor", Value::number(2.0));
          c.set("rope_scaling", r);
        },
        {"field \"rope_scaling.type\" is \"" + std::string(type) + "\"",
         "not implemented (implemented: default, linear, llama3, yarn)"});
  expectConfigError(
      [](Value &c) {
        Value r = Value::object();
        r.set("rope_type", Value::string("linear"));
        r.set("factor", Value::number(2.0));
        r.set("short_factor", Value::number(2.0));
        c.set("rope_parameters", r);
      },
      {"field \"rope_parameters.short_factor\" is not a RoPE parameter"});
  expectConfigError(
      [](Value &c) {
        Value r = Value::object();
        r.set("rope_type", Value::string("llama3"));
        r.set("factor", Value::number(8.0));
        c.set("rope_scaling", r);
      },
      {"field \"rope_scaling.low_freq_factor\" is missing"});
  expectConfigError(
      [](Value &c) {
        Value r = Value::object();
        r.set("rope_type", Value::string("linear"));
        r.set("factor", Value::number(0.5));
        c.set("rope_scaling", r);
      },
      {"rope scaling 'linear': factor must be a finite number >= 1"});
  expectConfigError(
      [](Value &c) { c.set("partial_rotary_factor", Value::number(1.5)); },
      {"field \"partial_rotary_factor\" must be in (0, 1]"});
  expectConfigError(
      [](Value &c) { c.set("partial_rotary_factor", Value::number(0.3)); },
      {"field \"partial_rotary_factor\" gives a rotary dimension of 1"});
  // Keys that change the function and that qc does not implement.
  for (const char *key :
       {"final_logit_softcapping", "attn_logit_softcapping", "logits_scaling",
        "embedding_multiplier", "use_qk_norm", "some_future_key"})
    expectConfigError(
        [&](Value &c) { c.set(key, Value::number(30.0)); },
        {"field \"" + std::string(key) + "\" is not understood by qc",
         "refusing rather than ignoring"});
  expectConfigError(
      [](Value &c) {
        Value types = Value::array();
        types.push(Value::string("full_attention"));
        types.push(Value::string("linear_attention"));
        c.set("layer_types", types);
      },
      {"field \"layer_types\" names the layer type \"linear_attention\""});
  expectConfigError(
      [](Value &c) { c.set("hidden_act", Value::string("gelu")); },
      {"field \"hidden_act\" must be \"silu\""});
  expectConfigError(
      [](Value &c) { c.set("attention_bias", Value::boolean(true)); },
      {"field \"attention_bias\" is true", "o_proj bias"});
  expectConfigError([](Value &c) { c.set("mlp_bias", Value::boolean(true)); },
                    {"field \"mlp_bias\" is true"});
}

TEST(HFConfig, InconsistentSizes) {
  expectConfigError(
      [](Value &c) { c.set("num_key_value_heads", Value::integer(3)); },
      {"nHeads (2) must be a multiple of nKVHeads (3)"});
  expectConfigError(
      [](Value &c) {
        c = without(c, "head_dim");
        c.set("hidden_size", Value::integer(9));
      },
      {"field \"hidden_size\" (9) is not a multiple of num_attention_heads"});
  expectConfigError([](Value &c) { c.set("vocab_size", Value::integer(0)); },
                    {"vocabSize must be positive, got 0"});
  // Refused before anything is sized by it.
  expectConfigError(
      [](Value &c) {
        c.set("num_hidden_layers", Value::integer(int64_t(1) << 40));
      },
      {"nLayers 1099511627776 is more than 4096"});
}

TEST(HFConfig, NotAnObjectOrNotJson) {
  TempDir dir;
  writeText(dir.file("config.json"), "[1, 2]");
  ModelConfig c;
  Status s = parseHFConfig(dir.file("config.json"), c);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("config.json: the top level must be a JSON "
                             "object, found array"),
            std::string::npos);
  writeText(dir.file("config.json"), "{\"model_type\": \"llama\",}");
  s = parseHFConfig(dir.file("config.json"), c);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("config.json: JSON error at byte 23"),
            std::string::npos)
      << s.message();
  s = parseHFConfig(dir.file("missing.json"), c);
  EXPECT_NE(s.message().find("missing.json: cannot open"), std::string::npos);
}

TEST(HFConfig, DefaultsAndVariants) {
  ModelConfig c = configAfter([](Value &v) {
    v = without(v, "num_key_value_heads");
    v = without(v, "head_dim");
    v = without(v, "rope_theta");
    v = without(v, "tie_word_embeddings");
    v = without(v, "bos_token_id");
    v.set("eos_token_id", Value());
  });
  EXPECT_EQ(c.nKVHeads, 2);
  EXPECT_EQ(c.headDim, 4);
  EXPECT_EQ(c.ropeTheta, 10000.0f);
  EXPECT_FALSE(c.tiedEmbeddings);
  EXPECT_EQ(c.bosId, 1);
  EXPECT_EQ(c.eosId, 2);
  EXPECT_FALSE(c.attentionBias);

  c = configAfter([](Value &v) {
    Value eos = Value::array();
    eos.push(Value::integer(7));
    eos.push(Value::integer(3));
    v.set("eos_token_id", eos);
    v.set("rope_theta", Value::number(500000.0));
    v.set("rms_norm_eps", Value::number(1e-6));
  });
  EXPECT_EQ(c.eosId, 7);
  EXPECT_EQ(c.ropeTheta, 500000.0f);
  EXPECT_EQ(c.normEps, 1e-6f);

  // Mistral's window caps the usable context; qwen2 always has biases.
  c = configAfter([](Value &v) { v.set("sliding_window", Value::integer(16)); },
                  "mistral");
  EXPECT_EQ(c.maxSeqLen, 16);
  c = configAfter([](Value &v) { v.set("sliding_window", Value::integer(64)); },
                  "mistral");
  EXPECT_EQ(c.maxSeqLen, 32);
  c = configAfter([](Value &) {}, "qwen2");
  EXPECT_TRUE(c.attentionBias);
  EXPECT_EQ(c.slidingWindow, 0);
  // qwen2's window applies only with use_sliding_window; layer_types may
  // also ask for it.
  c = configAfter(
      [](Value &v) {
        v.set("sliding_window", Value::integer(16));
        v.set("use_sliding_window", Value::boolean(false));
      },
      "qwen2");
  EXPECT_EQ(c.maxSeqLen, 32);
  c = configAfter(
      [](Value &v) {
        v.set("sliding_window", Value::integer(16));
        v.set("use_sliding_window", Value::boolean(true));
      },
      "qwen2");
  EXPECT_EQ(c.maxSeqLen, 16);
  EXPECT_EQ(c.slidingWindow, 16);
  c = configAfter([](Value &v) {
    Value types = Value::array();
    types.push(Value::string("sliding_attention"));
    types.push(Value::string("full_attention"));
    v.set("layer_types", types);
    v.set("sliding_window", Value::integer(8));
  });
  EXPECT_EQ(c.maxSeqLen, 8);
}

TEST(HFConfig, RopeThetaScalingAndPartialRotary) {
  // rope_theta inside rope_parameters (transformers 5) wins over the old
  // top-level spelling.
  ModelConfig c = configAfter([](Value &v) {
    Value r = Value::object();
    r.set("rope_type", Value::string("default"));
    r.set("rope_theta", Value::number(250000.0));
    v.set("rope_parameters", r);
  });
  EXPECT_EQ(c.ropeTheta, 250000.0f);
  EXPECT_EQ(c.ropeScaling.type, qc::RopeScalingType::None);

  c = configAfter([](Value &v) {
    Value r = Value::object();
    r.set("rope_type", Value::string("llama3"));
    r.set("factor", Value::number(8.0));
    r.set("low_freq_factor", Value::number(1.0));
    r.set("high_freq_factor", Value::number(4.0));
    r.set("original_max_position_embeddings", Value::integer(8192));
    v.set("rope_scaling", r);
  });
  EXPECT_EQ(c.ropeScaling.type, qc::RopeScalingType::Llama3);
  EXPECT_EQ(c.ropeScaling.factor, 8.0);
  EXPECT_EQ(c.ropeScaling.originalMaxPositions, 8192);

  c = configAfter([](Value &v) {
    Value r = Value::object();
    r.set("type", Value::string("yarn"));
    r.set("factor", Value::number(4.0));
    r.set("beta_fast", Value::number(16.0));
    r.set("original_max_position_embeddings", Value::integer(16));
    v.set("rope_scaling", r);
    v.set("partial_rotary_factor", Value::number(0.5));
  });
  EXPECT_EQ(c.ropeScaling.type, qc::RopeScalingType::Yarn);
  EXPECT_EQ(c.ropeScaling.betaFast, 16.0);
  EXPECT_EQ(c.rotaryDim, 2); // head_dim 4 * 0.5
  // A scaled model writes its scaling back out.
  ModelWeights w = tinyModel();
  w.config.ropeScaling = c.ropeScaling;
  w.config.rotaryDim = 2;
  std::string text = buildHFConfigJson(w.config, DType::F32, nullptr);
  EXPECT_NE(text.find("\"rope_type\": \"yarn\""), std::string::npos) << text;
  EXPECT_NE(text.find("\"partial_rotary_factor\": 0.5"), std::string::npos)
      << text;
}

TEST(HFConfig, RopeFrequenciesOfEachScaling) {
  ModelConfig c;
  c.headDim = 128;
  c.ropeTheta = 500000.0f;
  c.maxSeqLen = 131072;
  qc::RopeParameters p;
  ASSERT_TRUE(computeRopeParameters(c, p));
  ASSERT_EQ(p.invFreq.size(), 64u);
  EXPECT_TRUE(p.isDefault);
  EXPECT_EQ(p.invFreq[0], 1.0f);
  EXPECT_NEAR(p.invFreq[1], std::pow(500000.0, -2.0 / 128), 1e-7);
  std::vector<float> base = p.invFreq;

  // Llama 3.1 8B's rope_scaling: high frequencies (wavelength < 2048) kept,
  // low ones (wavelength > 8192) divided by 8, the band between blended.
  c.ropeScaling.type = qc::RopeScalingType::Llama3;
  c.ropeScaling.factor = 8.0;
  c.ropeScaling.lowFreqFactor = 1.0;
  c.ropeScaling.highFreqFactor = 4.0;
  c.ropeScaling.originalMaxPositions = 8192;
  ASSERT_TRUE(computeRopeParameters(c, p));
  EXPECT_FALSE(p.isDefault);
  int kept = 0, divided = 0, blended = 0;
  for (size_t i = 0; i < base.size(); ++i) {
    double wavelen = 2 * M_PI / base[i];
    if (wavelen < 2048) {
      EXPECT_EQ(p.invFreq[i], base[i]) << i;
      ++kept;
    } else if (wavelen > 8192) {
      EXPECT_FLOAT_EQ(p.invFreq[i], base[i] / 8.0f) << i;
      ++divided;
    } else {
      double smooth = (8192 / wavelen - 1.0) / 3.0;
      EXPECT_NEAR(p.invFreq[i], (1 - smooth) * base[i] / 8 + smooth * base[i],
                  1e-6 * base[i])
          << i;
      ++blended;
    }
  }
  EXPECT_GT(kept, 0);
  EXPECT_GT(divided, 0);
  EXPECT_GT(blended, 0);

  // Linear: every frequency / factor.
  c.ropeScaling = qc::RopeScaling();
  c.ropeScaling.type = qc::RopeScalingType::Linear;
  c.ropeScaling.factor = 2.0;
  ASSERT_TRUE(computeRopeParameters(c, p));
  for (size_t i = 0; i < base.size(); ++i)
    EXPECT_EQ(p.invFreq[i], base[i] / 2.0f);
  EXPECT_EQ(p.attentionScaling, 1.0f);

  // YaRN (Qwen2.5's factor 4 over 32768): attention factor 0.1 ln 4 + 1,
  // the first pairs extrapolated (unchanged), the last interpolated.
  c.ropeTheta = 1000000.0f;
  c.ropeScaling = qc::RopeScaling();
  c.ropeScaling.type = qc::RopeScalingType::Yarn;
  c.ropeScaling.factor = 4.0;
  c.ropeScaling.originalMaxPositions = 32768;
  ASSERT_TRUE(computeRopeParameters(c, p));
  EXPECT_FLOAT_EQ(p.attentionScaling,
                  static_cast<float>(0.1 * std::log(4.0) + 1));
  qc::RopeParameters plain;
  ModelConfig d = c;
  d.ropeScaling = qc::RopeScaling();
  ASSERT_TRUE(computeRopeParameters(d, plain));
  EXPECT_EQ(p.invFreq[0], plain.invFreq[0]);
  EXPECT_FLOAT_EQ(p.invFreq[63], plain.invFreq[63] / 4.0f);
  c.ropeScaling.mscale = 1.0;
  c.ropeScaling.mscaleAllDim = 1.0;
  ASSERT_TRUE(computeRopeParameters(c, p));
  EXPECT_EQ(p.attentionScaling, 1.0f); // DeepSeek-style ratio of equal mscales

  // Partial rotary: dim = rotaryDim, frequencies over that dimension.
  c.ropeScaling = qc::RopeScaling();
  c.rotaryDim = 32;
  ASSERT_TRUE(computeRopeParameters(c, p));
  EXPECT_EQ(p.invFreq.size(), 16u);
  EXPECT_NEAR(p.invFreq[1], std::pow(1000000.0, -2.0 / 32), 1e-7);
  EXPECT_FALSE(p.isDefault);
}

//===----------------------------------------------------------------------===//
// Config <-> weights
//===----------------------------------------------------------------------===//

TEST(HFLoad, ConfigShapeMismatchNamesTheTensor) {
  {
    TempDir dir;
    writeOk(dir, tinyModel());
    editConfig(
        dir, [](Value &c) { c.set("intermediate_size", Value::integer(32)); });
    expectLoadError(dir, {"tensor \"model.layers.0.mlp.gate_proj.weight\" has "
                          "shape [16, 8], expected [32, 8] = [hiddenDim, dim]",
                          "hiddenDim=32"});
  }
  {
    TempDir dir;
    writeOk(dir, tinyModel());
    editConfig(dir, [](Value &c) { c.set("vocab_size", Value::integer(20)); });
    expectLoadError(dir, {"tensor \"model.embed_tokens.weight\" has shape "
                          "[16, 8], expected [20, 8] = [vocabSize, dim]"});
  }
  {
    TempDir dir;
    writeOk(dir, tinyModel());
    editConfig(dir,
               [](Value &c) { c.set("num_hidden_layers", Value::integer(3)); });
    expectLoadError(dir, {dir.path + ": missing tensor \"model.layers.2."});
  }
  {
    TempDir dir;
    writeOk(dir, tinyModel());
    editConfig(dir,
               [](Value &c) { c.set("num_hidden_layers", Value::integer(1)); });
    expectLoadError(dir, {dir.path + ": unexpected tensor \"model.layers.1."});
  }
}

TEST(HFLoad, TiedEmbeddingsAgainstLmHead) {
  {
    // Tied with an identical lm_head: accepted, the duplicate dropped.
    TempDir dir;
    ModelWeights w = tinyModel();
    w.tensors["lm_head.weight"] = w.tensors["model.embed_tokens.weight"];
    writeOk(dir, w);
    editConfig(dir, [](Value &c) {
      c.set("tie_word_embeddings", Value::boolean(true));
    });
    ModelWeights got = loadOk(dir);
    EXPECT_TRUE(got.config.tiedEmbeddings);
    EXPECT_EQ(got.find("lm_head.weight"), nullptr);
  }
  {
    TempDir dir;
    writeOk(dir, tinyModel());
    editConfig(dir, [](Value &c) {
      c.set("tie_word_embeddings", Value::boolean(true));
    });
    expectLoadError(dir, {dir.path + ": config.json has tie_word_embeddings "
                                     "true but lm_head.weight differs"});
  }
  {
    TempDir dir;
    writeOk(dir, tinyModel(/*tied=*/true));
    editConfig(dir, [](Value &c) {
      c.set("tie_word_embeddings", Value::boolean(false));
    });
    expectLoadError(dir, {"lm_head.weight is missing but config.json has "
                          "tie_word_embeddings false"});
  }
}

TEST(HFLoad, NaNInAWeightNamesFileTensorAndIndex) {
  TempDir dir;
  writeOk(dir, tinyModel());
  std::vector<RawTensor> ts = readAll(dir.file("model.safetensors"));
  for (RawTensor &t : ts)
    if (t.name == "model.layers.1.mlp.up_proj.weight") {
      float nan = std::nanf("");
      std::memcpy(t.bytes.data() + 4 * 37, &nan, 4);
    }
  writeAll(dir.file("model.safetensors"), ts);
  expectLoadError(dir, {dir.file("model.safetensors") +
                        ": tensor \"model.layers.1.mlp.up_proj.weight\" (F32) "
                        "has a non-finite value (NaN) at flat index 37"});
}

TEST(HFLoad, UnsupportedDtypeNamesTensor) {
  TempDir dir;
  writeOk(dir, tinyModel());
  std::vector<RawTensor> ts = readAll(dir.file("model.safetensors"));
  for (RawTensor &t : ts)
    if (t.name == "model.norm.weight")
      t.dtype = DType::I32; // same byte size
  writeAll(dir.file("model.safetensors"), ts);
  expectLoadError(dir, {"model.safetensors: tensor \"model.norm.weight\" has "
                        "dtype I32"});
}

TEST(HFLoad, LegacyInvFreqBuffersAreIgnored) {
  TempDir dir;
  ModelWeights w = tinyModel();
  writeOk(dir, w);
  std::vector<RawTensor> ts = readAll(dir.file("model.safetensors"));
  ts.push_back({"model.layers.0.self_attn.rotary_emb.inv_freq",
                DType::F32,
                {2},
                std::vector<uint8_t>(8, 0)});
  writeAll(dir.file("model.safetensors"), ts);
  expectRoundedEqual(w, loadOk(dir), identity);
}

TEST(HFLoad, MissingOrAmbiguousWeightFiles) {
  {
    TempDir dir;
    writeOk(dir, tinyModel());
    fs::remove(dir.file("model.safetensors"));
    expectLoadError(dir, {"neither model.safetensors nor "
                          "model.safetensors.index.json exists"});
  }
  {
    TempDir dir;
    writeOk(dir, tinyModel(), DType::F32, 600);
    writeAll(dir.file("model.safetensors"), {});
    expectLoadError(dir, {"both model.safetensors and "
                          "model.safetensors.index.json exist"});
  }
  {
    TempDir dir;
    expectLoadError(dir, {"config.json: cannot open"});
  }
  {
    TempDir dir;
    writeOk(dir, tinyModel());
    std::string path = dir.file("model.safetensors");
    std::string bytes = readText(path);
    writeText(path, bytes.substr(0, bytes.size() - 3));
    expectLoadError(dir, {path + ": file is truncated"});
  }
}

//===----------------------------------------------------------------------===//
// Shard index consistency (row 8)
//===----------------------------------------------------------------------===//

namespace {
/// A sharded checkpoint plus helpers to damage it.
class HFShardedCheckpoint : public testing::Test {
protected:
  void SetUp() override {
    writeOk(dir, tinyModel(), DType::F32, 600);
    index = readJson(indexPath());
    for (const auto &m : index.find("weight_map")->asObject())
      shards.insert(m.second.asString());
    ASSERT_GE(shards.size(), 3u);
  }
  std::string indexPath() const {
    return dir.file("model.safetensors.index.json");
  }
  /// Shard holding `tensor` according to the index.
  std::string shardOf(const std::string &tensor) const {
    return index.find("weight_map")->find(tensor)->asString();
  }
  void setWeightMap(const Value &map) {
    index.set("weight_map", map);
    writeJson(indexPath(), index);
  }
  Value weightMap() const { return *index.find("weight_map"); }

  TempDir dir;
  Value index;
  std::set<std::string> shards;
};
} // namespace

TEST_F(HFShardedCheckpoint, LoadsWhenConsistent) { loadOk(dir); }

TEST_F(HFShardedCheckpoint, MissingShard) {
  std::string victim = shardOf("model.norm.weight");
  fs::remove(dir.file(victim));
  expectLoadError(
      dir, {indexPath() + ": shard \"" + victim + "\" (listed for tensor",
            "does not exist"});
}

TEST_F(HFShardedCheckpoint, TensorMissingFromItsShard) {
  Value map = weightMap();
  map.set("model.layers.0.mlp.extra.weight",
          Value::string(shardOf("model.norm.weight")));
  setWeightMap(map);
  expectLoadError(dir, {indexPath() +
                        ": tensor "
                        "\"model.layers.0.mlp.extra.weight\" is "
                        "listed for shard \"" +
                        shardOf("model.norm.weight") +
                        "\" but that shard does not contain it"});
}

TEST_F(HFShardedCheckpoint, TensorInTwoShards) {
  // Copy the norm weight into a second shard as well.
  std::string home = shardOf("model.norm.weight");
  std::string other = shardOf("model.embed_tokens.weight");
  ASSERT_NE(home, other);
  std::vector<RawTensor> src = readAll(dir.file(home));
  std::vector<RawTensor> dst = readAll(dir.file(other));
  for (const RawTensor &t : src)
    if (t.name == "model.norm.weight")
      dst.push_back(t);
  writeAll(dir.file(other), dst);
  expectLoadError(dir, {"tensor \"model.norm.weight\" is present in two "
                        "shards",
                        home, other});
}

TEST_F(HFShardedCheckpoint, ShardTensorNotInIndex) {
  setWeightMap(without(weightMap(), "model.layers.1.input_layernorm.weight"));
  expectLoadError(dir, {indexPath() + ": tensor "
                                      "\"model.layers.1.input_layernorm."
                                      "weight\" in shard \"",
                        "is not listed in the weight_map"});
}

TEST_F(HFShardedCheckpoint, IndexPointsToTheWrongShard) {
  std::string home = shardOf("model.norm.weight");
  std::string other = shardOf("model.embed_tokens.weight");
  Value map = weightMap();
  map.set("model.norm.weight", Value::string(other));
  setWeightMap(map);
  expectLoadError(dir, {"weight_map puts tensor \"model.norm.weight\" in \"" +
                        other + "\" but it is in \"" + home + "\""});
}

TEST_F(HFShardedCheckpoint, ShardPathsMustStayInsideTheDirectory) {
  for (const char *evil :
       {"../model-00001-of-00003.safetensors", "/etc/passwd", "..", ""}) {
    Value map = weightMap();
    map.set("model.norm.weight", Value::string(evil));
    setWeightMap(map);
    expectLoadError(dir, {"not a file name inside the checkpoint directory"});
  }
}

TEST_F(HFShardedCheckpoint, MalformedIndex) {
  writeText(indexPath(), "{\"weight_map\": {\"a\": 1}}");
  expectLoadError(dir, {indexPath() + ": weight_map entry for tensor \"a\" "
                                      "must be a string"});
  writeText(indexPath(), "{\"metadata\": {}}");
  expectLoadError(dir, {indexPath() + ": \"weight_map\" is missing"});
  writeText(indexPath(), "{\"weight_map\": {\"a\": \"x\", \"a\": \"y\"}}");
  expectLoadError(dir, {indexPath() + ": JSON error", "duplicate object key "
                                                      "\"a\""});
}

TEST_F(HFShardedCheckpoint, CorruptShardNamesTheShard) {
  std::string victim = shardOf("model.norm.weight");
  std::string bytes = readText(dir.file(victim));
  writeText(dir.file(victim), bytes + "polyglot");
  expectLoadError(dir, {dir.file(victim) + ": 8 trailing bytes"});
}

// A symlink is held to the rule of "../" in an index: a checkpoint's files
// must lie inside its folder.
TEST_F(HFShardedCheckpoint, ShardLinksMustStayInsideTheDirectory) {
  TempDir outside;
  std::string shard = shardOf("model.norm.weight");
  std::string moved = outside.file(shard);
  std::filesystem::rename(dir.file(shard), moved);
  ASSERT_EQ(::symlink(moved.c_str(), dir.file(shard).c_str()), 0);
  expectLoadError(dir, {dir.file(shard) + ": a link to", "outside the model "
                                                         "folder"});
  // A link that stays inside the folder is fine.
  ASSERT_EQ(::unlink(dir.file(shard).c_str()), 0);
  std::filesystem::rename(moved, dir.file("real.bin"));
  ASSERT_EQ(::symlink("real.bin", dir.file(shard).c_str()), 0);
  loadOk(dir);
}

TEST(HFLoad, SymlinkPolicy) {
  // model.safetensors linked from outside the folder: refused.
  TempDir src, outside;
  writeOk(src, tinyModel());
  std::string weights = outside.file("w.safetensors");
  std::filesystem::rename(src.file("model.safetensors"), weights);
  ASSERT_EQ(::symlink(weights.c_str(), src.file("model.safetensors").c_str()),
            0);
  expectLoadError(src, {"outside the model folder"});

  // The Hugging Face hub cache: snapshots/<rev>/ links into ../../blobs/.
  TempDir cache;
  std::string repo = cache.file("models--x--y");
  std::filesystem::create_directories(repo + "/blobs");
  std::filesystem::create_directories(repo + "/snapshots/abc");
  std::filesystem::rename(weights, repo + "/blobs/1234");
  std::filesystem::copy_file(src.file("config.json"), repo + "/blobs/5678");
  ASSERT_EQ(::symlink("../../blobs/1234",
                      (repo + "/snapshots/abc/model.safetensors").c_str()),
            0);
  ASSERT_EQ(::symlink("../../blobs/5678",
                      (repo + "/snapshots/abc/config.json").c_str()),
            0);
  ModelWeights w;
  Status s = loadHFCheckpoint(repo + "/snapshots/abc", w);
  EXPECT_TRUE(s.isOk()) << s.message();
}

TEST(HFLoad, FolderNamedLikeTheWeightFile) {
  TempDir dir;
  writeOk(dir, tinyModel());
  ASSERT_EQ(::unlink(dir.file("model.safetensors").c_str()), 0);
  std::filesystem::create_directory(dir.file("model.safetensors"));
  expectLoadError(
      dir, {dir.file("model.safetensors") + ": not a regular file (a folder)"});
}
