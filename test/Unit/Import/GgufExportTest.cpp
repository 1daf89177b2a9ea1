//===- GgufExportTest.cpp - Quantized models as llama.cpp GGUF ------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// A quantized model written as GGUF must read back through qc's own GGUF
// reader (which dequantizes ggml blocks bit-exactly and undoes llama.cpp's
// q/k row order) to qc's dequantized weights: exactly for Q4_0 / Q8_0 with
// fp16 scales, within the reported fp16 rounding of m for Q4_1. Tensor
// names must be llama.cpp's (checked against the reader's own mapping),
// the tokenizer of a GGUF source must be carried over verbatim, and the
// tokenizer.json conversion must give the keys llama.cpp's converter wrote
// for SmolLM2 (the shared GGUF). Configurations with no exact ggml block
// type are refused by layer.
//
//===----------------------------------------------------------------------===//

#include "qc/Import/GgufExport.h"
#include "LLM/IR/LLMOps.h"
#include "WQ/IR/WQOps.h"
#include "qc/Import/LoadModel.h"
#include "qc/Import/QuantizedCheckpoint.h"
#include "qc/InitAllPasses.h"
#include "qc/Quantization/Algorithms/Common.h"
#include "qc/runtime/GgufModel.h"
#include "qc/runtime/GgufWriter.h"
#include "qc/runtime/HFCheckpoint.h"
#include "qc/runtime/Safetensors.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "llvm/Support/raw_ostream.h"

#include "ImportTestUtil.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include <unistd.h>

namespace {

namespace fs = std::filesystem;
namespace quant = qc::quant;

const std::string kShared = QC_SHARED_DIR;
const std::string kSmolDir = kShared + "/models/smollm2-135m";
const std::string kSmolGguf = kSmolDir + "/SmolLM2-135M-Instruct.Q4_1.gguf";

/// A fresh, empty directory for one test.
std::string freshDir(const std::string &name) {
  return qc::test::freshDir("qc_ggufexport", name);
}
using qc::test::context;
using qc::test::dequantizedLayers;
using qc::test::Model;
using qc::test::open;
using qc::test::runPasses;

/// A llama config with SmolLM2's vocabulary size (so that its tokenizer
/// fits) and tiny layers whose dims are whole 32-value blocks.
qc::ModelConfig smallConfig() {
  qc::ModelConfig c;
  c.modelType = "llama";
  c.dim = 64;
  c.hiddenDim = 96;
  c.nLayers = 2;
  c.nHeads = 4;
  c.nKVHeads = 2;
  c.headDim = 16;
  c.vocabSize = 49152;
  c.maxSeqLen = 128;
  c.tiedEmbeddings = false;
  c.ropeTheta = 100000.0f;
  c.ropeLayout = qc::RopeLayout::HalfSplit;
  return c;
}

/// Writes a float GGUF of random fp16-exact weights for `c` (q/k rows in
/// llama.cpp's order) carrying SmolLM2's tokenizer keys: a GGUF source as
/// llama.cpp's converter would have produced it.
std::string writeFloatGguf(const std::string &dir, const qc::ModelConfig &c) {
  qc::GgufWriter w;
  w.addString("general.architecture", "llama");
  w.addU32("llama.context_length", static_cast<uint32_t>(c.maxSeqLen));
  w.addU32("llama.embedding_length", static_cast<uint32_t>(c.dim));
  w.addU32("llama.block_count", static_cast<uint32_t>(c.nLayers));
  w.addU32("llama.feed_forward_length", static_cast<uint32_t>(c.hiddenDim));
  w.addU32("llama.attention.head_count", static_cast<uint32_t>(c.nHeads));
  w.addU32("llama.attention.head_count_kv", static_cast<uint32_t>(c.nKVHeads));
  w.addF32("llama.attention.layer_norm_rms_epsilon", c.normEps);
  w.addF32("llama.rope.freq_base", c.ropeTheta);
  std::unique_ptr<qc::GgufFile> smol;
  EXPECT_TRUE(qc::GgufFile::open(kSmolGguf, smol));
  for (const qc::GgufKV &kv : smol->metadata())
    if (kv.key.rfind("tokenizer.", 0) == 0)
      w.addValue(kv.key, kv.value);
  std::mt19937_64 rng(3);
  std::normal_distribution<float> normal(0.0f, 0.3f);
  for (const qc::TensorSpec &spec : qc::modelTensorSpecs(c)) {
    int64_t count = 1;
    for (int64_t d : spec.shape)
      count *= d;
    std::vector<float> data(static_cast<size_t>(count));
    float offset = spec.name.find("norm") != std::string::npos ? 1.0f : 0.0f;
    for (float &v : data)
      v = qc::f16ToF32(qc::f32ToF16(offset + normal(rng)));
    bool q = spec.name.find("q_proj") != std::string::npos,
         k = spec.name.find("k_proj") != std::string::npos;
    if (q || k) {
      std::vector<float> p(data.size());
      qc::permuteHalfSplitToInterleaved(data.data(), p.data(),
                                        q ? c.nHeads : c.nKVHeads, c.headDim,
                                        spec.shape[1]);
      data = p;
    }
    std::string name;
    EXPECT_TRUE(mlir::qc::hfTensorNameToGguf(spec.name, name)) << spec.name;
    std::vector<uint8_t> bytes(data.size() * 4);
    std::memcpy(bytes.data(), data.data(), bytes.size());
    qc::Status s = w.addTensor(name, qc::GgmlType::F32, spec.shape, bytes);
    EXPECT_TRUE(s) << s.message();
  }
  std::string path = dir + "/float.gguf";
  qc::Status s = w.writeFile(path);
  EXPECT_TRUE(s) << s.message();
  return path;
}

TEST(GgufExport, TensorNamesAreTheOnesQcsReaderMapsBack) {
  qc::ModelConfig c = smallConfig();
  c.attentionBias = true; // names of the bias tensors too
  int n = 0;
  for (const qc::TensorSpec &spec : qc::modelTensorSpecs(c)) {
    std::string gguf, back;
    ASSERT_TRUE(mlir::qc::hfTensorNameToGguf(spec.name, gguf)) << spec.name;
    ASSERT_TRUE(qc::ggufTensorNameToHF(gguf, c.nLayers, back)) << gguf;
    EXPECT_EQ(back, spec.name);
    ++n;
  }
  EXPECT_GT(n, 20);
  std::string out;
  EXPECT_FALSE(
      mlir::qc::hfTensorNameToGguf("model.layers.x.mlp.up_proj.weight", out));
  EXPECT_FALSE(mlir::qc::hfTensorNameToGguf("model.rotary.inv_freq", out));
}

TEST(GgufExport, BlocksReadBackToQcsWeightsAndTheTokenizerIsCarriedOver) {
  std::string dir = freshDir("blocks");
  qc::ModelConfig c = smallConfig();
  std::string src = writeFloatGguf(dir, c);
  Model m;
  ASSERT_NO_FATAL_FAILURE(open(src, m));
  std::string ov = " weights-out=" + dir + "/ov.safetensors";
  // Attention: 4-bit asym g32 (Q4_1); gate/up: 4-bit sym g32 (Q4_0);
  // down: 8-bit sym g32 (Q8_0).
  ASSERT_NO_FATAL_FAILURE(runPasses(
      m, "wq-rtn{bits=4 group-size=32 sym=false exclude=mlp scale-dtype=f16" +
             ov + "},wq-rtn{bits=4 group-size=32 sym=true exclude=down_proj" +
             " scale-dtype=f16" + ov +
             "},wq-rtn{bits=8 group-size=32 sym=true scale-dtype=f16" + ov +
             "}"));
  mlir::qc::GgufExportOptions opts;
  opts.tokenizerGguf = src;
  mlir::qc::GgufExportSummary sum;
  std::string out = dir + "/q.gguf";
  qc::Status s = mlir::qc::exportGguf(*m.module, m.weights, out, opts, &sum);
  ASSERT_TRUE(s) << s.message();
  EXPECT_EQ(sum.typeCounts["Q4_1"], 8);
  EXPECT_EQ(sum.typeCounts["Q4_0"], 4);
  EXPECT_EQ(sum.typeCounts["Q8_0"], 2);
  EXPECT_EQ(sum.typeCounts["F32"], 5); // 4 layer norms + the final norm
  EXPECT_EQ(sum.typeCounts["F16"], 2); // embedding + untied classifier
  EXPECT_TRUE(sum.f16Layers.empty());
  EXPECT_GT(sum.maxAbsChange, 0.0) << "Q4_1's m = -scale * zero in fp16";
  EXPECT_LE(sum.meanAbsChange, sum.maxAbsChange);

  std::unique_ptr<qc::GgufFile> f;
  ASSERT_TRUE(qc::GgufFile::open(out, f));
  auto typeOf = [&](const std::string &name) {
    const qc::GgufTensorInfo *t = f->findTensor(name);
    EXPECT_TRUE(t) << name;
    return t ? t->type : qc::GgmlType::I8;
  };
  EXPECT_EQ(typeOf("blk.0.attn_q.weight"), qc::GgmlType::Q4_1);
  EXPECT_EQ(typeOf("blk.1.attn_output.weight"), qc::GgmlType::Q4_1);
  EXPECT_EQ(typeOf("blk.0.ffn_gate.weight"), qc::GgmlType::Q4_0);
  EXPECT_EQ(typeOf("blk.1.ffn_down.weight"), qc::GgmlType::Q8_0);
  EXPECT_EQ(typeOf("blk.0.attn_norm.weight"), qc::GgmlType::F32);
  EXPECT_EQ(typeOf("token_embd.weight"), qc::GgmlType::F16);
  EXPECT_EQ(typeOf("output.weight"), qc::GgmlType::F16);
  uint32_t fileType = 0, qv = 0;
  ASSERT_TRUE(f->getU32("general.file_type", fileType));
  EXPECT_EQ(fileType, 3u) << "mostly Q4_1";
  ASSERT_TRUE(f->getU32("general.quantization_version", qv));
  EXPECT_EQ(qv, 2u);
  qc::ModelConfig back;
  qc::Status cs = qc::parseGgufConfig(*f, back);
  ASSERT_TRUE(cs) << cs.message();
  EXPECT_EQ(back.dim, c.dim);
  EXPECT_EQ(back.hiddenDim, c.hiddenDim);
  EXPECT_EQ(back.nLayers, c.nLayers);
  EXPECT_EQ(back.nHeads, c.nHeads);
  EXPECT_EQ(back.nKVHeads, c.nKVHeads);
  EXPECT_EQ(back.headDim, c.headDim);
  EXPECT_EQ(back.vocabSize, c.vocabSize);
  EXPECT_EQ(back.maxSeqLen, c.maxSeqLen);
  EXPECT_EQ(back.ropeTheta, c.ropeTheta);
  EXPECT_EQ(back.normEps, c.normEps);
  EXPECT_FALSE(back.tiedEmbeddings);

  // The tokenizer keys are the source's, value for value.
  std::unique_ptr<qc::GgufFile> smol;
  ASSERT_TRUE(qc::GgufFile::open(kSmolGguf, smol));
  int keys = 0;
  for (const qc::GgufKV &kv : smol->metadata()) {
    if (kv.key.rfind("tokenizer.", 0) != 0)
      continue;
    ++keys;
    qc::GgufWriter a, b;
    a.addValue(kv.key, kv.value);
    const qc::GgufValue *mine = f->find(kv.key);
    ASSERT_TRUE(mine) << kv.key;
    b.addValue(kv.key, *mine);
    std::vector<uint8_t> ab, bb;
    ASSERT_TRUE(a.serialize(ab));
    ASSERT_TRUE(b.serialize(bb));
    EXPECT_EQ(ab, bb) << kv.key;
  }
  EXPECT_GE(keys, 10);

  // qc's GGUF reader (ggml dequantization, q/k rows back to rotate_half)
  // gives qc's dequantized weights: exactly for Q4_0 / Q8_0 (fp16 scales
  // are d), within the reported change for Q4_1.
  qc::ModelWeights read;
  qc::Status ls = qc::loadGgufModel(out, read);
  ASSERT_TRUE(ls) << ls.message();
  double maxSeen = 0.0;
  for (const auto &[layer, w] : dequantizedLayers(m)) {
    const qc::HostTensor *t = read.find(layer + ".weight");
    ASSERT_TRUE(t) << layer;
    ASSERT_EQ(t->data.size(), w.size());
    bool exact = layer.find("mlp") != std::string::npos;
    for (size_t i = 0; i < w.size(); ++i) {
      double d = std::fabs(static_cast<double>(t->data[i]) - w[i]);
      maxSeen = std::max(maxSeen, d);
      if (exact)
        ASSERT_EQ(t->data[i], w[i]) << layer << " [" << i << "]";
      else
        ASSERT_LE(d, sum.maxAbsChange) << layer << " [" << i << "]";
    }
  }
  EXPECT_EQ(maxSeen, sum.maxAbsChange) << "the reported change is the real one";
  // Float tensors: norms exact, embedding fp16 (already fp16-exact here).
  for (const char *name :
       {"model.norm.weight", "model.embed_tokens.weight", "lm_head.weight",
        "model.layers.1.post_attention_layernorm.weight"})
    EXPECT_EQ(read.find(name)->data, m.weights.find(name)->data) << name;
}

TEST(GgufExport, InterleavedSourceAndRaggedKFallBackToF16) {
  // stories260K comes from llama2.c (q/k rows already in llama.cpp's
  // order) and its down_proj has K = 172, not whole 32-value blocks.
  std::string dir = freshDir("stories");
  Model m;
  ASSERT_NO_FATAL_FAILURE(
      open(kShared + "/models/stories260K/stories260K.bin", m));
  ASSERT_NO_FATAL_FAILURE(runPasses(
      m, "wq-rtn{bits=4 group-size=32 sym=true scale-dtype=f16 weights-out=" +
             dir + "/ov.safetensors}"));
  mlir::qc::GgufExportOptions opts;
  opts.allowNoTokenizer = true;
  mlir::qc::GgufExportSummary sum;
  qc::Status s =
      mlir::qc::exportGguf(*m.module, m.weights, dir + "/s.gguf", opts, &sum);
  ASSERT_TRUE(s) << s.message();
  EXPECT_EQ(sum.f16Layers.size(), 5u);
  EXPECT_EQ(sum.typeCounts["Q4_0"], 30);
  qc::ModelWeights read;
  qc::Status ls = qc::loadGgufModel(dir + "/s.gguf", read);
  ASSERT_TRUE(ls) << ls.message();
  const qc::ModelConfig &c = m.weights.config;
  for (const auto &[layer, w] : dequantizedLayers(m)) {
    std::vector<float> want = w;
    bool q = layer.find("q_proj") != std::string::npos,
         k = layer.find("k_proj") != std::string::npos;
    if (q || k) {
      // The reader returns rotate_half rows.
      qc::permuteInterleavedToHalfSplit(
          w.data(), want.data(), q ? c.nHeads : c.nKVHeads, c.headDim,
          static_cast<int64_t>(w.size()) /
              ((q ? c.nHeads : c.nKVHeads) * c.headDim));
    }
    const std::vector<float> &got = read.find(layer + ".weight")->data;
    ASSERT_EQ(got.size(), want.size());
    bool down = layer.find("down_proj") != std::string::npos;
    for (size_t i = 0; i < want.size(); ++i)
      if (down)
        ASSERT_EQ(got[i], qc::f16ToF32(qc::f32ToF16(want[i]))) << layer;
      else
        ASSERT_EQ(got[i], want[i]) << layer << " [" << i << "]";
  }
}

TEST(GgufExport, TokenizerJsonGivesTheKeysLlamaCppsConverterWrote) {
  // SmolLM2's GGUF was written by llama.cpp's convert_hf_to_gguf.py from
  // the tokenizer.json beside it; qc's conversion must agree key by key.
  qc::GgufWriter w;
  std::string what;
  qc::Status s = mlir::qc::addTokenizerJsonKeys(kSmolDir + "/tokenizer.json",
                                                49152, w, &what);
  ASSERT_TRUE(s) << s.message();
  EXPECT_NE(what.find("pre smollm"), std::string::npos) << what;
  std::vector<uint8_t> bytes;
  ASSERT_TRUE(w.serialize(bytes));
  std::unique_ptr<qc::GgufFile> mine, ref;
  ASSERT_TRUE(qc::GgufFile::parse(bytes.data(), bytes.size(), "mine", mine));
  ASSERT_TRUE(qc::GgufFile::open(kSmolGguf, ref));
  for (const char *key : {"tokenizer.ggml.model", "tokenizer.ggml.pre",
                          "tokenizer.chat_template"}) {
    std::string a, b;
    ASSERT_TRUE(mine->getString(key, a)) << key;
    ASSERT_TRUE(ref->getString(key, b)) << key;
    EXPECT_EQ(a, b) << key;
  }
  for (const char *key : {"tokenizer.ggml.tokens", "tokenizer.ggml.merges"}) {
    std::vector<std::string> a, b;
    ASSERT_TRUE(mine->getStringArray(key, a)) << key;
    ASSERT_TRUE(ref->getStringArray(key, b)) << key;
    EXPECT_TRUE(a == b) << key << ": " << a.size() << " vs " << b.size();
  }
  std::vector<int32_t> ta, tb;
  ASSERT_TRUE(mine->getI32Array("tokenizer.ggml.token_type", ta));
  ASSERT_TRUE(ref->getI32Array("tokenizer.ggml.token_type", tb));
  EXPECT_TRUE(ta == tb);
  for (const char *key :
       {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
        "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.padding_token_id"}) {
    uint32_t a = 0, b = 1;
    ASSERT_TRUE(mine->getU32(key, a)) << key;
    ASSERT_TRUE(ref->getU32(key, b)) << key;
    EXPECT_EQ(a, b) << key;
  }
  for (const char *key :
       {"tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_space_prefix"}) {
    bool a = true, b = false;
    ASSERT_TRUE(mine->getBool(key, a)) << key;
    ASSERT_TRUE(ref->getBool(key, b)) << key;
    EXPECT_EQ(a, b) << key;
  }
  // Not byte-level BPE: refused by name.
  std::string dir = freshDir("wordpiece");
  std::ofstream(dir + "/tokenizer.json")
      << R"({"model": {"type": "WordPiece", "vocab": {}}})";
  qc::GgufWriter w2;
  s = mlir::qc::addTokenizerJsonKeys(dir + "/tokenizer.json", 10, w2);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("tokenizer.json: model.type is not \"BPE\""),
            std::string::npos)
      << s.message();
}

TEST(GgufExport, RefusesConfigurationsWithoutAnExactBlockType) {
  std::string dir = freshDir("refuse");
  qc::ModelConfig c = smallConfig();
  std::string src = writeFloatGguf(dir, c);
  auto exportError = [&](const std::string &pipeline) {
    Model m;
    open(src, m);
    if (m.module && !pipeline.empty())
      runPasses(m, pipeline);
    if (!m.module || testing::Test::HasFatalFailure())
      return std::string("(setup failed)");
    mlir::qc::GgufExportOptions opts;
    opts.allowNoTokenizer = true;
    qc::Status s =
        mlir::qc::exportGguf(*m.module, m.weights, dir + "/out.gguf", opts);
    EXPECT_FALSE(fs::exists(dir + "/out.gguf"));
    return s.isOk() ? std::string("(exported)") : s.message();
  };
  std::string ov = " weights-out=" + dir + "/ov.safetensors";
  std::string three =
      exportError("wq-rtn{bits=3 group-size=32 layout=rows" + ov + "}");
  EXPECT_NE(three.find("layer 'model.layers.0."), std::string::npos) << three;
  EXPECT_NE(three.find("(3 bits, group size 32, sym) has no exact ggml block "
                       "type"),
            std::string::npos)
      << three;
  std::string g64 = exportError("wq-rtn{bits=4 group-size=64" + ov + "}");
  EXPECT_NE(g64.find("4 bits, group size 64"), std::string::npos) << g64;
  std::string asym8 =
      exportError("wq-rtn{bits=8 group-size=32 sym=false" + ov + "}");
  EXPECT_NE(asym8.find("8 bits, group size 32, asym"), std::string::npos)
      << asym8;
  std::string partial =
      exportError("wq-rtn{bits=4 group-size=32 exclude=down_proj" + ov + "}");
  EXPECT_NE(partial.find("not quantized"), std::string::npos) << partial;
  EXPECT_NE(exportError("").find("not quantized"), std::string::npos);
  // No tokenizer source and none allowed.
  Model m;
  ASSERT_NO_FATAL_FAILURE(open(src, m));
  ASSERT_NO_FATAL_FAILURE(
      runPasses(m, "wq-rtn{bits=4 group-size=32" + ov + "}"));
  qc::Status s =
      mlir::qc::exportGguf(*m.module, m.weights, dir + "/out.gguf", {});
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("no tokenizer"), std::string::npos) << s.message();
}

} // namespace
