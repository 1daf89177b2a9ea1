//===- Llama2CTest.cpp - Tests for the llama2.c importer --------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Loads the bundled stories260K checkpoint (../shared/models/stories260K,
// reached through QC_SHARED_DIR) and checks config, shapes, parameter count
// and spot values cross-checked against a direct read of the file; then
// feeds hand-built tiny checkpoints, valid and corrupted, written to the
// test temp directory.
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/Llama2C.h"

#include "TestUtil.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

using namespace qc;

namespace {

const std::string kModelPath =
    std::string(QC_SHARED_DIR) + "/models/stories260K/stories260K.bin";

/// A tiny llama2.c checkpoint built in memory: header plus a float stream
/// whose k-th value is k, so every tensor's first element reveals the file
/// offset it was read from.
struct TinyModel {
  int32_t header[7] = {8, 12, 2, 2, 1, 16, 4}; // head size 4, kv dim 4
  std::vector<float> floats;

  int64_t dim() const { return header[0]; }
  int64_t hidden() const { return header[1]; }
  int64_t layers() const { return header[2]; }
  int64_t vocab() const { return std::abs(header[5]); }
  int64_t headSize() const { return header[0] / header[3]; }
  int64_t kvDim() const { return headSize() * header[4]; }

  /// Number of floats the layout implies (RoPE tables and lm_head included).
  int64_t floatCount() const {
    int64_t d = dim(), h = hidden(), L = layers();
    int64_t n = vocab() * d +
                L * (2 * d + d * d + 2 * kvDim() * d + d * d + 3 * h * d) + d +
                header[6] * headSize();
    if (header[5] < 0)
      n += vocab() * d;
    return n;
  }

  void fill() {
    floats.resize(static_cast<size_t>(floatCount()));
    for (size_t k = 0; k < floats.size(); ++k)
      floats[k] = static_cast<float>(k);
  }

  std::string bytes() const {
    std::string s(reinterpret_cast<const char *>(header), sizeof(header));
    s.append(reinterpret_cast<const char *>(floats.data()),
             floats.size() * sizeof(float));
    return s;
  }
};

/// Writes `data` to a fresh file in the gtest temp dir and returns its path.
std::string writeTemp(const std::string &name, const std::string &data) {
  std::string path = ::testing::TempDir() + "qc_llama2c_" + name + ".bin";
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  return path;
}

/// Loads `data` as a checkpoint and returns the error message ("" on
/// success), also checking the message starts with the file's path.
std::string loadError(const std::string &name, const std::string &data) {
  std::string path = writeTemp(name, data);
  ModelWeights w;
  Status s = loadLlama2C(path, w);
  std::remove(path.c_str());
  if (s.isOk())
    return "";
  EXPECT_EQ(s.message().rfind(path, 0), 0u) << s.message();
  return s.message();
}

/// Error for a tiny model whose header field `field` is set to `value`.
std::string headerError(int field, int32_t value) {
  TinyModel m;
  m.fill();
  m.header[field] = value;
  return loadError("hdr" + std::to_string(field), m.bytes());
}

int64_t countParams(const ModelWeights &w) {
  int64_t n = 0;
  for (const auto &kv : w.tensors)
    n += kv.second.numElements();
  return n;
}

} // namespace

TEST(Llama2CTest, LoadsBundledStories260K) {
  ModelWeights w;
  Status s = loadLlama2C(kModelPath, w);
  ASSERT_TRUE(s.isOk()) << s.message();
  const ModelConfig &c = w.config;
  EXPECT_EQ(c.modelType, "llama");
  EXPECT_EQ(c.dim, 64);
  EXPECT_EQ(c.hiddenDim, 172);
  EXPECT_EQ(c.nLayers, 5);
  EXPECT_EQ(c.nHeads, 8);
  EXPECT_EQ(c.nKVHeads, 4);
  EXPECT_EQ(c.headDim, 8);
  EXPECT_EQ(c.vocabSize, 512);
  EXPECT_EQ(c.maxSeqLen, 512);
  EXPECT_TRUE(c.tiedEmbeddings);
  EXPECT_FALSE(c.attentionBias);
  EXPECT_EQ(c.ropeLayout, RopeLayout::Interleaved);
  EXPECT_FLOAT_EQ(c.normEps, 1e-5f);
  EXPECT_FLOAT_EQ(c.ropeTheta, 10000.0f);
  EXPECT_EQ(c.bosId, 1);
  EXPECT_EQ(c.eosId, 2);

  // 2 global tensors + 9 per layer; tied, so no lm_head.
  EXPECT_EQ(w.tensors.size(), 2u + 9u * 5u);
  EXPECT_EQ(w.find("lm_head.weight"), nullptr);
  // The README's 264,128 floats minus the 2 x 512 x 4 unused RoPE floats.
  EXPECT_EQ(countParams(w), 260032);

  auto shapeOf = [&](const std::string &name) {
    const HostTensor *t = w.find(name);
    EXPECT_NE(t, nullptr) << name;
    return t ? t->shape : std::vector<int64_t>{};
  };
  using Shape = std::vector<int64_t>;
  EXPECT_EQ(shapeOf("model.embed_tokens.weight"), (Shape{512, 64}));
  EXPECT_EQ(shapeOf("model.norm.weight"), (Shape{64}));
  for (int l = 0; l < 5; ++l) {
    std::string p = "model.layers." + std::to_string(l) + ".";
    EXPECT_EQ(shapeOf(p + "input_layernorm.weight"), (Shape{64}));
    EXPECT_EQ(shapeOf(p + "post_attention_layernorm.weight"), (Shape{64}));
    EXPECT_EQ(shapeOf(p + "self_attn.q_proj.weight"), (Shape{64, 64}));
    EXPECT_EQ(shapeOf(p + "self_attn.k_proj.weight"), (Shape{32, 64}));
    EXPECT_EQ(shapeOf(p + "self_attn.v_proj.weight"), (Shape{32, 64}));
    EXPECT_EQ(shapeOf(p + "self_attn.o_proj.weight"), (Shape{64, 64}));
    EXPECT_EQ(shapeOf(p + "mlp.gate_proj.weight"), (Shape{172, 64}));
    EXPECT_EQ(shapeOf(p + "mlp.down_proj.weight"), (Shape{64, 172}));
    EXPECT_EQ(shapeOf(p + "mlp.up_proj.weight"), (Shape{172, 64}));
  }

  // Spot values read from the file independently (struct.unpack at the
  // offsets implied by the README layout).
  auto at = [&](const std::string &name, size_t i) {
    return w.find(name)->data.at(i);
  };
  EXPECT_FLOAT_EQ(at("model.embed_tokens.weight", 0), -0.29474878311157227f);
  EXPECT_FLOAT_EQ(at("model.embed_tokens.weight", 512 * 64 - 1),
                  -0.424032598733902f);
  EXPECT_FLOAT_EQ(at("model.layers.0.input_layernorm.weight", 0),
                  0.9722429513931274f);
  EXPECT_FLOAT_EQ(at("model.layers.0.self_attn.q_proj.weight", 0),
                  0.04439278692007065f);
  EXPECT_FLOAT_EQ(at("model.layers.0.self_attn.k_proj.weight", 0),
                  0.2161301076412201f);
  EXPECT_FLOAT_EQ(at("model.layers.0.mlp.down_proj.weight", 0),
                  0.13498419523239136f);
  EXPECT_FLOAT_EQ(at("model.layers.4.mlp.down_proj.weight", 64 * 172 - 1),
                  -0.0035068716388195753f);
  EXPECT_FLOAT_EQ(at("model.norm.weight", 0), 2.4583089351654053f);
  EXPECT_FLOAT_EQ(at("model.norm.weight", 63), 1.7077769041061401f);

  // The importer's output satisfies the shared model invariants.
  Status v = validateModelWeights(w, kModelPath);
  EXPECT_TRUE(v.isOk()) << v.message();
}

TEST(Llama2CTest, TinyTiedModelMapsFileOrder) {
  TinyModel m;
  m.fill();
  std::string path = writeTemp("tiny_tied", m.bytes());
  ModelWeights w;
  Status s = loadLlama2C(path, w);
  std::remove(path.c_str());
  ASSERT_TRUE(s.isOk()) << s.message();
  EXPECT_TRUE(w.config.tiedEmbeddings);
  EXPECT_EQ(w.config.headDim, 4);
  EXPECT_EQ(w.config.maxSeqLen, 4);
  EXPECT_EQ(w.find("lm_head.weight"), nullptr);

  // Each tensor's first value is its float offset in the file: kinds are
  // grouped across layers (all rms_att, then all wq, ...).
  const int64_t d = 8, h = 12, kv = 4, L = 2, V = 16;
  int64_t off = 0;
  auto expectAt = [&](const std::string &name, int64_t numel) {
    const HostTensor *t = w.find(name);
    ASSERT_NE(t, nullptr) << name;
    ASSERT_EQ(t->numElements(), numel) << name;
    EXPECT_EQ(t->data.front(), static_cast<float>(off)) << name;
    EXPECT_EQ(t->data.back(), static_cast<float>(off + numel - 1)) << name;
    off += numel;
  };
  expectAt("model.embed_tokens.weight", V * d);
  const std::pair<const char *, int64_t> kinds[] = {
      {"input_layernorm.weight", d},
      {"self_attn.q_proj.weight", d * d},
      {"self_attn.k_proj.weight", kv * d},
      {"self_attn.v_proj.weight", kv * d},
      {"self_attn.o_proj.weight", d * d},
      {"post_attention_layernorm.weight", d},
      {"mlp.gate_proj.weight", h * d},
      {"mlp.down_proj.weight", d * h},
      {"mlp.up_proj.weight", h * d},
  };
  for (const auto &k : kinds)
    for (int64_t l = 0; l < L; ++l)
      expectAt("model.layers." + std::to_string(l) + "." + k.first, k.second);
  expectAt("model.norm.weight", d);
  EXPECT_EQ(off + 4 * 4, static_cast<int64_t>(m.floats.size()))
      << "only the RoPE tables should remain unread";
}

TEST(Llama2CTest, TinyUntiedModelLoadsLmHead) {
  TinyModel m;
  m.header[5] = -16;
  m.fill();
  std::string path = writeTemp("tiny_untied", m.bytes());
  ModelWeights w;
  Status s = loadLlama2C(path, w);
  std::remove(path.c_str());
  ASSERT_TRUE(s.isOk()) << s.message();
  EXPECT_FALSE(w.config.tiedEmbeddings);
  EXPECT_EQ(w.config.vocabSize, 16);
  const HostTensor *head = w.find("lm_head.weight");
  ASSERT_NE(head, nullptr);
  EXPECT_EQ(head->shape, (std::vector<int64_t>{16, 8}));
  // lm_head is the last 16 x 8 floats, after the skipped RoPE tables.
  const int64_t first = static_cast<int64_t>(m.floats.size()) - 16 * 8;
  EXPECT_EQ(head->data.front(), static_cast<float>(first));
  EXPECT_EQ(head->data.back(), m.floats.back());
  EXPECT_EQ(w.find("model.embed_tokens.weight")->data.front(), 0.0f);
  Status v = validateModelWeights(w, path);
  EXPECT_TRUE(v.isOk()) << v.message();
}

TEST(Llama2CTest, RejectsWrongFileSizes) {
  TinyModel m;
  m.fill();
  std::string good = m.bytes();
  const std::string expected = std::to_string(good.size());

  std::string msg = loadError("trunc", good.substr(0, good.size() - 4));
  EXPECT_NE(msg.find("implies " + expected + " bytes"), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("has " + std::to_string(good.size() - 4) + " bytes"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;

  msg = loadError("extra", good + "xy");
  EXPECT_NE(msg.find("implies " + expected + " bytes"), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("has " + std::to_string(good.size() + 2) + " bytes"),
            std::string::npos)
      << msg;

  msg = loadError("tiny", good.substr(0, 10));
  EXPECT_NE(msg.find("too small"), std::string::npos) << msg;
  msg = loadError("empty", "");
  EXPECT_NE(msg.find("too small"), std::string::npos) << msg;

  // A tied header on an untied file (sign of vocab_size lost) is a size
  // mismatch too, not a silent misread.
  TinyModel untied;
  untied.header[5] = -16;
  untied.fill();
  std::string bytes = untied.bytes();
  int32_t tied = 16;
  std::memcpy(&bytes[5 * 4], &tied, 4);
  EXPECT_NE(loadError("signflip", bytes).find("file size mismatch"),
            std::string::npos);
}

TEST(Llama2CTest, RejectsBadHeaders) {
  EXPECT_NE(headerError(0, 0).find("dim must be positive"), std::string::npos);
  EXPECT_NE(headerError(1, -5).find("hidden_dim must be positive"),
            std::string::npos);
  EXPECT_NE(headerError(2, 0).find("n_layers must be positive"),
            std::string::npos);
  EXPECT_NE(headerError(5, 0).find("|vocab_size| must be positive"),
            std::string::npos);
  EXPECT_NE(headerError(6, -1).find("seq_len must be positive"),
            std::string::npos);
  EXPECT_NE(headerError(0, std::numeric_limits<int32_t>::max())
                .find("dim exceeds the limit"),
            std::string::npos);
  EXPECT_NE(headerError(2, 1 << 30).find("n_layers exceeds the limit"),
            std::string::npos);
  EXPECT_NE(headerError(5, std::numeric_limits<int32_t>::min() + 1)
                .find("|vocab_size| exceeds the limit"),
            std::string::npos);
  EXPECT_NE(headerError(3, 3).find("dim is not divisible by n_heads"),
            std::string::npos);
  EXPECT_NE(headerError(4, 3).find("n_heads is not divisible by n_kv_heads"),
            std::string::npos);
  // dim 8 / 8 heads = head size 1.
  TinyModel odd;
  odd.header[3] = 8;
  odd.header[4] = 8;
  odd.fill();
  EXPECT_NE(loadError("odd", odd.bytes()).find("is odd"), std::string::npos);
  // INT32_MIN must not overflow when taking |vocab_size|.
  EXPECT_NE(headerError(5, std::numeric_limits<int32_t>::min()),
            std::string(""));
}

TEST(Llama2CTest, HeaderValidationComputesExpectedSize) {
  Llama2CHeader h{64, 172, 5, 8, 4, 512, 512};
  int64_t bytes = 0;
  Status s = validateLlama2CHeader(h, "x", bytes);
  ASSERT_TRUE(s.isOk()) << s.message();
  EXPECT_EQ(bytes, 1056540); // the README's file size
  h.vocabSize = -512;
  ASSERT_TRUE(validateLlama2CHeader(h, "x", bytes).isOk());
  EXPECT_EQ(bytes, 1056540 + 512 * 64 * 4);
  // Every field at its cap still fits int64 (the caps guarantee it).
  Llama2CHeader big{1 << 16, 1 << 18, 1 << 10, 1 << 10,
                    1 << 10, 1 << 22, 1 << 22};
  ASSERT_TRUE(validateLlama2CHeader(big, "x", bytes).isOk());
  EXPECT_GT(bytes, int64_t(1) << 40);
}

TEST(Llama2CTest, RejectsNonFiniteWeights) {
  TinyModel m;
  m.fill();
  // Layer 1's k_proj: after embed (128), rms_att (2x8), wq (2x64) and layer
  // 0's k_proj (32); element 5 of it.
  const size_t kOffset = 128 + 16 + 128 + 32;
  m.floats[kOffset + 5] = std::numeric_limits<float>::quiet_NaN();
  std::string msg = loadError("nan", m.bytes());
  EXPECT_NE(msg.find("'model.layers.1.self_attn.k_proj.weight'"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("NaN"), std::string::npos) << msg;
  EXPECT_NE(msg.find("flat index 5 (row 0, col 5)"), std::string::npos) << msg;

  TinyModel inf;
  inf.fill();
  inf.floats[8 * 3 + 2] = -std::numeric_limits<float>::infinity();
  msg = loadError("inf", inf.bytes());
  EXPECT_NE(msg.find("'model.embed_tokens.weight'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("-Inf"), std::string::npos) << msg;
  EXPECT_NE(msg.find("flat index 26 (row 3, col 2)"), std::string::npos) << msg;

  // NaN in the unused RoPE tables is ignored: they are never read.
  TinyModel rope;
  rope.fill();
  rope.floats.back() = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(loadError("ropenan", rope.bytes()), "");
}

TEST(Llama2CTest, MissingFileNamesPath) {
  ModelWeights w;
  const std::string path = ::testing::TempDir() + "qc_no_such_model.bin";
  Status s = loadLlama2C(path, w);
  ASSERT_FALSE(s.isOk());
  EXPECT_EQ(s.message().rfind(path + ": cannot open", 0), 0u) << s.message();
  // A directory is not silently read as an empty/huge checkpoint.
  s = loadLlama2C(::testing::TempDir(), w);
  ASSERT_FALSE(s.isOk());
  EXPECT_NE(s.message().find("not a regular file"), std::string::npos)
      << s.message();
}

// A lazy load reads nothing until asked: every tensor has its shape and
// reads back, by rows and whole, the values of an eager load
// (test::expectLazyEqualsEager; tied and untied files, the bundled model);
// a row range past the end is refused, and a NaN is reported when its
// tensor is read, with the message an eager load gives.
TEST(Llama2CTest, LazyLoadReadsWhatAnEagerLoadReads) {
  TinyModel tied, untied;
  untied.header[5] = -16;
  tied.fill();
  untied.fill();
  std::vector<std::string> paths = {writeTemp("lazy_tied", tied.bytes()),
                                    writeTemp("lazy_untied", untied.bytes()),
                                    kModelPath};
  for (const std::string &path : paths) {
    SCOPED_TRACE(path);
    ModelWeights eager, lazy;
    ASSERT_TRUE(loadLlama2C(path, eager).isOk());
    LoadOptions options;
    options.lazy = true;
    Status s = loadLlama2C(path, lazy, options);
    ASSERT_TRUE(s.isOk()) << s.message();
    test::expectLazyEqualsEager(lazy, eager);
    for (auto &[name, t] : lazy.tensors) {
      SCOPED_TRACE(name);
      std::vector<float> rows;
      s = t.load(t.rows() - 1, 2, rows);
      EXPECT_NE(s.message().find("outside its"), std::string::npos)
          << s.message();
    }
  }
  std::remove(paths[0].c_str());
  std::remove(paths[1].c_str());

  // A NaN in layer 1's q_proj: the lazy open succeeds, reading the tensor
  // fails by name; the other tensors still read.
  TinyModel bad;
  bad.fill();
  const int64_t qProj1 = bad.vocab() * bad.dim() + bad.layers() * bad.dim() +
                         bad.dim() * bad.dim();
  bad.floats[static_cast<size_t>(qProj1 + 13)] = NAN;
  std::string path = writeTemp("lazy_nan", bad.bytes());
  ModelWeights w;
  LoadOptions options;
  options.lazy = true;
  ASSERT_TRUE(loadLlama2C(path, w, options).isOk());
  EXPECT_TRUE(w.materialize("model.layers.0.self_attn.q_proj.weight").isOk());
  Status s = w.materialize("model.layers.1.self_attn.q_proj.weight");
  ASSERT_FALSE(s.isOk());
  EXPECT_EQ(s.message(), path + ": tensor 'model.layers.1.self_attn.q_proj."
                                "weight' holds a non-finite value (NaN) at "
                                "flat index 13 (row 1, col 5)");
  ModelWeights eager;
  Status e = loadLlama2C(path, eager);
  std::remove(path.c_str());
  EXPECT_EQ(e.message(), s.message());
}
