// Tests that wq-nf4 rejects an unsupported block size, naming the layer.
// RUN: quant-import %shared/models/stories260K/stories260K.bin -o %t.mlir
// RUN: not quant-opt %t.mlir -wq-nf4="block-size=48 weights-out=%t.st" 2>&1 | FileCheck %s
// CHECK: error: wq-nf4: option block-size = 48 is out of range (valid: 32, 64, 128, 256, 512, 1024, 2048 or 4096)
// RUN: not test -e %t.st
