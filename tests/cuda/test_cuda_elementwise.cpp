// The small CUDA kernels against the CPU kernels: token shift, sigmoid gate,
// squared ReLU, embedding, AdamW, and the reductions and casts of reduce.h.
#include <cstdint>
#include <limits>

#include "cuda_test_util.h"
#include "kernels/activations.h"
#include "kernels/adamw.h"
#include "kernels/dropout.h"
#include "kernels/embedding.h"
#include "kernels/reduce.h"
#include "kernels/token_shift.h"

namespace rwkv {
namespace {

using test::random_tensor;

test::Tolerance elementwise_tol(DType dt) { return dt == DType::F32 ? test::kF32Tight : test::kBf16; }

class CudaElementwise : public ::testing::TestWithParam<DType> {};

// ---- token shift ------------------------------------------------------------------

TEST_P(CudaElementwise, TokenShiftForwardMatchesCpu) {
  RWKV_REQUIRE_GPU();
  const DType dt = GetParam();
  const int64_t B = 3, T = 70, C = 45;
  const Device gpu = Device::cuda();
  Tensor x = test::round_to(random_tensor({B, T, C}, DType::F32, 1), dt);
  Tensor state = test::round_to(random_tensor({B, C}, DType::F32, 2), dt);
  for (size_t count = 1; count <= 3; ++count) {
    for (bool with_state : {false, true}) {
      std::vector<Tensor> mixes, outs, gmixes, gouts;
      for (size_t j = 0; j < count; ++j) {
        mixes.push_back(random_tensor({C}, DType::F32, 10 + j, 0.0, 1.0));
        outs.push_back(Tensor::empty({B, T, C}, DType::F32));
        gmixes.push_back(mixes.back().to(gpu));
        gouts.push_back(Tensor::empty({B, T, C}, dt, gpu));
      }
      token_shift_forward(x, mixes, outs, with_state ? state : Tensor());
      token_shift_forward(test::to_gpu(x, dt), gmixes, gouts, with_state ? test::to_gpu(state, dt) : Tensor());
      for (size_t j = 0; j < count; ++j) {
        test::expect_near(test::to_host_f32(gouts[j]), outs[j], elementwise_tol(dt),
                          "out " + std::to_string(j) + " of " + std::to_string(count) +
                              (with_state ? " with state" : ""));
      }
    }
  }
}

TEST_P(CudaElementwise, TokenShiftBackwardMatchesCpu) {
  RWKV_REQUIRE_GPU();
  const DType dt = GetParam();
  const Device gpu = Device::cuda();
  // T = 1 (no neighbours), and 2 * 3000 rows = 94 chunks of the dmix reduction.
  for (auto [B, T] : {std::pair<int64_t, int64_t>{4, 1}, {2, 3000}}) {
    const int64_t C = 45;
    Tensor x = test::round_to(random_tensor({B, T, C}, DType::F32, 21), dt);
    for (size_t count = 1; count <= 3; ++count) {
      std::vector<Tensor> mixes, douts, dmixes, gmixes, gdouts, gdmixes;
      for (size_t j = 0; j < count; ++j) {
        mixes.push_back(random_tensor({C}, DType::F32, 30 + j, 0.0, 1.0));
        douts.push_back(test::round_to(random_tensor({B, T, C}, DType::F32, 40 + j), dt));
        dmixes.push_back(random_tensor({C}, DType::F32, 50 + j));  // accumulated onto
        gmixes.push_back(mixes.back().to(gpu));
        gdouts.push_back(test::to_gpu(douts.back(), dt));
        gdmixes.push_back(dmixes.back().to(gpu));
      }
      Tensor dx = Tensor::empty({B, T, C}, DType::F32);
      token_shift_backward(x, mixes, douts, dx, dmixes);
      Tensor gdx = Tensor::empty({B, T, C}, dt, gpu);
      token_shift_backward(test::to_gpu(x, dt), gmixes, gdouts, gdx, gdmixes);
      const std::string at = " (" + std::to_string(count) + " mixes, T=" + std::to_string(T) + ")";
      test::expect_near(test::to_host_f32(gdx), dx, elementwise_tol(dt), "dx" + at);
      for (size_t j = 0; j < count; ++j) {
        test::expect_near(gdmixes[j].to(Device::cpu()), dmixes[j], {1e-5, 1e-5}, "dmix " + std::to_string(j) + at);
      }
    }
  }
}

TEST_P(CudaElementwise, TokenShiftDmixIsDeterministic) {
  RWKV_REQUIRE_GPU();
  const DType dt = GetParam();
  const Device gpu = Device::cuda();
  const int64_t B = 8, T = 1024, C = 96;
  Tensor x = test::to_gpu(random_tensor({B, T, C}, DType::F32, 61), dt);
  std::vector<Tensor> mixes, douts;
  for (uint64_t j = 0; j < 3; ++j) {
    mixes.push_back(random_tensor({C}, DType::F32, 62 + j, 0.0, 1.0).to(gpu));
    douts.push_back(test::to_gpu(random_tensor({B, T, C}, DType::F32, 70 + j), dt));
  }
  std::vector<Tensor> runs[2];
  for (auto& dm : runs) {
    for (int j = 0; j < 3; ++j) dm.push_back(Tensor::zeros({C}, DType::F32, gpu));
    Tensor dx = Tensor::empty({B, T, C}, dt, gpu);
    token_shift_backward(x, mixes, douts, dx, dm);
  }
  for (size_t j = 0; j < 3; ++j) test::expect_bitwise_equal(runs[0][j], runs[1][j], "dmix " + std::to_string(j));
}

// ---- gates and activations ------------------------------------------------------

TEST_P(CudaElementwise, SigmoidGateMatchesCpu) {
  RWKV_REQUIRE_GPU();
  const DType dt = GetParam();
  const Shape shape{5, 77, 33};
  // Wide r range: both branches of the overflow-safe sigmoid.
  Tensor r = test::round_to(random_tensor(shape, DType::F32, 1, -30.0, 30.0), dt);
  Tensor y = test::round_to(random_tensor(shape, DType::F32, 2), dt);
  Tensor dout = test::round_to(random_tensor(shape, DType::F32, 3), dt);
  Tensor out = Tensor::empty(shape, DType::F32), dr = Tensor::empty(shape, DType::F32),
         dy = Tensor::empty(shape, DType::F32);
  sigmoid_gate_forward(r, y, out);
  sigmoid_gate_backward(r, y, dout, dr, dy);
  const Device gpu = Device::cuda();
  Tensor gr = test::to_gpu(r, dt), gyy = test::to_gpu(y, dt), gdout = test::to_gpu(dout, dt);
  Tensor gout = Tensor::empty(shape, dt, gpu), gdr = Tensor::empty(shape, dt, gpu), gdy = Tensor::empty(shape, dt, gpu);
  sigmoid_gate_forward(gr, gyy, gout);
  sigmoid_gate_backward(gr, gyy, gdout, gdr, gdy);
  test::expect_near(test::to_host_f32(gout), out, elementwise_tol(dt), "out");
  test::expect_near(test::to_host_f32(gdr), dr, elementwise_tol(dt), "dr");
  test::expect_near(test::to_host_f32(gdy), dy, elementwise_tol(dt), "dy");
}

TEST_P(CudaElementwise, SquaredReluMatchesCpuIncludingInPlace) {
  RWKV_REQUIRE_GPU();
  const DType dt = GetParam();
  const Shape shape{1000, 37};
  Tensor x = test::round_to(random_tensor(shape, DType::F32, 4, -3.0, 3.0), dt);
  Tensor dout = test::round_to(random_tensor(shape, DType::F32, 5), dt);
  Tensor out = Tensor::empty(shape, DType::F32), dx = Tensor::empty(shape, DType::F32);
  squared_relu_forward(x, out);
  squared_relu_backward(x, dout, dx);
  const Device gpu = Device::cuda();
  Tensor gx = test::to_gpu(x, dt), gout = Tensor::empty(shape, dt, gpu);
  squared_relu_forward(gx, gout);
  test::expect_near(test::to_host_f32(gout), out, elementwise_tol(dt), "out");
  Tensor g = test::to_gpu(dout, dt);
  squared_relu_backward(gx, g, g);  // dx written over dout
  test::expect_near(test::to_host_f32(g), dx, elementwise_tol(dt), "dx in place");
}

// ---- dropout --------------------------------------------------------------------------

TEST_P(CudaElementwise, DropoutDrawsTheCpusMask) {
  RWKV_REQUIRE_GPU();
  const DType dt = GetParam();
  const Shape shape{5, 33, 70};
  const DropoutKey key{0.2f, 123, 7, 41, 4};
  Tensor x = test::round_to(random_tensor(shape, DType::F32, 6), dt);
  Tensor want = x.to(Device::cpu());
  want.copy_from(x);
  dropout_(want, key);
  Tensor g = test::to_gpu(x, dt);
  dropout_(g, key);
  const Tensor got = test::to_host_f32(g);
  // The same zeros exactly; the survivors x / 0.8 within the dtype's rounding.
  const std::vector<float> w = want.to_vector<float>(), o = got.to_vector<float>();
  for (size_t i = 0; i < w.size(); ++i) ASSERT_EQ(o[i] == 0.0f, w[i] == 0.0f) << "element " << i;
  test::expect_near(got, want, elementwise_tol(dt), "dropout");
}

// ---- embedding ----------------------------------------------------------------------

TEST_P(CudaElementwise, EmbeddingForwardMatchesCpuAndZeroesInvalidRows) {
  RWKV_REQUIRE_GPU();
  const DType dt = GetParam();
  const int64_t V = 300, C = 200, N = 150;
  Tensor weight = test::round_to(random_tensor({V, C}, DType::F32, 1), dt);
  std::vector<int32_t> ids(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n) ids[static_cast<size_t>(n)] = static_cast<int32_t>((n * 37 + 11) % V);
  Tensor out = Tensor::empty({N, C}, DType::F32);
  embedding_forward(Tensor::from_vector(ids, {N}), weight, out);

  // The GPU gets two invalid ids; their rows must come out as zeros.
  std::vector<int32_t> gpu_ids = ids;
  gpu_ids[3] = -1;
  gpu_ids[7] = static_cast<int32_t>(V);
  float* e = out.data<float>();
  for (int64_t n : {3, 7}) std::fill(e + n * C, e + (n + 1) * C, 0.0f);
  const Device gpu = Device::cuda();
  Tensor gout = Tensor::empty({N, C}, dt, gpu);
  embedding_forward(Tensor::from_vector(gpu_ids, {N}).to(gpu), test::to_gpu(weight, dt), gout);
  test::expect_near(test::to_host_f32(gout), out, {0.0, 0.0}, "embedding rows (a copy: exact)");
}

TEST_P(CudaElementwise, EmbeddingBackwardMatchesCpuAndIsDeterministic) {
  RWKV_REQUIRE_GPU();
  const DType dt = GetParam();
  const int64_t V = 50, C = 300, N = 3000;  // many repeats of each token; N spans several token tiles
  Tensor dout = test::round_to(random_tensor({N, C}, DType::F32, 2), dt);
  std::vector<int32_t> ids(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n) ids[static_cast<size_t>(n)] = static_cast<int32_t>((n * n + 3 * n) % V);
  Tensor dweight0 = random_tensor({V, C}, DType::F32, 3);  // accumulated onto

  // An invalid id is skipped by the GPU; on the CPU it would be an error, so
  // the reference gives that row's gradient, as zeros, to token 0 instead.
  std::vector<int32_t> gpu_ids = ids, ref_ids = ids;
  gpu_ids[5] = -7;
  ref_ids[5] = 0;
  Tensor dout_ref = dout.clone();
  std::fill(dout_ref.data<float>() + 5 * C, dout_ref.data<float>() + 6 * C, 0.0f);
  Tensor expected = dweight0.clone();
  embedding_backward(Tensor::from_vector(ref_ids, {N}), dout_ref, expected);

  const Device gpu = Device::cuda();
  Tensor tokens = Tensor::from_vector(gpu_ids, {N}).to(gpu);
  Tensor gdout = test::to_gpu(dout, dt);
  Tensor runs[2];
  for (Tensor& g : runs) {
    g = dweight0.to(gpu);
    embedding_backward(tokens, gdout, g);
  }
  // Summed in token order like the CPU: only the inputs' rounding differs (none in f32).
  test::expect_near(runs[0].to(Device::cpu()), expected, {1e-6, 1e-7}, "dweight");
  test::expect_bitwise_equal(runs[0], runs[1], "dweight");
}

// ---- AdamW ------------------------------------------------------------------------------

TEST(CudaAdamW, MatchesCpuWithAndWithoutParamCopy) {
  RWKV_REQUIRE_GPU();
  const Shape shape{33, 129};
  AdamWConfig config;
  config.lr = 1e-3f;
  config.lr_multiplier = 2.0f;
  config.weight_decay = 0.1f;
  config.decay = true;
  config.step = 3;
  config.grad_scale = 0.5f;
  Tensor p0 = random_tensor(shape, DType::F32, 1), g = random_tensor(shape, DType::F32, 2);
  Tensor m0 = random_tensor(shape, DType::F32, 3, -0.1, 0.1), v0 = random_tensor(shape, DType::F32, 4, 0.0, 0.01);
  Tensor p = p0.clone(), m = m0.clone(), v = v0.clone();
  adamw_update(p, g, m, v, config);

  const Device gpu = Device::cuda();
  for (DType copy_dtype : {DType::F32, DType::BF16, DType::F64 /* = no copy */}) {
    Tensor gp = p0.to(gpu), gm = m0.to(gpu), gv = v0.to(gpu), gg = g.to(gpu);
    Tensor copy = copy_dtype == DType::F64 ? Tensor() : Tensor::zeros(shape, copy_dtype, gpu);
    adamw_update(gp, gg, gm, gv, config, copy);
    const std::string what = copy_dtype == DType::F64 ? " (no copy)" : std::string(" (copy ") +
                                                                            test::dtype_label(copy_dtype) + ")";
    // The same adamw_element on both sides; only sqrt/division rounding and FMA contraction differ.
    test::expect_near(gp.to(Device::cpu()), p, {1e-6, 1e-7}, "param" + what);
    test::expect_near(gm.to(Device::cpu()), m, {1e-6, 1e-7}, "m" + what);
    test::expect_near(gv.to(Device::cpu()), v, {1e-6, 1e-7}, "v" + what);
    if (copy.defined()) {
      // The copy is the updated parameter, stored in its dtype (bf16: rounded to nearest even).
      Tensor host_copy = copy.to(Device::cpu());
      Tensor gp_host = gp.to(Device::cpu());
      Tensor expected_copy = copy_dtype == DType::BF16 ? gp_host.to_dtype(DType::BF16) : gp_host;
      test::expect_bitwise_equal(host_copy, expected_copy, "param_copy" + what);
    }
  }
}

// ---- reductions, scale, add, cast ---------------------------------------------------------

TEST_P(CudaElementwise, SumOfSquaresMatchesCpuAndIsDeterministic) {
  RWKV_REQUIRE_GPU();
  const DType dt = GetParam();
  for (int64_t n : {int64_t{1}, int64_t{1000}, int64_t{4097}, (int64_t{1} << 22) + 17}) {
    Tensor x = test::round_to(random_tensor({n}, DType::F32, static_cast<uint64_t>(n)), dt);
    const double expected = sum_of_squares(x);
    Tensor gx = test::to_gpu(x, dt);
    const double a = sum_of_squares(gx), b = sum_of_squares(gx);
    // Both sum exact double squares of the same floats, in different orders.
    EXPECT_NEAR(a, expected, 1e-12 * expected) << "n=" << n;
    EXPECT_EQ(a, b) << "n=" << n << ": not deterministic";
  }
  EXPECT_EQ(sum_of_squares(Tensor::empty({0}, dt, Device::cuda())), 0.0);
}

// The batched form (one host synchronisation for a whole gradient norm)
// gives each tensor's sum_of_squares to the bit, empty tensors included.
TEST_P(CudaElementwise, SumsOfSquaresEqualsOneCallPerTensor) {
  RWKV_REQUIRE_GPU();
  const DType dt = GetParam();
  std::vector<Tensor> xs;
  for (int64_t n : {int64_t{3}, int64_t{0}, int64_t{4097}, (int64_t{1} << 20) + 5, int64_t{1}})
    xs.push_back(test::to_gpu(test::round_to(random_tensor({std::max<int64_t>(n, 1)}, DType::F32, static_cast<uint64_t>(n + 7)), dt), dt)
                     .slice_rows(0, n));
  const std::vector<double> batched = sums_of_squares(xs);
  ASSERT_EQ(batched.size(), xs.size());
  for (size_t i = 0; i < xs.size(); ++i) EXPECT_EQ(batched[i], sum_of_squares(xs[i])) << "tensor " << i;
}

TEST_P(CudaElementwise, ScaleAndAddMatchCpu) {
  RWKV_REQUIRE_GPU();
  const DType dt = GetParam();
  const Shape shape{123, 45};
  Tensor a = test::round_to(random_tensor(shape, DType::F32, 1), dt);
  Tensor b = test::round_to(random_tensor(shape, DType::F32, 2), dt);
  Tensor expected = a.clone();
  scale_(expected, 0.375f);
  add_(expected, b);
  Tensor ga = test::to_gpu(a, dt), gb = test::to_gpu(b, dt);
  scale_(ga, 0.375f);
  add_(ga, gb);
  test::expect_near(test::to_host_f32(ga), expected, elementwise_tol(dt), "0.375 a + b");
  // a += a
  Tensor twice = b.clone();
  add_(twice, b);
  add_(gb, gb);
  test::expect_near(test::to_host_f32(gb), twice, elementwise_tol(dt), "b + b (aliased)");
}

TEST(CudaCast, RoundsLikeTheCpuAndRoundTrips) {
  RWKV_REQUIRE_GPU();
  // Values with bits below bf16 precision, ties, and specials.
  std::vector<float> values = {0.0f, -0.0f, 1.0f, 1.00390625f /* tie: 1 + 2^-8 */, 1.01171875f /* tie */,
                               3.14159265f, -2.71828f, 1e-40f, 3e38f, std::numeric_limits<float>::infinity(),
                               -std::numeric_limits<float>::infinity(), std::nanf("")};
  Tensor r = random_tensor({1000}, DType::F32, 9, -100.0, 100.0);
  const float* rp = r.data<float>();
  values.insert(values.end(), rp, rp + r.numel());
  const int64_t n = static_cast<int64_t>(values.size());
  Tensor src = Tensor::from_vector(values, {n});
  const Device gpu = Device::cuda();
  Tensor g16 = Tensor::empty({n}, DType::BF16, gpu);
  cast(src.to(gpu), g16);
  test::expect_bitwise_equal(g16, src.to_dtype(DType::BF16), "f32 -> bf16 (round to nearest even)");
  Tensor g32 = Tensor::empty({n}, DType::F32, gpu);
  cast(g16, g32);
  test::expect_bitwise_equal(g32, src.to_dtype(DType::BF16).to_dtype(DType::F32), "bf16 -> f32 (exact)");
  Tensor same = Tensor::empty({n}, DType::F32, gpu);
  cast(src.to(gpu), same);
  test::expect_bitwise_equal(same, src, "f32 -> f32 copy");
}

INSTANTIATE_TEST_SUITE_P(Dtypes, CudaElementwise, ::testing::Values(DType::F32, DType::BF16), test::DTypeName());

}  // namespace
}  // namespace rwkv
