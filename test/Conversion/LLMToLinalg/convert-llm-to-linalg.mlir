// RUN: quant-opt %s -split-input-file -convert-llm-to-linalg | FileCheck %s
// RUN: quant-opt %s -split-input-file -convert-llm-to-linalg | FileCheck %s --check-prefix=NOLLM

// No compute op survives the lowering in any split (llm.param would; none is used here).
// NOLLM-NOT: llm.{{(embedding|rms_norm|linear|rope|attention|silu_mul|add|logits)}}

// Tests that llm.embedding becomes a parallel generic over the tokens that gathers table rows.
// CHECK-LABEL: func.func @embedding
// CHECK-SAME: (%[[TABLE:.*]]: tensor<512x64xf32>, %[[TOK:.*]]: tensor<?xi32>)
// CHECK: %[[EMPTY:.*]] = tensor.empty(%{{.*}}) : tensor<?x64xf32>
// CHECK: %[[R:.*]] = linalg.generic {{.*}}iterator_types = ["parallel", "parallel"]} ins(%[[TOK]] : tensor<?xi32>) outs(%[[EMPTY]] : tensor<?x64xf32>)
// CHECK: %[[ROW:.*]] = arith.index_cast %{{.*}} : i32 to index
// CHECK: %[[COL:.*]] = linalg.index 1
// CHECK: tensor.extract %[[TABLE]][%[[ROW]], %[[COL]]]
// CHECK: return %[[R]]
func.func @embedding(%table: tensor<512x64xf32>, %tokens: tensor<?xi32>) -> tensor<?x64xf32> {
  %x = llm.embedding %table, %tokens : (tensor<512x64xf32>, tensor<?xi32>) -> tensor<?x64xf32>
  return %x : tensor<?x64xf32>
}

// -----

// Tests that llm.rms_norm becomes a fast-math sum of squares, a 1/sqrt(mean + eps) step and a scaling generic.
// CHECK-LABEL: func.func @rms_norm
// CHECK-SAME: (%[[X:.*]]: tensor<?x64xf32>, %[[W:.*]]: tensor<64xf32>)
// CHECK: %[[SS:.*]] = linalg.generic {{.*}}iterator_types = ["parallel", "reduction"]} ins(%[[X]] : tensor<?x64xf32>)
// CHECK: arith.mulf %{{.*}}, %{{.*}} fastmath<reassoc,contract>
// CHECK: arith.addf %{{.*}}, %{{.*}} fastmath<reassoc,contract>
// CHECK: %[[INV:.*]] = linalg.generic {{.*}}iterator_types = ["parallel"]} ins(%[[SS]] : tensor<?xf32>)
// CHECK: math.sqrt
// CHECK: %[[Y:.*]] = linalg.generic {{.*}}iterator_types = ["parallel", "parallel"]} ins(%[[X]], %[[INV]], %[[W]] : tensor<?x64xf32>, tensor<?xf32>, tensor<64xf32>)
// CHECK: return %[[Y]]
func.func @rms_norm(%x: tensor<?x64xf32>, %w: tensor<64xf32>) -> tensor<?x64xf32> {
  %y = llm.rms_norm %x, %w {eps = 1.0e-05 : f32} : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}

// -----

// Tests that llm.linear without a bias becomes a zero fill and a (t, n, k) reduction generic computing x W^T that reads W as stored, [N, K] (no transposed copy).
// CHECK-DAG: #[[$X_MAP:.*]] = affine_map<(d0, d1, d2) -> (d0, d2)>
// CHECK-DAG: #[[$W_MAP:.*]] = affine_map<(d0, d1, d2) -> (d1, d2)>
// CHECK-DAG: #[[$Y_MAP:.*]] = affine_map<(d0, d1, d2) -> (d0, d1)>
// CHECK-LABEL: func.func @linear
// CHECK-SAME: (%[[X:.*]]: tensor<?x64xf32>, %[[W:.*]]: tensor<172x64xf32>)
// CHECK: %[[INIT:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%{{.*}} : tensor<?x172xf32>)
// CHECK-NOT: linalg.transpose
// CHECK: %[[Y:.*]] = linalg.generic {indexing_maps = [#[[$X_MAP]], #[[$W_MAP]], #[[$Y_MAP]]], iterator_types = ["parallel", "parallel", "reduction"]} ins(%[[X]], %[[W]] : tensor<?x64xf32>, tensor<172x64xf32>) outs(%[[INIT]] : tensor<?x172xf32>)
// CHECK: arith.mulf %{{.*}}, %{{.*}} fastmath<reassoc,contract>
// CHECK: arith.addf %{{.*}}, %{{.*}} fastmath<reassoc,contract>
// CHECK: return %[[Y]]
func.func @linear(%x: tensor<?x64xf32>, %w: tensor<172x64xf32>) -> tensor<?x172xf32> {
  %y = llm.linear %x, %w : (tensor<?x64xf32>, tensor<172x64xf32>) -> tensor<?x172xf32>
  return %y : tensor<?x172xf32>
}

// -----

// Tests that llm.linear with a bias starts the reduction from the broadcast bias instead of a zero fill.
// CHECK-LABEL: func.func @linear_bias
// CHECK-SAME: (%[[X:.*]]: tensor<?x64xf32>, %[[W:.*]]: tensor<172x64xf32>, %[[B:.*]]: tensor<172xf32>)
// CHECK-NOT: linalg.fill
// CHECK: %[[INIT:.*]] = linalg.generic {{.*}}iterator_types = ["parallel", "parallel"]} ins(%[[B]] : tensor<172xf32>)
// CHECK-NOT: linalg.transpose
// CHECK: %[[Y:.*]] = linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "reduction"]} ins(%[[X]], %[[W]] : tensor<?x64xf32>, tensor<172x64xf32>) outs(%[[INIT]] : tensor<?x172xf32>)
// CHECK: arith.addf %{{.*}}, %{{.*}} fastmath<reassoc,contract>
// CHECK: return %[[Y]]
func.func @linear_bias(%x: tensor<?x64xf32>, %w: tensor<172x64xf32>, %b: tensor<172xf32>) -> tensor<?x172xf32> {
  %y = llm.linear %x, %w, %b : (tensor<?x64xf32>, tensor<172x64xf32>, tensor<172xf32>) -> tensor<?x172xf32>
  return %y : tensor<?x172xf32>
}

// -----

// Tests that interleaved llm.rope builds a [T, head_dim/2] cos/sin table and pairs feature c with c +/- 1.
// CHECK-LABEL: func.func @rope_interleaved
// CHECK-SAME: (%[[X:.*]]: tensor<?x64xf32>)
// CHECK: %[[TABLE:.*]]:2 = linalg.generic {{.*}}iterator_types = ["parallel", "parallel"]} outs(%{{.*}}, %{{.*}} : tensor<?x4xf32>, tensor<?x4xf32>)
// CHECK: math.powf
// CHECK: math.cos
// CHECK: math.sin
// CHECK: %[[Y:.*]] = linalg.generic {{.*}}iterator_types = ["parallel", "parallel"]} ins(%[[X]] : tensor<?x64xf32>)
// CHECK: arith.divui %{{.*}}, %c2
// CHECK: arith.addi %{{.*}}, %c1
// CHECK: tensor.extract %[[X]]
// CHECK: tensor.extract %[[TABLE]]#0
// CHECK: tensor.extract %[[TABLE]]#1
// CHECK: return %[[Y]]
func.func @rope_interleaved(%q: tensor<?x64xf32>) -> tensor<?x64xf32> {
  %r = llm.rope %q {num_heads = 8 : i64, head_dim = 8 : i64, theta = 1.0e+04 : f32,
                    layout = #llm.rope_layout<interleaved>} : tensor<?x64xf32>
  return %r : tensor<?x64xf32>
}

// -----

// Tests that half-layout llm.rope pairs feature i with i + head_dim/2 within each head.
// CHECK-LABEL: func.func @rope_half
// CHECK-SAME: (%[[X:.*]]: tensor<4x32xf32>)
// CHECK: %[[TABLE:.*]]:2 = linalg.generic {{.*}}iterator_types = ["parallel", "parallel"]} outs(%{{.*}}, %{{.*}} : tensor<4x8xf32>, tensor<4x8xf32>)
// CHECK: %[[Y:.*]] = linalg.generic {{.*}}iterator_types = ["parallel", "parallel"]} ins(%[[X]] : tensor<4x32xf32>)
// CHECK: %[[LOCAL:.*]] = arith.remui %{{.*}}, %c16
// CHECK: arith.cmpi ult, %[[LOCAL]], %c8
// CHECK: arith.addi %{{.*}}, %c8
// CHECK: tensor.extract %[[X]]
// CHECK: return %[[Y]]
func.func @rope_half(%k: tensor<4x32xf32>) -> tensor<4x32xf32> {
  %r = llm.rope %k {num_heads = 2 : i64, head_dim = 16 : i64, theta = 5.0e+05 : f32,
                    layout = #llm.rope_layout<half>} : tensor<4x32xf32>
  return %r : tensor<4x32xf32>
}

// -----

// Tests that GQA llm.attention splits heads with tensor.expand_shape, transposes q, k and v to [heads, head_dim, T], loops over query chunks with scf.for, maps query head h to kv head h / 2, keeps the query row innermost in every generic, masks causally and uses a max-subtracted exp softmax.
// CHECK-DAG: #[[$KMAP:.*]] = affine_map<(d0, d1, d2, d3) -> (d0 floordiv 2, d2, d1)>
// CHECK-DAG: #[[$VMAP:.*]] = affine_map<(d0, d1, d2, d3) -> (d0 floordiv 2, d1, d2)>
// CHECK-LABEL: func.func @attention
// CHECK-SAME: (%[[Q:.*]]: tensor<?x64xf32>, %[[K:.*]]: tensor<?x32xf32>, %[[V:.*]]: tensor<?x32xf32>)
// CHECK: %[[Q3:.*]] = tensor.expand_shape %[[Q]] {{\[}}[0], [1, 2]] output_shape [%{{.*}}, 8, 8] : tensor<?x64xf32> into tensor<?x8x8xf32>
// CHECK: %[[QT:.*]] = linalg.transpose ins(%[[Q3]] : tensor<?x8x8xf32>) outs(%{{.*}} : tensor<8x8x?xf32>) permutation = [1, 2, 0]
// CHECK: %[[K3:.*]] = tensor.expand_shape %[[K]] {{\[}}[0], [1, 2]] output_shape [%{{.*}}, 4, 8] : tensor<?x32xf32> into tensor<?x4x8xf32>
// CHECK: %[[KT:.*]] = linalg.transpose ins(%[[K3]] : tensor<?x4x8xf32>) outs(%{{.*}} : tensor<4x8x?xf32>) permutation = [1, 2, 0]
// CHECK: %[[V3:.*]] = tensor.expand_shape %[[V]] {{\[}}[0], [1, 2]] output_shape [%{{.*}}, 4, 8] : tensor<?x32xf32> into tensor<?x4x8xf32>
// CHECK: %[[VT:.*]] = linalg.transpose ins(%[[V3]] : tensor<?x4x8xf32>) outs(%{{.*}} : tensor<4x8x?xf32>) permutation = [1, 2, 0]
// CHECK: %[[OUT:.*]] = scf.for %[[ROW:.*]] = %{{.*}} to %{{.*}} step %c64 iter_args(%[[ACC:.*]] = %{{.*}}) -> (tensor<?x8x8xf32>)
// CHECK: %[[QC:.*]] = tensor.extract_slice %[[QT]][0, 0, %[[ROW]]]
// CHECK: %[[KC:.*]] = tensor.extract_slice %[[KT]][0, 0, 0]
// CHECK: %[[VC:.*]] = tensor.extract_slice %[[VT]][0, 0, 0]
// CHECK: %[[S:.*]] = linalg.generic {indexing_maps = [#[[$KMAP]], #{{.*}}, #{{.*}}], iterator_types = ["parallel", "parallel", "reduction", "parallel"]} ins(%[[KC]], %[[QC]] :
// CHECK: arith.addf %{{.*}}, %{{.*}} fastmath<reassoc,contract>
// CHECK: %[[M:.*]] = linalg.generic {{.*}}iterator_types = ["parallel", "reduction", "parallel"]} ins(%[[S]] :
// CHECK: arith.cmpi ule
// CHECK: arith.maxnumf {{.*}} fastmath<nnan,nsz>
// CHECK: %[[P:.*]] = linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "parallel"]} ins(%[[S]], %[[M]] :
// CHECK: arith.cmpi ule
// CHECK: arith.subf
// CHECK: math.exp
// CHECK: %[[L:.*]] = linalg.generic {{.*}}iterator_types = ["parallel", "reduction", "parallel"]} ins(%[[P]] :
// CHECK: arith.addf
// CHECK: %[[O:.*]] = linalg.generic {indexing_maps = [#[[$VMAP]], #{{.*}}, #{{.*}}], iterator_types = ["parallel", "parallel", "reduction", "parallel"]} ins(%[[VC]], %[[P]] :
// CHECK: %[[N:.*]] = linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "parallel"]} ins(%[[O]], %[[L]] :
// CHECK: arith.divf
// CHECK: %[[UPD:.*]] = tensor.insert_slice %[[N]] into %[[ACC]][%[[ROW]], 0, 0]
// CHECK: scf.yield %[[UPD]]
// CHECK: %[[R:.*]] = tensor.collapse_shape %[[OUT]] {{\[}}[0], [1, 2]] : tensor<?x8x8xf32> into tensor<?x64xf32>
// CHECK: return %[[R]]
func.func @attention(%q: tensor<?x64xf32>, %k: tensor<?x32xf32>, %v: tensor<?x32xf32>) -> tensor<?x64xf32> {
  %o = llm.attention %q, %k, %v {num_heads = 8 : i64, num_kv_heads = 4 : i64, head_dim = 8 : i64,
                                 scale = 0.353553385 : f32, causal = true}
      : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>) -> tensor<?x64xf32>
  return %o : tensor<?x64xf32>
}

// -----

// Tests that non-causal llm.attention applies no mask.
// CHECK-LABEL: func.func @attention_non_causal
// CHECK-NOT: arith.cmpi
// CHECK: math.exp
// CHECK-NOT: arith.cmpi
// CHECK: return
func.func @attention_non_causal(%q: tensor<4x16xf32>, %k: tensor<4x16xf32>, %v: tensor<4x16xf32>) -> tensor<4x16xf32> {
  %o = llm.attention %q, %k, %v {num_heads = 2 : i64, num_kv_heads = 2 : i64, head_dim = 8 : i64,
                                 scale = 0.353553385 : f32, causal = false}
      : (tensor<4x16xf32>, tensor<4x16xf32>, tensor<4x16xf32>) -> tensor<4x16xf32>
  return %o : tensor<4x16xf32>
}

// -----

// Tests that llm.silu_mul becomes one elementwise generic computing gate * sigmoid(gate) * up with math.exp.
// CHECK-LABEL: func.func @silu_mul
// CHECK-SAME: (%[[G:.*]]: tensor<?x172xf32>, %[[U:.*]]: tensor<?x172xf32>)
// CHECK: %[[H:.*]] = linalg.generic {{.*}}iterator_types = ["parallel", "parallel"]} ins(%[[G]], %[[U]] : tensor<?x172xf32>, tensor<?x172xf32>)
// CHECK: ^bb0(%[[GI:[^:]*]]: f32, %[[UI:[^:]*]]: f32, %{{.*}}: f32):
// CHECK: %[[NEG:.*]] = arith.negf %[[GI]]
// CHECK: math.exp %[[NEG]]
// CHECK: %[[SILU:.*]] = arith.mulf %[[GI]], %{{.*}}
// CHECK: arith.mulf %[[SILU]], %[[UI]]
// CHECK: return %[[H]]
func.func @silu_mul(%g: tensor<?x172xf32>, %u: tensor<?x172xf32>) -> tensor<?x172xf32> {
  %h = llm.silu_mul %g, %u : tensor<?x172xf32>
  return %h : tensor<?x172xf32>
}

// -----

// Tests that llm.add becomes one elementwise generic with arith.addf.
// CHECK-LABEL: func.func @add
// CHECK-SAME: (%[[A:.*]]: tensor<?x64xf32>, %[[B:.*]]: tensor<?x64xf32>)
// CHECK: %[[S:.*]] = linalg.generic {{.*}}iterator_types = ["parallel", "parallel"]} ins(%[[A]], %[[B]] : tensor<?x64xf32>, tensor<?x64xf32>)
// CHECK: arith.addf
// CHECK: return %[[S]]
func.func @add(%a: tensor<?x64xf32>, %b: tensor<?x64xf32>) -> tensor<?x64xf32> {
  %s = llm.add %a, %b : tensor<?x64xf32>
  return %s : tensor<?x64xf32>
}

// -----

// Tests that llm.logits lowers like a bias-free linear: zero fill and a reduction generic over the weight as stored.
// CHECK-LABEL: func.func @logits
// CHECK-SAME: (%[[H:.*]]: tensor<?x64xf32>, %[[E:.*]]: tensor<512x64xf32>)
// CHECK: %[[INIT:.*]] = linalg.fill ins(%{{.*}} : f32) outs(%{{.*}} : tensor<?x512xf32>)
// CHECK-NOT: linalg.transpose
// CHECK: %[[L:.*]] = linalg.generic {{.*}}iterator_types = ["parallel", "parallel", "reduction"]} ins(%[[H]], %[[E]] : tensor<?x64xf32>, tensor<512x64xf32>) outs(%[[INIT]] : tensor<?x512xf32>)
// CHECK: arith.addf %{{.*}}, %{{.*}} fastmath<reassoc,contract>
// CHECK: return %[[L]]
func.func @logits(%h: tensor<?x64xf32>, %emb: tensor<512x64xf32>) -> tensor<?x512xf32> {
  %l = llm.logits %h, %emb : (tensor<?x64xf32>, tensor<512x64xf32>) -> tensor<?x512xf32>
  return %l : tensor<?x512xf32>
}

// -----

// Tests that llm.param is left in place for llm-params-to-arguments.
// CHECK-LABEL: func.func @param
// CHECK: %[[W:.*]] = llm.param "model.norm.weight" : tensor<64xf32>
// CHECK: return %[[W]]
func.func @param() -> tensor<64xf32> {
  %w = llm.param "model.norm.weight" : tensor<64xf32>
  return %w : tensor<64xf32>
}

// -----

// Tests that a rope with an offset rotates row t by position offset + t.
// CHECK-LABEL: func.func @rope_offset
// CHECK-SAME: (%[[X:.*]]: tensor<?x16xf32>, %[[P:.*]]: index)
// CHECK: linalg.generic
// CHECK: %[[T:.*]] = linalg.index 0 : index
// CHECK: %[[POS:.*]] = arith.addi %[[T]], %[[P]] : index
// CHECK: arith.index_cast %[[POS]] : index to i64
// NOLLM-LABEL: func.func @rope_offset
// NOLLM-NOT: llm.
func.func @rope_offset(%x: tensor<?x16xf32>, %pos: index) -> tensor<?x16xf32> {
  %r = llm.rope %x offset %pos {num_heads = 2 : i64, head_dim = 8 : i64, theta = 1.0e+04 : f32,
                    layout = #llm.rope_layout<half>} : tensor<?x16xf32>
  return %r : tensor<?x16xf32>
}

// -----

// Tests that llm.kv_cache_write transposes the new rows to [KV, T, hd] and
// inserts them at [layer, 0, pos, 0] of the cache.
// CHECK-LABEL: func.func @kv_cache_write
// CHECK-SAME: (%[[C:.*]]: tensor<5x2x?x8xf32>, %[[K:.*]]: tensor<?x16xf32>, %[[P:.*]]: index)
// CHECK: %[[E:.*]] = tensor.expand_shape %[[K]] {{\[\[}}0], [1, 2]] output_shape [%{{.*}}, 2, 8] : tensor<?x16xf32> into tensor<?x2x8xf32>
// CHECK: %[[TR:.*]] = linalg.transpose ins(%[[E]] : tensor<?x2x8xf32>) outs(%{{.*}} : tensor<2x?x8xf32>) permutation = [1, 0, 2]
// CHECK: %[[R:.*]] = tensor.insert_slice %[[TR]] into %[[C]][3, 0, %[[P]], 0] [1, 2, %{{.*}}, 8] [1, 1, 1, 1] : tensor<2x?x8xf32> into tensor<5x2x?x8xf32>
// CHECK: return %[[R]]
// NOLLM-LABEL: func.func @kv_cache_write
// NOLLM-NOT: llm.
func.func @kv_cache_write(%c: tensor<5x2x?x8xf32>, %k: tensor<?x16xf32>, %pos: index) -> tensor<5x2x?x8xf32> {
  %0 = llm.kv_cache_write %c, %k, %pos {layer = 3 : i64} : (tensor<5x2x?x8xf32>, tensor<?x16xf32>) -> tensor<5x2x?x8xf32>
  return %0 : tensor<5x2x?x8xf32>
}

// -----

// Tests that llm.kv_cache_attention takes layer `layer` of both caches once,
// as [KV, max_ctx, hd] views, outside the branch on the number of rows.
// One row (decode) scores each KV head's query group against keys
// [0, pos + 1) with a (t, n, k) x . W^T generic (what qc-vectorize-linear
// turns into its kernel) and sums the values with hd innermost. More rows
// take the chunked form: keys up to the chunk's last position
// (pos + row0 + rows), position-major key maps, and key j masked for row i
// unless j <= pos + row0 + i.
// CHECK-DAG: #[[LIN_X:.*]] = affine_map<(d0, d1, d2) -> (d0, d2)>
// CHECK-DAG: #[[LIN_W:.*]] = affine_map<(d0, d1, d2) -> (d1, d2)>
// CHECK-DAG: #[[PV_V:.*]] = affine_map<(d0, d1, d2) -> (d0 floordiv 4, d1, d2)>
// CHECK-DAG: #[[KEYMAP:.*]] = affine_map<(d0, d1, d2, d3) -> (d0 floordiv 4, d1, d2)>
// CHECK-DAG: #[[VALMAP:.*]] = affine_map<(d0, d1, d2, d3) -> (d0 floordiv 4, d2, d1)>
// CHECK-LABEL: func.func @kv_cache_attention
// CHECK-SAME: (%[[Q:.*]]: tensor<?x64xf32>, %[[KC:.*]]: tensor<5x2x?x8xf32>, %[[VC:.*]]: tensor<5x2x?x8xf32>, %[[P:.*]]: index)
// CHECK: %[[KL:.*]] = tensor.extract_slice %[[KC]][3, 0, 0, 0] [1, 2, %{{.*}}, 8] [1, 1, 1, 1] : tensor<5x2x?x8xf32> to tensor<2x?x8xf32>
// CHECK: %[[VL:.*]] = tensor.extract_slice %[[VC]][3, 0, 0, 0] [1, 2, %{{.*}}, 8] [1, 1, 1, 1] : tensor<5x2x?x8xf32> to tensor<2x?x8xf32>
// CHECK: %[[T:.*]] = tensor.dim %[[Q]], %{{.*}} : tensor<?x64xf32>
// CHECK: %[[ONE:.*]] = arith.cmpi eq, %[[T]], %{{.*}} : index
// CHECK: scf.if %[[ONE]] -> (tensor<?x64xf32>)
// CHECK: %[[K1:.*]] = arith.addi %[[P]], %{{.*}} : index
// CHECK: %[[K0S:.*]] = tensor.extract_slice %[[KL]][0, 0, 0] [1, %[[K1]], 8] [1, 1, 1] : tensor<2x?x8xf32> to tensor<?x8xf32>
// CHECK: linalg.generic {indexing_maps = [#[[LIN_X]], #[[LIN_W]], {{.*}}], iterator_types = ["parallel", "parallel", "reduction"]} ins(%{{.*}}, %[[K0S]] : tensor<4x8xf32>, tensor<?x8xf32>)
// CHECK: %[[K1S:.*]] = tensor.extract_slice %[[KL]][1, 0, 0] [1, %[[K1]], 8] [1, 1, 1] : tensor<2x?x8xf32> to tensor<?x8xf32>
// CHECK: linalg.generic {indexing_maps = [#[[LIN_X]], #[[LIN_W]], {{.*}}], iterator_types = ["parallel", "parallel", "reduction"]} ins(%{{.*}}, %[[K1S]] : tensor<4x8xf32>, tensor<?x8xf32>)
// CHECK: %[[VS1:.*]] = tensor.extract_slice %[[VL]][0, 0, 0] [2, %[[K1]], 8] [1, 1, 1]
// CHECK: linalg.generic {indexing_maps = [#[[PV_V]], {{.*}}], iterator_types = ["parallel", "reduction", "parallel"]} ins(%[[VS1]], {{.*}})
// CHECK: } else {
// CHECK: scf.for %[[R0:.*]] = %{{.*}} to %{{.*}} step %{{.*}} iter_args
// CHECK: %[[ROWS:.*]] = arith.minui
// CHECK: %[[FIRST:.*]] = arith.addi %[[P]], %[[R0]] : index
// CHECK: %[[KEYS:.*]] = arith.addi %[[FIRST]], %[[ROWS]] : index
// CHECK: %[[KS:.*]] = tensor.extract_slice %[[KL]][0, 0, 0] [2, %[[KEYS]], 8] [1, 1, 1] : tensor<2x?x8xf32> to tensor<2x?x8xf32>
// CHECK: %[[VS:.*]] = tensor.extract_slice %[[VL]][0, 0, 0] [2, %[[KEYS]], 8] [1, 1, 1] : tensor<2x?x8xf32> to tensor<2x?x8xf32>
// CHECK: linalg.generic {indexing_maps = [#[[KEYMAP]], {{.*}}} ins(%[[KS]], {{.*}})
// CHECK: %[[I:.*]] = linalg.index 2 : index
// CHECK: %[[J:.*]] = linalg.index 1 : index
// CHECK: %[[ROW:.*]] = arith.addi %[[FIRST]], %[[I]] : index
// CHECK: arith.cmpi ule, %[[J]], %[[ROW]] : index
// CHECK: linalg.generic {indexing_maps = [#[[VALMAP]], {{.*}}} ins(%[[VS]], {{.*}})
// NOLLM-LABEL: func.func @kv_cache_attention
// NOLLM-NOT: llm.
func.func @kv_cache_attention(%q: tensor<?x64xf32>, %kc: tensor<5x2x?x8xf32>, %vc: tensor<5x2x?x8xf32>, %pos: index) -> tensor<?x64xf32> {
  %o = llm.kv_cache_attention %q, %kc, %vc, %pos {layer = 3 : i64, num_heads = 8 : i64,
          num_kv_heads = 2 : i64, head_dim = 8 : i64, scale = 0.353553385 : f32}
      : (tensor<?x64xf32>, tensor<5x2x?x8xf32>, tensor<5x2x?x8xf32>) -> tensor<?x64xf32>
  return %o : tensor<?x64xf32>
}
