// RUN: quant-opt %s -split-input-file -llm-pack-decode-head -verify-diagnostics | FileCheck %s

// Tests that the decode function's classifier over a tied embedding becomes
// an 8-bit symmetric group-32 wq.linear over the two derived parameters,
// that the embedding keeps reading the fp32 parameter, and that another
// function (forward) keeps its fp32 head.

// CHECK-LABEL: func.func @forward
// CHECK: llm.logits
// CHECK-NOT: wq.linear
// CHECK-LABEL: func.func @decode
// CHECK: %[[E:.*]] = llm.param "model.embed_tokens.weight" : tensor<16x64xf32>
// CHECK: llm.embedding %[[E]]
// CHECK: %[[Q:.*]] = llm.param "model.embed_tokens.weight.q8.qweight" : tensor<16x16xi32>
// CHECK: %[[S:.*]] = llm.param "model.embed_tokens.weight.q8.scales" : tensor<2x16xf16>
// CHECK: %[[L:.*]] = wq.linear %{{.*}}, %[[Q]], %[[S]] {bits = 8 : i64, group_size = 32 : i64, in_features = 64 : i64, layout = #wq.layout<gptq>, out_features = 16 : i64, scale_dtype = f16, sym = true} : (tensor<1x64xf32>, tensor<16x16xi32>, tensor<2x16xf16>) -> tensor<1x16xf32>
// CHECK-NOT: llm.logits
// CHECK: return %[[L]]
module {
  func.func @forward(%tok: tensor<?xi32>) -> tensor<?x16xf32> {
    %e = llm.param "model.embed_tokens.weight" : tensor<16x64xf32>
    %x = llm.embedding %e, %tok : (tensor<16x64xf32>, tensor<?xi32>) -> tensor<?x64xf32>
    %l = llm.logits %x, %e : (tensor<?x64xf32>, tensor<16x64xf32>) -> tensor<?x16xf32>
    return %l : tensor<?x16xf32>
  }
  func.func @decode(%tok: tensor<1xi32>) -> tensor<1x16xf32> {
    %e = llm.param "model.embed_tokens.weight" : tensor<16x64xf32>
    %t = tensor.cast %tok : tensor<1xi32> to tensor<?xi32>
    %x = llm.embedding %e, %t : (tensor<16x64xf32>, tensor<?xi32>) -> tensor<?x64xf32>
    %r = tensor.cast %x : tensor<?x64xf32> to tensor<1x64xf32>
    %l = llm.logits %r, %e : (tensor<1x64xf32>, tensor<16x64xf32>) -> tensor<1x16xf32>
    return %l : tensor<1x16xf32>
  }
}

// -----

// Tests that an untied head's fp32 parameter, used only by the classifier,
// is dropped from the decode function.

// CHECK-LABEL: func.func @decode
// CHECK-NOT: "lm_head.weight" :
// CHECK: llm.param "lm_head.weight.q8.qweight"
// CHECK: wq.linear
module {
  func.func @decode(%x: tensor<1x32xf32>) -> tensor<1x8xf32> {
    %h = llm.param "lm_head.weight" : tensor<8x32xf32>
    %l = llm.logits %x, %h : (tensor<1x32xf32>, tensor<8x32xf32>) -> tensor<1x8xf32>
    return %l : tensor<1x8xf32>
  }
}

// -----

// Tests that a module without the decode function is reported.

// expected-error @+1 {{llm-pack-decode-head: no function 'decode'}}
module {
  func.func @forward() {
    return
  }
}

// -----

// Tests that a decode function without a classifier is reported.

module {
  // expected-error @+1 {{llm-pack-decode-head: expected one llm.logits in 'decode', found 0}}
  func.func @decode(%x: tensor<1x32xf32>) -> tensor<1x32xf32> {
    return %x : tensor<1x32xf32>
  }
}

// -----

// Tests that a hidden size that is not a multiple of the block is reported.

module {
  func.func @decode(%x: tensor<1x48xf32>) -> tensor<1x8xf32> {
    %h = llm.param "lm_head.weight" : tensor<8x48xf32>
    // expected-error @+1 {{llm-pack-decode-head: hidden size 48 is not a multiple of 32}}
    %l = llm.logits %x, %h : (tensor<1x48xf32>, tensor<8x48xf32>) -> tensor<1x8xf32>
    return %l : tensor<1x8xf32>
  }
}

// -----

// Tests that a classifier whose weight is not a parameter is reported.

module {
  func.func @decode(%x: tensor<1x32xf32>, %w: tensor<8x32xf32>) -> tensor<1x8xf32> {
    // expected-error @+1 {{llm-pack-decode-head: the classifier's weight must be an fp32 llm.param of static shape}}
    %l = llm.logits %x, %w : (tensor<1x32xf32>, tensor<8x32xf32>) -> tensor<1x8xf32>
    return %l : tensor<1x8xf32>
  }
}
