#include "core/threads.h"

#include <omp.h>

#include <algorithm>
#include <thread>

#include "core/error.h"

extern "C" void openblas_set_num_threads(int num_threads);
extern "C" int openblas_get_num_threads(void);

namespace rwkv {

void set_num_threads(int threads) {
  RWKV_CHECK(threads >= 1, "thread count must be at least 1, got ", threads);
  omp_set_num_threads(threads);
  openblas_set_num_threads(threads);
}

int num_threads() { return omp_get_max_threads(); }

int hardware_threads() { return std::max(1u, std::thread::hardware_concurrency()); }

ScopedBlasThreads::ScopedBlasThreads(int threads) : saved_(openblas_get_num_threads()) {
  RWKV_CHECK(threads >= 1, "thread count must be at least 1, got ", threads);
  openblas_set_num_threads(threads);
}

ScopedBlasThreads::~ScopedBlasThreads() { openblas_set_num_threads(saved_); }

}  // namespace rwkv
