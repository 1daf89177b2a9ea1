// RUN: quant-opt %s -split-input-file -convert-wq-to-linalg | FileCheck %s

// Tests that wq.linear becomes an [N, K] dequantization generic (codes read
// as 64-bit word pairs, shifted and masked; scale widened from f16; the
// symmetric zero 2^(b-1)) followed by the matmul nest reading it as [N, K].

// CHECK-LABEL: func.func @linear_rows_sym
// CHECK-SAME: (%[[X:.*]]: tensor<?x64xf32>, %[[Q:.*]]: tensor<32x8xi32>, %[[S:.*]]: tensor<2x32xf16>)
// CHECK-DAG: %[[ZERO:.*]] = arith.constant 8.000000e+00 : f32
// CHECK: %[[W:.*]] = linalg.generic {{.*}}iterator_types = ["parallel", "parallel"]} outs(%{{.*}} : tensor<32x64xf32>)
// CHECK: tensor.extract %[[Q]]
// CHECK: arith.shrui
// CHECK: arith.andi
// CHECK: arith.extf {{.*}} : f16 to f32
// CHECK: arith.subf %{{.*}}, %[[ZERO]]
// CHECK-NOT: linalg.transpose
// CHECK: linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "reduction"]} ins(%[[X]], %[[W]] :
// CHECK-NOT: wq.
func.func @linear_rows_sym(%x: tensor<?x64xf32>, %q: tensor<32x8xi32>, %s: tensor<2x32xf16>) -> tensor<?x32xf32> {
  %y = wq.linear %x, %q, %s {bits = 4 : i64, group_size = 32 : i64, sym = true,
      in_features = 64 : i64, out_features = 32 : i64, scale_dtype = f16,
      layout = #wq.layout<rows>}
      : (tensor<?x64xf32>, tensor<32x8xi32>, tensor<2x32xf16>) -> tensor<?x32xf32>
  return %y : tensor<?x32xf32>
}

// -----

// Tests that GPTQ v1 integer zeros are decoded as (stored + 1) mod 2^b, that
// g_idx selects the group, and that the bias seeds the accumulator.

// CHECK-LABEL: func.func @linear_gptq_asym
// CHECK-SAME: %[[G:[^:]*]]: tensor<64xi32>
// CHECK: linalg.generic
// CHECK: tensor.extract %[[G]]
// CHECK: arith.addi %{{.*}}, %c1_i64
// CHECK: arith.andi %{{.*}}, %c15_i64
// CHECK: linalg.generic {{.*}}ins(%{{.*}} : tensor<32xf32>)
// CHECK: linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "reduction"]}
func.func @linear_gptq_asym(%x: tensor<?x64xf32>, %q: tensor<8x32xi32>, %s: tensor<2x32xf16>,
                            %z: tensor<2x4xi32>, %g: tensor<64xi32>, %b: tensor<32xf32>) -> tensor<?x32xf32> {
  %y = wq.linear %x, %q, %s zeros(%z) g_idx(%g) bias(%b) {bits = 4 : i64, group_size = 32 : i64,
      sym = false, in_features = 64 : i64, out_features = 32 : i64, scale_dtype = f16,
      zero_dtype = i32, layout = #wq.layout<gptq>}
      : (tensor<?x64xf32>, tensor<8x32xi32>, tensor<2x32xf16>, tensor<2x4xi32>, tensor<64xi32>, tensor<32xf32>) -> tensor<?x32xf32>
  return %y : tensor<?x32xf32>
}

// -----

// Tests that wq.dequantize to f16 rounds the f32 weights with arith.truncf.

// CHECK-LABEL: func.func @dequantize_f16
// CHECK: linalg.generic
// CHECK: arith.truncf {{.*}} : f32 to f16
func.func @dequantize_f16(%q: tensor<4x1xi32>, %s: tensor<1x4xf32>) -> tensor<4x8xf16> {
  %w = wq.dequantize %q, %s {bits = 4 : i64, group_size = -1 : i64, sym = true,
      in_features = 8 : i64, out_features = 4 : i64, scale_dtype = f32,
      layout = #wq.layout<rows>} : (tensor<4x1xi32>, tensor<1x4xf32>) -> tensor<4x8xf16>
  return %w : tensor<4x8xf16>
}
