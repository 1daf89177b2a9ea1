// Standalone tests of wq-gptq on hand-written IR over a tiny generated
// checkpoint (test/Inputs/tiny-llama2c.sh: 2 blocks, dim 64, hidden 80) and
// a trace recorded on it. The end-to-end run on the shared model (quantize,
// then measure perplexity) is test/EndToEnd/wq-gptq.mlir.

// RUN: rm -rf %t && mkdir -p %t && cd %t && %make_tiny_llama2c tiny.bin
// RUN: cd %t && quant-import tiny.bin -o tiny.mlir
// RUN: cd %t && quant-calibrate tiny.mlir --tokenizer %shared/models/stories260K/tok512.bin --text %shared/data/tinystories/train_head.txt --max-tokens 256 --window 32 --samples 4 --no-progress -o tiny.trace > /dev/null
// RUN: cd %t && quant-opt %s -verify-diagnostics -wq-gptq="bits=4 group-size=32 sym=false act-order=true trace=tiny.trace weights-out=seq.st" | FileCheck %s --check-prefix=SEQ
// RUN: cd %t && quant-opt %s -verify-diagnostics -wq-gptq="bits=4 group-size=-1 act-order=true sequential=false trace=tiny.trace weights-out=pc.st" | FileCheck %s --check-prefix=PERCHANNEL

// Tests that sequential GPTQ (Hessians from the sampled block inputs)
// rewrites the linears of any block into wq.linear, with a g_idx parameter
// under act-order, and leaves the other ops alone.
// SEQ-LABEL: module attributes
// SEQ-SAME: llm.weights_overlay = "{{.*}}seq.st"
// SEQ: %[[G:.*]] = llm.param "model.layers.0.self_attn.q_proj.g_idx" : tensor<64xi32>
// SEQ: wq.linear %arg0, {{.*}} g_idx(%[[G]]) {bits = 4 : i64, group_size = 32 : i64, in_features = 64 : i64, layout = #wq.layout<gptq>, out_features = 64 : i64, scale_dtype = f16, sym = false, zero_dtype = i32}
// SEQ: llm.param "model.layers.1.mlp.down_proj.qweight" : tensor<10x64xi32>
// SEQ: llm.param "model.layers.1.mlp.down_proj.g_idx" : tensor<80xi32>
// SEQ: wq.linear {{.*}}in_features = 80 : i64
// SEQ-NOT: llm.linear

// Tests that whole-text GPTQ (the per-layer Hessians of the trace) of a
// per-channel grid emits no g_idx: every column is in the single group, so
// the permutation is invisible to dequantization.
// PERCHANNEL-LABEL: module attributes
// PERCHANNEL: wq.linear
// PERCHANNEL-NOT: g_idx
// PERCHANNEL-SAME: group_size = -1 : i64
// PERCHANNEL: wq.linear
// PERCHANNEL-NOT: g_idx
// PERCHANNEL-SAME: group_size = -1 : i64
module attributes {llm.checkpoint = "tiny.bin", llm.checkpoint_format = "llama2c"} {
  func.func @forward(%x: tensor<?x64xf32>, %h: tensor<?x80xf32>) -> (tensor<?x64xf32>, tensor<?x64xf32>) {
    %wq = llm.param "model.layers.0.self_attn.q_proj.weight" : tensor<64x64xf32>
    %q = llm.linear %x, %wq : (tensor<?x64xf32>, tensor<64x64xf32>) -> tensor<?x64xf32>
    %wd = llm.param "model.layers.1.mlp.down_proj.weight" : tensor<64x80xf32>
    %d = llm.linear %h, %wd : (tensor<?x80xf32>, tensor<64x80xf32>) -> tensor<?x64xf32>
    return %q, %d : tensor<?x64xf32>, tensor<?x64xf32>
  }
}
