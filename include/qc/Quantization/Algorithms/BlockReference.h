//===- BlockReference.h - fp32 LLaMA decoder block --------------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// A plain fp32 implementation of ONE LLaMA-family decoder block with the
// semantics of the compiler's `llm` dialect (pre-RMSNorm with an fp32
// statistic, q/k/v projections with an optional qwen2 bias, RoPE in either
// pair layout, causal grouped-query attention with scale 1/sqrt(head_dim),
// o_proj and residual, post-RMSNorm, SwiGLU MLP and residual), together with
// a hand-written backward pass.
//
// The block-sequential calibration algorithms need exactly this and nothing
// more (../shared/docs/ALGORITHMS.md §2): AWQ measures the output error of
// the attention / MLP sub-modules and needs every linear's input (§4.2),
// GPTQ needs the linear inputs for its Hessians (§3.1), and AutoRound
// optimizes rounding offsets through the whole block with gradients (§6.2).
// Running that through MLIR for every trial would be far slower and would
// drag MLIR into a library that must stay plain C++.
//
// Layouts: activations are [S, T, D] row-major (S sequences of T tokens,
// positions 0..T-1 in every sequence; the causal mask never crosses a
// sequence). Linear weights use the nn.Linear layout [N, K] (§0).
//
//===----------------------------------------------------------------------===//

#ifndef QC_QUANTIZATION_ALGORITHMS_BLOCKREFERENCE_H
#define QC_QUANTIZATION_ALGORITHMS_BLOCKREFERENCE_H

#include "qc/Quantization/Algorithms/Common.h"
#include "qc/runtime/Model.h"
#include "qc/runtime/Status.h"

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace qc {
namespace quant {

/// The seven linear layers of a LLaMA-family decoder block, in the order
/// used by every per-linear array in this library (HF module order).
enum class BlockLinear : int { Q = 0, K, V, O, Gate, Up, Down };

/// Number of BlockLinear values; per-linear arrays have this size.
constexpr int kNumBlockLinears = 7;

/// All BlockLinear values in index order, for range-for loops.
constexpr std::array<BlockLinear, kNumBlockLinears> kAllBlockLinears = {
    BlockLinear::Q,    BlockLinear::K,  BlockLinear::V,   BlockLinear::O,
    BlockLinear::Gate, BlockLinear::Up, BlockLinear::Down};

/// The HF module name of `l` relative to the layer ("self_attn.q_proj",
/// "mlp.down_proj", ...); append ".weight" for the tensor name.
const char *blockLinearName(BlockLinear l);

/// Index of `l` in per-linear arrays (0..6).
inline int blockLinearIndex(BlockLinear l) { return static_cast<int>(l); }

/// Shape [N, K] of linear `l` for `config`: q [H*hd, D], k/v [KV*hd, D],
/// o [D, H*hd], gate/up [F, D], down [D, F].
void blockLinearShape(const ModelConfig &config, BlockLinear l, int64_t &N,
                      int64_t &K);

/// The fp32 parameters of one decoder block. Every linear is [N, K]
/// row-major (see blockLinearShape); norms are [D]; biases are either empty
/// (no bias) or [N] of their projection.
struct BlockWeights {
  std::vector<float> inputNorm; ///< input_layernorm weight [D]
  std::vector<float> q;         ///< q_proj [H*hd, D]
  std::vector<float> k;         ///< k_proj [KV*hd, D]
  std::vector<float> v;         ///< v_proj [KV*hd, D]
  std::vector<float> qBias;     ///< q_proj bias [H*hd] or empty
  std::vector<float> kBias;     ///< k_proj bias [KV*hd] or empty
  std::vector<float> vBias;     ///< v_proj bias [KV*hd] or empty
  std::vector<float> o;         ///< o_proj [D, H*hd]
  std::vector<float> postNorm;  ///< post_attention_layernorm weight [D]
  std::vector<float> gate;      ///< mlp.gate_proj [F, D]
  std::vector<float> up;        ///< mlp.up_proj [F, D]
  std::vector<float> down;      ///< mlp.down_proj [D, F]

  /// The weight of linear `l`.
  std::vector<float> &linear(BlockLinear l);
  /// The weight of linear `l`.
  const std::vector<float> &linear(BlockLinear l) const;
  /// The bias of `l`, or nullptr when it has none (only q/k/v can).
  const float *bias(BlockLinear l) const;

  /// Checks every size against `config` (see the member comments); a
  /// config with attentionBias requires all three q/k/v biases, otherwise
  /// each bias may be empty. Also checks the config's block-level fields
  /// (positive sizes, nHeads % nKVHeads == 0, even headDim, eps > 0).
  Status validate(const ModelConfig &config) const;
};

/// Copies layer `layer` of `model` (HF tensor names, see layerTensorName)
/// into `out` and validates it against model.config.
Status loadBlockWeights(const ModelWeights &model, int64_t layer,
                        BlockWeights &out);

/// Writes `w` back into layer `layer` of `model` (the tensors must already
/// exist with the right sizes; biases only if present in both).
Status storeBlockWeights(const BlockWeights &w, int64_t layer,
                         ModelWeights &model);

/// Replaces the seven linear weights of `w` by the dequantized `q` (indexed
/// by BlockLinear); norms and biases are kept. Shapes must match.
Status
setDequantizedLinears(BlockWeights &w,
                      const std::array<QuantizedWeight, kNumBlockLinears> &q);

/// Observer of linear inputs during a forward: called with `rows` x `cols`
/// row-major activations that are the input x of linear `which` (y = x W^T).
/// It may be called several times per forward, each call covering the next
/// whole sequences (rows = multiple of T), in sequence order; q/k/v (and
/// gate/up) receive the same pointer. The pointer is only valid during the
/// call.
using LinearInputHook = std::function<void(BlockLinear which, const float *x,
                                           int64_t rows, int64_t cols)>;

/// Every intermediate of a forward pass over S sequences of T tokens that
/// the backward pass (and AWQ's statistics) need. Row-major, rows = S*T.
struct BlockActivations {
  int64_t S = 0;           ///< number of sequences
  int64_t T = 0;           ///< tokens per sequence
  std::vector<float> x;    ///< block input [S*T, D]
  std::vector<float> rms1; ///< 1/sqrt(mean(x^2) + eps) per row [S*T]
  std::vector<float> xn;   ///< input of q/k/v (normed x) [S*T, D]
  std::vector<float> q;    ///< queries after bias and RoPE [S*T, H*hd]
  std::vector<float> k;    ///< keys after bias and RoPE [S*T, KV*hd]
  std::vector<float> v;    ///< values after bias [S*T, KV*hd]
  std::vector<float> lse;  ///< log-sum-exp of each softmax row [S, H, T]
  std::vector<float> attn; ///< attention output = input of o_proj [S*T, H*hd]
  std::vector<float> h1;   ///< x + o_proj(attn) [S*T, D]
  std::vector<float> rms2; ///< 1/sqrt(mean(h1^2) + eps) per row [S*T]
  std::vector<float> hn;   ///< input of gate/up (normed h1) [S*T, D]
  std::vector<float> gate; ///< gate_proj output (pre-SiLU) [S*T, F]
  std::vector<float> up;   ///< up_proj output [S*T, F]
  std::vector<float> act;  ///< silu(gate) * up = input of down [S*T, F]

  /// The captured input of linear `l` ([S*T, K] of that linear).
  const std::vector<float> &linearInput(BlockLinear l) const;
};

/// Runs the block on `x` [S, T, D] and writes `y` [S, T, D]. When `acts` is
/// non-null it receives every intermediate (for blockBackward / statistics);
/// otherwise work buffers are per sequence, so memory stays O(T). `hook`, if
/// set, observes every linear input. `x` and `y` may not alias. Fails on a
/// weight/config mismatch or S, T < 1.
Status blockForward(const ModelConfig &config, const BlockWeights &w,
                    const float *x, int64_t S, int64_t T, float *y,
                    BlockActivations *acts = nullptr,
                    const LinearInputHook &hook = LinearInputHook());

/// Gradients of a scalar loss with respect to the block's parameters.
struct BlockGradients {
  /// dL/dW of each linear, indexed by BlockLinear, same [N, K] layout.
  std::array<std::vector<float>, kNumBlockLinears> weight;
  /// dL/dx [S*T, D] when requested, else empty.
  std::vector<float> input;
};

/// Back-propagates `dy` = dL/dy [S, T, D] through the block whose forward
/// produced `acts` (with the same `w`). Overwrites `grads` (weights always,
/// the input gradient only when `wantInputGrad`). Attention probabilities
/// are recomputed from acts.lse rather than stored, so memory stays
/// O(S*T*(D+F)). Norm weights and biases receive no gradient (nothing
/// tunes them).
Status blockBackward(const ModelConfig &config, const BlockWeights &w,
                     const BlockActivations &acts, const float *dy,
                     BlockGradients &grads, bool wantInputGrad = false);

/// The `self_attn` module alone: q/k/v projections (with bias), RoPE, causal
/// GQA attention and o_proj on already-normalized inputs `xn` [S, T, D];
/// writes `out` [S, T, D] (o_proj output, no residual). This is AWQ's
/// module2inspect for the q/k/v scaling group (§4.1).
Status attentionForward(const ModelConfig &config, const BlockWeights &w,
                        const float *xn, int64_t S, int64_t T, float *out);

/// The `mlp` module alone: down(silu(gate hn) * up hn) on `rows` rows of
/// `hn` [rows, D]; writes `out` [rows, D]. AWQ's module2inspect for the
/// gate/up scaling group (§4.1).
Status mlpForward(const ModelConfig &config, const BlockWeights &w,
                  const float *hn, int64_t rows, float *out);

/// y [rows, N] = x [rows, K] * W^T (+ bias [N] when non-null), fp32
/// accumulation. W is [N, K] row-major.
void linearForward(const float *x, int64_t rows, const float *w, int64_t N,
                   int64_t K, const float *bias, float *y);

} // namespace quant
} // namespace qc

#endif // QC_QUANTIZATION_ALGORITHMS_BLOCKREFERENCE_H
