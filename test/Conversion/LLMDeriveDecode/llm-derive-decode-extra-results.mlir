// RUN: quant-opt %s -llm-derive-decode | FileCheck %s

// Tests that extra results of the forward function (observed activations)
// are dropped from the decode function, and that logits not produced by
// llm.logits are sliced to their last row after the fact.

// CHECK-LABEL: func.func @decode
// CHECK-SAME: -> (tensor<1x8xf32>, tensor<1x2x?x4xf32>, tensor<1x2x?x4xf32>)
// CHECK: %[[A:.*]] = llm.kv_cache_attention
// CHECK: %[[S:.*]] = tensor.extract_slice %[[A]][%{{.*}}, 0] [1, 8] [1, 1]
// CHECK: return %[[S]], %{{.*}}, %{{.*}} : tensor<1x8xf32>
func.func @forward(%tok: tensor<?xi32>) -> (tensor<?x8xf32>, tensor<?x8xf32>) {
  %e = llm.param "emb" : tensor<16x8xf32>
  %x = llm.embedding %e, %tok : (tensor<16x8xf32>, tensor<?xi32>) -> tensor<?x8xf32>
  %a = llm.attention %x, %x, %x {num_heads = 2 : i64, num_kv_heads = 2 : i64, head_dim = 4 : i64, scale = 0.5 : f32, causal = true}
      : (tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x8xf32>
  return %a, %x : tensor<?x8xf32>, tensor<?x8xf32>
}
