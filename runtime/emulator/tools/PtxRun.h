//===- PtxRun.h - qc-ptx-run: one PTX kernel on .npy files ------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
//   qc-ptx-run FILE.ptx --kernel NAME --grid X,Y,Z --block X,Y,Z
//              [--shared BYTES] [--arch sm_80|sm_90a] [--driver emu|real|PATH]
//              --out DIR --arg ... (one per kernel parameter, in order)
//
// Loads hand-written or generated PTX through the CUDA driver API (the qc
// PTX emulator's libqc_cuda_emu.so by default, the real libcuda.so.1 with
// `--driver real`), builds the kernel's arguments from .npy files and
// scalars, launches once, waits, and writes the output buffers back as .npy
// files. Arguments:
//   NAME=in:FILE.npy       the array's bytes in a fresh device buffer; its
//                          address is passed
//   NAME=inout:FILE.npy    the same, written back as DIR/NAME.npy
//   NAME=out:DTYPE:D0xD1.. a fresh buffer filled with 0xFF bytes (NaN for
//                          floats), written back as DIR/NAME.npy
//   NAME=u32:17            a scalar by value (also s32, u64, s64, f32, f64)
// NAME labels the argument (its output file); the kernel's parameter list is
// read from the PTX's .entry, and each argument's size is checked against
// its parameter (a buffer needs a 64-bit one).
//
//===----------------------------------------------------------------------===//

#ifndef QC_EMU_TOOLS_PTXRUN_H
#define QC_EMU_TOOLS_PTXRUN_H

#include "qc/runtime/Status.h"

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

namespace qc::ptxrun {

/// Exit codes.
enum ExitCode : int {
  kExitOk = 0,
  kExitUsage = 1,    ///< bad command line
  kExitInput = 2,    ///< a PTX or .npy file cannot be read or does not fit
  kExitNoDriver = 3, ///< the driver (emulator or GPU) cannot be loaded
  kExitFailed = 4,   ///< loading or running the kernel failed
};

/// One `.param` of a kernel entry as declared in the PTX.
struct PtxParam {
  std::string name;
  std::string type;  ///< ".u64", ".f32", ...
  uint64_t size = 0; ///< bytes (element size x array length)
};

/// Finds `.entry kernel(...)` in `ptx` and lists its parameters; errors
/// name `displayName` and the line.
Status entryParams(const std::string &ptx, const std::string &kernel,
                   const std::string &displayName, std::vector<PtxParam> &out);

/// One --arg.
struct Arg {
  enum Kind { In, InOut, Out, Scalar } kind = In;
  std::string name;
  std::string file;            ///< In / InOut
  std::string dtype;           ///< Out: dtype name; Scalar: u32, s32, ...
  std::vector<uint64_t> shape; ///< Out
  std::vector<uint8_t> value;  ///< Scalar: its bytes (little-endian)
};

/// Parses one --arg value.
Status parseArg(const std::string &text, Arg &out);

/// The command line.
struct Options {
  std::string ptxPath, kernel, outDir, arch, driver = "emu";
  uint32_t grid[3] = {1, 1, 1}, block[3] = {1, 1, 1};
  uint32_t sharedBytes = 0;
  std::vector<Arg> args;
};

/// The --help text.
std::string usage();

/// Parses argv; `helpShown` is set for --help.
Status parseArgs(int argc, const char *const *argv, Options &out,
                 bool &helpShown);

/// The whole tool. `emuLibrary` is the emulator's driver library used for
/// `--driver emu`. Returns an ExitCode; messages go to `out` / `err`.
int ptxRunMain(int argc, const char *const *argv, const std::string &emuLibrary,
               std::ostream &out, std::ostream &err);

} // namespace qc::ptxrun

#endif // QC_EMU_TOOLS_PTXRUN_H
