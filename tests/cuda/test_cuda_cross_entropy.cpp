// Cross-entropy (+ L2Wrap) CUDA kernel against the CPU kernel: forward only,
// forward + backward into a separate dlogits and in place over the logits,
// ties for the maximum (L2Wrap goes to the first), a full-size vocabulary.
#include "cuda_test_util.h"
#include "kernels/cross_entropy.h"

namespace rwkv {
namespace {

using test::random_tensor;

struct CeInputs {
  Tensor logits;   // f32 CPU [N, V], rounded to the GPU dtype
  Tensor targets;  // i32 CPU [N]
};

CeInputs make_inputs(int64_t N, int64_t V, DType dt, uint64_t seed, double range) {
  Tensor logits = random_tensor({N, V}, DType::F32, seed, -range, range);
  float* l = logits.data<float>();
  // Row 0 has its maximum twice: L2Wrap must go to the first one.
  l[10] = static_cast<float>(range) + 2.0f;
  l[V / 2] = static_cast<float>(range) + 2.0f;
  std::vector<int32_t> targets(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n) targets[static_cast<size_t>(n)] = static_cast<int32_t>((n * 7919 + 13) % V);
  return {test::round_to(logits, dt), Tensor::from_vector(targets, {N})};
}

class CudaCrossEntropy : public ::testing::TestWithParam<DType> {};

TEST_P(CudaCrossEntropy, MatchesCpu) {
  RWKV_REQUIRE_GPU();
  const DType dt = GetParam();
  const Device gpu = Device::cuda();
  const float grad_scale = 0.125f, l2wrap = 0.01f;  // l2wrap larger than the reference's, so it shows
  for (auto [N, V, range] : {std::tuple<int64_t, int64_t, double>{13, 1000, 5.0}, {3, 50277, 20.0}, {4, 37, 1.0}}) {
    CeInputs in = make_inputs(N, V, dt, static_cast<uint64_t>(V), range);
    Tensor losses = Tensor::empty({N}, DType::F32), dlogits = Tensor::empty({N, V}, DType::F32);
    cross_entropy_forward_backward(in.logits, in.targets, losses, dlogits, grad_scale, l2wrap);
    const std::string at = " V=" + std::to_string(V);

    Tensor glogits = test::to_gpu(in.logits, dt), gtargets = in.targets.to(gpu);
    // Forward only.
    Tensor glosses = Tensor::empty({N}, DType::F32, gpu);
    cross_entropy_forward(glogits, gtargets, glosses);
    test::expect_near(glosses.to(Device::cpu()), losses, {1e-5, 1e-6}, "losses (forward only)" + at);

    // Into a separate dlogits: the logits stay as they were.
    Tensor gd = Tensor::empty({N, V}, dt, gpu);
    glosses = Tensor::empty({N}, DType::F32, gpu);
    cross_entropy_forward_backward(glogits, gtargets, glosses, gd, grad_scale, l2wrap);
    test::expect_near(glosses.to(Device::cpu()), losses, {1e-5, 1e-6}, "losses" + at);
    const test::Tolerance dtol = dt == DType::F32 ? test::Tolerance{1e-5, 1e-6} : test::kBf16;
    test::expect_near(test::to_host_f32(gd), dlogits, dtol, "dlogits" + at);
    test::expect_bitwise_equal(glogits, test::to_gpu(in.logits, dt), "logits untouched" + at);

    // In place: dlogits is the logits tensor.
    glosses = Tensor::empty({N}, DType::F32, gpu);
    cross_entropy_forward_backward(glogits, gtargets, glosses, glogits, grad_scale, l2wrap);
    test::expect_near(glosses.to(Device::cpu()), losses, {1e-5, 1e-6}, "losses (in place)" + at);
    test::expect_near(test::to_host_f32(glogits), dlogits, dtol, "dlogits (in place)" + at);
  }
}

// The L2Wrap term lands on the first maximum only.
TEST_P(CudaCrossEntropy, L2WrapGoesToTheFirstMaximum) {
  RWKV_REQUIRE_GPU();
  const DType dt = GetParam();
  const int64_t V = 600;
  std::vector<float> row(static_cast<size_t>(V), 0.0f);
  row[100] = 3.0f;
  row[400] = 3.0f;  // tie
  Tensor logits = Tensor::from_vector(row, {1, V});
  Tensor targets = Tensor::from_vector(std::vector<int32_t>{5}, {1});
  const Device gpu = Device::cuda();
  Tensor gl = test::to_gpu(logits, dt), gloss = Tensor::empty({1}, DType::F32, gpu), gd = Tensor::empty({1, V}, dt, gpu);
  cross_entropy_forward_backward(gl, targets.to(gpu), gloss, gd, 0.0f, 1.0f);  // only L2Wrap: max * 1 at argmax
  std::vector<float> d = test::to_host_f32(gd).to_vector<float>();
  for (int64_t i = 0; i < V; ++i) EXPECT_EQ(d[static_cast<size_t>(i)], i == 100 ? 3.0f : 0.0f) << "element " << i;
}

INSTANTIATE_TEST_SUITE_P(Dtypes, CudaCrossEntropy, ::testing::Values(DType::F32, DType::BF16), test::DTypeName());

}  // namespace
}  // namespace rwkv
