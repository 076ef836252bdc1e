// The orthogonal factor of a QR, for the reference init's orthogonal
// matrices (torch.nn.init.orthogonal_: the QR of a Gaussian matrix, Q's
// column signs fixed so that R's diagonal is positive, which makes Q unique).
#pragma once

#include <vector>

namespace rwkv {

enum class QrMethod {
  Auto,         // Cholesky for tall matrices (m >= kCholeskyQrRatio n), else Householder
  Householder,  // blocked Householder with dgemm trailing updates (threaded), 4 m n^2 - 4 n^3 / 3 flops
  LapackHouseholder,  // LAPACK dgeqrf + dorgqr on one thread: the same Q, for reference
  Cholesky,     // A^T A = R^T R, Q = A R^-1: 3 m n^2 flops of syrk + gemm; only for well-conditioned A
};

// Tall enough that a Gaussian matrix is well conditioned for Cholesky QR:
// cond(A) ~ (sqrt(m) + sqrt(n)) / (sqrt(m) - sqrt(n)) = 3 at m = 4n, so Q
// loses orthogonality by ~cond(A)^2 eps = 1e-15.
inline constexpr int kCholeskyQrRatio = 4;

// a: column-major [m, n] with m >= n and full rank, replaced by Q of a = QR
// with R's diagonal positive (orthonormal columns). Auto falls back to
// Householder when the Cholesky factorisation fails; Cholesky alone throws.
// The result does not depend on the thread count: the threaded products are
// fixed-split (trainer/fixed_split_blas.h) and the LAPACK steps run on one
// thread.
void orthonormalise_columns(std::vector<double>& a, int m, int n, QrMethod method = QrMethod::Auto);

}  // namespace rwkv
