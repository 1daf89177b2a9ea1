//===- HFCheckpoint.cpp - Hugging Face LLaMA-family checkpoints -*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// config.json <-> ModelConfig, the model.safetensors.index.json consistency
// checks, fp32 conversion of the shards, and the writer that emits a
// transformers-loadable directory. Field defaults follow transformers'
// LlamaConfig/MistralConfig/Qwen2Config; anything that would change the
// computation in a way ModelConfig cannot express is refused rather than
// ignored.
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/HFCheckpoint.h"

#include "qc/runtime/Json.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <set>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace qc {

namespace {

/// config.json and index files are small; a cap keeps a hostile or mistaken
/// path (a weight file, /dev/zero) from being slurped into memory.
constexpr uint64_t kMaxConfigBytes = 16ull << 20;
constexpr uint64_t kMaxIndexBytes = 256ull << 20;

constexpr const char *kSingleFile = "model.safetensors";
constexpr const char *kIndexFile = "model.safetensors.index.json";

std::string joinPath(const std::string &dir, const std::string &name) {
  if (dir.empty())
    return name;
  return dir.back() == '/' ? dir + name : dir + "/" + name;
}

/// True if `path` names an existing regular file (following symlinks).
bool isRegularFile(const std::string &path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

/// True if something (of any type, a dangling link included) is at `path`.
bool existsAt(const std::string &path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

/// The real path of `path`, or empty.
std::string realPathOf(const std::string &path) {
  char *r = ::realpath(path.c_str(), nullptr);
  if (!r)
    return "";
  std::string out = r;
  std::free(r);
  return out;
}

/// Whether the real path `real` is `root` or below it.
bool isBelow(const std::string &real, const std::string &root) {
  if (root.empty())
    return false;
  if (root == "/")
    return true;
  return real.compare(0, root.size(), root) == 0 &&
         (real.size() == root.size() || real[root.size()] == '/');
}

} // namespace

Status checkInsideModelFolder(const std::string &dir, const std::string &path) {
  std::string realDir = realPathOf(dir), real = realPathOf(path);
  if (real.empty() || realDir.empty())
    return Status::ok(); // missing files get their own error when opened
  if (isBelow(real, realDir))
    return Status::ok();
  size_t slash = realDir.rfind('/');
  std::string snapshots =
      slash == std::string::npos || slash == 0 ? "" : realDir.substr(0, slash);
  size_t s2 = snapshots.rfind('/');
  if (s2 != std::string::npos && s2 > 0 &&
      snapshots.substr(s2 + 1) == "snapshots" &&
      isBelow(real, snapshots.substr(0, s2) + "/blobs"))
    return Status::ok();
  return Status::error(path + ": a link to " + real +
                       ", outside the model folder " + realDir +
                       "; files of a checkpoint must lie inside its folder "
                       "(as for \"../\" in an index): copy the file in");
}

namespace {

/// Reads a whole small file, refusing anything larger than `maxBytes`
/// before allocating.
Status readSmallFile(const std::string &path, uint64_t maxBytes,
                     std::string &out) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    return Status::error(path + ": cannot open: " + std::strerror(err));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::error(path + ": not a regular file");
  }
  if (static_cast<uint64_t>(st.st_size) > maxBytes) {
    ::close(fd);
    return Status::error(path + ": " + std::to_string(st.st_size) +
                         " bytes is more than the " + std::to_string(maxBytes) +
                         "-byte limit");
  }
  std::string buf(static_cast<size_t>(st.st_size), '\0');
  size_t got = 0;
  while (got < buf.size()) {
    ssize_t r = ::read(fd, &buf[got], buf.size() - got);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0) {
      int err = r < 0 ? errno : 0;
      ::close(fd);
      return Status::error(path + ": read failed" +
                           (err ? std::string(": ") + std::strerror(err)
                                : std::string(": file shrank while reading")));
    }
    got += static_cast<size_t>(r);
  }
  ::close(fd);
  out = std::move(buf);
  return Status::ok();
}

/// Reads and parses a JSON file whose root must be an object.
Status readJsonObject(const std::string &path, uint64_t maxBytes,
                      json::Value &out) {
  std::string text;
  QC_RETURN_IF_ERROR(readSmallFile(path, maxBytes, text));
  Status s = json::parse(text, out);
  if (!s)
    return Status::error(path + ": " + s.message());
  if (!out.isObject())
    return Status::error(path +
                         ": the top level must be a JSON object, found " +
                         std::string(json::kindName(out.kind())));
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// config.json
//===----------------------------------------------------------------------===//

/// Typed access to config.json fields with errors naming file and field.
class ConfigFields {
public:
  ConfigFields(const json::Value &root, const std::string &path,
               std::string prefix = "")
      : root(root), path(path), prefix(std::move(prefix)) {}

  /// The field, or nullptr when absent or null (transformers treats an
  /// explicit null like an absent key for the fields read here).
  const json::Value *get(const char *key) const {
    const json::Value *v = root.find(key);
    return v && !v->isNull() ? v : nullptr;
  }

  Status fail(const char *key, const std::string &what) const {
    return Status::error(path + ": field \"" + prefix + key + "\" " + what);
  }

  /// A number read in double precision (rope scaling parameters).
  Status number(const char *key, double &out, bool required) const {
    const json::Value *v = get(key);
    if (!v)
      return required ? fail(key, "is missing") : Status::ok();
    if (!v->isNumber())
      return wrongType(key, "a number", *v);
    out = v->asDouble();
    return Status::ok();
  }

  Status wrongType(const char *key, const char *want,
                   const json::Value &v) const {
    return fail(key, std::string("must be ") + want + ", found " +
                         json::kindName(v.kind()));
  }

  Status integer(const char *key, int64_t &out, bool required) const {
    const json::Value *v = get(key);
    if (!v)
      return required ? fail(key, "is missing") : Status::ok();
    if (!v->isInt64())
      return wrongType(key, "an integer", *v);
    out = v->asInt64();
    return Status::ok();
  }

  Status number(const char *key, float &out, bool required) const {
    const json::Value *v = get(key);
    if (!v)
      return required ? fail(key, "is missing") : Status::ok();
    if (!v->isNumber())
      return wrongType(key, "a number", *v);
    out = static_cast<float>(v->asDouble());
    return Status::ok();
  }

  Status boolean(const char *key, bool &out) const {
    const json::Value *v = get(key);
    if (!v)
      return Status::ok();
    if (!v->isBool())
      return wrongType(key, "true or false", *v);
    out = v->asBool();
    return Status::ok();
  }

  /// eos_token_id may be an int or a list of ints (generation stops on any
  /// of them); ModelConfig keeps one, the first.
  Status tokenId(const char *key, int64_t &out) const {
    const json::Value *v = get(key);
    if (!v)
      return Status::ok();
    if (v->isArray()) {
      if (v->asArray().empty())
        return fail(key, "is an empty list");
      v = &v->asArray()[0];
    }
    if (!v->isInt64())
      return wrongType(key, "an integer or a list of integers", *v);
    out = v->asInt64();
    return Status::ok();
  }

private:
  const json::Value &root;
  const std::string &path;
  /// "rope_scaling." for the fields of a nested object.
  std::string prefix;
};

/// Refusals that come before any size field is read: a checkpoint we would
/// compute wrongly must not get as far as a shape check.
Status checkUnsupportedFeatures(const ConfigFields &f, const std::string &type,
                                bool allowQuantization) {
  if (const json::Value *q = f.get("quantization_config");
      q && !allowQuantization) {
    const json::Value *method =
        q->isObject() ? q->find("quant_method") : nullptr;
    std::string what =
        method && method->isString()
            ? " (quant_method " + json::quote(method->asString()) + ")"
            : "";
    return f.fail("quantization_config",
                  "is present" + what +
                      ": the checkpoint is already quantized and cannot be "
                      "read as a float model");
  }
  if (const json::Value *act = f.get("hidden_act"))
    if (!act->isString() || act->asString() != "silu")
      return f.fail("hidden_act", "must be \"silu\" (SwiGLU MLP)");
  bool flag = false;
  if (type == "llama") {
    QC_RETURN_IF_ERROR(f.boolean("attention_bias", flag));
    if (flag)
      return f.fail("attention_bias",
                    "is true: llama then also has an o_proj bias, which is "
                    "not supported (only qwen2-style q/k/v biases are)");
    QC_RETURN_IF_ERROR(f.boolean("mlp_bias", flag));
    if (flag)
      return f.fail("mlp_bias", "is true: MLP biases are not supported");
  }
  return Status::ok();
}

/// Keys of config.json that qc either reads (below) or knows not to change
/// the function of the model at inference (bookkeeping, training-only and
/// generation defaults). Any other key is refused by name: a key we do not
/// understand may change what the model computes (soft-capping, logit
/// multipliers, QK norms, ...), and silently ignoring it would give wrong
/// numbers that look right.
bool isKnownConfigKey(const std::string &key) {
  static const std::set<std::string> known = {
      // Read by qc.
      "model_type", "hidden_size", "intermediate_size", "num_hidden_layers",
      "num_attention_heads", "num_key_value_heads", "head_dim", "vocab_size",
      "max_position_embeddings", "rms_norm_eps", "rope_theta", "rope_scaling",
      "rope_parameters", "partial_rotary_factor", "tie_word_embeddings",
      "bos_token_id", "eos_token_id", "hidden_act", "attention_bias",
      "mlp_bias", "sliding_window", "use_sliding_window", "max_window_layers",
      "layer_types", "quantization_config",
      // No effect on the function at inference.
      "architectures", "torch_dtype", "dtype", "transformers_version",
      "_name_or_path", "name_or_path", "use_cache", "initializer_range",
      "pad_token_id", "sep_token_id", "decoder_start_token_id",
      "attention_dropout", "hidden_dropout", "embd_pdrop", "resid_pdrop",
      "pretraining_tp", "output_attentions", "output_hidden_states",
      "return_dict", "use_return_dict", "torchscript", "use_bfloat16",
      "tf_legacy_loss", "pruned_heads", "tie_encoder_decoder", "is_decoder",
      "is_encoder_decoder", "add_cross_attention",
      "cross_attention_hidden_size", "chunk_size_feed_forward", "problem_type",
      "id2label", "label2id", "num_labels", "finetuning_task",
      "tokenizer_class", "prefix", "task_specific_params", "keys_to_ignore",
      "_attn_implementation", "_attn_implementation_autoset",
      "attn_implementation", "auto_map", "transformers.js_config",
      "unsloth_version", "unsloth_fixed", "model_name", "base_model", "license",
      "language", "tags",
      // Generation defaults (transformers moves them to generation_config).
      "max_length", "min_length", "do_sample", "early_stopping", "num_beams",
      "num_beam_groups", "diversity_penalty", "temperature", "top_k", "top_p",
      "typical_p", "repetition_penalty", "length_penalty",
      "no_repeat_ngram_size", "encoder_no_repeat_ngram_size", "bad_words_ids",
      "num_return_sequences", "output_scores", "return_dict_in_generate",
      "forced_bos_token_id", "forced_eos_token_id", "remove_invalid_values",
      "exponential_decay_length_penalty", "suppress_tokens",
      "begin_suppress_tokens"};
  return known.count(key) != 0;
}

/// Refuses every key isKnownConfigKey does not accept, naming the first.
Status checkUnknownKeys(const json::Value &root, const ConfigFields &f) {
  for (const auto &member : root.asObject()) {
    if (isKnownConfigKey(member.first))
      continue;
    // An explicit null is the "feature off" spelling of many keys.
    if (member.second.isNull())
      continue;
    return f.fail(member.first.c_str(),
                  "is not understood by qc and may change what the model "
                  "computes; refusing rather than ignoring it");
  }
  return Status::ok();
}

/// Reads `rope_scaling` / `rope_parameters` (transformers' two spellings,
/// the second also carrying rope_theta) into `c`. Types qc does not
/// implement (dynamic, longrope, ...) and unknown parameters are refused by
/// name.
Status parseRopeObject(const json::Value &obj, const char *key,
                       const std::string &path, ModelConfig &c,
                       double &partialRotaryFactor) {
  if (!obj.isObject())
    return Status::error(path + ": field \"" + key +
                         "\" must be an object or null, found " +
                         json::kindName(obj.kind()));
  ConfigFields f(obj, path, std::string(key) + ".");
  static const std::set<std::string> params = {
      "rope_type",
      "type",
      "rope_theta",
      "factor",
      "low_freq_factor",
      "high_freq_factor",
      "original_max_position_embeddings",
      "beta_fast",
      "beta_slow",
      "attention_factor",
      "mscale",
      "mscale_all_dim",
      "truncate",
      "partial_rotary_factor"};
  for (const auto &member : obj.asObject())
    if (!params.count(member.first) && !member.second.isNull())
      return f.fail(member.first.c_str(),
                    "is not a RoPE parameter qc implements");
  std::string type = "default";
  for (const char *k : {"rope_type", "type"}) {
    if (const json::Value *v = f.get(k)) {
      if (!v->isString())
        return f.wrongType(k, "a string", *v);
      type = v->asString();
      break;
    }
  }
  if (f.get("rope_theta")) {
    QC_RETURN_IF_ERROR(f.number("rope_theta", c.ropeTheta, true));
  }
  if (f.get("partial_rotary_factor")) {
    QC_RETURN_IF_ERROR(
        f.number("partial_rotary_factor", partialRotaryFactor, true));
    if (!(partialRotaryFactor > 0.0 && partialRotaryFactor <= 1.0))
      return f.fail("partial_rotary_factor", "must be in (0, 1]");
  }
  RopeScaling &s = c.ropeScaling;
  s = RopeScaling();
  if (type == "default")
    return Status::ok();
  if (type == "linear")
    s.type = RopeScalingType::Linear;
  else if (type == "llama3")
    s.type = RopeScalingType::Llama3;
  else if (type == "yarn")
    s.type = RopeScalingType::Yarn;
  else
    return f.fail(f.get("rope_type") ? "rope_type" : "type",
                  "is " + json::quote(type) +
                      ": this RoPE scaling is not implemented (implemented: "
                      "default, linear, llama3, yarn)");
  QC_RETURN_IF_ERROR(f.number("factor", s.factor, true));
  if (s.type == RopeScalingType::Llama3) {
    QC_RETURN_IF_ERROR(f.number("low_freq_factor", s.lowFreqFactor, true));
    QC_RETURN_IF_ERROR(f.number("high_freq_factor", s.highFreqFactor, true));
    QC_RETURN_IF_ERROR(f.integer("original_max_position_embeddings",
                                 s.originalMaxPositions, true));
  }
  if (s.type == RopeScalingType::Yarn) {
    QC_RETURN_IF_ERROR(f.integer("original_max_position_embeddings",
                                 s.originalMaxPositions, false));
    QC_RETURN_IF_ERROR(f.number("beta_fast", s.betaFast, false));
    QC_RETURN_IF_ERROR(f.number("beta_slow", s.betaSlow, false));
    QC_RETURN_IF_ERROR(f.number("attention_factor", s.attentionFactor, false));
    QC_RETURN_IF_ERROR(f.number("mscale", s.mscale, false));
    QC_RETURN_IF_ERROR(f.number("mscale_all_dim", s.mscaleAllDim, false));
    QC_RETURN_IF_ERROR(f.boolean("truncate", s.truncate));
  }
  return Status::ok();
}

} // namespace

namespace {

Status parseHFConfigImpl(const std::string &configPath, ModelConfig &out,
                         json::Value *quantizationConfig) {
  json::Value root;
  QC_RETURN_IF_ERROR(readJsonObject(configPath, kMaxConfigBytes, root));
  ConfigFields f(root, configPath);

  const json::Value *type = f.get("model_type");
  if (!type)
    return f.fail("model_type", "is missing");
  if (!type->isString())
    return f.wrongType("model_type", "a string", *type);
  const std::string &t = type->asString();
  if (t != "llama" && t != "mistral" && t != "qwen2")
    return f.fail("model_type", "is " + json::quote(t) +
                                    ", which is not supported (supported: "
                                    "llama, mistral, qwen2)");
  QC_RETURN_IF_ERROR(checkUnsupportedFeatures(f, t, quantizationConfig));
  QC_RETURN_IF_ERROR(checkUnknownKeys(root, f));

  ModelConfig c;
  c.modelType = t;
  QC_RETURN_IF_ERROR(f.integer("hidden_size", c.dim, true));
  QC_RETURN_IF_ERROR(f.integer("intermediate_size", c.hiddenDim, true));
  QC_RETURN_IF_ERROR(f.integer("num_hidden_layers", c.nLayers, true));
  QC_RETURN_IF_ERROR(f.integer("num_attention_heads", c.nHeads, true));
  QC_RETURN_IF_ERROR(f.integer("vocab_size", c.vocabSize, true));
  QC_RETURN_IF_ERROR(f.integer("max_position_embeddings", c.maxSeqLen, true));
  QC_RETURN_IF_ERROR(f.number("rms_norm_eps", c.normEps, true));
  c.nKVHeads = c.nHeads;
  QC_RETURN_IF_ERROR(f.integer("num_key_value_heads", c.nKVHeads, false));
  c.ropeTheta = 10000.0f;
  QC_RETURN_IF_ERROR(f.number("rope_theta", c.ropeTheta, false));
  c.tiedEmbeddings = false;
  QC_RETURN_IF_ERROR(f.boolean("tie_word_embeddings", c.tiedEmbeddings));
  c.bosId = 1;
  c.eosId = 2;
  QC_RETURN_IF_ERROR(f.tokenId("bos_token_id", c.bosId));
  QC_RETURN_IF_ERROR(f.tokenId("eos_token_id", c.eosId));
  // qwen2 hard-codes q/k/v biases; llama's flag was refused above when set.
  c.attentionBias = t == "qwen2";
  c.ropeLayout = RopeLayout::HalfSplit;

  if (f.get("head_dim")) {
    QC_RETURN_IF_ERROR(f.integer("head_dim", c.headDim, true));
  } else {
    if (c.nHeads <= 0 || c.dim % c.nHeads != 0)
      return f.fail("hidden_size", "(" + std::to_string(c.dim) +
                                       ") is not a multiple of "
                                       "num_attention_heads (" +
                                       std::to_string(c.nHeads) +
                                       ") and head_dim is not given");
    c.headDim = c.dim / c.nHeads;
  }
  // RoPE: transformers 4.x spells scaling as rope_scaling (theta beside
  // it), 5.x as rope_parameters (theta inside); partial_rotary_factor may
  // sit at the top level or inside. The rotary dimension is resolved once
  // head_dim is known.
  double partial = 1.0;
  if (f.get("partial_rotary_factor")) {
    QC_RETURN_IF_ERROR(f.number("partial_rotary_factor", partial, true));
    if (!(partial > 0.0 && partial <= 1.0))
      return f.fail("partial_rotary_factor", "must be in (0, 1]");
  }
  if (const json::Value *r = f.get("rope_parameters"))
    QC_RETURN_IF_ERROR(
        parseRopeObject(*r, "rope_parameters", configPath, c, partial));
  if (const json::Value *r = f.get("rope_scaling")) {
    if (f.get("rope_parameters") && c.ropeScaling.type != RopeScalingType::None)
      return f.fail("rope_scaling",
                    "and rope_parameters both describe the RoPE scaling");
    QC_RETURN_IF_ERROR(
        parseRopeObject(*r, "rope_scaling", configPath, c, partial));
  }
  if (partial != 1.0) {
    // transformers: dim = int(head_dim * partial_rotary_factor).
    int64_t dim =
        static_cast<int64_t>(static_cast<double>(c.headDim) * partial);
    if (dim <= 0 || dim % 2 != 0)
      return f.fail("partial_rotary_factor",
                    "gives a rotary dimension of " + std::to_string(dim) +
                        " features per head, which is not a positive even "
                        "number");
    c.rotaryDim = dim == c.headDim ? 0 : dim;
  }
  // Sliding-window attention (mistral; qwen2 with use_sliding_window;
  // layer_types naming "sliding_attention"): inside the window it equals
  // full attention, so qc runs such a model exactly for contexts up to the
  // window and refuses longer ones (maxSeqLen becomes the window).
  bool sliding = t == "mistral";
  if (t == "qwen2") {
    bool use = false;
    QC_RETURN_IF_ERROR(f.boolean("use_sliding_window", use));
    sliding = use;
  }
  if (const json::Value *types = f.get("layer_types")) {
    if (!types->isArray())
      return f.wrongType("layer_types", "a list of strings", *types);
    for (const json::Value &lt : types->asArray()) {
      if (!lt.isString())
        return f.wrongType("layer_types", "a list of strings", lt);
      if (lt.asString() == "sliding_attention")
        sliding = true;
      else if (lt.asString() != "full_attention")
        return f.fail("layer_types", "names the layer type " +
                                         json::quote(lt.asString()) +
                                         ", which qc does not implement");
    }
  }
  if (sliding) {
    int64_t window = 0;
    QC_RETURN_IF_ERROR(f.integer("sliding_window", window, false));
    if (window < 0)
      return f.fail("sliding_window", "must be positive or null");
    if (window > 0 && window < c.maxSeqLen) {
      c.slidingWindow = window;
      c.maxSeqLen = window;
    }
  }
  QC_RETURN_IF_ERROR(validateModelConfig(c, configPath));
  out = c;
  if (quantizationConfig) {
    const json::Value *q = f.get("quantization_config");
    *quantizationConfig = q ? *q : json::Value();
  }
  return Status::ok();
}

} // namespace

Status parseHFConfig(const std::string &configPath, ModelConfig &out) {
  return parseHFConfigImpl(configPath, out, nullptr);
}

Status parseHFConfig(const std::string &configPath, ModelConfig &out,
                     json::Value &quantizationConfig) {
  return parseHFConfigImpl(configPath, out, &quantizationConfig);
}

//===----------------------------------------------------------------------===//
// Loading
//===----------------------------------------------------------------------===//

namespace {

/// An opened shard and its file name relative to the checkpoint directory.
using Shard = HFTensorFiles::File;

/// Where each tensor lives after the index has been checked.
using TensorSources = std::map<std::string, const Shard *>;

/// Rejects weight_map values that would escape the checkpoint directory.
bool isPlainFileName(const std::string &name) {
  return !name.empty() && name != "." && name != ".." &&
         name.find('/') == std::string::npos &&
         name.find('\0') == std::string::npos;
}

/// Reads model.safetensors.index.json, opens the shards it names, and checks
/// index <-> shard consistency in both directions (RELIABILITY.md row 8).
Status loadShardIndex(const std::string &dir, std::vector<Shard> &shards,
                      TensorSources &sources) {
  std::string indexPath = joinPath(dir, kIndexFile);
  json::Value root;
  QC_RETURN_IF_ERROR(readJsonObject(indexPath, kMaxIndexBytes, root));
  const json::Value *map = root.find("weight_map");
  if (!map)
    return Status::error(indexPath + ": \"weight_map\" is missing");
  if (!map->isObject())
    return Status::error(indexPath + ": \"weight_map\" must be an object");
  if (const json::Value *meta = root.find("metadata"))
    if (!meta->isObject() && !meta->isNull())
      return Status::error(indexPath + ": \"metadata\" must be an object");

  std::map<std::string, std::string> weightMap;     // tensor -> shard file
  std::map<std::string, std::string> firstTensorOf; // shard -> example
  for (const json::Value::Member &m : map->asObject()) {
    if (!m.second.isString())
      return Status::error(indexPath + ": weight_map entry for tensor " +
                           json::quote(m.first) + " must be a string");
    const std::string &shard = m.second.asString();
    if (!isPlainFileName(shard))
      return Status::error(indexPath + ": weight_map puts tensor " +
                           json::quote(m.first) + " in " + json::quote(shard) +
                           ", which is not a file name inside the checkpoint "
                           "directory");
    weightMap.emplace(m.first, shard);
    firstTensorOf.emplace(shard, m.first);
  }

  shards.clear();
  shards.reserve(firstTensorOf.size());
  for (const auto &kv : firstTensorOf) {
    std::string path = joinPath(dir, kv.first);
    if (!isRegularFile(path))
      return Status::error(indexPath + ": shard " + json::quote(kv.first) +
                           " (listed for tensor " + json::quote(kv.second) +
                           ") does not exist");
    QC_RETURN_IF_ERROR(checkInsideModelFolder(dir, path));
    Shard s;
    s.fileName = kv.first;
    QC_RETURN_IF_ERROR(SafetensorsFile::open(path, s.file));
    shards.push_back(std::move(s));
  }

  // A tensor in two shards is an error whatever the index says, so check
  // that before comparing against the index.
  sources.clear();
  for (const Shard &s : shards) {
    for (const TensorInfo &info : s.file->tensors()) {
      auto ins = sources.emplace(info.name, &s);
      if (!ins.second)
        return Status::error(dir + ": tensor " + json::quote(info.name) +
                             " is present in two shards, " +
                             json::quote(ins.first->second->fileName) +
                             " and " + json::quote(s.fileName));
    }
  }
  for (const auto &kv : sources) {
    auto it = weightMap.find(kv.first);
    if (it == weightMap.end())
      return Status::error(indexPath + ": tensor " + json::quote(kv.first) +
                           " in shard " + json::quote(kv.second->fileName) +
                           " is not listed in the weight_map");
    if (it->second != kv.second->fileName)
      return Status::error(indexPath + ": weight_map puts tensor " +
                           json::quote(kv.first) + " in " +
                           json::quote(it->second) + " but it is in " +
                           json::quote(kv.second->fileName));
  }
  for (const auto &kv : weightMap)
    if (!sources.count(kv.first))
      return Status::error(indexPath + ": tensor " + json::quote(kv.first) +
                           " is listed for shard " + json::quote(kv.second) +
                           " but that shard does not contain it");
  return Status::ok();
}

/// Resolves tie_word_embeddings against the presence of lm_head.weight.
Status reconcileTiedHead(const std::string &dir, ModelWeights &w) {
  auto head = w.tensors.find("lm_head.weight");
  if (!w.config.tiedEmbeddings) {
    if (head == w.tensors.end())
      return Status::error(dir + ": lm_head.weight is missing but config.json "
                                 "has tie_word_embeddings false");
    return Status::ok();
  }
  if (head == w.tensors.end())
    return Status::ok();
  const HostTensor *emb = w.find("model.embed_tokens.weight");
  bool same = emb && emb->shape == head->second.shape;
  if (same && (!emb->resident() || !head->second.resident())) {
    // Lazily opened: both are read for the comparison and dropped again.
    std::vector<float> a, b;
    int64_t rows = emb->rows();
    QC_RETURN_IF_ERROR(emb->resident() ? Status::ok() : emb->load(0, rows, a));
    QC_RETURN_IF_ERROR(head->second.resident() ? Status::ok()
                                               : head->second.load(0, rows, b));
    same = (emb->resident() ? emb->data : a) ==
           (head->second.resident() ? head->second.data : b);
  } else if (same) {
    same = emb->data == head->second.data;
  }
  if (same) {
    // Some exporters save the shared matrix twice; it is the same weight.
    w.tensors.erase(head);
    return Status::ok();
  }
  return Status::error(dir + ": config.json has tie_word_embeddings true but "
                             "lm_head.weight differs from "
                             "model.embed_tokens.weight; set "
                             "tie_word_embeddings to false to keep both");
}

} // namespace

// Legacy checkpoints carry the RoPE frequency buffer as a tensor;
// transformers ignores it on load (`_keys_to_ignore_on_load_unexpected`).
bool isIgnoredHFBuffer(const std::string &name) {
  static const std::string suffix = ".self_attn.rotary_emb.inv_freq";
  return name.size() > suffix.size() &&
         name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

Status openHFTensorFiles(const std::string &dir, HFTensorFiles &out) {
  std::string singlePath = joinPath(dir, kSingleFile);
  std::string indexPath = joinPath(dir, kIndexFile);
  // Named like a weight file but not a file (a folder, a FIFO): say so,
  // rather than "does not exist".
  for (const std::string &p : {singlePath, indexPath})
    if (existsAt(p) && !isRegularFile(p)) {
      struct stat st;
      bool folder = ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
      return Status::error(p + ": not a regular file" +
                           (folder ? std::string(" (a folder)") : "") +
                           "; a checkpoint's weights must be files");
    }
  bool hasSingle = isRegularFile(singlePath);
  bool hasIndex = isRegularFile(indexPath);
  if (hasSingle && hasIndex)
    return Status::error(dir + ": both " + kSingleFile + " and " + kIndexFile +
                         " exist; the checkpoint is ambiguous, remove one");
  if (!hasSingle && !hasIndex)
    return Status::error(dir + ": neither " + std::string(kSingleFile) +
                         " nor " + kIndexFile + " exists");

  // Filled in place: `tensors` points into `files`.
  out.files.clear();
  out.tensors.clear();
  if (hasSingle) {
    out.files.emplace_back();
    out.files[0].fileName = kSingleFile;
    QC_RETURN_IF_ERROR(checkInsideModelFolder(dir, singlePath));
    QC_RETURN_IF_ERROR(SafetensorsFile::open(singlePath, out.files[0].file));
    for (const TensorInfo &info : out.files[0].file->tensors())
      out.tensors.emplace(info.name, &out.files[0]);
    return Status::ok();
  }
  QC_RETURN_IF_ERROR(checkInsideModelFolder(dir, indexPath));
  return loadShardIndex(dir, out.files, out.tensors);
}

Status loadHFCheckpoint(const std::string &dir, ModelWeights &out,
                        const LoadOptions &options) {
  ModelConfig config;
  QC_RETURN_IF_ERROR(checkInsideModelFolder(dir, joinPath(dir, "config.json")));
  QC_RETURN_IF_ERROR(parseHFConfig(joinPath(dir, "config.json"), config));
  // Shared with the loaders of a lazy load, which keep the files mapped.
  auto files = std::make_shared<HFTensorFiles>();
  QC_RETURN_IF_ERROR(openHFTensorFiles(dir, *files));
  const TensorSources &sources = files->tensors;

  ModelWeights w;
  w.config = config;
  for (const auto &kv : sources) {
    if (isIgnoredHFBuffer(kv.first))
      continue;
    const SafetensorsFile *file = kv.second->file.get();
    const TensorInfo *info = file->find(kv.first);
    HostTensor t;
    t.shape = info->shape;
    if (options.lazy) {
      // The dtype is checked now, so that an integer tensor in a float
      // checkpoint is reported before any work, as an eager load would.
      if (info->dtype != DType::F32 && info->dtype != DType::F16 &&
          info->dtype != DType::BF16 && info->dtype != DType::F64)
        return Status::error(file->displayName() + ": tensor " +
                             json::quote(kv.first) + " has dtype " +
                             dtypeName(info->dtype) +
                             ", which cannot be read as fp32 (supported: "
                             "F32, F16, BF16, F64)");
      t.load = [files, file, info](int64_t first, int64_t count,
                                   std::vector<float> &values) {
        TensorInfo rows;
        if (Status s = rowSlice(*info, first, count, rows); !s)
          return Status::error(file->displayName() + ": " + s.message());
        Status s = file->readAsF32(rows, values, true);
        file->releasePages(rows);
        return s;
      };
      w.tensors.emplace(kv.first, std::move(t));
      continue;
    }
    // readAsF32 names the shard, tensor and dtype for anything but
    // F32/F16/BF16/F64, and the first non-finite value.
    QC_RETURN_IF_ERROR(file->readAsF32(*info, t.data, true));
    w.tensors.emplace(kv.first, std::move(t));
  }
  QC_RETURN_IF_ERROR(reconcileTiedHead(dir, w));
  QC_RETURN_IF_ERROR(validateModelWeights(w, dir));
  out = std::move(w);
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// RoPE row permutation
//===----------------------------------------------------------------------===//

void permuteInterleavedToHalfSplit(const float *src, float *dst, int64_t nHeads,
                                   int64_t headDim, int64_t rowLength) {
  int64_t half = headDim / 2;
  size_t rowBytes = static_cast<size_t>(rowLength) * sizeof(float);
  for (int64_t h = 0; h < nHeads; ++h)
    for (int64_t i = 0; i < half; ++i)
      for (int64_t e = 0; e < 2; ++e) {
        int64_t from = h * headDim + 2 * i + e;
        int64_t to = h * headDim + e * half + i;
        std::memcpy(dst + to * rowLength, src + from * rowLength, rowBytes);
      }
}

void permuteHalfSplitToInterleaved(const float *src, float *dst, int64_t nHeads,
                                   int64_t headDim, int64_t rowLength) {
  int64_t half = headDim / 2;
  size_t rowBytes = static_cast<size_t>(rowLength) * sizeof(float);
  for (int64_t h = 0; h < nHeads; ++h)
    for (int64_t i = 0; i < half; ++i)
      for (int64_t e = 0; e < 2; ++e) {
        int64_t to = h * headDim + 2 * i + e;
        int64_t from = h * headDim + e * half + i;
        std::memcpy(dst + to * rowLength, src + from * rowLength, rowBytes);
      }
}

//===----------------------------------------------------------------------===//
// Writing
//===----------------------------------------------------------------------===//

namespace {

/// The transformers class name for a supported model_type, or nullptr.
const char *architectureFor(const std::string &modelType) {
  if (modelType == "llama")
    return "LlamaForCausalLM";
  if (modelType == "mistral")
    return "MistralForCausalLM";
  if (modelType == "qwen2")
    return "Qwen2ForCausalLM";
  return nullptr;
}

/// A float config value as the JSON number with the shortest decimal that
/// reads back to the same float (1e-05, not 9.999999747378752e-06).
json::Value floatNumber(float v) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  double d = v;
  std::from_chars(buf, r.ptr, d);
  return json::Value::number(d);
}

} // namespace

// Keys sorted like transformers' to_json_string(sort_keys=True).
std::string buildHFConfigJson(const ModelConfig &c, DType dtype,
                              const json::Value *quantizationConfig) {
  std::map<std::string, json::Value> f;
  json::Value arch = json::Value::array();
  arch.push(json::Value::string(architectureFor(c.modelType)));
  f["architectures"] = std::move(arch);
  f["attention_dropout"] = json::Value::number(0.0);
  f["bos_token_id"] = json::Value::integer(c.bosId);
  f["eos_token_id"] = json::Value::integer(c.eosId);
  f["head_dim"] = json::Value::integer(c.headDim);
  f["hidden_act"] = json::Value::string("silu");
  f["hidden_size"] = json::Value::integer(c.dim);
  f["initializer_range"] = json::Value::number(0.02);
  f["intermediate_size"] = json::Value::integer(c.hiddenDim);
  f["max_position_embeddings"] = json::Value::integer(c.maxSeqLen);
  f["model_type"] = json::Value::string(c.modelType);
  f["num_attention_heads"] = json::Value::integer(c.nHeads);
  f["num_hidden_layers"] = json::Value::integer(c.nLayers);
  f["num_key_value_heads"] = json::Value::integer(c.nKVHeads);
  f["rms_norm_eps"] = floatNumber(c.normEps);
  f["rope_scaling"] = json::Value();
  const RopeScaling &rs = c.ropeScaling;
  if (rs.type != RopeScalingType::None) {
    json::Value r = json::Value::object();
    r.set("rope_type", json::Value::string(ropeScalingName(rs.type)));
    r.set("factor", json::Value::number(rs.factor));
    if (rs.type == RopeScalingType::Llama3) {
      r.set("low_freq_factor", json::Value::number(rs.lowFreqFactor));
      r.set("high_freq_factor", json::Value::number(rs.highFreqFactor));
    }
    if (rs.originalMaxPositions > 0)
      r.set("original_max_position_embeddings",
            json::Value::integer(rs.originalMaxPositions));
    if (rs.type == RopeScalingType::Yarn) {
      r.set("beta_fast", json::Value::number(rs.betaFast));
      r.set("beta_slow", json::Value::number(rs.betaSlow));
      if (rs.attentionFactor > 0.0)
        r.set("attention_factor", json::Value::number(rs.attentionFactor));
      if (rs.mscale != 0.0)
        r.set("mscale", json::Value::number(rs.mscale));
      if (rs.mscaleAllDim != 0.0)
        r.set("mscale_all_dim", json::Value::number(rs.mscaleAllDim));
      r.set("truncate", json::Value::boolean(rs.truncate));
    }
    f["rope_scaling"] = std::move(r);
  }
  if (c.rotaryDim > 0 && c.rotaryDim != c.headDim)
    f["partial_rotary_factor"] = json::Value::number(
        static_cast<double>(c.rotaryDim) / static_cast<double>(c.headDim));
  f["rope_theta"] = floatNumber(c.ropeTheta);
  f["tie_word_embeddings"] = json::Value::boolean(c.tiedEmbeddings);
  f["torch_dtype"] = json::Value::string(dtype == DType::F32   ? "float32"
                                         : dtype == DType::F16 ? "float16"
                                                               : "bfloat16");
  f["use_cache"] = json::Value::boolean(true);
  f["vocab_size"] = json::Value::integer(c.vocabSize);
  if (c.modelType == "llama") {
    f["attention_bias"] = json::Value::boolean(false);
    f["mlp_bias"] = json::Value::boolean(false);
  } else {
    // MistralConfig defaults sliding_window to 4096; null means full
    // attention, which is what the weights were validated for. A model
    // read with a window keeps it (its context is capped to the window).
    f["sliding_window"] = c.slidingWindow > 0
                              ? json::Value::integer(c.slidingWindow)
                              : json::Value();
  }
  if (c.modelType == "qwen2")
    f["use_sliding_window"] = json::Value::boolean(c.slidingWindow > 0);
  if (quantizationConfig)
    f["quantization_config"] = *quantizationConfig;
  json::Value root = json::Value::object();
  for (auto &kv : f)
    root.set(kv.first, std::move(kv.second));
  json::WriteOptions opts;
  opts.pretty = true;
  return json::write(root, opts) + "\n";
}

namespace {

/// One tensor to write, possibly pointing at a permuted copy.
struct OutTensor {
  std::string name;
  const HostTensor *tensor;
  uint64_t bytes;
};

/// Splits `tensors` (in name order) greedily into shards of at most
/// `maxShardBytes` (0 = one shard); a tensor larger than the limit gets a
/// shard of its own, as in transformers' shard_checkpoint.
std::vector<std::vector<OutTensor>>
planShards(const std::vector<OutTensor> &tensors, uint64_t maxShardBytes) {
  std::vector<std::vector<OutTensor>> shards(1);
  uint64_t used = 0;
  for (const OutTensor &t : tensors) {
    uint64_t next;
    if (maxShardBytes && !shards.back().empty() &&
        (__builtin_add_overflow(used, t.bytes, &next) ||
         next > maxShardBytes)) {
      shards.emplace_back();
      used = 0;
    }
    shards.back().push_back(t);
    used += t.bytes;
  }
  return shards;
}

std::string shardFileName(size_t index, size_t count) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "model-%05zu-of-%05zu.safetensors", index + 1,
                count);
  return buf;
}

/// True for a file name a previous writeHFCheckpoint could have produced
/// as weights: model.safetensors, the index, or model-NNNNN-of-NNNNN.
bool isWeightFileName(const std::string &name) {
  if (name == kSingleFile || name == kIndexFile)
    return true;
  static const std::string pattern = "model-00000-of-00000.safetensors";
  if (name.size() != pattern.size())
    return false;
  for (size_t i = 0; i < name.size(); ++i) {
    bool digit = name[i] >= '0' && name[i] <= '9';
    if (pattern[i] == '0' ? !digit : name[i] != pattern[i])
      return false;
  }
  return true;
}

/// Removes weight files of an earlier save that the new one did not
/// produce, so that the directory is not ambiguous to a loader.
Status removeStaleWeightFiles(const std::string &dir,
                              const std::set<std::string> &keep) {
  std::error_code ec;
  std::vector<std::string> stale;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end;
       it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (isWeightFileName(name) && !keep.count(name))
      stale.push_back(name);
  }
  if (ec)
    return Status::error(dir + ": cannot list the directory: " + ec.message());
  for (const std::string &name : stale) {
    if (::unlink(joinPath(dir, name).c_str()) != 0 && errno != ENOENT) {
      int err = errno;
      return Status::error(
          joinPath(dir, name) +
          ": cannot remove stale weight file: " + std::strerror(err));
    }
  }
  return Status::ok();
}

/// Writes one shard; q/k tensors of an interleaved model are permuted into
/// buffers that live until the shard is on disk.
Status writeShard(const std::string &path, const std::vector<OutTensor> &ts,
                  const ModelConfig &c, DType dtype) {
  SafetensorsWriter writer;
  QC_RETURN_IF_ERROR(writer.setMetadata({{"format", "pt"}}));
  std::vector<std::vector<float>> permuted;
  for (const OutTensor &t : ts) {
    const float *data = t.tensor->data.data();
    if (c.ropeLayout == RopeLayout::Interleaved) {
      bool isQ = t.name.find(".self_attn.q_proj.") != std::string::npos;
      bool isK = t.name.find(".self_attn.k_proj.") != std::string::npos;
      if (isQ || isK) {
        int64_t heads = isQ ? c.nHeads : c.nKVHeads;
        int64_t rowLength =
            t.tensor->shape.size() == 2 ? t.tensor->shape[1] : 1;
        permuted.emplace_back(t.tensor->data.size());
        permuteInterleavedToHalfSplit(data, permuted.back().data(), heads,
                                      c.headDim, rowLength);
        data = permuted.back().data();
      }
    }
    if (dtype == DType::F32)
      QC_RETURN_IF_ERROR(writer.addView(t.name, DType::F32, t.tensor->shape,
                                        data, t.tensor->data.size() * 4));
    else
      QC_RETURN_IF_ERROR(
          writer.addFromF32(t.name, t.tensor->shape, data, dtype));
  }
  return writer.writeFile(path);
}

} // namespace

Status writeHFCheckpoint(const std::string &dir, const ModelWeights &weights,
                         DType dtype, uint64_t maxShardBytes,
                         const std::vector<NamedFile> &extraFiles) {
  const ModelConfig &c = weights.config;
  if (dtype != DType::F32 && dtype != DType::F16 && dtype != DType::BF16)
    return Status::error(dir + ": cannot write a checkpoint as " +
                         dtypeName(dtype) + " (supported: F32, F16, BF16)");
  if (!architectureFor(c.modelType))
    return Status::error(dir + ": model type " + json::quote(c.modelType) +
                         " cannot be written (supported: llama, mistral, "
                         "qwen2)");
  if (c.attentionBias != (c.modelType == "qwen2"))
    return Status::error(dir + ": model type " + c.modelType +
                         (c.attentionBias
                              ? " has no q/k/v-only attention bias; use qwen2"
                              : " always has q/k/v biases"));
  // Refuse to publish anything a loader would reject (NaN included).
  QC_RETURN_IF_ERROR(validateModelWeights(weights, dir));
  for (const NamedFile &f : extraFiles)
    if (f.name.empty() || f.name == "." || f.name == ".." ||
        f.name.find('/') != std::string::npos || f.name == "config.json" ||
        isWeightFileName(f.name))
      return Status::error(dir + ": cannot write " + json::quote(f.name) +
                           " beside the checkpoint (not a plain file name, "
                           "or a name the checkpoint itself uses)");

  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    return Status::error(dir +
                         ": cannot create the directory: " + ec.message());

  unsigned elemBytes = dtypeBits(dtype) / 8;
  std::vector<OutTensor> tensors;
  uint64_t totalBytes = 0;
  for (const auto &kv : weights.tensors) {
    uint64_t bytes = static_cast<uint64_t>(kv.second.data.size()) * elemBytes;
    tensors.push_back({kv.first, &kv.second, bytes});
    totalBytes += bytes;
  }
  std::vector<std::vector<OutTensor>> plan = planShards(tensors, maxShardBytes);

  std::set<std::string> written;
  json::Value weightMap = json::Value::object();
  for (size_t i = 0; i < plan.size(); ++i) {
    std::string name = plan.size() == 1 ? std::string(kSingleFile)
                                        : shardFileName(i, plan.size());
    QC_RETURN_IF_ERROR(writeShard(joinPath(dir, name), plan[i], c, dtype));
    written.insert(name);
    for (const OutTensor &t : plan[i])
      weightMap.set(t.name, json::Value::string(name));
  }
  if (plan.size() > 1) {
    // weight_map keys come out sorted: tensors were visited in map order.
    json::Value meta = json::Value::object();
    meta.set("total_size", json::Value::unsignedInteger(totalBytes));
    json::Value index = json::Value::object();
    index.set("metadata", std::move(meta));
    index.set("weight_map", std::move(weightMap));
    json::WriteOptions opts;
    opts.pretty = true;
    std::string text = json::write(index, opts) + "\n";
    QC_RETURN_IF_ERROR(writeFileAtomically(joinPath(dir, kIndexFile),
                                           {{text.data(), text.size()}}));
    written.insert(kIndexFile);
  }
  for (const NamedFile &f : extraFiles)
    QC_RETURN_IF_ERROR(writeFileAtomically(joinPath(dir, f.name),
                                           {{f.bytes.data(), f.bytes.size()}}));
  std::string config = buildHFConfigJson(c, dtype);
  QC_RETURN_IF_ERROR(writeFileAtomically(joinPath(dir, "config.json"),
                                         {{config.data(), config.size()}}));
  return removeStaleWeightFiles(dir, written);
}

} // namespace qc
