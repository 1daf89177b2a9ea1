// RUN: quant-opt %s -convert-wq-to-linalg -one-shot-bufferize="bufferize-function-boundaries" \
// RUN:   -convert-linalg-to-loops -convert-scf-to-cf -expand-strided-metadata -lower-affine \
// RUN:   -finalize-memref-to-llvm -convert-arith-to-llvm -convert-func-to-llvm \
// RUN:   -convert-cf-to-llvm -reconcile-unrealized-casts \
// RUN: | mlir-runner -e main -entry-point-result=void \
// RUN:   -shared-libs=%mlir_runner_utils -shared-libs=%mlir_c_runner_utils \
// RUN: | FileCheck %s

// Executes the reference dequantization on hand-packed weights whose
// expected values were computed by hand from dialects/WQ/README.md:
//   A: rows layout, 4-bit symmetric, per-channel f16 scales; codes 0..7 and
//      15..8 are the words 0x76543210 and 0x89ABCDEF.
//   B: gptq layout, 3-bit with float zeros: 32 codes in three words, codes
//      10 and 21 straddle word boundaries.
//   C: gptq layout, 4-bit asymmetric, group 4, v1 zero-minus-one integer
//      zeros (including z = 0, stored as 15).
//   D: NF4 codebook lookup with a g_idx that swaps the two groups.

func.func private @printMemrefF32(memref<*xf32>)

func.func @print(%t: tensor<?x?xf32>) {
  %m = bufferization.to_buffer %t : tensor<?x?xf32> to memref<?x?xf32>
  %u = memref.cast %m : memref<?x?xf32> to memref<*xf32>
  call @printMemrefF32(%u) : (memref<*xf32>) -> ()
  return
}

func.func @main() {
  // A.
  %qa = arith.constant dense<[[1985229328], [-1985229329]]> : tensor<2x1xi32>
  %sa = arith.constant dense<[[0.5, 2.0]]> : tensor<1x2xf16>
  %wa = wq.dequantize %qa, %sa {bits = 4 : i64, group_size = -1 : i64, sym = true,
      in_features = 8 : i64, out_features = 2 : i64, scale_dtype = f16,
      layout = #wq.layout<rows>} : (tensor<2x1xi32>, tensor<1x2xf16>) -> tensor<2x8xf32>
  %da = tensor.cast %wa : tensor<2x8xf32> to tensor<?x?xf32>
  call @print(%da) : (tensor<?x?xf32>) -> ()
  // CHECK: [-4,   -3.5,   -3,   -2.5,   -2,   -1.5,   -1,   -0.5]
  // CHECK: [14,   12,   10,   8,   6,   4,   2,   0]

  // B.
  %qb = arith.constant dense<[[-1644988362], [-95661912], [542105044]]> : tensor<3x1xi32>
  %sb = arith.constant dense<[[0.25]]> : tensor<1x1xf32>
  %zb = arith.constant dense<[[3.5]]> : tensor<1x1xf32>
  %wb = wq.dequantize %qb, %sb zeros(%zb) {bits = 3 : i64, group_size = -1 : i64,
      sym = false, in_features = 32 : i64, out_features = 1 : i64,
      scale_dtype = f32, zero_dtype = f32, layout = #wq.layout<gptq>}
      : (tensor<3x1xi32>, tensor<1x1xf32>, tensor<1x1xf32>) -> tensor<1x32xf32>
  %db = tensor.cast %wb : tensor<1x32xf32> to tensor<?x?xf32>
  call @print(%db) : (tensor<?x?xf32>) -> ()
  // CHECK: [0.625,   0.625,   -0.875,   0.125,   0.875,   0.625,   0.125,   0.875,   0.375,   -0.125,   -0.375,   0.125,   -0.375,   -0.625,   0.125,   -0.375,   0.125,   -0.625,   -0.625,   0.375,   0.875,   -0.625,   0.375,   0.625,   0.375,   -0.125,   0.875,   0.875,   0.125,   -0.875,   -0.875,   -0.625]

  // C.
  %qc = arith.constant dense<[[-2023406815, 858984207, -591750759]]> : tensor<1x3xi32>
  %sc = arith.constant dense<[[0.5, 0.25, 1.0], [2.0, 0.125, 0.75]]> : tensor<2x3xf16>
  %zc = arith.constant dense<[[2055], [4065]]> : tensor<2x1xi32>
  %wc = wq.dequantize %qc, %sc zeros(%zc) {bits = 4 : i64, group_size = 4 : i64,
      sym = false, in_features = 8 : i64, out_features = 3 : i64,
      scale_dtype = f16, zero_dtype = i32, layout = #wq.layout<gptq>}
      : (tensor<1x3xi32>, tensor<2x3xf16>, tensor<2x1xi32>) -> tensor<3x8xf32>
  %dc = tensor.cast %wc : tensor<3x8xf32> to tensor<?x?xf32>
  call @print(%dc) : (tensor<?x?xf32>) -> ()
  // CHECK: [-3.5,   -3,   -2.5,   -2,   6,   8,   10,   12]
  // CHECK: [3.5,   -0.25,   3.5,   -0.25,   -1.5,   -1.5,   -1.5,   -1.5]
  // CHECK: [0,   0,   0,   0,   7.5,   8.25,   9,   9.75]

  // D: codes 0, 15, 7, 8 in one row; g_idx [1, 1, 0, 0]; scales g0 = 2, g1 = 10.
  %qd = arith.constant dense<[[34800]]> : tensor<1x1xi32>
  %sd = arith.constant dense<[[2.0], [10.0]]> : tensor<2x1xf32>
  %gd = arith.constant dense<[1, 1, 0, 0]> : tensor<4xi32>
  %wd = wq.dequantize %qd, %sd g_idx(%gd) {bits = 4 : i64, group_size = 2 : i64,
      sym = true, in_features = 4 : i64, out_features = 1 : i64, scale_dtype = f32,
      layout = #wq.layout<rows>,
      codebook = array<f32: -1.0, -0.6961928009986877, -0.5250730514526367,
        -0.39491748809814453, -0.28444138169288635, -0.18477343022823334,
        -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
        0.24611230194568634, 0.33791524171829224, 0.44070982933044434,
        0.5626170039176941, 0.7229568362236023, 1.0>}
      : (tensor<1x1xi32>, tensor<2x1xf32>, tensor<4xi32>) -> tensor<1x4xf32>
  %dd = tensor.cast %wd : tensor<1x4xf32> to tensor<?x?xf32>
  call @print(%dd) : (tensor<?x?xf32>) -> ()
  // CHECK: [-10,   10,   0,   0.159161]
  return
}
