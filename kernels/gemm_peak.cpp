#include "kernels/gemm_peak.h"

#include <algorithm>

#include "core/tensor.h"
#include "core/timer.h"
#include "kernels/gemm.h"
#include "kernels/reduce.h"

namespace rwkv {

double measure_gemm_peak_gflops(Device device, double seconds, int64_t n) {
  const DType dtype = device.is_cuda() ? DType::BF16 : DType::F32;
  Tensor a = Tensor::zeros({n, n}, dtype, device), b = Tensor::zeros({n, n}, dtype, device);
  Tensor c = Tensor::zeros({n, n}, DType::F32, device);
  matmul(a, false, b, true, c);  // warm-up: thread pools, library dispatch
  double best = 1e30, total = 0.0;
  int runs = 0;
  while (total < seconds || runs < 2) {
    Timer timer;
    matmul(a, false, b, true, c);
    if (device.is_cuda()) sum_of_squares(c);  // forces completion before the clock stops
    const double s = timer.seconds();
    best = std::min(best, s);
    total += s;
    ++runs;
  }
  return 2.0 * static_cast<double>(n) * static_cast<double>(n) * static_cast<double>(n) / best / 1e9;
}

}  // namespace rwkv
