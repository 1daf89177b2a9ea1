//===- Device.cpp - Emulated device memory, modules and launches ----------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// The emulated GPU's global memory is one lazily committed anonymous
// mapping (address space is reserved, pages appear when written) carved by
// a first-fit allocator in 256-byte units, like cuMemAlloc's alignment.
// Device addresses are offsets into it plus kGlobalBase, so they can never
// be confused with host pointers and 0 is never valid. Modules are parsed
// and decoded on load; launches check their configuration against the
// kernel's declaration and hand the grid to the interpreter.
//
//===----------------------------------------------------------------------===//

#include "Internal.h"

#include <cstring>
#include <sys/mman.h>

namespace qc::emu {

const char *archName(Arch arch) {
  return arch == Arch::SM80 ? "sm_80" : "sm_90a";
}

static std::string hex(uint64_t v) {
  char b[32];
  std::snprintf(b, sizeof b, "0x%llx", (unsigned long long)v);
  return b;
}

DeviceImpl::DeviceImpl(DeviceOptions o) : opts(o) {
  arenaBytes = (o.memoryBytes + 4095) / 4096 * 4096;
  if (arenaBytes == 0)
    arenaBytes = 4096;
  void *p = mmap(nullptr, arenaBytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    arena = nullptr;
    arenaBytes = 0;
  } else {
    arena = static_cast<uint8_t *>(p);
    freeRanges[0] = arenaBytes;
  }
}

DeviceImpl::~DeviceImpl() {
  if (arena)
    munmap(arena, arenaBytes);
}

Status DeviceImpl::malloc(uint64_t bytes, uint64_t &addr) {
  if (bytes == 0)
    return Status::error("device malloc of 0 bytes");
  // A 256-byte red zone after every allocation: an access just past the end
  // of one buffer must not land in the next one, where it would look legal.
  uint64_t need = (bytes + 255) / 256 * 256 + 256;
  for (auto it = freeRanges.begin(); it != freeRanges.end(); ++it) {
    if (it->second < need)
      continue;
    uint64_t off = it->first, size = it->second;
    freeRanges.erase(it);
    if (size > need)
      freeRanges[off + need] = size - need;
    live[off] = Allocation{bytes, need};
    usedBytes += need;
    addr = kGlobalBase + off;
    return Status::ok();
  }
  return Status::error(
      "out of emulated device memory: " + std::to_string(bytes) +
      " bytes requested, " + std::to_string(arenaBytes - usedBytes) + " free");
}

Status DeviceImpl::free(uint64_t addr) {
  auto it = addr >= kGlobalBase ? live.find(addr - kGlobalBase) : live.end();
  if (it == live.end())
    return Status::error("device free of " + hex(addr) +
                         ", which is not the start of a live allocation");
  uint64_t off = it->first, size = it->second.reserved;
  live.erase(it);
  usedBytes -= size;
  // Give the pages back (and make reused memory read as zero bytes rather
  // than stale data; the checks do not rely on it).
  if (size >= 65536) {
    uint64_t a = (off + 4095) / 4096 * 4096, e = (off + size) / 4096 * 4096;
    if (e > a)
      madvise(arena + a, e - a, MADV_DONTNEED);
  }
  auto next = freeRanges.lower_bound(off);
  if (next != freeRanges.end() && next->first == off + size) {
    size += next->second;
    freeRanges.erase(next);
  }
  auto prev = freeRanges.lower_bound(off);
  if (prev != freeRanges.begin()) {
    --prev;
    if (prev->first + prev->second == off) {
      prev->second += size;
      return Status::ok();
    }
  }
  freeRanges[off] = size;
  return Status::ok();
}

bool DeviceImpl::allocationOf(uint64_t addr, uint64_t &lo, uint64_t &hi) const {
  if (addr < kGlobalBase || addr - kGlobalBase >= arenaBytes)
    return false;
  uint64_t off = addr - kGlobalBase;
  auto it = live.upper_bound(off);
  if (it == live.begin())
    return false;
  --it;
  if (off >= it->first + it->second.bytes)
    return false;
  lo = kGlobalBase + it->first;
  hi = lo + it->second.bytes;
  return true;
}

uint8_t *DeviceImpl::lookup(uint64_t addr, uint64_t n) const {
  uint64_t lo, hi;
  if (!allocationOf(addr, lo, hi) || n > hi - addr)
    return nullptr;
  return arena + (addr - kGlobalBase);
}

//===----------------------------------------------------------------------===//
// Device
//===----------------------------------------------------------------------===//

Device::Device(DeviceOptions options)
    : impl(std::make_unique<DeviceImpl>(options)) {}
Device::~Device() = default;

const DeviceOptions &Device::options() const { return impl->opts; }

Status Device::malloc(uint64_t bytes, uint64_t &addr) {
  if (!impl->arena)
    return Status::error("the emulated device memory could not be reserved");
  return impl->malloc(bytes, addr);
}

Status Device::free(uint64_t addr) { return impl->free(addr); }

Status Device::copyToDevice(uint64_t dst, const void *src, uint64_t n) {
  if (n == 0)
    return Status::ok();
  uint8_t *p = impl->lookup(dst, n);
  if (!p)
    return Status::error("copy to device: " + std::to_string(n) + " bytes at " +
                         hex(dst) + " are not inside one live allocation");
  std::memcpy(p, src, n);
  return Status::ok();
}

Status Device::copyToHost(void *dst, uint64_t src, uint64_t n) {
  if (n == 0)
    return Status::ok();
  uint8_t *p = impl->lookup(src, n);
  if (!p)
    return Status::error("copy to host: " + std::to_string(n) + " bytes at " +
                         hex(src) + " are not inside one live allocation");
  std::memcpy(dst, p, n);
  return Status::ok();
}

Status Device::copyOnDevice(uint64_t dst, uint64_t src, uint64_t n) {
  if (n == 0)
    return Status::ok();
  uint8_t *d = impl->lookup(dst, n), *s = impl->lookup(src, n);
  if (!d || !s)
    return Status::error("device-to-device copy of " + std::to_string(n) +
                         " bytes from " + hex(src) + " to " + hex(dst) +
                         ": a range is not inside one live allocation");
  std::memmove(d, s, n);
  return Status::ok();
}

Status Device::memset8(uint64_t dst, uint8_t value, uint64_t n) {
  if (n == 0)
    return Status::ok();
  uint8_t *p = impl->lookup(dst, n);
  if (!p)
    return Status::error("memset: " + std::to_string(n) + " bytes at " +
                         hex(dst) + " are not inside one live allocation");
  std::memset(p, value, n);
  return Status::ok();
}

uint64_t Device::totalMemory() const { return impl->arenaBytes; }
uint64_t Device::freeMemory() const {
  return impl->arenaBytes - impl->usedBytes;
}

Status Device::loadModule(const std::string &ptxText,
                          const std::string &displayName, Module *&out) {
  auto mod = std::make_unique<Module>();
  Module *m = mod.get();
  Status s = parsePtx(
      ptxText, displayName, impl->opts.arch,
      [&](Variable &v) -> Status {
        uint64_t addr;
        QC_RETURN_IF_ERROR(impl->malloc(v.size ? v.size : 1, addr));
        m->globalAllocs.push_back(addr);
        uint8_t *p = impl->lookup(addr, v.size ? v.size : 1);
        // .global/.const variables without an initializer start zeroed
        // (PTX ISA "Initializers").
        std::memset(p, 0, v.size ? v.size : 1);
        if (!v.init.empty())
          std::memcpy(p, v.init.data(), v.init.size());
        v.addr = addr;
        return Status::ok();
      },
      m->parsed);
  if (!s) {
    for (uint64_t a : m->globalAllocs)
      (void)impl->free(a);
    return s;
  }
  for (const Function &f : m->parsed.functions) {
    if (!f.isEntry)
      continue;
    Kernel k;
    k.module = m;
    k.fn = &f;
    m->kernels.push_back(k);
  }
  impl->modules.push_back(std::move(mod));
  out = m;
  return Status::ok();
}

Status Device::unloadModule(Module *module) {
  for (auto it = impl->modules.begin(); it != impl->modules.end(); ++it)
    if (it->get() == module) {
      for (uint64_t a : module->globalAllocs)
        (void)impl->free(a);
      impl->modules.erase(it);
      return Status::ok();
    }
  return Status::error("unloadModule: not a module of this device");
}

Status Device::getKernel(Module *module, const std::string &entryName,
                         Kernel *&out) {
  for (Kernel &k : module->kernels)
    if (k.fn->name == entryName) {
      out = &k;
      return Status::ok();
    }
  std::string names;
  for (Kernel &k : module->kernels)
    names += (names.empty() ? "" : ", ") + k.fn->name;
  return Status::error(module->parsed.name + ": no kernel entry named '" +
                       entryName +
                       "' (entries: " + (names.empty() ? "none" : names) + ")");
}

const std::vector<ParamInfo> &Device::params(const Kernel *k) const {
  return k->fn->params;
}
const std::string &Device::kernelName(const Kernel *k) const {
  return k->fn->name;
}
uint32_t Device::staticSharedBytes(const Kernel *k) const {
  return k->fn->staticShared;
}
uint32_t Device::maxDynamicSharedBytes(const Kernel *k) const {
  return k->maxDynShared;
}
Status Device::setMaxDynamicSharedBytes(Kernel *k, uint32_t bytes) {
  if (uint64_t(bytes) + k->fn->dynSharedBase > impl->archMaxShared())
    return Status::error(
        "kernel '" + k->fn->name + "': " + std::to_string(bytes) +
        " bytes of dynamic shared memory plus " +
        std::to_string(k->fn->dynSharedBase) + " static exceed the " +
        archName(impl->opts.arch) + " limit of " +
        std::to_string(impl->archMaxShared()) + " bytes");
  k->maxDynShared = bytes;
  return Status::ok();
}
uint32_t Device::maxThreadsPerBlock(const Kernel *k) const {
  const Function &f = *k->fn;
  if (f.reqntid[0])
    return f.reqntid[0] * f.reqntid[1] * f.reqntid[2];
  if (f.maxntid[0])
    return f.maxntid[0] * f.maxntid[1] * f.maxntid[2];
  return 1024;
}

uint32_t Device::localBytesPerThread(const Kernel *k) const {
  return k->fn->localBytes;
}
uint32_t Device::numRegisters(const Kernel *k) const {
  return uint32_t(k->fn->regBits.size());
}
std::vector<std::string> Device::kernelNames(const Module *m) const {
  std::vector<std::string> names;
  for (const Kernel &k : m->kernels)
    names.push_back(k.fn->name);
  return names;
}
uint32_t Device::maxSharedBytesPerBlock() const {
  return impl->archMaxShared();
}

Status Device::launch(Kernel *k, Dim3 grid, Dim3 block,
                      uint32_t dynamicSharedBytes, void **kernelParams) {
  const Function &f = *k->fn;
  std::string where = "launch of kernel '" + f.name + "'";
  uint64_t nthreads = uint64_t(block.x) * block.y * block.z;
  if (!grid.x || !grid.y || !grid.z || !nthreads)
    return Status::error(where + ": empty grid or block");
  if (block.x > 1024 || block.y > 1024 || block.z > 64 || nthreads > 1024)
    return Status::error(where + ": block (" + std::to_string(block.x) + "," +
                         std::to_string(block.y) + "," +
                         std::to_string(block.z) + ") exceeds 1024 threads");
  if (grid.y > 65535 || grid.z > 65535)
    return Status::error(where + ": grid y/z exceed 65535");
  if (f.reqntid[0] && (block.x != f.reqntid[0] || block.y != f.reqntid[1] ||
                       block.z != f.reqntid[2]))
    return Status::error(where + ": block differs from its .reqntid");
  if (f.maxntid[0] &&
      nthreads > uint64_t(f.maxntid[0]) * f.maxntid[1] * f.maxntid[2])
    return Status::error(where + ": " + std::to_string(nthreads) +
                         " threads per block exceed its .maxntid");
  if (dynamicSharedBytes > k->maxDynShared)
    return Status::error(where + ": " + std::to_string(dynamicSharedBytes) +
                         " bytes of dynamic shared memory exceed the "
                         "kernel's limit of " +
                         std::to_string(k->maxDynShared) +
                         " (raise it with setMaxDynamicSharedBytes)");
  if (uint64_t(f.dynSharedBase) + dynamicSharedBytes > impl->archMaxShared())
    return Status::error(where + ": shared memory exceeds the " +
                         std::string(archName(impl->opts.arch)) + " limit");
  std::vector<uint8_t> params(f.paramBytes);
  if (!f.params.empty() && !kernelParams)
    return Status::error(where + ": kernelParams is null but the kernel has " +
                         std::to_string(f.params.size()) + " parameters");
  for (size_t i = 0; i < f.params.size(); ++i) {
    if (!kernelParams[i])
      return Status::error(where + ": parameter " + std::to_string(i) + " ('" +
                           f.params[i].name + "') is null");
    std::memcpy(params.data() + f.paramOffsets[i], kernelParams[i],
                f.params[i].size);
  }
  return executeLaunch(*impl, *k, grid, block, dynamicSharedBytes, params);
}

} // namespace qc::emu
