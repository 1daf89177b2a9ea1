// Tests that wq-nf4 rejects an unsupported block size, and overrides that
// change anything but the block size (naming the layer). Each case is a
// hand-written module (split-file parts below, run with their own options)
// over a tiny generated checkpoint (test/Inputs/tiny-llama2c.sh).

// RUN: rm -rf %t && split-file %s %t && cd %t && %make_tiny_llama2c tiny.bin
// RUN: cd %t && quant-opt block-size.mlir -verify-diagnostics -wq-nf4="block-size=48 weights-out=w.st"
// RUN: cd %t && quant-opt override.mlir -verify-diagnostics -wq-nf4="overrides=q_proj:bits=8 weights-out=w.st"
// RUN: not test -e %t/w.st

//--- block-size.mlir
// expected-error @+1 {{wq-nf4: option block-size = 48 is out of range (valid: 32, 64, 128, 256, 512, 1024, 2048 or 4096)}}
module attributes {llm.checkpoint = "tiny.bin", llm.checkpoint_format = "llama2c"} {
}

//--- override.mlir
module attributes {llm.checkpoint = "tiny.bin", llm.checkpoint_format = "llama2c"} {
  func.func @forward(%x: tensor<?x64xf32>) -> tensor<?x64xf32> {
    %w = llm.param "model.layers.0.self_attn.q_proj.weight" : tensor<64x64xf32>
    // expected-error @+1 {{wq-nf4: layer 'model.layers.0.self_attn.q_proj': NF4 is a 4-bit codebook format; an override may only change group-size (the block size)}}
    %y = llm.linear %x, %w : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
    return %y : tensor<?x64xf32>
  }
}
