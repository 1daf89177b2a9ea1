//===- Passes.td - Conversion passes of qc -----------------*- tablegen -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//

#ifndef QC_CONVERSION_PASSES_TD
#define QC_CONVERSION_PASSES_TD

include "mlir/Pass/PassBase.td"
include "qc/PassOptions.td"

def ConvertLLMToLinalgPass : Pass<"convert-llm-to-linalg", "ModuleOp"> {
  let summary = "Lower `llm` model ops to linalg on tensors";
  let description = [{
    Rewrites every `llm` compute op (embedding, rms_norm, linear, rope,
    attention, silu_mul, add, logits) into `linalg.generic` / `linalg.fill`
    and `tensor` ops with the same value semantics. `llm.param` is left in
    place: binding parameters is the job of `llm-params-to-arguments`.

    Numerics: every reduction accumulates in the op's element type (fp32 for
    the models the importers produce); softmax subtracts the row maximum;
    reductions carry `reassoc`/`contract` fast-math flags so LLVM may
    vectorize them (summation order is not part of the op's contract), while
    divisions and transcendental functions keep IEEE semantics.

    Postcondition: no `llm` compute op remains. Ops with element types other
    than f32 are rejected with a diagnostic.

    ```mlir
    %y = llm.add %a, %b : tensor<?x64xf32>
    // becomes
    %e = tensor.empty(%t) : tensor<?x64xf32>
    %y = linalg.generic {...} ins(%a, %b ...) outs(%e ...) { arith.addf ... }
    ```
  }];
  let dependentDialects = [
    "mlir::linalg::LinalgDialect", "mlir::tensor::TensorDialect",
    "mlir::arith::ArithDialect", "mlir::math::MathDialect",
    "mlir::scf::SCFDialect"
  ];
}

def ConvertWQToLinalgPass : Pass<"convert-wq-to-linalg", "ModuleOp"> {
  let summary = "Reference lowering of `wq` ops to linalg on tensors";
  let description = [{
    The CPU reference path for weight-quantized models. `wq.dequantize`
    becomes one `linalg.generic` over [N, K] whose body extracts each code
    from its packed 32-bit words (either layout; 3-bit codes that straddle
    two words included), looks up its group (`g_idx` or k / G), scale
    (widened from f16/bf16) and zero point (GPTQ v1 zero-minus-one, plain
    integer or float) or codebook entry, and computes the weight in f32.
    `wq.linear` becomes that dequantization followed by the same x W^T loop
    nest `llm.linear` lowers to. The dequantized weight is a temporary of
    the CPU reference only; GPU kernels dequantize in registers.

    Postcondition: no `wq` op remains. Ops whose activations are not f32 are
    reported with a diagnostic.

    ```mlir
    %y = wq.linear %x, %qw, %s {bits = 4 : i64, group_size = 32 : i64,
        sym = true, in_features = 64 : i64, out_features = 32 : i64,
        scale_dtype = f16, layout = #wq.layout<rows>}
        : (tensor<?x64xf32>, tensor<32x8xi32>, tensor<2x32xf16>) -> tensor<?x32xf32>
    // becomes
    %w = linalg.generic {...} outs(%e : tensor<32x64xf32>) { extract, shift, mask, scale }
    %y = linalg.generic {... ["parallel", "reduction", "parallel"]} ins(%x, %wT ...)
    ```
  }];
  let dependentDialects = [
    "mlir::linalg::LinalgDialect", "mlir::tensor::TensorDialect",
    "mlir::arith::ArithDialect"
  ];
}

def ConvertWQToGPUPass : Pass<"convert-wq-to-gpu", "ModuleOp"> {
  let summary = "Generate fused dequantize-GEMM GPU kernels for 4-bit linear layers";
  let description = [{
    Builds, for each layer configuration, one `gpu.module` of fused
    dequantize-GEMM kernels y[M, N] = x[M, K] W^T reading W in the mma16x64
    kernel layout (dialects/WQ/README.md). Layers come from every
    `wq.linear` of the module (which must be in the mma16x64 layout: run
    wq-repack-mma16x64 first) and from the `shapes` option (kernel-only
    layers: N x K with the `bits`, `group-size` and `sym` options). The
    wq ops themselves are left in place (the host-side schedule is the
    runtime's). The kernels are built with MLIR builders in the gpu,
    nvgpu, nvvm, arith, vector, scf and llvm dialects; M is a runtime
    argument, everything else is a compile-time constant.

    Families (`tiles`, default: one splitk variant for M <= 8, mma variants
    with tile-m 16/32/64 above, and the dequant baseline):
    - `splitk`: GEMV / split-K, W as the A operand of mma.sync.m16n8k16,
      128-bit weight loads with a register prefetch, fp32 partials reduced
      through shared memory and (split-k > 1) an fp32 workspace.
    - `mma`: tensor-core GEMM with a multi-stage cp.async pipeline
      (nvgpu.device_async_copy), ldmatrix.x4 for the activations.
    - `dequant`: writes W as fp16 [N, K] (one thread per packed word) for
      the dequantize-then-cuBLAS baseline of the benchmarks.
    The fused kernels dequantize in registers (fp16 magic-number trick),
    never writing W back to memory.

    Kernel ABI: pointers are i64 device addresses, M is i32; parameter
    names, launch geometry and M ranges are recorded in the module's
    `qc.variants` attribute. Postcondition: the module is a
    `gpu.container_module` holding one `gpu.module` per distinct layer;
    lower it with `qc-gpu-to-binary`. Unsupported layers (bits != 4, K not
    a multiple of 8, group size not a multiple of 16) and bad tile
    configurations are reported as errors and the pass fails.

    ```mlir
    // quant-opt --convert-wq-to-gpu="shapes=4096x4096 group-size=128"
    gpu.module @wq_n4096_k4096_b4_g128_sym attributes {qc.variants = [...]} {
      gpu.func @splitk_0(%x: i64, %qweight: i64, %scales: i64, %y: i64,
                         %M: i32) kernel { ... nvgpu.mma.sync ... }
      ...
    }
    ```
  }];
  let options = [
    ListOption<"shapes", "shapes", "std::string",
               "Kernel-only layers as NxK (N outputs, K inputs)">,
    // The grid of the kernel-only layers, as the quantization passes spell
    // it; the kernel families say which widths they support.
    QCBitsOption<"4, the only width with kernels so far">,
    QCGroupSizeOption<>, QCSymOption<>,
    Option<"tiles", "tiles", "std::string", "\"\"",
           "Variants, ';'-separated: family:key=value,... e.g. "
           "'splitk:warps=4,split-k=4,stages=2,m=1-8;mma:tile-m=64,warps=4,"
           "stages=3,m=9-128' (empty: defaults)">,
    Option<"numSms", "num-sms", "int64_t", "132",
           "Multiprocessor count that sizes the default split-k factors">,
  ];
  let dependentDialects = [
    "mlir::gpu::GPUDialect", "mlir::nvgpu::NVGPUDialect",
    "mlir::NVVM::NVVMDialect", "mlir::LLVM::LLVMDialect",
    "mlir::arith::ArithDialect", "mlir::scf::SCFDialect",
    "mlir::vector::VectorDialect"
  ];
}

def WQRepackMMA16x64Pass : Pass<"wq-repack-mma16x64"> {
  let summary = "Repack 4-bit gptq-layout weights into the GPU layout mma16x64";
  let description = [{
    Rewrites every `wq.linear` / `wq.dequantize` in the GPTQ v1 layout
    (4-bit, f16 scales, integer v1 or f16 zeros, no g_idx, no codebook) into
    the mma16x64 kernel layout the GPU kernels read: qweight i32
    [Np*Kp/8] in mma.sync fragment order, scales and zeros f16 [groups, Np]
    (dialects/WQ/README.md). Packing is the runtime's packMMA16x64, so the
    compiler and quant-bench produce identical tensors; padding dequantizes
    to exactly 0. Ops in other layouts are left alone.

    Precondition: the packed operands are `arith.constant` tensors;
    otherwise (e.g. `llm.param` weights in an overlay) the op is reported
    and the pass fails.

    ```mlir
    %y = wq.linear %x, %qw, %s {bits = 4, group_size = 64, ..., layout = #wq.layout<gptq>}
        : (tensor<?x128xf32>, tensor<16x32xi32>, tensor<2x32xf16>) -> tensor<?x32xf32>
    // becomes
    %y = wq.linear %x, %qw2, %s2 {..., layout = #wq.layout<mma16x64>}
        : (tensor<?x128xf32>, tensor<512xi32>, tensor<2x32xf16>) -> tensor<?x32xf32>
    ```
  }];
  let dependentDialects = ["mlir::arith::ArithDialect"];
}

def WQRepackGPTQPass : Pass<"wq-repack-gptq"> {
  let summary = "Repack mma16x64 weights back into the gptq layout";
  let description = [{
    The inverse of wq-repack-mma16x64 (unpackMMA16x64, then GPTQ v1
    packing): every op in the mma16x64 layout with constant operands gets
    gptq tensors, with zero points as GPTQ v1 integers (`zero-dtype=i32`,
    refusing a zero point of 0, which v1 cannot store) or f16 values. Used
    to test that repacking is lossless and to send a GPU-layout model to
    the CPU reference path.
  }];
  let options = [
    Option<"zeroDtype", "zero-dtype", "::mlir::qc::RepackZeroDType",
           "::mlir::qc::RepackZeroDType::I32",
           "Storage of the zero points (default: i32)",
           [{::llvm::cl::values(
               clEnumValN(::mlir::qc::RepackZeroDType::I32, "i32",
                          "GPTQ v1 packed integers (zero point - 1; 0 "
                          "cannot be stored)"),
               clEnumValN(::mlir::qc::RepackZeroDType::F16, "f16",
                          "f16 values, one per group and row"))}]>,
  ];
  let dependentDialects = ["mlir::arith::ArithDialect"];
}

def LLMDeriveDecodePass : Pass<"llm-derive-decode", "ModuleOp"> {
  let summary = "Add a KV-cached decode function derived from the forward function";
  let description = [{
    Clones the model function `entry` (tokens `tensor<?xi32>` to logits
    `tensor<?xVxf32>`) into a function `decode-entry` that processes the
    tokens of positions `[pos, pos + T)` against a KV cache:

    ```mlir
    func.func @decode(%tokens: tensor<?xi32>, %pos: index,
                      %kc: tensor<LxKVx?xHDxf32> {llm.tied_result = 1 : i64},
                      %vc: tensor<LxKVx?xHDxf32> {llm.tied_result = 2 : i64})
        -> (tensor<1xVxf32>, tensor<LxKVx?xHDxf32>, tensor<LxKVx?xHDxf32>)
    ```

    Every `llm.rope` gets `%pos` as its offset; the `l`-th `llm.attention`
    (in program order) becomes two `llm.kv_cache_write` (its keys and
    values into layer `l` of the caches) and an `llm.kv_cache_attention`
    over layer `l`. Only the last position's logits are computed: prefill
    (T = prompt length, pos = 0) and a decode step (T = 1, pos = length so
    far) are two calls of the same function. The updated caches are
    returned; `llm.tied_result` tells `llm-params-to-arguments` to write
    them in place into the argument buffers. Everything else in the
    function must act on each position independently (`llm` and `wq` ops
    do); any other op, a non-causal attention, or attention layers of
    different shapes are reported. The forward function is left unchanged.
  }];
  let options = [
    Option<"entry", "entry", "std::string", /*default=*/"\"forward\"",
           "Name of the model function to derive from (default: forward)">,
    Option<"decodeEntry", "decode-entry", "std::string",
           /*default=*/"\"decode\"",
           "Name of the derived function (default: decode)">
  ];
  let dependentDialects = ["mlir::tensor::TensorDialect"];
}

def LLMPackDecodeHeadPass : Pass<"llm-pack-decode-head", "ModuleOp"> {
  let summary = "Read the decode function's classifier as 8-bit blocks";
  let description = [{
    A decode step reads every weight once, and the classifier
    (`llm.logits`, vocabulary x hidden) is the widest matrix of a small
    model: in fp32 it was two thirds of the bytes a SmolLM2 W4 decode step
    read. When the classifier's values are exactly 8-bit symmetric blocks of
    32 with f16 scales (ggml's Q8_0, the form the bundled GGUF stores its
    tied embeddings in), this pass has the decode function `entry` read
    them in that form: its `llm.logits` whose weight is `llm.param "P"`
    becomes a `wq.linear` (8 bits, group 32, `sym = true`, f16 scales,
    GPTQ layout) over `llm.param "P.q8.qweight"` and `llm.param
    "P.q8.scales"`, which the CPU driver derives from P when it binds the
    parameters. The weights multiplied are the same values; only the order
    of the sums differs. Whether P's values qualify is a property of the
    data, not of the IR: the driver checks it and runs this pass only then.
    Other functions (the full-window forward function) keep the fp32 head.
    A decode function without an `llm.logits` over an `llm.param`, or a
    hidden size that is not a multiple of 32, is reported.
  }];
  let options = [
    Option<"entry", "entry", "std::string", /*default=*/"\"decode\"",
           "Name of the decode function (default: decode)">
  ];
  let dependentDialects = ["mlir::qc::wq::WQDialect"];
}

def LLMParamsToArgumentsPass : Pass<"llm-params-to-arguments", "ModuleOp"> {
  let summary = "Turn `llm.param` ops into function arguments for execution";
  let description = [{
    Prepares a model function for native execution with caller-owned
    buffers. For every function named by `entry`, each distinct `llm.param`
    name becomes a trailing `memref` argument (read-only, bound by the
    executor by name), and each tensor result becomes an extra output
    `memref` argument written with `bufferization.materialize_in_destination`.
    Tensor arguments become memref arguments read through
    `bufferization.to_tensor`. The parameter names, in argument order, are
    recorded in the function attribute `llm.param_names`; the function gains
    `llvm.emit_c_interface`.

    Index and integer arguments are passed through by value. A tensor
    argument with the attribute `llm.tied_result = r` (a KV cache, see
    `llm-derive-decode`) is read and written in place: result `r` is
    materialized into that argument's buffer instead of a new output
    argument, and the one-shot bufferization updates it without a copy.

    Precondition: the function has only ranked tensor, index and integer
    arguments and ranked tensor results.
    A function that does not satisfy it is reported with a diagnostic.
  }];
  let options = [
    Option<"entry", "entry", "std::string", /*default=*/"\"forward\"",
           "Name of the function to prepare (default: forward)">
  ];
  let dependentDialects = [
    "mlir::bufferization::BufferizationDialect", "mlir::memref::MemRefDialect"
  ];
}

def QCMathApproximationPass : Pass<"qc-math-approximation"> {
  let summary = "Replace math.exp/tanh/erf with vectorizable polynomials";
  let description = [{
    Applies MLIR's polynomial approximations of `math.exp` and friends
    (accurate to a few ULP in fp32) so that LLVM can vectorize the softmax and
    SiLU loops instead of calling libm one element at a time.
  }];
  let dependentDialects = [
    "mlir::arith::ArithDialect", "mlir::math::MathDialect",
    "mlir::vector::VectorDialect"
  ];
}

def QCVectorizeLinearPass : Pass<"qc-vectorize-linear", "ModuleOp"> {
  let summary = "Generate register-blocked vector kernels for x W^T on memrefs";
  let description = [{
    Replaces every bufferized `linalg.generic` that computes
    `out[t, n] += x[t, k] * w[n, k]` (f32, unit stride along K: the form the
    linear, logits and dequantized-linear lowerings emit) with a loop nest
    of `vector` operations: a block of `token-block` x `row-block` outputs
    keeps one accumulator vector of `vector-width` lanes per output, reads
    rows of x and rows of W along K (the weight is never transposed or
    copied), and reduces each accumulator once at the end; the last partial
    vector along K is a masked load. Tokens and rows that do not fill a
    block get blocks of one. Decode (one token) then streams each weight
    row once; prefill reuses every loaded weight vector for `token-block`
    tokens. The nest is one private function of the module,
    `qc_linear_f32_v<width>_r<rows>_t<tokens>(x, w, out, rowBegin, rowEnd)`,
    that every matched generic calls with its operands cast to
    dynamically shaped, row-strided memrefs: one copy of the code for the
    whole model. With `parallel`, each call goes through
    `qc_rt_parallel_linear(kernel, x, w, out, rowBegin, rowEnd)` instead, a
    function of qc's runtime library (qc/runtime/CompiledCodeRuntime.h) that
    calls the kernel on row ranges from its thread pool; every output is
    still computed by one kernel call, so results do not depend on the
    thread count. Anything that does not match is left to
    `convert-linalg-to-loops`.

    The sum over K is reassociated (per-lane partial sums, then a tree),
    which the op's contract allows; the result is `out + sum`, as before.

    The fused GPTQ-layout linear that convert-wq-to-linalg emits (a generic
    reading x, the packed i32 words, the scales as stored (f32, f16, bf16)
    and the zero points as stored (none for symmetric, floats per group, or
    GPTQ v1 words), and dequantizing in its body) becomes a call to
    `qc_dequant_linear_b<bits>_g<group>_s<scale type>_z<zero form>_v<width>_c<cols>_t<tokens>(x,
    qweight, scales, zeros, out, colBegin, colEnd, groupBegin, groupEnd)`:
    output columns in vector lanes, each code shifted, masked and converted
    in registers and dequantized with the same f32 operations as the
    reference, the weight never written out. Several tokens go through
    register blocks (`dequant-column-block` vectors times
    `dequant-token-block` tokens); one token reads each packed row across
    the column range with its accumulators in a stack buffer. With
    `parallel` it goes through `qc_rt_parallel_dequant_linear_<s>_<z>`,
    which splits the output columns (several tokens) or the groups into a
    fixed number of partial sums (one token).
  }];
  let options = [
    Option<"vectorWidth", "vector-width", "int64_t", /*default=*/"16",
           "f32 lanes per accumulator (16 for AVX-512, 8 for AVX2)">,
    Option<"rowBlock", "row-block", "int64_t", /*default=*/"4",
           "Weight rows (outputs) per register block">,
    Option<"tokenBlock", "token-block", "int64_t", /*default=*/"4",
           "Tokens per register block">,
    Option<"parallel", "parallel", "bool", /*default=*/"false",
           "Call the kernels through the runtime's dispatchers "
           "(qc_rt_parallel_linear, qc_rt_parallel_dequant_linear), which "
           "split the outputs among the process's threads">,
    Option<"dequantColumnBlock", "dequant-column-block", "int64_t",
           /*default=*/"2",
           "Column vectors per register block of the dequantize-linear "
           "kernel">,
    Option<"dequantTokenBlock", "dequant-token-block", "int64_t",
           /*default=*/"4",
           "Tokens per register block of the dequantize-linear kernel">,
  ];
  let dependentDialects = [
    "mlir::arith::ArithDialect", "mlir::func::FuncDialect",
    "mlir::memref::MemRefDialect", "mlir::scf::SCFDialect",
    "mlir::vector::VectorDialect"
  ];
}

def QCOutlineLoopNestsPass : Pass<"qc-outline-loop-nests", "ModuleOp"> {
  let summary = "Move each bufferized loop nest into a function shared by "
                "every identical copy";
  let description = [{
    Runs on bufferized IR. Every operation of a public function that holds
    loops or branches (a linalg op on memrefs, an `scf.for`, an `scf.if`;
    not nested in another such operation) becomes a call to a private
    function taking the values it uses (constants are cloned in, not
    passed) and returning its results. Functions whose bodies are identical
    are merged, so the 30 layers of a model share one copy of each of their
    loop nests. The model function itself is left a straight line of
    allocations and calls.

    LLVM's optimizer and code generator are superlinear in the size of a
    function: compiling a model as one function of hundreds of loop nests
    took most of a model's start-up time. The outlined functions are marked
    `noinline` (through `passthrough`) so that LLVM does not rebuild that
   
    function.
  }];
  let dependentDialects = ["mlir::func::FuncDialect"];
}

#endif // QC_CONVERSION_PASSES_TD
