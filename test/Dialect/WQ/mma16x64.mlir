// RUN: quant-opt %s -split-input-file -verify-diagnostics | FileCheck %s

// Tests that the GPU kernel layout round-trips with its padded shapes:
// qweight [Np*Kp/8], scales and zeros [groups, Np] (N = 20 -> Np = 32,
// K = 72 -> Kp = 128).
// CHECK-LABEL: func.func @asym
// CHECK: wq.linear {{.*}}layout = #wq.layout<mma16x64>{{.*}} : (tensor<?x72xf16>, tensor<512xi32>, tensor<3x32xf16>, tensor<3x32xf16>) -> tensor<?x20xf16>
func.func @asym(%x: tensor<?x72xf16>, %qw: tensor<512xi32>, %s: tensor<3x32xf16>, %z: tensor<3x32xf16>) -> tensor<?x20xf16> {
  %y = wq.linear %x, %qw, %s zeros(%z) {bits = 4 : i64, group_size = 32 : i64, sym = false, in_features = 72 : i64, out_features = 20 : i64, scale_dtype = f16, zero_dtype = f16, layout = #wq.layout<mma16x64>} : (tensor<?x72xf16>, tensor<512xi32>, tensor<3x32xf16>, tensor<3x32xf16>) -> tensor<?x20xf16>
  return %y : tensor<?x20xf16>
}

// -----

// Tests the shape rule of qweight (N = 72 -> Np = 80, Kp = 128: 1280 words).
func.func @qweight_shape(%x: tensor<?x72xf16>, %qw: tensor<512xi32>, %s: tensor<3x80xf16>) -> tensor<?x72xf16> {
  // expected-error @+1 {{expected qweight of shape [1280] for bits = 4, K = 72, N = 72 in layout mma16x64, got 'tensor<512xi32>'}}
  %y = wq.linear %x, %qw, %s {bits = 4 : i64, group_size = 32 : i64, sym = true, in_features = 72 : i64, out_features = 72 : i64, scale_dtype = f16, layout = #wq.layout<mma16x64>} : (tensor<?x72xf16>, tensor<512xi32>, tensor<3x80xf16>) -> tensor<?x72xf16>
  return %y : tensor<?x72xf16>
}

// -----

// Tests that scales are padded to Np.
func.func @scales_shape(%qw: tensor<512xi32>, %s: tensor<3x20xf16>) -> tensor<20x72xf32> {
  // expected-error @+1 {{expected scales of shape [3, 32] (groups = 3 for K = 72, group_size = 32; N = 20 padded to 16), got 'tensor<3x20xf16>'}}
  %w = wq.dequantize %qw, %s {bits = 4 : i64, group_size = 32 : i64, sym = true, in_features = 72 : i64, out_features = 20 : i64, scale_dtype = f16, layout = #wq.layout<mma16x64>} : (tensor<512xi32>, tensor<3x20xf16>) -> tensor<20x72xf32>
  return %w : tensor<20x72xf32>
}

// -----

// Tests that the layout holds 4-bit codes only.
func.func @bits(%qw: tensor<384xi32>, %s: tensor<3x32xf16>) -> tensor<20x72xf32> {
  // expected-error @+1 {{layout mma16x64 holds 4-bit codes, got bits = 3}}
  %w = wq.dequantize %qw, %s {bits = 3 : i64, group_size = 32 : i64, sym = true, in_features = 72 : i64, out_features = 20 : i64, scale_dtype = f16, layout = #wq.layout<mma16x64>} : (tensor<384xi32>, tensor<3x32xf16>) -> tensor<20x72xf32>
  return %w : tensor<20x72xf32>
}

// -----

// Tests that scales must be f16.
func.func @scale_dtype(%qw: tensor<512xi32>, %s: tensor<3x32xf32>) -> tensor<20x72xf32> {
  // expected-error @+1 {{layout mma16x64 requires scale_dtype f16, got 'f32'}}
  %w = wq.dequantize %qw, %s {bits = 4 : i64, group_size = 32 : i64, sym = true, in_features = 72 : i64, out_features = 20 : i64, scale_dtype = f32, layout = #wq.layout<mma16x64>} : (tensor<512xi32>, tensor<3x32xf32>) -> tensor<20x72xf32>
  return %w : tensor<20x72xf32>
}

// -----

// Tests that zero points must be f16 values.
func.func @zero_dtype(%qw: tensor<512xi32>, %s: tensor<3x32xf16>, %z: tensor<3x32xi32>) -> tensor<20x72xf32> {
  // expected-error @+1 {{layout mma16x64 requires zero_dtype f16, got 'i32'}}
  %w = wq.dequantize %qw, %s zeros(%z) {bits = 4 : i64, group_size = 32 : i64, sym = false, in_features = 72 : i64, out_features = 20 : i64, scale_dtype = f16, zero_dtype = i32, layout = #wq.layout<mma16x64>} : (tensor<512xi32>, tensor<3x32xf16>, tensor<3x32xi32>) -> tensor<20x72xf32>
  return %w : tensor<20x72xf32>
}

// -----

// Tests that act-order g_idx is refused.
func.func @g_idx(%qw: tensor<512xi32>, %s: tensor<3x32xf16>, %g: tensor<72xi32>) -> tensor<20x72xf32> {
  // expected-error @+1 {{layout mma16x64 has no g_idx (groups follow k; reorder act-order weights before repacking)}}
  %w = wq.dequantize %qw, %s g_idx(%g) {bits = 4 : i64, group_size = 32 : i64, sym = true, in_features = 72 : i64, out_features = 20 : i64, scale_dtype = f16, layout = #wq.layout<mma16x64>} : (tensor<512xi32>, tensor<3x32xf16>, tensor<72xi32>) -> tensor<20x72xf32>
  return %w : tensor<20x72xf32>
}
