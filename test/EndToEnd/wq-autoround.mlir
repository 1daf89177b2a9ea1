// End-to-end: wq-autoround on the shared stories260K model: import,
// calibrate, quantize, run the result (perplexity). Standalone pass tests:
// test/Quantization/wq-autoround*.mlir.

// RUN: quant-import %shared/models/stories260K/stories260K.bin -o %t.mlir
// RUN: quant-calibrate %t.mlir --tokenizer %shared/models/stories260K/tok512.bin --text %shared/data/tinystories/train_head.txt --max-tokens 2044 --no-progress -o %t.trace
// RUN: quant-opt %t.mlir -wq-autoround="bits=4 group-size=32 iters=4 batch-size=2 trace=%t.trace weights-out=%t.st" -o %t.ar.mlir
// RUN: FileCheck %s --input-file=%t.ar.mlir
// RUN: quant-run %t.ar.mlir --tokenizer %shared/models/stories260K/tok512.bin --ppl %shared/data/tinystories/valid_head.txt --max-tokens 511 --no-progress | FileCheck %s --check-prefix=EXEC

// Tests that wq-autoround rewrites every linear of every block into a
// wq.linear (gptq layout, asymmetric) and leaves a runnable model.
// CHECK: llm.weights_overlay
// CHECK: wq.linear {{.*}} zeros({{.*}}) {bits = 4 : i64, group_size = 32 : i64
// CHECK-NOT: llm.linear
// EXEC: perplexity: {{[0-9]+\.[0-9]+}}

// Tests that the minibatch seed is the only randomness: same seed, same
// bytes.
// RUN: quant-opt %t.mlir -wq-autoround="bits=4 group-size=32 iters=4 batch-size=2 trace=%t.trace weights-out=%t.b.st" -o /dev/null
// RUN: cmp %t.st %t.b.st
