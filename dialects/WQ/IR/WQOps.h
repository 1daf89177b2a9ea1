//===- WQOps.h - Operations of the `wq` dialect -----------------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// The `wq` ops, the layout enum, and the shape rules of the packing layouts
// as plain functions, so that passes building `wq` ops compute the same
// shapes the verifier checks.
//
//===----------------------------------------------------------------------===//

#ifndef QC_WQ_IR_WQOPS_H
#define QC_WQ_IR_WQOPS_H

#include "WQ/IR/WQDialect.h"
#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "WQ/IR/WQEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "WQ/IR/WQAttrs.h.inc"

namespace mlir::qc::wq {

/// Number of scale rows: ceil(inFeatures / groupSize), or 1 for
/// groupSize == -1 (per-channel). The last group may be shorter.
int64_t getNumGroups(int64_t inFeatures, int64_t groupSize);

/// Number of i32 words holding `count` codes of `bits` bits each as an
/// LSB-first bit stream: ceil(count * bits / 32).
int64_t getNumPackedWords(int64_t count, int64_t bits);

/// Shape of `qweight` for `layout`: [words(K), N] for gptq, [N, words(K)]
/// for rows, [Np * Kp / 8] for mma16x64 (Np = N rounded up to 16, Kp = K
/// rounded up to 64). `inFeatures` is K, `outFeatures` N.
SmallVector<int64_t, 2> getQWeightShape(Layout layout, int64_t bits,
                                        int64_t inFeatures,
                                        int64_t outFeatures);

/// Shape of `zeros` with element type `zeroType`: integer zeros in the gptq
/// layout are packed along N, [groups, words(N)]; mma16x64 pads N,
/// [groups, Np]; every other combination is [groups, N].
SmallVector<int64_t, 2> getZerosShape(Layout layout, Type zeroType,
                                      int64_t bits, int64_t numGroups,
                                      int64_t outFeatures);

/// Shape of `scales`: [groups, Np] for mma16x64, else [groups, N].
SmallVector<int64_t, 2> getScalesShape(Layout layout, int64_t numGroups,
                                       int64_t outFeatures);

} // namespace mlir::qc::wq

#define GET_OP_CLASSES
#include "WQ/IR/WQOps.h.inc"

#endif // QC_WQ_IR_WQOPS_H
