//===- CUDATarget.h - Kernel modules to PTX and cubin -----------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// The `qc-gpu-to-binary` pipeline (gpu.module of gpu/nvgpu/nvvm kernels ->
// gpu.binary holding PTX or a cubin for one chip) and `qc-ptxas-report`
// (ptxas -v on the PTX of every gpu.binary: registers, spills, stack and
// shared memory per kernel). The CUDA toolkit is found at configure time
// (cmake/QCCUDA.cmake); both take a path option to override it.
//
//===----------------------------------------------------------------------===//

#ifndef QC_TARGET_CUDA_CUDATARGET_H
#define QC_TARGET_CUDA_CUDATARGET_H

#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/LLVM.h"

#include <string>

namespace mlir::qc {

/// Options of qc-gpu-to-binary.
struct GPUToBinaryOptions {
  std::string chip = "sm_90a";
  /// PTX ISA features; empty: the lowest that `chip` needs (+ptx70 for
  /// sm_80/86, +ptx78 for sm_89, +ptx80 for sm_90/sm_90a, ...). LLVM's
  /// default (+ptx60) aborts on these chips, so it is never left empty.
  std::string features;
  /// isa (PTX text), bin (cubin, needs ptxas) or fatbin.
  std::string format = "bin";
  /// CUDA toolkit root; empty: the one found at configure time.
  std::string toolkit;
  int optLevel = 3;
};

/// The lowest PTX ISA version `chip` accepts, as a feature string.
std::string getDefaultPTXFeatures(StringRef chip);
/// The CUDA toolkit root and ptxas found at configure time ("" if none).
StringRef getConfiguredCUDAToolkit();
StringRef getConfiguredPtxas();

/// Appends the lowering of every gpu.module in a builtin.module to `pm`:
/// nvvm-attach-target, nvgpu/vector/scf/gpu to NVVM, reconcile casts,
/// gpu-module-to-binary.
void buildGPUToBinaryPipeline(OpPassManager &pm,
                              const GPUToBinaryOptions &options);

/// ptxas -v resource usage of one kernel.
struct PtxasKernelReport {
  std::string kernel;
  int64_t registers = -1, barriers = 0, sharedBytes = 0, stackBytes = 0;
  int64_t spillStores = 0, spillLoads = 0;
};

/// Runs `ptxas -v --gpu-name=chip` on `ptx` and parses its per-kernel
/// report. `log` receives ptxas's own output (for printing). Returns false
/// with `error` set when ptxas cannot run or rejects the PTX.
bool runPtxasReport(StringRef ptxas, StringRef ptx, StringRef chip,
                    std::string &log, SmallVectorImpl<PtxasKernelReport> &out,
                    std::string &error);

#define GEN_PASS_DECL
#include "qc/Target/CUDA/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "qc/Target/CUDA/Passes.h.inc"

/// Registers the qc-gpu-to-binary pipeline (the passes of Passes.td are
/// registered by the generated registerQCCUDATargetPasses()).
void registerQCCUDATargetPipelines();

} // namespace mlir::qc

#endif // QC_TARGET_CUDA_CUDATARGET_H
