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
//       The tokenizer travels with it: a Hugging Face source's tokenizer
//       files are copied, a GGUF source's embedded tokenizer is written as
//       tokenizer.json + tokenizer_config.json + special_tokens_map.json +
//       generation_config.json (a tokenizer that cannot be written exactly
//       is an error unless --skip-tokenizer is given).
//   quant-import QUANTIZED.mlir --export-gptq DIR [--gptq-format gptq|gptq_v2]
//                [--max-shard-bytes N]
//       writes a quantized module as a GPTQ checkpoint that transformers +
//       GPTQModel and vLLM load as is (../shared/docs/ALGORITHMS.md §8.1,
//       §14.6 padding); mixed per-layer configurations become GPTQModel
//       `dynamic` overrides; same RoPE permutation; tokenizer files as
//       for --export-hf.
//   quant-import QUANTIZED.mlir --export-gguf FILE [--gguf-embedding f16|q8_0]
//                [--tokenizer-json tokenizer.json]
//       writes a quantized module as a GGUF file llama.cpp runs: Q4_1 / Q4_0 /
//       Q8_0 blocks holding qc's own codes (4-bit asym / 4-bit sym / 8-bit
//       sym, group 32), llama metadata, the source's tokenizer (a GGUF
//       source's tokenizer keys, or a Hugging Face source's tokenizer.json).
//       Prints the measured change of the dequantized weights (fp16 d / m).
//   quant-import QUANTIZED.mlir --export-compressed-tensors DIR
//                [--max-shard-bytes N]
//       writes a quantized module as a compressed-tensors pack-quantized
//       checkpoint (llm-compressor / vLLM, §8.4): group or channel
//       strategy, 4 or 8 bits, one config group per scheme.
// MODEL is a llama2.c .bin, a Hugging Face checkpoint folder (float, GPTQ
// or AWQ), or a .mlir.
//
// Every DIR is written as a whole (qc/runtime/OutputSafety.h): into a
// temporary sibling folder renamed into place only when the export
// succeeded. An existing, non-empty DIR needs --force, which replaces it
// whole; a folder that holds an input of the run (the model's own folder)
// or anything but regular files is never replaced.
//
//===----------------------------------------------------------------------===//

#include "qc/Import/GgufExport.h"
#include "qc/Import/LoadModel.h"
#include "qc/Import/ModelBuilder.h"
#include "qc/Import/QuantizedCheckpoint.h"
#include "qc/runtime/HFCheckpoint.h"
#include "qc/runtime/OutputSafety.h"
#include "qc/runtime/TokenizerExport.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/raw_ostream.h"

using namespace llvm;
using ::qc::Status;

static cl::OptionCategory category("quant-import options");
static cl::opt<std::string>
    modelPath(cl::Positional, cl::Required,
              cl::desc("<model: .bin | HF folder | .mlir>"), cl::cat(category));
static cl::opt<std::string>
    outputPath("o", cl::desc("Write the IR here (default stdout)"),
               cl::value_desc("file"), cl::init("-"), cl::cat(category));
static cl::opt<std::string> exportHF(
    "export-hf",
    cl::desc(
        "Write a Hugging Face checkpoint into this folder (default: none)"),
    cl::value_desc("dir"), cl::cat(category));
static cl::opt<std::string>
    exportGPTQ("export-gptq",
               cl::desc("Write a quantized model as a GPTQ checkpoint into "
                        "this folder (default: none)"),
               cl::value_desc("dir"), cl::cat(category));
static cl::opt<std::string> gptqFormat(
    "gptq-format",
    cl::desc("checkpoint_format for --export-gptq: gptq (v1, zero points "
             "stored minus one; default) or gptq_v2"),
    cl::init("gptq"), cl::cat(category));
static cl::opt<std::string> exportGguf(
    "export-gguf",
    cl::desc("Write a quantized model as a llama.cpp GGUF file (4-bit asym "
             "g32 -> Q4_1, 4-bit sym g32 -> Q4_0, 8-bit sym g32 -> Q8_0; "
             "tokenizer from the GGUF or Hugging Face source); a folder gets "
             "model.gguf (default: none)"),
    cl::value_desc("file|dir"), cl::cat(category));
static cl::opt<std::string> exportCT(
    "export-compressed-tensors",
    cl::desc(
        "Write a quantized model as a compressed-tensors pack-quantized "
        "checkpoint (vLLM / llm-compressor) into this folder (default: none)"),
    cl::value_desc("dir"), cl::cat(category));
static cl::opt<std::string> ggufEmbedding(
    "gguf-embedding",
    cl::desc("token_embd type for --export-gguf: f16 (default) or q8_0"),
    cl::init("f16"), cl::cat(category));
static cl::opt<std::string> tokenizerJson(
    "tokenizer-json",
    cl::desc("tokenizer.json (byte-level BPE) for --export-gguf when the "
             "source carries no tokenizer (default: none)"),
    cl::value_desc("file"), cl::cat(category));
static cl::opt<std::string> dtype(
    "dtype",
    cl::desc("Stored dtype for --export-hf: f32, f16 or bf16 (default: f32)"),
    cl::init("f32"), cl::cat(category));
static cl::opt<uint64_t>
    maxShardBytes("max-shard-bytes",
                  cl::desc("Shard --export-hf / --export-gptq / "
                           "--export-compressed-tensors output above this "
                           "many bytes per file (0 = one file) (default: 0)"),
                  cl::init(0), cl::cat(category));

static cl::opt<bool>
    force("force",
          cl::desc("Replace an existing --export-hf / --export-gptq / "
                   "--export-compressed-tensors folder whole (default: off)"),
          cl::init(false), cl::cat(category));

static cl::opt<bool> skipTokenizer(
    "skip-tokenizer",
    cl::desc("Export without tokenizer files (e.g. when a GGUF tokenizer "
             "cannot be written as tokenizer.json) (default: false)"),
    cl::init(false), cl::cat(category));

/// The tokenizer files of the checkpoint `ref` names, for the exported
/// folder: a Hugging Face folder's own files (read here, so that exporting
/// into the source folder itself keeps them), a GGUF file's embedded
/// tokenizer written as Hugging Face files, nothing for llama2.c (its
/// tokenizer.bin is not part of the checkpoint and not a format
/// transformers reads).
static Status tokenizerFiles(const mlir::qc::CheckpointRef &ref,
                             std::vector<::qc::NamedFile> &out) {
  out.clear();
  if (ref.format == "gguf") {
    if (Status s = ::qc::exportGgufTokenizerFiles(ref.path, out); !s)
      return Status::error(s.message() +
                           " (--skip-tokenizer exports without it)");
    return Status::ok();
  }
  if (ref.format != "hf")
    return Status::ok();
  for (const std::string &path : mlir::qc::hfTokenizerFiles(ref.path)) {
    // A link out of the folder would publish whatever it points to.
    if (Status s = ::qc::checkInsideModelFolder(ref.path, path); !s)
      return s;
    auto buf = MemoryBuffer::getFile(path, /*IsText=*/false,
                                     /*RequiresNullTerminator=*/false);
    if (!buf)
      return Status::error(path + ": " + buf.getError().message());
    // Tokenizer files are a few MB; the cap keeps a mistaken file from being
    // read whole.
    if ((*buf)->getBufferSize() > (256u << 20))
      return Status::error(path + ": larger than 256 MB, not a tokenizer file");
    out.push_back({sys::path::filename(path).str(), (*buf)->getBuffer().str()});
  }
  return Status::ok();
}

/// Printed after the options by --help.
static cl::extrahelp examples(
    "EXAMPLES:\n"
    "  # A llama2.c / GGUF / Hugging Face model as MLIR:\n"
    "  quant-import stories260K.bin -o model.mlir\n"
    "  # A quantized model (gptq layout) as a GPTQ checkpoint folder:\n"
    "  quant-import model.q.mlir --export-gptq gptq-out/\n"
    "  # A float model as a Hugging Face checkpoint in bf16:\n"
    "  quant-import model.mlir --export-hf hf-out/ --dtype bf16\n"
    "  # A quantized model for llama.cpp:\n"
    "  quant-import model.q.mlir --export-gguf model.gguf\n");

static int fail(const Status &s) {
  errs() << "quant-import: error: " << s.message() << "\n";
  return 1;
}

int main(int argc, char **argv) {
  InitLLVM init(argc, argv);
  ::qc::ignoreFileSizeSignal();
  cl::HideUnrelatedOptions(category);
  cl::ParseCommandLineOptions(argc, argv,
                              "quant-import: model import into MLIR and "
                              "checkpoint export\n");
  // A folder export is written as a whole (a temporary sibling renamed at
  // the end); an existing folder needs --force and one that holds an input
  // is refused. Checked before any work, and again once the files the
  // model names are known.
  std::string folderOut = !exportHF.empty()     ? exportHF.getValue()
                          : !exportGPTQ.empty() ? exportGPTQ.getValue()
                                                : exportCT.getValue();
  std::string folderOption = !exportHF.empty() ? "--export-hf"
                             : !exportGPTQ.empty()
                                 ? "--export-gptq"
                                 : "--export-compressed-tensors";
  std::vector<std::string> inputs = {modelPath, tokenizerJson};
  if (!folderOut.empty())
    if (Status s =
            ::qc::checkOutputFolder(folderOut, force, inputs, folderOption);
        !s)
      return fail(s);
  mlir::MLIRContext ctx;
  mlir::OwningOpRef<mlir::ModuleOp> module;
  ::qc::ModelWeights weights;
  if (Status s = mlir::qc::openModel(ctx, modelPath, module, weights); !s)
    return fail(s);
  if (mlir::qc::CheckpointRef ref; mlir::qc::getCheckpointRef(*module, ref))
    inputs.push_back(ref.path);
  if (auto overlay =
          (*module)->getAttrOfType<mlir::StringAttr>("llm.weights_overlay"))
    inputs.push_back(overlay.str());
  if (!folderOut.empty())
    if (Status s =
            ::qc::checkOutputFolder(folderOut, force, inputs, folderOption);
        !s)
      return fail(s);

  if (!exportHF.empty() + !exportGPTQ.empty() + !exportGguf.empty() +
          !exportCT.empty() >
      1)
    return fail(Status::error("--export-hf, --export-gptq, --export-gguf and "
                              "--export-compressed-tensors are exclusive"));
  bool quantized = false;
  module->walk([&](mlir::Operation *op) {
    quantized |= op->getName().getStringRef() == "wq.linear";
  });

  if (!exportGPTQ.empty()) {
    mlir::qc::GPTQExportOptions opts;
    opts.maxShardBytes = maxShardBytes;
    if (gptqFormat == "gptq")
      opts.format = ::qc::quant::GPTQFormat::V1;
    else if (gptqFormat == "gptq_v2")
      opts.format = ::qc::quant::GPTQFormat::V2;
    else
      return fail(Status::error("--gptq-format must be gptq or gptq_v2, got '" +
                                gptqFormat + "'"));
    // The source's tokenizer travels with the checkpoint.
    mlir::qc::CheckpointRef ref;
    if (!skipTokenizer && mlir::qc::getCheckpointRef(*module, ref))
      if (Status s = tokenizerFiles(ref, opts.extraFiles); !s)
        return fail(s);
    mlir::qc::GPTQExportSummary sum;
    if (Status s = mlir::qc::exportGPTQCheckpoint(*module, weights, exportGPTQ,
                                                  opts, &sum);
        !s) {
      if (s.message().find("cannot be stored in GPTQ v1") != std::string::npos)
        return fail(
            Status::error(s.message() + " (--gptq-format gptq_v2 stores it)"));
      return fail(s);
    }
    outs() << "wrote GPTQ checkpoint " << exportGPTQ << " ("
           << sum.quantizedLayers << " quantized layers, " << sum.bits
           << " bits, group size " << sum.groupSize
           << (sum.sym ? ", sym" : ", asym")
           << (sum.descAct ? ", desc_act" : "") << ", " << gptqFormat;
    if (sum.paddedLayers)
      outs() << ", " << sum.paddedLayers << " layers with K padded";
    if (sum.overrides)
      outs() << ", " << sum.overrides << " dynamic overrides";
    if (sum.shards > 1)
      outs() << ", " << sum.shards << " shards";
    if (!opts.extraFiles.empty())
      outs() << ", " << opts.extraFiles.size() << " tokenizer files";
    outs() << ")\n";
    return 0;
  }

  if (!exportCT.empty()) {
    mlir::qc::CompressedTensorsExportOptions opts;
    opts.maxShardBytes = maxShardBytes;
    mlir::qc::CheckpointRef ref;
    if (mlir::qc::getCheckpointRef(*module, ref) && ref.format == "hf")
      opts.copyFiles = mlir::qc::hfTokenizerFiles(ref.path);
    for (const std::string &path : opts.copyFiles)
      if (Status s = ::qc::checkInsideModelFolder(ref.path, path); !s)
        return fail(s);
    mlir::qc::CompressedTensorsExportSummary sum;
    if (Status s = mlir::qc::exportCompressedTensors(*module, weights, exportCT,
                                                     opts, &sum);
        !s)
      return fail(s);
    outs() << "wrote compressed-tensors checkpoint " << exportCT << " ("
           << sum.quantizedLayers << " quantized layers, " << sum.configGroups
           << " config groups, pack-quantized";
    if (sum.ignored)
      outs() << ", " << sum.ignored << " float layers ignored";
    outs() << ")\n";
    return 0;
  }

  if (!exportGguf.empty()) {
    mlir::qc::GgufExportOptions opts;
    if (ggufEmbedding == "q8_0")
      opts.embeddingQ8 = true;
    else if (ggufEmbedding != "f16")
      return fail(Status::error("--gguf-embedding must be f16 or q8_0, got '" +
                                ggufEmbedding + "'"));
    mlir::qc::CheckpointRef ref;
    bool hasRef = mlir::qc::getCheckpointRef(*module, ref);
    if (!tokenizerJson.empty())
      opts.tokenizerJson = tokenizerJson;
    else if (hasRef && ref.format == "gguf")
      opts.tokenizerGguf = ref.path;
    else if (hasRef && ref.format == "hf" &&
             llvm::sys::fs::exists(ref.path + "/tokenizer.json"))
      opts.tokenizerJson = ref.path + "/tokenizer.json";
    std::string path = exportGguf;
    if (llvm::sys::fs::is_directory(path))
      path += "/model.gguf";
    mlir::qc::GgufExportSummary sum;
    if (Status s = mlir::qc::exportGguf(*module, weights, path, opts, &sum); !s)
      return fail(s);
    outs() << "wrote GGUF " << path << " (";
    bool firstType = true;
    for (const auto &[type, n] : sum.typeCounts) {
      outs() << (firstType ? "" : ", ") << n << " " << type;
      firstType = false;
    }
    outs() << "; dequantized weight change max " << sum.maxAbsChange
           << ", mean " << sum.meanAbsChange;
    if (!sum.f16Layers.empty())
      outs() << "; " << sum.f16Layers.size()
             << " layers stored dequantized as F16 (K not a multiple of 32)";
    outs() << "; tokenizer " << sum.tokenizer << ")\n";
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
    std::vector<::qc::NamedFile> extra;
    mlir::qc::CheckpointRef ref;
    if (!skipTokenizer && mlir::qc::getCheckpointRef(*module, ref))
      if (Status s = tokenizerFiles(ref, extra); !s)
        return fail(s);
    ::qc::OutputFolder folder;
    if (Status s = folder.begin(exportHF, force, inputs, "--export-hf"); !s)
      return fail(s);
    if (Status s = ::qc::writeHFCheckpoint(folder.tempPath(), weights, type,
                                           maxShardBytes, extra);
        !s) {
      // Name the folder as the user gave it, not the temporary one.
      std::string msg = s.message();
      for (size_t at = msg.find(folder.tempPath()); at != std::string::npos;
           at = msg.find(folder.tempPath()))
        msg.replace(at, folder.tempPath().size(), exportHF);
      return fail(Status::error(msg));
    }
    if (Status s = folder.commit(); !s)
      return fail(s);
    outs() << "wrote Hugging Face checkpoint " << exportHF << " ("
           << weights.tensors.size() << " tensors, " << dtype;
    if (!extra.empty())
      outs() << ", " << extra.size() << " tokenizer files";
    outs() << ")\n";
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
