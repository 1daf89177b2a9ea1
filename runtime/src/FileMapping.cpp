//===- FileMapping.cpp - Read-only whole-file memory mappings -------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/FileMapping.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
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

namespace {

/// The folder and base name of `path` ("" folder: the current one).
void splitPath(const std::string &path, std::string &dir, std::string &base) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) {
    dir.clear();
    base = path;
  } else {
    dir = path.substr(0, slash + 1);
    base = path.substr(slash + 1);
  }
}

} // namespace

void removeTree(const std::string &path) {
  if (path.empty())
    return;
  ::nftw(
      path.c_str(),
      [](const char *p, const struct stat *, int, struct FTW *) {
        ::remove(p);
        return 0;
      },
      64, FTW_DEPTH | FTW_PHYS);
}

std::string tempSiblingTemplate(const std::string &finalPath,
                                const char *kind) {
  std::string dir, base;
  splitPath(finalPath, dir, base);
  return dir + "." + base + "." + kind + "-" + std::to_string(::getpid()) +
         "-XXXXXX";
}

void removeStaleTemps(const std::string &finalPath) {
  std::string dir, base;
  splitPath(finalPath, dir, base);
  if (base.empty())
    return;
  DIR *d = ::opendir(dir.empty() ? "." : dir.c_str());
  if (!d)
    return;
  const std::string prefix = "." + base + ".";
  std::vector<std::string> stale;
  while (struct dirent *e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.compare(0, prefix.size(), prefix) != 0)
      continue;
    size_t p = prefix.size();
    bool kindOk = false;
    for (const char *kind : {"tmp-", "staged-", "old-"}) {
      size_t n = std::strlen(kind);
      if (name.compare(p, n, kind) == 0) {
        p += n;
        kindOk = true;
        break;
      }
    }
    if (!kindOk)
      continue;
    // <pid>-XXXXXX: digits, a dash, then mkstemp's six characters.
    size_t digits = p;
    while (digits < name.size() && std::isdigit((unsigned char)name[digits]))
      ++digits;
    if (digits == p || digits - p > 9 || digits >= name.size() ||
        name[digits] != '-' || name.size() - digits - 1 != 6)
      continue;
    long pid = std::strtol(name.c_str() + p, nullptr, 10);
    if (pid <= 0 || pid == long(::getpid()))
      continue;
    // Alive (or not ours to signal): leave it.
    if (::kill(pid_t(pid), 0) == 0 || errno != ESRCH)
      continue;
    std::string full = dir + name;
    struct stat st;
    if (::lstat(full.c_str(), &st) != 0 || st.st_uid != ::geteuid())
      continue;
    stale.push_back(full);
  }
  ::closedir(d);
  for (const std::string &path : stale)
    removeTree(path);
}

} // namespace qc
