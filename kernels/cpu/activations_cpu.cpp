// Gates and activations on the CPU: flat element loops.
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/cpu_types.h"
#include "kernels/elementwise_math.h"

namespace rwkv::cpu {

void sigmoid_gate_forward(const Tensor& r, const Tensor& y, Tensor& out) {
  const int64_t n = r.numel();
  visit_float(r.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* rp = r.data<T>();
    const T* yp = y.data<T>();
    T* op = out.data<T>();
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) op[i] = sigmoid_gate(rp[i], yp[i]);
  });
}

void sigmoid_gate_backward(const Tensor& r, const Tensor& y, const Tensor& dout, Tensor& dr, Tensor& dy) {
  const int64_t n = r.numel();
  visit_float(r.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* rp = r.data<T>();
    const T* yp = y.data<T>();
    const T* dp = dout.data<T>();
    T* drp = dr.data<T>();
    T* dyp = dy.data<T>();
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      T a, b;
      sigmoid_gate_grad(rp[i], yp[i], dp[i], a, b);
      drp[i] = a;
      dyp[i] = b;
    }
  });
}

void squared_relu_forward(const Tensor& x, Tensor& out) {
  const int64_t n = x.numel();
  visit_float(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* xp = x.data<T>();
    T* op = out.data<T>();
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) op[i] = squared_relu(xp[i]);
  });
}

void squared_relu_backward(const Tensor& x, const Tensor& dout, Tensor& dx) {
  const int64_t n = x.numel();
  visit_float(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* xp = x.data<T>();
    const T* dp = dout.data<T>();
    T* dxp = dx.data<T>();
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) dxp[i] = squared_relu_grad(xp[i], dp[i]);
  });
}

}  // namespace rwkv::cpu
