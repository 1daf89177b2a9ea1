// Tests that wq-autoround refuses a trace without sampled sequences, blocks
// it cannot reconstruct whole (a skipped linear, mixed configurations), an
// out-of-range option and a layout that cannot hold the model (refused from
// the shapes before the block-wise tuning starts: seconds, not minutes),
// with a diagnostic and no output file. Each case is a hand-written module
// (split-file parts below, run with their own options) over a tiny
// generated checkpoint (test/Inputs/tiny-llama2c.sh).

// RUN: rm -rf %t && split-file %s %t && cd %t && %make_tiny_llama2c tiny.bin
// RUN: cd %t && quant-import tiny.bin -o tiny.mlir
// RUN: cd %t && quant-calibrate tiny.mlir --tokenizer %shared/models/stories260K/tok512.bin --text %shared/data/tinystories/train_head.txt --max-tokens 256 --window 32 --samples 4 --no-progress -o tiny.trace > /dev/null
// RUN: cd %t && quant-calibrate tiny.mlir --tokenizer %shared/models/stories260K/tok512.bin --text %shared/data/tinystories/train_head.txt --max-tokens 256 --window 32 --samples 0 --no-progress -o nosample.trace > /dev/null

// RUN: cd %t && quant-opt no-samples.mlir -verify-diagnostics -wq-autoround="trace=nosample.trace weights-out=w.st"
// RUN: cd %t && quant-opt skip.mlir -verify-diagnostics -wq-autoround="iters=1 overrides=layers\.1\.mlp\.up_proj:skip trace=tiny.trace weights-out=w.st"
// RUN: cd %t && quant-opt mixed.mlir -verify-diagnostics -wq-autoround="iters=1 overrides=down_proj:bits=8 trace=tiny.trace weights-out=w.st"
// RUN: cd %t && quant-opt iters.mlir -verify-diagnostics -wq-autoround="iters=-1 trace=tiny.trace weights-out=w.st"
// RUN: cd %t && quant-opt gptq-3bit.mlir -verify-diagnostics -wq-autoround="bits=3 group-size=32 iters=200 layout=gptq trace=tiny.trace weights-out=w.st"
// RUN: not test -e %t/w.st

//--- no-samples.mlir
// expected-error @+1 {{wq-autoround: the trace nosample.trace holds no sampled sequences (it was recorded with --samples 0); record one with quant-calibrate --samples N}}
module attributes {llm.checkpoint = "tiny.bin", llm.checkpoint_format = "llama2c"} {
  func.func @forward(%x: tensor<?x64xf32>) -> tensor<?x64xf32> {
    %w = llm.param "model.layers.0.self_attn.q_proj.weight" : tensor<64x64xf32>
    %y = llm.linear %x, %w : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
    return %y : tensor<?x64xf32>
  }
}

//--- skip.mlir
// expected-error @+1 {{wq-autoround: decoder block 1: AutoRound reconstructs whole blocks; 'model.layers.1.mlp.up_proj' is skipped while other linears of its block are not}}
module attributes {llm.checkpoint = "tiny.bin", llm.checkpoint_format = "llama2c"} {
  func.func @forward(%x: tensor<?x64xf32>) -> tensor<?x64xf32> {
    %n1w = llm.param "model.layers.1.input_layernorm.weight" : tensor<64xf32>
    %n1 = llm.rms_norm %x, %n1w {eps = 1.0e-05 : f32} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
    %wq = llm.param "model.layers.1.self_attn.q_proj.weight" : tensor<64x64xf32>
    %q = llm.linear %n1, %wq : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
    %wk = llm.param "model.layers.1.self_attn.k_proj.weight" : tensor<64x64xf32>
    %k = llm.linear %n1, %wk : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
    %wv = llm.param "model.layers.1.self_attn.v_proj.weight" : tensor<64x64xf32>
    %v = llm.linear %n1, %wv : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
    %qk = llm.add %q, %k : tensor<?x64xf32>
    %att = llm.add %qk, %v : tensor<?x64xf32>
    %wo = llm.param "model.layers.1.self_attn.o_proj.weight" : tensor<64x64xf32>
    %o = llm.linear %att, %wo : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
    %r = llm.add %x, %o : tensor<?x64xf32>
    %n2w = llm.param "model.layers.1.post_attention_layernorm.weight" : tensor<64xf32>
    %n2 = llm.rms_norm %r, %n2w {eps = 1.0e-05 : f32} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
    %wg = llm.param "model.layers.1.mlp.gate_proj.weight" : tensor<80x64xf32>
    %g = llm.linear %n2, %wg : (tensor<?x64xf32>, tensor<80x64xf32>) -> tensor<?x80xf32>
    %wu = llm.param "model.layers.1.mlp.up_proj.weight" : tensor<80x64xf32>
    %u = llm.linear %n2, %wu : (tensor<?x64xf32>, tensor<80x64xf32>) -> tensor<?x80xf32>
    %gu = llm.add %g, %u : tensor<?x80xf32>
    %wd = llm.param "model.layers.1.mlp.down_proj.weight" : tensor<64x80xf32>
    %d = llm.linear %gu, %wd : (tensor<?x80xf32>, tensor<64x80xf32>) -> tensor<?x64xf32>
    %y = llm.add %r, %d : tensor<?x64xf32>
    return %y : tensor<?x64xf32>
  }
}

//--- mixed.mlir
// expected-error @+1 {{wq-autoround: decoder block 1: AutoRound needs one configuration per decoder block, but 'model.layers.1.mlp.down_proj' differs from the other linears of the block}}
module attributes {llm.checkpoint = "tiny.bin", llm.checkpoint_format = "llama2c"} {
  func.func @forward(%x: tensor<?x64xf32>) -> tensor<?x64xf32> {
    %n1w = llm.param "model.layers.1.input_layernorm.weight" : tensor<64xf32>
    %n1 = llm.rms_norm %x, %n1w {eps = 1.0e-05 : f32} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
    %wq = llm.param "model.layers.1.self_attn.q_proj.weight" : tensor<64x64xf32>
    %q = llm.linear %n1, %wq : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
    %wk = llm.param "model.layers.1.self_attn.k_proj.weight" : tensor<64x64xf32>
    %k = llm.linear %n1, %wk : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
    %wv = llm.param "model.layers.1.self_attn.v_proj.weight" : tensor<64x64xf32>
    %v = llm.linear %n1, %wv : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
    %qk = llm.add %q, %k : tensor<?x64xf32>
    %att = llm.add %qk, %v : tensor<?x64xf32>
    %wo = llm.param "model.layers.1.self_attn.o_proj.weight" : tensor<64x64xf32>
    %o = llm.linear %att, %wo : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
    %r = llm.add %x, %o : tensor<?x64xf32>
    %n2w = llm.param "model.layers.1.post_attention_layernorm.weight" : tensor<64xf32>
    %n2 = llm.rms_norm %r, %n2w {eps = 1.0e-05 : f32} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
    %wg = llm.param "model.layers.1.mlp.gate_proj.weight" : tensor<80x64xf32>
    %g = llm.linear %n2, %wg : (tensor<?x64xf32>, tensor<80x64xf32>) -> tensor<?x80xf32>
    %wu = llm.param "model.layers.1.mlp.up_proj.weight" : tensor<80x64xf32>
    %u = llm.linear %n2, %wu : (tensor<?x64xf32>, tensor<80x64xf32>) -> tensor<?x80xf32>
    %gu = llm.add %g, %u : tensor<?x80xf32>
    %wd = llm.param "model.layers.1.mlp.down_proj.weight" : tensor<64x80xf32>
    %d = llm.linear %gu, %wd : (tensor<?x80xf32>, tensor<64x80xf32>) -> tensor<?x64xf32>
    %y = llm.add %r, %d : tensor<?x64xf32>
    return %y : tensor<?x64xf32>
  }
}

//--- iters.mlir
// expected-error @+1 {{wq-autoround: option iters = -1 is out of range (valid: an integer from 0 to 100000)}}
module attributes {llm.checkpoint = "tiny.bin", llm.checkpoint_format = "llama2c"} {
}

//--- gptq-3bit.mlir
// 3-bit zero points in the gptq layout need N % 32 == 0; the MLP has 80.
module attributes {llm.checkpoint = "tiny.bin", llm.checkpoint_format = "llama2c"} {
  func.func @forward(%x: tensor<?x64xf32>) -> tensor<?x64xf32> {
    %n1w = llm.param "model.layers.1.input_layernorm.weight" : tensor<64xf32>
    %n1 = llm.rms_norm %x, %n1w {eps = 1.0e-05 : f32} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
    %wq = llm.param "model.layers.1.self_attn.q_proj.weight" : tensor<64x64xf32>
    %q = llm.linear %n1, %wq : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
    %wk = llm.param "model.layers.1.self_attn.k_proj.weight" : tensor<64x64xf32>
    %k = llm.linear %n1, %wk : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
    %wv = llm.param "model.layers.1.self_attn.v_proj.weight" : tensor<64x64xf32>
    %v = llm.linear %n1, %wv : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
    %qk = llm.add %q, %k : tensor<?x64xf32>
    %att = llm.add %qk, %v : tensor<?x64xf32>
    %wo = llm.param "model.layers.1.self_attn.o_proj.weight" : tensor<64x64xf32>
    %o = llm.linear %att, %wo : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
    %r = llm.add %x, %o : tensor<?x64xf32>
    %n2w = llm.param "model.layers.1.post_attention_layernorm.weight" : tensor<64xf32>
    %n2 = llm.rms_norm %r, %n2w {eps = 1.0e-05 : f32} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
    %wg = llm.param "model.layers.1.mlp.gate_proj.weight" : tensor<80x64xf32>
    // expected-error @+1 {{wq-autoround: layer 'model.layers.1.mlp.gate_proj' [80x64]: 3-bit zero points in the gptq layout need N % 32 == 0, got N = 80; use layout=rows}}
    %g = llm.linear %n2, %wg : (tensor<?x64xf32>, tensor<80x64xf32>) -> tensor<?x80xf32>
    %wu = llm.param "model.layers.1.mlp.up_proj.weight" : tensor<80x64xf32>
    %u = llm.linear %n2, %wu : (tensor<?x64xf32>, tensor<80x64xf32>) -> tensor<?x80xf32>
    %gu = llm.add %g, %u : tensor<?x80xf32>
    %wd = llm.param "model.layers.1.mlp.down_proj.weight" : tensor<64x80xf32>
    %d = llm.linear %gu, %wd : (tensor<?x80xf32>, tensor<64x80xf32>) -> tensor<?x64xf32>
    %y = llm.add %r, %d : tensor<?x64xf32>
    return %y : tensor<?x64xf32>
  }
}
