// trainer/fixed_split_blas.h: products equal to a plain sum over k, and the
// same bits for any thread count, on ragged shapes where OpenBLAS's own
// threaded dgemm gives different bits on 1 and 2 threads.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "test_util.h"
#include "trainer/fixed_split_blas.h"

namespace rwkv {
namespace {

std::vector<double> uniform(size_t count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::vector<double> x(count);
  for (double& v : x) v = u(rng);
  return x;
}

std::string shape_name(int m, int n) {
  std::ostringstream text;
  text << "[" << m << ", " << n << "]";
  return text.str();
}

// The call on 1, 2 and 3 threads; each result's bits equal the first's.
template <class Call>
std::vector<double> expect_same_bits_on_1_2_3_threads(const std::string& what, const Call& call) {
  const std::vector<std::vector<double>> results = test::on_thread_counts({1, 2, 3}, call);
  EXPECT_EQ(results[0], results[1]) << what << ": 1 and 2 threads";
  EXPECT_EQ(results[0], results[2]) << what << ": 1 and 3 threads";
  return results[0];
}

struct GemmCase {
  char trans_a, trans_b;
  int m, n, k;
};

TEST(FixedSplitBlas, GemmIsTheSumOverKAndItsBitsDoNotDependOnTheThreadCount) {
  for (const GemmCase& g : std::vector<GemmCase>{{'N', 'N', 200, 65, 64},
                                                 {'T', 'N', 64, 129, 300},
                                                 {'N', 'T', 37, 200, 11},
                                                 {'T', 'T', 70, 64, 5},
                                                 {'N', 'N', 1, 1, 1}}) {
    // op(A) [m, k], op(B) [k, n]; stored column-major with leading
    // dimensions one larger than needed, so lda/ldb/ldc are honoured.
    const int a_rows = g.trans_a == 'N' ? g.m : g.k, a_cols = g.trans_a == 'N' ? g.k : g.m;
    const int b_rows = g.trans_b == 'N' ? g.k : g.n, b_cols = g.trans_b == 'N' ? g.n : g.k;
    const int lda = a_rows + 1, ldb = b_rows + 1, ldc = g.m + 1;
    const std::vector<double> a = uniform(static_cast<size_t>(lda) * a_cols, 1);
    const std::vector<double> b = uniform(static_cast<size_t>(ldb) * b_cols, 2);
    const std::vector<double> c0 = uniform(static_cast<size_t>(ldc) * g.n, 3);
    const double alpha = -0.75, beta = 0.5;
    std::ostringstream shape_text;
    shape_text << g.trans_a << g.trans_b << " [" << g.m << ", " << g.n << ", " << g.k << "]";
    const std::string shape = shape_text.str();
    const std::vector<double> got = expect_same_bits_on_1_2_3_threads(shape, [&] {
      std::vector<double> c = c0;
      gemm_fixed_split(g.trans_a, g.trans_b, g.m, g.n, g.k, alpha, a.data(), lda, b.data(), ldb, beta, c.data(), ldc);
      return c;
    });
    for (int j = 0; j < g.n; ++j)
      for (int i = 0; i < g.m; ++i) {
        double sum = 0;
        for (int p = 0; p < g.k; ++p) {
          const double x = g.trans_a == 'N' ? a[static_cast<size_t>(p) * lda + i] : a[static_cast<size_t>(i) * lda + p];
          const double y = g.trans_b == 'N' ? b[static_cast<size_t>(j) * ldb + p] : b[static_cast<size_t>(p) * ldb + j];
          sum += x * y;
        }
        const size_t at = static_cast<size_t>(j) * ldc + i;
        ASSERT_NEAR(got[at], alpha * sum + beta * c0[at], 1e-13 * (g.k + 1)) << shape << " at " << i << ", " << j;
      }
    // The padding row of each column of C is not written.
    for (int j = 0; j < g.n; ++j) {
      const size_t pad = static_cast<size_t>(j) * ldc + g.m;
      ASSERT_EQ(got[pad], c0[pad]) << shape;
    }
  }
}

TEST(FixedSplitBlas, UpperGramIsATransposeAOnAndAboveTheDiagonalWithBitsFixed) {
  for (const auto& [m, n] : std::vector<std::pair<int, int>>{{300, 65}, {100, 130}, {50, 1}, {64, 64}}) {
    const int lda = m + 3;
    const std::vector<double> a = uniform(static_cast<size_t>(lda) * n, 4);
    const double untouched = 12345.0;  // below the diagonal blocks, c keeps what it held
    const std::string shape = shape_name(m, n);
    const std::vector<double> got = expect_same_bits_on_1_2_3_threads(shape, [&] {
      std::vector<double> c(static_cast<size_t>(n) * n, untouched);
      upper_gram_fixed_split(m, n, a.data(), lda, c.data(), n);
      return c;
    });
    for (int j = 0; j < n; ++j)
      for (int i = 0; i < n; ++i) {
        const double value = got[static_cast<size_t>(j) * n + i];
        if (i / kFixedSplitColumns > j / kFixedSplitColumns) {
          ASSERT_EQ(value, untouched) << shape << " at " << i << ", " << j;
          continue;
        }
        double sum = 0;
        for (int p = 0; p < m; ++p) sum += a[static_cast<size_t>(i) * lda + p] * a[static_cast<size_t>(j) * lda + p];
        ASSERT_NEAR(value, sum, 1e-13 * m) << shape << " at " << i << ", " << j;
      }
  }
}

TEST(FixedSplitBlas, UpperRightProductIsAUWithBitsFixed) {
  for (const auto& [m, n] : std::vector<std::pair<int, int>>{{300, 65}, {70, 130}, {9, 1}, {128, 64}}) {
    const int lda = m + 2, ldu = n + 1;
    const std::vector<double> a = uniform(static_cast<size_t>(lda) * n, 5);
    std::vector<double> u = uniform(static_cast<size_t>(ldu) * n, 6);
    for (int j = 0; j < n; ++j)  // U upper: zeros below the diagonal inside the diagonal blocks,
      for (int i = j + 1; i < n; ++i)  // NaN below them, where it must not be read
        u[static_cast<size_t>(j) * ldu + i] = i / kFixedSplitColumns == j / kFixedSplitColumns ? 0.0 : std::nan("");
    const std::string shape = shape_name(m, n);
    const std::vector<double> got = expect_same_bits_on_1_2_3_threads(shape, [&] {
      std::vector<double> c(static_cast<size_t>(m) * n, -1.0);
      gemm_upper_right_fixed_split(m, n, a.data(), lda, u.data(), ldu, c.data(), m);
      return c;
    });
    for (int j = 0; j < n; ++j)
      for (int i = 0; i < m; ++i) {
        double sum = 0;
        for (int p = 0; p <= j; ++p) sum += a[static_cast<size_t>(p) * lda + i] * u[static_cast<size_t>(j) * ldu + p];
        ASSERT_NEAR(got[static_cast<size_t>(j) * m + i], sum, 1e-13 * n) << shape << " at " << i << ", " << j;
      }
  }
}

TEST(FixedSplitBlas, RejectsTransposeFlagsOtherThanNAndT) {
  std::vector<double> x(4, 1.0), c(4, 0.0);
  EXPECT_THROW(gemm_fixed_split('C', 'N', 2, 2, 2, 1.0, x.data(), 2, x.data(), 2, 0.0, c.data(), 2), std::exception);
}

}  // namespace
}  // namespace rwkv
