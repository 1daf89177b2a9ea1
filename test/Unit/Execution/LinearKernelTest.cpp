//===- LinearKernelTest.cpp - The CPU linear kernel against float64 -------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Every linear layer, LM head and dequantized linear of the CPU path runs
// the kernel qc-vectorize-linear generates. Its edges are where the bugs
// would be: K not a multiple of the vector width (the masked tail step,
// including K smaller than one vector), N not a multiple of the row block
// (the one-row leftovers), M not a multiple of the token block (the
// one-token leftovers, M = 1 being decode). A one-layer model, `y = x W^T +
// b` with the rows of x gathered from an embedding table by token id, is JIT
// compiled for each shape at three vector widths (16 and 8 lanes, the
// AVX-512 and AVX2 configurations, and 3, an odd width whose vectors LLVM
// must pad) and compared with a float64 reference on random non-zero data.
//
//===----------------------------------------------------------------------===//

#include "qc/Execution/CpuExecutable.h"
#include "qc/InitAllDialects.h"
#include "qc/runtime/ThreadPool.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "llvm/Support/FormatVariadic.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

namespace {

struct Shape {
  int64_t m, n, k;
  bool bias;
};

std::vector<float> randomNonZero(size_t count, std::mt19937_64 &rng) {
  std::uniform_real_distribution<float> magnitude(0.05f, 1.0f);
  std::bernoulli_distribution negative(0.5);
  std::vector<float> v(count);
  for (float &x : v)
    x = negative(rng) ? -magnitude(rng) : magnitude(rng);
  return v;
}

/// The model's IR: tokens -> rows of "x" -> linear with "w" (and "b").
std::string linearModel(const Shape &s) {
  std::string biasParam =
      s.bias
          ? llvm::formatv("    %b = llm.param \"b\" : tensor<{0}xf32>\n", s.n)
                .str()
          : "";
  std::string linear =
      s.bias ? llvm::formatv("    %y = llm.linear %x, %w, %b : "
                             "(tensor<?x{1}xf32>, tensor<{0}x{1}xf32>, "
                             "tensor<{0}xf32>) -> tensor<?x{0}xf32>\n",
                             s.n, s.k)
                   .str()
             : llvm::formatv("    %y = llm.linear %x, %w : "
                             "(tensor<?x{1}xf32>, tensor<{0}x{1}xf32>) -> "
                             "tensor<?x{0}xf32>\n",
                             s.n, s.k)
                   .str();
  return llvm::formatv(
             "func.func @forward(%tok: tensor<?xi32>) -> tensor<?x{0}xf32> {{\n"
             "    %e = llm.param \"x\" : tensor<{2}x{1}xf32>\n"
             "    %x = llm.embedding %e, %tok : (tensor<{2}x{1}xf32>, "
             "tensor<?xi32>) -> tensor<?x{1}xf32>\n"
             "    %w = llm.param \"w\" : tensor<{0}x{1}xf32>\n",
             s.n, s.k, s.m)
             .str() +
         biasParam + linear + "    return %y : tensor<?x" +
         std::to_string(s.n) + "xf32>\n}\n";
}

/// The one-layer model of `s` with random non-zero x, w (and b), JIT
/// compiled with `width`-lane kernels (0: the host's), and the token ids
/// that select the rows of x: the runtime bounds ids by the output width
/// (the "vocabulary"), so rows repeat where N < M.
struct CompiledLinear {
  qc::ModelWeights weights;
  std::unique_ptr<mlir::qc::CpuExecutable> exe;
  std::vector<int32_t> tokens;
};

qc::Status compileLinear(const Shape &s, int64_t width, std::mt19937_64 &rng,
                         CompiledLinear &out) {
  mlir::DialectRegistry registry;
  mlir::qc::registerAllQCDialects(registry);
  mlir::MLIRContext ctx(registry);
  ctx.loadAllAvailableDialects();
  auto module = mlir::parseSourceString<mlir::ModuleOp>(linearModel(s), &ctx);
  if (!module)
    return qc::Status::error("cannot parse:\n" + linearModel(s));
  auto add = [&](const std::string &name, std::vector<int64_t> shape) {
    qc::HostTensor t;
    t.shape = std::move(shape);
    t.data = randomNonZero(static_cast<size_t>(t.numElements()), rng);
    out.weights.tensors[name] = std::move(t);
  };
  add("x", {s.m, s.k});
  add("w", {s.n, s.k});
  if (s.bias)
    add("b", {s.n});
  out.tokens.resize(static_cast<size_t>(s.m));
  for (int64_t t = 0; t < s.m; ++t)
    out.tokens[t] = static_cast<int32_t>(t % std::min(s.m, s.n));
  mlir::qc::CpuCompileOptions options;
  options.vectorWidth = width;
  return mlir::qc::CpuExecutable::compile(*module, out.weights, out.exe,
                                          options);
}

class LinearKernel : public ::testing::TestWithParam<int64_t> {};

TEST_P(LinearKernel, MatchesFloat64ReferenceOnOddShapes) {
  const int64_t width = GetParam();
  const Shape shapes[] = {
      {1, 1, 1, false},   {1, 7, 5, true},       {1, 31, 17, false},
      {1, 48, 576, true}, {3, 7, 33, false},     {3, 1, 16, true},
      {5, 13, 15, false}, {17, 4, 17, true},     {17, 31, 100, false},
      {100, 9, 64, true}, {100, 101, 19, false}, {2, 5, 3, false},
  };
  std::mt19937_64 rng(20261206 + width);
  for (const Shape &s : shapes) {
    SCOPED_TRACE(llvm::formatv("M={0} N={1} K={2} bias={3} width={4}", s.m, s.n,
                               s.k, s.bias, width)
                     .str());
    CompiledLinear linear;
    qc::Status status = compileLinear(s, width, rng, linear);
    ASSERT_TRUE(status) << status.message();
    const qc::ModelWeights &weights = linear.weights;
    const std::vector<int32_t> &tokens = linear.tokens;
    // Poisoned output: every element must be written.
    std::vector<float> y(static_cast<size_t>(s.m * s.n), NAN);
    status = linear.exe->forward(tokens.data(), s.m, y.data());
    ASSERT_TRUE(status) << status.message();

    const std::vector<float> &x = weights.tensors.at("x").data;
    const std::vector<float> &w = weights.tensors.at("w").data;
    int failures = 0;
    for (int64_t t = 0; t < s.m; ++t)
      for (int64_t n = 0; n < s.n; ++n) {
        double ref = s.bias ? weights.tensors.at("b").data[n] : 0.0;
        double magnitude = std::fabs(ref);
        for (int64_t k = 0; k < s.k; ++k) {
          double p =
              static_cast<double>(x[tokens[t] * s.k + k]) * w[n * s.k + k];
          ref += p;
          magnitude += std::fabs(p);
        }
        // fp32 accumulation in any order: a few ulp of the sum of |terms|
        // per term added.
        double tolerance = 4e-7 * (s.k + 1) * magnitude + 1e-30;
        double got = y[t * s.n + n];
        if (!(std::fabs(got - ref) <= tolerance) && ++failures <= 5)
          ADD_FAILURE() << "y[" << t << ", " << n << "] = " << got
                        << ", float64 reference " << ref << " (tolerance "
                        << tolerance << ")";
      }
    EXPECT_EQ(failures, 0);
  }
}

// The runtime splits each product's rows among the pool's threads; every
// output is still one kernel call's sum, so the logits must be bit-identical
// whatever the thread count.
TEST(LinearKernelThreads, ResultsDoNotDependOnTheThreadCount) {
  const Shape s = {17, 301, 100, true};
  std::mt19937_64 rng(7);
  CompiledLinear linear;
  qc::Status status = compileLinear(s, /*width=*/0, rng, linear);
  ASSERT_TRUE(status) << status.message();
  std::vector<std::vector<float>> results;
  for (int64_t threads : {1, 2, 3, 8}) {
    qc::setThreadCount(threads);
    std::vector<float> y(static_cast<size_t>(s.m * s.n), NAN);
    status = linear.exe->forward(linear.tokens.data(), s.m, y.data());
    ASSERT_TRUE(status) << status.message();
    results.push_back(std::move(y));
  }
  qc::setThreadCount(0);
  for (size_t i = 1; i < results.size(); ++i)
    EXPECT_EQ(0, std::memcmp(results[0].data(), results[i].data(),
                             results[0].size() * sizeof(float)))
        << "run " << i;
}

INSTANTIATE_TEST_SUITE_P(Widths, LinearKernel, ::testing::Values(16, 8, 3),
                         [](const ::testing::TestParamInfo<int64_t> &info) {
                           return "V" + std::to_string(info.param);
                         });

} // namespace
