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
#include "llvm/ADT/StringMap.h"
#include "llvm/TargetParser/Host.h"

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

int64_t mlir::qc::hostVectorWidth() {
  llvm::StringMap<bool> features = llvm::sys::getHostCPUFeatures();
  if (features.lookup("avx512f"))
    return 16;
  if (features.lookup("avx"))
    return 8;
  return 4;
}

std::string mlir::qc::cpuCodegenPipeline(int64_t vectorWidth) {
  if (vectorWidth <= 0)
    vectorWidth = hostVectorWidth();
  // 4 x 4 blocks of 16-lane accumulators use 24 of AVX-512's 32 registers;
  // with 8 lanes AVX2 has 16, so the blocks shrink to 4 tokens x 2 rows.
  // The dequantize-linear kernel also holds scales, zero points and words
  // per column vector: 2 x 4 accumulators fit AVX-512, 2 x 2 AVX2.
  std::string blocks = vectorWidth >= 16
                           ? "row-block=4 token-block=4 dequant-column-block=2 "
                             "dequant-token-block=4"
                           : "row-block=2 token-block=4 dequant-column-block=2 "
                             "dequant-token-block=2";
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
         // parallel: the products are split by rows among the runtime's
         // threads (qc_rt_parallel_linear, qc/runtime/CompiledCodeRuntime.h).
         "qc-vectorize-linear{vector-width=" +
         std::to_string(vectorWidth) + " " + blocks +
         " parallel=1},"
         // One copy of each distinct loop nest instead of one per layer.
         "qc-outline-loop-nests,"
         "func.func(convert-linalg-to-loops),"
         "qc-math-approximation,"
         "lower-affine,"
         "convert-scf-to-cf,"
         // The kernels' horizontal sums may be reassociated into a tree, as
         // their partial sums already are.
         "convert-vector-to-llvm{reassociate-fp-reductions=1},"
         "expand-strided-metadata,"
         // expand-strided-metadata emits affine.apply for dynamic offsets.
         "lower-affine,"
         // Buffers come from the runtime's allocator, which keeps large
         // blocks for the next call (qc/runtime/CompiledCodeRuntime.h).
         "finalize-memref-to-llvm{use-generic-functions=1},"
         "convert-math-to-llvm,"
         "convert-arith-to-llvm,"
         "convert-index-to-llvm,"
         "convert-func-to-llvm,"
         "convert-cf-to-llvm,"
         "reconcile-unrealized-casts";
}

LogicalResult mlir::qc::buildCpuLoweringPipeline(OpPassManager &pm,
                                                 const std::string &entry,
                                                 int64_t vectorWidth) {
  return parsePassPipeline(cpuPreparePipeline(entry) + "," +
                               cpuCodegenPipeline(vectorWidth),
                           pm, llvm::errs());
}

namespace {
struct CpuPipelineOptions : public PassPipelineOptions<CpuPipelineOptions> {
  Option<std::string> entry{*this, "entry",
                            llvm::cl::desc("Name of the model function"),
                            llvm::cl::init("forward")};
  Option<int64_t> vectorWidth{
      *this, "vector-width",
      llvm::cl::desc("f32 lanes of the linear kernels (0 = the host's: 16 "
                     "with AVX-512, 8 with AVX2)"),
      llvm::cl::init(0)};
};
} // namespace

void mlir::qc::registerQCPipelines() {
  PassPipelineRegistration<CpuPipelineOptions>(
      "qc-lower-to-cpu",
      "Lower model-level `llm` IR to the LLVM dialect for the CPU JIT "
      "(linalg -> loops -> LLVM)",
      [](OpPassManager &pm, const CpuPipelineOptions &opts) {
        if (failed(buildCpuLoweringPipeline(pm, opts.entry, opts.vectorWidth)))
          llvm::report_fatal_error("qc-lower-to-cpu: unregistered pass");
      });
}
