// CPU threads used by our loops (OpenMP) and by OpenBLAS. A rank should use
// (cores on its node / ranks on its node) threads so that several ranks on one
// machine do not oversubscribe it. Results never depend on the thread count:
// every reduction in the kernels runs in a fixed order per output element,
// and BLAS products run as fixed tiles on OpenMP threads, OpenBLAS on one
// thread per call (kernels/cpu/gemm_cpu.cpp, trainer/fixed_split_blas.h).
#pragma once

namespace rwkv {

void set_num_threads(int threads);
int num_threads();
int hardware_threads();

// OpenBLAS runs on `threads` threads within this scope (OpenMP is left as
// it is), e.g. 1 around LAPACK calls whose bits depend on the thread count.
class ScopedBlasThreads {
 public:
  explicit ScopedBlasThreads(int threads);
  ~ScopedBlasThreads();
  ScopedBlasThreads(const ScopedBlasThreads&) = delete;
  ScopedBlasThreads& operator=(const ScopedBlasThreads&) = delete;

 private:
  int saved_;
};

}  // namespace rwkv
