// WKV-4 CUDA kernels against the CPU kernels: forward (fresh and with a carried
// state), backward for T up to 1024, extreme |k|, f32 and bf16 storage, and
// run-to-run determinism of the batch-summed parameter gradients.
#include "cuda_test_util.h"
#include "kernels/wkv4.h"

namespace rwkv {
namespace {

using test::random_tensor;

struct Inputs {
  Tensor decay, first, k, v;  // f32 CPU: [C], [C], [B, T, C], [B, T, C]
};

// k and v are rounded to `dtype` so the CPU sees what the GPU stores.
Inputs make_inputs(int64_t B, int64_t T, int64_t C, DType dtype, uint64_t seed, double k_range = 2.0) {
  return {random_tensor({C}, DType::F32, seed, -5.0, 1.0), random_tensor({C}, DType::F32, seed + 1, -1.0, 1.0),
          test::round_to(random_tensor({B, T, C}, DType::F32, seed + 2, -k_range, k_range), dtype),
          test::round_to(random_tensor({B, T, C}, DType::F32, seed + 3, -1.0, 1.0), dtype)};
}

struct Grads {
  Tensor g_decay, g_first, gk, gv;
};

// Accumulating parameter gradients start from these values (checks +=).
Tensor initial_param_grad(int64_t C, uint64_t seed) { return random_tensor({C}, DType::F32, seed, -0.5, 0.5); }

Grads cpu_backward(const Inputs& in, const Tensor& gy) {
  const int64_t C = in.k.dim(2);
  Grads g{initial_param_grad(C, 500), initial_param_grad(C, 501), Tensor::empty(in.k.shape(), DType::F32),
          Tensor::empty(in.k.shape(), DType::F32)};
  wkv4_backward(in.decay, in.first, in.k, in.v, gy, g.g_decay, g.g_first, g.gk, g.gv);
  return g;
}

Grads gpu_backward(const Inputs& in, const Tensor& gy, DType dtype) {
  const int64_t C = in.k.dim(2);
  const Device gpu = Device::cuda();
  Grads g{initial_param_grad(C, 500).to(gpu), initial_param_grad(C, 501).to(gpu),
          Tensor::empty(in.k.shape(), dtype, gpu), Tensor::empty(in.k.shape(), dtype, gpu)};
  wkv4_backward(in.decay.to(gpu), in.first.to(gpu), test::to_gpu(in.k, dtype), test::to_gpu(in.v, dtype),
                test::to_gpu(gy, dtype), g.g_decay, g.g_first, g.gk, g.gv);
  return g;
}

class CudaWkv4 : public ::testing::TestWithParam<DType> {};

TEST_P(CudaWkv4, ForwardMatchesCpu) {
  RWKV_REQUIRE_GPU();
  const DType dt = GetParam();
  for (int64_t T : {1, 7, 64, 1024}) {
    Inputs in = make_inputs(2, T, 100, dt, 10 + static_cast<uint64_t>(T));  // C = 100: a partial warp
    Tensor expected = Tensor::empty(in.k.shape(), DType::F32);
    wkv4_forward(in.decay, in.first, in.k, in.v, expected);
    Tensor y = Tensor::empty(in.k.shape(), dt, Device::cuda());
    wkv4_forward(in.decay.to(Device::cuda()), in.first.to(Device::cuda()), test::to_gpu(in.k, dt),
                 test::to_gpu(in.v, dt), y);
    // The GPU's exp is the hardware __expf (error 2 + 1.17|x| ulp), the CPU's a
    // 2-ulp polynomial; long scans accumulate the difference.
    const test::Tolerance tol = dt == DType::BF16 ? test::kBf16 : (T >= 1024 ? test::Tolerance{5e-4, 1e-4}
                                                                              : test::Tolerance{1e-4, 2e-5});
    test::expect_near(test::to_host_f32(y), expected, tol, "wkv4 forward T=" + std::to_string(T));
  }
}

// A sequence run in two chunks with the state carried between them equals the
// CPU run of the whole sequence, and the final states agree.
TEST_P(CudaWkv4, ForwardWithStateMatchesCpu) {
  RWKV_REQUIRE_GPU();
  const DType dt = GetParam();
  const int64_t B = 3, T = 96, C = 40, T1 = 37;
  Inputs in = make_inputs(B, T, C, dt, 77);
  Tensor expected = Tensor::empty({B, T, C}, DType::F32);
  Tensor cpu_state = Tensor::empty({3, B, C}, DType::F32);
  {  // fresh state = (0, 0, -1e38)
    std::vector<float> s(static_cast<size_t>(3 * B * C), 0.0f);
    for (int64_t i = 2 * B * C; i < 3 * B * C; ++i) s[static_cast<size_t>(i)] = -1e38f;
    cpu_state = Tensor::from_vector(s, {3, B, C});
  }
  Tensor gpu_state = cpu_state.to(Device::cuda());
  wkv4_forward(in.decay, in.first, in.k, in.v, expected, cpu_state);

  const Device gpu = Device::cuda();
  Tensor decay = in.decay.to(gpu), first = in.first.to(gpu);
  Tensor y = Tensor::empty({B, T, C}, dt, gpu);
  // Chunks are [B, t, C] slices along T: copy them out on the host.
  auto time_slice = [&](const Tensor& t, int64_t t0, int64_t len) {
    Tensor out = Tensor::empty({B, len, C}, DType::F32);
    const float* src = t.data<float>();
    float* dst = out.data<float>();
    for (int64_t b = 0; b < B; ++b) {
      std::copy(src + (b * T + t0) * C, src + (b * T + t0 + len) * C, dst + b * len * C);
    }
    return out;
  };
  Tensor y_parts[2];
  const int64_t starts[2] = {0, T1}, lens[2] = {T1, T - T1};
  for (int part = 0; part < 2; ++part) {
    Tensor k = test::to_gpu(time_slice(in.k, starts[part], lens[part]), dt);
    Tensor v = test::to_gpu(time_slice(in.v, starts[part], lens[part]), dt);
    y_parts[part] = Tensor::empty({B, lens[part], C}, dt, gpu);
    wkv4_forward(decay, first, k, v, y_parts[part], gpu_state);
  }
  const test::Tolerance tol = dt == DType::BF16 ? test::kBf16 : test::Tolerance{1e-4, 2e-5};
  for (int part = 0; part < 2; ++part) {
    test::expect_near(test::to_host_f32(y_parts[part]), time_slice(expected, starts[part], lens[part]), tol,
                      "chunk " + std::to_string(part));
  }
  // aa, bb are relative to e^pp: compare pp tightly and aa, bb relatively.
  test::expect_near(gpu_state.to(Device::cpu()), cpu_state, {1e-4, 1e-5}, "final state (aa, bb, pp)");
}

TEST_P(CudaWkv4, BackwardMatchesCpu) {
  RWKV_REQUIRE_GPU();
  const DType dt = GetParam();
  for (int64_t T : {1, 17, 256, 1024}) {
    const int64_t B = 2, C = 48;
    Inputs in = make_inputs(B, T, C, dt, 200 + static_cast<uint64_t>(T));
    Tensor gy = test::round_to(random_tensor({B, T, C}, DType::F32, 300 + static_cast<uint64_t>(T)), dt);
    Grads expected = cpu_backward(in, gy);
    Grads got = gpu_backward(in, gy, dt);
    const std::string at = " T=" + std::to_string(T);
    // Gradients are sums over time whose terms cancel: tolerances scale with
    // the largest value, more loosely for long scans.
    const test::Tolerance tol = dt == DType::BF16 ? test::Tolerance{1e-2, 2e-3}
                                                  : (T >= 256 ? test::Tolerance{1e-3, 2e-4}
                                                              : test::Tolerance{2e-4, 5e-5});
    test::expect_near(test::to_host_f32(got.gk), expected.gk, tol, "gk" + at);
    test::expect_near(test::to_host_f32(got.gv), expected.gv, tol, "gv" + at);
    // Parameter gradients are always f32 (sums over B*T terms in fp32).
    const test::Tolerance param_tol = T >= 256 ? test::Tolerance{1e-3, 2e-4} : test::Tolerance{2e-4, 5e-5};
    test::expect_near(got.g_decay.to(Device::cpu()), expected.g_decay, param_tol, "g_time_decay" + at);
    test::expect_near(got.g_first.to(Device::cpu()), expected.g_first, param_tol, "g_time_first" + at);
  }
}

// |k| = 1000: e^k overflows fp32 by far; the shared-exponent state must keep
// every output finite on the GPU exactly as on the CPU.
TEST_P(CudaWkv4, ExtremeKeysStayFinite) {
  RWKV_REQUIRE_GPU();
  const DType dt = GetParam();
  const int64_t B = 2, T = 200, C = 36;
  Inputs in = make_inputs(B, T, C, dt, 900);
  {
    // k = +-1000 (exact in bf16), in a random pattern.
    Tensor signs = random_tensor({B, T, C}, DType::F32, 901);
    float* k = in.k.data<float>();
    const float* s = signs.data<float>();
    for (int64_t i = 0; i < in.k.numel(); ++i) k[i] = s[i] >= 0.0f ? 1000.0f : -1000.0f;
  }
  Tensor gy = test::round_to(random_tensor({B, T, C}, DType::F32, 902), dt);
  Tensor expected_y = Tensor::empty({B, T, C}, DType::F32);
  wkv4_forward(in.decay, in.first, in.k, in.v, expected_y);
  Tensor y = Tensor::empty({B, T, C}, dt, Device::cuda());
  wkv4_forward(in.decay.to(Device::cuda()), in.first.to(Device::cuda()), test::to_gpu(in.k, dt),
               test::to_gpu(in.v, dt), y);
  test::expect_all_finite(y, "y");
  const test::Tolerance tol = dt == DType::BF16 ? test::Tolerance{1e-2, 2e-3} : test::Tolerance{2e-4, 5e-5};
  test::expect_near(test::to_host_f32(y), expected_y, tol, "y with |k| = 1000");

  Grads expected = cpu_backward(in, gy);
  Grads got = gpu_backward(in, gy, dt);
  for (const Tensor* t : {&got.gk, &got.gv, &got.g_decay, &got.g_first}) test::expect_all_finite(*t, "gradient");
  test::expect_near(test::to_host_f32(got.gk), expected.gk, tol, "gk with |k| = 1000");
  test::expect_near(test::to_host_f32(got.gv), expected.gv, tol, "gv with |k| = 1000");
  test::expect_near(got.g_decay.to(Device::cpu()), expected.g_decay, {1e-3, 2e-4}, "g_time_decay with |k| = 1000");
  test::expect_near(got.g_first.to(Device::cpu()), expected.g_first, {1e-3, 2e-4}, "g_time_first with |k| = 1000");
}

TEST_P(CudaWkv4, BackwardIsDeterministic) {
  RWKV_REQUIRE_GPU();
  const DType dt = GetParam();
  Inputs in = make_inputs(5, 128, 64, dt, 1234);
  Tensor gy = test::round_to(random_tensor({5, 128, 64}, DType::F32, 1235), dt);
  Grads a = gpu_backward(in, gy, dt), b = gpu_backward(in, gy, dt);
  test::expect_bitwise_equal(a.g_decay, b.g_decay, "g_time_decay");
  test::expect_bitwise_equal(a.g_first, b.g_first, "g_time_first");
  test::expect_bitwise_equal(a.gk, b.gk, "gk");
  test::expect_bitwise_equal(a.gv, b.gv, "gv");
}

INSTANTIATE_TEST_SUITE_P(Dtypes, CudaWkv4, ::testing::Values(DType::F32, DType::BF16), test::DTypeName());

}  // namespace
}  // namespace rwkv
