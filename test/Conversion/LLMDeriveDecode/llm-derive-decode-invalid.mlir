// RUN: quant-opt %s -split-input-file -llm-derive-decode -verify-diagnostics

// Tests that a module without the forward function is reported.

// expected-error @+1 {{llm-derive-decode: no function named 'forward'}}
module {
  func.func @other() {
    return
  }
}

// -----

// Tests that an existing symbol of the decode function's name is reported.

// expected-error @+1 {{llm-derive-decode: the module already has a symbol named 'decode'}}
module {
  func.func @forward(%tok: tensor<?xi32>) -> tensor<?x16xf32> {
    %l = llm.param "l" : tensor<4x16xf32>
    %c = tensor.cast %l : tensor<4x16xf32> to tensor<?x16xf32>
    return %c : tensor<?x16xf32>
  }
  func.func @decode() {
    return
  }
}

// -----

// Tests that a forward function of another signature is reported.

// expected-error @+1 {{llm-derive-decode: 'forward' must map tokens tensor<?xi32> to logits tensor<?xVxf..>}}
func.func @forward(%tok: tensor<?xi64>) -> tensor<?x16xf32> {
  %l = llm.param "l" : tensor<4x16xf32>
  %c = tensor.cast %l : tensor<4x16xf32> to tensor<?x16xf32>
  return %c : tensor<?x16xf32>
}

// -----

// Tests that a function without attention is reported: there is nothing
// to cache.

// expected-error @+1 {{llm-derive-decode: 'forward' has no llm.attention to cache}}
func.func @forward(%tok: tensor<?xi32>) -> tensor<?x16xf32> {
  %e = llm.param "emb" : tensor<16x8xf32>
  %x = llm.embedding %e, %tok : (tensor<16x8xf32>, tensor<?xi32>) -> tensor<?x8xf32>
  %l = llm.logits %x, %e : (tensor<?x8xf32>, tensor<16x8xf32>) -> tensor<?x16xf32>
  return %l : tensor<?x16xf32>
}

// -----

// Tests that a non-causal attention is reported.

func.func @forward(%tok: tensor<?xi32>) -> tensor<?x16xf32> {
  %e = llm.param "emb" : tensor<16x8xf32>
  %x = llm.embedding %e, %tok : (tensor<16x8xf32>, tensor<?xi32>) -> tensor<?x8xf32>
  // expected-error @+1 {{cannot be decoded with a KV cache: it is not causal}}
  %a = llm.attention %x, %x, %x {num_heads = 2 : i64, num_kv_heads = 2 : i64, head_dim = 4 : i64, scale = 0.5 : f32, causal = false}
      : (tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x8xf32>
  %l = llm.logits %a, %e : (tensor<?x8xf32>, tensor<16x8xf32>) -> tensor<?x16xf32>
  return %l : tensor<?x16xf32>
}

// -----

// Tests that attention layers of different key/value shapes are reported.

func.func @forward(%tok: tensor<?xi32>) -> tensor<?x16xf32> {
  %e = llm.param "emb" : tensor<16x8xf32>
  %x = llm.embedding %e, %tok : (tensor<16x8xf32>, tensor<?xi32>) -> tensor<?x8xf32>
  %a = llm.attention %x, %x, %x {num_heads = 2 : i64, num_kv_heads = 2 : i64, head_dim = 4 : i64, scale = 0.5 : f32, causal = true}
      : (tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x8xf32>
  // expected-error @+1 {{has a key/value shape different from the first attention layer's}}
  %b = llm.attention %a, %a, %a {num_heads = 4 : i64, num_kv_heads = 4 : i64, head_dim = 2 : i64, scale = 0.5 : f32, causal = true}
      : (tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x8xf32>
  %l = llm.logits %b, %e : (tensor<?x8xf32>, tensor<16x8xf32>) -> tensor<?x16xf32>
  return %l : tensor<?x16xf32>
}

// -----

// Tests that an op not known to act on each position independently is
// reported rather than cloned into a function where it would be wrong.

func.func @forward(%tok: tensor<?xi32>) -> tensor<?x16xf32> {
  %e = llm.param "emb" : tensor<16x8xf32>
  %x = llm.embedding %e, %tok : (tensor<16x8xf32>, tensor<?xi32>) -> tensor<?x8xf32>
  %a = llm.attention %x, %x, %x {num_heads = 2 : i64, num_kv_heads = 2 : i64, head_dim = 4 : i64, scale = 0.5 : f32, causal = true}
      : (tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x8xf32>
  %c0 = arith.constant 0 : index
  // expected-error @+1 {{cannot be decoded with a KV cache: llm-derive-decode only knows that llm, wq and arith ops act on each position independently}}
  %r = tensor.extract_slice %a[0, 0] [1, 8] [1, 1] : tensor<?x8xf32> to tensor<1x8xf32>
  %l = llm.logits %r, %e : (tensor<1x8xf32>, tensor<16x8xf32>) -> tensor<1x16xf32>
  %d = tensor.cast %l : tensor<1x16xf32> to tensor<?x16xf32>
  return %d : tensor<?x16xf32>
}

// -----

// Tests that a rope that already has an offset is reported.

func.func @forward(%tok: tensor<?xi32>) -> tensor<?x16xf32> {
  %e = llm.param "emb" : tensor<16x8xf32>
  %x = llm.embedding %e, %tok : (tensor<16x8xf32>, tensor<?xi32>) -> tensor<?x8xf32>
  %c3 = arith.constant 3 : index
  // expected-error @+1 {{already has a position offset; derive the decode function from the full-window one}}
  %r = llm.rope %x offset %c3 {num_heads = 2 : i64, head_dim = 4 : i64, theta = 1.0e+04 : f32, layout = #llm.rope_layout<half>} : tensor<?x8xf32>
  %a = llm.attention %r, %r, %r {num_heads = 2 : i64, num_kv_heads = 2 : i64, head_dim = 4 : i64, scale = 0.5 : f32, causal = true}
      : (tensor<?x8xf32>, tensor<?x8xf32>, tensor<?x8xf32>) -> tensor<?x8xf32>
  %l = llm.logits %a, %e : (tensor<?x8xf32>, tensor<16x8xf32>) -> tensor<?x16xf32>
  return %l : tensor<?x16xf32>
}
