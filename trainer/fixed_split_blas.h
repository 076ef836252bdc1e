// Double-precision BLAS products whose bits do not depend on the thread
// count. OpenBLAS's threaded dgemm splits C among its threads, and where a
// thread's share ends off the micro-kernel's tile (e.g. n = 65 on 2 threads)
// the edge kernel sums in another order: the bits move with the thread count.
// Here C is cut into fixed blocks of kFixedSplitColumns columns, each one
// single-threaded dgemm, the blocks spread over the OpenMP threads: every
// element is the same call's sum whatever the thread count.
#pragma once

namespace rwkv {

inline constexpr int kFixedSplitColumns = 64;

// Column-major C [m, n] <- alpha op(A) op(B) + beta C, op(X) = X or X^T as
// trans_a / trans_b are 'N' or 'T' (BLAS dgemm's arguments).
void gemm_fixed_split(char trans_a, char trans_b, int m, int n, int k, double alpha, const double* a, int lda,
                      const double* b, int ldb, double beta, double* c, int ldc);

// The upper triangle of column-major C [n, n] <- A^T A for A [m, n] (dsyrk's
// "U", "T"): block column j of C is A[:, :j1]^T A[:, j0:j1], so the
// diagonal blocks' lower parts are written too; the rest of the strict lower
// triangle is left as it was.
void upper_gram_fixed_split(int m, int n, const double* a, int lda, double* c, int ldc);

// Column-major C [m, n] <- A [m, n] U [n, n] for U upper triangular (dtrmm's
// "R", "U", "N" into another buffer): block column j of C is
// A[:, :j1] U[:j1, j0:j1], so half the flops of a dgemm. U's entries below
// the diagonal must be zero inside the diagonal blocks (they are read there)
// and are not read elsewhere.
void gemm_upper_right_fixed_split(int m, int n, const double* a, int lda, const double* u, int ldu, double* c,
                                  int ldc);

}  // namespace rwkv
