// RUN: quant-opt %s -qc-lower-to-cpu | FileCheck %s
// RUN: quant-opt %s -qc-lower-to-cpu | mlir-translate --mlir-to-llvmir | FileCheck %s --check-prefix=LLVMIR

// Tests that a small but complete decoder (every llm op) lowers all the way
// to the LLVM dialect with the C-interface entry point the JIT calls, and
// that the result translates to LLVM IR.

// CHECK-NOT: llm.
// CHECK-NOT: linalg.
// CHECK-NOT: memref.
// CHECK-NOT: scf.
// CHECK-LABEL: llvm.func @forward
// CHECK-LABEL: llvm.func @_mlir_ciface_forward
// LLVMIR: define void @_mlir_ciface_forward(ptr

func.func @forward(%tok: tensor<?xi32>) -> tensor<?x16xf32> {
  %e = llm.param "model.embed_tokens.weight" : tensor<16x8xf32>
  %x = llm.embedding %e, %tok : (tensor<16x8xf32>, tensor<?xi32>) -> tensor<?x8xf32>
  %nw = llm.param "model.layers.0.input_layernorm.weight" : tensor<8xf32>
  %h = llm.rms_norm %x, %nw {eps = 1.0e-05 : f32} : (tensor<?x8xf32>, tensor<8xf32>) -> tensor<?x8xf32>
  %wq = llm.param "q" : tensor<8x8xf32>
  %wk = llm.param "k" : tensor<4x8xf32>
  %bk = llm.param "kb" : tensor<4xf32>
  %q = llm.linear %h, %wq : (tensor<?x8xf32>, tensor<8x8xf32>) -> tensor<?x8xf32>
  %k = llm.linear %h, %wk, %bk : (tensor<?x8xf32>, tensor<4x8xf32>, tensor<4xf32>) -> tensor<?x4xf32>
  %qr = llm.rope %q {num_heads = 2 : i64, head_dim = 4 : i64, theta = 1.0e+04 : f32, layout = #llm.rope_layout<interleaved>} : tensor<?x8xf32>
  %kr = llm.rope %k {num_heads = 1 : i64, head_dim = 4 : i64, theta = 1.0e+04 : f32, layout = #llm.rope_layout<half>} : tensor<?x4xf32>
  %o = llm.attention %qr, %kr, %k {num_heads = 2 : i64, num_kv_heads = 1 : i64, head_dim = 4 : i64, scale = 0.5 : f32, causal = true} : (tensor<?x8xf32>, tensor<?x4xf32>, tensor<?x4xf32>) -> tensor<?x8xf32>
  %s = llm.add %o, %x : tensor<?x8xf32>
  %g = llm.silu_mul %s, %x : tensor<?x8xf32>
  %l = llm.logits %g, %e : (tensor<?x8xf32>, tensor<16x8xf32>) -> tensor<?x16xf32>
  return %l : tensor<?x16xf32>
}
