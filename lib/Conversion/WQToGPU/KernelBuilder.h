//===- KernelBuilder.h - Shared kernel-building helpers ---------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Private to lib/Conversion/WQToGPU. The layer constants every kernel bakes
// in (padded sizes, groups), typed access to i64 device addresses, memref
// views of raw pointers (what the nvgpu ops need), the loads of the group
// scalars, and the pieces the families share (kernel creation, the fused
// kernels' signature, the split-K finalize kernel). How codes become fp16
// values is a WeightDecoder's (WeightDecoder.h); what a family is,
// KernelFamily.h.
//
//===----------------------------------------------------------------------===//

#ifndef QC_LIB_CONVERSION_WQTOGPU_KERNELBUILDER_H
#define QC_LIB_CONVERSION_WQTOGPU_KERNELBUILDER_H

#include "qc/Conversion/WQToGPU/WQToGPU.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

namespace mlir::qc::gpugen {

/// Compile-time constants of one layer in the mma16x64 layout.
struct LayerDims {
  int64_t n, k;   ///< logical W shape (N x K)
  int64_t np, kp; ///< N rounded up to 16, K rounded up to 64
  int64_t nt, kc; ///< n16 tiles (Np/16) and k64 chunks (Kp/64)
  int64_t g;      ///< effective group size (K when group_size = -1)
  int64_t groups; ///< ceil(K / g)
  int64_t bits;
  bool sym;
};
LayerDims getLayerDims(const GPULayerConfig &layer);

/// Emits the ops of a kernel body. All index arithmetic is on `index`
/// (64-bit after lowering: device offsets of 70B layers exceed 2^31 bytes).
class KernelBuilder {
public:
  explicit KernelBuilder(ImplicitLocOpBuilder &b) : b(b) {}
  ImplicitLocOpBuilder &b;

  Value idx(int64_t v);
  Value i32(int64_t v);
  Value add(Value a, Value c);
  Value mul(Value a, Value c);
  Value div(Value a, int64_t c);
  Value rem(Value a, int64_t c);
  Value minIdx(Value a, Value c);
  Value ult(Value a, Value c);
  Value andI1(Value a, Value c);

  /// The global pointer (address space 1) behind an i64 kernel argument.
  Value globalPtr(Value addr);
  /// Loads `type` from `ptr + index * sizeof(elem)`; `invariant` marks
  /// read-only kernel inputs so NVPTX may use the non-coherent path.
  Value load(Type type, Value ptr, Type elem, Value index, unsigned align,
             bool invariant);
  void store(Value value, Value ptr, Type elem, Value index, unsigned align);
  /// One 128-bit read-only load (ld.global.nc.v4.u32) of the 16-byte slot
  /// `slot` of `ptr`, as vector<4xi32>. Emitted as inline PTX so LLVM
  /// cannot move it next to its use: instcombine otherwise folds the
  /// loads carried through a loop (the register prefetch) into one load of
  /// a rotating address at the top of the loop, losing the prefetch.
  Value loadWeights128(Value ptr, Value slot);
  /// A 1-D dynamic memref<?xelem, global> view of an i64 device address
  /// (the source operand of nvgpu.device_async_copy).
  Value globalMemref(Value addr, Type elem);
  /// A static, row-major memref view of shared memory at `ptr3` (an
  /// address-space-3 pointer).
  Value sharedMemref(Value ptr3, Type elem, ArrayRef<int64_t> shape);
  /// An address-space-3 pointer to `bytes` of static shared memory,
  /// 16-byte aligned, declared as a global named `sym` in `module`.
  Value sharedBuffer(gpu::GPUModuleOp module, StringRef sym, int64_t bytes);
  /// 2 x f16 splat of a scalar f16.
  Value splat2(Value f16);
  /// Packs vectors of 2 elements into a vector<Nx2xT>.
  Value pack(ArrayRef<Value> pairs, Type elem);
};

/// The per-group values of rows r and r + 8 of a 16-row W tile for one
/// group, as the layer's WeightDecoder made them (opaque to the families:
/// only the decoder that made them reads them).
struct GroupParams {
  SmallVector<Value, 4> values;
};

/// How many groups one k64 chunk spans and which k16 step uses which:
/// one set when the chunk lies in one group (G % 64 == 0 or per-channel),
/// 64 / G sets for G = 16 / 32, otherwise one per k16 step.
struct GroupSets {
  explicit GroupSets(const LayerDims &d);
  int64_t count;  ///< sets per chunk
  int64_t perSet; ///< fp16 scalars per set: s(r), s(r+8) [, z(r), z(r+8)]
  /// The set of k16 step j (0..3) and the first k16 step of a set.
  int64_t setOf(int64_t j) const;
  int64_t firstStepOf(int64_t set) const;

private:
  bool perChunk;
  int64_t g;
};

/// The group of the 16 columns starting at `k0`: min(k0 / G, groups - 1)
/// (padded columns past the last group reuse it; their codes are that
/// group's zero point and x is zero there).
Value groupOf(KernelBuilder &kb, const LayerDims &d, Value k0);

/// Loads, for chunk `kc` (clamped to the last chunk) and W row `row` (and
/// row + 8), the raw fp16 scales (and zeros) of every set, in set order.
/// They can be loaded ahead (prefetch) and turned into GroupParams by the
/// decoder (WeightDecoder::groupParams) at their use.
SmallVector<Value> loadChunkGroupScalars(KernelBuilder &kb, const LayerDims &d,
                                         const GroupSets &sets, Value kc,
                                         Value row, Value scales, Value zeros);

/// Creates a kernel `name` with the given argument types in `module`,
/// marks its block size, and leaves `b` at the start of its body (before
/// the gpu.return).
gpu::GPUFuncOp createKernel(ImplicitLocOpBuilder &b, gpu::GPUModuleOp module,
                            StringRef name, ArrayRef<Type> args,
                            int64_t blockX);

/// The parameter list of the fused kernels (the artifact's kernel ABI, one
/// definition for both families): x, qweight, scales, zeros (asymmetric
/// only) as i64 device addresses, then y or, with split-K, the fp32
/// workspace, then M as i32. Fills the argument types and their names.
void fusedKernelSignature(ImplicitLocOpBuilder &b, bool sym, bool toWorkspace,
                          SmallVectorImpl<Type> &args,
                          SmallVectorImpl<std::string> &params);

/// workspace fp32 [M, N] -> y fp16 [M, N] (second launch of split-K).
void buildFinalizeKernel(ImplicitLocOpBuilder &b, gpu::GPUModuleOp module,
                         StringRef name, const LayerDims &d,
                         GPUKernelLaunch &launch);

} // namespace mlir::qc::gpugen

#endif // QC_LIB_CONVERSION_WQTOGPU_KERNELBUILDER_H
