//===- OutlineLoopNests.cpp - The qc-outline-loop-nests pass --------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// A model lowers to one function per entry point with every layer's loop
// nests inline: for SmolLM2's 30 layers that was a function LLVM needed
// about 30 s to optimize and compile (dominator-tree and scalar-evolution
// queries grow with the function, not with the loop being looked at). The
// layers repeat the same loop nests on the same shapes, so after
// bufferization each nest is moved into its own function and identical
// functions are merged: LLVM then compiles each distinct nest once and the
// entry points become short lists of calls.
//
// Two nests are merged when their functions print identically (types,
// attributes, cloned constants and all): textual identity is a sufficient
// condition for identical behaviour and cheap to check.
//
//===----------------------------------------------------------------------===//

#include "qc/Conversion/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/Matchers.h"
#include "mlir/Transforms/RegionUtils.h"
#include "llvm/ADT/SetVector.h"
#include "llvm/ADT/StringMap.h"

namespace mlir::qc {
#define GEN_PASS_DEF_QCOUTLINELOOPNESTSPASS
#include "qc/Conversion/Passes.h.inc"
} // namespace mlir::qc

using namespace mlir;

namespace {

/// Whether `op` is a loop nest this pass moves out: a linalg op on buffers,
/// an `scf.for`, or an `scf.if` (which, after bufferization, picks between
/// two buffer computations; attention's one-token and chunked forms are one
/// such pair per layer). The function returns the op's results.
bool isOutlinable(Operation *op) {
  if (auto linalgOp = dyn_cast<linalg::LinalgOp>(op))
    return linalgOp.hasPureBufferSemantics() && op->getNumResults() == 0;
  return isa<scf::ForOp, scf::IfOp>(op) &&
         llvm::all_of(op->getResultTypes(),
                      [](Type t) { return !isa<TensorType>(t); });
}

struct QCOutlineLoopNestsPass
    : qc::impl::QCOutlineLoopNestsPassBase<QCOutlineLoopNestsPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    MLIRContext *ctx = &getContext();
    // Printed function (under a fixed name) -> the function kept for it.
    llvm::StringMap<func::FuncOp> byText;
    int64_t counter = 0;
    auto uniqueName = [&]() {
      std::string name;
      do {
        name = "qc_loop_nest_" + std::to_string(counter++);
      } while (module.lookupSymbol(name));
      return name;
    };

    SmallVector<func::FuncOp> entries;
    for (auto fn : module.getOps<func::FuncOp>())
      if (fn.isPublic() && !fn.isDeclaration())
        entries.push_back(fn);
    for (func::FuncOp entry : entries) {
      // Nests directly in the entry and in the regions of its other ops.
      SmallVector<Operation *> nests;
      entry.getBody().walk<WalkOrder::PreOrder>([&](Operation *op) {
        if (!isOutlinable(op))
          return WalkResult::advance();
        nests.push_back(op);
        return WalkResult::skip();
      });
      for (Operation *op : nests) {
        // Everything the nest reads from outside: its operands and the
        // values its regions capture. Constants are cloned into the new
        // function (they stay visible to LLVM's optimizer); the rest
        // become arguments.
        llvm::SetVector<Value> used(op->getOperands().begin(),
                                    op->getOperands().end());
        getUsedValuesDefinedAbove(op->getRegions(), used);
        SmallVector<Value> args;
        SmallVector<Operation *> constants;
        for (Value v : used) {
          Operation *def = v.getDefiningOp();
          if (def && def->getNumResults() == 1 &&
              matchPattern(def, m_Constant()))
            constants.push_back(def);
          else
            args.push_back(v);
        }
        SmallVector<Type> argTypes;
        for (Value v : args)
          argTypes.push_back(v.getType());

        OpBuilder b(ctx);
        Location loc = op->getLoc();
        auto fn = func::FuncOp::create(
            b, loc, "qc_loop_nest",
            FunctionType::get(ctx, argTypes, op->getResultTypes()));
        fn.setPrivate();
        // Rebuilding the whole model function around the calls is what
        // this pass exists to avoid.
        // (`passthrough` is what convert-func-to-llvm carries over to the
        // LLVM function's attributes.)
        fn->setAttr("passthrough",
                    b.getArrayAttr({b.getStringAttr("noinline")}));
        Block *body = fn.addEntryBlock();
        b.setInsertionPointToStart(body);
        IRMapping map;
        for (auto [v, arg] : llvm::zip(args, body->getArguments()))
          map.map(v, arg);
        for (Operation *c : constants)
          b.clone(*c, map);
        Operation *clone = b.clone(*op, map);
        func::ReturnOp::create(b, loc, clone->getResults());

        std::string text;
        {
          llvm::raw_string_ostream os(text);
          fn.print(os);
        }
        func::FuncOp callee;
        if (auto it = byText.find(text); it != byText.end()) {
          callee = it->second;
          fn.erase();
        } else {
          fn.setName(uniqueName());
          module.push_back(fn);
          byText[text] = fn;
          callee = fn;
        }
        OpBuilder at(op);
        auto call = func::CallOp::create(at, loc, callee, args);
        op->replaceAllUsesWith(call.getResults());
        op->erase();
      }
    }
  }
};

} // namespace
