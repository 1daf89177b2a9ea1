// Standalone tests of wq-nf4 on hand-written IR over a tiny generated
// checkpoint (test/Inputs/tiny-llama2c.sh: dim 64, hidden 80). The
// end-to-end run on the shared model (quantize, then measure perplexity) is
// test/EndToEnd/wq-nf4.mlir.

// RUN: rm -rf %t && mkdir -p %t && cd %t && %make_tiny_llama2c tiny.bin
// RUN: cd %t && quant-opt %s -verify-diagnostics -wq-nf4="block-size=64 weights-out=nf4.st" | FileCheck %s

// Tests that wq-nf4 produces codebook wq.linear ops (the 16 NormalFloat
// values, f32 block absmax scales, no zero points) in the rows layout, with
// a ragged last block for the K = 80 down projection.
// CHECK: wq.linear %{{.*}}, %{{.*}}, %{{.*}} {bits = 4 : i64, codebook = array<f32: -1.000000e+00, -0.6961928, {{.*}}, 1.000000e+00>, group_size = 64 : i64, in_features = 64 : i64, layout = #wq.layout<rows>
// CHECK-SAME: scale_dtype = f32, sym = true}
// CHECK: llm.param "model.layers.0.mlp.down_proj.scales" : tensor<2x64xf32>
// CHECK: wq.linear {{.*}}in_features = 80 : i64
// CHECK-NOT: zeros(
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
