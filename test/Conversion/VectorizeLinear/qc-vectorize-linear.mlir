// RUN: quant-opt %s -split-input-file -qc-vectorize-linear="vector-width=8 row-block=2 token-block=3" | FileCheck %s
// RUN: quant-opt %s -split-input-file -qc-vectorize-linear="parallel=1" | FileCheck %s --check-prefix=PAR

#x = affine_map<(t, n, k) -> (t, k)>
#w = affine_map<(t, n, k) -> (n, k)>
#o = affine_map<(t, n, k) -> (t, n)>

// Tests that the bufferized x W^T generic the linear lowerings emit becomes
// a call to one kernel function taking dynamically shaped, row-strided
// memrefs and the row range [0, N); that both generics of the function share
// that kernel; and that the kernel reads rows of x and W with full vector
// loads along K, a masked load for the tail, fuses multiply-adds into
// register accumulators (3 tokens x 2 rows = 6 per block) and reduces each
// once into out.
// CHECK-LABEL: func.func @two_linears
// CHECK-SAME: (%[[X:.*]]: memref<?x20xf32>, %[[W:.*]]: memref<7x20xf32>, %[[O:.*]]: memref<?x7xf32>, %[[W2:.*]]: memref<5x20xf32>, %[[O2:.*]]: memref<?x5xf32>)
// CHECK-NOT: linalg.generic
// CHECK-DAG: %[[XC:.*]] = memref.cast %[[X]] : memref<?x20xf32> to memref<?x?xf32, strided<[?, 1], offset: ?>>
// CHECK-DAG: %[[WC:.*]] = memref.cast %[[W]] : memref<7x20xf32> to memref<?x?xf32, strided<[?, 1], offset: ?>>
// CHECK-DAG: %[[OC:.*]] = memref.cast %[[O]]
// CHECK-DAG: %[[ZERO:.*]] = arith.constant 0 : index
// CHECK-DAG: %[[N:.*]] = memref.dim %[[W]], %{{.*}} : memref<7x20xf32>
// CHECK: call @qc_linear_f32_v8_r2_t3(%[[XC]], %[[WC]], %[[OC]], %[[ZERO]], %[[N]])
// CHECK: call @qc_linear_f32_v8_r2_t3(
// CHECK-NOT: linalg.generic
// CHECK: return

// CHECK: func.func private @qc_linear_f32_v8_r2_t3(%{{.*}}: memref<?x?xf32, strided<[?, 1], offset: ?>>, %{{.*}}: memref<?x?xf32, strided<[?, 1], offset: ?>>, %{{.*}}: memref<?x?xf32, strided<[?, 1], offset: ?>>, %{{.*}}: index, %{{.*}}: index)
// CHECK-SAME: passthrough = ["noinline"]
// CHECK: vector.create_mask
// CHECK: scf.for
// CHECK: scf.for
// CHECK: scf.for {{.*}} iter_args
// CHECK-COUNT-5: vector.load
// CHECK-COUNT-6: vector.fma
// CHECK: scf.yield
// CHECK-COUNT-5: vector.maskedload
// CHECK-COUNT-6: vector.fma
// CHECK: vector.reduction <add>
// CHECK: memref.load
// CHECK: arith.addf
// CHECK: memref.store
// CHECK-NOT: func.func private @qc_linear
func.func @two_linears(%x: memref<?x20xf32>, %w: memref<7x20xf32>, %o: memref<?x7xf32>,
                       %w2: memref<5x20xf32>, %o2: memref<?x5xf32>) {
  linalg.generic {indexing_maps = [#x, #w, #o], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<?x20xf32>, memref<7x20xf32>) outs(%o : memref<?x7xf32>) {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %p = arith.mulf %a, %b fastmath<reassoc,contract> : f32
    %s = arith.addf %acc, %p fastmath<reassoc,contract> : f32
    linalg.yield %s : f32
  }
  // Operands of the multiply and the add swapped: still x W^T.
  linalg.generic {indexing_maps = [#x, #w, #o], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w2 : memref<?x20xf32>, memref<5x20xf32>) outs(%o2 : memref<?x5xf32>) {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %p = arith.mulf %b, %a : f32
    %s = arith.addf %p, %acc : f32
    linalg.yield %s : f32
  }
  return
}

// -----

#x = affine_map<(t, n, k) -> (t, k)>
#w = affine_map<(t, n, k) -> (n, k)>
#o = affine_map<(t, n, k) -> (t, n)>

// Tests that generics the kernel does not implement are left to
// convert-linalg-to-loops: a weight without unit stride along K, a body that
// is not a multiply-add, the same generic on tensors, and (k, n) maps (the
// weight read transposed).
// CHECK-LABEL: func.func @not_linears
// CHECK-COUNT-4: linalg.generic
// CHECK-NOT: call
// CHECK-NOT: func.func private @qc_linear
func.func @not_linears(%x: memref<?x20xf32>, %ws: memref<7x20xf32, strided<[1, 7]>>, %w: memref<7x20xf32>,
                       %o: memref<?x7xf32>, %xt: tensor<?x20xf32>, %wt: tensor<7x20xf32>, %ot: tensor<?x7xf32>,
                       %wk: memref<20x7xf32>) -> tensor<?x7xf32> {
  linalg.generic {indexing_maps = [#x, #w, #o], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %ws : memref<?x20xf32>, memref<7x20xf32, strided<[1, 7]>>) outs(%o : memref<?x7xf32>) {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %acc, %p : f32
    linalg.yield %s : f32
  }
  linalg.generic {indexing_maps = [#x, #w, #o], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<?x20xf32>, memref<7x20xf32>) outs(%o : memref<?x7xf32>) {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %p = arith.mulf %a, %b : f32
    %s = arith.subf %acc, %p : f32
    linalg.yield %s : f32
  }
  %r = linalg.generic {indexing_maps = [#x, #w, #o], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%xt, %wt : tensor<?x20xf32>, tensor<7x20xf32>) outs(%ot : tensor<?x7xf32>) {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %acc, %p : f32
    linalg.yield %s : f32
  } -> tensor<?x7xf32>
  linalg.generic {indexing_maps = [affine_map<(t, n, k) -> (t, k)>, affine_map<(t, n, k) -> (k, n)>, #o],
                  iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %wk : memref<?x20xf32>, memref<20x7xf32>) outs(%o : memref<?x7xf32>) {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %acc, %p : f32
    linalg.yield %s : f32
  }
  return %r : tensor<?x7xf32>
}

// -----

#x = affine_map<(t, n, k) -> (t, k)>
#w = affine_map<(t, n, k) -> (n, k)>
#o = affine_map<(t, n, k) -> (t, n)>

// Tests that with parallel=1 the call goes through the runtime's
// qc_rt_parallel_linear, declared once, which receives the kernel as a
// function value ahead of the kernel's own arguments.
// CHECK-LABEL: func.func @parallel
// PAR-LABEL: func.func @parallel
// PAR: %[[F:.*]] = constant @qc_linear_f32_v16_r4_t4 : (memref<?x?xf32, strided<[?, 1], offset: ?>>, memref<?x?xf32, strided<[?, 1], offset: ?>>, memref<?x?xf32, strided<[?, 1], offset: ?>>, index, index) -> ()
// PAR: call @qc_rt_parallel_linear(%[[F]], %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}})
// PAR-DAG: func.func private @qc_linear_f32_v16_r4_t4(
// PAR-DAG: func.func private @qc_rt_parallel_linear((memref<?x?xf32, strided<[?, 1], offset: ?>>, memref<?x?xf32, strided<[?, 1], offset: ?>>, memref<?x?xf32, strided<[?, 1], offset: ?>>, index, index) -> (), memref<?x?xf32, strided<[?, 1], offset: ?>>, memref<?x?xf32, strided<[?, 1], offset: ?>>, memref<?x?xf32, strided<[?, 1], offset: ?>>, index, index)
func.func @parallel(%x: memref<?x20xf32>, %w: memref<7x20xf32>, %o: memref<?x7xf32>) {
  linalg.generic {indexing_maps = [#x, #w, #o], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<?x20xf32>, memref<7x20xf32>) outs(%o : memref<?x7xf32>) {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %acc, %p : f32
    linalg.yield %s : f32
  }
  return
}

// -----

#x = affine_map<(t, n, k) -> (t, k)>
#word = affine_map<(t, n, k) -> (k floordiv 8, n)>
#group = affine_map<(t, n, k) -> (k floordiv 32, n)>
#group12 = affine_map<(t, n, k) -> (k floordiv 12, n)>
#o = affine_map<(t, n, k) -> (t, n)>

// Tests that convert-wq-to-linalg's fused 4-bit GPTQ linear (constants
// hoisted out of the body, as canonicalization leaves them) becomes a call
// to the dequantize-linear kernel for 4 bits and group 32 over the output
// columns [0, N), with the words cast to an i32 memref; that the kernel
// keeps columns in vector lanes (2 vectors x 4 tokens per block: 8 fused
// multiply-adds per code) and unrolls the 8 codes of a word; and that a
// group splitting a word (12 at 8 codes per word) is left alone.
// CHECK-LABEL: func.func @dequant_linear
// CHECK-SAME: (%[[X:.*]]: memref<?x72xf32>, %[[Q:.*]]: memref<9x20xi32>, %[[S:.*]]: memref<3x20xf32>, %[[Z:.*]]: memref<3x20xf32>, %[[O:.*]]: memref<?x20xf32>
// CHECK-DAG: %[[QC:.*]] = memref.cast %[[Q]] : memref<9x20xi32> to memref<?x?xi32, strided<[?, 1], offset: ?>>
// CHECK-DAG: %[[N:.*]] = memref.dim %[[O]], %{{.*}} : memref<?x20xf32>
// CHECK-DAG: %[[G:.*]] = memref.dim %[[S]], %{{.*}} : memref<3x20xf32>
// CHECK: call @qc_dequant_linear_b4_g32_sf32_zf32_v8_c2_t4(%{{.*}}, %[[QC]], %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[N]], %{{.*}}, %[[G]])
// CHECK: linalg.generic
// CHECK: func.func private @qc_dequant_linear_b4_g32_sf32_zf32_v8_c2_t4(%{{.*}}: memref<?x?xf32, strided<[?, 1], offset: ?>>, %{{.*}}: memref<?x?xi32, strided<[?, 1], offset: ?>>,
// CHECK-SAME: passthrough = ["noinline"]
// One token streams the packed rows with accumulators in a stack buffer.
// CHECK: memref.alloca() : memref<512xf32>
// CHECK: scf.for {{.*}} iter_args
// CHECK-COUNT-2: vector.load {{.*}} : memref<?x?xi32, strided<[?, 1], offset: ?>>, vector<8xi32>
// CHECK-COUNT-8: vector.fma
// CHECK: arith.shrui {{.*}} : vector<8xi32>
// PAR-LABEL: func.func @dequant_linear
// PAR: %[[F:.*]] = constant @qc_dequant_linear_b4_g32_sf32_zf32_v16_c2_t4
// PAR: call @qc_rt_parallel_dequant_linear_f32_f32(%[[F]],
// PAR-DAG: func.func private @qc_rt_parallel_dequant_linear_f32_f32(
func.func @dequant_linear(%x: memref<?x72xf32>, %q: memref<9x20xi32>, %s: memref<3x20xf32>,
                          %z: memref<3x20xf32>, %o: memref<?x20xf32>, %s12: memref<6x20xf32>) {
  %c8 = arith.constant 8 : index
  %c4 = arith.constant 4 : index
  %c15 = arith.constant 15 : i32
  linalg.generic {indexing_maps = [#x, #word, #group, #group, #o], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %q, %s, %z : memref<?x72xf32>, memref<9x20xi32>, memref<3x20xf32>, memref<3x20xf32>) outs(%o : memref<?x20xf32>) {
  ^bb0(%a: f32, %word: i32, %sc: f32, %zp: f32, %acc: f32):
    %k = linalg.index 2 : index
    %slot = arith.remui %k, %c8 : index
    %bit = arith.muli %slot, %c4 : index
    %sh = arith.index_cast %bit : index to i32
    %shifted = arith.shrui %word, %sh : i32
    %code = arith.andi %shifted, %c15 : i32
    %qf = arith.uitofp %code : i32 to f32
    %cent = arith.subf %qf, %zp : f32
    %w = arith.mulf %sc, %cent : f32
    %p = arith.mulf %a, %w fastmath<reassoc,contract> : f32
    %r = arith.addf %acc, %p fastmath<reassoc,contract> : f32
    linalg.yield %r : f32
  }
  linalg.generic {indexing_maps = [#x, #word, #group12, #group12, #o], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %q, %s12, %s12 : memref<?x72xf32>, memref<9x20xi32>, memref<6x20xf32>, memref<6x20xf32>) outs(%o : memref<?x20xf32>) {
  ^bb0(%a: f32, %word: i32, %sc: f32, %zp: f32, %acc: f32):
    %k = linalg.index 2 : index
    %slot = arith.remui %k, %c8 : index
    %bit = arith.muli %slot, %c4 : index
    %sh = arith.index_cast %bit : index to i32
    %shifted = arith.shrui %word, %sh : i32
    %code = arith.andi %shifted, %c15 : i32
    %qf = arith.uitofp %code : i32 to f32
    %cent = arith.subf %qf, %zp : f32
    %w = arith.mulf %sc, %cent : f32
    %p = arith.mulf %a, %w fastmath<reassoc,contract> : f32
    %r = arith.addf %acc, %p fastmath<reassoc,contract> : f32
    linalg.yield %r : f32
  }
  return
}

// -----

#x = affine_map<(t, n, k) -> (t, k)>
#word = affine_map<(t, n, k) -> (k floordiv 8, n)>
#group = affine_map<(t, n, k) -> (k floordiv 32, n)>
#zword = affine_map<(t, n, k) -> (k floordiv 32, n floordiv 8)>
#o = affine_map<(t, n, k) -> (t, n)>

// Tests the stored forms convert-wq-to-linalg passes through: f16 scales
// (loaded as f16 vectors and widened) with GPTQ v1 zero words (the words of
// a vector's columns gathered with 32-bit indices, shifted per lane, plus
// one, masked), and bf16 scales with symmetric zeros (the constant 8; the
// scales stand in the zeros' place of the call); each kernel and dispatcher
// is named after its types.
// CHECK-LABEL: func.func @dequant_stored_forms
// CHECK: call @qc_dequant_linear_b4_g32_sf16_zpacked_v8_c2_t4(
// CHECK: call @qc_dequant_linear_b4_g32_sbf16_zsym_v8_c2_t4(
// CHECK-LABEL: func.func private @qc_dequant_linear_b4_g32_sf16_zpacked_v8_c2_t4
// CHECK-SAME: memref<?x?xf16, strided<[?, 1], offset: ?>>, %{{.*}}: memref<?x?xi32, strided<[?, 1], offset: ?>>
// CHECK: vector.gather {{.*}} : memref<?x?xi32, strided<[?, 1], offset: ?>>, vector<8xi32>, vector<8xi1>, vector<8xi32> into vector<8xi32>
// CHECK: arith.extf {{.*}} : vector<8xf16> to vector<8xf32>
// bf16 is widened with integer operations (bitcast, zero-extend, shift
// left 16, bitcast), and a masked bf16 vector is copied lane by lane into a
// stack vector allocated at the kernel's entry: LLVM would convert the
// lanes of a masked bfloat load through a soft-float library call.
// CHECK-LABEL: func.func private @qc_dequant_linear_b4_g32_sbf16_zsym_v8_c2_t4
// CHECK: memref.alloca() : memref<8xbf16>
// CHECK: scf.if
// CHECK-NOT: vector.gather
// CHECK-NOT: vector.maskedload {{.*}}bf16
// CHECK: vector.bitcast {{.*}} : vector<8xbf16> to vector<8xi16>
// CHECK: arith.extui {{.*}} : vector<8xi16> to vector<8xi32>
// CHECK: arith.shli
// CHECK: arith.bitcast {{.*}} : vector<8xi32> to vector<8xf32>
// CHECK-NOT: func.func
// PAR-LABEL: func.func @dequant_stored_forms
// PAR: call @qc_rt_parallel_dequant_linear_f16_i32(
// PAR: call @qc_rt_parallel_dequant_linear_bf16_bf16(
func.func @dequant_stored_forms(%x: memref<?x64xf32>, %q: memref<8x20xi32>, %s: memref<2x20xf16>,
                                %z: memref<2x3xi32>, %sb: memref<2x20xbf16>, %o: memref<?x20xf32>) {
  %c8 = arith.constant 8 : index
  %c4 = arith.constant 4 : index
  %c15 = arith.constant 15 : i32
  %c1 = arith.constant 1 : i32
  %eight = arith.constant 8.0 : f32
  linalg.generic {indexing_maps = [#x, #word, #group, #zword, #o], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %q, %s, %z : memref<?x64xf32>, memref<8x20xi32>, memref<2x20xf16>, memref<2x3xi32>) outs(%o : memref<?x20xf32>) {
  ^bb0(%a: f32, %word: i32, %sc: f16, %zw: i32, %acc: f32):
    %k = linalg.index 2 : index
    %slot = arith.remui %k, %c8 : index
    %bit = arith.muli %slot, %c4 : index
    %sh = arith.index_cast %bit : index to i32
    %shifted = arith.shrui %word, %sh : i32
    %code = arith.andi %shifted, %c15 : i32
    %qf = arith.uitofp %code : i32 to f32
    %sf = arith.extf %sc : f16 to f32
    %n = linalg.index 1 : index
    %zslot = arith.remui %n, %c8 : index
    %zbit = arith.muli %zslot, %c4 : index
    %zsh = arith.index_cast %zbit : index to i32
    %zshifted = arith.shrui %zw, %zsh : i32
    %zplus = arith.addi %zshifted, %c1 : i32
    %zcode = arith.andi %zplus, %c15 : i32
    %zf = arith.uitofp %zcode : i32 to f32
    %cent = arith.subf %qf, %zf : f32
    %w = arith.mulf %sf, %cent : f32
    %p = arith.mulf %a, %w fastmath<reassoc,contract> : f32
    %r = arith.addf %acc, %p fastmath<reassoc,contract> : f32
    linalg.yield %r : f32
  }
  linalg.generic {indexing_maps = [#x, #word, #group, #o], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %q, %sb : memref<?x64xf32>, memref<8x20xi32>, memref<2x20xbf16>) outs(%o : memref<?x20xf32>) {
  ^bb0(%a: f32, %word: i32, %sc: bf16, %acc: f32):
    %k = linalg.index 2 : index
    %slot = arith.remui %k, %c8 : index
    %bit = arith.muli %slot, %c4 : index
    %sh = arith.index_cast %bit : index to i32
    %shifted = arith.shrui %word, %sh : i32
    %code = arith.andi %shifted, %c15 : i32
    %qf = arith.uitofp %code : i32 to f32
    %sf = arith.extf %sc : bf16 to f32
    %cent = arith.subf %qf, %eight : f32
    %w = arith.mulf %sf, %cent : f32
    %p = arith.mulf %a, %w fastmath<reassoc,contract> : f32
    %r = arith.addf %acc, %p fastmath<reassoc,contract> : f32
    linalg.yield %r : f32
  }
  return
}
