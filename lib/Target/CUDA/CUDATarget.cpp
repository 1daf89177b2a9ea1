//===- CUDATarget.cpp - The qc-gpu-to-binary pipeline ---------------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Lowers the kernel modules built by convert-wq-to-gpu: the nvgpu ops first
// (they need memref descriptors, which the kernels build from raw pointers
// with unrealized casts), then vector/scf/gpu to NVVM, then
// reconcile-unrealized-casts folds the pointer <-> memref round trips, and
// gpu-module-to-binary runs LLVM's NVPTX backend (PTX) and ptxas (cubin).
//
//===----------------------------------------------------------------------===//

#include "qc/Target/CUDA/CUDATarget.h"

#include "qc/EnumOptionParser.h"

#include "mlir/Conversion/GPUToNVVM/GPUToNVVMPass.h"
#include "mlir/Conversion/NVGPUToNVVM/NVGPUToNVVM.h"
#include "mlir/Conversion/ReconcileUnrealizedCasts/ReconcileUnrealizedCasts.h"
#include "mlir/Conversion/SCFToControlFlow/SCFToControlFlow.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/GPU/Transforms/Passes.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;
using namespace mlir::qc;

#ifndef QC_CUDA_TOOLKIT_ROOT
#define QC_CUDA_TOOLKIT_ROOT ""
#endif
#ifndef QC_CUDA_PTXAS
#define QC_CUDA_PTXAS ""
#endif

StringRef mlir::qc::getConfiguredCUDAToolkit() { return QC_CUDA_TOOLKIT_ROOT; }
StringRef mlir::qc::getConfiguredPtxas() { return QC_CUDA_PTXAS; }

std::string mlir::qc::getDefaultPTXFeatures(StringRef chip) {
  // The PTX ISA version that introduced each chip (PTX ISA release notes).
  StringRef arch = chip;
  arch.consume_front("sm_");
  unsigned sm = 0;
  arch.take_while([](char c) { return isdigit(c); }).getAsInteger(10, sm);
  if (sm >= 120)
    return "+ptx87";
  if (sm >= 100)
    return "+ptx86";
  if (sm >= 90)
    return "+ptx80";
  if (sm >= 89)
    return "+ptx78";
  if (sm >= 86)
    return "+ptx71";
  return "+ptx70";
}

void mlir::qc::buildGPUToBinaryPipeline(OpPassManager &pm,
                                        const GPUToBinaryOptions &o) {
  GpuNVVMAttachTargetOptions attach;
  attach.chip = o.chip;
  attach.features =
      o.features.empty() ? getDefaultPTXFeatures(o.chip) : o.features;
  attach.optLevel = o.optLevel;
  pm.addPass(createGpuNVVMAttachTarget(attach));

  OpPassManager &gm = pm.nest<gpu::GPUModuleOp>();
  gm.addPass(createConvertNVGPUToNVVMPass());
  gm.addPass(createSCFToControlFlowPass());
  gm.addPass(createConvertGpuOpsToNVVMOps());
  gm.addPass(createCanonicalizerPass());
  gm.addPass(createCSEPass());
  pm.addPass(createReconcileUnrealizedCastsPass());

  GpuModuleToBinaryPassOptions bin;
  bin.toolkitPath =
      o.toolkit.empty() ? getConfiguredCUDAToolkit().str() : o.toolkit;
  bin.compilationTarget = o.format;
  pm.addPass(createGpuModuleToBinaryPass(bin));
}

namespace mlir::qc {
namespace {
/// The values of the pipeline's `format` option. An enum option, so that
/// the option parser rejects a misspelling before any lowering and --help
/// lists the choices; the spellings are gpu-module-to-binary's, aliases
/// included.
enum class BinaryFormat { ISA, Bin, Fatbin, LLVM };

/// gpu-module-to-binary's spelling of `f`.
const char *binaryFormatName(BinaryFormat f) {
  switch (f) {
  case BinaryFormat::ISA:
    return "isa";
  case BinaryFormat::Bin:
    return "bin";
  case BinaryFormat::Fatbin:
    return "fatbin";
  case BinaryFormat::LLVM:
    return "llvm";
  }
  llvm_unreachable("unknown binary format");
}
} // namespace
} // namespace mlir::qc

QC_ENUM_OPTION_PARSER(::mlir::qc::BinaryFormat)

namespace {

struct GPUToBinaryPipelineOptions
    : PassPipelineOptions<GPUToBinaryPipelineOptions> {
  Option<std::string> chip{*this, "chip", llvm::cl::desc("Target chip"),
                           llvm::cl::init("sm_90a")};
  Option<std::string> features{
      *this, "features",
      llvm::cl::desc("PTX features (default: the lowest the chip needs)"),
      llvm::cl::init("")};
  Option<BinaryFormat> format{
      *this, "format", llvm::cl::desc("Object format (default: bin)"),
      llvm::cl::init(BinaryFormat::Bin),
      llvm::cl::values(
          clEnumValN(BinaryFormat::ISA, "isa", "PTX text"),
          clEnumValN(BinaryFormat::ISA, "assembly", "Same as isa"),
          clEnumValN(BinaryFormat::Bin, "bin", "cubin (runs ptxas)"),
          clEnumValN(BinaryFormat::Bin, "binary", "Same as bin"),
          clEnumValN(BinaryFormat::Fatbin, "fatbin",
                     "Fat binary (cubin and PTX)"),
          clEnumValN(BinaryFormat::Fatbin, "fatbinary", "Same as fatbin"),
          clEnumValN(BinaryFormat::LLVM, "llvm", "LLVM bitcode (offloading)"),
          clEnumValN(BinaryFormat::LLVM, "offloading", "Same as llvm"))};
  Option<std::string> toolkit{
      *this, "toolkit",
      llvm::cl::desc("CUDA toolkit root (default: found at configure time)"),
      llvm::cl::init("")};
  Option<int> optLevel{*this, "opt-level",
                       llvm::cl::desc("LLVM optimization level"),
                       llvm::cl::init(3)};
};
} // namespace

void mlir::qc::registerQCCUDATargetPipelines() {
  PassPipelineRegistration<GPUToBinaryPipelineOptions>(
      "qc-gpu-to-binary",
      "Lower gpu.modules of nvgpu/gpu kernels to gpu.binary (PTX or cubin) "
      "for one chip",
      [](OpPassManager &pm, const GPUToBinaryPipelineOptions &po) {
        GPUToBinaryOptions o;
        o.chip = po.chip;
        o.features = po.features;
        o.format = binaryFormatName(po.format);
        o.toolkit = po.toolkit;
        o.optLevel = po.optLevel;
        buildGPUToBinaryPipeline(pm, o);
      });
}
