#include "kernels/layernorm.h"

#include "test_util.h"

namespace rwkv {
namespace {

using test::random_tensor;

struct LnOut {
  Tensor y, mean, rstd;
};

LnOut run_forward(const Tensor& x, const Tensor& w, const Tensor& b) {
  const int64_t N = x.dim(0);
  LnOut o{Tensor::empty(x.shape(), x.dtype()), Tensor::empty({N}, w.dtype()), Tensor::empty({N}, w.dtype())};
  layernorm_forward(x, w, b, o.y, o.mean, o.rstd);
  return o;
}

TEST(LayerNorm, ForwardNormalisesRows) {
  Tensor x = random_tensor({5, 40}, DType::F64, 1, -3, 7);
  Tensor w = Tensor::from_vector<double>(std::vector<double>(40, 1.0), {40}), b = Tensor::zeros({40}, DType::F64);
  LnOut o = run_forward(x, w, b);
  for (int64_t n = 0; n < 5; ++n) {
    double s = 0, s2 = 0;
    for (int64_t c = 0; c < 40; ++c) s += o.y.data<double>()[n * 40 + c];
    for (int64_t c = 0; c < 40; ++c) s2 += o.y.data<double>()[n * 40 + c] * o.y.data<double>()[n * 40 + c];
    EXPECT_NEAR(s / 40, 0.0, 1e-12);
    EXPECT_NEAR(s2 / 40, 1.0, 1e-4);  // eps = 1e-5 shrinks the variance a little
  }
}

TEST(LayerNorm, BackwardMatchesFiniteDifferences) {
  const int64_t N = 3, C = 7;
  Tensor x = random_tensor({N, C}, DType::F64, 2, -2, 2), w = random_tensor({C}, DType::F64, 3, 0.5, 1.5);
  Tensor b = random_tensor({C}, DType::F64, 4), probe = random_tensor({N, C}, DType::F64, 5);
  LnOut o = run_forward(x, w, b);
  Tensor dx = Tensor::zeros({N, C}, DType::F64), dw = Tensor::zeros({C}, DType::F64), db = Tensor::zeros({C}, DType::F64);
  layernorm_backward(x, w, o.mean, o.rstd, probe, dx, dw, db);
  auto loss = [&] { return test::dot(run_forward(x, w, b).y, probe); };
  test::expect_gradient(x, dx, loss, "dL/dx", 1e-6, 1e-8);
  test::expect_gradient(w, dw, loss, "dL/dweight", 1e-6, 1e-8);
  test::expect_gradient(b, db, loss, "dL/dbias", 1e-6, 1e-8);
}

TEST(LayerNorm, BackwardAccumulatesIntoDx) {
  const int64_t N = 2, C = 5;
  Tensor x = random_tensor({N, C}, DType::F64, 6), w = random_tensor({C}, DType::F64, 7), b = random_tensor({C}, DType::F64, 8);
  Tensor probe = random_tensor({N, C}, DType::F64, 9);
  LnOut o = run_forward(x, w, b);
  Tensor dx = Tensor::zeros({N, C}, DType::F64), dw = Tensor::zeros({C}, DType::F64), db = Tensor::zeros({C}, DType::F64);
  layernorm_backward(x, w, o.mean, o.rstd, probe, dx, dw, db);
  Tensor residual = random_tensor({N, C}, DType::F64, 10);
  Tensor dx2 = residual.clone();
  layernorm_backward(x, w, o.mean, o.rstd, probe, dx2, dw, db);
  for (int64_t i = 0; i < N * C; ++i)
    EXPECT_NEAR(dx2.data<double>()[i], residual.data<double>()[i] + dx.data<double>()[i], 1e-14);
}

TEST(LayerNorm, FloatMatchesDouble) {
  const int64_t N = 33, C = 300;
  Tensor x = random_tensor({N, C}, DType::F64, 11, -4, 4), w = random_tensor({C}, DType::F64, 12);
  Tensor b = random_tensor({C}, DType::F64, 13), probe = random_tensor({N, C}, DType::F64, 14);
  auto run = [&](DType dt) {
    Tensor xx = x.to_dtype(dt), ww = w.to_dtype(dt), bb = b.to_dtype(dt);
    LnOut o = run_forward(xx, ww, bb);
    Tensor dx = Tensor::zeros({N, C}, dt), dw = Tensor::zeros({C}, dt), db = Tensor::zeros({C}, dt);
    layernorm_backward(xx, ww, o.mean, o.rstd, probe.to_dtype(dt), dx, dw, db);
    return std::vector<Tensor>{o.y, dx, dw, db};
  };
  auto a = run(DType::F32), e = run(DType::F64);
  const char* names[] = {"y", "dx", "dweight", "dbias"};
  for (int i = 0; i < 4; ++i) test::expect_close(a[i], e[i], 1e-4, 1e-5, names[i]);
}

TEST(LayerNorm, BadArgumentsGiveClearErrors) {
  Tensor x = Tensor::zeros({2, 4}, DType::F32), w = Tensor::zeros({3}, DType::F32), b = Tensor::zeros({4}, DType::F32);
  Tensor y = Tensor::zeros({2, 4}, DType::F32), m = Tensor::zeros({2}, DType::F32), r = Tensor::zeros({2}, DType::F32);
  test::expect_error([&] { layernorm_forward(x, w, b, y, m, r); }, {"layernorm_forward", "weight", "[3]", "[C]"});
}

}  // namespace
}  // namespace rwkv
