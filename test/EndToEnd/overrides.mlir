// End-to-end: per-layer overrides of wq-rtn on the shared stories260K model.
// Standalone test: test/Quantization/overrides.mlir.

// Tests per-layer overrides (later ones win): layer 0 at 8 bits, every
// down_proj left in float, layer 1's down_proj back at 2 bits per channel.

// RUN: quant-import %shared/models/stories260K/stories260K.bin -o %t.mlir
// RUN: quant-opt %t.mlir -wq-rtn="bits=4 group-size=32 layout=rows overrides=layers\.0\.:bits=8,down_proj:skip,layers\.1\.mlp\.down:bits=2:group-size=-1 weights-out=%t.st" | FileCheck %s

// CHECK-LABEL: func.func @forward
// CHECK: wq.linear {{.*}} {bits = 8 : i64, group_size = 32 : i64
// CHECK: %[[D0:.*]] = llm.param "model.layers.0.mlp.down_proj.weight"
// CHECK: llm.linear {{.*}}%[[D0]]
// CHECK: wq.linear {{.*}} {bits = 4 : i64, group_size = 32 : i64
// CHECK: wq.linear {{.*}} {bits = 2 : i64, group_size = -1 : i64
// CHECK: %[[D2:.*]] = llm.param "model.layers.2.mlp.down_proj.weight"
// CHECK: llm.linear {{.*}}%[[D2]]
