//===- quant-run.cpp - Score perplexity and generate text -----------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Runs a model on the CPU path (model IR -> linalg -> LLVM JIT):
//   quant-run MODEL [--tokenizer TOK] [--ppl TEXT [--ctx N] [--bos MODE]
//             [--skip-tokens N] [--max-tokens N]]
//             [--generate N [--prompt TEXT] [--temperature T] [--top-p P]
//              [--seed S] [--ignore-eos] [--no-kv-cache]] [--json OUT]
// MODEL is a llama2.c .bin, a GGUF file, a Hugging Face checkpoint folder,
// or a .mlir file from quant-import; a GGUF file or a folder with
// tokenizer.json brings its own tokenizer. Perplexity follows one of two
// protocols, printed with the result:
//  - text (--ctx N, the default for every tokenizer but llama2.c's): the
//    text tokenized as one string, non-overlapping windows of N tokens each
//    scored on its own, BOS per window or none; what llama.cpp and
//    transformers users compare;
//  - stories (llama2.c tokenizers without --ctx): the protocol of
//    ../shared/models/stories260K/README.md, paragraphs encoded separately
//    and joined by two newline tokens, 511-token windows each prefixed with
//    BOS.
//===----------------------------------------------------------------------===//

#include "qc/Execution/CpuExecutable.h"
#include "qc/Execution/Evaluate.h"
#include "qc/Import/LoadModel.h"
#include "qc/Import/ModelTokenizer.h"
#include "qc/Quantization/Algorithms/OptionRanges.h"
#include "qc/runtime/Json.h"
#include "qc/runtime/Sampler.h"
#include "qc/runtime/TextDataset.h"
#include "qc/runtime/TextTokenizer.h"
#include "qc/runtime/ThreadPool.h"
#include "qc/runtime/Tokenizer.h"
#include "qc/runtime/OutputSafety.h"

#include "mlir/IR/MLIRContext.h"
#include "llvm/ADT/STLExtras.h"
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
static cl::opt<std::string>
    modelPath(cl::Positional, cl::Required,
              cl::desc("<model: .bin | .gguf | HF folder | .mlir>"),
              cl::cat(category));
static cl::opt<std::string> tokenizerPath(
    "tokenizer",
    cl::desc("Tokenizer: tokenizer.json, GGUF, model folder or llama2.c "
             "tokenizer.bin (default: the model's own)"),
    cl::value_desc("path"), cl::cat(category));
static cl::opt<std::string>
    pplText("ppl",
            cl::desc("Score perplexity on this text file (default: none)"),
            cl::value_desc("file"), cl::cat(category));
static cl::opt<int64_t> maxTokens(
    "max-tokens",
    cl::desc("Score only N tokens (after --skip-tokens; 0 = all) (default: 0)"),
    cl::init(0), cl::cat(category));
static cl::opt<int64_t> ctxLen(
    "ctx",
    cl::desc("Text protocol: positions per window, BOS included (default "
             "1024, capped at the model's context; 0 = protocol default)"),
    cl::init(0), cl::cat(category));
static cl::opt<std::string> bosMode(
    "bos",
    cl::desc("Text protocol: each-window | none (default: each-window when "
             "the tokenizer adds BOS, else none)"),
    cl::init(""), cl::cat(category));
static cl::opt<int64_t> skipTokens(
    "skip-tokens",
    cl::desc(
        "Text protocol: tokens dropped before the first window (default: 0)"),
    cl::init(0), cl::cat(category));
static cl::opt<std::string>
    klReference("kl-reference",
                cl::desc("Also report KL divergence to this model (e.g. the "
                         "float one) (default: none)"),
                cl::value_desc("model"), cl::cat(category));
static cl::opt<int64_t>
    windowLen("window",
              cl::desc("Tokens per scored window, BOS excluded (default: 511)"),
              cl::init(511), cl::cat(category));
static cl::opt<int64_t> genCount("generate",
                                 cl::desc("Generate N tokens (default: 0)"),
                                 cl::init(0), cl::cat(category));
static cl::opt<std::string>
    prompt("prompt", cl::desc("Prompt text for generation (default: none)"),
           cl::init(""), cl::cat(category));
static cl::opt<float>
    temperature("temperature",
                cl::desc("Sampling temperature (0 = greedy) (default: 0)"),
                cl::init(0.0f), cl::cat(category));
static cl::opt<float>
    topP("top-p", cl::desc("Nucleus sampling threshold (default: 0.9)"),
         cl::init(0.9f), cl::cat(category));
static cl::opt<uint64_t> seed("seed", cl::desc("Sampling seed (default: 42)"),
                              cl::init(42), cl::cat(category));
static cl::opt<int>
    threads("num-threads",
            cl::desc("Worker threads of the process pool (0 = QC_THREADS "
                     "when set, else all cores) (default: 0)"),
            cl::init(0), cl::cat(category));
static cl::opt<std::string>
    jsonOut("json", cl::desc("Write the results as JSON here (default: none)"),
            cl::value_desc("file"), cl::cat(category));
static cl::opt<bool>
    printIds("print-ids",
             cl::desc("Also print generated token ids (default: off)"),
             cl::init(false), cl::cat(category));
static cl::opt<bool> ignoreEos(
    "ignore-eos",
    cl::desc("Keep generating after the end-of-sequence token (default: "
             "stop there; llama2.c models also stop at BOS, their story "
             "separator)"),
    cl::init(false), cl::cat(category));
static cl::opt<bool> noKvCache(
    "no-kv-cache",
    cl::desc("Generate by recomputing the whole prefix for every token "
             "instead of prefill + KV-cached decode steps (slower; the "
             "tokens are the same) (default: off)"),
    cl::init(false), cl::cat(category));
static cl::opt<std::string> dumpLowered(
    "dump-lowered",
    cl::desc("Write the LLVM-dialect module the JIT compiles (default: none)"),
    cl::value_desc("file"), cl::cat(category));
static cl::opt<unsigned> jitOptLevel(
    "jit-opt-level",
    cl::desc("LLVM optimization level of the JIT (0-3) (default: 2)"),
    cl::init(2), cl::cat(category));
static cl::opt<std::string>
    dumpObject("dump-object",
               cl::desc("Write the JIT-compiled object file (default: none)"),
               cl::value_desc("file"), cl::cat(category));
static cl::opt<std::string> cacheDir(
    "cache-dir",
    cl::desc("Keep compiled machine code here, keyed by a hash of the code "
             "and the CPU, so the next run of the same model skips LLVM "
             "(default: $QC_CACHE_DIR, else $XDG_CACHE_HOME/qc/jit, else "
             "~/.cache/qc/jit)"),
    cl::value_desc("folder"), cl::cat(category));
static cl::opt<bool>
    noCache("no-cache",
            cl::desc("Compile every time; neither read nor write the "
                     "compiled-code cache (default: off)"),
            cl::init(false), cl::cat(category));
static cl::opt<bool> noProgress("no-progress",
                                cl::desc("Do not show progress (default: off)"),
                                cl::init(false), cl::cat(category));

/// Printed after the options by --help.
static cl::extrahelp examples(
    "EXAMPLES:\n"
    "  # Perplexity of a llama2.c model (its tokenizer.bin is needed):\n"
    "  quant-run stories260K.bin --tokenizer tok512.bin --ppl valid.txt\n"
    "  # Perplexity under the text protocol, 512-token windows (GGUF brings "
    "its\n"
    "  # own tokenizer):\n"
    "  quant-run model.gguf --ppl wiki.test.raw --ctx 512\n"
    "  # Greedy continuation of a prompt, stopping at end-of-sequence:\n"
    "  quant-run model.q.mlir --generate 64 --prompt \"Once upon a time\"\n"
    "  # Sampling, reproducible with a seed, past end-of-sequence:\n"
    "  quant-run model.gguf --generate 64 --temperature 0.8 --seed 7 "
    "--ignore-eos\n"
    "  # The same without the KV cache (every token recomputes the prefix):\n"
    "  quant-run model.gguf --generate 64 --no-kv-cache\n");

/// Prints "quant-run: error: <message>" and returns the exit code 1.
static int fail(const Status &s) {
  errs() << "quant-run: error: " << s.message() << "\n";
  return 1;
}

int main(int argc, char **argv) {
  InitLLVM init(argc, argv);
  ::qc::ignoreFileSizeSignal();
  cl::HideUnrelatedOptions(category);
  cl::ParseCommandLineOptions(argc, argv,
                              "quant-run: perplexity and text generation on "
                              "the CPU (MLIR JIT) path\n");
  // What to do, checked before anything is loaded: options that only
  // modify an action are refused without it instead of being ignored.
  bool dumpOnly = !dumpLowered.empty() || !dumpObject.empty();
  if (genCount < 0)
    return fail(Status::error("--generate must be a positive token count"));
  if (genCount == 0)
    for (const cl::Option *o : std::initializer_list<const cl::Option *>{
             &prompt, &temperature, &topP, &seed, &printIds, &ignoreEos,
             &noKvCache})
      if (o->getNumOccurrences())
        return fail(Status::error("--" + o->ArgStr.str() +
                                  " needs --generate N (the number of tokens "
                                  "to generate)"));
  if (pplText.empty())
    for (const cl::Option *o : std::initializer_list<const cl::Option *>{
             &maxTokens, &ctxLen, &bosMode, &skipTokens, &klReference,
             &windowLen})
      if (o->getNumOccurrences())
        return fail(Status::error("--" + o->ArgStr.str() +
                                  " needs --ppl TEXT (the text to score)"));
  if (pplText.empty() && genCount == 0 && !dumpOnly)
    return fail(Status::error(
        "nothing to do: give --ppl TEXT (score perplexity) and/or "
        "--generate N (generate N tokens, optionally after --prompt TEXT)"));
  // Every numeric option against the one table of ranges (OptionRanges.h),
  // before anything is loaded: --ctx 2^40 or --top-p 7 is an error naming
  // the option, never a silently narrowed or meaningless value.
  for (const auto &[name, value] :
       {std::pair<const char *, int64_t>{"max-tokens", maxTokens},
        {"ctx", ctxLen},
        {"skip-tokens", skipTokens},
        {"window", windowLen},
        {"generate", genCount},
        {"num-threads", threads},
        {"jit-opt-level", jitOptLevel}})
    if (Status s = ::qc::quant::checkIntOption("run", name, value); !s)
      return fail(Status::error("--" + s.message()));
  for (const auto &[name, value] :
       {std::pair<const char *, double>{"temperature", temperature},
        {"top-p", topP}})
    if (Status s = ::qc::quant::checkRealOption("run", name, value); !s)
      return fail(Status::error("--" + s.message()));
  if (!bosMode.empty() && bosMode != "each-window" && bosMode != "none")
    return fail(Status::error("--bos must be each-window or none, got '" +
                              bosMode + "'"));

  mlir::MLIRContext ctx;
  mlir::OwningOpRef<mlir::ModuleOp> module;
  ::qc::ModelWeights weights;
  auto t0 = std::chrono::steady_clock::now();
  // Opened lazily, then only what the model computes with is read: a
  // quantized model's original checkpoint is otherwise read whole in fp32
  // beside its packed layers.
  ::qc::LoadOptions lazy;
  lazy.lazy = true;
  if (Status s = mlir::qc::openModel(ctx, modelPath, module, weights, lazy); !s)
    return fail(s);
  if (Status s = mlir::qc::materializeModuleParams(*module, weights); !s)
    return fail(s);
  // The tokenizer before the (slow) compilation: a missing one fails fast.
  std::unique_ptr<::qc::TextTokenizer> tok;
  if (!pplText.empty() || genCount > 0)
    if (Status s = mlir::qc::openModelTokenizer(
            *module, modelPath, tokenizerPath, weights.config.vocabSize, tok);
        !s)
      return fail(s);
  std::unique_ptr<mlir::qc::CpuExecutable> exe;
  mlir::qc::CpuCompileOptions compileOptions;
  compileOptions.dumpLoweredTo = dumpLowered;
  compileOptions.optLevel = jitOptLevel;
  compileOptions.dumpObjectTo = dumpObject;
  if (!noCache)
    compileOptions.cacheDir =
        cacheDir.empty() ? mlir::qc::defaultJitCacheDir() : cacheDir;
  // Generation runs the KV-cached decode entry point; perplexity (and
  // generation without the cache) the full-window forward function. Only
  // what is used is compiled: each entry point costs JIT time.
  bool useKvCache = genCount > 0 && !noKvCache;
  compileOptions.decode = useKvCache;
  compileOptions.forward = !pplText.empty() || !useKvCache;
  if (Status s = mlir::qc::CpuExecutable::compile(*module, weights, exe,
                                                  compileOptions);
      !s)
    return fail(s);
  double compileSeconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
          .count();
  const ::qc::ModelConfig &cfg = weights.config;
  outs() << "model: " << modelPath << " (" << cfg.modelType << ", dim "
         << cfg.dim << ", " << cfg.nLayers << " layers, vocab " << cfg.vocabSize
         << "), loaded and compiled in " << format("%.2f", compileSeconds)
         << " s" << (exe->fromCache() ? " (machine code from the cache)" : "")
         << "\n";

  // The context a window may use: max_position_embeddings, capped by a
  // sliding window qc does not implement (inside it attention is exact).
  auto contextError = [&](const std::string &what, int64_t need) {
    std::string why =
        "max_position_embeddings " + std::to_string(cfg.maxSeqLen);
    if (cfg.slidingWindow > 0)
      why = "sliding_window " + std::to_string(cfg.slidingWindow) +
            " (sliding-window attention equals full attention only inside "
            "the window)";
    return Status::error(what + " needs " + std::to_string(need) +
                         " positions, more than the model's context (" + why +
                         ")");
  };

  // One pool for the whole run (ThreadPool.h), sized here.
  ::qc::setThreadCount(threads);
  int nThreads = static_cast<int>(::qc::threadCount());
  bool showProgress = !noProgress;
  ::qc::json::Value result = ::qc::json::Value::object();
  result.set("model", ::qc::json::Value::string(modelPath.getValue()));

  if (!pplText.empty()) {
    std::vector<int> tokens;
    std::vector<std::vector<int>> windows;
    std::string protocol;
    ::qc::json::Value protocolJson = ::qc::json::Value::object();
    using ::qc::json::Value;
    const ::qc::Tokenizer *storiesTok = tok->llama2c();
    if (storiesTok && ctxLen == 0 && skipTokens == 0 && bosMode.empty()) {
      if (windowLen + 1 > cfg.maxSeqLen)
        return fail(contextError("--window " + std::to_string(windowLen),
                                 windowLen + 1));
      if (Status s = ::qc::loadPerplexityTokens(pplText, *storiesTok, tokens);
          !s)
        return fail(s);
      windows = ::qc::makeWindows(tokens, maxTokens, windowLen,
                                  static_cast<int>(cfg.bosId));
      int64_t used = maxTokens > 0 ? std::min<int64_t>(maxTokens, tokens.size())
                                   : static_cast<int64_t>(tokens.size());
      protocol = "stories: paragraphs encoded separately, joined by two "
                 "newline tokens; windows of " +
                 std::to_string(windowLen) +
                 " tokens each prefixed with BOS; "
                 "tokens [0, " +
                 std::to_string(used) + ") of " + std::to_string(tokens.size());
      protocolJson.set("name", Value::string("stories"));
      protocolJson.set("window", Value::integer(windowLen));
      protocolJson.set("bos", Value::string("each-window"));
      protocolJson.set("max_tokens", Value::integer(maxTokens));
    } else {
      ::qc::ContextWindowProtocol p;
      p.ctx = ctxLen > 0 ? ctxLen.getValue()
                         : std::min<int64_t>(1024, cfg.maxSeqLen);
      if (p.ctx > cfg.maxSeqLen)
        return fail(contextError("--ctx " + std::to_string(p.ctx), p.ctx));
      p.bosEachWindow =
          bosMode.empty() ? tok->addsBos() : bosMode == "each-window";
      p.bosId = tok->bosId();
      p.skipTokens = skipTokens;
      p.maxTokens = maxTokens;
      std::string text;
      if (Status s = ::qc::readTextFile(pplText, text); !s)
        return fail(s);
      if (Status s = tok->encode(text, /*addSpecial=*/false, tokens); !s)
        return fail(s.withContext(pplText));
      int64_t scored = 0;
      if (Status s = ::qc::makeContextWindows(tokens, p, windows, scored); !s)
        return fail(s.withContext(pplText));
      protocol =
          ::qc::describeContextWindows(p, static_cast<int64_t>(tokens.size()));
      protocolJson.set("name", Value::string("text"));
      protocolJson.set("ctx", Value::integer(p.ctx));
      protocolJson.set("bos",
                       Value::string(p.bosEachWindow ? "each-window" : "none"));
      protocolJson.set("skip_tokens", Value::integer(p.skipTokens));
      protocolJson.set("max_tokens", Value::integer(p.maxTokens));
    }
    protocolJson.set("description", Value::string(protocol));
    protocolJson.set("tokenizer", Value::string(tok->describe()));
    // The reference model (for KL divergence) is compiled in its own
    // context: it may come from a different checkpoint format.
    mlir::MLIRContext refCtx;
    mlir::OwningOpRef<mlir::ModuleOp> refModule;
    ::qc::ModelWeights refWeights;
    std::unique_ptr<mlir::qc::CpuExecutable> refExe;
    if (!klReference.empty()) {
      if (Status s = mlir::qc::openModel(refCtx, klReference, refModule,
                                         refWeights, lazy);
          !s)
        return fail(s);
      if (Status s = mlir::qc::materializeModuleParams(*refModule, refWeights);
          !s)
        return fail(s);
      mlir::qc::CpuCompileOptions refOptions;
      refOptions.optLevel = jitOptLevel;
      refOptions.cacheDir = compileOptions.cacheDir;
      if (Status s = mlir::qc::CpuExecutable::compile(*refModule, refWeights,
                                                      refExe, refOptions);
          !s)
        return fail(s);
    }
    mlir::qc::PerplexityResult ppl;
    if (Status s = mlir::qc::evaluatePerplexity(
            *exe, windows, nThreads, showProgress, ppl, refExe.get());
        !s)
      return fail(s);
    outs() << "perplexity: " << format("%.4f", ppl.perplexity) << " (nll "
           << format("%.6f", ppl.nll) << ", " << ppl.tokens << " tokens of "
           << tokens.size() << ", " << ppl.windows << " windows, "
           << format("%.2f", ppl.seconds) << " s, " << nThreads
           << " threads)\n";
    outs() << "protocol: " << protocol << "\n";
    if (refExe)
      outs() << "kl divergence to " << klReference << ": "
             << format("%.6f", ppl.klDivergence) << " nats/token (reference "
             << "perplexity " << format("%.4f", ppl.referencePerplexity)
             << ")\n";
    Value p = Value::object();
    p.set("text", Value::string(pplText.getValue()));
    p.set("protocol", std::move(protocolJson));
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
    if (Status s = tok->encode(prompt, /*addSpecial=*/true, ids); !s)
      return fail(s);
    // Generation needs a first token: BOS when the tokenizer does not add
    // it and the prompt is empty.
    if (ids.empty()) {
      if (tok->bosId() < 0)
        return fail(Status::error(
            "--generate with an empty --prompt needs a BOS token, and the "
            "tokenizer names none: give a prompt"));
      ids.push_back(tok->bosId());
    }
    size_t promptLen = ids.size();
    // The context bounds prompt + generated tokens: said before generating,
    // not discovered as a silently short result.
    int64_t room = cfg.maxSeqLen - static_cast<int64_t>(promptLen);
    if (room <= 0)
      return fail(contextError("the " + std::to_string(promptLen) +
                                   "-token prompt plus one generated token",
                               static_cast<int64_t>(promptLen) + 1));
    if (genCount > room)
      errs() << "quant-run: note: --generate " << genCount << " with a "
             << promptLen << "-token prompt exceeds the model's context of "
             << cfg.maxSeqLen << " positions; at most " << room
             << " tokens will be generated\n";
    // Stop tokens: the tokenizer's and the model's end-of-sequence ids, and
    // for llama2.c models BOS, which separates their training stories (as
    // llama2.c's run.c stops).
    std::vector<int> stops;
    if (!ignoreEos) {
      for (int64_t id : {static_cast<int64_t>(tok->eosId()), cfg.eosId})
        if (id >= 0 && !llvm::is_contained(stops, static_cast<int>(id)))
          stops.push_back(static_cast<int>(id));
      if (tok->llama2c() && tok->bosId() >= 0)
        stops.push_back(tok->bosId());
    }
    ::qc::Sampler sampler(cfg.vocabSize, temperature, topP, seed);
    mlir::qc::GenerationStats stats;
    mlir::qc::GenerateOptions genOptions;
    genOptions.kvCache = useKvCache;
    if (Status s = mlir::qc::generate(*exe, ids, genCount, sampler, stops,
                                      cfg.maxSeqLen, &stats, genOptions);
        !s)
      return fail(s);
    std::string text = tok->decode(ids, /*skipSpecial=*/true);
    outs() << "generated (" << (ids.size() - promptLen) << " tokens, "
           << (temperature == 0.0f
                   ? std::string("greedy")
                   : formatv("temperature {0}, top-p {1}, seed {2}",
                             temperature.getValue(), topP.getValue(),
                             seed.getValue())
                         .str())
           << "):\n"
           << text << "\n";
    std::string stopReason = "requested count";
    if (stats.stopped) {
      stopReason = "end-of-sequence token " + std::to_string(ids.back());
      outs() << "stopped at the end-of-sequence token " << ids.back()
             << " after " << stats.generated
             << " tokens (--ignore-eos keeps going)\n";
    } else if (stats.contextFull) {
      stopReason = "context full";
      outs() << "stopped after " << stats.generated
             << " tokens: the model's context of " << cfg.maxSeqLen
             << " positions is full\n";
    }
    // The first pass reads the prompt (prefill) and yields the first
    // token; every later token costs one more pass: one position against
    // the KV cache, or with --no-kv-cache the whole sequence again.
    outs() << "speed: prefill " << stats.promptTokens << " tokens in "
           << format("%.3f s (%.1f tokens/s)", stats.prefillSeconds,
                     stats.prefillSeconds > 0
                         ? stats.promptTokens / stats.prefillSeconds
                         : 0.0);
    if (stats.generated > 1)
      outs() << format("; generation %lld tokens in %.3f s (%.1f tokens/s, "
                       "%.2f ms/token)",
                       (long long)stats.generated - 1, stats.decodeSeconds,
                       (stats.generated - 1) / stats.decodeSeconds,
                       1e3 * stats.decodeSeconds / (stats.generated - 1));
    outs() << (stats.kvCache ? "; KV cache"
                             : "; no KV cache (prefix recomputed per token)")
           << "\n";
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
    g.set("prompt_tokens", Value::integer(stats.promptTokens));
    g.set("generated_tokens", Value::integer(stats.generated));
    g.set("stop", Value::string(stopReason));
    g.set("prefill_seconds", Value::number(stats.prefillSeconds));
    g.set("decode_seconds", Value::number(stats.decodeSeconds));
    g.set("kv_cache", Value::boolean(stats.kvCache));
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
