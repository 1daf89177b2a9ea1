//===- MathApproximation.cpp - The qc-math-approximation pass -------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Softmax and SiLU evaluate exp() for every score and every hidden unit;
// as libm calls those loops cannot be vectorized and dominate CPU time.
// MLIR's polynomial approximations are accurate to a few ULP in fp32 and
// are plain arithmetic, which LLVM vectorizes. sin/cos/pow are left to libm:
// they only feed the tiny RoPE table, where exactness matters more.
//
//===----------------------------------------------------------------------===//

#include "qc/Conversion/Passes.h"

#include "mlir/Dialect/Math/Transforms/Approximation.h"
#include "mlir/Dialect/Math/Transforms/Passes.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

namespace mlir::qc {
#define GEN_PASS_DEF_QCMATHAPPROXIMATIONPASS
#include "qc/Conversion/Passes.h.inc"
} // namespace mlir::qc

using namespace mlir;

namespace {
struct QCMathApproximationPass
    : qc::impl::QCMathApproximationPassBase<QCMathApproximationPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    populateMathPolynomialApproximationPatterns(patterns, [](StringRef name) {
      return name == "exp" || name == "math.exp";
    });
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};
} // namespace
