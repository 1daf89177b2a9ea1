// RUN: quant-opt %s -split-input-file -llm-params-to-arguments | FileCheck %s

// Tests that parameters become trailing memref arguments in order of first
// use, that a parameter used twice (tied embeddings) becomes one argument,
// and that the result is written into a caller-owned output buffer.

// CHECK-LABEL: func.func @forward
// CHECK-SAME: (%[[TOK:.*]]: memref<?xi32> {llvm.noalias}, %[[OUT:.*]]: memref<?x16xf32> {llvm.noalias}, %[[EMB:.*]]: memref<16x8xf32> {llvm.noalias})
// CHECK-SAME: attributes {llm.num_inputs = 1 : i64, llm.num_outputs = 1 : i64, llm.param_names = ["model.embed_tokens.weight"], llvm.emit_c_interface}
// CHECK-DAG: %[[T:.*]] = bufferization.to_tensor %[[TOK]] restrict
// CHECK-DAG: %[[E:.*]] = bufferization.to_tensor %[[EMB]] restrict
// CHECK: %[[X:.*]] = llm.embedding %[[E]], %[[T]]
// CHECK: %[[L:.*]] = llm.logits %[[X]], %[[E]]
// CHECK: bufferization.materialize_in_destination %[[L]] in restrict writable %[[OUT]]
// CHECK-NEXT: return
// CHECK-NOT: llm.param
func.func @forward(%tok: tensor<?xi32>) -> tensor<?x16xf32> {
  %e = llm.param "model.embed_tokens.weight" : tensor<16x8xf32>
  %x = llm.embedding %e, %tok : (tensor<16x8xf32>, tensor<?xi32>) -> tensor<?x8xf32>
  %e2 = llm.param "model.embed_tokens.weight" : tensor<16x8xf32>
  %l = llm.logits %x, %e2 : (tensor<?x8xf32>, tensor<16x8xf32>) -> tensor<?x16xf32>
  return %l : tensor<?x16xf32>
}

// -----

// Tests that the `entry` option selects the function to prepare and leaves
// the others alone.

// CHECK-LABEL: func.func @helper
// CHECK-SAME: (%{{.*}}: tensor<4xf32>) -> tensor<4xf32>
// CHECK-LABEL: func.func @forward
// CHECK-SAME: memref<4xf32>
func.func @helper(%a: tensor<4xf32>) -> tensor<4xf32> {
  return %a : tensor<4xf32>
}
func.func @forward(%a: tensor<4xf32>) -> tensor<4xf32> {
  return %a : tensor<4xf32>
}

// -----

// Tests that an index argument passes through by value and that a tied
// argument (a KV cache) is read writable and receives its result in place,
// without an output argument of its own.

// CHECK-LABEL: func.func @forward
// CHECK-SAME: (%[[TOK:.*]]: memref<?xi32> {llvm.noalias}, %[[POS:.*]]: index, %[[KC:.*]]: memref<2x1x?x4xf32> {llvm.noalias}, %[[OUT:.*]]: memref<3x4xf32> {llvm.noalias}, %[[P:.*]]: memref<3x4xf32> {llvm.noalias})
// CHECK-SAME: attributes {llm.num_inputs = 3 : i64, llm.num_outputs = 1 : i64, llm.param_names = ["w"], llvm.emit_c_interface}
// CHECK-DAG: %[[C:.*]] = bufferization.to_tensor %[[KC]] restrict writable
// CHECK-DAG: %[[X:.*]] = bufferization.to_tensor %[[P]] restrict :
// CHECK: %[[W:.*]] = llm.kv_cache_write %[[C]], %[[X]], %[[POS]] {layer = 1 : i64}
// CHECK-DAG: bufferization.materialize_in_destination %[[X]] in restrict writable %[[OUT]]
// CHECK-DAG: bufferization.materialize_in_destination %[[W]] in restrict writable %[[KC]]
// CHECK: return
func.func @forward(%tok: tensor<?xi32>, %pos: index,
                   %kc: tensor<2x1x?x4xf32> {llm.tied_result = 1 : i64})
    -> (tensor<3x4xf32>, tensor<2x1x?x4xf32>) {
  %x = llm.param "w" : tensor<3x4xf32>
  %w = llm.kv_cache_write %kc, %x, %pos {layer = 1 : i64}
      : (tensor<2x1x?x4xf32>, tensor<3x4xf32>) -> tensor<2x1x?x4xf32>
  return %x, %w : tensor<3x4xf32>, tensor<2x1x?x4xf32>
}
