// The precision plan (trainer/precision_plan.h) on the CPU: which parameter
// roles get a bf16 compute copy, that gradients, AdamW state, LayerNorm
// statistics and the WKV state stay f32, the bytes per parameter, the
// activation bytes of a small shape counted by hand, and the fp32 model
// reading its masters themselves (so fp32 is the model it always was).
#include <gtest/gtest.h>

#include <cstring>

#include "test_util.h"
#include "trainer/optimizer.h"
#include "trainer/precision_plan.h"
#include "trainer/rwkv4_model.h"

namespace rwkv {
namespace {

const Rwkv4Shape kShape{2, 8, 10, 32};  // L2 C8 V10 F32

TEST(PrecisionPlan, EveryParameterNameHasItsRole) {
  const ParameterStore store = declare_rwkv4_parameters(kShape, DType::F32);
  for (const NamedTensor& e : store.entries()) {
    const ParamRole role = param_role(e.name);
    // The GEMM matrices are exactly the 2-D weights (the weight-decay set).
    EXPECT_EQ(is_gemm_matrix(role), e.value.ndim() == 2) << e.name << " is " << role_name(role);
  }
  EXPECT_EQ(param_role("emb.weight"), ParamRole::Embedding);
  EXPECT_EQ(param_role("head.weight"), ParamRole::Head);
  EXPECT_EQ(param_role("blocks.1.att.output.weight"), ParamRole::AttOutput);
  EXPECT_EQ(param_role("blocks.0.ffn.value.weight"), ParamRole::FfnValue);
  EXPECT_EQ(param_role("blocks.0.ln0.bias"), ParamRole::LayerNormBias);
  EXPECT_EQ(param_role("ln_out.weight"), ParamRole::LayerNormWeight);
  EXPECT_EQ(param_role("blocks.1.att.time_decay"), ParamRole::TimeDecay);
  EXPECT_EQ(param_role("blocks.1.att.time_first"), ParamRole::TimeFirst);
  EXPECT_EQ(param_role("blocks.1.ffn.time_mix_r"), ParamRole::TimeMix);
  EXPECT_THROW(param_role("blocks.0.att.gate.weight"), Error);
}

TEST(PrecisionPlan, Bf16CopiesOnlyTheGemmMatricesAndKeepsEverythingElseF32) {
  const PrecisionPlan bf16(Precision::BF16);
  for (int r = 0; r <= static_cast<int>(ParamRole::TimeMix); ++r) {
    const ParamRole role = static_cast<ParamRole>(r);
    const ParamDTypes d = bf16.param(role);
    SCOPED_TRACE(role_name(role));
    EXPECT_EQ(d.master, DType::F32);
    EXPECT_EQ(d.grad, DType::F32);  // main_grad: accumulated in f32
    EXPECT_EQ(d.adam_m, DType::F32);
    EXPECT_EQ(d.adam_v, DType::F32);
    EXPECT_EQ(d.compute, is_gemm_matrix(role) ? DType::BF16 : DType::F32);
    EXPECT_EQ(d.has_copy(), is_gemm_matrix(role));
  }
  EXPECT_EQ(bf16.kind_dtype(ActivationKind::Activation), DType::BF16);
  EXPECT_EQ(bf16.kind_dtype(ActivationKind::ActivationGrad), DType::BF16);
  EXPECT_EQ(bf16.kind_dtype(ActivationKind::Logits), DType::BF16);
  EXPECT_EQ(bf16.kind_dtype(ActivationKind::Collective), DType::BF16);
  EXPECT_EQ(bf16.kind_dtype(ActivationKind::Statistic), DType::F32);  // LayerNorm mean/rstd, losses
  EXPECT_EQ(bf16.kind_dtype(ActivationKind::Index), DType::I32);
  EXPECT_EQ(bf16.wkv_state_dtype(), DType::F32);

  // fp32 (and the f64 test models): one dtype everywhere, no copy anywhere.
  for (DType master : {DType::F32, DType::F64}) {
    const PrecisionPlan plain(Precision::FP32, master);
    for (int r = 0; r <= static_cast<int>(ParamRole::TimeMix); ++r) {
      const ParamDTypes d = plain.param(static_cast<ParamRole>(r));
      EXPECT_FALSE(d.has_copy());
      EXPECT_EQ(d.compute, master);
      EXPECT_EQ(d.grad, master);
    }
    for (ActivationKind k : {ActivationKind::Activation, ActivationKind::ActivationGrad, ActivationKind::Logits,
                             ActivationKind::Collective, ActivationKind::Statistic})
      EXPECT_EQ(plain.kind_dtype(k), master);
    EXPECT_EQ(plain.wkv_state_dtype(), master);
  }
  EXPECT_THROW(PrecisionPlan(Precision::BF16, DType::F64), Error);  // masters are f32 in mixed precision
}

TEST(PrecisionPlan, BytesPerParameter) {
  const PrecisionPlan bf16(Precision::BF16), fp32(Precision::FP32);
  // f32 master 4 + bf16 copy 2 + f32 grad 4 + Adam m 4 + v 4.
  EXPECT_EQ(bf16.param(ParamRole::AttKey).bytes_per_element(), 4 + 2 + 4 + 4 + 4);
  EXPECT_EQ(bf16.param(ParamRole::LayerNormWeight).bytes_per_element(), 4 + 4 + 4 + 4);
  EXPECT_EQ(fp32.param(ParamRole::AttKey).bytes_per_element(), 16);
  EXPECT_EQ(PrecisionPlan(Precision::FP32, DType::F64).param(ParamRole::Head).bytes_per_element(), 32);
  // Over the model: 18 B for the 2VC + L(5C^2 + 2CF) matrix elements, 16 B for the rest.
  const ParameterStore store = declare_rwkv4_parameters(kShape, DType::F32);
  int64_t bf16_bytes = 0, fp32_bytes = 0;
  for (const NamedTensor& e : store.entries()) {
    bf16_bytes += e.value.numel() * bf16.param(e.name).bytes_per_element();
    fp32_bytes += e.value.numel() * fp32.param(e.name).bytes_per_element();
  }
  const int64_t L = 2, C = 8, V = 10, F = 32;
  const int64_t matrices = 2 * V * C + L * (5 * C * C + 2 * C * F);
  EXPECT_EQ(store.numel(), matrices + L * 11 * C + 4 * C);
  EXPECT_EQ(bf16_bytes, 18 * matrices + 16 * (store.numel() - matrices));
  EXPECT_EQ(fp32_bytes, 16 * store.numel());
}

// B2 T4 (N = 8), C8 F32 V10, 2 blocks, tp 1, by hand: per token,
//   activations  emb_out 8, x_in 2x8, 8 C-wide per block 2x64, 7 C_l-wide 2x56,
//                ffn_k_pre/ffn_k 2x64, x_final 8, head_in 8          = 408
//   logits       10
//   grad scratch d_res, d_c1..4 5x8, d_l1..4 4x8, d_f 32                = 104
//   statistics   ln0 2, ln1/ln2 2x4, ln_out 2, losses and softmax rows 6,
//                all_max/all_sum 2                                      = 20 (always f32)
//   indices      stat_arg, row_arg, all_arg 3; inputs 3 token rows       (i32)
TEST(PrecisionPlan, ActivationBytesOfASmallShapeCountedByHand) {
  const SlotDims dims{2, 4, 8, 8, 32, 10, 1, 2, false, true};
  const int64_t N = 8, half = 408 + 10 + 104, stats = 20, indices = 3, inputs = 3;
  EXPECT_EQ(PrecisionPlan(Precision::FP32).activation_set_bytes(dims), N * ((half + stats) * 4 + (indices + inputs) * 4));
  EXPECT_EQ(PrecisionPlan(Precision::BF16).activation_set_bytes(dims), N * (half * 2 + stats * 4 + (indices + inputs) * 4));
  EXPECT_EQ(PrecisionPlan(Precision::BF16).activation_set_bytes(dims, false), N * (half * 2 + stats * 4 + indices * 4));
  // With recompute the second block keeps only its input: 8x8 + 7x8 + 2x32 activations and 4 statistics fewer.
  SlotDims shared = dims;
  shared.recompute = true;
  EXPECT_EQ(PrecisionPlan(Precision::BF16).activation_set_bytes(shared),
            N * ((half - 184) * 2 + (stats - 4) * 4 + (indices + inputs) * 4));
  // The model's figure: the f32 formula it always had (9C + 7C_l + 2F_l + 4 a block per token, etc.).
  const Rwkv4Model model(kShape, DType::F32);
  const int64_t C = 8, F = 32, V = 10, L = 2;
  EXPECT_EQ(model.activation_bytes(2, 4),
            N * (L * (9 * C + 7 * C + 2 * F + 4) + 3 * C + 4 + V + 1 + 8 + 3 + 5 * C + 4 * C + F) * 4);
}

TEST(PrecisionPlan, Fp32ModelReadsItsMastersThemselves) {
  Rwkv4Model model(kShape, DType::F32);
  for (const Tensor& copy : model.compute_copies()) EXPECT_FALSE(copy.defined());
  EXPECT_EQ(model.compute_copies().size(), model.params().entries().size());
  EXPECT_EQ(model.tensors().blocks[1].att_key.raw_data(), model.params().at("blocks.1.att.key.weight").raw_data());
  EXPECT_EQ(model.tensors().head.raw_data(), model.params().at("head.weight").raw_data());
  EXPECT_EQ(model.activation_dtype(), DType::F32);
}

TEST(PrecisionPlan, Bf16ModelNeedsCuda) {
  try {
    Rwkv4Model model(kShape, DType::F32, false, Device::cpu(), Rwkv4Partition{}, nullptr, Precision::BF16);
    FAIL() << "a bf16 model on the CPU was built";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("precision bf16 needs a CUDA device"), std::string::npos) << e.what();
  }
}

// AdamW writes each compute copy from the updated master (param_copy), and
// the masters update exactly as without copies.
TEST(PrecisionPlan, AdamWWritesTheComputeCopies) {
  ParameterStore with = declare_rwkv4_parameters(kShape, DType::F32);
  init_rwkv4_reference(with, kShape, 5, 0.1);
  ParameterStore without = declare_rwkv4_parameters(kShape, DType::F32);
  copy_partition_slices(with, without);
  ParameterStore grads = with.zeros_like();
  for (NamedTensor& g : grads.entries()) g.value.copy_from(test::random_tensor(g.value.shape(), DType::F32, 7, -1, 1));
  const PrecisionPlan plan(Precision::BF16);
  std::vector<Tensor> copies;
  for (const NamedTensor& e : with.entries())
    copies.push_back(plan.param(e.name).has_copy() ? Tensor::zeros(e.value.shape(), DType::BF16) : Tensor());
  AdamWOptimizer a(with, AdamWSettings{}), b(without, AdamWSettings{});
  a.set_param_copies(copies);
  for (int step = 0; step < 2; ++step) {
    a.step(with, grads, 1e-2);
    b.step(without, grads, 1e-2);
  }
  for (size_t i = 0; i < copies.size(); ++i) {
    const Tensor& m = with.entries()[i].value;
    ASSERT_EQ(std::memcmp(m.raw_data(), without.entries()[i].value.raw_data(), m.nbytes()), 0) << with.entries()[i].name;
    if (!copies[i].defined()) continue;
    const Tensor expected = m.to_dtype(DType::BF16);
    EXPECT_EQ(std::memcmp(copies[i].raw_data(), expected.raw_data(), expected.nbytes()), 0) << with.entries()[i].name;
  }
}

}  // namespace
}  // namespace rwkv
