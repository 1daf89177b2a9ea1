// RUN: quant-opt %s -llm-derive-decode | FileCheck %s
// RUN: quant-opt %s -llm-derive-decode="entry=model decode-entry=step" | FileCheck %s --check-prefix=NAMED

// Tests that the decode function is derived from a two-layer forward
// function: tokens, position and the two caches in, last-position logits and
// the updated caches out; every rope gets the position as its offset; each
// attention becomes a key write, a value write (layer l, chained through
// the layers) and an attention over the caches; only the last row reaches
// the classifier; the forward function is unchanged.

// CHECK-LABEL: func.func @forward
// CHECK-NOT: offset
// CHECK-COUNT-2: llm.attention
// CHECK: return %{{.*}} : tensor<?x16xf32>

// CHECK-LABEL: func.func @decode
// CHECK-SAME: (%[[TOK:.*]]: tensor<?xi32>, %[[POS:.*]]: index, %[[KC:.*]]: tensor<2x1x?x4xf32> {llm.tied_result = 1 : i64}, %[[VC:.*]]: tensor<2x1x?x4xf32> {llm.tied_result = 2 : i64}) -> (tensor<1x16xf32>, tensor<2x1x?x4xf32>, tensor<2x1x?x4xf32>)
// CHECK: %[[X:.*]] = llm.embedding %{{.*}}, %[[TOK]]
// CHECK: %[[Q0:.*]] = llm.rope %{{.*}} offset %[[POS]] {{.*}}num_heads = 2
// CHECK: %[[K0:.*]] = llm.rope %{{.*}} offset %[[POS]] {{.*}}num_heads = 1
// CHECK: %[[KC1:.*]] = llm.kv_cache_write %[[KC]], %[[K0]], %[[POS]] {layer = 0 : i64}
// CHECK: %[[VC1:.*]] = llm.kv_cache_write %[[VC]], %{{.*}}, %[[POS]] {layer = 0 : i64}
// CHECK: %[[A0:.*]] = llm.kv_cache_attention %[[Q0]], %[[KC1]], %[[VC1]], %[[POS]] {head_dim = 4 : i64, layer = 0 : i64, num_heads = 2 : i64, num_kv_heads = 1 : i64, scale = 5.000000e-01 : f32}
// CHECK: llm.rope %{{.*}} offset %[[POS]]
// CHECK: llm.rope %{{.*}} offset %[[POS]]
// CHECK: %[[KC2:.*]] = llm.kv_cache_write %[[KC1]], %{{.*}}, %[[POS]] {layer = 1 : i64}
// CHECK: %[[VC2:.*]] = llm.kv_cache_write %[[VC1]], %{{.*}}, %[[POS]] {layer = 1 : i64}
// CHECK: llm.kv_cache_attention %{{.*}}, %[[KC2]], %[[VC2]], %[[POS]] {{.*}}layer = 1 : i64
// CHECK-NOT: llm.attention
// CHECK: %[[H:.*]] = llm.add
// CHECK: %[[N:.*]] = tensor.dim %[[H]], %{{.*}} : tensor<?x8xf32>
// CHECK: %[[LAST:.*]] = arith.subi %[[N]], %{{.*}} : index
// CHECK: %[[ROW:.*]] = tensor.extract_slice %[[H]][%[[LAST]], 0] [1, 8] [1, 1] : tensor<?x8xf32> to tensor<1x8xf32>
// CHECK: %[[L:.*]] = llm.logits %[[ROW]], %{{.*}} : (tensor<1x8xf32>, tensor<16x8xf32>) -> tensor<1x16xf32>
// CHECK: return %[[L]], %[[KC2]], %[[VC2]]

// NAMED: func.func @model
// NAMED: func.func @step

func.func @forward(%tok: tensor<?xi32>) -> tensor<?x16xf32> {
  %e = llm.param "emb" : tensor<16x8xf32>
  %x = llm.embedding %e, %tok : (tensor<16x8xf32>, tensor<?xi32>) -> tensor<?x8xf32>
  %wq = llm.param "wq" : tensor<8x8xf32>
  %wk = llm.param "wk" : tensor<4x8xf32>
  %q = llm.linear %x, %wq : (tensor<?x8xf32>, tensor<8x8xf32>) -> tensor<?x8xf32>
  %k = llm.linear %x, %wk : (tensor<?x8xf32>, tensor<4x8xf32>) -> tensor<?x4xf32>
  %v = llm.linear %x, %wk : (tensor<?x8xf32>, tensor<4x8xf32>) -> tensor<?x4xf32>
  %qr = llm.rope %q {num_heads = 2 : i64, head_dim = 4 : i64, theta = 1.0e+04 : f32, layout = #llm.rope_layout<half>} : tensor<?x8xf32>
  %kr = llm.rope %k {num_heads = 1 : i64, head_dim = 4 : i64, theta = 1.0e+04 : f32, layout = #llm.rope_layout<half>} : tensor<?x4xf32>
  %a = llm.attention %qr, %kr, %v {num_heads = 2 : i64, num_kv_heads = 1 : i64, head_dim = 4 : i64, scale = 0.5 : f32, causal = true}
      : (tensor<?x8xf32>, tensor<?x4xf32>, tensor<?x4xf32>) -> tensor<?x8xf32>
  %x1 = llm.add %x, %a : tensor<?x8xf32>
  %q1 = llm.linear %x1, %wq : (tensor<?x8xf32>, tensor<8x8xf32>) -> tensor<?x8xf32>
  %k1 = llm.linear %x1, %wk : (tensor<?x8xf32>, tensor<4x8xf32>) -> tensor<?x4xf32>
  %q1r = llm.rope %q1 {num_heads = 2 : i64, head_dim = 4 : i64, theta = 1.0e+04 : f32, layout = #llm.rope_layout<half>} : tensor<?x8xf32>
  %k1r = llm.rope %k1 {num_heads = 1 : i64, head_dim = 4 : i64, theta = 1.0e+04 : f32, layout = #llm.rope_layout<half>} : tensor<?x4xf32>
  %a1 = llm.attention %q1r, %k1r, %k1 {num_heads = 2 : i64, num_kv_heads = 1 : i64, head_dim = 4 : i64, scale = 0.5 : f32, causal = true}
      : (tensor<?x8xf32>, tensor<?x4xf32>, tensor<?x4xf32>) -> tensor<?x8xf32>
  %x2 = llm.add %x1, %a1 : tensor<?x8xf32>
  %l = llm.logits %x2, %e : (tensor<?x8xf32>, tensor<16x8xf32>) -> tensor<?x16xf32>
  return %l : tensor<?x16xf32>
}

func.func @model(%tok: tensor<?xi32>) -> tensor<?x16xf32> {
  %e = llm.param "emb" : tensor<16x8xf32>
  %x = llm.embedding %e, %tok : (tensor<16x8xf32>, tensor<?xi32>) -> tensor<?x8xf32>
  %a = llm.attention %x, %x, %x {num_heads = 2 : i64, num_kv_heads = 2 : i64, head_dim = 4 : i64, scale = 0.5 : f32, causal = true}
      : (tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x8xf32>
  %l = llm.logits %a, %e : (tensor<?x8xf32>, tensor<16x8xf32>) -> tensor<?x16xf32>
  return %l : tensor<?x16xf32>
}

