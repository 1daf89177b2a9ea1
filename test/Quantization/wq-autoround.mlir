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

// Tests that a layout that cannot hold the model is refused before the
// block-wise tuning starts (seconds, not minutes): 3-bit codes in the gptq
// layout need K % 32 == 0 and N % 32 == 0, the MLP has 172.
// RUN: not quant-opt %t.mlir -wq-autoround="bits=3 group-size=32 iters=200 layout=gptq trace=%t.trace weights-out=%t.3.st" 2>&1 | FileCheck %s --check-prefix=GPTQ3
// GPTQ3: error: wq-autoround: layer 'model.layers.0.mlp.gate_proj' [172x64]: 3-bit zero points in the gptq layout need N % 32 == 0, got N = 172; use layout=rows
// RUN: not test -e %t.3.st
