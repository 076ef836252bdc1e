// The reference init's orthogonal matrices and its random streams
// (trainer/orthogonal_init.h, trainer/rwkv4_parameters.cpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "core/threads.h"
#include "test_util.h"
#include "trainer/orthogonal_init.h"
#include "trainer/rwkv4_model.h"

namespace rwkv {
namespace {

std::vector<double> gaussian(int m, int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal;
  std::vector<double> a(static_cast<size_t>(m) * n);
  for (double& x : a) x = normal(rng);
  return a;
}

// R = Q^T A: for the Q of A = QR with R's diagonal positive, R is upper
// triangular with a positive diagonal, and Q^T Q = I.
void expect_positive_qr(const std::vector<double>& a, const std::vector<double>& q, int m, int n, double tol) {
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) {
      double qq = 0, r = 0;  // (Q^T Q)[i, j], (Q^T A)[i, j]
      for (int k = 0; k < m; ++k) {
        qq += q[static_cast<size_t>(i) * m + k] * q[static_cast<size_t>(j) * m + k];
        r += q[static_cast<size_t>(i) * m + k] * a[static_cast<size_t>(j) * m + k];
      }
      ASSERT_NEAR(qq, i == j ? 1.0 : 0.0, tol) << "Q^T Q at " << i << ", " << j;
      if (i > j) {
        ASSERT_NEAR(r, 0.0, tol * std::sqrt(static_cast<double>(m))) << "R below the diagonal at " << i << ", " << j;
      } else if (i == j) {
        ASSERT_GT(r, 0.0) << "R's diagonal at " << i;
      }
    }
}

// Q of a by `method` on 1 and on 2 threads: a positive QR, the same bits.
std::vector<double> expect_same_q_on_one_and_two_threads(const std::vector<double>& a, int m, int n,
                                                         QrMethod method) {
  const std::vector<std::vector<double>> q = test::on_thread_counts({1, 2}, [&] {
    std::vector<double> out = a;
    orthonormalise_columns(out, m, n, method);
    return out;
  });
  expect_positive_qr(a, q[0], m, n, 1e-12);
  EXPECT_EQ(q[0], q[1]) << "[" << m << ", " << n << "]";
  return q[0];
}

TEST(OrthogonalInit, HouseholderAndCholeskyGiveTheSameQWithRsDiagonalPositive) {
  for (const auto& [m, n] : std::vector<std::pair<int, int>>{{400, 100}, {1000, 37}, {64, 16}}) {
    const std::vector<double> a = gaussian(m, n, static_cast<uint64_t>(m + n));
    std::vector<double> householder = a, cholesky = a, automatic = a;
    orthonormalise_columns(householder, m, n, QrMethod::Householder);
    orthonormalise_columns(cholesky, m, n, QrMethod::Cholesky);
    orthonormalise_columns(automatic, m, n);  // tall: Cholesky
    expect_positive_qr(a, householder, m, n, 1e-12);
    expect_positive_qr(a, cholesky, m, n, 1e-12);
    for (size_t i = 0; i < a.size(); ++i) {
      ASSERT_NEAR(cholesky[i], householder[i], 1e-12) << "[" << m << ", " << n << "] at " << i;
      ASSERT_EQ(automatic[i], cholesky[i]);
    }
  }
  // Square: Auto takes Householder (Cholesky QR would square a large condition number).
  const std::vector<double> a = gaussian(50, 50, 3);
  std::vector<double> q = a, householder = a;
  orthonormalise_columns(q, 50, 50);
  orthonormalise_columns(householder, 50, 50, QrMethod::Householder);
  EXPECT_EQ(q, householder);
  expect_positive_qr(a, q, 50, 50, 1e-12);
}

// The blocked Householder QR (dgemm trailing updates over panels of 64
// columns) against LAPACK's dgeqrf + dorgqr: shapes with one panel, a panel
// edge exactly at n, a ragged last panel, square and tall; and the same bits
// on 1 and 2 threads, so the init stays independent of the thread count.
TEST(OrthogonalInit, BlockedHouseholderMatchesLapackAndDoesNotDependOnTheThreadCount) {
  for (const auto& [m, n] : std::vector<std::pair<int, int>>{{40, 40}, {128, 64}, {200, 129}, {300, 300}, {700, 190}}) {
    const std::vector<double> a = gaussian(m, n, static_cast<uint64_t>(7 * m + n));
    std::vector<double> lapack = a;
    orthonormalise_columns(lapack, m, n, QrMethod::LapackHouseholder);
    const std::vector<double> q = expect_same_q_on_one_and_two_threads(a, m, n, QrMethod::Householder);
    double worst = 0;
    for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(q[i] - lapack[i]));
    // Q is a smooth function of a: the two orders of the same reflections
    // differ by ~cond(a) eps (cond of a square Gaussian matrix ~ n).
    EXPECT_LT(worst, 1e-11) << "[" << m << ", " << n << "]";
  }
}

// Cholesky QR on shapes whose widths end off OpenBLAS's tiles (65, 130):
// the bits on 1 and 2 threads agree.
TEST(OrthogonalInit, CholeskyDoesNotDependOnTheThreadCount) {
  for (const auto& [m, n] : std::vector<std::pair<int, int>>{{400, 65}, {1300, 130}, {2100, 33}})
    expect_same_q_on_one_and_two_threads(gaussian(m, n, static_cast<uint64_t>(m + 3 * n)), m, n, QrMethod::Cholesky);
}

TEST(OrthogonalInit, RankDeficientMatricesFailCholeskyAndAutoFallsBackToHouseholder) {
  const int m = 40, n = 8;
  std::vector<double> a = gaussian(m, n, 5);
  for (int k = 0; k < m; ++k) a[static_cast<size_t>(7) * m + k] = a[static_cast<size_t>(3) * m + k];  // column 7 = column 3
  std::vector<double> cholesky = a;
  test::expect_error([&] { orthonormalise_columns(cholesky, m, n, QrMethod::Cholesky); }, {"not positive definite"});
  std::vector<double> q = a;
  orthonormalise_columns(q, m, n);  // Householder still gives orthonormal columns
  for (int i = 0; i < n; ++i) {
    double norm = 0;
    for (int k = 0; k < m; ++k) norm += q[static_cast<size_t>(i) * m + k] * q[static_cast<size_t>(i) * m + k];
    EXPECT_NEAR(norm, 1.0, 1e-12) << "column " << i;
  }
  std::vector<double> wide(10);
  test::expect_error([&] { orthonormalise_columns(wide, 2, 5); }, {"m >= n"});
}

// Each random tensor draws from streams of its own (seed, name, stretch of
// 2^20 values): the values do not depend on the thread count, on which
// other tensors a store holds, or on their order; they change with the seed
// and differ between tensors. Shapes large enough for two stretches and the
// Cholesky path (ffn.key and head [2100, 512]).
TEST(OrthogonalInit, EachTensorsInitDependsOnTheSeedAndItsNameAlone) {
  const Rwkv4Shape s{2, 512, 2100, 2100};
  ParameterStore one_thread = declare_rwkv4_parameters(s, DType::F64);
  ParameterStore two_threads = declare_rwkv4_parameters(s, DType::F64);
  const int threads = num_threads();
  set_num_threads(1);
  init_rwkv4_reference(one_thread, s, 9, 0.1);
  set_num_threads(2);
  init_rwkv4_reference(two_threads, s, 9, 0.1);
  set_num_threads(threads);
  for (size_t i = 0; i < one_thread.entries().size(); ++i)
    ASSERT_EQ(one_thread.entries()[i].value.to_vector<double>(), two_threads.entries()[i].value.to_vector<double>())
        << one_thread.entries()[i].name;

  // The last stage alone, its tensors visited in reverse order.
  Rwkv4Partition last = Rwkv4Partition::whole(s);
  last.layer_begin = 1;
  ParameterStore stage = declare_rwkv4_parameters(s, DType::F64, Device::cpu(), last);
  std::reverse(stage.entries().begin(), stage.entries().end());
  init_rwkv4_reference(stage, s, 9, 0.1);
  for (const NamedTensor& e : stage.entries())
    ASSERT_EQ(e.value.to_vector<double>(), one_thread.at(e.name).to_vector<double>()) << e.name;

  ParameterStore other_seed = declare_rwkv4_parameters(s, DType::F64);
  init_rwkv4_reference(other_seed, s, 10, 0.1);
  for (const char* name : {"emb.weight", "head.weight", "blocks.0.ffn.key.weight", "blocks.1.att.value.weight"})
    EXPECT_NE(other_seed.at(name).to_vector<double>(), one_thread.at(name).to_vector<double>()) << name;
  EXPECT_NE(one_thread.at("blocks.0.ffn.key.weight").to_vector<double>(),
            one_thread.at("blocks.1.ffn.key.weight").to_vector<double>());

  // The embedding's two stretches are not one stream continued or repeated.
  const std::vector<double> emb = one_thread.at("emb.weight").to_vector<double>();
  const size_t stretch = size_t{1} << 20;
  ASSERT_GT(emb.size(), stretch + 8);
  EXPECT_NE(std::vector<double>(emb.begin(), emb.begin() + 8),
            std::vector<double>(emb.begin() + stretch, emb.begin() + stretch + 8));
}

TEST(OrthogonalInit, RandomDrawsPerTensor) {
  EXPECT_EQ(reference_init_draws("emb.weight", {10, 4}), 40);
  EXPECT_EQ(reference_init_draws("head.weight", {10, 4}), 40);
  EXPECT_EQ(reference_init_draws("blocks.3.ffn.key.weight", {16, 4}), 64);
  EXPECT_EQ(reference_init_draws("blocks.0.att.value.weight", {4, 4}), 16);
  for (const char* fixed : {"blocks.0.att.key.weight", "blocks.1.ffn.value.weight", "blocks.0.att.time_decay",
                            "ln_out.weight", "blocks.0.ln0.bias"})
    EXPECT_EQ(reference_init_draws(fixed, {4, 4}), 0) << fixed;
}

}  // namespace
}  // namespace rwkv
