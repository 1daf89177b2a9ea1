//===- OutputSafety.h - An output is never one of the inputs -----*- C++ -*-===//
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
//===----------------------------------------------------------------------===//

#ifndef QC_RUNTIME_OUTPUTSAFETY_H
#define QC_RUNTIME_OUTPUTSAFETY_H

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

} // namespace qc

#endif // QC_RUNTIME_OUTPUTSAFETY_H
