//===- GgufExport.cpp - Quantized qc models as llama.cpp GGUF -------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Each wq.linear is read back into a QuantizedWeight (the same reader the
// GPTQ export uses), its q/k rows are put in llama.cpp's interleaved order,
// and every group of 32 inputs becomes one ggml block whose codes are qc's
// codes: Q4_0 (d, 16 bytes of nibbles, value (q - 8) d), Q4_1 (d, m, nibbles,
// value q d + m) or Q8_0 (d, 32 signed bytes, value q d). Nibble j of a
// 4-bit block holds element j in its low half and element j + 16 in its
// high half, as ggml lays them out. The change of every dequantized weight
// is measured by dequantizing the written blocks with the runtime's ggml
// decoder (the one qc's GGUF reader uses) and comparing with qc's own
// dequantization. The tokenizer is copied from a GGUF source or converted
// from tokenizer.json following llama.cpp's converter (gpt2 model, token
// types from the added tokens, merges as "a b").
//
//===----------------------------------------------------------------------===//

#include "qc/Import/GgufExport.h"

#include "LLM/IR/LLMOps.h"
#include "WQ/IR/WQOps.h"
#include "qc/Import/ModelBuilder.h"
#include "qc/Import/QuantizedCheckpoint.h"
#include "qc/runtime/HFCheckpoint.h"
#include "qc/runtime/Json.h"
#include "qc/runtime/Safetensors.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

using namespace mlir;
using namespace mlir::qc;
using ::qc::GgmlType;
using ::qc::GgufWriter;
using ::qc::ModelConfig;
using ::qc::ModelWeights;
using ::qc::Status;
using ::qc::quant::QuantizedWeight;
namespace json = ::qc::json;
namespace fs = std::filesystem;

namespace {

bool endsWith(const std::string &s, const std::string &suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

void putHalf(std::vector<uint8_t> &b, float v) {
  uint16_t h = ::qc::f32ToF16(v);
  b.push_back(static_cast<uint8_t>(h));
  b.push_back(static_cast<uint8_t>(h >> 8));
}

/// The rows of a [heads * headDim, ...] q/k weight in llama.cpp's order:
/// srcOfDst[d] is the rotate_half row that interleaved row d comes from.
std::vector<int64_t> toInterleavedRows(int64_t heads, int64_t headDim) {
  std::vector<float> index(static_cast<size_t>(heads * headDim));
  for (size_t i = 0; i < index.size(); ++i)
    index[i] = static_cast<float>(i);
  std::vector<float> permuted(index.size());
  ::qc::permuteHalfSplitToInterleaved(index.data(), permuted.data(), heads,
                                      headDim, 1);
  std::vector<int64_t> srcOfDst(index.size());
  for (size_t d = 0; d < index.size(); ++d)
    srcOfDst[d] = static_cast<int64_t>(permuted[d]);
  return srcOfDst;
}

std::string describe(const QuantizedWeight &q) {
  return std::to_string(q.bits) + " bits, group size " +
         std::to_string(q.groupSize) + (q.sym ? ", sym" : ", asym") +
         (q.hasTrivialGIdx() ? "" : ", act-order g_idx");
}

/// Encodes `q` (rows n, K a multiple of 32, contiguous groups of 32) as
/// ggml blocks of `type`.
std::vector<uint8_t> encodeBlocks(const QuantizedWeight &q, GgmlType type) {
  const int64_t N = q.rows, K = q.cols;
  std::vector<uint8_t> out;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t b = 0; b < K / 32; ++b) {
      const int64_t g = q.groupOf(b * 32);
      const float s = q.scales[g * N + n], z = q.zeros[g * N + n];
      const uint8_t *c = q.codes.data() + n * K + b * 32;
      putHalf(out, s);
      if (type == GgmlType::Q8_0) {
        for (int i = 0; i < 32; ++i)
          out.push_back(static_cast<uint8_t>(
              static_cast<int8_t>(static_cast<int>(c[i]) - 128)));
        continue;
      }
      if (type == GgmlType::Q4_1)
        putHalf(out, -s * z);
      for (int j = 0; j < 16; ++j)
        out.push_back(static_cast<uint8_t>((c[j] & 0xF) | (c[j + 16] << 4)));
    }
  return out;
}

/// ggml's reference Q8_0 quantization (quantize_row_q8_0_ref): d =
/// max|x| / 127 stored in fp16, q = round(x / d).
std::vector<uint8_t> quantizeQ8_0(const std::vector<float> &x) {
  std::vector<uint8_t> out;
  for (size_t b = 0; b < x.size() / 32; ++b) {
    float amax = 0.0f;
    for (int i = 0; i < 32; ++i)
      amax = std::max(amax, std::fabs(x[b * 32 + i]));
    const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
    putHalf(out, d);
    for (int i = 0; i < 32; ++i)
      out.push_back(static_cast<uint8_t>(
          static_cast<int8_t>(std::round(x[b * 32 + i] * id))));
  }
  return out;
}

std::vector<uint8_t> f16Bytes(const std::vector<float> &x) {
  std::vector<uint8_t> out;
  out.reserve(x.size() * 2);
  for (float v : x)
    putHalf(out, v);
  return out;
}

std::vector<uint8_t> f32Bytes(const std::vector<float> &x) {
  std::vector<uint8_t> out(x.size() * 4);
  std::memcpy(out.data(), x.data(), out.size());
  return out;
}

Status readText(const std::string &path, std::string &out) {
  std::error_code ec;
  uintmax_t size = fs::file_size(path, ec);
  if (ec)
    return Status::error(path + ": " + ec.message());
  if (size > (256u << 20))
    return Status::error(path + ": larger than 256 MB");
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  if (!in)
    return Status::error(path + ": cannot read the file");
  out = ss.str();
  return Status::ok();
}

/// A token string of tokenizer_config.json field `key` (a string or an
/// AddedToken object with "content").
std::string specialTokenText(const json::Value &cfg, const char *key) {
  const json::Value *v = cfg.find(key);
  if (!v)
    return "";
  if (v->isString())
    return v->asString();
  if (v->isObject())
    if (const json::Value *c = v->find("content"); c && c->isString())
      return c->asString();
  return "";
}

} // namespace

bool mlir::qc::hfTensorNameToGguf(const std::string &hf, std::string &out) {
  static const std::pair<const char *, const char *> top[] = {
      {"model.embed_tokens.weight", "token_embd.weight"},
      {"model.norm.weight", "output_norm.weight"},
      {"lm_head.weight", "output.weight"}};
  for (const auto &[h, g] : top)
    if (hf == h) {
      out = g;
      return true;
    }
  static const std::pair<const char *, const char *> layer[] = {
      {"input_layernorm.weight", "attn_norm.weight"},
      {"self_attn.q_proj.weight", "attn_q.weight"},
      {"self_attn.k_proj.weight", "attn_k.weight"},
      {"self_attn.v_proj.weight", "attn_v.weight"},
      {"self_attn.o_proj.weight", "attn_output.weight"},
      {"self_attn.q_proj.bias", "attn_q.bias"},
      {"self_attn.k_proj.bias", "attn_k.bias"},
      {"self_attn.v_proj.bias", "attn_v.bias"},
      {"post_attention_layernorm.weight", "ffn_norm.weight"},
      {"mlp.gate_proj.weight", "ffn_gate.weight"},
      {"mlp.up_proj.weight", "ffn_up.weight"},
      {"mlp.down_proj.weight", "ffn_down.weight"}};
  const std::string prefix = "model.layers.";
  if (hf.compare(0, prefix.size(), prefix) != 0)
    return false;
  size_t dot = hf.find('.', prefix.size());
  if (dot == std::string::npos || dot == prefix.size())
    return false;
  std::string index = hf.substr(prefix.size(), dot - prefix.size());
  if (!std::all_of(index.begin(), index.end(),
                   [](char c) { return c >= '0' && c <= '9'; }))
    return false;
  std::string rest = hf.substr(dot + 1);
  for (const auto &[h, g] : layer)
    if (rest == h) {
      out = "blk." + index + "." + g;
      return true;
    }
  return false;
}

Status mlir::qc::addTokenizerJsonKeys(const std::string &path,
                                      int64_t vocabSize, GgufWriter &w,
                                      std::string *description) {
  std::string text;
  QC_RETURN_IF_ERROR(readText(path, text));
  json::Value tok;
  QC_RETURN_IF_ERROR(json::parse(text, tok).withContext(path));
  auto fail = [&](const std::string &what) {
    return Status::error(path + ": " + what);
  };
  const json::Value *model = tok.find("model");
  const json::Value *type = model ? model->find("type") : nullptr;
  if (!type || !type->isString() || type->asString() != "BPE")
    return fail("model.type is not \"BPE\"; only byte-level BPE tokenizers "
                "can be converted to GGUF (export from a GGUF source to "
                "carry any other tokenizer over)");
  // Byte-level BPE: a ByteLevel pre-tokenizer, alone (gpt2) or after
  // individual digits (SmolLM2; llama.cpp's "smollm" pre-tokenizer).
  const json::Value *pre = tok.find("pre_tokenizer");
  std::string preName;
  auto isByteLevel = [](const json::Value *p) {
    const json::Value *t = p ? p->find("type") : nullptr;
    const json::Value *re = p ? p->find("use_regex") : nullptr;
    return t && t->isString() && t->asString() == "ByteLevel" &&
           (!re || (re->isBool() && re->asBool()));
  };
  if (isByteLevel(pre)) {
    preName = "gpt2";
  } else if (pre && pre->find("type") && pre->find("type")->isString() &&
             pre->find("type")->asString() == "Sequence" &&
             pre->find("pretokenizers") &&
             pre->find("pretokenizers")->isArray()) {
    const auto &seq = pre->find("pretokenizers")->asArray();
    const json::Value *digits = seq.size() == 2 ? seq[0].find("type") : nullptr;
    const json::Value *each =
        seq.size() == 2 ? seq[0].find("individual_digits") : nullptr;
    if (digits && digits->isString() && digits->asString() == "Digits" &&
        each && each->isBool() && each->asBool() && isByteLevel(&seq[1]))
      preName = "smollm";
  }
  if (preName.empty())
    return fail("pre_tokenizer is not a byte-level BPE one qc can name for "
                "llama.cpp (ByteLevel, or individual Digits then ByteLevel); "
                "refusing to guess llama.cpp's pre-tokenizer");
  const json::Value *vocab = model->find("vocab");
  const json::Value *merges = model->find("merges");
  if (!vocab || !vocab->isObject() || !merges || !merges->isArray())
    return fail("model.vocab or model.merges is missing");

  std::vector<std::string> tokens(static_cast<size_t>(vocabSize));
  std::vector<bool> present(tokens.size(), false);
  std::map<std::string, int64_t> idOf;
  for (const auto &[t, id] : vocab->asObject()) {
    if (!id.isInt64() || id.asInt64() < 0 || id.asInt64() >= vocabSize)
      return fail("model.vocab entry " + json::quote(t) +
                  " has an id outside the model's " +
                  std::to_string(vocabSize) + " embedding rows");
    tokens[id.asInt64()] = t;
    present[id.asInt64()] = true;
    idOf[t] = id.asInt64();
  }
  std::vector<int32_t> types(tokens.size(), 1); // NORMAL
  if (const json::Value *added = tok.find("added_tokens");
      added && added->isArray())
    for (const json::Value &a : added->asArray()) {
      const json::Value *id = a.find("id"), *content = a.find("content"),
                        *special = a.find("special");
      if (!id || !id->isInt64() || !content || !content->isString() ||
          id->asInt64() < 0 || id->asInt64() >= vocabSize)
        return fail("an added_tokens entry has no valid id and content");
      tokens[id->asInt64()] = content->asString();
      present[id->asInt64()] = true;
      idOf[content->asString()] = id->asInt64();
      // CONTROL for special tokens, USER_DEFINED otherwise.
      types[id->asInt64()] =
          special && special->isBool() && special->asBool() ? 3 : 4;
    }
  for (size_t i = 0; i < tokens.size(); ++i)
    if (!present[i]) {
      tokens[i] = "[PAD" + std::to_string(i) + "]";
      types[i] = 5; // UNUSED
    }
  std::vector<std::string> mergeText;
  mergeText.reserve(merges->asArray().size());
  for (const json::Value &m : merges->asArray()) {
    if (m.isString()) {
      mergeText.push_back(m.asString());
    } else if (m.isArray() && m.asArray().size() == 2 &&
               m.asArray()[0].isString() && m.asArray()[1].isString()) {
      mergeText.push_back(m.asArray()[0].asString() + " " +
                          m.asArray()[1].asString());
    } else {
      return fail("a model.merges entry is neither \"a b\" nor [\"a\", \"b\"]");
    }
  }

  json::Value cfg = json::Value::object();
  std::string cfgPath =
      (fs::path(path).parent_path() / "tokenizer_config.json").string();
  std::error_code ec;
  if (fs::is_regular_file(cfgPath, ec)) {
    std::string cfgText;
    QC_RETURN_IF_ERROR(readText(cfgPath, cfgText));
    QC_RETURN_IF_ERROR(json::parse(cfgText, cfg).withContext(cfgPath));
  }
  w.addString("tokenizer.ggml.model", "gpt2");
  w.addString("tokenizer.ggml.pre", preName);
  w.addStringArray("tokenizer.ggml.tokens", tokens);
  w.addI32Array("tokenizer.ggml.token_type", types);
  w.addStringArray("tokenizer.ggml.merges", mergeText);
  static const std::pair<const char *, const char *> specials[] = {
      {"bos_token", "tokenizer.ggml.bos_token_id"},
      {"eos_token", "tokenizer.ggml.eos_token_id"},
      {"unk_token", "tokenizer.ggml.unknown_token_id"},
      {"pad_token", "tokenizer.ggml.padding_token_id"}};
  for (const auto &[field, key] : specials) {
    std::string t = specialTokenText(cfg, field);
    if (t.empty())
      continue;
    auto it = idOf.find(t);
    if (it == idOf.end())
      return fail(std::string("tokenizer_config.json ") + field + " " +
                  json::quote(t) + " is not a token of the vocabulary");
    w.addU32(key, static_cast<uint32_t>(it->second));
  }
  const json::Value *addBos = cfg.find("add_bos_token");
  w.addBool("tokenizer.ggml.add_bos_token",
            addBos && addBos->isBool() && addBos->asBool());
  const json::Value *prefix = cfg.find("add_prefix_space");
  w.addBool("tokenizer.ggml.add_space_prefix",
            prefix && prefix->isBool() && prefix->asBool());
  if (const json::Value *tmpl = cfg.find("chat_template");
      tmpl && tmpl->isString())
    w.addString("tokenizer.chat_template", tmpl->asString());
  if (description)
    *description = path + " (gpt2 BPE, pre " + preName + ", " +
                   std::to_string(mergeText.size()) + " merges)";
  return Status::ok();
}

Status mlir::qc::exportGguf(ModuleOp module, const ModelWeights &weights,
                            const std::string &path,
                            const GgufExportOptions &options,
                            GgufExportSummary *summary) {
  const ModelConfig &cfg = weights.config;
  auto fail = [&](const std::string &msg) {
    return Status::error(path + ": " + msg);
  };
  if (cfg.modelType != "llama" || cfg.attentionBias)
    return fail("model_type '" + cfg.modelType + "'" +
                (cfg.attentionBias ? " with attention biases" : "") +
                ": the GGUF export writes llama-architecture files only");
  if (cfg.ropeScaling.type != ::qc::RopeScalingType::None ||
      (cfg.rotaryDim && cfg.rotaryDim != cfg.headDim) || cfg.slidingWindow)
    return fail("the model uses RoPE scaling, partial rotary dims or a "
                "sliding window, which the GGUF export does not write");

  std::map<std::string, QuantizedWeight> layers;
  Status walkStatus = Status::ok();
  module.walk([&](Operation *op) -> WalkResult {
    if (auto lin = dyn_cast<llm::LinearOp>(op)) {
      walkStatus = Status::error(
          "a linear layer is not quantized; the GGUF export writes quantized "
          "models (every decoder linear a wq.linear)");
      return WalkResult::interrupt();
    }
    if (!isa<wq::LinearOp>(op))
      return WalkResult::advance();
    std::string layer;
    QuantizedWeight q;
    walkStatus = readQuantizedLayer(op, weights, layer, q);
    if (!walkStatus)
      return WalkResult::interrupt();
    layers[layer] = std::move(q);
    return WalkResult::advance();
  });
  if (!walkStatus)
    return fail(walkStatus.message());
  if (layers.empty())
    return fail("the module has no wq.linear ops; quantize it first");

  GgufWriter w;
  w.addString("general.architecture", "llama");
  w.addString("general.name", "qc export");
  w.addU32("llama.vocab_size", static_cast<uint32_t>(cfg.vocabSize));
  w.addU32("llama.context_length", static_cast<uint32_t>(cfg.maxSeqLen));
  w.addU32("llama.embedding_length", static_cast<uint32_t>(cfg.dim));
  w.addU32("llama.block_count", static_cast<uint32_t>(cfg.nLayers));
  w.addU32("llama.feed_forward_length", static_cast<uint32_t>(cfg.hiddenDim));
  w.addU32("llama.rope.dimension_count", static_cast<uint32_t>(cfg.headDim));
  w.addU32("llama.attention.head_count", static_cast<uint32_t>(cfg.nHeads));
  w.addU32("llama.attention.head_count_kv",
           static_cast<uint32_t>(cfg.nKVHeads));
  if (cfg.headDim * cfg.nHeads != cfg.dim) {
    w.addU32("llama.attention.key_length", static_cast<uint32_t>(cfg.headDim));
    w.addU32("llama.attention.value_length",
             static_cast<uint32_t>(cfg.headDim));
  }
  w.addF32("llama.attention.layer_norm_rms_epsilon", cfg.normEps);
  w.addF32("llama.rope.freq_base", cfg.ropeTheta);

  // Tensors, in the model's spec order.
  GgufExportSummary sum;
  const bool halfSplit = cfg.ropeLayout == ::qc::RopeLayout::HalfSplit;
  double changeSum = 0.0;
  uint64_t changeCount = 0;
  std::map<std::string, int64_t> quantTypes;
  for (const ::qc::TensorSpec &spec : ::qc::modelTensorSpecs(cfg)) {
    std::string name;
    if (!hfTensorNameToGguf(spec.name, name))
      return fail("tensor '" + spec.name + "' has no llama.cpp name");
    const bool isQ = endsWith(spec.name, "self_attn.q_proj.weight");
    const bool isK = endsWith(spec.name, "self_attn.k_proj.weight");
    const int64_t heads = isQ ? cfg.nHeads : cfg.nKVHeads;
    std::string layer = spec.name.substr(0, spec.name.size() - 7);
    auto qit =
        endsWith(spec.name, ".weight") ? layers.find(layer) : layers.end();
    if (qit != layers.end()) {
      QuantizedWeight q = qit->second;
      // llama.cpp applies RoPE to adjacent pairs: q/k rows go to the
      // interleaved order (llama2.c models already have it).
      if ((isQ || isK) && halfSplit)
        permuteQuantizedRows(q, toInterleavedRows(heads, cfg.headDim));
      std::vector<float> want;
      q.dequantize(want);
      GgmlType type;
      std::vector<uint8_t> bytes;
      const bool fits = q.groupSize == 32 && q.hasTrivialGIdx();
      if (q.cols % 32 != 0) {
        // ggml blocks cannot hold a ragged row: the dequantized weight.
        type = GgmlType::F16;
        bytes = f16Bytes(want);
        sum.f16Layers.push_back(layer);
      } else if (fits && q.bits == 4) {
        type = q.sym ? GgmlType::Q4_0 : GgmlType::Q4_1;
        if (q.sym)
          for (float z : q.zeros)
            if (z != 8.0f)
              return fail("layer '" + layer +
                          "': a symmetric 4-bit zero point is not 8");
        bytes = encodeBlocks(q, type);
      } else if (fits && q.bits == 8 && q.sym) {
        type = GgmlType::Q8_0;
        for (float z : q.zeros)
          if (z != 128.0f)
            return fail("layer '" + layer +
                        "': a symmetric 8-bit zero point is not 128");
        bytes = encodeBlocks(q, type);
      } else {
        return fail("layer '" + layer + "' (" + describe(q) +
                    ") has no exact ggml block type: Q4_0 holds 4-bit sym "
                    "group 32, Q4_1 4-bit asym group 32, Q8_0 8-bit sym "
                    "group 32, all without act-order; re-quantize the layer "
                    "in one of those, or export it as GPTQ");
      }
      // The change: ggml's dequantization of what is written minus qc's.
      std::vector<float> got(want.size());
      QC_RETURN_IF_ERROR(
          ::qc::dequantizeRow(type, bytes.data(), got.data(), got.size()));
      for (size_t i = 0; i < got.size(); ++i) {
        double d = std::fabs(static_cast<double>(got[i]) - want[i]);
        sum.maxAbsChange = std::max(sum.maxAbsChange, d);
        changeSum += d;
      }
      changeCount += got.size();
      ++quantTypes[::qc::ggmlTypeName(type)];
      QC_RETURN_IF_ERROR(w.addTensor(name, type, spec.shape, std::move(bytes))
                             .withContext(path));
      ++sum.typeCounts[::qc::ggmlTypeName(type)];
      continue;
    }
    if (endsWith(spec.name, "_proj.weight"))
      return fail("layer '" + layer + "' is not a wq.linear");
    const ::qc::HostTensor *t = weights.find(spec.name);
    if (!t || t->shape != spec.shape)
      return fail("tensor '" + spec.name +
                  "' is missing from the model's weights or has the wrong "
                  "shape");
    GgmlType type = GgmlType::F32;
    std::vector<uint8_t> bytes;
    if (spec.shape.size() == 1) {
      bytes = f32Bytes(t->data); // norms stay F32, as llama.cpp keeps them
    } else if (options.embeddingQ8 && spec.shape.back() % 32 == 0) {
      type = GgmlType::Q8_0;
      bytes = quantizeQ8_0(t->data);
    } else {
      type = GgmlType::F16;
      for (size_t i = 0; i < t->data.size(); ++i)
        if (!std::isfinite(t->data[i]) || std::fabs(t->data[i]) > 65504.0f)
          return fail("tensor '" + spec.name + "' value at flat index " +
                      std::to_string(i) + " does not fit in fp16");
      bytes = f16Bytes(t->data);
    }
    QC_RETURN_IF_ERROR(w.addTensor(name, type, spec.shape, std::move(bytes))
                           .withContext(path));
    ++sum.typeCounts[::qc::ggmlTypeName(type)];
  }
  sum.meanAbsChange = changeCount ? changeSum / changeCount : 0.0;

  // llama.cpp's file type: the most common quantized type.
  std::string dominant;
  int64_t best = -1;
  for (const auto &[t, n] : quantTypes)
    if (n > best) {
      best = n;
      dominant = t;
    }
  uint32_t fileType = dominant == "Q4_0"   ? 2
                      : dominant == "Q4_1" ? 3
                      : dominant == "Q8_0" ? 7
                                           : 1;
  w.addU32("general.file_type", fileType);
  w.addU32("general.quantization_version", 2);

  // The tokenizer.
  if (!options.tokenizerGguf.empty()) {
    std::unique_ptr<::qc::GgufFile> src;
    QC_RETURN_IF_ERROR(::qc::GgufFile::open(options.tokenizerGguf, src));
    int copied = 0;
    for (const ::qc::GgufKV &kv : src->metadata())
      if (kv.key.compare(0, 10, "tokenizer.") == 0) {
        w.addValue(kv.key, kv.value);
        ++copied;
      }
    if (!src->has("tokenizer.ggml.model") || !src->has("tokenizer.ggml.tokens"))
      return fail(options.tokenizerGguf +
                  ": has no tokenizer.ggml.model / tokenizer.ggml.tokens to "
                  "carry over");
    uint64_t count = 0;
    ::qc::GgufType et;
    QC_RETURN_IF_ERROR(src->getArrayInfo("tokenizer.ggml.tokens", et, count));
    if (static_cast<int64_t>(count) != cfg.vocabSize)
      return fail(options.tokenizerGguf + ": its tokenizer has " +
                  std::to_string(count) + " tokens but the model has " +
                  std::to_string(cfg.vocabSize) + " embedding rows");
    sum.tokenizer = options.tokenizerGguf + " (" + std::to_string(copied) +
                    " tokenizer keys copied)";
    // Serialize while `src` (whose strings the values point into) lives.
    QC_RETURN_IF_ERROR(w.writeFile(path));
  } else {
    if (!options.tokenizerJson.empty()) {
      QC_RETURN_IF_ERROR(addTokenizerJsonKeys(
          options.tokenizerJson, cfg.vocabSize, w, &sum.tokenizer));
    } else if (!options.allowNoTokenizer) {
      return fail("no tokenizer to carry over: llama.cpp needs one (export "
                  "from a GGUF or a Hugging Face source with a "
                  "tokenizer.json)");
    } else {
      sum.tokenizer = "none";
    }
    QC_RETURN_IF_ERROR(w.writeFile(path));
  }
  if (summary)
    *summary = std::move(sum);
  return Status::ok();
}
