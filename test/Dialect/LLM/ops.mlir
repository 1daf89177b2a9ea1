// RUN: quant-opt %s -split-input-file | quant-opt -split-input-file | FileCheck %s
// RUN: quant-opt %s -split-input-file --mlir-print-op-generic | quant-opt -split-input-file | FileCheck %s

// Tests that llm.param round-trips with its name and static type.
// CHECK-LABEL: func.func @param
// CHECK: %[[W:.*]] = llm.param "model.norm.weight" : tensor<64xf32>
// CHECK: return %[[W]]
func.func @param() -> tensor<64xf32> {
  %w = llm.param "model.norm.weight" : tensor<64xf32>
  return %w : tensor<64xf32>
}

// -----

// Tests that llm.param also names the packed tensors of quantized layers
// (integer codes, fp16 scales).
// CHECK-LABEL: func.func @param_packed
// CHECK: llm.param "model.layers.0.mlp.up_proj.qweight" : tensor<8x172xi32>
// CHECK: llm.param "model.layers.0.mlp.up_proj.scales" : tensor<2x172xf16>
func.func @param_packed() -> (tensor<8x172xi32>, tensor<2x172xf16>) {
  %q = llm.param "model.layers.0.mlp.up_proj.qweight" : tensor<8x172xi32>
  %s = llm.param "model.layers.0.mlp.up_proj.scales" : tensor<2x172xf16>
  return %q, %s : tensor<8x172xi32>, tensor<2x172xf16>
}

// -----

// Tests that llm.embedding round-trips with a dynamic token count.
// CHECK-LABEL: func.func @embedding
// CHECK-SAME: (%[[T:.*]]: tensor<512x64xf32>, %[[I:.*]]: tensor<?xi32>)
// CHECK: llm.embedding %[[T]], %[[I]] : (tensor<512x64xf32>, tensor<?xi32>) -> tensor<?x64xf32>
func.func @embedding(%table: tensor<512x64xf32>, %tokens: tensor<?xi32>) -> tensor<?x64xf32> {
  %x = llm.embedding %table, %tokens : (tensor<512x64xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  return %x : tensor<?x64xf32>
}

// -----

// Tests that llm.rms_norm round-trips with its eps.
// CHECK-LABEL: func.func @rms_norm
// CHECK-SAME: (%[[X:.*]]: tensor<?x64xf32>, %[[W:.*]]: tensor<64xf32>)
// CHECK: llm.rms_norm %[[X]], %[[W]] {eps = 9.99999974E-6 : f32} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
func.func @rms_norm(%x: tensor<?x64xf32>, %w: tensor<64xf32>) -> tensor<?x64xf32> {
  %y = llm.rms_norm %x, %w {eps = 1.0e-05 : f32} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}

// -----

// Tests that llm.linear round-trips without a bias.
// CHECK-LABEL: func.func @linear
// CHECK-SAME: (%[[X:.*]]: tensor<?x64xf32>, %[[W:.*]]: tensor<172x64xf32>)
// CHECK: llm.linear %[[X]], %[[W]] : (tensor<?x64xf32>, tensor<172x64xf32>) -> tensor<?x172xf32>
func.func @linear(%x: tensor<?x64xf32>, %w: tensor<172x64xf32>) -> tensor<?x172xf32> {
  %y = llm.linear %x, %w : (tensor<?x64xf32>, tensor<172x64xf32>) -> tensor<?x172xf32>
  return %y : tensor<?x172xf32>
}

// -----

// Tests that llm.linear round-trips with a bias.
// CHECK-LABEL: func.func @linear_bias
// CHECK-SAME: (%[[X:.*]]: tensor<?x64xf32>, %[[W:.*]]: tensor<172x64xf32>, %[[B:.*]]: tensor<172xf32>)
// CHECK: llm.linear %[[X]], %[[W]], %[[B]] : (tensor<?x64xf32>, tensor<172x64xf32>, tensor<172xf32>) -> tensor<?x172xf32>
func.func @linear_bias(%x: tensor<?x64xf32>, %w: tensor<172x64xf32>, %b: tensor<172xf32>) -> tensor<?x172xf32> {
  %y = llm.linear %x, %w, %b : (tensor<?x64xf32>, tensor<172x64xf32>, tensor<172xf32>) -> tensor<?x172xf32>
  return %y : tensor<?x172xf32>
}

// -----

// Tests that llm.rope round-trips with the interleaved (llama2.c) layout.
// CHECK-LABEL: func.func @rope_interleaved
// CHECK: llm.rope %{{.*}} {head_dim = 8 : i64, layout = #llm.rope_layout<interleaved>, num_heads = 8 : i64, theta = 1.000000e+04 : f32} : tensor<?x64xf32>
func.func @rope_interleaved(%q: tensor<?x64xf32>) -> tensor<?x64xf32> {
  %r = llm.rope %q {num_heads = 8 : i64, head_dim = 8 : i64, theta = 1.0e+04 : f32,
                    layout = #llm.rope_layout<interleaved>} : tensor<?x64xf32>
  return %r : tensor<?x64xf32>
}

// -----

// Tests that llm.rope round-trips with the half (Hugging Face) layout.
// CHECK-LABEL: func.func @rope_half
// CHECK: llm.rope %{{.*}} {head_dim = 16 : i64, layout = #llm.rope_layout<half>, num_heads = 2 : i64, theta = 5.000000e+05 : f32} : tensor<4x32xf32>
func.func @rope_half(%k: tensor<4x32xf32>) -> tensor<4x32xf32> {
  %r = llm.rope %k {num_heads = 2 : i64, head_dim = 16 : i64, theta = 5.0e+05 : f32,
                    layout = #llm.rope_layout<half>} : tensor<4x32xf32>
  return %r : tensor<4x32xf32>
}

// -----

// Tests that llm.rope round-trips a scaled, partial rotary embedding
// (resolved frequencies, rotary_dim, YaRN's attention scaling).
// CHECK-LABEL: func.func @rope_scaled_partial
// CHECK: llm.rope %{{.*}} {attention_scaling = 1.100000e+00 : f32, head_dim = 8 : i64, inv_freq = array<f32: 5.000000e-01, 2.500000e-01>, layout = #llm.rope_layout<half>, num_heads = 2 : i64, rotary_dim = 4 : i64, theta = 1.000000e+04 : f32} : tensor<?x16xf32>
func.func @rope_scaled_partial(%k: tensor<?x16xf32>) -> tensor<?x16xf32> {
  %r = llm.rope %k {num_heads = 2 : i64, head_dim = 8 : i64, theta = 1.0e+04 : f32,
                    layout = #llm.rope_layout<half>, rotary_dim = 4 : i64,
                    inv_freq = array<f32: 0.5, 0.25>, attention_scaling = 1.1 : f32}
      : tensor<?x16xf32>
  return %r : tensor<?x16xf32>
}

// -----

// Tests that llm.attention round-trips with grouped key/value heads.
// CHECK-LABEL: func.func @attention
// CHECK-SAME: (%[[Q:.*]]: tensor<?x64xf32>, %[[K:.*]]: tensor<?x32xf32>, %[[V:.*]]: tensor<?x32xf32>)
// CHECK: llm.attention %[[Q]], %[[K]], %[[V]] {causal = true, head_dim = 8 : i64, num_heads = 8 : i64, num_kv_heads = 4 : i64, scale = 0.353553385 : f32} : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>) -> tensor<?x64xf32>
func.func @attention(%q: tensor<?x64xf32>, %k: tensor<?x32xf32>, %v: tensor<?x32xf32>) -> tensor<?x64xf32> {
  %o = llm.attention %q, %k, %v {num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64,
                                 scale = 0.353553385 : f32, causal = true}
      : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>) -> tensor<?x64xf32>
  return %o : tensor<?x64xf32>
}

// -----

// Tests that llm.silu_mul round-trips.
// CHECK-LABEL: func.func @silu_mul
// CHECK-SAME: (%[[G:.*]]: tensor<?x172xf32>, %[[U:.*]]: tensor<?x172xf32>)
// CHECK: llm.silu_mul %[[G]], %[[U]] : tensor<?x172xf32>
func.func @silu_mul(%g: tensor<?x172xf32>, %u: tensor<?x172xf32>) -> tensor<?x172xf32> {
  %h = llm.silu_mul %g, %u : tensor<?x172xf32>
  return %h : tensor<?x172xf32>
}

// -----

// Tests that llm.add round-trips.
// CHECK-LABEL: func.func @add
// CHECK-SAME: (%[[A:.*]]: tensor<?x64xf32>, %[[B:.*]]: tensor<?x64xf32>)
// CHECK: llm.add %[[A]], %[[B]] : tensor<?x64xf32>
func.func @add(%a: tensor<?x64xf32>, %b: tensor<?x64xf32>) -> tensor<?x64xf32> {
  %s = llm.add %a, %b : tensor<?x64xf32>
  return %s : tensor<?x64xf32>
}

// -----

// Tests that llm.logits round-trips.
// CHECK-LABEL: func.func @logits
// CHECK-SAME: (%[[H:.*]]: tensor<?x64xf32>, %[[E:.*]]: tensor<512x64xf32>)
// CHECK: llm.logits %[[H]], %[[E]] : (tensor<?x64xf32>, tensor<512x64xf32>) -> tensor<?x512xf32>
func.func @logits(%h: tensor<?x64xf32>, %emb: tensor<512x64xf32>) -> tensor<?x512xf32> {
  %l = llm.logits %h, %emb : (tensor<?x64xf32>, tensor<512x64xf32>) -> tensor<?x512xf32>
  return %l : tensor<?x512xf32>
}

// -----

// Tests that llm.rope round-trips with a position offset (decoding).
// CHECK-LABEL: func.func @rope_offset
// CHECK-SAME: (%[[Q:.*]]: tensor<?x16xf32>, %[[P:.*]]: index)
// CHECK: llm.rope %[[Q]] offset %[[P]] {head_dim = 8 : i64, layout = #llm.rope_layout<half>, num_heads = 2 : i64, theta = 1.000000e+04 : f32} : tensor<?x16xf32>
func.func @rope_offset(%q: tensor<?x16xf32>, %pos: index) -> tensor<?x16xf32> {
  %r = llm.rope %q offset %pos {num_heads = 2 : i64, head_dim = 8 : i64, theta = 1.0e+04 : f32,
                    layout = #llm.rope_layout<half>} : tensor<?x16xf32>
  return %r : tensor<?x16xf32>
}

// -----

// Tests that llm.kv_cache_write round-trips with a dynamic and a static
// cache capacity.
// CHECK-LABEL: func.func @kv_cache_write
// CHECK-SAME: (%[[C:.*]]: tensor<5x2x?x8xf32>, %[[S:.*]]: tensor<3x2x16x8xf32>, %[[K:.*]]: tensor<?x16xf32>, %[[P:.*]]: index)
// CHECK: llm.kv_cache_write %[[C]], %[[K]], %[[P]] {layer = 4 : i64} : (tensor<5x2x?x8xf32>, tensor<?x16xf32>) -> tensor<5x2x?x8xf32>
// CHECK: llm.kv_cache_write %[[S]], %[[K]], %[[P]] {layer = 0 : i64} : (tensor<3x2x16x8xf32>, tensor<?x16xf32>) -> tensor<3x2x16x8xf32>
func.func @kv_cache_write(%c: tensor<5x2x?x8xf32>, %s: tensor<3x2x16x8xf32>, %k: tensor<?x16xf32>, %pos: index)
    -> (tensor<5x2x?x8xf32>, tensor<3x2x16x8xf32>) {
  %0 = llm.kv_cache_write %c, %k, %pos {layer = 4 : i64} : (tensor<5x2x?x8xf32>, tensor<?x16xf32>) -> tensor<5x2x?x8xf32>
  %1 = llm.kv_cache_write %s, %k, %pos {layer = 0 : i64} : (tensor<3x2x16x8xf32>, tensor<?x16xf32>) -> tensor<3x2x16x8xf32>
  return %0, %1 : tensor<5x2x?x8xf32>, tensor<3x2x16x8xf32>
}

// -----

// Tests that llm.kv_cache_attention round-trips (GQA, 8 query heads over 2
// key/value heads).
// CHECK-LABEL: func.func @kv_cache_attention
// CHECK-SAME: (%[[Q:.*]]: tensor<?x64xf32>, %[[KC:.*]]: tensor<5x2x?x8xf32>, %[[VC:.*]]: tensor<5x2x?x8xf32>, %[[P:.*]]: index)
// CHECK: llm.kv_cache_attention %[[Q]], %[[KC]], %[[VC]], %[[P]] {head_dim = 8 : i64, layer = 3 : i64, num_heads = 8 : i64, num_kv_heads = 2 : i64, scale = 0.353553385 : f32} : (tensor<?x64xf32>, tensor<5x2x?x8xf32>, tensor<5x2x?x8xf32>) -> tensor<?x64xf32>
func.func @kv_cache_attention(%q: tensor<?x64xf32>, %kc: tensor<5x2x?x8xf32>, %vc: tensor<5x2x?x8xf32>, %pos: index) -> tensor<?x64xf32> {
  %o = llm.kv_cache_attention %q, %kc, %vc, %pos {layer = 3 : i64, num_heads = 8 : i64,
          num_kv_heads = 2 : i64, head_dim = 8 : i64, scale = 0.353553385 : f32}
      : (tensor<?x64xf32>, tensor<5x2x?x8xf32>, tensor<5x2x?x8xf32>) -> tensor<?x64xf32>
  return %o : tensor<?x64xf32>
}
