//===- OutputSafety.cpp - An output is never one of the inputs ------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/OutputSafety.h"

#include <dirent.h>
#include <sys/stat.h>

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

} // namespace qc
