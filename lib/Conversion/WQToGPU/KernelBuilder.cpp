//===- KernelBuilder.cpp - Shared helpers of the kernel generators --------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Raw device pointers arrive as i64 (the kernel ABI). Plain loads and
// stores go through llvm.getelementptr/load/store on address-space-1
// pointers; the nvgpu ops need memrefs, so a pointer is wrapped into a
// memref descriptor and cast with builtin.unrealized_conversion_cast, which
// reconcile-unrealized-casts folds away once the nvgpu ops are lowered.
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

LayerDims gpugen::getLayerDims(const GPULayerConfig &layer) {
  LayerDims d;
  d.n = layer.n;
  d.k = layer.k;
  d.np = (layer.n + 15) / 16 * 16;
  d.kp = (layer.k + 63) / 64 * 64;
  d.nt = d.np / 16;
  d.kc = d.kp / 64;
  d.g = layer.groupSize == -1 ? layer.k : layer.groupSize;
  d.groups = (layer.k + d.g - 1) / d.g;
  d.bits = layer.bits;
  d.sym = layer.sym;
  return d;
}

//===----------------------------------------------------------------------===//
// Scalar helpers
//===----------------------------------------------------------------------===//

Value KernelBuilder::idx(int64_t v) {
  return arith::ConstantIndexOp::create(b, v);
}
Value KernelBuilder::i32(int64_t v) {
  return arith::ConstantIntOp::create(b, v, 32);
}
Value KernelBuilder::add(Value a, Value c) {
  return arith::AddIOp::create(b, a, c);
}
Value KernelBuilder::mul(Value a, Value c) {
  return arith::MulIOp::create(b, a, c);
}
Value KernelBuilder::div(Value a, int64_t c) {
  return arith::DivUIOp::create(b, a, idx(c));
}
Value KernelBuilder::rem(Value a, int64_t c) {
  return arith::RemUIOp::create(b, a, idx(c));
}
Value KernelBuilder::minIdx(Value a, Value c) {
  return arith::MinUIOp::create(b, a, c);
}
Value KernelBuilder::ult(Value a, Value c) {
  return arith::CmpIOp::create(b, arith::CmpIPredicate::ult, a, c);
}
Value KernelBuilder::andI1(Value a, Value c) {
  return arith::AndIOp::create(b, a, c);
}

//===----------------------------------------------------------------------===//
// Memory
//===----------------------------------------------------------------------===//

Value KernelBuilder::globalPtr(Value addr) {
  auto ptrTy = LLVM::LLVMPointerType::get(b.getContext(), 1);
  return LLVM::IntToPtrOp::create(b, ptrTy, addr);
}

static Value gepAt(ImplicitLocOpBuilder &b, Value ptr, Type elem, Value index) {
  Value i64 = arith::IndexCastOp::create(b, b.getI64Type(), index);
  return LLVM::GEPOp::create(b, ptr.getType(), elem, ptr, ValueRange{i64});
}

Value KernelBuilder::load(Type type, Value ptr, Type elem, Value index,
                          unsigned align, bool invariant) {
  Value p = gepAt(b, ptr, elem, index);
  return LLVM::LoadOp::create(b, type, p, align, /*isVolatile=*/false,
                              /*isNonTemporal=*/false, invariant);
}

void KernelBuilder::store(Value value, Value ptr, Type elem, Value index,
                          unsigned align) {
  Value p = gepAt(b, ptr, elem, index);
  LLVM::StoreOp::create(b, value, p, align);
}

Value KernelBuilder::loadWeights128(Value ptr, Value slot) {
  Type i32 = b.getI32Type();
  auto i32x4 = VectorType::get({4}, i32);
  Value p = gepAt(b, ptr, i32x4, slot);
  auto resTy =
      LLVM::LLVMStructType::getLiteral(b.getContext(), {i32, i32, i32, i32});
  auto asmOp = LLVM::InlineAsmOp::create(
      b, resTy, ValueRange{p}, "ld.global.nc.v4.u32 {$0, $1, $2, $3}, [$4];",
      "=r,=r,=r,=r,l", /*has_side_effects=*/false, /*is_align_stack=*/false,
      LLVM::tailcallkind::TailCallKind::None, LLVM::AsmDialectAttr(),
      ArrayAttr());
  SmallVector<Value, 4> parts;
  for (int64_t i = 0; i < 4; ++i)
    parts.push_back(
        LLVM::ExtractValueOp::create(b, asmOp.getRes(), ArrayRef<int64_t>{i}));
  return vector::FromElementsOp::create(b, i32x4, parts);
}

/// Wraps `ptr` into the descriptor of a memref with the given sizes and
/// strides and casts it to `type`.
static Value memrefFromPtr(ImplicitLocOpBuilder &b, Value ptr, MemRefType type,
                           ArrayRef<int64_t> sizes, ArrayRef<int64_t> strides) {
  MLIRContext *ctx = b.getContext();
  Type i64 = b.getI64Type();
  auto arr = LLVM::LLVMArrayType::get(i64, sizes.size());
  auto descTy = LLVM::LLVMStructType::getLiteral(
      ctx, {ptr.getType(), ptr.getType(), i64, arr, arr});
  auto c64 = [&](int64_t v) -> Value {
    return LLVM::ConstantOp::create(b, i64, b.getI64IntegerAttr(v));
  };
  Value desc = LLVM::PoisonOp::create(b, descTy);
  desc = LLVM::InsertValueOp::create(b, desc, ptr, ArrayRef<int64_t>{0});
  desc = LLVM::InsertValueOp::create(b, desc, ptr, ArrayRef<int64_t>{1});
  desc = LLVM::InsertValueOp::create(b, desc, c64(0), ArrayRef<int64_t>{2});
  for (auto [i, s] : llvm::enumerate(sizes)) {
    desc = LLVM::InsertValueOp::create(b, desc, c64(s),
                                       ArrayRef<int64_t>{3, (int64_t)i});
    desc = LLVM::InsertValueOp::create(b, desc, c64(strides[i]),
                                       ArrayRef<int64_t>{4, (int64_t)i});
  }
  return UnrealizedConversionCastOp::create(b, type, desc).getResult(0);
}

Value KernelBuilder::globalMemref(Value addr, Type elem) {
  auto space =
      gpu::AddressSpaceAttr::get(b.getContext(), gpu::AddressSpace::Global);
  auto type = MemRefType::get({ShapedType::kDynamic}, elem,
                              MemRefLayoutAttrInterface(), space);
  // The size is never read (no bounds checks in the kernels); any value
  // that keeps the descriptor well-formed will do.
  return memrefFromPtr(b, globalPtr(addr), type, {int64_t(1) << 40}, {1});
}

Value KernelBuilder::sharedMemref(Value ptr3, Type elem,
                                  ArrayRef<int64_t> shape) {
  auto space =
      gpu::AddressSpaceAttr::get(b.getContext(), gpu::AddressSpace::Workgroup);
  auto type = MemRefType::get(shape, elem, MemRefLayoutAttrInterface(), space);
  SmallVector<int64_t> strides(shape.size(), 1);
  for (int64_t i = (int64_t)shape.size() - 2; i >= 0; --i)
    strides[i] = strides[i + 1] * shape[i + 1];
  return memrefFromPtr(b, ptr3, type, shape, strides);
}

Value KernelBuilder::sharedBuffer(gpu::GPUModuleOp module, StringRef sym,
                                  int64_t bytes) {
  auto arrTy = LLVM::LLVMArrayType::get(b.getI8Type(), bytes);
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(module.getBody());
    // 16-byte alignment: cp.async 16 and ldmatrix rows need it (a
    // workgroup attribution of the gpu.func would only get the element
    // type's alignment).
    LLVM::GlobalOp::create(b, arrTy, /*isConstant=*/false,
                           LLVM::Linkage::Internal, sym, Attribute(),
                           /*alignment=*/16, /*addrSpace=*/3);
  }
  auto ptrTy = LLVM::LLVMPointerType::get(b.getContext(), 3);
  return LLVM::AddressOfOp::create(b, ptrTy, sym);
}

//===----------------------------------------------------------------------===//
// Fragments
//===----------------------------------------------------------------------===//

Value KernelBuilder::splat2(Value f16) {
  return vector::BroadcastOp::create(b, VectorType::get({2}, b.getF16Type()),
                                     f16);
}

Value KernelBuilder::pack(ArrayRef<Value> pairs, Type elem) {
  auto type = VectorType::get({(int64_t)pairs.size(), 2}, elem);
  // Every row is overwritten; the zero start folds away after lowering.
  Value v = arith::ConstantOp::create(
      b, DenseElementsAttr::get(type, b.getZeroAttr(elem)));
  for (auto [i, p] : llvm::enumerate(pairs))
    v = vector::InsertOp::create(b, p, v, ArrayRef<int64_t>{(int64_t)i});
  return v;
}

//===----------------------------------------------------------------------===//
// Group parameters
//===----------------------------------------------------------------------===//

GroupSets::GroupSets(const LayerDims &d)
    : perChunk(d.groups == 1 || d.g % 64 == 0), g(d.g) {
  count = perChunk ? 1 : (64 % g == 0 ? 64 / g : 4);
  perSet = d.sym ? 2 : 4;
}

int64_t GroupSets::setOf(int64_t j) const {
  return perChunk ? 0 : (64 % g == 0 ? 16 * j / g : j);
}

int64_t GroupSets::firstStepOf(int64_t set) const {
  return perChunk ? 0 : (64 % g == 0 ? set * g / 16 : set);
}

Value gpugen::groupOf(KernelBuilder &kb, const LayerDims &d, Value k0) {
  if (d.groups == 1)
    return kb.idx(0);
  return kb.minIdx(kb.div(k0, d.g), kb.idx(d.groups - 1));
}

SmallVector<Value> gpugen::loadChunkGroupScalars(KernelBuilder &kb,
                                                 const LayerDims &d,
                                                 const GroupSets &sets,
                                                 Value kc, Value row,
                                                 Value scales, Value zeros) {
  Type f16 = kb.b.getF16Type();
  Value c = kb.minIdx(kc, kb.idx(d.kc - 1));
  SmallVector<Value> out;
  for (int64_t set = 0; set < sets.count; ++set) {
    Value k0 =
        kb.add(kb.mul(c, kb.idx(64)), kb.idx(16 * sets.firstStepOf(set)));
    Value base = kb.add(kb.mul(groupOf(kb, d, k0), kb.idx(d.np)), row);
    Value baseHi = kb.add(base, kb.idx(8));
    out.push_back(kb.load(f16, scales, f16, base, 2, true));
    out.push_back(kb.load(f16, scales, f16, baseHi, 2, true));
    if (!d.sym) {
      out.push_back(kb.load(f16, zeros, f16, base, 2, true));
      out.push_back(kb.load(f16, zeros, f16, baseHi, 2, true));
    }
  }
  return out;
}

//===----------------------------------------------------------------------===//
// Kernels
//===----------------------------------------------------------------------===//

void gpugen::fusedKernelSignature(ImplicitLocOpBuilder &b, bool sym,
                                  bool toWorkspace, SmallVectorImpl<Type> &args,
                                  SmallVectorImpl<std::string> &params) {
  Type i64 = b.getI64Type();
  args.assign({i64, i64, i64});
  params.assign({"x", "qweight", "scales"});
  if (!sym) {
    args.push_back(i64);
    params.push_back("zeros");
  }
  args.push_back(i64);
  params.push_back(toWorkspace ? "workspace" : "y");
  args.push_back(b.getI32Type());
  params.push_back("M");
}

gpu::GPUFuncOp gpugen::createKernel(ImplicitLocOpBuilder &b,
                                    gpu::GPUModuleOp module, StringRef name,
                                    ArrayRef<Type> args, int64_t blockX) {
  b.setInsertionPointToEnd(module.getBody());
  auto func = gpu::GPUFuncOp::create(
      b, name, FunctionType::get(b.getContext(), args, {}));
  func->setAttr(gpu::GPUDialect::getKernelFuncAttrName(), b.getUnitAttr());
  // The exact block size lets ptxas budget registers (.reqntid).
  func.setKnownBlockSizeAttr(b.getDenseI32ArrayAttr({(int32_t)blockX, 1, 1}));
  Block &entry = func.getBody().front();
  b.setInsertionPointToEnd(&entry);
  auto ret = gpu::ReturnOp::create(b);
  b.setInsertionPoint(ret);
  return func;
}

void gpugen::buildFinalizeKernel(ImplicitLocOpBuilder &b,
                                 gpu::GPUModuleOp module, StringRef name,
                                 const LayerDims &d, GPUKernelLaunch &launch) {
  constexpr int64_t kThreads = 256;
  Type i64 = b.getI64Type();
  gpu::GPUFuncOp func =
      createKernel(b, module, name, {i64, i64, b.getI32Type()}, kThreads);
  KernelBuilder kb(b);
  Value ws = kb.globalPtr(func.getArgument(0));
  Value y = kb.globalPtr(func.getArgument(1));
  Value m =
      arith::IndexCastOp::create(b, b.getIndexType(), func.getArgument(2));
  Value tid = gpu::ThreadIdOp::create(b, gpu::Dimension::x);
  Value bx = gpu::BlockIdOp::create(b, gpu::Dimension::x);
  Value row = gpu::BlockIdOp::create(b, gpu::Dimension::y);
  Value n = kb.add(kb.mul(bx, kb.idx(kThreads)), tid);
  Value ok = kb.andI1(kb.ult(n, kb.idx(d.n)), kb.ult(row, m));
  auto ifOp = scf::IfOp::create(b, ok, /*withElseRegion=*/false);
  b.setInsertionPointToStart(ifOp.thenBlock());
  Value at = kb.add(kb.mul(row, kb.idx(d.n)), n);
  Value v = kb.load(b.getF32Type(), ws, b.getF32Type(), at, 4, false);
  Value h = arith::TruncFOp::create(b, b.getF16Type(), v);
  kb.store(h, y, b.getF16Type(), at, 2);

  launch.kernel = name.str();
  launch.block[0] = kThreads;
  launch.gridX = (d.n + kThreads - 1) / kThreads;
  launch.tileM = 1;
  launch.gridZ = 1;
  launch.sharedBytes = 0;
  launch.params = {"workspace", "y", "M"};
}
