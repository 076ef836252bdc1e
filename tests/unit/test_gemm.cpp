#include "kernels/gemm.h"

#include <cstring>
#include <vector>


#include "test_util.h"

namespace rwkv {
namespace {

using test::random_tensor;

// c = op(a) op(b) by the triple loop, in double.
Tensor reference_matmul(const Tensor& a, bool ta, const Tensor& b, bool tb) {
  auto av = test::as_doubles(a), bv = test::as_doubles(b);
  const int64_t M = ta ? a.dim(1) : a.dim(0), K = ta ? a.dim(0) : a.dim(1), N = tb ? b.dim(0) : b.dim(1);
  Tensor c = Tensor::zeros({M, N}, DType::F64);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k)
        s += av[static_cast<size_t>(ta ? k * M + i : i * K + k)] * bv[static_cast<size_t>(tb ? j * K + k : k * N + j)];
      c.data<double>()[i * N + j] = s;
    }
  return c;
}

TEST(Gemm, AllTransposesMatchTripleLoop) {
  const int64_t M = 7, K = 5, N = 6;
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      for (DType dt : {DType::F64, DType::F32}) {
        Tensor a = random_tensor(ta ? Shape{K, M} : Shape{M, K}, dt, 1);
        Tensor b = random_tensor(tb ? Shape{N, K} : Shape{K, N}, dt, 2);
        Tensor c0 = random_tensor({M, N}, dt, 3);
        Tensor c = c0.clone();
        matmul(a, ta, b, tb, c, 0.5f, 2.0f);  // c = 0.5 op(a) op(b) + 2 c0
        Tensor expected = reference_matmul(a, ta, b, tb);
        auto c0v = test::as_doubles(c0);
        for (int64_t i = 0; i < M * N; ++i) expected.data<double>()[i] = 0.5 * expected.data<double>()[i] + 2 * c0v[static_cast<size_t>(i)];
        test::expect_close(c, expected, dt == DType::F64 ? 1e-14 : 1e-5, 1e-6, "matmul");
      }
    }
  }
}

// Shapes over several of the fixed tiles of C (kernels/cpu/gemm_cpu.cpp),
// ragged at both edges: each op's result equals the triple loop, and its bits
// are the same on 1, 2 and 3 threads (OpenBLAS's own threaded split of such
// shapes gives different bits on 1 and 2 threads).
TEST(Gemm, TiledResultsMatchTripleLoopAndDoNotDependOnTheThreadCount) {
  const int64_t M = 520, K = 33, N = 1030;
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      for (DType dt : {DType::F64, DType::F32}) {
        Tensor a = random_tensor(ta ? Shape{K, M} : Shape{M, K}, dt, 4);
        Tensor b = random_tensor(tb ? Shape{N, K} : Shape{K, N}, dt, 5);
        const std::vector<Tensor> results = test::on_thread_counts({1, 2, 3}, [&] {
          Tensor c = Tensor::zeros({M, N}, dt);
          matmul(a, ta, b, tb, c);
          return c;
        });
        // f32: each element sums K = 33 products of [-1, 1] values, so the
        // roundings of the running sums (|partial sum| stays below ~4) allow
        // about K 2^-24 4 = 8e-6 absolute, whatever the element's own size.
        // 1e-6 held on a Xeon's OpenBLAS kernel but not on an AMD EPYC's
        // (1.06e-6 at an element of 4.8e-3); a wrong tile is off by O(1).
        test::expect_close(results[0], reference_matmul(a, ta, b, tb), dt == DType::F64 ? 1e-13 : 1e-5,
                           dt == DType::F64 ? 1e-6 : 8e-6, "tiled matmul");
        for (int r : {1, 2}) {
          const Tensor& other = results[static_cast<size_t>(r)];
          ASSERT_EQ(0, std::memcmp(results[0].raw_data(), other.raw_data(), results[0].nbytes()))
              << "ta " << ta << " tb " << tb << " " << dtype_name(dt) << ": bits differ between 1 and " << r + 1
              << " threads";
        }
      }
    }
  }
}

// Linear layer gradients by finite differences: L = sum(y * probe), y = x W^T.
TEST(Gemm, LinearBackwardMatchesFiniteDifferences) {
  Tensor x = random_tensor({4, 3}, DType::F64, 10), w = random_tensor({5, 3}, DType::F64, 11);
  Tensor probe = random_tensor({4, 5}, DType::F64, 12);
  Tensor dx = Tensor::empty({4, 3}, DType::F64), dw = Tensor::zeros({5, 3}, DType::F64);
  linear_backward(x, w, probe, dx, dw);
  auto loss = [&] {
    Tensor y = Tensor::empty({4, 5}, DType::F64);
    linear_forward(x, w, y);
    return test::dot(y, probe);
  };
  test::expect_gradient(x, dx, loss, "dL/dx", 1e-6, 1e-8);
  test::expect_gradient(w, dw, loss, "dL/dW", 1e-6, 1e-8);
  // dW accumulates, dx accumulates only when asked.
  Tensor dx2 = dx.clone(), dw2 = dw.clone();
  linear_backward(x, w, probe, dx2, dw2, /*accumulate_dx=*/true);
  test::expect_close(dx2, [&] { Tensor t = dx.clone(); for (int i = 0; i < 12; ++i) t.data<double>()[i] *= 2; return t; }(), 1e-15, 0, "dx accumulated");
  test::expect_close(dw2, [&] { Tensor t = dw.clone(); for (int i = 0; i < 15; ++i) t.data<double>()[i] *= 2; return t; }(), 1e-15, 0, "dW accumulated");
}

TEST(Gemm, BadShapesGiveClearErrors) {
  Tensor a = Tensor::zeros({2, 3}, DType::F32), b = Tensor::zeros({4, 5}, DType::F32), c = Tensor::zeros({2, 5}, DType::F32);
  test::expect_error([&] { matmul(a, false, b, false, c); }, {"matmul", "inner dimensions differ"});
  Tensor b64 = Tensor::zeros({3, 5}, DType::F64);
  test::expect_error([&] { matmul(a, false, b64, false, c); }, {"matmul", "b", "f64", "expected f32"});
  Tensor c_wrong = Tensor::zeros({5, 2}, DType::F32), b_ok = Tensor::zeros({3, 5}, DType::F32);
  test::expect_error([&] { matmul(a, false, b_ok, false, c_wrong); }, {"c", "[5, 2]", "expected [2, 5]"});
}

}  // namespace
}  // namespace rwkv
