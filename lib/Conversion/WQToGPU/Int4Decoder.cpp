//===- Int4Decoder.cpp - 4-bit integer codes (sym / asym) to fp16 ---------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// The decoder of 4-bit integer layers, symmetric (z = 8) or with an fp16
// zero-point tensor, in the mma16x64 layout: a lane owns four 32-bit words
// per 16x64 tile, word j holding the 8 codes of its A fragment for k16
// step j (nibbles i and i + 4 are the pair of register a_i).
//
// Dequantization (the "magic number" trick): OR-ing a 4-bit code q into the
// low mantissa bits of fp16 1024.0 (0x6400) gives exactly 1024 + q, so one
// shift/AND/OR (a single LOP3 after ptxas) turns a 32-bit word into two
// fp16 values at once. Then (h - (1024 + z)) is exact (a small integer) and
// the multiply by the fp16 scale is the only rounding: the weight equals
// fp16(s * (q - z)), bit for bit what the CPU reference computes. (A single
// FMA h * s - (1024 + z) * s would round the folded constant and lose that.)
//
// Not claimed (other decoders' formats, refused with the reason when none
// is registered): other code widths, NF4 codebooks, act-order (g_idx).
//
//===----------------------------------------------------------------------===//

#include "KernelFamily.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

using namespace mlir;
using namespace mlir::qc;
using namespace mlir::qc::gpugen;

namespace {

class Int4Decoder final : public WeightDecoder {
public:
  StringRef name() const override { return "int4"; }
  StringRef summary() const override {
    return "4-bit integer codes, symmetric (z = 8) or with fp16 zero points";
  }
  ArrayRef<int64_t> supportedBits() const override {
    static const int64_t bits[] = {4};
    return bits;
  }
  bool claims(const GPULayerConfig &layer) const override {
    return layer.bits == 4 && !layer.codebook && !layer.actOrder;
  }
  int64_t laneWordsPerChunk() const override { return 4; }
  std::pair<int64_t, int64_t> stepWords(int64_t step) const override {
    return {step, step + 1};
  }

  /// Splats of s(r), s(r+8) and of 1024 + z: the constant 1024 + 2^(bits-1)
  /// for symmetric layers, 1024 + z per row otherwise (exact in fp16,
  /// z < 16). Values: zLo, zHi, sLo, sHi.
  GroupParams groupParams(KernelBuilder &kb, const LayerDims &d,
                          function_ref<Value(int64_t)> v) const override {
    ImplicitLocOpBuilder &b = kb.b;
    Type f16 = b.getF16Type();
    Value sLo = kb.splat2(v(0));
    Value sHi = kb.splat2(v(1));
    Value zLo, zHi;
    if (d.sym) {
      double z = 1024.0 + double(int64_t(1) << (d.bits - 1));
      zLo = zHi = arith::ConstantOp::create(
          b, DenseElementsAttr::get(VectorType::get({2}, f16),
                                    b.getFloatAttr(f16, z)));
    } else {
      Value k1024 = arith::ConstantOp::create(b, b.getFloatAttr(f16, 1024.0));
      zLo = kb.splat2(arith::AddFOp::create(b, v(2), k1024));
      zHi = kb.splat2(arith::AddFOp::create(b, v(3), k1024));
    }
    return GroupParams{{zLo, zHi, sLo, sHi}};
  }

  /// a_i = (nibble pair i | 1024.0) - (1024 + z), then * s; rows r (a0,
  /// a2) and r + 8 (a1, a3) with their own zero/scale splats.
  Value decodeStep(KernelBuilder &kb, ArrayRef<Value> words, int64_t step,
                   const GroupParams &gp) const override {
    (void)step; // one word per step: `words` is that word
    ImplicitLocOpBuilder &b = kb.b;
    Value zLo = gp.values[0], zHi = gp.values[1];
    Value sLo = gp.values[2], sHi = gp.values[3];
    auto f16x2 = VectorType::get({2}, b.getF16Type());
    SmallVector<Value, 4> regs;
    for (int i = 0; i < 4; ++i) {
      // Nibbles i and i + 4 hold (e_{2i}, e_{2i+1}): one shift puts them at
      // bits 0..3 and 16..19, the two fp16 mantissas' low bits.
      Value w = words[0];
      if (i)
        w = arith::ShRUIOp::create(b, w, kb.i32(4 * i));
      w = arith::AndIOp::create(b, w, kb.i32(0x000F000F));
      w = arith::OrIOp::create(b, w, kb.i32(0x64006400));
      Value h = LLVM::BitcastOp::create(b, f16x2, w);
      // a0, a2: row r; a1, a3: row r + 8.
      bool hi = i & 1;
      Value d = arith::SubFOp::create(b, h, hi ? zHi : zLo);
      regs.push_back(arith::MulFOp::create(b, d, hi ? sHi : sLo));
    }
    return kb.pack(regs, b.getF16Type());
  }
};

} // namespace

std::unique_ptr<WeightDecoder> gpugen::createInt4Decoder() {
  return std::make_unique<Int4Decoder>();
}
