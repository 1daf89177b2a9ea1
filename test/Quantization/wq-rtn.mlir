// Standalone tests of wq-rtn on hand-written IR. The llm.param ops name
// tensors of a tiny llama2.c checkpoint that the test writes (dim 64,
// hidden 80: test/Inputs/tiny-llama2c.sh); the module names it with a path
// relative to the test's folder. The end-to-end run on the shared model
// (quantize, then measure perplexity) is test/EndToEnd/wq-rtn.mlir.

// RUN: rm -rf %t && mkdir -p %t && cd %t && %make_tiny_llama2c tiny.bin
// RUN: cd %t && quant-opt %s -split-input-file -verify-diagnostics -wq-rtn="bits=4 group-size=32 sym=false exclude=mlp\.down_proj weights-out=asym.st" | FileCheck %s --check-prefix=ASYM
// RUN: cd %t && quant-opt %s -split-input-file -verify-diagnostics -wq-rtn="bits=3 group-size=-1 layout=rows scale-dtype=bf16 weights-out=sym.st" | FileCheck %s --check-prefix=SYM
// RUN: test -s %t/asym.st && test -s %t/sym.st

// Tests that every llm.linear over a checkpoint weight becomes a wq.linear
// over packed parameters (GPTQ layout, v1 integer zeros, fp16 scales), that
// the overlay file is recorded on the module, that the bias is kept, and
// that excluded layers stay float. Symmetric per-channel 3-bit codes in the
// rows layout with bf16 scales: K = 80 is fine there (the last word of a
// row is partial).

// ASYM-LABEL: module attributes
// ASYM-SAME: llm.weights_overlay = "{{.*}}asym.st"
// ASYM: %[[Q:.*]] = llm.param "model.layers.0.self_attn.q_proj.qweight" : tensor<8x64xi32>
// ASYM: %[[S:.*]] = llm.param "model.layers.0.self_attn.q_proj.scales" : tensor<2x64xf16>
// ASYM: %[[Z:.*]] = llm.param "model.layers.0.self_attn.q_proj.qzeros" : tensor<2x8xi32>
// ASYM: wq.linear %arg0, %[[Q]], %[[S]] zeros(%[[Z]]) {bits = 4 : i64, group_size = 32 : i64, in_features = 64 : i64, layout = #wq.layout<gptq>, out_features = 64 : i64, scale_dtype = f16, sym = false, zero_dtype = i32} : (tensor<?x64xf32>, tensor<8x64xi32>, tensor<2x64xf16>, tensor<2x8xi32>) -> tensor<?x64xf32>
// ASYM: llm.param "model.layers.0.mlp.gate_proj.qzeros" : tensor<2x10xi32>
// ASYM: wq.linear %arg0, {{.*}} bias(%arg1) {{.*}}out_features = 80 : i64{{.*}} -> tensor<?x80xf32>
// ASYM: %[[D:.*]] = llm.param "model.layers.0.mlp.down_proj.weight" : tensor<64x80xf32>
// ASYM: llm.linear %{{.*}}, %[[D]]
// ASYM-NOT: self_attn.q_proj.weight
// ASYM-NOT: gate_proj.weight

// SYM-LABEL: module attributes
// SYM-SAME: llm.weights_overlay = "{{.*}}sym.st"
// SYM: llm.param "model.layers.0.self_attn.q_proj.qweight" : tensor<64x6xi32>
// SYM: llm.param "model.layers.0.self_attn.q_proj.scales" : tensor<1x64xbf16>
// SYM: wq.linear {{.*}} {bits = 3 : i64, group_size = -1 : i64, in_features = 64 : i64, layout = #wq.layout<rows>, out_features = 64 : i64, scale_dtype = bf16, sym = true}
// SYM: llm.param "model.layers.0.mlp.down_proj.qweight" : tensor<64x8xi32>
// SYM: wq.linear {{.*}}in_features = 80 : i64, layout = #wq.layout<rows>
module attributes {llm.checkpoint = "tiny.bin", llm.checkpoint_format = "llama2c"} {
  func.func @forward(%x: tensor<?x64xf32>, %b: tensor<80xf32>) -> tensor<?x64xf32> {
    %wq = llm.param "model.layers.0.self_attn.q_proj.weight" : tensor<64x64xf32>
    %q = llm.linear %x, %wq : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
    %wg = llm.param "model.layers.0.mlp.gate_proj.weight" : tensor<80x64xf32>
    %g = llm.linear %x, %wg, %b : (tensor<?x64xf32>, tensor<80x64xf32>, tensor<80xf32>) -> tensor<?x80xf32>
    %wd = llm.param "model.layers.0.mlp.down_proj.weight" : tensor<64x80xf32>
    %d = llm.linear %g, %wd : (tensor<?x80xf32>, tensor<64x80xf32>) -> tensor<?x64xf32>
    %s = llm.add %q, %d : tensor<?x64xf32>
    return %s : tensor<?x64xf32>
  }
}

// -----

// Tests that linears whose weight is not a checkpoint ".weight" parameter
// (a function argument, a tensor of another name) are left alone, and that
// a module without any such linear still gets its (empty) overlay.

// ASYM-LABEL: module attributes
// ASYM-SAME: llm.weights_overlay = "{{.*}}asym.st"
// ASYM: llm.linear %arg0, %arg1
// ASYM: llm.param "model.layers.0.self_attn.q_proj.bias"
// ASYM: llm.linear
// ASYM-NOT: wq.linear
// SYM-LABEL: module attributes
// SYM-NOT: wq.linear
module attributes {llm.checkpoint = "tiny.bin", llm.checkpoint_format = "llama2c"} {
  func.func @forward(%x: tensor<?x64xf32>, %w: tensor<64x64xf32>) -> tensor<?x64xf32> {
    %a = llm.linear %x, %w : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
    %wb = llm.param "model.layers.0.self_attn.q_proj.bias" : tensor<64x64xf32>
    %b = llm.linear %a, %wb : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
    return %b : tensor<?x64xf32>
  }
}
