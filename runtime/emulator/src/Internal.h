//===- Internal.h - Emulator internals --------------------------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// The device's global-memory arena and allocation table, modules and
// kernels, and the entry point of the interpreter (Exec.cpp). Device
// addresses live in a window of their own (kGlobalBase..), shared and local
// memory in two more, so a generic address says which space it is in, as on
// the hardware (PTX ISA "Generic addressing" / cvta).
//
//===----------------------------------------------------------------------===//

#ifndef QC_EMU_INTERNAL_H
#define QC_EMU_INTERNAL_H

#include "Ptx.h"

#include <list>
#include <map>
#include <memory>
#include <mutex>

namespace qc::emu {

/// Device address of arena offset 0 (global memory).
constexpr uint64_t kGlobalBase = uint64_t(1) << 44;
/// Generic address of shared-memory offset 0 (cvta.shared adds it).
constexpr uint64_t kSharedWindow = uint64_t(1) << 46;
/// Generic address of local-memory offset 0 (per thread).
constexpr uint64_t kLocalWindow = uint64_t(1) << 47;
/// Size of the shared and local windows.
constexpr uint64_t kWindowSize = uint64_t(1) << 32;

/// A loaded module: the decoded program, its kernels and the device
/// allocations of its .global/.const variables (freed on unload).
class Module {
public:
  ParsedModule parsed;
  std::list<Kernel> kernels;
  std::vector<uint64_t> globalAllocs;
};

/// A kernel entry and its launch attribute (the dynamic shared limit).
class Kernel {
public:
  Module *module = nullptr;
  const Function *fn = nullptr;
  uint32_t maxDynShared = 48 * 1024;
};

/// The state behind Device.
class DeviceImpl {
public:
  explicit DeviceImpl(DeviceOptions o);
  ~DeviceImpl();

  DeviceOptions opts;
  /// The global memory: a lazily committed mapping of arenaBytes.
  uint8_t *arena = nullptr;
  uint64_t arenaBytes = 0;
  /// A live allocation: the size asked for (the bounds the checks use) and
  /// the bytes reserved for it (rounded up, plus a red zone).
  struct Allocation {
    uint64_t bytes, reserved;
  };
  /// Live allocations by base offset into the arena.
  std::map<uint64_t, Allocation> live;
  /// Free ranges: offset -> size.
  std::map<uint64_t, uint64_t> freeRanges;
  /// Bytes reserved by live allocations (red zones included).
  uint64_t usedBytes = 0;
  std::list<std::unique_ptr<Module>> modules;

  /// First-fit allocation of `bytes` (256-byte aligned, red zone after).
  Status malloc(uint64_t bytes, uint64_t &addr);
  /// Frees the allocation starting at addr, merging free neighbours.
  Status free(uint64_t addr);
  /// Host pointer for [addr, addr+n) if it lies within one live allocation,
  /// else null.
  uint8_t *lookup(uint64_t addr, uint64_t n) const;
  /// The live allocation containing addr: [lo, hi) device addresses.
  bool allocationOf(uint64_t addr, uint64_t &lo, uint64_t &hi) const;
  /// Shared memory per block the architecture allows (opt-in maximum).
  uint32_t archMaxShared() const {
    return opts.arch == Arch::SM80 ? 163 * 1024 : 227 * 1024;
  }
};

/// Runs a kernel (Exec.cpp).
Status executeLaunch(DeviceImpl &dev, Kernel &k, Dim3 grid, Dim3 block,
                     uint32_t dynShared, const std::vector<uint8_t> &params);

} // namespace qc::emu

#endif // QC_EMU_INTERNAL_H
