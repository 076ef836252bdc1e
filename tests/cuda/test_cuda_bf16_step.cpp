// bf16 mixed precision (trainer/precision_plan.h, docs/mixed_precision.md) on
// the GPU against the f32 CPU model on the same init and batch:
//   - one step: the loss within 2e-2 relative; every parameter gradient with
//     cosine similarity > 0.99 and relative L2 error < 5e-2;
//   - AdamW keeps the bf16 compute copies equal to bf16(master), bit for bit;
//   - a few optimizer steps keep the loss within 2e-2 relative;
//   - rwkv-train with precision: bf16 saves the f32 masters in its checkpoints
//     and final weights, and its losses follow the fp32 run.
// Why these tolerances: docs/testing.md. Without a GPU every test skips.
#include <cmath>
#include <filesystem>
#include <optional>
#include <sstream>

#include "checkpoint/checkpoint_store.h"
#include "checkpoint/safetensors.h"
#include "cuda_model_util.h"
#include "cuda_test_util.h"
#include "cuda_training_run.h"
#include "trainer/optimizer.h"
#include "trainer/rwkv4_model.h"
#include "trainer/train_loop.h"

namespace rwkv {
namespace {

// bf16 keeps 8 significant bits (relative rounding 2^-9 = 2e-3); an activation
// passes through ~10 roundings per block, so ~1e-2 relative noise on a
// gradient is expected and 5e-2 flags a real error (a wrong dtype, a missed
// copy refresh), which shows up as O(1).
constexpr double kLossRtol = 2e-2;
constexpr double kGradMinCosine = 0.99;
constexpr double kGradMaxRelL2 = 5e-2;

struct Agreement {
  double cosine, rel_l2;
};

Agreement compare(const Tensor& actual, const Tensor& expected) {
  const std::vector<double> a = test::as_doubles(actual), e = test::as_doubles(expected);
  double dot = 0, aa = 0, ee = 0, diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    dot += a[i] * e[i], aa += a[i] * a[i], ee += e[i] * e[i];
    diff += (a[i] - e[i]) * (a[i] - e[i]);
  }
  return {dot / (std::sqrt(aa * ee) + 1e-300), std::sqrt(diff / (ee + 1e-300))};
}

void expect_copies_are_rounded_masters(Rwkv4Model& gpu, const std::string& when) {
  for (size_t i = 0; i < gpu.params().entries().size(); ++i) {
    const Tensor& copy = gpu.compute_copies()[i];
    const NamedTensor& master = gpu.params().entries()[i];
    EXPECT_EQ(master.value.dtype(), DType::F32) << master.name;
    if (!copy.defined()) continue;
    EXPECT_EQ(copy.dtype(), DType::BF16) << master.name;
    test::expect_bitwise_equal(copy, master.value.to(Device::cpu()).to_dtype(DType::BF16),
                               when + ": bf16 copy of " + master.name);
  }
}

// One step and four updates; with a dropout plan, both models draw its masks.
void bf16_steps_follow_the_f32_cpu(std::optional<Rwkv4Model::DropoutPlan> dropout) {
  const Rwkv4Shape shape{2, 64, 97, 256};
  Rwkv4Model cpu(shape, DType::F32);
  Rwkv4Model gpu(shape, DType::F32, false, Device::cuda(), Rwkv4Partition{}, nullptr, Precision::BF16);
  cpu.set_dropout(dropout);
  gpu.set_dropout(dropout);
  test::init_perturbed(cpu.params(), shape);
  for (size_t i = 0; i < cpu.params().entries().size(); ++i)
    gpu.params().entries()[i].value.copy_from(cpu.params().entries()[i].value);
  gpu.refresh_compute_copies();
  expect_copies_are_rounded_masters(gpu, "after refresh");
  EXPECT_EQ(gpu.activation_dtype(), DType::BF16);

  std::vector<int32_t> ids;
  for (int i = 0; i < 2 * 33; ++i) ids.push_back((i * 31 + 7) % 97);
  const Tensor tokens = Tensor::from_vector<int32_t>(ids, {2, 33});
  const float loss_scale = 1.0f / 66;
  cpu.grads().zero_all();
  gpu.grads().zero_all();
  const double cpu_loss = cpu.forward_backward(tokens, tokens, loss_scale, 1.0f);
  const double gpu_loss = gpu.forward_backward(tokens, tokens, loss_scale, 1.0f);
  EXPECT_NEAR(gpu_loss, cpu_loss, kLossRtol * std::abs(cpu_loss));
  ::testing::Test::RecordProperty("loss_relative_difference", test::three_digits(std::abs(gpu_loss - cpu_loss) / std::abs(cpu_loss)));
  double worst_cosine = 1.0, worst_rel_l2 = 0.0;
  for (size_t i = 0; i < cpu.grads().entries().size(); ++i) {
    const NamedTensor& g = gpu.grads().entries()[i];
    ASSERT_EQ(g.value.dtype(), DType::F32) << g.name << ": gradients accumulate in f32";
    test::expect_all_finite(g.value, g.name);
    const Agreement agree = compare(g.value, cpu.grads().entries()[i].value);
    EXPECT_GT(agree.cosine, kGradMinCosine) << "gradient of " << g.name;
    EXPECT_LT(agree.rel_l2, kGradMaxRelL2) << "gradient of " << g.name;
    worst_cosine = std::min(worst_cosine, agree.cosine);
    worst_rel_l2 = std::max(worst_rel_l2, agree.rel_l2);
  }
  ::testing::Test::RecordProperty("gradient_worst_one_minus_cosine", test::three_digits(1.0 - worst_cosine));
  ::testing::Test::RecordProperty("gradient_worst_relative_l2", test::three_digits(worst_rel_l2));

  AdamWOptimizer cpu_opt(cpu.params(), AdamWSettings{}), gpu_opt(gpu.params(), AdamWSettings{});
  gpu_opt.set_param_copies(gpu.compute_copies());
  for (int step = 0; step < 4; ++step) {
    if (step > 0) {
      cpu.grads().zero_all();
      gpu.grads().zero_all();
      const double c = cpu.forward_backward(tokens, tokens, loss_scale, 1.0f);
      const double g = gpu.forward_backward(tokens, tokens, loss_scale, 1.0f);
      EXPECT_NEAR(g, c, kLossRtol * std::abs(c)) << "after " << step << " updates";
    }
    cpu_opt.step(cpu.params(), cpu.grads(), 1e-3);
    gpu_opt.step(gpu.params(), gpu.grads(), 1e-3);
    expect_copies_are_rounded_masters(gpu, "after update " + std::to_string(step + 1));
  }
}

TEST(CudaBf16Step, OneStepAndAFewUpdatesFollowTheF32Cpu) {
  RWKV_REQUIRE_GPU();
  bf16_steps_follow_the_f32_cpu(std::nullopt);
}

TEST(CudaBf16Step, WithDropoutTheStepsFollowTheF32Cpu) {
  RWKV_REQUIRE_GPU();
  bf16_steps_follow_the_f32_cpu(Rwkv4Model::DropoutPlan{0.2f, 3, 100, 0, 1});
}

// rwkv-train end to end on the GPU: the bf16 run's losses follow the fp32
// run's, and what it saves (checkpoint, final weights) is the f32 masters.
TEST(CudaBf16Step, TrainerSavesTheF32Masters) {
  RWKV_REQUIRE_GPU();
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "rwkv_cuda_bf16_train";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string prefix = test::write_pattern_corpus(dir);
  auto run = [&](const char* precision, ParameterStore* final_params) {
    test::TinyRun r;
    r.precision = precision;
    r.checkpoint_dir = (dir / precision).string();
    trainer::TrainOptions options;
    options.on_finish = [&](const ParameterStore& p) {
      if (!final_params) return;
      for (const NamedTensor& e : p.entries()) {
        Tensor host = e.value.to(Device::cpu());
        final_params->add(e.name, host.shape(), host.dtype(), e.decay, e.lr_multiplier).copy_from(host);
      }
    };
    return test::run_tiny_training(prefix, r, options);
  };
  ParameterStore masters;
  const trainer::TrainSummary bf16 = run("bf16", &masters);
  const trainer::TrainSummary fp32 = run("fp32", nullptr);
  ASSERT_EQ(bf16.losses.size(), fp32.losses.size());
  for (size_t i = 0; i < bf16.losses.size(); ++i)
    EXPECT_NEAR(bf16.losses[i], fp32.losses[i], kLossRtol * fp32.losses[i]) << "step " << i + 1;

  checkpoint::LoadedCheckpoint last(checkpoint::CheckpointStore((dir / "bf16").string(), 0, 0).path_for(4));
  const checkpoint::SafetensorsFile weights(bf16.weights_path);
  for (const NamedTensor& e : masters.entries()) {
    Tensor saved = Tensor::empty(e.value.shape(), DType::F32);
    last.read_into(e.name, "param", saved);  // throws unless the checkpoint holds it in f32
    test::expect_bitwise_equal(saved, e.value, "checkpoint param " + e.name);
    const Tensor exported = weights.read(e.name);
    EXPECT_EQ(exported.dtype(), DType::F32) << e.name;
    test::expect_bitwise_equal(exported, e.value, "final weights " + e.name);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace rwkv
