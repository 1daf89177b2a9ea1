// RUN: quant-opt %s -convert-llm-to-linalg -split-input-file -verify-diagnostics

// Tests that an f16 llm.embedding is reported instead of being half-lowered.
func.func @embedding_f16(%table: tensor<512x64xf16>, %tokens: tensor<?xi32>) -> tensor<?x64xf16> {
  // expected-error @+1 {{'llm.embedding' op cannot be lowered to linalg: only f32 tensors are supported by the CPU lowering}}
  %x = llm.embedding %table, %tokens : (tensor<512x64xf16>, tensor<?xi32>) -> tensor<?x64xf16>
  return %x : tensor<?x64xf16>
}

// -----

// Tests that a bf16 llm.rms_norm is reported.
func.func @rms_norm_bf16(%x: tensor<?x64xbf16>, %w: tensor<64xbf16>) -> tensor<?x64xbf16> {
  // expected-error @+1 {{'llm.rms_norm' op cannot be lowered to linalg}}
  %y = llm.rms_norm %x, %w {eps = 1.0e-05 : f32} : (tensor<?x64xbf16>, tensor<64xbf16>) -> tensor<?x64xbf16>
  return %y : tensor<?x64xbf16>
}

// -----

// Tests that an f16 llm.linear with a bias is reported.
func.func @linear_f16(%x: tensor<?x64xf16>, %w: tensor<172x64xf16>, %b: tensor<172xf16>) -> tensor<?x172xf16> {
  // expected-error @+1 {{'llm.linear' op cannot be lowered to linalg}}
  %y = llm.linear %x, %w, %b : (tensor<?x64xf16>, tensor<172x64xf16>, tensor<172xf16>) -> tensor<?x172xf16>
  return %y : tensor<?x172xf16>
}

// -----

// Tests that an f16 llm.rope is reported.
func.func @rope_f16(%q: tensor<?x64xf16>) -> tensor<?x64xf16> {
  // expected-error @+1 {{'llm.rope' op cannot be lowered to linalg}}
  %r = llm.rope %q {num_heads = 8 : i64, head_dim = 8 : i64, theta = 1.0e+04 : f32,
                    layout = #llm.rope_layout<interleaved>} : tensor<?x64xf16>
  return %r : tensor<?x64xf16>
}

// -----

// Tests that an f16 llm.attention is reported.
func.func @attention_f16(%q: tensor<?x64xf16>, %k: tensor<?x32xf16>, %v: tensor<?x32xf16>) -> tensor<?x64xf16> {
  // expected-error @+1 {{'llm.attention' op cannot be lowered to linalg}}
  %o = llm.attention %q, %k, %v {num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64,
                                 scale = 0.353553385 : f32, causal = true}
      : (tensor<?x64xf16>, tensor<?x32xf16>, tensor<?x32xf16>) -> tensor<?x64xf16>
  return %o : tensor<?x64xf16>
}

// -----

// Tests that an f16 llm.silu_mul is reported.
func.func @silu_mul_f16(%g: tensor<?x172xf16>, %u: tensor<?x172xf16>) -> tensor<?x172xf16> {
  // expected-error @+1 {{'llm.silu_mul' op cannot be lowered to linalg}}
  %h = llm.silu_mul %g, %u : tensor<?x172xf16>
  return %h : tensor<?x172xf16>
}

// -----

// Tests that an f16 llm.add is reported.
func.func @add_f16(%a: tensor<?x64xf16>, %b: tensor<?x64xf16>) -> tensor<?x64xf16> {
  // expected-error @+1 {{'llm.add' op cannot be lowered to linalg}}
  %s = llm.add %a, %b : tensor<?x64xf16>
  return %s : tensor<?x64xf16>
}

// -----

// Tests that an f16 llm.logits is reported.
func.func @logits_f16(%h: tensor<?x64xf16>, %emb: tensor<512x64xf16>) -> tensor<?x512xf16> {
  // expected-error @+1 {{'llm.logits' op cannot be lowered to linalg}}
  %l = llm.logits %h, %emb : (tensor<?x64xf16>, tensor<512x64xf16>) -> tensor<?x512xf16>
  return %l : tensor<?x512xf16>
}

// -----

// Tests that only the f16 op is reported when it sits among f32 ops that lower, and that an f16 llm.param is not an error.
func.func @mixed(%x: tensor<?x64xf32>, %y: tensor<?x64xf32>, %a: tensor<4x64xf16>) -> (tensor<?x64xf32>, tensor<4x64xf16>) {
  %s = llm.add %x, %y : tensor<?x64xf32>
  %p = llm.param "model.norm.weight" : tensor<4x64xf16>
  // expected-error @+1 {{'llm.add' op cannot be lowered to linalg}}
  %t = llm.add %a, %p : tensor<4x64xf16>
  return %s, %t : tensor<?x64xf32>, tensor<4x64xf16>
}
