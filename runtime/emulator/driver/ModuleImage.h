//===- ModuleImage.h - PTX text out of a module image -----------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// cuModuleLoadDataEx receives an opaque image: NUL-terminated PTX text, a
// cubin (an ELF file of SASS machine code) or a fatbin container holding
// PTX and/or ELF entries, possibly inside an ELF section. The emulator
// executes PTX only, so this finds the PTX in an image, or says precisely
// why there is none (a SASS-only cubin, a compressed fatbin entry, a
// truncated container) so that the driver can return a distinct error code
// and a one-line log.
//
//===----------------------------------------------------------------------===//

#ifndef QC_EMU_DRIVER_MODULEIMAGE_H
#define QC_EMU_DRIVER_MODULEIMAGE_H

#include "qc/runtime/Status.h"

#include <cstddef>
#include <string>

namespace qc::emu {

/// What an image turned out to be.
enum class ImageKind {
  PtxText,   ///< plain PTX text
  FatbinPtx, ///< a fatbin (maybe inside an ELF) with an uncompressed PTX entry
  SassOnly,  ///< machine code without PTX: the emulator cannot run it
  Malformed, ///< a container that is cut short or inconsistent
};

/// Extracts PTX from `image`. `size` bounds the reads when known (0 = the
/// size is unknown, as for cuModuleLoadData: then only PTX text, whose end
/// is its NUL, and containers whose headers give their own size are read).
/// On success `ptx` holds the text and `kind` is PtxText or FatbinPtx; on
/// failure `kind` says why and the Status says it in one line.
Status extractPtx(const void *image, size_t size, std::string &ptx,
                  ImageKind &kind);

} // namespace qc::emu

#endif // QC_EMU_DRIVER_MODULEIMAGE_H
