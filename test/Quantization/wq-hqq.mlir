// Standalone tests of wq-hqq on hand-written IR over a tiny generated
// checkpoint (test/Inputs/tiny-llama2c.sh: dim 64, hidden 80). The
// end-to-end run on the shared model (quantize, then measure perplexity) is
// test/EndToEnd/wq-hqq.mlir.

// RUN: rm -rf %t && mkdir -p %t && cd %t && %make_tiny_llama2c tiny.bin
// RUN: cd %t && quant-opt %s -verify-diagnostics -wq-hqq="bits=4 group-size=32 weights-out=hqq.st" | FileCheck %s
// RUN: cd %t && quant-opt %s -verify-diagnostics -wq-hqq="bits=4 group-size=32 round-zeros=true layout=gptq scale-dtype=f16 weights-out=gptq.st" | FileCheck %s --check-prefix=ROUND

// Tests that wq-hqq keeps HQQ's fractional zero points as f32 in the rows
// layout by default (the layout auto picks: the gptq layout cannot hold
// them), and that with round-zeros they are integers packed in the gptq
// layout.
// CHECK: %[[Z:.*]] = llm.param "model.layers.0.self_attn.q_proj.qzeros" : tensor<2x64xf32>
// CHECK: wq.linear {{.*}} zeros(%[[Z]]) {bits = 4 : i64, group_size = 32 : i64{{.*}}layout = #wq.layout<rows>{{.*}}scale_dtype = f32, sym = false, zero_dtype = f32}
// CHECK: llm.param "model.layers.0.mlp.down_proj.qzeros" : tensor<3x64xf32>
// ROUND: llm.param "model.layers.0.self_attn.q_proj.qzeros" : tensor<2x8xi32>
// ROUND: wq.linear {{.*}}layout = #wq.layout<gptq>{{.*}}zero_dtype = i32
// ROUND: llm.param "model.layers.0.mlp.up_proj.qzeros" : tensor<2x10xi32>
module attributes {llm.checkpoint = "tiny.bin", llm.checkpoint_format = "llama2c"} {
  func.func @forward(%x: tensor<?x64xf32>) -> tensor<?x64xf32> {
    %wq = llm.param "model.layers.0.self_attn.q_proj.weight" : tensor<64x64xf32>
    %q = llm.linear %x, %wq : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
    %wu = llm.param "model.layers.0.mlp.up_proj.weight" : tensor<80x64xf32>
    %u = llm.linear %q, %wu : (tensor<?x64xf32>, tensor<80x64xf32>) -> tensor<?x80xf32>
    %wd = llm.param "model.layers.0.mlp.down_proj.weight" : tensor<64x80xf32>
    %d = llm.linear %u, %wd : (tensor<?x80xf32>, tensor<64x80xf32>) -> tensor<?x64xf32>
    return %d : tensor<?x64xf32>
  }
}
