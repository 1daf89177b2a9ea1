//===- quant-import.cpp - Import a model into MLIR, export checkpoints ----===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
//   quant-import MODEL [-o model.mlir]
//       prints the model-level IR (`llm` dialect); parameters stay in the
//       checkpoint and are referenced by name.
//   quant-import MODEL --export-hf DIR [--dtype f32|f16|bf16]
//                [--max-shard-bytes N]
//       writes any importable model as a Hugging Face checkpoint
//       (config.json + safetensors, sharded with an index when asked);
//       llama2.c's interleaved RoPE rows are permuted to rotate_half.
//   quant-import QUANTIZED.mlir --export-gptq DIR [--gptq-format gptq|gptq_v2]
//       writes a quantized module (every linear a wq.linear) as a GPTQ
//       checkpoint vLLM and transformers load (../shared/docs/ALGORITHMS.md
//       §8.1); same RoPE permutation.
// MODEL is a llama2.c .bin, a Hugging Face checkpoint folder (float, GPTQ
// or AWQ), or a .mlir.
//
//===----------------------------------------------------------------------===//

#include "qc/Import/LoadModel.h"
#include "qc/Import/QuantizedCheckpoint.h"
#include "qc/runtime/HFCheckpoint.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/raw_ostream.h"

using namespace llvm;
using ::qc::Status;

static cl::OptionCategory category("quant-import options");
static cl::opt<std::string> modelPath(cl::Positional, cl::Required,
                                      cl::desc("<model: .bin | HF folder | .mlir>"),
                                      cl::cat(category));
static cl::opt<std::string> outputPath("o", cl::desc("Write the IR here (default stdout)"),
                                       cl::value_desc("file"), cl::init("-"),
                                       cl::cat(category));
static cl::opt<std::string> exportHF("export-hf",
                                     cl::desc("Write a Hugging Face checkpoint into this folder (default: none)"),
                                     cl::value_desc("dir"), cl::cat(category));
static cl::opt<std::string> exportGPTQ(
    "export-gptq",
    cl::desc("Write a quantized model as a GPTQ checkpoint into this folder (default: none)"),
    cl::value_desc("dir"), cl::cat(category));
static cl::opt<std::string> gptqFormat(
    "gptq-format",
    cl::desc("checkpoint_format for --export-gptq: gptq (v1, zero points "
             "stored minus one; default) or gptq_v2"),
    cl::init("gptq"), cl::cat(category));
static cl::opt<std::string> dtype("dtype", cl::desc("Stored dtype for --export-hf: f32, f16 or bf16 (default: f32)"),
                                  cl::init("f32"), cl::cat(category));
static cl::opt<uint64_t> maxShardBytes("max-shard-bytes",
                                       cl::desc("Shard --export-hf output above this size (0 = one file) (default: 0)"),
                                       cl::init(0), cl::cat(category));

/// Printed after the options by --help.
static cl::extrahelp examples(
    "EXAMPLES:\n"
    "  # A llama2.c / GGUF / Hugging Face model as MLIR:\n"
    "  quant-import stories260K.bin -o model.mlir\n"
    "  # A quantized model (gptq layout) as a GPTQ checkpoint folder:\n"
    "  quant-import model.q.mlir --export-gptq gptq-out/\n"
    "  # A float model as a Hugging Face checkpoint in bf16:\n"
    "  quant-import model.mlir --export-hf hf-out/ --dtype bf16\n");

static int fail(const Status &s) {
  errs() << "quant-import: error: " << s.message() << "\n";
  return 1;
}

int main(int argc, char **argv) {
  InitLLVM init(argc, argv);
  cl::HideUnrelatedOptions(category);
  cl::ParseCommandLineOptions(argc, argv,
                              "quant-import: model import into MLIR and "
                              "checkpoint export\n");
  mlir::MLIRContext ctx;
  mlir::OwningOpRef<mlir::ModuleOp> module;
  ::qc::ModelWeights weights;
  if (Status s = mlir::qc::openModel(ctx, modelPath, module, weights); !s)
    return fail(s);

  if (!exportHF.empty() && !exportGPTQ.empty())
    return fail(Status::error("--export-hf and --export-gptq are exclusive"));
  bool quantized = false;
  module->walk([&](mlir::Operation *op) {
    quantized |= op->getName().getStringRef() == "wq.linear";
  });

  if (!exportGPTQ.empty()) {
    mlir::qc::GPTQExportOptions opts;
    if (gptqFormat == "gptq")
      opts.format = ::qc::quant::GPTQFormat::V1;
    else if (gptqFormat == "gptq_v2")
      opts.format = ::qc::quant::GPTQFormat::V2;
    else
      return fail(Status::error("--gptq-format must be gptq or gptq_v2, got '" +
                                gptqFormat + "'"));
    // A Hugging Face source's tokenizer travels with the checkpoint; a
    // llama2.c tokenizer.bin is not a format transformers reads.
    mlir::qc::CheckpointRef ref;
    if (mlir::qc::getCheckpointRef(*module, ref) && ref.format == "hf")
      opts.copyFiles = mlir::qc::hfTokenizerFiles(ref.path);
    mlir::qc::GPTQExportSummary sum;
    if (Status s = mlir::qc::exportGPTQCheckpoint(*module, weights, exportGPTQ,
                                                  opts, &sum);
        !s) {
      if (s.message().find("cannot be stored in GPTQ v1") != std::string::npos)
        return fail(Status::error(s.message() +
                                  " (--gptq-format gptq_v2 stores it)"));
      return fail(s);
    }
    outs() << "wrote GPTQ checkpoint " << exportGPTQ << " ("
           << sum.quantizedLayers << " quantized layers, " << sum.bits
           << " bits, group size " << sum.groupSize
           << (sum.sym ? ", sym" : ", asym")
           << (sum.descAct ? ", desc_act" : "") << ", " << gptqFormat;
    if (sum.paddedLayers)
      outs() << ", " << sum.paddedLayers << " layers with K padded";
    if (!opts.copyFiles.empty())
      outs() << ", " << opts.copyFiles.size() << " tokenizer files copied";
    outs() << ")\n";
    return 0;
  }

  if (!exportHF.empty()) {
    // The float tensors of a quantized module are the unquantized originals
    // (or absent); writing them would silently drop the quantization.
    if (quantized)
      return fail(Status::error(
          modelPath + ": the model is quantized (wq.linear layers); "
                      "--export-hf writes float models, use --export-gptq"));
    ::qc::DType type;
    if (dtype == "f32")
      type = ::qc::DType::F32;
    else if (dtype == "f16")
      type = ::qc::DType::F16;
    else if (dtype == "bf16")
      type = ::qc::DType::BF16;
    else
      return fail(Status::error("--dtype must be f32, f16 or bf16, got '" +
                                dtype + "'"));
    if (Status s = ::qc::writeHFCheckpoint(exportHF, weights, type, maxShardBytes);
        !s)
      return fail(s);
    outs() << "wrote Hugging Face checkpoint " << exportHF << " ("
           << weights.tensors.size() << " tensors, " << dtype << ")\n";
    return 0;
  }

  std::string err;
  auto out = mlir::openOutputFile(outputPath, &err);
  if (!out)
    return fail(Status::error(outputPath + ": " + err));
  module->print(out->os());
  out->os() << "\n";
  out->keep();
  return 0;
}
