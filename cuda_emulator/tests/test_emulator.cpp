// The CUDA emulator's own behaviour: what it must do for the backend's tests
// to mean something on the CPU. Kernels here are written as a .cu file would
// write them (they compile against the emulator's device headers).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "cublas_v2.h"
#include "cuda_runtime.h"
#include "stream_order.h"

namespace {

using cuda_emulator::launch;

template <typename T>
T* device_array(const std::vector<T>& host) {
  void* p = nullptr;
  EXPECT_EQ(cudaMalloc(&p, host.size() * sizeof(T)), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(p, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
  return static_cast<T*>(p);
}

template <typename T>
std::vector<T> to_host(const T* device, size_t n) {
  std::vector<T> host(n);
  EXPECT_EQ(cudaMemcpy(host.data(), device, n * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
  return host;
}

// ---- kernels -------------------------------------------------------------------

__global__ void iota_kernel(int n, int* out) {
  for (int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x); i < n;
       i += static_cast<int>(gridDim.x * blockDim.x))
    out[i] = i;
}

// Each block reverses its chunk through shared memory: correct only if the
// barrier holds every thread until all have written.
__global__ void reverse_in_block_kernel(const float* in, float* out) {
  __shared__ float tile[256];
  const unsigned t = threadIdx.x, base = blockIdx.x * blockDim.x;
  tile[t] = in[base + t];
  __syncthreads();
  out[base + t] = tile[blockDim.x - 1 - t];
}

// Butterfly sum over the warp, then lane 0 of each warp writes it.
__global__ void warp_sum_kernel(const float* in, float* out) {
  float x = in[blockIdx.x * blockDim.x + threadIdx.x];
  for (int offset = 16; offset > 0; offset >>= 1) x += __shfl_xor_sync(0xffffffffu, x, offset);
  out[blockIdx.x * blockDim.x + threadIdx.x] = x;
}

__global__ void shuffle_down_kernel(const int* in, int* out) {
  out[threadIdx.x] = __shfl_down_sync(0xffffffffu, in[threadIdx.x], 3);
}

// Half the block waits at a barrier that the other half never reaches.
__global__ void divergent_barrier_kernel(int* out) {
  if (threadIdx.x < 16) {
    __syncthreads();
  } else {
    (void)__shfl_xor_sync(0xffffffffu, 1, 1);
  }
  out[threadIdx.x] = 1;
}

// Threads that return early count as arrived at later barriers.
__global__ void early_exit_kernel(int* out) {
  __shared__ int value;
  if (threadIdx.x >= 64) return;
  if (threadIdx.x == 0) value = 7;
  __syncthreads();
  out[threadIdx.x] = value;
}

__global__ void touch_kernel(float* p) { p[threadIdx.x] = 1.0f; }

// ---- the tests -----------------------------------------------------------------

TEST(CudaEmulator, GridStrideCoversEveryIndexOnce) {
  const int n = 10007;
  int* out = device_array(std::vector<int>(n, -1));
  launch(iota_kernel, dim3(3), dim3(128), 0, nullptr, n, out);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  const std::vector<int> host = to_host(out, n);
  for (int i = 0; i < n; ++i) ASSERT_EQ(host[i], i);
  cudaFree(out);
}

TEST(CudaEmulator, SyncthreadsOrdersSharedMemory) {
  std::vector<float> in(4 * 256);
  for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<float>(i);
  float* d_in = device_array(in);
  float* d_out = device_array(std::vector<float>(in.size(), 0.0f));
  launch(reverse_in_block_kernel, dim3(4), dim3(256), 0, nullptr, d_in, d_out);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  const std::vector<float> out = to_host(d_out, in.size());
  for (int b = 0; b < 4; ++b)
    for (int t = 0; t < 256; ++t) ASSERT_EQ(out[b * 256 + t], in[b * 256 + 255 - t]);
  cudaFree(d_in);
  cudaFree(d_out);
}

TEST(CudaEmulator, WarpShufflesExchangeLaneValues) {
  std::vector<float> in(2 * 64);
  for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<float>(i % 64);
  float* d_in = device_array(in);
  float* d_out = device_array(std::vector<float>(in.size(), 0.0f));
  launch(warp_sum_kernel, dim3(2), dim3(64), 0, nullptr, d_in, d_out);
  const std::vector<float> out = to_host(d_out, in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    const float expected = (i % 64) < 32 ? 496.0f : 1520.0f;  // 0+..+31, 32+..+63
    ASSERT_EQ(out[i], expected) << i;
  }
  std::vector<int> lanes(32);
  for (int i = 0; i < 32; ++i) lanes[i] = 100 + i;
  int* d_lanes = device_array(lanes);
  int* d_shifted = device_array(std::vector<int>(32, 0));
  launch(shuffle_down_kernel, dim3(1), dim3(32), 0, nullptr, d_lanes, d_shifted);
  const std::vector<int> shifted = to_host(d_shifted, 32);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(shifted[i], i + 3 < 32 ? 103 + i : 100 + i);
  cudaFree(d_in);
  cudaFree(d_out);
  cudaFree(d_lanes);
  cudaFree(d_shifted);
}

TEST(CudaEmulator, DivergentBarrierIsReportedNotHung) {
  int* out = device_array(std::vector<int>(32, 0));
  EXPECT_THROW(launch(divergent_barrier_kernel, dim3(1), dim3(32), 0, nullptr, out), std::runtime_error);
  cudaFree(out);
}

TEST(CudaEmulator, ReturnedThreadsCountAsArrived) {
  int* out = device_array(std::vector<int>(128, 0));
  launch(early_exit_kernel, dim3(1), dim3(128), 0, nullptr, out);
  const std::vector<int> host = to_host(out, 128);
  for (int i = 0; i < 64; ++i) EXPECT_EQ(host[i], 7);
  for (int i = 64; i < 128; ++i) EXPECT_EQ(host[i], 0);
  cudaFree(out);
}

TEST(CudaEmulator, KernelArgumentsMustBeDeviceMemoryOfTheCurrentDevice) {
  std::vector<float> host(32, 0.0f);
  launch(touch_kernel, dim3(1), dim3(32), 0, nullptr, host.data());
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);  // read once, then cleared
  EXPECT_EQ(host[0], 0.0f);                    // the kernel did not run

  ASSERT_EQ(cudaSetDevice(1), cudaSuccess);
  void* on_device1 = nullptr;
  ASSERT_EQ(cudaMalloc(&on_device1, 128), cudaSuccess);
  ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
  launch(touch_kernel, dim3(1), dim3(32), 0, nullptr, static_cast<float*>(on_device1));
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);
  cudaFree(on_device1);
}

TEST(CudaEmulator, BadLaunchConfigurationIsALaunchError) {
  float* p = device_array(std::vector<float>(32, 0.0f));
  launch(touch_kernel, dim3(1), dim3(2048), 0, nullptr, p);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  launch(touch_kernel, dim3(0), dim3(32), 0, nullptr, p);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  cudaFree(p);
}

TEST(CudaEmulator, StreamsBelongToTheirDevice) {
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaSetDevice(1), cudaSuccess);
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
  float* p = device_array(std::vector<float>(32, 0.0f));
  launch(touch_kernel, dim3(1), dim3(32), 0, stream, p);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidResourceHandle);
  cudaEvent_t event = nullptr;
  ASSERT_EQ(cudaEventCreateWithFlags(&event, cudaEventDisableTiming), cudaSuccess);  // on device 0
  EXPECT_EQ(cudaEventRecord(event, stream), cudaErrorInvalidResourceHandle);
  cudaGetLastError();
  EXPECT_EQ(cudaStreamWaitEvent(stream, event, 0), cudaSuccess);  // across devices is allowed
  cudaEventDestroy(event);
  cudaStreamDestroy(stream);
  cudaFree(p);
}

TEST(CudaEmulator, CopiesAreCheckedAgainstTheirKind) {
  std::vector<float> host(16, 1.0f);
  float* d = device_array(host);
  EXPECT_EQ(cudaMemcpy(host.data(), d, 17 * sizeof(float), cudaMemcpyDeviceToHost), cudaErrorInvalidValue);
  EXPECT_EQ(cudaMemcpy(d, host.data(), 16 * sizeof(float), cudaMemcpyDeviceToHost), cudaErrorInvalidValue);
  EXPECT_EQ(cudaFree(host.data()), cudaErrorInvalidValue);
  cudaGetLastError();
  EXPECT_EQ(cudaFree(d), cudaSuccess);
  EXPECT_EQ(cudaFree(d), cudaErrorInvalidValue);  // double free
  cudaGetLastError();
}

TEST(CudaEmulator, FreshDeviceMemoryReadsAsNaN) {
  void* p = nullptr;
  ASSERT_EQ(cudaMalloc(&p, 8 * sizeof(float)), cudaSuccess);
  const std::vector<float> host = to_host(static_cast<float*>(p), 8);
  for (float x : host) EXPECT_TRUE(std::isnan(x));
  cudaFree(p);
}

TEST(CudaEmulator, BudgetExhaustionIsOutOfMemory) {
  void* p = nullptr;
  EXPECT_EQ(cudaMalloc(&p, size_t{1} << 50), cudaErrorMemoryAllocation);
  EXPECT_EQ(p, nullptr);
  EXPECT_EQ(cudaGetLastError(), cudaErrorMemoryAllocation);
}

TEST(CudaEmulatorDeathTest, HostDereferenceOfDeviceMemoryFaults) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  float* d = device_array(std::vector<float>(4, 2.0f));
  EXPECT_DEATH({ volatile float x = d[0]; (void)x; }, "host code dereferenced device memory");
  cudaFree(d);
}

TEST(CudaEmulatorDeathTest, KernelOverrunFaults) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  void* p = nullptr;
  ASSERT_EQ(cudaMalloc(&p, 4096), cudaSuccess);
  // 2048 floats of a 1024-float allocation: the guard page stops it.
  EXPECT_DEATH(launch(touch_kernel, dim3(1), dim3(1024), 0, nullptr, static_cast<float*>(p) + 512),
               "out-of-bounds access");
  cudaFree(p);
}

// ---- stream ordering -----------------------------------------------------------

__global__ void read_kernel(const float* p, float* out) { out[threadIdx.x] = p[threadIdx.x]; }

TEST(CudaEmulatorStreams, UnorderedConflictsBetweenStreamsAreFound) {
  cudaStream_t side = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&side, cudaStreamNonBlocking), cudaSuccess);
  cudaEvent_t written = nullptr;
  ASSERT_EQ(cudaEventCreateWithFlags(&written, cudaEventDisableTiming), cudaSuccess);
  float* data = device_array(std::vector<float>(32, 0.0f));
  float* out = device_array(std::vector<float>(32, 0.0f));
  float* out2 = device_array(std::vector<float>(32, 0.0f));
  setenv("RWKV_CUDA_EMULATOR_RACES", "report", 1);  // the races below are made on purpose
  const uint64_t before = cuda_emulator::stream_races_found();

  // Written on the default stream, read on `side` after an event: ordered.
  launch(touch_kernel, dim3(1), dim3(32), 0, nullptr, data);
  ASSERT_EQ(cudaEventRecord(written, nullptr), cudaSuccess);
  ASSERT_EQ(cudaStreamWaitEvent(side, written, 0), cudaSuccess);
  launch(read_kernel, dim3(1), dim3(32), 0, side, static_cast<const float*>(data), out);
  EXPECT_EQ(cuda_emulator::stream_races_found(), before);

  // The host waits for `side`, so the default stream's next write is ordered
  // after its read; `side` then reads again without waiting: a race.
  ASSERT_EQ(cudaStreamSynchronize(side), cudaSuccess);
  launch(touch_kernel, dim3(1), dim3(32), 0, nullptr, data);
  EXPECT_EQ(cuda_emulator::stream_races_found(), before);
  launch(read_kernel, dim3(1), dim3(32), 0, side, static_cast<const float*>(data), out);
  EXPECT_EQ(cuda_emulator::stream_races_found(), before + 1);

  // Two reads never conflict.
  launch(read_kernel, dim3(1), dim3(32), 0, nullptr, static_cast<const float*>(data), out2);
  EXPECT_EQ(cuda_emulator::stream_races_found(), before + 1);

  // A range (a copy) holding a kernel's pointer conflicts with it.
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<float> host(32, 3.0f);
  ASSERT_EQ(cudaMemcpyAsync(data, host.data(), 32 * sizeof(float), cudaMemcpyHostToDevice, side), cudaSuccess);
  EXPECT_EQ(cuda_emulator::stream_races_found(), before + 1);
  launch(read_kernel, dim3(1), dim3(32), 0, nullptr, static_cast<const float*>(data), out2);
  EXPECT_EQ(cuda_emulator::stream_races_found(), before + 2);

  cudaFree(data);
  cudaFree(out);
  cudaFree(out2);
  cudaEventDestroy(written);
  cudaStreamDestroy(side);
}

// ---- cuBLAS ---------------------------------------------------------------------

float bf16_round(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7fffu + ((u >> 16) & 1u);
  u &= 0xffff0000u;
  std::memcpy(&f, &u, 4);
  return f;
}

// Column-major reference of the cuBLAS definition, in double.
std::vector<double> reference_gemm(bool ta, bool tb, int m, int n, int k, float alpha, const std::vector<float>& a,
                                   int lda, const std::vector<float>& b, int ldb, float beta,
                                   const std::vector<float>& c, int ldc) {
  std::vector<double> out(static_cast<size_t>(ldc) * n);
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < m; ++i) {
      double sum = 0;
      for (int p = 0; p < k; ++p) {
        const double av = ta ? a[static_cast<size_t>(i) * lda + p] : a[static_cast<size_t>(p) * lda + i];
        const double bv = tb ? b[static_cast<size_t>(p) * ldb + j] : b[static_cast<size_t>(j) * ldb + p];
        sum += av * bv;
      }
      out[static_cast<size_t>(j) * ldc + i] = alpha * sum + (beta != 0.0f ? beta * c[static_cast<size_t>(j) * ldc + i] : 0.0);
    }
  return out;
}

TEST(CudaEmulatorCublas, GemmExFollowsTheColumnMajorDefinition) {
  cublasHandle_t handle = nullptr;
  ASSERT_EQ(cublasCreate(&handle), CUBLAS_STATUS_SUCCESS);
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  const int m = 5, n = 7, k = 3;
  for (const bool bf16 : {false, true})
    for (const bool ta : {false, true})
      for (const bool tb : {false, true}) {
        const int lda = (ta ? k : m) + 2, ldb = (tb ? n : k) + 1, ldc = m + 3;
        std::vector<float> a(static_cast<size_t>(lda) * (ta ? m : k)), b(static_cast<size_t>(ldb) * (tb ? k : n)),
            c(static_cast<size_t>(ldc) * n);
        for (float& x : a) x = bf16 ? bf16_round(dist(rng)) : dist(rng);
        for (float& x : b) x = bf16 ? bf16_round(dist(rng)) : dist(rng);
        for (float& x : c) x = dist(rng);
        const float alpha = 0.75f, beta = bf16 ? 0.0f : -0.5f;
        std::vector<double> expected = reference_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        void *da = nullptr, *db = nullptr, *dc = nullptr;
        const cudaDataType_t type = bf16 ? CUDA_R_16BF : CUDA_R_32F;
        auto upload = [&](const std::vector<float>& v, void** d) {
          if (!bf16) {
            *d = device_array(v);
            return;
          }
          std::vector<uint16_t> bits(v.size());
          for (size_t i = 0; i < v.size(); ++i) {
            uint32_t u;
            std::memcpy(&u, &v[i], 4);
            bits[i] = static_cast<uint16_t>(u >> 16);
          }
          *d = device_array(bits);
        };
        upload(a, &da);
        upload(b, &db);
        dc = device_array(c);  // C in f32 (bf16 inputs, f32 output: the mixed-precision GEMM)
        ASSERT_EQ(cublasGemmEx(handle, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, m, n, k,
                               &alpha, ta ? nullptr : nullptr, type, 0, nullptr, type, 0, &beta, dc, CUDA_R_32F, ldc,
                               CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                  CUBLAS_STATUS_INVALID_VALUE);  // leading dimensions of 0
        ASSERT_EQ(cublasGemmEx(handle, ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N, m, n, k,
                               &alpha, da, type, lda, db, type, ldb, &beta, dc, CUDA_R_32F, ldc, CUBLAS_COMPUTE_32F,
                               CUBLAS_GEMM_DEFAULT),
                  CUBLAS_STATUS_SUCCESS);
        const std::vector<float> got = to_host(static_cast<float*>(dc), c.size());
        for (int j = 0; j < n; ++j)
          for (int i = 0; i < m; ++i) {
            const size_t at = static_cast<size_t>(j) * ldc + i;
            EXPECT_NEAR(got[at], expected[at], 1e-5) << "bf16 " << bf16 << " ta " << ta << " tb " << tb;
          }
        for (int j = 0; j < n; ++j)
          for (int i = m; i < ldc; ++i) {  // padding rows between columns are untouched
            const size_t at = static_cast<size_t>(j) * ldc + i;
            EXPECT_EQ(got[at], c[at]);
          }
        cudaFree(da);
        cudaFree(db);
        cudaFree(dc);
      }
  cublasDestroy(handle);
}

TEST(CudaEmulatorCublas, OperandsMustBeDeviceMemorySpanningTheirSizes) {
  cublasHandle_t handle = nullptr;
  ASSERT_EQ(cublasCreate(&handle), CUBLAS_STATUS_SUCCESS);
  float* a = device_array(std::vector<float>(6, 1.0f));   // 2 x 3
  float* c = device_array(std::vector<float>(4, 0.0f));   // 2 x 2
  std::vector<float> host_b(6, 1.0f);                     // 3 x 2 on the host
  const float alpha = 1.0f, beta = 0.0f;
  EXPECT_EQ(cublasGemmEx(handle, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 3, &alpha, a, CUDA_R_32F, 2, host_b.data(),
                         CUDA_R_32F, 3, &beta, c, CUDA_R_32F, 2, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
            CUBLAS_STATUS_INVALID_VALUE);
  float* b = device_array(host_b);
  EXPECT_EQ(cublasGemmEx(handle, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 4, &alpha, a, CUDA_R_32F, 2, b, CUDA_R_32F, 4, &beta,
                         c, CUDA_R_32F, 2, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
            CUBLAS_STATUS_INVALID_VALUE);  // k = 4 reads past A and B
  EXPECT_EQ(cublasGemmEx(handle, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 3, &alpha, a, CUDA_R_32F, 2, b, CUDA_R_32F, 3, &beta,
                         c, CUDA_R_32F, 2, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
            CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(to_host(c, 4), std::vector<float>(4, 3.0f));
  ASSERT_EQ(cudaSetDevice(2), cudaSuccess);
  EXPECT_EQ(cublasGemmEx(handle, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 3, &alpha, a, CUDA_R_32F, 2, b, CUDA_R_32F, 3, &beta,
                         c, CUDA_R_32F, 2, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
            CUBLAS_STATUS_INVALID_VALUE);  // the handle is device 0's
  ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
  cudaFree(a);
  cudaFree(b);
  cudaFree(c);
  cublasDestroy(handle);
}

}  // namespace
