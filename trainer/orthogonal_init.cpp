#include "trainer/orthogonal_init.h"

#include <algorithm>
#include <cstddef>

#include "core/error.h"
#include "core/threads.h"
#include "trainer/fixed_split_blas.h"

extern "C" {
// LAPACK (shipped inside OpenBLAS): QR factorisation and forming Q.
void dgeqrf_(const int* m, const int* n, double* a, const int* lda, double* tau, double* work, const int* lwork,
             int* info);
void dorgqr_(const int* m, const int* n, const int* k, double* a, const int* lda, const double* tau, double* work,
             const int* lwork, int* info);
// Unblocked pieces for the blocked Householder QR: a panel's QR, its block
// reflector's triangular factor T, and a panel's Q from its reflectors.
void dgeqr2_(const int* m, const int* n, double* a, const int* lda, double* tau, double* work, int* info);
void dlarft_(const char* direct, const char* storev, const int* n, const int* k, const double* v, const int* ldv,
             const double* tau, double* t, const int* ldt);
void dorg2r_(const int* m, const int* n, const int* k, double* a, const int* lda, const double* tau, double* work,
             int* info);
// LAPACK for the Cholesky QR: the Cholesky factor R of A^T A, and R^-1.
void dpotrf_(const char* uplo, const int* n, double* a, const int* lda, int* info);
void dtrtri_(const char* uplo, const char* diag, const int* n, double* a, const int* lda, int* info);
}

namespace rwkv {

namespace {

// The init must not depend on how many threads a rank has. The O(m n^2)
// products go through trainer/fixed_split_blas.h (threaded, bits fixed);
// the LAPACK steps, whose bits would move with OpenBLAS's thread count, run
// on one thread (ScopedBlasThreads).

// Q of a = QR for column-major a [m, n] (m >= n), in place, by LAPACK's
// dgeqrf + dorgqr on one thread; diag_sign[j] <- the sign of R[j, j], which
// turns Q into the Q of the QR whose R has a positive diagonal.
void lapack_householder_q(std::vector<double>& a, int m, int n, std::vector<double>& diag_sign) {
  const ScopedBlasThreads one_thread(1);
  std::vector<double> tau(static_cast<size_t>(n));
  int info = 0, lwork = -1;
  double query = 0;
  dgeqrf_(&m, &n, a.data(), &m, tau.data(), &query, &lwork, &info);
  lwork = static_cast<int>(query);
  std::vector<double> work(static_cast<size_t>(std::max(1, lwork)));
  dgeqrf_(&m, &n, a.data(), &m, tau.data(), work.data(), &lwork, &info);
  RWKV_CHECK(info == 0, "orthogonal init: dgeqrf failed (info ", info, ")");
  for (int j = 0; j < n; ++j) diag_sign[static_cast<size_t>(j)] = a[static_cast<size_t>(j) * m + j] < 0 ? -1.0 : 1.0;
  lwork = -1;
  dorgqr_(&m, &n, &n, a.data(), &m, tau.data(), &query, &lwork, &info);
  lwork = static_cast<int>(query);
  work.assign(static_cast<size_t>(std::max(1, lwork)), 0.0);
  dorgqr_(&m, &n, &n, a.data(), &m, tau.data(), work.data(), &lwork, &info);
  RWKV_CHECK(info == 0, "orthogonal init: dorgqr failed (info ", info, ")");
}

// The blocked Householder QR of dgeqrf + dorgqr, with every O(m n^2) step a
// fixed-split dgemm so that it runs threaded and its bits still do not depend
// on the thread count (LAPACK's own trailing updates go through dtrmm and
// dgemm on OpenBLAS's threads, whose bits do). Panels of kPanel columns:
// panel p's reflectors H_i = I - tau_i v_i v_i^T multiply to H = I - V T V^T
// (dlarft: T upper [jb, jb], V unit lower [rows, jb]), and
//   factor:  C <- H^T C = C - V (T^T (V^T C))   for the columns right of p,
//   form Q:  C <- H C   = C - V (T   (V^T C))   panels last to first, then
//            the panel's own columns from its reflectors (dorg2r),
// 4 m n^2 - 4 n^3 / 3 flops in all as in LAPACK; the panels (dgeqr2, dlarft,
// dorg2r: ~6 m n kPanel flops) stay on one thread. Each panel's T is made
// once, in the factor pass, and kept for forming Q (n kPanel doubles).
constexpr int kPanel = 64;

// V of the panel at a [rows, jb] (leading dimension lda) as a dense
// column-major [rows, jb]: the reflectors below the diagonal, 1 on it, 0 above.
void explicit_v(const double* panel, int rows, int jb, int lda, std::vector<double>& v) {
  v.assign(static_cast<size_t>(rows) * jb, 0.0);
  for (int j = 0; j < jb; ++j) {
    double* col = v.data() + static_cast<size_t>(j) * rows;
    col[j] = 1.0;
    std::copy(panel + static_cast<size_t>(j) * lda + j + 1, panel + static_cast<size_t>(j) * lda + rows, col + j + 1);
  }
}

// c [rows, cols] (leading dimension ldc) <- (I - V T V^T) c, or its transpose
// when `transpose`; T upper [jb, jb] (zeros below), w a scratch buffer.
void apply_block_reflector(bool transpose, const std::vector<double>& v, const double* t, int rows, int jb, double* c,
                           int cols, int ldc, std::vector<double>& w) {
  w.resize(2 * static_cast<size_t>(jb) * cols);
  double* vtc = w.data();                                    // [jb, cols]: V^T c
  double* tvtc = w.data() + static_cast<size_t>(jb) * cols;  // [jb, cols]: T (or T^T) V^T c
  gemm_fixed_split('T', 'N', jb, cols, rows, 1.0, v.data(), rows, c, ldc, 0.0, vtc, jb);
  gemm_fixed_split(transpose ? 'T' : 'N', 'N', jb, cols, jb, 1.0, t, jb, vtc, jb, 0.0, tvtc, jb);
  gemm_fixed_split('N', 'N', rows, cols, jb, -1.0, v.data(), rows, tvtc, jb, 1.0, c, ldc);
}

// t [jb, jb] <- T of the panel's block reflector from v and tau: dlarft
// writes the upper triangle, the strict lower one is zeroed here.
void block_reflector_t(const std::vector<double>& v, const double* tau, int rows, int jb, double* t) {
  {
    const ScopedBlasThreads one_thread(1);
    dlarft_("F", "C", &rows, &jb, v.data(), &rows, tau, t, &jb);
  }
  for (int j = 0; j < jb; ++j)
    std::fill(t + static_cast<size_t>(j) * jb + j + 1, t + static_cast<size_t>(j + 1) * jb, 0.0);
}

void blocked_householder_q(std::vector<double>& a, int m, int n, std::vector<double>& diag_sign) {
  std::vector<double> tau(static_cast<size_t>(n)), work(static_cast<size_t>(n)), v, w;
  // Panel p's T at ts + p kPanel^2 ([jb, jb]); the last panel has none.
  std::vector<double> ts(static_cast<size_t>((n + kPanel - 1) / kPanel) * kPanel * kPanel);
  auto panel_t = [&](int j0) { return ts.data() + static_cast<size_t>(j0 / kPanel) * kPanel * kPanel; };
  int info = 0;
  for (int j0 = 0; j0 < n; j0 += kPanel) {
    const int jb = std::min(kPanel, n - j0), rows = m - j0;
    double* panel = a.data() + static_cast<size_t>(j0) * m + j0;
    {
      const ScopedBlasThreads one_thread(1);
      dgeqr2_(&rows, &jb, panel, &m, tau.data() + j0, work.data(), &info);
    }
    RWKV_CHECK(info == 0, "orthogonal init: dgeqr2 failed (info ", info, ")");
    for (int j = j0; j < j0 + jb; ++j)
      diag_sign[static_cast<size_t>(j)] = a[static_cast<size_t>(j) * m + j] < 0 ? -1.0 : 1.0;
    if (j0 + jb == n) break;
    explicit_v(panel, rows, jb, m, v);
    block_reflector_t(v, tau.data() + j0, rows, jb, panel_t(j0));
    apply_block_reflector(true, v, panel_t(j0), rows, jb, panel + static_cast<size_t>(jb) * m, n - j0 - jb, m, w);
  }
  for (int j0 = (n - 1) / kPanel * kPanel; j0 >= 0; j0 -= kPanel) {
    const int jb = std::min(kPanel, n - j0), rows = m - j0;
    double* panel = a.data() + static_cast<size_t>(j0) * m + j0;
    if (j0 + jb < n) {  // the columns right of the panel hold H_(p+1) ... H_last [I; 0] in rows j0.. (zero above)
      explicit_v(panel, rows, jb, m, v);
      apply_block_reflector(false, v, panel_t(j0), rows, jb, panel + static_cast<size_t>(jb) * m, n - j0 - jb, m, w);
    }
    {
      const ScopedBlasThreads one_thread(1);
      dorg2r_(&rows, &jb, &jb, panel, &m, tau.data() + j0, work.data(), &info);
    }
    RWKV_CHECK(info == 0, "orthogonal init: dorg2r failed (info ", info, ")");
    for (int j = j0; j < j0 + jb; ++j) std::fill_n(a.data() + static_cast<size_t>(j) * m, j0, 0.0);
  }
}

// Cholesky QR: A^T A = R^T R (R upper with a positive diagonal), Q = A R^-1,
// the same Q as the QR with R's diagonal positive. The Gram matrix and A R^-1
// (m n^2 flops each: the upper triangle only, R^-1's zeros skipped; threaded,
// fixed split) carry the work; potrf and trtri (n^3 / 3 each, one thread)
// are small beside them for m >= 4n: 3.1x faster than Householder for
// [8192, 2048] on 2 cores. R^-1 explicitly rather than a trsm, whose bits
// depend on the thread count; its error is cond(R) eps = cond(A) eps. A R^-1
// goes row block by row block through a small buffer, each block written
// back over the rows it was made from. False, with a untouched, when the
// Cholesky factorisation fails.
bool cholesky_q(std::vector<double>& a, int m, int n) {
  std::vector<double> r(static_cast<size_t>(n) * n, 0.0);  // column-major [n, n], upper triangle: R, then R^-1
  upper_gram_fixed_split(m, n, a.data(), m, r.data(), n);
  {
    const ScopedBlasThreads one_thread(1);
    int info = 0;
    dpotrf_("U", &n, r.data(), &n, &info);
    if (info != 0) return false;
    dtrtri_("U", "N", &n, r.data(), &n, &info);
    if (info != 0) return false;
  }
  for (int j = 0; j < n; ++j)  // the strict lower triangle is not part of R^-1
    for (int i = j + 1; i < n; ++i) r[static_cast<size_t>(j) * n + i] = 0.0;
  const int block = std::min(m, 1024);
  std::vector<double> q(static_cast<size_t>(block) * n);  // column-major [rows, n]
  for (int row = 0; row < m; row += block) {
    const int rows = std::min(block, m - row);
    gemm_upper_right_fixed_split(rows, n, a.data() + row, m, r.data(), n, q.data(), rows);
    for (int j = 0; j < n; ++j)
      std::copy_n(q.data() + static_cast<size_t>(j) * rows, rows, a.data() + static_cast<size_t>(j) * m + row);
  }
  return true;
}

}  // namespace

void orthonormalise_columns(std::vector<double>& a, int m, int n, QrMethod method) {
  RWKV_CHECK(m >= n && n >= 1 && a.size() == static_cast<size_t>(m) * static_cast<size_t>(n),
             "orthonormalise_columns: expects a column-major [m, n] with m >= n >= 1, got m ", m, ", n ", n, " and ",
             a.size(), " values");
  if (method == QrMethod::Cholesky) {
    RWKV_CHECK(cholesky_q(a, m, n), "orthonormalise_columns: A^T A is not positive definite (a is rank-deficient or "
               "too ill-conditioned for Cholesky QR)");
    return;
  }
  if (method == QrMethod::Auto && m >= kCholeskyQrRatio * n && cholesky_q(a, m, n)) return;
  std::vector<double> diag_sign(static_cast<size_t>(n));
  if (method == QrMethod::LapackHouseholder) {
    lapack_householder_q(a, m, n, diag_sign);
  } else {
    blocked_householder_q(a, m, n, diag_sign);
  }
  for (int j = 0; j < n; ++j)
    if (diag_sign[static_cast<size_t>(j)] < 0)
      for (int i = 0; i < m; ++i) a[static_cast<size_t>(j) * m + i] = -a[static_cast<size_t>(j) * m + i];
}

}  // namespace rwkv
