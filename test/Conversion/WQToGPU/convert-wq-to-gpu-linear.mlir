// RUN: quant-opt %s -split-input-file -verify-diagnostics --convert-wq-to-gpu="tiles=splitk:warps=2,m=1-8" | FileCheck %s

// Tests that every wq.linear in the mma16x64 layout gets a kernel module for
// its configuration (two equal layers share one), and that the ops stay.
// CHECK: module attributes {gpu.container_module}
// CHECK: wq.linear
// CHECK: wq.linear
// CHECK: gpu.module @wq_n20_k72_b4_g32_asym attributes {qc.layer = {bits = 4 : i64, group_size = 32 : i64, k = 72 : i64, n = 20 : i64, sym = false}
// CHECK: gpu.func @splitk_0(%{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i64, %{{.*}}: i32) kernel
// CHECK-NOT: gpu.module
func.func @two(%x: tensor<?x72xf16>, %qw: tensor<512xi32>, %s: tensor<3x32xf16>, %z: tensor<3x32xf16>) -> tensor<?x20xf16> {
  %a = wq.linear %x, %qw, %s zeros(%z) {bits = 4 : i64, group_size = 32 : i64, sym = false, in_features = 72 : i64, out_features = 20 : i64, scale_dtype = f16, zero_dtype = f16, layout = #wq.layout<mma16x64>} : (tensor<?x72xf16>, tensor<512xi32>, tensor<3x32xf16>, tensor<3x32xf16>) -> tensor<?x20xf16>
  %b = wq.linear %x, %qw, %s zeros(%z) {bits = 4 : i64, group_size = 32 : i64, sym = false, in_features = 72 : i64, out_features = 20 : i64, scale_dtype = f16, zero_dtype = f16, layout = #wq.layout<mma16x64>} : (tensor<?x72xf16>, tensor<512xi32>, tensor<3x32xf16>, tensor<3x32xf16>) -> tensor<?x20xf16>
  return %b : tensor<?x20xf16>
}

// -----

// Tests that layers in another layout must be repacked first.
func.func @gptq(%x: tensor<?x64xf32>, %qw: tensor<8x16xi32>, %s: tensor<1x16xf16>) -> tensor<?x16xf32> {
  // expected-error @+1 {{convert-wq-to-gpu: the GPU kernels read the mma16x64 layout; run wq-repack-mma16x64 first (layout gptq)}}
  %y = wq.linear %x, %qw, %s {bits = 4 : i64, group_size = -1 : i64, sym = true, in_features = 64 : i64, out_features = 16 : i64, scale_dtype = f16, layout = #wq.layout<gptq>} : (tensor<?x64xf32>, tensor<8x16xi32>, tensor<1x16xf16>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// Tests that a layout-valid layer the kernels cannot serve is reported at
// the op (group size 24 is not a multiple of the 16-column MMA tile).
func.func @group24(%x: tensor<?x72xf16>, %qw: tensor<512xi32>, %s: tensor<3x32xf16>) -> tensor<?x20xf16> {
  // expected-error @+1 {{GPU kernels need group_size = -1 or a positive multiple of 16 (one group per 16x16 MMA tile), got 24}}
  %y = wq.linear %x, %qw, %s {bits = 4 : i64, group_size = 24 : i64, sym = true, in_features = 72 : i64, out_features = 20 : i64, scale_dtype = f16, layout = #wq.layout<mma16x64>} : (tensor<?x72xf16>, tensor<512xi32>, tensor<3x32xf16>) -> tensor<?x20xf16>
  return %y : tensor<?x20xf16>
}
