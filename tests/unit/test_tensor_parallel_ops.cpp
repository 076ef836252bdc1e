// The tensor-parallel helper ops: column blocks, and the vocab-parallel
// cross-entropy, split over P "ranks" (with padding), against the plain op.
#include "kernels/tensor_parallel.h"

#include <cmath>

#include "kernels/cross_entropy.h"
#include "kernels/embedding.h"
#include "kernels/reduce.h"
#include "test_util.h"

namespace rwkv {
namespace {

TEST(TensorParallelOps, ColumnBlocksCopyAndAdd) {
  Tensor full = test::random_tensor({5, 12}, DType::F64, 1);
  Tensor block = Tensor::empty({5, 4}, DType::F64);
  copy_columns(full, 4, block);
  for (int64_t n = 0; n < 5; ++n)
    for (int64_t j = 0; j < 4; ++j) EXPECT_EQ(block.data<double>()[n * 4 + j], full.data<double>()[n * 12 + 4 + j]);
  Tensor acc = Tensor::zeros({5, 12}, DType::F64);
  for (int64_t q = 0; q < 3; ++q) {
    copy_columns(full, 4 * q, block);
    add_columns(block, acc, 4 * q);
  }
  EXPECT_EQ(acc.to_vector<double>(), full.to_vector<double>());
  test::expect_error([&] { copy_columns(full, 10, block); }, {"copy_columns", "columns [10, 14)", "12"});
}

// Vocab split in P slices of Vl columns (the last one padded) gives the plain
// cross-entropy's loss and gradient, including L2Wrap at the global first max.
TEST(TensorParallelOps, VocabParallelCrossEntropyMatchesThePlainOne) {
  const int64_t N = 6, V = 10, P = 3, Vl = 4;  // padded vocabulary 12
  Tensor logits = test::random_tensor({N, V}, DType::F64, 2, -3, 3);
  logits.data<double>()[2 * V + 1] = 5.0;  // a tie across slices: the first maximum must win
  logits.data<double>()[2 * V + 6] = 5.0;
  Tensor targets = Tensor::from_vector<int32_t>({0, 9, 4, 5, 8, 3}, {N});
  Tensor losses = Tensor::empty({N}, DType::F64), dlogits = Tensor::empty({N, V}, DType::F64);
  cross_entropy_forward_backward(logits, targets, losses, dlogits, 0.25f, 0.01f);

  Tensor maxes = Tensor::empty({P, N}, DType::F64), sums = Tensor::empty({P, N}, DType::F64);
  Tensor argmaxes = Tensor::empty({P, N}, DType::I32);
  std::vector<Tensor> slices;
  for (int64_t q = 0; q < P; ++q) {
    const int64_t valid = std::min(Vl, V - q * Vl);
    Tensor slice = Tensor::zeros({N, Vl}, DType::F64);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t j = 0; j < valid; ++j) slice.data<double>()[n * Vl + j] = logits.data<double>()[n * V + q * Vl + j];
    for (int64_t n = 0; n < N; ++n)
      for (int64_t j = valid; j < Vl; ++j) slice.data<double>()[n * Vl + j] = 1e9;  // padding must be ignored
    Tensor m = maxes.slice_rows(q, 1).view({N}), s = sums.slice_rows(q, 1).view({N}), a = argmaxes.slice_rows(q, 1).view({N});
    softmax_row_stats(slice, valid, q * Vl, m, s, a);
    slices.push_back(slice);
  }
  Tensor m = Tensor::empty({N}, DType::F64), s = Tensor::empty({N}, DType::F64), a = Tensor::empty({N}, DType::I32);
  merge_softmax_stats(maxes, sums, argmaxes, m, s, a);
  EXPECT_EQ(a.data<int32_t>()[2], 1);
  std::vector<double> target_logit(N, 0.0);
  for (int64_t q = 0; q < P; ++q) {
    const int64_t valid = std::min(Vl, V - q * Vl);
    Tensor tl = Tensor::empty({N}, DType::F64), grad = slices[static_cast<size_t>(q)];  // in place over the logits
    vocab_parallel_ce_backward(slices[static_cast<size_t>(q)], valid, q * Vl, targets, m, s, a, tl, grad, 0.25f, 0.01f);
    for (int64_t n = 0; n < N; ++n) {
      target_logit[static_cast<size_t>(n)] += tl.data<double>()[n];
      for (int64_t j = 0; j < Vl; ++j) {
        const double g = grad.data<double>()[n * Vl + j];
        if (j < valid) {
          EXPECT_NEAR(g, dlogits.data<double>()[n * V + q * Vl + j], 1e-15) << n << " " << q * Vl + j;
        } else {
          EXPECT_EQ(g, 0.0);  // padding gets no gradient
        }
      }
    }
  }
  for (int64_t n = 0; n < N; ++n) {
    const double loss = m.data<double>()[n] + std::log(s.data<double>()[n]) - target_logit[static_cast<size_t>(n)];
    EXPECT_NEAR(loss, losses.data<double>()[n], 1e-13);
  }
}

// The loss from the merged statistics, on the statistics' device: the
// formula in double, rounded once to the losses' dtype; and the mean added
// to a double accumulator in index order (the bits of a host loop).
TEST(TensorParallelOps, LossesFromStatsAndTheirMean) {
  for (DType dt : {DType::F32, DType::F64}) {
    const Tensor m = test::random_tensor({37}, dt, 1, -3.0, 3.0), s = test::random_tensor({37}, dt, 2, 0.5, 40.0);
    const Tensor t = test::random_tensor({37}, dt, 3, -5.0, 2.0);
    Tensor losses = Tensor::zeros({37}, dt);
    ce_losses_from_stats(m, s, t, losses);
    const Tensor md = m.to_dtype(DType::F64), sd = s.to_dtype(DType::F64), td = t.to_dtype(DType::F64);
    std::vector<double> expected(37);
    for (int64_t i = 0; i < 37; ++i)
      expected[static_cast<size_t>(i)] = md.data<double>()[i] + std::log(sd.data<double>()[i]) - td.data<double>()[i];
    EXPECT_EQ(losses.to_dtype(DType::F64).to_vector<double>(),
              Tensor::from_vector<double>(expected, {37}).to_dtype(dt).to_dtype(DType::F64).to_vector<double>());
    Tensor acc = Tensor::from_vector<double>({0.25}, {1});
    add_mean_(acc, losses);
    double sum = 0.0;
    for (double x : losses.to_dtype(DType::F64).to_vector<double>()) sum += x;
    EXPECT_EQ(acc.data<double>()[0], 0.25 + sum / 37.0);
  }
  Tensor acc = Tensor::zeros({1}, DType::F64), bad = Tensor::zeros({2}, DType::F64);
  test::expect_error([&] { add_mean_(acc, Tensor::zeros({0}, DType::F32)); }, {"add_mean_", "empty"});
  test::expect_error([&] { add_mean_(bad, Tensor::zeros({3}, DType::F32)); }, {"add_mean_", "acc"});
}

TEST(TensorParallelOps, EmbeddingSkipsRowsOfOtherRanks) {
  Tensor w = test::random_tensor({4, 3}, DType::F64, 3);
  Tensor tokens = Tensor::from_vector<int32_t>({2, -1, 0}, {3});
  Tensor out = Tensor::empty({3, 3}, DType::F64);
  embedding_forward(tokens, w, out);
  for (int64_t c = 0; c < 3; ++c) EXPECT_EQ(out.data<double>()[3 + c], 0.0);
  Tensor dw = Tensor::zeros({4, 3}, DType::F64);
  embedding_backward(tokens, test::random_tensor({3, 3}, DType::F64, 4), dw);
  for (int64_t c = 0; c < 3; ++c) EXPECT_EQ(dw.data<double>()[3 + c], 0.0);  // row 1 untouched
}

}  // namespace
}  // namespace rwkv
