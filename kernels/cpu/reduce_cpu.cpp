// Whole-tensor reductions and in-place helpers on the CPU.
//
// sum_of_squares splits the tensor into fixed chunks of kChunk elements (not
// one chunk per thread), sums each in double, then adds the chunk sums in
// order: the result is the same for any thread count.
#include <type_traits>
#include <vector>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/cpu_types.h"

namespace rwkv::cpu {

namespace {
constexpr int64_t kChunk = 1 << 14;
}

double sum_of_squares(const Tensor& x) {
  const int64_t n = x.numel();
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> partial(static_cast<size_t>(chunks), 0.0);
  visit_float(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* p = x.data<T>();
#pragma omp parallel for schedule(static)
    for (int64_t chunk = 0; chunk < chunks; ++chunk) {
      const int64_t begin = chunk * kChunk, end = std::min(n, begin + kChunk);
      double s = 0.0;
#pragma omp simd reduction(+ : s)
      for (int64_t i = begin; i < end; ++i) s += static_cast<double>(p[i]) * static_cast<double>(p[i]);
      partial[static_cast<size_t>(chunk)] = s;
    }
  });
  double total = 0.0;
  for (double s : partial) total += s;
  return total;
}

std::vector<double> sums_of_squares(const std::vector<Tensor>& xs) {
  std::vector<double> out;
  out.reserve(xs.size());
  for (const Tensor& x : xs) out.push_back(sum_of_squares(x));
  return out;
}

void add_mean_(Tensor& acc, const Tensor& values) {
  const int64_t n = values.numel();
  double sum = 0.0;  // in index order: what a host loop over the values gives
  visit_float(values.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* p = values.data<T>();
    for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(p[i]);
  });
  acc.data<double>()[0] += sum / static_cast<double>(n);
}

void scale_(Tensor& x, float factor) {
  const int64_t n = x.numel();
  visit_float(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    T* p = x.data<T>();
    const T f = static_cast<T>(factor);
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) p[i] *= f;
  });
}

void add_(Tensor& a, const Tensor& b) {
  const int64_t n = a.numel();
  visit_float(a.dtype(), [&](auto zero) {
    using T = decltype(zero);
    T* ap = a.data<T>();
    const T* bp = b.data<T>();
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) ap[i] += bp[i];
  });
}

void cast(const Tensor& src, Tensor& dst) {
  if (src.dtype() == dst.dtype()) {
    dst.copy_from(src);
    return;
  }
  // f32 <-> bf16 (the bf16 copies, the bf16 gradient wire): in one pass,
  // without the temporary to_dtype makes.
  auto convert = [n = src.numel()](const auto* in, auto* out) {
    using Out = std::remove_pointer_t<decltype(out)>;
#pragma omp parallel for schedule(static) if (n > (int64_t{1} << 16))
    for (int64_t i = 0; i < n; ++i) out[i] = store_from_float<Out>(load_as_float(in[i]));
  };
  if (src.dtype() == DType::F32 && dst.dtype() == DType::BF16) return convert(src.data<float>(), dst.data<bf16>());
  if (src.dtype() == DType::BF16 && dst.dtype() == DType::F32) return convert(src.data<bf16>(), dst.data<float>());
  dst.copy_from(src.to_dtype(dst.dtype()));
}

}  // namespace rwkv::cpu
