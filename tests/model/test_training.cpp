// Learning-rate schedule values and a real (tiny) training run: the model
// learns a repeated sequence, deterministically.
#include <cmath>

#include "core/threads.h"
#include "test_util.h"
#include "trainer/lr_schedule.h"
#include "trainer/optimizer.h"
#include "trainer/pipeline_schedule.h"
#include "trainer/rwkv4_model.h"

namespace rwkv {
namespace {

TEST(LrSchedule, WarmupThenExponentialOrCosineDecay) {
  LrSchedule s{1e-3, 1e-5, 10, 110, LrDecay::Exponential};
  EXPECT_NEAR(s.at(0), 1e-3 * 0.2, 1e-15);  // warmup starts at 20%
  EXPECT_NEAR(s.at(5), 1e-3 * (0.2 + 0.8 * 0.5), 1e-15);
  // progress = (step - warmup + 1) / (total - warmup)
  EXPECT_NEAR(s.at(59), 1e-3 * std::exp(std::log(1e-2) * 0.5), 1e-15);
  EXPECT_NEAR(s.at(109), 1e-5, 1e-18);
  EXPECT_NEAR(s.at(500), 1e-5, 1e-18);  // clamped after the end
  s.decay = LrDecay::Cosine;
  EXPECT_NEAR(s.at(59), 1e-5 + (1e-3 - 1e-5) * 0.5, 1e-15);
  s.decay = LrDecay::Constant;
  EXPECT_EQ(s.at(80), 1e-3);
  LrSchedule linear{1e-3, 0.0, 0, 100, LrDecay::Exponential};  // lr_final 0: linear, as the reference
  EXPECT_NEAR(linear.at(49), 0.5e-3, 1e-15);
  LrSchedule explicit_linear{1e-3, 1e-4, 0, 100, LrDecay::Linear};
  EXPECT_NEAR(explicit_linear.at(49), 1e-3 - 0.9e-3 * 0.5, 1e-15);
  test::expect_error([] { parse_lr_decay("step"); }, {"'step'", "exponential, cosine, linear, constant or wsd"});
  EXPECT_EQ(parse_lr_decay("wsd"), LrDecay::Wsd);
}

TEST(LrSchedule, WarmupStableDecayHoldsThenCoolsDownLinearly) {
  // 10 warmup steps, 100 after; cooldown 0.25 x 100 = 25 steps: 85..109.
  LrSchedule s{1e-3, 1e-5, 10, 110, LrDecay::Wsd, 0.25};
  EXPECT_NEAR(s.at(0), 1e-3 * 0.2, 1e-15);  // the same warmup
  EXPECT_EQ(s.at(10), 1e-3);
  EXPECT_EQ(s.at(84), 1e-3);                // the last stable step
  EXPECT_NEAR(s.at(85), 1e-3 + (1e-5 - 1e-3) * (1.0 / 25), 1e-15);
  EXPECT_NEAR(s.at(96), 1e-3 + (1e-5 - 1e-3) * (12.0 / 25), 1e-15);
  EXPECT_NEAR(s.at(109), 1e-5, 1e-18);      // lr_final at the last step
  EXPECT_NEAR(s.at(200), 1e-5, 1e-18);
  LrSchedule tiny{1e-3, 0.0, 0, 3, LrDecay::Wsd, 0.01};  // a cooldown rounds up to at least one step
  EXPECT_EQ(tiny.at(1), 1e-3);
  EXPECT_EQ(tiny.at(2), 0.0);
}

std::vector<double> train_tiny(int steps, int threads) {
  set_num_threads(threads);
  const Rwkv4Shape shape{2, 32, 16, 128};
  Rwkv4Model model(shape, DType::F32);
  init_rwkv4_reference(model.params(), shape, 42, 1e-4);
  AdamWSettings settings;
  settings.weight_decay = 0.01f;
  AdamWOptimizer opt(model.params(), settings);
  // A fixed pattern the model can learn: next token = (3 * token + 1) mod 16.
  const int64_t B = 4, T = 16;
  std::vector<int32_t> in, out;
  for (int64_t b = 0; b < B; ++b) {
    int32_t t = static_cast<int32_t>(b);
    for (int64_t i = 0; i < T; ++i) {
      in.push_back(t);
      t = (3 * t + 1) % 16;
      out.push_back(t);
    }
  }
  Tensor tokens = Tensor::from_vector<int32_t>(in, {B, T}), targets = Tensor::from_vector<int32_t>(out, {B, T});
  LrSchedule lr{3e-3, 1e-3, 5, steps, LrDecay::Cosine};
  std::vector<double> losses;
  for (int step = 0; step < steps; ++step) {
    model.grads().zero_all();
    losses.push_back(model.forward_backward(tokens, targets, 1.0f / (B * T), 1.0f));
    opt.step(model.params(), model.grads(), lr.at(step));
  }
  set_num_threads(hardware_threads());
  return losses;
}

// The pipeline step adds its micro-batches' losses on the device and reads
// them once; the result is bit for bit the mean of what stage_backward
// returns micro-batch by micro-batch (the host path), for M = 1 and 3, and
// the gradients are the same.
TEST(Training, StepLossAddedOnTheDeviceEqualsTheHostSum) {
  const Rwkv4Shape shape{2, 16, 19, 64};
  for (int64_t M : {int64_t{1}, int64_t{3}}) {
    Rwkv4Model a(shape, DType::F32), b(shape, DType::F32);
    init_rwkv4_reference(a.params(), shape, 3, 0.1);
    init_rwkv4_reference(b.params(), shape, 3, 0.1);
    auto fill = [&](int64_t m, Tensor& tok, Tensor& tgt) {
      for (int64_t i = 0; i < tok.numel(); ++i) {
        tok.data<int32_t>()[i] = static_cast<int32_t>((i * 5 + m * 7) % shape.vocab_size);
        tgt.data<int32_t>()[i] = static_cast<int32_t>((i * 3 + m + 1) % shape.vocab_size);
      }
    };
    a.grads().zero_all();
    const double piped = trainer::run_pipeline_step(a, trainer::PipelineStage{}, trainer::PipelineSchedule::OneFOneB, M,
                                                    2, 5, fill, 0.1f, 1.0f);
    b.grads().zero_all();
    Tensor tok = Tensor::empty({2, 5}, DType::I32), tgt = Tensor::empty({2, 5}, DType::I32);
    double host = 0.0;
    for (int64_t m = 0; m < M; ++m) {
      fill(m, tok, tgt);
      b.stage_forward(0, tok);
      host += b.stage_backward(0, tgt, 0.1f, 1.0f);
    }
    EXPECT_EQ(piped, host / static_cast<double>(M)) << "M=" << M;
    EXPECT_GT(piped, 0.0);
    for (size_t i = 0; i < a.grads().entries().size(); ++i)
      EXPECT_EQ(a.grads().entries()[i].value.to_vector<float>(), b.grads().entries()[i].value.to_vector<float>())
          << a.grads().entries()[i].name;
  }
}

TEST(Training, TinyModelLearnsAPatternAndRunsAreBitIdentical) {
  std::vector<double> a = train_tiny(60, 2);
  EXPECT_NEAR(a.front(), std::log(16.0), 0.3);  // starts near chance (the head init spreads the logits a little)
  EXPECT_LT(a.back(), 0.1 * a.front());           // and learns the pattern
  std::vector<double> b = train_tiny(60, 1);
  EXPECT_EQ(a, b);  // bit-identical across runs and thread counts
}

// A shape whose GEMMs OpenBLAS would split over its threads off its tiles
// (rows B T = 256, widths 96, 257, 384): three AdamW steps give the same
// losses and parameters, bit for bit, on 1 and 2 threads.
TEST(Training, StepsAreBitIdenticalOnOneAndTwoThreadsAtARaggedShape) {
  const Rwkv4Shape shape{2, 96, 257, 384};
  const int64_t B = 4, T = 64;
  const auto runs = test::on_thread_counts({1, 2}, [&] {
    Rwkv4Model model(shape, DType::F32);
    init_rwkv4_reference(model.params(), shape, 5, 1e-4);
    AdamWOptimizer opt(model.params(), AdamWSettings{});
    std::vector<int32_t> in(static_cast<size_t>(B * T)), out(in.size());
    for (size_t i = 0; i < in.size(); ++i) {
      in[i] = static_cast<int32_t>((i * 7919) % 257);
      out[i] = static_cast<int32_t>((i * 104729 + 3) % 257);
    }
    const Tensor tokens = Tensor::from_vector<int32_t>(in, {B, T}), targets = Tensor::from_vector<int32_t>(out, {B, T});
    std::vector<double> losses;
    for (int step = 0; step < 3; ++step) {
      model.grads().zero_all();
      losses.push_back(model.forward_backward(tokens, targets, 1.0f / (B * T), 1.0f));
      opt.step(model.params(), model.grads(), 1e-3);
    }
    std::vector<std::vector<float>> params;
    for (const NamedTensor& p : model.params().entries()) params.push_back(p.value.to_vector<float>());
    return std::make_pair(losses, params);
  });
  const auto& one = runs[0];
  const auto& two = runs[1];
  EXPECT_EQ(one.first, two.first);
  ASSERT_EQ(one.second.size(), two.second.size());
  for (size_t i = 0; i < one.second.size(); ++i) EXPECT_EQ(one.second[i], two.second[i]) << "parameter " << i;
}

}  // namespace
}  // namespace rwkv
