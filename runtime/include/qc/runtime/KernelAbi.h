//===- KernelAbi.h - The kernel ABIs the runtime can launch ----*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// The runtime-side table of kernel ABIs. A kernel family (splitk, mma, a
// future wgmma, ...) is the compiler's business; what the runtime, the
// artifact reader and quant-bench must know about a variant is only its
// ABI: which parameters its launches take and whether the runtime picks it
// by M. The compiler's families each declare one of these ABIs and the
// artifact manifest records it per variant, so a new family that follows
// an existing ABI needs no runtime change; a new ABI (e.g. Hopper kernels
// taking CUtensorMap parameters) is added here, with the launcher code
// that prepares its parameters.
//
// The families that predate the manifest's "abi" key (splitk, mma,
// dequant) have built-in ABIs, so their variants omit it and artifacts
// written before it existed read unchanged.
//
//===----------------------------------------------------------------------===//

#ifndef QC_RUNTIME_KERNELABI_H
#define QC_RUNTIME_KERNELABI_H

#include <string>

namespace qc {

/// What a variant's launches compute and which parameters they take.
enum class KernelAbi {
  /// y[M, N] = x[M, K] W^T from the layer's packed tensors. Parameters:
  /// x, qweight, scales, zeros (asymmetric), y or workspace, M. The runtime
  /// chooses such a variant by M (selectVariant); M ranges must not overlap.
  Gemm,
  /// Writes W as fp16 [N, K] to w (the dequantize-then-cuBLAS baseline of
  /// quant-bench). Parameters: qweight, scales, zeros (asymmetric), w; never
  /// chosen by M, its M range is advisory.
  DequantW,
};

/// The manifest spelling: "gemm" or "dequant_w".
const char *kernelAbiName(KernelAbi abi);

/// Parses a manifest spelling; false for an unknown one.
bool parseKernelAbi(const std::string &name, KernelAbi &out);

/// The ABI of a family that predates the manifest's "abi" key ("splitk",
/// "mma": Gemm; "dequant": DequantW); false for any other name.
bool builtinFamilyAbi(const std::string &family, KernelAbi &out);

/// The known ABI names for messages: "gemm, dequant_w".
std::string kernelAbiNames();

} // namespace qc

#endif // QC_RUNTIME_KERNELABI_H
