//===- MMA.cpp - The tensor-core fused dequantize-GEMM kernel -------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Family `mma`, for M up to ~128. Y^T = W X^T on mma.sync.m16n8k16 with W
// (dequantized in registers from the mma16x64 layout) as the A operand:
//
//   grid  = (ceil(NT / (warps * tilesN)), ceil(M / tileM), splitK)
//   block = 32 * warps; warp w owns n16 tiles [tile0 + w*tilesN, +tilesN)
//   and all tileM activation rows of the CTA: tilesN x tileM/8 MMAs per k16.
//
// Every k64 chunk goes through a `stages`-deep cp.async pipeline in shared
// memory (nvgpu.device_async_copy, 16 bytes per copy, L1 bypassed):
//   - the CTA's x tile [tileM, 64] fp16, rows m >= M and columns k >= K
//     zero-filled by the copy itself (src-size 0), 16-byte chunks XOR-
//     swizzled (chunk c of row m at c ^ (m & 7)) so the 8 row addresses of
//     each ldmatrix hit 8 different bank groups;
//   - each lane's own 128-bit weight slice per tile (no other thread reads
//     it, so weights need no barrier of their own).
// Activations come out of shared memory with ldmatrix.x4 (one instruction =
// the B fragments of two k16 steps of one n8 tile).
//
// Pipeline (one barrier per chunk): prologue commits stages-1 groups;
// iteration i waits until group i has landed (cp.async.wait_group
// stages-2), barriers (so the stage computed in iteration i-1 is free),
// issues chunk i+stages-1 into that stage, commits, then computes chunk i.
// Past-the-end issues are zero-fill copies that read nothing, which keeps
// the group count uniform.
//
// The codes are decoded by the layer's WeightDecoder; the 16-byte copy per
// lane and tile fits decoders with four words per lane per chunk (int4).
//
//===----------------------------------------------------------------------===//

#include "KernelFamily.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

using namespace mlir;
using namespace mlir::qc;
using namespace mlir::qc::gpugen;

namespace {

/// Static shared memory of an mma kernel in bytes: per stage the x tile
/// (tile-m x 64 fp16) and every lane's 16-byte weight slice of each tile.
int64_t mmaSharedBytes(const GPUTileConfig &t) {
  return t.stages * (t.tileM * 64 * 2 + t.warps * t.tilesN * 32 * 16);
}

class MMAFamily final : public KernelFamily {
public:
  StringRef name() const override { return "mma"; }
  StringRef summary() const override {
    return "tensor-core GEMM for M up to ~128: multi-stage cp.async "
           "pipeline of the x tile and the weight slices, ldmatrix.x4 for "
           "the activations, optional split-K";
  }
  ::qc::KernelAbi abi() const override { return ::qc::KernelAbi::Gemm; }

  GPUTileConfig defaultTile() const override {
    GPUTileConfig t;
    t.family = "mma";
    t.tileM = 64;
    t.stages = 3;
    t.minM = 9;
    t.maxM = kOpenEndedM;
    return t;
  }

  void addDefaultTiles(const GPULayerConfig &layer, int64_t numSMs,
                       SmallVectorImpl<GPUTileConfig> &out) const override {
    int64_t nt = (layer.n + 15) / 16, kc = (layer.k + 63) / 64;
    struct {
      int64_t tileM, minM, maxM;
    } mmas[] = {{16, 9, 16}, {32, 17, 32}, {64, 33, kOpenEndedM}};
    for (auto m : mmas) {
      GPUTileConfig t;
      t.family = "mma";
      t.warps = 4;
      t.tilesN = 1;
      t.tileM = m.tileM;
      t.stages = m.tileM <= 32 ? 4 : 3;
      int64_t ctas = (nt + 3) / 4;
      t.splitK = std::clamp<int64_t>((2 * numSMs + ctas - 1) / ctas, 1,
                                     std::max<int64_t>(1, kc / 16));
      t.minM = m.minM;
      t.maxM = m.maxM;
      out.push_back(t);
    }
  }

  LogicalResult
  verifyTile(const LayerDims &d, const GPUTileConfig &tile,
             const WeightDecoder &decoder,
             function_ref<InFlightDiagnostic()> emitError) const override {
    if (failed(verifyCommonTiling(*this, d, tile, emitError)))
      return failure();
    if (tile.tileM < 8 || tile.tileM > 128 || tile.tileM % 8)
      return emitError() << "mma: tile-m must be a multiple of 8 in [8, "
                            "128], got "
                         << tile.tileM;
    if (tile.tilesN < 1 || tile.tilesN > 4)
      return emitError() << "mma: tiles-n must be in [1, 4], got "
                         << tile.tilesN;
    if (tile.stages < 2 || tile.stages > 8)
      return emitError() << "mma: stages must be in [2, 8], got "
                         << tile.stages;
    int64_t threads = 32 * tile.warps;
    if ((tile.tileM * 8) % threads)
      return emitError() << "mma: the x tile (tile-m * 8 = " << tile.tileM * 8
                         << " 16-byte copies) must be a multiple of the "
                         << threads << " threads (32 * warps)";
    int64_t smem = sharedMemory(tile, decoder).staticBytes;
    if (smem > kMaxStaticSharedBytes)
      return emitError() << "mma: " << smem
                         << " bytes of shared memory exceed the 48 KiB "
                            "static limit (stages * (tile-m * 128 + warps * "
                            "tiles-n * 512))";
    if (decoder.laneWordsPerChunk() != 4)
      return emitError() << "mma: copies 4 words of codes per lane and k64 "
                            "chunk (one 16-byte cp.async); the "
                         << decoder.name() << " decoder needs "
                         << decoder.laneWordsPerChunk();
    return success();
  }

  SharedMemoryNeeds sharedMemory(const GPUTileConfig &tile,
                                 const WeightDecoder &) const override {
    return {mmaSharedBytes(tile), 0};
  }

  std::string kernelName(int64_t index,
                         const GPUTileConfig &tile) const override {
    return "mma_" + std::to_string(index) + "_m" + std::to_string(tile.tileM);
  }

  void build(ImplicitLocOpBuilder &b, gpu::GPUModuleOp module, StringRef name,
             const LayerDims &d, const WeightDecoder &dec,
             const GPUTileConfig &tile, GPUKernelLaunch &launch) const override;
};

} // namespace

std::unique_ptr<KernelFamily> gpugen::createMMA() {
  return std::make_unique<MMAFamily>();
}

void MMAFamily::build(ImplicitLocOpBuilder &b, gpu::GPUModuleOp module,
                      StringRef name, const LayerDims &d,
                      const WeightDecoder &dec, const GPUTileConfig &tile,
                      GPUKernelLaunch &launch) const {
  const int64_t warps = tile.warps, tilesN = tile.tilesN;
  const int64_t tileM = tile.tileM, stages = tile.stages;
  const int64_t splitK = tile.splitK, mTiles = tileM / 8;
  const int64_t threads = warps * 32, wTiles = warps * tilesN;
  const bool toWorkspace = splitK > 1;
  Type i64 = b.getI64Type(), i32 = b.getI32Type();
  Type f16 = b.getF16Type(), f32 = b.getF32Type();
  auto i32x4 = VectorType::get({4}, i32);
  auto accTy = VectorType::get({2, 2}, f32);

  SmallVector<Type> args;
  SmallVector<std::string> params;
  fusedKernelSignature(b, d.sym, toWorkspace, args, params);

  gpu::GPUFuncOp func = createKernel(b, module, name, args, threads);
  KernelBuilder kb(b);
  const int64_t xStageBytes = tileM * 64 * 2;
  Value smem =
      kb.sharedBuffer(module, (name + "_smem").str(), mmaSharedBytes(tile));
  Value xs = kb.sharedMemref(smem, f16, {stages, tileM, 64});
  Value wsPtr = LLVM::GEPOp::create(
      b, smem.getType(), b.getI8Type(), smem,
      ArrayRef<LLVM::GEPArg>{(int32_t)(stages * xStageBytes)});
  Value wsm = kb.sharedMemref(wsPtr, i32, {stages, wTiles, 32, 4});

  unsigned a = 0;
  Value xAddr = func.getArgument(a++);
  Value qwAddr = func.getArgument(a++);
  Value scales = kb.globalPtr(func.getArgument(a++));
  Value zeros = d.sym ? Value() : kb.globalPtr(func.getArgument(a++));
  Value out = kb.globalPtr(func.getArgument(a++));
  Value mRows =
      arith::IndexCastOp::create(b, b.getIndexType(), func.getArgument(a++));
  Value xg = kb.globalMemref(xAddr, f16);
  Value qwg = kb.globalMemref(qwAddr, i32);

  Value tid = gpu::ThreadIdOp::create(b, gpu::Dimension::x);
  Value lane = kb.rem(tid, 32), warp = kb.div(tid, 32);
  Value tile0 =
      kb.mul(gpu::BlockIdOp::create(b, gpu::Dimension::x), kb.idx(wTiles));
  Value mBase =
      kb.mul(gpu::BlockIdOp::create(b, gpu::Dimension::y), kb.idx(tileM));
  Value z = gpu::BlockIdOp::create(b, gpu::Dimension::z);
  Value kcBegin = kb.div(kb.mul(z, kb.idx(d.kc)), splitK);
  Value kcEnd = kb.div(kb.mul(kb.add(z, kb.idx(1)), kb.idx(d.kc)), splitK);
  Value nIter = arith::SubIOp::create(b, kcEnd, kcBegin);
  Value r = kb.div(lane, 4);
  Value c2 = kb.mul(kb.rem(lane, 4), kb.idx(2));

  // The n16 tiles of this warp (possibly past NT at the right edge: their
  // copies are zero-filled and their outputs masked).
  SmallVector<Value> tiles;
  for (int64_t t = 0; t < tilesN; ++t)
    tiles.push_back(
        kb.add(tile0, kb.add(kb.mul(warp, kb.idx(tilesN)), kb.idx(t))));

  // Issue the copies of chunk `i` (relative to kcBegin) into `stage`.
  auto issue = [&](Value i, Value stage) -> Value {
    Value valid = kb.ult(i, nIter);
    Value kc = kb.minIdx(kb.add(kcBegin, i), kb.idx(d.kc - 1));
    SmallVector<Value> tokens;
    // x: tileM rows x 8 chunks of 16 bytes, spread over all threads.
    for (int64_t q0 = 0; q0 < tileM * 8; q0 += threads) {
      Value q = kb.add(tid, kb.idx(q0));
      Value row = kb.div(q, 8), c = kb.rem(q, 8);
      Value m = kb.add(mBase, row);
      Value k = kb.add(kb.mul(kc, kb.idx(64)), kb.mul(c, kb.idx(8)));
      Value ok =
          kb.andI1(valid, kb.andI1(kb.ult(m, mRows), kb.ult(k, kb.idx(d.k))));
      Value src = arith::SelectOp::create(
          b, ok, kb.add(kb.mul(m, kb.idx(d.k)), k), kb.idx(0));
      Value n = arith::SelectOp::create(b, ok, kb.idx(8), kb.idx(0));
      Value col =
          kb.mul(arith::XOrIOp::create(b, c, kb.rem(row, 8)), kb.idx(8));
      tokens.push_back(nvgpu::DeviceAsyncCopyOp::create(
          b, nvgpu::DeviceAsyncTokenType::get(b.getContext()), xs,
          ValueRange{stage, row, col}, xg, ValueRange{src}, b.getIndexAttr(8),
          n, b.getUnitAttr()));
    }
    // Weights: each lane copies its own 16 bytes of every tile it owns.
    for (int64_t t = 0; t < tilesN; ++t) {
      Value ok = kb.andI1(valid, kb.ult(tiles[t], kb.idx(d.nt)));
      Value ntC = kb.minIdx(tiles[t], kb.idx(d.nt - 1));
      Value slot = kb.add(
          kb.mul(kb.add(kb.mul(ntC, kb.idx(d.kc)), kc), kb.idx(32)), lane);
      Value src = kb.mul(slot, kb.idx(4));
      Value n = arith::SelectOp::create(b, ok, kb.idx(4), kb.idx(0));
      Value wt = kb.add(kb.mul(warp, kb.idx(tilesN)), kb.idx(t));
      tokens.push_back(nvgpu::DeviceAsyncCopyOp::create(
          b, nvgpu::DeviceAsyncTokenType::get(b.getContext()), wsm,
          ValueRange{stage, wt, lane, kb.idx(0)}, qwg, ValueRange{src},
          b.getIndexAttr(4), n, b.getUnitAttr()));
    }
    return nvgpu::DeviceAsyncCreateGroupOp::create(
        b, nvgpu::DeviceAsyncTokenType::get(b.getContext()), tokens);
  };

  for (int64_t s = 0; s + 1 < stages; ++s)
    issue(kb.idx(s), kb.idx(s));

  Value zeroAcc = arith::ConstantOp::create(
      b, DenseElementsAttr::get(accTy, b.getFloatAttr(f32, 0.0)));
  // Scales (and zeros) are register-prefetched one chunk ahead: iteration
  // i loads those of chunk i + 1 while it computes chunk i.
  const GroupSets sets(d);
  SmallVector<Value> rows; // W row r of each tile (clamped: masked later)
  for (int64_t t = 0; t < tilesN; ++t)
    rows.push_back(
        kb.add(kb.mul(kb.minIdx(tiles[t], kb.idx(d.nt - 1)), kb.idx(16)), r));
  auto loadScalars = [&](Value kc) {
    SmallVector<Value> out;
    for (int64_t t = 0; t < tilesN; ++t)
      llvm::append_range(
          out, loadChunkGroupScalars(kb, d, sets, kc, rows[t], scales, zeros));
    return out;
  };
  const int64_t numAcc = tilesN * mTiles;
  const int64_t perTile = sets.count * sets.perSet;
  SmallVector<Value> init(numAcc, zeroAcc);
  llvm::append_range(init, loadScalars(kcBegin));
  auto loop = scf::ForOp::create(b, kb.idx(0), nIter, kb.idx(1), init);
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(loop.getBody());
    Value i = loop.getInductionVar();
    auto args = loop.getRegionIterArgs();
    SmallVector<Value> acc(args.begin(), args.begin() + numAcc);
    SmallVector<Value> scalars(args.begin() + numAcc, args.end());
    // Group i has landed for this thread; the barrier makes every thread's
    // copies visible and frees the stage computed in iteration i - 1.
    NVVM::CpAsyncWaitGroupOp::create(b, stages - 2);
    gpu::BarrierOp::create(b);
    Value ahead = kb.add(i, kb.idx(stages - 1));
    issue(ahead, kb.rem(ahead, stages));

    Value stage = kb.rem(i, stages);
    Value kc = kb.add(kcBegin, i);
    SmallVector<Value> nextScalars = loadScalars(kb.add(kc, kb.idx(1)));
    // Weight words of every tile for this chunk (ld.shared.v4).
    SmallVector<Value> words;
    for (int64_t t = 0; t < tilesN; ++t)
      words.push_back(vector::LoadOp::create(
          b, i32x4, wsm,
          ValueRange{stage, kb.add(kb.mul(warp, kb.idx(tilesN)), kb.idx(t)),
                     lane, kb.idx(0)}));
    // Group parameters of rows r / r + 8 of each tile, per set.
    SmallVector<SmallVector<GroupParams>> gp(tilesN);
    for (int64_t t = 0; t < tilesN; ++t)
      for (int64_t set = 0; set < sets.count; ++set)
        gp[t].push_back(dec.groupParams(kb, d, [&](int64_t i) {
          return scalars[t * perTile + set * sets.perSet + i];
        }));

    for (int64_t jp = 0; jp < 2; ++jp) {
      // ldmatrix.x4 per n8 tile: lane l addresses row l % 8 of matrix l / 8,
      // matrix q = columns [32 jp + 8 q, +8): registers (b0, b1) of k16 step
      // 2 jp and (b0, b1) of step 2 jp + 1.
      SmallVector<Value> bx;
      for (int64_t mt = 0; mt < mTiles; ++mt) {
        Value row = kb.add(kb.idx(mt * 8), kb.rem(lane, 8));
        Value chunk = kb.add(kb.idx(jp * 4), kb.div(lane, 8));
        Value col =
            kb.mul(arith::XOrIOp::create(b, chunk, kb.rem(lane, 8)), kb.idx(8));
        bx.push_back(nvgpu::LdMatrixOp::create(
            b, VectorType::get({4, 2}, f16), xs, ValueRange{stage, row, col},
            /*transpose=*/false, /*numTiles=*/4));
      }
      for (int64_t jj = 0; jj < 2; ++jj) {
        int64_t j = 2 * jp + jj;
        for (int64_t t = 0; t < tilesN; ++t) {
          const GroupParams &g = gp[t][sets.setOf(j)];
          auto [w0, w1] = dec.stepWords(j);
          SmallVector<Value, 2> stepWords;
          for (int64_t w = w0; w < w1; ++w)
            stepWords.push_back(
                vector::ExtractOp::create(b, words[t], ArrayRef<int64_t>{w}));
          Value aFrag = dec.decodeStep(kb, stepWords, j, g);
          for (int64_t mt = 0; mt < mTiles; ++mt) {
            Value b0 =
                vector::ExtractOp::create(b, bx[mt], ArrayRef<int64_t>{2 * jj});
            Value b1 = vector::ExtractOp::create(b, bx[mt],
                                                 ArrayRef<int64_t>{2 * jj + 1});
            Value bFrag = kb.pack({b0, b1}, f16);
            Value &c = acc[t * mTiles + mt];
            c = nvgpu::MmaSyncOp::create(b, aFrag, bFrag, c,
                                         ArrayRef<int64_t>{16, 8, 16});
          }
        }
      }
    }
    SmallVector<Value> yields(acc);
    llvm::append_range(yields, nextScalars);
    scf::YieldOp::create(b, yields);
  }
  // Drain the trailing (zero-fill) groups before the CTA exits.
  NVVM::CpAsyncWaitGroupOp::create(b, 0);

  // Epilogue: lane holds C[n][m] at n = 16 tile + r (+8), m = mBase + 8 mt
  // + c2 (+1).
  for (int64_t t = 0; t < tilesN; ++t) {
    Value row = kb.add(kb.mul(tiles[t], kb.idx(16)), r);
    for (int64_t mt = 0; mt < mTiles; ++mt) {
      Value c = loop.getResult(t * mTiles + mt);
      Value m0 = kb.add(mBase, kb.add(kb.idx(mt * 8), c2));
      for (int64_t i = 0; i < 4; ++i) {
        Value v =
            vector::ExtractOp::create(b, c, ArrayRef<int64_t>{i / 2, i % 2});
        Value n = i < 2 ? row : kb.add(row, kb.idx(8));
        Value m = (i % 2) ? kb.add(m0, kb.idx(1)) : m0;
        Value ok = kb.andI1(kb.ult(n, kb.idx(d.n)), kb.ult(m, mRows));
        auto ifOp = scf::IfOp::create(b, ok, false);
        OpBuilder::InsertionGuard guard(b);
        b.setInsertionPointToStart(ifOp.thenBlock());
        Value at = kb.add(kb.mul(m, kb.idx(d.n)), n);
        if (toWorkspace) {
          Value p = LLVM::GEPOp::create(
              b, out.getType(), f32, out,
              ValueRange{arith::IndexCastOp::create(b, i64, at)});
          LLVM::AtomicRMWOp::create(b, LLVM::AtomicBinOp::fadd, p, v,
                                    LLVM::AtomicOrdering::monotonic);
        } else {
          kb.store(arith::TruncFOp::create(b, f16, v), out, f16, at, 2);
        }
      }
    }
  }

  launch.kernel = name.str();
  launch.block[0] = threads;
  launch.gridX = (d.nt + wTiles - 1) / wTiles;
  launch.tileM = tileM;
  launch.gridZ = splitK;
  launch.sharedBytes = 0; // static shared memory only
  launch.params = params;
}
