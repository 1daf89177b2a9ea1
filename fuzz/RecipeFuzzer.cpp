//===- RecipeFuzzer.cpp - libFuzzer target for the recipe parser ----------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Feeds arbitrary bytes to qc::parseRecipe (lib/Driver/Recipe.cpp), the
// public entry point that quant-compile calls, so the target survives a
// change of the JSON library underneath. A rejected recipe must come with a
// message naming the file. An accepted one is turned into its pass pipeline
// and validated against a small fixed model (validateRecipe: overrides'
// regexes resolved on every layer, format rules, memory estimate), which
// must not crash and must report errors exactly when it fails.
//
//===----------------------------------------------------------------------===//

#include "MemFile.h"

#include "qc/Driver/Recipe.h"

#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

void check(bool ok) {
  if (!ok)
    __builtin_trap();
}

/// A LLaMA model with two layers of width 64 (K = 64 and 96), enough for
/// the group-size, layout and override rules to bite.
const qc::ModelWeights &smallModel() {
  static const qc::ModelWeights weights = [] {
    qc::ModelWeights w;
    qc::ModelConfig &c = w.config;
    c.dim = 64;
    c.hiddenDim = 96;
    c.nLayers = 2;
    c.nHeads = 4;
    c.nKVHeads = 2;
    c.headDim = 16;
    c.vocabSize = 32;
    c.maxSeqLen = 128;
    for (const qc::TensorSpec &spec : qc::modelTensorSpecs(c)) {
      qc::HostTensor t;
      t.shape = spec.shape;
      t.data.resize(static_cast<size_t>(t.numElements()));
      for (size_t i = 0; i < t.data.size(); ++i)
        t.data[i] = static_cast<float>((i * 37) % 101) / 50.0f - 1.0f;
      w.tensors[spec.name] = std::move(t);
    }
    return w;
  }();
  return weights;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  qc::fuzz::MemFile file(data, size);
  qc::Recipe recipe;
  qc::Status st = qc::parseRecipe(file.path, recipe);
  if (std::getenv("QC_FUZZ_VERBOSE") && st)
    std::fprintf(stderr, "accepted\n");
  if (!st) {
    // QC_FUZZ_VERBOSE=1 prints why an input was rejected (to check seeds).
    if (std::getenv("QC_FUZZ_VERBOSE"))
      std::fprintf(stderr, "rejected: %s\n", st.message().c_str());
    check(st.message().find(file.path) != std::string::npos);
    return 0;
  }
  check(!recipe.method.empty());
  std::string pipeline = qc::recipePipeline(recipe, "t.trace", "w.safetensors");
  check(pipeline.find(recipe.method) != std::string::npos);
  qc::ValidationResult result;
  qc::Status valid = qc::validateRecipe(recipe, smallModel(), result);
  check(valid.isOk() == result.errors.empty());
  return 0;
}
