// The RNN form (trainer/rwkv4_recurrent.h, rwkv-generate --device cuda) on
// the GPU against the CPU with the same f32 weights: a prompt, then tokens one
// at a time from the carried state, gives the CPU's logits and state within
// 1e-4 (relative to the largest magnitude). Without a GPU the test skips.
#include <cmath>

#include "cuda_test_util.h"
#include "data/byte_tokenizer.h"
#include "trainer/generation.h"
#include "trainer/rwkv4_recurrent.h"

namespace rwkv {
namespace {

double worst_relative(const Tensor& got, const Tensor& want) {
  const std::vector<double> g = test::as_doubles(got.to(Device::cpu())), w = test::as_doubles(want);
  double scale = 1e-30, worst = 0;
  for (double x : w) scale = std::max(scale, std::abs(x));
  for (size_t i = 0; i < g.size(); ++i) worst = std::max(worst, std::abs(g[i] - w[i]) / scale);
  return worst;
}

// The same f32 weights, uniform in [-0.5, 0.5], in both models.
void same_random_weights(Rwkv4Model& cpu, Rwkv4Model& gpu, uint64_t seed) {
  for (size_t i = 0; i < cpu.params().entries().size(); ++i) {
    NamedTensor& e = cpu.params().entries()[i];
    e.value.copy_from(test::random_tensor(e.value.shape(), DType::F32, seed++, -0.5, 0.5));
    gpu.params().entries()[i].value.copy_from(e.value);
  }
}

TEST(CudaRecurrent, PromptThenSingleTokensFollowTheCpu) {
  RWKV_REQUIRE_GPU();
  const Rwkv4Shape shape{2, 64, 97, 128};
  Rwkv4Model cpu(shape, DType::F32), gpu(shape, DType::F32, false, Device::cuda(0));
  same_random_weights(cpu, gpu, 71);
  Rwkv4State cpu_state = Rwkv4State::fresh(shape, 2, DType::F32);
  Rwkv4State gpu_state = Rwkv4State::fresh(shape, 2, DType::F32, Device::cuda(0));
  ASSERT_TRUE(gpu_state.wkv[0].is_cuda());
  // A prompt of 5 tokens for 2 sequences, then 3 single steps.
  std::vector<Tensor> chunks = {Tensor::from_vector<int32_t>({1, 5, 9, 13, 17, 2, 4, 8, 16, 32}, {2, 5})};
  for (int32_t step = 0; step < 3; ++step) chunks.push_back(Tensor::from_vector<int32_t>({40 + step, 60 + step}, {2, 1}));
  for (size_t c = 0; c < chunks.size(); ++c) {
    SCOPED_TRACE(str_cat("chunk ", c));
    const Tensor& tokens = chunks[c];
    Tensor want = Tensor::empty({2, tokens.dim(1), shape.vocab_size}, DType::F32);
    Tensor got = Tensor::empty(want.shape(), DType::F32, Device::cuda(0));
    rwkv4_forward_recurrent(cpu.tensors(), shape, tokens, cpu_state, want);
    rwkv4_forward_recurrent(gpu.tensors(), shape, tokens, gpu_state, got);  // host tokens are uploaded
    const double logits_error = worst_relative(got, want);
    test::record_measured_error(str_cat("recurrent logits, chunk ", c), logits_error / 1e-4, logits_error);
    EXPECT_LE(logits_error, 1e-4);
    for (int64_t l = 0; l < shape.n_layer; ++l) {
      const size_t i = static_cast<size_t>(l);
      EXPECT_LE(worst_relative(gpu_state.att_shift[i], cpu_state.att_shift[i]), 1e-4) << "block " << l;
      EXPECT_LE(worst_relative(gpu_state.ffn_shift[i], cpu_state.ffn_shift[i]), 1e-4) << "block " << l;
      // aa, bb and pp one at a time: pp is an exponent, aa/bb are scaled by it.
      for (int64_t part = 0; part < 3; ++part)
        EXPECT_LE(worst_relative(gpu_state.wkv[i].slice_rows(part, 1), cpu_state.wkv[i].slice_rows(part, 1)), 1e-4)
            << "block " << l << " wkv part " << part;
    }
  }
  // Logits on the host with a GPU model: an error naming the argument.
  Tensor host_logits = Tensor::empty({2, 1, shape.vocab_size}, DType::F32);
  test::expect_error([&] { rwkv4_forward_recurrent(gpu.tensors(), shape, chunks[1], gpu_state, host_logits); },
                     {"rwkv4_forward_recurrent", "logits"});
}

// rwkv::generate with the model on the GPU: the prompt's state copied to
// every sample's row on the device, then greedy tokens, as on the CPU.
TEST(CudaRecurrent, GenerateOnTheGpuPicksTheCpusTokens) {
  RWKV_REQUIRE_GPU();
  const Rwkv4Shape shape{2, 64, 257, 128};
  Rwkv4Model cpu(shape, DType::F32), gpu(shape, DType::F32, false, Device::cuda(0));
  same_random_weights(cpu, gpu, 91);
  const data::ByteTokenizer bytes;
  GenerationOptions options;
  options.max_tokens = 12;
  options.samples = 3;
  options.sampling.temperature = 0.0;
  options.penalty = {0.3, 0.3, 0.996};
  const std::vector<std::string> want = generate(cpu, bytes, "RWKV", options);
  const std::vector<std::string> got = generate(gpu, bytes, "RWKV", options);
  EXPECT_EQ(got, want);
  EXPECT_EQ(got.at(1), got.at(0));  // greedy rows from one replicated state
}

}  // namespace
}  // namespace rwkv
