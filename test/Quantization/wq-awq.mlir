// Standalone tests of wq-awq on a hand-written decoder block (two RMSNorms
// and the seven linears; the attention itself is not needed by the pass,
// which runs the block from the checkpoint) over a tiny generated checkpoint
// (test/Inputs/tiny-llama2c.sh) and a trace recorded on it. The end-to-end
// run on the shared model (quantize, then measure perplexity) is
// test/EndToEnd/wq-awq.mlir.

// RUN: rm -rf %t && mkdir -p %t && cd %t && %make_tiny_llama2c tiny.bin
// RUN: cd %t && quant-import tiny.bin -o tiny.mlir
// RUN: cd %t && quant-calibrate tiny.mlir --tokenizer %shared/models/stories260K/tok512.bin --text %shared/data/tinystories/train_head.txt --max-tokens 256 --window 32 --samples 4 --no-progress -o tiny.trace > /dev/null
// RUN: cd %t && quant-opt %s -verify-diagnostics -wq-awq="bits=4 group-size=32 layout=rows n-grid=5 trace=tiny.trace weights-out=awq.st" | FileCheck %s
// RUN: cd %t && quant-opt %s -verify-diagnostics -wq-awq="quantize=false clip=false n-grid=5 trace=tiny.trace weights-out=fold.st" | FileCheck %s --check-prefix=FOLD

// Tests that wq-awq folds its scales into the RMSNorm weights (marked, and
// read from the overlay) and quantizes every linear of the block.
// CHECK-LABEL: module attributes
// CHECK-SAME: llm.weights_overlay = "{{.*}}awq.st"
// CHECK: llm.rms_norm {{.*}} {awq.scaled, eps
// CHECK: wq.linear {{.*}} {bits = 4 : i64, group_size = 32 : i64, in_features = 64 : i64, layout = #wq.layout<rows>, out_features = 64 : i64
// CHECK: llm.rms_norm {{.*}} {awq.scaled, eps
// CHECK: wq.linear {{.*}}in_features = 80 : i64, layout = #wq.layout<rows>, out_features = 64 : i64
// CHECK-NOT: llm.linear

// Tests that fold-only mode keeps every linear float but still folds.
// FOLD: llm.rms_norm {{.*}} {awq.scaled, eps
// FOLD-NOT: wq.linear
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
