// RUN: quant-opt %s -split-input-file | quant-opt -split-input-file | FileCheck %s
// RUN: quant-opt %s -split-input-file --mlir-print-op-generic | quant-opt -split-input-file | FileCheck %s

// Tests that a symmetric GPTQ-layout wq.linear round-trips (K = 64, N = 172, 4 bits, G = 32).
// CHECK-LABEL: func.func @linear_gptq_sym
// CHECK-SAME: (%[[X:.*]]: tensor<?x64xf16>, %[[QW:.*]]: tensor<8x172xi32>, %[[S:.*]]: tensor<2x172xf16>)
// CHECK: wq.linear %[[X]], %[[QW]], %[[S]] {bits = 4 : i64, group_size = 32 : i64, in_features = 64 : i64, layout = #wq.layout<gptq>, out_features = 172 : i64, scale_dtype = f16, sym = true}
// CHECK-SAME: : (tensor<?x64xf16>, tensor<8x172xi32>, tensor<2x172xf16>) -> tensor<?x172xf16>
func.func @linear_gptq_sym(%x: tensor<?x64xf16>, %qw: tensor<8x172xi32>, %s: tensor<2x172xf16>) -> tensor<?x172xf16> {
  %y = wq.linear %x, %qw, %s
      {bits = 4 : i64, group_size = 32 : i64, sym = true, in_features = 64 : i64,
       out_features = 172 : i64, scale_dtype = f16, layout = #wq.layout<gptq>}
      : (tensor<?x64xf16>, tensor<8x172xi32>, tensor<2x172xf16>) -> tensor<?x172xf16>
  return %y : tensor<?x172xf16>
}

// -----

// Tests that an asymmetric GPTQ-layout wq.linear round-trips with packed qzeros, act-order g_idx and a bias.
// CHECK-LABEL: func.func @linear_gptq_asym_act_order_bias
// CHECK-SAME: (%[[X:.*]]: tensor<?x64xf32>, %[[QW:.*]]: tensor<8x172xi32>, %[[S:.*]]: tensor<2x172xf16>, %[[Z:.*]]: tensor<2x22xi32>, %[[G:.*]]: tensor<64xi32>, %[[B:.*]]: tensor<172xf32>)
// CHECK: wq.linear %[[X]], %[[QW]], %[[S]] zeros(%[[Z]]) g_idx(%[[G]]) bias(%[[B]])
// CHECK-SAME: sym = false, zero_dtype = i32}
func.func @linear_gptq_asym_act_order_bias(%x: tensor<?x64xf32>, %qw: tensor<8x172xi32>, %s: tensor<2x172xf16>,
                                           %qz: tensor<2x22xi32>, %g: tensor<64xi32>, %b: tensor<172xf32>) -> tensor<?x172xf32> {
  %y = wq.linear %x, %qw, %s zeros(%qz) g_idx(%g) bias(%b)
      {bits = 4 : i64, group_size = 32 : i64, sym = false, in_features = 64 : i64,
       out_features = 172 : i64, scale_dtype = f16, zero_dtype = i32, layout = #wq.layout<gptq>}
      : (tensor<?x64xf32>, tensor<8x172xi32>, tensor<2x172xf16>, tensor<2x22xi32>, tensor<64xi32>, tensor<172xf32>)
        -> tensor<?x172xf32>
  return %y : tensor<?x172xf32>
}

// -----

// Tests that a 3-bit GPTQ-layout wq.linear with a ragged last group round-trips (K = 96: 9 qweight rows, G = 64: 2 groups).
// CHECK-LABEL: func.func @linear_gptq_3bit
// CHECK: wq.linear %{{.*}}, %{{.*}}, %{{.*}} zeros(%{{.*}}) {bits = 3 : i64, group_size = 64 : i64
// CHECK-SAME: (tensor<4x96xf32>, tensor<9x64xi32>, tensor<2x64xbf16>, tensor<2x6xi32>) -> tensor<4x64xf32>
func.func @linear_gptq_3bit(%x: tensor<4x96xf32>, %qw: tensor<9x64xi32>, %s: tensor<2x64xbf16>, %qz: tensor<2x6xi32>) -> tensor<4x64xf32> {
  %y = wq.linear %x, %qw, %s zeros(%qz)
      {bits = 3 : i64, group_size = 64 : i64, sym = false, in_features = 96 : i64,
       out_features = 64 : i64, scale_dtype = bf16, zero_dtype = i32, layout = #wq.layout<gptq>}
      : (tensor<4x96xf32>, tensor<9x64xi32>, tensor<2x64xbf16>, tensor<2x6xi32>) -> tensor<4x64xf32>
  return %y : tensor<4x64xf32>
}

// -----

// Tests that a per-channel 8-bit rows-layout wq.linear round-trips (qweight [N, K*8/32]).
// CHECK-LABEL: func.func @linear_rows_per_channel
// CHECK: wq.linear %{{.*}}, %{{.*}}, %{{.*}} {bits = 8 : i64, group_size = -1 : i64, in_features = 172 : i64, layout = #wq.layout<rows>, out_features = 64 : i64, scale_dtype = f32, sym = true}
// CHECK-SAME: (tensor<?x172xf32>, tensor<64x43xi32>, tensor<1x64xf32>) -> tensor<?x64xf32>
func.func @linear_rows_per_channel(%x: tensor<?x172xf32>, %qw: tensor<64x43xi32>, %s: tensor<1x64xf32>) -> tensor<?x64xf32> {
  %y = wq.linear %x, %qw, %s
      {bits = 8 : i64, group_size = -1 : i64, sym = true, in_features = 172 : i64,
       out_features = 64 : i64, scale_dtype = f32, layout = #wq.layout<rows>}
      : (tensor<?x172xf32>, tensor<64x43xi32>, tensor<1x64xf32>) -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}

// -----

// Tests that a rows-layout wq.linear with float (HQQ-style) zeros and a ragged 3-bit bit stream round-trips.
// CHECK-LABEL: func.func @linear_rows_float_zeros
// CHECK: wq.linear %{{.*}}, %{{.*}}, %{{.*}} zeros(%{{.*}}) {bits = 3 : i64, group_size = 64 : i64
// CHECK-SAME: zero_dtype = f16}
// CHECK-SAME: (tensor<?x172xf32>, tensor<64x17xi32>, tensor<3x64xf16>, tensor<3x64xf16>) -> tensor<?x64xf32>
func.func @linear_rows_float_zeros(%x: tensor<?x172xf32>, %qw: tensor<64x17xi32>, %s: tensor<3x64xf16>, %z: tensor<3x64xf16>) -> tensor<?x64xf32> {
  %y = wq.linear %x, %qw, %s zeros(%z)
      {bits = 3 : i64, group_size = 64 : i64, sym = false, in_features = 172 : i64,
       out_features = 64 : i64, scale_dtype = f16, zero_dtype = f16, layout = #wq.layout<rows>}
      : (tensor<?x172xf32>, tensor<64x17xi32>, tensor<3x64xf16>, tensor<3x64xf16>) -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}

// -----

// Tests that a 2-bit rows-layout wq.linear with unpacked i8 zeros and a g_idx round-trips.
// CHECK-LABEL: func.func @linear_rows_int_zeros_gidx
// CHECK: wq.linear %{{.*}}, %{{.*}}, %{{.*}} zeros(%{{.*}}) g_idx(%{{.*}}) {bits = 2 : i64
// CHECK-SAME: zero_dtype = i8}
func.func @linear_rows_int_zeros_gidx(%x: tensor<?x64xf32>, %qw: tensor<16x4xi32>, %s: tensor<2x16xf32>, %z: tensor<2x16xi8>, %g: tensor<64xi32>) -> tensor<?x16xf32> {
  %y = wq.linear %x, %qw, %s zeros(%z) g_idx(%g)
      {bits = 2 : i64, group_size = 32 : i64, sym = false, in_features = 64 : i64,
       out_features = 16 : i64, scale_dtype = f32, zero_dtype = i8, layout = #wq.layout<rows>}
      : (tensor<?x64xf32>, tensor<16x4xi32>, tensor<2x16xf32>, tensor<2x16xi8>, tensor<64xi32>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// Tests that a wq.linear with only a bias among the optional operands round-trips.
// CHECK-LABEL: func.func @linear_bias_only
// CHECK-SAME: %[[B:[^:]*]]: tensor<16xf32>)
// CHECK: wq.linear %{{.*}}, %{{.*}}, %{{.*}} bias(%[[B]]) {
func.func @linear_bias_only(%x: tensor<?x64xf32>, %qw: tensor<16x8xi32>, %s: tensor<1x16xf32>, %b: tensor<16xf32>) -> tensor<?x16xf32> {
  %y = wq.linear %x, %qw, %s bias(%b)
      {bits = 4 : i64, group_size = 128 : i64, sym = true, in_features = 64 : i64,
       out_features = 16 : i64, scale_dtype = f32, layout = #wq.layout<rows>}
      : (tensor<?x64xf32>, tensor<16x8xi32>, tensor<1x16xf32>, tensor<16xf32>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// Tests that an NF4 wq.linear (16-entry codebook, block size 64, no zeros) round-trips.
// CHECK-LABEL: func.func @linear_nf4
// CHECK: wq.linear %{{.*}}, %{{.*}}, %{{.*}} {bits = 4 : i64, codebook = array<f32: -1.000000e+00, -0.6961928, -0.525073051, -0.394917488, -0.284441382, -0.18477343, -0.0910500362, 0.000000e+00, 0.0795802995, 0.160930201, 0.246112302, 0.337915242, 0.440709829, 5.626170e-01, 0.722956836, 1.000000e+00>, group_size = 64 : i64
func.func @linear_nf4(%x: tensor<?x128xbf16>, %qw: tensor<32x16xi32>, %s: tensor<2x32xf32>) -> tensor<?x32xbf16> {
  %y = wq.linear %x, %qw, %s
      {bits = 4 : i64, group_size = 64 : i64, sym = true, in_features = 128 : i64,
       out_features = 32 : i64, scale_dtype = f32, layout = #wq.layout<rows>,
       codebook = array<f32: -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
                             -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
                             0.07958029955625534, 0.16093020141124725, 0.24611230194568634,
                             0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
                             0.7229568362236023, 1.0>}
      : (tensor<?x128xbf16>, tensor<32x16xi32>, tensor<2x32xf32>) -> tensor<?x32xbf16>
  return %y : tensor<?x32xbf16>
}

// -----

// Tests that wq.dequantize round-trips in the GPTQ layout with packed zeros and g_idx.
// CHECK-LABEL: func.func @dequantize_gptq
// CHECK-SAME: (%[[QW:.*]]: tensor<8x172xi32>, %[[S:.*]]: tensor<2x172xf16>, %[[Z:.*]]: tensor<2x22xi32>, %[[G:.*]]: tensor<64xi32>)
// CHECK: wq.dequantize %[[QW]], %[[S]] zeros(%[[Z]]) g_idx(%[[G]]) {bits = 4 : i64
// CHECK-SAME: : (tensor<8x172xi32>, tensor<2x172xf16>, tensor<2x22xi32>, tensor<64xi32>) -> tensor<172x64xf32>
func.func @dequantize_gptq(%qw: tensor<8x172xi32>, %s: tensor<2x172xf16>, %qz: tensor<2x22xi32>, %g: tensor<64xi32>) -> tensor<172x64xf32> {
  %w = wq.dequantize %qw, %s zeros(%qz) g_idx(%g)
      {bits = 4 : i64, group_size = 32 : i64, sym = false, in_features = 64 : i64,
       out_features = 172 : i64, scale_dtype = f16, zero_dtype = i32, layout = #wq.layout<gptq>}
      : (tensor<8x172xi32>, tensor<2x172xf16>, tensor<2x22xi32>, tensor<64xi32>) -> tensor<172x64xf32>
  return %w : tensor<172x64xf32>
}

// -----

// Tests that a symmetric rows-layout wq.dequantize round-trips to an f16 weight.
// CHECK-LABEL: func.func @dequantize_rows
// CHECK: wq.dequantize %{{.*}}, %{{.*}} {bits = 4 : i64, group_size = -1 : i64, in_features = 64 : i64, layout = #wq.layout<rows>, out_features = 172 : i64, scale_dtype = f32, sym = true}
// CHECK-SAME: : (tensor<172x8xi32>, tensor<1x172xf32>) -> tensor<172x64xf16>
func.func @dequantize_rows(%qw: tensor<172x8xi32>, %s: tensor<1x172xf32>) -> tensor<172x64xf16> {
  %w = wq.dequantize %qw, %s
      {bits = 4 : i64, group_size = -1 : i64, sym = true, in_features = 64 : i64,
       out_features = 172 : i64, scale_dtype = f32, layout = #wq.layout<rows>}
      : (tensor<172x8xi32>, tensor<1x172xf32>) -> tensor<172x64xf16>
  return %w : tensor<172x64xf16>
}
