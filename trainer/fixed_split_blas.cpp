#include "trainer/fixed_split_blas.h"

#include <algorithm>
#include <cstddef>

#include "core/error.h"
#include "core/threads.h"

extern "C" void dgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k,
                       const double* alpha, const double* a, const int* lda, const double* b, const int* ldb,
                       const double* beta, double* c, const int* ldc);

namespace rwkv {

namespace {

// body(j0, cols) for each block of kFixedSplitColumns columns of n
// (for_each_blas_block). With `last_first`, the last blocks go first: where
// a block's cost grows with its column, they do not leave one thread
// finishing alone.
template <typename Body>
void for_each_column_block(int n, bool last_first, const Body& body) {
  const int blocks = (n + kFixedSplitColumns - 1) / kFixedSplitColumns;
  for_each_blas_block(blocks, [&](int step) {
    const int j0 = (last_first ? blocks - 1 - step : step) * kFixedSplitColumns;
    body(j0, std::min(kFixedSplitColumns, n - j0));
  });
}

}  // namespace

void gemm_fixed_split(char trans_a, char trans_b, int m, int n, int k, double alpha, const double* a, int lda,
                      const double* b, int ldb, double beta, double* c, int ldc) {
  RWKV_CHECK((trans_a == 'N' || trans_a == 'T') && (trans_b == 'N' || trans_b == 'T'),
             "gemm_fixed_split: trans_a and trans_b must be 'N' or 'T', got '", trans_a, "' and '", trans_b, "'");
  if (m <= 0 || n <= 0) return;
  for_each_column_block(n, false, [&](int j0, int cols) {
    // Columns j0.. of op(B): columns of B, or rows of B when it is transposed.
    const double* b_block = b + (trans_b == 'N' ? static_cast<size_t>(j0) * ldb : static_cast<size_t>(j0));
    dgemm_(&trans_a, &trans_b, &m, &cols, &k, &alpha, a, &lda, b_block, &ldb, &beta,
           c + static_cast<size_t>(j0) * ldc, &ldc);
  });
}

void upper_gram_fixed_split(int m, int n, const double* a, int lda, double* c, int ldc) {
  if (n <= 0) return;
  const double one = 1.0, zero = 0.0;
  // Block column j0 costs 2 m (j0 + cols) cols flops.
  for_each_column_block(n, true, [&](int j0, int cols) {
    const int rows = j0 + cols;
    dgemm_("T", "N", &rows, &cols, &m, &one, a, &lda, a + static_cast<size_t>(j0) * lda, &lda, &zero,
           c + static_cast<size_t>(j0) * ldc, &ldc);
  });
}

void gemm_upper_right_fixed_split(int m, int n, const double* a, int lda, const double* u, int ldu, double* c,
                                  int ldc) {
  if (m <= 0 || n <= 0) return;
  const double one = 1.0, zero = 0.0;
  // Block column j0 sums over j0 + cols columns of A.
  for_each_column_block(n, true, [&](int j0, int cols) {
    const int inner = j0 + cols;
    dgemm_("N", "N", &m, &cols, &inner, &one, a, &lda, u + static_cast<size_t>(j0) * ldu, &ldu, &zero,
           c + static_cast<size_t>(j0) * ldc, &ldc);
  });
}

}  // namespace rwkv
