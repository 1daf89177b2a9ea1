//===- quant-opt.cpp - The qc optimizer driver ----------------------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// MlirOptMain with the `llm` and `wq` dialects, every qc pass and pipeline,
// and the upstream dialects and passes the pipelines use. This is the lit
// driver and the tool for inspecting any stage of a lowering.
//
// The quantization passes run for seconds to minutes, so quant-opt reports
// their progress (layers done, elapsed, ETA) on stderr through the passes'
// QuantizationObserver and qc::Progress, as quant-compile does: by default
// only when stderr is a terminal (logs and lit output stay clean),
// --progress forces it on, --no-progress off.
//
// Nothing partial is left behind: the IR output path (-o) is checked before
// any pass runs (a folder, a missing folder or an unwritable place is an
// error before the weights are computed), and the weights-out files of the
// wq-* passes are staged (qc/runtime/OutputSafety.h) and renamed into place
// only when the whole run, the IR output included, succeeded.
//
//===----------------------------------------------------------------------===//

#include "qc/InitAllDialects.h"
#include "qc/InitAllPasses.h"
#include "qc/Quantization/Observer.h"
#include "qc/Quantization/Algorithms/OptionRanges.h"
#include "qc/runtime/OutputSafety.h"
#include "qc/runtime/ThreadPool.h"
#include "qc/runtime/Progress.h"

#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/raw_ostream.h"

#include <memory>

#include <sys/stat.h>
#include <unistd.h>

static llvm::cl::opt<bool> progressOn(
    "progress",
    llvm::cl::desc("Report quantization progress (layers, elapsed, ETA) on "
                   "stderr even when it is not a terminal (default: only on "
                   "a terminal)"),
    llvm::cl::init(false));
static llvm::cl::opt<bool> progressOff(
    "no-progress",
    llvm::cl::desc("Never report quantization progress (default: off)"),
    llvm::cl::init(false));

static llvm::cl::opt<int>
    threads("num-threads",
            llvm::cl::desc("Worker threads of the quantization passes (0 = "
                           "QC_THREADS when set, else all cores) (default: 0)"),
            llvm::cl::init(0));

/// Printed after the options by --help.
static llvm::cl::extrahelp examples(
    "EXAMPLES:\n"
    "  # 4-bit RTN, group size 32 (the pass options and their defaults are\n"
    "  # listed above under --wq-rtn):\n"
    "  quant-opt model.mlir -wq-rtn=\"bits=4 group-size=32 "
    "weights-out=q.safetensors\" -o model.q.mlir\n"
    "  # GPTQ from a quant-calibrate trace, with progress in a log:\n"
    "  quant-opt model.mlir -wq-gptq=\"trace=trace.safetensors "
    "weights-out=q.safetensors\" --progress -o model.q.mlir 2> log\n"
    "  # Lower a model to the LLVM dialect (the CPU path):\n"
    "  quant-opt model.q.mlir --qc-lower-to-cpu -o model.ll.mlir\n");

namespace {

/// One qc::Progress line per quantization pass, counting finished layers.
class PassProgress : public ::qc::QuantizationObserver {
public:
  void passStarted(const std::string &pass, int64_t layers) override {
    progress = std::make_unique<::qc::Progress>("quant-opt: " + pass, layers,
                                                enabled());
  }
  void layerDone(const ::qc::LayerRecord &, int64_t index,
                 int64_t layers) override {
    if (!progress)
      return;
    progress->update(index + 1);
    if (index + 1 >= layers)
      progress->finish();
  }

private:
  /// Decided when the first pass starts: the options are parsed by then.
  static bool enabled() {
    if (progressOff)
      return false;
    return progressOn || ::isatty(STDERR_FILENO);
  }
  std::unique_ptr<::qc::Progress> progress;
};

/// Checks that the IR can be written to `path` before any work: not a
/// folder, and in an existing folder this process may write to.
bool checkOutputPath(const std::string &path) {
  if (path.empty() || path == "-")
    return true;
  auto fail = [&](const std::string &why) {
    llvm::errs() << "quant-opt: error: -o " << path << ": " << why
                 << " (nothing was written)\n";
    return false;
  };
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode))
      return fail("is a folder; name the output file");
    if (::access(path.c_str(), W_OK) != 0)
      return fail("is not writable");
    return true;
  }
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "."
                    : slash == 0               ? "/"
                                               : path.substr(0, slash);
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return fail("the folder " + dir + " does not exist");
  if (::access(dir.c_str(), W_OK) != 0)
    return fail("the folder " + dir + " is not writable");
  return true;
}

} // namespace

int main(int argc, char **argv) {
  ::qc::ignoreFileSizeSignal();
  mlir::DialectRegistry registry;
  mlir::qc::registerAllQCDialects(registry);
  mlir::qc::registerAllQCPasses();
  PassProgress observer;
  ::qc::setQuantizationObserver(&observer);
  auto [input, output] = mlir::registerAndParseCLIOptions(
      argc, argv, "qc optimizer: weight-only quantization compiler\n",
      registry);
  if (::qc::Status s =
          ::qc::quant::checkIntOption("compile", "num-threads", threads);
      !s) {
    llvm::errs() << "quant-opt: error: --" << s.message() << "\n";
    return 1;
  }
  // One pool for every pass of the run (qc/runtime/ThreadPool.h).
  ::qc::setThreadCount(threads);
  if (!checkOutputPath(output))
    return 1;
  ::qc::setStagingEnabled(true);
  bool ok =
      mlir::succeeded(mlir::MlirOptMain(argc, argv, input, output, registry));
  if (!ok) {
    ::qc::discardStaged();
    return 1;
  }
  if (::qc::Status s = ::qc::commitStaged(); !s) {
    llvm::errs() << "quant-opt: error: " << s.message() << "\n";
    return 1;
  }
  return 0;
}
