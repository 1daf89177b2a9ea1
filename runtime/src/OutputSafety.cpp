//===- OutputSafety.cpp - An output is never one of the inputs ------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/OutputSafety.h"

#include "qc/runtime/FileMapping.h"

#include "qc/runtime/Safetensors.h"

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

namespace qc {

std::vector<std::string> inputFilesOf(const std::string &path) {
  std::vector<std::string> out;
  struct stat st;
  if (path.empty() || ::stat(path.c_str(), &st) != 0)
    return out;
  if (!S_ISDIR(st.st_mode)) {
    out.push_back(path);
    return out;
  }
  if (DIR *d = ::opendir(path.c_str())) {
    while (struct dirent *e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name == "." || name == "..")
        continue;
      std::string full = path + (path.back() == '/' ? "" : "/") + name;
      struct stat fs;
      if (::stat(full.c_str(), &fs) == 0 && S_ISREG(fs.st_mode))
        out.push_back(full);
    }
    ::closedir(d);
  }
  return out;
}

Status checkOutputIsNotAnInput(const std::string &output,
                               const std::vector<std::string> &inputs,
                               const std::string &what) {
  struct stat o;
  // An output that does not exist yet cannot be an input.
  if (::stat(output.c_str(), &o) != 0)
    return Status::ok();
  for (const std::string &in : inputs) {
    struct stat i;
    if (::stat(in.c_str(), &i) != 0)
      continue;
    if (i.st_dev == o.st_dev && i.st_ino == o.st_ino)
      return Status::error(
          what + " " + output + " is the input " + in +
          ": writing it would destroy the input; choose another output "
          "(nothing was written)");
  }
  return Status::ok();
}

namespace {

/// `path` with trailing slashes removed ("/" stays "/").
std::string withoutTrailingSlash(std::string path) {
  while (path.size() > 1 && path.back() == '/')
    path.pop_back();
  return path;
}

/// The folder part of `path` ("." for a bare name).
std::string parentOf(const std::string &path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos)
    return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

/// The last component of `path`.
std::string baseNameOf(const std::string &path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

/// `path` made absolute against the working directory (not resolved).
std::string absolute(const std::string &path) {
  if (!path.empty() && path[0] == '/')
    return path;
  char buf[PATH_MAX];
  if (!::getcwd(buf, sizeof buf))
    return path;
  return std::string(buf) + "/" + path;
}

/// Whether `dir` (dev/ino `d`) is `path` or one of the folders above it,
/// as spelled or after resolving links.
bool isInside(const std::string &path, const struct stat &d) {
  std::vector<std::string> spellings = {absolute(path)};
  if (char *real = ::realpath(path.c_str(), nullptr)) {
    spellings.push_back(real);
    std::free(real);
  }
  for (std::string p : spellings) {
    p = withoutTrailingSlash(p);
    for (int depth = 0; depth < 4096; ++depth) {
      struct stat st;
      if (::stat(p.c_str(), &st) == 0 && st.st_dev == d.st_dev &&
          st.st_ino == d.st_ino)
        return true;
      if (p == "/" || p.empty())
        break;
      p = parentOf(p);
    }
  }
  return false;
}

/// Whether the folder `path` holds no entry.
bool isEmptyFolder(const std::string &path) {
  DIR *d = ::opendir(path.c_str());
  if (!d)
    return false;
  bool empty = true;
  while (struct dirent *e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
      empty = false;
      break;
    }
  }
  ::closedir(d);
  return empty;
}

/// mkdir -p.
bool makeFolders(const std::string &path) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0)
    return S_ISDIR(st.st_mode);
  std::string parent = parentOf(withoutTrailingSlash(path));
  if (parent != path && !makeFolders(parent))
    return false;
  return ::mkdir(path.c_str(), 0777) == 0 || errno == EEXIST;
}

void fsyncFolder(const std::string &path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void)::fsync(fd);
    ::close(fd);
  }
}

/// Checks the policy; `existed` says whether `dest` exists as a folder
/// holding something.
Status checkFolderPolicy(const std::string &dest, bool force,
                         const std::vector<std::string> &inputs,
                         const std::string &what, bool &existed) {
  existed = false;
  if (dest.empty())
    return Status::error(what + ": the output folder is empty");
  std::string base = baseNameOf(dest);
  if (base == "." || base == ".." || dest == "/")
    return Status::error(what + " " + dest +
                         ": name the output folder itself (not '.', '..' or "
                         "'/')");
  struct stat st;
  if (::lstat(dest.c_str(), &st) != 0) {
    if (errno == ENOENT)
      return Status::ok();
    int err = errno;
    return Status::error(what + " " + dest + ": " + std::strerror(err));
  }
  if (S_ISLNK(st.st_mode) || !S_ISDIR(st.st_mode))
    return Status::error(what + " " + dest +
                         " exists and is not a folder (a file or a link); "
                         "choose another output folder (nothing was "
                         "written)");
  for (const std::string &in : inputs)
    if (!in.empty() && isInside(in, st))
      return Status::error(
          what + " " + dest + " holds the input " + in +
          ": replacing the folder would destroy the input; choose another "
          "output folder (nothing was written)");
  if (isEmptyFolder(dest))
    return Status::ok();
  existed = true;
  // qc writes flat folders of regular files: a folder holding anything
  // else (a subfolder, a link) is someone's folder, never deleted, even
  // with --force.
  if (DIR *d = ::opendir(dest.c_str())) {
    std::string odd;
    while (struct dirent *e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name == "." || name == "..")
        continue;
      struct stat est;
      if (::lstat((dest + "/" + name).c_str(), &est) != 0 ||
          !S_ISREG(est.st_mode)) {
        odd = name;
        break;
      }
    }
    ::closedir(d);
    if (!odd.empty())
      return Status::error(what + " " + dest + " exists and holds '" + odd +
                           "', which is not a regular file: it is not an "
                           "output folder of this tool and is never "
                           "replaced, even with --force; choose another "
                           "output folder (nothing was written)");
  }
  if (!force)
    return Status::error(what + " " + dest +
                         " already exists; pass --force to replace it whole, "
                         "or choose another output folder (nothing was "
                         "written)");
  return Status::ok();
}

} // namespace

namespace {
struct Staging {
  bool enabled = false;
  std::vector<std::pair<std::string, std::string>> files; ///< final, staged
};
Staging &staging() {
  static Staging s;
  return s;
}
} // namespace

void setStagingEnabled(bool enabled) { staging().enabled = enabled; }

std::string stagePath(const std::string &finalPath, std::string &error) {
  Staging &st = staging();
  if (!st.enabled)
    return finalPath;
  for (auto &[fin, staged] : st.files)
    if (fin == finalPath)
      return staged;
  // A folder at the final path would only fail at the final rename, after
  // the whole run; say so now, in the words a direct write would use.
  struct stat existing;
  if (::stat(finalPath.c_str(), &existing) == 0 && S_ISDIR(existing.st_mode)) {
    error = finalPath + ": cannot write the file: " + std::strerror(EISDIR) +
            " (the file was not modified)";
    return "";
  }
  std::string dir = parentOf(finalPath);
  // What killed runs left for this output goes first (FileMapping.h).
  removeStaleTemps(finalPath);
  std::string tmp = tempSiblingTemplate(finalPath, "staged");
  int fd = ::mkstemp(&tmp[0]);
  if (fd < 0) {
    int err = errno;
    error = finalPath + ": cannot create a temporary file in " + dir + ": " +
            std::strerror(err);
    return "";
  }
  ::close(fd);
  st.files.emplace_back(finalPath, tmp);
  return tmp;
}

std::string readPathFor(const std::string &path) {
  for (auto &[fin, staged] : staging().files)
    if (fin == path)
      return staged;
  return path;
}

Status commitStaged() {
  Staging &st = staging();
  auto files = std::move(st.files);
  st.files.clear();
  for (size_t i = 0; i < files.size(); ++i) {
    if (::rename(files[i].second.c_str(), files[i].first.c_str()) != 0) {
      int err = errno;
      for (size_t j = i; j < files.size(); ++j)
        ::unlink(files[j].second.c_str());
      return Status::error(files[i].first + ": cannot rename the finished " +
                           "file into place: " + std::strerror(err));
    }
    fsyncFolder(parentOf(files[i].first));
  }
  return Status::ok();
}

void discardStaged() {
  Staging &st = staging();
  for (auto &[fin, staged] : st.files)
    ::unlink(staged.c_str());
  st.files.clear();
}

Status checkOutputFolder(const std::string &dest, bool force,
                         const std::vector<std::string> &inputs,
                         const std::string &what) {
  bool existed = false;
  return checkFolderPolicy(withoutTrailingSlash(dest), force, inputs, what,
                           existed);
}

OutputFolder::~OutputFolder() { discard(); }

void OutputFolder::discard() {
  if (!committed && !temp.empty())
    removeTree(temp);
  temp.clear();
}

Status OutputFolder::begin(const std::string &destIn, bool forceIn,
                           const std::vector<std::string> &inputs,
                           const std::string &whatIn) {
  discard();
  committed = false;
  dest = withoutTrailingSlash(destIn);
  what = whatIn;
  force = forceIn;
  QC_RETURN_IF_ERROR(checkFolderPolicy(dest, force, inputs, what, existed));
  std::string parent = parentOf(dest);
  if (!makeFolders(parent)) {
    int err = errno;
    return Status::error(what + " " + dest + ": cannot create the folder " +
                         parent + ": " + std::strerror(err));
  }
  // A sibling, so that the final rename stays on one file system.
  removeStaleTemps(dest);
  std::string tmp = tempSiblingTemplate(dest, "tmp");
  if (!::mkdtemp(&tmp[0])) {
    int err = errno;
    return Status::error(what + " " + dest +
                         ": cannot create a temporary folder in " + parent +
                         ": " + std::strerror(err));
  }
  // mkdtemp makes 0700; the published folder gets what mkdir would give.
  (void)::chmod(tmp.c_str(), permissionsUnderUmask(0777));
  temp = tmp;
  return Status::ok();
}

Status OutputFolder::commit() {
  if (temp.empty() || committed)
    return Status::error(what + " " + dest + ": nothing to commit");
  auto failWith = [&](const std::string &why, int err) {
    std::string msg = what + " " + dest + ": " + why + ": " +
                      std::strerror(err) + " (the folder was not modified)";
    discard();
    return Status::error(msg);
  };
  fsyncFolder(temp);
  std::string parent = parentOf(dest);
  bool exists = ::access(dest.c_str(), F_OK) == 0;
  if (!exists) {
    // Into a free name: never over a folder that appeared meanwhile.
#ifdef RENAME_NOREPLACE
    if (::renameat2(AT_FDCWD, temp.c_str(), AT_FDCWD, dest.c_str(),
                    RENAME_NOREPLACE) != 0) {
      int err = errno;
      if (err != EINVAL && err != ENOSYS)
        return failWith(err == EEXIST ? "it appeared during the run"
                                      : "cannot rename the temporary folder "
                                        "into place",
                        err);
      if (::rename(temp.c_str(), dest.c_str()) != 0)
        return failWith("cannot rename the temporary folder into place", errno);
    }
#else
    if (::rename(temp.c_str(), dest.c_str()) != 0)
      return failWith("cannot rename the temporary folder into place", errno);
#endif
    committed = true;
    temp.clear();
    fsyncFolder(parent);
    return Status::ok();
  }
  // The destination exists: empty when begin() ran (then it must still be:
  // rmdir refuses a folder that filled up meanwhile), or replaced whole
  // under --force.
  if (!force || !existed) {
    if (::rmdir(dest.c_str()) != 0) {
      int err = errno;
      if (err == ENOTEMPTY || err == EEXIST)
        return failWith("it was filled during the run (pass --force to "
                        "replace it)",
                        err);
      return failWith("cannot replace the empty folder", err);
    }
    if (::rename(temp.c_str(), dest.c_str()) != 0)
      return failWith("cannot rename the temporary folder into place", errno);
    committed = true;
    temp.clear();
    fsyncFolder(parent);
    return Status::ok();
  }
  std::string old;
#ifdef RENAME_EXCHANGE
  if (::renameat2(AT_FDCWD, temp.c_str(), AT_FDCWD, dest.c_str(),
                  RENAME_EXCHANGE) == 0) {
    old = temp; // now holds the replaced folder
  } else if (errno != EINVAL && errno != ENOSYS) {
    return failWith("cannot exchange the temporary folder with it", errno);
  }
#endif
  if (old.empty()) {
    // No atomic exchange here: move the old folder aside, then the new one
    // in; put the old one back if the second rename fails.
    std::string aside = tempSiblingTemplate(dest, "old");
    if (!::mkdtemp(&aside[0]))
      return failWith("cannot create a folder to move the old one aside",
                      errno);
    if (::rename(dest.c_str(), aside.c_str()) != 0) {
      int err = errno;
      ::rmdir(aside.c_str());
      return failWith("cannot move the old folder aside", err);
    }
    if (::rename(temp.c_str(), dest.c_str()) != 0) {
      int err = errno;
      (void)::rename(aside.c_str(), dest.c_str());
      return failWith("cannot rename the temporary folder into place", err);
    }
    old = aside;
  }
  committed = true;
  temp.clear();
  fsyncFolder(parent);
  removeTree(old);
  return Status::ok();
}

void ignoreFileSizeSignal() {
  // Ignored, and also blocked: LLVM's InitLLVM installs a crash handler for
  // SIGXFSZ (one of its "kill" signals), and a later library call may
  // install it again; a blocked signal stays pending instead of running
  // that handler, and the blocked mask is inherited by every thread the
  // tool starts afterwards. Call this after InitLLVM.
  struct sigaction action;
  std::memset(&action, 0, sizeof(action));
  action.sa_handler = SIG_IGN;
  sigemptyset(&action.sa_mask);
  (void)::sigaction(SIGXFSZ, &action, nullptr);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGXFSZ);
  (void)::pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

} // namespace qc
