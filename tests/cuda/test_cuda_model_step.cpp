// The GPU self-check's whole-step test: one RWKV-4 training step (forward,
// backward, AdamW) on CUDA against the same step on the CPU. Run it on a
// cluster node before a long job: ctest -L cuda.
#include <memory>

#include "cuda_model_util.h"
#include "trainer/optimizer.h"
#include "trainer/rwkv4_model.h"

namespace rwkv {
namespace {

// The same f32 model on the CPU and on the GPU, and a batch [2, 33] of ids
// (i * stride + offset) mod V.
class CudaModelStep : public ::testing::Test {
 protected:
  void SetUp() override {
    RWKV_REQUIRE_GPU();  // before anything touches a device
    cpu_ = std::make_unique<Rwkv4Model>(shape, DType::F32);
    gpu_ = std::make_unique<Rwkv4Model>(shape, DType::F32, false, Device::cuda());
    test::init_perturbed(cpu_->params(), shape);
    for (size_t i = 0; i < cpu_->params().entries().size(); ++i)
      gpu_->params().entries()[i].value.copy_from(cpu_->params().entries()[i].value);
  }
  static Tensor batch(int stride, int offset) {
    std::vector<int32_t> ids;
    for (int i = 0; i < 2 * 33; ++i) ids.push_back((i * stride + offset) % 97);
    return Tensor::from_vector<int32_t>(ids, {2, 33});
  }
  const Rwkv4Shape shape{2, 64, 97, 256};
  std::unique_ptr<Rwkv4Model> cpu_, gpu_;
};

TEST_F(CudaModelStep, OneTrainingStepMatchesTheCpu) {
  Rwkv4Model &cpu = *cpu_, &gpu = *gpu_;
  Tensor tokens = batch(31, 7);
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

// train.dropout on the GPU: the kernel draws the CPU's masks, so the step's
// loss and gradients follow the CPU's step with the same plan.
TEST_F(CudaModelStep, AStepWithDropoutMatchesTheCpu) {
  Rwkv4Model &cpu = *cpu_, &gpu = *gpu_;
  Tensor tokens = batch(29, 3);
  const double no_dropout = cpu.forward_loss(tokens, tokens);
  const Rwkv4Model::DropoutPlan plan{0.25f, 17, 40, 0, 2};
  cpu.set_dropout(plan);
  gpu.set_dropout(plan);
  cpu.grads().zero_all();
  gpu.grads().zero_all();
  const double cpu_loss = cpu.forward_backward(tokens, tokens, 1.0f / 66, 1.0f);
  const double gpu_loss = gpu.forward_backward(tokens, tokens, 1.0f / 66, 1.0f);
  EXPECT_NE(cpu_loss, no_dropout);
  EXPECT_NEAR(gpu_loss, cpu_loss, 1e-4 * std::abs(cpu_loss));
  for (size_t i = 0; i < cpu.grads().entries().size(); ++i)
    test::expect_close(gpu.grads().entries()[i].value, cpu.grads().entries()[i].value, 2e-3, 2e-5,
                       "gradient of " + cpu.grads().entries()[i].name);
}

}  // namespace
}  // namespace rwkv
