// RUN: quant-opt %s -split-input-file -verify-diagnostics --wq-repack-mma16x64

// Tests that layers the GPU layout cannot hold are reported.
func.func @bits3(%qw: tensor<6x16xi32>, %s: tensor<1x16xf16>) -> tensor<16x64xf32> {
  // expected-error @+1 {{wq-repack-mma16x64: only 4-bit gptq layers with f16 scales and without g_idx or codebook can be repacked}}
  %w = wq.dequantize %qw, %s {bits = 3 : i64, group_size = -1 : i64, sym = true, in_features = 64 : i64, out_features = 16 : i64, scale_dtype = f16, layout = #wq.layout<gptq>} : (tensor<6x16xi32>, tensor<1x16xf16>) -> tensor<16x64xf32>
  return %w : tensor<16x64xf32>
}

// -----

// Tests that parameters that are not constants are reported.
func.func @args(%qw: tensor<8x16xi32>, %s: tensor<1x16xf16>) -> tensor<16x64xf32> {
  // expected-error @+1 {{wq-repack-mma16x64: packed operands must be arith.constant tensors (parameters in an overlay file are not repacked yet)}}
  %w = wq.dequantize %qw, %s {bits = 4 : i64, group_size = -1 : i64, sym = true, in_features = 64 : i64, out_features = 16 : i64, scale_dtype = f16, layout = #wq.layout<gptq>} : (tensor<8x16xi32>, tensor<1x16xf16>) -> tensor<16x64xf32>
  return %w : tensor<16x64xf32>
}
