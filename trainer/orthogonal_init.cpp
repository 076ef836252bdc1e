#include "trainer/orthogonal_init.h"

#include <algorithm>
#include <cstddef>

#include "core/error.h"
#include "core/threads.h"

extern "C" {
// LAPACK (shipped inside OpenBLAS): QR factorisation and forming Q.
void dgeqrf_(const int* m, const int* n, double* a, const int* lda, double* tau, double* work, const int* lwork,
             int* info);
void dorgqr_(const int* m, const int* n, const int* k, double* a, const int* lda, const double* tau, double* work,
             const int* lwork, int* info);
// BLAS / LAPACK for the Cholesky QR: C <- A^T A, its Cholesky factor R, R^-1, C <- A B.
void dsyrk_(const char* uplo, const char* trans, const int* n, const int* k, const double* alpha, const double* a,
            const int* lda, const double* beta, double* c, const int* ldc);
void dpotrf_(const char* uplo, const int* n, double* a, const int* lda, int* info);
void dtrtri_(const char* uplo, const char* diag, const int* n, double* a, const int* lda, int* info);
void dgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k, const double* alpha,
            const double* a, const int* lda, const double* b, const int* ldb, const double* beta, double* c,
            const int* ldc);
}

namespace rwkv {

namespace {

// OpenBLAS's gemm and syrk give the same bits for any thread count (each
// output element is one thread's sum, in one order); its geqrf, orgqr, potrf
// and trtri do not. Those run on one thread (ScopedBlasThreads), so the init
// does not depend on how many threads a rank has.

// Q of a = QR for column-major a [m, n] (m >= n), in place, by Householder
// reflections (LAPACK); diag_sign[j] <- the sign of R[j, j], which turns Q
// into the Q of the QR whose R has a positive diagonal.
void householder_q(std::vector<double>& a, int m, int n, std::vector<double>& diag_sign) {
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

// Cholesky QR: A^T A = R^T R (R upper with a positive diagonal), Q = A R^-1,
// the same Q as the QR with R's diagonal positive. syrk and gemm (2 m n^2
// + m n^2 flops, threaded) carry the work; potrf and trtri (n^3 / 3 each,
// one thread) are small beside them for m >= 4n: 3.1x faster than
// Householder for [8192, 2048] on 2 cores. R^-1 explicitly rather than a
// trsm, whose bits depend on the thread count; its error is cond(R) eps =
// cond(A) eps. A R^-1 goes row block by row block through a small buffer,
// each block written back over the rows it was made from. False, with a
// untouched, when the Cholesky factorisation fails.
bool cholesky_q(std::vector<double>& a, int m, int n) {
  std::vector<double> r(static_cast<size_t>(n) * n, 0.0);  // column-major [n, n], upper triangle: R, then R^-1
  const double one = 1.0, zero = 0.0;
  dsyrk_("U", "T", &n, &m, &one, a.data(), &m, &zero, r.data(), &n);
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
    dgemm_("N", "N", &rows, &n, &n, &one, a.data() + row, &m, r.data(), &n, &zero, q.data(), &rows);
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
  householder_q(a, m, n, diag_sign);
  for (int j = 0; j < n; ++j)
    if (diag_sign[static_cast<size_t>(j)] < 0)
      for (int i = 0; i < m; ++i) a[static_cast<size_t>(j) * m + i] = -a[static_cast<size_t>(j) * m + i];
}

}  // namespace rwkv
