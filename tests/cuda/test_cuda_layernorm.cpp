// LayerNorm CUDA kernels against the CPU kernels: forward (y, mean, rstd),
// backward with its accumulation semantics (dx, dweight, dbias all +=), f32
// and bf16 activations, determinism of the parameter-gradient reduction.
#include "cuda_test_util.h"
#include "kernels/layernorm.h"

namespace rwkv {
namespace {

using test::random_tensor;

class CudaLayerNorm : public ::testing::TestWithParam<DType> {};

TEST_P(CudaLayerNorm, ForwardMatchesCpu) {
  RWKV_REQUIRE_GPU();
  const DType dt = GetParam();
  for (auto [N, C] : {std::pair<int64_t, int64_t>{1, 1}, {67, 300}, {1000, 768}, {5, 4096}}) {
    // An offset mean, as in the residual stream, exercises the two-pass variance.
    Tensor x = test::round_to(random_tensor({N, C}, DType::F32, 1, 2.0, 5.0), dt);
    Tensor weight = random_tensor({C}, DType::F32, 2, 0.5, 1.5), bias = random_tensor({C}, DType::F32, 3);
    Tensor y = Tensor::empty({N, C}, DType::F32), mean = Tensor::empty({N}, DType::F32),
           rstd = Tensor::empty({N}, DType::F32);
    layernorm_forward(x, weight, bias, y, mean, rstd);

    const Device gpu = Device::cuda();
    Tensor gy = Tensor::empty({N, C}, dt, gpu), gmean = Tensor::empty({N}, DType::F32, gpu),
           grstd = Tensor::empty({N}, DType::F32, gpu);
    layernorm_forward(test::to_gpu(x, dt), weight.to(gpu), bias.to(gpu), gy, gmean, grstd);
    const std::string at = " N=" + std::to_string(N) + " C=" + std::to_string(C);
    test::expect_near(test::to_host_f32(gy), y, dt == DType::F32 ? test::Tolerance{1e-5, 1e-5} : test::kBf16,
                      "y" + at);
    test::expect_near(gmean.to(Device::cpu()), mean, {1e-5, 1e-6}, "mean" + at);
    // rstd of a C = 1 row is 1/sqrt(eps): large but well defined.
    test::expect_near(grstd.to(Device::cpu()), rstd, {1e-4, 1e-6}, "rstd" + at);
  }
}

TEST_P(CudaLayerNorm, BackwardAccumulatesLikeCpu) {
  RWKV_REQUIRE_GPU();
  const DType dt = GetParam();
  // N = 5000 rows: 79 chunks of 64 rows in the column reduction; C = 300: a partial channel block.
  for (auto [N, C] : {std::pair<int64_t, int64_t>{3, 40}, {5000, 300}}) {
    Tensor x = test::round_to(random_tensor({N, C}, DType::F32, 11, -2.0, 3.0), dt);
    Tensor weight = random_tensor({C}, DType::F32, 12, 0.5, 1.5), bias = random_tensor({C}, DType::F32, 13);
    Tensor dy = test::round_to(random_tensor({N, C}, DType::F32, 14), dt);
    // Non-zero starting gradients: all three outputs accumulate.
    Tensor dx0 = test::round_to(random_tensor({N, C}, DType::F32, 15), dt);
    Tensor dw0 = random_tensor({C}, DType::F32, 16), db0 = random_tensor({C}, DType::F32, 17);

    Tensor y = Tensor::empty({N, C}, DType::F32), mean = Tensor::empty({N}, DType::F32),
           rstd = Tensor::empty({N}, DType::F32);
    layernorm_forward(x, weight, bias, y, mean, rstd);
    Tensor dx = dx0.clone(), dw = dw0.clone(), db = db0.clone();
    layernorm_backward(x, weight, mean, rstd, dy, dx, dw, db);

    const Device gpu = Device::cuda();
    // The GPU uses the CPU's saved statistics, so only the backward is compared.
    Tensor gdx = test::to_gpu(dx0, dt), gdw = dw0.to(gpu), gdb = db0.to(gpu);
    layernorm_backward(test::to_gpu(x, dt), weight.to(gpu), mean.to(gpu), rstd.to(gpu), test::to_gpu(dy, dt), gdx,
                       gdw, gdb);
    const std::string at = " N=" + std::to_string(N);
    test::expect_near(test::to_host_f32(gdx), dx, dt == DType::F32 ? test::Tolerance{1e-5, 1e-5} : test::kBf16,
                      "dx" + at);
    // Sums over N rows in another order: relative to the size of the terms.
    test::expect_near(gdw.to(Device::cpu()), dw, {1e-5, 1e-5}, "dweight" + at);
    test::expect_near(gdb.to(Device::cpu()), db, {1e-5, 1e-5}, "dbias" + at);
  }
}

TEST_P(CudaLayerNorm, ParameterGradientsAreDeterministic) {
  RWKV_REQUIRE_GPU();
  const DType dt = GetParam();
  const int64_t N = 20000, C = 256;
  const Device gpu = Device::cuda();
  Tensor x = test::to_gpu(random_tensor({N, C}, DType::F32, 21), dt);
  Tensor dy = test::to_gpu(random_tensor({N, C}, DType::F32, 22), dt);
  Tensor weight = random_tensor({C}, DType::F32, 23).to(gpu), bias = random_tensor({C}, DType::F32, 24).to(gpu);
  Tensor y = Tensor::empty({N, C}, dt, gpu), mean = Tensor::empty({N}, DType::F32, gpu),
         rstd = Tensor::empty({N}, DType::F32, gpu);
  layernorm_forward(x, weight, bias, y, mean, rstd);
  Tensor results[2][3];
  for (auto& r : results) {
    r[0] = Tensor::zeros({N, C}, dt, gpu);
    r[1] = Tensor::zeros({C}, DType::F32, gpu);
    r[2] = Tensor::zeros({C}, DType::F32, gpu);
    layernorm_backward(x, weight, mean, rstd, dy, r[0], r[1], r[2]);
  }
  test::expect_bitwise_equal(results[0][0], results[1][0], "dx");
  test::expect_bitwise_equal(results[0][1], results[1][1], "dweight");
  test::expect_bitwise_equal(results[0][2], results[1][2], "dbias");
}

INSTANTIATE_TEST_SUITE_P(Dtypes, CudaLayerNorm, ::testing::Values(DType::F32, DType::BF16), test::DTypeName());

}  // namespace
}  // namespace rwkv
