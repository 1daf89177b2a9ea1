//===- Pipelines.cpp - Named qc pass pipelines ----------------------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// The CPU pipeline is kept as one textual pipeline so that what the JIT runs
// is exactly what `quant-opt --qc-lower-to-cpu` (or the printed string fed to
// `--pass-pipeline`) shows a user, pass by pass.
//
//===----------------------------------------------------------------------===//

#include "qc/Pipelines/Pipelines.h"

#include "mlir/Pass/PassRegistry.h"

using namespace mlir;

std::string mlir::qc::cpuPreparePipeline(const std::string &entry) {
  return "convert-wq-to-linalg,convert-llm-to-linalg,"
         "llm-params-to-arguments{entry=" +
         entry + "}";
}

std::string
mlir::qc::cpuPreparePipeline(const std::vector<std::string> &entries) {
  std::string pipeline = "convert-wq-to-linalg,convert-llm-to-linalg";
  for (const std::string &entry : entries)
    pipeline += ",llm-params-to-arguments{entry=" + entry + "}";
  return pipeline;
}

std::string mlir::qc::cpuCodegenPipeline() {
  return "canonicalize,cse,"
         // No linalg-fuse-elementwise-ops: it folds the weight and key
         // transposes back into their consumers, turning the unit-stride
         // inner loops the lowering chose into strided ones (measured: 9 %
         // slower on stories260K).
         // Lets a chunk of attention rows be computed directly in its slot of
         // the output instead of a temporary that is then copied.
         "eliminate-empty-tensors,"
         "one-shot-bufferize,"
         "buffer-deallocation-pipeline,"
         "convert-bufferization-to-memref,"
         "func.func(convert-linalg-to-loops),"
         "qc-math-approximation,"
         "lower-affine,"
         "convert-scf-to-cf,"
         "expand-strided-metadata,"
         // expand-strided-metadata emits affine.apply for dynamic offsets.
         "lower-affine,"
         "finalize-memref-to-llvm,"
         "convert-math-to-llvm,"
         "convert-arith-to-llvm,"
         "convert-index-to-llvm,"
         "convert-func-to-llvm,"
         "convert-cf-to-llvm,"
         "reconcile-unrealized-casts";
}

LogicalResult mlir::qc::buildCpuLoweringPipeline(OpPassManager &pm,
                                                 const std::string &entry) {
  return parsePassPipeline(
      cpuPreparePipeline(entry) + "," + cpuCodegenPipeline(), pm, llvm::errs());
}

namespace {
struct CpuPipelineOptions : public PassPipelineOptions<CpuPipelineOptions> {
  Option<std::string> entry{*this, "entry",
                            llvm::cl::desc("Name of the model function"),
                            llvm::cl::init("forward")};
};
} // namespace

void mlir::qc::registerQCPipelines() {
  PassPipelineRegistration<CpuPipelineOptions>(
      "qc-lower-to-cpu",
      "Lower model-level `llm` IR to the LLVM dialect for the CPU JIT "
      "(linalg -> loops -> LLVM)",
      [](OpPassManager &pm, const CpuPipelineOptions &opts) {
        if (failed(buildCpuLoweringPipeline(pm, opts.entry)))
          llvm::report_fatal_error("qc-lower-to-cpu: unregistered pass");
      });
}
