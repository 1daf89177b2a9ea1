//===- FileMapping.cpp - Read-only whole-file memory mappings -------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/FileMapping.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace qc {

Status mapFileReadOnly(const std::string &path, size_t minSizeToMap,
                       FileMapping &out) {
  out = FileMapping();
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    int err = errno;
    return Status::error(path + ": cannot open: " + std::strerror(err));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return Status::error(path + ": cannot stat: " + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::error(path + ": not a regular file");
  }
  if (static_cast<uint64_t>(st.st_size) >
      static_cast<uint64_t>(std::numeric_limits<size_t>::max())) {
    ::close(fd);
    return Status::error(path + ": file too large to map");
  }
  FileMapping m;
  m.size = static_cast<size_t>(st.st_size);
  if (m.size >= std::max<size_t>(minSizeToMap, 1)) {
    void *p = ::mmap(nullptr, m.size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      return Status::error(path + ": cannot mmap: " + std::strerror(err));
    }
    m.address = p;
  }
  ::close(fd);
  out = m;
  return Status::ok();
}

void unmapFile(const FileMapping &mapping) {
  if (mapping.address)
    ::munmap(mapping.address, mapping.size);
}

} // namespace qc
