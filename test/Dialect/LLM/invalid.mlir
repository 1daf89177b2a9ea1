// RUN: quant-opt %s -split-input-file -verify-diagnostics

// Tests that llm.param rejects an empty name.
func.func @param_empty_name() -> tensor<64xf32> {
  // expected-error @+1 {{parameter name must not be empty}}
  %w = llm.param "" : tensor<64xf32>
  return %w : tensor<64xf32>
}

// -----

// Tests that llm.param rejects a dynamic shape.
func.func @param_dynamic_shape() -> tensor<?xf32> {
  // expected-error @+1 {{parameter type must have a static shape, got 'tensor<?xf32>'}}
  %w = llm.param "model.norm.weight" : tensor<?xf32>
  return %w : tensor<?xf32>
}

// -----

// Tests that llm.param rejects an unranked tensor type.
func.func @param_unranked() -> tensor<*xf32> {
  // expected-error @+1 {{invalid kind of type specified: expected builtin.tensor, but found 'tensor<*xf32>'}}
  %w = llm.param "model.norm.weight" : tensor<*xf32>
  return %w : tensor<*xf32>
}

// -----

// Tests that llm.embedding rejects a table that is not rank 2.
func.func @embedding_table_rank(%t: tensor<512xf32>, %i: tensor<?xi32>) -> tensor<?x64xf32> {
  // expected-error @+1 {{table must be rank 2, got 'tensor<512xf32>'}}
  %x = llm.embedding %t, %i : (tensor<512xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  return %x : tensor<?x64xf32>
}

// -----

// Tests that llm.embedding rejects a result that is not rank 2.
func.func @embedding_result_rank(%t: tensor<512x64xf32>, %i: tensor<?xi32>) -> tensor<?xf32> {
  // expected-error @+1 {{result must be rank 2, got 'tensor<?xf32>'}}
  %x = llm.embedding %t, %i : (tensor<512x64xf32>, tensor<?xi32>) -> tensor<?xf32>
  return %x : tensor<?xf32>
}

// -----

// Tests that llm.embedding rejects a result element type that differs from the table's.
func.func @embedding_element_type(%t: tensor<512x64xf32>, %i: tensor<?xi32>) -> tensor<?x64xf16> {
  // expected-error @+1 {{operands and result must share one element type, got 'f32' and 'f16'}}
  %x = llm.embedding %t, %i : (tensor<512x64xf32>, tensor<?xi32>) -> tensor<?x64xf16>
  return %x : tensor<?x64xf16>
}

// -----

// Tests that llm.embedding rejects a result width that differs from the table width.
func.func @embedding_width(%t: tensor<512x64xf32>, %i: tensor<?xi32>) -> tensor<?x32xf32> {
  // expected-error @+1 {{result dimension 1 (32) does not match table dimension 1 (64)}}
  %x = llm.embedding %t, %i : (tensor<512x64xf32>, tensor<?xi32>) -> tensor<?x32xf32>
  return %x : tensor<?x32xf32>
}

// -----

// Tests that llm.embedding rejects a result row count that differs from the token count.
func.func @embedding_rows(%t: tensor<512x64xf32>, %i: tensor<4xi32>) -> tensor<5x64xf32> {
  // expected-error @+1 {{result rows (5) do not match the token count (4)}}
  %x = llm.embedding %t, %i : (tensor<512x64xf32>, tensor<4xi32>) -> tensor<5x64xf32>
  return %x : tensor<5x64xf32>
}

// -----

// Tests that llm.embedding rejects token ids that are not i32.
func.func @embedding_token_type(%t: tensor<512x64xf32>, %i: tensor<?xi64>) -> tensor<?x64xf32> {
  // expected-error @+1 {{operand #1 must be 1D tensor of 32-bit signless integer values}}
  %x = llm.embedding %t, %i : (tensor<512x64xf32>, tensor<?xi64>) -> tensor<?x64xf32>
  return %x : tensor<?x64xf32>
}

// -----

// Tests that llm.rms_norm rejects an input that is not rank 2.
func.func @rms_norm_input_rank(%x: tensor<64xf32>, %w: tensor<64xf32>) -> tensor<64xf32> {
  // expected-error @+1 {{input must be rank 2, got 'tensor<64xf32>'}}
  %y = llm.rms_norm %x, %w {eps = 1.0e-05 : f32} : (tensor<64xf32>, tensor<64xf32>) -> tensor<64xf32>
  return %y : tensor<64xf32>
}

// -----

// Tests that llm.rms_norm rejects a weight that is not rank 1.
func.func @rms_norm_weight_rank(%x: tensor<?x64xf32>, %w: tensor<1x64xf32>) -> tensor<?x64xf32> {
  // expected-error @+1 {{weight must be rank 1, got 'tensor<1x64xf32>'}}
  %y = llm.rms_norm %x, %w {eps = 1.0e-05 : f32} : (tensor<?x64xf32>, tensor<1x64xf32>) -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}

// -----

// Tests that llm.rms_norm rejects mixed element types.
func.func @rms_norm_element_type(%x: tensor<?x64xf32>, %w: tensor<64xf16>) -> tensor<?x64xf32> {
  // expected-error @+1 {{operands and result must share one element type, got 'f32' and 'f16'}}
  %y = llm.rms_norm %x, %w {eps = 1.0e-05 : f32} : (tensor<?x64xf32>, tensor<64xf16>) -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}

// -----

// Tests that llm.rms_norm rejects a weight whose width differs from the input's.
func.func @rms_norm_width(%x: tensor<?x64xf32>, %w: tensor<32xf32>) -> tensor<?x64xf32> {
  // expected-error @+1 {{input dimension 1 (64) does not match weight dimension 0 (32)}}
  %y = llm.rms_norm %x, %w {eps = 1.0e-05 : f32} : (tensor<?x64xf32>, tensor<32xf32>) -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}

// -----

// Tests that llm.rms_norm rejects a result type that differs from the input type.
func.func @rms_norm_result_type(%x: tensor<?x64xf32>, %w: tensor<64xf32>) -> tensor<4x64xf32> {
  // expected-error @+1 {{result type 'tensor<4x64xf32>' must equal the input type 'tensor<?x64xf32>'}}
  %y = llm.rms_norm %x, %w {eps = 1.0e-05 : f32} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<4x64xf32>
  return %y : tensor<4x64xf32>
}

// -----

// Tests that llm.rms_norm rejects a zero eps.
func.func @rms_norm_zero_eps(%x: tensor<?x64xf32>, %w: tensor<64xf32>) -> tensor<?x64xf32> {
  // expected-error @+1 {{attribute 'eps' failed to satisfy constraint: 32-bit float attribute whose value is positive and finite}}
  %y = llm.rms_norm %x, %w {eps = 0.0 : f32} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}

// -----

// Tests that llm.rms_norm rejects a negative eps.
func.func @rms_norm_negative_eps(%x: tensor<?x64xf32>, %w: tensor<64xf32>) -> tensor<?x64xf32> {
  // expected-error @+1 {{attribute 'eps' failed to satisfy constraint: 32-bit float attribute whose value is positive and finite}}
  %y = llm.rms_norm %x, %w {eps = -1.0e-05 : f32} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}

// -----

// Tests that llm.rms_norm rejects an infinite eps.
func.func @rms_norm_infinite_eps(%x: tensor<?x64xf32>, %w: tensor<64xf32>) -> tensor<?x64xf32> {
  // expected-error @+1 {{attribute 'eps' failed to satisfy constraint: 32-bit float attribute whose value is positive and finite}}
  %y = llm.rms_norm %x, %w {eps = 0x7F800000 : f32} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}

// -----

// Tests that llm.linear rejects an input that is not rank 2.
func.func @linear_input_rank(%x: tensor<64xf32>, %w: tensor<172x64xf32>) -> tensor<?x172xf32> {
  // expected-error @+1 {{input must be rank 2, got 'tensor<64xf32>'}}
  %y = llm.linear %x, %w : (tensor<64xf32>, tensor<172x64xf32>) -> tensor<?x172xf32>
  return %y : tensor<?x172xf32>
}

// -----

// Tests that llm.linear rejects a weight that is not rank 2.
func.func @linear_weight_rank(%x: tensor<?x64xf32>, %w: tensor<64xf32>) -> tensor<?x172xf32> {
  // expected-error @+1 {{weight must be rank 2, got 'tensor<64xf32>'}}
  %y = llm.linear %x, %w : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x172xf32>
  return %y : tensor<?x172xf32>
}

// -----

// Tests that llm.linear rejects a result that is not rank 2.
func.func @linear_result_rank(%x: tensor<?x64xf32>, %w: tensor<172x64xf32>) -> tensor<172xf32> {
  // expected-error @+1 {{result must be rank 2, got 'tensor<172xf32>'}}
  %y = llm.linear %x, %w : (tensor<?x64xf32>, tensor<172x64xf32>) -> tensor<172xf32>
  return %y : tensor<172xf32>
}

// -----

// Tests that llm.linear rejects mixed element types.
func.func @linear_element_type(%x: tensor<?x64xf32>, %w: tensor<172x64xbf16>) -> tensor<?x172xf32> {
  // expected-error @+1 {{operands and result must share one element type, got 'f32' and 'bf16'}}
  %y = llm.linear %x, %w : (tensor<?x64xf32>, tensor<172x64xbf16>) -> tensor<?x172xf32>
  return %y : tensor<?x172xf32>
}

// -----

// Tests that llm.linear rejects an input width that differs from the weight's in_features.
func.func @linear_in_features(%x: tensor<?x32xf32>, %w: tensor<172x64xf32>) -> tensor<?x172xf32> {
  // expected-error @+1 {{input dimension 1 (32) does not match weight dimension 1 (64)}}
  %y = llm.linear %x, %w : (tensor<?x32xf32>, tensor<172x64xf32>) -> tensor<?x172xf32>
  return %y : tensor<?x172xf32>
}

// -----

// Tests that llm.linear rejects a result width that differs from the weight's out_features.
func.func @linear_out_features(%x: tensor<?x64xf32>, %w: tensor<172x64xf32>) -> tensor<?x64xf32> {
  // expected-error @+1 {{result dimension 1 (64) does not match weight dimension 0 (172)}}
  %y = llm.linear %x, %w : (tensor<?x64xf32>, tensor<172x64xf32>) -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}

// -----

// Tests that llm.linear rejects a result row count that differs from the input's.
func.func @linear_rows(%x: tensor<4x64xf32>, %w: tensor<172x64xf32>) -> tensor<5x172xf32> {
  // expected-error @+1 {{result dimension 0 (5) does not match input dimension 0 (4)}}
  %y = llm.linear %x, %w : (tensor<4x64xf32>, tensor<172x64xf32>) -> tensor<5x172xf32>
  return %y : tensor<5x172xf32>
}

// -----

// Tests that llm.linear rejects a bias that is not rank 1.
func.func @linear_bias_rank(%x: tensor<?x64xf32>, %w: tensor<172x64xf32>, %b: tensor<1x172xf32>) -> tensor<?x172xf32> {
  // expected-error @+1 {{bias must be rank 1, got 'tensor<1x172xf32>'}}
  %y = llm.linear %x, %w, %b : (tensor<?x64xf32>, tensor<172x64xf32>, tensor<1x172xf32>) -> tensor<?x172xf32>
  return %y : tensor<?x172xf32>
}

// -----

// Tests that llm.linear rejects a bias whose element type differs from the input's.
func.func @linear_bias_element_type(%x: tensor<?x64xf32>, %w: tensor<172x64xf32>, %b: tensor<172xf16>) -> tensor<?x172xf32> {
  // expected-error @+1 {{operands and result must share one element type, got 'f32' and 'f16'}}
  %y = llm.linear %x, %w, %b : (tensor<?x64xf32>, tensor<172x64xf32>, tensor<172xf16>) -> tensor<?x172xf32>
  return %y : tensor<?x172xf32>
}

// -----

// Tests that llm.linear rejects a bias whose length differs from out_features.
func.func @linear_bias_width(%x: tensor<?x64xf32>, %w: tensor<172x64xf32>, %b: tensor<64xf32>) -> tensor<?x172xf32> {
  // expected-error @+1 {{bias dimension 0 (64) does not match weight dimension 0 (172)}}
  %y = llm.linear %x, %w, %b : (tensor<?x64xf32>, tensor<172x64xf32>, tensor<64xf32>) -> tensor<?x172xf32>
  return %y : tensor<?x172xf32>
}

// -----

// Tests that llm.rope rejects an input that is not rank 2.
func.func @rope_rank(%x: tensor<64xf32>) -> tensor<64xf32> {
  // expected-error @+1 {{input must be rank 2, got 'tensor<64xf32>'}}
  %r = llm.rope %x {num_heads = 8 : i64, head_dim = 8 : i64, theta = 1.0e+04 : f32,
                    layout = #llm.rope_layout<interleaved>} : tensor<64xf32>
  return %r : tensor<64xf32>
}

// -----

// Tests that llm.rope rejects an odd head_dim.
func.func @rope_odd_head_dim(%x: tensor<?x63xf32>) -> tensor<?x63xf32> {
  // expected-error @+1 {{head_dim must be even, got 7}}
  %r = llm.rope %x {num_heads = 9 : i64, head_dim = 7 : i64, theta = 1.0e+04 : f32,
                    layout = #llm.rope_layout<half>} : tensor<?x63xf32>
  return %r : tensor<?x63xf32>
}

// -----

// Tests that llm.rope rejects an input width other than num_heads * head_dim.
func.func @rope_width(%x: tensor<?x48xf32>) -> tensor<?x48xf32> {
  // expected-error @+1 {{input must have 64 features, got 48}}
  %r = llm.rope %x {num_heads = 8 : i64, head_dim = 8 : i64, theta = 1.0e+04 : f32,
                    layout = #llm.rope_layout<interleaved>} : tensor<?x48xf32>
  return %r : tensor<?x48xf32>
}

// -----

// Tests that llm.rope rejects a rotary_dim larger than head_dim.
func.func @rope_rotary_dim_too_big(%x: tensor<?x16xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{rotary_dim must be even and at most head_dim (8), got 10}}
  %r = llm.rope %x {num_heads = 2 : i64, head_dim = 8 : i64, theta = 1.0e+04 : f32,
                    layout = #llm.rope_layout<half>, rotary_dim = 10 : i64} : tensor<?x16xf32>
  return %r : tensor<?x16xf32>
}

// -----

// Tests that llm.rope rejects a partial rotary_dim with the interleaved layout.
func.func @rope_partial_interleaved(%x: tensor<?x16xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{a partial rotary_dim needs the half layout}}
  %r = llm.rope %x {num_heads = 2 : i64, head_dim = 8 : i64, theta = 1.0e+04 : f32,
                    layout = #llm.rope_layout<interleaved>, rotary_dim = 4 : i64} : tensor<?x16xf32>
  return %r : tensor<?x16xf32>
}

// -----

// Tests that llm.rope rejects inv_freq of the wrong length.
func.func @rope_inv_freq_length(%x: tensor<?x16xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{inv_freq must hold rotary_dim / 2 = 4 values, got 2}}
  %r = llm.rope %x {num_heads = 2 : i64, head_dim = 8 : i64, theta = 1.0e+04 : f32,
                    layout = #llm.rope_layout<half>, inv_freq = array<f32: 0.5, 0.25>} : tensor<?x16xf32>
  return %r : tensor<?x16xf32>
}

// -----

// Tests that llm.rope rejects non-positive frequencies.
func.func @rope_inv_freq_negative(%x: tensor<?x16xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{inv_freq values must be positive and finite}}
  %r = llm.rope %x {num_heads = 2 : i64, head_dim = 8 : i64, theta = 1.0e+04 : f32,
                    layout = #llm.rope_layout<half>, rotary_dim = 4 : i64,
                    inv_freq = array<f32: 0.5, -0.25>} : tensor<?x16xf32>
  return %r : tensor<?x16xf32>
}

// -----

// Tests that llm.rope rejects a non-positive num_heads.
func.func @rope_zero_heads(%x: tensor<?x64xf32>) -> tensor<?x64xf32> {
  // expected-error @+1 {{attribute 'num_heads' failed to satisfy constraint: 64-bit signless integer attribute whose value is positive}}
  %r = llm.rope %x {num_heads = 0 : i64, head_dim = 8 : i64, theta = 1.0e+04 : f32,
                    layout = #llm.rope_layout<interleaved>} : tensor<?x64xf32>
  return %r : tensor<?x64xf32>
}

// -----

// Tests that llm.rope rejects a non-positive theta.
func.func @rope_negative_theta(%x: tensor<?x64xf32>) -> tensor<?x64xf32> {
  // expected-error @+1 {{attribute 'theta' failed to satisfy constraint: 32-bit float attribute whose value is positive and finite}}
  %r = llm.rope %x {num_heads = 8 : i64, head_dim = 8 : i64, theta = -1.0e+04 : f32,
                    layout = #llm.rope_layout<interleaved>} : tensor<?x64xf32>
  return %r : tensor<?x64xf32>
}

// -----

// Tests that llm.rope requires the result type to equal the input type.
func.func @rope_result_type(%x: tensor<?x64xf32>) -> tensor<?x64xf16> {
  // expected-error @+1 {{failed to verify that all of {x, result} have same type}}
  %r = "llm.rope"(%x) {num_heads = 8 : i64, head_dim = 8 : i64, theta = 1.0e+04 : f32,
                       layout = #llm.rope_layout<interleaved>} : (tensor<?x64xf32>) -> tensor<?x64xf16>
  return %r : tensor<?x64xf16>
}

// -----

// Tests that llm.attention rejects a q that is not rank 2.
func.func @attention_q_rank(%q: tensor<64xf32>, %k: tensor<?x32xf32>, %v: tensor<?x32xf32>) -> tensor<?x64xf32> {
  // expected-error @+1 {{q must be rank 2, got 'tensor<64xf32>'}}
  %o = llm.attention %q, %k, %v {num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64,
                                 scale = 0.353553385 : f32, causal = true}
      : (tensor<64xf32>, tensor<?x32xf32>, tensor<?x32xf32>) -> tensor<?x64xf32>
  return %o : tensor<?x64xf32>
}

// -----

// Tests that llm.attention rejects a k that is not rank 2.
func.func @attention_k_rank(%q: tensor<?x64xf32>, %k: tensor<32xf32>, %v: tensor<?x32xf32>) -> tensor<?x64xf32> {
  // expected-error @+1 {{k must be rank 2, got 'tensor<32xf32>'}}
  %o = llm.attention %q, %k, %v {num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64,
                                 scale = 0.353553385 : f32, causal = true}
      : (tensor<?x64xf32>, tensor<32xf32>, tensor<?x32xf32>) -> tensor<?x64xf32>
  return %o : tensor<?x64xf32>
}

// -----

// Tests that llm.attention rejects a v that is not rank 2.
func.func @attention_v_rank(%q: tensor<?x64xf32>, %k: tensor<?x32xf32>, %v: tensor<1x?x32xf32>) -> tensor<?x64xf32> {
  // expected-error @+1 {{v must be rank 2, got 'tensor<1x?x32xf32>'}}
  %o = llm.attention %q, %k, %v {num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64,
                                 scale = 0.353553385 : f32, causal = true}
      : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<1x?x32xf32>) -> tensor<?x64xf32>
  return %o : tensor<?x64xf32>
}

// -----

// Tests that llm.attention rejects a result that is not rank 2.
func.func @attention_result_rank(%q: tensor<?x64xf32>, %k: tensor<?x32xf32>, %v: tensor<?x32xf32>) -> tensor<?x8x8xf32> {
  // expected-error @+1 {{result must be rank 2, got 'tensor<?x8x8xf32>'}}
  %o = llm.attention %q, %k, %v {num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64,
                                 scale = 0.353553385 : f32, causal = true}
      : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>) -> tensor<?x8x8xf32>
  return %o : tensor<?x8x8xf32>
}

// -----

// Tests that llm.attention rejects mixed element types.
func.func @attention_element_type(%q: tensor<?x64xf32>, %k: tensor<?x32xf32>, %v: tensor<?x32xf16>) -> tensor<?x64xf32> {
  // expected-error @+1 {{operands and result must share one element type, got 'f32' and 'f16'}}
  %o = llm.attention %q, %k, %v {num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64,
                                 scale = 0.353553385 : f32, causal = true}
      : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf16>) -> tensor<?x64xf32>
  return %o : tensor<?x64xf32>
}

// -----

// Tests that llm.attention rejects num_heads that is not a multiple of num_kv_heads.
func.func @attention_gqa_ratio(%q: tensor<?x64xf32>, %k: tensor<?x24xf32>, %v: tensor<?x24xf32>) -> tensor<?x64xf32> {
  // expected-error @+1 {{num_heads (8) must be a multiple of num_kv_heads (3)}}
  %o = llm.attention %q, %k, %v {num_heads = 8 : i64, num_kv_heads = 3 : i64, head_dim = 8 : i64,
                                 scale = 0.353553385 : f32, causal = true}
      : (tensor<?x64xf32>, tensor<?x24xf32>, tensor<?x24xf32>) -> tensor<?x64xf32>
  return %o : tensor<?x64xf32>
}

// -----

// Tests that llm.attention rejects a q width other than num_heads * head_dim.
func.func @attention_q_width(%q: tensor<?x48xf32>, %k: tensor<?x32xf32>, %v: tensor<?x32xf32>) -> tensor<?x64xf32> {
  // expected-error @+1 {{q must have 64 features, got 48}}
  %o = llm.attention %q, %k, %v {num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64,
                                 scale = 0.353553385 : f32, causal = true}
      : (tensor<?x48xf32>, tensor<?x32xf32>, tensor<?x32xf32>) -> tensor<?x64xf32>
  return %o : tensor<?x64xf32>
}

// -----

// Tests that llm.attention rejects a k width other than num_kv_heads * head_dim.
func.func @attention_k_width(%q: tensor<?x64xf32>, %k: tensor<?x64xf32>, %v: tensor<?x32xf32>) -> tensor<?x64xf32> {
  // expected-error @+1 {{k must have 32 features, got 64}}
  %o = llm.attention %q, %k, %v {num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64,
                                 scale = 0.353553385 : f32, causal = true}
      : (tensor<?x64xf32>, tensor<?x64xf32>, tensor<?x32xf32>) -> tensor<?x64xf32>
  return %o : tensor<?x64xf32>
}

// -----

// Tests that llm.attention rejects a v width other than num_kv_heads * head_dim.
func.func @attention_v_width(%q: tensor<?x64xf32>, %k: tensor<?x32xf32>, %v: tensor<?x16xf32>) -> tensor<?x64xf32> {
  // expected-error @+1 {{v must have 32 features, got 16}}
  %o = llm.attention %q, %k, %v {num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64,
                                 scale = 0.353553385 : f32, causal = true}
      : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x16xf32>) -> tensor<?x64xf32>
  return %o : tensor<?x64xf32>
}

// -----

// Tests that llm.attention rejects a result width other than num_heads * head_dim.
func.func @attention_result_width(%q: tensor<?x64xf32>, %k: tensor<?x32xf32>, %v: tensor<?x32xf32>) -> tensor<?x32xf32> {
  // expected-error @+1 {{result must have 64 features, got 32}}
  %o = llm.attention %q, %k, %v {num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64,
                                 scale = 0.353553385 : f32, causal = true}
      : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>) -> tensor<?x32xf32>
  return %o : tensor<?x32xf32>
}

// -----

// Tests that llm.attention rejects k with a different token count than q.
func.func @attention_k_rows(%q: tensor<4x64xf32>, %k: tensor<5x32xf32>, %v: tensor<4x32xf32>) -> tensor<4x64xf32> {
  // expected-error @+1 {{k dimension 0 (5) does not match q dimension 0 (4)}}
  %o = llm.attention %q, %k, %v {num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64,
                                 scale = 0.353553385 : f32, causal = true}
      : (tensor<4x64xf32>, tensor<5x32xf32>, tensor<4x32xf32>) -> tensor<4x64xf32>
  return %o : tensor<4x64xf32>
}

// -----

// Tests that llm.attention rejects v with a different token count than q.
func.func @attention_v_rows(%q: tensor<4x64xf32>, %k: tensor<4x32xf32>, %v: tensor<3x32xf32>) -> tensor<4x64xf32> {
  // expected-error @+1 {{v dimension 0 (3) does not match q dimension 0 (4)}}
  %o = llm.attention %q, %k, %v {num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64,
                                 scale = 0.353553385 : f32, causal = true}
      : (tensor<4x64xf32>, tensor<4x32xf32>, tensor<3x32xf32>) -> tensor<4x64xf32>
  return %o : tensor<4x64xf32>
}

// -----

// Tests that llm.attention rejects a result with a different token count than q.
func.func @attention_result_rows(%q: tensor<4x64xf32>, %k: tensor<4x32xf32>, %v: tensor<4x32xf32>) -> tensor<2x64xf32> {
  // expected-error @+1 {{result dimension 0 (2) does not match q dimension 0 (4)}}
  %o = llm.attention %q, %k, %v {num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64,
                                 scale = 0.353553385 : f32, causal = true}
      : (tensor<4x64xf32>, tensor<4x32xf32>, tensor<4x32xf32>) -> tensor<2x64xf32>
  return %o : tensor<2x64xf32>
}

// -----

// Tests that llm.attention rejects a zero scale.
func.func @attention_zero_scale(%q: tensor<?x64xf32>, %k: tensor<?x32xf32>, %v: tensor<?x32xf32>) -> tensor<?x64xf32> {
  // expected-error @+1 {{attribute 'scale' failed to satisfy constraint: 32-bit float attribute whose value is positive and finite}}
  %o = llm.attention %q, %k, %v {num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64,
                                 scale = 0.0 : f32, causal = true}
      : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>) -> tensor<?x64xf32>
  return %o : tensor<?x64xf32>
}

// -----

// Tests that llm.attention rejects a non-positive num_kv_heads.
func.func @attention_negative_kv_heads(%q: tensor<?x64xf32>, %k: tensor<?x32xf32>, %v: tensor<?x32xf32>) -> tensor<?x64xf32> {
  // expected-error @+1 {{attribute 'num_kv_heads' failed to satisfy constraint: 64-bit signless integer attribute whose value is positive}}
  %o = llm.attention %q, %k, %v {num_heads = 8 : i64, num_kv_heads = -4 : i64, head_dim = 8 : i64,
                                 scale = 0.353553385 : f32, causal = true}
      : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>) -> tensor<?x64xf32>
  return %o : tensor<?x64xf32>
}

// -----

// Tests that llm.silu_mul requires its operands and result to have one type.
func.func @silu_mul_types(%g: tensor<?x172xf32>, %u: tensor<?x64xf32>) -> tensor<?x172xf32> {
  // expected-error @+1 {{failed to verify that all of {gate, up, result} have same type}}
  %h = "llm.silu_mul"(%g, %u) : (tensor<?x172xf32>, tensor<?x64xf32>) -> tensor<?x172xf32>
  return %h : tensor<?x172xf32>
}

// -----

// Tests that llm.add requires its operands and result to have one type.
func.func @add_types(%a: tensor<?x64xf32>, %b: tensor<?x64xf16>) -> tensor<?x64xf32> {
  // expected-error @+1 {{failed to verify that all of {lhs, rhs, result} have same type}}
  %s = "llm.add"(%a, %b) : (tensor<?x64xf32>, tensor<?x64xf16>) -> tensor<?x64xf32>
  return %s : tensor<?x64xf32>
}

// -----

// Tests that llm.logits rejects an input that is not rank 2.
func.func @logits_input_rank(%h: tensor<64xf32>, %e: tensor<512x64xf32>) -> tensor<?x512xf32> {
  // expected-error @+1 {{input must be rank 2, got 'tensor<64xf32>'}}
  %l = llm.logits %h, %e : (tensor<64xf32>, tensor<512x64xf32>) -> tensor<?x512xf32>
  return %l : tensor<?x512xf32>
}

// -----

// Tests that llm.logits rejects a weight that is not rank 2.
func.func @logits_weight_rank(%h: tensor<?x64xf32>, %e: tensor<64xf32>) -> tensor<?x512xf32> {
  // expected-error @+1 {{weight must be rank 2, got 'tensor<64xf32>'}}
  %l = llm.logits %h, %e : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x512xf32>
  return %l : tensor<?x512xf32>
}

// -----

// Tests that llm.logits rejects a result that is not rank 2.
func.func @logits_result_rank(%h: tensor<?x64xf32>, %e: tensor<512x64xf32>) -> tensor<512xf32> {
  // expected-error @+1 {{result must be rank 2, got 'tensor<512xf32>'}}
  %l = llm.logits %h, %e : (tensor<?x64xf32>, tensor<512x64xf32>) -> tensor<512xf32>
  return %l : tensor<512xf32>
}

// -----

// Tests that llm.logits rejects mixed element types.
func.func @logits_element_type(%h: tensor<?x64xf16>, %e: tensor<512x64xf32>) -> tensor<?x512xf32> {
  // expected-error @+1 {{operands and result must share one element type, got 'f16' and 'f32'}}
  %l = llm.logits %h, %e : (tensor<?x64xf16>, tensor<512x64xf32>) -> tensor<?x512xf32>
  return %l : tensor<?x512xf32>
}

// -----

// Tests that llm.logits rejects an input width that differs from the weight's.
func.func @logits_width(%h: tensor<?x32xf32>, %e: tensor<512x64xf32>) -> tensor<?x512xf32> {
  // expected-error @+1 {{input dimension 1 (32) does not match weight dimension 1 (64)}}
  %l = llm.logits %h, %e : (tensor<?x32xf32>, tensor<512x64xf32>) -> tensor<?x512xf32>
  return %l : tensor<?x512xf32>
}

// -----

// Tests that llm.logits rejects a result width that differs from the vocabulary size.
func.func @logits_vocab(%h: tensor<?x64xf32>, %e: tensor<512x64xf32>) -> tensor<?x256xf32> {
  // expected-error @+1 {{result dimension 1 (256) does not match weight dimension 0 (512)}}
  %l = llm.logits %h, %e : (tensor<?x64xf32>, tensor<512x64xf32>) -> tensor<?x256xf32>
  return %l : tensor<?x256xf32>
}

// -----

// Tests that llm.logits rejects a result row count that differs from the input's.
func.func @logits_rows(%h: tensor<4x64xf32>, %e: tensor<512x64xf32>) -> tensor<3x512xf32> {
  // expected-error @+1 {{result dimension 0 (3) does not match input dimension 0 (4)}}
  %l = llm.logits %h, %e : (tensor<4x64xf32>, tensor<512x64xf32>) -> tensor<3x512xf32>
  return %l : tensor<3x512xf32>
}

// -----

// Tests that llm.kv_cache_write rejects a layer outside the cache.
func.func @kv_write_layer(%c: tensor<2x2x?x8xf32>, %k: tensor<?x16xf32>, %p: index) -> tensor<2x2x?x8xf32> {
  // expected-error @+1 {{layer 2 is out of range for a cache of 2 layers}}
  %0 = llm.kv_cache_write %c, %k, %p {layer = 2 : i64} : (tensor<2x2x?x8xf32>, tensor<?x16xf32>) -> tensor<2x2x?x8xf32>
  return %0 : tensor<2x2x?x8xf32>
}

// -----

// Tests that llm.kv_cache_write rejects rows of the wrong width.
func.func @kv_write_width(%c: tensor<2x2x?x8xf32>, %k: tensor<?x12xf32>, %p: index) -> tensor<2x2x?x8xf32> {
  // expected-error @+1 {{rows must have 16 features, got 12}}
  %0 = llm.kv_cache_write %c, %k, %p {layer = 0 : i64} : (tensor<2x2x?x8xf32>, tensor<?x12xf32>) -> tensor<2x2x?x8xf32>
  return %0 : tensor<2x2x?x8xf32>
}

// -----

// Tests that llm.kv_cache_write needs static head dimensions in the cache.
func.func @kv_write_dynamic_heads(%c: tensor<2x?x?x8xf32>, %k: tensor<?x16xf32>, %p: index) -> tensor<2x?x?x8xf32> {
  // expected-error @+1 {{cache dimensions 1 (key/value heads) and 3 (head dimension) must be static, got 'tensor<2x?x?x8xf32>'}}
  %0 = llm.kv_cache_write %c, %k, %p {layer = 0 : i64} : (tensor<2x?x?x8xf32>, tensor<?x16xf32>) -> tensor<2x?x?x8xf32>
  return %0 : tensor<2x?x?x8xf32>
}

// -----

// Tests that llm.kv_cache_write rejects a cache that is not rank 4.
func.func @kv_write_rank(%c: tensor<2x?x8xf32>, %k: tensor<?x16xf32>, %p: index) -> tensor<2x?x8xf32> {
  // expected-error @+1 {{operand #0 must be 4D tensor of floating-point values}}
  %0 = llm.kv_cache_write %c, %k, %p {layer = 0 : i64} : (tensor<2x?x8xf32>, tensor<?x16xf32>) -> tensor<2x?x8xf32>
  return %0 : tensor<2x?x8xf32>
}

// -----

// Tests that llm.kv_cache_write rejects rows of another element type.
func.func @kv_write_type(%c: tensor<2x2x?x8xf32>, %k: tensor<?x16xf16>, %p: index) -> tensor<2x2x?x8xf32> {
  // expected-error @+1 {{operands and result must share one element type, got 'f32' and 'f16'}}
  %0 = llm.kv_cache_write %c, %k, %p {layer = 0 : i64} : (tensor<2x2x?x8xf32>, tensor<?x16xf16>) -> tensor<2x2x?x8xf32>
  return %0 : tensor<2x2x?x8xf32>
}

// -----

// Tests that llm.kv_cache_attention rejects a cache whose head count is not
// num_kv_heads.
func.func @kv_attention_heads(%q: tensor<?x64xf32>, %c: tensor<2x4x?x8xf32>, %p: index) -> tensor<?x64xf32> {
  // expected-error @+1 {{key cache dimension 1 (4) must be the number of key/value heads (2)}}
  %o = llm.kv_cache_attention %q, %c, %c, %p {layer = 0 : i64, num_heads = 8 : i64,
          num_kv_heads = 2 : i64, head_dim = 8 : i64, scale = 0.35 : f32}
      : (tensor<?x64xf32>, tensor<2x4x?x8xf32>, tensor<2x4x?x8xf32>) -> tensor<?x64xf32>
  return %o : tensor<?x64xf32>
}

// -----

// Tests that llm.kv_cache_attention rejects a cache of another head size.
func.func @kv_attention_head_dim(%q: tensor<?x64xf32>, %c: tensor<2x2x?x4xf32>, %p: index) -> tensor<?x64xf32> {
  // expected-error @+1 {{key cache dimension 3 (4) must be the head dimension (8)}}
  %o = llm.kv_cache_attention %q, %c, %c, %p {layer = 0 : i64, num_heads = 8 : i64,
          num_kv_heads = 2 : i64, head_dim = 8 : i64, scale = 0.35 : f32}
      : (tensor<?x64xf32>, tensor<2x2x?x4xf32>, tensor<2x2x?x4xf32>) -> tensor<?x64xf32>
  return %o : tensor<?x64xf32>
}

// -----

// Tests that llm.kv_cache_attention rejects key and value caches of
// different types.
func.func @kv_attention_mismatch(%q: tensor<?x64xf32>, %k: tensor<2x2x?x8xf32>, %v: tensor<2x2x16x8xf32>, %p: index) -> tensor<?x64xf32> {
  // expected-error @+1 {{key and value caches must have one type, got 'tensor<2x2x?x8xf32>' and 'tensor<2x2x16x8xf32>'}}
  %o = llm.kv_cache_attention %q, %k, %v, %p {layer = 0 : i64, num_heads = 8 : i64,
          num_kv_heads = 2 : i64, head_dim = 8 : i64, scale = 0.35 : f32}
      : (tensor<?x64xf32>, tensor<2x2x?x8xf32>, tensor<2x2x16x8xf32>) -> tensor<?x64xf32>
  return %o : tensor<?x64xf32>
}

// -----

// Tests that llm.kv_cache_attention rejects a layer outside the cache.
func.func @kv_attention_layer(%q: tensor<?x64xf32>, %c: tensor<2x2x?x8xf32>, %p: index) -> tensor<?x64xf32> {
  // expected-error @+1 {{layer 5 is out of range for a key cache of 2 layers}}
  %o = llm.kv_cache_attention %q, %c, %c, %p {layer = 5 : i64, num_heads = 8 : i64,
          num_kv_heads = 2 : i64, head_dim = 8 : i64, scale = 0.35 : f32}
      : (tensor<?x64xf32>, tensor<2x2x?x8xf32>, tensor<2x2x?x8xf32>) -> tensor<?x64xf32>
  return %o : tensor<?x64xf32>
}

// -----

// Tests that llm.kv_cache_attention rejects q of the wrong width.
func.func @kv_attention_q(%q: tensor<?x48xf32>, %c: tensor<2x2x?x8xf32>, %p: index) -> tensor<?x48xf32> {
  // expected-error @+1 {{q must have 64 features, got 48}}
  %o = llm.kv_cache_attention %q, %c, %c, %p {layer = 0 : i64, num_heads = 8 : i64,
          num_kv_heads = 2 : i64, head_dim = 8 : i64, scale = 0.35 : f32}
      : (tensor<?x48xf32>, tensor<2x2x?x8xf32>, tensor<2x2x?x8xf32>) -> tensor<?x48xf32>
  return %o : tensor<?x48xf32>
}

// -----

// Tests that llm.kv_cache_attention rejects heads that do not group.
func.func @kv_attention_group(%q: tensor<?x24xf32>, %c: tensor<2x2x?x8xf32>, %p: index) -> tensor<?x24xf32> {
  // expected-error @+1 {{num_heads (3) must be a multiple of num_kv_heads (2)}}
  %o = llm.kv_cache_attention %q, %c, %c, %p {layer = 0 : i64, num_heads = 3 : i64,
          num_kv_heads = 2 : i64, head_dim = 8 : i64, scale = 0.35 : f32}
      : (tensor<?x24xf32>, tensor<2x2x?x8xf32>, tensor<2x2x?x8xf32>) -> tensor<?x24xf32>
  return %o : tensor<?x24xf32>
}
