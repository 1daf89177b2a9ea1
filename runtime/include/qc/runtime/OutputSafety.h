//===- OutputSafety.h - An output is never one of the inputs ----*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Every tool checks, before it starts any work, that no file it is about to
// write is one of the files it reads: writing a quantized overlay over the
// checkpoint it was computed from, or a trace over the tokenizer, destroys
// the input. Files are compared by device and inode, so a different
// spelling, a relative path or a link does not hide the clash.
//
// A tool that writes a folder (quant-compile, quant-import's folder exports)
// writes it as a whole through OutputFolder: every file goes into a fresh
// temporary sibling folder, which replaces the destination only once the
// whole run succeeded. So the destination either holds one complete run or
// is untouched, and a failed run leaves no temporary folder behind.
//
//===----------------------------------------------------------------------===//

#ifndef QC_RUNTIME_OUTPUTSAFETY_H
#define QC_RUNTIME_OUTPUTSAFETY_H

#include "qc/runtime/FileMapping.h" // removeTree
#include "qc/runtime/Status.h"

#include <string>
#include <vector>

namespace qc {

/// The files a model input consists of: `path` itself when it is a file;
/// for a folder, the regular files directly inside it (config, shards,
/// tokenizer). Missing paths give nothing.
std::vector<std::string> inputFilesOf(const std::string &path);

/// Fails when `output` (a file that may not exist yet) is the same file as
/// one of `inputs` (device and inode). The error names `what` (e.g.
/// "weights-out"), the output, the input it would overwrite, and says that
/// nothing was written.
Status checkOutputIsNotAnInput(const std::string &output,
                               const std::vector<std::string> &inputs,
                               const std::string &what);

/// A folder written as a whole. Usage: begin(), write every file under
/// tempPath(), then commit(); destroying the object without a successful
/// commit() removes the temporary folder (and everything in it), so every
/// early error return of a tool cleans up.
///
/// Policy: the destination may not exist yet (its parent folders are
/// created), or be an empty folder; an existing non-empty folder is refused
/// unless `force`, which replaces it whole at commit() (an atomic exchange
/// with renameat2(RENAME_EXCHANGE) where the file system has it, else two
/// renames), after which the old folder is removed. An existing folder
/// that holds anything but regular files (a subfolder, a link) is not an
/// output folder of a qc tool and is refused even with `force`, so that a
/// mistyped -o never deletes someone's folder. A destination that is
/// not a folder is always refused, and so is one that holds (or is) one of
/// the run's inputs, even with `force`, because replacing it would destroy
/// that input.
class OutputFolder {
public:
  OutputFolder() = default;
  OutputFolder(const OutputFolder &) = delete;
  OutputFolder &operator=(const OutputFolder &) = delete;
  /// Removes the temporary folder unless commit() succeeded.
  ~OutputFolder();

  /// Checks `dest` against the policy above and creates the temporary
  /// folder ".<name>.tmp-<pid>-XXXXXX" beside it. `inputs` are the files (or
  /// folders) the run reads; `what` names the option in errors (e.g. "-o").
  /// Nothing is created when this fails.
  Status begin(const std::string &dest, bool force,
               const std::vector<std::string> &inputs, const std::string &what);

  /// The folder to write into until commit().
  const std::string &tempPath() const { return temp; }
  /// The destination, as given to begin().
  const std::string &finalPath() const { return dest; }

  /// Moves the temporary folder into place (see the policy above). On
  /// failure the destination is untouched and the temporary folder is
  /// removed.
  Status commit();

  /// Removes the temporary folder now (a no-op after commit()).
  void discard();

private:
  std::string dest, temp, what;
  bool force = false;
  bool existed = false;
  bool committed = false;
};

/// Checks that a folder about to be written as a whole (see OutputFolder)
/// may be: the same rules as OutputFolder::begin(), without creating
/// anything. For tools that want to fail before any work.
Status checkOutputFolder(const std::string &dest, bool force,
                         const std::vector<std::string> &inputs,
                         const std::string &what);

/// Staged outputs: a tool whose run writes files in the middle (quant-opt:
/// a wq-* pass writes its weights-out before the IR is printed) turns
/// staging on; writers then ask stagePath() where to write, which gives a
/// temporary sibling (".<name>.staged-<pid>-XXXXXX") and records it; readers of
/// a file the run may have written ask readPathFor(); at the end the tool
/// calls commitStaged() (each staged file renamed over its final path) when
/// the whole run succeeded, or discardStaged() (all removed) when it did
/// not, so that a failed run leaves no partial output. Not thread-safe:
/// tools stage from one thread.
void setStagingEnabled(bool enabled);

/// Where to write `finalPath` now: `finalPath` itself when staging is off;
/// else a fresh temporary sibling (the same one for repeated calls with the
/// same path; an earlier staged version is removed). Empty on failure,
/// with `error` set.
std::string stagePath(const std::string &finalPath, std::string &error);

/// The file to read for `path`: its staged version when this run staged
/// one, else `path`.
std::string readPathFor(const std::string &path);

/// Renames every staged file over its final path (stopping at the first
/// failure, which removes the remaining staged files).
Status commitStaged();

/// Removes every staged file.
void discardStaged();

/// Every tool calls this first. Under a file-size limit (ulimit -f,
/// RLIMIT_FSIZE) the kernel's default action for SIGXFSZ kills the process
/// (with LLVM's crash handler printing a stack dump) in the middle of a
/// write; ignored, the write fails with EFBIG instead and the tool reports
/// "write failed ... File too large" naming the file, removes its temporary
/// output and exits 1 like any other write error. Call it after InitLLVM
/// (which installs a handler for the signal) and before starting threads.
void ignoreFileSizeSignal();

} // namespace qc

#endif // QC_RUNTIME_OUTPUTSAFETY_H
