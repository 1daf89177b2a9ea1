//===- Dequant.cpp - The dequantize-only kernel (cuBLAS baseline) ---------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Family `dequant`: writes W as fp16 [N, K] row-major from the mma16x64
// tensors, for the "dequantize, then cuBLAS FP16 GEMM" baseline that
// quant-bench compares the fused kernels against (the fused kernels never
// materialize W). One thread per 32-bit word: the coalesced word load, the
// same register dequantization as the fused kernels (so the baseline's W is
// bit-identical to what they multiply with), then four 32-bit stores of
// fp16 pairs at their (row, column) in W; padded rows/columns are skipped.
// With decoders of more (or fewer) words per lane and chunk, a thread takes
// the words of one k16 step (WeightDecoder::stepWords) instead.
//
//===----------------------------------------------------------------------===//

#include "KernelFamily.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

using namespace mlir;
using namespace mlir::qc;
using namespace mlir::qc::gpugen;

namespace {

class DequantFamily final : public KernelFamily {
public:
  StringRef name() const override { return "dequant"; }
  StringRef summary() const override {
    return "writes W as fp16 [N, K] (one thread per packed word) for the "
           "dequantize-then-cuBLAS baseline of quant-bench";
  }
  ::qc::KernelAbi abi() const override { return ::qc::KernelAbi::DequantW; }

  GPUTileConfig defaultTile() const override {
    GPUTileConfig t;
    t.family = "dequant";
    t.minM = 1;
    t.maxM = kOpenEndedM;
    return t;
  }

  void addDefaultTiles(const GPULayerConfig &, int64_t,
                       SmallVectorImpl<GPUTileConfig> &out) const override {
    out.push_back(defaultTile());
  }

  /// One thread per word, no tiling: every tile serves.
  LogicalResult
  verifyTile(const LayerDims &, const GPUTileConfig &,
             const WeightDecoder &decoder,
             function_ref<InFlightDiagnostic()> emitError) const override {
    for (int64_t step = 0; step < 4; ++step)
      if (decoder.stepWords(step) != std::make_pair(step, step + 1))
        return emitError() << "dequant: decodes one word per thread, the "
                              "word of one k16 step; the "
                           << decoder.name()
                           << " decoder does not pack one step per word";
    return success();
  }

  /// Writes W, never the workspace.
  bool usesSplitKWorkspace(const GPUTileConfig &) const override {
    return false;
  }

  void build(ImplicitLocOpBuilder &b, gpu::GPUModuleOp module, StringRef name,
             const LayerDims &d, const WeightDecoder &dec,
             const GPUTileConfig &tile, GPUKernelLaunch &launch) const override;
};

} // namespace

std::unique_ptr<KernelFamily> gpugen::createDequant() {
  return std::make_unique<DequantFamily>();
}

void DequantFamily::build(ImplicitLocOpBuilder &b, gpu::GPUModuleOp module,
                          StringRef name, const LayerDims &d,
                          const WeightDecoder &dec, const GPUTileConfig &,
                          GPUKernelLaunch &launch) const {
  constexpr int64_t kThreads = 256;
  Type i64 = b.getI64Type(), i32 = b.getI32Type(), f16 = b.getF16Type();
  SmallVector<Type> args = {i64, i64};
  SmallVector<std::string> params = {"qweight", "scales"};
  if (!d.sym) {
    args.push_back(i64);
    params.push_back("zeros");
  }
  args.push_back(i64);
  params.push_back("w");
  gpu::GPUFuncOp func = createKernel(b, module, name, args, kThreads);
  KernelBuilder kb(b);
  unsigned a = 0;
  Value qw = kb.globalPtr(func.getArgument(a++));
  Value scales = kb.globalPtr(func.getArgument(a++));
  Value zeros = d.sym ? Value() : kb.globalPtr(func.getArgument(a++));
  Value w = kb.globalPtr(func.getArgument(a++));

  // One thread per word = per (lane, k16 step) of every 16x64 tile.
  const int64_t laneWords = dec.laneWordsPerChunk();
  const int64_t words = d.nt * d.kc * 32 * laneWords;
  Value tid = gpu::ThreadIdOp::create(b, gpu::Dimension::x);
  Value bx = gpu::BlockIdOp::create(b, gpu::Dimension::x);
  Value wi = kb.add(kb.mul(bx, kb.idx(kThreads)), tid);
  auto inRange = scf::IfOp::create(b, kb.ult(wi, kb.idx(words)), false);
  b.setInsertionPointToStart(inRange.thenBlock());
  // wi = ((nt * KC + kc) * 32 + lane) * 4 + j.
  Value j = kb.rem(wi, laneWords), lane = kb.rem(kb.div(wi, laneWords), 32);
  Value tile = kb.div(wi, 32 * laneWords);
  Value kc = kb.rem(tile, d.kc), nt = kb.div(tile, d.kc);
  Value r = kb.div(lane, 4), c2 = kb.mul(kb.rem(lane, 4), kb.idx(2));
  Value row = kb.add(kb.mul(nt, kb.idx(16)), r);
  Value k0 = kb.add(kb.mul(kc, kb.idx(64)), kb.mul(j, kb.idx(16)));
  Value g = d.groups == 1 ? kb.idx(0)
                          : kb.minIdx(kb.div(k0, d.g), kb.idx(d.groups - 1));
  Value base = kb.add(kb.mul(g, kb.idx(d.np)), row);
  Value baseHi = kb.add(base, kb.idx(8));
  // The group's scales (and zeros) are loaded where the decoder uses them.
  GroupParams gp = dec.groupParams(kb, d, [&](int64_t i) {
    return kb.load(f16, i < 2 ? scales : zeros, f16, i % 2 ? baseHi : base, 2,
                   true);
  });
  Value word = kb.load(i32, qw, i32, wi, 4, true);
  // The step is only known at run time here (verifyTile admits decoders
  // with one word per step, which do not need it).
  Value frag = dec.decodeStep(kb, word, /*step=*/-1, gp);
  // a0: (r, c), a1: (r + 8, c), a2: (r, c + 8), a3: (r + 8, c + 8).
  for (int64_t i = 0; i < 4; ++i) {
    Value n = (i & 1) ? kb.add(row, kb.idx(8)) : row;
    Value k = kb.add(k0, (i & 2) ? kb.add(c2, kb.idx(8)) : c2);
    Value ok = kb.andI1(kb.ult(n, kb.idx(d.n)), kb.ult(k, kb.idx(d.k)));
    auto ifOp = scf::IfOp::create(b, ok, false);
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(ifOp.thenBlock());
    Value pair = vector::ExtractOp::create(b, frag, ArrayRef<int64_t>{i});
    kb.store(pair, w, f16, kb.add(kb.mul(n, kb.idx(d.k)), k), 4);
  }

  launch.kernel = name.str();
  launch.block[0] = kThreads;
  launch.gridX = (words + kThreads - 1) / kThreads;
  launch.tileM = static_cast<uint32_t>(kOpenEndedM); // grid.y = 1 for any M
  launch.gridZ = 1;
  launch.params = params;
}
