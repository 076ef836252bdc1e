// GEMM on CUDA: cuBLAS with fp32 accumulation (CUBLAS_COMPUTE_32F).
//
//   c[M, N] = alpha * op(a) @ op(b) + beta * c      (all row-major)
//
// cuBLAS is column-major. A row-major [R, S] matrix is the column-major
// [S, R] matrix (its transpose) with leading dimension S, so the row-major
// product is computed as its transpose, which cuBLAS sees as a plain
// column-major product with the operands swapped:
//
//   c^T [N, M] = op(b)^T [N, K] @ op(a)^T [K, M]
//   cublasGemmEx(opB, opA, m = N, n = M, k = K, B, ldb = b.dim(1), A, lda = a.dim(1), C, ldc = N)
//
// where opX = T exactly when transpose_x (the stored matrix read column-major
// already is x^T). Types: a and b both f32 (strict fp32, no TF32, so the CPU
// tests' tolerances hold) or both bf16 (tensor cores), c f32 or bf16. cuBLAS
// has no f32 x f32 -> bf16 GEMM; that combination goes through an fp32
// temporary and a cast (a rare path: mixed precision keeps a/b in bf16).
//
// Determinism: cuBLAS gives bit-identical results run to run on the same GPU
// model, SM count and toolkit for a given problem (one stream, no
// CUBLAS_WORKSPACE tricks); results may differ between GPU models.
// Host-only code: compiled by the host compiler, no nvcc needed.
#include <cublas_v2.h>
#include <library_types.h>

#include <climits>
#include <mutex>
#include <vector>

#include "kernels/cuda/cuda_common.h"
#include "kernels/cuda/cuda_ops.h"

namespace rwkv::cuda {

namespace {

void check_cublas(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS) {
    RWKV_FAIL("cuBLAS error in ", what, ": ", cublasGetStatusName(status), " (", cublasGetStatusString(status), ")");
  }
}

// One handle per device, created on first use by the current device and kept
// for the life of the process (destroying handles from a static destructor
// can run after the CUDA driver has shut down). The mutex makes creation safe
// when several threads (one per rank) start at once; a handle is then used by
// the one thread driving that device.
cublasHandle_t cublas_handle() {
  static std::mutex mutex;
  static std::vector<cublasHandle_t> handles;  // by device index
  int device = 0;
  check_cuda(cudaGetDevice(&device), "cudaGetDevice");
  std::lock_guard<std::mutex> lock(mutex);
  if (handles.size() <= static_cast<size_t>(device)) handles.resize(static_cast<size_t>(device) + 1, nullptr);
  cublasHandle_t& handle = handles[static_cast<size_t>(device)];
  if (handle == nullptr) {
    check_cublas(cublasCreate(&handle), "cublasCreate");
    check_cublas(cublasSetStream(handle, kStream), "cublasSetStream");
    // Default math mode: no TF32 for fp32 inputs (CUBLAS_COMPUTE_32F is exact fp32).
    check_cublas(cublasSetMathMode(handle, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
  }
  return handle;
}

cudaDataType_t cuda_type(const Tensor& t) { return t.dtype() == DType::BF16 ? CUDA_R_16BF : CUDA_R_32F; }

int checked_int(int64_t v, const char* what) {
  RWKV_CHECK(v <= INT_MAX, "matmul: ", what, " = ", v, " exceeds the 32-bit sizes cuBLAS takes");
  return static_cast<int>(v);
}

}  // namespace

void matmul(const Tensor& a, bool transpose_a, const Tensor& b, bool transpose_b, Tensor& c, float alpha,
            float beta) {
  set_device(a);
  const int64_t M = c.dim(0), N = c.dim(1);
  const int64_t K = transpose_a ? a.dim(0) : a.dim(1);
  if (M == 0 || N == 0) return;
  if (K == 0) {
    // Empty sum: c = beta * c. beta == 0 must clear c even where it holds NaN.
    if (beta == 0.0f) {
      c.zero_();
    } else if (beta != 1.0f) {
      cuda::scale_(c, beta);
    }
    return;
  }
  if (a.dtype() == DType::F32 && c.dtype() == DType::BF16) {
    // No f32 x f32 -> bf16 GEMM in cuBLAS: compute in an fp32 temporary.
    Tensor tmp = Tensor::empty(c.shape(), DType::F32, c.device());
    // Qualified calls: the public rwkv:: ops of the same names are found by ADL otherwise.
    if (beta != 0.0f) cuda::cast(c, tmp);
    cuda::matmul(a, transpose_a, b, transpose_b, tmp, alpha, beta);
    cuda::cast(tmp, c);
    return;
  }
  const cublasOperation_t op_a = transpose_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = transpose_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  check_cublas(cublasGemmEx(cublas_handle(), op_b, op_a, checked_int(N, "N"), checked_int(M, "M"), checked_int(K, "K"),
                            &alpha, b.raw_data(), cuda_type(b), checked_int(b.dim(1), "ldb"), a.raw_data(),
                            cuda_type(a), checked_int(a.dim(1), "lda"), &beta, c.raw_data(), cuda_type(c),
                            checked_int(N, "ldc"), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
               "cublasGemmEx");
}

}  // namespace rwkv::cuda
