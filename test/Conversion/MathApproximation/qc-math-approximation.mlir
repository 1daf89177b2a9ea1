// RUN: quant-opt %s -split-input-file -qc-math-approximation | FileCheck %s

// Tests that math.exp is replaced by a polynomial approximation made of
// plain arithmetic (no libm call left to block vectorization).

// CHECK-LABEL: func.func @exp
// CHECK-NOT: math.exp
// CHECK: arith.mulf
// CHECK: return
func.func @exp(%x: f32) -> f32 {
  %y = math.exp %x : f32
  return %y : f32
}

// -----

// Tests that sin, cos and powf (the RoPE table) stay exact library calls.

// CHECK-LABEL: func.func @trig
// CHECK: math.cos
// CHECK: math.sin
// CHECK: math.powf
func.func @trig(%x: f32) -> (f32, f32, f32) {
  %c = math.cos %x : f32
  %s = math.sin %x : f32
  %p = math.powf %x, %x : f32
  return %c, %s, %p : f32, f32, f32
}
