//===- SplitK.cpp - The split-K / GEMV fused dequantize-GEMM kernel -------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Family `splitk`, for M <= 8. Computes Y^T = W X^T with one
// mma.sync.m16n8k16 per 16x16 W tile: W (dequantized in registers) is the A
// operand and the activations are the B operand (one n8 column tile = up
// to 8 rows of x, the rest zero). Decode is memory bound, so everything is
// arranged around the weight stream:
//
//   grid  = (Np/16 n16 tiles, ceil(M/8), splitK)     block = 32 * warps
//   CTA (nt, my, z) owns W rows [16 nt, 16 nt + 16) and the k64 chunks
//   [z KC / S, (z+1) KC / S); warp w takes every `warps`-th chunk of it.
//
// Per chunk a lane issues one 128-bit load (ld.global.nc.v4) that holds its
// A fragments for four MMAs, plus the fp16 scales (and zeros) of its two
// rows; `stages` such chunks are kept in flight in registers (a rotating
// prefetch carried through the loop), so neither weights nor scales are
// waited for at their use. Activations are
// read as 32-bit pairs straight from global memory (x is small and stays in
// L1/L2), zero for rows m >= M and columns k >= K. The warps' fp32 partials
// are summed through shared memory; with splitK > 1 the CTA partials are
// added into an fp32 workspace with atomics (red.global.add.f32) and the
// `finalize` kernel writes y.
//
// The codes are decoded by the layer's WeightDecoder; the 128-bit load per
// chunk fits decoders with four words per lane per chunk (int4).
//
//===----------------------------------------------------------------------===//

#include "KernelFamily.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

using namespace mlir;
using namespace mlir::qc;
using namespace mlir::qc::gpugen;

namespace {

class SplitKFamily final : public KernelFamily {
public:
  StringRef name() const override { return "splitk"; }
  StringRef summary() const override {
    return "GEMV / split-K for M <= 8: W as the A operand of "
           "mma.sync.m16n8k16, 128-bit weight loads with a register "
           "prefetch, fp32 partials through shared memory and (split-k > 1) "
           "an fp32 workspace";
  }
  ::qc::KernelAbi abi() const override { return ::qc::KernelAbi::Gemm; }

  GPUTileConfig defaultTile() const override {
    GPUTileConfig t;
    t.family = "splitk";
    t.stages = 2;
    t.minM = 1;
    t.maxM = 8;
    return t;
  }

  void addDefaultTiles(const GPULayerConfig &layer, int64_t numSMs,
                       SmallVectorImpl<GPUTileConfig> &out) const override {
    int64_t nt = (layer.n + 15) / 16, kc = (layer.k + 63) / 64;
    // Aim for ~4 CTAs per SM while each warp keeps >= 4 chunks.
    GPUTileConfig s;
    s.family = "splitk";
    s.warps = 4;
    s.stages = 2;
    s.splitK = std::clamp<int64_t>((4 * numSMs + nt - 1) / nt, 1,
                                   std::max<int64_t>(1, kc / 16));
    s.minM = 1;
    s.maxM = 8;
    out.push_back(s);
  }

  LogicalResult
  verifyTile(const LayerDims &d, const GPUTileConfig &tile,
             const WeightDecoder &decoder,
             function_ref<InFlightDiagnostic()> emitError) const override {
    if (failed(verifyCommonTiling(*this, d, tile, emitError)))
      return failure();
    if (tile.tileM != 8)
      return emitError() << "splitk: tile-m is fixed to 8 (one n8 MMA "
                            "column tile), got "
                         << tile.tileM;
    if (tile.maxM > 8)
      return emitError() << "splitk serves M <= 8, got an M range up to "
                         << tile.maxM << "; use the mma family above 8";
    if (tile.stages < 1 || tile.stages > 8)
      return emitError() << "splitk: stages (register prefetch depth) must "
                            "be in [1, 8], got "
                         << tile.stages;
    if (decoder.laneWordsPerChunk() != 4)
      return emitError() << "splitk: reads 4 words of codes per lane and "
                            "k64 chunk (one 128-bit load); the "
                         << decoder.name() << " decoder needs "
                         << decoder.laneWordsPerChunk();
    return success();
  }

  SharedMemoryNeeds sharedMemory(const GPUTileConfig &tile,
                                 const WeightDecoder &) const override {
    return {tile.warps > 1 ? tile.warps * 32 * 4 * 4 : 0, 0};
  }

  void build(ImplicitLocOpBuilder &b, gpu::GPUModuleOp module, StringRef name,
             const LayerDims &d, const WeightDecoder &dec,
             const GPUTileConfig &tile, GPUKernelLaunch &launch) const override;
};

} // namespace

std::unique_ptr<KernelFamily> gpugen::createSplitK() {
  return std::make_unique<SplitKFamily>();
}

void SplitKFamily::build(ImplicitLocOpBuilder &b, gpu::GPUModuleOp module,
                         StringRef name, const LayerDims &d,
                         const WeightDecoder &dec, const GPUTileConfig &tile,
                         GPUKernelLaunch &launch) const {
  const int64_t warps = tile.warps, splitK = tile.splitK;
  const int64_t prefetch = tile.stages;
  const bool toWorkspace = splitK > 1;
  Type i64 = b.getI64Type(), f16 = b.getF16Type(), f32 = b.getF32Type();
  auto f16x2 = VectorType::get({2}, f16);
  auto accTy = VectorType::get({2, 2}, f32);

  SmallVector<Type> args;
  SmallVector<std::string> params;
  fusedKernelSignature(b, d.sym, toWorkspace, args, params);

  int64_t redBytes = sharedMemory(tile, dec).staticBytes;
  gpu::GPUFuncOp func = createKernel(b, module, name, args, warps * 32);
  KernelBuilder kb(b);
  Value redBuf;
  if (redBytes)
    redBuf = kb.sharedBuffer(module, (name + "_red").str(), redBytes);

  unsigned a = 0;
  Value x = kb.globalPtr(func.getArgument(a++));
  Value qw = kb.globalPtr(func.getArgument(a++));
  Value scales = kb.globalPtr(func.getArgument(a++));
  Value zeros = d.sym ? Value() : kb.globalPtr(func.getArgument(a++));
  Value out = kb.globalPtr(func.getArgument(a++));
  Value mRows =
      arith::IndexCastOp::create(b, b.getIndexType(), func.getArgument(a++));

  Value tid = gpu::ThreadIdOp::create(b, gpu::Dimension::x);
  Value lane = kb.rem(tid, 32), warp = kb.div(tid, 32);
  Value nt = gpu::BlockIdOp::create(b, gpu::Dimension::x);
  Value mBase = kb.mul(gpu::BlockIdOp::create(b, gpu::Dimension::y), kb.idx(8));
  Value z = gpu::BlockIdOp::create(b, gpu::Dimension::z);
  // This CTA's chunk range (balanced: sizes differ by at most one).
  Value kcBegin = kb.div(kb.mul(z, kb.idx(d.kc)), splitK);
  Value kcEnd = kb.div(kb.mul(kb.add(z, kb.idx(1)), kb.idx(d.kc)), splitK);

  Value r = kb.div(lane, 4);
  Value c2 = kb.mul(kb.rem(lane, 4), kb.idx(2));
  Value row = kb.add(kb.mul(nt, kb.idx(16)), r); // W row of a0/a2
  // B operand: lane holds x[mBase + r][k0 + c2 (+1)] and [.. + 8].
  Value mX = kb.add(mBase, r);
  Value mXValid = kb.ult(mX, mRows);
  Value xRow =
      kb.mul(arith::SelectOp::create(b, mXValid, mX, kb.idx(0)), kb.idx(d.k));

  const GroupSets sets(d);

  // What one prefetch slot holds for chunk kc: the lane's 128-bit weight
  // slice and the fp16 group parameters of its rows. kc is clamped so the
  // prefetches past the end stay inside the tensors (their data is unused).
  auto loadChunk = [&](Value kc) -> SmallVector<Value> {
    Value c = kb.minIdx(kc, kb.idx(d.kc - 1));
    Value word =
        kb.add(kb.mul(kb.add(kb.mul(nt, kb.idx(d.kc)), c), kb.idx(32)), lane);
    SmallVector<Value> slot = {kb.loadWeights128(qw, word)};
    llvm::append_range(
        slot, loadChunkGroupScalars(kb, d, sets, kc, row, scales, zeros));
    return slot;
  };
  const int64_t slotSize = 1 + sets.count * sets.perSet;

  Value first = kb.add(kcBegin, warp);
  SmallVector<Value> init = {arith::ConstantOp::create(
      b, DenseElementsAttr::get(accTy, b.getFloatAttr(f32, 0.0)))};
  for (int64_t p = 0; p < prefetch; ++p)
    llvm::append_range(init, loadChunk(kb.add(first, kb.idx(p * warps))));

  auto loop = scf::ForOp::create(b, first, kcEnd, kb.idx(warps), init);
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(loop.getBody());
    Value kc = loop.getInductionVar();
    auto args = loop.getRegionIterArgs();
    Value acc = args[0];
    ArrayRef<BlockArgument> cur = args.slice(1, slotSize);
    // Issue the loads `prefetch` iterations ahead before any use of this
    // chunk, so every warp keeps `prefetch` chunks in flight.
    SmallVector<Value> next = loadChunk(kb.add(kc, kb.idx(prefetch * warps)));

    Value words = cur[0];
    Value kChunk = kb.mul(kc, kb.idx(64));
    SmallVector<Value> scalars(cur.begin() + 1, cur.end());
    SmallVector<GroupParams> gps;
    for (int64_t set = 0; set < sets.count; ++set)
      gps.push_back(dec.groupParams(
          kb, d, [&](int64_t i) { return scalars[set * sets.perSet + i]; }));
    Value zero2 = arith::ConstantOp::create(
        b, DenseElementsAttr::get(f16x2, b.getFloatAttr(f16, 0.0)));
    for (int64_t j = 0; j < 4; ++j) {
      Value k0 = kb.add(kChunk, kb.idx(16 * j));
      const GroupParams &gp = gps[sets.setOf(j)];
      auto [w0, w1] = dec.stepWords(j);
      SmallVector<Value, 2> stepWords;
      for (int64_t w = w0; w < w1; ++w)
        stepWords.push_back(
            vector::ExtractOp::create(b, words, ArrayRef<int64_t>{w}));
      Value aFrag = dec.decodeStep(kb, stepWords, j, gp);
      // K % 8 == 0, so both elements of a pair are either in or out.
      auto xPair = [&](Value k) -> Value {
        Value ok = kb.andI1(mXValid, kb.ult(k, kb.idx(d.k)));
        Value at = arith::SelectOp::create(b, ok, kb.add(xRow, k), kb.idx(0));
        Value v = kb.load(f16x2, x, f16, at, 4, true);
        return arith::SelectOp::create(b, ok, v, zero2);
      };
      Value kLo = kb.add(k0, c2);
      Value bFrag = kb.pack({xPair(kLo), xPair(kb.add(kLo, kb.idx(8)))}, f16);
      acc = nvgpu::MmaSyncOp::create(b, aFrag, bFrag, acc,
                                     ArrayRef<int64_t>{16, 8, 16});
    }
    // Rotate the prefetch slots: slot p + 1 becomes slot p, the new loads
    // become the last slot.
    SmallVector<Value> yields = {acc};
    for (int64_t p = 1; p < prefetch; ++p)
      llvm::append_range(yields, args.slice(1 + p * slotSize, slotSize));
    llvm::append_range(yields, next);
    scf::YieldOp::create(b, yields);
  }
  Value acc = loop.getResult(0);

  // Flatten the accumulator: e0 (row, m), e1 (row, m+1), e2 (row+8, m),
  // e3 (row+8, m+1), with m = mBase + c2.
  SmallVector<Value, 4> e;
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t jj = 0; jj < 2; ++jj)
      e.push_back(vector::ExtractOp::create(b, acc, ArrayRef<int64_t>{i, jj}));

  auto emitOutput = [&](ArrayRef<Value> vals) {
    Value mOut = kb.add(mBase, c2);
    for (int64_t i = 0; i < 4; ++i) {
      Value n = i < 2 ? row : kb.add(row, kb.idx(8));
      Value m = (i % 2) ? kb.add(mOut, kb.idx(1)) : mOut;
      Value ok = kb.andI1(kb.ult(n, kb.idx(d.n)), kb.ult(m, mRows));
      auto ifOp = scf::IfOp::create(b, ok, false);
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPointToStart(ifOp.thenBlock());
      Value at = kb.add(kb.mul(m, kb.idx(d.n)), n);
      if (toWorkspace) {
        Value p = LLVM::GEPOp::create(
            b, out.getType(), f32, out,
            ValueRange{arith::IndexCastOp::create(b, i64, at)});
        LLVM::AtomicRMWOp::create(b, LLVM::AtomicBinOp::fadd, p, vals[i],
                                  LLVM::AtomicOrdering::monotonic);
      } else {
        kb.store(arith::TruncFOp::create(b, f16, vals[i]), out, f16, at, 2);
      }
    }
  };

  if (!redBytes) {
    emitOutput(e);
  } else {
    // Cross-warp reduction: every warp parks its 4 partials per lane, warp
    // 0 adds them up in a fixed order (deterministic within the CTA).
    auto f32x4 = VectorType::get({4}, f32);
    Value parked = LLVM::PoisonOp::create(b, f32x4);
    for (int64_t i = 0; i < 4; ++i)
      parked = vector::InsertOp::create(b, e[i], parked, ArrayRef<int64_t>{i});
    Value slot = kb.add(kb.mul(warp, kb.idx(32)), lane);
    kb.store(parked, redBuf, f32x4, slot, 16);
    gpu::BarrierOp::create(b);
    Value isWarp0 =
        arith::CmpIOp::create(b, arith::CmpIPredicate::eq, warp, kb.idx(0));
    auto ifOp = scf::IfOp::create(b, isWarp0, false);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(ifOp.thenBlock());
    SmallVector<Value, 4> sum(e.begin(), e.end());
    for (int64_t w = 1; w < warps; ++w) {
      Value v = kb.load(f32x4, redBuf, f32x4, kb.add(kb.idx(w * 32), lane), 16,
                        false);
      for (int64_t i = 0; i < 4; ++i)
        sum[i] = arith::AddFOp::create(
            b, sum[i], vector::ExtractOp::create(b, v, ArrayRef<int64_t>{i}));
    }
    emitOutput(sum);
  }

  launch.kernel = name.str();
  launch.block[0] = warps * 32;
  launch.gridX = d.nt;
  launch.tileM = 8;
  launch.gridZ = splitK;
  launch.sharedBytes = 0; // static shared memory only
  launch.params = params;
}
