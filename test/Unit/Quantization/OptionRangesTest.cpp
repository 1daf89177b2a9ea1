//===- OptionRangesTest.cpp - Tests of the method option table -----------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Every integer and real option is range-checked before a narrowing cast
// could hide an overflow (AutoRound iters = 2^40 used to become a small
// number), and the errors name the option and its valid values.
//
//===----------------------------------------------------------------------===//

#include "qc/Quantization/Algorithms/OptionRanges.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

using namespace qc;
using namespace qc::quant;

namespace {

std::string message(const Status &s) { return s.isOk() ? "" : s.message(); }

} // namespace

TEST(OptionRanges, IntegerOverflowIsAnErrorNotATruncation) {
  int64_t huge = int64_t(1) << 40;
  EXPECT_EQ(message(checkIntOption("autoround", "iters", huge)),
            "iters = 1099511627776 is out of range (valid: an integer from 0 "
            "to 100000)");
  // 2^32 + 4 narrowed to int is 4: the check sees the full value.
  EXPECT_EQ(message(checkIntOption("rtn", "bits", (int64_t(1) << 32) + 4)),
            "bits = 4294967300 is out of range (valid: 2, 3, 4 or 8)");
  EXPECT_TRUE(checkIntOption("autoround", "iters", 0).isOk());
  EXPECT_TRUE(checkIntOption("autoround", "iters", 100000).isOk());
  EXPECT_FALSE(checkIntOption("autoround", "iters", 100001).isOk());
  EXPECT_FALSE(checkIntOption("autoround", "iters", -1).isOk());
}

TEST(OptionRanges, GroupSizeAcceptsMinusOneAndPositive) {
  EXPECT_TRUE(checkIntOption("gptq", "group-size", -1).isOk());
  EXPECT_TRUE(checkIntOption("gptq", "group-size", 128).isOk());
  EXPECT_EQ(message(checkIntOption("gptq", "group-size", 0)),
            "group-size = 0 is out of range (valid: -1 (one group per row) or "
            "an integer from 1 to 2147483647)");
  EXPECT_FALSE(checkIntOption("gptq", "group-size", -2).isOk());
  EXPECT_FALSE(checkIntOption("gptq", "group-size", int64_t(1) << 31).isOk());
}

TEST(OptionRanges, SeedIsNonNegative) {
  EXPECT_TRUE(checkIntOption("autoround", "seed", 0).isOk());
  EXPECT_TRUE(
      checkIntOption("compile", "seed", std::numeric_limits<int64_t>::max())
          .isOk());
  EXPECT_FALSE(checkIntOption("compile", "seed", -1).isOk());
}

TEST(OptionRanges, ChoicesAndCalibration) {
  EXPECT_TRUE(checkIntOption("nf4", "block-size", 64).isOk());
  EXPECT_FALSE(checkIntOption("nf4", "block-size", 48).isOk());
  EXPECT_FALSE(checkIntOption("calibration", "window", 0).isOk());
  EXPECT_TRUE(checkIntOption("calibration", "samples", 0).isOk());
  EXPECT_FALSE(checkIntOption("calibration", "samples", -3).isOk());
}

TEST(OptionRanges, RealsAreFiniteAndInRange) {
  EXPECT_TRUE(checkRealOption("gptq", "damp-percent", 0.01).isOk());
  EXPECT_EQ(message(checkRealOption("gptq", "damp-percent", 1.5)),
            "damp-percent = 1.5 is out of range (valid: a number in [0, 1])");
  EXPECT_FALSE(checkRealOption("gptq", "damp-percent", NAN).isOk());
  EXPECT_FALSE(checkRealOption("awq", "max-shrink", 1.0).isOk());
  EXPECT_TRUE(checkRealOption("awq", "max-shrink", 0.0).isOk());
  EXPECT_FALSE(checkRealOption("hqq", "lp-norm", 0.0).isOk());
  EXPECT_EQ(message(checkRealOption("hqq", "kappa", 0.5)),
            "kappa = 0.5 is out of range (valid: a finite number >= 1)");
  EXPECT_FALSE(checkRealOption("autoround", "lr", INFINITY).isOk());
}

TEST(OptionRanges, KindsAndUnknownOptions) {
  const OptionSpec *s = findOptionSpec("gptq", "act-order");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->kind, OptionKind::Bool);
  EXPECT_EQ(s->describe(), "true or false");
  ASSERT_NE(findOptionSpec("hqq", "beta"), nullptr);
  EXPECT_EQ(findOptionSpec("hqq", "beta")->kind, OptionKind::Real);
  EXPECT_EQ(findOptionSpec("rtn", "iters"), nullptr);
  EXPECT_EQ(findOptionSpec("nope", "bits"), nullptr);
  // An integer value for a real option is a type error, not a pass.
  EXPECT_FALSE(checkIntOption(*findOptionSpec("hqq", "beta"), 3).isOk());
  // Options without a spec are left to the caller.
  EXPECT_TRUE(checkIntOption("rtn", "unknown", -7).isOk());
}

TEST(OptionRanges, RunAndKernelgenTools) {
  // quant-run: lengths capped before they become allocation sizes.
  EXPECT_TRUE(checkIntOption("run", "ctx", 0).isOk());
  EXPECT_FALSE(checkIntOption("run", "ctx", int64_t(1) << 40).isOk());
  EXPECT_FALSE(checkIntOption("run", "window", 0).isOk());
  EXPECT_TRUE(checkIntOption("run", "jit-opt-level", 3).isOk());
  EXPECT_FALSE(checkIntOption("run", "jit-opt-level", 4).isOk());
  EXPECT_TRUE(checkRealOption("run", "top-p", 1.0).isOk());
  EXPECT_FALSE(checkRealOption("run", "top-p", 0.0).isOk());
  EXPECT_TRUE(checkRealOption("run", "temperature", 0.0).isOk());
  EXPECT_FALSE(checkRealOption("run", "temperature", -0.5).isOk());
  // quant-kernelgen: the same grid as the passes, and a positive SM count.
  EXPECT_FALSE(checkIntOption("kernelgen", "num-sms", 0).isOk());
  EXPECT_TRUE(checkIntOption("kernelgen", "group-size", -1).isOk());
  EXPECT_FALSE(checkIntOption("kernelgen", "bits", 5).isOk());
}
