// LAMBADA scoring (trainer/lambada_eval.h, rwkv-eval --device cuda) on the GPU
// against the f32 CPU model with the same weights: the per-passage negative
// log-likelihood within 1e-4 relative in f32 and within 3e-2 in bf16 (the
// model's bf16 noise, docs/testing.md), and the same greedy verdicts in f32.
// Without a GPU every test skips.
#include <cmath>

#include "cuda_test_util.h"
#include "data/tokenizer.h"
#include "trainer/lambada_eval.h"

namespace rwkv {
namespace {

TEST(CudaLambada, PassageScoresFollowTheCpuInF32AndBf16) {
  RWKV_REQUIRE_GPU();
  const Rwkv4Shape shape{2, 64, 257, 128};
  Rwkv4Model cpu(shape, DType::F32);
  uint64_t seed = 41;
  for (NamedTensor& e : cpu.params().entries())
    e.value.copy_from(test::random_tensor(e.value.shape(), DType::F32, seed++, -0.5, 0.5));
  const auto bytes = data::load_tokenizer("bytes");
  std::vector<LambadaPassage> passages;
  for (const std::string text : {"the cat sat on the mat", "He said that she would come back tomorrow",
                                 "Numbers 1 2 3 and then four"}) {
    const size_t cut = text.find_last_of(' ');
    passages.push_back({bytes->encode(text.substr(0, cut)), bytes->encode(text.substr(cut)), text});
  }
  for (const Precision precision : {Precision::FP32, Precision::BF16}) {
    const bool bf16 = precision == Precision::BF16;
    SCOPED_TRACE(bf16 ? "bf16" : "f32");
    Rwkv4Model gpu(shape, DType::F32, false, Device::cuda(0), Rwkv4Partition{}, nullptr, precision);
    for (size_t i = 0; i < gpu.params().entries().size(); ++i)
      gpu.params().entries()[i].value.copy_from(cpu.params().entries()[i].value);
    gpu.refresh_compute_copies();
    const double rtol = bf16 ? 3e-2 : 1e-4;
    for (const LambadaPassage& p : passages) {
      const PassageScore want = score_passage(cpu, p, bytes->eod_id()), got = score_passage(gpu, p, bytes->eod_id());
      const double relative = std::abs(got.nll - want.nll) / want.nll;
      test::record_measured_error(str_cat(bf16 ? "bf16" : "f32", " nll of '", p.position, "'"), relative / rtol, relative);
      EXPECT_NEAR(got.nll, want.nll, rtol * want.nll) << p.position;
      if (!bf16) {
        EXPECT_EQ(got.correct, want.correct) << p.position;
      }
    }
  }
}

}  // namespace
}  // namespace rwkv
