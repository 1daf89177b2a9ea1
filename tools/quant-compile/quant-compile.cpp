//===- quant-compile.cpp - Checkpoint + calibration text + recipe ---------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
//   quant-compile MODEL --recipe RECIPE.json [--calib TEXT --tokenizer TOK]
//                 [--trace TRACE] [--seed N] [--force] [--strict] -o OUT_DIR
//
// Writes OUT_DIR/model.mlir (the quantized model, runnable with quant-run),
// OUT_DIR/weights.safetensors (its packed tensors), OUT_DIR/trace.safetensors
// (the calibration trace, reusable with other recipes of the same kind: a
// block-wise method's trace holds the sampled windows only) and
// OUT_DIR/report.json (per-layer loss, damping, tokens, fallbacks, times).
// Steps: load, validate the recipe against the model (before any
// calibration), calibrate, run the method's pass, write. The pass pipeline
// is printed so that the same run can be replayed with quant-opt.
//
// OUT_DIR is written as a whole (qc::OutputFolder): every file goes into a
// temporary sibling folder that replaces OUT_DIR only when the run
// succeeded, so OUT_DIR holds one complete run or is untouched. An existing
// OUT_DIR is refused unless --force (then replaced whole: no file of an
// earlier run, such as its trace, survives), and one that holds an input of
// the run is refused even with --force.
//
// Progress is kept in OUT_DIR.resume/ while the run works: the calibration
// trace, the identity of the run (run.json) and the pass's journal of
// finished layers / blocks (lib/Quantization/Transforms/RewriteJournal.h).
// A run that was killed continues with --resume (same inputs and recipe;
// anything else is an error naming what changed) and produces the same
// files as an uninterrupted run. The folder is removed once OUT_DIR is in
// place; a new run refuses to discard it unless --resume or --force.
//
//===----------------------------------------------------------------------===//

#include "qc/Calibration/Calibrate.h"
#include "qc/Driver/Recipe.h"
#include "qc/Import/LoadModel.h"
#include "qc/InitAllPasses.h"
#include "qc/Quantization/Observer.h"
#include "qc/Quantization/Algorithms/OptionRanges.h"
#include "qc/runtime/Json.h"
#include "qc/runtime/OutputSafety.h"
#include "qc/runtime/ThreadPool.h"
#include "qc/runtime/Safetensors.h"
#include "qc/runtime/TextDataset.h"
#include "qc/Import/ModelTokenizer.h"
#include "qc/runtime/TextTokenizer.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <chrono>
#include <cstdlib>
#include <map>
#include <optional>

#include <sys/resource.h>

using namespace llvm;
using ::qc::Status;
namespace json = ::qc::json;

static cl::OptionCategory category("quant-compile options");
static cl::opt<std::string>
    modelPath(cl::Positional, cl::Required,
              cl::desc("<model: .bin | HF folder | .mlir>"), cl::cat(category));
static cl::opt<std::string> recipePath(
    "recipe", cl::Required,
    cl::desc("Recipe (JSON; every key and default: docs/RECIPES.md)"),
    cl::cat(category));
static cl::opt<std::string>
    outDir("o", cl::Required,
           cl::desc("Output folder, written as a whole: it appears only when "
                    "the run succeeded (an existing one needs --force)"),
           cl::cat(category));
static cl::opt<bool>
    force("force",
          cl::desc("Replace an existing output folder whole; a failed run "
                   "leaves it untouched (default: off)"),
          cl::cat(category));
static cl::opt<bool>
    strict("strict",
           cl::desc("Fail, instead of warning, when the recipe quantizes no "
                    "layer (its overrides skip every one) (default: off)"),
           cl::cat(category));
static cl::opt<std::string> calibText(
    "calib",
    cl::desc("Calibration text (GPTQ, AWQ, AutoRound) (default: none)"),
    cl::cat(category));
static cl::opt<std::string>
    tokenizerPath("tokenizer",
                  cl::desc("Tokenizer (default: the model's own; a llama2.c "
                           "model needs its tokenizer.bin)"),
                  cl::cat(category));
static cl::opt<std::string> tracePath(
    "trace",
    cl::desc(
        "Reuse this calibration trace instead of calibrating (default: none)"),
    cl::cat(category));
static cl::opt<int64_t>
    seed("seed",
         cl::desc("Seed of every random choice (overrides the recipe's) "
                  "(default: the recipe's seed, else none)"),
         cl::init(-1), cl::cat(category));
static cl::opt<int> threads(
    "num-threads",
    cl::desc("Worker threads (0 = QC_THREADS when set, else all cores); "
             "the result does not depend on it (default: 0)"),
    cl::init(0), cl::cat(category));
static cl::opt<bool>
    validateOnly("validate-only",
                 cl::desc("Stop after validating the recipe (default: off)"),
                 cl::cat(category));
static cl::opt<bool>
    resume("resume",
           cl::desc("Continue the interrupted run whose progress is in "
                    "OUT_DIR.resume (same model, recipe and inputs) "
                    "(default: off)"),
           cl::cat(category));
static cl::opt<bool>
    noProgress("no-progress",
               cl::desc("Do not print per-layer progress (default: off)"),
               cl::cat(category));

/// Printed after the options by --help.
static cl::extrahelp examples(
    "EXAMPLES:\n"
    "  # RTN, 4 bits, group size 128 (recipe: {\"method\": \"rtn\"}):\n"
    "  quant-compile stories260K.bin --recipe rtn.json -o out/\n"
    "  # GPTQ with calibration text; writes out/model.mlir, weights, trace, "
    "report:\n"
    "  quant-compile model.gguf --recipe gptq.json --calib train.txt -o out/\n"
    "  # Check a recipe against a model without calibrating:\n"
    "  quant-compile model.gguf --recipe gptq.json -o out/ --validate-only\n"
    "  # Run again into the same folder, replacing it whole:\n"
    "  quant-compile stories260K.bin --recipe rtn.json -o out/ --force\n"
    "  # Continue a run that was killed (progress in out.resume/):\n"
    "  quant-compile model.gguf --recipe gptq.json --calib train.txt -o out/ "
    "--resume\n"
    "\n"
    "The recipe format (every key, its default and the method options) is\n"
    "documented in docs/RECIPES.md; report.json in docs/report.schema.json.\n");

static int fail(const Status &s) {
  errs() << "quant-compile: error: " << s.message() << "\n";
  return 1;
}

static double since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t)
      .count();
}

/// The process's peak resident set size so far, in bytes.
static int64_t peakRssBytes() {
  struct rusage u{};
  if (getrusage(RUSAGE_SELF, &u) != 0)
    return 0;
  return static_cast<int64_t>(u.ru_maxrss) * 1024; // Linux reports KiB
}

static json::Value number(double v) {
  return std::isfinite(v) ? json::Value::number(v) : json::Value();
}

namespace {

/// Prints one line per finished layer with elapsed time and ETA, and keeps
/// the records for report.json. The ETA weighs layers by their work (N x K,
/// from validation: an MLP layer costs several attention layers) and is
/// only shown once two layers are done, because the first one also carries
/// the pass's start-up (weights, trace, the first block's activations) and
/// extrapolating from it alone overestimated a 32 s run as 238 s.
class ProgressObserver : public ::qc::QuantizationObserver {
public:
  ProgressObserver(bool print, const std::vector<::qc::PlannedLayer> &planned)
      : print(print) {
    for (const ::qc::PlannedLayer &l : planned)
      work[l.name] = double(l.N) * double(l.K);
  }
  void passStarted(const std::string &pass, int64_t layers) override {
    start = std::chrono::steady_clock::now();
    totalWork = 0.0;
    doneWork = 0.0;
    for (const auto &[name, w] : work)
      totalWork += w;
    if (print)
      errs() << "quant-compile: " << pass << ": " << layers << " layers\n";
  }
  /// Layers read back from an interrupted run's journal are recorded but
  /// not printed one by one, and their work is left out of the ETA.
  void layersResumed(int64_t count, const std::string &journal) override {
    resumed += count;
    quiet = count;
    if (print)
      errs() << "quant-compile: resumed " << count << " finished layers from "
             << journal << "\n";
  }
  void layerDone(const ::qc::LayerRecord &r, int64_t index,
                 int64_t layers) override {
    records.push_back(r);
    auto it = work.find(r.layer);
    double w = it != work.end()
                   ? it->second
                   : totalWork / double(std::max<int64_t>(layers, 1));
    if (quiet > 0) {
      --quiet;
      totalWork -= w;
      return;
    }
    doneWork += w;
    if (!print)
      return;
    double elapsed = since(start);
    errs() << format("quant-compile: [%lld/%lld] ", (long long)index + 1,
                     (long long)layers)
           << r.layer << format(": loss %.4g", r.loss);
    if (std::isfinite(r.damping))
      errs() << format(", damp %.4g", r.damping);
    if (r.fallback)
      errs() << ", FALLBACK";
    errs() << format(", %.2f s; elapsed %.1f s", r.seconds, elapsed);
    if (index - resumed >= 1 && doneWork > 0.0 && totalWork >= doneWork)
      errs() << format(", ETA %.1f s",
                       elapsed / doneWork * (totalWork - doneWork));
    errs() << "\n";
  }
  std::vector<::qc::LayerRecord> records;
  int64_t resumed = 0; ///< layers read back from a journal

private:
  int64_t quiet = 0; ///< resumed layers still to come
  bool print;
  std::chrono::steady_clock::time_point start;
  std::map<std::string, double> work; ///< N x K per planned layer.
  double totalWork = 0.0, doneWork = 0.0;
};

Status writeText(const std::string &path, const std::string &text) {
  return ::qc::writeFileAtomically(path, {{text.data(), text.size()}});
}

/// "path: N bytes, modified T" for every file `path` stands for (a folder:
/// its checkpoint files), so that a resumed run notices a changed input.
std::string stampOf(const std::string &path) {
  std::string out;
  for (const std::string &file : ::qc::inputFilesOf(path)) {
    sys::fs::file_status st;
    out += file;
    if (sys::fs::status(file, st))
      out += ": missing; ";
    else
      out += ": " + std::to_string(st.getSize()) + " bytes, modified " +
             std::to_string(
                 st.getLastModificationTime().time_since_epoch().count()) +
             "; ";
  }
  return out;
}

/// The identity of a run for --resume: one "key: value" line per input.
std::string runIdentity(const ::qc::Recipe &recipe) {
  std::string id = "model: " + stampOf(modelPath) + "\n";
  id += "recipe: " + json::write(recipe.source) + "\n";
  id += "seed: " + (recipe.seed ? std::to_string(*recipe.seed) : "none") + "\n";
  const std::pair<const char *, std::string> files[] = {
      {"calib", calibText}, {"tokenizer", tokenizerPath}, {"trace", tracePath}};
  for (const auto &[name, path] : files)
    id +=
        std::string(name) + ": " + (path.empty() ? "-" : stampOf(path)) + "\n";
  return id;
}

/// Keeps the progress folder of a run that fails only when it holds work
/// worth resuming (a trace or a finished layer), and says so; a folder with
/// nothing in it would only make the next run ask for --force.
class ProgressFolder {
public:
  explicit ProgressFolder(std::string dir) : dir(std::move(dir)) {}
  ~ProgressFolder() {
    if (!active)
      return;
    SmallString<256> trace(dir), journal(dir);
    sys::path::append(trace, "trace.safetensors");
    sys::path::append(journal, "journal", "journal.json");
    if (sys::fs::exists(trace) || sys::fs::exists(journal))
      errs() << "quant-compile: the progress of this run is kept in " << dir
             << "; --resume continues it once the cause is fixed (if the "
                "inputs change, start over with --force)\n";
    else
      sys::fs::remove_directories(dir);
  }
  /// From now on the folder is this run's (created or resumed).
  void started() { active = true; }
  /// The run succeeded: remove the folder.
  void finished() {
    active = false;
    if (std::error_code ec = sys::fs::remove_directories(dir))
      errs() << "quant-compile: warning: " << dir
             << ": cannot remove: " << ec.message() << "\n";
  }

private:
  std::string dir;
  bool active = false;
};

/// Links (or, across file systems, copies) `from` to `to`.
Status linkOrCopy(const std::string &from, const std::string &to) {
  if (!sys::fs::create_hard_link(from, to))
    return Status::ok();
  if (std::error_code ec = sys::fs::copy_file(from, to))
    return Status::error(to + ": cannot copy " + from + ": " + ec.message());
  return Status::ok();
}

} // namespace

int main(int argc, char **argv) {
  InitLLVM init(argc, argv);
  ::qc::ignoreFileSizeSignal();
  cl::HideUnrelatedOptions(category);
  cl::ParseCommandLineOptions(
      argc, argv, "quant-compile: quantize a model with a recipe\n");
  auto t0 = std::chrono::steady_clock::now();
  ::qc::Recipe recipe;
  if (Status s = ::qc::parseRecipe(recipePath, recipe); !s)
    return fail(s);
  if (Status s = ::qc::quant::checkIntOption("compile", "num-threads", threads);
      !s)
    return fail(Status::error("--" + s.message()));
  // One pool for calibration, the algorithms and evaluation (ThreadPool.h).
  ::qc::setThreadCount(threads);
  if (seed.getNumOccurrences()) {
    if (Status s = ::qc::quant::checkIntOption("compile", "seed", seed); !s)
      return fail(Status::error("--seed: " + s.message()));
    recipe.seed = static_cast<uint64_t>(seed);
  }

  // The output folder, before any work: an existing one needs --force, and
  // none may hold an input (checked again below with the files an .mlir
  // model names).
  std::vector<std::string> inputs = {modelPath, recipePath, calibText,
                                     tokenizerPath, tracePath};
  if (Status s = ::qc::checkOutputFolder(outDir, force, inputs, "-o"); !s)
    return fail(s);
  // The progress folder (see the file comment): a killed run's progress is
  // discarded only on request.
  const std::string resumeDir = StringRef(outDir).rtrim('/').str() + ".resume";
  const bool haveProgress = sys::fs::is_directory(resumeDir);
  if (haveProgress && !resume && !force)
    return fail(Status::error(
        resumeDir + " holds the progress of an interrupted run into " + outDir +
        "; continue it with --resume, or start over with --force"));

  mlir::MLIRContext ctx;
  mlir::OwningOpRef<mlir::ModuleOp> module;
  ::qc::ModelWeights weights;
  // Opened lazily: validation needs only the shapes, and a calibration-free
  // method then reads one layer at a time in its pass (a model larger than
  // memory quantizes in bounded memory).
  ::qc::LoadOptions loadOptions;
  loadOptions.lazy = true;
  if (Status s =
          mlir::qc::openModel(ctx, modelPath, module, weights, loadOptions);
      !s)
    return fail(s);
  if (mlir::qc::CheckpointRef ref; mlir::qc::getCheckpointRef(*module, ref))
    inputs.push_back(ref.path);
  if (auto overlay =
          (*module)->getAttrOfType<mlir::StringAttr>("llm.weights_overlay"))
    inputs.push_back(overlay.str());

  // Validation first: everything that can be known without calibrating.
  ::qc::ValidationResult validation;
  Status valid = ::qc::validateRecipe(recipe, weights, validation);
  if (!valid)
    return fail(Status::error(modelPath + " with " + recipePath + ": " +
                              valid.message()));
  outs() << "validated: " << validation.layers.size() << " layers to quantize ("
         << recipe.method << "), "
         << format("estimated peak memory %.1f MiB",
                   validation.peakBytes / 1048576.0);
  if (validation.physicalBytes > 0)
    outs() << format(" of %.0f MiB", validation.physicalBytes / 1048576.0);
  outs() << "\n";
  if (!validation.layoutNote.empty())
    outs() << "note: layout auto: the rows layout is used for every layer ("
           << validation.layoutNote << ")\n";
  // A recipe whose overrides skip every layer would write the model back
  // unquantized and exit 0: say so loudly, and fail under --strict.
  std::vector<std::string> driverWarnings;
  if (validation.layers.empty()) {
    std::string msg = recipePath +
                      ": the recipe quantizes no layer (its "
                      "overrides skip all of them): the output would hold "
                      "no quantized layer";
    if (strict)
      return fail(Status::error(msg + " (--strict)"));
    driverWarnings.push_back(msg);
  }
  if (!validation.raggedGroups.empty()) {
    outs() << "note: " << validation.raggedGroups.size()
           << " layers have a ragged last group (the group size does not "
              "divide K); qc's formats hold them, interchange loaders may "
              "not (set require_divisible_groups to refuse):\n";
    for (const std::string &l : validation.raggedGroups)
      outs() << "  " << l << "\n";
  }
  // Results go to stdout, progress to stderr (unbuffered): flush so that
  // the two stay in order when both are redirected to one file.
  outs().flush();
  for (const std::string &w : driverWarnings)
    errs() << "quant-compile: warning: " << w
           << "; --strict makes this an error\n";
  if (validateOnly)
    return 0;

  // Everything below is written into a temporary sibling of the output
  // folder, which replaces it only at the end (see the file comment).
  ::qc::OutputFolder folder;
  if (Status s = folder.begin(outDir, force, inputs, "-o"); !s)
    return fail(s);

  // The progress folder: checked against this run when resuming, else
  // started afresh.
  auto inResume = [&](const char *name) {
    SmallString<256> p(resumeDir);
    sys::path::append(p, name);
    return std::string(p.str());
  };
  const std::string identity = runIdentity(recipe);
  ProgressFolder progress(resumeDir);
  bool resuming = false;
  if (haveProgress && resume) {
    auto old = MemoryBuffer::getFile(inResume("run.json"));
    std::optional<json::Value> parsed;
    if (old) {
      json::Value v;
      if (json::parse((*old)->getBuffer().str(), v))
        parsed = std::move(v);
    }
    const json::Value *oldId = parsed ? parsed->find("identity") : nullptr;
    if (!oldId || !oldId->isString())
      return fail(Status::error(inResume("run.json") +
                                ": missing or unreadable; remove " + resumeDir +
                                " (or use --force) to start over"));
    if (oldId->asString() != identity) {
      SmallVector<StringRef> a, b;
      StringRef(identity).split(a, '\n');
      StringRef(oldId->asString()).split(b, '\n');
      std::string diff;
      for (size_t i = 0; i < std::max(a.size(), b.size()) && diff.empty(); ++i)
        if ((i < a.size() ? a[i] : "") != (i < b.size() ? b[i] : ""))
          diff = "now '" + (i < a.size() ? a[i] : "").str() + "', was '" +
                 (i < b.size() ? b[i] : "").str() + "'";
      return fail(Status::error(resumeDir +
                                " is the progress of a different run (" + diff +
                                "); start over with --force"));
    }
    resuming = true;
    progress.started();
  } else {
    if (resume)
      outs() << "note: " << resumeDir
             << " holds no progress; starting from the beginning\n";
    if (haveProgress)
      if (std::error_code ec = sys::fs::remove_directories(resumeDir))
        return fail(
            Status::error(resumeDir + ": cannot remove: " + ec.message()));
    if (std::error_code ec = sys::fs::create_directories(resumeDir))
      return fail(
          Status::error(resumeDir + ": cannot create: " + ec.message()));
    progress.started();
    json::Value run = json::Value::object();
    run.set("tool", json::Value::string("quant-compile"));
    run.set("identity", json::Value::string(identity));
    if (Status s = writeText(inResume("run.json"), json::write(run) + "\n"); !s)
      return fail(s);
  }

  // Calibration (in memory: nothing is written before it succeeded).
  json::Value calibReport = json::Value::object();
  std::optional<::qc::CalibrationTrace> calibrated;
  // Paths as they will be (printed, recorded) and as they are while the
  // run writes them.
  auto inOut = [&](const char *name) {
    SmallString<256> p(outDir.getValue());
    sys::path::append(p, name);
    return std::string(p.str());
  };
  auto inTemp = [&](const char *name) {
    SmallString<256> p(folder.tempPath());
    sys::path::append(p, name);
    return std::string(p.str());
  };
  std::string trace = inOut("trace.safetensors");
  std::string traceWritten = inTemp("trace.safetensors");
  const std::string traceKept = inResume("trace.safetensors");
  bool traceResumed = false;
  // What the report says about a trace this run recorded (or resumed).
  auto describeTrace = [&](const ::qc::CalibrationTrace &ct) {
    calibReport.set("text", json::Value::string(calibText));
    calibReport.set("tokens", json::Value::integer(std::strtoll(
                                  ct.settings.count("tokens")
                                      ? ct.settings.at("tokens").c_str()
                                      : "0",
                                  nullptr, 10)));
    calibReport.set("sampled_sequences",
                    json::Value::integer(ct.sampleSequences));
    calibReport.set("sample_length", json::Value::integer(ct.sampleLength));
    calibReport.set("fingerprint", json::Value::string(ct.fingerprint));
  };
  if (::qc::methodNeedsCalibration(recipe.method)) {
    auto tc = std::chrono::steady_clock::now();
    if (!tracePath.empty()) {
      trace = tracePath;
      traceWritten = tracePath;
      calibReport.set("trace", json::Value::string(trace));
    } else if (resuming && sys::fs::exists(traceKept)) {
      // The interrupted run's trace: the journal belongs to it.
      ::qc::CalibrationTrace ct;
      if (Status s = ::qc::readTrace(traceKept, ct,
                                     ::qc::recipeNeedsLayerStatistics(recipe));
          !s)
        return fail(Status::error(s.message() + " (remove " + resumeDir +
                                  " or use --force to start over)"));
      describeTrace(ct);
      calibReport.set("warnings", json::Value::array());
      calibReport.set("resumed", json::Value::boolean(true));
      traceResumed = true;
      if (!noProgress)
        errs() << "quant-compile: resumed the calibration trace from "
               << traceKept << "\n";
    } else {
      if (calibText.empty())
        return fail(Status::error(recipe.method +
                                  " needs calibration: pass --calib TEXT "
                                  "(or --trace TRACE)"));
      // Per-layer statistics come from a run of the whole model; the
      // block-wise methods need only the sampled sequences (embedding rows
      // of the sampled windows), which leaves the model on disk.
      bool statistics = ::qc::recipeNeedsLayerStatistics(recipe);
      if (!statistics && recipe.samples < 1)
        return fail(Status::error(
            recipePath + ": " + recipe.method +
            " quantizes block by block from sampled calibration sequences; "
            "calibration.samples must be at least 1"));
      if (statistics)
        if (Status s = weights.materializeAll(); !s)
          return fail(s);
      std::unique_ptr<::qc::TextTokenizer> tok;
      if (Status s = mlir::qc::openModelTokenizer(
              *module, modelPath, tokenizerPath, weights.config.vocabSize, tok);
          !s)
        return fail(s);
      std::vector<int> tokens;
      if (Status s =
              mlir::qc::encodeCorpus(*tok, calibText, tokens, recipe.maxTokens);
          !s)
        return fail(s);
      mlir::qc::CalibrationOptions copts;
      copts.windowLen = recipe.window;
      copts.maxTokens = recipe.maxTokens;
      copts.sampleSequences = recipe.samples;
      copts.textName = calibText;
      copts.progress = !noProgress;
      copts.samplesOnly = !statistics;
      std::vector<std::string> warnings;
      copts.warnings = &warnings;
      ::qc::CalibrationTrace ct;
      if (Status s =
              mlir::qc::collectTrace(*module, weights, tokens, copts, ct);
          !s)
        return fail(s.withContext(calibText));
      for (const std::string &w : warnings)
        errs() << "quant-compile: warning: " << calibText << ": " << w << "\n";
      describeTrace(ct);
      json::Value warn = json::Value::array();
      for (const std::string &w : warnings)
        warn.push(json::Value::string(w));
      calibReport.set("warnings", warn);
      calibrated = std::move(ct);
    }
    calibReport.set("seconds", json::Value::number(since(tc)));
  }

  // The trace is kept with the progress (a resumed run reuses it) and
  // linked into the output folder.
  if (calibrated)
    if (Status s = ::qc::writeTrace(*calibrated, traceKept); !s)
      return fail(s);
  if (calibrated || traceResumed)
    if (Status s = linkOrCopy(traceKept, traceWritten); !s)
      return fail(s);

  // Quantization: one pass, printed (with the final paths) for replay with
  // quant-opt, run on the temporary folder's files.
  std::string weightsOut = inOut("weights.safetensors");
  std::string pipeline = ::qc::recipePipeline(recipe, trace, weightsOut);
  std::string pipelineRun = ::qc::recipePipeline(
      recipe, traceWritten, inTemp("weights.safetensors"), inResume("journal"));
  outs() << "pipeline: " << pipeline << "\n";
  outs().flush();
  mlir::qc::registerAllQCPasses();
  std::string diagText;
  std::vector<std::string> passWarnings;
  mlir::ScopedDiagnosticHandler handler(&ctx, [&](mlir::Diagnostic &d) {
    std::string msg;
    llvm::raw_string_ostream os(msg);
    os << d;
    if (d.getSeverity() == mlir::DiagnosticSeverity::Warning)
      passWarnings.push_back(msg);
    else
      diagText += msg + "\n";
    return mlir::success();
  });
  mlir::PassManager pm(&ctx);
  // The pass manager is anchored on builtin.module already: parse the
  // pass inside the printed "builtin.module(...)".
  StringRef inner =
      StringRef(pipelineRun).drop_front(strlen("builtin.module(")).drop_back(1);
  if (failed(mlir::parsePassPipeline(inner, pm, errs())))
    return fail(Status::error("internal error: bad pipeline " + pipeline));
  ProgressObserver observer(!noProgress, validation.layers);
  ::qc::setQuantizationObserver(&observer);
  auto tq = std::chrono::steady_clock::now();
  bool ok = succeeded(pm.run(*module));
  ::qc::setQuantizationObserver(nullptr);
  double quantSeconds = since(tq);
  // Messages name the files as they will be, not the temporary folder.
  auto finalNames = [&](std::string text) {
    const std::string &tmp = folder.tempPath();
    std::string dest = StringRef(outDir).rtrim('/').str();
    for (size_t at = text.find(tmp); at != std::string::npos;
         at = text.find(tmp, at + dest.size()))
      text.replace(at, tmp.size(), dest);
    return text;
  };
  if (!ok)
    return fail(Status::error(finalNames(diagText)));
  for (std::string &w : passWarnings)
    w = finalNames(w);
  for (const std::string &w : passWarnings)
    errs() << "quant-compile: warning: " << w << "\n";
  passWarnings.insert(passWarnings.begin(), driverWarnings.begin(),
                      driverWarnings.end());

  // The module names its overlay by absolute path: the final one, not the
  // temporary folder's (as the pass itself would have spelled it).
  {
    SmallString<256> finalOverlay(weightsOut);
    sys::fs::make_absolute(finalOverlay);
    (*module)->setAttr("llm.weights_overlay",
                       mlir::StringAttr::get(&ctx, finalOverlay.str()));
  }
  std::string ir;
  {
    raw_string_ostream os(ir);
    module->print(os);
  }
  std::string modelOut = inOut("model.mlir");
  if (Status s = writeText(inTemp("model.mlir"), ir); !s)
    return fail(s);

  // report.json: everything a user asks after a run, one entry per layer.
  // The layout is documented (and versioned) in docs/report.schema.json;
  // bump kReportSchemaVersion when a key changes meaning or type.
  constexpr int64_t kReportSchemaVersion = 1;
  json::Value report = json::Value::object();
  report.set("schema_version", json::Value::integer(kReportSchemaVersion));
  report.set("tool", json::Value::string("quant-compile"));
  report.set("model", json::Value::string(modelPath));
  report.set("recipe", recipe.source);
  report.set("pipeline", json::Value::string(pipeline));
  report.set("seed", recipe.seed ? json::Value::unsignedInteger(*recipe.seed)
                                 : json::Value());
  json::Value v = json::Value::object();
  v.set("layers", json::Value::integer(validation.layers.size()));
  json::Value ragged = json::Value::array();
  for (const std::string &l : validation.raggedGroups)
    ragged.push(json::Value::string(l));
  v.set("ragged_groups", ragged);
  v.set("estimated_peak_bytes", json::Value::number(validation.peakBytes));
  report.set("validation", v);
  report.set("calibration", calibReport);
  json::Value layers = json::Value::array();
  int64_t fallbacks = 0;
  for (const ::qc::LayerRecord &r : observer.records) {
    json::Value l = json::Value::object();
    l.set("layer", json::Value::string(r.layer));
    l.set("method", json::Value::string(r.method));
    l.set("bits", json::Value::integer(r.bits));
    l.set("group_size", json::Value::integer(r.groupSize));
    l.set("sym", json::Value::boolean(r.sym));
    l.set("loss", number(r.loss));
    l.set("damping", number(r.damping));
    l.set("tokens",
          r.tokens >= 0 ? json::Value::integer(r.tokens) : json::Value());
    l.set("fallback", json::Value::boolean(r.fallback));
    l.set("note", json::Value::string(r.note));
    l.set("seconds", json::Value::number(r.seconds));
    fallbacks += r.fallback;
    layers.push(std::move(l));
  }
  report.set("layers", layers);
  json::Value warn = json::Value::array();
  for (const std::string &w : passWarnings)
    warn.push(json::Value::string(w));
  report.set("warnings", warn);
  report.set("quantization_seconds", json::Value::number(quantSeconds));
  report.set("total_seconds", json::Value::number(since(t0)));
  report.set("resumed_layers", json::Value::integer(observer.resumed));
  report.set("peak_rss_bytes", json::Value::integer(peakRssBytes()));
  json::Value outputs = json::Value::object();
  outputs.set("model", json::Value::string(modelOut));
  outputs.set("weights", json::Value::string(weightsOut));
  if (::qc::methodNeedsCalibration(recipe.method))
    outputs.set("trace", json::Value::string(trace));
  report.set("outputs", outputs);
  json::WriteOptions wopts;
  wopts.pretty = true;
  if (Status s =
          writeText(inTemp("report.json"), json::write(report, wopts) + "\n");
      !s)
    return fail(s);
  if (Status s = folder.commit(); !s)
    return fail(s);
  // The run is complete: its progress is not needed any more.
  progress.finished();
  outs() << "wrote " << modelOut << " (" << observer.records.size()
         << " layers quantized, " << fallbacks << " fallbacks, "
         << format("%.2f s quantization, %.2f s total, peak memory %.0f MiB",
                   quantSeconds, since(t0), peakRssBytes() / 1048576.0)
         << "); report: " << inOut("report.json") << "\n";
  return 0;
}
