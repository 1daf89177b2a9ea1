// End-to-end: wq-nf4 on the shared stories260K model: import, quantize, run the
// result (perplexity). Standalone pass tests: test/Quantization/wq-nf4*.mlir.

// RUN: quant-import %shared/models/stories260K/stories260K.bin -o %t.mlir
// RUN: quant-opt %t.mlir -wq-nf4="block-size=64 weights-out=%t.st" -o %t.nf4.mlir
// RUN: FileCheck %s --input-file=%t.nf4.mlir
// RUN: quant-run %t.nf4.mlir --tokenizer %shared/models/stories260K/tok512.bin --ppl %shared/data/tinystories/valid_head.txt --max-tokens 511 --no-progress | FileCheck %s --check-prefix=EXEC

// Tests that wq-nf4 produces codebook wq.linear ops (the 16 NormalFloat
// values, f32 block absmax scales, no zero points) in the rows layout, with
// a ragged last block for the K = 172 down projections, and that they run.
// CHECK: wq.linear %{{.*}}, %{{.*}}, %{{.*}} {bits = 4 : i64, codebook = array<f32: -1.000000e+00, -0.6961928, {{.*}}, 1.000000e+00>, group_size = 64 : i64, in_features = 64 : i64, layout = #wq.layout<rows>
// CHECK-SAME: scale_dtype = f32, sym = true}
// CHECK: llm.param "model.layers.0.mlp.down_proj.scales" : tensor<3x64xf32>
// EXEC: perplexity: {{[0-9]+\.[0-9]+}}
