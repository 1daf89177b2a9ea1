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
// MODEL is a llama2.c .bin, a Hugging Face checkpoint folder, or a .mlir.
//
//===----------------------------------------------------------------------===//

#include "qc/Import/LoadModel.h"
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
                                     cl::desc("Write a Hugging Face checkpoint into this folder"),
                                     cl::value_desc("dir"), cl::cat(category));
static cl::opt<std::string> dtype("dtype", cl::desc("Stored dtype for --export-hf: f32, f16 or bf16"),
                                  cl::init("f32"), cl::cat(category));
static cl::opt<uint64_t> maxShardBytes("max-shard-bytes",
                                       cl::desc("Shard --export-hf output above this size (0 = one file)"),
                                       cl::init(0), cl::cat(category));

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

  if (!exportHF.empty()) {
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
