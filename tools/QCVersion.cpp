//===- QCVersion.cpp - --version of every qc tool -------------------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Compiled into every compiler tool by add_qc_tool (cmake/AddQC.cmake):
// replaces LLVM's --version text, which named only LLVM, with qc's version
// and git revision first, then the LLVM/MLIR release the tool was built
// against. The version comes from project(qc VERSION ...) and the revision
// from the build-time generated QCGitRevision.inc (cmake/QCVersionGen.cmake).
//
// The printer is installed by a static initializer so that tools whose
// command line is parsed by library code (quant-opt's MlirOptMain) get it
// too; cl::SetVersionPrinter only stores a callback in LLVM's lazily
// constructed option state, which is safe before main().
//
//===----------------------------------------------------------------------===//

#include "QCGitRevision.inc"

#include "llvm/Config/llvm-config.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/raw_ostream.h"

#ifndef QC_VERSION_STRING
#error "QC_VERSION_STRING must be defined by the build (project VERSION)"
#endif

namespace {

/// Prints "<tool> (qc) VERSION (git REVISION)" and the LLVM/MLIR release.
void printQCVersion(llvm::raw_ostream &os) {
  os << "qc version " << QC_VERSION_STRING << " (git " << QC_GIT_REVISION
     << ")\n"
     << "  built with LLVM/MLIR " << LLVM_VERSION_STRING
#ifndef NDEBUG
     << " (assertions on)"
#endif
     << "\n";
}

struct InstallVersionPrinter {
  InstallVersionPrinter() { llvm::cl::SetVersionPrinter(printQCVersion); }
} installVersionPrinter;

} // namespace
