// Tensor-parallel RWKV-4 (tp = the world size) against the whole model, which
// every rank also runs: loss, and every local gradient slice, in double.
#include <gtest/gtest.h>

#include "kernels/reduce.h"
#include "mpi_test_util.h"
#include "parallel/comm_volume.h"
#include "parallel/process_groups.h"
#include "tests/unit/test_util.h"
#include "trainer/rwkv4_model.h"

namespace rwkv::parallel {
namespace {

TEST(MpiTensorParallelModel, GradientsMatchTheWholeModel) {
  const int tp = test::world_size();
  ProcessGroups groups(1, tp, 1);
  const Rwkv4Shape shape{2, 24, 23, 96};
  ParameterStore whole_params = declare_rwkv4_parameters(shape, DType::F64);
  init_rwkv4_reference(whole_params, shape, 3, 0.1);
  uint64_t seed = 10;
  for (NamedTensor& e : whole_params.entries()) {
    Tensor noise = rwkv::test::random_tensor(e.value.shape(), DType::F64, seed++, -0.1, 0.1);
    add_(e.value, noise);
  }
  std::vector<int32_t> ids, next;
  for (int i = 0; i < 2 * 7; ++i) ids.push_back((i * 5 + 3) % 23), next.push_back((i * 11 + 1) % 23);
  const Tensor tokens = Tensor::from_vector<int32_t>(ids, {2, 7}), targets = Tensor::from_vector<int32_t>(next, {2, 7});

  Rwkv4Model whole(shape, DType::F64);
  copy_partition_slices(whole_params, whole.params());
  whole.grads().zero_all();
  const double expected_loss = whole.forward_backward(tokens, targets, 1.0f / 14, 1.0f);

  Rwkv4Partition part = Rwkv4Partition::whole(shape);
  part.tp_size = tp;
  part.tp_rank = groups.topology().tp_rank();
  part.padded_vocab = padded_vocab_size(shape.vocab_size, tp, 1);
  Rwkv4Model sliced(shape, DType::F64, false, Device::cpu(), part, &groups.tp());
  copy_partition_slices(whole_params, sliced.params());
  sliced.grads().zero_all();
  groups.tp().reset_stats();
  const double loss = sliced.forward_backward(tokens, targets, 1.0f / 14, 1.0f);

  // The bytes this rank sent for one forward + backward, against the
  // analytic traffic (rwkv4_model.cpp): N = B*T rows, e = 8 (double), per block
  //   forward:  all_reduce(N C) + reduce_scatter(out N C/tp) + all_gather(in N C/tp)
  //   backward: all_gather(in N C/tp) + 2 all_reduce(N C)
  // plus the embedding's all_reduce(N C), the head's input-gradient
  // all_reduce(N C), and the loss: 3 all_gathers of N statistics (max and sum
  // in double, argmax in i32) and the target logits' all_reduce(N).
  {
    const int64_t N = 14, C = shape.n_embd, L = shape.n_layer, e = 8, Cl = C / tp;
    const int r = groups.topology().tp_rank();
    uint64_t expected_bytes = 0;
    if (tp > 1) {
      const uint64_t ar = all_reduce_bytes_sent(N * C, e, tp, r);
      expected_bytes += static_cast<uint64_t>(L) * (3 * ar + reduce_scatter_bytes_sent(N * Cl, e, tp) +
                                                    2 * all_gather_bytes_sent(N * Cl, e, tp));
      expected_bytes += 2 * ar;  // embedding rows, head input gradient
      expected_bytes += 2 * all_gather_bytes_sent(N, e, tp) + all_gather_bytes_sent(N, 4, tp) +
                        all_reduce_bytes_sent(N, e, tp, r);
    }
    EXPECT_EQ(groups.tp().stats().total_sent(), expected_bytes) << groups.tp().stats().str();
  }
  sliced.reduce_tp_partial_grads();
  EXPECT_NEAR(loss, expected_loss, 1e-12);

  // The whole model's gradients, cut into this rank's slices.
  ParameterStore expected = sliced.grads().zeros_like();
  copy_partition_slices(whole.grads(), expected);
  for (size_t i = 0; i < expected.entries().size(); ++i) {
    const NamedTensor& g = sliced.grads().entries()[i];
    rwkv::test::expect_close(g.value, expected.entries()[i].value, 1e-10, 1e-12, g.name + " (tp rank " + std::to_string(part.tp_rank) + ")");
  }
}

}  // namespace
}  // namespace rwkv::parallel
