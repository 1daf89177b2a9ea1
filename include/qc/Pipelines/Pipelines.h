//===- Pipelines.h - Named qc pass pipelines --------------------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//

#ifndef QC_PIPELINES_PIPELINES_H
#define QC_PIPELINES_PIPELINES_H

#include "mlir/Pass/PassManager.h"

#include <string>
#include <vector>

namespace mlir::qc {

/// The first half of `qc-lower-to-cpu`: `llm` to linalg, parameters to
/// arguments (after it the entry function carries `llm.param_names`).
std::string cpuPreparePipeline(const std::string &entry = "forward");

/// The same for several entry functions of one module (the full-window
/// `forward` and the KV-cached `decode` from `llm-derive-decode`): each
/// gets its own parameter arguments and `llm.param_names`.
std::string cpuPreparePipeline(const std::vector<std::string> &entries);

/// f32 lanes of the host's widest vector registers that LLVM will use: 16
/// with AVX-512, 8 with AVX2/AVX (and 4 otherwise).
int64_t hostVectorWidth();

/// The second half: bufferization, the vectorized linear kernels
/// (`qc-vectorize-linear` with `vectorWidth` lanes; 0 = hostVectorWidth()),
/// loops, LLVM dialect.
std::string cpuCodegenPipeline(int64_t vectorWidth = 0);

/// Adds `qc-lower-to-cpu` to `pm`. Fails if a pass is not registered.
LogicalResult buildCpuLoweringPipeline(OpPassManager &pm,
                                       const std::string &entry = "forward",
                                       int64_t vectorWidth = 0);

/// Registers `qc-lower-to-cpu` with the global pipeline registry.
void registerQCPipelines();

} // namespace mlir::qc

#endif // QC_PIPELINES_PIPELINES_H
