//===- WQOps.td - Operations of the `wq` dialect -----------*- tablegen -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Shapes: T is the number of tokens (usually dynamic), K = in_features,
// N = out_features, b = bits, G = group_size (G = -1 means G := K) and
// groups = ceil(K / G). The packing layouts and the dequantization formula
// follow the format sections of ../shared/docs/ALGORITHMS.md (section 8.1
// for GPTQ v1, section 7 for NF4); README.md next to this file has worked
// examples. The verifier (WQOps.cpp) checks every shape against the
// attributes; ODS constraints below hold the attribute-local rules.
//
//===----------------------------------------------------------------------===//

#ifndef QC_WQ_OPS_TD
#define QC_WQ_OPS_TD

include "WQ/IR/WQBase.td"
include "WQ/IR/WQAttrs.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/IR/BuiltinAttributes.td"
include "mlir/IR/CommonAttrConstraints.td"

//===----------------------------------------------------------------------===//
// Constraints
//===----------------------------------------------------------------------===//

// -1 (one group per output row) or a positive number of input channels.
def WQ_GroupSizeValue : AttrConstraint<
    CPred<"::llvm::cast<::mlir::IntegerAttr>($_self).getInt() == -1 || "
          "::llvm::cast<::mlir::IntegerAttr>($_self).getInt() > 0">,
    "whose value is -1 (per-channel) or positive">;

// A signless i64 attribute read as a signed value (`I64Attr` returns
// uint64_t, which would turn group_size = -1 into 2^64 - 1 in C++).
def WQ_I64Attr : TypedSignlessIntegerAttrBase<
    I64, "int64_t", "64-bit signless integer attribute"> {
  let convertFromStorage = "$_self.getValue().getSExtValue()";
}

def WQ_ScaleType : AnyTypeOf<[F16, BF16, F32]>;
// Float zero points (HQQ-style, fractional) or integer ones; which integer
// form is legal depends on the layout (see the ops' descriptions).
def WQ_ZeroType : AnyTypeOf<[F16, BF16, F32, I8, I16, I32]>;

def WQ_FloatTensor : RankedTensorOf<[AnyFloat]>;
def WQ_PackedTensor : RankedTensorOf<[AnySignlessInteger]>;
def WQ_ZerosTensor : RankedTensorOf<[AnyFloat, AnySignlessInteger]>;

// Operands shared by the ops that read packed weights, in this order.
defvar WQ_PackedWeightOperands = (ins
    WQ_PackedTensor:$qweight,
    WQ_FloatTensor:$scales,
    Optional<WQ_ZerosTensor>:$zeros,
    Optional<RankedTensorOf<[I32]>>:$g_idx);

// The quantization scheme and the packing layout.
defvar WQ_SchemeAttrs = (ins
    ConfinedAttr<WQ_I64Attr, [IntIsOneOf<[2, 3, 4, 8]>]>:$bits,
    ConfinedAttr<WQ_I64Attr, [WQ_GroupSizeValue]>:$group_size,
    BoolAttr:$sym,
    ConfinedAttr<WQ_I64Attr, [IntPositive]>:$in_features,
    ConfinedAttr<WQ_I64Attr, [IntPositive]>:$out_features,
    TypeAttrOf<WQ_ScaleType>:$scale_dtype,
    OptionalAttr<TypeAttrOf<WQ_ZeroType>>:$zero_dtype,
    WQ_LayoutAttr:$layout,
    OptionalAttr<DenseF32ArrayAttr>:$codebook);

// Accessors derived from the scheme, shared by both ops.
defvar WQ_SchemeExtraDecls = [{
  /// ceil(in_features / group_size), or 1 when group_size is -1.
  int64_t getNumGroups() {
    return ::mlir::qc::wq::getNumGroups(getInFeatures(), getGroupSize());
  }
}];

//===----------------------------------------------------------------------===//
// wq.linear
//===----------------------------------------------------------------------===//

def WQ_LinearOp : WQ_Op<"linear", [Pure, AttrSizedOperandSegments]> {
  let summary = "linear layer with weight-only quantized weights";
  let description = [{
    `result[t, n] = sum_k x[t, k] * W[n, k] + bias[n]`, where `W` is the
    `[N, K]` weight that `wq.dequantize` with the same operands and
    attributes produces. `x` is `[T, K]`, the result `[T, N]` with the
    element type of `x`; `bias` (optional) is `[N]` with that element type
    too. The sum accumulates in fp32; its order is unspecified.

    Dequantization of input channel `k` of output row `n` (code `q`):
    - group `g = g_idx[k]` when `g_idx` is present (act-order; the values
      must lie in `[0, groups)`), else `k / G` (0 when `G = -1`);
    - with a `codebook` (NF4): `W = codebook[q] * scales[g, n]`;
    - `sym = true`: `W = scales[g, n] * (q - 2^(b-1))`;
    - `sym = false`: `W = scales[g, n] * (q - z)` with `z` from `zeros`.

    Packing (`layout`), with codes as LSB-first bit streams (code `i` of a
    stream at bits `[b*i, b*i + b)`, words in order, unused high bits 0;
    for b = 3 this is exactly GPTQ's 3-words-per-32-codes scheme):
    - `gptq`: `qweight` is `[ceil(K*b/32), N]` i32, column `n` the stream
      of `q[n, 0..K)`; b = 3 needs `K % 32 == 0`. Integer `zeros` are
      `[groups, ceil(N*b/32)]` i32, row `g` the stream of `z[g, 0..N) - 1`
      (GPTQ v1; `z = (stored + 1) mod 2^b`); b = 3 needs `N % 32 == 0`.
    - `rows`: `qweight` is `[N, ceil(K*b/32)]` i32, row `n` the stream of
      `q[n, 0..K)`. Integer `zeros` are `[groups, N]` holding `z` itself
      (read as unsigned).
    Float `zeros` (either layout) are `[groups, N]`. `scales` are always
    `[groups, N]` with element type `scale_dtype`; `zero_dtype` is the
    element type of `zeros` and present exactly when `zeros` is. A
    `codebook` has 2^b f32 entries, requires b = 4 and `sym = true`, and
    excludes `zeros`.

    ```mlir
    %y = wq.linear %x, %qw, %s zeros(%qz)
        {bits = 4 : i64, group_size = 32 : i64, sym = false,
         in_features = 64 : i64, out_features = 172 : i64,
         scale_dtype = f16, zero_dtype = i32, layout = #wq.layout<gptq>}
        : (tensor<?x64xf32>, tensor<8x172xi32>, tensor<2x172xf16>,
           tensor<2x22xi32>) -> tensor<?x172xf32>
    ```
  }];
  let arguments = !con((ins WQ_FloatTensor:$x), WQ_PackedWeightOperands,
                       (ins Optional<WQ_FloatTensor>:$bias), WQ_SchemeAttrs);
  let results = (outs WQ_FloatTensor:$result);
  let assemblyFormat = [{
    $x `,` $qweight `,` $scales (`zeros` `(` $zeros^ `)`)?
    (`g_idx` `(` $g_idx^ `)`)? (`bias` `(` $bias^ `)`)?
    attr-dict `:` functional-type(operands, results)
  }];
  let extraClassDeclaration = WQ_SchemeExtraDecls;
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// wq.dequantize
//===----------------------------------------------------------------------===//

def WQ_DequantizeOp : WQ_Op<"dequantize", [Pure, AttrSizedOperandSegments]> {
  let summary = "unpack and dequantize weights to a float [N, K] tensor";
  let description = [{
    Produces the `[N, K]` float weight `W` that `wq.linear` multiplies by:
    the operands, attributes, packing and formula are those of `wq.linear`
    without `x` and `bias`. Values are computed in fp32 and rounded to the
    result element type. The reference CPU lowering of `wq.linear` and the
    tests use it; the GPU kernels never materialize it.

    ```mlir
    %w = wq.dequantize %qw, %s
        {bits = 4 : i64, group_size = -1 : i64, sym = true,
         in_features = 64 : i64, out_features = 172 : i64,
         scale_dtype = f32, layout = #wq.layout<rows>}
        : (tensor<172x8xi32>, tensor<1x172xf32>) -> tensor<172x64xf32>
    ```
  }];
  let arguments = !con(WQ_PackedWeightOperands, WQ_SchemeAttrs);
  let results = (outs WQ_FloatTensor:$result);
  let assemblyFormat = [{
    $qweight `,` $scales (`zeros` `(` $zeros^ `)`)?
    (`g_idx` `(` $g_idx^ `)`)?
    attr-dict `:` functional-type(operands, results)
  }];
  let extraClassDeclaration = WQ_SchemeExtraDecls;
  let hasVerifier = 1;
}

#endif // QC_WQ_OPS_TD
