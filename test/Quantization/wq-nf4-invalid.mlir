// Tests that wq-nf4 rejects an unsupported block size, naming the layer.
// RUN: quant-import %shared/models/stories260K/stories260K.bin -o %t.mlir
// RUN: not quant-opt %t.mlir -wq-nf4="block-size=48 weights-out=%t.st" 2>&1 | FileCheck %s
// CHECK: error: wq-nf4: NF4 block-size must be a power of two from 32 to 4096, got 48
// RUN: not test -e %t.st
