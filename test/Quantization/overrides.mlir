// Tests per-layer overrides of the quantization passes on hand-written IR
// over a tiny generated checkpoint (test/Inputs/tiny-llama2c.sh): later
// overrides win. Layer 0 at 8 bits, every down_proj left in float, layer
// 1's down_proj back at 2 bits per channel. The same on the shared model:
// test/EndToEnd/overrides.mlir.

// RUN: rm -rf %t && mkdir -p %t && cd %t && %make_tiny_llama2c tiny.bin
// RUN: cd %t && quant-opt %s -verify-diagnostics -wq-rtn="bits=4 group-size=32 layout=rows overrides=layers\.0\.:bits=8,down_proj:skip,layers\.1\.mlp\.down:bits=2:group-size=-1 weights-out=w.st" | FileCheck %s

// CHECK-LABEL: func.func @forward
// CHECK: wq.linear {{.*}} {bits = 8 : i64, group_size = 32 : i64
// CHECK: %[[D0:.*]] = llm.param "model.layers.0.mlp.down_proj.weight"
// CHECK: llm.linear {{.*}}%[[D0]]
// CHECK: wq.linear {{.*}} {bits = 4 : i64, group_size = 32 : i64
// CHECK: wq.linear {{.*}} {bits = 2 : i64, group_size = -1 : i64
module attributes {llm.checkpoint = "tiny.bin", llm.checkpoint_format = "llama2c"} {
  func.func @forward(%x: tensor<?x64xf32>, %h: tensor<?x80xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x64xf32>) {
    %w0 = llm.param "model.layers.0.self_attn.q_proj.weight" : tensor<64x64xf32>
    %y0 = llm.linear %x, %w0 : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
    %d0 = llm.param "model.layers.0.mlp.down_proj.weight" : tensor<64x80xf32>
    %z0 = llm.linear %h, %d0 : (tensor<?x80xf32>, tensor<64x80xf32>) -> tensor<?x64xf32>
    %w1 = llm.param "model.layers.1.self_attn.q_proj.weight" : tensor<64x64xf32>
    %y1 = llm.linear %x, %w1 : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
    %d1 = llm.param "model.layers.1.mlp.down_proj.weight" : tensor<64x80xf32>
    %z1 = llm.linear %h, %d1 : (tensor<?x80xf32>, tensor<64x80xf32>) -> tensor<?x64xf32>
    return %y0, %z0, %y1, %z1 : tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x64xf32>
  }
}
