//===- ParamsToArguments.cpp - The llm-params-to-arguments pass -----------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Native execution binds weights that the host already holds in memory, so
// the executable function takes them as arguments instead of embedding
// constants: the JIT stays small, and one compiled forward function serves
// every window and every thread. Results are written into caller-owned
// buffers (destination-passing style) so no allocation crosses the ABI.
// The decode function's KV caches (arguments tied to results) are the one
// exception to read-only inputs: they are updated in their own buffers, so
// a decode step writes one position per layer instead of copying the cache.
//
// Before:
//   func.func @forward(%tok: tensor<?xi32>) -> tensor<?x512xf32> {
//     %w = llm.param "model.embed_tokens.weight" : tensor<512x64xf32>
//     ...
//     return %logits : tensor<?x512xf32>
//   }
// After:
//   func.func @forward(%tok: memref<?xi32>, %out: memref<?x512xf32>,
//                      %p0: memref<512x64xf32>)
//       attributes {llm.param_names = ["model.embed_tokens.weight"], ...} {
//     %t = bufferization.to_tensor %tok restrict ...
//     %w = bufferization.to_tensor %p0 restrict ...
//     ...
//     bufferization.materialize_in_destination %logits in restrict writable
//     %out return
//   }
//
//===----------------------------------------------------------------------===//

#include "LLM/IR/LLMOps.h"
#include "qc/Conversion/Passes.h"

#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "llvm/ADT/BitVector.h"
#include "llvm/ADT/MapVector.h"

namespace mlir::qc {
#define GEN_PASS_DEF_LLMPARAMSTOARGUMENTSPASS
#include "qc/Conversion/Passes.h.inc"
} // namespace mlir::qc

using namespace mlir;
using namespace mlir::qc;

namespace {

/// The memref type with the shape and element type of `tensorType`.
MemRefType memrefFor(Type tensorType) {
  auto t = cast<RankedTensorType>(tensorType);
  return MemRefType::get(t.getShape(), t.getElementType());
}

struct LLMParamsToArgumentsPass
    : qc::impl::LLMParamsToArgumentsPassBase<LLMParamsToArgumentsPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto func = module.lookupSymbol<func::FuncOp>(entry);
    if (!func) {
      module.emitError() << "llm-params-to-arguments: no function named '"
                         << entry << "'";
      return signalPassFailure();
    }
    if (failed(convert(func)))
      signalPassFailure();
  }

  LogicalResult convert(func::FuncOp func) {
    if (func.isExternal())
      return func.emitError("cannot prepare an external function");
    for (Type t : func.getArgumentTypes())
      if (!isa<RankedTensorType, IndexType, IntegerType>(t))
        return func.emitError("expected only ranked tensor, index and "
                              "integer arguments, got ")
               << t;
    for (Type t : func.getResultTypes())
      if (!isa<RankedTensorType>(t))
        return func.emitError("expected only ranked tensor results, got ") << t;
    // Arguments updated in place (KV caches): result index -> argument.
    llvm::DenseMap<unsigned, unsigned> tiedArg;
    for (unsigned i = 0; i < func.getNumArguments(); ++i) {
      auto tied = func.getArgAttrOfType<IntegerAttr>(i, "llm.tied_result");
      if (!tied)
        continue;
      int64_t r = tied.getInt();
      if (r < 0 || r >= static_cast<int64_t>(func.getNumResults()) ||
          func.getArgumentTypes()[i] != func.getResultTypes()[r] ||
          tiedArg.count(static_cast<unsigned>(r)))
        return func.emitError("argument ")
               << i << ": llm.tied_result " << r
               << " must name a distinct result of the argument's type";
      tiedArg[static_cast<unsigned>(r)] = i;
    }

    MLIRContext *ctx = func.getContext();
    Block &body = func.front();
    OpBuilder b(ctx);
    b.setInsertionPointToStart(&body);
    Location loc = func.getLoc();
    auto noAlias = NamedAttribute(
        StringAttr::get(ctx, LLVM::LLVMDialect::getNoAliasAttrName()),
        UnitAttr::get(ctx));

    unsigned numInputs = func.getNumArguments();
    unsigned numOutputs = func.getNumResults();
    SmallVector<Type> resultTypes(func.getResultTypes());

    // Inputs: memref arguments read through restrict to_tensor; scalars
    // pass through; tied arguments are also written.
    llvm::DenseMap<unsigned, Value> newArgOf;
    for (unsigned i = 0; i < numInputs; ++i) {
      BlockArgument old = func.getArgument(i);
      unsigned idx = func.getNumArguments();
      if (!isa<RankedTensorType>(old.getType())) {
        if (failed(
                func.insertArgument(idx, old.getType(), DictionaryAttr(), loc)))
          return failure();
        old.replaceAllUsesWith(func.getArgument(idx));
        continue;
      }
      bool tied = func.getArgAttr(i, "llm.tied_result") != nullptr;
      if (failed(func.insertArgument(idx, memrefFor(old.getType()),
                                     DictionaryAttr::get(ctx, {noAlias}), loc)))
        return failure();
      Value t = bufferization::ToTensorOp::create(
          b, loc, old.getType(), func.getArgument(idx), /*restrict=*/true,
          /*writable=*/tied);
      old.replaceAllUsesWith(t);
      newArgOf[i] = func.getArgument(idx);
    }
    // Outputs: caller-owned buffers; a tied result goes back into its
    // argument's buffer.
    SmallVector<Value> outArgs;
    unsigned numOutputArgs = 0;
    for (auto [r, t] : llvm::enumerate(resultTypes)) {
      if (auto it = tiedArg.find(static_cast<unsigned>(r));
          it != tiedArg.end()) {
        outArgs.push_back(newArgOf[it->second]);
        continue;
      }
      ++numOutputArgs;
      unsigned idx = func.getNumArguments();
      if (failed(func.insertArgument(idx, memrefFor(t),
                                     DictionaryAttr::get(ctx, {noAlias}), loc)))
        return failure();
      outArgs.push_back(func.getArgument(idx));
    }
    // Parameters: one argument per distinct name, in order of first use.
    llvm::MapVector<StringRef, SmallVector<llm::ParamOp>> params;
    func.walk([&](llm::ParamOp p) { params[p.getName()].push_back(p); });
    SmallVector<Attribute> names;
    for (auto &[name, ops] : params) {
      Type tensorType = ops.front().getType();
      for (llm::ParamOp p : ops)
        if (p.getType() != tensorType)
          return p.emitOpError("parameter '")
                 << name << "' is used with two types: " << tensorType
                 << " and " << p.getType();
      unsigned idx = func.getNumArguments();
      if (failed(func.insertArgument(idx, memrefFor(tensorType),
                                     DictionaryAttr::get(ctx, {noAlias}), loc)))
        return failure();
      Value t = bufferization::ToTensorOp::create(
          b, loc, tensorType, func.getArgument(idx), /*restrict=*/true,
          /*writable=*/false);
      for (llm::ParamOp p : ops) {
        p.replaceAllUsesWith(t);
        p.erase();
      }
      names.push_back(StringAttr::get(ctx, name));
    }

    // Returns write into the output buffers.
    func.walk([&](func::ReturnOp ret) {
      OpBuilder rb(ret);
      for (auto [value, dest] : llvm::zip(ret.getOperands(), outArgs))
        bufferization::MaterializeInDestinationOp::create(
            rb, ret.getLoc(), Type(), value, dest, UnitAttr::get(ctx),
            UnitAttr::get(ctx));
      func::ReturnOp::create(rb, ret.getLoc());
      ret.erase();
    });

    llvm::BitVector drop(func.getNumArguments());
    drop.set(0, numInputs);
    if (failed(func.eraseArguments(drop)))
      return failure();
    llvm::BitVector dropResults(numOutputs, true);
    if (failed(func.eraseResults(dropResults)))
      return failure();

    func->setAttr("llm.param_names", ArrayAttr::get(ctx, names));
    func->setAttr("llm.num_inputs",
                  IntegerAttr::get(IntegerType::get(ctx, 64), numInputs));
    func->setAttr("llm.num_outputs",
                  IntegerAttr::get(IntegerType::get(ctx, 64), numOutputArgs));
    func->setAttr("llvm.emit_c_interface", UnitAttr::get(ctx));
    return success();
  }
};

} // namespace
