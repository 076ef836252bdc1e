// The NCCL communicator (label cuda; built with CUDA and NCCL): every
// operation against the same reference as the MPI tests, and its byte
// counters against comm_volume.h. Every rank needs a GPU of its own (NCCL
// refuses two ranks on one GPU); with fewer GPUs than ranks the tests skip.
#include <gtest/gtest.h>

#include <cmath>

#include "core/device.h"
#include "mpi_test_util.h"
#include "parallel/comm_volume.h"
#include "parallel/nccl_comm.h"

namespace rwkv::parallel {
namespace {

using namespace rwkv::parallel::test;

class Nccl : public ::testing::Test {
 protected:
  void SetUp() override {
    // The same verdict on every rank (one node: the same GPU count).
    if (cuda_device_count() < world_size())
      GTEST_SKIP() << world_size() << " ranks need as many GPUs, found " << cuda_device_count() << " ("
                   << cuda_unavailable_reason() << ")";
    world_ = std::make_unique<WorldComm>();
    device_ = select_cuda_device();
    comm_ = make_nccl_communicator(world_->comm, device_);
  }
  Tensor on_gpu(const Tensor& host) const { return host.to(Device::cuda(device_)); }

  std::unique_ptr<WorldComm> world_;
  int device_ = 0;
  std::unique_ptr<Communicator> comm_;
};

TEST_F(Nccl, AllReduceF32MatchesTheRankOrderSum) {
  const int n = comm_->size(), r = comm_->rank();
  for (int64_t numel : {1, 7, 4099}) {
    Tensor x = on_gpu(rank_tensor<float>(r, 1, {numel}));
    comm_->reset_stats();
    comm_->all_reduce_sum(x);
    // No synchronize(): the copy on the compute stream must already be ordered after the reduction.
    const std::vector<float> got = x.to_vector<float>(), want = rank_order_sum<float>(n, 1, numel);
    if (n <= 2) {
      EXPECT_TRUE(bitwise_equal(got, want));  // a + b == b + a: any order gives the same bits
    } else {
      for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-5 * (1 + std::abs(want[i])));
    }
    EXPECT_EQ(comm_->stats().sent(CommOp::AllReduce), all_reduce_bytes_sent(numel, 4, n, r));
    // Every rank holds the same bits.
    EXPECT_TRUE(same_on_all_ranks(hash_bytes(x.to(Device::cpu()))));
  }
}

TEST_F(Nccl, AllReduceBf16) {
  const int n = comm_->size(), r = comm_->rank();
  Tensor x = on_gpu(rank_tensor<float>(r, 2, {300}).to_dtype(DType::BF16));
  comm_->all_reduce_sum(x);
  comm_->synchronize();
  const std::vector<float> got = x.to(Device::cpu()).to_dtype(DType::F32).to_vector<float>();
  for (size_t i = 0; i < got.size(); ++i) {
    double want = 0, scale = 0;
    for (int q = 0; q < n; ++q) {
      want += value_at(q, 2, static_cast<int64_t>(i));
      scale += std::abs(value_at(q, 2, static_cast<int64_t>(i)));
    }
    EXPECT_NEAR(got[i], want, 2e-2 * scale + 1e-6);  // bf16: 8 significant bits
  }
}

TEST_F(Nccl, ReduceScatterAllGatherBroadcastSendRecv) {
  const int n = comm_->size(), r = comm_->rank();
  const int64_t m = 33;
  Tensor in = on_gpu(rank_tensor<float>(r, 3, {n, m}));
  Tensor out = on_gpu(Tensor::zeros({m}, DType::F32));
  comm_->reduce_scatter_sum(in, out);
  const std::vector<float> rs = out.to_vector<float>(), want = rank_order_sum<float>(n, 3, m, int64_t{r} * m);
  for (size_t i = 0; i < rs.size(); ++i) EXPECT_NEAR(rs[i], want[i], 1e-5 * (1 + std::abs(want[i])));

  Tensor gathered = on_gpu(Tensor::zeros({n, m}, DType::F32));
  comm_->all_gather(on_gpu(rank_tensor<float>(r, 4, {m})), gathered);
  const std::vector<float> g = gathered.to_vector<float>();
  for (int q = 0; q < n; ++q)
    for (int64_t i = 0; i < m; ++i) EXPECT_EQ(g[static_cast<size_t>(q * m + i)], static_cast<float>(value_at(q, 4, i)));

  Tensor b = on_gpu(rank_tensor<float>(r, 5, {m}));
  comm_->broadcast(b, 0);
  EXPECT_TRUE(bitwise_equal(b.to_vector<float>(), rank_tensor<float>(0, 5, {m}).to_vector<float>()));

  if (n > 1) {
    Tensor recv = on_gpu(Tensor::zeros({m}, DType::F32));
    comm_->send_recv(on_gpu(rank_tensor<float>(r, 6, {m})), (r + 1) % n, recv, (r + n - 1) % n);
    EXPECT_TRUE(bitwise_equal(recv.to_vector<float>(), rank_tensor<float>((r + n - 1) % n, 6, {m}).to_vector<float>()));
  }
  comm_->barrier();
  EXPECT_EQ(comm_->stats().sent(CommOp::ReduceScatter), reduce_scatter_bytes_sent(m, 4, n));
  EXPECT_EQ(comm_->stats().sent(CommOp::AllGather), all_gather_bytes_sent(m, 4, n));
}

TEST_F(Nccl, CpuTensorsAreRejectedWithAHint) {
  Tensor cpu = Tensor::zeros({4}, DType::F32);
  try {
    comm_->all_reduce_sum(cpu);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("copy the tensor to this rank's GPU"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace rwkv::parallel
