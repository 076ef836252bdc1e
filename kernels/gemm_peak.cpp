#include "kernels/gemm_peak.h"

#include <cblas.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "core/threads.h"
#include "core/timer.h"
#include "kernels/gemm.h"
#include "kernels/reduce.h"

namespace rwkv {

double measure_gemm_peak_gflops(Device device, double seconds, int64_t n) {
  const DType dtype = device.is_cuda() ? DType::BF16 : DType::F32;
  // Random operands: a GPU multiplying zeros draws less power and holds
  // higher clocks than on real data, which would overstate the peak (and so
  // understate every MFU divided by it).
  auto random_matrix = [&](uint64_t seed) {
    std::vector<float> v(static_cast<size_t>(n * n));
    uint64_t x = seed;
    for (float& f : v) {
      x = x * 6364136223846793005ULL + 1442695040888963407ULL;  // LCG: plenty for benchmark data
      f = static_cast<float>(static_cast<double>(x >> 40) / static_cast<double>(1 << 24) * 2.0 - 1.0);
    }
    return Tensor::from_vector<float>(v, {n, n}).to_dtype(dtype).to(device);
  };
  Tensor a = random_matrix(1), b = random_matrix(2);
  Tensor c = Tensor::zeros({n, n}, DType::F32, device);
  // On the CPU the peak is OpenBLAS's own: one sgemm on all of its threads,
  // not our matmul, which cuts C into fixed tiles for bits that do not depend
  // on the thread count (kernels/cpu/gemm_cpu.cpp) and runs a few percent
  // below it on large shapes; MFU is then against the library's best.
  const int size = static_cast<int>(n);
  auto multiply = [&] {
    if (device.is_cuda()) {
      matmul(a, false, b, true, c);
    } else {
      const ScopedBlasThreads all_threads(num_threads());
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, size, size, size, 1.0f, a.data<float>(), size,
                  b.data<float>(), size, 0.0f, c.data<float>(), size);
    }
  };
  multiply();  // warm-up: thread pools, library dispatch
  double best = 1e30, total = 0.0;
  int runs = 0;
  while (total < seconds || runs < 2) {
    Timer timer;
    multiply();
    if (device.is_cuda()) sum_of_squares(c);  // forces completion before the clock stops
    const double s = timer.seconds();
    best = std::min(best, s);
    total += s;
    ++runs;
  }
  return 2.0 * static_cast<double>(n) * static_cast<double>(n) * static_cast<double>(n) / best / 1e9;
}

}  // namespace rwkv
