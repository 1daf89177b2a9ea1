//===- WQAttrs.td - Attributes of the `wq` dialect ---------*- tablegen -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// The packing-layout enum. A layout fixes how the integer codes and the
// integer zero points are laid out in their i32 words; scales are always
// `[groups, N]` (`[groups, Np]` in the padded kernel layout). Kernel layouts
// are cases here, with their shape rules in WQOps.cpp.
//
//===----------------------------------------------------------------------===//

#ifndef QC_WQ_ATTRS_TD
#define QC_WQ_ATTRS_TD

include "WQ/IR/WQBase.td"
include "mlir/IR/EnumAttr.td"
include "mlir/IR/AttrTypeBase.td"

// GPTQ v1 interchange layout (AutoGPTQ / transformers / vLLM "gptq"):
// qweight [ceil(K*bits/32), N] packed along K, qzeros
// [groups, ceil(N*bits/32)] packed along N and stored as z - 1.
def WQ_LayoutGPTQ : I32EnumAttrCase<"gptq", 0>;
// Plain row-major layout for the CPU path: qweight [N, ceil(K*bits/32)],
// each output row an LSB-first bit stream of its K codes.
def WQ_LayoutRows : I32EnumAttrCase<"rows", 1>;

// Kernel layout of the GPU fused dequantize-GEMM kernels (4-bit): qweight
// 1-D [Np*Kp/8] in mma.sync A-fragment order (Np = N rounded up to 16, Kp =
// K up to 64), fp16 scales and fp16 zeros [groups, Np]. See README.md.
def WQ_LayoutMMA16x64 : I32EnumAttrCase<"mma16x64", 2>;

def WQ_Layout : I32EnumAttr<"Layout",
    "how packed weight codes are laid out in i32 words",
    [WQ_LayoutGPTQ, WQ_LayoutRows, WQ_LayoutMMA16x64]> {
  let genSpecializedAttr = 0;
  let cppNamespace = "::mlir::qc::wq";
}

def WQ_LayoutAttr : EnumAttr<WQ_Dialect, WQ_Layout, "layout"> {
  let assemblyFormat = "`<` $value `>`";
}

#endif // QC_WQ_ATTRS_TD
