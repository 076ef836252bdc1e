// CPU GEMM: OpenBLAS, row-major. OpenBLAS splits the M/N dimensions across
// its threads and never the K dimension, so each output element's sum runs in
// one fixed order: results do not depend on timing.
#include <cblas.h>

#include "kernels/cpu/cpu_ops.h"

namespace rwkv::cpu {

void matmul(const Tensor& a, bool transpose_a, const Tensor& b, bool transpose_b, Tensor& c, float alpha,
            float beta) {
  const int m = static_cast<int>(c.dim(0));
  const int n = static_cast<int>(c.dim(1));
  const int k = static_cast<int>(transpose_a ? a.dim(0) : a.dim(1));
  const int lda = static_cast<int>(a.dim(1));
  const int ldb = static_cast<int>(b.dim(1));
  const CBLAS_TRANSPOSE ta = transpose_a ? CblasTrans : CblasNoTrans;
  const CBLAS_TRANSPOSE tb = transpose_b ? CblasTrans : CblasNoTrans;
  if (m == 0 || n == 0) return;
  if (a.dtype() == DType::F64) {
    cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a.data<double>(), lda, b.data<double>(), ldb, beta,
                c.data<double>(), n);
  } else {
    cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a.data<float>(), lda, b.data<float>(), ldb, beta,
                c.data<float>(), n);
  }
}

}  // namespace rwkv::cpu
