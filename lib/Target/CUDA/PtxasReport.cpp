//===- PtxasReport.cpp - ptxas -v resource reports of kernels -------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// ptxas -v prints, per entry function:
//   ptxas info    : Compiling entry function 'k' for 'sm_90a'
//   ptxas info    : Function properties for k
//       0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
//   ptxas info    : Used 40 registers, used 1 barriers, 2048 bytes smem, ...
// The parser keys every line on the last "entry function" seen; lines it
// does not know are ignored (the format has grown fields over releases).
//
//===----------------------------------------------------------------------===//

#include "qc/Target/CUDA/CUDATarget.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/raw_ostream.h"

namespace mlir::qc {
#define GEN_PASS_DEF_PTXASREPORTPASS
#include "qc/Target/CUDA/Passes.h.inc"
} // namespace mlir::qc

using namespace mlir;
using namespace mlir::qc;

/// The integer just before `what` in `line` ("40 registers" -> 40), or -1.
static int64_t numberBefore(StringRef line, StringRef what) {
  size_t at = line.find(what);
  if (at == StringRef::npos)
    return -1;
  StringRef head = line.substr(0, at).rtrim();
  size_t start = head.find_last_not_of("0123456789");
  int64_t v = -1;
  if (head.substr(start == StringRef::npos ? 0 : start + 1).getAsInteger(10, v))
    return -1;
  return v;
}

bool mlir::qc::runPtxasReport(StringRef ptxas, StringRef ptx, StringRef chip,
                              std::string &log,
                              SmallVectorImpl<PtxasKernelReport> &out,
                              std::string &error) {
  if (ptxas.empty() || !llvm::sys::fs::can_execute(ptxas)) {
    error = "ptxas not found (configure with a CUDA toolkit or pass "
            "ptxas=<path>)";
    return false;
  }
  SmallString<128> in, logPath;
  int fd;
  if (llvm::sys::fs::createTemporaryFile("qc-kernel", "ptx", fd, in) ||
      llvm::sys::fs::createTemporaryFile("qc-ptxas", "log", logPath)) {
    error = "cannot create a temporary file";
    return false;
  }
  {
    llvm::raw_fd_ostream os(fd, /*shouldClose=*/true);
    os << ptx;
  }
  std::string arch = ("--gpu-name=" + chip).str();
  SmallVector<StringRef> argv = {ptxas, "-v", arch, in, "-o", "/dev/null"};
  std::optional<StringRef> redirects[] = {std::nullopt, logPath.str(),
                                          logPath.str()};
  std::string execErr;
  int rc = llvm::sys::ExecuteAndWait(ptxas, argv, std::nullopt, redirects, 0, 0,
                                     &execErr);
  auto buf = llvm::MemoryBuffer::getFile(logPath);
  log = buf ? (*buf)->getBuffer().str() : std::string();
  llvm::sys::fs::remove(in);
  llvm::sys::fs::remove(logPath);
  if (rc != 0) {
    error = "ptxas failed (" +
            (execErr.empty() ? "exit " + std::to_string(rc) : execErr) +
            "): " + log;
    return false;
  }
  PtxasKernelReport *cur = nullptr;
  SmallVector<StringRef> lines;
  StringRef(log).split(lines, '\n');
  for (StringRef line : lines) {
    if (size_t at = line.find("entry function '"); at != StringRef::npos) {
      StringRef name = line.substr(at + 16);
      name = name.take_until([](char c) { return c == '\''; });
      out.push_back({});
      cur = &out.back();
      cur->kernel = name.str();
      continue;
    }
    if (!cur)
      continue;
    if (line.contains("stack frame")) {
      cur->stackBytes = numberBefore(line, "bytes stack frame");
      cur->spillStores = numberBefore(line, "bytes spill stores");
      cur->spillLoads = numberBefore(line, "bytes spill loads");
    }
    if (line.contains("Used ") && line.contains("registers")) {
      cur->registers = numberBefore(line, "registers");
      int64_t bars = numberBefore(line, "barriers");
      cur->barriers = bars < 0 ? 0 : bars;
      int64_t smem = numberBefore(line, "bytes smem");
      cur->sharedBytes = smem < 0 ? 0 : smem;
    }
  }
  return true;
}

namespace {

struct PtxasReportPass : qc::impl::PtxasReportPassBase<PtxasReportPass> {
  using Base::Base;

  void runOnOperation() override {
    std::string tool = ptxas.empty() ? getConfiguredPtxas().str() : ptxas;
    WalkResult r = getOperation().walk([&](gpu::BinaryOp bin) {
      Builder b(bin.getContext());
      SmallVector<NamedAttribute> kernels;
      for (Attribute a : bin.getObjects()) {
        auto obj = cast<gpu::ObjectAttr>(a);
        auto target = dyn_cast<NVVM::NVVMTargetAttr>(obj.getTarget());
        if (!target)
          continue;
        if (obj.getFormat() != gpu::CompilationTarget::Assembly) {
          bin.emitWarning() << "qc-ptxas-report needs PTX objects "
                               "(qc-gpu-to-binary format=isa); skipped";
          continue;
        }
        if (printPtx)
          llvm::outs() << "// PTX of " << bin.getSymName() << " for "
                       << target.getChip() << "\n"
                       << obj.getObject().getValue() << "\n";
        if (!runPtxas)
          continue;
        std::string log, err;
        SmallVector<PtxasKernelReport> reports;
        if (!runPtxasReport(tool, obj.getObject().getValue(), target.getChip(),
                            log, reports, err)) {
          bin.emitError() << "qc-ptxas-report: " << err;
          return WalkResult::interrupt();
        }
        if (print)
          llvm::outs() << "// ptxas -v --gpu-name=" << target.getChip() << " ("
                       << bin.getSymName() << ")\n"
                       << log;
        for (const PtxasKernelReport &k : reports)
          kernels.push_back(b.getNamedAttr(
              k.kernel,
              b.getDictionaryAttr({
                  b.getNamedAttr("registers", b.getI64IntegerAttr(k.registers)),
                  b.getNamedAttr("spill_stores",
                                 b.getI64IntegerAttr(k.spillStores)),
                  b.getNamedAttr("spill_loads",
                                 b.getI64IntegerAttr(k.spillLoads)),
                  b.getNamedAttr("stack_bytes",
                                 b.getI64IntegerAttr(k.stackBytes)),
                  b.getNamedAttr("shared_bytes",
                                 b.getI64IntegerAttr(k.sharedBytes)),
                  b.getNamedAttr("barriers", b.getI64IntegerAttr(k.barriers)),
              })));
      }
      if (!kernels.empty())
        bin->setAttr("qc.ptxas", b.getDictionaryAttr(kernels));
      return WalkResult::advance();
    });
    if (r.wasInterrupted())
      signalPassFailure();
  }
};

} // namespace
