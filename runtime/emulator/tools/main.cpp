//===- main.cpp - qc-ptx-run entry point ----------------------------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Finds the emulator's driver library beside the tool (bin/../lib, where the
// build puts it; $QC_EMU_LIBRARY overrides) and runs ptxRunMain.
//
//===----------------------------------------------------------------------===//

#include "PtxRun.h"

#include <cstdlib>
#include <iostream>
#include <string>

#include <limits.h>
#include <unistd.h>

int main(int argc, char **argv) {
  std::string lib;
  if (const char *env = std::getenv("QC_EMU_LIBRARY"); env && *env) {
    lib = env;
  } else {
    char exe[PATH_MAX] = {0};
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    std::string dir = n > 0 ? std::string(exe, size_t(n)) : std::string(".");
    dir = dir.substr(0, dir.find_last_of('/') == std::string::npos
                            ? 0
                            : dir.find_last_of('/'));
    lib = (dir.empty() ? std::string(".") : dir) + "/" QC_EMU_DRIVER_RELPATH;
  }
  return qc::ptxrun::ptxRunMain(argc, argv, lib, std::cout, std::cerr);
}
