// Tests that wq-awq and wq-autoround refuse what they cannot do, with a
// clear error and no output file.

// RUN: quant-import %shared/models/stories260K/stories260K.bin -o %t.mlir
// RUN: not quant-opt %t.mlir -wq-awq="weights-out=%t.st" 2>&1 | FileCheck %s --check-prefix=NOTRACE
// NOTRACE: error: wq-awq: the trace option is required

// A trace without sampled sequences serves GPTQ's whole-text mode only.
// RUN: quant-calibrate %t.mlir --tokenizer %shared/models/stories260K/tok512.bin --text %shared/data/tinystories/train_head.txt --max-tokens 1022 --samples 0 --no-progress -o %t.nosample.trace
// RUN: not quant-opt %t.mlir -wq-awq="trace=%t.nosample.trace weights-out=%t.st" 2>&1 | FileCheck %s --check-prefix=NOSAMPLE
// RUN: not quant-opt %t.mlir -wq-autoround="trace=%t.nosample.trace weights-out=%t.st" 2>&1 | FileCheck %s --check-prefix=NOSAMPLE
// RUN: not quant-opt %t.mlir -wq-gptq="trace=%t.nosample.trace weights-out=%t.st" 2>&1 | FileCheck %s --check-prefix=NOSAMPLE
// NOSAMPLE: holds no sampled sequences (it was recorded with --samples 0); record one with quant-calibrate --samples N
// RUN: quant-opt %t.mlir -wq-gptq="sequential=false trace=%t.nosample.trace weights-out=%t.wholetext.st" -o /dev/null
// RUN: not test -e %t.st

// One configuration per block: AWQ searches one scale per group for one grid.
// RUN: quant-calibrate %t.mlir --tokenizer %shared/models/stories260K/tok512.bin --text %shared/data/tinystories/train_head.txt --max-tokens 1022 --no-progress -o %t.trace
// RUN: not quant-opt %t.mlir -wq-awq="overrides=down_proj:bits=8 trace=%t.trace weights-out=%t.st" 2>&1 | FileCheck %s --check-prefix=MIXED
// MIXED: error: wq-awq: decoder block 0: AWQ needs one configuration per decoder block, but 'model.layers.0.mlp.down_proj' differs
// RUN: not quant-opt %t.mlir -wq-autoround="iters=1 overrides=layers\.2\.mlp\.up_proj:skip trace=%t.trace weights-out=%t.st" 2>&1 | FileCheck %s --check-prefix=ARSKIP
// ARSKIP: error: wq-autoround: decoder block 2: AutoRound reconstructs whole blocks; 'model.layers.2.mlp.up_proj' is skipped

// Bad overrides are named.
// RUN: not quant-opt %t.mlir -wq-rtn="overrides=q_proj:bits=5 weights-out=%t.st" 2>&1 | FileCheck %s --check-prefix=BADOV
// BADOV: error: wq-rtn: override 'q_proj:bits=5': bits must be 2, 3, 4 or 8
// RUN: not quant-opt %t.mlir -wq-rtn="overrides=q_proj weights-out=%t.st" 2>&1 | FileCheck %s --check-prefix=BADOV2
// BADOV2: error: wq-rtn: override 'q_proj': missing the layer regex or the settings
// RUN: not quant-opt %t.mlir -wq-autoround="iters=-1 trace=%t.trace weights-out=%t.st" 2>&1 | FileCheck %s --check-prefix=BADITERS
// BADITERS: error: wq-autoround: option iters = -1 is out of range (valid: an integer from 0 to 100000)
// RUN: not test -e %t.st
