//===- ModuleImage.cpp - PTX text out of a module image -------------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// The container layouts read here:
//  - ELF64 (cubins, host objects): the section header table at e_shoff; a
//    fatbin is looked for in every section's contents.
//  - fatbin: a 16-byte header (magic 0xBA55ED50, version 1, header size,
//    size of the entries that follow), then entries, each a header (kind 1 =
//    PTX, 2 = ELF; its own header size; payload size; a flags word whose
//    0x2000/0x8000 bits mark LZ4/ZSTD compression; the SM number) followed
//    by its payload. The layout was checked against files written by the
//    CUDA toolkit's `fatbinary` (the runtime tests do so when it is
//    installed).
// Every read is bounds-checked against the size given or derived from the
// headers, so a corrupt image is an error, never a crash.
//
//===----------------------------------------------------------------------===//

#include "ModuleImage.h"

#include <cstdint>
#include <cstring>

namespace qc::emu {

namespace {

constexpr uint32_t kFatbinMagic = 0xBA55ED50u;
constexpr size_t kFatbinHeader = 16, kFatbinEntryMin = 64;
constexpr uint64_t kFatbinCompressed = 0x2000 | 0x8000;
/// No image is larger than this; a header claiming more is corrupt.
constexpr uint64_t kMaxImage = uint64_t(1) << 34;

template <typename T> T rd(const uint8_t *p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

/// One fatbin container at `p` of at most `avail` bytes (0 = unknown).
/// Sets `found` to the best PTX entry's text; `sawPtx`/`sawCompressed` and
/// `sawElf` record what was there. Returns an error for a malformed one.
Status scanFatbin(const uint8_t *p, uint64_t avail, std::string &found,
                  bool &sawCompressed, bool &sawElf) {
  if (avail && avail < kFatbinHeader)
    return Status::error("fatbin header cut short");
  uint16_t hdr = rd<uint16_t>(p + 6);
  uint64_t body = rd<uint64_t>(p + 8);
  if (hdr < kFatbinHeader || body > kMaxImage)
    return Status::error("fatbin header is inconsistent (header size " +
                         std::to_string(hdr) + ", body " +
                         std::to_string(body) + " bytes)");
  uint64_t total = uint64_t(hdr) + body;
  if (avail && total > avail)
    return Status::error("fatbin container claims " + std::to_string(total) +
                         " bytes but the image has " + std::to_string(avail));
  uint64_t off = hdr;
  unsigned bestArch = 0;
  while (off < total) {
    if (total - off < kFatbinEntryMin)
      return Status::error("fatbin entry at offset " + std::to_string(off) +
                           " cut short");
    const uint8_t *e = p + off;
    uint16_t kind = rd<uint16_t>(e);
    uint32_t ehdr = rd<uint32_t>(e + 4);
    uint64_t size = rd<uint64_t>(e + 8);
    uint32_t arch = rd<uint32_t>(e + 28);
    uint64_t flags = rd<uint64_t>(e + 40);
    if (ehdr < kFatbinEntryMin || ehdr > total - off ||
        size > total - off - ehdr)
      return Status::error("fatbin entry at offset " + std::to_string(off) +
                           " overruns its container");
    if (kind == 1) {
      if (flags & kFatbinCompressed) {
        sawCompressed = true;
      } else if (found.empty() || arch > bestArch) {
        const char *t = reinterpret_cast<const char *>(e + ehdr);
        found.assign(t, strnlen(t, size_t(size))); // payload is NUL padded
        bestArch = arch;
      }
    } else if (kind == 2) {
      sawElf = true;
    }
    off += ehdr + size;
  }
  return Status::ok();
}

bool isFatbin(const uint8_t *p, uint64_t avail) {
  return (!avail || avail >= 4) && rd<uint32_t>(p) == kFatbinMagic;
}

} // namespace

Status extractPtx(const void *image, size_t size, std::string &ptx,
                  ImageKind &kind) {
  const uint8_t *p = static_cast<const uint8_t *>(image);
  ptx.clear();
  if (!p) {
    kind = ImageKind::Malformed;
    return Status::error("no image (null pointer)");
  }
  bool compressed = false, elf = false;
  auto finish = [&](const char *what) -> Status {
    if (!ptx.empty()) {
      kind = ImageKind::FatbinPtx;
      return Status::ok();
    }
    kind = ImageKind::SassOnly;
    if (compressed)
      return Status::error(std::string(what) +
                           " holds only compressed PTX, which the qc PTX "
                           "emulator does not decompress; build it with "
                           "`fatbinary --compress=false` or load the PTX text");
    return Status::error(std::string(what) +
                         " holds SASS machine code and no PTX; the qc PTX "
                         "emulator executes PTX only (load the PTX image)");
  };

  if (isFatbin(p, size)) {
    Status st = scanFatbin(p, size, ptx, compressed, elf);
    if (!st) {
      kind = ImageKind::Malformed;
      return st.withContext("fatbin image");
    }
    return finish("the fatbin image");
  }

  if ((!size || size >= 64) && std::memcmp(p,
                                           "\x7f"
                                           "ELF",
                                           4) == 0) {
    if (p[4] != 2) {
      kind = ImageKind::Malformed;
      return Status::error("ELF image is not 64-bit");
    }
    uint64_t shoff = rd<uint64_t>(p + 0x28);
    uint16_t shentsize = rd<uint16_t>(p + 0x3A), shnum = rd<uint16_t>(p + 0x3C);
    uint64_t tableEnd = shoff + uint64_t(shentsize) * shnum;
    if (shentsize < 64 || shoff > kMaxImage || tableEnd > kMaxImage ||
        (size && tableEnd > size)) {
      kind = ImageKind::Malformed;
      return Status::error("ELF image: section header table out of range");
    }
    for (uint16_t i = 0; i < shnum; ++i) {
      const uint8_t *sh = p + shoff + uint64_t(i) * shentsize;
      uint32_t type = rd<uint32_t>(sh + 4);
      uint64_t off = rd<uint64_t>(sh + 24), sz = rd<uint64_t>(sh + 32);
      if (type == 8 /* SHT_NOBITS */ || sz < kFatbinHeader)
        continue;
      if (off > kMaxImage || sz > kMaxImage || (size && off + sz > size)) {
        kind = ImageKind::Malformed;
        return Status::error("ELF image: section " + std::to_string(i) +
                             " out of range");
      }
      // A section may hold several fatbin containers back to back.
      uint64_t at = 0;
      while (at + kFatbinHeader <= sz && isFatbin(p + off + at, sz - at)) {
        Status st = scanFatbin(p + off + at, sz - at, ptx, compressed, elf);
        if (!st) {
          kind = ImageKind::Malformed;
          return st.withContext("ELF image, section " + std::to_string(i));
        }
        at += rd<uint16_t>(p + off + at + 6) + rd<uint64_t>(p + off + at + 8);
        at = (at + 7) & ~uint64_t(7);
      }
    }
    return finish("the cubin (ELF) image");
  }

  // PTX text: NUL-terminated. Without a size it must be trusted like the
  // real driver does; with one, the NUL must lie inside.
  const char *t = reinterpret_cast<const char *>(p);
  size_t n = size ? strnlen(t, size) : std::strlen(t);
  if (size && n == size) {
    kind = ImageKind::Malformed;
    return Status::error("PTX image is not NUL-terminated");
  }
  ptx.assign(t, n);
  kind = ImageKind::PtxText;
  return Status::ok();
}

} // namespace qc::emu
