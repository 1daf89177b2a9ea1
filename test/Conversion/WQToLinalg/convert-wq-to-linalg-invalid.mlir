// RUN: quant-opt %s -split-input-file -convert-wq-to-linalg -verify-diagnostics

// Tests that wq.linear with f16 activations is reported, not half-lowered.

func.func @f16_activations(%x: tensor<?x64xf16>, %q: tensor<32x8xi32>, %s: tensor<2x32xf16>) -> tensor<?x32xf16> {
  // expected-error @+1 {{cannot be lowered to linalg: only f32 activations are supported by the CPU lowering}}
  %y = wq.linear %x, %q, %s {bits = 4 : i64, group_size = 32 : i64, sym = true,
      in_features = 64 : i64, out_features = 32 : i64, scale_dtype = f16,
      layout = #wq.layout<rows>}
      : (tensor<?x64xf16>, tensor<32x8xi32>, tensor<2x32xf16>) -> tensor<?x32xf16>
  return %y : tensor<?x32xf16>
}
