//===- DequantLinearKernelTest.cpp - Fused dequantize-linear vs float64 ---===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// A GPTQ-layout wq.linear on the CPU path is one generic that dequantizes
// as it multiplies (convert-wq-to-linalg), which qc-vectorize-linear turns
// into a kernel with output columns in vector lanes. Its edges: N not a
// multiple of the column block or of the vector (masked column vectors), K
// not a multiple of the codes per word (a partial last word) or of the
// group (a short last group), per-channel groups, M = 1 (decode) and M not
// a multiple of the token block; every zero-point form (GPTQ v1 packed
// integers, float, symmetric) and 2, 4 and 8 bits. A one-layer model is JIT
// compiled at three vector widths and compared with a float64 product of x
// and the weights dequantized as ALGORITHMS.md says, on random data. 3 bits
// (codes straddle words) keeps the dequantize-then-multiply lowering and is
// checked the same way.
//
//===----------------------------------------------------------------------===//

#include "qc/Execution/CpuExecutable.h"
#include "qc/InitAllDialects.h"
#include "qc/runtime/Safetensors.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/Process.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

namespace {

enum class Zeros { PackedInt, Float, Sym };

struct Case {
  int64_t bits, group, k, n, m;
  Zeros zeros;
  bool bf16Scales = false;
};

std::string caseName(const Case &c) {
  const char *z = c.zeros == Zeros::PackedInt ? "int"
                  : c.zeros == Zeros::Float   ? "float"
                                              : "sym";
  return llvm::formatv("W{0} g{1} K={2} N={3} M={4} zeros={5} scales={6}",
                       c.bits, c.group, c.k, c.n, c.m, z,
                       c.bf16Scales ? "bf16" : "f16")
      .str();
}

/// A quantized layer with random codes, scales and zero points, and its
/// weights dequantized in f32 exactly as the format defines them.
struct Layer {
  int64_t groups, words, zeroWords;
  std::vector<uint32_t> qweight;     // [words, N]
  std::vector<float> scales;         // [groups, N], f16-exact
  std::vector<uint32_t> packedZeros; // [groups, zeroWords]
  std::vector<float> floatZeros;     // [groups, N]
  std::vector<float> dequantized;    // [N, K]
};

/// ORs `code` into the LSB-first bit stream whose word w is
/// `words[w * stride + column]`, at bit `bit` (3-bit codes may straddle two
/// words).
void putCode(std::vector<uint32_t> &words, int64_t stride, int64_t column,
             int64_t bit, int64_t bits, uint32_t code) {
  words[(bit / 32) * stride + column] |= code << (bit % 32);
  if (bit % 32 + bits > 32)
    words[(bit / 32 + 1) * stride + column] |= code >> (32 - bit % 32);
}

Layer makeLayer(const Case &c, std::mt19937_64 &rng) {
  Layer l;
  int64_t group = c.group == -1 ? c.k : c.group;
  l.groups = (c.k + group - 1) / group;
  l.words = (c.k * c.bits + 31) / 32;
  l.zeroWords = (c.n * c.bits + 31) / 32;
  int64_t levels = int64_t(1) << c.bits;
  std::uniform_int_distribution<int64_t> code(0, levels - 1);
  std::uniform_real_distribution<float> scale(0.01f, 0.2f);
  std::vector<int64_t> q(static_cast<size_t>(c.n * c.k)),
      z(static_cast<size_t>(l.groups * c.n));
  for (auto &v : q)
    v = code(rng);
  for (auto &v : z)
    v = code(rng);
  l.qweight.assign(static_cast<size_t>(l.words * c.n), 0);
  for (int64_t n = 0; n < c.n; ++n)
    for (int64_t k = 0; k < c.k; ++k)
      putCode(l.qweight, c.n, n, k * c.bits, c.bits,
              static_cast<uint32_t>(q[n * c.k + k]));
  l.scales.resize(static_cast<size_t>(l.groups * c.n));
  for (float &s : l.scales)
    s = c.bf16Scales ? qc::bf16ToF32(qc::f32ToBF16(scale(rng)))
                     : qc::f16ToF32(qc::f32ToF16(scale(rng)));
  l.packedZeros.assign(static_cast<size_t>(l.groups * l.zeroWords), 0);
  l.floatZeros.resize(z.size());
  std::uniform_real_distribution<float> fractional(0.0f, float(levels - 1));
  for (int64_t g = 0; g < l.groups; ++g)
    for (int64_t n = 0; n < c.n; ++n) {
      // GPTQ v1 stores z - 1 (mod 2^b) as a stream over N.
      uint32_t stored =
          static_cast<uint32_t>((z[g * c.n + n] - 1) & (levels - 1));
      // Row g of the zeros is its own stream: stride 1 from word g * width.
      putCode(l.packedZeros, 1, g * l.zeroWords, n * c.bits, c.bits, stored);
      l.floatZeros[g * c.n + n] = qc::f16ToF32(qc::f32ToF16(fractional(rng)));
    }
  l.dequantized.resize(static_cast<size_t>(c.n * c.k));
  for (int64_t n = 0; n < c.n; ++n)
    for (int64_t k = 0; k < c.k; ++k) {
      int64_t g = k / group;
      float zero = c.zeros == Zeros::Sym     ? float(levels / 2)
                   : c.zeros == Zeros::Float ? l.floatZeros[g * c.n + n]
                                             : float(z[g * c.n + n]);
      l.dequantized[n * c.k + k] =
          l.scales[g * c.n + n] * (float(q[n * c.k + k]) - zero);
    }
  return l;
}

template <typename T>
qc::PackedTensor packed(qc::DType dtype, std::vector<int64_t> shape,
                        const std::vector<T> &values) {
  qc::PackedTensor t;
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.bytes.resize(values.size() * sizeof(T));
  std::memcpy(t.bytes.data(), values.data(), t.bytes.size());
  return t;
}

std::vector<uint16_t> toF16(const std::vector<float> &v) {
  std::vector<uint16_t> out(v.size());
  for (size_t i = 0; i < v.size(); ++i)
    out[i] = qc::f32ToF16(v[i]);
  return out;
}

/// tokens -> rows of "x" -> the quantized linear.
std::string model(const Case &c, const Layer &l) {
  std::string zerosParam, zerosOperand, zerosType, zeroDtype;
  if (c.zeros == Zeros::PackedInt) {
    zerosParam = llvm::formatv("  %z = llm.param \"z\" : tensor<{0}x{1}xi32>\n",
                               l.groups, l.zeroWords);
    zerosType = llvm::formatv(", tensor<{0}x{1}xi32>", l.groups, l.zeroWords);
    zeroDtype = ", zero_dtype = i32";
  } else if (c.zeros == Zeros::Float) {
    zerosParam = llvm::formatv("  %z = llm.param \"z\" : tensor<{0}x{1}xf16>\n",
                               l.groups, c.n);
    zerosType = llvm::formatv(", tensor<{0}x{1}xf16>", l.groups, c.n);
    zeroDtype = ", zero_dtype = f16";
  }
  if (c.zeros != Zeros::Sym)
    zerosOperand = " zeros(%z)";
  return llvm::formatv(
             "func.func @forward(%tok: tensor<?xi32>) -> tensor<?x{1}xf32> {{\n"
             "  %e = llm.param \"x\" : tensor<{2}x{0}xf32>\n"
             "  %x = llm.embedding %e, %tok : (tensor<{2}x{0}xf32>, "
             "tensor<?xi32>) "
             "-> tensor<?x{0}xf32>\n"
             "  %qw = llm.param \"qw\" : tensor<{3}x{1}xi32>\n"
             "  %s = llm.param \"s\" : tensor<{4}x{1}x{12}>\n"
             "{5}"
             "  %y = wq.linear %x, %qw, %s{6} {{bits = {7} : i64, group_size = "
             "{8} "
             ": i64, sym = {9}, in_features = {0} : i64, out_features = {1} : "
             "i64, "
             "scale_dtype = {12}{10}, layout = #wq.layout<gptq>} : "
             "(tensor<?x{0}xf32>, tensor<{3}x{1}xi32>, "
             "tensor<{4}x{1}x{12}>{11}) -> "
             "tensor<?x{1}xf32>\n"
             "  return %y : tensor<?x{1}xf32>\n}\n",
             c.k, c.n, c.m, l.words, l.groups, zerosParam, zerosOperand, c.bits,
             c.group, c.zeros == Zeros::Sym ? "true" : "false", zeroDtype,
             zerosType, c.bf16Scales ? "bf16" : "f16")
      .str();
}

class DequantLinearKernel : public ::testing::TestWithParam<int64_t> {};

TEST_P(DequantLinearKernel, MatchesFloat64ReferenceOnOddShapes) {
  const int64_t width = GetParam();
  const Case cases[] = {
      {4, 32, 100, 37, 3, Zeros::PackedInt}, // partial word, short group
      {4, 32, 64, 100, 17, Zeros::Float},
      {4, 128, 72, 33, 1, Zeros::PackedInt}, // one group longer than K
      {4, -1, 96, 17, 1, Zeros::Sym},        // per-channel
      {2, 16, 50, 65, 5, Zeros::PackedInt},  // 16 codes per word
      {8, 8, 20, 64, 100, Zeros::Float},     // 4 codes per word
      {8, 16, 19, 1, 2, Zeros::Sym},         // one output column
      {3, 32, 64, 32, 3, Zeros::PackedInt},  // straddling codes: fallback
      // One token with work enough to be split into partial sums by
      // groups (qc_rt_parallel_dequant_linear): a masked column tail, a
      // partial last word, bf16 scales.
      {4, 32, 576, 200, 1, Zeros::PackedInt},
      {4, 32, 1003, 77, 1, Zeros::Float, true},
      {8, 64, 640, 130, 1, Zeros::Sym, true},
      // One token at 2 bits (16 codes per word, the smallest prescale of
      // x, 2^-28) and a partial last word.
      {2, 64, 1000, 70, 1, Zeros::Float},
      {2, 16, 50, 65, 1, Zeros::PackedInt},
  };
  std::mt19937_64 rng(20261206 + width);
  for (const Case &c : cases) {
    SCOPED_TRACE(caseName(c) + " width=" + std::to_string(width));
    Layer l = makeLayer(c, rng);
    qc::ModelWeights weights;
    std::uniform_real_distribution<float> xs(-1.0f, 1.0f);
    qc::HostTensor x;
    x.shape = {c.m, c.k};
    x.data.resize(static_cast<size_t>(c.m * c.k));
    for (float &v : x.data)
      v = xs(rng);
    weights.tensors["x"] = x;
    weights.packed["qw"] = packed(qc::DType::I32, {l.words, c.n}, l.qweight);
    if (c.bf16Scales) {
      std::vector<uint16_t> bits(l.scales.size());
      for (size_t i = 0; i < bits.size(); ++i)
        bits[i] = qc::f32ToBF16(l.scales[i]);
      weights.packed["s"] = packed(qc::DType::BF16, {l.groups, c.n}, bits);
    } else {
      weights.packed["s"] =
          packed(qc::DType::F16, {l.groups, c.n}, toF16(l.scales));
    }
    if (c.zeros == Zeros::PackedInt)
      weights.packed["z"] =
          packed(qc::DType::I32, {l.groups, l.zeroWords}, l.packedZeros);
    else if (c.zeros == Zeros::Float)
      weights.packed["z"] =
          packed(qc::DType::F16, {l.groups, c.n}, toF16(l.floatZeros));

    mlir::DialectRegistry registry;
    mlir::qc::registerAllQCDialects(registry);
    mlir::MLIRContext ctx(registry);
    ctx.loadAllAvailableDialects();
    std::string ir = model(c, l);
    auto module = mlir::parseSourceString<mlir::ModuleOp>(ir, &ctx);
    ASSERT_TRUE(module) << ir;
    mlir::qc::CpuCompileOptions options;
    options.vectorWidth = width;
    // ctest runs each width in its own process at the same time: one file
    // per process.
    options.dumpLoweredTo = ::testing::TempDir() + "/dequant_linear_" +
                            std::to_string(llvm::sys::Process::getProcessId()) +
                            ".mlir";
    std::unique_ptr<mlir::qc::CpuExecutable> exe;
    qc::Status status =
        mlir::qc::CpuExecutable::compile(*module, weights, exe, options);
    ASSERT_TRUE(status) << status.message() << "\n" << ir;
    // The fused kernel is what ran (and only where it applies).
    std::ifstream lowered(options.dumpLoweredTo);
    std::stringstream text;
    text << lowered.rdbuf();
    lowered.close();
    std::remove(options.dumpLoweredTo.c_str());
    EXPECT_EQ(text.str().find("qc_dequant_linear_b") != std::string::npos,
              c.bits != 3);

    std::vector<int32_t> tokens(static_cast<size_t>(c.m));
    for (int64_t t = 0; t < c.m; ++t)
      tokens[t] = static_cast<int32_t>(t % std::min(c.m, c.n));
    std::vector<float> y(static_cast<size_t>(c.m * c.n), NAN);
    status = exe->forward(tokens.data(), c.m, y.data());
    ASSERT_TRUE(status) << status.message();
    int failures = 0;
    for (int64_t t = 0; t < c.m; ++t)
      for (int64_t n = 0; n < c.n; ++n) {
        double ref = 0, magnitude = 0;
        for (int64_t k = 0; k < c.k; ++k) {
          double p =
              double(x.data[tokens[t] * c.k + k]) * l.dequantized[n * c.k + k];
          ref += p;
          magnitude += std::fabs(p);
        }
        // The weights are bit-exact; fp32 accumulation in any order.
        double tolerance = 4e-7 * (c.k + 1) * magnitude + 1e-30;
        double got = y[t * c.n + n];
        if (!(std::fabs(got - ref) <= tolerance) && ++failures <= 5)
          ADD_FAILURE() << "y[" << t << ", " << n << "] = " << got
                        << ", float64 reference " << ref << " (tolerance "
                        << tolerance << ")";
      }
    EXPECT_EQ(failures, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(Widths, DequantLinearKernel,
                         ::testing::Values(16, 8, 3),
                         [](const ::testing::TestParamInfo<int64_t> &info) {
                           return "V" + std::to_string(info.param);
                         });

} // namespace
