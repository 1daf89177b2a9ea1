// Tests that wq-awq refuses a missing trace, a trace without sampled
// sequences and mixed configurations inside one decoder block, with a
// diagnostic and no output file. Each case is a hand-written module
// (split-file parts below, run with their own options) over a tiny
// generated checkpoint (test/Inputs/tiny-llama2c.sh).

// RUN: rm -rf %t && split-file %s %t && cd %t && %make_tiny_llama2c tiny.bin
// RUN: cd %t && quant-import tiny.bin -o tiny.mlir
// RUN: cd %t && quant-calibrate tiny.mlir --tokenizer %shared/models/stories260K/tok512.bin --text %shared/data/tinystories/train_head.txt --max-tokens 256 --window 32 --samples 4 --no-progress -o tiny.trace > /dev/null
// RUN: cd %t && quant-calibrate tiny.mlir --tokenizer %shared/models/stories260K/tok512.bin --text %shared/data/tinystories/train_head.txt --max-tokens 256 --window 32 --samples 0 --no-progress -o nosample.trace > /dev/null

// RUN: cd %t && quant-opt no-trace.mlir -verify-diagnostics -wq-awq="weights-out=w.st"
// RUN: cd %t && quant-opt no-samples.mlir -verify-diagnostics -wq-awq="trace=nosample.trace weights-out=w.st"
// One configuration per block: AWQ searches one scale per group for one grid.
// RUN: cd %t && quant-opt mixed.mlir -verify-diagnostics -wq-awq="overrides=down_proj:bits=8 trace=tiny.trace weights-out=w.st"
// RUN: not test -e %t/w.st

//--- no-trace.mlir
// expected-error @+1 {{wq-awq: the trace option is required (a calibration trace written by quant-calibrate)}}
module attributes {llm.checkpoint = "tiny.bin", llm.checkpoint_format = "llama2c"} {
}

//--- no-samples.mlir
// expected-error @+1 {{wq-awq: the trace nosample.trace holds no sampled sequences (it was recorded with --samples 0); record one with quant-calibrate --samples N}}
module attributes {llm.checkpoint = "tiny.bin", llm.checkpoint_format = "llama2c"} {
  func.func @forward(%x: tensor<?x64xf32>) -> tensor<?x64xf32> {
    %w = llm.param "model.layers.0.self_attn.q_proj.weight" : tensor<64x64xf32>
    %y = llm.linear %x, %w : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
    return %y : tensor<?x64xf32>
  }
}

//--- mixed.mlir
// expected-error @+1 {{wq-awq: decoder block 0: AWQ needs one configuration per decoder block, but 'model.layers.0.mlp.down_proj' differs from the other linears of the block}}
module attributes {llm.checkpoint = "tiny.bin", llm.checkpoint_format = "llama2c"} {
  func.func @forward(%x: tensor<?x64xf32>) -> tensor<?x64xf32> {
    %n1w = llm.param "model.layers.0.input_layernorm.weight" : tensor<64xf32>
    %n1 = llm.rms_norm %x, %n1w {eps = 1.0e-05 : f32} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
    %wq = llm.param "model.layers.0.self_attn.q_proj.weight" : tensor<64x64xf32>
    %q = llm.linear %n1, %wq : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
    %wk = llm.param "model.layers.0.self_attn.k_proj.weight" : tensor<64x64xf32>
    %k = llm.linear %n1, %wk : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
    %wv = llm.param "model.layers.0.self_attn.v_proj.weight" : tensor<64x64xf32>
    %v = llm.linear %n1, %wv : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
    %qk = llm.add %q, %k : tensor<?x64xf32>
    %att = llm.add %qk, %v : tensor<?x64xf32>
    %wo = llm.param "model.layers.0.self_attn.o_proj.weight" : tensor<64x64xf32>
    %o = llm.linear %att, %wo : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
    %r = llm.add %x, %o : tensor<?x64xf32>
    %n2w = llm.param "model.layers.0.post_attention_layernorm.weight" : tensor<64xf32>
    %n2 = llm.rms_norm %r, %n2w {eps = 1.0e-05 : f32} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
    %wg = llm.param "model.layers.0.mlp.gate_proj.weight" : tensor<80x64xf32>
    %g = llm.linear %n2, %wg : (tensor<?x64xf32>, tensor<80x64xf32>) -> tensor<?x80xf32>
    %wu = llm.param "model.layers.0.mlp.up_proj.weight" : tensor<80x64xf32>
    %u = llm.linear %n2, %wu : (tensor<?x64xf32>, tensor<80x64xf32>) -> tensor<?x80xf32>
    %gu = llm.add %g, %u : tensor<?x80xf32>
    %wd = llm.param "model.layers.0.mlp.down_proj.weight" : tensor<64x80xf32>
    %d = llm.linear %gu, %wd : (tensor<?x80xf32>, tensor<64x80xf32>) -> tensor<?x64xf32>
    %y = llm.add %r, %d : tensor<?x64xf32>
    return %y : tensor<?x64xf32>
  }
}
