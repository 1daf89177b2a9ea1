// End-to-end: wq-awq on the shared stories260K model: import, calibrate,
// quantize, run the result (perplexity), per-block mixed precision.
// Standalone pass tests: test/Quantization/wq-awq*.mlir.

// RUN: quant-import %shared/models/stories260K/stories260K.bin -o %t.mlir
// RUN: quant-calibrate %t.mlir --tokenizer %shared/models/stories260K/tok512.bin --text %shared/data/tinystories/train_head.txt --max-tokens 2044 --no-progress -o %t.trace | FileCheck %s --check-prefix=CALIB
// RUN: quant-opt %t.mlir -wq-awq="bits=4 group-size=32 layout=rows n-grid=5 trace=%t.trace weights-out=%t.st" -o %t.awq.mlir
// RUN: FileCheck %s --input-file=%t.awq.mlir
// RUN: quant-run %t.awq.mlir --tokenizer %shared/models/stories260K/tok512.bin --ppl %shared/data/tinystories/valid_head.txt --max-tokens 511 --no-progress | FileCheck %s --check-prefix=EXEC

// Tests that the trace keeps whole windows for the block-wise methods.
// CALIB: trace: {{.*}} 4 sampled sequences of 512

// Tests that wq-awq folds its scales into the RMSNorm weights (marked, and
// read from the overlay), quantizes every linear and leaves a runnable model.
// CHECK: llm.weights_overlay
// CHECK: llm.rms_norm {{.*}} {awq.scaled, eps
// CHECK: wq.linear {{.*}} {bits = 4 : i64, group_size = 32 : i64
// CHECK-NOT: llm.linear
// EXEC: perplexity: {{[0-9]+\.[0-9]+}}

// Tests that fold-only mode keeps every linear float but still folds.
// RUN: quant-opt %t.mlir -wq-awq="quantize=false clip=false n-grid=5 trace=%t.trace weights-out=%t.fold.st" | FileCheck %s --check-prefix=FOLD
// FOLD: llm.rms_norm {{.*}} {awq.scaled, eps
// FOLD-NOT: wq.linear

// Tests per-block mixed precision through overrides: block 0 at 8 bits.
// RUN: quant-opt %t.mlir -wq-awq="bits=4 group-size=32 layout=rows n-grid=3 clip=false overrides=layers\.0\.:bits=8 trace=%t.trace weights-out=%t.mixed.st" | FileCheck %s --check-prefix=MIXED
// MIXED: llm.param "model.layers.0.self_attn.q_proj.qweight" : tensor<64x16xi32>
// MIXED: llm.param "model.layers.1.self_attn.q_proj.qweight" : tensor<64x8xi32>
