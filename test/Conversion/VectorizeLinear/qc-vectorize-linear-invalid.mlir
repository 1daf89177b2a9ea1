// RUN: not quant-opt %s -split-input-file -qc-vectorize-linear="vector-width=0" -o /dev/null 2>&1 | FileCheck %s --check-prefix=BADOPT
// RUN: not quant-opt %s -split-input-file -qc-vectorize-linear="token-block=9" -o /dev/null 2>&1 | FileCheck %s --check-prefix=BADBLOCK
// RUN: not quant-opt %s -split-input-file -qc-vectorize-linear="dequant-column-block=0" -o /dev/null 2>&1 | FileCheck %s --check-prefix=BADDEQUANT
// RUN: not quant-opt %s -split-input-file -qc-vectorize-linear="parallel=1" -o /dev/null 2>&1 | FileCheck %s

// Tests that options outside what any register file holds are refused,
// naming every value.
// BADOPT: vector-width must be in [1, 64] and row-block and token-block in [1, 8]; got vector-width=0 row-block=4 token-block=4
// BADBLOCK: got vector-width=16 row-block=4 token-block=9
// BADDEQUANT: dequant-column-block and dequant-token-block must be in [1, 8]; got 0 and 4

#x = affine_map<(t, n, k) -> (t, k)>
#w = affine_map<(t, n, k) -> (n, k)>
#o = affine_map<(t, n, k) -> (t, n)>

// Tests that a module already using the dispatcher's name for something
// else is an error naming it, not a call of the wrong type.
// CHECK: error: qc-vectorize-linear: 'qc_rt_parallel_linear' is the runtime's parallel dispatcher and must be declared as
func.func private @qc_rt_parallel_linear(%n: index)
func.func @clash(%x: memref<?x20xf32>, %w: memref<7x20xf32>, %o: memref<?x7xf32>) {
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
#w = affine_map<(t, n, k) -> (n, k)>
#o = affine_map<(t, n, k) -> (t, n)>

// Tests that a module using the kernel's name for something else is an
// error naming it.
// RUN: not quant-opt %s -split-input-file -qc-vectorize-linear 2>&1 | FileCheck %s --check-prefix=KERNEL
// KERNEL: error: qc-vectorize-linear: 'qc_linear_f32_v16_r4_t4' is the name of the generated kernel and must be its definition
func.func private @qc_linear_f32_v16_r4_t4(%n: index)
func.func @kernel_clash(%x: memref<?x20xf32>, %w: memref<7x20xf32>, %o: memref<?x7xf32>) {
  linalg.generic {indexing_maps = [#x, #w, #o], iterator_types = ["parallel", "parallel", "reduction"]}
      ins(%x, %w : memref<?x20xf32>, memref<7x20xf32>) outs(%o : memref<?x7xf32>) {
  ^bb0(%a: f32, %b: f32, %acc: f32):
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %acc, %p : f32
    linalg.yield %s : f32
  }
  return
}
