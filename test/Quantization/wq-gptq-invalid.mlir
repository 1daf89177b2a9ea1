// Tests that wq-gptq refuses a missing trace, a file that is not a trace, a
// trace of other weights, a trace without the sampled sequences that
// sequential GPTQ needs, and layers outside the decoder blocks, with a
// diagnostic and no output file. Each case is a hand-written module
// (split-file parts below, run with their own options) over a tiny
// generated checkpoint (test/Inputs/tiny-llama2c.sh).

// RUN: rm -rf %t && split-file %s %t && cd %t && %make_tiny_llama2c tiny.bin
// RUN: cd %t && quant-import tiny.bin -o tiny.mlir
// RUN: cd %t && %make_tiny_llama2c other.bin 64 80 2 4 4 512 64 2 && quant-import other.bin -o other.mlir
// RUN: cd %t && quant-calibrate other.mlir --tokenizer %shared/models/stories260K/tok512.bin --text %shared/data/tinystories/train_head.txt --max-tokens 256 --window 32 --samples 4 --no-progress -o other.trace > /dev/null
// RUN: cd %t && quant-calibrate tiny.mlir --tokenizer %shared/models/stories260K/tok512.bin --text %shared/data/tinystories/train_head.txt --max-tokens 256 --window 32 --samples 0 --no-progress -o nosample.trace > /dev/null
// RUN: cd %t && quant-calibrate tiny.mlir --tokenizer %shared/models/stories260K/tok512.bin --text %shared/data/tinystories/train_head.txt --max-tokens 256 --window 32 --samples 4 --no-progress -o tiny.trace > /dev/null

// RUN: cd %t && quant-opt no-trace.mlir -verify-diagnostics -wq-gptq="weights-out=w.st"
// A safetensors file that is not a trace: an overlay written by wq-rtn.
// RUN: cd %t && quant-opt whole-text.mlir -wq-rtn="weights-out=rtn.st" -o /dev/null
// RUN: cd %t && quant-opt not-a-trace.mlir -verify-diagnostics -wq-gptq="trace=rtn.st weights-out=w.st"
// RUN: cd %t && quant-opt other-weights.mlir -verify-diagnostics -wq-gptq="trace=other.trace weights-out=w.st"
// RUN: cd %t && quant-opt no-samples.mlir -verify-diagnostics -wq-gptq="trace=nosample.trace weights-out=w.st"
// RUN: cd %t && quant-opt not-in-block.mlir -verify-diagnostics -wq-gptq="trace=tiny.trace weights-out=w.st"
// RUN: not test -e %t/w.st

// A trace without sampled sequences serves GPTQ's whole-text mode.
// RUN: cd %t && quant-opt whole-text.mlir -verify-diagnostics -wq-gptq="sequential=false trace=nosample.trace weights-out=wholetext.st" | FileCheck %s
// CHECK: wq.linear

//--- no-trace.mlir
// expected-error @+1 {{wq-gptq: the trace option is required (a calibration trace written by quant-calibrate)}}
module attributes {llm.checkpoint = "tiny.bin", llm.checkpoint_format = "llama2c"} {
}

//--- not-a-trace.mlir
// expected-error @+1 {{wq-gptq: rtn.st: not a qc calibration trace}}
module attributes {llm.checkpoint = "tiny.bin", llm.checkpoint_format = "llama2c"} {
}

//--- other-weights.mlir
// The trace was recorded on the checkpoint of another seed.
// expected-error-re @+1 {{wq-gptq: the trace other.trace was recorded on other weights (model fingerprint {{[0-9a-f]+}}, this model {{[0-9a-f]+}})}}
module attributes {llm.checkpoint = "tiny.bin", llm.checkpoint_format = "llama2c"} {
  func.func @forward(%x: tensor<?x64xf32>) -> tensor<?x64xf32> {
    %w = llm.param "model.layers.0.self_attn.q_proj.weight" : tensor<64x64xf32>
    %y = llm.linear %x, %w : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
    return %y : tensor<?x64xf32>
  }
}

//--- no-samples.mlir
// expected-error @+1 {{wq-gptq: the trace nosample.trace holds no sampled sequences (it was recorded with --samples 0); record one with quant-calibrate --samples N}}
module attributes {llm.checkpoint = "tiny.bin", llm.checkpoint_format = "llama2c"} {
  func.func @forward(%x: tensor<?x64xf32>) -> tensor<?x64xf32> {
    %w = llm.param "model.layers.0.self_attn.q_proj.weight" : tensor<64x64xf32>
    %y = llm.linear %x, %w : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
    return %y : tensor<?x64xf32>
  }
}

//--- not-in-block.mlir
// The embedding table is a checkpoint weight but not a linear of a block.
// expected-error @+1 {{wq-gptq: layer 'model.embed_tokens' is not one of the seven linears of a decoder block; wq-gptq only quantizes those (exclude it)}}
module attributes {llm.checkpoint = "tiny.bin", llm.checkpoint_format = "llama2c"} {
  func.func @forward(%x: tensor<?x64xf32>) -> tensor<?x512xf32> {
    %w = llm.param "model.embed_tokens.weight" : tensor<512x64xf32>
    %y = llm.linear %x, %w : (tensor<?x64xf32>, tensor<512x64xf32>) -> tensor<?x512xf32>
    return %y : tensor<?x512xf32>
  }
}

//--- whole-text.mlir
module attributes {llm.checkpoint = "tiny.bin", llm.checkpoint_format = "llama2c"} {
  func.func @forward(%x: tensor<?x64xf32>) -> tensor<?x64xf32> {
    %w = llm.param "model.layers.0.self_attn.q_proj.weight" : tensor<64x64xf32>
    %y = llm.linear %x, %w : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
    return %y : tensor<?x64xf32>
  }
}
