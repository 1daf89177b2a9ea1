// Tests that wq-hqq's fractional zero points are refused by the GPTQ layout
// with a clear error, and that bad solver options are reported.
// RUN: quant-import %shared/models/stories260K/stories260K.bin -o %t.mlir
// RUN: not quant-opt %t.mlir -wq-hqq="layout=gptq scale-dtype=f16 weights-out=%t.st" 2>&1 | FileCheck %s --check-prefix=FRAC
// FRAC: error: wq-hqq: layer 'model.layers.0.self_attn.q_proj' [64x64]: fractional zero points cannot be stored in the gptq layout (set round-zeros=true); use layout=rows
// RUN: not test -e %t.st
// RUN: not quant-opt %t.mlir -wq-hqq="kappa=0.5 weights-out=%t.st" 2>&1 | FileCheck %s --check-prefix=KAPPA
// KAPPA: error: wq-hqq: option kappa = 0.5 is out of range (valid: a finite number >= 1)
