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
