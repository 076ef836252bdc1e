// Gates and activations on CUDA: element-wise grid-stride loops over tensors
// of any shape, f32 or bf16 storage, fp32 maths from kernels/elementwise_math.h.
// Memory-bound: each kernel reads and writes every element once.
// In-place use (an output that is also an input, e.g. dx = dout) is allowed:
// each element is read before it is written, by the same thread, and no
// pointer is declared __restrict__ (which would let loads go through the
// read-only cache and be reordered across the aliasing stores).
#include "kernels/cuda/cuda_device.cuh"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/elementwise_math.h"

namespace rwkv::cuda {

namespace {

// out = sigmoid(r) * y
template <typename T>
__global__ void sigmoid_gate_forward_kernel(int64_t n, const T* r, const T* y,
                                            T* out) {
  for (int64_t i = grid_start(); i < n; i += grid_stride()) {
    out[i] = store_from_float<T>(sigmoid_gate(load_as_float(r[i]), load_as_float(y[i])));
  }
}

// s = sigmoid(r): dr = dout * y * s (1 - s), dy = dout * s
template <typename T>
__global__ void sigmoid_gate_backward_kernel(int64_t n, const T* r, const T* y,
                                             const T* dout, T* dr, T* dy) {
  for (int64_t i = grid_start(); i < n; i += grid_stride()) {
    float g_r, g_y;
    sigmoid_gate_grad(load_as_float(r[i]), load_as_float(y[i]), load_as_float(dout[i]), g_r, g_y);
    dr[i] = store_from_float<T>(g_r);
    dy[i] = store_from_float<T>(g_y);
  }
}

// out = relu(x)^2
template <typename T>
__global__ void squared_relu_forward_kernel(int64_t n, const T* x, T* out) {
  for (int64_t i = grid_start(); i < n; i += grid_stride()) {
    out[i] = store_from_float<T>(squared_relu(load_as_float(x[i])));
  }
}

// dx = 2 relu(x) dout. dx may be dout (in place): each element is read before
// it is written, by the same thread, so dout/dx carry no.
template <typename T>
__global__ void squared_relu_backward_kernel(int64_t n, const T* x, const T* dout, T* dx) {
  for (int64_t i = grid_start(); i < n; i += grid_stride()) {
    dx[i] = store_from_float<T>(squared_relu_grad(load_as_float(x[i]), load_as_float(dout[i])));
  }
}

}  // namespace

void sigmoid_gate_forward(const Tensor& r, const Tensor& y, Tensor& out) {
  set_device(r);
  const int64_t n = r.numel();
  if (n == 0) return;
  dispatch_float(r, "sigmoid_gate_forward", [&](auto tag) {
    using T = decltype(tag);
    launch_kernel(sigmoid_gate_forward_kernel<T>, grid_u32(elementwise_blocks(n)), kElementwiseThreads, 0, kStream,
        n, r.data<T>(), y.data<T>(), out.data<T>());
  });
  check_launch("sigmoid_gate_forward_kernel");
}

void sigmoid_gate_backward(const Tensor& r, const Tensor& y, const Tensor& dout, Tensor& dr, Tensor& dy) {
  set_device(r);
  const int64_t n = r.numel();
  if (n == 0) return;
  dispatch_float(r, "sigmoid_gate_backward", [&](auto tag) {
    using T = decltype(tag);
    launch_kernel(sigmoid_gate_backward_kernel<T>, grid_u32(elementwise_blocks(n)), kElementwiseThreads, 0, kStream,
        n, r.data<T>(), y.data<T>(), dout.data<T>(), dr.data<T>(), dy.data<T>());
  });
  check_launch("sigmoid_gate_backward_kernel");
}

void squared_relu_forward(const Tensor& x, Tensor& out) {
  set_device(x);
  const int64_t n = x.numel();
  if (n == 0) return;
  dispatch_float(x, "squared_relu_forward", [&](auto tag) {
    using T = decltype(tag);
    launch_kernel(squared_relu_forward_kernel<T>, grid_u32(elementwise_blocks(n)), kElementwiseThreads, 0, kStream,
        n, x.data<T>(), out.data<T>());
  });
  check_launch("squared_relu_forward_kernel");
}

void squared_relu_backward(const Tensor& x, const Tensor& dout, Tensor& dx) {
  set_device(x);
  const int64_t n = x.numel();
  if (n == 0) return;
  dispatch_float(x, "squared_relu_backward", [&](auto tag) {
    using T = decltype(tag);
    launch_kernel(squared_relu_backward_kernel<T>, grid_u32(elementwise_blocks(n)), kElementwiseThreads, 0, kStream,
        n, x.data<T>(), dout.data<T>(), dx.data<T>());
  });
  check_launch("squared_relu_backward_kernel");
}

}  // namespace rwkv::cuda
