//===- quant-run.cpp - Score perplexity and generate text -----------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Runs a model on the CPU path (model IR -> linalg -> LLVM JIT):
//   quant-run MODEL --tokenizer TOK [--ppl TEXT [--max-tokens N]]
//             [--generate N [--prompt TEXT] [--temperature T] [--top-p P]
//              [--seed S]] [--json OUT]
// MODEL is a llama2.c .bin, a Hugging Face checkpoint folder, or a .mlir
// file from quant-import. Perplexity follows the protocol of
// ../shared/models/stories260K/README.md: paragraphs encoded separately and
// joined by two newline tokens, non-overlapping 511-token windows each
// prefixed with BOS.
//
//===----------------------------------------------------------------------===//

#include "qc/Execution/CpuExecutable.h"
#include "qc/Execution/Evaluate.h"
#include "qc/Import/LoadModel.h"
#include "qc/runtime/Json.h"
#include "qc/runtime/Sampler.h"
#include "qc/runtime/TextDataset.h"
#include "qc/runtime/Tokenizer.h"

#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/raw_ostream.h"

#include <chrono>
#include <cstdio>
#include <thread>
#include <unistd.h>

using namespace llvm;
using ::qc::Status;

static cl::OptionCategory category("quant-run options");
static cl::opt<std::string> modelPath(cl::Positional, cl::Required,
                                      cl::desc("<model: .bin | HF folder | .mlir>"),
                                      cl::cat(category));
static cl::opt<std::string> tokenizerPath("tokenizer", cl::desc("llama2.c tokenizer.bin"),
                                          cl::value_desc("file"), cl::cat(category));
static cl::opt<std::string> pplText("ppl", cl::desc("Score perplexity on this text file"),
                                    cl::value_desc("file"), cl::cat(category));
static cl::opt<int64_t> maxTokens("max-tokens",
                                  cl::desc("Score only the first N tokens (0 = all)"),
                                  cl::init(0), cl::cat(category));
static cl::opt<std::string> klReference(
    "kl-reference",
    cl::desc("Also report KL divergence to this model (e.g. the float one)"),
    cl::value_desc("model"), cl::cat(category));
static cl::opt<int64_t> windowLen("window", cl::desc("Tokens per scored window, BOS excluded"),
                                  cl::init(511), cl::cat(category));
static cl::opt<int64_t> genCount("generate", cl::desc("Generate N tokens"),
                                 cl::init(0), cl::cat(category));
static cl::opt<std::string> prompt("prompt", cl::desc("Prompt text for generation"),
                                   cl::init(""), cl::cat(category));
static cl::opt<float> temperature("temperature",
                                  cl::desc("Sampling temperature (0 = greedy)"),
                                  cl::init(0.0f), cl::cat(category));
static cl::opt<float> topP("top-p", cl::desc("Nucleus sampling threshold"),
                           cl::init(0.9f), cl::cat(category));
static cl::opt<uint64_t> seed("seed", cl::desc("Sampling seed"), cl::init(42),
                              cl::cat(category));
static cl::opt<int> threads("num-threads", cl::desc("Worker threads (0 = all cores)"),
                            cl::init(0), cl::cat(category));
static cl::opt<std::string> jsonOut("json", cl::desc("Write the results as JSON here"),
                                    cl::value_desc("file"), cl::cat(category));
static cl::opt<bool> printIds("print-ids", cl::desc("Also print generated token ids"),
                              cl::init(false), cl::cat(category));
static cl::opt<std::string> dumpLowered(
    "dump-lowered", cl::desc("Write the LLVM-dialect module the JIT compiles"),
    cl::value_desc("file"), cl::cat(category));
static cl::opt<unsigned> jitOptLevel("jit-opt-level",
                                      cl::desc("LLVM optimization level of the JIT (0-3)"),
                                      cl::init(2), cl::cat(category));
static cl::opt<std::string> dumpObject(
    "dump-object", cl::desc("Write the JIT-compiled object file"),
    cl::value_desc("file"), cl::cat(category));
static cl::opt<bool> noProgress("no-progress", cl::desc("Do not show progress"),
                                cl::init(false), cl::cat(category));

/// Prints "quant-run: error: <message>" and returns the exit code 1.
static int fail(const Status &s) {
  errs() << "quant-run: error: " << s.message() << "\n";
  return 1;
}

int main(int argc, char **argv) {
  InitLLVM init(argc, argv);
  cl::HideUnrelatedOptions(category);
  cl::ParseCommandLineOptions(argc, argv,
                              "quant-run: perplexity and text generation on "
                              "the CPU (MLIR JIT) path\n");
  if ((!pplText.empty() || genCount > 0) && tokenizerPath.empty())
    return fail(Status::error("--ppl and --generate need --tokenizer"));
  if (windowLen <= 0)
    return fail(Status::error("--window must be positive"));

  mlir::MLIRContext ctx;
  mlir::OwningOpRef<mlir::ModuleOp> module;
  ::qc::ModelWeights weights;
  auto t0 = std::chrono::steady_clock::now();
  if (Status s = mlir::qc::openModel(ctx, modelPath, module, weights); !s)
    return fail(s);
  std::unique_ptr<mlir::qc::CpuExecutable> exe;
  mlir::qc::CpuCompileOptions compileOptions;
  compileOptions.dumpLoweredTo = dumpLowered;
  compileOptions.optLevel = jitOptLevel;
  compileOptions.dumpObjectTo = dumpObject;
  if (Status s = mlir::qc::CpuExecutable::compile(*module, weights, exe,
                                                  compileOptions);
      !s)
    return fail(s.withContext(modelPath));
  double compileSeconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const ::qc::ModelConfig &cfg = weights.config;
  outs() << "model: " << modelPath << " (" << cfg.modelType << ", dim "
         << cfg.dim << ", " << cfg.nLayers << " layers, vocab " << cfg.vocabSize
         << "), loaded and compiled in " << format("%.2f", compileSeconds)
         << " s\n";

  ::qc::Tokenizer tok;
  if (!tokenizerPath.empty())
    if (Status s = ::qc::Tokenizer::load(tokenizerPath, cfg.vocabSize, tok); !s)
      return fail(s);

  int nThreads = threads > 0 ? threads.getValue()
                             : std::max(1u, std::thread::hardware_concurrency());
  bool showProgress = !noProgress;
  ::qc::json::Value result = ::qc::json::Value::object();
  result.set("model", ::qc::json::Value::string(modelPath.getValue()));

  if (!pplText.empty()) {
    std::vector<int> tokens;
    if (Status s = ::qc::loadPerplexityTokens(pplText, tok, tokens); !s)
      return fail(s);
    auto windows = ::qc::makeWindows(tokens, maxTokens, windowLen,
                                     static_cast<int>(cfg.bosId));
    // The reference model (for KL divergence) is compiled in its own
    // context: it may come from a different checkpoint format.
    mlir::MLIRContext refCtx;
    mlir::OwningOpRef<mlir::ModuleOp> refModule;
    ::qc::ModelWeights refWeights;
    std::unique_ptr<mlir::qc::CpuExecutable> refExe;
    if (!klReference.empty()) {
      if (Status s = mlir::qc::openModel(refCtx, klReference, refModule,
                                         refWeights);
          !s)
        return fail(s);
      mlir::qc::CpuCompileOptions refOptions;
      refOptions.optLevel = jitOptLevel;
      if (Status s = mlir::qc::CpuExecutable::compile(*refModule, refWeights,
                                                      refExe, refOptions);
          !s)
        return fail(s.withContext(klReference));
    }
    mlir::qc::PerplexityResult ppl;
    if (Status s = mlir::qc::evaluatePerplexity(*exe, windows, nThreads,
                                                showProgress, ppl, refExe.get());
        !s)
      return fail(s);
    outs() << "perplexity: " << format("%.4f", ppl.perplexity) << " (nll "
           << format("%.6f", ppl.nll) << ", " << ppl.tokens << " tokens of "
           << tokens.size() << ", " << ppl.windows << " windows, "
           << format("%.2f", ppl.seconds) << " s, " << nThreads
           << " threads)\n";
    if (refExe)
      outs() << "kl divergence to " << klReference << ": "
             << format("%.6f", ppl.klDivergence) << " nats/token (reference "
             << "perplexity " << format("%.4f", ppl.referencePerplexity)
             << ")\n";
    using ::qc::json::Value;
    Value p = Value::object();
    p.set("text", Value::string(pplText.getValue()));
    p.set("perplexity", Value::number(ppl.perplexity));
    p.set("nll", Value::number(ppl.nll));
    p.set("scored_tokens", Value::integer(ppl.tokens));
    p.set("text_tokens", Value::integer(static_cast<int64_t>(tokens.size())));
    p.set("windows", Value::integer(ppl.windows));
    p.set("seconds", Value::number(ppl.seconds));
    p.set("threads", Value::integer(nThreads));
    if (refExe) {
      p.set("kl_reference", Value::string(klReference.getValue()));
      p.set("kl_divergence", Value::number(ppl.klDivergence));
      p.set("reference_perplexity", Value::number(ppl.referencePerplexity));
    }
    result.set("perplexity", std::move(p));
  }

  if (genCount > 0) {
    std::vector<int> ids;
    tok.encode(prompt, /*bos=*/true, /*eos=*/false, ids);
    size_t promptLen = ids.size();
    ::qc::Sampler sampler(cfg.vocabSize, temperature, topP, seed);
    if (Status s = mlir::qc::generate(*exe, ids, genCount, sampler,
                                      static_cast<int>(cfg.eosId),
                                      cfg.maxSeqLen);
        !s)
      return fail(s);
    std::string text = tok.decode(ids);
    outs() << "generated (" << (ids.size() - promptLen) << " tokens, "
           << (temperature == 0.0f ? std::string("greedy")
                                   : formatv("temperature {0}, top-p {1}, seed {2}",
                                             temperature.getValue(),
                                             topP.getValue(), seed.getValue())
                                         .str())
           << "):\n"
           << text << "\n";
    if (printIds) {
      outs() << "ids:";
      for (int id : ids)
        outs() << " " << id;
      outs() << "\n";
    }
    using ::qc::json::Value;
    Value g = Value::object();
    Value arr = Value::array();
    for (int id : ids)
      arr.push(Value::integer(id));
    g.set("ids", std::move(arr));
    g.set("text", Value::string(text));
    result.set("generation", std::move(g));
  }

  if (!jsonOut.empty()) {
    ::qc::json::WriteOptions wopts;
    wopts.pretty = true;
    std::string text = ::qc::json::write(result, wopts) + "\n";
    std::string tmp = jsonOut + ".tmp";
    std::FILE *f = std::fopen(tmp.c_str(), "wb");
    if (!f || std::fwrite(text.data(), 1, text.size(), f) != text.size() ||
        std::fclose(f) != 0 || std::rename(tmp.c_str(), jsonOut.c_str()) != 0)
      return fail(Status::error(jsonOut + ": cannot write the results"));
  }
  return 0;
}
