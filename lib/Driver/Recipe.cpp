//===- Recipe.cpp - quant-compile recipes and their validation -----------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// The recipe is read with the runtime's strict JSON parser (qc/runtime/
// Json.h), not llvm::json, on purpose: recipes are user files, often copied
// and edited by hand, and that parser rejects a duplicated key with its
// byte offset (llvm::json keeps one of the two silently: {"bits": 8,
// "bits": 2} would quantize at a width the user may not have meant) and
// keeps the keys in file order, so that report.json echoes the recipe as
// written. Every value is checked for type and range here, against the same
// table the passes use (OptionRanges.h), before any calibration starts.
//
//===----------------------------------------------------------------------===//

#include "qc/Driver/Recipe.h"

#include "qc/Quantization/Algorithms/BlockReference.h"
#include "qc/Quantization/Algorithms/NF4.h"
#include "qc/Quantization/Algorithms/OptionRanges.h"
#include "qc/Quantization/Algorithms/Packing.h"
#include "qc/Quantization/LayerOverrides.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <unistd.h>

using namespace qc;

namespace {

/// Method-specific options a recipe may set, in pass-option spelling.
const std::map<std::string, std::set<std::string>> &methodOptions() {
  static const std::map<std::string, std::set<std::string>> options = {
      {"rtn", {}},
      {"nf4", {"double-quant"}},
      {"gptq",
       {"damp-percent", "block-size", "act-order", "static-groups",
        "sequential"}},
      {"awq", {"n-grid", "duo-scaling", "clip", "max-shrink"}},
      {"hqq", {"lp-norm", "beta", "kappa", "iters", "round-zeros"}},
      {"autoround",
       {"iters", "lr", "minmax-lr", "batch-size", "minmax-tuning"}},
  };
  return options;
}

std::string dashed(std::string key) {
  std::replace(key.begin(), key.end(), '_', '-');
  return key;
}

/// A JSON scalar as pass-option text.
bool optionText(const json::Value &v, std::string &out) {
  if (v.isBool()) {
    out = v.asBool() ? "true" : "false";
    return true;
  }
  if (v.isInt64()) {
    out = std::to_string(v.asInt64());
    return true;
  }
  if (v.isNumber()) {
    std::ostringstream os;
    os.precision(17);
    os << v.asDouble();
    out = os.str();
    return true;
  }
  if (v.isString() && v.asString().find_first_of(" {}") == std::string::npos) {
    out = v.asString();
    return true;
  }
  return false;
}

/// What a JSON value is, for "got ..." in errors.
std::string shown(const json::Value &v) {
  if (v.isString())
    return "the string " + json::quote(v.asString(), 40);
  if (v.isNumber() || v.isBool() || v.isNull())
    return json::write(v);
  return std::string("an ") + json::kindName(v.kind());
}

/// Checks `v` against `spec` (type, then range) and gives its pass-option
/// text. The error says what was expected and what was found.
Status checkedOptionText(const json::Value &v, const quant::OptionSpec &spec,
                         std::string &out) {
  auto expected = [&](const std::string &what) {
    return Status::error("must be " + what + ", got " + shown(v));
  };
  switch (spec.kind) {
  case quant::OptionKind::Bool:
    if (!v.isBool())
      return expected("true or false");
    out = v.asBool() ? "true" : "false";
    return Status::ok();
  case quant::OptionKind::Int: {
    if (!v.isNumber() || (!v.isInt64() && !v.isUInt64() &&
                          v.asDouble() != std::floor(v.asDouble())))
      return expected(spec.describe());
    // An integer beyond int64 (or a huge float literal) is out of range.
    if (!v.isInt64())
      return expected(spec.describe());
    if (!quant::checkIntOption(spec, v.asInt64()))
      return expected(spec.describe());
    out = std::to_string(v.asInt64());
    return Status::ok();
  }
  case quant::OptionKind::Real: {
    if (!v.isNumber())
      return expected(spec.describe());
    if (!quant::checkRealOption(spec, v.asDouble()))
      return expected(spec.describe());
    std::ostringstream os;
    os.precision(17);
    os << v.asDouble();
    out = os.str();
    return Status::ok();
  }
  }
  return Status::error("unknown option kind");
}

/// An integer recipe value checked against `spec` (see checkedOptionText).
Status checkedInt(const json::Value &v, const quant::OptionSpec &spec,
                  int64_t &out) {
  std::string text;
  QC_RETURN_IF_ERROR(checkedOptionText(v, spec, text));
  out = v.asInt64();
  return Status::ok();
}

} // namespace

bool qc::methodNeedsCalibration(const std::string &method) {
  return method == "gptq" || method == "awq" || method == "autoround";
}

bool qc::recipeNeedsLayerStatistics(const Recipe &r) {
  if (r.method != "gptq")
    return false;
  for (const auto &[k, v] : r.options)
    if (k == "sequential")
      return v == "false";
  return false; // the pass's default is sequential=true
}

Status qc::parseRecipe(const std::string &path, Recipe &out) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return Status::error(path + ": cannot open the recipe");
  std::stringstream buf;
  buf << in.rdbuf();
  json::Value root;
  size_t offset = 0;
  if (Status s = json::parse(buf.str(), root, {}, &offset); !s)
    return Status::error(path + ": not valid JSON (byte " +
                         std::to_string(offset) + "): " + s.message());
  auto fail = [&](const std::string &key, const std::string &why) {
    return Status::error(path + ": '" + key + "': " + why);
  };
  if (!root.isObject())
    return Status::error(path + ": a recipe is a JSON object");
  out = Recipe();
  out.source = root;
  static const std::set<std::string> known = {
      "method",      "bits",
      "group_size",  "sym",
      "scale_dtype", "layout",
      "options",     "calibration",
      "overrides",   "require_divisible_groups",
      "seed",        "description"};
  for (const auto &[key, value] : root.asObject())
    if (!known.count(key))
      return fail(key, "unknown key (expected one of method, bits, "
                       "group_size, sym, scale_dtype, layout, options, "
                       "calibration, overrides, require_divisible_groups, "
                       "seed, description)");
  const json::Value *method = root.find("method");
  if (!method || !method->isString())
    return fail("method", "required, one of rtn, nf4, gptq, awq, hqq, "
                          "autoround");
  out.method = method->asString();
  auto opts = methodOptions().find(out.method);
  if (opts == methodOptions().end())
    return fail("method", "unknown method '" + out.method +
                              "' (expected rtn, nf4, gptq, awq, hqq or "
                              "autoround)");
  if (out.method == "hqq")
    out.groupSize = 64;
  // bits and group_size have the same rules for every method; NF4 has
  // its own below.
  if (const json::Value *v = root.find("bits")) {
    int64_t bits = 0;
    if (Status s = checkedInt(*v, *quant::findOptionSpec("rtn", "bits"), bits);
        !s)
      return fail("bits", s.message());
    out.bits = static_cast<int>(bits);
  }
  if (const json::Value *v = root.find("group_size")) {
    if (Status s = checkedInt(*v, *quant::findOptionSpec("rtn", "group-size"),
                              out.groupSize);
        !s)
      return fail("group_size", s.message());
  }
  if (const json::Value *v = root.find("sym")) {
    if (!v->isBool())
      return fail("sym", "must be true or false");
    out.sym = v->asBool();
  }
  if (out.method == "nf4") {
    if (out.bits != 4)
      return fail("bits", "NF4 is a 4-bit format");
    out.sym = true;
    if (!root.find("group_size"))
      out.groupSize = 64;
  }
  if (out.method == "hqq" && out.sym)
    return fail("sym", "HQQ is asymmetric (it optimizes the zero points)");
  for (const char *key : {"scale_dtype", "layout"}) {
    const json::Value *v = root.find(key);
    if (!v)
      continue;
    if (!v->isString())
      return fail(key, "must be a string");
    std::string s = v->asString();
    if (std::string(key) == "scale_dtype") {
      if (s != "f16" && s != "bf16" && s != "f32")
        return fail(key, "must be f16, bf16 or f32");
      if (out.method == "nf4")
        return fail(key, "NF4 stores f32 statistics; not configurable");
      out.scaleDType = s;
    } else {
      if (s != "gptq" && s != "rows" && s != "auto")
        return fail(key, "must be gptq, rows or auto");
      if (out.method == "nf4" && s != "rows")
        return fail(key, "NF4 is stored in the rows layout");
      out.layout = s;
    }
  }
  if (const json::Value *v = root.find("options")) {
    if (!v->isObject())
      return fail("options", "must be an object of method options");
    for (const auto &[key, value] : v->asObject()) {
      std::string name = dashed(key);
      if (!opts->second.count(name)) {
        std::string list;
        for (const std::string &o : opts->second)
          list += (list.empty() ? "" : ", ") + o;
        return fail("options." + key,
                    "not an option of " + out.method +
                        (list.empty() ? " (it has none)"
                                      : " (expected one of " + list + ")"));
      }
      std::string text;
      const quant::OptionSpec *spec = quant::findOptionSpec(out.method, name);
      if (spec) {
        if (Status s = checkedOptionText(value, *spec, text); !s)
          return fail("options." + key, s.message());
      } else if (!optionText(value, text)) {
        return fail("options." + key, "must be a number, a bool or a "
                                      "string without spaces or braces");
      }
      out.options.emplace_back(name, text);
    }
  }
  if (const json::Value *v = root.find("calibration")) {
    if (!v->isObject())
      return fail("calibration", "must be an object");
    for (const auto &[key, value] : v->asObject()) {
      int64_t *dst = key == "window"       ? &out.window
                     : key == "max_tokens" ? &out.maxTokens
                     : key == "samples"    ? &out.samples
                                           : nullptr;
      if (!dst)
        return fail("calibration." + key,
                    "unknown key (expected window, max_tokens, samples)");
      if (Status s = checkedInt(
              value, *quant::findOptionSpec("calibration", dashed(key)), *dst);
          !s)
        return fail("calibration." + key, s.message());
    }
  }
  if (const json::Value *v = root.find("require_divisible_groups")) {
    if (!v->isBool())
      return fail("require_divisible_groups", "must be true or false");
    out.requireDivisibleGroups = v->asBool();
  }
  if (const json::Value *v = root.find("seed")) {
    int64_t seed = 0;
    if (Status s =
            checkedInt(*v, *quant::findOptionSpec("compile", "seed"), seed);
        !s)
      return fail("seed", s.message());
    out.seed = static_cast<uint64_t>(seed);
  }
  if (const json::Value *v = root.find("overrides")) {
    if (!v->isArray())
      return fail("overrides", "must be an array of objects");
    size_t i = 0;
    for (const json::Value &o : v->asArray()) {
      std::string where = "overrides[" + std::to_string(i++) + "]";
      if (!o.isObject())
        return fail(where, "must be an object with \"match\"");
      const json::Value *match = o.find("match");
      if (!match || !match->isString() || match->asString().empty())
        return fail(where + ".match", "required: a regex searched in the "
                                      "layer name");
      if (match->asString().find_first_of(":,{} ") != std::string::npos)
        return fail(where + ".match", "may not contain ':', ',', braces or "
                                      "spaces (pass-option syntax)");
      std::string entry = match->asString();
      bool any = false;
      for (const auto &[key, value] : o.asObject()) {
        std::string text;
        if (key == "match")
          continue;
        if (key == "skip") {
          if (!value.isBool())
            return fail(where + ".skip", "must be true or false");
          if (value.asBool())
            entry += ":skip";
          any = true;
          continue;
        }
        if (key != "bits" && key != "group_size" && key != "sym")
          return fail(where + "." + key,
                      "unknown key (expected match, skip, bits, group_size, "
                      "sym)");
        // The same rules for every method (NF4's block sizes and fixed
        // width are checked by validateRecipe, per layer).
        const quant::OptionSpec *spec =
            quant::findOptionSpec("rtn", dashed(key));
        if (Status s = checkedOptionText(value, *spec, text); !s)
          return fail(where + "." + key, s.message());
        entry += ":" + dashed(key) + "=" + text;
        any = true;
      }
      if (!any)
        return fail(where, "sets nothing (add skip, bits, group_size or sym)");
      out.overrides.push_back(entry);
    }
    std::vector<mlir::qc::LayerOverride> parsed;
    if (Status s = mlir::qc::parseLayerOverrides(out.overrides, parsed); !s)
      return Status::error(path + ": " + s.message());
  }
  return Status::ok();
}

std::string qc::recipePipeline(const Recipe &r, const std::string &trace,
                               const std::string &weightsOut,
                               const std::string &journal) {
  std::string p = "builtin.module(wq-" + r.method + "{";
  if (r.method == "nf4") {
    p += "block-size=" + std::to_string(r.groupSize);
  } else {
    p += "bits=" + std::to_string(r.bits) +
         " group-size=" + std::to_string(r.groupSize);
    if (r.method != "hqq")
      p += std::string(" sym=") + (r.sym ? "true" : "false");
    if (!r.scaleDType.empty())
      p += " scale-dtype=" + r.scaleDType;
    if (!r.layout.empty())
      p += " layout=" + r.layout;
  }
  for (const auto &[k, v] : r.options)
    p += " " + k + "=" + v;
  if (r.method == "autoround" && r.seed)
    p += " seed=" + std::to_string(*r.seed);
  if (!r.overrides.empty()) {
    p += " overrides=";
    for (size_t i = 0; i < r.overrides.size(); ++i)
      p += (i ? "," : "") + r.overrides[i];
  }
  if (methodNeedsCalibration(r.method))
    p += " trace=" + trace;
  p += " weights-out=" + weightsOut;
  if (!journal.empty())
    p += " journal=" + journal;
  return p + "})";
}

Status qc::validateRecipe(const Recipe &r, const ModelWeights &weights,
                          ValidationResult &res) {
  res = ValidationResult();
  const ModelConfig &c = weights.config;
  std::vector<mlir::qc::LayerOverride> overrides;
  QC_RETURN_IF_ERROR(mlir::qc::parseLayerOverrides(r.overrides, overrides));
  // The passes' default for RTN, GPTQ, AWQ and AutoRound is "auto": gptq
  // when every layer fits it, otherwise rows for the whole model.
  std::string layout =
      !r.layout.empty()
          ? r.layout
          : (r.method == "nf4" || r.method == "hqq" ? "rows" : "auto");
  bool roundZeros = false;
  for (const auto &[k, v] : r.options)
    roundZeros |= k == "round-zeros" && v == "true";
  std::string scaleDType =
      !r.scaleDType.empty()
          ? r.scaleDType
          : (r.method == "hqq" || r.method == "nf4" ? "f32" : "f16");
  if (layout == "auto" && scaleDType != "f16") {
    layout = "rows";
    res.layoutNote = "scale_dtype " + scaleDType +
                     " is stored in the rows "
                     "layout";
  }
  if (layout == "gptq" && scaleDType != "f16")
    res.errors.push_back("the gptq layout stores f16 scales; scale_dtype " +
                         scaleDType + " needs layout rows");
  if (layout == "gptq" && r.method == "hqq" && !roundZeros)
    res.errors.push_back("HQQ's fractional zero points need layout rows, or "
                         "options.round_zeros = true for the gptq layout");

  // Every linear of every block, as the passes will see them.
  int64_t maxK = 0, maxNK = 0;
  for (int64_t i = 0; i < c.nLayers; ++i) {
    std::vector<const mlir::qc::LayerOverride *> none;
    const quant::QuantConfig *blockCfg = nullptr;
    quant::QuantConfig first;
    bool blockSkips = false, blockHas = false;
    for (quant::BlockLinear l : quant::kAllBlockLinears) {
      PlannedLayer p;
      p.name =
          "model.layers." + std::to_string(i) + "." + quant::blockLinearName(l);
      quant::blockLinearShape(c, l, p.N, p.K);
      quant::QuantConfig cfg;
      cfg.bits = r.bits;
      cfg.groupSize = r.groupSize;
      cfg.sym = r.sym;
      if (!mlir::qc::resolveLayerConfig(overrides, p.name, cfg)) {
        blockSkips = true;
        continue;
      }
      p.bits = cfg.bits;
      p.groupSize = cfg.groupSize;
      p.sym = cfg.sym;
      if (blockHas &&
          (cfg.bits != first.bits || cfg.groupSize != first.groupSize ||
           cfg.sym != first.sym) &&
          (r.method == "awq" || r.method == "autoround"))
        res.errors.push_back(p.name + ": " + r.method +
                             " needs one configuration per decoder block "
                             "(override whole blocks)");
      if (!blockHas)
        first = cfg;
      blockHas = true;
      (void)blockCfg;
      int64_t G = p.groupSize == -1 ? p.K : p.groupSize;
      if (p.K % G != 0)
        res.raggedGroups.push_back(p.name + " (K = " + std::to_string(p.K) +
                                   ", group size " + std::to_string(G) + ")");
      if (r.method == "nf4" && !quant::isValidNF4BlockSize(p.groupSize))
        res.errors.push_back(p.name +
                             ": NF4 block size must be a power of "
                             "two from 32 to 4096, got " +
                             std::to_string(p.groupSize));
      if (r.method == "nf4" && (p.bits != 4 || !p.sym))
        res.errors.push_back(p.name + ": NF4 is 4-bit symmetric; overrides "
                                      "may only change the block size");
      if (r.method == "hqq" && p.sym)
        res.errors.push_back(p.name + ": HQQ is asymmetric");
      if (layout != "rows") {
        quant::QuantConfig fit = cfg;
        fit.scaleDType = quant::ScaleDType::F16;
        if (Status s = quant::checkGPTQLayoutFits(p.N, p.K, fit); !s) {
          if (layout == "gptq")
            res.errors.push_back(p.name + ": " + s.message() +
                                 "; use layout rows (or auto)");
          else if (res.layoutNote.empty())
            res.layoutNote = p.name + ": " + s.message();
        }
      }
      maxK = std::max(maxK, p.K);
      maxNK = std::max(maxNK, p.N * p.K);
      res.layers.push_back(p);
    }
    if (blockSkips && blockHas && r.method == "autoround")
      res.errors.push_back("decoder block " + std::to_string(i) +
                           ": AutoRound reconstructs whole blocks; skip all "
                           "seven linears of a block or none");
  }
  if (r.requireDivisibleGroups)
    for (const std::string &l : res.raggedGroups)
      res.errors.push_back(l + ": the group size does not divide K "
                               "(require_divisible_groups)");

  // Finiteness of every float weight read so far (a lazily opened tensor
  // is checked when the pass reads it, and the error names it).
  for (const auto &[name, t] : weights.tensors)
    for (size_t i = 0; i < t.data.size(); ++i)
      if (!std::isfinite(t.data[i])) {
        res.errors.push_back("tensor " + name + " holds a non-finite value (" +
                             (std::isnan(t.data[i]) ? "NaN" : "infinity") +
                             ") at flat index " + std::to_string(i));
        break;
      }

  // Memory: the fp32 model, the packed overlay, the trace (one K x K
  // Hessian per distinct linear input plus the sampled block inputs), and
  // the method's working set.
  // A calibration-free method on a lazily opened checkpoint holds one
  // layer at a time (rewriteQuantizedLayers), and the packed
  // tensors go to a spill file.
  double D = c.dim, F = c.hiddenDim, qN = c.nHeads * c.headDim,
         kvN = c.nKVHeads * c.headDim;
  double model = 0.0;
  for (const auto &[name, t] : weights.tensors)
    model += 4.0 * t.numElements();
  bool stats = recipeNeedsLayerStatistics(r);
  if (weights.hasLazyTensors() && !stats) {
    // Read a layer (a block, for the block-wise methods: its weights, the
    // original kept for comparison and the dequantized copy) at a time.
    double block = 4.0 * (D * qN * 2 + 2 * D * kvN + 3 * D * F);
    model = methodNeedsCalibration(r.method) ? 3.0 * block : 4.0 * maxNK;
  }
  double calib = 0.0, work = 8.0 * maxNK;
  double tokens = static_cast<double>(r.samples) * (r.window + 1);
  if (methodNeedsCalibration(r.method)) {
    // Per-layer statistics only for the methods that read them; the
    // block-wise ones get the sampled sequences alone.
    calib = (stats ? c.nLayers * 4.0 * (2 * D * D + qN * qN + F * F) : 0.0) +
            4.0 * tokens * D;
    // Two activation streams plus one block's captured intermediates.
    work += 4.0 * tokens * (3 * D + 2 * (D + qN + 3 * F));
    work += 16.0 * maxK * maxK;
  }
  res.peakBytes = model * 1.25 + calib + work;
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  res.physicalBytes = pages > 0 && page > 0 ? double(pages) * page : 0.0;
  if (res.physicalBytes > 0 && res.peakBytes > res.physicalBytes)
    res.errors.push_back("estimated peak memory " +
                         std::to_string(res.peakBytes / 1048576.0) +
                         " MiB exceeds this machine's " +
                         std::to_string(res.physicalBytes / 1048576.0) +
                         " MiB (lower calibration.samples or window)");

  if (res.errors.empty())
    return Status::ok();
  std::string msg = "the recipe does not fit this model (" +
                    std::to_string(res.errors.size()) + " problem" +
                    (res.errors.size() > 1 ? "s" : "") + "):";
  for (const std::string &e : res.errors)
    msg += "\n  " + e;
  return Status::error(msg);
}
