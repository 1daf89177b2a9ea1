//===- Exec.cpp - The SIMT interpreter and its sanitizer checks -----------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Executes a decoded kernel (Ptx.h) over a grid. Blocks are independent
// (PTX ISA "Thread Hierarchy") and are handed to worker threads; within
// a block the warps take turns of 8 instructions on one host thread until
// each waits at a barrier or has exited; the barrier is released when every
// non-exited thread of the block waits at it.
//
// A warp executes its 32 lanes in lockstep (PTX ISA "SIMT
// architecture"): one instruction for all active lanes at a time. On a
// divergent branch each lane keeps its own program counter and the warp
// continues with the lanes at the smallest one ("min-PC" scheduling), so
// paths reconverge at the first instruction that all of them reach, which
// for the structured code compilers emit is the immediate post-dominator.
// Warp-collective instructions (mma.sync, ldmatrix, shfl.sync, vote) read and
// write the registers of all participating lanes at once, so their
// cross-lane layouts are exact.
//
// Registers are held per warp register-major (regs[r * 32 + lane]), so the
// per-instruction lane loops touch consecutive memory. (A lane-major variant
// measured the same within noise on qc's kernels, e.g. mma_3_m64 at M = 100,
// N = 256, K = 512: 65 vs 68 ms per launch on one core.) With checks on, each
// register also has a 32-bit "written" lane mask and each byte of shared
// memory a shadow record (written/read barrier interval and thread, pending
// cp.async), which implement the uninitialized-read, race and cp.async
// checks described in Emulator.h.
//
// Shared-memory race rule: within one barrier interval (between two releases
// of bar.sync), a byte written by a thread of one warp must not be read or
// written by a thread of another warp. Accesses of the same warp are
// ordered by this emulator's lockstep execution and are not reported;
// atomics (atom/red.shared) are never races. cp.async copies count as
// writes by the issuing thread when they land (at the wait).
//
//===----------------------------------------------------------------------===//

#include "Float.h"
#include "Internal.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <thread>

namespace qc::emu {
namespace {

std::string hex(uint64_t v) {
  char b[32];
  std::snprintf(b, sizeof b, "0x%llx", (unsigned long long)v);
  return b;
}

inline uint64_t maskOf(unsigned bytes) {
  return bytes >= 8 ? ~uint64_t(0) : (uint64_t(1) << (8 * bytes)) - 1;
}
inline int64_t sext(uint64_t v, unsigned bytes) {
  if (bytes >= 8)
    return int64_t(v);
  unsigned sh = 64 - 8 * bytes;
  return int64_t(v << sh) >> sh;
}

#define FOR_LANES(m)                                                           \
  for (uint32_t mm_ = (m), l = 0; mm_ && ((l = __builtin_ctz(mm_)), true);     \
       mm_ &= mm_ - 1)

struct ShadowByte {
  uint32_t wEpoch = 0, rEpoch = 0;
  uint16_t wTid = 0, rTid = 0;
  uint8_t init = 0, pending = 0, rMulti = 0, pad = 0;
};

struct PendingCopy {
  uint64_t group;
  uint32_t dst;
  uint32_t n;
  uint32_t line;
  uint8_t data[16];
};

struct Warp {
  uint32_t index = 0;
  uint32_t pc = 0, active = 0, alive = 0, waiting = 0;
  uint32_t lanePc[32];
  uint32_t tid[3][32];
  uint32_t linear[32];
  std::vector<uint64_t> regs;
  std::vector<uint32_t> init;
  std::vector<PendingCopy> pend[32];
  uint64_t openGroup[32];
};

struct Launch {
  DeviceImpl &dev;
  const Function &f;
  Dim3 grid, block;
  uint32_t dynShared, sharedBytes;
  const std::vector<uint8_t> &params;
  bool checks;
};

class BlockRunner {
public:
  explicit BlockRunner(const Launch &L);
  Status run(uint32_t cx, uint32_t cy, uint32_t cz);

private:
  const Launch &L;
  const Function &f;
  const std::vector<Inst> &code;
  const bool checks;
  uint32_t nthreads, nwarps, nregs;
  uint32_t ctaid[3] = {0, 0, 0};
  std::vector<Warp> warps;
  std::vector<uint8_t> shared;
  std::vector<ShadowByte> shadow;
  std::vector<uint8_t> local;
  uint32_t epoch = 1;
  uint64_t executed = 0;
  // Cache of the last global allocation hit.
  uint64_t gLo = 1, gHi = 0;

  Status fail(const Warp &w, uint32_t lane, const Inst &in,
              const std::string &msg) const;
  /// Runs up to `budget` instructions of the warp, or until it waits at a
  /// barrier or exits.
  Status runWarp(Warp &w, uint32_t budget);
  void reschedule(Warp &w);
  uint64_t sreg(const Warp &w, Sreg s, uint32_t l) const;
  inline uint64_t val(const Warp &w, const Operand &o, uint32_t l) const {
    if (o.kind == Operand::Reg)
      return w.regs[size_t(o.reg) * 32 + l];
    if (o.kind == Operand::Imm)
      return o.imm;
    return sreg(w, o.sreg, l);
  }
  Status checkSources(const Warp &w, const Inst &in, uint32_t em) const;
  Status checkReg(const Warp &w, const Inst &in, uint32_t reg,
                  uint32_t em) const;
  /// Resolves an access of n bytes; returns a host pointer, or an error.
  /// For shared accesses `shOff` receives the offset.
  Status access(const Warp &w, uint32_t l, const Inst &in, Space sp,
                uint64_t addr, unsigned n, unsigned align, bool write,
                uint8_t *&p, bool &isShared, uint32_t &shOff);
  Status sharedRead(const Warp &w, uint32_t l, const Inst &in, uint32_t off,
                    unsigned n);
  void sharedWriteMark(uint32_t off, unsigned n, uint16_t tid);
  Status sharedWrite(const Warp &w, uint32_t l, const Inst &in, uint32_t off,
                     unsigned n);
  Status landCopies(Warp &w, uint32_t l, const Inst &in, uint64_t upTo);

  Status execLdSt(Warp &w, const Inst &in, uint32_t em);
  Status execAtom(Warp &w, const Inst &in, uint32_t em);
  Status execMma(Warp &w, const Inst &in, uint32_t em);
  Status execLdmatrix(Warp &w, const Inst &in, uint32_t em);
  Status execShfl(Warp &w, const Inst &in, uint32_t em);
  Status execCvt(Warp &w, const Inst &in, uint32_t em);
  Status execFloat(Warp &w, const Inst &in, uint32_t em);
  Status execSetp(Warp &w, const Inst &in, uint32_t em);
  Status execInt(Warp &w, const Inst &in, uint32_t em);
};

BlockRunner::BlockRunner(const Launch &L)
    : L(L), f(L.f), code(L.f.code), checks(L.checks) {
  nthreads = L.block.x * L.block.y * L.block.z;
  nwarps = (nthreads + 31) / 32;
  nregs = uint32_t(f.regBits.size());
  warps.resize(nwarps);
  for (uint32_t wi = 0; wi < nwarps; ++wi) {
    Warp &w = warps[wi];
    w.index = wi;
    w.regs.assign(size_t(nregs) * 32, 0);
    w.init.assign(nregs, 0);
    for (uint32_t l = 0; l < 32; ++l) {
      uint32_t lin = wi * 32 + l;
      w.linear[l] = lin;
      w.tid[0][l] = lin % L.block.x;
      w.tid[1][l] = (lin / L.block.x) % L.block.y;
      w.tid[2][l] = lin / (L.block.x * L.block.y);
    }
  }
  shared.assign(L.sharedBytes, 0);
  if (checks)
    shadow.assign(L.sharedBytes, ShadowByte());
  local.assign(size_t(f.localBytes) * nthreads, 0);
}

Status BlockRunner::fail(const Warp &w, uint32_t lane, const Inst &in,
                         const std::string &msg) const {
  size_t idx = &in - code.data();
  std::string op = idx < f.opText.size() ? f.opText[idx] : "?";
  return Status::error(
      "kernel '" + f.name + "' block (" + std::to_string(ctaid[0]) + "," +
      std::to_string(ctaid[1]) + "," + std::to_string(ctaid[2]) + ") thread (" +
      std::to_string(w.tid[0][lane]) + "," + std::to_string(w.tid[1][lane]) +
      "," + std::to_string(w.tid[2][lane]) + "), line " +
      std::to_string(in.line) + ": " + op + " " + msg);
}

uint64_t BlockRunner::sreg(const Warp &w, Sreg s, uint32_t l) const {
  switch (s) {
  case Sreg::TidX:
    return w.tid[0][l];
  case Sreg::TidY:
    return w.tid[1][l];
  case Sreg::TidZ:
    return w.tid[2][l];
  case Sreg::NtidX:
    return L.block.x;
  case Sreg::NtidY:
    return L.block.y;
  case Sreg::NtidZ:
    return L.block.z;
  case Sreg::CtaidX:
    return ctaid[0];
  case Sreg::CtaidY:
    return ctaid[1];
  case Sreg::CtaidZ:
    return ctaid[2];
  case Sreg::NctaidX:
    return L.grid.x;
  case Sreg::NctaidY:
    return L.grid.y;
  case Sreg::NctaidZ:
    return L.grid.z;
  case Sreg::LaneId:
    return l;
  case Sreg::WarpId:
    return w.index;
  case Sreg::NWarpId:
    return nwarps;
  case Sreg::SmId:
    return 0;
  case Sreg::NSmId:
    return 1;
  case Sreg::GridId:
    return 0;
  case Sreg::Clock:
  case Sreg::Clock64:
  case Sreg::GlobalTimer:
    return uint64_t(
        std::chrono::steady_clock::now().time_since_epoch().count());
  case Sreg::DynSmem:
    return L.dynShared;
  case Sreg::TotalSmem:
    return L.sharedBytes;
  case Sreg::LanemaskEq:
    return uint32_t(1) << l;
  case Sreg::LanemaskLt:
    return (uint32_t(1) << l) - 1;
  case Sreg::LanemaskLe:
    return uint32_t((uint64_t(2) << l) - 1);
  case Sreg::LanemaskGt:
    return ~uint32_t((uint64_t(2) << l) - 1);
  case Sreg::LanemaskGe:
    return ~((uint32_t(1) << l) - 1);
  }
  return 0;
}

Status BlockRunner::checkReg(const Warp &w, const Inst &in, uint32_t reg,
                             uint32_t em) const {
  if (reg == kNoReg)
    return Status::ok();
  uint32_t missing = em & ~w.init[reg];
  if (!missing)
    return Status::ok();
  // Name the register by its index: the decoded form has no names.
  return fail(w, __builtin_ctz(missing), in,
              "reads a register (#" + std::to_string(reg) +
                  ") that this thread never wrote");
}

Status BlockRunner::checkSources(const Warp &w, const Inst &in,
                                 uint32_t em) const {
  unsigned first = 1;
  switch (in.op) {
  case Op::St:
  case Op::Red:
  case Op::CpAsync:
  case Op::Bar:
    first = 0;
    break;
  case Op::Bra:
  case Op::Ret:
  case Op::Exit:
  case Op::Nop:
  case Op::CpAsyncCommit:
  case Op::CpAsyncWait:
  case Op::Trap:
    return Status::ok();
  default:
    break;
  }
  for (unsigned k = first; k < in.nops; ++k) {
    const Operand &o = in.ops[k];
    if (o.kind == Operand::Reg || o.kind == Operand::Addr) {
      QC_RETURN_IF_ERROR(checkReg(w, in, o.reg, em));
    } else if (o.kind == Operand::Vec) {
      for (unsigned e = 0; e < o.n; ++e)
        QC_RETURN_IF_ERROR(checkReg(w, in, o.vec[e], em));
    }
  }
  // The address register of ld is operand 1, of st operand 0: covered.
  return Status::ok();
}

Status BlockRunner::access(const Warp &w, uint32_t l, const Inst &in, Space sp,
                           uint64_t addr, unsigned n, unsigned align,
                           bool write, uint8_t *&p, bool &isShared,
                           uint32_t &shOff) {
  isShared = false;
  const char *verb = write ? "writes " : "reads ";
  if (sp == Space::Generic) {
    if (addr - kSharedWindow < kWindowSize) {
      sp = Space::Shared;
      addr -= kSharedWindow;
    } else if (addr - kLocalWindow < kWindowSize) {
      sp = Space::Local;
      addr -= kLocalWindow;
    } else {
      sp = Space::Global;
    }
  }
  if (align > 1 && (addr & (align - 1)))
    return fail(w, l, in,
                verb + std::to_string(n) + " bytes at " + hex(addr) + " in " +
                    spaceName(sp) + " space, which is not " +
                    std::to_string(align) + "-byte aligned");
  switch (sp) {
  case Space::Global:
  case Space::Const: {
    if (addr >= gLo && addr + n <= gHi && addr + n >= addr) {
      p = L.dev.arena + (addr - kGlobalBase);
      return Status::ok();
    }
    uint64_t lo, hi;
    if (!L.dev.allocationOf(addr, lo, hi) || n > hi - addr)
      return fail(w, l, in,
                  verb + std::to_string(n) + " bytes at " + hex(addr) +
                      " outside any allocation");
    gLo = lo;
    gHi = hi;
    p = L.dev.arena + (addr - kGlobalBase);
    return Status::ok();
  }
  case Space::Shared:
    if (addr >= L.sharedBytes || n > L.sharedBytes - addr)
      return fail(w, l, in,
                  verb + std::to_string(n) + " bytes at shared offset " +
                      hex(addr) + ", outside the block's " +
                      std::to_string(L.sharedBytes) +
                      " bytes of shared memory (static " +
                      std::to_string(f.staticShared) + " + dynamic " +
                      std::to_string(L.dynShared) + ")");
    isShared = true;
    shOff = uint32_t(addr);
    p = shared.data() + addr;
    return Status::ok();
  case Space::Local:
    if (addr >= f.localBytes || n > f.localBytes - addr)
      return fail(w, l, in,
                  verb + std::to_string(n) + " bytes at local offset " +
                      hex(addr) + ", outside the thread's " +
                      std::to_string(f.localBytes) + " bytes of local memory");
    p = local.data() + size_t(w.linear[l]) * f.localBytes + addr;
    return Status::ok();
  case Space::Param:
    if (write)
      return fail(w, l, in, "writes to kernel parameter space");
    if (addr >= L.params.size() || n > L.params.size() - addr)
      return fail(w, l, in,
                  "reads " + std::to_string(n) + " bytes at param offset " +
                      hex(addr) + ", outside the " +
                      std::to_string(L.params.size()) + " bytes of parameters");
    p = const_cast<uint8_t *>(L.params.data()) + addr;
    return Status::ok();
  case Space::Generic:
    break;
  }
  return fail(w, l, in, "bad state space");
}

Status BlockRunner::sharedRead(const Warp &w, uint32_t l, const Inst &in,
                               uint32_t off, unsigned n) {
  uint16_t tid = uint16_t(w.linear[l]);
  for (unsigned k = 0; k < n; ++k) {
    ShadowByte &s = shadow[off + k];
    if (s.pending) {
      uint32_t line = 0;
      for (auto &wp : warps)
        for (auto &v : wp.pend)
          for (auto &c : v)
            if (off + k >= c.dst && off + k < c.dst + c.n)
              line = c.line;
      return fail(w, l, in,
                  "reads shared offset " + hex(off + k) +
                      " while a cp.async (line " + std::to_string(line) +
                      ") to it has not been waited for "
                      "(cp.async.wait_group/wait_all)");
    }
    if (!s.init)
      return fail(w, l, in,
                  "reads uninitialized shared memory at offset " +
                      hex(off + k) + " (" + std::to_string(n) +
                      "-byte access at " + hex(off) +
                      "; no thread of the block has written it yet: a "
                      "missing barrier or wait?)");
    if (s.wEpoch == epoch && s.wTid / 32 != tid / 32)
      return fail(w, l, in,
                  "shared-memory race: reads offset " + hex(off + k) +
                      " written by thread " + std::to_string(s.wTid) +
                      " (another warp) since the last barrier");
    if (s.rEpoch == epoch) {
      if (s.rTid / 32 != tid / 32)
        s.rMulti = 1;
    } else {
      s.rEpoch = epoch;
      s.rTid = tid;
      s.rMulti = 0;
    }
  }
  return Status::ok();
}

void BlockRunner::sharedWriteMark(uint32_t off, unsigned n, uint16_t tid) {
  for (unsigned k = 0; k < n; ++k) {
    ShadowByte &s = shadow[off + k];
    s.init = 1;
    s.wEpoch = epoch;
    s.wTid = tid;
  }
}

Status BlockRunner::sharedWrite(const Warp &w, uint32_t l, const Inst &in,
                                uint32_t off, unsigned n) {
  uint16_t tid = uint16_t(w.linear[l]);
  for (unsigned k = 0; k < n; ++k) {
    const ShadowByte &s = shadow[off + k];
    if (s.pending)
      return fail(w, l, in,
                  "writes shared offset " + hex(off + k) +
                      " while a cp.async to it is still in flight");
    if (s.wEpoch == epoch && s.wTid / 32 != tid / 32)
      return fail(w, l, in,
                  "shared-memory race: writes offset " + hex(off + k) +
                      " also written by thread " + std::to_string(s.wTid) +
                      " (another warp) since the last barrier");
    if (s.rEpoch == epoch && (s.rMulti || s.rTid / 32 != tid / 32))
      return fail(w, l, in,
                  "shared-memory race: writes offset " + hex(off + k) +
                      " read by thread " + std::to_string(s.rTid) +
                      (s.rMulti ? " and others" : "") +
                      " (another warp) since the last barrier");
  }
  sharedWriteMark(off, n, tid);
  return Status::ok();
}

void BlockRunner::reschedule(Warp &w) {
  uint32_t runnable = w.alive & ~w.waiting;
  if (!runnable) {
    w.active = 0;
    return;
  }
  uint32_t best = ~0u;
  FOR_LANES(runnable) best = std::min(best, w.lanePc[l]);
  uint32_t act = 0;
  FOR_LANES(runnable) if (w.lanePc[l] == best) act |= 1u << l;
  w.pc = best;
  w.active = act;
}

Status BlockRunner::run(uint32_t cx, uint32_t cy, uint32_t cz) {
  ctaid[0] = cx;
  ctaid[1] = cy;
  ctaid[2] = cz;
  epoch = 1;
  executed = 0;
  std::fill(shared.begin(), shared.end(), 0);
  if (checks)
    std::fill(shadow.begin(), shadow.end(), ShadowByte());
  std::fill(local.begin(), local.end(), 0);
  for (Warp &w : warps) {
    uint32_t n = std::min<uint32_t>(32, nthreads - w.index * 32);
    w.alive = n == 32 ? ~0u : (1u << n) - 1;
    w.active = w.alive;
    w.waiting = 0;
    w.pc = 0;
    for (uint32_t l = 0; l < 32; ++l) {
      w.lanePc[l] = 0;
      w.pend[l].clear();
      w.openGroup[l] = 0;
    }
    std::fill(w.init.begin(), w.init.end(), 0);
  }
  // The warps take turns, a few instructions each, like a GPU's warp
  // schedulers interleave them; so an access that would race with another
  // warp's (e.g. a consumer missing its barrier) meets the other warp's
  // write in the same barrier interval and is reported as the race it is
  // rather than as a read of memory nobody wrote yet. 8 costs nothing
  // measurable against running each warp to its barrier (1 costs ~15%).
  const uint32_t quantum = 8;
  while (true) {
    for (bool anyActive = true; anyActive;) {
      anyActive = false;
      for (Warp &w : warps) {
        if (!w.active)
          continue;
        QC_RETURN_IF_ERROR(runWarp(w, quantum));
        anyActive |= w.active != 0;
      }
    }
    // Every warp now waits at a barrier or has exited.
    bool anyWaiting = false;
    for (Warp &w : warps)
      if (w.waiting) {
        anyWaiting = true;
        w.waiting = 0;
        reschedule(w);
      }
    if (!anyWaiting)
      break;
    ++epoch; // a new barrier interval for the race check
  }
  return Status::ok();
}

Status BlockRunner::landCopies(Warp &w, uint32_t l, const Inst &in,
                               uint64_t upTo) {
  auto &v = w.pend[l];
  size_t keep = 0;
  for (size_t k = 0; k < v.size(); ++k) {
    PendingCopy &c = v[k];
    if (c.group < upTo) {
      if (checks) {
        for (unsigned b = 0; b < c.n; ++b)
          --shadow[c.dst + b].pending;
        // The landing bytes count as this thread's writes now.
        Status s = sharedWrite(w, l, in, c.dst, c.n);
        if (!s)
          return s;
      }
      std::memcpy(shared.data() + c.dst, c.data, c.n);
    } else {
      v[keep++] = c;
    }
  }
  v.resize(keep);
  return Status::ok();
}

Status BlockRunner::runWarp(Warp &w, uint32_t budget) {
  uint64_t *R = w.regs.data();
  const size_t ncode = code.size();
  while (w.active && budget-- > 0) {
    if (w.pc >= ncode)
      return Status::error("kernel '" + f.name + "': ran past its end");
    const Inst &in = code[w.pc];
    uint32_t em = w.active;
    if (++executed > L.dev.opts.maxWarpInstructionsPerBlock)
      return fail(w, __builtin_ctz(em), in,
                  "is past the limit of " +
                      std::to_string(L.dev.opts.maxWarpInstructionsPerBlock) +
                      " warp instructions per block (an endless loop?)");
    if (in.guard != kNoReg) {
      if (checks && (w.active & ~w.init[in.guard]))
        return fail(w, __builtin_ctz(w.active & ~w.init[in.guard]), in,
                    "is guarded by a predicate this thread never wrote");
      uint32_t pm = 0;
      const uint64_t *g = R + size_t(in.guard) * 32;
      FOR_LANES(w.active) if ((g[l] != 0) != in.guardNeg) pm |= 1u << l;
      em = pm;
    }
    if (checks && em)
      QC_RETURN_IF_ERROR(checkSources(w, in, em));
    switch (in.op) {
    case Op::Bra: {
      uint32_t target = uint32_t(in.ops[0].imm);
      uint32_t stay = w.active & ~em;
      if (!stay) {
        w.pc = target;
        if (w.alive & ~w.waiting & ~w.active) {
          // Other lanes of a diverged warp wait elsewhere: continue with
          // the smallest program counter (min-PC reconvergence).
          FOR_LANES(w.active) w.lanePc[l] = target;
          reschedule(w);
        }
      } else if (!em) {
        ++w.pc;
      } else {
        if (in.uni && checks)
          return fail(w, __builtin_ctz(stay), in,
                      "is marked .uni but its predicate differs across the "
                      "warp");
        FOR_LANES(em) w.lanePc[l] = target;
        FOR_LANES(stay) w.lanePc[l] = w.pc + 1;
        reschedule(w);
      }
      continue;
    }
    case Op::Ret:
    case Op::Exit: {
      uint32_t stay = w.active & ~em;
      w.alive &= ~em;
      if (stay) {
        w.active = stay;
        ++w.pc;
      } else {
        w.active = 0;
        reschedule(w);
      }
      continue;
    }
    case Op::Bar: {
      if (in.vec == 0) { // bar.warp.sync: lockstep already converged
        ++w.pc;
        continue;
      }
      if (em && in.trans && checks && em != w.alive)
        return fail(w, __builtin_ctz(em), in,
                    "(.aligned) is executed by part of the warp (lanes " +
                        hex(em) + " of " + hex(w.alive) +
                        "): all non-exited threads of a warp must execute "
                        "the same barrier instruction");
      if (em) {
        uint64_t id = val(w, in.ops[0], __builtin_ctz(em));
        if (id > 15)
          return fail(w, __builtin_ctz(em), in,
                      "barrier id " + std::to_string(id) + " is not in 0..15");
        if (in.nops > 1) {
          uint64_t cnt = val(w, in.ops[1], __builtin_ctz(em));
          if (cnt != ((nthreads + 31) / 32) * 32 && cnt != nthreads)
            return fail(w, __builtin_ctz(em), in,
                        "with a thread count of " + std::to_string(cnt) +
                            " (named barriers over part of the block are "
                            "not supported)");
        }
      }
      uint32_t stay = w.active & ~em;
      FOR_LANES(em) w.lanePc[l] = w.pc + 1;
      w.waiting |= em;
      if (stay) {
        w.active = stay;
        ++w.pc;
      } else {
        w.active = 0;
        reschedule(w);
        if (!w.active)
          return Status::ok(); // blocked at the barrier
      }
      continue;
    }
    case Op::Trap:
      if (em)
        return fail(w, __builtin_ctz(em), in, "executed (trap)");
      ++w.pc;
      continue;
    default:
      break;
    }
    if (em) {
      Status s = Status::ok();
      switch (in.op) {
      case Op::Nop:
        break;
      case Op::Mov: {
        const Operand &d = in.ops[0], &a = in.ops[1];
        unsigned sz = tySize(in.ty);
        if (d.kind == Operand::Vec) {
          unsigned eb = sz / d.n * 8;
          uint64_t m = eb >= 64 ? ~uint64_t(0) : (uint64_t(1) << eb) - 1;
          FOR_LANES(em) {
            uint64_t v = val(w, a, l);
            for (unsigned e = 0; e < d.n; ++e)
              if (d.vec[e] != kNoReg)
                R[size_t(d.vec[e]) * 32 + l] = (v >> (e * eb)) & m;
          }
          for (unsigned e = 0; e < d.n; ++e)
            if (d.vec[e] != kNoReg)
              w.init[d.vec[e]] |= em;
        } else if (a.kind == Operand::Vec) {
          unsigned eb = sz / a.n * 8;
          uint64_t m = eb >= 64 ? ~uint64_t(0) : (uint64_t(1) << eb) - 1;
          FOR_LANES(em) {
            uint64_t v = 0;
            for (unsigned e = 0; e < a.n; ++e)
              v |= (R[size_t(a.vec[e]) * 32 + l] & m) << (e * eb);
            R[size_t(d.reg) * 32 + l] = v;
          }
          w.init[d.reg] |= em;
        } else {
          uint64_t m = in.ty == Ty::Pred ? 1 : maskOf(sz);
          uint64_t *dst = R + size_t(d.reg) * 32;
          if (a.kind == Operand::Reg) {
            const uint64_t *src = R + size_t(a.reg) * 32;
            if (in.ty == Ty::Pred)
              FOR_LANES(em) dst[l] = src[l] != 0;
            else
              FOR_LANES(em) dst[l] = src[l] & m;
          } else {
            FOR_LANES(em) dst[l] = val(w, a, l) & m;
          }
          w.init[d.reg] |= em;
        }
        break;
      }
      case Op::Ld:
      case Op::St:
        s = execLdSt(w, in, em);
        break;
      case Op::Atom:
      case Op::Red:
        s = execAtom(w, in, em);
        break;
      case Op::Mma:
        s = execMma(w, in, em);
        break;
      case Op::Ldmatrix:
        s = execLdmatrix(w, in, em);
        break;
      case Op::Shfl:
        s = execShfl(w, in, em);
        break;
      case Op::Cvt:
        s = execCvt(w, in, em);
        break;
      case Op::Setp:
        s = execSetp(w, in, em);
        break;
      case Op::Vote: {
        uint32_t member = uint32_t(val(w, in.ops[2], __builtin_ctz(em)));
        if (checks && (member & ~em))
          return fail(w, __builtin_ctz(em), in,
                      "membermask " + hex(member) +
                          " names lanes that do not execute it (active " +
                          hex(em) + ")");
        uint32_t ballot = 0;
        FOR_LANES(em) {
          bool p = val(w, in.ops[1], l) != 0;
          if (in.ops[1].neg)
            p = !p;
          if (p)
            ballot |= 1u << l;
        }
        uint64_t r;
        switch (in.sub) {
        case Sub::All:
          r = (ballot & em) == em;
          break;
        case Sub::Any:
          r = ballot != 0;
          break;
        case Sub::Uni:
          r = ballot == 0 || ballot == em;
          break;
        default:
          r = ballot;
          break;
        }
        FOR_LANES(em) R[size_t(in.ops[0].reg) * 32 + l] = r;
        w.init[in.ops[0].reg] |= em;
        break;
      }
      case Op::Activemask:
        FOR_LANES(em) R[size_t(in.ops[0].reg) * 32 + l] = w.active;
        w.init[in.ops[0].reg] |= em;
        break;
      case Op::CpAsync: {
        unsigned n = in.vec;
        FOR_LANES(em) {
          uint64_t dst =
              (in.ops[0].reg != kNoReg ? R[size_t(in.ops[0].reg) * 32 + l]
                                       : 0) +
              in.ops[0].imm;
          uint64_t src =
              (in.ops[1].reg != kNoReg ? R[size_t(in.ops[1].reg) * 32 + l]
                                       : 0) +
              in.ops[1].imm;
          unsigned srcSize = in.nops >= 4 ? unsigned(val(w, in.ops[3], l)) : n;
          if (srcSize > n)
            return fail(w, l, in,
                        "src-size " + std::to_string(srcSize) +
                            " exceeds cp-size " + std::to_string(n));
          uint8_t *dp, *sp = nullptr;
          bool sh;
          uint32_t off;
          QC_RETURN_IF_ERROR(
              access(w, l, in, Space::Shared, dst, n, n, true, dp, sh, off));
          PendingCopy c;
          c.group = w.openGroup[l];
          c.dst = off;
          c.n = n;
          c.line = in.line;
          std::memset(c.data, 0, sizeof c.data);
          // PTX ISA "cp.async": bytes beyond src-size are
          // zero-filled and the source is not read for them.
          if (srcSize) {
            bool shs;
            uint32_t offs;
            QC_RETURN_IF_ERROR(access(w, l, in, Space::Global, src, srcSize, 1,
                                      false, sp, shs, offs));
            if (src & (n - 1))
              return fail(w, l, in,
                          "reads " + std::to_string(n) + " bytes at " +
                              hex(src) + " in global space, which is not " +
                              std::to_string(n) + "-byte aligned");
            std::memcpy(c.data, sp, srcSize);
          }
          if (checks) {
            for (unsigned b = 0; b < n; ++b)
              if (shadow[off + b].pending == 255)
                return fail(w, l, in,
                            "too many cp.async in flight to one byte");
            for (unsigned b = 0; b < n; ++b)
              ++shadow[off + b].pending;
          }
          w.pend[l].push_back(c);
        }
        break;
      }
      case Op::CpAsyncCommit:
        FOR_LANES(em)++ w.openGroup[l];
        break;
      case Op::CpAsyncWait: {
        // PTX ISA "cp.async.wait_group": waits until at most N of
        // the most recent committed groups are pending; wait_all commits
        // the open group first and waits for everything.
        uint64_t nkeep = in.ops[0].imm;
        FOR_LANES(em) {
          if (in.vec == 0)
            ++w.openGroup[l];
          uint64_t committed = w.openGroup[l];
          uint64_t upTo = committed > nkeep ? committed - nkeep : 0;
          QC_RETURN_IF_ERROR(landCopies(w, l, in, upTo));
        }
        break;
      }
      case Op::Cvta: {
        uint64_t win = in.space == Space::Shared  ? kSharedWindow
                       : in.space == Space::Local ? kLocalWindow
                                                  : 0;
        uint64_t *dst = R + size_t(in.ops[0].reg) * 32;
        uint64_t m = maskOf(tySize(in.ty));
        FOR_LANES(em) {
          uint64_t a = val(w, in.ops[1], l);
          if (in.trans) {
            if (win && checks && a - win >= kWindowSize)
              return fail(w, l, in,
                          "converts " + hex(a) + ", which is not a generic " +
                              spaceName(in.space) + " address");
            dst[l] = (a - win) & m;
          } else {
            dst[l] = (a + win) & m;
          }
        }
        w.init[in.ops[0].reg] |= em;
        break;
      }
      default:
        if (tyIsFloat(in.ty) && in.op != Op::Selp && in.op != Op::And &&
            in.op != Op::Or && in.op != Op::Xor)
          s = execFloat(w, in, em);
        else
          s = execInt(w, in, em);
        break;
      }
      if (!s)
        return s;
    }
    ++w.pc;
    if (uint32_t others = w.alive & ~w.waiting & ~w.active) {
      // Diverged: lanes waiting at this new pc join the active group.
      FOR_LANES(others) if (w.lanePc[l] == w.pc) w.active |= 1u << l;
    }
  }
  return Status::ok();
}

Status BlockRunner::execLdSt(Warp &w, const Inst &in, uint32_t em) {
  uint64_t *R = w.regs.data();
  const bool isLd = in.op == Op::Ld;
  const Operand &a = in.ops[isLd ? 1 : 0];
  const Operand &v = in.ops[isLd ? 0 : 1];
  const unsigned es = tySize(in.ty), n = es * in.vec;
  const bool sgn = tyIsSigned(in.ty);
  Space sp = in.space;
  if (sp == Space::Generic && a.symSpace != Space::Generic)
    sp = a.symSpace;
  FOR_LANES(em) {
    uint64_t addr = (a.reg != kNoReg ? R[size_t(a.reg) * 32 + l] : 0) + a.imm;
    uint8_t *p;
    bool sh;
    uint32_t off;
    // Natural alignment of the whole access, vectors included (PTX ISA
    // "Vectors" and "ld": addresses must be aligned to the access size).
    QC_RETURN_IF_ERROR(access(w, l, in, sp, addr, n, n, !isLd, p, sh, off));
    if (isLd) {
      if (sh && checks)
        QC_RETURN_IF_ERROR(sharedRead(w, l, in, off, n));
      for (unsigned e = 0; e < in.vec; ++e) {
        uint32_t r = v.kind == Operand::Vec ? v.vec[e] : v.reg;
        if (r == kNoReg)
          continue;
        uint64_t x = 0;
        std::memcpy(&x, p + e * es, es);
        // A destination wider than the type is sign- or zero-extended
        // (PTX ISA "ld": "the value is extended to the size of
        // the destination register").
        unsigned rb = f.regBits[r];
        if (sgn)
          x = uint64_t(sext(x, es));
        R[size_t(r) * 32 + l] = rb >= 64 ? x : x & ((uint64_t(1) << rb) - 1);
      }
    } else {
      if (sh && checks)
        QC_RETURN_IF_ERROR(sharedWrite(w, l, in, off, n));
      for (unsigned e = 0; e < in.vec; ++e) {
        uint64_t x = v.kind == Operand::Vec ? R[size_t(v.vec[e]) * 32 + l]
                                            : val(w, v, l);
        std::memcpy(p + e * es, &x, es);
      }
    }
  }
  if (isLd) {
    if (v.kind == Operand::Vec) {
      for (unsigned e = 0; e < v.n; ++e)
        if (v.vec[e] != kNoReg)
          w.init[v.vec[e]] |= em;
    } else {
      w.init[v.reg] |= em;
    }
  }
  return Status::ok();
}

template <typename T, typename F> T atomicRmw(T *p, F fn, bool shared) {
  if (shared) { // one block runs on one host thread: plain RMW is atomic
    T old = *p;
    *p = fn(old);
    return old;
  }
  T old = __atomic_load_n(p, __ATOMIC_RELAXED);
  while (!__atomic_compare_exchange_n(p, &old, fn(old), true, __ATOMIC_SEQ_CST,
                                      __ATOMIC_RELAXED)) {
  }
  return old;
}

Status BlockRunner::execAtom(Warp &w, const Inst &in, uint32_t em) {
  uint64_t *R = w.regs.data();
  const bool isAtom = in.op == Op::Atom;
  const Operand &a = in.ops[isAtom ? 1 : 0];
  const Operand &b = in.ops[isAtom ? 2 : 1];
  const unsigned n = tySize(in.ty);
  if (n != 4 && n != 8)
    return fail(w, __builtin_ctz(em), in,
                "atomics on ." + std::string(tyName(in.ty)) +
                    " are not supported");
  const Ty t = in.ty;
  FOR_LANES(em) {
    uint64_t addr = (a.reg != kNoReg ? R[size_t(a.reg) * 32 + l] : 0) + a.imm;
    uint8_t *p;
    bool sh;
    uint32_t off;
    QC_RETURN_IF_ERROR(
        access(w, l, in, in.space, addr, n, n, true, p, sh, off));
    if (sh && checks) {
      for (unsigned k = 0; k < n; ++k) {
        if (shadow[off + k].pending)
          return fail(w, l, in,
                      "updates shared memory with a pending cp.async");
        if (!shadow[off + k].init)
          return fail(w, l, in,
                      "updates uninitialized shared memory at " + hex(off + k));
      }
      sharedWriteMark(off, n, uint16_t(w.linear[l]));
    }
    uint64_t bv = val(w, b, l);
    uint64_t cv = isAtom && in.nops > 3 ? val(w, in.ops[3], l) : 0;
    uint64_t old = 0;
    auto op64 = [&](uint64_t x) -> uint64_t {
      switch (in.sub) {
      case Sub::AAdd:
        if (t == Ty::F32)
          return f32ToBits(bitsToF32(uint32_t(x)) + bitsToF32(uint32_t(bv)));
        if (t == Ty::F64)
          return f64ToBits(bitsToF64(x) + bitsToF64(bv));
        return x + bv;
      case Sub::AMin:
        if (t == Ty::F32)
          return f32ToBits(
              std::fmin(bitsToF32(uint32_t(x)), bitsToF32(uint32_t(bv))));
        if (tyIsSigned(t))
          return sext(x, n) < sext(bv, n) ? x : bv;
        return (x & maskOf(n)) < (bv & maskOf(n)) ? x : bv;
      case Sub::AMax:
        if (t == Ty::F32)
          return f32ToBits(
              std::fmax(bitsToF32(uint32_t(x)), bitsToF32(uint32_t(bv))));
        if (tyIsSigned(t))
          return sext(x, n) > sext(bv, n) ? x : bv;
        return (x & maskOf(n)) > (bv & maskOf(n)) ? x : bv;
      case Sub::AExch:
        return bv;
      case Sub::ACas:
        return x == (bv & maskOf(n)) ? cv : x;
      case Sub::AAnd:
        return x & bv;
      case Sub::AOr:
        return x | bv;
      case Sub::AXor:
        return x ^ bv;
      // PTX ISA "atom": inc/dec wrap at the operand b.
      case Sub::AInc:
        return (x & maskOf(n)) >= (bv & maskOf(n)) ? 0 : x + 1;
      case Sub::ADec:
        return ((x & maskOf(n)) == 0 || (x & maskOf(n)) > (bv & maskOf(n)))
                   ? bv
                   : x - 1;
      default:
        return x;
      }
    };
    if (n == 4)
      old = atomicRmw<uint32_t>(
          reinterpret_cast<uint32_t *>(p),
          [&](uint32_t x) { return uint32_t(op64(x)); }, sh);
    else
      old = atomicRmw<uint64_t>(reinterpret_cast<uint64_t *>(p), op64, sh);
    if (isAtom)
      R[size_t(in.ops[0].reg) * 32 + l] = old & maskOf(n);
  }
  if (isAtom)
    w.init[in.ops[0].reg] |= em;
  return Status::ok();
}

// mma.sync: PTX ISA "Matrix Fragments for mma.m16n8k16 with
// floating point type" (and the same section for m16n8k8). With groupID =
// laneid >> 2 and threadID_in_group = laneid % 4:
//  A (16x16, four .f16x2/.bf16x2 registers a0..a7 = element i, register
//    i/2, half i%2): row = groupID + 8 * ((i >> 1) & 1),
//    col = threadID_in_group * 2 + (i & 1) + 8 * (i >= 4);
//  B (16x8, two registers b0..b3): row = threadID_in_group * 2 + (i & 1)
//    + 8 * (i >= 2), col = groupID;
//  C, D (16x8, four .f32 c0..c3, or two .f16x2): row = groupID + 8 *
//    (i >= 2), col = threadID_in_group * 2 + (i & 1).
// m16n8k8: A has a0..a3 with row = groupID + 8 * (i >= 2),
// col = threadID_in_group * 2 + (i & 1); B has b0, b1 at row =
// threadID_in_group * 2 + i, col = groupID.
// The ISA leaves the order and internal precision of the dot products
// unspecified; the emulator sums the exact products in double and rounds
// once to the destination type.
Status BlockRunner::execMma(Warp &w, const Inst &in, uint32_t em) {
  if (em != w.alive || em != ~0u)
    return fail(w, __builtin_ctz(em), in,
                ".aligned collective executed by part of the warp (active " +
                    hex(em) + ")");
  const uint64_t *R = w.regs.data();
  const bool k16 = in.vec == 16;
  const unsigned K = k16 ? 16 : 8;
  const bool bf = in.ty2 == Ty::BF16;
  const bool cF32 = in.cmp == Cmp::Eq, dF32 = in.ty == Ty::F32;
  double A[16][16], B[16][8], C[16][8];
  auto h = [&](uint64_t reg, uint32_t l, unsigned half) {
    uint16_t x = uint16_t(R[reg * 32 + l] >> (16 * half));
    return bf ? bf16ToDouble(x) : halfToDouble(x);
  };
  for (uint32_t l = 0; l < 32; ++l) {
    unsigned g = l >> 2, t = l & 3;
    if (k16) {
      for (unsigned i = 0; i < 8; ++i)
        A[g + 8 * ((i >> 1) & 1)][t * 2 + (i & 1) + 8 * (i >= 4)] =
            h(in.ops[1].vec[i / 2], l, i % 2);
      for (unsigned i = 0; i < 4; ++i)
        B[t * 2 + (i & 1) + 8 * (i >= 2)][g] =
            h(in.ops[2].vec[i / 2], l, i % 2);
    } else {
      for (unsigned i = 0; i < 4; ++i)
        A[g + 8 * (i >= 2)][t * 2 + (i & 1)] =
            h(in.ops[1].vec[i / 2], l, i % 2);
      for (unsigned i = 0; i < 2; ++i)
        B[t * 2 + i][g] = h(in.ops[2].vec[0], l, i);
    }
    for (unsigned i = 0; i < 4; ++i) {
      unsigned row = g + 8 * (i >= 2), col = t * 2 + (i & 1);
      if (cF32)
        C[row][col] = bitsToF32(uint32_t(R[size_t(in.ops[3].vec[i]) * 32 + l]));
      else
        C[row][col] = halfToDouble(uint16_t(
            R[size_t(in.ops[3].vec[i / 2]) * 32 + l] >> (16 * (i % 2))));
    }
  }
  double D[16][8];
  for (unsigned m = 0; m < 16; ++m)
    for (unsigned nn = 0; nn < 8; ++nn) {
      double s = C[m][nn];
      for (unsigned k = 0; k < K; ++k)
        s += A[m][k] * B[k][nn];
      D[m][nn] = s;
    }
  uint64_t *W = w.regs.data();
  for (uint32_t l = 0; l < 32; ++l) {
    unsigned g = l >> 2, t = l & 3;
    for (unsigned i = 0; i < 4; ++i) {
      unsigned row = g + 8 * (i >= 2), col = t * 2 + (i & 1);
      if (dF32) {
        W[size_t(in.ops[0].vec[i]) * 32 + l] = f32ToBits(float(D[row][col]));
      } else {
        uint64_t &r = W[size_t(in.ops[0].vec[i / 2]) * 32 + l];
        uint64_t hb = toHalf(D[row][col]);
        if (i % 2 == 0)
          r = (r & ~uint64_t(0xffff)) | hb;
        else
          r = (r & 0xffff) | (hb << 16);
      }
    }
  }
  for (unsigned i = 0; i < (dF32 ? 4u : 2u); ++i)
    w.init[in.ops[0].vec[i]] |= em;
  return Status::ok();
}

// ldmatrix: PTX ISA "ldmatrix". Each 8x8 matrix of .b16 is
// given by eight row addresses, from threads 0-7 (matrix 0), 8-15 (1),
// 16-23 (2) and 24-31 (3); each row is 16 contiguous bytes. Thread `lane`
// receives in register d_i the elements (row lane / 4, columns
// 2 * (lane % 4) and +1) of matrix i; with .trans it receives
// (rows 2 * (lane % 4) and +1, column lane / 4) instead.
Status BlockRunner::execLdmatrix(Warp &w, const Inst &in, uint32_t em) {
  if (em != w.alive || em != ~0u)
    return fail(w, __builtin_ctz(em), in,
                ".aligned collective executed by part of the warp (active " +
                    hex(em) + ")");
  uint64_t *R = w.regs.data();
  const unsigned nm = in.vec;
  uint16_t M[4][8][8];
  const Operand &a = in.ops[1];
  for (unsigned i = 0; i < nm; ++i)
    for (unsigned r = 0; r < 8; ++r) {
      uint32_t src = i * 8 + r;
      uint64_t addr =
          (a.reg != kNoReg ? R[size_t(a.reg) * 32 + src] : 0) + a.imm;
      uint8_t *p;
      bool sh;
      uint32_t off;
      QC_RETURN_IF_ERROR(
          access(w, src, in, Space::Shared, addr, 16, 16, false, p, sh, off));
      if (checks)
        QC_RETURN_IF_ERROR(sharedRead(w, src, in, off, 16));
      std::memcpy(M[i][r], p, 16);
    }
  for (uint32_t l = 0; l < 32; ++l)
    for (unsigned i = 0; i < nm; ++i) {
      uint16_t lo, hi;
      if (!in.trans) {
        lo = M[i][l / 4][2 * (l % 4)];
        hi = M[i][l / 4][2 * (l % 4) + 1];
      } else {
        lo = M[i][2 * (l % 4)][l / 4];
        hi = M[i][2 * (l % 4) + 1][l / 4];
      }
      R[size_t(in.ops[0].vec[i]) * 32 + l] =
          uint32_t(lo) | (uint32_t(hi) << 16);
    }
  for (unsigned i = 0; i < nm; ++i)
    w.init[in.ops[0].vec[i]] |= em;
  return Status::ok();
}

// shfl.sync: PTX ISA "shfl.sync" pseudocode: with c = clamp value
// c[4:0] and segment mask c[12:8], maxLane = (lane & segmask) | (cval &
// ~segmask), minLane = lane & segmask; .up: j = lane - b, valid if j >=
// maxLane; .down: j = lane + b, valid if j <= maxLane; .bfly: j = lane ^ b,
// valid if j <= maxLane; .idx: j = minLane | (b & ~segmask), valid if j <=
// maxLane. An invalid j reads the thread's own value; p = valid.
Status BlockRunner::execShfl(Warp &w, const Inst &in, uint32_t em) {
  uint64_t *R = w.regs.data();
  uint32_t member = uint32_t(val(w, in.ops[4], __builtin_ctz(em)));
  if (checks && (member & ~em))
    return fail(w, __builtin_ctz(em), in,
                "membermask " + hex(member) +
                    " names lanes that do not execute it (active " + hex(em) +
                    ")");
  uint32_t out[32];
  uint8_t pv[32];
  FOR_LANES(em) {
    uint32_t bval = uint32_t(val(w, in.ops[2], l)) & 31;
    uint32_t c = uint32_t(val(w, in.ops[3], l));
    uint32_t cval = c & 31, seg = (c >> 8) & 31;
    uint32_t maxLane = (l & seg) | (cval & ~seg), minLane = l & seg;
    int32_t j;
    bool ok;
    switch (in.sub) {
    case Sub::Up:
      j = int32_t(l) - int32_t(bval);
      ok = j >= int32_t(maxLane);
      break;
    case Sub::Down:
      j = int32_t(l + bval);
      ok = j <= int32_t(maxLane);
      break;
    case Sub::Bfly:
      j = int32_t(l ^ bval);
      ok = j <= int32_t(maxLane);
      break;
    default:
      j = int32_t(minLane | (bval & ~seg));
      ok = j <= int32_t(maxLane);
      break;
    }
    if (!ok)
      j = int32_t(l);
    if (!((em >> j) & 1)) {
      if (checks)
        return fail(w, l, in,
                    "reads lane " + std::to_string(j) +
                        ", which does not execute it (undefined value)");
    } else if (checks && !((w.init[in.ops[1].reg] >> j) & 1)) {
      return fail(w, l, in,
                  "reads an unwritten register of lane " + std::to_string(j));
    }
    out[l] = uint32_t(val(w, in.ops[1], uint32_t(j)));
    pv[l] = ok;
  }
  FOR_LANES(em) R[size_t(in.ops[0].reg) * 32 + l] = out[l];
  w.init[in.ops[0].reg] |= em;
  if (in.ops[0].vec[1] != kNoReg) {
    FOR_LANES(em) R[size_t(in.ops[0].vec[1]) * 32 + l] = pv[l];
    w.init[in.ops[0].vec[1]] |= em;
  }
  return Status::ok();
}

inline float ftz32(float x) {
  return std::fpclassify(x) == FP_SUBNORMAL ? std::copysign(0.0f, x) : x;
}

double fget(uint64_t bits, Ty t) {
  switch (t) {
  case Ty::F32:
    return bitsToF32(uint32_t(bits));
  case Ty::F64:
    return bitsToF64(bits);
  case Ty::F16:
    return halfToDouble(uint16_t(bits));
  case Ty::BF16:
    return bf16ToDouble(uint16_t(bits));
  default:
    return 0;
  }
}

RoundDir dirOf(Rnd r) {
  switch (r) {
  case Rnd::Rz:
  case Rnd::Rzi:
    return RoundDir::Zero;
  case Rnd::Rm:
  case Rnd::Rmi:
    return RoundDir::Down;
  case Rnd::Rp:
  case Rnd::Rpi:
    return RoundDir::Up;
  default:
    return RoundDir::NearestEven;
  }
}

// Floating-point arithmetic: PTX ISA "Floating-Point Instructions"
// (f32/f64) and "Half Precision Floating-Point Instructions". .rn is
// IEEE round-to-nearest-even of the exact result; fma is fused (one
// rounding); half-precision operations round the exact result once to
// binary16 (the exact result is formed in double: sums and products of two
// halves are exact there, and fma carries the residual as a sticky sign).
// The .approx forms (rcp, sqrt, rsqrt, ex2, lg2, sin, cos, tanh, div) have
// only a maximum error bound in the ISA; the emulator returns the correctly
// rounded value of the double-precision function, which is within them.
Status BlockRunner::execFloat(Warp &w, const Inst &in, uint32_t em) {
  uint64_t *R = w.regs.data();
  const Ty t = in.ty;
  const uint32_t dreg = in.ops[0].reg;
  const Op op = in.op;
  const bool directed =
      in.rnd == Rnd::Rz || in.rnd == Rnd::Rm || in.rnd == Rnd::Rp;
  if (directed && op != Op::Mul && t != Ty::F64)
    return fail(w, __builtin_ctz(em), in,
                "with a directed rounding mode is not supported");
  auto halfOp = [&](uint16_t a, uint16_t b, uint16_t c, bool isBf) -> uint16_t {
    auto get = [&](uint16_t x) {
      return isBf ? bf16ToDouble(x) : halfToDouble(x);
    };
    auto put = [&](double x, int sticky) -> uint16_t {
      if (in.sat && !std::isnan(x))
        x = std::min(1.0, std::max(0.0, x));
      else if (in.sat)
        x = 0;
      return isBf ? toBf16(x, dirOf(in.rnd), sticky)
                  : toHalf(x, dirOf(in.rnd), sticky);
    };
    double x = get(a), y = get(b), z = get(c);
    switch (op) {
    case Op::Add:
      return put(x + y, 0);
    case Op::Sub:
      return put(x - y, 0);
    case Op::Mul:
      return put(x * y, 0);
    case Op::Fma: {
      double err;
      double s = twoSum(x * y, z, err);
      return put(s, signOf(err));
    }
    case Op::Min:
      return std::isnan(x)                            ? b
             : std::isnan(y)                          ? a
             : (x < y || (x == y && std::signbit(x))) ? a
                                                      : b;
    case Op::Max:
      return std::isnan(x)                             ? b
             : std::isnan(y)                           ? a
             : (x > y || (x == y && !std::signbit(x))) ? a
                                                       : b;
    case Op::Neg:
      return a ^ 0x8000;
    case Op::Abs:
      return a & 0x7fff;
    case Op::Ex2:
      return put(std::exp2(x), 0);
    case Op::Tanh:
      return put(std::tanh(x), 0);
    case Op::Rcp:
      return put(1.0 / x, 0);
    case Op::Sqrt:
      return put(std::sqrt(x), 0);
    default:
      return 0xffff;
    }
  };
  if (t == Ty::F16 || t == Ty::BF16 || t == Ty::F16x2 || t == Ty::BF16x2) {
    switch (op) {
    case Op::Add:
    case Op::Sub:
    case Op::Mul:
    case Op::Fma:
    case Op::Min:
    case Op::Max:
    case Op::Neg:
    case Op::Abs:
    case Op::Ex2:
    case Op::Tanh:
    case Op::Rcp:
    case Op::Sqrt:
      break;
    default:
      return fail(w, __builtin_ctz(em), in,
                  "is not supported for ." + std::string(tyName(t)));
    }
    const bool isBf = t == Ty::BF16 || t == Ty::BF16x2;
    const bool x2 = t == Ty::F16x2 || t == Ty::BF16x2;
    FOR_LANES(em) {
      uint64_t a = val(w, in.ops[1], l);
      uint64_t b = in.nops > 2 ? val(w, in.ops[2], l) : 0;
      uint64_t c = in.nops > 3 ? val(w, in.ops[3], l) : 0;
      uint64_t r = halfOp(uint16_t(a), uint16_t(b), uint16_t(c), isBf);
      if (x2)
        r |= uint64_t(halfOp(uint16_t(a >> 16), uint16_t(b >> 16),
                             uint16_t(c >> 16), isBf))
             << 16;
      R[size_t(dreg) * 32 + l] = r;
    }
    w.init[dreg] |= em;
    return Status::ok();
  }
  if (t == Ty::F32) {
    const bool fz = in.ftz;
    FOR_LANES(em) {
      float a = bitsToF32(uint32_t(val(w, in.ops[1], l)));
      float b = in.nops > 2 ? bitsToF32(uint32_t(val(w, in.ops[2], l))) : 0;
      float c = in.nops > 3 ? bitsToF32(uint32_t(val(w, in.ops[3], l))) : 0;
      if (fz) {
        a = ftz32(a);
        b = ftz32(b);
        c = ftz32(c);
      }
      float r;
      switch (op) {
      case Op::Add:
        r = a + b;
        break;
      case Op::Sub:
        r = a - b;
        break;
      case Op::Mul:
        r = directed
                ? bitsToF32(toF32Bits(double(a) * double(b), dirOf(in.rnd)))
                : a * b;
        break;
      case Op::Fma:
        r = std::fma(a, b, c);
        break;
      case Op::Div:
        r = a / b;
        break;
      case Op::Min:
        r = std::fmin(a, b);
        break;
      case Op::Max:
        r = std::fmax(a, b);
        break;
      case Op::Neg:
        r = -a;
        break;
      case Op::Abs:
        r = std::fabs(a);
        break;
      case Op::Rcp:
        r = float(1.0 / double(a));
        break;
      case Op::Sqrt:
        r = std::sqrt(a);
        break;
      case Op::Rsqrt:
        r = float(1.0 / std::sqrt(double(a)));
        break;
      case Op::Ex2:
        r = float(std::exp2(double(a)));
        break;
      case Op::Lg2:
        r = float(std::log2(double(a)));
        break;
      case Op::Sin:
        r = float(std::sin(double(a)));
        break;
      case Op::Cos:
        r = float(std::cos(double(a)));
        break;
      case Op::Tanh:
        r = float(std::tanh(double(a)));
        break;
      // PTX ISA "copysign": the magnitude of b with the sign of a.
      case Op::CopySign:
        r = std::copysign(b, a);
        break;
      default:
        return fail(w, l, in, "is not supported for .f32");
      }
      if (in.sat)
        r = std::isnan(r) ? 0.0f : std::min(1.0f, std::max(0.0f, r));
      if (fz)
        r = ftz32(r);
      R[size_t(dreg) * 32 + l] = f32ToBits(r);
    }
    w.init[dreg] |= em;
    return Status::ok();
  }
  if (t == Ty::F64) {
    if (directed)
      return fail(w, __builtin_ctz(em), in,
                  "with a directed rounding mode is not supported");
    FOR_LANES(em) {
      double a = bitsToF64(val(w, in.ops[1], l));
      double b = in.nops > 2 ? bitsToF64(val(w, in.ops[2], l)) : 0;
      double c = in.nops > 3 ? bitsToF64(val(w, in.ops[3], l)) : 0;
      double r;
      switch (op) {
      case Op::Add:
        r = a + b;
        break;
      case Op::Sub:
        r = a - b;
        break;
      case Op::Mul:
        r = a * b;
        break;
      case Op::Fma:
        r = std::fma(a, b, c);
        break;
      case Op::Div:
        r = a / b;
        break;
      case Op::Min:
        r = std::fmin(a, b);
        break;
      case Op::Max:
        r = std::fmax(a, b);
        break;
      case Op::Neg:
        r = -a;
        break;
      case Op::Abs:
        r = std::fabs(a);
        break;
      case Op::Rcp:
        r = 1.0 / a;
        break;
      case Op::Sqrt:
        r = std::sqrt(a);
        break;
      case Op::Rsqrt:
        r = 1.0 / std::sqrt(a);
        break;
      case Op::CopySign:
        r = std::copysign(b, a);
        break;
      default:
        return fail(w, l, in, "is not supported for .f64");
      }
      R[size_t(dreg) * 32 + l] = f64ToBits(r);
    }
    w.init[dreg] |= em;
    return Status::ok();
  }
  return fail(w, __builtin_ctz(em), in, "has an unsupported type");
}

// setp: PTX ISA "setp" with the comparison tables "Operators for
// signed integer, unsigned integer, and bit-size types" (.lo/.ls/.hi/.hs
// are the unsigned forms) and "Floating-point comparison operators" (the
// ...u forms are true when either operand is NaN; num/nan test for NaN).
// p = cmp BOP c, q = !cmp BOP c.
Status BlockRunner::execSetp(Warp &w, const Inst &in, uint32_t em) {
  uint64_t *R = w.regs.data();
  const Ty t = in.ty;
  const unsigned sz = tySize(t);
  const bool fl = tyIsFloat(t), sg = tyIsSigned(t);
  if (t == Ty::F16x2 || t == Ty::BF16x2)
    return fail(w, __builtin_ctz(em), in, "on packed halves is not supported");
  const uint32_t p = in.ops[0].reg, q = in.ops[0].vec[1];
  FOR_LANES(em) {
    uint64_t ua = val(w, in.ops[1], l), ub = val(w, in.ops[2], l);
    bool r;
    if (fl) {
      double a = fget(ua, t), b = fget(ub, t);
      if (in.ftz && t == Ty::F32) {
        a = ftz32(float(a));
        b = ftz32(float(b));
      }
      bool un = std::isnan(a) || std::isnan(b);
      switch (in.cmp) {
      case Cmp::Eq:
        r = !un && a == b;
        break;
      case Cmp::Ne:
        r = !un && a != b;
        break;
      case Cmp::Lt:
        r = !un && a < b;
        break;
      case Cmp::Le:
        r = !un && a <= b;
        break;
      case Cmp::Gt:
        r = !un && a > b;
        break;
      case Cmp::Ge:
        r = !un && a >= b;
        break;
      case Cmp::Equ:
        r = un || a == b;
        break;
      case Cmp::Neu:
        r = un || a != b;
        break;
      case Cmp::Ltu:
        r = un || a < b;
        break;
      case Cmp::Leu:
        r = un || a <= b;
        break;
      case Cmp::Gtu:
        r = un || a > b;
        break;
      case Cmp::Geu:
        r = un || a >= b;
        break;
      case Cmp::Num:
        r = !un;
        break;
      case Cmp::Nan:
        r = un;
        break;
      default:
        return fail(w, l, in, "uses an integer comparison on floats");
      }
    } else {
      uint64_t m = t == Ty::Pred ? 1 : maskOf(sz);
      uint64_t a = ua & m, b = ub & m;
      int64_t sa = sext(a, sz), sb = sext(b, sz);
      bool useSigned = sg;
      switch (in.cmp) {
      case Cmp::Eq:
        r = a == b;
        break;
      case Cmp::Ne:
        r = a != b;
        break;
      case Cmp::Lt:
        r = useSigned ? sa < sb : a < b;
        break;
      case Cmp::Le:
        r = useSigned ? sa <= sb : a <= b;
        break;
      case Cmp::Gt:
        r = useSigned ? sa > sb : a > b;
        break;
      case Cmp::Ge:
        r = useSigned ? sa >= sb : a >= b;
        break;
      case Cmp::Lo:
        r = a < b;
        break;
      case Cmp::Ls:
        r = a <= b;
        break;
      case Cmp::Hi:
        r = a > b;
        break;
      case Cmp::Hs:
        r = a >= b;
        break;
      default:
        return fail(w, l, in, "uses a float comparison on integers");
      }
    }
    bool rq = !r;
    if (in.boolOp != Sub::None) {
      bool c = val(w, in.ops[3], l) != 0;
      if (in.ops[3].neg)
        c = !c;
      auto comb = [&](bool x) {
        return in.boolOp == Sub::BAnd  ? (x && c)
               : in.boolOp == Sub::BOr ? (x || c)
                                       : (x != c);
      };
      r = comb(r);
      rq = comb(rq);
    }
    R[size_t(p) * 32 + l] = r;
    if (q != kNoReg)
      R[size_t(q) * 32 + l] = rq;
  }
  w.init[p] |= em;
  if (q != kNoReg)
    w.init[q] |= em;
  return Status::ok();
}

// cvt: PTX ISA "cvt" (rounding: "Rounding Modifiers" tables for
// floating-point and integer conversions). Float-to-integer conversions
// saturate to the destination range and map NaN to 0; .sat on an integer
// destination clamps to its range; .sat on a float destination clamps to
// [0, 1]; f32 <-> f16 / bf16 / f64 use the IEEE rounding named by the
// modifier (.rn nearest-even, .rz, .rm, .rp); .rni/.rzi/.rmi/.rpi round a
// float to an integral value. cvt.{f16x2,bf16x2}.f32 d, a, b packs
// cvt(a) in the upper and cvt(b) in the lower half.
Status BlockRunner::execCvt(Warp &w, const Inst &in, uint32_t em) {
  uint64_t *R = w.regs.data();
  const Ty D = in.ty, S = in.ty2;
  const unsigned ds = tySize(D), ss = tySize(S);
  const uint32_t dreg = in.ops[0].reg;
  const RoundDir dir = dirOf(in.rnd);
  auto toFloatBits = [&](double v, Ty dt) -> uint64_t {
    if (in.sat)
      v = std::isnan(v) ? 0.0 : std::min(1.0, std::max(0.0, v));
    switch (dt) {
    case Ty::F16:
      return toHalf(v, dir);
    case Ty::BF16:
      return toBf16(v, dir);
    case Ty::F32: {
      uint32_t b = dir == RoundDir::NearestEven ? f32ToBits(float(v))
                                                : toF32Bits(v, dir);
      if (in.ftz)
        b = f32ToBits(ftz32(bitsToF32(b)));
      return b;
    }
    default:
      return f64ToBits(v);
    }
  };
  if (D == Ty::F16x2 || D == Ty::BF16x2) {
    if (S != Ty::F32 || in.nops != 3)
      return fail(w, __builtin_ctz(em), in, "form is not supported");
    Ty h = D == Ty::F16x2 ? Ty::F16 : Ty::BF16;
    FOR_LANES(em) {
      double a = bitsToF32(uint32_t(val(w, in.ops[1], l)));
      double b = bitsToF32(uint32_t(val(w, in.ops[2], l)));
      R[size_t(dreg) * 32 + l] = (toFloatBits(a, h) << 16) | toFloatBits(b, h);
    }
    w.init[dreg] |= em;
    return Status::ok();
  }
  if (D == Ty::Pred || S == Ty::Pred || S == Ty::F16x2 || S == Ty::BF16x2 ||
      D == Ty::B128 || S == Ty::B128)
    return fail(w, __builtin_ctz(em), in, "form is not supported");
  const bool df = tyIsFloat(D), sf = tyIsFloat(S);
  const bool dsg = tyIsSigned(D);
  // Integer range of the destination.
  const double dmax =
      dsg ? std::ldexp(1.0, 8 * ds - 1) - 1 : std::ldexp(1.0, 8 * ds) - 1;
  const double dmin = dsg ? -std::ldexp(1.0, 8 * ds - 1) : 0.0;
  FOR_LANES(em) {
    uint64_t x = val(w, in.ops[1], l);
    uint64_t r;
    if (sf) {
      double v = fget(x, S);
      if (in.ftz && S == Ty::F32)
        v = ftz32(float(v));
      if (df) {
        switch (in.rnd) {
        case Rnd::Rni:
          v = std::nearbyint(v);
          break;
        case Rnd::Rzi:
          v = std::trunc(v);
          break;
        case Rnd::Rmi:
          v = std::floor(v);
          break;
        case Rnd::Rpi:
          v = std::ceil(v);
          break;
        default:
          break;
        }
        r = toFloatBits(v, D);
      } else {
        double iv;
        switch (in.rnd) {
        case Rnd::Rni:
          iv = std::nearbyint(v);
          break;
        case Rnd::Rmi:
          iv = std::floor(v);
          break;
        case Rnd::Rpi:
          iv = std::ceil(v);
          break;
        default:
          iv = std::trunc(v);
          break;
        }
        if (std::isnan(iv))
          r = 0;
        else if (iv >= dmax)
          r = dsg ? uint64_t(int64_t(dmax))
                  : (ds >= 8 ? ~uint64_t(0) : uint64_t(dmax));
        else if (iv <= dmin)
          r = dsg ? uint64_t(int64_t(dmin)) : 0;
        else
          r = dsg ? uint64_t(int64_t(iv)) : uint64_t(iv);
        r &= maskOf(ds);
      }
    } else {
      const bool ssg = tyIsSigned(S);
      int64_t sv = sext(x, ss);
      uint64_t uv = x & maskOf(ss);
      if (df) {
        double v;
        if (dir == RoundDir::NearestEven && D == Ty::F32)
          r = f32ToBits(ssg ? float(sv) : float(uv));
        else if (dir == RoundDir::NearestEven && D == Ty::F64)
          r = f64ToBits(ssg ? double(sv) : double(uv));
        else {
          v = ssg ? double(sv) : double(uv);
          r = toFloatBits(v, D);
        }
      } else {
        if (in.sat) {
          if (ssg) {
            double v = double(sv);
            r = v > dmax   ? uint64_t(int64_t(dmax))
                : v < dmin ? uint64_t(int64_t(dmin))
                           : uint64_t(sv);
            if (!dsg && ds >= 8 && sv >= 0)
              r = uint64_t(sv);
          } else {
            r = (ds < 8 && double(uv) > dmax) ? uint64_t(dmax) : uv;
            if (dsg && ds >= 8 && uv > uint64_t(INT64_MAX))
              r = uint64_t(INT64_MAX);
          }
        } else {
          r = ssg ? uint64_t(sv) : uv;
        }
        r &= maskOf(ds);
      }
    }
    R[size_t(dreg) * 32 + l] = r;
  }
  w.init[dreg] |= em;
  return Status::ok();
}

inline uint64_t bitRev(uint64_t v, unsigned bits) {
  uint64_t r = 0;
  for (unsigned i = 0; i < bits; ++i)
    r |= ((v >> i) & 1) << (bits - 1 - i);
  return r;
}

// prmt modes: PTX ISA "prmt", table of the f4e/b4e/rc8/ecl/ecr/rc16
// byte selections (result bytes d.b3 d.b2 d.b1 d.b0 for selector c[1:0]).
const uint8_t kPrmtModes[6][4][4] = {
    // f4e
    {{0, 1, 2, 3}, {1, 2, 3, 4}, {2, 3, 4, 5}, {3, 4, 5, 6}},
    // b4e
    {{0, 7, 6, 5}, {1, 0, 7, 6}, {2, 1, 0, 7}, {3, 2, 1, 0}},
    // rc8
    {{0, 0, 0, 0}, {1, 1, 1, 1}, {2, 2, 2, 2}, {3, 3, 3, 3}},
    // ecl
    {{0, 1, 2, 3}, {1, 1, 2, 3}, {2, 2, 2, 3}, {3, 3, 3, 3}},
    // ecr
    {{0, 0, 0, 0}, {0, 1, 1, 1}, {0, 1, 2, 2}, {0, 1, 2, 3}},
    // rc16
    {{0, 1, 0, 1}, {2, 3, 2, 3}, {0, 1, 0, 1}, {2, 3, 2, 3}},
};

// Integer, bit and logical instructions: PTX ISA "Integer Arithmetic
// Instructions", "Logic and Shift Instructions" (lop3: the result bit
// is immLut[(a << 2) | (b << 1) | c], from ta = 0xF0, tb = 0xCC, tc = 0xAA;
// prmt default mode: byte selectors c[4k+2:4k] pick from {b, a}, c[4k+3]
// replicates the picked byte's sign; shifts clamp their amount to the
// width), "Comparison and Selection" (selp).
Status BlockRunner::execInt(Warp &w, const Inst &in, uint32_t em) {
  uint64_t *R = w.regs.data();
  const Ty t = in.ty;
  const unsigned sz = t == Ty::Pred ? 1 : tySize(t), bits = 8 * sz;
  const uint64_t m = t == Ty::Pred ? 1 : maskOf(sz);
  const bool sg = tyIsSigned(t);
  const uint32_t dreg = in.ops[0].reg;
  uint64_t *D = R + size_t(dreg) * 32;
  const Operand &A = in.ops[1];
  const Operand &B = in.ops[2];
  const Operand &C = in.ops[3];
  switch (in.op) {
  case Op::Add:
    if (in.sat) {
      FOR_LANES(em) {
        int64_t r = sext(val(w, A, l), 4) + sext(val(w, B, l), 4);
        r = std::min<int64_t>(INT32_MAX, std::max<int64_t>(INT32_MIN, r));
        D[l] = uint64_t(r) & m;
      }
    } else {
      FOR_LANES(em) D[l] = (val(w, A, l) + val(w, B, l)) & m;
    }
    break;
  case Op::Sub:
    if (in.sat) {
      FOR_LANES(em) {
        int64_t r = sext(val(w, A, l), 4) - sext(val(w, B, l), 4);
        r = std::min<int64_t>(INT32_MAX, std::max<int64_t>(INT32_MIN, r));
        D[l] = uint64_t(r) & m;
      }
    } else {
      FOR_LANES(em) D[l] = (val(w, A, l) - val(w, B, l)) & m;
    }
    break;
  case Op::Mul:
  case Op::Mad:
    FOR_LANES(em) {
      uint64_t a = val(w, A, l), b = val(w, B, l);
      __int128 p = sg ? __int128(sext(a, sz)) * sext(b, sz)
                      : __int128((unsigned __int128)(a & m) * (b & m));
      uint64_t r;
      if (in.sub == Sub::Lo)
        r = uint64_t(p) & m;
      else if (in.sub == Sub::Hi)
        r = uint64_t(p >> bits) & m;
      else
        r = uint64_t(p) & maskOf(2 * sz);
      if (in.op == Op::Mad)
        r = (r + val(w, C, l)) & (in.sub == Sub::Wide ? maskOf(2 * sz) : m);
      D[l] = r;
    }
    break;
  case Op::Div:
  case Op::Rem:
    FOR_LANES(em) {
      uint64_t a = val(w, A, l) & m, b = val(w, B, l) & m;
      uint64_t r;
      if (b == 0) {
        // Division by zero is undefined in the ISA; hardware returns all
        // ones for div and the dividend for rem. Reported under checks.
        if (checks)
          return fail(w, l, in, "divides by zero");
        r = in.op == Op::Div ? m : a;
      } else if (sg) {
        int64_t sa = sext(a, sz), sb = sext(b, sz);
        if (sb == -1 && sa == std::numeric_limits<int64_t>::min())
          r = in.op == Op::Div ? uint64_t(sa) : 0;
        else
          r = uint64_t(in.op == Op::Div ? sa / sb : sa % sb);
      } else {
        r = in.op == Op::Div ? a / b : a % b;
      }
      D[l] = r & m;
    }
    break;
  case Op::Min:
  case Op::Max:
    FOR_LANES(em) {
      uint64_t a = val(w, A, l) & m, b = val(w, B, l) & m;
      bool lt = sg ? sext(a, sz) < sext(b, sz) : a < b;
      D[l] = (in.op == Op::Min) == lt ? a : b;
    }
    break;
  case Op::Abs:
    FOR_LANES(em) {
      int64_t a = sext(val(w, A, l), sz);
      D[l] = uint64_t(a < 0 ? -a : a) & m;
    }
    break;
  case Op::Neg:
    FOR_LANES(em) D[l] = (uint64_t(0) - val(w, A, l)) & m;
    break;
  case Op::And:
    FOR_LANES(em) D[l] = val(w, A, l) & val(w, B, l) & m;
    break;
  case Op::Or:
    FOR_LANES(em) D[l] = (val(w, A, l) | val(w, B, l)) & m;
    break;
  case Op::Xor:
    FOR_LANES(em) D[l] = (val(w, A, l) ^ val(w, B, l)) & m;
    break;
  case Op::Not:
    FOR_LANES(em)
    D[l] = t == Ty::Pred ? uint64_t(val(w, A, l) == 0) : ~val(w, A, l) & m;
    break;
  case Op::CNot:
    FOR_LANES(em) D[l] = (val(w, A, l) & m) == 0;
    break;
  case Op::Shl:
    FOR_LANES(em) {
      uint64_t s = val(w, B, l) & 0xffffffffu;
      D[l] = s >= bits ? 0 : (val(w, A, l) << s) & m;
    }
    break;
  case Op::Shr:
    FOR_LANES(em) {
      uint64_t s = val(w, B, l) & 0xffffffffu;
      uint64_t a = val(w, A, l) & m;
      if (sg) {
        int64_t sa = sext(a, sz);
        D[l] = uint64_t(sa >> (s >= bits ? bits - 1 : s)) & m;
      } else {
        D[l] = s >= bits ? 0 : a >> s;
      }
    }
    break;
  case Op::Shf:
    FOR_LANES(em) {
      uint64_t v =
          ((val(w, B, l) & 0xffffffffu) << 32) | (val(w, A, l) & 0xffffffffu);
      uint32_t n = uint32_t(val(w, C, l));
      n = in.uni ? n & 31 : std::min<uint32_t>(n, 32);
      D[l] = in.sub == Sub::Lo ? uint32_t((v << n) >> 32) : uint32_t(v >> n);
    }
    break;
  case Op::Lop3:
    FOR_LANES(em) {
      uint32_t a = uint32_t(val(w, A, l)), b = uint32_t(val(w, B, l)),
               c = uint32_t(val(w, C, l));
      uint32_t lut = uint32_t(in.ops[4].imm) & 0xff, r = 0;
      for (unsigned i = 0; i < 8; ++i)
        if ((lut >> i) & 1)
          r |= ((i & 4) ? a : ~a) & ((i & 2) ? b : ~b) & ((i & 1) ? c : ~c);
      D[l] = r;
    }
    break;
  case Op::Prmt:
    FOR_LANES(em) {
      uint64_t a = val(w, A, l) & 0xffffffffu, b = val(w, B, l) & 0xffffffffu;
      uint32_t c = uint32_t(val(w, C, l));
      uint64_t tmp = (b << 32) | a;
      uint32_t r = 0;
      if (in.sub == Sub::None) {
        for (unsigned k = 0; k < 4; ++k) {
          uint32_t sel = (c >> (4 * k)) & 0xf;
          uint32_t byte = uint32_t(tmp >> (8 * (sel & 7))) & 0xff;
          if (sel & 8)
            byte = (byte & 0x80) ? 0xff : 0;
          r |= byte << (8 * k);
        }
      } else {
        unsigned mode = unsigned(in.sub) - unsigned(Sub::F4e);
        for (unsigned k = 0; k < 4; ++k)
          r |= (uint32_t(tmp >> (8 * kPrmtModes[mode][c & 3][k])) & 0xff)
               << (8 * k);
      }
      D[l] = r;
    }
    break;
  case Op::Bfe:
    FOR_LANES(em) {
      uint64_t a = val(w, A, l) & m;
      unsigned pos = unsigned(val(w, B, l) & 0xff),
               len = unsigned(val(w, C, l) & 0xff);
      unsigned msb = bits - 1;
      uint64_t sbit = (sg && len) ? (a >> std::min(pos + len - 1, msb)) & 1 : 0;
      uint64_t r = 0;
      for (unsigned i = 0; i <= msb; ++i) {
        uint64_t bit =
            (i < len && pos + i <= msb) ? (a >> (pos + i)) & 1 : sbit;
        r |= bit << i;
      }
      D[l] = r;
    }
    break;
  case Op::Bfi:
    FOR_LANES(em) {
      uint64_t a = val(w, A, l) & m, r = val(w, B, l) & m;
      unsigned pos = unsigned(val(w, C, l) & 0xff),
               len = unsigned(val(w, in.ops[4], l) & 0xff);
      for (unsigned i = 0; i < len && pos + i < bits; ++i)
        r = (r & ~(uint64_t(1) << (pos + i))) | (((a >> i) & 1) << (pos + i));
      D[l] = r;
    }
    break;
  case Op::Popc:
    FOR_LANES(em) D[l] = uint64_t(__builtin_popcountll(val(w, A, l) & m));
    break;
  case Op::Clz:
    FOR_LANES(em) {
      uint64_t a = val(w, A, l) & m;
      D[l] = a == 0 ? bits : uint64_t(__builtin_clzll(a)) - (64 - bits);
    }
    break;
  case Op::Brev:
    FOR_LANES(em) D[l] = bitRev(val(w, A, l) & m, bits);
    break;
  case Op::Selp:
    FOR_LANES(em) {
      bool c = val(w, C, l) != 0;
      if (C.neg)
        c = !c;
      D[l] =
          (c ? val(w, A, l) : val(w, B, l)) & (tyIsFloat(t) ? maskOf(sz) : m);
    }
    break;
  default:
    return fail(w, __builtin_ctz(em), in,
                "is not supported for ." + std::string(tyName(t)));
  }
  w.init[dreg] |= em;
  return Status::ok();
}

} // namespace

Status executeLaunch(DeviceImpl &dev, Kernel &k, Dim3 grid, Dim3 block,
                     uint32_t dynShared, const std::vector<uint8_t> &params) {
  const Function &f = *k.fn;
  Launch L{dev,       f,
           grid,      block,
           dynShared, f.dynSharedBase + dynShared,
           params,    dev.opts.checks};
  const uint64_t nblocks = uint64_t(grid.x) * grid.y * grid.z;
  unsigned nthr = dev.opts.threads
                      ? dev.opts.threads
                      : std::max(1u, std::thread::hardware_concurrency());
  nthr = unsigned(std::min<uint64_t>(nthr, nblocks));
  std::atomic<uint64_t> next{0};
  std::atomic<bool> stop{false};
  std::mutex mu;
  uint64_t errBlock = ~uint64_t(0);
  Status err = Status::ok();
  auto worker = [&]() {
    BlockRunner runner(L);
    while (!stop.load(std::memory_order_relaxed)) {
      uint64_t b = next.fetch_add(1);
      if (b >= nblocks)
        break;
      uint32_t cx = uint32_t(b % grid.x), cy = uint32_t((b / grid.x) % grid.y),
               cz = uint32_t(b / (uint64_t(grid.x) * grid.y));
      Status s = runner.run(cx, cy, cz);
      if (!s) {
        std::lock_guard<std::mutex> g(mu);
        // Report the lowest failing block, so errors are deterministic.
        if (b < errBlock) {
          errBlock = b;
          err = s;
        }
        stop = true;
      }
    }
  };
  if (nthr <= 1) {
    worker();
  } else {
    std::vector<std::thread> ts;
    for (unsigned i = 0; i < nthr; ++i)
      ts.emplace_back(worker);
    for (auto &t : ts)
      t.join();
  }
  return err;
}

} // namespace qc::emu
