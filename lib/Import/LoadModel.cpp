//===- LoadModel.cpp - Open a model given on the command line -------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//

#include "qc/Import/LoadModel.h"

#include "qc/runtime/OutputSafety.h"

#include "LLM/IR/LLMOps.h"
#include "qc/Import/QuantizedCheckpoint.h"
#include "qc/InitAllDialects.h"
#include "qc/runtime/GgufModel.h"
#include "qc/runtime/HFCheckpoint.h"
#include "qc/runtime/Llama2C.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/Parser/Parser.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;
using namespace mlir::qc;
using ::qc::Status;

Status mlir::qc::loadCheckpoint(const CheckpointRef &ref,
                                ::qc::ModelWeights &weights,
                                const ::qc::LoadOptions &options) {
  if (ref.format == "llama2c")
    return ::qc::loadLlama2C(ref.path, weights, options);
  if (ref.format == "gguf")
    return ::qc::loadGgufModel(ref.path, weights, options);
  if (ref.format == "hf") {
    // A GPTQ/AWQ checkpoint's quantized layers come back as packed tensors
    // in the layouts the IR built by openModel references.
    bool quantized = false;
    QC_RETURN_IF_ERROR(isQuantizedHFCheckpoint(ref.path, quantized));
    if (quantized) {
      std::vector<QuantizedLayerInfo> layers;
      return loadQuantizedHFCheckpoint(ref.path, weights, layers);
    }
    return ::qc::loadHFCheckpoint(ref.path, weights, options);
  }
  return Status::error(ref.path + ": unknown checkpoint format '" + ref.format +
                       "' (expected 'llama2c', 'gguf' or 'hf')");
}

Status mlir::qc::loadModuleWeights(ModuleOp module, ::qc::ModelWeights &weights,
                                   const ::qc::LoadOptions &options) {
  CheckpointRef ref;
  if (!getCheckpointRef(module, ref))
    return Status::error("the module has no llm.checkpoint / "
                         "llm.checkpoint_format attributes naming its "
                         "weights; import it with quant-import");
  QC_RETURN_IF_ERROR(loadCheckpoint(ref, weights, options));
  // Tensors written by quantization passes, beside the checkpoint.
  if (auto overlay = module->getAttrOfType<StringAttr>("llm.weights_overlay"))
    QC_RETURN_IF_ERROR(::qc::loadSafetensorsOverlay(
        ::qc::readPathFor(overlay.str()), weights));
  return Status::ok();
}

Status mlir::qc::materializeModuleParams(ModuleOp module,
                                         ::qc::ModelWeights &weights) {
  Status status = Status::ok();
  module.walk([&](llm::ParamOp param) {
    status = weights.materialize(param.getName().str());
    return status ? WalkResult::advance() : WalkResult::interrupt();
  });
  return status;
}

Status mlir::qc::openModel(MLIRContext &ctx, const std::string &path,
                           OwningOpRef<ModuleOp> &module,
                           ::qc::ModelWeights &weights,
                           const ::qc::LoadOptions &options) {
  if (!llvm::sys::fs::exists(path))
    return Status::error(path + ": no such file or directory");
  if (llvm::sys::path::extension(path) == ".mlir") {
    DialectRegistry registry;
    registerAllQCDialects(registry);
    ctx.appendDialectRegistry(registry);
    std::string diagText;
    ScopedDiagnosticHandler handler(&ctx, [&](Diagnostic &diag) {
      llvm::raw_string_ostream os(diagText);
      os << diag.getLocation() << ": " << diag << "\n";
      return success();
    });
    module = parseSourceFile<ModuleOp>(path, &ctx);
    if (!module)
      return Status::error(path + ": cannot parse the model IR:\n" + diagText);
    return loadModuleWeights(*module, weights, options).withContext(path);
  }
  CheckpointRef ref;
  // Recorded absolute so that the IR can be used from any directory.
  SmallString<256> absolute(path);
  llvm::sys::fs::make_absolute(absolute);
  llvm::sys::path::remove_dots(absolute, /*remove_dot_dot=*/true);
  ref.path = absolute.str().str();
  // A GGUF file is recognised by its magic, not its name.
  ref.format = llvm::sys::fs::is_directory(path) ? "hf"
               : ::qc::isGgufFile(path)          ? "gguf"
                                                 : "llama2c";
  bool quantized = false;
  if (ref.format == "hf")
    QC_RETURN_IF_ERROR(isQuantizedHFCheckpoint(ref.path, quantized));
  if (!quantized) {
    QC_RETURN_IF_ERROR(loadCheckpoint(ref, weights, options));
    module = buildModelModule(ctx, weights.config, ref);
    return Status::ok();
  }
  std::vector<QuantizedLayerInfo> layers;
  QC_RETURN_IF_ERROR(loadQuantizedHFCheckpoint(ref.path, weights, layers));
  DialectRegistry registry;
  registerAllQCDialects(registry);
  ctx.appendDialectRegistry(registry);
  ctx.loadAllAvailableDialects();
  module = buildModelModule(ctx, weights.config, ref);
  return applyQuantizedLayers(*module, layers).withContext(path);
}
