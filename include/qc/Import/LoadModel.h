//===- LoadModel.h - Open a model given on the command line -----*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//

#ifndef QC_IMPORT_LOADMODEL_H
#define QC_IMPORT_LOADMODEL_H

#include "qc/Import/ModelBuilder.h"
#include "qc/runtime/Model.h"
#include "qc/runtime/Status.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

#include <string>

namespace mlir::qc {

/// Loads the weights of the checkpoint `ref` (llama2.c file or Hugging Face
/// folder; a quantized GPTQ/AWQ folder gives its packed tensors as
/// loadQuantizedHFCheckpoint repacks them). `options.lazy` opens the float
/// tensors of a Hugging Face folder without reading them (LoadOptions).
::qc::Status loadCheckpoint(const CheckpointRef &ref,
                            ::qc::ModelWeights &weights,
                            const ::qc::LoadOptions &options = {});

/// Loads every parameter `module` refers to: its checkpoint
/// (`llm.checkpoint`, `llm.checkpoint_format`) and, if the module carries
/// one, the overlay a quantization pass wrote (`llm.weights_overlay`).
::qc::Status loadModuleWeights(ModuleOp module, ::qc::ModelWeights &weights,
                               const ::qc::LoadOptions &options = {});

/// Reads into memory the tensors `module` computes with (named by its
/// `llm.param` ops) that `weights` holds lazily opened; the others stay
/// unread. With openModel(..., lazy) this is what running a model needs: a
/// quantized model's packed layers come from its overlay, so of the
/// original checkpoint only the float tensors still in use (embeddings,
/// norms, unquantized layers) are read, not the whole model in fp32.
::qc::Status materializeModuleParams(ModuleOp module,
                                     ::qc::ModelWeights &weights);

/// Opens what a user named: a llama2.c `.bin` file, a Hugging Face
/// checkpoint folder (config.json + safetensors; a GPTQ/AWQ one is built
/// with wq.linear layers, see QuantizedCheckpoint.h), or a `.mlir` file holding
/// model IR whose `llm.checkpoint` attribute names its weights. On success
/// `module` holds the model IR (built by buildModelModule unless it came from
/// the .mlir file) and `weights` its parameters (lazily opened where
/// `options.lazy` allows: see LoadOptions).
::qc::Status openModel(MLIRContext &ctx, const std::string &path,
                       OwningOpRef<ModuleOp> &module,
                       ::qc::ModelWeights &weights,
                       const ::qc::LoadOptions &options = {});

} // namespace mlir::qc

#endif // QC_IMPORT_LOADMODEL_H
