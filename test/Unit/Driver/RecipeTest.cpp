//===- RecipeTest.cpp - Tests of recipe parsing and validation -----------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Every recipe value is checked for type and range when the recipe is read
// (issue 14, finding 7): the error names the file, the key, the valid
// values and what was found, and nothing is narrowed on the way to the
// pass pipeline. Also: a recipe that skips every layer validates to zero
// planned layers (quant-compile warns, or fails under --strict).
//
//===----------------------------------------------------------------------===//

#include "qc/Driver/Recipe.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <unistd.h>

using namespace qc;

namespace {

/// Writes `text` to a fresh recipe file, parses it, removes the file.
Status parse(const std::string &text, Recipe &out,
             std::string *path = nullptr) {
  char tmpl[] = "/tmp/qc_recipe_XXXXXX";
  int fd = ::mkstemp(tmpl);
  EXPECT_GE(fd, 0);
  ::close(fd);
  std::ofstream(tmpl) << text;
  Status s = parseRecipe(tmpl, out);
  if (path)
    *path = tmpl;
  std::remove(tmpl);
  return s;
}

std::string error(const std::string &text, std::string *path = nullptr) {
  Recipe r;
  Status s = parse(text, r, path);
  return s.isOk() ? "" : s.message();
}

} // namespace

TEST(Recipe, OptionTypeErrorsNameFileKeyAndExpectation) {
  std::string path;
  std::string e =
      error(R"({"method": "gptq", "options": {"damp_percent": "abc"}})", &path);
  EXPECT_EQ(e, path + ": 'options.damp_percent': must be a number in [0, 1], "
                      "got the string \"abc\"");
  e = error(R"({"method": "autoround", "seed": 18446744073709551615})", &path);
  EXPECT_EQ(e, path + ": 'seed': must be an integer from 0 to "
                      "9223372036854775807, got 18446744073709551615");
  EXPECT_NE(error(R"({"method": "autoround", "seed": -1})").find("'seed'"),
            std::string::npos);
  EXPECT_NE(error(R"({"method": "hqq", "options": {"iters": 2.5}})")
                .find("'options.iters': must be an integer from 0 to 100000, "
                      "got 2.5"),
            std::string::npos);
  EXPECT_NE(error(R"({"method": "gptq", "options": {"act_order": "yes"}})")
                .find("'options.act_order': must be true or false"),
            std::string::npos);
  EXPECT_NE(error(R"({"method": "awq", "options": {"n_grid": [1]}})")
                .find("'options.n_grid': must be an integer from 1 to 10000, "
                      "got an array"),
            std::string::npos);
}

TEST(Recipe, IntegersAreRangeCheckedNotNarrowed) {
  EXPECT_NE(
      error(R"({"method": "autoround", "options": {"iters": 1099511627776}})")
          .find("'options.iters': must be an integer from 0 to 100000, "
                "got 1099511627776"),
      std::string::npos);
  EXPECT_NE(error(R"({"method": "rtn", "bits": 4294967300})")
                .find("'bits': must be 2, 3, 4 or 8"),
            std::string::npos);
  EXPECT_NE(error(R"({"method": "rtn", "group_size": 4294967424})")
                .find("'group_size'"),
            std::string::npos);
  EXPECT_NE(error(R"({"method": "rtn", "calibration": {"samples": -1}})")
                .find("'calibration.samples': must be an integer from 0 to "
                      "1048576, got -1"),
            std::string::npos);
  EXPECT_NE(
      error(R"({"method": "rtn", "overrides": [{"match": "q", "bits": 16}]})")
          .find("'overrides[0].bits': must be 2, 3, 4 or 8, got 16"),
      std::string::npos);
}

TEST(Recipe, ValidValuesPassThroughToThePipeline) {
  Recipe r;
  Status s = parse(R"({"method": "autoround", "seed": 9223372036854775807,
      "options": {"iters": 100000, "lr": 0.5, "batch_size": 2},
      "calibration": {"window": 1048576, "samples": 0}})",
                   r);
  ASSERT_TRUE(s.isOk()) << s.message();
  std::string p = recipePipeline(r, "t.st", "w.st");
  EXPECT_NE(p.find("iters=100000"), std::string::npos) << p;
  EXPECT_NE(p.find("batch-size=2"), std::string::npos) << p;
  EXPECT_NE(p.find("seed=9223372036854775807"), std::string::npos) << p;
  EXPECT_EQ(r.window, 1048576);
  EXPECT_EQ(r.samples, 0);
}

TEST(Recipe, DuplicateKeysAreRefused) {
  EXPECT_NE(error(R"({"method": "rtn", "bits": 8, "bits": 2})")
                .find("not valid JSON"),
            std::string::npos);
}

TEST(Recipe, SkippingEveryLayerPlansNone) {
  Recipe r;
  ASSERT_TRUE(
      parse(
          R"({"method": "rtn", "overrides": [{"match": "layers", "skip": true}]})",
          r)
          .isOk());
  ModelWeights w;
  w.config.nLayers = 2;
  w.config.dim = 64;
  w.config.hiddenDim = 128;
  w.config.nHeads = 4;
  w.config.nKVHeads = 4;
  w.config.headDim = 16;
  w.config.vocabSize = 32;
  ValidationResult v;
  ASSERT_TRUE(validateRecipe(r, w, v).isOk());
  EXPECT_TRUE(v.layers.empty());

  Recipe some;
  ASSERT_TRUE(parse(R"({"method": "rtn", "group_size": 16})", some).isOk());
  ASSERT_TRUE(validateRecipe(some, w, v).isOk());
  EXPECT_EQ(v.layers.size(), 14u);
}
