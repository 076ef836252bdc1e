#include "kernels/embedding.h"

#include "test_util.h"

namespace rwkv {
namespace {

using test::random_tensor;

TEST(Embedding, ForwardGathersRowsAndBackwardScattersThem) {
  const int64_t V = 6, C = 5;
  Tensor w = random_tensor({V, C}, DType::F64, 1);
  Tensor tokens = Tensor::from_vector<int32_t>({3, 0, 3, 5}, {4});
  Tensor out = Tensor::empty({4, C}, DType::F64);
  embedding_forward(tokens, w, out);
  for (int64_t c = 0; c < C; ++c) EXPECT_EQ(out.data<double>()[2 * C + c], w.data<double>()[3 * C + c]);
  Tensor probe = random_tensor({4, C}, DType::F64, 2);
  Tensor dw = Tensor::zeros({V, C}, DType::F64);
  embedding_backward(tokens, probe, dw);
  auto loss = [&] {
    embedding_forward(tokens, w, out);
    return test::dot(out, probe);
  };
  test::expect_gradient(w, dw, loss, "dL/dweight", 1e-6, 1e-8);
}

TEST(Embedding, FloatMatchesDouble) {
  const int64_t V = 50, C = 33, N = 200;
  std::vector<int32_t> ids;
  for (int64_t i = 0; i < N; ++i) ids.push_back(static_cast<int32_t>((i * 7) % V));
  Tensor tokens = Tensor::from_vector<int32_t>(ids, {N});
  Tensor w = random_tensor({V, C}, DType::F64, 3), d = random_tensor({N, C}, DType::F64, 4);
  auto run = [&](DType dt) {
    Tensor out = Tensor::empty({N, C}, dt), dw = Tensor::zeros({V, C}, dt);
    embedding_forward(tokens, w.to_dtype(dt), out);
    embedding_backward(tokens, d.to_dtype(dt), dw);
    return std::vector<Tensor>{out, dw};
  };
  auto a = run(DType::F32), e = run(DType::F64);
  test::expect_close(a[0], e[0], 1e-7, 1e-7, "embedding forward");
  test::expect_close(a[1], e[1], 1e-5, 1e-6, "embedding backward");
}

TEST(Embedding, OutOfVocabularyTokenIsAClearError) {
  Tensor w = Tensor::zeros({4, 2}, DType::F32), out = Tensor::zeros({2, 2}, DType::F32);
  Tensor tokens = Tensor::from_vector<int32_t>({1, 4}, {2});
  test::expect_error([&] { embedding_forward(tokens, w, out); }, {"token id 4", "position 1", "[0, 4)", "HINT"});
  Tensor tokens64 = Tensor::zeros({2}, DType::I64);
  test::expect_error([&] { embedding_forward(tokens64, w, out); }, {"tokens", "i64", "expected i32"});
}

}  // namespace
}  // namespace rwkv
