//===- ModelBuilder.h - Build `llm` IR for a LLaMA-family model -*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//

#ifndef QC_IMPORT_MODELBUILDER_H
#define QC_IMPORT_MODELBUILDER_H

#include "qc/runtime/Model.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

#include <string>

namespace mlir::qc {

/// Where the parameters of an imported model live; recorded on the module
/// (`llm.checkpoint`, `llm.checkpoint_format`) so that tools given only the
/// IR can bind the weights again.
struct CheckpointRef {
  /// "llama2c", "gguf" or "hf".
  std::string format;
  /// The .bin file or the Hugging Face checkpoint folder.
  std::string path;
};

/// What buildModelModule emits besides the logits.
struct ModelBuildOptions {
  /// Also return the residual stream after every decoder layer and the
  /// final norm's output, as results 1..nLayers and nLayers + 1 (each
  /// [T, dim]); for comparing hidden states with a reference
  /// implementation (transformers' output_hidden_states).
  bool hiddenStates = false;
};

/// Builds a module with one function
///   func.func @forward(%tokens: tensor<?xi32>) -> tensor<?xVxf32>
/// computing the logits of every position of a token sequence with `llm`
/// ops. Parameters are `llm.param` references by Hugging Face name; every op
/// carries a NameLoc naming its layer (e.g. "model.layers.3.mlp.down_proj").
/// The module also records the configuration as `llm.config`.
OwningOpRef<ModuleOp> buildModelModule(MLIRContext &ctx,
                                       const ::qc::ModelConfig &cfg,
                                       const CheckpointRef &ckpt,
                                       const ModelBuildOptions &options = {});

/// Reads `llm.checkpoint` / `llm.checkpoint_format` back from a module.
/// Returns false if the module does not carry them.
bool getCheckpointRef(ModuleOp module, CheckpointRef &out);

} // namespace mlir::qc

#endif // QC_IMPORT_MODELBUILDER_H
