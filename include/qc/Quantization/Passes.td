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
  let options = [
    Option<"bits", "bits", "int64_t", /*default=*/"4", "Code width: 2, 3, 4 or 8">,
    Option<"groupSize", "group-size", "int64_t", /*default=*/"128",
           "Input channels per scale (-1 = per channel)">,
    Option<"sym", "sym", "bool", /*default=*/"true",
           "Symmetric grid (zero point 2^(bits-1)) instead of min-max with zeros">,
    Option<"scaleDType", "scale-dtype", "std::string", /*default=*/"\"f16\"",
           "Storage type of the scales: f16, bf16 or f32">,
    Option<"layout", "layout", "std::string", /*default=*/"\"gptq\"",
           "Packing layout: gptq (GPTQ v1 interchange) or rows">,
    Option<"exclude", "exclude", "std::string", /*default=*/"\"\"",
           "Regex of layer names to leave in full precision">,
    Option<"weightsOut", "weights-out", "std::string", /*default=*/"\"\"",
           "Safetensors file receiving the packed tensors (required)">
  ];
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

    The trace must have been recorded on the weights this module refers to
    (its model fingerprint is compared); a trace of another model, or one
    missing a layer, is refused with an error and nothing is written.
  }];
  let options = [
    Option<"bits", "bits", "int64_t", /*default=*/"4", "Code width: 2, 3, 4 or 8">,
    Option<"groupSize", "group-size", "int64_t", /*default=*/"128",
           "Input channels per scale (-1 = per channel)">,
    Option<"sym", "sym", "bool", /*default=*/"true",
           "Symmetric grid (zero point 2^(bits-1)) instead of min-max with zeros">,
    Option<"scaleDType", "scale-dtype", "std::string", /*default=*/"\"f16\"",
           "Storage type of the scales: f16, bf16 or f32">,
    Option<"layout", "layout", "std::string", /*default=*/"\"gptq\"",
           "Packing layout: gptq (GPTQ v1 interchange) or rows">,
    Option<"exclude", "exclude", "std::string", /*default=*/"\"\"",
           "Regex of layer names to leave in full precision">,
    Option<"weightsOut", "weights-out", "std::string", /*default=*/"\"\"",
           "Safetensors file receiving the packed tensors (required)">,
    Option<"trace", "trace", "std::string", /*default=*/"\"\"",
           "Calibration trace from quant-calibrate (required)">,
    Option<"dampPercent", "damp-percent", "double", /*default=*/"0.01",
           "Damping: this fraction of mean(diag H) is added to the diagonal">,
    Option<"blockSize", "block-size", "int64_t", /*default=*/"128",
           "Columns per lazy-update block">,
    Option<"actOrder", "act-order", "bool", /*default=*/"false",
           "Quantize columns in order of decreasing H[i,i] (emits g_idx)">,
    Option<"staticGroups", "static-groups", "bool", /*default=*/"false",
           "With act-order: compute group parameters in the original order">
  ];
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
