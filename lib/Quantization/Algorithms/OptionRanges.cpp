//===- OptionRanges.cpp - Types and valid ranges of method options --------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// The bounds are generous (far above any sensible value) but finite: their
// purpose is to turn a typo or an overflow into an error before a long run,
// never to second-guess a deliberate choice. The defaults and meanings are
// in Passes.td and docs/RECIPES.md.
//
//===----------------------------------------------------------------------===//

#include "qc/Quantization/Algorithms/OptionRanges.h"

#include <cmath>
#include <limits>
#include <map>
#include <sstream>

using namespace qc;
using namespace qc::quant;

namespace {

constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
constexpr double kRealMax = std::numeric_limits<double>::max();

OptionSpec intSpec(const std::string &name, int64_t lo, int64_t hi) {
  OptionSpec s;
  s.name = name;
  s.kind = OptionKind::Int;
  s.intMin = lo;
  s.intMax = hi;
  return s;
}

OptionSpec choiceSpec(const std::string &name, std::vector<int64_t> values) {
  OptionSpec s;
  s.name = name;
  s.kind = OptionKind::Int;
  s.choices = std::move(values);
  return s;
}

OptionSpec realSpec(const std::string &name, double lo, bool loOpen, double hi,
                    bool hiOpen) {
  OptionSpec s;
  s.name = name;
  s.kind = OptionKind::Real;
  s.realMin = lo;
  s.realMinOpen = loOpen;
  s.realMax = hi;
  s.realMaxOpen = hiOpen;
  return s;
}

OptionSpec boolSpec(const std::string &name) {
  OptionSpec s;
  s.name = name;
  s.kind = OptionKind::Bool;
  return s;
}

/// bits and group-size, shared by every method but NF4.
std::vector<OptionSpec> gridOptions() {
  OptionSpec groupSize =
      intSpec("group-size", 1, std::numeric_limits<int32_t>::max());
  groupSize.minusOneValid = true;
  return {choiceSpec("bits", {2, 3, 4, 8}), groupSize, boolSpec("sym")};
}

using Table = std::map<std::string, std::vector<OptionSpec>>;

const Table &table() {
  static const Table t = [] {
    Table t;
    for (const char *m : {"rtn", "gptq", "awq", "hqq", "autoround"})
      t[m] = gridOptions();
    t["nf4"] = {
        choiceSpec("block-size", {32, 64, 128, 256, 512, 1024, 2048, 4096}),
        boolSpec("double-quant")};
    auto &gptq = t["gptq"];
    gptq.push_back(realSpec("damp-percent", 0.0, false, 1.0, false));
    gptq.push_back(intSpec("block-size", 1, int64_t(1) << 20));
    gptq.push_back(boolSpec("act-order"));
    gptq.push_back(boolSpec("static-groups"));
    gptq.push_back(boolSpec("sequential"));
    auto &awq = t["awq"];
    awq.push_back(intSpec("n-grid", 1, 10000));
    awq.push_back(boolSpec("duo-scaling"));
    awq.push_back(boolSpec("clip"));
    awq.push_back(realSpec("max-shrink", 0.0, false, 1.0, true));
    auto &hqq = t["hqq"];
    hqq.push_back(realSpec("lp-norm", 0.0, true, 1.0, false));
    hqq.push_back(realSpec("beta", 0.0, true, kRealMax, false));
    hqq.push_back(realSpec("kappa", 1.0, false, kRealMax, false));
    hqq.push_back(intSpec("iters", 0, 100000));
    hqq.push_back(boolSpec("round-zeros"));
    auto &ar = t["autoround"];
    ar.push_back(intSpec("iters", 0, 100000));
    ar.push_back(realSpec("lr", 0.0, false, kRealMax, false));
    ar.push_back(realSpec("minmax-lr", 0.0, false, kRealMax, false));
    ar.push_back(intSpec("batch-size", 1, 65536));
    ar.push_back(boolSpec("minmax-tuning"));
    ar.push_back(intSpec("seed", 0, kInt64Max));
    t["calibration"] = {intSpec("window", 1, int64_t(1) << 20),
                        intSpec("samples", 0, int64_t(1) << 20),
                        intSpec("max-tokens", 0, kInt64Max)};
    // --num-threads of quant-compile and quant-opt: the process pool's size
    // (ThreadPool.h caps it at 256).
    t["compile"] = {intSpec("seed", 0, kInt64Max),
                    intSpec("num-threads", 0, 256)};
    // quant-run: the text protocol, generation and the JIT. The caps on
    // lengths are far above any model's context; they stop an overflowing
    // value (--ctx 2^40) before it becomes an allocation size.
    t["run"] = {intSpec("max-tokens", 0, kInt64Max),
                intSpec("ctx", 0, int64_t(1) << 24),
                intSpec("skip-tokens", 0, kInt64Max),
                intSpec("window", 1, int64_t(1) << 24),
                intSpec("generate", 0, int64_t(1) << 24),
                realSpec("temperature", 0.0, false, kRealMax, false),
                realSpec("top-p", 0.0, true, 1.0, false),
                intSpec("num-threads", 0, 256),
                intSpec("jit-opt-level", 0, 3)};
    // quant-kernelgen: the layer grid and the launch heuristics' SM count.
    OptionSpec kgGroup =
        intSpec("group-size", 1, std::numeric_limits<int32_t>::max());
    kgGroup.minusOneValid = true;
    t["kernelgen"] = {choiceSpec("bits", {2, 3, 4, 8}), kgGroup,
                      intSpec("num-sms", 1, 4096)};
    return t;
  }();
  return t;
}

std::string realText(double v) {
  if (v == kRealMax)
    return "any finite value";
  std::ostringstream os;
  os.precision(17);
  os << v;
  return os.str();
}

} // namespace

std::string OptionSpec::describe() const {
  switch (kind) {
  case OptionKind::Bool:
    return "true or false";
  case OptionKind::Int: {
    if (!choices.empty()) {
      std::string s;
      for (size_t i = 0; i < choices.size(); ++i)
        s += (i == 0                    ? ""
              : i + 1 == choices.size() ? " or "
                                        : ", ") +
             std::to_string(choices[i]);
      return s;
    }
    std::string s = "an integer from " + std::to_string(intMin) + " to " +
                    std::to_string(intMax);
    return minusOneValid ? "-1 (one group per row) or " + s : s;
  }
  case OptionKind::Real:
    if (realMax == kRealMax)
      return std::string("a finite number ") + (realMinOpen ? "> " : ">= ") +
             realText(realMin);
    return std::string("a number in ") + (realMinOpen ? "(" : "[") +
           realText(realMin) + ", " + realText(realMax) +
           (realMaxOpen ? ")" : "]");
  }
  return "";
}

const OptionSpec *qc::quant::findOptionSpec(const std::string &method,
                                            const std::string &name) {
  auto it = table().find(method);
  if (it == table().end())
    return nullptr;
  for (const OptionSpec &s : it->second)
    if (s.name == name)
      return &s;
  return nullptr;
}

Status qc::quant::checkIntOption(const OptionSpec &spec, int64_t value) {
  bool ok;
  if (spec.kind != OptionKind::Int)
    ok = false;
  else if (!spec.choices.empty()) {
    ok = false;
    for (int64_t c : spec.choices)
      ok |= c == value;
  } else {
    ok = (value >= spec.intMin && value <= spec.intMax) ||
         (spec.minusOneValid && value == -1);
  }
  if (ok)
    return Status::ok();
  return Status::error(spec.name + " = " + std::to_string(value) +
                       " is out of range (valid: " + spec.describe() + ")");
}

Status qc::quant::checkRealOption(const OptionSpec &spec, double value) {
  bool ok = spec.kind == OptionKind::Real && std::isfinite(value) &&
            (spec.realMinOpen ? value > spec.realMin : value >= spec.realMin) &&
            (spec.realMaxOpen ? value < spec.realMax : value <= spec.realMax);
  if (ok)
    return Status::ok();
  std::ostringstream os;
  os.precision(17);
  os << value;
  return Status::error(spec.name + " = " + os.str() +
                       " is out of range (valid: " + spec.describe() + ")");
}

Status qc::quant::checkIntOption(const std::string &method,
                                 const std::string &name, int64_t value) {
  const OptionSpec *spec = findOptionSpec(method, name);
  return spec ? checkIntOption(*spec, value) : Status::ok();
}

Status qc::quant::checkRealOption(const std::string &method,
                                  const std::string &name, double value) {
  const OptionSpec *spec = findOptionSpec(method, name);
  return spec ? checkRealOption(*spec, value) : Status::ok();
}
