//===- Passes.td - Quantization passes of qc ---------------*- tablegen -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Each pass rewrites `llm.linear` ops whose weight is an `llm.param` into
// `wq.linear` ops over packed parameters. The numerics live in
// lib/Quantization/Algorithms (plain C++); the passes read the weights named
// by the module's checkpoint, call the algorithm, and write the packed
// tensors to a safetensors overlay that the module then references
// (`llm.weights_overlay`).
//
//===----------------------------------------------------------------------===//

#ifndef QC_QUANTIZATION_PASSES_TD
#define QC_QUANTIZATION_PASSES_TD

include "mlir/Pass/PassBase.td"
include "qc/PassOptions.td"

//===----------------------------------------------------------------------===//
// Options shared by the weight-quantizing passes
//===----------------------------------------------------------------------===//
//
// Declared once each (the grid options bits / group-size / sym are in
// qc/PassOptions.td); every wq-* pass lists the ones it takes. String
// choices are enum options, so the option parser rejects a value that is
// not listed and --help shows the valid ones.

/// The valid values of `scale-dtype` (::qc::quant::ScaleDType).
def WQScaleDTypeValues {
  string values = [{::llvm::cl::values(
      clEnumValN(::qc::quant::ScaleDType::F16, "f16",
                 "IEEE half (the only one the gptq layout stores)"),
      clEnumValN(::qc::quant::ScaleDType::BF16, "bf16", "bfloat16"),
      clEnumValN(::qc::quant::ScaleDType::F32, "f32", "IEEE single"))}];
}

/// `scale-dtype`: storage type of the scales; `default` is an enumerator of
/// ::qc::quant::ScaleDType.
class WQScaleDTypeOption<string default = "F16">
    : Option<"scaleDType", "scale-dtype", "::qc::quant::ScaleDType",
             "::qc::quant::ScaleDType::" # default,
             "Storage type of the scales (default: " # !tolower(default) # ")",
             WQScaleDTypeValues.values>;

/// The valid values of `layout` (mlir::qc::WQPackLayout). The GPU layout
/// mma16x64 is not one: wq-repack-mma16x64 makes it from gptq.
def WQLayoutValues {
  string values = [{::llvm::cl::values(
      clEnumValN(::mlir::qc::WQPackLayout::Auto, "auto",
                 "gptq when every layer fits it (checked from the shapes "
                 "before quantizing), otherwise rows, with a remark"),
      clEnumValN(::mlir::qc::WQPackLayout::GPTQ, "gptq",
                 "GPTQ v1 interchange"),
      clEnumValN(::mlir::qc::WQPackLayout::Rows, "rows",
                 "Codes packed along each row; holds every shape"))}];
}

/// `layout`: the packing layout of the new parameters; `default` is an
/// enumerator of mlir::qc::WQPackLayout, `note` a remark for the help.
class WQLayoutOption<string default = "Auto", string note = "">
    : Option<"layout", "layout", "::mlir::qc::WQPackLayout",
             "::mlir::qc::WQPackLayout::" # default,
             "Packing layout" # note # " (default: " # !tolower(default) # ")",
             WQLayoutValues.values>;

/// `trace`: the calibration trace of quant-calibrate; `what` says which of
/// its contents the pass reads.
class WQTraceOption<string what = "">
    : Option<"trace", "trace", "std::string", /*default=*/"\"\"",
             "Calibration trace from quant-calibrate" # what # " (required)">;

/// The options every weight-quantizing pass ends with, in this order.
defvar WQOutputOptions = [
  Option<"exclude", "exclude", "std::string", /*default=*/"\"\"",
         "Regex of layer names to leave in full precision (default: none)">,
  ListOption<"overrides", "overrides", "std::string",
             "Per-layer overrides, later ones win: REGEX:skip or "
             "REGEX:bits=8[:group-size=128][:sym=false] (the regex is "
             "searched in the layer name and may not contain ',')">,
  Option<"weightsOut", "weights-out", "std::string", /*default=*/"\"\"",
         "Safetensors file receiving the packed tensors (required)">,
  Option<"journal", "journal", "std::string", /*default=*/"\"\"",
         "Folder recording each finished layer (decoder block, for the "
         "block-wise methods); a run of the same pass on the same inputs "
         "continues after what it holds, with the same result (default: "
         "none)">
];

/// The grid and packing options of the integer-grid passes, then the
/// output options: what wq-rtn takes, and what the others start with.
/// `sym` is the method's default symmetry.
class WQGridOptions<string sym> {
  list<Option> options = !listconcat([
    QCBitsOption<>, QCGroupSizeOption<>, QCSymOption<sym>,
    WQScaleDTypeOption<>, WQLayoutOption<>
  ], WQOutputOptions);
}

def WQRTNPass : Pass<"wq-rtn", "ModuleOp"> {
  let summary = "Round-to-nearest weight quantization of llm.linear ops";
  let description = [{
    Quantizes every `llm.linear` whose weight is an fp32 `llm.param` (and
    whose layer name does not match `exclude`) with the canonical min-max
    grid of ../shared/docs/ALGORITHMS.md §1: asymmetric grids include 0,
    symmetric grids use z = 2^(b-1); the scale is cast to `scale-dtype`
    before the codes are computed; rounding is half to even; a ragged last
    group is allowed. The layer becomes a `wq.linear` over new parameters
    `<layer>.qweight`, `.scales` and (asymmetric) `.qzeros`, packed in
    `layout`, which are written with every previously packed tensor to the
    safetensors file `weights-out`; the module's `llm.weights_overlay`
    attribute is set to that file.

    Preconditions: the module names its checkpoint (`llm.checkpoint`,
    `llm.checkpoint_format`), as `quant-import` writes it. Failures
    (unreadable weights, non-finite values, a layout that cannot hold the
    shape, an unwritable output) are reported with the layer name; the
    module is then left unchanged and no output file is written.

    ```mlir
    %w = llm.param "model.layers.0.mlp.up_proj.weight" : tensor<172x64xf32>
    %y = llm.linear %x, %w : (tensor<?x64xf32>, tensor<172x64xf32>) -> tensor<?x172xf32>
    // becomes (bits=4 group-size=32 sym=true layout=gptq)
    %q = llm.param "model.layers.0.mlp.up_proj.qweight" : tensor<8x172xi32>
    %s = llm.param "model.layers.0.mlp.up_proj.scales" : tensor<2x172xf16>
    %y = wq.linear %x, %q, %s {bits = 4 : i64, group_size = 32 : i64, sym = true, ...}
    ```
  }];
  let options = WQGridOptions<"true">.options;
  let dependentDialects = ["mlir::qc::wq::WQDialect"];
}

def WQGPTQPass : Pass<"wq-gptq", "ModuleOp"> {
  let summary = "GPTQ weight quantization driven by a calibration trace";
  let description = [{
    Quantizes every `llm.linear` with an fp32 parameter weight (not matching
    `exclude`) with GPTQ (../shared/docs/ALGORITHMS.md §3): the layer's
    Hessian H = sum x x^T comes from the calibration `trace` written by
    `quant-calibrate`; dead input channels are masked; `damp-percent` of the
    mean diagonal is added, escalating along the recovery ladder of §3.7 when
    H is not positive definite (diagonal floors, then RTN for that layer,
    reported as a warning naming the layer, the damping tried and the token
    count); columns are processed in blocks of `block-size` with lazy
    updates; `act-order` processes columns by decreasing H[i,i] and emits
    `g_idx` (with `static-groups`, groups follow the original order). Grid,
    rounding, scale cast and packing are those of `wq-rtn`.

    Hessians (`sequential`, the default, as AutoGPTQ/GPTQModel): block i is
    calibrated on the trace's sampled sequences run through blocks < i
    already quantized, "true sequential" inside the block ([k, v, q], [o],
    [up, gate], [down], re-running the block between sub-groups); the
    pipeline runs in plain C++ (lib/Quantization/Algorithms/BlockReference).
    With `sequential=false` the trace's whole-text Hessians of the float
    model are used instead (every layer independent).

    The trace must have been recorded on the weights this module refers to
    (its model fingerprint is compared); a trace of another model, or one
    missing a layer, is refused with an error and nothing is written.
  }];
  let options = !listconcat(WQGridOptions<"true">.options, [
    WQTraceOption<>,
    Option<"dampPercent", "damp-percent", "double", /*default=*/"0.01",
           "Damping: this fraction of mean(diag H) is added to the diagonal (default: 0.01)">,
    Option<"blockSize", "block-size", "int64_t", /*default=*/"128",
           "Columns per lazy-update block (default: 128)">,
    Option<"actOrder", "act-order", "bool", /*default=*/"false",
           "Quantize columns in order of decreasing H[i,i] (emits g_idx) (default: false)">,
    Option<"staticGroups", "static-groups", "bool", /*default=*/"false",
           "With act-order: compute group parameters in the original order (default: false)">,
    Option<"sequential", "sequential", "bool", /*default=*/"true",
           "Block-sequential Hessians from the trace's sampled sequences, blocks < i already quantized (false: the trace's whole-text Hessians of the float model) (default: true)">
  ]);
  let dependentDialects = ["mlir::qc::wq::WQDialect"];
}

def WQNF4Pass : Pass<"wq-nf4", "ModuleOp"> {
  let summary = "NF4 (bitsandbytes 4-bit NormalFloat) weight quantization";
  let description = [{
    Quantizes every eligible `llm.linear` weight to NF4
    (../shared/docs/ALGORITHMS.md §7): blocks of `block-size` consecutive
    input channels of a row share their absmax; each value is mapped to the
    nearest of the 16 NormalFloat code points; with `double-quant` the
    absmax values are themselves quantized to 8 bits (blocks of 256, mean
    offset) and the layer stores the dequantized statistics as f32 scales.
    The result is a `wq.linear` with `codebook` (the 16 values), 4-bit codes
    in the `rows` layout and `group_size` = `block-size`.

    Deviation from bitsandbytes, said here because it matters for K not a
    multiple of the block size: bitsandbytes' blocks run over the flattened
    tensor and may straddle rows; here a row's last block is shorter instead
    (identical whenever K % block-size == 0).
  }];
  let options = !listconcat([
    Option<"blockSize", "block-size", "int64_t", /*default=*/"64",
           "Input channels per absmax block (32 to 4096, a power of two) (default: 64)">,
    Option<"doubleQuant", "double-quant", "bool", /*default=*/"true",
           "Quantize the absmax statistics to 8 bits (QLoRA double quantization) (default: true)">
  ], WQOutputOptions);
  let dependentDialects = ["mlir::qc::wq::WQDialect"];
}

def WQHQQPass : Pass<"wq-hqq", "ModuleOp"> {
  let summary = "HQQ calibration-free weight quantization";
  let description = [{
    Half-quadratic quantization (../shared/docs/ALGORITHMS.md §5): starting
    from the min-max grid, the zero points are optimized with the
    shrinkage-based half-quadratic solver (lp-norm `lp-norm`, penalty `beta`
    growing by `kappa` per iteration, at most `iters` iterations, stopping
    when the error grows) with the scales fixed. Zero points stay fractional
    (f32, `rows` layout) unless `round-zeros`, which makes them integers so
    that the gptq layout can hold them. Needs no calibration data.
  }];
  // Asymmetric only (no sym option); f32 scales, group size 64 and the
  // rows layout by default, as HQQ's reference.
  let options = !listconcat([
    QCBitsOption<>, QCGroupSizeOption<"64">, WQScaleDTypeOption<"F32">,
    Option<"lpNorm", "lp-norm", "double", /*default=*/"0.7", "p of the lp-norm error (default: 0.7)">,
    Option<"beta", "beta", "double", /*default=*/"10.0", "Initial half-quadratic penalty (default: 10.0)">,
    Option<"kappa", "kappa", "double", /*default=*/"1.01", "Penalty growth per iteration (default: 1.01)">,
    Option<"iters", "iters", "int64_t", /*default=*/"20", "Maximum solver iterations (default: 20)">,
    Option<"roundZeros", "round-zeros", "bool", /*default=*/"false",
           "Round the optimized zero points to integers (default: false)">,
    WQLayoutOption<"Rows", " (gptq needs round-zeros)">
  ], WQOutputOptions);
  let dependentDialects = ["mlir::qc::wq::WQDialect"];
}

def WQAWQPass : Pass<"wq-awq", "ModuleOp"> {
  let summary = "AWQ: activation-aware scales folded into the graph, clip search, quantization";
  let description = [{
    AWQ (../shared/docs/ALGORITHMS.md §4), block by block on the trace's
    sampled sequences (inputs of block i = outputs of the FLOAT blocks < i,
    §2): for each scaling group (input_layernorm -> q/k/v,
    post_attention_layernorm -> gate/up, up_proj -> down_proj, and v_proj ->
    o_proj when their shapes allow) the per-input-channel scales
    s = x_mean^a / w_mean^(1-a) (duo scaling; `duo-scaling=false` gives the
    paper's x_mean^a) are searched over a = i / `n-grid` against the output
    MSE of the inspected module, then FOLDED: the preceding RMSNorm weight
    (or the preceding linear's rows) is divided by s and the layers' input
    columns multiplied by it, which leaves the float function unchanged.
    `clip` then searches per-(row, group) clipping maxima on the scaled
    weights (q/k are never clipped), and the layers are quantized on the AWQ
    grid (asymmetric: raw min/max; `sym`: absmax / (2^(b-1) - 1)).

    The folding is visible in the IR: every norm whose weight changed reads
    it from the overlay and carries the unit attribute `awq.scaled`.
    `quantize=false` applies only the scales (and clipping, if enabled):
    the model then stays float, which is how the tests show that folding
    alone does not change the function.
  }];
  let options = !listconcat(WQGridOptions<"false">.options, [
    WQTraceOption<" with sampled sequences">,
    Option<"nGrid", "n-grid", "int64_t", /*default=*/"20", "Exponent grid points of the scale search (default: 20)">,
    Option<"duoScaling", "duo-scaling", "bool", /*default=*/"true",
           "AutoAWQ duo scaling (divide by w_mean^(1-a)); false: x_mean^a (default: true)">,
    Option<"clip", "clip", "bool", /*default=*/"true", "Run the weight clipping search (default: true)">,
    Option<"maxShrink", "max-shrink", "double", /*default=*/"0.5",
           "Largest clipping shrink tried (default: 0.5)">,
    Option<"quantize", "quantize", "bool", /*default=*/"true",
           "Quantize after folding (false: fold scales only, keep float) (default: true)">
  ]);
  let dependentDialects = ["mlir::qc::wq::WQDialect"];
}

def WQAutoRoundPass : Pass<"wq-autoround", "ModuleOp"> {
  let summary = "AutoRound (SignRound): block-wise signSGD over rounding and clipping";
  let description = [{
    AutoRound (../shared/docs/ALGORITHMS.md §6), the paper's block-wise
    reconstruction: every linear of a decoder block gets a rounding offset
    per weight and min/max range multipliers per (row, group), tuned with
    signed gradient descent for `iters` steps (learning rate `lr`, default
    1/iters, decaying linearly; minibatches of `batch-size` sequences drawn
    with `seed`) to minimize the MSE between the quantized block on the
    quantized pipeline's inputs and the float block on the float inputs;
    the best parameters seen are kept. Runs on the trace's sampled
    sequences through the plain-C++ reference block (fp32, where the
    reference autocasts to 16 bits).
  }];
  let options = !listconcat(WQGridOptions<"false">.options, [
    WQTraceOption<" with sampled sequences">,
    Option<"iters", "iters", "int64_t", /*default=*/"200", "SignSGD steps per block (0 = RTN on the AutoRound grid) (default: 200)">,
    Option<"lr", "lr", "double", /*default=*/"0.0", "Learning rate of the rounding offsets (0 = 1/iters) (default: 0.0)">,
    Option<"minmaxLr", "minmax-lr", "double", /*default=*/"0.0", "Learning rate of the range multipliers (0 = lr) (default: 0.0)">,
    Option<"batchSize", "batch-size", "int64_t", /*default=*/"8", "Sequences per step (default: 8)">,
    Option<"minmaxTuning", "minmax-tuning", "bool", /*default=*/"true", "Tune the min/max range multipliers (default: true)">,
    Option<"seed", "seed", "int64_t", /*default=*/"42", "Seed of the minibatch draws (default: 42)">
  ]);
  let dependentDialects = ["mlir::qc::wq::WQDialect"];
}

def LLMObserveLinearInputsPass : Pass<"llm-observe-linear-inputs", "ModuleOp"> {
  let summary = "Expose the input of every linear layer as an extra result";
  let description = [{
    Calibration instrumentation. Every distinct value that feeds the `x`
    operand of an `llm.linear` or `wq.linear` in `forward` becomes an extra
    result of `forward` (after the logits), so that running the
    instrumented model returns, per window, exactly the activations each
    layer saw. Layers sharing an input (q/k/v, gate/up) share one result.
    The names of the layers reading result `i + 1` are recorded in the
    function attribute `llm.observed` (an array of string arrays).

    Keeping the observation functional (results, not side effects) means
    the instrumented model lowers and runs through the unchanged CPU
    pipeline, and the IR shows exactly what is observed.

    ```mlir
    func.func @forward(%t: tensor<?xi32>) -> tensor<?x512xf32>
    // becomes
    func.func @forward(%t: tensor<?xi32>)
        -> (tensor<?x512xf32>, tensor<?x64xf32>, tensor<?x64xf32>, ...)
        attributes {llm.observed = [["model.layers.0.self_attn.q_proj",
                                      "model.layers.0.self_attn.k_proj", ...], ...]}
    ```
  }];
}

#endif // QC_QUANTIZATION_PASSES_TD
