// End-to-end: wq-hqq on the shared stories260K model: import, quantize, run the
// result (perplexity). Standalone pass tests: test/Quantization/wq-hqq*.mlir.

// RUN: quant-import %shared/models/stories260K/stories260K.bin -o %t.mlir
// RUN: quant-opt %t.mlir -wq-hqq="bits=4 group-size=32 weights-out=%t.st" -o %t.hqq.mlir
// RUN: FileCheck %s --input-file=%t.hqq.mlir
// RUN: quant-opt %t.mlir -wq-hqq="bits=4 group-size=32 round-zeros=true layout=gptq scale-dtype=f16 weights-out=%t.gptq.st" | FileCheck %s --check-prefix=ROUND
// RUN: quant-run %t.hqq.mlir --tokenizer %shared/models/stories260K/tok512.bin --ppl %shared/data/tinystories/valid_head.txt --max-tokens 511 --no-progress | FileCheck %s --check-prefix=EXEC

// Tests that wq-hqq keeps HQQ's fractional zero points as f32 in the rows
// layout by default, and that with round-zeros they are integers packed in
// the GPTQ layout.
// CHECK: %[[Z:.*]] = llm.param "model.layers.0.self_attn.q_proj.qzeros" : tensor<2x64xf32>
// CHECK: wq.linear {{.*}} zeros(%[[Z]]) {bits = 4 : i64, group_size = 32 : i64{{.*}}layout = #wq.layout<rows>{{.*}}scale_dtype = f32, sym = false, zero_dtype = f32}
// ROUND: llm.param "model.layers.0.self_attn.q_proj.qzeros" : tensor<2x8xi32>
// ROUND: wq.linear {{.*}}layout = #wq.layout<gptq>{{.*}}zero_dtype = i32
// EXEC: perplexity: {{[0-9]+\.[0-9]+}}
