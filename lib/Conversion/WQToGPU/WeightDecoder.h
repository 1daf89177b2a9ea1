//===- WeightDecoder.h - Packed codes to fp16 fragments ---------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Private to lib/Conversion/WQToGPU. A WeightDecoder is the one place that
// knows how a layer's weight format is packed into the kernel layout and
// how its codes become fp16 values in registers: every kernel family reads
// the codes a lane owns as opaque 32-bit words and asks the decoder for the
// A fragment (vector<4x2xf16>, registers a0..a3 of mma.sync.m16n8k16) of
// each k16 step. Adding a format (int3/int2/int8, an NF4 codebook, act-order
// g_idx) is a new decoder file plus one line in this directory's
// CMakeLists.txt (docs/ARCHITECTURE.md, "Adding a weight decoder"); the
// families stay as they are unless the format needs a different number of
// words per lane, which each family states in its applicability check.
//
//===----------------------------------------------------------------------===//

#ifndef QC_LIB_CONVERSION_WQTOGPU_WEIGHTDECODER_H
#define QC_LIB_CONVERSION_WQTOGPU_WEIGHTDECODER_H

#include "KernelBuilder.h"

#include <memory>
#include <utility>

namespace mlir::qc::gpugen {

/// Decodes one weight format. Implementations are stateless singletons
/// owned by the registry (getWeightDecoders()).
class WeightDecoder {
public:
  virtual ~WeightDecoder();

  /// Short name used in messages and listings, e.g. "int4".
  virtual StringRef name() const = 0;
  /// One line for listings: the formats it decodes.
  virtual StringRef summary() const = 0;
  /// The code widths this decoder handles (for the message that names the
  /// supported widths when no decoder claims a layer).
  virtual ArrayRef<int64_t> supportedBits() const = 0;

  /// Whether this decoder is the one for `layer`'s weight format (bits,
  /// codebook, act-order). The first registered decoder that claims a
  /// layer decodes it; claiming means "this is my format", not "I can
  /// build it": checkLayer says why not.
  virtual bool claims(const GPULayerConfig &layer) const = 0;
  /// The reason the decoder cannot decode a layer it claims, or "" when it
  /// can (e.g. a scheme variant not implemented yet).
  virtual std::string checkLayer(const GPULayerConfig &layer) const {
    (void)layer;
    return "";
  }

  /// 32-bit words of packed codes one lane owns per 16x64 W tile (one k64
  /// chunk of one n16 tile: four k16 steps of 8 codes each). 4 for int4.
  virtual int64_t laneWordsPerChunk() const = 0;
  /// The words [first, end) of a lane's chunk that k16 step `step` (0..3)
  /// reads. A step may share a word with its neighbour (int3).
  virtual std::pair<int64_t, int64_t> stepWords(int64_t step) const = 0;

  /// The per-group values of rows r (a0, a2) and r + 8 (a1, a3) of a 16-row
  /// tile, made from the raw fp16 scalars of one group: scalar(0..1) are
  /// s(r), s(r+8) and, asymmetric, scalar(2..3) z(r), z(r+8), in the order
  /// loadChunkGroupScalars() loads them. `scalar(i)` returns a prefetched
  /// value or emits the load where the decoder asks for it (the dequant
  /// family), so the decoder's op order is the kernel's.
  virtual GroupParams
  groupParams(KernelBuilder &kb, const LayerDims &d,
              function_ref<Value(int64_t)> scalar) const = 0;
  /// Decodes step `step` from its words (stepWords(step), as i32 values)
  /// into the A fragment vector<4x2xf16> with the group values `gp`.
  /// `step` is -1 where the caller knows it only at run time (the dequant
  /// family, which admits only decoders with one word per step).
  virtual Value decodeStep(KernelBuilder &kb, ArrayRef<Value> words,
                           int64_t step, const GroupParams &gp) const = 0;
};

/// Every registered decoder, in registration order.
ArrayRef<std::unique_ptr<WeightDecoder>> getWeightDecoders();

/// The decoder for `layer`, or null with `why` saying what is missing (no
/// decoder claims the format, or the one that does refuses it).
const WeightDecoder *findWeightDecoder(const GPULayerConfig &layer,
                                       std::string &why);

} // namespace mlir::qc::gpugen

#endif // QC_LIB_CONVERSION_WQTOGPU_WEIGHTDECODER_H
