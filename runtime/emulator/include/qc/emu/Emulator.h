//===- Emulator.h - Functional PTX emulator (public API) --------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// A functional emulator of an NVIDIA GPU that executes PTX text on the CPU,
// so that the kernels qc generates can be run and checked without a GPU.
// One Device owns an emulated global memory (addresses are device addresses,
// never host pointers) and the PTX modules loaded into it; a launch runs the
// grid's blocks on worker threads, each block's warps of 32 lanes in lockstep
// with divergence and reconvergence, so warp-collective instructions
// (mma.sync, ldmatrix, shfl.sync) are exact.
//
// With DeviceOptions::checks the emulator is also a sanitizer: out-of-bounds
// and misaligned accesses, reads of uninitialized shared memory or registers,
// shared-memory races between barriers, reads of cp.async destinations before
// their wait, and writes to param space fail the launch with a message naming
// the kernel, the block, the thread and the PTX line. (Out-of-bounds and
// misaligned accesses and param writes are errors even without checks.)
// The race rule: within one barrier interval, a shared byte written by a
// thread must not be read or written by a thread of another warp; a warp's
// own lanes are ordered by its lockstep execution; atomics never race.
//
// Instruction coverage (anything else is a load-time error naming the line):
//  data movement: mov (incl. vector pack/unpack, symbol addresses, special
//    registers), ld/st (global/shared/local/param/const/generic, .v2/.v4,
//    .nc/.volatile, cache and consistency qualifiers accepted), cvta(.to),
//    cp.async.{ca,cg}.shared.global (4/8/16 B, src-size zero fill) with
//    commit_group / wait_group / wait_all, ldmatrix.m8n8.{x1,x2,x4}[.trans];
//  integer: add/sub (.sat), mul/mad .lo/.hi/.wide, div, rem, min, max, abs,
//    neg, and/or/xor/not/cnot (also .pred), shl, shr, shf, lop3, prmt (all
//    modes), bfe, bfi, popc, clz, brev, selp, setp (all comparisons, .and/
//    .or/.xor, two destinations);
//  floating point: add/sub/mul/fma/mad/div/min/max/abs/neg/rcp/sqrt/rsqrt/
//    ex2/lg2/sin/cos/tanh/copysign for f32/f64 (.rn, .ftz, .sat; .approx
//    computed correctly rounded), add/sub/mul/fma/min/max/abs/neg/ex2/tanh/
//    rcp/sqrt on f16, f16x2, bf16, bf16x2; cvt between all integer and float
//    types with .rn/.rz/.rm/.rp/.rni/.rzi/.rmi/.rpi, .sat, .ftz, and the
//    packing cvt.{f16x2,bf16x2}.f32;
//  warp level: mma.sync.aligned.m16n8k16 / m16n8k8 .row.col with f16 or bf16
//    inputs and f32 (or f16) accumulators, shfl.sync (up/down/bfly/idx),
//    vote.sync (all/any/uni/ballot), activemask, bar.warp.sync;
//  block level: bar.sync / barrier.sync (whole-block counts), atom/red on
//    global and shared (add/min/max/exch/cas/and/or/xor/inc/dec; f32/f64 add),
//    membar/fence (no effect); control: bra(.uni), ret, exit, trap.
//
// The CUDA-driver-API shim (a shared object that the runtime can dlopen in
// place of libcuda) and the qc-ptx-run tool are built on this interface.
//
//===----------------------------------------------------------------------===//

#ifndef QC_EMU_EMULATOR_H
#define QC_EMU_EMULATOR_H

#include "qc/runtime/Status.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace qc::emu {

/// The architecture the emulated device reports and accepts: a module whose
/// `.target` needs a newer architecture fails to load.
enum class Arch { SM80, SM90a };

/// Returns "sm_80" or "sm_90a".
const char *archName(Arch arch);

/// How a Device is created.
struct DeviceOptions {
  /// Emulated architecture (compute capability 8.0 or 9.0 with sm_90a).
  Arch arch = Arch::SM80;
  /// Enables the sanitizer checks (bounds, alignment, uninitialized reads,
  /// shared races, cp.async before wait, param writes).
  bool checks = true;
  /// Worker threads that execute the blocks of a grid; 0 = all cores.
  unsigned threads = 0;
  /// Size of the emulated global memory.
  uint64_t memoryBytes = 4ull << 30;
  /// A block that executes more warp-instructions than this fails (an
  /// endless loop in a kernel must not hang a test suite).
  uint64_t maxWarpInstructionsPerBlock = 1ull << 32;
};

/// A grid or block extent.
struct Dim3 {
  uint32_t x = 1, y = 1, z = 1;
};

/// One `.param` of a kernel entry, in declaration order.
struct ParamInfo {
  /// The parameter's PTX name.
  std::string name;
  /// Its size in bytes and its alignment in the parameter buffer.
  uint32_t size = 0, align = 0;
};

/// A loaded PTX module (opaque; owned by the Device).
class Module;
/// A kernel entry of a loaded module (opaque; owned by its Module).
class Kernel;

class DeviceImpl;

/// One emulated GPU: global memory and the modules loaded into it. The
/// methods are not thread-safe with respect to each other; launch() itself
/// uses worker threads internally.
class Device {
public:
  /// Creates a device; the global memory is reserved lazily (address space
  /// only), so a large memoryBytes costs nothing until it is written.
  explicit Device(DeviceOptions options);
  ~Device();
  Device(const Device &) = delete;
  Device &operator=(const Device &) = delete;

  /// The options the device was created with.
  const DeviceOptions &options() const;

  /// Allocates `bytes` (> 0) of global memory, 256-byte aligned. The address
  /// is a device address (never a host pointer, never 0).
  Status malloc(uint64_t bytes, uint64_t &addr);
  /// Frees an allocation returned by malloc (the exact base address).
  Status free(uint64_t addr);
  /// Copies host memory into global memory; the range must lie in one live
  /// allocation.
  Status copyToDevice(uint64_t dst, const void *src, uint64_t n);
  /// Copies global memory to host memory.
  Status copyToHost(void *dst, uint64_t src, uint64_t n);
  /// Copies within global memory (ranges may overlap, like memmove).
  Status copyOnDevice(uint64_t dst, uint64_t src, uint64_t n);
  /// Sets `n` bytes of global memory to `value`.
  Status memset8(uint64_t dst, uint8_t value, uint64_t n);
  /// Total and currently unallocated global memory in bytes.
  uint64_t totalMemory() const;
  uint64_t freeMemory() const;

  /// Parses, decodes and validates PTX text; errors name
  /// `displayName:line`. On success `out` is owned by the device until
  /// unloadModule or the device's destruction.
  Status loadModule(const std::string &ptxText, const std::string &displayName,
                    Module *&out);
  /// Unloads a module (its kernels become invalid).
  Status unloadModule(Module *module);
  /// Finds the `.entry` named `entryName` in `module`.
  Status getKernel(Module *module, const std::string &entryName, Kernel *&out);
  /// The kernel's parameters in `.param` order.
  const std::vector<ParamInfo> &params(const Kernel *kernel) const;
  /// The kernel's name.
  const std::string &kernelName(const Kernel *kernel) const;
  /// Bytes of statically declared `.shared` memory the kernel uses.
  uint32_t staticSharedBytes(const Kernel *kernel) const;
  /// Largest dynamic shared memory a launch may ask for (default 48 KiB),
  /// like cuFuncSetAttribute(CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES).
  uint32_t maxDynamicSharedBytes(const Kernel *kernel) const;
  /// Raises (or lowers) that limit; static + dynamic may not exceed the
  /// architecture's maximum (163 KiB on sm_80, 227 KiB on sm_90a).
  Status setMaxDynamicSharedBytes(Kernel *kernel, uint32_t bytes);
  /// The largest block (threads) the kernel allows: its .maxntid/.reqntid
  /// product, else 1024.
  uint32_t maxThreadsPerBlock(const Kernel *kernel) const;
  /// Bytes of .local memory per thread (cuFuncGetAttribute LOCAL_SIZE_BYTES).
  uint32_t localBytesPerThread(const Kernel *kernel) const;
  /// Registers the kernel declares (an upper bound of what ptxas would
  /// allocate; for cuFuncGetAttribute NUM_REGS).
  uint32_t numRegisters(const Kernel *kernel) const;
  /// The names of the module's kernel entries, in file order.
  std::vector<std::string> kernelNames(const Module *module) const;
  /// The largest static + dynamic shared memory a block may use on this
  /// architecture (163 KiB on sm_80, 227 KiB on sm_90a).
  uint32_t maxSharedBytesPerBlock() const;

  /// Runs the kernel to completion. `kernelParams` is as for cuLaunchKernel:
  /// an array of pointers, one per parameter, to each parameter's value
  /// (params(kernel)[i].size bytes). Errors name the kernel, the block and
  /// thread ids and the PTX line.
  Status launch(Kernel *kernel, Dim3 grid, Dim3 block,
                uint32_t dynamicSharedBytes, void **kernelParams);

private:
  std::unique_ptr<DeviceImpl> impl;
};

} // namespace qc::emu

#endif // QC_EMU_EMULATOR_H
