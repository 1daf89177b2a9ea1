//===- QuantizedCheckpointTest.cpp - GPTQ / AWQ checkpoint interchange ----===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Export then import must reproduce every layer's dequantized weight bit
// for bit (stories260K with RTN and GPTQ act-order; a random model at
// 2/3/4/8 bits, sym and asym), the llama2.c q/k permutation must leave the
// model's output unchanged, the files must have the exact §8.1 format (read
// here with a reader independent of the runtime's safetensors code), a
// hand-built AWQ GEMM checkpoint must import and evaluate, and malformed
// checkpoints must fail with errors naming the file and tensor.
//
//===----------------------------------------------------------------------===//

#include "qc/Import/QuantizedCheckpoint.h"
#include "LLM/IR/LLMOps.h"
#include "WQ/IR/WQOps.h"
#include "qc/Calibration/Calibrate.h"
#include "qc/Calibration/Trace.h"
#include "qc/Execution/CpuExecutable.h"
#include "qc/Execution/Evaluate.h"
#include "qc/Import/LoadModel.h"
#include "qc/InitAllDialects.h"
#include "qc/InitAllPasses.h"
#include "qc/Quantization/Algorithms/Packing.h"
#include "qc/runtime/HFCheckpoint.h"
#include "qc/runtime/Json.h"
#include "qc/runtime/TextDataset.h"
#include "qc/runtime/Tokenizer.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "llvm/Support/raw_ostream.h"

#include "ImportTestUtil.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include <unistd.h>

namespace {

namespace fs = std::filesystem;
namespace json = qc::json;
namespace quant = qc::quant;
using mlir::qc::GPTQExportOptions;

const std::string kShared = QC_SHARED_DIR;
const std::string kStories = kShared + "/models/stories260K/stories260K.bin";
const std::string kTokenizer = kShared + "/models/stories260K/tok512.bin";

/// A fresh, empty directory for one test.
std::string freshDir(const std::string &name) {
  return qc::test::freshDir("qc_interchange", name);
}
using qc::test::context;
using qc::test::dequantizedLayers;
using qc::test::Model;
using qc::test::open;
using qc::test::runPasses;

/// The rows of a q/k weight in rotate_half order, computed on the
/// dequantized matrix (independently of how the exporter permutes codes).
std::vector<float> toHalfSplit(const std::vector<float> &w, int64_t heads,
                               int64_t headDim) {
  std::vector<float> out(w.size());
  int64_t rowLength = static_cast<int64_t>(w.size()) / (heads * headDim);
  qc::permuteInterleavedToHalfSplit(w.data(), out.data(), heads, headDim,
                                    rowLength);
  return out;
}

/// Expects the dequantized weights of `after` to equal those of `before`
/// bit for bit (after the RoPE permutation for an interleaved `before`).
void expectSameLayers(const Model &before, const Model &after) {
  auto a = dequantizedLayers(before), b = dequantizedLayers(after);
  ASSERT_EQ(a.size(), b.size());
  const qc::ModelConfig &c = before.weights.config;
  bool interleaved = c.ropeLayout == qc::RopeLayout::Interleaved;
  for (auto &[layer, w] : a) {
    ASSERT_TRUE(b.count(layer)) << layer;
    std::vector<float> want = w;
    if (interleaved && layer.find("q_proj") != std::string::npos)
      want = toHalfSplit(w, c.nHeads, c.headDim);
    if (interleaved && layer.find("k_proj") != std::string::npos)
      want = toHalfSplit(w, c.nKVHeads, c.headDim);
    ASSERT_EQ(want.size(), b[layer].size()) << layer;
    EXPECT_EQ(0, std::memcmp(want.data(), b[layer].data(),
                             want.size() * sizeof(float)))
        << layer << ": dequantized weights differ after export + import";
  }
}

/// Rounds every float tensor of `w` to fp16, as the GPTQ export stores them.
void roundFloatsToF16(qc::ModelWeights &w) {
  for (auto &[name, t] : w.tensors)
    for (float &v : t.data)
      v = qc::f16ToF32(qc::f32ToF16(v));
}

std::vector<float> logitsOf(const Model &m,
                            const std::vector<int32_t> &tokens) {
  std::unique_ptr<mlir::qc::CpuExecutable> exe;
  qc::Status s =
      mlir::qc::CpuExecutable::compile(m.module.get(), m.weights, exe);
  EXPECT_TRUE(s) << s.message();
  std::vector<float> logits(tokens.size() * m.weights.config.vocabSize);
  if (exe) {
    qc::Status f = exe->forward(tokens.data(), tokens.size(), logits.data());
    EXPECT_TRUE(f) << f.message();
  }
  return logits;
}

/// The same weights evaluated through different CPU kernels (an fp32
/// product on dequantized weights, or the fused kernel that reads GPTQ
/// codes and keeps output columns in vector lanes) give logits that differ
/// only in the order of their sums: within 1e-5 of the largest magnitude.
/// The weights themselves are compared exactly elsewhere.
void expectSameLogits(const std::vector<float> &a,
                      const std::vector<float> &b) {
  ASSERT_EQ(a.size(), b.size());
  float largest = 0;
  for (float v : a)
    largest = std::max(largest, std::fabs(v));
  ASSERT_GT(largest, 0.0f) << "logits are all zero";
  for (size_t i = 0; i < a.size(); ++i)
    ASSERT_NEAR(a[i], b[i], 1e-5f * largest) << "logit " << i;
}

double perplexityOf(const Model &m,
                    const std::vector<std::vector<int>> &windows) {
  std::unique_ptr<mlir::qc::CpuExecutable> exe;
  qc::Status s =
      mlir::qc::CpuExecutable::compile(m.module.get(), m.weights, exe);
  EXPECT_TRUE(s) << s.message();
  if (!s)
    return 0.0;
  mlir::qc::PerplexityResult r;
  s = mlir::qc::evaluatePerplexity(*exe, windows, 2, false, r);
  EXPECT_TRUE(s) << s.message();
  return r.perplexity;
}

std::vector<std::vector<int>> storiesWindows(int64_t tokens) {
  qc::Tokenizer tok;
  EXPECT_TRUE(qc::Tokenizer::load(kTokenizer, 512, tok));
  std::vector<int> valid;
  EXPECT_TRUE(qc::loadPerplexityTokens(
      kShared + "/data/tinystories/valid_head.txt", tok, valid));
  return qc::makeWindows(valid, tokens);
}

void exportTo(const Model &m, const std::string &dir,
              const GPTQExportOptions &opts = {}) {
  qc::Status s =
      mlir::qc::exportGPTQCheckpoint(m.module.get(), m.weights, dir, opts);
  ASSERT_TRUE(s) << s.message();
}

std::string readText(const std::string &path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

json::Value readJson(const std::string &path) {
  json::Value v;
  qc::Status s = json::parse(readText(path), v);
  EXPECT_TRUE(s) << path << ": " << s.message();
  return v;
}

//===----------------------------------------------------------------------===//
// stories260K (llama2.c: interleaved RoPE)
//===----------------------------------------------------------------------===//

TEST(QuantizedCheckpoint, StoriesRTNRoundTripsWithRopePermutation) {
  std::string dir = freshDir("stories_rtn");
  Model src;
  ASSERT_NO_FATAL_FAILURE(open(kStories, src));
  ASSERT_NO_FATAL_FAILURE(runPasses(
      src, "wq-rtn{bits=4 group-size=32 sym=false weights-out=" + dir +
               "/overlay.safetensors}"));
  ASSERT_NO_FATAL_FAILURE(exportTo(src, dir + "/gptq"));
  Model imported;
  ASSERT_NO_FATAL_FAILURE(open(dir + "/gptq", imported));
  expectSameLayers(src, imported);

  // The permuted q/k rows and rotate_half RoPE compute the same model: the
  // only differences are the fp16 storage of the float tensors (applied to
  // the source too) and the summation order inside attention.
  roundFloatsToF16(src.weights);
  auto windows = storiesWindows(511);
  double a = perplexityOf(src, windows), b = perplexityOf(imported, windows);
  EXPECT_GT(a, 1.0);
  EXPECT_NEAR(a, b, 1e-5 * a) << "source " << a << " imported " << b;
}

TEST(QuantizedCheckpoint, StoriesGPTQActOrderRoundTrips) {
  std::string dir = freshDir("stories_gptq");
  Model src;
  ASSERT_NO_FATAL_FAILURE(open(kStories, src));
  qc::Tokenizer tok;
  ASSERT_TRUE(qc::Tokenizer::load(kTokenizer, 512, tok));
  std::vector<int> calib;
  ASSERT_TRUE(qc::loadPerplexityTokens(
      kShared + "/data/tinystories/train_head.txt", tok, calib));
  qc::CalibrationTrace trace;
  mlir::qc::CalibrationOptions copts;
  copts.windowLen = 255;
  copts.maxTokens = 255 * 16;
  qc::Status s =
      mlir::qc::collectTrace(*src.module, src.weights, calib, copts, trace);
  ASSERT_TRUE(s) << s.message();
  ASSERT_TRUE(qc::writeTrace(trace, dir + "/trace.safetensors"));
  ASSERT_NO_FATAL_FAILURE(runPasses(
      src,
      "wq-gptq{bits=4 group-size=32 sym=false act-order=true trace=" + dir +
          "/trace.safetensors weights-out=" + dir + "/overlay.safetensors}"));
  ASSERT_NO_FATAL_FAILURE(exportTo(src, dir + "/gptq"));
  json::Value config = readJson(dir + "/gptq/config.json");
  const json::Value *q = config.find("quantization_config");
  ASSERT_TRUE(q && q->find("desc_act"));
  EXPECT_TRUE(q->find("desc_act")->asBool())
      << "act-order g_idx needs desc_act";
  Model imported;
  ASSERT_NO_FATAL_FAILURE(open(dir + "/gptq", imported));
  expectSameLayers(src, imported);
  int withGIdx = 0;
  imported.module->walk(
      [&](mlir::qc::wq::LinearOp op) { withGIdx += !!op.getGIdx(); });
  EXPECT_GT(withGIdx, 0) << "act-order layers lost their g_idx";
}

//===----------------------------------------------------------------------===//
// Random Hugging Face model, every bit width
//===----------------------------------------------------------------------===//

/// A small half-split model whose dims are multiples of 32 (3-bit GPTQ
/// needs them) with fp16-exact weights, written as a float HF checkpoint.
std::string writeRandomModel(const std::string &dir, uint64_t seed,
                             int64_t hiddenDim = 96) {
  qc::ModelConfig c;
  c.modelType = "llama";
  c.dim = 64;
  c.hiddenDim = hiddenDim;
  c.nLayers = 2;
  c.nHeads = 4;
  c.nKVHeads = 2;
  c.headDim = 16;
  c.vocabSize = 64;
  c.maxSeqLen = 64;
  c.tiedEmbeddings = false;
  c.ropeLayout = qc::RopeLayout::HalfSplit;
  qc::ModelWeights w;
  w.config = c;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.3f);
  for (const qc::TensorSpec &spec : qc::modelTensorSpecs(c)) {
    qc::HostTensor t;
    t.shape = spec.shape;
    t.data.resize(t.numElements());
    float offset = spec.name.find("norm") != std::string::npos ? 1.0f : 0.0f;
    for (float &v : t.data)
      v = qc::f16ToF32(qc::f32ToF16(offset + normal(rng)));
    w.tensors[spec.name] = std::move(t);
  }
  std::string path = dir + "/float";
  qc::Status s = qc::writeHFCheckpoint(path, w, qc::DType::F32);
  EXPECT_TRUE(s) << s.message();
  return path;
}

struct BitsCase {
  int bits;
  bool sym;
};

// Without it gtest prints the struct's bytes, padding included.
void PrintTo(const BitsCase &c, std::ostream *os) {
  *os << c.bits << " bits, " << (c.sym ? "sym" : "asym");
}

class RandomModelRoundTrip : public testing::TestWithParam<BitsCase> {};

TEST_P(RandomModelRoundTrip, DequantizedWeightsAndLogitsSurvive) {
  const BitsCase &tc = GetParam();
  std::string name = "rand_b" + std::to_string(tc.bits) + (tc.sym ? "s" : "a");
  std::string dir = freshDir(name);
  Model src;
  ASSERT_NO_FATAL_FAILURE(open(writeRandomModel(dir, 100 + tc.bits), src));
  // rows holds any zero point; the exporter converts to the GPTQ layout.
  ASSERT_NO_FATAL_FAILURE(runPasses(
      src, "wq-rtn{bits=" + std::to_string(tc.bits) +
               " group-size=32 sym=" + (tc.sym ? "true" : "false") +
               " layout=rows weights-out=" + dir + "/overlay.safetensors}"));
  GPTQExportOptions opts;
  qc::Status s = mlir::qc::exportGPTQCheckpoint(*src.module, src.weights,
                                                dir + "/gptq", opts);
  if (!s) {
    // Only an asymmetric zero point of 0 may stop v1 (§14.5), and the
    // message must say how to proceed.
    EXPECT_FALSE(tc.sym) << s.message();
    EXPECT_NE(s.message().find("zero point 0"), std::string::npos)
        << s.message();
    EXPECT_NE(s.message().find("gptq_v2"), std::string::npos) << s.message();
    EXPECT_FALSE(fs::exists(dir + "/gptq")) << "a refused export left a folder";
    opts.format = quant::GPTQFormat::V2;
    ASSERT_NO_FATAL_FAILURE(exportTo(src, dir + "/gptq", opts));
  }
  Model imported;
  ASSERT_NO_FATAL_FAILURE(open(dir + "/gptq", imported));
  expectSameLayers(src, imported);
  // Same dequantized weights and the same (fp16-exact) float tensors: the
  // same logits (the rows layout and the GPTQ one take different kernels).
  std::vector<int32_t> tokens = {1, 5, 9, 33, 2, 17, 60, 4, 4, 12};
  expectSameLogits(logitsOf(src, tokens), logitsOf(imported, tokens));
  // Re-exporting the imported model writes the same files.
  ASSERT_NO_FATAL_FAILURE(exportTo(imported, dir + "/again", opts));
  EXPECT_EQ(readText(dir + "/gptq/model.safetensors"),
            readText(dir + "/again/model.safetensors"));
  EXPECT_EQ(readText(dir + "/gptq/config.json"),
            readText(dir + "/again/config.json"));
}

INSTANTIATE_TEST_SUITE_P(Bits, RandomModelRoundTrip,
                         testing::Values(BitsCase{2, true}, BitsCase{2, false},
                                         BitsCase{3, true}, BitsCase{3, false},
                                         BitsCase{4, true}, BitsCase{4, false},
                                         BitsCase{8, true}, BitsCase{8, false}),
                         [](const testing::TestParamInfo<BitsCase> &info) {
                           return "W" + std::to_string(info.param.bits) +
                                  (info.param.sym ? "Sym" : "Asym");
                         });

//===----------------------------------------------------------------------===//
// Exact file format, read independently
//===----------------------------------------------------------------------===//

/// A minimal safetensors reader written from the format definition (8-byte
/// little-endian header size, JSON header, data): deliberately not the
/// runtime's SafetensorsFile.
struct RawSafetensors {
  json::Value header;
  std::string data;

  explicit RawSafetensors(const std::string &path) {
    std::string bytes = readText(path);
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i)
      n = (n << 8) | static_cast<uint8_t>(bytes[i]);
    EXPECT_TRUE(json::parse(bytes.substr(8, n), header));
    data = bytes.substr(8 + n);
  }
  const json::Value &entry(const std::string &name) const {
    const json::Value *e = header.find(name);
    EXPECT_TRUE(e) << "missing tensor " << name;
    static json::Value null;
    return e ? *e : null;
  }
  std::string dtype(const std::string &name) const {
    return entry(name).find("dtype")->asString();
  }
  std::vector<int64_t> shape(const std::string &name) const {
    std::vector<int64_t> s;
    for (const json::Value &d : entry(name).find("shape")->asArray())
      s.push_back(d.asInt64());
    return s;
  }
  template <typename T> std::vector<T> values(const std::string &name) const {
    const auto &offs = entry(name).find("data_offsets")->asArray();
    uint64_t b = offs[0].asUInt64(), e = offs[1].asUInt64();
    std::vector<T> out((e - b) / sizeof(T));
    std::memcpy(out.data(), data.data() + b, e - b);
    return out;
  }
};

TEST(QuantizedCheckpoint, ExactFormatOfAHandBuiltLayer) {
  std::string dir = freshDir("format");
  Model m;
  ASSERT_NO_FATAL_FAILURE(open(writeRandomModel(dir, 7), m));
  ASSERT_NO_FATAL_FAILURE(runPasses(
      m, "wq-rtn{bits=4 group-size=32 sym=false layout=rows weights-out=" +
             dir + "/overlay.safetensors}"));
  // Replace q_proj of layer 0 ([64, 64], 2 groups) by known values: code
  // (n + 3k) % 16, zero 1 + (g + n) % 15 (never 0), scale 2^-(n % 5).
  const std::string layer = "model.layers.0.self_attn.q_proj";
  const int64_t N = 64, K = 64, G = 32, ng = 2;
  quant::QuantizedWeight q;
  quant::QuantConfig cfg;
  cfg.bits = 4;
  cfg.groupSize = G;
  cfg.sym = false;
  q.allocate(N, K, ng, cfg);
  auto code = [](int64_t n, int64_t k) { return (n + 3 * k) % 16; };
  auto zero = [](int64_t g, int64_t n) { return 1 + (g + n) % 15; };
  auto scale = [](int64_t n) {
    return std::ldexp(1.0f, -static_cast<int>(n % 5));
  };
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t k = 0; k < K; ++k)
      q.codes[n * K + k] = static_cast<uint8_t>(code(n, k));
    for (int64_t g = 0; g < ng; ++g) {
      q.zeros[g * N + n] = static_cast<float>(zero(g, n));
      q.scales[g * N + n] = scale(n);
    }
  }
  quant::RowsTensors rows;
  ASSERT_TRUE(quant::packRows(q, {}, rows));
  auto bytesOf = [](const auto &v) {
    std::vector<uint8_t> b(v.size() * sizeof(v[0]));
    std::memcpy(b.data(), v.data(), b.size());
    return b;
  };
  std::vector<uint16_t> halves;
  for (float s : rows.scales)
    halves.push_back(qc::f32ToF16(s));
  m.weights.packed[layer + ".qweight"] = {
      qc::DType::I32, {N, 8}, bytesOf(rows.qweight)};
  m.weights.packed[layer + ".scales"] = {
      qc::DType::F16, {ng, N}, bytesOf(halves)};
  m.weights.packed[layer + ".qzeros"] = {
      qc::DType::I32, {ng, N}, bytesOf(rows.zeros)};
  ASSERT_NO_FATAL_FAILURE(exportTo(m, dir + "/gptq"));

  RawSafetensors st(dir + "/gptq/model.safetensors");
  EXPECT_EQ(st.dtype(layer + ".qweight"), "I32");
  EXPECT_EQ(st.shape(layer + ".qweight"),
            (std::vector<int64_t>{K * 4 / 32, N}));
  EXPECT_EQ(st.dtype(layer + ".qzeros"), "I32");
  EXPECT_EQ(st.shape(layer + ".qzeros"),
            (std::vector<int64_t>{ng, N * 4 / 32}));
  EXPECT_EQ(st.dtype(layer + ".scales"), "F16");
  EXPECT_EQ(st.shape(layer + ".scales"), (std::vector<int64_t>{ng, N}));
  EXPECT_EQ(st.dtype(layer + ".g_idx"), "I32");
  EXPECT_EQ(st.shape(layer + ".g_idx"), (std::vector<int64_t>{K}));
  // §8.1: qweight[r, n] = sum_j q[n, 8r + j] << 4j (along K);
  // qzeros[g, c] = sum_j (z[g, 8c + j] - 1) << 4j (along N, minus one).
  auto qweight = st.values<uint32_t>(layer + ".qweight");
  for (int64_t r = 0; r < K / 8; ++r)
    for (int64_t n = 0; n < N; ++n) {
      uint32_t want = 0;
      for (int j = 0; j < 8; ++j)
        want |= static_cast<uint32_t>(code(n, 8 * r + j)) << (4 * j);
      ASSERT_EQ(qweight[r * N + n], want)
          << "qweight[" << r << ", " << n << "]";
    }
  auto qzeros = st.values<uint32_t>(layer + ".qzeros");
  for (int64_t g = 0; g < ng; ++g)
    for (int64_t c = 0; c < N / 8; ++c) {
      uint32_t want = 0;
      for (int j = 0; j < 8; ++j)
        want |= static_cast<uint32_t>(zero(g, 8 * c + j) - 1) << (4 * j);
      ASSERT_EQ(qzeros[g * (N / 8) + c], want)
          << "qzeros[" << g << ", " << c << "]";
    }
  auto scales = st.values<uint16_t>(layer + ".scales");
  for (int64_t g = 0; g < ng; ++g)
    for (int64_t n = 0; n < N; ++n)
      ASSERT_EQ(scales[g * N + n], qc::f32ToF16(scale(n)));
  auto gIdx = st.values<int32_t>(layer + ".g_idx");
  for (int64_t k = 0; k < K; ++k)
    ASSERT_EQ(gIdx[k], k / G);
  // Float tensors are fp16; the header's metadata marks a PyTorch file.
  EXPECT_EQ(st.dtype("model.embed_tokens.weight"), "F16");
  EXPECT_EQ(st.dtype("lm_head.weight"), "F16");
  EXPECT_EQ(st.dtype("model.norm.weight"), "F16");
  EXPECT_FALSE(st.header.find(layer + ".weight"));
  EXPECT_EQ(st.header.find("__metadata__")->find("format")->asString(), "pt");

  json::Value config = readJson(dir + "/gptq/config.json");
  const json::Value *qc = config.find("quantization_config");
  ASSERT_TRUE(qc);
  EXPECT_EQ(qc->find("quant_method")->asString(), "gptq");
  EXPECT_EQ(qc->find("bits")->asInt64(), 4);
  EXPECT_EQ(qc->find("group_size")->asInt64(), 32);
  EXPECT_FALSE(qc->find("desc_act")->asBool());
  EXPECT_FALSE(qc->find("sym")->asBool());
  EXPECT_EQ(qc->find("checkpoint_format")->asString(), "gptq");
  // The keys GPTQModel writes and reads back (gptqmodel/quantization/
  // config.py, QuantizeConfig.to_dict / from_quant_config) and transformers'
  // GPTQConfig takes (transformers/utils/quantization_config.py).
  EXPECT_EQ(qc->find("format")->asString(), "gptq");
  EXPECT_EQ(qc->find("pack_dtype")->asString(), "int32");
  EXPECT_FALSE(qc->find("lm_head")->asBool());
  EXPECT_TRUE(qc->find("true_sequential")->asBool());
  EXPECT_FALSE(qc->find("static_groups")->asBool());
  EXPECT_DOUBLE_EQ(qc->find("damp_percent")->asDouble(), 0.01);
  EXPECT_TRUE(qc->find("meta")->find("quantizer")->isArray());
  EXPECT_FALSE(qc->find("dynamic")) << "no overrides for a uniform model";
  EXPECT_EQ(config.find("torch_dtype")->asString(), "float16");
  EXPECT_EQ(config.find("model_type")->asString(), "llama");
  EXPECT_EQ(config.find("hidden_size")->asInt64(), 64);
  EXPECT_TRUE(readJson(dir + "/gptq/quantize_config.json") == *qc);
}

TEST(QuantizedCheckpoint, SymmetricZerosAreWrittenAsAutoGPTQDoes) {
  std::string dir = freshDir("symzeros");
  Model m;
  ASSERT_NO_FATAL_FAILURE(open(writeRandomModel(dir, 8), m));
  ASSERT_NO_FATAL_FAILURE(
      runPasses(m, "wq-rtn{bits=4 group-size=-1 sym=true weights-out=" + dir +
                       "/overlay.safetensors}"));
  ASSERT_NO_FATAL_FAILURE(exportTo(m, dir + "/gptq"));
  RawSafetensors st(dir + "/gptq/model.safetensors");
  int layers = 0;
  for (const auto &kv : st.header.asObject()) {
    if (kv.first.size() < 7 ||
        kv.first.substr(kv.first.size() - 7) != ".qzeros")
      continue;
    ++layers;
    // z = 8 stored minus one: every nibble 7.
    for (uint32_t word : st.values<uint32_t>(kv.first))
      ASSERT_EQ(word, 0x77777777u) << kv.first;
    EXPECT_EQ(st.shape(kv.first)[0], 1) << "per-channel: one group";
  }
  EXPECT_EQ(layers, 14);
}

TEST(QuantizedCheckpoint, TokenizerFilesOfAHuggingFaceSourceAreCopied) {
  std::string dir = freshDir("tokenizer");
  std::string src = writeRandomModel(dir, 9);
  std::ofstream(src + "/tokenizer.json") << R"({"model": {"type": "BPE"}})";
  std::ofstream(src + "/tokenizer_config.json") << "{}";
  Model m;
  ASSERT_NO_FATAL_FAILURE(open(src, m));
  ASSERT_NO_FATAL_FAILURE(
      runPasses(m, "wq-rtn{bits=4 group-size=32 weights-out=" + dir +
                       "/ov.safetensors}"));
  GPTQExportOptions opts;
  opts.copyFiles = mlir::qc::hfTokenizerFiles(src);
  ASSERT_EQ(opts.copyFiles.size(), 2u);
  ASSERT_NO_FATAL_FAILURE(exportTo(m, dir + "/gptq", opts));
  EXPECT_EQ(readText(dir + "/gptq/tokenizer.json"),
            R"({"model": {"type": "BPE"}})");
  EXPECT_EQ(readText(dir + "/gptq/tokenizer_config.json"), "{}");
  // A file named like one the export writes is refused.
  opts.copyFiles.push_back(src + "/config.json");
  qc::Status s = mlir::qc::exportGPTQCheckpoint(*m.module, m.weights,
                                                dir + "/gptq2", opts);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("writes its own config.json"), std::string::npos)
      << s.message();
}

TEST(QuantizedCheckpoint, ExtraFilesAreWrittenFromMemory) {
  // A GGUF source's tokenizer comes as generated files, not paths.
  std::string dir = freshDir("extra");
  Model m;
  ASSERT_NO_FATAL_FAILURE(open(writeRandomModel(dir, 11), m));
  ASSERT_NO_FATAL_FAILURE(
      runPasses(m, "wq-rtn{bits=4 group-size=32 weights-out=" + dir +
                       "/ov.safetensors}"));
  GPTQExportOptions opts;
  opts.extraFiles = {{"tokenizer.json", "{\"a\": 1}"},
                     {"generation_config.json", "{}"}};
  ASSERT_NO_FATAL_FAILURE(exportTo(m, dir + "/gptq", opts));
  EXPECT_EQ(readText(dir + "/gptq/tokenizer.json"), "{\"a\": 1}");
  EXPECT_EQ(readText(dir + "/gptq/generation_config.json"), "{}");
  for (const char *bad : {"model.safetensors", "../x.json", ""}) {
    opts.extraFiles = {{bad, "{}"}};
    qc::Status s = mlir::qc::exportGPTQCheckpoint(*m.module, m.weights,
                                                  dir + "/gptq3", opts);
    ASSERT_FALSE(s) << bad;
    EXPECT_NE(s.message().find("cannot write"), std::string::npos)
        << s.message();
  }
}

TEST(QuantizedCheckpoint, AutoGPTQFileNameFromModelFileBaseName) {
  // Older AutoGPTQ saves gptq_model-4bit-128g.safetensors and names it in
  // quantize_config.json.
  std::string dir = freshDir("basename");
  Model m;
  ASSERT_NO_FATAL_FAILURE(open(writeRandomModel(dir, 10), m));
  ASSERT_NO_FATAL_FAILURE(
      runPasses(m, "wq-rtn{bits=4 group-size=32 weights-out=" + dir +
                       "/ov.safetensors}"));
  ASSERT_NO_FATAL_FAILURE(exportTo(m, dir + "/gptq"));
  fs::rename(dir + "/gptq/model.safetensors",
             dir + "/gptq/gptq_model-4bit-32g.safetensors");
  json::Value q = readJson(dir + "/gptq/quantize_config.json");
  q.set("model_file_base_name", json::Value::string("gptq_model-4bit-32g"));
  std::ofstream(dir + "/gptq/quantize_config.json") << json::write(q);
  json::Value config = readJson(dir + "/gptq/config.json");
  json::Value qc = *config.find("quantization_config");
  qc.set("model_file_base_name", json::Value());
  config.set("quantization_config", qc);
  std::ofstream(dir + "/gptq/config.json") << json::write(config);
  Model imported;
  ASSERT_NO_FATAL_FAILURE(open(dir + "/gptq", imported));
  expectSameLayers(m, imported);
  fs::remove(dir + "/gptq/gptq_model-4bit-32g.safetensors");
  Model missing;
  qc::Status s = mlir::qc::openModel(context(), dir + "/gptq", missing.module,
                                     missing.weights);
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("gptq_model-4bit-32g.safetensors"),
            std::string::npos)
      << s.message();
}

//===----------------------------------------------------------------------===//
// AWQ GEMM, built by hand
//===----------------------------------------------------------------------===//

TEST(QuantizedCheckpoint, HandBuiltAWQCheckpointImportsAndEvaluates) {
  std::string dir = freshDir("awq");
  Model ref;
  ASSERT_NO_FATAL_FAILURE(open(writeRandomModel(dir, 11), ref));
  const qc::ModelConfig &c = ref.weights.config;
  qc::SafetensorsWriter writer;
  std::map<std::string, quant::QuantizedWeight> expected;
  for (const qc::TensorSpec &spec : qc::modelTensorSpecs(c)) {
    const qc::HostTensor &t = *ref.weights.find(spec.name);
    if (spec.name.find("_proj.weight") == std::string::npos) {
      ASSERT_TRUE(writer.addFromF32(spec.name, spec.shape, t.data.data(),
                                    qc::DType::F16));
      continue;
    }
    std::string layer = spec.name.substr(0, spec.name.size() - 7);
    std::vector<float> w = t.data;
    // One all-positive group gives a zero point of 0, which the importer
    // must keep (it cannot go to GPTQ v1; it goes to the rows layout).
    if (layer == "model.layers.1.mlp.up_proj")
      for (int64_t k = 0; k < 32; ++k)
        w[k] = std::fabs(w[k]) + 0.01f;
    quant::QuantConfig cfg;
    cfg.bits = 4;
    cfg.groupSize = 32;
    cfg.sym = false;
    quant::QuantizedWeight q;
    ASSERT_TRUE(
        quant::quantizeRTN(w.data(), spec.shape[0], spec.shape[1], cfg, q));
    quant::AWQTensors a;
    ASSERT_TRUE(quant::packAWQ(q, a));
    auto i32 = [](const std::vector<int32_t> &v) {
      std::vector<uint8_t> b(v.size() * 4);
      std::memcpy(b.data(), v.data(), b.size());
      return b;
    };
    std::vector<uint8_t> sb(a.scales.size() * 2);
    std::memcpy(sb.data(), a.scales.data(), sb.size());
    ASSERT_TRUE(writer.add(layer + ".qweight", qc::DType::I32, {a.K, a.N / 8},
                           i32(a.qweight)));
    ASSERT_TRUE(writer.add(layer + ".qzeros", qc::DType::I32,
                           {a.numGroups, a.N / 8}, i32(a.qzeros)));
    ASSERT_TRUE(
        writer.add(layer + ".scales", qc::DType::F16, {a.numGroups, a.N}, sb));
    expected[layer] = q;
  }
  std::string ckpt = dir + "/awq";
  fs::create_directories(ckpt);
  ASSERT_TRUE(writer.writeFile(ckpt + "/model.safetensors"));
  json::Value qconf;
  ASSERT_TRUE(json::parse(R"({"quant_method": "awq", "zero_point": true,
      "group_size": 32, "bits": 4, "version": "gemm",
      "modules_to_not_convert": null})",
                          qconf));
  std::string config = qc::buildHFConfigJson(c, qc::DType::F16, &qconf);
  std::ofstream(ckpt + "/config.json") << config;

  Model imported;
  ASSERT_NO_FATAL_FAILURE(open(ckpt, imported));
  auto layers = dequantizedLayers(imported);
  ASSERT_EQ(layers.size(), expected.size());
  for (auto &[layer, q] : expected) {
    std::vector<float> want;
    q.dequantize(want);
    EXPECT_EQ(want, layers[layer]) << layer;
  }
  bool sawRows = false;
  imported.module->walk([&](mlir::qc::wq::LinearOp op) {
    sawRows |= op.getLayout() == mlir::qc::wq::Layout::rows;
  });
  EXPECT_TRUE(sawRows) << "the zero point of 0 should have forced rows";

  // Evaluates like the float model whose linears are the dequantized
  // weights.
  for (auto &[layer, q] : expected)
    q.dequantize(ref.weights.tensors[layer + ".weight"].data);
  std::vector<int32_t> tokens = {1, 7, 8, 63, 0, 22, 5};
  expectSameLogits(logitsOf(ref, tokens), logitsOf(imported, tokens));
}

//===----------------------------------------------------------------------===//
// Malformed checkpoints
//===----------------------------------------------------------------------===//

/// Copies a good GPTQ checkpoint and lets a test damage its tensors or
/// quantization_config; the load must fail with `needles` in the message.
class Malformed : public testing::Test {
protected:
  static void SetUpTestSuite() {
    base = freshDir("malformed_base");
    Model m;
    ASSERT_NO_FATAL_FAILURE(open(writeRandomModel(base, 21), m));
    ASSERT_NO_FATAL_FAILURE(runPasses(
        m, "wq-rtn{bits=4 group-size=32 sym=false weights-out=" + base +
               "/overlay.safetensors}"));
    ASSERT_NO_FATAL_FAILURE(exportTo(m, base + "/gptq"));
  }

  /// Rewrites model.safetensors through `edit` (name -> tensor) and the
  /// quantization_config through `editConfig`, then loads.
  qc::Status
  load(const std::string &name,
       const std::function<void(std::map<std::string, qc::PackedTensor> &)>
           &edit,
       const std::function<void(json::Value &)> &editConfig = nullptr,
       Model *out = nullptr) {
    std::string dir = freshDir("malformed_" + name);
    std::unique_ptr<qc::SafetensorsFile> f;
    qc::Status opened =
        qc::SafetensorsFile::open(base + "/gptq/model.safetensors", f);
    if (!opened)
      return opened.withContext("the base checkpoint was not written");
    std::map<std::string, qc::PackedTensor> tensors;
    for (const qc::TensorInfo &info : f->tensors()) {
      const uint8_t *p = f->tensorData(info);
      tensors[info.name] = {info.dtype, info.shape,
                            std::vector<uint8_t>(p, p + info.byteSize())};
    }
    edit(tensors);
    qc::SafetensorsWriter w;
    for (auto &[n, t] : tensors)
      EXPECT_TRUE(w.add(n, t.dtype, t.shape, t.bytes));
    EXPECT_TRUE(w.writeFile(dir + "/model.safetensors"));
    json::Value config = readJson(base + "/gptq/config.json");
    if (editConfig) {
      json::Value q = *config.find("quantization_config");
      editConfig(q);
      config.set("quantization_config", q);
    }
    std::ofstream(dir + "/config.json") << json::write(config);
    Model m;
    return mlir::qc::openModel(context(), dir, out ? out->module : m.module,
                               out ? out->weights : m.weights);
  }

  void expectError(const qc::Status &s, std::vector<std::string> needles) {
    ASSERT_FALSE(s) << "a malformed checkpoint loaded";
    for (const std::string &n : needles)
      EXPECT_NE(s.message().find(n), std::string::npos)
          << "'" << n << "' not in: " << s.message();
  }

  static std::string base;
};
std::string Malformed::base;

const std::string kQ = "model.layers.0.self_attn.q_proj";
const std::string kDown = "model.layers.1.mlp.down_proj";

TEST_F(Malformed, MissingQZeros) {
  expectError(load("noqzeros", [](auto &t) { t.erase(kQ + ".qzeros"); }),
              {"model.safetensors", kQ + ".qzeros", "missing"});
}

TEST_F(Malformed, WrongShapes) {
  expectError(load("qweightshape",
                   [](auto &t) {
                     auto &q = t[kQ + ".qweight"];
                     q.shape = {16, 32};
                   }),
              {"model.safetensors", kQ + ".qweight", "shape [16, 32]"});
  expectError(load("scalesshape",
                   [](auto &t) {
                     auto &s = t[kDown + ".scales"];
                     s.shape = {s.shape[1], s.shape[0]};
                   }),
              {kDown + ".scales", "expected [3, 64]"});
}

TEST_F(Malformed, WrongDType) {
  expectError(load("scalesdtype",
                   [](auto &t) {
                     auto &s = t[kQ + ".scales"];
                     s.dtype = qc::DType::BF16;
                   }),
              {kQ + ".scales", "dtype BF16", "expected F16"});
}

TEST_F(Malformed, GIdxOutOfRange) {
  expectError(load("gidx",
                   [](auto &t) {
                     auto &g = t[kQ + ".g_idx"];
                     int32_t bad = 7;
                     std::memcpy(g.bytes.data() + 4 * 10, &bad, 4);
                   }),
              {"model.safetensors", kQ, "g_idx[10] = 7", "out of range"});
}

TEST_F(Malformed, UnsupportedBitsAndMethods) {
  auto none = [](auto &) {};
  expectError(
      load("bits5", none,
           [](json::Value &q) { q.set("bits", json::Value::integer(5)); }),
      {"config.json", "\"bits\"", "5", "not supported"});
  expectError(load("bnb", none,
                   [](json::Value &q) {
                     q.set("quant_method", json::Value::string("bitsandbytes"));
                   }),
              {"config.json", "\"bitsandbytes\"", "supported: gptq, awq"});
  expectError(load("marlin", none,
                   [](json::Value &q) {
                     q.set("checkpoint_format", json::Value::string("marlin"));
                   }),
              {"config.json", "checkpoint_format", "marlin"});
  // The config says 8 bits; the tensors hold 4-bit words.
  expectError(
      load("bitsmismatch", none,
           [](json::Value &q) { q.set("bits", json::Value::integer(8)); }),
      {"model.safetensors", kQ + ".qweight", "rows, expected"});
}

TEST_F(Malformed, MissingScales) {
  expectError(load("noscales", [](auto &t) { t.erase(kQ + ".scales"); }),
              {"model.safetensors", kQ + ".scales", "missing"});
}

TEST_F(Malformed, GroupSizeThatDoesNotMatchTheTensors) {
  // The tensors hold ceil(64 / 32) = 2 groups; a config claiming 48 means
  // ceil(64 / 48) = 2 as well for K = 64, so use 16 (4 groups).
  auto none = [](auto &) {};
  expectError(load("group16", none,
                   [](json::Value &q) {
                     q.set("group_size", json::Value::integer(16));
                   }),
              {"model.safetensors", ".qzeros", "group_size 16", "4 groups"});
  expectError(load("group0", none,
                   [](json::Value &q) {
                     q.set("group_size", json::Value::integer(0));
                   }),
              {"config.json", "\"group_size\"", "positive group size"});
}

TEST_F(Malformed, BadDynamicOverrides) {
  auto none = [](auto &) {};
  auto withDynamic = [](const std::string &key, json::Value v) {
    return [key, v](json::Value &q) {
      json::Value d = json::Value::object();
      d.set(key, v);
      q.set("dynamic", d);
    };
  };
  json::Value bits6 = json::Value::object();
  bits6.set("bits", json::Value::integer(6));
  expectError(load("dynbits", none, withDynamic("+:.*q_proj", bits6)),
              {"config.json", "+:.*q_proj", "bits", "6", "not supported"});
  expectError(load("dynregex", none,
                   withDynamic("+:model.layers.(0", json::Value::object())),
              {"config.json", "model.layers.(0", "invalid"});
  expectError(
      load("dynexclude", none,
           withDynamic("-:.*self_attn\\.q_proj", json::Value::object())),
      {"model.safetensors", kQ + ".qweight", "excludes this module"});
  // An override that contradicts the tensors is caught by their shapes.
  json::Value bits8 = json::Value::object();
  bits8.set("bits", json::Value::integer(8));
  expectError(load("dyn8", none, withDynamic("+:.*q_proj", bits8)),
              {"model.safetensors", kQ + ".qweight", "rows, expected"});
}

TEST_F(Malformed, DescActWithoutGIdx) {
  expectError(load(
                  "nogidx", [](auto &t) { t.erase(kQ + ".g_idx"); },
                  [](json::Value &q) {
                    q.set("desc_act", json::Value::boolean(true));
                  }),
              {kQ + ".g_idx", "missing", "desc_act"});
}

TEST_F(Malformed, ExtraAndAmbiguousTensors) {
  expectError(
      load("extra",
           [](auto &t) {
             t["model.layers.0.self_attn.q_proj.qweight_extra"] =
                 t[kQ + ".g_idx"];
           }),
      {"model.safetensors", "unexpected tensor", "q_proj.qweight_extra"});
  expectError(load("both",
                   [](auto &t) {
                     t[kQ + ".weight"] =
                         t["model.layers.0.input_layernorm.weight"];
                   }),
              {kQ, "both a float weight and a qweight"});
}

TEST_F(Malformed, RandomWordsInPackedTensorsNeverCrash) {
  // Hostile values (not shapes) in qweight/qzeros/g_idx/scales: every load
  // either succeeds (any code is a valid code) or names the layer; what
  // must never happen is a crash or an out-of-range read. The failures
  // seen are counted so the test notices if corruption stops being caught.
  std::mt19937 rng(5);
  const char *suffixes[] = {".qweight", ".qzeros", ".g_idx", ".scales"};
  int failures = 0;
  for (int i = 0; i < 40; ++i) {
    std::string layer = "model.layers." + std::to_string(rng() % 2) +
                        (rng() % 2 ? ".self_attn.k_proj" : ".mlp.up_proj");
    std::string name = layer + suffixes[i % 4];
    qc::Status s = load("random", [&](auto &t) {
      auto &bytes = t[name].bytes;
      uint32_t word = rng();
      std::memcpy(bytes.data() + 4 * (rng() % (bytes.size() / 4)), &word, 4);
    });
    if (!s) {
      ++failures;
      EXPECT_NE(s.message().find(layer), std::string::npos) << s.message();
    }
  }
  // Random g_idx words are out of range, random fp16 pairs are often NaN.
  EXPECT_GE(failures, 10);
}

TEST_F(Malformed, QuantizedLmHeadIsDequantized) {
  // GPTQModel's lm_head=true: the classifier is stored quantized. It loads
  // as the exact dequantized fp32 matrix.
  quant::QuantizedWeight q;
  std::vector<float> w(64 * 64);
  for (size_t i = 0; i < w.size(); ++i)
    w[i] = std::sin(0.37f * static_cast<float>(i));
  quant::QuantConfig cfg;
  cfg.bits = 4;
  cfg.groupSize = 32;
  cfg.sym = false;
  ASSERT_TRUE(quant::quantizeRTN(w.data(), 64, 64, cfg, q));
  quant::GPTQTensors g;
  ASSERT_TRUE(quant::packGPTQ(q, {}, g));
  auto bytes = [](const auto &v) {
    std::vector<uint8_t> b(v.size() * sizeof(v[0]));
    std::memcpy(b.data(), v.data(), b.size());
    return b;
  };
  Model m;
  qc::Status s = load(
      "lmhead",
      [&](auto &t) {
        t.erase("lm_head.weight");
        t["lm_head.qweight"] = {qc::DType::I32, {8, 64}, bytes(g.qweight)};
        t["lm_head.qzeros"] = {qc::DType::I32, {2, 8}, bytes(g.qzeros)};
        t["lm_head.scales"] = {qc::DType::F16, {2, 64}, bytes(g.scales)};
        t["lm_head.g_idx"] = {qc::DType::I32, {64}, bytes(g.gIdx)};
      },
      nullptr, &m);
  ASSERT_TRUE(s) << s.message();
  std::vector<float> want;
  q.dequantize(want);
  EXPECT_EQ(m.weights.find("lm_head.weight")->data, want);
}

//===----------------------------------------------------------------------===//
// Export refusals and atomicity
//===----------------------------------------------------------------------===//

TEST(QuantizedCheckpoint, ExportRefusesWhatGPTQCannotHold) {
  std::string dir = freshDir("refuse");
  std::string floatModel = writeRandomModel(dir, 31);
  auto exportError = [&](const std::string &pipeline) {
    Model m;
    open(floatModel, m);
    if (m.module && !pipeline.empty())
      runPasses(m, pipeline);
    if (!m.module || testing::Test::HasFatalFailure())
      return std::string("(setup failed)");
    qc::Status s =
        mlir::qc::exportGPTQCheckpoint(*m.module, m.weights, dir + "/out", {});
    EXPECT_FALSE(fs::exists(dir + "/out"));
    return s.isOk() ? std::string("(exported)") : s.message();
  };
  std::string ov = " weights-out=" + dir + "/ov.safetensors";
  EXPECT_NE(exportError("").find("no wq.linear ops"), std::string::npos);
  std::string nf4 = exportError("wq-nf4{block-size=32" + ov + "}");
  EXPECT_NE(nf4.find("codebook"), std::string::npos) << nf4;
  EXPECT_NE(nf4.find("layer 'model.layers."), std::string::npos) << nf4;
  std::string hqq = exportError("wq-hqq{group-size=32" + ov + "}");
  EXPECT_NE(hqq.find("fractional HQQ zeros"), std::string::npos) << hqq;
}

TEST(QuantizedCheckpoint, ExportRefusesTheOneDimensionalGPULayout) {
  // A wq.linear in the GPU layout mma16x64 has a 1-D qweight. Reading it
  // back for an export once indexed that shape as [words, N]: element 1 of
  // a one-element shape, garbage in the "expected" shape of the error (or,
  // had the garbage matched, the mma16x64 tiles unpacked as `rows`). Now
  // the layer is refused by its layout, before any shape is looked at.
  mlir::DialectRegistry registry;
  mlir::qc::registerAllQCDialects(registry);
  mlir::MLIRContext ctx(registry);
  ctx.loadAllAvailableDialects();
  const char *ir = R"mlir(
    func.func @f(%x: tensor<?x72xf32>) -> tensor<?x20xf32> {
      %qw = llm.param "l.qweight" : tensor<512xi32>
      %s = llm.param "l.scales" : tensor<3x32xf16>
      %z = llm.param "l.qzeros" : tensor<3x32xf16>
      %y = wq.linear %x, %qw, %s zeros(%z) {bits = 4 : i64, group_size = 32 : i64, sym = false, in_features = 72 : i64, out_features = 20 : i64, scale_dtype = f16, zero_dtype = f16, layout = #wq.layout<mma16x64>} : (tensor<?x72xf32>, tensor<512xi32>, tensor<3x32xf16>, tensor<3x32xf16>) -> tensor<?x20xf32>
      return %y : tensor<?x20xf32>
    })mlir";
  mlir::OwningOpRef<mlir::ModuleOp> module =
      mlir::parseSourceString<mlir::ModuleOp>(ir, &ctx);
  ASSERT_TRUE(module);
  qc::ModelWeights w;
  w.packed["l.qweight"] = {
      qc::DType::I32, {512}, std::vector<uint8_t>(512 * 4, 0)};
  w.packed["l.scales"] = {
      qc::DType::F16, {3, 32}, std::vector<uint8_t>(3 * 32 * 2, 0)};
  w.packed["l.qzeros"] = {
      qc::DType::F16, {3, 32}, std::vector<uint8_t>(3 * 32 * 2, 0)};
  mlir::Operation *lin = nullptr;
  module->walk([&](mlir::qc::wq::LinearOp op) { lin = op; });
  ASSERT_NE(lin, nullptr);
  std::string layer;
  quant::QuantizedWeight q;
  qc::Status s = mlir::qc::readQuantizedLayer(lin, w, layer, q);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.message(),
            "layer 'l': has layout mma16x64, which no checkpoint format holds "
            "(the exports read the gptq and rows layouts)");
}

//===----------------------------------------------------------------------===//
// What the loaders expect (transformers + GPTQModel)
//===----------------------------------------------------------------------===//

TEST(QuantizedCheckpoint, ShapesAreWhatTheLoadersComputeForEveryK) {
  // The loaders' rules, for in_features K, out_features N, bits b, group G:
  //  - scales [ceil(K / G), N], qzeros [ceil(K / G), N * b / 32] and g_idx
  //    [K] with g_idx[k] = k // G: GPTQModel
  //    gptqmodel/nn_modules/qlinear/__init__.py,
  //    GPTQQuantLinear._register_gptq_buffers (math.ceil(in_features /
  //    group_size) rows; g_idx = [i // group_size for i in
  //    range(in_features)]); g_idx indexes scales and the unpacked zeros in
  //    PackableQuantLinear.dequantize_weight (scales[g_idx]).
  //  - qweight [ceil(K * b / 32), N]: K padded to whole 32-bit words only
  //    (measured with GPTQModel 7.7's TorchQuantLinear, §14.6: K = 172
  //    4-bit loads as [22, N] and is refused as [24, N]); whole three-word
  //    blocks for 3-bit (dequantize_weight reshapes qweight rows by 3).
  //  - group_size -1 means one group (GroupedQuantLinear.__init__:
  //    group_size = in_features when -1).
  struct Case {
    int bits;
    int64_t G;
  } cases[] = {{4, 32}, {4, 128}, {4, -1}, {2, 32}, {8, 32}, {8, 64}};
  for (const Case &c : cases) {
    std::string name = "shapes_b" + std::to_string(c.bits) + "_g" +
                       std::to_string(c.G < 0 ? 0 : c.G);
    std::string dir = freshDir(name);
    Model m;
    ASSERT_NO_FATAL_FAILURE(open(writeRandomModel(dir, 41, 172), m));
    ASSERT_NO_FATAL_FAILURE(
        runPasses(m, "wq-rtn{bits=" + std::to_string(c.bits) +
                         " group-size=" + std::to_string(c.G) +
                         " sym=true weights-out=" + dir + "/ov.safetensors}"));
    ASSERT_NO_FATAL_FAILURE(exportTo(m, dir + "/gptq"));
    RawSafetensors st(dir + "/gptq/model.safetensors");
    int checked = 0;
    for (const auto &kv : st.header.asObject()) {
      if (kv.first.size() < 8 ||
          kv.first.substr(kv.first.size() - 8) != ".qweight")
        continue;
      std::string layer = kv.first.substr(0, kv.first.size() - 8);
      bool down = layer.find("down_proj") != std::string::npos;
      bool gateUp = layer.find("gate_proj") != std::string::npos ||
                    layer.find("up_proj") != std::string::npos;
      bool kvProj = layer.find("k_proj") != std::string::npos ||
                    layer.find("v_proj") != std::string::npos;
      const int64_t K = down ? 172 : 64, N = gateUp ? 172 : kvProj ? 32 : 64;
      const int64_t ng = c.G < 0 ? 1 : (K + c.G - 1) / c.G;
      SCOPED_TRACE(layer + " bits " + std::to_string(c.bits) + " G " +
                   std::to_string(c.G));
      EXPECT_EQ(st.shape(layer + ".qweight"),
                (std::vector<int64_t>{(K * c.bits + 31) / 32, N}));
      EXPECT_EQ(st.shape(layer + ".g_idx"), (std::vector<int64_t>{K}));
      EXPECT_EQ(st.shape(layer + ".scales"), (std::vector<int64_t>{ng, N}));
      EXPECT_EQ(st.shape(layer + ".qzeros"),
                (std::vector<int64_t>{ng, (N * c.bits + 31) / 32}));
      auto gIdx = st.values<int32_t>(layer + ".g_idx");
      for (int64_t k = 0; k < K; ++k)
        ASSERT_EQ(gIdx[k], c.G < 0 ? 0 : k / c.G) << k;
      ++checked;
    }
    EXPECT_EQ(checked, 14);
    Model imported;
    ASSERT_NO_FATAL_FAILURE(open(dir + "/gptq", imported));
    expectSameLayers(m, imported);
  }
}

TEST(QuantizedCheckpoint, ImportAcceptsTheOlderWholeGroupPadding) {
  // Checkpoints written before the loaders' rule pad K = 172 to 192 (whole
  // groups): qweight [24, N], g_idx [192] with pad entries in the last
  // group. Rewrite a word-padded export that way; it must import to the
  // same weights.
  std::string dir = freshDir("oldpad");
  Model m;
  ASSERT_NO_FATAL_FAILURE(open(writeRandomModel(dir, 42, 172), m));
  ASSERT_NO_FATAL_FAILURE(
      runPasses(m, "wq-rtn{bits=4 group-size=32 sym=true weights-out=" + dir +
                       "/ov.safetensors}"));
  ASSERT_NO_FATAL_FAILURE(exportTo(m, dir + "/gptq"));
  std::unique_ptr<qc::SafetensorsFile> f;
  ASSERT_TRUE(qc::SafetensorsFile::open(dir + "/gptq/model.safetensors", f));
  qc::SafetensorsWriter w;
  int rewritten = 0;
  for (const qc::TensorInfo &info : f->tensors()) {
    const uint8_t *p = f->tensorData(info);
    std::vector<uint8_t> bytes(p, p + info.byteSize());
    std::vector<int64_t> shape = info.shape;
    bool down = info.name.find("down_proj") != std::string::npos;
    if (down && info.name.find(".qweight") != std::string::npos) {
      const int64_t N = shape[1];
      std::vector<int32_t> words(bytes.size() / 4), out(24 * N);
      std::memcpy(words.data(), bytes.data(), bytes.size());
      std::vector<uint8_t> codes(192);
      for (int64_t n = 0; n < N; ++n) {
        quant::unpackCodeStream(words.data() + n, N, 172, 4, codes.data(), 1);
        for (int k = 172; k < 192; ++k)
          codes[k] = 8; // the symmetric zero point
        quant::packCodeStream(codes.data(), 1, 192, 4, out.data() + n, N);
      }
      shape = {24, N};
      bytes.assign(reinterpret_cast<uint8_t *>(out.data()),
                   reinterpret_cast<uint8_t *>(out.data() + out.size()));
      ++rewritten;
    } else if (down && info.name.find(".g_idx") != std::string::npos) {
      std::vector<int32_t> g(192, 5);
      for (int k = 0; k < 172; ++k)
        g[k] = k / 32;
      shape = {192};
      bytes.assign(reinterpret_cast<uint8_t *>(g.data()),
                   reinterpret_cast<uint8_t *>(g.data() + g.size()));
    }
    ASSERT_TRUE(w.add(info.name, info.dtype, shape, bytes));
  }
  ASSERT_EQ(rewritten, 2);
  f.reset();
  ASSERT_TRUE(w.writeFile(dir + "/gptq/model.safetensors"));
  Model imported;
  ASSERT_NO_FATAL_FAILURE(open(dir + "/gptq", imported));
  expectSameLayers(m, imported);
}

TEST(QuantizedCheckpoint, MixedConfigurationsBecomeDynamicOverrides) {
  // GPTQModel's per-module overrides (gptqmodel/quantization/config.py,
  // dynamic_get: keys are regular expressions re.match'ed against module
  // names, "-:" excludes the module, "+:" or no prefix overrides bits /
  // group_size / sym / desc_act; first match wins). Attention at 4 bits
  // g32, the MLP at 8 bits g64 sym except down_proj, which stays float.
  std::string dir = freshDir("dynamic");
  Model m;
  ASSERT_NO_FATAL_FAILURE(open(writeRandomModel(dir, 43), m));
  std::string ov = " weights-out=" + dir + "/ov.safetensors";
  ASSERT_NO_FATAL_FAILURE(runPasses(
      m, "wq-rtn{bits=4 group-size=32 sym=false exclude=mlp" + ov +
             "},wq-rtn{bits=8 group-size=64 sym=true exclude=down_proj" + ov +
             "}"));
  mlir::qc::GPTQExportSummary sum;
  qc::Status s = mlir::qc::exportGPTQCheckpoint(*m.module, m.weights,
                                                dir + "/gptq", {}, &sum);
  ASSERT_TRUE(s) << s.message();
  // 8 attention layers at 4 bits are the majority: the top level.
  EXPECT_EQ(sum.bits, 4);
  EXPECT_EQ(sum.quantizedLayers, 12);
  EXPECT_EQ(sum.overrides, 6);
  json::Value config = readJson(dir + "/gptq/config.json");
  const json::Value *q = config.find("quantization_config");
  ASSERT_TRUE(q);
  EXPECT_EQ(q->find("bits")->asInt64(), 4);
  EXPECT_EQ(q->find("group_size")->asInt64(), 32);
  EXPECT_FALSE(q->find("sym")->asBool());
  const json::Value *dyn = q->find("dynamic");
  ASSERT_TRUE(dyn && dyn->isObject());
  const json::Value *up = dyn->find("+:^model\\.layers\\.1\\.mlp\\.up_proj$");
  ASSERT_TRUE(up) << json::write(*dyn);
  EXPECT_EQ(up->find("bits")->asInt64(), 8);
  EXPECT_EQ(up->find("group_size")->asInt64(), 64);
  EXPECT_TRUE(up->find("sym")->asBool());
  const json::Value *down =
      dyn->find("-:^model\\.layers\\.0\\.mlp\\.down_proj$");
  ASSERT_TRUE(down) << json::write(*dyn);
  EXPECT_TRUE(down->isObject() && down->asObject().empty());
  EXPECT_TRUE(readJson(dir + "/gptq/quantize_config.json") == *q);
  RawSafetensors st(dir + "/gptq/model.safetensors");
  EXPECT_EQ(st.dtype("model.layers.0.mlp.down_proj.weight"), "F16");
  EXPECT_FALSE(st.header.find("model.layers.0.mlp.down_proj.qweight"));
  EXPECT_EQ(st.shape("model.layers.0.mlp.up_proj.qweight"),
            (std::vector<int64_t>{64 * 8 / 32, 96}));

  Model imported;
  ASSERT_NO_FATAL_FAILURE(open(dir + "/gptq", imported));
  expectSameLayers(m, imported);
  roundFloatsToF16(m.weights);
  std::vector<int32_t> tokens = {1, 5, 9, 33, 2, 17, 60, 4};
  expectSameLogits(logitsOf(m, tokens), logitsOf(imported, tokens));
}

TEST(QuantizedCheckpoint, ShardedExportWritesAnIndex) {
  std::string dir = freshDir("sharded");
  std::string src = writeRandomModel(dir, 44);
  std::ofstream(src + "/tokenizer.json") << R"({"model": {"type": "BPE"}})";
  Model m;
  ASSERT_NO_FATAL_FAILURE(open(src, m));
  ASSERT_NO_FATAL_FAILURE(
      runPasses(m, "wq-rtn{bits=4 group-size=32 weights-out=" + dir +
                       "/ov.safetensors}"));
  GPTQExportOptions opts;
  opts.maxShardBytes = 16 << 10;
  opts.copyFiles = mlir::qc::hfTokenizerFiles(src);
  mlir::qc::GPTQExportSummary sum;
  qc::Status s = mlir::qc::exportGPTQCheckpoint(*m.module, m.weights,
                                                dir + "/gptq", opts, &sum);
  ASSERT_TRUE(s) << s.message();
  EXPECT_GT(sum.shards, 1);
  EXPECT_FALSE(fs::exists(dir + "/gptq/model.safetensors"));
  EXPECT_TRUE(fs::exists(dir + "/gptq/tokenizer.json"));
  json::Value index = readJson(dir + "/gptq/model.safetensors.index.json");
  const json::Value *map = index.find("weight_map");
  ASSERT_TRUE(map && map->isObject());
  uint64_t total = 0;
  std::set<std::string> files;
  for (const auto &[tensor, file] : map->asObject()) {
    files.insert(file.asString());
    RawSafetensors st(dir + "/gptq/" + file.asString());
    const auto &offs = st.entry(tensor).find("data_offsets")->asArray();
    total += offs[1].asUInt64() - offs[0].asUInt64();
  }
  EXPECT_EQ(static_cast<int64_t>(files.size()), sum.shards);
  EXPECT_EQ(index.find("metadata")->find("total_size")->asUInt64(), total);
  char first[64];
  std::snprintf(first, sizeof(first), "model-00001-of-%05lld.safetensors",
                static_cast<long long>(sum.shards));
  EXPECT_TRUE(files.count(first)) << first;
  Model imported;
  ASSERT_NO_FATAL_FAILURE(open(dir + "/gptq", imported));
  expectSameLayers(m, imported);
}

TEST(QuantizedCheckpoint, HQQWithRoundedZerosAndF16ScalesRoundTrips) {
  // HQQ's fractional zeros cannot be stored; rounded ones with fp16 scales
  // are an ordinary asymmetric grid.
  std::string dir = freshDir("hqq");
  Model m;
  ASSERT_NO_FATAL_FAILURE(open(writeRandomModel(dir, 51), m));
  ASSERT_NO_FATAL_FAILURE(runPasses(
      m, "wq-hqq{group-size=32 scale-dtype=f16 round-zeros=true weights-out=" +
             dir + "/ov.safetensors}"));
  GPTQExportOptions opts;
  opts.format = quant::GPTQFormat::V2; // HQQ zeros may be 0
  ASSERT_NO_FATAL_FAILURE(exportTo(m, dir + "/gptq", opts));
  Model imported;
  ASSERT_NO_FATAL_FAILURE(open(dir + "/gptq", imported));
  expectSameLayers(m, imported);
}

TEST(QuantizedCheckpoint, ExportReplacesOnlyCheckpointFolders) {
  std::string dir = freshDir("replace");
  Model m;
  ASSERT_NO_FATAL_FAILURE(open(writeRandomModel(dir, 41), m));
  ASSERT_NO_FATAL_FAILURE(runPasses(m, "wq-rtn{bits=4 group-size=32"
                                       " weights-out=" +
                                           dir + "/ov.safetensors}"));
  // A folder that is not a checkpoint is never replaced.
  fs::create_directories(dir + "/precious/sub");
  std::ofstream(dir + "/precious/notes.txt") << "keep";
  qc::Status s = mlir::qc::exportGPTQCheckpoint(*m.module, m.weights,
                                                dir + "/precious", {});
  ASSERT_FALSE(s);
  EXPECT_NE(s.message().find("refusing to replace"), std::string::npos)
      << s.message();
  EXPECT_EQ(readText(dir + "/precious/notes.txt"), "keep");
  // A previous checkpoint is replaced as a whole, leaving no temporaries.
  ASSERT_NO_FATAL_FAILURE(exportTo(m, dir + "/ckpt"));
  std::ofstream(dir + "/ckpt/stale.safetensors") << "old";
  ASSERT_NO_FATAL_FAILURE(exportTo(m, dir + "/ckpt"));
  EXPECT_FALSE(fs::exists(dir + "/ckpt/stale.safetensors"));
  for (const auto &e : fs::directory_iterator(dir))
    EXPECT_EQ(e.path().filename().string().find(".tmp-"), std::string::npos)
        << e.path();
}

} // namespace

//===----------------------------------------------------------------------===//
// compressed-tensors pack-quantized
//===----------------------------------------------------------------------===//

namespace {

/// Decodes one layer the way compressed-tensors does
/// (compressed_tensors/compressors/quantized_compressors/pack_quantized.py:
/// unpack_from_int32 -- value k of row n at bits b * (k % (32 / b)) of word
/// k / (32 / b), minus 2^(b-1); the zero point packed the same way along
/// dim 0; then quantization/lifecycle/forward.py dequantize:
/// (q - zp) * scale with the group of column k = k // group_size, or
/// g_idx[k]) -- independently of qc's packers.
std::vector<float> decodeCompressedTensors(const RawSafetensors &st,
                                           const std::string &layer, int bits,
                                           bool sym) {
  auto shape = st.values<int64_t>(layer + ".weight_shape");
  const int64_t N = shape[0], K = shape[1];
  const int pf = 32 / bits, offset = 1 << (bits - 1);
  const uint32_t mask = (1u << bits) - 1;
  auto packed = st.values<uint32_t>(layer + ".weight_packed");
  auto scales = st.values<uint16_t>(layer + ".weight_scale");
  const int64_t words = st.shape(layer + ".weight_packed")[1];
  const int64_t ng = st.shape(layer + ".weight_scale")[1];
  std::vector<uint32_t> zp;
  if (!sym)
    zp = st.values<uint32_t>(layer + ".weight_zero_point");
  std::vector<int32_t> gIdx;
  if (st.header.find(layer + ".weight_g_idx"))
    gIdx = st.values<int32_t>(layer + ".weight_g_idx");
  std::vector<float> w(static_cast<size_t>(N * K));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) {
      int q = static_cast<int>(
                  (packed[n * words + k / pf] >> (bits * (k % pf))) & mask) -
              offset;
      int64_t g = gIdx.empty() ? k / (K / ng) : gIdx[k];
      int z = sym ? 0
                  : static_cast<int>(
                        (zp[(n / pf) * ng + g] >> (bits * (n % pf))) & mask) -
                        offset;
      w[n * K + k] =
          static_cast<float>(q - z) * qc::f16ToF32(scales[n * ng + g]);
    }
  return w;
}

} // namespace

TEST(CompressedTensors, TensorsAndConfigAreWhatTheLoaderExpects) {
  // compression_param_info (pack_quantized.py, PackedQuantizationCompressor):
  // weight_packed int32 [N, ceil(K / pack_factor)], weight_zero_point int32
  // [ceil(N / pack_factor), K // group_size] (asymmetric group/channel
  // only), weight_shape [2]; compress_weight writes weight_shape as
  // torch.tensor(weight.shape) (int64) and vLLM's CompressedTensorsWNA16
  // allocates it int64; weight_scale [N, K // group_size] in the weight
  // dtype.
  std::string dir = freshDir("ct_group");
  Model m;
  ASSERT_NO_FATAL_FAILURE(open(writeRandomModel(dir, 61), m));
  ASSERT_NO_FATAL_FAILURE(
      runPasses(m, "wq-rtn{bits=4 group-size=32 sym=false weights-out=" + dir +
                       "/ov.safetensors}"));
  mlir::qc::CompressedTensorsExportSummary sum;
  qc::Status s = mlir::qc::exportCompressedTensors(*m.module, m.weights,
                                                   dir + "/ct", {}, &sum);
  ASSERT_TRUE(s) << s.message();
  EXPECT_EQ(sum.quantizedLayers, 14);
  EXPECT_EQ(sum.configGroups, 1);
  RawSafetensors st(dir + "/ct/model.safetensors");
  auto want = dequantizedLayers(m);
  for (const auto &[layer, w] : want) {
    SCOPED_TRACE(layer);
    const int64_t N = st.shape(layer + ".weight_shape").empty()
                          ? 0
                          : st.values<int64_t>(layer + ".weight_shape")[0];
    const int64_t K = st.values<int64_t>(layer + ".weight_shape")[1];
    EXPECT_EQ(st.dtype(layer + ".weight_packed"), "I32");
    EXPECT_EQ(st.shape(layer + ".weight_packed"),
              (std::vector<int64_t>{N, (K + 7) / 8}));
    EXPECT_EQ(st.dtype(layer + ".weight_scale"), "F16");
    EXPECT_EQ(st.shape(layer + ".weight_scale"),
              (std::vector<int64_t>{N, K / 32}));
    EXPECT_EQ(st.dtype(layer + ".weight_zero_point"), "I32");
    EXPECT_EQ(st.shape(layer + ".weight_zero_point"),
              (std::vector<int64_t>{(N + 7) / 8, K / 32}));
    EXPECT_EQ(st.dtype(layer + ".weight_shape"), "I64");
    EXPECT_EQ(st.shape(layer + ".weight_shape"), (std::vector<int64_t>{2}));
    EXPECT_FALSE(st.header.find(layer + ".weight_g_idx"));
    EXPECT_FALSE(st.header.find(layer + ".weight"));
    std::vector<float> got = decodeCompressedTensors(st, layer, 4, false);
    ASSERT_EQ(got.size(), w.size());
    EXPECT_EQ(0, std::memcmp(got.data(), w.data(), w.size() * sizeof(float)))
        << "decoded weights differ from qc's";
  }
  EXPECT_EQ(st.dtype("model.embed_tokens.weight"), "F16");
  EXPECT_EQ(st.dtype("model.norm.weight"), "F16");

  // quantization_config as compressed-tensors' QuantizationConfig /
  // QuantizationScheme / QuantizationArgs serialize it
  // (compressed_tensors/quantization/quant_config.py, quant_scheme.py,
  // quant_args.py).
  json::Value config = readJson(dir + "/ct/config.json");
  const json::Value *q = config.find("quantization_config");
  ASSERT_TRUE(q);
  EXPECT_EQ(q->find("quant_method")->asString(), "compressed-tensors");
  EXPECT_EQ(q->find("format")->asString(), "pack-quantized");
  EXPECT_EQ(q->find("quantization_status")->asString(), "compressed");
  EXPECT_TRUE(q->find("kv_cache_scheme")->isNull());
  ASSERT_TRUE(q->find("ignore")->isArray());
  EXPECT_EQ(q->find("ignore")->asArray().size(), 1u);
  EXPECT_EQ(q->find("ignore")->asArray()[0].asString(), "lm_head");
  const json::Value *g = q->find("config_groups")->find("group_0");
  ASSERT_TRUE(g);
  EXPECT_EQ(g->find("targets")->asArray()[0].asString(), "Linear");
  EXPECT_TRUE(g->find("input_activations")->isNull());
  EXPECT_TRUE(g->find("output_activations")->isNull());
  const json::Value *wa = g->find("weights");
  EXPECT_EQ(wa->find("num_bits")->asInt64(), 4);
  EXPECT_EQ(wa->find("type")->asString(), "int");
  EXPECT_FALSE(wa->find("symmetric")->asBool());
  EXPECT_EQ(wa->find("strategy")->asString(), "group");
  EXPECT_EQ(wa->find("group_size")->asInt64(), 32);
  EXPECT_TRUE(wa->find("actorder")->isNull());
  EXPECT_FALSE(wa->find("dynamic")->asBool());
  EXPECT_EQ(config.find("torch_dtype")->asString(), "float16");

  // qc reads its own export back with identical dequantized weights.
  Model imported;
  ASSERT_NO_FATAL_FAILURE(open(dir + "/ct", imported));
  expectSameLayers(m, imported);
}

TEST(CompressedTensors, ChannelStrategyAndMixedSchemes) {
  // 8-bit symmetric per-channel attention (strategy "channel": scale
  // [N, 1], no zero point), 4-bit sym group 32 gate/up, down_proj float
  // (listed in `ignore`); two config groups targeting their modules by
  // "re:" patterns (compressed_tensors/utils/match.py, is_match).
  std::string dir = freshDir("ct_mixed");
  Model m;
  ASSERT_NO_FATAL_FAILURE(open(writeRandomModel(dir, 62), m));
  std::string ov = " weights-out=" + dir + "/ov.safetensors";
  ASSERT_NO_FATAL_FAILURE(runPasses(
      m, "wq-rtn{bits=8 group-size=-1 sym=true exclude=mlp" + ov +
             "},wq-rtn{bits=4 group-size=32 sym=true exclude=down_proj" + ov +
             "}"));
  mlir::qc::CompressedTensorsExportSummary sum;
  qc::Status s = mlir::qc::exportCompressedTensors(*m.module, m.weights,
                                                   dir + "/ct", {}, &sum);
  ASSERT_TRUE(s) << s.message();
  EXPECT_EQ(sum.configGroups, 2);
  EXPECT_EQ(sum.ignored, 2);
  RawSafetensors st(dir + "/ct/model.safetensors");
  const std::string qp = "model.layers.0.self_attn.q_proj";
  EXPECT_EQ(st.shape(qp + ".weight_scale"), (std::vector<int64_t>{64, 1}));
  EXPECT_EQ(st.shape(qp + ".weight_packed"), (std::vector<int64_t>{64, 16}));
  EXPECT_FALSE(st.header.find(qp + ".weight_zero_point"));
  EXPECT_EQ(st.dtype("model.layers.1.mlp.down_proj.weight"), "F16");
  auto want = dequantizedLayers(m);
  for (const auto &[layer, w] : want) {
    bool attn = layer.find("self_attn") != std::string::npos;
    std::vector<float> got =
        decodeCompressedTensors(st, layer, attn ? 8 : 4, true);
    EXPECT_EQ(got, w) << layer;
  }
  json::Value config = readJson(dir + "/ct/config.json");
  const json::Value *q = config.find("quantization_config");
  const auto &ignore = q->find("ignore")->asArray();
  ASSERT_EQ(ignore.size(), 3u);
  EXPECT_EQ(ignore[0].asString(), "model.layers.0.mlp.down_proj");
  const json::Value *groups = q->find("config_groups");
  int channel = 0;
  for (const auto &[name, g] : groups->asObject()) {
    const json::Value *wa = g.find("weights");
    const auto &targets = g.find("targets")->asArray();
    ASSERT_FALSE(targets.empty());
    EXPECT_EQ(targets[0].asString().rfind("re:^model\\.layers\\.", 0), 0u)
        << targets[0].asString();
    if (wa->find("strategy")->asString() == "channel") {
      ++channel;
      EXPECT_EQ(wa->find("num_bits")->asInt64(), 8);
      EXPECT_TRUE(wa->find("group_size")->isNull());
      EXPECT_EQ(targets.size(), 8u);
    } else {
      EXPECT_EQ(wa->find("num_bits")->asInt64(), 4);
      EXPECT_EQ(targets.size(), 4u);
    }
  }
  EXPECT_EQ(channel, 1);

  // Re-import: the "re:" targets pick each layer's scheme, `ignore` keeps
  // down_proj float, and the weights are identical.
  Model imported;
  ASSERT_NO_FATAL_FAILURE(open(dir + "/ct", imported));
  expectSameLayers(m, imported);
}

TEST(CompressedTensors, ImportRefusesWhatQcDoesNotRun) {
  std::string dir = freshDir("ct_refuse");
  Model m;
  ASSERT_NO_FATAL_FAILURE(open(writeRandomModel(dir, 63), m));
  ASSERT_NO_FATAL_FAILURE(
      runPasses(m, "wq-rtn{bits=4 group-size=32 sym=false weights-out=" + dir +
                       "/ov.safetensors}"));
  qc::Status s =
      mlir::qc::exportCompressedTensors(*m.module, m.weights, dir + "/ct", {});
  ASSERT_TRUE(s) << s.message();
  const std::string cfgPath = dir + "/ct/config.json";
  const std::string original = readText(cfgPath);
  const json::Value config = readJson(cfgPath);
  // Edits of quantization_config (top level, or group_0's weights), and
  // what the error must name.
  auto top = [&](const char *key, json::Value v) {
    json::Value c = config;
    json::Value q = *c.find("quantization_config");
    q.set(key, std::move(v));
    c.set("quantization_config", std::move(q));
    return c;
  };
  auto group = [&](const char *key, json::Value v, bool weights) {
    json::Value c = config;
    json::Value q = *c.find("quantization_config");
    json::Value groups = *q.find("config_groups");
    json::Value g = *groups.find("group_0");
    if (weights) {
      json::Value w = *g.find("weights");
      w.set(key, std::move(v));
      g.set("weights", std::move(w));
    } else {
      g.set(key, std::move(v));
    }
    groups.set("group_0", std::move(g));
    q.set("config_groups", std::move(groups));
    c.set("quantization_config", std::move(q));
    return c;
  };
  json::Value classIgnore = json::Value::array();
  classIgnore.push(json::Value::string("LlamaMLP"));
  std::vector<std::pair<json::Value, std::string>> cases = {
      {top("kv_cache_scheme", json::Value::object()), "kv_cache_scheme"},
      {top("format", json::Value::string("float-quantized")), "format"},
      {top("ignore", classIgnore), "class name"},
      {group("input_activations", json::Value::object(), false),
       "input_activations"},
      {group("num_bits", json::Value::integer(3), true), "num_bits"},
      {group("strategy", json::Value::string("tensor"), true), "strategy"},
      {group("type", json::Value::string("float"), true), "type"},
  };
  for (const auto &[edited, what] : cases) {
    SCOPED_TRACE(what);
    std::ofstream(cfgPath, std::ios::binary | std::ios::trunc)
        << json::write(edited);
    Model bad;
    s = mlir::qc::openModel(context(), dir + "/ct", bad.module, bad.weights);
    ASSERT_FALSE(s.isOk());
    EXPECT_NE(s.message().find(what), std::string::npos) << s.message();
    EXPECT_NE(s.message().find("config.json"), std::string::npos)
        << s.message();
  }
  std::ofstream(cfgPath, std::ios::binary | std::ios::trunc) << original;
  Model good;
  ASSERT_NO_FATAL_FAILURE(open(dir + "/ct", good));
}

TEST(CompressedTensors, RefusesWhatPackQuantizedCannotHold) {
  std::string dir = freshDir("ct_refuse");
  auto exportError = [&](const std::string &model,
                         const std::string &pipeline) {
    Model m;
    open(model, m);
    if (m.module)
      runPasses(m, pipeline);
    if (!m.module || testing::Test::HasFatalFailure())
      return std::string("(setup failed)");
    qc::Status s = mlir::qc::exportCompressedTensors(*m.module, m.weights,
                                                     dir + "/out", {});
    EXPECT_FALSE(fs::exists(dir + "/out"));
    return s.isOk() ? std::string("(exported)") : s.message();
  };
  std::string ov = " weights-out=" + dir + "/ov.safetensors";
  std::string regular = writeRandomModel(dir, 63);
  std::string two = exportError(
      regular, "wq-rtn{bits=2 group-size=32 layout=rows" + ov + "}");
  EXPECT_NE(two.find("layer 'model.layers.0."), std::string::npos) << two;
  EXPECT_NE(two.find("4 or 8 bits"), std::string::npos) << two;
  std::string ragged = exportError(writeRandomModel(dir + "/r", 64, 172),
                                   "wq-rtn{bits=4 group-size=32" + ov + "}");
  EXPECT_NE(ragged.find("down_proj"), std::string::npos) << ragged;
  EXPECT_NE(ragged.find("in_features 172 is not a multiple of the group size"),
            std::string::npos)
      << ragged;
  std::string hqq = exportError(regular, "wq-hqq{group-size=32" + ov + "}");
  EXPECT_NE(hqq.find("layer 'model.layers."), std::string::npos) << hqq;
}
