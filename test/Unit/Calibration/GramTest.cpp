//===- GramTest.cpp - The calibration trace's Hessian update
//---------------===//
//
// Part of the qc project. MIT licence.
//
//===----------------------------------------------------------------------===//
//
// accumulateGramUpper is tiled and threaded for speed, but a trace must stay
// bit-identical for a given model and text on every machine: every Hessian
// element is still summed over the tokens in their order. Checked here
// bit for bit against the plain per-token update it replaced, at widths
// around the tile size, with zeros among the activations (whose products
// are skipped) and an h that already holds earlier windows' sums.
//
//===----------------------------------------------------------------------===//

#include "qc/Calibration/Trace.h"
#include "qc/runtime/ThreadPool.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

using namespace qc;

namespace {

/// The per-token update of the first calibration recorder.
void plainUpdate(std::vector<float> &h, int64_t k, const std::vector<float> &x,
                 int64_t rows) {
  for (int64_t r = 0; r < rows; ++r) {
    const float *xr = x.data() + r * k;
    for (int64_t a = 0; a < k; ++a) {
      const float xa = xr[a];
      if (xa == 0.0f)
        continue;
      for (int64_t c = a; c < k; ++c)
        h[a * k + c] += xa * xr[c];
    }
  }
}

std::vector<float> randomValues(std::mt19937 &rng, int64_t n, bool zeros) {
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::uniform_int_distribution<int> pick(0, 9);
  std::vector<float> v(static_cast<size_t>(n));
  for (float &f : v)
    f = zeros && pick(rng) == 0 ? 0.0f : normal(rng);
  return v;
}

} // namespace

TEST(GramTest, TiledUpdateEqualsThePerTokenUpdateBitForBit) {
  std::mt19937 rng(7);
  // 1 and 7: one tile; 577 and 1100: tiles of 56 and 29 rows with a short
  // last tile; 1536: SmolLM2's down_proj input.
  for (int64_t k : {1, 7, 577, 1100, 1536})
    for (int64_t rows : {1, 3, 17}) {
      SCOPED_TRACE("k " + std::to_string(k) + ", rows " + std::to_string(rows));
      std::vector<float> start = randomValues(rng, k * k, false);
      std::vector<float> x = randomValues(rng, rows * k, true);
      std::vector<float> expected = start;
      plainUpdate(expected, k, x, rows);
      for (int64_t threads : {1, 2, 5}) {
        setThreadCount(threads);
        std::vector<float> got = start;
        accumulateGramUpper(got.data(), k, x.data(), rows);
        EXPECT_EQ(std::memcmp(got.data(), expected.data(),
                              got.size() * sizeof(float)),
                  0)
            << threads << " threads";
        // Below the diagonal nothing is written (mirrored at the end of
        // the recording).
        bool lowerUntouched = true;
        for (int64_t a = 0; a < k; ++a)
          for (int64_t c = 0; c < a; ++c)
            lowerUntouched &= got[a * k + c] == start[a * k + c];
        EXPECT_TRUE(lowerUntouched);
      }
    }
  setThreadCount(0);
}

// Two windows accumulated one after the other equal one update over all
// their rows, as the recorder relies on (windows run in order).
TEST(GramTest, WindowsAccumulateInOrder) {
  std::mt19937 rng(11);
  const int64_t k = 96, rows = 40;
  std::vector<float> x = randomValues(rng, rows * k, true);
  std::vector<float> whole(static_cast<size_t>(k * k), 0.0f), split = whole;
  accumulateGramUpper(whole.data(), k, x.data(), rows);
  accumulateGramUpper(split.data(), k, x.data(), 25);
  accumulateGramUpper(split.data(), k, x.data() + 25 * k, rows - 25);
  EXPECT_EQ(std::memcmp(whole.data(), split.data(), whole.size() * 4), 0);
  // Not a test that cannot fail: the sums are not all zero.
  EXPECT_NE(whole[0], 0.0f);
}
