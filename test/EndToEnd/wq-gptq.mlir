// End-to-end: wq-gptq on the shared stories260K model: import, calibrate,
// quantize, run the result (perplexity). Standalone pass tests:
// test/Quantization/wq-gptq*.mlir.

// RUN: quant-import %shared/models/stories260K/stories260K.bin -o %t.mlir
// RUN: quant-calibrate %t.mlir --tokenizer %shared/models/stories260K/tok512.bin --text %shared/data/tinystories/train_head.txt --max-tokens 4088 --no-progress -o %t.trace | FileCheck %s --check-prefix=CALIB
// RUN: quant-opt %t.mlir -wq-gptq="bits=4 group-size=32 sym=false act-order=true trace=%t.trace weights-out=%t.st" -o %t.gptq.mlir
// RUN: FileCheck %s --input-file=%t.gptq.mlir
// RUN: quant-run %t.gptq.mlir --tokenizer %shared/models/stories260K/tok512.bin --ppl %shared/data/tinystories/valid_head.txt --max-tokens 511 --no-progress | FileCheck %s --check-prefix=EXEC

// Tests that quant-calibrate records one statistics entry per distinct
// linear input (q/k/v and gate/up share theirs) over the requested tokens.
// CALIB: trace: {{.*}} (35 layers, 20 observed inputs, 4096 tokens

// Tests that wq-gptq with act-order rewrites the linears into wq.linear with
// a g_idx parameter, and that the model runs.
// CHECK: llm.weights_overlay
// CHECK: %[[G:.*]] = llm.param "model.layers.0.self_attn.q_proj.g_idx" : tensor<64xi32>
// CHECK: wq.linear {{.*}} g_idx(%[[G]]) {bits = 4 : i64, group_size = 32 : i64
// EXEC: perplexity: {{[0-9]+\.[0-9]+}}

// Tests that per-channel GPTQ with act-order emits no g_idx (every column is
// in the single group, so the permutation is invisible to dequantization).
// RUN: quant-opt %t.mlir -wq-gptq="bits=4 group-size=-1 act-order=true trace=%t.trace weights-out=%t.pc.st" | FileCheck %s --check-prefix=PERCHANNEL
// PERCHANNEL: wq.linear
// PERCHANNEL-NOT: g_idx
// PERCHANNEL-SAME: group_size = -1 : i64
