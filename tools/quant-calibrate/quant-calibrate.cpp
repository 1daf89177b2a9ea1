//===- quant-calibrate.cpp - Record a calibration trace -------------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
//   quant-calibrate MODEL [--tokenizer TOK] --text CALIB.txt -o
//   trace.safetensors
//                   [--max-tokens N] [--window 511]
// Runs the model on the calibration text (CPU path) and writes the input
// statistics of every linear layer: sum x x^T, token count, mean |x|, with
// fingerprints of the model and of the data and settings. The text is
// tokenized with the perplexity protocol (paragraphs, BOS-prefixed windows).
//
//===----------------------------------------------------------------------===//

#include "qc/Calibration/Calibrate.h"
#include "qc/Import/LoadModel.h"
#include "qc/Quantization/Algorithms/OptionRanges.h"
#include "qc/runtime/TextDataset.h"
#include "qc/Import/ModelTokenizer.h"
#include "qc/runtime/OutputSafety.h"
#include "qc/runtime/TextTokenizer.h"

#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/raw_ostream.h"

#include <chrono>

using namespace llvm;
using ::qc::Status;

static cl::OptionCategory category("quant-calibrate options");
static cl::opt<std::string>
    modelPath(cl::Positional, cl::Required,
              cl::desc("<model: .bin | .gguf | HF folder | .mlir>"),
              cl::cat(category));
static cl::opt<std::string> tokenizerPath(
    "tokenizer",
    cl::desc("Tokenizer: tokenizer.json, GGUF, model folder or llama2.c "
             "tokenizer.bin (default: the model's own)"),
    cl::cat(category));
static cl::opt<std::string> textPath("text", cl::Required,
                                     cl::desc("Calibration text"),
                                     cl::cat(category));
static cl::opt<std::string> outPath("o", cl::Required,
                                    cl::desc("Trace file to write"),
                                    cl::cat(category));
static cl::opt<int64_t>
    maxTokens("max-tokens",
              cl::desc("Use at most N tokens (0 = all) (default: 0)"),
              cl::init(0), cl::cat(category));
static cl::opt<int64_t>
    windowLen("window",
              cl::desc("Tokens per window, BOS excluded (default: 511)"),
              cl::init(511), cl::cat(category));
static cl::opt<int64_t>
    samples("samples",
            cl::desc("Whole windows kept for AWQ, AutoRound and sequential "
                     "GPTQ (0 = none) (default: 128)"),
            cl::init(128), cl::cat(category));
static cl::opt<bool> noProgress("no-progress",
                                cl::desc("Do not show progress (default: off)"),
                                cl::init(false), cl::cat(category));

/// Printed after the options by --help.
static cl::extrahelp examples(
    "EXAMPLES:\n"
    "  # A calibration trace for GPTQ / AWQ / AutoRound from 4096 tokens:\n"
    "  quant-calibrate model.mlir --tokenizer tok512.bin --text train.txt \\\n"
    "      --max-tokens 4096 -o trace.safetensors\n"
    "  # ... then: quant-opt model.mlir -wq-gptq=\"trace=trace.safetensors "
    "weights-out=q.safetensors\"\n");

static int fail(const Status &s) {
  errs() << "quant-calibrate: error: " << s.message() << "\n";
  return 1;
}

int main(int argc, char **argv) {
  InitLLVM init(argc, argv);
  ::qc::ignoreFileSizeSignal();
  cl::HideUnrelatedOptions(category);
  cl::ParseCommandLineOptions(argc, argv,
                              "quant-calibrate: record a calibration trace\n");
  // The same ranges as a recipe's calibration keys (OptionRanges.h).
  for (const auto &[name, value] :
       {std::pair<const char *, int64_t>{"window", windowLen},
        {"samples", samples},
        {"max-tokens", maxTokens}})
    if (Status s = ::qc::quant::checkIntOption("calibration", name, value); !s)
      return fail(Status::error("--" + s.message()));
  mlir::MLIRContext ctx;
  mlir::OwningOpRef<mlir::ModuleOp> module;
  ::qc::ModelWeights weights;
  if (Status s = mlir::qc::openModel(ctx, modelPath, module, weights); !s)
    return fail(s);
  // The trace may replace none of the run's inputs (checked before any
  // work): the model file, its checkpoint, the tokenizer, the text.
  {
    std::vector<std::string> inputs = ::qc::inputFilesOf(modelPath);
    mlir::qc::CheckpointRef ref;
    if (mlir::qc::getCheckpointRef(*module, ref))
      for (std::string &f : ::qc::inputFilesOf(ref.path))
        inputs.push_back(std::move(f));
    if (auto overlay =
            (*module)->getAttrOfType<mlir::StringAttr>("llm.weights_overlay"))
      inputs.push_back(overlay.str());
    for (std::string &f : ::qc::inputFilesOf(tokenizerPath))
      inputs.push_back(std::move(f));
    inputs.push_back(textPath);
    if (Status s = ::qc::checkOutputIsNotAnInput(outPath, inputs, "-o"); !s)
      return fail(s);
  }
  std::unique_ptr<::qc::TextTokenizer> tok;
  if (Status s = mlir::qc::openModelTokenizer(*module, modelPath, tokenizerPath,
                                              weights.config.vocabSize, tok);
      !s)
    return fail(s);
  std::vector<int> tokens;
  if (Status s = mlir::qc::encodeCorpus(*tok, textPath, tokens, maxTokens); !s)
    return fail(s);
  mlir::qc::CalibrationOptions options;
  options.windowLen = windowLen;
  options.maxTokens = maxTokens;
  options.textName = textPath;
  options.progress = !noProgress;
  options.sampleSequences = samples;
  std::vector<std::string> warnings;
  options.warnings = &warnings;
  auto start = std::chrono::steady_clock::now();
  ::qc::CalibrationTrace trace;
  if (Status s =
          mlir::qc::collectTrace(*module, weights, tokens, options, trace);
      !s)
    return fail(s.withContext(textPath));
  for (const std::string &w : warnings)
    errs() << "quant-calibrate: warning: " << textPath << ": " << w << "\n";
  if (Status s = ::qc::writeTrace(trace, outPath); !s)
    return fail(s);
  double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  outs() << "trace: " << outPath << " (" << trace.layerToKey.size()
         << " layers, " << trace.entries.size() << " observed inputs, "
         << trace.settings["tokens"] << " tokens, " << trace.sampleSequences
         << " sampled sequences of " << trace.sampleLength << ", "
         << format("%.2f", secs) << " s; model " << trace.modelFingerprint
         << ")\n";
  return 0;
}
