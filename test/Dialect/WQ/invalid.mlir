// RUN: quant-opt %s -split-input-file -verify-diagnostics

// Tests that wq.linear rejects a bit width outside {2, 3, 4, 8}.
func.func @bits(%x: tensor<?x64xf32>, %qw: tensor<10x16xi32>, %s: tensor<1x16xf32>) -> tensor<?x16xf32> {
  // expected-error @+2 {{attribute 'bits' failed to satisfy constraint: 64-bit signless integer attribute whose value is one of {2, 3, 4, 8}}}
  %y = wq.linear %x, %qw, %s
      {bits = 5 : i64, group_size = -1 : i64, sym = true, in_features = 64 : i64,
       out_features = 16 : i64, scale_dtype = f32, layout = #wq.layout<gptq>}
      : (tensor<?x64xf32>, tensor<10x16xi32>, tensor<1x16xf32>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// Tests that wq.linear rejects a group size that is neither -1 nor positive.
func.func @group_size(%x: tensor<?x64xf32>, %qw: tensor<8x16xi32>, %s: tensor<1x16xf32>) -> tensor<?x16xf32> {
  // expected-error @+2 {{attribute 'group_size' failed to satisfy constraint: 64-bit signless integer attribute whose value is -1 (per-channel) or positive}}
  %y = wq.linear %x, %qw, %s
      {bits = 4 : i64, group_size = 0 : i64, sym = true, in_features = 64 : i64,
       out_features = 16 : i64, scale_dtype = f32, layout = #wq.layout<gptq>}
      : (tensor<?x64xf32>, tensor<8x16xi32>, tensor<1x16xf32>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// Tests that wq.linear rejects a non-positive in_features.
func.func @in_features(%x: tensor<?x64xf32>, %qw: tensor<8x16xi32>, %s: tensor<1x16xf32>) -> tensor<?x16xf32> {
  // expected-error @+2 {{attribute 'in_features' failed to satisfy constraint: 64-bit signless integer attribute whose value is positive}}
  %y = wq.linear %x, %qw, %s
      {bits = 4 : i64, group_size = -1 : i64, sym = true, in_features = 0 : i64,
       out_features = 16 : i64, scale_dtype = f32, layout = #wq.layout<gptq>}
      : (tensor<?x64xf32>, tensor<8x16xi32>, tensor<1x16xf32>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// Tests that wq.linear rejects a non-positive out_features.
func.func @out_features(%x: tensor<?x64xf32>, %qw: tensor<8x16xi32>, %s: tensor<1x16xf32>) -> tensor<?x16xf32> {
  // expected-error @+2 {{attribute 'out_features' failed to satisfy constraint: 64-bit signless integer attribute whose value is positive}}
  %y = wq.linear %x, %qw, %s
      {bits = 4 : i64, group_size = -1 : i64, sym = true, in_features = 64 : i64,
       out_features = -16 : i64, scale_dtype = f32, layout = #wq.layout<gptq>}
      : (tensor<?x64xf32>, tensor<8x16xi32>, tensor<1x16xf32>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// Tests that wq.linear rejects a scale dtype other than f16, bf16 or f32.
func.func @scale_dtype(%x: tensor<?x64xf32>, %qw: tensor<8x16xi32>, %s: tensor<1x16xf64>) -> tensor<?x16xf32> {
  // expected-error @+2 {{attribute 'scale_dtype' failed to satisfy constraint: type attribute of 16-bit float or bfloat16 type or 32-bit float}}
  %y = wq.linear %x, %qw, %s
      {bits = 4 : i64, group_size = -1 : i64, sym = true, in_features = 64 : i64,
       out_features = 16 : i64, scale_dtype = f64, layout = #wq.layout<gptq>}
      : (tensor<?x64xf32>, tensor<8x16xi32>, tensor<1x16xf64>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// Tests that wq.linear rejects a zero dtype outside the allowed float and integer types.
func.func @zero_dtype(%x: tensor<?x64xf32>, %qw: tensor<16x8xi32>, %s: tensor<1x16xf32>, %z: tensor<1x16xi64>) -> tensor<?x16xf32> {
  // expected-error @+2 {{attribute 'zero_dtype' failed to satisfy constraint: type attribute of 16-bit float or bfloat16 type or 32-bit float or 8-bit signless integer or 16-bit signless integer or 32-bit signless integer}}
  %y = wq.linear %x, %qw, %s zeros(%z)
      {bits = 4 : i64, group_size = -1 : i64, sym = false, in_features = 64 : i64,
       out_features = 16 : i64, scale_dtype = f32, zero_dtype = i64, layout = #wq.layout<rows>}
      : (tensor<?x64xf32>, tensor<16x8xi32>, tensor<1x16xf32>, tensor<1x16xi64>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// Tests that wq.linear rejects an unknown layout.
func.func @layout(%x: tensor<?x64xf32>, %qw: tensor<8x16xi32>, %s: tensor<1x16xf32>) -> tensor<?x16xf32> {
  // expected-error @+4 {{expected ::mlir::qc::wq::Layout to be one of: gptq, rows}}
  // expected-error @+3 {{failed to parse WQ_LayoutAttr parameter 'value'}}
  %y = wq.linear %x, %qw, %s
      {bits = 4 : i64, group_size = -1 : i64, sym = true, in_features = 64 : i64,
       out_features = 16 : i64, scale_dtype = f32, layout = #wq.layout<marlin>}
      : (tensor<?x64xf32>, tensor<8x16xi32>, tensor<1x16xf32>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// Tests that wq.linear requires a layout.
func.func @missing_layout(%x: tensor<?x64xf32>, %qw: tensor<8x16xi32>, %s: tensor<1x16xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{requires attribute 'layout'}}
  %y = wq.linear %x, %qw, %s
      {bits = 4 : i64, group_size = -1 : i64, sym = true, in_features = 64 : i64,
       out_features = 16 : i64, scale_dtype = f32}
      : (tensor<?x64xf32>, tensor<8x16xi32>, tensor<1x16xf32>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// Tests that wq.linear rejects float packed weights.
func.func @qweight_float(%x: tensor<?x64xf32>, %qw: tensor<8x16xf32>, %s: tensor<1x16xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{operand #1 must be ranked tensor of signless integer values}}
  %y = wq.linear %x, %qw, %s
      {bits = 4 : i64, group_size = -1 : i64, sym = true, in_features = 64 : i64,
       out_features = 16 : i64, scale_dtype = f32, layout = #wq.layout<gptq>}
      : (tensor<?x64xf32>, tensor<8x16xf32>, tensor<1x16xf32>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// Tests that wq.linear rejects an integer activation.
func.func @x_integer(%x: tensor<?x64xi32>, %qw: tensor<8x16xi32>, %s: tensor<1x16xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{operand #0 must be ranked tensor of floating-point values}}
  %y = wq.linear %x, %qw, %s
      {bits = 4 : i64, group_size = -1 : i64, sym = true, in_features = 64 : i64,
       out_features = 16 : i64, scale_dtype = f32, layout = #wq.layout<gptq>}
      : (tensor<?x64xi32>, tensor<8x16xi32>, tensor<1x16xf32>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// Tests that wq.linear rejects a g_idx that is not i32.
func.func @g_idx_type(%x: tensor<?x64xf32>, %qw: tensor<8x16xi32>, %s: tensor<2x16xf32>, %g: tensor<64xi64>) -> tensor<?x16xf32> {
  // expected-error @+1 {{operand #3 must be ranked tensor of 32-bit signless integer values}}
  %y = wq.linear %x, %qw, %s g_idx(%g)
      {bits = 4 : i64, group_size = 32 : i64, sym = true, in_features = 64 : i64,
       out_features = 16 : i64, scale_dtype = f32, layout = #wq.layout<gptq>}
      : (tensor<?x64xf32>, tensor<8x16xi32>, tensor<2x16xf32>, tensor<64xi64>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// Tests that wq.linear rejects a codebook whose size is not 2^bits.
func.func @codebook_size(%x: tensor<?x64xf32>, %qw: tensor<16x8xi32>, %s: tensor<1x16xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{codebook must have 16 entries (2^bits) for bits = 4, got 3}}
  %y = wq.linear %x, %qw, %s
      {bits = 4 : i64, group_size = -1 : i64, sym = true, in_features = 64 : i64,
       out_features = 16 : i64, scale_dtype = f32, layout = #wq.layout<rows>,
       codebook = array<f32: -1.0, 0.0, 1.0>}
      : (tensor<?x64xf32>, tensor<16x8xi32>, tensor<1x16xf32>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// Tests that wq.linear rejects a codebook with a bit width other than 4.
func.func @codebook_bits(%x: tensor<?x64xf32>, %qw: tensor<16x4xi32>, %s: tensor<1x16xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{a codebook is only supported with bits = 4 (NF4), got bits = 2}}
  %y = wq.linear %x, %qw, %s
      {bits = 2 : i64, group_size = -1 : i64, sym = true, in_features = 64 : i64,
       out_features = 16 : i64, scale_dtype = f32, layout = #wq.layout<rows>,
       codebook = array<f32: -1.0, -0.5, 0.0, 1.0>}
      : (tensor<?x64xf32>, tensor<16x4xi32>, tensor<1x16xf32>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// Tests that wq.linear rejects a codebook with a non-finite entry.
func.func @codebook_nan(%x: tensor<?x64xf32>, %qw: tensor<16x8xi32>, %s: tensor<1x16xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{codebook entry 3 must be finite, got nan}}
  %y = wq.linear %x, %qw, %s
      {bits = 4 : i64, group_size = -1 : i64, sym = true, in_features = 64 : i64,
       out_features = 16 : i64, scale_dtype = f32, layout = #wq.layout<rows>,
       codebook = array<f32: -1.0, -0.875, -0.75, 0x7FC00000, -0.5, -0.375, -0.25, 0.0,
                             0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0>}
      : (tensor<?x64xf32>, tensor<16x8xi32>, tensor<1x16xf32>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// Tests that wq.linear rejects a codebook with sym = false.
func.func @codebook_asym(%x: tensor<?x64xf32>, %qw: tensor<16x8xi32>, %s: tensor<1x16xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{a codebook is symmetric (absmax-scaled): sym must be true}}
  %y = wq.linear %x, %qw, %s
      {bits = 4 : i64, group_size = -1 : i64, sym = false, in_features = 64 : i64,
       out_features = 16 : i64, scale_dtype = f32, layout = #wq.layout<rows>,
       codebook = array<f32: -1.0, -0.875, -0.75, -0.625, -0.5, -0.375, -0.25, 0.0,
                             0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0>}
      : (tensor<?x64xf32>, tensor<16x8xi32>, tensor<1x16xf32>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// Tests that wq.linear rejects zeros together with a codebook.
func.func @codebook_zeros(%x: tensor<?x64xf32>, %qw: tensor<16x8xi32>, %s: tensor<1x16xf32>, %z: tensor<1x16xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{zeros must be absent with a codebook}}
  %y = wq.linear %x, %qw, %s zeros(%z)
      {bits = 4 : i64, group_size = -1 : i64, sym = true, in_features = 64 : i64,
       out_features = 16 : i64, scale_dtype = f32, zero_dtype = f32, layout = #wq.layout<rows>,
       codebook = array<f32: -1.0, -0.875, -0.75, -0.625, -0.5, -0.375, -0.25, 0.0,
                             0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0>}
      : (tensor<?x64xf32>, tensor<16x8xi32>, tensor<1x16xf32>, tensor<1x16xf32>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// Tests that wq.linear rejects zeros with symmetric quantization.
func.func @sym_with_zeros(%x: tensor<?x64xf32>, %qw: tensor<8x16xi32>, %s: tensor<1x16xf32>, %z: tensor<1x2xi32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{zeros must be absent with sym = true (the zero point is 2^(bits-1) = 8)}}
  %y = wq.linear %x, %qw, %s zeros(%z)
      {bits = 4 : i64, group_size = -1 : i64, sym = true, in_features = 64 : i64,
       out_features = 16 : i64, scale_dtype = f32, zero_dtype = i32, layout = #wq.layout<gptq>}
      : (tensor<?x64xf32>, tensor<8x16xi32>, tensor<1x16xf32>, tensor<1x2xi32>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// Tests that wq.linear requires zeros with asymmetric quantization.
func.func @asym_without_zeros(%x: tensor<?x64xf32>, %qw: tensor<8x16xi32>, %s: tensor<1x16xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{zeros are required with sym = false}}
  %y = wq.linear %x, %qw, %s
      {bits = 4 : i64, group_size = -1 : i64, sym = false, in_features = 64 : i64,
       out_features = 16 : i64, scale_dtype = f32, layout = #wq.layout<gptq>}
      : (tensor<?x64xf32>, tensor<8x16xi32>, tensor<1x16xf32>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// Tests that wq.linear requires zero_dtype when zeros are present.
func.func @zeros_without_dtype(%x: tensor<?x64xf32>, %qw: tensor<8x16xi32>, %s: tensor<1x16xf32>, %z: tensor<1x2xi32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{zero_dtype is required when zeros are present}}
  %y = wq.linear %x, %qw, %s zeros(%z)
      {bits = 4 : i64, group_size = -1 : i64, sym = false, in_features = 64 : i64,
       out_features = 16 : i64, scale_dtype = f32, layout = #wq.layout<gptq>}
      : (tensor<?x64xf32>, tensor<8x16xi32>, tensor<1x16xf32>, tensor<1x2xi32>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// Tests that wq.linear rejects a zero_dtype without zeros.
func.func @dtype_without_zeros(%x: tensor<?x64xf32>, %qw: tensor<8x16xi32>, %s: tensor<1x16xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{zero_dtype 'i32' must be absent when zeros are absent}}
  %y = wq.linear %x, %qw, %s
      {bits = 4 : i64, group_size = -1 : i64, sym = true, in_features = 64 : i64,
       out_features = 16 : i64, scale_dtype = f32, zero_dtype = i32, layout = #wq.layout<gptq>}
      : (tensor<?x64xf32>, tensor<8x16xi32>, tensor<1x16xf32>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// Tests that 3-bit wq.linear in the GPTQ layout requires in_features % 32 == 0.
func.func @gptq_3bit_k(%x: tensor<?x40xf32>, %qw: tensor<4x32xi32>, %s: tensor<1x32xf32>) -> tensor<?x32xf32> {
  // expected-error @+1 {{layout gptq with bits = 3 requires in_features to be a multiple of 32, got 40}}
  %y = wq.linear %x, %qw, %s
      {bits = 3 : i64, group_size = -1 : i64, sym = true, in_features = 40 : i64,
       out_features = 32 : i64, scale_dtype = f32, layout = #wq.layout<gptq>}
      : (tensor<?x40xf32>, tensor<4x32xi32>, tensor<1x32xf32>) -> tensor<?x32xf32>
  return %y : tensor<?x32xf32>
}

// -----

// Tests that 3-bit wq.linear in the GPTQ layout with packed zeros requires out_features % 32 == 0.
func.func @gptq_3bit_n(%x: tensor<?x32xf32>, %qw: tensor<3x16xi32>, %s: tensor<1x16xf32>, %z: tensor<1x2xi32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{layout gptq with bits = 3 and integer zeros requires out_features to be a multiple of 32, got 16}}
  %y = wq.linear %x, %qw, %s zeros(%z)
      {bits = 3 : i64, group_size = -1 : i64, sym = false, in_features = 32 : i64,
       out_features = 16 : i64, scale_dtype = f32, zero_dtype = i32, layout = #wq.layout<gptq>}
      : (tensor<?x32xf32>, tensor<3x16xi32>, tensor<1x16xf32>, tensor<1x2xi32>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// Tests that wq.linear checks the qweight shape of the GPTQ layout ([K*bits/32, N]).
func.func @qweight_shape_gptq(%x: tensor<?x64xf32>, %qw: tensor<172x8xi32>, %s: tensor<2x172xf16>) -> tensor<?x172xf32> {
  // expected-error @+1 {{expected qweight of shape [8, 172] for bits = 4, K = 64, N = 172 in layout gptq, got 'tensor<172x8xi32>'}}
  %y = wq.linear %x, %qw, %s
      {bits = 4 : i64, group_size = 32 : i64, sym = true, in_features = 64 : i64,
       out_features = 172 : i64, scale_dtype = f16, layout = #wq.layout<gptq>}
      : (tensor<?x64xf32>, tensor<172x8xi32>, tensor<2x172xf16>) -> tensor<?x172xf32>
  return %y : tensor<?x172xf32>
}

// -----

// Tests that wq.linear checks the qweight shape of the rows layout ([N, ceil(K*bits/32)]).
func.func @qweight_shape_rows(%x: tensor<?x172xf32>, %qw: tensor<64x16xi32>, %s: tensor<1x64xf32>) -> tensor<?x64xf32> {
  // expected-error @+1 {{expected qweight of shape [64, 17] for bits = 3, K = 172, N = 64 in layout rows, got 'tensor<64x16xi32>'}}
  %y = wq.linear %x, %qw, %s
      {bits = 3 : i64, group_size = -1 : i64, sym = true, in_features = 172 : i64,
       out_features = 64 : i64, scale_dtype = f32, layout = #wq.layout<rows>}
      : (tensor<?x172xf32>, tensor<64x16xi32>, tensor<1x64xf32>) -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}

// -----

// Tests that wq.linear rejects packed weights whose element type is not i32.
func.func @qweight_element_type(%x: tensor<?x64xf32>, %qw: tensor<8x16xi8>, %s: tensor<1x16xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{expected qweight of element type i32 in layout gptq, got 'i8'}}
  %y = wq.linear %x, %qw, %s
      {bits = 4 : i64, group_size = -1 : i64, sym = true, in_features = 64 : i64,
       out_features = 16 : i64, scale_dtype = f32, layout = #wq.layout<gptq>}
      : (tensor<?x64xf32>, tensor<8x16xi8>, tensor<1x16xf32>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// Tests that wq.linear checks the scales shape [ceil(K / group_size), N] (a ragged last group counts).
func.func @scales_shape(%x: tensor<?x96xf32>, %qw: tensor<12x16xi32>, %s: tensor<1x16xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{expected scales of shape [2, 16] (groups = 2 for K = 96, group_size = 64; N = 16), got 'tensor<1x16xf32>'}}
  %y = wq.linear %x, %qw, %s
      {bits = 4 : i64, group_size = 64 : i64, sym = true, in_features = 96 : i64,
       out_features = 16 : i64, scale_dtype = f32, layout = #wq.layout<gptq>}
      : (tensor<?x96xf32>, tensor<12x16xi32>, tensor<1x16xf32>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// Tests that wq.linear requires the scales element type to equal scale_dtype.
func.func @scales_element_type(%x: tensor<?x64xf32>, %qw: tensor<8x16xi32>, %s: tensor<1x16xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{scales element type 'f32' does not match scale_dtype 'f16'}}
  %y = wq.linear %x, %qw, %s
      {bits = 4 : i64, group_size = -1 : i64, sym = true, in_features = 64 : i64,
       out_features = 16 : i64, scale_dtype = f16, layout = #wq.layout<gptq>}
      : (tensor<?x64xf32>, tensor<8x16xi32>, tensor<1x16xf32>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// Tests that wq.linear requires integer zeros in the GPTQ layout to be packed i32 words.
func.func @gptq_zero_dtype(%x: tensor<?x64xf32>, %qw: tensor<8x16xi32>, %s: tensor<1x16xf32>, %z: tensor<1x16xi8>) -> tensor<?x16xf32> {
  // expected-error @+1 {{layout gptq packs integer zeros into i32 words: zero_dtype must be i32 or a float type, got 'i8'}}
  %y = wq.linear %x, %qw, %s zeros(%z)
      {bits = 4 : i64, group_size = -1 : i64, sym = false, in_features = 64 : i64,
       out_features = 16 : i64, scale_dtype = f32, zero_dtype = i8, layout = #wq.layout<gptq>}
      : (tensor<?x64xf32>, tensor<8x16xi32>, tensor<1x16xf32>, tensor<1x16xi8>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// Tests that wq.linear checks the packed qzeros shape of the GPTQ layout ([groups, ceil(N*bits/32)]).
func.func @zeros_shape_gptq(%x: tensor<?x64xf32>, %qw: tensor<8x172xi32>, %s: tensor<2x172xf16>, %z: tensor<2x172xi32>) -> tensor<?x172xf32> {
  // expected-error @+1 {{expected zeros of shape [2, 22] for zero_dtype 'i32', bits = 4, groups = 2, N = 172 in layout gptq, got 'tensor<2x172xi32>'}}
  %y = wq.linear %x, %qw, %s zeros(%z)
      {bits = 4 : i64, group_size = 32 : i64, sym = false, in_features = 64 : i64,
       out_features = 172 : i64, scale_dtype = f16, zero_dtype = i32, layout = #wq.layout<gptq>}
      : (tensor<?x64xf32>, tensor<8x172xi32>, tensor<2x172xf16>, tensor<2x172xi32>) -> tensor<?x172xf32>
  return %y : tensor<?x172xf32>
}

// -----

// Tests that wq.linear checks the unpacked zeros shape of the rows layout ([groups, N]).
func.func @zeros_shape_rows(%x: tensor<?x64xf32>, %qw: tensor<16x8xi32>, %s: tensor<2x16xf32>, %z: tensor<2x2xi32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{expected zeros of shape [2, 16] for zero_dtype 'i32', bits = 4, groups = 2, N = 16 in layout rows, got 'tensor<2x2xi32>'}}
  %y = wq.linear %x, %qw, %s zeros(%z)
      {bits = 4 : i64, group_size = 32 : i64, sym = false, in_features = 64 : i64,
       out_features = 16 : i64, scale_dtype = f32, zero_dtype = i32, layout = #wq.layout<rows>}
      : (tensor<?x64xf32>, tensor<16x8xi32>, tensor<2x16xf32>, tensor<2x2xi32>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// Tests that wq.linear checks float zeros in the GPTQ layout against [groups, N].
func.func @zeros_shape_gptq_float(%x: tensor<?x64xf32>, %qw: tensor<8x16xi32>, %s: tensor<1x16xf16>, %z: tensor<1x2xf16>) -> tensor<?x16xf32> {
  // expected-error @+1 {{expected zeros of shape [1, 16] for zero_dtype 'f16', bits = 4, groups = 1, N = 16 in layout gptq, got 'tensor<1x2xf16>'}}
  %y = wq.linear %x, %qw, %s zeros(%z)
      {bits = 4 : i64, group_size = -1 : i64, sym = false, in_features = 64 : i64,
       out_features = 16 : i64, scale_dtype = f16, zero_dtype = f16, layout = #wq.layout<gptq>}
      : (tensor<?x64xf32>, tensor<8x16xi32>, tensor<1x16xf16>, tensor<1x2xf16>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// Tests that wq.linear requires the zeros element type to equal zero_dtype.
func.func @zeros_element_type(%x: tensor<?x64xf32>, %qw: tensor<16x8xi32>, %s: tensor<1x16xf32>, %z: tensor<1x16xf16>) -> tensor<?x16xf32> {
  // expected-error @+1 {{zeros element type 'f16' does not match zero_dtype 'f32'}}
  %y = wq.linear %x, %qw, %s zeros(%z)
      {bits = 4 : i64, group_size = -1 : i64, sym = false, in_features = 64 : i64,
       out_features = 16 : i64, scale_dtype = f32, zero_dtype = f32, layout = #wq.layout<rows>}
      : (tensor<?x64xf32>, tensor<16x8xi32>, tensor<1x16xf32>, tensor<1x16xf16>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// Tests that wq.linear rejects g_idx with per-channel quantization.
func.func @g_idx_per_channel(%x: tensor<?x64xf32>, %qw: tensor<8x16xi32>, %s: tensor<1x16xf32>, %g: tensor<64xi32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{g_idx requires group_size != -1 (per-channel quantization has a single group)}}
  %y = wq.linear %x, %qw, %s g_idx(%g)
      {bits = 4 : i64, group_size = -1 : i64, sym = true, in_features = 64 : i64,
       out_features = 16 : i64, scale_dtype = f32, layout = #wq.layout<gptq>}
      : (tensor<?x64xf32>, tensor<8x16xi32>, tensor<1x16xf32>, tensor<64xi32>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// Tests that wq.linear checks the g_idx shape [K].
func.func @g_idx_shape(%x: tensor<?x64xf32>, %qw: tensor<8x16xi32>, %s: tensor<2x16xf32>, %g: tensor<2xi32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{expected g_idx of shape [64] (K), got 'tensor<2xi32>'}}
  %y = wq.linear %x, %qw, %s g_idx(%g)
      {bits = 4 : i64, group_size = 32 : i64, sym = true, in_features = 64 : i64,
       out_features = 16 : i64, scale_dtype = f32, layout = #wq.layout<gptq>}
      : (tensor<?x64xf32>, tensor<8x16xi32>, tensor<2x16xf32>, tensor<2xi32>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// Tests that wq.linear rejects an activation that is not rank 2.
func.func @x_rank(%x: tensor<64xf32>, %qw: tensor<8x16xi32>, %s: tensor<1x16xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{x must be rank 2 ([T, K]), got 'tensor<64xf32>'}}
  %y = wq.linear %x, %qw, %s
      {bits = 4 : i64, group_size = -1 : i64, sym = true, in_features = 64 : i64,
       out_features = 16 : i64, scale_dtype = f32, layout = #wq.layout<gptq>}
      : (tensor<64xf32>, tensor<8x16xi32>, tensor<1x16xf32>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// Tests that wq.linear rejects an activation width other than in_features.
func.func @x_width(%x: tensor<?x32xf32>, %qw: tensor<8x16xi32>, %s: tensor<1x16xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{x has 32 input features, expected in_features = 64}}
  %y = wq.linear %x, %qw, %s
      {bits = 4 : i64, group_size = -1 : i64, sym = true, in_features = 64 : i64,
       out_features = 16 : i64, scale_dtype = f32, layout = #wq.layout<gptq>}
      : (tensor<?x32xf32>, tensor<8x16xi32>, tensor<1x16xf32>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// Tests that wq.linear rejects a result that is not rank 2.
func.func @result_rank(%x: tensor<?x64xf32>, %qw: tensor<8x16xi32>, %s: tensor<1x16xf32>) -> tensor<16xf32> {
  // expected-error @+1 {{result must be rank 2 ([T, N]), got 'tensor<16xf32>'}}
  %y = wq.linear %x, %qw, %s
      {bits = 4 : i64, group_size = -1 : i64, sym = true, in_features = 64 : i64,
       out_features = 16 : i64, scale_dtype = f32, layout = #wq.layout<gptq>}
      : (tensor<?x64xf32>, tensor<8x16xi32>, tensor<1x16xf32>) -> tensor<16xf32>
  return %y : tensor<16xf32>
}

// -----

// Tests that wq.linear requires the result element type to equal the activation's.
func.func @result_element_type(%x: tensor<?x64xf32>, %qw: tensor<8x16xi32>, %s: tensor<1x16xf16>) -> tensor<?x16xf16> {
  // expected-error @+1 {{result element type 'f16' must match the element type of x ('f32')}}
  %y = wq.linear %x, %qw, %s
      {bits = 4 : i64, group_size = -1 : i64, sym = true, in_features = 64 : i64,
       out_features = 16 : i64, scale_dtype = f16, layout = #wq.layout<gptq>}
      : (tensor<?x64xf32>, tensor<8x16xi32>, tensor<1x16xf16>) -> tensor<?x16xf16>
  return %y : tensor<?x16xf16>
}

// -----

// Tests that wq.linear rejects a result width other than out_features.
func.func @result_width(%x: tensor<?x64xf32>, %qw: tensor<8x16xi32>, %s: tensor<1x16xf32>) -> tensor<?x8xf32> {
  // expected-error @+1 {{result has 8 output features, expected out_features = 16}}
  %y = wq.linear %x, %qw, %s
      {bits = 4 : i64, group_size = -1 : i64, sym = true, in_features = 64 : i64,
       out_features = 16 : i64, scale_dtype = f32, layout = #wq.layout<gptq>}
      : (tensor<?x64xf32>, tensor<8x16xi32>, tensor<1x16xf32>) -> tensor<?x8xf32>
  return %y : tensor<?x8xf32>
}

// -----

// Tests that wq.linear rejects a result row count that differs from the activation's.
func.func @result_rows(%x: tensor<4x64xf32>, %qw: tensor<8x16xi32>, %s: tensor<1x16xf32>) -> tensor<5x16xf32> {
  // expected-error @+1 {{result rows (5) do not match the rows of x (4)}}
  %y = wq.linear %x, %qw, %s
      {bits = 4 : i64, group_size = -1 : i64, sym = true, in_features = 64 : i64,
       out_features = 16 : i64, scale_dtype = f32, layout = #wq.layout<gptq>}
      : (tensor<4x64xf32>, tensor<8x16xi32>, tensor<1x16xf32>) -> tensor<5x16xf32>
  return %y : tensor<5x16xf32>
}

// -----

// Tests that wq.linear checks the bias shape [N].
func.func @bias_shape(%x: tensor<?x64xf32>, %qw: tensor<8x16xi32>, %s: tensor<1x16xf32>, %b: tensor<64xf32>) -> tensor<?x16xf32> {
  // expected-error @+1 {{expected bias of shape [16] (N), got 'tensor<64xf32>'}}
  %y = wq.linear %x, %qw, %s bias(%b)
      {bits = 4 : i64, group_size = -1 : i64, sym = true, in_features = 64 : i64,
       out_features = 16 : i64, scale_dtype = f32, layout = #wq.layout<gptq>}
      : (tensor<?x64xf32>, tensor<8x16xi32>, tensor<1x16xf32>, tensor<64xf32>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// Tests that wq.linear requires the bias element type to equal the activation's.
func.func @bias_element_type(%x: tensor<?x64xf32>, %qw: tensor<8x16xi32>, %s: tensor<1x16xf32>, %b: tensor<16xf16>) -> tensor<?x16xf32> {
  // expected-error @+1 {{bias element type 'f16' must match the element type of x ('f32')}}
  %y = wq.linear %x, %qw, %s bias(%b)
      {bits = 4 : i64, group_size = -1 : i64, sym = true, in_features = 64 : i64,
       out_features = 16 : i64, scale_dtype = f32, layout = #wq.layout<gptq>}
      : (tensor<?x64xf32>, tensor<8x16xi32>, tensor<1x16xf32>, tensor<16xf16>) -> tensor<?x16xf32>
  return %y : tensor<?x16xf32>
}

// -----

// Tests that wq.dequantize verifies the packed weights like wq.linear.
func.func @dequantize_qweight_shape(%qw: tensor<8x16xi32>, %s: tensor<1x16xf32>) -> tensor<16x64xf32> {
  // expected-error @+1 {{'wq.dequantize' op expected qweight of shape [16, 8] for bits = 4, K = 64, N = 16 in layout rows, got 'tensor<8x16xi32>'}}
  %w = wq.dequantize %qw, %s
      {bits = 4 : i64, group_size = -1 : i64, sym = true, in_features = 64 : i64,
       out_features = 16 : i64, scale_dtype = f32, layout = #wq.layout<rows>}
      : (tensor<8x16xi32>, tensor<1x16xf32>) -> tensor<16x64xf32>
  return %w : tensor<16x64xf32>
}

// -----

// Tests that wq.dequantize checks the result shape [N, K].
func.func @dequantize_result_shape(%qw: tensor<16x8xi32>, %s: tensor<1x16xf32>) -> tensor<64x16xf32> {
  // expected-error @+1 {{expected result of shape [16, 64] ([N, K]), got 'tensor<64x16xf32>'}}
  %w = wq.dequantize %qw, %s
      {bits = 4 : i64, group_size = -1 : i64, sym = true, in_features = 64 : i64,
       out_features = 16 : i64, scale_dtype = f32, layout = #wq.layout<rows>}
      : (tensor<16x8xi32>, tensor<1x16xf32>) -> tensor<64x16xf32>
  return %w : tensor<64x16xf32>
}

// -----

// Tests that wq.dequantize rejects a non-float result.
func.func @dequantize_result_integer(%qw: tensor<16x8xi32>, %s: tensor<1x16xf32>) -> tensor<16x64xi8> {
  // expected-error @+1 {{result #0 must be ranked tensor of floating-point values}}
  %w = wq.dequantize %qw, %s
      {bits = 4 : i64, group_size = -1 : i64, sym = true, in_features = 64 : i64,
       out_features = 16 : i64, scale_dtype = f32, layout = #wq.layout<rows>}
      : (tensor<16x8xi32>, tensor<1x16xf32>) -> tensor<16x64xi8>
  return %w : tensor<16x64xi8>
}
