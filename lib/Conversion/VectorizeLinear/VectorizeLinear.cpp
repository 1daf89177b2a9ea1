//===- VectorizeLinear.cpp - The qc-vectorize-linear pass -----------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// The CPU kernel of every linear layer. Before this pass the lowering
// transposed each weight into a fresh [K, N] buffer on every call so that a
// plain loop nest had a unit-stride inner loop; for one decode token that
// copy cost more than the product itself. Here both operands are read the
// way they are stored, rows along K, and the reduction over K is carried in
// vector registers:
//
//   for each block of R weight rows:            (R = row-block)
//     for each block of T tokens:               (T = token-block)
//       acc[T][R] = 0                            (vector<V x f32> each)
//       for k in steps of V:                     (the last step masked)
//         load x[t, k:k+V] (T vectors) and w[n, k:k+V] (R vectors)
//         acc[t][n] = fma(x, w, acc)
//       out[t, n] += reduce_add(acc[t][n])
//
// Rows are the outer loop so that one decode token streams every weight row
// exactly once, and a prefill window reuses each row block (a few KiB, in
// L1) for all of its tokens. T x R accumulators plus T + R operand vectors
// must fit the register file: 4 x 4 of 16 lanes is 24 of AVX-512's 32
// registers; with 8 lanes (AVX2, 16 registers) the caller picks smaller
// blocks or accepts a few spills.
//
//===----------------------------------------------------------------------===//

#include "VectorizeLinear.h"

#include "qc/Conversion/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "llvm/Support/FormatVariadic.h"

namespace mlir::qc {
#define GEN_PASS_DEF_QCVECTORIZELINEARPASS
#include "qc/Conversion/Passes.h.inc"
} // namespace mlir::qc

using namespace mlir;

namespace {

/// The operands of an `out[t, n] += x[t, k] * w[n, k]` generic.
struct LinearOperands {
  Value x, w, out;
};

bool isF32Rank2UnitStride(Value v) {
  auto type = dyn_cast<MemRefType>(v.getType());
  return type && type.getRank() == 2 && type.getElementType().isF32() &&
         type.isLastDimUnitStride();
}

/// Whether `v` is block argument `index` of `block`.
bool isArg(Value v, Block &block, unsigned index) {
  auto arg = dyn_cast<BlockArgument>(v);
  return arg && arg.getOwner() == &block && arg.getArgNumber() == index;
}

/// Matches the transposed-B matmul the linear lowerings emit, after
/// bufferization. Any other generic (or this one on tensors, or with a
/// strided inner dimension) is not ours.
std::optional<LinearOperands> matchLinear(linalg::GenericOp op) {
  if (!qc::detail::isTokenColumnReduction(op, 2))
    return std::nullopt;
  MLIRContext *ctx = op.getContext();
  AffineExpr t, n, k;
  bindDims(ctx, t, n, k);
  SmallVector<AffineMap> expected = {AffineMap::get(3, 0, {t, k}, ctx),
                                     AffineMap::get(3, 0, {n, k}, ctx),
                                     AffineMap::get(3, 0, {t, n}, ctx)};
  if (op.getIndexingMapsArray() != expected)
    return std::nullopt;
  LinearOperands operands{op.getDpsInputs()[0], op.getDpsInputs()[1],
                          op.getDpsInits()[0]};
  if (!isF32Rank2UnitStride(operands.x) || !isF32Rank2UnitStride(operands.w) ||
      !isF32Rank2UnitStride(operands.out))
    return std::nullopt;
  // Body: yield(acc + x * w), either operand order of both ops.
  Block &body = op.getRegion().front();
  if (body.getOperations().size() != 3)
    return std::nullopt;
  auto yield = cast<linalg::YieldOp>(body.getTerminator());
  auto add = yield.getValues()[0].getDefiningOp<arith::AddFOp>();
  if (!add)
    return std::nullopt;
  Value acc = add.getLhs(), prod = add.getRhs();
  if (!isArg(acc, body, 2))
    std::swap(acc, prod);
  auto mul = prod.getDefiningOp<arith::MulFOp>();
  if (!isArg(acc, body, 2) || !mul)
    return std::nullopt;
  bool direct = isArg(mul.getLhs(), body, 0) && isArg(mul.getRhs(), body, 1);
  bool swapped = isArg(mul.getLhs(), body, 1) && isArg(mul.getRhs(), body, 0);
  if (!direct && !swapped)
    return std::nullopt;
  return operands;
}

/// Emits the kernel for one matched generic at the builder's position.
class KernelEmitter {
public:
  KernelEmitter(OpBuilder &b, Location loc, LinearOperands ops, int64_t width)
      : b(b), loc(loc), ops(ops),
        vecType(VectorType::get({width}, b.getF32Type())),
        maskType(VectorType::get({width}, b.getI1Type())) {
    zero = arith::ConstantOp::create(b, loc, b.getZeroAttr(vecType));
    c0 = constant(0);
    tokens = memref::DimOp::create(b, loc, ops.x, 0);
    depth = memref::DimOp::create(b, loc, ops.w, 1);
    Value widthV = constant(width);
    fullDepth = arith::SubIOp::create(
        b, loc, depth, arith::RemUIOp::create(b, loc, depth, widthV));
    tailMask = vector::CreateMaskOp::create(
        b, loc, maskType,
        ValueRange{arith::SubIOp::create(b, loc, depth, fullDepth)});
  }

  /// The whole nest over weight rows [rowBegin, rowEnd): full row blocks,
  /// then the leftover rows one at a time; within each, full token blocks,
  /// then the leftover tokens one at a time.
  void emit(Value rowBegin, Value rowEnd, int64_t rowBlock,
            int64_t tokenBlock) {
    Value fullRows = arith::AddIOp::create(
        b, loc, rowBegin,
        roundDown(arith::SubIOp::create(b, loc, rowEnd, rowBegin), rowBlock));
    Value fullTokens = roundDown(tokens, tokenBlock);
    auto overTokens = [&](Value n, int64_t r) {
      loop(c0, fullTokens, tokenBlock,
           [&](Value t) { emitBlock(t, n, tokenBlock, r); });
      loop(fullTokens, tokens, 1, [&](Value t) { emitBlock(t, n, 1, r); });
    };
    loop(rowBegin, fullRows, rowBlock,
         [&](Value n) { overTokens(n, rowBlock); });
    loop(fullRows, rowEnd, 1, [&](Value n) { overTokens(n, 1); });
  }

private:
  Value constant(int64_t v) {
    return arith::ConstantIndexOp::create(b, loc, v);
  }

  Value roundDown(Value v, int64_t multiple) {
    if (multiple == 1)
      return v;
    return arith::SubIOp::create(
        b, loc, v, arith::RemUIOp::create(b, loc, v, constant(multiple)));
  }

  Value plus(Value v, int64_t offset) {
    if (offset == 0)
      return v;
    return arith::AddIOp::create(b, loc, v, constant(offset));
  }

  void loop(Value lb, Value ub, int64_t step,
            function_ref<void(Value)> bodyFn) {
    auto forOp = scf::ForOp::create(b, loc, lb, ub, constant(step));
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPoint(forOp.getBody()->getTerminator());
    bodyFn(forOp.getInductionVar());
  }

  /// acc[i * r + j] += x[t + i, k:] * w[n + j, k:] over one vector step,
  /// loaded whole or (for the tail) under `mask`.
  SmallVector<Value> step(Value t, Value n, int64_t tb, int64_t r, Value k,
                          ValueRange acc, Value mask) {
    auto load = [&](Value base, Value row) -> Value {
      if (!mask)
        return vector::LoadOp::create(b, loc, vecType, base,
                                      ValueRange{row, k});
      return vector::MaskedLoadOp::create(b, loc, vecType, base,
                                          ValueRange{row, k}, mask, zero);
    };
    SmallVector<Value> xs, ws;
    for (int64_t i = 0; i < tb; ++i)
      xs.push_back(load(ops.x, plus(t, i)));
    for (int64_t j = 0; j < r; ++j)
      ws.push_back(load(ops.w, plus(n, j)));
    SmallVector<Value> next;
    for (int64_t i = 0; i < tb; ++i)
      for (int64_t j = 0; j < r; ++j)
        next.push_back(
            vector::FMAOp::create(b, loc, xs[i], ws[j], acc[i * r + j]));
    return next;
  }

  void emitBlock(Value t, Value n, int64_t tb, int64_t r) {
    SmallVector<Value> init(tb * r, zero);
    auto kLoop = scf::ForOp::create(
        b, loc, c0, fullDepth, constant(vecType.getDimSize(0)), init,
        [&](OpBuilder &nb, Location, Value k, ValueRange acc) {
          OpBuilder::InsertionGuard guard(b);
          b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
          scf::YieldOp::create(b, loc, step(t, n, tb, r, k, acc, Value()));
        });
    // The tail step always runs: with an all-false mask it loads nothing
    // (masked-off lanes are not accessed) and adds zeros.
    SmallVector<Value> acc =
        step(t, n, tb, r, fullDepth, kLoop.getResults(), tailMask);
    for (int64_t i = 0; i < tb; ++i)
      for (int64_t j = 0; j < r; ++j) {
        Value sum = vector::ReductionOp::create(
            b, loc, vector::CombiningKind::ADD, acc[i * r + j]);
        SmallVector<Value> at = {plus(t, i), plus(n, j)};
        Value old = memref::LoadOp::create(b, loc, ops.out, at);
        memref::StoreOp::create(b, loc, arith::AddFOp::create(b, loc, old, sum),
                                ops.out, at);
      }
  }

  OpBuilder &b;
  Location loc;
  LinearOperands ops;
  VectorType vecType, maskType;
  Value zero, c0, tokens, depth, fullDepth, tailMask;
};

/// The memref type every kernel argument is cast to: any shape, rows of
/// any stride, unit stride along them; f32 unless `element` says otherwise.
MemRefType kernelArgType(MLIRContext *ctx, Type element = {}) {
  int64_t dyn = ShapedType::kDynamic;
  return MemRefType::get(
      {dyn, dyn}, element ? element : Float32Type::get(ctx),
      StridedLayoutAttr::get(ctx, /*offset=*/dyn, /*strides=*/{dyn, 1}));
}

Type elementOf(Value memref) {
  return cast<MemRefType>(memref.getType()).getElementType();
}

/// The element type's name in kernel and dispatcher names: f32, f16, bf16,
/// i32.
StringRef typeName(Type t) {
  if (t.isF16())
    return "f16";
  if (t.isBF16())
    return "bf16";
  if (t.isInteger(32))
    return "i32";
  return "f32";
}

/// The zero-point form in kernel names: sym, packed, or the float type.
std::string zeroFormName(const qc::detail::DequantLinearOperands &ops) {
  switch (ops.zeroForm) {
  case qc::detail::DequantZeros::Symmetric:
    return "sym";
  case qc::detail::DequantZeros::Packed:
    return "packed";
  case qc::detail::DequantZeros::Float:
    break;
  }
  return typeName(elementOf(ops.zeros)).str();
}

/// The private function `name` of `type` in `module`. One already there
/// (from an earlier run of the pass) is returned when it has that type and,
/// if `needsBody`, a body; when absent, a declaration is appended and
/// `created` set. Anything else by that name is an error, "'name' is
/// <reservedFor> <type>", and null is returned.
func::FuncOp getOrDeclare(ModuleOp module, StringRef name, FunctionType type,
                          bool needsBody, StringRef reservedFor,
                          bool &created) {
  created = false;
  if (Operation *existing = module.lookupSymbol(name)) {
    auto fn = dyn_cast<func::FuncOp>(existing);
    if (fn && fn.getFunctionType() == type &&
        !(needsBody && fn.isDeclaration()))
      return fn;
    existing->emitError() << "qc-vectorize-linear: '" << name << "' is "
                          << reservedFor << " " << type;
    return nullptr;
  }
  OpBuilder b = OpBuilder::atBlockEnd(module.getBody());
  auto fn = func::FuncOp::create(b, module.getLoc(), name, type);
  fn.setPrivate();
  created = true;
  return fn;
}

struct QCVectorizeLinearPass
    : qc::impl::QCVectorizeLinearPassBase<QCVectorizeLinearPass> {
  using QCVectorizeLinearPassBase::QCVectorizeLinearPassBase;

  /// The kernel function, made on first use: (x, w, out, rowBegin, rowEnd)
  /// computes out[:, rowBegin:rowEnd]. One function serves every linear of
  /// the module: a model repeats the same few shapes in every layer, and
  /// one copy instead of one per call site is what keeps LLVM's compile
  /// time in check (the rows argument is what a caller splitting the
  /// output between threads needs).
  func::FuncOp getOrCreateKernel(ModuleOp module) {
    std::string name = llvm::formatv("qc_linear_f32_v{0}_r{1}_t{2}",
                                     vectorWidth, rowBlock, tokenBlock)
                           .str();
    MLIRContext *ctx = module.getContext();
    MemRefType arg = kernelArgType(ctx);
    IndexType index = IndexType::get(ctx);
    auto type = FunctionType::get(ctx, {arg, arg, arg, index, index}, {});
    Block *entry = nullptr;
    func::FuncOp fn = declareKernel(module, name, type, entry);
    if (!entry)
      return fn;
    OpBuilder b = OpBuilder::atBlockBegin(entry);
    Location loc = module.getLoc();
    LinearOperands ops{entry->getArgument(0), entry->getArgument(1),
                       entry->getArgument(2)};
    KernelEmitter(b, loc, ops, vectorWidth)
        .emit(entry->getArgument(3), entry->getArgument(4), rowBlock,
              tokenBlock);
    func::ReturnOp::create(b, loc);
    return fn;
  }

  /// Kernel `name` of `type`: an existing definition is reused (`entry`
  /// stays null); otherwise a noinline definition (one copy for the whole
  /// model, not one per call site) is created and `entry` is its empty body
  /// to fill. Null with a diagnostic if `name` is taken by anything else.
  func::FuncOp declareKernel(ModuleOp module, StringRef name, FunctionType type,
                             Block *&entry) {
    bool created;
    func::FuncOp fn = getOrDeclare(
        module, name, type, /*needsBody=*/true,
        "the name of the generated kernel and must be its definition, of "
        "type",
        created);
    if (!fn || !created)
      return fn;
    Builder b(module.getContext());
    fn->setAttr("passthrough", b.getArrayAttr({b.getStringAttr("noinline")}));
    entry = fn.addEntryBlock();
    return fn;
  }

  /// The fused dequantize-linear kernel for `bits` and `groupSize`, made on
  /// first use: (x, qweight, scales, zeros, out, colBegin, colEnd) computes
  /// out[:, colBegin:colEnd] (DequantKernel.cpp).
  func::FuncOp
  getOrCreateDequantKernel(ModuleOp module,
                           const qc::detail::DequantLinearOperands &matched) {
    int64_t bits = matched.bits, groupSize = matched.groupSize;
    Type scaleType = elementOf(matched.scales);
    // A symmetric kernel takes the scales in the zeros' place (unread), so
    // that every kernel has the dispatcher's five buffers.
    Type zeroType =
        matched.zeros ? elementOf(matched.zeros) : elementOf(matched.scales);
    std::string name =
        llvm::formatv("qc_dequant_linear_b{0}_g{1}_s{2}_z{3}_v{4}_c{5}_t{6}",
                      bits, groupSize, typeName(scaleType),
                      zeroFormName(matched), vectorWidth, dequantColumnBlock,
                      dequantTokenBlock)
            .str();
    MLIRContext *ctx = module.getContext();
    MemRefType f32Arg = kernelArgType(ctx);
    MemRefType wordArg = kernelArgType(ctx, IntegerType::get(ctx, 32));
    IndexType index = IndexType::get(ctx);
    auto type = FunctionType::get(
        ctx,
        {f32Arg, wordArg, kernelArgType(ctx, scaleType),
         kernelArgType(ctx, zeroType), f32Arg, index, index, index, index},
        {});
    Block *entry = nullptr;
    func::FuncOp fn = declareKernel(module, name, type, entry);
    if (!entry)
      return fn;
    OpBuilder b = OpBuilder::atBlockBegin(entry);
    Location loc = module.getLoc();
    qc::detail::DequantLinearOperands ops = matched;
    ops.x = entry->getArgument(0);
    ops.qweight = entry->getArgument(1);
    ops.scales = entry->getArgument(2);
    ops.zeros = matched.zeros ? entry->getArgument(3) : Value();
    ops.out = entry->getArgument(4);
    qc::detail::emitDequantKernel(b, loc, ops, entry->getArgument(5),
                                  entry->getArgument(6), entry->getArgument(7),
                                  entry->getArgument(8), vectorWidth,
                                  dequantColumnBlock, dequantTokenBlock);
    func::ReturnOp::create(b, loc);
    return fn;
  }

  /// The runtime's dispatcher `name`(kernel, kernel arguments...), declared.
  func::FuncOp getOrCreateDispatcher(ModuleOp module, func::FuncOp kernel,
                                     StringRef name) {
    SmallVector<Type> inputs = {kernel.getFunctionType()};
    llvm::append_range(inputs, kernel.getFunctionType().getInputs());
    auto type = FunctionType::get(&getContext(), inputs, {});
    bool created;
    return getOrDeclare(module, name, type, /*needsBody=*/false,
                        "the runtime's parallel dispatcher and must be "
                        "declared as",
                        created);
  }

  void runOnOperation() override {
    // A sanity bound: 8 x 8 accumulators already exceed any x86 register
    // file, and vectors past 64 lanes only make LLVM split them.
    if (vectorWidth < 1 || vectorWidth > 64 || rowBlock < 1 || rowBlock > 8 ||
        tokenBlock < 1 || tokenBlock > 8) {
      getOperation()->emitError()
          << "qc-vectorize-linear: vector-width must be in [1, 64] and "
             "row-block and token-block in [1, 8]; got vector-width="
          << static_cast<int64_t>(vectorWidth)
          << " row-block=" << static_cast<int64_t>(rowBlock)
          << " token-block=" << static_cast<int64_t>(tokenBlock);
      return signalPassFailure();
    }
    if (dequantColumnBlock < 1 || dequantColumnBlock > 8 ||
        dequantTokenBlock < 1 || dequantTokenBlock > 8) {
      getOperation()->emitError()
          << "qc-vectorize-linear: dequant-column-block and "
             "dequant-token-block must be in [1, 8]; got "
          << static_cast<int64_t>(dequantColumnBlock) << " and "
          << static_cast<int64_t>(dequantTokenBlock);
      return signalPassFailure();
    }
    SmallVector<std::pair<linalg::GenericOp, LinearOperands>> linears;
    SmallVector<std::pair<linalg::GenericOp, qc::detail::DequantLinearOperands>>
        dequants;
    getOperation()->walk([&](linalg::GenericOp op) {
      if (auto operands = matchLinear(op))
        linears.push_back({op, *operands});
      else if (auto fused = qc::detail::matchDequantLinear(op))
        dequants.push_back({op, *fused});
    });
    ModuleOp module = getOperation();
    for (auto &[op, operands] : linears) {
      func::FuncOp kernel = getOrCreateKernel(module);
      if (!kernel ||
          failed(replaceWithCall(op, kernel, "qc_rt_parallel_linear",
                                 {operands.x, operands.w, operands.out},
                                 {{operands.w, 0}})))
        return signalPassFailure();
    }
    for (auto &[op, operands] : dequants) {
      func::FuncOp kernel = getOrCreateDequantKernel(module, operands);
      // One dispatcher name per pair of scale and zero element types (each
      // MLIR declaration has one type); the runtime binds every name to the
      // same function, which only passes the buffers through.
      Value zeros = operands.zeros ? operands.zeros : operands.scales;
      std::string dispatcher = ("qc_rt_parallel_dequant_linear_" +
                                typeName(elementOf(operands.scales)) + "_" +
                                typeName(elementOf(zeros)))
                                   .str();
      if (!kernel ||
          failed(replaceWithCall(op, kernel, dispatcher,
                                 {operands.x, operands.qweight, operands.scales,
                                  zeros, operands.out},
                                 {{operands.out, 1}, {operands.scales, 0}})))
        return signalPassFailure();
    }
  }

  /// Replaces `op` by a call of `kernel` on `memrefs` (cast to the kernel's
  /// argument types) over the ranges [0, dim d of v) for each (v, d) of
  /// `ranges`, made through the runtime's `dispatcherName` when `parallel`.
  LogicalResult replaceWithCall(linalg::GenericOp op, func::FuncOp kernel,
                                StringRef dispatcherName, ValueRange memrefs,
                                ArrayRef<std::pair<Value, int64_t>> ranges) {
    func::FuncOp dispatcher;
    if (parallel) {
      dispatcher =
          getOrCreateDispatcher(getOperation(), kernel, dispatcherName);
      if (!dispatcher)
        return failure();
    }
    OpBuilder b(op);
    Location loc = op.getLoc();
    SmallVector<Value> args;
    if (dispatcher)
      args.push_back(func::ConstantOp::create(b, loc, kernel.getFunctionType(),
                                              kernel.getSymName()));
    for (auto [v, type] :
         llvm::zip(memrefs, kernel.getFunctionType().getInputs()))
      args.push_back(memref::CastOp::create(b, loc, type, v));
    for (auto [extentOf, dim] : ranges) {
      args.push_back(arith::ConstantIndexOp::create(b, loc, 0));
      args.push_back(memref::DimOp::create(b, loc, extentOf, dim));
    }
    func::CallOp::create(b, loc, dispatcher ? dispatcher : kernel, args);
    op.erase();
    return success();
  }
};

} // namespace

bool mlir::qc::detail::isTokenColumnReduction(linalg::GenericOp op,
                                              unsigned inputs) {
  if (!op.hasPureBufferSemantics() || op.getNumDpsInputs() != inputs ||
      op.getNumDpsInits() != 1)
    return false;
  auto iterators = op.getIteratorTypesArray();
  return iterators.size() == 3 &&
         iterators[0] == utils::IteratorType::parallel &&
         iterators[1] == utils::IteratorType::parallel &&
         iterators[2] == utils::IteratorType::reduction;
}
