// RUN: quant-opt %s -split-input-file -llm-observe-linear-inputs | FileCheck %s

// Tests that the inputs of the linear layers become extra results after the
// logits, that layers reading one value (q and k) share one result, and that
// the layer names are recorded in order.

// CHECK-LABEL: func.func @forward
// CHECK-SAME: -> (tensor<?x16xf32>, tensor<?x8xf32>, tensor<?x4xf32>)
// CHECK-SAME: llm.observed = {{\[}}["model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.k_proj"], ["model.layers.0.mlp.down_proj"]]
// CHECK: return %{{.*}}, %[[H:.*]], %[[K:.*]] :
func.func @forward(%tok: tensor<?xi32>) -> tensor<?x16xf32> {
  %e = llm.param "model.embed_tokens.weight" : tensor<16x8xf32>
  %h = llm.embedding %e, %tok : (tensor<16x8xf32>, tensor<?xi32>) -> tensor<?x8xf32>
  %wq = llm.param "model.layers.0.self_attn.q_proj.weight" : tensor<4x8xf32>
  %wk = llm.param "model.layers.0.self_attn.k_proj.weight" : tensor<4x8xf32>
  %q = llm.linear %h, %wq : (tensor<?x8xf32>, tensor<4x8xf32>) -> tensor<?x4xf32>
  %k = llm.linear %h, %wk : (tensor<?x8xf32>, tensor<4x8xf32>) -> tensor<?x4xf32>
  %s = llm.add %q, %k : tensor<?x4xf32>
  %wd = llm.param "model.layers.0.mlp.down_proj.weight" : tensor<8x4xf32>
  %d = llm.linear %s, %wd : (tensor<?x4xf32>, tensor<8x4xf32>) -> tensor<?x8xf32>
  %l = llm.logits %d, %e : (tensor<?x8xf32>, tensor<16x8xf32>) -> tensor<?x16xf32>
  return %l : tensor<?x16xf32>
}

// -----

// Tests that wq.linear inputs are observed too, named after the qweight.

// CHECK-LABEL: func.func @forward
// CHECK-SAME: llm.observed = {{\[}}["model.layers.0.mlp.up_proj"]]
func.func @forward(%x: tensor<?x64xf32>) -> tensor<?x32xf32> {
  %q = llm.param "model.layers.0.mlp.up_proj.qweight" : tensor<32x8xi32>
  %s = llm.param "model.layers.0.mlp.up_proj.scales" : tensor<2x32xf16>
  %y = wq.linear %x, %q, %s {bits = 4 : i64, group_size = 32 : i64, sym = true,
      in_features = 64 : i64, out_features = 32 : i64, scale_dtype = f16,
      layout = #wq.layout<rows>}
      : (tensor<?x64xf32>, tensor<32x8xi32>, tensor<2x32xf16>) -> tensor<?x32xf32>
  return %y : tensor<?x32xf32>
}
