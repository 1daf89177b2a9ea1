//===- MemFile.h - Fuzz input as a file path --------------------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// The trace and recipe readers take a path, not bytes. MemFile holds the
// fuzz input in an anonymous memory file (memfd_create) and names it
// "/proc/self/fd/N", so each input is a real file to the parser without
// touching the disk.
//
//===----------------------------------------------------------------------===//

#ifndef QC_FUZZ_MEMFILE_H
#define QC_FUZZ_MEMFILE_H

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <sys/mman.h>
#include <unistd.h>

namespace qc::fuzz {

/// One anonymous in-memory file holding a fuzz input.
class MemFile {
public:
  /// Creates the file and writes `data` into it; aborts on failure (a broken
  /// fuzzing environment, not a finding).
  MemFile(const uint8_t *data, size_t size) {
    fd = memfd_create("qc-fuzz", 0);
    if (fd < 0)
      std::abort();
    size_t done = 0;
    while (done < size) {
      ssize_t n = ::write(fd, data + done, size - done);
      if (n <= 0)
        std::abort();
      done += static_cast<size_t>(n);
    }
    path = "/proc/self/fd/" + std::to_string(fd);
  }
  ~MemFile() { ::close(fd); }
  MemFile(const MemFile &) = delete;
  MemFile &operator=(const MemFile &) = delete;

  /// A path that opens the file.
  std::string path;

private:
  int fd = -1;
};

} // namespace qc::fuzz

#endif // QC_FUZZ_MEMFILE_H
