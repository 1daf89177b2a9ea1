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
//
//===----------------------------------------------------------------------===//

#include "KernelBuilder.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

using namespace mlir;
using namespace mlir::qc;
using namespace mlir::qc::gpugen;

void gpugen::buildDequantKernel(ImplicitLocOpBuilder &b,
                                gpu::GPUModuleOp module, StringRef name,
                                const LayerDims &d, GPUKernelLaunch &launch) {
  constexpr int64_t kThreads = 256;
  Type i64 = b.getI64Type(), i32 = b.getI32Type(), f16 = b.getF16Type();
  auto f16x2 = VectorType::get({2}, f16);
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

  const int64_t words = d.np * d.kp / 8;
  Value tid = gpu::ThreadIdOp::create(b, gpu::Dimension::x);
  Value bx = gpu::BlockIdOp::create(b, gpu::Dimension::x);
  Value wi = kb.add(kb.mul(bx, kb.idx(kThreads)), tid);
  auto inRange = scf::IfOp::create(b, kb.ult(wi, kb.idx(words)), false);
  b.setInsertionPointToStart(inRange.thenBlock());
  // wi = ((nt * KC + kc) * 32 + lane) * 4 + j.
  Value j = kb.rem(wi, 4), lane = kb.rem(kb.div(wi, 4), 32);
  Value tile = kb.div(wi, 128);
  Value kc = kb.rem(tile, d.kc), nt = kb.div(tile, d.kc);
  Value r = kb.div(lane, 4), c2 = kb.mul(kb.rem(lane, 4), kb.idx(2));
  Value row = kb.add(kb.mul(nt, kb.idx(16)), r);
  Value k0 = kb.add(kb.mul(kc, kb.idx(64)), kb.mul(j, kb.idx(16)));
  Value g = d.groups == 1 ? kb.idx(0)
                          : kb.minIdx(kb.div(k0, d.g), kb.idx(d.groups - 1));
  Value base = kb.add(kb.mul(g, kb.idx(d.np)), row);
  Value baseHi = kb.add(base, kb.idx(8));
  Value sLo = kb.splat2(kb.load(f16, scales, f16, base, 2, true));
  Value sHi = kb.splat2(kb.load(f16, scales, f16, baseHi, 2, true));
  Value zLo, zHi;
  if (d.sym) {
    double z = 1024.0 + double(int64_t(1) << (d.bits - 1));
    zLo = zHi = arith::ConstantOp::create(
        b, DenseElementsAttr::get(f16x2, b.getFloatAttr(f16, z)));
  } else {
    Value k1024 = arith::ConstantOp::create(b, b.getFloatAttr(f16, 1024.0));
    zLo = kb.splat2(arith::AddFOp::create(
        b, kb.load(f16, zeros, f16, base, 2, true), k1024));
    zHi = kb.splat2(arith::AddFOp::create(
        b, kb.load(f16, zeros, f16, baseHi, 2, true), k1024));
  }
  Value word = kb.load(i32, qw, i32, wi, 4, true);
  Value frag = kb.dequantFragment(word, zLo, zHi, sLo, sHi);
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
