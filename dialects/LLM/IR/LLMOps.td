//===- LLMOps.td - Operations of the `llm` dialect ---------*- tablegen -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Shapes: T is the number of tokens in the sequence (usually dynamic), D the
// model width, H/KV the number of query/key-value heads, hd the head width.
// Every op states its shape contract in its description and its verifier
// enforces it wherever the dimensions are static.
//
//===----------------------------------------------------------------------===//

#ifndef QC_LLM_OPS_TD
#define QC_LLM_OPS_TD

include "LLM/IR/LLMBase.td"
include "LLM/IR/LLMAttrs.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/IR/BuiltinAttributes.td"
include "mlir/IR/CommonAttrConstraints.td"

// A positive, finite float attribute (epsilons, RoPE bases, scales).
def LLM_FloatPositive : AttrConstraint<
    CPred<"::llvm::cast<::mlir::FloatAttr>($_self).getValue().isNegative() == false && "
          "!::llvm::cast<::mlir::FloatAttr>($_self).getValue().isZero() && "
          "::llvm::cast<::mlir::FloatAttr>($_self).getValue().isFinite()">,
    "whose value is positive and finite">;

def LLM_FloatTensor : RankedTensorOf<[AnyFloat]>;
def LLM_TokenTensor : 1DTensorOf<[I32]>;

//===----------------------------------------------------------------------===//
// llm.param
//===----------------------------------------------------------------------===//

def LLM_ParamOp : LLM_Op<"param", [Pure]> {
  let summary = "a named model parameter";
  let description = [{
    Refers to a weight tensor by its checkpoint name (Hugging Face naming,
    e.g. `model.layers.0.self_attn.q_proj.weight`; a quantized layer's
    `.qweight`, `.scales`, `.qzeros`, `.g_idx`). The values live outside
    the IR, in the checkpoint the module's `llm.checkpoint` attribute names;
    execution binds them by name. Tied weights are two uses of one name.

    ```mlir
    %w = llm.param "model.norm.weight" : tensor<64xf32>
    ```
  }];
  let arguments = (ins StrAttr:$name);
  // Integer and low-precision types too: a quantized layer's packed codes,
  // scales and act-order indices are parameters like any other.
  let results = (outs AnyRankedTensor:$result);
  let assemblyFormat = "$name attr-dict `:` type($result)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// llm.embedding
//===----------------------------------------------------------------------===//

def LLM_EmbeddingOp : LLM_Op<"embedding", [Pure]> {
  let summary = "token embedding lookup";
  let description = [{
    `result[t, :] = table[tokens[t], :]`; `table` is `[V, D]`, `tokens` is
    `[T]` (i32), the result `[T, D]`. Token ids outside `[0, V)` are
    undefined behaviour here; the drivers validate them before execution.

    ```mlir
    %x = llm.embedding %table, %tokens
        : (tensor<512x64xf32>, tensor<?xi32>) -> tensor<?x64xf32>
    ```
  }];
  let arguments = (ins LLM_FloatTensor:$table, LLM_TokenTensor:$tokens);
  let results = (outs LLM_FloatTensor:$result);
  let assemblyFormat = [{
    $table `,` $tokens attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// llm.rms_norm
//===----------------------------------------------------------------------===//

def LLM_RMSNormOp : LLM_Op<"rms_norm", [Pure]> {
  let summary = "root-mean-square normalization with a learned scale";
  let description = [{
    `result[t, i] = x[t, i] / sqrt(mean_j(x[t, j]^2) + eps) * weight[i]`
    with the statistic accumulated in fp32. `x` is `[T, D]`, `weight` `[D]`.
    AWQ folds its per-channel scales into `weight`.

    ```mlir
    %y = llm.rms_norm %x, %w {eps = 1.0e-05 : f32}
        : (tensor<?x64xf32>, tensor<64xf32>) -> tensor<?x64xf32>
    ```
  }];
  let arguments = (ins LLM_FloatTensor:$x, LLM_FloatTensor:$weight,
                       ConfinedAttr<F32Attr, [LLM_FloatPositive]>:$eps);
  let results = (outs LLM_FloatTensor:$result);
  let assemblyFormat = [{
    $x `,` $weight attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// llm.linear
//===----------------------------------------------------------------------===//

def LLM_LinearOp : LLM_Op<"linear", [Pure]> {
  let summary = "dense linear layer x W^T (+ b)";
  let description = [{
    `result[t, n] = sum_k x[t, k] * weight[n, k] + bias[n]`. `x` is `[T, K]`,
    `weight` is `[N, K]` (the checkpoint's `[out, in]` layout, unchanged so
    that quantization passes see the tensor the checkpoint holds), `bias` is
    optional `[N]`. This is the op the quantization passes rewrite into
    `wq.linear`.

    ```mlir
    %y = llm.linear %x, %w
        : (tensor<?x64xf32>, tensor<172x64xf32>) -> tensor<?x172xf32>
    ```
  }];
  let arguments = (ins LLM_FloatTensor:$x, LLM_FloatTensor:$weight,
                       Optional<LLM_FloatTensor>:$bias);
  let results = (outs LLM_FloatTensor:$result);
  let assemblyFormat = [{
    $x `,` $weight (`,` $bias^)? attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// llm.rope
//===----------------------------------------------------------------------===//

def LLM_RopeOp : LLM_Op<"rope", [Pure, AllTypesMatch<["x", "result"]>]> {
  let summary = "rotary position embedding";
  let description = [{
    Rotates each head's feature pairs of `x` (`[T, num_heads * head_dim]`)
    by the angle `pos * theta^(-2i/head_dim)` for pair `i`, where `pos` is
    the row index. `layout` says which features pair up: `interleaved`
    (2i, 2i+1) as in llama2.c, or `half` (i, i + head_dim/2) as in Hugging
    Face's `rotate_half`. The angle and its sine/cosine are computed in fp32.

    Scaled and partial rotary embeddings (transformers' rope_scaling types
    linear, llama3 and yarn; partial_rotary_factor) carry their resolved
    numbers instead of a formula, so the op stays one op for every variant:
    - `rotary_dim` (default `head_dim`): only the first `rotary_dim`
      features of each head rotate, pairing (i, i + rotary_dim/2) in the
      `half` layout; the others pass through.
    - `inv_freq` (`rotary_dim / 2` positive values): the angle of pair `i`
      is `pos * inv_freq[i]` instead of `pos * theta^(-2i/head_dim)`.
    - `attention_scaling` (default 1): cos and sin are multiplied by it
      (YaRN's attention factor).

    The optional `offset` operand (an index) shifts every position: row `t`
    rotates by the angle of position `offset + t`. Decoding with a KV cache
    feeds the rows of positions `[offset, offset + T)`, so the rows must be
    rotated by their absolute positions, not their row indices.

    ```mlir
    %q2 = llm.rope %q {num_heads = 8 : i64, head_dim = 8 : i64,
                       theta = 1.0e+04 : f32, layout = #llm.rope_layout<interleaved>}
        : tensor<?x64xf32>
    %k2 = llm.rope %k {num_heads = 2 : i64, head_dim = 8 : i64,
                       theta = 1.0e+04 : f32, layout = #llm.rope_layout<half>,
                       rotary_dim = 4 : i64, inv_freq = array<f32: 0.5, 0.25>,
                       attention_scaling = 1.1 : f32}
        : tensor<?x16xf32>
    %q3 = llm.rope %q offset %pos {num_heads = 8 : i64, head_dim = 8 : i64,
                       theta = 1.0e+04 : f32, layout = #llm.rope_layout<half>}
        : tensor<?x64xf32>
    ```
  }];
  let arguments = (ins LLM_FloatTensor:$x, Optional<Index>:$offset,
                       ConfinedAttr<I64Attr, [IntPositive]>:$num_heads,
                       ConfinedAttr<I64Attr, [IntPositive]>:$head_dim,
                       ConfinedAttr<F32Attr, [LLM_FloatPositive]>:$theta,
                       LLM_RopeLayoutAttr:$layout,
                       OptionalAttr<ConfinedAttr<I64Attr, [IntPositive]>>:$rotary_dim,
                       OptionalAttr<DenseF32ArrayAttr>:$inv_freq,
                       OptionalAttr<ConfinedAttr<F32Attr, [LLM_FloatPositive]>>:$attention_scaling);
  let results = (outs LLM_FloatTensor:$result);
  let assemblyFormat = "$x (`offset` $offset^)? attr-dict `:` type($result)";
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// llm.attention
//===----------------------------------------------------------------------===//

def LLM_AttentionOp : LLM_Op<"attention", [Pure]> {
  let summary = "causal multi-head attention with grouped key/value heads";
  let description = [{
    `q` is `[T, num_heads * head_dim]`, `k` and `v` are
    `[T, num_kv_heads * head_dim]`; query head `h` attends to key/value head
    `h / (num_heads / num_kv_heads)`. Scores are `scale * q.k`, masked so
    that position `i` sees positions `<= i` when `causal`, normalized with a
    max-subtracted softmax in fp32. The result is `[T, num_heads * head_dim]`.

    ```mlir
    %o = llm.attention %q, %k, %v {num_heads = 8 : i64, num_kv_heads = 4 : i64,
                                   head_dim = 8 : i64, scale = 0.353553385 : f32,
                                   causal = true}
        : (tensor<?x64xf32>, tensor<?x32xf32>, tensor<?x32xf32>) -> tensor<?x64xf32>
    ```
  }];
  let arguments = (ins LLM_FloatTensor:$q, LLM_FloatTensor:$k,
                       LLM_FloatTensor:$v,
                       ConfinedAttr<I64Attr, [IntPositive]>:$num_heads,
                       ConfinedAttr<I64Attr, [IntPositive]>:$num_kv_heads,
                       ConfinedAttr<I64Attr, [IntPositive]>:$head_dim,
                       ConfinedAttr<F32Attr, [LLM_FloatPositive]>:$scale,
                       BoolAttr:$causal);
  let results = (outs LLM_FloatTensor:$result);
  let assemblyFormat = [{
    $q `,` $k `,` $v attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// KV cache: llm.kv_cache_write, llm.kv_cache_attention
//===----------------------------------------------------------------------===//

// A KV cache holds the rotated keys (or the values) of every layer:
// `[layers, num_kv_heads, max_ctx, head_dim]`, position-major inside a
// head so that appending one token writes `head_dim` contiguous values per
// head. `max_ctx` may be dynamic: the caller picks the capacity when it
// allocates the cache.
def LLM_KVCacheTensor : 4DTensorOf<[AnyFloat]>;

def LLM_KVCacheWriteOp : LLM_Op<"kv_cache_write",
    [Pure, AllTypesMatch<["cache", "result"]>]> {
  let summary = "store the keys or values of new positions in a KV cache";
  let description = [{
    `result` is `cache` with
    `result[layer, h, position + t, d] = rows[t, h * head_dim + d]` for
    every row `t` of `rows` (`[T, num_kv_heads * head_dim]`); every other
    element is unchanged. The caller guarantees
    `position + T <= max_ctx` (the drivers check it before execution, as
    they check token ids). Value semantics: the lowering updates the cache
    buffer in place when the old cache has no later use, which is how
    `llm-derive-decode` chains one write per layer.

    ```mlir
    %kc2 = llm.kv_cache_write %kc, %k, %pos {layer = 3 : i64}
        : (tensor<5x2x?x8xf32>, tensor<?x16xf32>) -> tensor<5x2x?x8xf32>
    ```
  }];
  let arguments = (ins LLM_KVCacheTensor:$cache, LLM_FloatTensor:$rows,
                       Index:$position,
                       ConfinedAttr<I64Attr, [IntNonNegative]>:$layer);
  let results = (outs LLM_KVCacheTensor:$result);
  let assemblyFormat = [{
    $cache `,` $rows `,` $position attr-dict `:`
    `(` type($cache) `,` type($rows) `)` `->` type($result)
  }];
  let hasVerifier = 1;
}

def LLM_KVCacheAttentionOp : LLM_Op<"kv_cache_attention", [Pure]> {
  let summary = "causal grouped-query attention of new positions over a KV cache";
  let description = [{
    The rows of `q` (`[T, num_heads * head_dim]`, already rotated) are the
    queries of positions `[position, position + T)`. Row `t` attends, as
    `llm.attention` with `causal = true` does, to the cached keys and values
    of layer `layer` at positions `0 .. position + t` (inclusive): scores
    `scale * q.k`, a max-subtracted softmax in fp32, query head `h` reading
    key/value head `h / (num_heads / num_kv_heads)`. The caches must already
    hold those positions (write the new rows with `llm.kv_cache_write`
    first). The result is `[T, num_heads * head_dim]`. With `position = 0`
    and the whole sequence in `q`, the result equals `llm.attention` on the
    same keys and values.

    ```mlir
    %o = llm.kv_cache_attention %q, %kc, %vc, %pos {layer = 3 : i64,
            num_heads = 8 : i64, num_kv_heads = 2 : i64, head_dim = 8 : i64,
            scale = 0.353553385 : f32}
        : (tensor<?x64xf32>, tensor<5x2x?x8xf32>, tensor<5x2x?x8xf32>)
        -> tensor<?x64xf32>
    ```
  }];
  let arguments = (ins LLM_FloatTensor:$q, LLM_KVCacheTensor:$key_cache,
                       LLM_KVCacheTensor:$value_cache, Index:$position,
                       ConfinedAttr<I64Attr, [IntNonNegative]>:$layer,
                       ConfinedAttr<I64Attr, [IntPositive]>:$num_heads,
                       ConfinedAttr<I64Attr, [IntPositive]>:$num_kv_heads,
                       ConfinedAttr<I64Attr, [IntPositive]>:$head_dim,
                       ConfinedAttr<F32Attr, [LLM_FloatPositive]>:$scale);
  let results = (outs LLM_FloatTensor:$result);
  let assemblyFormat = [{
    $q `,` $key_cache `,` $value_cache `,` $position attr-dict `:`
    `(` type($q) `,` type($key_cache) `,` type($value_cache) `)` `->`
    type($result)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Elementwise ops
//===----------------------------------------------------------------------===//

def LLM_SiluMulOp : LLM_Op<"silu_mul",
    [Pure, AllTypesMatch<["gate", "up", "result"]>]> {
  let summary = "SwiGLU gating: silu(gate) * up";
  let description = [{
    `result = gate * sigmoid(gate) * up`, elementwise; the two inputs and the
    result have one type.

    ```mlir
    %h = llm.silu_mul %g, %u : tensor<?x172xf32>
    ```
  }];
  let arguments = (ins LLM_FloatTensor:$gate, LLM_FloatTensor:$up);
  let results = (outs LLM_FloatTensor:$result);
  let assemblyFormat = "$gate `,` $up attr-dict `:` type($result)";
}

def LLM_AddOp : LLM_Op<"add",
    [Pure, Commutative, AllTypesMatch<["lhs", "rhs", "result"]>]> {
  let summary = "elementwise addition (residual connections)";
  let description = [{
    ```mlir
    %s = llm.add %a, %b : tensor<?x64xf32>
    ```
  }];
  let arguments = (ins LLM_FloatTensor:$lhs, LLM_FloatTensor:$rhs);
  let results = (outs LLM_FloatTensor:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` type($result)";
}

//===----------------------------------------------------------------------===//
// llm.logits
//===----------------------------------------------------------------------===//

def LLM_LogitsOp : LLM_Op<"logits", [Pure]> {
  let summary = "the classifier: final hidden states to vocabulary logits";
  let description = [{
    `result[t, v] = sum_d x[t, d] * weight[v, d]`; `x` is `[T, D]`, `weight`
    `[V, D]` (`lm_head.weight`, or the embedding table when tied). Kept apart
    from `llm.linear` because recipes usually leave the classifier in full
    precision and because a tied classifier must not be quantized as if it
    were only the head.

    ```mlir
    %l = llm.logits %h, %emb
        : (tensor<?x64xf32>, tensor<512x64xf32>) -> tensor<?x512xf32>
    ```
  }];
  let arguments = (ins LLM_FloatTensor:$x, LLM_FloatTensor:$weight);
  let results = (outs LLM_FloatTensor:$result);
  let assemblyFormat = [{
    $x `,` $weight attr-dict `:` functional-type(operands, results)
  }];
  let hasVerifier = 1;
}

#endif // QC_LLM_OPS_TD
