//===- ObserveLinearInputs.cpp - The llm-observe-linear-inputs pass -------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Finds the activation operand of every linear layer of `forward`, groups
// layers by that value (layers reading the same activation share one
// Hessian), and returns each distinct activation as an extra result.
//
//===----------------------------------------------------------------------===//

#include "LLM/IR/LLMOps.h"
#include "WQ/IR/WQOps.h"
#include "qc/Quantization/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/MapVector.h"

namespace mlir::qc {
#define GEN_PASS_DEF_LLMOBSERVELINEARINPUTSPASS
#include "qc/Quantization/Passes.h.inc"
} // namespace mlir::qc

using namespace mlir;
using namespace mlir::qc;

namespace {

/// The layer name of a linear op: its weight parameter's name without the
/// ".weight"/".qweight" suffix, else its location name.
std::string layerName(Operation *op, Value weight) {
  if (auto p = weight.getDefiningOp<llm::ParamOp>()) {
    StringRef name = p.getName();
    for (StringRef suffix : {".weight", ".qweight"})
      if (name.ends_with(suffix))
        return name.drop_back(suffix.size()).str();
    return name.str();
  }
  if (auto loc = dyn_cast<NameLoc>(op->getLoc()))
    return loc.getName().str();
  return "linear";
}

struct LLMObserveLinearInputsPass
    : mlir::qc::impl::LLMObserveLinearInputsPassBase<
          LLMObserveLinearInputsPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto fn = module.lookupSymbol<func::FuncOp>("forward");
    if (!fn || fn.isExternal()) {
      module.emitError("llm-observe-linear-inputs: no function 'forward'");
      return signalPassFailure();
    }
    llvm::MapVector<Value, SmallVector<Attribute>> observed;
    MLIRContext *ctx = &getContext();
    fn.walk([&](Operation *op) {
      Value x, w;
      if (auto l = dyn_cast<llm::LinearOp>(op)) {
        x = l.getX();
        w = l.getWeight();
      } else if (auto q = dyn_cast<wq::LinearOp>(op)) {
        x = q.getX();
        w = q.getQweight();
      } else {
        return;
      }
      observed[x].push_back(StringAttr::get(ctx, layerName(op, w)));
    });
    auto ret = cast<func::ReturnOp>(fn.getBody().back().getTerminator());
    SmallVector<Value> results(ret.getOperands());
    SmallVector<Attribute> groups;
    for (auto &[value, layers] : observed) {
      results.push_back(value);
      groups.push_back(ArrayAttr::get(ctx, layers));
    }
    OpBuilder b(ret);
    func::ReturnOp::create(b, ret.getLoc(), results);
    ret.erase();
    SmallVector<Type> types;
    for (Value v : results)
      types.push_back(v.getType());
    fn.setType(FunctionType::get(ctx, fn.getArgumentTypes(), types));
    fn->setAttr("llm.observed", ArrayAttr::get(ctx, groups));
  }
};

} // namespace
