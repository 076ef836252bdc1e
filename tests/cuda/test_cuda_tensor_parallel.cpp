// The tensor-parallel helper ops on CUDA against the CPU ops.
#include "cuda_test_util.h"
#include "kernels/reduce.h"
#include "kernels/tensor_parallel.h"

#include <cmath>

namespace rwkv {
namespace {

TEST(CudaTensorParallel, ColumnBlocksMatchCpu) {
  RWKV_REQUIRE_GPU();
  Tensor full = test::random_tensor({7, 12}, DType::F32, 1), block = test::random_tensor({7, 4}, DType::F32, 2);
  Tensor cpu_copy = Tensor::empty({7, 4}, DType::F32), cpu_sum = full.clone();
  copy_columns(full, 8, cpu_copy);
  add_columns(block, cpu_sum, 4);
  Tensor g_full = full.to(Device::cuda()), g_block = block.to(Device::cuda()), g_copy = Tensor::empty({7, 4}, DType::F32, Device::cuda());
  copy_columns(g_full, 8, g_copy);
  add_columns(g_block, g_full, 4);
  test::expect_close(g_copy, cpu_copy, 0, 0, "copy_columns");
  test::expect_close(g_full, cpu_sum, 0, 0, "add_columns");
}

TEST(CudaTensorParallel, VocabParallelCrossEntropyMatchesCpu) {
  RWKV_REQUIRE_GPU();
  const int64_t N = 5, Vl = 700, valid = 650, offset = 1400;
  Tensor logits = test::random_tensor({N, Vl}, DType::F32, 3, -4, 4);
  Tensor targets = Tensor::from_vector<int32_t>({1400, 2049, 1700, 0, 1401}, {N});
  auto run = [&](Device d) {
    Tensor l = logits.to(d), m = Tensor::empty({N}, DType::F32, d), s = Tensor::empty({N}, DType::F32, d);
    Tensor a = Tensor::empty({N}, DType::I32, d), tl = Tensor::empty({N}, DType::F32, d), g = Tensor::empty({N, Vl}, DType::F32, d);
    softmax_row_stats(l, valid, offset, m, s, a);
    vocab_parallel_ce_backward(l, valid, offset, targets.to(d), m, s, a, tl, g, 0.1f, 0.01f);
    return std::vector<Tensor>{m, s, a.to(Device::cpu()), tl, g};
  };
  auto c = run(Device::cpu()), g = run(Device::cuda());
  test::expect_close(g[0], c[0], 0, 0, "row max");
  test::expect_close(g[1], c[1], 1e-5, 1e-6, "row sum");
  EXPECT_EQ(g[2].to_vector<int32_t>(), c[2].to_vector<int32_t>());
  test::expect_close(g[3], c[3], 0, 0, "target logit");
  test::expect_close(g[4], c[4], 1e-5, 1e-8, "dlogits");
}

// The step's loss stays on the GPU: the per-row losses from the statistics
// and their mean added to a double accumulator, against the CPU ops.
TEST(CudaTensorParallel, LossesFromStatsAndTheirMeanMatchCpu) {
  RWKV_REQUIRE_GPU();
  const int64_t N = 3001;
  const Tensor m = test::random_tensor({N}, DType::F32, 1, -3, 3), s = test::random_tensor({N}, DType::F32, 2, 0.5, 40);
  const Tensor t = test::random_tensor({N}, DType::F32, 3, -5, 2);
  Tensor cpu_losses = Tensor::empty({N}, DType::F32), cpu_acc = Tensor::from_vector<double>({1.5}, {1});
  ce_losses_from_stats(m, s, t, cpu_losses);
  add_mean_(cpu_acc, cpu_losses);
  const Device d = Device::cuda();
  Tensor losses = Tensor::empty({N}, DType::F32, d), acc = Tensor::from_vector<double>({1.5}, {1}).to(d);
  ce_losses_from_stats(m.to(d), s.to(d), t.to(d), losses);
  add_mean_(acc, losses);
  // Both compute in double and round once; the device log may differ by an ulp.
  test::expect_close(losses, cpu_losses, 1e-6, 1e-6, "ce_losses_from_stats");
  EXPECT_NEAR(acc.to(Device::cpu()).data<double>()[0], cpu_acc.data<double>()[0], 1e-12 * std::abs(cpu_acc.data<double>()[0]));
}

}  // namespace
}  // namespace rwkv
