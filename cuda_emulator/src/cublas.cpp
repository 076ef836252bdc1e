// CUDA emulator: cuBLAS GEMM on the CPU, with the semantics the cuBLAS
// documentation gives cublasGemmEx:
//
//   C[m, n] = alpha * op(A)[m, k] @ op(B)[k, n] + beta * C     (column-major)
//   op(A) = A (lda >= m, A is m x k) or A^T (lda >= k, A is k x m); B alike,
//   ldc >= m; alpha/beta host pointers (the default pointer mode); beta == 0
//   means C is not read (NaN there does not propagate).
//
// So a wrong transpose, leading dimension or operand order in the caller
// gives wrong numbers here as it would on a GPU. Operands are widened to f32,
// multiplied by OpenBLAS in f32 (CUBLAS_COMPUTE_32F), and the result rounded
// to C's type (bf16: nearest even). A handle is bound to the device current
// at cublasCreate, as in cuBLAS; using it with another device current, or
// with operands that are not that device's memory, is reported and fails.
#include <cblas.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "cublas_v2.h"
#include "emulator_internal.h"
#include "stream_order.h"

struct cublasContext {
  int device;
  cudaStream_t stream;
};

namespace {

cublasStatus_t invalid(const std::string& message) {
  cuda_emulator::report("cublasGemmEx: " + message);
  return CUBLAS_STATUS_INVALID_VALUE;
}

size_t element_bytes(cudaDataType_t type) {
  switch (type) {
    case CUDA_R_32F: return 4;
    case CUDA_R_16BF: return 2;
    default: return 0;  // not emulated
  }
}

float bf16_bits_to_float(uint16_t bits) {
  const uint32_t u = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

uint16_t float_to_bf16_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);  // NaN stays NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

// The column-major rows x cols matrix at p (leading dimension ld) as dense f32.
std::vector<float> widen(const void* p, cudaDataType_t type, int rows, int cols, int ld) {
  std::vector<float> out(static_cast<size_t>(rows) * static_cast<size_t>(cols));
  for (int j = 0; j < cols; ++j)
    for (int i = 0; i < rows; ++i) {
      const size_t at = static_cast<size_t>(j) * static_cast<size_t>(ld) + static_cast<size_t>(i);
      out[static_cast<size_t>(j) * static_cast<size_t>(rows) + static_cast<size_t>(i)] =
          type == CUDA_R_32F ? static_cast<const float*>(p)[at]
                             : bf16_bits_to_float(static_cast<const uint16_t*>(p)[at]);
    }
  return out;
}

// Bytes a column-major matrix spans: ld * (cols - 1) + rows elements.
size_t span_bytes(int rows, int cols, int ld, cudaDataType_t type) {
  if (rows == 0 || cols == 0) return 0;
  return (static_cast<size_t>(ld) * static_cast<size_t>(cols - 1) + static_cast<size_t>(rows)) * element_bytes(type);
}

}  // namespace

const char* cublasGetStatusName(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
  }
  return "CUBLAS_STATUS_UNKNOWN";
}

const char* cublasGetStatusString(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "the operation completed successfully";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "the resource allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
    default: return "an error occurred in cuBLAS";
  }
}

cublasStatus_t cublasCreate(cublasHandle_t* handle) {
  if (handle == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  *handle = new cublasContext{cuda_emulator::current_device(), nullptr};
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy(cublasHandle_t handle) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  handle->stream = stream;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t) {
  return handle == nullptr ? CUBLAS_STATUS_NOT_INITIALIZED : CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb, int m, int n,
                            int k, const void* alpha, const void* A, cudaDataType_t Atype, int lda, const void* B,
                            cudaDataType_t Btype, int ldb, const void* beta, void* C, cudaDataType_t Ctype, int ldc,
                            cublasComputeType_t computeType, cublasGemmAlgo_t) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (handle->device != cuda_emulator::current_device()) {
    return invalid("the handle was created on device " + std::to_string(handle->device) + " but device " +
                   std::to_string(cuda_emulator::current_device()) + " is current");
  }
  if (cuda_emulator::check_stream(handle->stream, "cublasGemmEx") != cudaSuccess) return CUBLAS_STATUS_INVALID_VALUE;
  if (computeType != CUBLAS_COMPUTE_32F) {
    cuda_emulator::report("cublasGemmEx: only CUBLAS_COMPUTE_32F is emulated");
    return CUBLAS_STATUS_NOT_SUPPORTED;
  }
  if (element_bytes(Atype) == 0 || element_bytes(Btype) == 0 || element_bytes(Ctype) == 0 || Atype != Btype) {
    cuda_emulator::report("cublasGemmEx: emulated type combinations are A = B in {f32, bf16}, C in {f32, bf16}");
    return CUBLAS_STATUS_NOT_SUPPORTED;
  }
  if ((transa != CUBLAS_OP_N && transa != CUBLAS_OP_T) || (transb != CUBLAS_OP_N && transb != CUBLAS_OP_T)) {
    return invalid("transa/transb must be CUBLAS_OP_N or CUBLAS_OP_T");
  }
  if (m < 0 || n < 0 || k < 0) return invalid("negative m, n or k");
  const int a_rows = transa == CUBLAS_OP_N ? m : k, a_cols = transa == CUBLAS_OP_N ? k : m;
  const int b_rows = transb == CUBLAS_OP_N ? k : n, b_cols = transb == CUBLAS_OP_N ? n : k;
  if (lda < std::max(1, a_rows)) return invalid("lda " + std::to_string(lda) + " < rows of A " + std::to_string(a_rows));
  if (ldb < std::max(1, b_rows)) return invalid("ldb " + std::to_string(ldb) + " < rows of B " + std::to_string(b_rows));
  if (ldc < std::max(1, m)) return invalid("ldc " + std::to_string(ldc) + " < m " + std::to_string(m));
  if (alpha == nullptr || beta == nullptr || cuda_emulator::device_of_range(alpha, 4) >= 0 ||
      cuda_emulator::device_of_range(beta, 4) >= 0) {
    return invalid("alpha and beta must be host pointers (CUBLAS_POINTER_MODE_HOST)");
  }
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
  const int device = handle->device;
  auto check_operand = [&](const void* p, size_t bytes, const char* name) {
    if (bytes == 0 || cuda_emulator::device_of_range(p, bytes) == device) return true;
    cuda_emulator::report(std::string("cublasGemmEx: ") + name + " = " + cuda_emulator::describe_pointer(p) +
                          " does not hold the " + std::to_string(bytes) + " bytes its sizes and leading " +
                          "dimension span on device " + std::to_string(device));
    return false;
  };
  if (!check_operand(A, k == 0 ? 0 : span_bytes(a_rows, a_cols, lda, Atype), "A") ||
      !check_operand(B, k == 0 ? 0 : span_bytes(b_rows, b_cols, ldb, Btype), "B") ||
      !check_operand(C, span_bytes(m, n, ldc, Ctype), "C")) {
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  const float alpha_value = *static_cast<const float*>(alpha);
  const float beta_value = *static_cast<const float*>(beta);

  cuda_emulator::order_operation(handle->stream, "cublasGemmEx",
                                 {{k == 0 ? nullptr : A, span_bytes(a_rows, a_cols, lda, Atype), false},
                                  {k == 0 ? nullptr : B, span_bytes(b_rows, b_cols, ldb, Btype), false},
                                  {C, span_bytes(m, n, ldc, Ctype), true}});
  const cuda_emulator::DeviceAccess access;
  std::vector<float> c(static_cast<size_t>(m) * static_cast<size_t>(n), 0.0f);
  if (beta_value != 0.0f) c = widen(C, Ctype, m, n, ldc);
  if (k > 0) {
    const std::vector<float> a = widen(A, Atype, a_rows, a_cols, lda);
    const std::vector<float> b = widen(B, Btype, b_rows, b_cols, ldb);
    cblas_sgemm(CblasColMajor, transa == CUBLAS_OP_N ? CblasNoTrans : CblasTrans,
                transb == CUBLAS_OP_N ? CblasNoTrans : CblasTrans, m, n, k, alpha_value, a.data(), std::max(1, a_rows),
                b.data(), std::max(1, b_rows), beta_value, c.data(), m);
  } else {
    for (float& x : c) x *= beta_value;
  }
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < m; ++i) {
      const float value = c[static_cast<size_t>(j) * static_cast<size_t>(m) + static_cast<size_t>(i)];
      const size_t at = static_cast<size_t>(j) * static_cast<size_t>(ldc) + static_cast<size_t>(i);
      if (Ctype == CUDA_R_32F) {
        static_cast<float*>(C)[at] = value;
      } else {
        static_cast<uint16_t*>(C)[at] = float_to_bf16_bits(value);
      }
    }
  return CUBLAS_STATUS_SUCCESS;
}
