// Tests wq-rtn's default layout=auto on hand-written IR over a tiny
// generated checkpoint (test/Inputs/tiny-llama2c.sh): the gptq layout is
// kept when it holds every layer, and otherwise the rows layout is used for
// every layer, with a remark on the module saying which layer forced it.

// RUN: rm -rf %t && mkdir -p %t && cd %t && %make_tiny_llama2c tiny.bin
// RUN: cd %t && quant-opt %s -split-input-file -verify-diagnostics -wq-rtn="bits=3 weights-out=auto.st" | FileCheck %s

// 3-bit zero points in the gptq layout need N % 32 == 0: the gate
// projection has N = 80.
// CHECK-LABEL: func.func @forward
// CHECK: wq.linear {{.*}}bits = 3 : i64{{.*}}layout = #wq.layout<rows>{{.*}}out_features = 64
// CHECK: wq.linear {{.*}}bits = 3 : i64{{.*}}layout = #wq.layout<rows>{{.*}}out_features = 80
// CHECK-NOT: #wq.layout<gptq>
// expected-remark @+1 {{wq-rtn: layout=auto chose the rows layout for every layer because layer 'model.layers.0.mlp.gate_proj' [80x64]: 3-bit zero points in the gptq layout need N % 32 == 0, got N = 80}}
module attributes {llm.checkpoint = "tiny.bin", llm.checkpoint_format = "llama2c"} {
  func.func @forward(%x: tensor<?x64xf32>) -> (tensor<?x64xf32>, tensor<?x80xf32>) {
    %wq = llm.param "model.layers.0.self_attn.q_proj.weight" : tensor<64x64xf32>
    %q = llm.linear %x, %wq : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
    %wg = llm.param "model.layers.0.mlp.gate_proj.weight" : tensor<80x64xf32>
    %g = llm.linear %x, %wg : (tensor<?x64xf32>, tensor<80x64xf32>) -> tensor<?x80xf32>
    return %q, %g : tensor<?x64xf32>, tensor<?x80xf32>
  }
}

// -----

// A module the gptq layout holds keeps it, without a remark (any remark
// would fail -verify-diagnostics).
// CHECK-LABEL: func.func @forward
// CHECK: llm.param "model.layers.1.self_attn.o_proj.qweight" : tensor<6x64xi32>
// CHECK: wq.linear {{.*}}bits = 3 : i64{{.*}}layout = #wq.layout<gptq>
// CHECK-NOT: #wq.layout<rows>
module attributes {llm.checkpoint = "tiny.bin", llm.checkpoint_format = "llama2c"} {
  func.func @forward(%x: tensor<?x64xf32>) -> tensor<?x64xf32> {
    %w = llm.param "model.layers.1.self_attn.o_proj.weight" : tensor<64x64xf32>
    %y = llm.linear %x, %w : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
    return %y : tensor<?x64xf32>
  }
}
