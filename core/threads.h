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

// body(block) for block in [0, blocks), the blocks spread over the OpenMP
// threads (dynamic: blocks may differ in cost), OpenBLAS on one thread per
// call: the way every BLAS product here is threaded (kernels/cpu/gemm_cpu.cpp,
// trainer/fixed_split_blas.h), so that which blocks there are, and so every
// element's sum, depends on the shape alone and never on the thread count.
template <typename Body>
void for_each_blas_block(int blocks, const Body& body) {
  const ScopedBlasThreads one_thread_per_call(1);
#pragma omp parallel for schedule(dynamic, 1)
  for (int block = 0; block < blocks; ++block) body(block);
}

}  // namespace rwkv
