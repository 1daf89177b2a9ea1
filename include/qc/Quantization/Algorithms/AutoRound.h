//===- AutoRound.h - SignRound block-wise weight rounding -------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// AutoRound (SignRound), ../shared/docs/ALGORITHMS.md §6: every linear of a
// decoder block gets a learnable rounding offset V per weight and learnable
// range multipliers (alpha on the max, beta on the min) per (row, group);
// they are tuned with signed gradient descent to minimize the block's
// output MSE against the fp block, using straight-through rounding. The
// block forward/backward comes from BlockReference.
//
// Deviations from the Python reference, all deliberate: the block runs in
// fp32 (the reference autocasts to bf16/fp16), gradient accumulation over
// several minibatches is not offered (gradient_accumulate_steps = 1), and
// the asymmetric zero point is clamped to [0, qmax] so that it always fits
// the exported integer format (it can only leave that range through an fp16
// subnormal scale rounding down, and then the reference could not be
// exported either).
//
//===----------------------------------------------------------------------===//

#ifndef QC_QUANTIZATION_ALGORITHMS_AUTOROUND_H
#define QC_QUANTIZATION_ALGORITHMS_AUTOROUND_H

#include "qc/Quantization/Algorithms/BlockReference.h"
#include "qc/Quantization/Algorithms/Common.h"
#include "qc/runtime/Model.h"
#include "qc/runtime/Status.h"

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace qc {
namespace quant {

/// The tunable parameters of one wrapped linear (§6.1).
struct AutoRoundParams {
  /// Rounding offset per weight element, [N*K] row-major; init 0.
  std::vector<float> v;
  /// Multiplier of the group max ("max_scale"), [N*numGroups] indexed
  /// n*numGroups + g; init 1, clamped to [0, 1] before every forward.
  std::vector<float> alpha;
  /// Multiplier of the group min ("min_scale"), same layout as alpha.
  std::vector<float> beta;
};

/// AutoRound's quantizer of one [N, K] weight with straight-through
/// gradients (§6.1). Asymmetric (cfg.sym == false) is `int_asym`: range
/// [min(W,0)*beta, max(W,0)*alpha], s = max(cast(range/qmax), 1e-5 floor),
/// zp = round(-wmin/s), q = clamp(round(W/s + V) + zp, 0, qmax). Symmetric
/// is `int_sym` ("full range"): s = cast(m / 2^(b-1)) with the signed m of
/// §6.1 (|s| floored, sign kept), q = clamp(round(W/s + V), -2^(b-1),
/// 2^(b-1) - 1), exported as code q + 2^(b-1) with zero 2^(b-1) and a
/// possibly NEGATIVE scale. Scales are cast to cfg.scaleDType (fp16 by
/// default) before any code is computed.
class AutoRoundQuantizer {
public:
  /// Records the fp weight [N, K] (copied) and its per-group min/max and
  /// resets the parameters (V = 0, alpha = beta = 1). Fails on an invalid
  /// configuration, a non-finite weight or an empty shape.
  Status init(const float *w, int64_t N, int64_t K, const QuantConfig &cfg,
              const std::string &name = "");

  /// Current parameters; may be modified between forwards.
  AutoRoundParams params;

  /// Clamps alpha/beta to [0, 1] in place (as the reference does before
  /// every forward), then writes the fake-quantized weight Ŵ [N*K] and
  /// caches what backward needs. Fails if a scale overflows the storage
  /// dtype.
  Status forward(std::vector<float> &wq);

  /// Straight-through gradients of the last forward: given dL/dŴ [N*K],
  /// writes dL/dV [N*K], dL/dalpha and dL/dbeta [N*numGroups]. round() has
  /// an identity gradient, clamp() passes it only inside its range, the
  /// storage cast is an identity (torch's `.to(fp16)` backward), and an
  /// elementwise max() splits a tie evenly, all as autograd does.
  void backward(const float *dwq, std::vector<float> &dv,
                std::vector<float> &dalpha, std::vector<float> &dbeta) const;

  /// Quantizes with the current parameters (alpha/beta clamped) into `out`
  /// (unsigned codes, scales [numGroups*N] at g*N + n, zeros). Its
  /// dequantization equals forward()'s Ŵ bit for bit.
  Status exportWeight(QuantizedWeight &out);

  int64_t rows() const { return N; }       ///< N
  int64_t cols() const { return K; }       ///< K
  int64_t numGroups() const { return ng; } ///< ceil(K / G)

private:
  QuantConfig cfg;
  std::string name;
  int64_t N = 0, K = 0, G = 0, ng = 0;
  std::vector<float> w;            ///< original weight [N*K]
  std::vector<float> wmin0, wmax0; ///< min(W,0), max(W,0) per group
  // Cache of the last forward, per (n, g) and per element.
  std::vector<float> scale, zero; ///< s (after floor) and zp per group
  std::vector<uint8_t> scalePass; ///< 1 where the floor did not clamp s
  std::vector<int16_t> qint;      ///< clamped integer q per element
  std::vector<uint8_t> inRange;   ///< 1 where the code clamp passed
};

/// Options of autoRoundBlock (§6.2, defaults of §12).
struct AutoRoundOptions {
  /// Optimization steps; 0 = plain RTN with the §6.1 grid.
  int iters = 200;
  /// SignSGD learning rate of V; <= 0 means 1/iters.
  float lr = 0.0f;
  /// Learning rate of alpha/beta; <= 0 means the V learning rate.
  float minmaxLr = 0.0f;
  /// Sequences per step, drawn without replacement each step (all of them,
  /// in order, when batchSize >= S).
  int batchSize = 8;
  /// Whether alpha/beta are tuned (else they stay 1).
  bool enableMinmaxTuning = true;
  /// Seed of the std::mt19937_64 that draws the minibatches.
  uint64_t seed = 42;
  /// Compute the RTN and final losses over all S sequences for the report
  /// (two extra block forwards).
  bool reportFullLosses = true;
};

/// What autoRoundBlock did.
struct AutoRoundReport {
  /// Minibatch loss of every step, measured BEFORE that step's update.
  std::vector<double> lossHistory;
  /// Learning rate of V applied at every step (lr * (1 - t/iters)).
  std::vector<float> lrHistory;
  /// The sequence indices of every step's minibatch, [iters * batch].
  std::vector<int64_t> batchIndices;
  /// Sequences per minibatch actually used (min(batchSize, S)).
  int64_t batch = 0;
  /// Smallest entry of lossHistory (+inf when iters == 0).
  double bestLoss = 0.0;
  /// Step at which bestLoss was measured (-1 when iters == 0).
  int bestIter = -1;
  /// MSE over all S sequences with V = 0, alpha = beta = 1 (RTN), when
  /// requested.
  double rtnLoss = 0.0;
  /// MSE over all S sequences with the returned parameters, when requested.
  double finalLoss = 0.0;
  /// The returned (best) parameters of each linear, indexed by BlockLinear.
  std::array<AutoRoundParams, kNumBlockLinears> params;
};

/// Block-wise AutoRound (§6.2). `fp` holds the original fp weights; `xIn`
/// [S, T, D] are the tuning inputs (outputs of the already-quantized
/// previous block when enable_quanted_input, else the fp inputs) and
/// `yTarget` [S, T, D] the fp block applied to the fp inputs. Each step
/// draws a minibatch, records loss = mean((block_q(x) - y)^2) with the
/// current parameters, keeps a copy of the parameters if the loss is a new
/// best, then takes a SignSGD step with lr_t = lr * (1 - t/iters). The best
/// parameters are restored and every linear is quantized with them into
/// `out` (indexed by BlockLinear). Norms and biases are never quantized.
Status autoRoundBlock(const ModelConfig &config, const BlockWeights &fp,
                      const float *xIn, const float *yTarget, int64_t S,
                      int64_t T, const QuantConfig &qcfg,
                      const AutoRoundOptions &opts,
                      std::array<QuantizedWeight, kNumBlockLinears> &out,
                      AutoRoundReport &report);

} // namespace quant
} // namespace qc

#endif // QC_QUANTIZATION_ALGORITHMS_AUTOROUND_H
