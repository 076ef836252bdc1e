#include "trainer/precision_plan.h"

#include "core/error.h"

namespace rwkv {

namespace {
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
}  // namespace

const char* role_name(ParamRole role) {
  switch (role) {
    case ParamRole::Embedding: return "embedding";
    case ParamRole::Head: return "head";
    case ParamRole::AttKey: return "att.key";
    case ParamRole::AttValue: return "att.value";
    case ParamRole::AttReceptance: return "att.receptance";
    case ParamRole::AttOutput: return "att.output";
    case ParamRole::FfnKey: return "ffn.key";
    case ParamRole::FfnReceptance: return "ffn.receptance";
    case ParamRole::FfnValue: return "ffn.value";
    case ParamRole::LayerNormWeight: return "layernorm weight";
    case ParamRole::LayerNormBias: return "layernorm bias";
    case ParamRole::TimeDecay: return "time_decay";
    case ParamRole::TimeFirst: return "time_first";
    case ParamRole::TimeMix: return "time_mix";
  }
  return "?";
}

ParamRole param_role(const std::string& name) {
  if (name == "emb.weight") return ParamRole::Embedding;
  if (name == "head.weight") return ParamRole::Head;
  // Block tensors end in their role; ln_out/ln0/ln1/ln2 share the LayerNorm roles.
  static const std::pair<const char*, ParamRole> suffixes[] = {
      {".att.key.weight", ParamRole::AttKey},
      {".att.value.weight", ParamRole::AttValue},
      {".att.receptance.weight", ParamRole::AttReceptance},
      {".att.output.weight", ParamRole::AttOutput},
      {".ffn.key.weight", ParamRole::FfnKey},
      {".ffn.receptance.weight", ParamRole::FfnReceptance},
      {".ffn.value.weight", ParamRole::FfnValue},
      {".att.time_decay", ParamRole::TimeDecay},
      {".att.time_first", ParamRole::TimeFirst},
  };
  for (const auto& [suffix, role] : suffixes)
    if (ends_with(name, suffix)) return role;
  if (name.find(".time_mix_") != std::string::npos) return ParamRole::TimeMix;
  const bool layernorm = name.rfind("ln_out.", 0) == 0 || name.find(".ln0.") != std::string::npos ||
                         name.find(".ln1.") != std::string::npos || name.find(".ln2.") != std::string::npos;
  if (layernorm && ends_with(name, ".weight")) return ParamRole::LayerNormWeight;
  if (layernorm && ends_with(name, ".bias")) return ParamRole::LayerNormBias;
  RWKV_FAIL("precision plan: '", name, "' is not an RWKV-4 parameter name");
}

bool is_gemm_matrix(ParamRole role) {
  switch (role) {
    case ParamRole::Embedding:
    case ParamRole::Head:
    case ParamRole::AttKey:
    case ParamRole::AttValue:
    case ParamRole::AttReceptance:
    case ParamRole::AttOutput:
    case ParamRole::FfnKey:
    case ParamRole::FfnReceptance:
    case ParamRole::FfnValue: return true;
    default: return false;
  }
}

int64_t ParamDTypes::bytes_per_element() const {
  int64_t bytes = static_cast<int64_t>(dtype_size(master) + dtype_size(grad) + dtype_size(adam_m) + dtype_size(adam_v));
  if (has_copy()) bytes += static_cast<int64_t>(dtype_size(compute));
  return bytes;
}

PrecisionPlan::PrecisionPlan(Precision precision, DType master) : precision_(precision), master_(master) {
  RWKV_CHECK(master == DType::F32 || master == DType::F64, "precision plan: master dtype ", dtype_name(master),
             ", expected f32 or f64");
  RWKV_CHECK(precision == Precision::FP32 || master == DType::F32, "precision plan: bf16 mixed precision keeps f32 "
             "master weights; got master dtype ", dtype_name(master));
}

ParamDTypes PrecisionPlan::param(ParamRole role) const {
  // Gradients and AdamW state always in the master dtype: bf16 gradients would
  // lose the small per-micro-batch contributions as they accumulate, and
  // Adam's v (squares of gradients) needs f32 range and resolution.
  ParamDTypes d{master_, master_, master_, master_, master_};
  if (precision_ == Precision::BF16 && is_gemm_matrix(role)) d.compute = DType::BF16;
  return d;
}

// Activations, their gradients, logits and tensor-parallel staging share one
// dtype: the element-wise kernels take an op's values and gradients in one
// dtype (sigmoid_gate_backward reads r with dout = d_res), cuBLAS wants both
// operands alike (dy with W), and the model reuses d_l1 as forward scratch.
DType PrecisionPlan::kind_dtype(ActivationKind kind) const {
  switch (kind) {
    case ActivationKind::Activation:
    case ActivationKind::ActivationGrad:
    case ActivationKind::Logits:
    case ActivationKind::Collective: return precision_ == Precision::BF16 ? DType::BF16 : master_;
    case ActivationKind::Statistic: return master_;
    case ActivationKind::Index:
    case ActivationKind::Input: return DType::I32;
  }
  return master_;
}

std::vector<ActivationBuffer> PrecisionPlan::activation_buffers(const SlotDims& d) const {
  const int64_t N = d.B * d.T;
  std::vector<ActivationBuffer> out;
  auto add = [&](const char* name, ActivationKind kind, int64_t elements, int64_t count = 1) {
    if (count > 0) out.push_back({name, kind, kind_dtype(kind), elements, count});
  };
  using K = ActivationKind;
  add("tokens, targets, tokens_local", K::Input, N, 3);
  add("emb_out", K::Activation, N * d.C);
  add("ln0_mean, ln0_rstd", K::Statistic, N, 2);
  // Each block's input is its own; with recompute every other buffer is one
  // set shared by all blocks (backward re-runs the block's forward first).
  const int64_t sets = d.recompute ? (d.blocks > 0 ? 1 : 0) : d.blocks;
  add("x_in", K::Activation, N * d.C, d.blocks);
  add("att_in, att_xk, att_xv, att_xr, x_mid, ffn_in, ffn_xk, ffn_xr", K::Activation, N * d.C, 8 * sets);
  add("ln1_mean, ln1_rstd, ln2_mean, ln2_rstd", K::Statistic, N, 4 * sets);
  add("att_k, att_v, att_r, att_wkv, att_gated, ffn_r, ffn_v", K::Activation, N * d.C_l, 7 * sets);
  add("ffn_k_pre, ffn_k", K::Activation, N * d.F_l, 2 * sets);
  add("x_final", K::Activation, N * d.C);
  if (d.has_head) {
    add("head_in", K::Activation, N * d.C);
    add("ln_out_mean, ln_out_rstd", K::Statistic, N, 2);
    add("logits", K::Logits, N * d.V_l);
    add("losses, stat_max, stat_sum, row_max, row_sum, target_logit", K::Statistic, N, 6);
    add("stat_arg, row_arg", K::Index, N, 2);
    add("all_max, all_sum", K::Statistic, d.tp * N, 2);
    add("all_arg", K::Index, d.tp * N);
  }
  add("d_res, d_c1, d_c2, d_c3, d_c4", K::ActivationGrad, N * d.C, 5);
  add("d_l1, d_l2, d_l3, d_l4", K::ActivationGrad, N * d.C_l, 4);
  add("d_f", K::ActivationGrad, N * d.F_l);
  if (d.tp > 1) {
    add("tp_full", K::Collective, N * d.C);
    add("tp_blocks", K::Collective, d.tp * N * d.C_l);
  }
  return out;
}

int64_t PrecisionPlan::activation_set_bytes(const SlotDims& dims, bool with_inputs) const {
  int64_t bytes = 0;
  for (const ActivationBuffer& b : activation_buffers(dims))
    if (with_inputs || b.kind != ActivationKind::Input) bytes += b.bytes();
  return bytes;
}

}  // namespace rwkv
