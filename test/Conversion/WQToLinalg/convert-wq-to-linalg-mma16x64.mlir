// RUN: quant-opt %s -verify-diagnostics --convert-wq-to-linalg

// Tests that the CPU reference lowering refuses the GPU kernel layout with a
// pointer to the inverse repacking.
func.func @mma(%qw: tensor<128xi32>, %s: tensor<1x16xf16>) -> tensor<16x64xf32> {
  // expected-error @+1 {{cannot be lowered to linalg: layout mma16x64 is the GPU kernels' layout (repack to gptq with wq-repack-gptq for the CPU path)}}
  %w = wq.dequantize %qw, %s {bits = 4 : i64, group_size = -1 : i64, sym = true, in_features = 64 : i64, out_features = 16 : i64, scale_dtype = f16, layout = #wq.layout<mma16x64>} : (tensor<128xi32>, tensor<1x16xf16>) -> tensor<16x64xf32>
  return %w : tensor<16x64xf32>
}
