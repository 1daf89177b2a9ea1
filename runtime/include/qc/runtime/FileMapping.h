//===- FileMapping.h - Read-only whole-file memory mappings -----*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// The one place where checkpoint readers (safetensors, GGUF) open and map a
// file: refusing what is not a regular file (a FIFO or a directory named
// like a weight file must not block or mislead), and anything too large for
// the address space, with one error line naming the path. The readers then
// validate the bytes; nothing here trusts the content.
//
//===----------------------------------------------------------------------===//

#ifndef QC_RUNTIME_FILEMAPPING_H
#define QC_RUNTIME_FILEMAPPING_H

#include "qc/runtime/Status.h"

#include <cstddef>
#include <cstdint>
#include <string>

namespace qc {

/// A read-only mapping of a whole file (or nothing, for files smaller than
/// the caller's minimum: mmap of length 0 fails, and a format may want to
/// report a too-short file as a format error instead).
struct FileMapping {
  void *address = nullptr; ///< nullptr when nothing was mapped
  size_t size = 0;         ///< the file's size, mapped or not
};

/// Opens `path` read-only, checks that it is a regular file whose size fits
/// in size_t, and maps it when it holds at least `minSizeToMap` bytes (at
/// least 1). Errors: "<path>: cannot open: <reason>", "<path>: not a regular
/// file", "<path>: file too large to map", "<path>: cannot mmap: <reason>".
Status mapFileReadOnly(const std::string &path, size_t minSizeToMap,
                       FileMapping &out);

/// Releases a mapping made by mapFileReadOnly (a no-op when nothing was
/// mapped).
void unmapFile(const FileMapping &mapping);

/// Removes `path` and everything below it (symlinks are removed, never
/// followed). Errors are ignored: used for cleanup only.
void removeTree(const std::string &path);

/// The mkstemp / mkdtemp template of a temporary sibling of `finalPath`:
/// "<dir>/.<base>.<kind>-<pid>-XXXXXX" (kind: "tmp", "staged", "old"). The
/// process id in the name lets a later run tell the leftovers of a killed
/// run from the temporaries of a run still in progress.
std::string tempSiblingTemplate(const std::string &finalPath, const char *kind);

/// Removes the temporary siblings of `finalPath` (any kind, as
/// tempSiblingTemplate names them) that a run killed before it could clean
/// up left behind: those whose process no longer exists, owned by this
/// user. A temporary of a running process is never touched. Errors are
/// ignored: this is cleanup, called before a tool creates its own
/// temporary for the same output.
void removeStaleTemps(const std::string &finalPath);

} // namespace qc

#endif // QC_RUNTIME_FILEMAPPING_H
