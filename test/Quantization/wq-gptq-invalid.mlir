// Tests that wq-gptq refuses a missing trace, a trace of another model and a
// file that is not a trace, with a clear error and no output file.

// RUN: quant-import %shared/models/stories260K/stories260K.bin -o %t.mlir
// RUN: not quant-opt %t.mlir -wq-gptq="weights-out=%t.st" 2>&1 | FileCheck %s --check-prefix=NOTRACE
// NOTRACE: error: wq-gptq: the trace option is required

// A trace recorded on the RTN-quantized model is a trace of other weights.
// RUN: quant-opt %t.mlir -wq-rtn="weights-out=%t.rtn.st" -o %t.rtn.mlir
// RUN: quant-calibrate %t.rtn.mlir --tokenizer %shared/models/stories260K/tok512.bin --text %shared/data/tinystories/train_head.txt --max-tokens 1022 --no-progress -o %t.other.trace
// RUN: not quant-opt %t.mlir -wq-gptq="trace=%t.other.trace weights-out=%t.st2" 2>&1 | FileCheck %s --check-prefix=OTHER
// OTHER: error: wq-gptq: the trace {{.*}}other.trace was recorded on other weights (model fingerprint {{[0-9a-f]+}}, this model {{[0-9a-f]+}})
// RUN: not test -e %t.st2

// RUN: not quant-opt %t.mlir -wq-gptq="trace=%t.rtn.st weights-out=%t.st3" 2>&1 | FileCheck %s --check-prefix=NOTATRACE
// NOTATRACE: error: wq-gptq: {{.*}}rtn.st: not a qc calibration trace
