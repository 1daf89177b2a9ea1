// RUN: quant-opt %s -split-input-file -convert-wq-to-linalg | FileCheck %s

// Tests that a rows-layout wq.linear becomes an [N, K] dequantization
// generic (codes read as 64-bit word pairs, shifted and masked; scale
// widened from f16; the symmetric zero 2^(b-1)) followed by the matmul nest
// reading it as [N, K].

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

// Tests that a GPTQ-layout linear without g_idx, with whole codes per word
// and whole words per group, becomes one fused generic that reads the
// stored f16 scales and GPTQ v1 zero words (nothing computed from the
// weights alone outside it): (t, n, k) reading word k floordiv 8 of column
// n, scale (k floordiv 32, n) widened, zero word (k floordiv 32, n
// floordiv 8) shifted by (n mod 8) * 4, plus one, masked; the code shifted
// by (k mod 8) * 4 and masked; s * (q - z) before the multiply-add.

// CHECK-DAG: #[[WORD:.*]] = affine_map<(d0, d1, d2) -> (d2 floordiv 8, d1)>
// CHECK-DAG: #[[GROUP:.*]] = affine_map<(d0, d1, d2) -> (d2 floordiv 32, d1)>
// CHECK-DAG: #[[ZWORD:.*]] = affine_map<(d0, d1, d2) -> (d2 floordiv 32, d1 floordiv 8)>
// CHECK-LABEL: func.func @linear_gptq_fused
// CHECK-SAME: (%[[X:.*]]: tensor<?x72xf32>, %[[Q:.*]]: tensor<9x20xi32>, %[[S:.*]]: tensor<3x20xf16>, %[[Z:.*]]: tensor<3x3xi32>)
// CHECK-NOT: linalg.generic
// CHECK: linalg.generic {indexing_maps = [#{{.*}}, #[[WORD]], #[[GROUP]], #[[ZWORD]], #{{.*}}], iterator_types = ["parallel", "parallel", "reduction"]} ins(%[[X]], %[[Q]], %[[S]], %[[Z]] : tensor<?x72xf32>, tensor<9x20xi32>, tensor<3x20xf16>, tensor<3x3xi32>)
// CHECK: ^bb0(%[[XV:.*]]: f32, %[[WORD_V:.*]]: i32, %[[SV:.*]]: f16, %[[ZW:.*]]: i32, %[[ACC:.*]]: f32):
// CHECK: %[[K:.*]] = linalg.index 2 : index
// CHECK: %[[SLOT:.*]] = arith.remui %[[K]], %c8
// CHECK: %[[BIT:.*]] = arith.muli %[[SLOT]], %c4
// CHECK: %[[SH:.*]] = arith.index_cast %[[BIT]] : index to i32
// CHECK: %[[SHIFTED:.*]] = arith.shrui %[[WORD_V]], %[[SH]] : i32
// CHECK: %[[CODE:.*]] = arith.andi %[[SHIFTED]], %c15_i32 : i32
// CHECK: %[[QF:.*]] = arith.uitofp %[[CODE]] : i32 to f32
// CHECK: %[[SF:.*]] = arith.extf %[[SV]] : f16 to f32
// CHECK: %[[N:.*]] = linalg.index 1 : index
// CHECK: %[[ZSLOT:.*]] = arith.remui %[[N]], %c8
// CHECK: %[[ZBIT:.*]] = arith.muli %[[ZSLOT]], %c4
// CHECK: %[[ZSH:.*]] = arith.index_cast %[[ZBIT]] : index to i32
// CHECK: %[[ZSHIFTED:.*]] = arith.shrui %[[ZW]], %[[ZSH]] : i32
// CHECK: %[[ZPLUS:.*]] = arith.addi %[[ZSHIFTED]], %c1_i32 : i32
// CHECK: %[[ZCODE:.*]] = arith.andi %[[ZPLUS]], %c15_i32 : i32
// CHECK: %[[ZF:.*]] = arith.uitofp %[[ZCODE]] : i32 to f32
// CHECK: %[[CENT:.*]] = arith.subf %[[QF]], %[[ZF]] : f32
// CHECK: %[[WV:.*]] = arith.mulf %[[SF]], %[[CENT]] : f32
// CHECK: arith.mulf %[[XV]], %[[WV]]
// CHECK-NOT: wq.
func.func @linear_gptq_fused(%x: tensor<?x72xf32>, %q: tensor<9x20xi32>, %s: tensor<3x20xf16>,
                             %z: tensor<3x3xi32>) -> tensor<?x20xf32> {
  %y = wq.linear %x, %q, %s zeros(%z) {bits = 4 : i64, group_size = 32 : i64,
      sym = false, in_features = 72 : i64, out_features = 20 : i64, scale_dtype = f16,
      zero_dtype = i32, layout = #wq.layout<gptq>}
      : (tensor<?x72xf32>, tensor<9x20xi32>, tensor<3x20xf16>, tensor<3x3xi32>) -> tensor<?x20xf32>
  return %y : tensor<?x20xf32>
}

// -----

// Tests the other zero-point forms of the fused generic: symmetric (no
// zeros operand, the constant 2^(b - 1) = 8 in the body) and float zeros
// (read per group and widened like the scales).

// CHECK-DAG: #[[G:.*]] = affine_map<(d0, d1, d2) -> (d2 floordiv 32, d1)>
// CHECK-LABEL: func.func @linear_gptq_fused_sym
// CHECK-NOT: linalg.generic {{.*}}iterator_types = ["parallel", "parallel"]}
// CHECK: linalg.generic {{.*}} ins(%{{.*}}, %{{.*}}, %{{.*}} : tensor<?x64xf32>, tensor<8x16xi32>, tensor<2x16xbf16>)
// CHECK: ^bb0(%{{.*}}: f32, %{{.*}}: i32, %[[SV:.*]]: bf16, %{{.*}}: f32):
// CHECK: arith.extf %[[SV]] : bf16 to f32
// CHECK: arith.subf %{{.*}}, %cst{{.*}} : f32
// CHECK-LABEL: func.func @linear_gptq_fused_float_zeros
// CHECK: linalg.generic {indexing_maps = [#{{.*}}, #{{.*}}, #[[G]], #[[G]], #{{.*}}]{{.*}} ins(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} : tensor<?x64xf32>, tensor<8x16xi32>, tensor<2x16xf32>, tensor<2x16xf16>)
// CHECK: ^bb0(%{{.*}}: f32, %{{.*}}: i32, %{{.*}}: f32, %[[ZV:.*]]: f16, %{{.*}}: f32):
// CHECK: %[[ZF:.*]] = arith.extf %[[ZV]] : f16 to f32
// CHECK: arith.subf %{{.*}}, %[[ZF]] : f32
func.func @linear_gptq_fused_sym(%x: tensor<?x64xf32>, %q: tensor<8x16xi32>, %s: tensor<2x16xbf16>) -> tensor<?x16xf32> {
  %y = wq.linear %x, %q, %s {bits = 4 : i64, group_size = 32 : i64, sym = true,
      in_features = 64 : i64, out_features = 16 : i64, scale_dtype = bf16,
      layout = #wq.layout<gptq>}
      : (tensor<?x64xf32>, tensor<8x16xi32>, tensor<2x16xbf16>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}
func.func @linear_gptq_fused_float_zeros(%x: tensor<?x64xf32>, %q: tensor<8x16xi32>, %s: tensor<2x16xf32>,
                                         %z: tensor<2x16xf16>) -> tensor<?x16xf32> {
  %y = wq.linear %x, %q, %s zeros(%z) {bits = 4 : i64, group_size = 32 : i64, sym = false,
      in_features = 64 : i64, out_features = 16 : i64, scale_dtype = f32, zero_dtype = f16,
      layout = #wq.layout<gptq>}
      : (tensor<?x64xf32>, tensor<8x16xi32>, tensor<2x16xf32>, tensor<2x16xf16>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// Tests that groups that split a word (group 4 at 4 bits: 8 codes per word)
// and 3-bit codes (which straddle words) keep dequantize-then-multiply.

// CHECK-LABEL: func.func @linear_gptq_not_fused
// CHECK: linalg.generic {{.*}}iterator_types = ["parallel", "parallel"]} outs(%{{.*}} : tensor<16x64xf32>)
// CHECK: linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "reduction"]} ins(%{{.*}}, %{{.*}} : tensor<?x64xf32>, tensor<16x64xf32>)
// CHECK: linalg.generic {{.*}}iterator_types = ["parallel", "parallel"]} outs(%{{.*}} : tensor<32x64xf32>)
// CHECK: linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "reduction"]} ins(%{{.*}}, %{{.*}} : tensor<?x64xf32>, tensor<32x64xf32>)
func.func @linear_gptq_not_fused(%x: tensor<?x64xf32>, %q4: tensor<8x16xi32>, %s4: tensor<16x16xf32>,
                                 %q3: tensor<6x32xi32>, %s3: tensor<2x32xf32>) -> (tensor<?x16xf32>, tensor<?x32xf32>) {
  %a = wq.linear %x, %q4, %s4 {bits = 4 : i64, group_size = 4 : i64, sym = true,
      in_features = 64 : i64, out_features = 16 : i64, scale_dtype = f32,
      layout = #wq.layout<gptq>}
      : (tensor<?x64xf32>, tensor<8x16xi32>, tensor<16x16xf32>) -> tensor<?x16xf32>
  %b = wq.linear %x, %q3, %s3 {bits = 3 : i64, group_size = 32 : i64, sym = true,
      in_features = 64 : i64, out_features = 32 : i64, scale_dtype = f32,
      layout = #wq.layout<gptq>}
      : (tensor<?x64xf32>, tensor<6x32xi32>, tensor<2x32xf32>) -> tensor<?x32xf32>
  return %a, %b : tensor<?x16xf32>, tensor<?x32xf32>
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
