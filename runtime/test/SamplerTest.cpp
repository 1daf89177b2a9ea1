//===- SamplerTest.cpp - Tests for next-token sampling ----------*- C++ -*-===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// Checks greedy, temperature and top-p sampling on small synthetic logits.
// Expected RNG outputs and sampled ids come from a float32-exact Python
// transcription of llama2.c run.c's sampler; the statistical tests use
// fixed seeds, so they are deterministic yet fail if the distribution drifts.
//
//===----------------------------------------------------------------------===//

#include "qc/runtime/Sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

using namespace qc;

namespace {

/// Draws `draws` samples and returns how often each id came up.
std::vector<int> histogram(Sampler &s, const std::vector<float> &logits,
                           int draws) {
  std::vector<int> counts(logits.size(), 0);
  for (int i = 0; i < draws; ++i) {
    int id = s.sample(logits.data());
    EXPECT_GE(id, 0);
    EXPECT_LT(id, static_cast<int>(logits.size()));
    if (id >= 0 && id < static_cast<int>(logits.size()))
      ++counts[id];
  }
  return counts;
}

/// Pearson's chi-square statistic of `counts` against probabilities `p`.
double chiSquare(const std::vector<int> &counts, const std::vector<double> &p,
                 int draws) {
  double chi = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    double expected = p[i] * draws;
    if (expected == 0) {
      EXPECT_EQ(counts[i], 0) << "id " << i << " has zero probability";
      continue;
    }
    chi += (counts[i] - expected) * (counts[i] - expected) / expected;
  }
  return chi;
}

const std::vector<float> kLogits = {1.5f, -0.25f, 0.75f, 2.0f,
                                    0.0f, -1.0f,  1.0f,  0.5f};

} // namespace

TEST(SamplerTest, GreedyArgmaxLowestIdOnTies) {
  Sampler s(8, 0.0f, 0.9f, 1);
  EXPECT_EQ(s.sample(kLogits.data()), 3);
  std::vector<float> ties = {0.f, 5.f, 1.f, 5.f, 5.f};
  Sampler t(5, 0.0f, 1.0f, 1);
  EXPECT_EQ(t.sample(ties.data()), 1);
  // Negative or NaN temperature is greedy too, and never consumes the RNG.
  Sampler n(5, -1.0f, 1.0f, 9);
  EXPECT_EQ(n.sample(ties.data()), 1);
  EXPECT_EQ(n.rngState(), 9u);
  Sampler q(5, std::numeric_limits<float>::quiet_NaN(), 1.0f, 9);
  EXPECT_EQ(q.sample(ties.data()), 1);
  EXPECT_EQ(Sampler::argmax(ties.data(), 0), -1);
  EXPECT_EQ(Sampler::argmax(ties.data(), 1), 0);
}

TEST(SamplerTest, XorshiftMatchesRunC) {
  uint64_t state = 42;
  const uint32_t expected[] = {1456360119u, 3359763283u, 3393612768u,
                               4054632243u, 3283045847u};
  for (uint32_t e : expected)
    EXPECT_EQ(Sampler::randomU32(state), e);
  state = 42;
  EXPECT_FLOAT_EQ(Sampler::randomF32(state), 0.3390852212905884f);
  EXPECT_FLOAT_EQ(Sampler::randomF32(state), 0.7822558283805847f);
  EXPECT_FLOAT_EQ(Sampler::randomF32(state), 0.790136992931366f);
}

TEST(SamplerTest, SampledIdsMatchRunCTranscription) {
  struct Case {
    float temperature, topP;
    std::vector<int> ids;
  } cases[] = {
      {1.0f, 1.0f, {4, 2, 3, 2, 7, 0, 3, 0, 2, 3, 2, 3, 2, 6, 3, 6}},
      {0.8f, 0.9f, {6, 3, 3, 3, 7, 3, 0, 3, 3, 3, 3, 0, 3, 6, 0, 2}},
      {1.3f, 0.5f, {0, 3, 3, 3, 0, 3, 3, 3, 3, 3, 3, 0, 3, 0, 0, 0}},
  };
  for (const Case &c : cases) {
    Sampler s(8, c.temperature, c.topP, 1234);
    std::vector<int> got;
    for (size_t i = 0; i < c.ids.size(); ++i)
      got.push_back(s.sample(kLogits.data()));
    EXPECT_EQ(got, c.ids) << "T=" << c.temperature << " topP=" << c.topP;
  }
}

TEST(SamplerTest, DeterministicPerSeed) {
  std::vector<float> flat(64, 0.0f);
  Sampler a(64, 1.0f, 1.0f, 777), b(64, 1.0f, 1.0f, 777),
      c(64, 1.0f, 1.0f, 778);
  std::vector<int> sa, sb, sc;
  for (int i = 0; i < 100; ++i) {
    sa.push_back(a.sample(flat.data()));
    sb.push_back(b.sample(flat.data()));
    sc.push_back(c.sample(flat.data()));
  }
  EXPECT_EQ(sa, sb);
  EXPECT_NE(sa, sc);
  // Seed 0 would freeze xorshift at 0 (always id 0); it is remapped.
  Sampler z(64, 1.0f, 1.0f, 0);
  std::vector<int> sz;
  for (int i = 0; i < 100; ++i)
    sz.push_back(z.sample(flat.data()));
  EXPECT_NE(sz, std::vector<int>(100, 0));
}

TEST(SamplerTest, TinyTopPAlwaysPicksTheMax) {
  Sampler s(8, 1.0f, 0.01f, 5);
  for (int i = 0; i < 200; ++i)
    ASSERT_EQ(s.sample(kLogits.data()), 3);
  // A flat distribution with topP < 1/n crops every candidate (undefined in
  // run.c); the sampler falls back to the argmax instead of reading garbage.
  std::vector<float> flat(512, 0.0f);
  Sampler f(512, 1.0f, 0.001f, 5);
  EXPECT_EQ(f.sample(flat.data()), 0);
}

TEST(SamplerTest, FullDistributionChiSquare) {
  // logits = log p, so temperature 1 must reproduce p.
  const std::vector<double> p = {0.1, 0.2, 0.3, 0.4};
  std::vector<float> logits;
  for (double v : p)
    logits.push_back(static_cast<float>(std::log(v)));
  const int draws = 20000;
  Sampler s(4, 1.0f, 1.0f, 2024);
  std::vector<int> counts = histogram(s, logits, draws);
  // 99.9% quantile of chi-square with 3 degrees of freedom.
  EXPECT_LT(chiSquare(counts, p, draws), 16.27);

  // Temperature 2 flattens: p_i proportional to sqrt(p_i).
  std::vector<double> q;
  double z = 0;
  for (double v : p)
    z += std::sqrt(v);
  for (double v : p)
    q.push_back(std::sqrt(v) / z);
  Sampler t(4, 2.0f, 1.0f, 99);
  counts = histogram(t, logits, draws);
  EXPECT_LT(chiSquare(counts, q, draws), 16.27);
}

TEST(SamplerTest, NucleusChiSquare) {
  // Sorted probabilities 0.4, 0.3, 0.2, 0.1: cumulative 0.7 first exceeds
  // topP 0.5, so the nucleus is {3, 2} renormalised to 4/7, 3/7.
  const std::vector<double> p = {0.1, 0.2, 0.3, 0.4};
  std::vector<float> logits;
  for (double v : p)
    logits.push_back(static_cast<float>(std::log(v)));
  const int draws = 20000;
  Sampler s(4, 1.0f, 0.5f, 31337);
  std::vector<int> counts = histogram(s, logits, draws);
  // 99.9% quantile with 1 degree of freedom.
  EXPECT_LT(chiSquare(counts, {0.0, 0.0, 3.0 / 7, 4.0 / 7}, draws), 10.83);

  // topP outside (0, 1) or NaN samples the full distribution.
  Sampler full(4, 1.0f, std::numeric_limits<float>::quiet_NaN(), 4);
  counts = histogram(full, logits, draws);
  EXPECT_LT(chiSquare(counts, p, draws), 16.27);
}

TEST(SamplerTest, DegenerateVocabularies) {
  float one = 3.0f;
  Sampler s(1, 1.0f, 0.9f, 3);
  EXPECT_EQ(s.sample(&one), 0);
  Sampler m(1, 1.0f, 1.0f, 3);
  EXPECT_EQ(m.sample(&one), 0);
  Sampler e(0, 1.0f, 0.9f, 3);
  EXPECT_EQ(e.sample(&one), -1);
  // Logits are read, not modified.
  std::vector<float> logits = kLogits;
  Sampler w(8, 0.7f, 0.9f, 3);
  (void)w.sample(logits.data());
  EXPECT_EQ(logits, kLogits);
}
