// cuBLAS GEMM against the CPU GEMM: every transpose combination, alpha/beta,
// f32 and bf16 operands, f32 and bf16 results, odd sizes.
#include "cuda_test_util.h"
#include "kernels/gemm.h"

namespace rwkv {
namespace {

using test::random_tensor;

struct GemmCase {
  DType ab;  // dtype of a and b on the GPU
  DType c;   // dtype of c on the GPU
  test::Tolerance tol;
  const char* name;
};

// The CPU reference sees the operands rounded like the GPU's. bf16 x bf16
// products are exact in fp32, so bf16 operands with an f32 result only differ
// by summation order; bf16 results add one rounding.
const GemmCase kCases[] = {
    {DType::F32, DType::F32, {1e-5, 2e-6}, "f32xf32->f32"},
    {DType::BF16, DType::F32, {1e-4, 1e-5}, "bf16xbf16->f32"},
    {DType::BF16, DType::BF16, test::kBf16, "bf16xbf16->bf16"},
    {DType::F32, DType::BF16, test::kBf16, "f32xf32->bf16"},  // goes through an fp32 temporary
};

TEST(CudaGemm, MatchesCpuForEveryLayoutAndDtype) {
  RWKV_REQUIRE_GPU();
  const int64_t M = 37, N = 53, K = 129;
  uint64_t seed = 1;
  for (const GemmCase& gc : kCases) {
    for (bool ta : {false, true}) {
      for (bool tb : {false, true}) {
        Tensor a = test::round_to(random_tensor(ta ? Shape{K, M} : Shape{M, K}, DType::F32, seed++), gc.ab);
        Tensor b = test::round_to(random_tensor(tb ? Shape{N, K} : Shape{K, N}, DType::F32, seed++), gc.ab);
        Tensor c0 = test::round_to(random_tensor({M, N}, DType::F32, seed++), gc.c);
        const float alpha = 1.5f, beta = 0.5f;

        Tensor expected = c0.clone();
        matmul(a, ta, b, tb, expected, alpha, beta);

        Tensor ga = test::to_gpu(a, gc.ab), gb = test::to_gpu(b, gc.ab), gcc = test::to_gpu(c0, gc.c);
        matmul(ga, ta, gb, tb, gcc, alpha, beta);
        test::expect_near(test::to_host_f32(gcc), expected, gc.tol,
                          std::string(gc.name) + (ta ? " a^T" : " a") + (tb ? " b^T" : " b"));
      }
    }
  }
}

TEST(CudaGemm, BetaZeroIgnoresGarbageInC) {
  RWKV_REQUIRE_GPU();
  Tensor a = random_tensor({8, 16}, DType::F32, 1), b = random_tensor({16, 24}, DType::F32, 2);
  Tensor expected = Tensor::zeros({8, 24}, DType::F32);
  matmul(a, false, b, false, expected, 1.0f, 0.0f);
  std::vector<float> nans(8 * 24, std::nanf(""));
  Tensor gc = Tensor::from_vector(nans, {8, 24}).to(Device::cuda());
  Tensor ga = a.to(Device::cuda()), gb = b.to(Device::cuda());
  matmul(ga, false, gb, false, gc, 1.0f, 0.0f);
  test::expect_near(test::to_host_f32(gc), expected, {1e-5, 1e-6}, "beta = 0 over NaN");
}

TEST(CudaGemm, EmptyInnerDimensionScalesC) {
  RWKV_REQUIRE_GPU();
  Tensor c0 = random_tensor({5, 7}, DType::F32, 3);
  Tensor a = Tensor::empty({5, 0}, DType::F32, Device::cuda()), b = Tensor::empty({0, 7}, DType::F32, Device::cuda());
  Tensor gc = c0.to(Device::cuda());
  matmul(a, false, b, false, gc, 1.0f, 0.25f);
  Tensor expected = c0.clone();
  float* e = expected.data<float>();
  for (int64_t i = 0; i < expected.numel(); ++i) e[i] *= 0.25f;
  test::expect_near(test::to_host_f32(gc), expected, {1e-7, 0.0}, "K = 0, beta = 0.25");
}

TEST(CudaGemm, LinearBackwardAccumulatesWeightGradient) {
  RWKV_REQUIRE_GPU();
  const int64_t rows = 70, in = 48, out = 80;
  for (DType dt : {DType::F32, DType::BF16}) {
    Tensor x = test::round_to(random_tensor({rows, in}, DType::F32, 10), dt);
    Tensor w = test::round_to(random_tensor({out, in}, DType::F32, 11), dt);
    Tensor dy = test::round_to(random_tensor({rows, out}, DType::F32, 12), dt);
    Tensor dx0 = test::round_to(random_tensor({rows, in}, DType::F32, 13), dt);
    Tensor dw0 = test::round_to(random_tensor({out, in}, DType::F32, 14), dt);
    Tensor dx = dx0.clone(), dw = dw0.clone();
    linear_backward(x, w, dy, dx, dw, /*accumulate_dx=*/true);
    Tensor gx = test::to_gpu(x, dt), gw = test::to_gpu(w, dt), gdy = test::to_gpu(dy, dt);
    Tensor gdx = test::to_gpu(dx0, dt), gdw = test::to_gpu(dw0, dt);
    linear_backward(gx, gw, gdy, gdx, gdw, true);
    const test::Tolerance tol = dt == DType::F32 ? test::Tolerance{1e-5, 2e-6} : test::kBf16;
    test::expect_near(test::to_host_f32(gdx), dx, tol, std::string("dx ") + test::dtype_label(dt));
    test::expect_near(test::to_host_f32(gdw), dw, tol, std::string("dweight ") + test::dtype_label(dt));
  }
}

}  // namespace
}  // namespace rwkv
