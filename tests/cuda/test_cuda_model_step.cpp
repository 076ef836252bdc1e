// The GPU self-check's whole-step test: one RWKV-4 training step (forward,
// backward, AdamW) on CUDA against the same step on the CPU. Run it on a
// cluster node before a long job: ctest -L cuda.
#include "cuda_model_util.h"
#include "trainer/optimizer.h"
#include "trainer/rwkv4_model.h"

namespace rwkv {
namespace {

TEST(CudaModelStep, OneTrainingStepMatchesTheCpu) {
  RWKV_REQUIRE_GPU();
  const Rwkv4Shape shape{2, 64, 97, 256};
  Rwkv4Model cpu(shape, DType::F32), gpu(shape, DType::F32, false, Device::cuda());
  test::init_perturbed(cpu.params(), shape);
  for (size_t i = 0; i < cpu.params().entries().size(); ++i)
    gpu.params().entries()[i].value.copy_from(cpu.params().entries()[i].value);
  std::vector<int32_t> ids;
  for (int i = 0; i < 2 * 33; ++i) ids.push_back((i * 31 + 7) % 97);
  Tensor tokens = Tensor::from_vector<int32_t>(ids, {2, 33});
  cpu.grads().zero_all();
  gpu.grads().zero_all();
  const double cpu_loss = cpu.forward_backward(tokens, tokens, 1.0f / 66, 1.0f);
  const double gpu_loss = gpu.forward_backward(tokens, tokens, 1.0f / 66, 1.0f);
  EXPECT_NEAR(gpu_loss, cpu_loss, 1e-4 * std::abs(cpu_loss));
  RecordProperty("loss_relative_difference", test::three_digits(std::abs(gpu_loss - cpu_loss) / std::abs(cpu_loss)));
  for (size_t i = 0; i < cpu.grads().entries().size(); ++i)
    test::expect_close(gpu.grads().entries()[i].value, cpu.grads().entries()[i].value, 2e-3, 2e-5,
                       "gradient of " + cpu.grads().entries()[i].name);
  AdamWOptimizer cpu_opt(cpu.params(), AdamWSettings{}), gpu_opt(gpu.params(), AdamWSettings{});
  const double cpu_norm = cpu_opt.step(cpu.params(), cpu.grads(), 1e-3);
  const double gpu_norm = gpu_opt.step(gpu.params(), gpu.grads(), 1e-3);
  EXPECT_NEAR(gpu_norm, cpu_norm, 1e-3 * cpu_norm);
  for (size_t i = 0; i < cpu.params().entries().size(); ++i)
    test::expect_close(gpu.params().entries()[i].value, cpu.params().entries()[i].value, 1e-4, 1e-5,
                       "updated " + cpu.params().entries()[i].name);
}

}  // namespace
}  // namespace rwkv
