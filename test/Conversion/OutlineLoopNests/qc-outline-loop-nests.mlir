// RUN: quant-opt %s -split-input-file -qc-outline-loop-nests | FileCheck %s

#id = affine_map<(d0, d1) -> (d0, d1)>

// Tests that each bufferized loop nest of a public function becomes a call;
// that nests printing identically (same types, same body, same captured
// constant) share one private, noinline function; that a nest on other
// types gets its own (a value used twice is passed once); that captured constants are cloned into the function
// while other captured values (%n) become arguments; and that private
// functions are left alone.
// CHECK-LABEL: func.func @layers
// CHECK-SAME: (%[[A:.*]]: memref<?x8xf32>, %[[B:.*]]: memref<?x8xf32>, %[[C:.*]]: memref<?x4xf32>, %[[N:.*]]: index)
// CHECK-NOT: linalg.generic
// CHECK-NOT: scf.for
// CHECK: call @[[SCALE:qc_loop_nest_[0-9]+]](%[[A]], %[[B]])
// CHECK: call @[[SCALE]](%[[B]], %[[A]])
// CHECK: call @[[SCALE4:qc_loop_nest_[0-9]+]](%[[C]])
// CHECK: call @[[LOOP:qc_loop_nest_[0-9]+]](%[[N]], %[[A]])
// CHECK: return
// CHECK: func.func private @helper
// CHECK-NEXT: linalg.generic
// CHECK-DAG: func.func private @[[SCALE]](%{{.*}}: memref<?x8xf32>, %{{.*}}: memref<?x8xf32>) attributes {passthrough = ["noinline"]}
// CHECK-DAG: func.func private @[[SCALE4]](%{{.*}}: memref<?x4xf32>)
// CHECK-DAG: func.func private @[[LOOP]](%{{.*}}: index, %{{.*}}: memref<?x8xf32>)
func.func @layers(%a: memref<?x8xf32>, %b: memref<?x8xf32>, %c: memref<?x4xf32>, %n: index) {
  %two = arith.constant 2.0 : f32
  linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%a : memref<?x8xf32>) outs(%b : memref<?x8xf32>) {
  ^bb0(%x: f32, %y: f32):
    %m = arith.mulf %x, %two : f32
    linalg.yield %m : f32
  }
  linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%b : memref<?x8xf32>) outs(%a : memref<?x8xf32>) {
  ^bb0(%x: f32, %y: f32):
    %m = arith.mulf %x, %two : f32
    linalg.yield %m : f32
  }
  linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
      ins(%c : memref<?x4xf32>) outs(%c : memref<?x4xf32>) {
  ^bb0(%x: f32, %y: f32):
    %m = arith.mulf %x, %two : f32
    linalg.yield %m : f32
  }
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  scf.for %i = %c0 to %n step %c1 {
    memref.store %two, %a[%i, %c0] : memref<?x8xf32>
  }
  return
}

func.func private @helper(%a: memref<?x8xf32>) {
  linalg.generic {indexing_maps = [#id], iterator_types = ["parallel", "parallel"]}
      outs(%a : memref<?x8xf32>) {
  ^bb0(%y: f32):
    linalg.yield %y : f32
  }
  return
}

// -----

// Tests that the cloned constant is part of what makes two nests identical:
// scaling by 2 and by 3 are two functions, each holding its constant.
// CHECK-LABEL: func.func @different_constants
// CHECK: call @[[F2:qc_loop_nest_[0-9]+]]
// CHECK: call @[[F3:qc_loop_nest_[0-9]+]]
// CHECK: func.func private @[[F2]]
// CHECK: arith.constant 2.000000e+00 : f32
// CHECK: func.func private @[[F3]]
// CHECK: arith.constant 3.000000e+00 : f32
func.func @different_constants(%a: memref<?xf32>) {
  %two = arith.constant 2.0 : f32
  %three = arith.constant 3.0 : f32
  linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>], iterator_types = ["parallel"]}
      outs(%a : memref<?xf32>) {
  ^bb0(%y: f32):
    %m = arith.mulf %y, %two : f32
    linalg.yield %m : f32
  }
  linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>], iterator_types = ["parallel"]}
      outs(%a : memref<?xf32>) {
  ^bb0(%y: f32):
    %m = arith.mulf %y, %three : f32
    linalg.yield %m : f32
  }
  return
}

// -----

// Tests that loops and branches with results move too: the function
// returns them and the call's results replace theirs. Two branches that
// print identically (one per layer, say) share one function, and nests
// inside a branch move with it rather than on their own.
// CHECK-LABEL: func.func @with_results
// CHECK-SAME: (%[[N:.*]]: index, %[[C:.*]]: i1, %[[A:.*]]: memref<4xf32>, %[[B:.*]]: memref<4xf32>)
// CHECK: %[[S:.*]] = call @[[LOOP:qc_loop_nest_[0-9]+]](%[[N]])
// CHECK: %[[X:.*]] = call @[[IF:qc_loop_nest_[0-9]+]](%[[C]], %[[A]])
// CHECK: %[[Y:.*]] = call @[[IF]](%[[C]], %[[B]])
// CHECK: return %[[S]], %[[X]], %[[Y]]
// CHECK-DAG: func.func private @[[LOOP]](%{{.*}}: index) -> f32
// CHECK-DAG: func.func private @[[IF]](%{{.*}}: i1, %{{.*}}: memref<4xf32>) -> memref<4xf32>
// CHECK-NOT: func.func private @qc_loop_nest
func.func @with_results(%n: index, %c: i1, %a: memref<4xf32>, %b: memref<4xf32>) -> (f32, memref<4xf32>, memref<4xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %zero = arith.constant 0.0 : f32
  %s = scf.for %i = %c0 to %n step %c1 iter_args(%acc = %zero) -> f32 {
    %next = arith.addf %acc, %acc : f32
    scf.yield %next : f32
  }
  %x = scf.if %c -> memref<4xf32> {
    linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>], iterator_types = ["parallel"]}
        outs(%a : memref<4xf32>) {
    ^bb0(%y: f32):
      linalg.yield %zero : f32
    }
    scf.yield %a : memref<4xf32>
  } else {
    %m = memref.alloc() : memref<4xf32>
    scf.yield %m : memref<4xf32>
  }
  %y = scf.if %c -> memref<4xf32> {
    linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>], iterator_types = ["parallel"]}
        outs(%b : memref<4xf32>) {
    ^bb0(%y: f32):
      linalg.yield %zero : f32
    }
    scf.yield %b : memref<4xf32>
  } else {
    %m = memref.alloc() : memref<4xf32>
    scf.yield %m : memref<4xf32>
  }
  return %s, %x, %y : f32, memref<4xf32>, memref<4xf32>
}

// -----

// Tests that what cannot move is left in place: a loop yielding tensors and
// a linalg op on tensors.
// CHECK-LABEL: func.func @stays
// CHECK: scf.for {{.*}} iter_args
// CHECK: linalg.generic
// CHECK-NOT: call
// CHECK-NOT: qc_loop_nest
func.func @stays(%n: index, %t: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %s = scf.for %i = %c0 to %n step %c1 iter_args(%acc = %t) -> tensor<4xf32> {
    scf.yield %acc : tensor<4xf32>
  }
  %r = linalg.generic {indexing_maps = [affine_map<(d0) -> (d0)>], iterator_types = ["parallel"]}
      outs(%t : tensor<4xf32>) {
  ^bb0(%y: f32):
    linalg.yield %y : f32
  } -> tensor<4xf32>
  return %s, %r : tensor<4xf32>, tensor<4xf32>
}
