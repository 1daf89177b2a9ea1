// Tests that wq-hqq's fractional zero points are refused by the gptq
// layout (on the first layer, before any is quantized), that an override
// cannot make HQQ symmetric, and that bad solver options are reported. Each
// case is a hand-written module (split-file parts below, run with their own
// options) over a tiny generated checkpoint (test/Inputs/tiny-llama2c.sh).

// RUN: rm -rf %t && split-file %s %t && cd %t && %make_tiny_llama2c tiny.bin
// RUN: cd %t && quant-opt frac.mlir -verify-diagnostics -wq-hqq="layout=gptq scale-dtype=f16 weights-out=w.st"
// RUN: cd %t && quant-opt sym.mlir -verify-diagnostics -wq-hqq="overrides=q_proj:sym=true weights-out=w.st"
// RUN: cd %t && quant-opt kappa.mlir -verify-diagnostics -wq-hqq="kappa=0.5 weights-out=w.st"
// RUN: not test -e %t/w.st

//--- frac.mlir
module attributes {llm.checkpoint = "tiny.bin", llm.checkpoint_format = "llama2c"} {
  func.func @forward(%x: tensor<?x64xf32>) -> tensor<?x64xf32> {
    %w = llm.param "model.layers.0.self_attn.q_proj.weight" : tensor<64x64xf32>
    // expected-error @+1 {{wq-hqq: layer 'model.layers.0.self_attn.q_proj' [64x64]: fractional zero points cannot be stored in the gptq layout (set round-zeros=true); use layout=rows}}
    %y = llm.linear %x, %w : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
    return %y : tensor<?x64xf32>
  }
}

//--- sym.mlir
module attributes {llm.checkpoint = "tiny.bin", llm.checkpoint_format = "llama2c"} {
  func.func @forward(%x: tensor<?x64xf32>) -> tensor<?x64xf32> {
    %w = llm.param "model.layers.0.self_attn.q_proj.weight" : tensor<64x64xf32>
    // expected-error @+1 {{wq-hqq: layer 'model.layers.0.self_attn.q_proj': HQQ is asymmetric; an override may not set sym=true}}
    %y = llm.linear %x, %w : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
    return %y : tensor<?x64xf32>
  }
}

//--- kappa.mlir
// expected-error @+1 {{wq-hqq: option kappa = 0.5 is out of range (valid: a finite number >= 1)}}
module attributes {llm.checkpoint = "tiny.bin", llm.checkpoint_format = "llama2c"} {
}
