//===- LayerOverrides.cpp - Per-layer configuration overrides -------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Parsing and resolution of per-layer overrides, shared by the quantization
// passes and quant-compile's recipes. Kept apart from the MLIR rewriting
// code (it needs only LLVM Support) so that the recipe parser and its fuzz
// target (fuzz/RecipeFuzzer.cpp) link without the dialects.
//
//===----------------------------------------------------------------------===//

#include "qc/Quantization/LayerOverrides.h"
#include "qc/Quantization/Algorithms/OptionRanges.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Regex.h"

using ::qc::Status;

Status mlir::qc::parseLayerOverrides(const std::vector<std::string> &entries,
                                     std::vector<LayerOverride> &out) {
  out.clear();
  for (const std::string &entry : entries) {
    llvm::SmallVector<llvm::StringRef> parts;
    llvm::StringRef(entry).split(parts, ':');
    auto bad = [&](const std::string &why) {
      return Status::error("override '" + entry + "': " + why +
                           " (expected REGEX:skip or "
                           "REGEX:key=value[:key=value] with keys bits, "
                           "group-size, sym)");
    };
    if (parts.size() < 2 || parts[0].empty())
      return bad("missing the layer regex or the settings");
    LayerOverride o;
    o.pattern = parts[0].str();
    std::string regexError;
    if (!llvm::Regex(o.pattern).isValid(regexError))
      return bad("invalid regex: " + regexError);
    for (llvm::StringRef p : llvm::ArrayRef(parts).drop_front()) {
      auto [key, value] = p.split('=');
      key = key.trim();
      value = value.trim();
      int64_t n = 0;
      if (key == "skip" && value.empty()) {
        o.skip = true;
      } else if (key == "bits") {
        if (value.getAsInteger(10, n) || (n != 2 && n != 3 && n != 4 && n != 8))
          return bad("bits must be 2, 3, 4 or 8");
        o.bits = static_cast<int>(n);
      } else if (key == "group-size" || key == "group_size") {
        if (value.getAsInteger(10, n) ||
            !::qc::quant::checkIntOption("rtn", "group-size", n))
          return bad("group-size must be -1 or an integer from 1 to "
                     "2147483647");
        o.groupSize = n;
      } else if (key == "sym") {
        if (value != "true" && value != "false")
          return bad("sym must be true or false");
        o.sym = value == "true";
      } else {
        return bad("unknown setting '" + p.str() + "'");
      }
    }
    out.push_back(std::move(o));
  }
  return Status::ok();
}

bool mlir::qc::resolveLayerConfig(const std::vector<LayerOverride> &overrides,
                                  const std::string &layer,
                                  ::qc::quant::QuantConfig &cfg) {
  bool skip = false;
  for (const LayerOverride &o : overrides) {
    if (!llvm::Regex(o.pattern).match(layer))
      continue;
    skip = o.skip;
    cfg.bits = o.bits.value_or(cfg.bits);
    cfg.groupSize = o.groupSize.value_or(cfg.groupSize);
    cfg.sym = o.sym.value_or(cfg.sym);
  }
  return !skip;
}
