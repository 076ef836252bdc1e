// RWKV-4 forward and backward, layer by layer (maths in rwkv4_model.h), for
// one pipeline stage and one tensor-parallel slice (rwkv4_partition.h).
// N = B*T rows; every [B, T, X] activation is also viewed as [N, X] for GEMMs.
// C_l = C/tp, F_l = F/tp, V_l = V_p/tp are this rank's widths (C, F, V_p at tp = 1).
//
// Tensor-parallel communication per block (Megatron's pattern, with the
// channel mix's receptance gate on local channels):
//   time mix    forward:  x_mid = x_in + all_reduce(gated_l O_l^T)
//               backward: all_reduce(d ln1-output)
//   channel mix forward:  v_l = reduce_scatter(k_l Wv_l^T by channel block);
//                         x_out = x_mid + all_gather(sigmoid(r_l) * v_l)
//               backward: d v = all_gather(d v_l); all_reduce(d ln2-output)
// That is 2 all-reduce volumes forward and 2.5 backward (Megatron: 2 and 2;
// the extra half is the channel mix's value gradient, which every rank needs).
#include "trainer/rwkv4_model.h"

#include <cmath>
#include <set>

#include "kernels/activations.h"
#include "kernels/cross_entropy.h"
#include "kernels/dropout.h"
#include "kernels/embedding.h"
#include "kernels/gemm.h"
#include "kernels/layernorm.h"
#include "kernels/reduce.h"
#include "kernels/tensor_parallel.h"
#include "kernels/token_shift.h"
#include "kernels/wkv4.h"
#include "parallel/comm.h"

namespace rwkv {

// What forward keeps for backward, per block. C-wide tensors are [B, T, C],
// local ones [B, T, C_l] or [B, T, F_l], statistics [N].
struct BlockActivations {
  Tensor x_in;                                // block input (the residual stream)
  Tensor att_in, ln1_mean, ln1_rstd;          // ln1(x_in)
  Tensor att_xk, att_xv, att_xr;              // token-shifted inputs
  Tensor att_k, att_v, att_r;                 // [.., C_l]: K xk, V xv, R xr (r before the sigmoid)
  Tensor att_wkv, att_gated;                  // [.., C_l]: wkv(k, v), sigmoid(r) * wkv
  Tensor x_mid;                               // x_in + att output
  Tensor ffn_in, ln2_mean, ln2_rstd;          // ln2(x_mid)
  Tensor ffn_xk, ffn_xr;
  Tensor ffn_k_pre, ffn_k;                    // [.., F_l]: K xk and relu(K xk)^2
  Tensor ffn_r, ffn_v;                        // [.., C_l]: R xr (before sigmoid), V k (summed over tp)
};

struct Rwkv4Model::Activations {
  int64_t B = 0, T = 0;
  // The memory every buffer below views, one flat tensor per buffer in the
  // order slot() asks for them. A later (B, T) whose buffers fit reuses it:
  // evaluation changes shape nearly every batch, and fresh host buffers cost
  // their page faults again each time (~30% of an rwkv-eval run on the CPU).
  std::vector<Tensor> backing;
  Tensor tokens, targets;                     // [B, T] i32 on the model's device
  std::optional<DropoutKey> dropout;          // this micro-batch's mask key (site set per use), or none
  Tensor tokens_local;                        // [N] i32: this rank's embedding rows, -1 elsewhere
  Tensor emb_out, ln0_mean, ln0_rstd;         // emb[tokens] [B, T, C]
  std::vector<BlockActivations> blocks;       // this stage's blocks
  Tensor x_final;                             // output of the stage's last block [B, T, C]
  Tensor head_in, ln_out_mean, ln_out_rstd;   // ln_out(x_final)
  Tensor logits;                              // [N, V_l] (overwritten by dlogits in backward)
  Tensor losses;                              // [N] (tp = 1, unpadded vocabulary)
  // Vocab-parallel cross-entropy: row statistics, gathered [tp, N], merged [N].
  Tensor stat_max, stat_sum, stat_arg, all_max, all_sum, all_arg, row_max, row_sum, row_arg, target_logit;
  // Gradient scratch, reused by every block.
  Tensor d_res;                               // gradient of the residual stream [B, T, C]
  Tensor d_c1, d_c2, d_c3, d_c4;              // [B, T, C]
  Tensor d_l1, d_l2, d_l3, d_l4;              // [B, T, C_l]
  Tensor d_f;                                 // [B, T, F_l]
  Tensor tp_full;                             // [N, C]: partial sums before an all-reduce
  Tensor tp_blocks;                           // [tp, N, C_l]: channel blocks of all ranks
};

namespace {
Tensor rows(const Tensor& t) { return t.view({t.dim(0) * t.dim(1), t.dim(2)}); }  // [B, T, X] -> [N, X]

// Sum of a loss vector in double, in index order.
double sum_values(const Tensor& t) {
  double sum = 0.0;
  if (t.dtype() == DType::F64) {
    for (double x : t.to_vector<double>()) sum += x;
  } else {
    for (float x : t.to_vector<float>()) sum += static_cast<double>(x);
  }
  return sum;
}

void check_batch(const char* op, const Tensor& tokens, const Tensor& targets) {
  expect_ndim(op, "tokens", tokens, 2, "[B, T]");
  expect_dtype(op, "tokens", tokens, DType::I32);
  expect_shape(op, "targets", targets, tokens.shape(), "[B, T]");
  expect_dtype(op, "targets", targets, DType::I32);
}
}  // namespace

Rwkv4Model::Rwkv4Model(const Rwkv4Shape& shape, DType dtype, bool recompute, Device device,
                       const Rwkv4Partition& partition, parallel::Communicator* tp, Precision precision)
    : shape_(shape),
      dtype_(dtype),
      plan_(precision, dtype),
      recompute_(recompute),
      device_(device),
      part_(partition.layer_end == 0 ? Rwkv4Partition::whole(shape) : partition),
      tp_(tp),
      params_(declare_rwkv4_parameters(shape, dtype, device, part_)) {
  RWKV_CHECK(part_.tp_size == 1 || (tp_ != nullptr && tp_->size() == part_.tp_size && tp_->rank() == part_.tp_rank),
             "Rwkv4Model: tensor parallelism tp=", part_.tp_size, " needs its tp communicator of that size");
  RWKV_CHECK(precision == Precision::FP32 || device_.is_cuda(), "Rwkv4Model: precision bf16 needs a CUDA device, "
             "got ", device_.str(), " (the CPU kernels compute in f32 or f64 only)");
  // The compute view: a bf16 copy where the plan says so, else the master
  // tensor itself (same storage: fp32 reads exactly what it always read).
  // The bf16 copies are views of one flat buffer in the store's order.
  bool any_copy = false;
  for (const NamedTensor& e : params_.entries()) {
    const ParamDTypes d = plan_.param(e.name);
    RWKV_CHECK(!d.has_copy() || d.compute == DType::BF16, "Rwkv4Model: compute copy of '", e.name, "' in ",
               dtype_name(d.compute), "; the plan's copies are bf16");
    any_copy = any_copy || d.has_copy();
  }
  if (any_copy) copies_flat_ = Tensor::zeros({params_.numel()}, DType::BF16, device_);
  int64_t flat_offset = 0;
  for (const NamedTensor& e : params_.entries()) {
    NamedTensor c = e;
    const ParamDTypes d = plan_.param(e.name);
    if (d.has_copy()) c.value = copies_flat_.slice_rows(flat_offset, e.value.numel()).view(e.value.shape());
    flat_offset += e.value.numel();
    copies_.push_back(d.has_copy() ? c.value : Tensor());
    compute_.entries().push_back(c);
  }
  p_ = bind_rwkv4_tensors(compute_, shape_, part_);
  // Where each block's parameters start in the store (reference order: emb,
  // blocks in order, ln_out, head), for the hook that reports gradients final.
  const std::vector<NamedTensor>& entries = params_.entries();
  tail_first_entry_ = entries.size();
  for (int64_t l = part_.layer_begin; l < part_.layer_end; ++l) {
    // Block 0's ln0 (after ln1 and ln2 in the reference order) acts on the
    // embedding: its gradient is final only after the embedding's, so block
    // 0 reports from the entry after it (its ln1/ln2 join at the end).
    const std::string prefix = str_cat("blocks.", l, ".");
    size_t first = entries.size();
    for (size_t i = 0; i < entries.size() && first == entries.size(); ++i)
      if (entries[i].name.rfind(prefix, 0) == 0) first = i;
    if (l == 0)
      for (size_t i = first; i < entries.size(); ++i)
        if (entries[i].name.rfind("blocks.0.ln0.", 0) == 0) first = i + 1;
    RWKV_CHECK(first < entries.size() && (block_first_entry_.empty() || first > block_first_entry_.back()),
               "Rwkv4Model: the parameters of block ", l, " are not after those of the block before");
    block_first_entry_.push_back(first);
  }
  for (size_t i = 0; i < entries.size(); ++i)
    if (entries[i].name == "ln_out.weight") tail_first_entry_ = i;
  refresh_compute_copies();
}

void Rwkv4Model::allocate_grads() {
  if (grads_allocated_) return;
  RWKV_CHECK(!masters_released_, "internal: Rwkv4Model's gradients are first asked for after its masters were "
             "released (release_copied_masters allocates them before it releases)");
  grads_ = params_.zeros_like_flat();
  g_ = bind_rwkv4_tensors(grads_, shape_, part_);
  grads_allocated_ = true;
  bind_weight_grads();
}

void Rwkv4Model::set_frozen(std::vector<bool> frozen_entries) {
  RWKV_CHECK(frozen_entries.empty() || frozen_entries.size() == params_.entries().size(),
             "Rwkv4Model::set_frozen: ", frozen_entries.size(), " flags for ", params_.entries().size(), " parameters");
  frozen_ = std::move(frozen_entries);
  if (grads_allocated_) bind_weight_grads();
  frozen_leading_blocks_ = 0;
  if (frozen_.empty() || !part_.has_embedding()) return;
  std::set<std::string> frozen_names;
  for (size_t i = 0; i < frozen_.size(); ++i)
    if (frozen_[i]) frozen_names.insert(params_.entries()[i].name);
  frozen_leading_blocks_ = frozen_leading_blocks(
      shape_, [&](const std::string& n) { return frozen_names.count(n) > 0; }, part_.layer_begin, part_.layer_end);
}

int64_t frozen_leading_blocks(const Rwkv4Shape& shape, const std::function<bool(const std::string&)>& frozen,
                              int64_t layer_begin, int64_t layer_end) {
  const std::vector<Rwkv4TensorSpec> specs = rwkv4_tensor_specs(shape);  // the reference names, whole model
  // Whether every tensor whose name starts with prefix is frozen (and one exists).
  auto all_frozen = [&](const std::string& prefix) {
    bool any = false;
    for (const Rwkv4TensorSpec& spec : specs) {
      if (spec.name.rfind(prefix, 0) != 0) continue;
      any = true;
      if (!frozen(spec.name)) return false;
    }
    return any;
  };
  if (!all_frozen("emb.")) return 0;
  int64_t count = 0;
  while (layer_begin + count < layer_end && all_frozen(str_cat("blocks.", layer_begin + count, "."))) ++count;
  return count;
}

void Rwkv4Model::bind_weight_grads() {
  gw_ = g_;
  std::set<const void*> frozen;
  for (size_t i = 0; i < frozen_.size(); ++i)
    if (frozen_[i]) frozen.insert(grads_.entries()[i].value.raw_data());
  if (frozen.empty()) return;
  auto skip_if_frozen = [&](Tensor& t) {
    if (t.defined() && frozen.count(t.raw_data()) > 0) t = Tensor();
  };
  skip_if_frozen(gw_.emb);
  skip_if_frozen(gw_.head);
  for (Rwkv4BlockTensors& b : gw_.blocks) {
    for (Tensor* t : {&b.att_key, &b.att_value, &b.att_receptance, &b.att_output, &b.ffn_key, &b.ffn_receptance,
                      &b.ffn_value})
      skip_if_frozen(*t);
  }
}

void Rwkv4Model::refresh_compute_copies() {
  RWKV_CHECK(!masters_released_, "Rwkv4Model::refresh_compute_copies: the masters of the copied tensors are released "
             "(ZeRO-1 keeps them as shards; its all-gather writes the copies)");
  for (size_t i = 0; i < copies_.size(); ++i)
    if (copies_[i].defined()) cast(params_.entries()[i].value, copies_[i]);
}

int64_t Rwkv4Model::release_copied_masters() {
  allocate_grads();  // they are shaped like the masters, so before those go
  int64_t freed = 0;
  for (size_t i = 0; i < copies_.size(); ++i) {
    NamedTensor& e = params_.entries()[i];
    if (!copies_[i].defined() || !e.value.defined()) continue;
    // Where the slice sits stays known without the tensor (checkpoint boxes).
    if (e.global_shape.empty()) {
      e.global_shape = e.value.shape();
      e.global_offset = Shape(e.value.shape().size(), 0);
    }
    freed += static_cast<int64_t>(e.value.nbytes());
    e.value = Tensor();
    masters_released_ = true;
  }
  return freed;
}

void Rwkv4Model::restore_copied_masters() {
  for (size_t i = 0; i < copies_.size(); ++i) {
    NamedTensor& e = params_.entries()[i];
    if (copies_[i].defined() && !e.value.defined()) e.value = Tensor::zeros(copies_[i].shape(), grads().entries()[i].value.dtype(), device_);
  }
  masters_released_ = false;
}

void Rwkv4Model::tp_all_reduce(Tensor& x) {
  if (part_.tp_size > 1) tp_->all_reduce_sum(x);
}

void Rwkv4Model::reduce_tp_partial_grads() { reduce_tp_partial_grads(0, grads_.entries().size()); }

void Rwkv4Model::reduce_tp_partial_grads(size_t begin, size_t end) {
  for (size_t i = begin; i < end && i < grads_.entries().size(); ++i) {
    NamedTensor& g = grads_.entries()[i];
    if (g.tp_partial_grad) tp_all_reduce(g.value);
  }
}

void Rwkv4Model::begin_loss_sum() {
  loss_sum_ = Tensor::zeros({1}, DType::F64, device_);
}

double Rwkv4Model::end_loss_sum() {
  RWKV_CHECK(loss_sum_.defined(), "Rwkv4Model::end_loss_sum without begin_loss_sum");
  const double sum = loss_sum_.to(Device::cpu()).data<double>()[0];  // the step's one copy to the host
  loss_sum_ = Tensor();
  return sum;
}

void Rwkv4Model::report_grads_final(size_t first_entry) {
  if (grads_final_hook_) grads_final_hook_(first_entry);
}

void Rwkv4Model::weights_needed(size_t end_entry) {
  if (weights_needed_hook_) weights_needed_hook_(end_entry);
}

size_t Rwkv4Model::block_end_entry(size_t local_block) const {
  return local_block + 1 < block_first_entry_.size() ? block_first_entry_[local_block + 1] : tail_first_entry_;
}

int64_t Rwkv4Model::activation_bytes(int64_t B, int64_t T) const {
  const int64_t tp = part_.tp_size;
  const SlotDims dims{B, T, shape_.n_embd, shape_.n_embd / tp, shape_.dim_ffn / tp, part_.local_vocab(), tp,
                      part_.layer_end - part_.layer_begin, recompute_, part_.has_head(shape_)};
  const int64_t slack = B * T * static_cast<int64_t>(dtype_size(plan_.kind_dtype(ActivationKind::Statistic)));
  return plan_.activation_set_bytes(dims, false) + slack;
}

int64_t Rwkv4Model::held_activation_bytes() const {
  int64_t bytes = 0;
  for (const std::shared_ptr<Activations>& held : slots_)
    if (held)
      for (const Tensor& flat : held->backing) bytes += static_cast<int64_t>(flat.nbytes());
  return bytes;
}

Rwkv4Model::Activations& Rwkv4Model::existing_slot(int index, const char* op) {
  RWKV_CHECK(index >= 0 && static_cast<size_t>(index) < slots_.size() && slots_[static_cast<size_t>(index)], op,
             ": micro-batch slot ", index, " has no forward pass");
  return *slots_[static_cast<size_t>(index)];
}

Rwkv4Model::Activations& Rwkv4Model::slot(int index, int64_t B, int64_t T) {
  RWKV_CHECK(index >= 0, "Rwkv4Model: negative micro-batch slot ", index);
  if (static_cast<size_t>(index) >= slots_.size()) slots_.resize(static_cast<size_t>(index) + 1);
  std::shared_ptr<Activations>& held = slots_[static_cast<size_t>(index)];
  if (held && held->B == B && held->T == T) return *held;
  const int64_t C = shape_.n_embd, tp = part_.tp_size, Cl = C / tp, Fl = shape_.dim_ffn / tp, N = B * T;
  auto act = std::make_shared<Activations>();
  Activations& a = *act;
  a.B = B;
  a.T = T;
  // Buffers only grow: the i-th buffer asked for views the front of the
  // i-th backing tensor, which is replaced only when it is too small. Every
  // buffer's size is a multiple of N, so a smaller batch fits in all of them.
  // The old views go first, so a backing that must grow is freed before its
  // replacement is allocated.
  if (held) a.backing = std::move(held->backing);
  held.reset();
  size_t next_backing = 0;
  auto buffer = [&](const Shape& shape, DType d) {
    const int64_t n = shape_numel(shape);
    if (next_backing == a.backing.size()) a.backing.emplace_back();
    Tensor& flat = a.backing[next_backing++];
    if (!flat.defined() || flat.dtype() != d || flat.numel() < n) flat = Tensor::empty({n}, d, device_);
    return flat.slice_rows(0, n).view(shape);
  };
  // dtypes from the precision plan (the buffer list in
  // PrecisionPlan::activation_buffers mirrors this function).
  const DType act_dt = plan_.kind_dtype(ActivationKind::Activation), grad_dt = plan_.kind_dtype(ActivationKind::ActivationGrad);
  const DType st = plan_.kind_dtype(ActivationKind::Statistic);
  auto btc = [&](DType d) { return buffer({B, T, C}, d); };
  auto btl = [&](DType d) { return buffer({B, T, Cl}, d); };
  auto btf = [&](DType d) { return buffer({B, T, Fl}, d); };
  auto stat = [&] { return buffer({N}, st); };
  a.tokens = buffer({B, T}, DType::I32);
  a.targets = buffer({B, T}, DType::I32);
  a.tokens_local = buffer({N}, DType::I32);
  a.emb_out = btc(act_dt);
  a.ln0_mean = stat();
  a.ln0_rstd = stat();
  // With recompute, every block's activations but its input share one set of
  // buffers: backward re-runs the block's forward from x_in just before it
  // needs them.
  BlockActivations shared;
  for (int64_t l = part_.layer_begin; l < part_.layer_end; ++l) {
    if (recompute_ && l > part_.layer_begin) {
      BlockActivations b = shared;
      b.x_in = btc(act_dt);
      a.blocks.push_back(b);
      continue;
    }
    BlockActivations b;
    b.x_in = btc(act_dt);
    b.att_in = btc(act_dt), b.ln1_mean = stat(), b.ln1_rstd = stat();
    b.att_xk = btc(act_dt), b.att_xv = btc(act_dt), b.att_xr = btc(act_dt);
    b.att_k = btl(act_dt), b.att_v = btl(act_dt), b.att_r = btl(act_dt);
    b.att_wkv = btl(act_dt), b.att_gated = btl(act_dt);
    b.x_mid = btc(act_dt);
    b.ffn_in = btc(act_dt), b.ln2_mean = stat(), b.ln2_rstd = stat();
    b.ffn_xk = btc(act_dt), b.ffn_xr = btc(act_dt);
    b.ffn_k_pre = btf(act_dt), b.ffn_k = btf(act_dt);
    b.ffn_r = btl(act_dt), b.ffn_v = btl(act_dt);
    a.blocks.push_back(b);
    shared = b;
  }
  a.x_final = btc(act_dt);
  if (part_.has_head(shape_)) {
    a.head_in = btc(act_dt), a.ln_out_mean = stat(), a.ln_out_rstd = stat();
    a.logits = buffer({N, part_.local_vocab()}, plan_.kind_dtype(ActivationKind::Logits));
    a.losses = stat();
    a.stat_max = stat(), a.stat_sum = stat(), a.row_max = stat(), a.row_sum = stat(), a.target_logit = stat();
    a.stat_arg = buffer({N}, DType::I32), a.row_arg = buffer({N}, DType::I32);
    a.all_max = buffer({tp, N}, st), a.all_sum = buffer({tp, N}, st);
    a.all_arg = buffer({tp, N}, DType::I32);
  }
  a.d_res = btc(grad_dt), a.d_c1 = btc(grad_dt), a.d_c2 = btc(grad_dt), a.d_c3 = btc(grad_dt), a.d_c4 = btc(grad_dt);
  a.d_l1 = btl(grad_dt), a.d_l2 = btl(grad_dt), a.d_l3 = btl(grad_dt), a.d_l4 = btl(grad_dt);
  a.d_f = btf(grad_dt);
  if (tp > 1) {
    const DType coll = plan_.kind_dtype(ActivationKind::Collective);
    a.tp_full = buffer({N, C}, coll);
    a.tp_blocks = buffer({tp, N, Cl}, coll);
  }
  held = act;
  return a;
}

// ---------------------------------------------------------------- forward

Tensor Rwkv4Model::embedding_rows(const Tensor& host_tokens) const {
  RWKV_CHECK(host_tokens.is_cpu(), "internal: embedding_rows takes host tokens, got ", host_tokens.str());
  // Vocab-parallel embedding: each rank looks up the tokens whose rows it
  // holds (-1: another rank's row, a zero row here), then the rows are summed.
  const std::vector<int32_t> ids = host_tokens.to_vector<int32_t>();
  const int64_t v0 = part_.vocab_begin(), valid = part_.valid_vocab(shape_.vocab_size);
  std::vector<int32_t> local(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    RWKV_CHECK(ids[i] >= 0 && ids[i] < shape_.vocab_size, "embedding: token id ", ids[i], " at position ", i,
               " is outside the vocabulary [0, ", shape_.vocab_size,
               ")\n  ---> HINT: the data was tokenized with a larger vocabulary than model.vocab_size");
    local[i] = ids[i] >= v0 && ids[i] < v0 + valid ? static_cast<int32_t>(ids[i] - v0) : -1;
  }
  return Tensor::from_vector<int32_t>(local, {static_cast<int64_t>(local.size())});
}

void Rwkv4Model::stage_forward(int slot_index, const Tensor& tokens, const Tensor& input, const Tensor& tokens_local) {
  const char* op = "Rwkv4Model::stage_forward";
  expect_ndim(op, "tokens", tokens, 2, "[B, T]");
  expect_dtype(op, "tokens", tokens, DType::I32);
  Activations& a = slot(slot_index, tokens.dim(0), tokens.dim(1));
  const int64_t N = a.B * a.T;
  a.tokens.copy_from(tokens);
  a.dropout.reset();
  if (dropout_ && dropout_->p > 0.0f) {
    const DropoutPlan& d = *dropout_;
    a.dropout = DropoutKey{d.p, d.seed, 0, d.first_sample + static_cast<uint64_t>(next_micro_) * d.micro_stride,
                           d.row_stride};
  }
  next_micro_ = 0;
  if (part_.has_embedding()) {
    weights_needed(block_first_entry_.empty() ? tail_first_entry_ : block_first_entry_[0]);  // emb, block 0's LayerNorms
    if (tokens_local.defined()) {
      expect_shape(op, "tokens_local", tokens_local, {N}, "[B*T]: embedding_rows of the tokens");
      a.tokens_local.copy_from(tokens_local);
    } else {
      a.tokens_local.copy_from(embedding_rows(tokens.is_cpu() ? tokens : tokens.to(Device::cpu())));
    }
    Tensor x0 = rows(a.emb_out);
    embedding_forward(a.tokens_local, p_.emb, x0);
    tp_all_reduce(x0);
    drop(a, a.emb_out, 0);
    Tensor x_in0 = rows(a.blocks[0].x_in);
    layernorm_forward(x0, p_.blocks[0].ln0_weight, p_.blocks[0].ln0_bias, x_in0, a.ln0_mean, a.ln0_rstd);
  } else {
    expect_shape(op, "input", input, {a.B, a.T, shape_.n_embd}, "[B, T, C]: the previous stage's output");
    a.blocks[0].x_in.copy_from(input);
  }
  for (size_t l = 0; l < a.blocks.size(); ++l) {
    weights_needed(block_end_entry(l));
    forward_block(a, static_cast<int64_t>(l));
  }
}

const Tensor& Rwkv4Model::stage_output(int slot_index) { return existing_slot(slot_index, "stage_output").x_final; }

// One block from its input b.x_in; the output goes into the next block's x_in
// (or x_final), so the residual stream is stored once per block.
void Rwkv4Model::forward_block(Activations& a, int64_t l) {
  const Rwkv4BlockTensors& w = p_.blocks[static_cast<size_t>(l)];
  BlockActivations& b = a.blocks[static_cast<size_t>(l)];
  const int64_t tp = part_.tp_size, Cl = shape_.n_embd / tp;
  Tensor x_in = rows(b.x_in);
  // --- time mixing
  Tensor att_in = rows(b.att_in);
  layernorm_forward(x_in, w.ln1_weight, w.ln1_bias, att_in, b.ln1_mean, b.ln1_rstd);
  token_shift_forward(b.att_in, {w.att_mix_k, w.att_mix_v, w.att_mix_r}, {b.att_xk, b.att_xv, b.att_xr});
  Tensor k = rows(b.att_k), v = rows(b.att_v), r = rows(b.att_r);
  linear_forward(rows(b.att_xk), w.att_key, k);
  linear_forward(rows(b.att_xv), w.att_value, v);
  linear_forward(rows(b.att_xr), w.att_receptance, r);
  wkv4_forward(w.att_time_decay, w.att_time_first, b.att_k, b.att_v, b.att_wkv);
  sigmoid_gate_forward(b.att_r, b.att_wkv, b.att_gated);
  Tensor x_mid = rows(b.x_mid);
  x_mid.copy_from(x_in);
  if (tp == 1) {
    matmul(rows(b.att_gated), false, w.att_output, true, x_mid, 1.0f, 1.0f);  // x_mid = x_in + O gated
  } else {
    linear_forward(rows(b.att_gated), w.att_output, a.tp_full);  // this rank's share of O gated
    tp_->all_reduce_sum(a.tp_full);
    add_(x_mid, a.tp_full);
  }
  drop(a, b.x_mid, dropout_site(l, 0));
  // --- channel mixing
  Tensor ffn_in = rows(b.ffn_in);
  layernorm_forward(x_mid, w.ln2_weight, w.ln2_bias, ffn_in, b.ln2_mean, b.ln2_rstd);
  token_shift_forward(b.ffn_in, {w.ffn_mix_k, w.ffn_mix_r}, {b.ffn_xk, b.ffn_xr});
  Tensor fk_pre = rows(b.ffn_k_pre);
  linear_forward(rows(b.ffn_xk), w.ffn_key, fk_pre);
  squared_relu_forward(b.ffn_k_pre, b.ffn_k);
  Tensor fr = rows(b.ffn_r), fv = rows(b.ffn_v);
  linear_forward(rows(b.ffn_xr), w.ffn_receptance, fr);
  Tensor& block_out = l + 1 < static_cast<int64_t>(a.blocks.size()) ? a.blocks[static_cast<size_t>(l + 1)].x_in : a.x_final;
  Tensor x_out = rows(block_out);
  if (tp == 1) {
    linear_forward(rows(b.ffn_k), w.ffn_value, fv);
    sigmoid_gate_forward(fr, fv, x_out);
    add_(x_out, x_mid);
    drop(a, block_out, dropout_site(l, 1));
    return;
  }
  // v by channel block q: k_l Wv_l[q]^T, summed over ranks into rank q's block.
  for (int64_t q = 0; q < tp; ++q) {
    Tensor block = a.tp_blocks.slice_rows(q, 1).view({x_out.dim(0), Cl});
    linear_forward(rows(b.ffn_k), w.ffn_value.slice_rows(q * Cl, Cl), block);
  }
  tp_->reduce_scatter_sum(a.tp_blocks, fv);
  Tensor gated = rows(a.d_l1);  // scratch: sigmoid(r_l) * v_l
  sigmoid_gate_forward(fr, fv, gated);
  tp_->all_gather(gated, a.tp_blocks);
  x_out.copy_from(x_mid);
  for (int64_t q = 0; q < tp; ++q) add_columns(a.tp_blocks.slice_rows(q, 1).view({x_out.dim(0), Cl}), x_out, q * Cl);
  drop(a, block_out, dropout_site(l, 1));
}

uint32_t Rwkv4Model::dropout_site(int64_t local_layer, int which) const {
  return static_cast<uint32_t>(1 + 2 * (part_.layer_begin + local_layer) + which);
}

void Rwkv4Model::drop(const Activations& a, Tensor& x, uint32_t site) const {
  if (!a.dropout) return;
  DropoutKey key = *a.dropout;
  key.site = site;
  rwkv::dropout_(x, key);
}

// ---------------------------------------------------------------- the loss

// ln_out, head and the cross-entropy of the last stage. Losses per row go to
// a.losses (plain) or are assembled from the vocab-parallel statistics; with
// dlogits, the gradient (scaled by loss_scale, plus L2Wrap) replaces the logits.
void Rwkv4Model::head_forward_loss(Activations& a, const Tensor& targets, Tensor* dlogits, float loss_scale,
                                   float l2wrap_factor) {
  const int64_t N = a.B * a.T;
  weights_needed(params_.entries().size());  // ln_out, head
  Tensor head_in = rows(a.head_in);
  layernorm_forward(rows(a.x_final), p_.ln_out_weight, p_.ln_out_bias, head_in, a.ln_out_mean, a.ln_out_rstd);
  linear_forward(head_in, p_.head, a.logits);
  a.targets.copy_from(targets);
  const Tensor target_rows = a.targets.view({N});
  const bool plain = part_.tp_size == 1 && part_.padded_vocab == shape_.vocab_size;
  if (plain) {
    if (dlogits) {
      cross_entropy_forward_backward(a.logits, target_rows, a.losses, *dlogits, loss_scale, l2wrap_factor);
    } else {
      cross_entropy_forward(a.logits, target_rows, a.losses);
    }
    return;
  }
  const int64_t valid = part_.valid_vocab(shape_.vocab_size), v0 = part_.vocab_begin();
  softmax_row_stats(a.logits, valid, v0, a.stat_max, a.stat_sum, a.stat_arg);
  if (part_.tp_size > 1) {
    tp_->all_gather(a.stat_max, a.all_max);
    tp_->all_gather(a.stat_sum, a.all_sum);
    tp_->all_gather(a.stat_arg, a.all_arg);
  } else {
    a.all_max.copy_from(a.stat_max.view(a.all_max.shape()));
    a.all_sum.copy_from(a.stat_sum.view(a.all_sum.shape()));
    a.all_arg.copy_from(a.stat_arg.view(a.all_arg.shape()));
  }
  merge_softmax_stats(a.all_max, a.all_sum, a.all_arg, a.row_max, a.row_sum, a.row_arg);
  Tensor none;
  vocab_parallel_ce_backward(a.logits, valid, v0, target_rows, a.row_max, a.row_sum, a.row_arg, a.target_logit,
                             dlogits ? *dlogits : none, loss_scale, l2wrap_factor);
  tp_all_reduce(a.target_logit);
  // loss_n = m + log s - x_target, where the statistics are (no host copy).
  ce_losses_from_stats(a.row_max, a.row_sum, a.target_logit, a.losses);
}

double Rwkv4Model::stage_loss(int slot_index, const Tensor& targets) {
  RWKV_CHECK(part_.has_head(shape_), "stage_loss: only the last pipeline stage computes the loss");
  Activations& a = existing_slot(slot_index, "stage_loss");
  head_forward_loss(a, targets, nullptr, 0.0f, 0.0f);
  return sum_values(a.losses) / static_cast<double>(a.B * a.T);
}

// ---------------------------------------------------------------- backward

double Rwkv4Model::stage_backward(int slot_index, const Tensor& targets, float loss_scale, float l2wrap_scale,
                                  const Tensor& output_grad) {
  Activations& a = existing_slot(slot_index, "stage_backward");
  allocate_grads();
  const int64_t N = a.B * a.T;
  Tensor d_res = rows(a.d_res);
  double mean_loss = 0.0;
  if (part_.has_head(shape_)) {
    check_batch("Rwkv4Model::stage_backward", a.tokens, targets);
    // The reference's L2Wrap factor is 1e-4 / (B*T) per micro-batch.
    const float l2wrap_factor = l2wrap_scale > 0.0f ? l2wrap_scale * 1e-4f / static_cast<float>(N) : 0.0f;
    Tensor& dlogits = a.logits;  // the gradient replaces the logits
    head_forward_loss(a, targets, &dlogits, loss_scale, l2wrap_factor);
    if (loss_sum_.defined()) {
      add_mean_(loss_sum_, a.losses);  // on the device; read once by end_loss_sum
    } else {
      mean_loss = sum_values(a.losses) / static_cast<double>(N);
    }
    Tensor d_head_in = rows(a.d_c1);
    linear_backward(rows(a.head_in), p_.head, dlogits, d_head_in, gw_.head);
    tp_all_reduce(d_head_in);  // each rank's vocabulary slice contributes
    d_res.zero_();
    layernorm_backward(rows(a.x_final), p_.ln_out_weight, a.ln_out_mean, a.ln_out_rstd, d_head_in, d_res,
                       g_.ln_out_weight, g_.ln_out_bias);
    report_grads_final(tail_first_entry_);  // ln_out and head
  } else {
    expect_shape("Rwkv4Model::stage_backward", "output_grad", output_grad, {a.B, a.T, shape_.n_embd},
                 "[B, T, C]: the next stage's input gradient");
    a.d_res.copy_from(output_grad);
  }
  backward_blocks(a);
  if (part_.has_embedding() && frozen_leading_blocks_ == 0) {
    const Rwkv4BlockTensors& w0 = p_.blocks[0];
    Rwkv4BlockTensors& g0 = g_.blocks[0];
    Tensor d_x0 = rows(a.d_c1);
    d_x0.zero_();
    layernorm_backward(rows(a.emb_out), w0.ln0_weight, a.ln0_mean, a.ln0_rstd, d_res, d_x0, g0.ln0_weight,
                       g0.ln0_bias);
    drop(a, a.d_c1, 0);  // through the embedding's dropout
    if (gw_.emb.defined()) embedding_backward(a.tokens_local, d_x0, gw_.emb);
  }
  return mean_loss;
}

const Tensor& Rwkv4Model::stage_input_grad(int slot_index) { return existing_slot(slot_index, "stage_input_grad").d_res; }

// Blocks last to first; a.d_res holds the gradient of the last block's output
// and ends as the gradient of the first block's input.
void Rwkv4Model::backward_blocks(Activations& a) {
  const int64_t tp = part_.tp_size, Cl = shape_.n_embd / tp, N = a.B * a.T;
  Tensor d_res = rows(a.d_res);
  for (int64_t l = static_cast<int64_t>(a.blocks.size()) - 1; l >= frozen_leading_blocks_; --l) {
    const Rwkv4BlockTensors& w = p_.blocks[static_cast<size_t>(l)];
    Rwkv4BlockTensors& g = g_.blocks[static_cast<size_t>(l)];
    Rwkv4BlockTensors& gw = gw_.blocks[static_cast<size_t>(l)];  // GEMM weight gradients (undefined: frozen)
    BlockActivations& b = a.blocks[static_cast<size_t>(l)];
    if (recompute_) forward_block(a, l);  // rewrites the shared buffers (and, identically, the next x_in)
    // Dropout after the channel mix: the gradient of the sum x_mid + ffn.
    drop(a, a.d_res, dropout_site(l, 1));
    // --- channel mixing: out = sigmoid(fr) * fv (this rank's channels), added to x_mid
    Tensor d_out = d_res;
    if (tp > 1) {
      d_out = rows(a.d_l1);
      copy_columns(d_res, part_.tp_rank * Cl, d_out);
    }
    Tensor d_fr = rows(a.d_l2), d_fv = rows(a.d_l3), d_fk = rows(a.d_f);
    sigmoid_gate_backward(rows(b.ffn_r), rows(b.ffn_v), d_out, d_fr, d_fv);
    if (tp == 1) {
      linear_backward(rows(b.ffn_k), w.ffn_value, d_fv, d_fk, gw.ffn_value);
    } else {
      // Every rank needs the whole d v: gather the channel blocks, then each
      // block meets its rows of Wv_l.
      tp_->all_gather(d_fv, a.tp_blocks);
      for (int64_t q = 0; q < tp; ++q) {
        const Tensor block = a.tp_blocks.slice_rows(q, 1).view({N, Cl});
        matmul(block, false, w.ffn_value.slice_rows(q * Cl, Cl), false, d_fk, 1.0f, q == 0 ? 0.0f : 1.0f);
        if (gw.ffn_value.defined()) {
          Tensor gv = gw.ffn_value.slice_rows(q * Cl, Cl);
          matmul(block, true, rows(b.ffn_k), false, gv, 1.0f, 1.0f);
        }
      }
    }
    squared_relu_backward(rows(b.ffn_k_pre), d_fk, d_fk);
    Tensor d_fxk = rows(a.d_c3), d_fxr = rows(a.d_c4), d_ffn_in = rows(a.d_c1);
    linear_backward(rows(b.ffn_xk), w.ffn_key, d_fk, d_fxk, gw.ffn_key);
    linear_backward(rows(b.ffn_xr), w.ffn_receptance, d_fr, d_fxr, gw.ffn_receptance);
    token_shift_backward(b.ffn_in, {w.ffn_mix_k, w.ffn_mix_r}, {a.d_c3, a.d_c4}, a.d_c1, {g.ffn_mix_k, g.ffn_mix_r});
    tp_all_reduce(d_ffn_in);
    layernorm_backward(rows(b.x_mid), w.ln2_weight, b.ln2_mean, b.ln2_rstd, d_ffn_in, d_res, g.ln2_weight, g.ln2_bias);
    // d_res is now the gradient of x_mid; through its dropout, of the sum x_in + O (sigmoid(r) * wkv)
    drop(a, a.d_res, dropout_site(l, 0));
    // --- time mixing (local channels until the input gradients)
    Tensor d_gated = rows(a.d_l1), d_r = rows(a.d_l2), d_wkv = rows(a.d_l3);
    linear_backward(rows(b.att_gated), w.att_output, d_res, d_gated, gw.att_output);
    sigmoid_gate_backward(rows(b.att_r), rows(b.att_wkv), d_gated, d_r, d_wkv);
    // wkv backward writes d_k into l1 (d_gated is consumed) and d_v into l4.
    wkv4_backward(w.att_time_decay, w.att_time_first, b.att_k, b.att_v, a.d_l3, g.att_time_decay, g.att_time_first,
                  a.d_l1, a.d_l4);
    Tensor d_xk = rows(a.d_c1), d_xv = rows(a.d_c3), d_xr = rows(a.d_c4), d_att_in = rows(a.d_c2);
    linear_backward(rows(b.att_xk), w.att_key, rows(a.d_l1), d_xk, gw.att_key);
    linear_backward(rows(b.att_xv), w.att_value, rows(a.d_l4), d_xv, gw.att_value);
    linear_backward(rows(b.att_xr), w.att_receptance, d_r, d_xr, gw.att_receptance);
    token_shift_backward(b.att_in, {w.att_mix_k, w.att_mix_v, w.att_mix_r}, {a.d_c1, a.d_c3, a.d_c4}, a.d_c2,
                         {g.att_mix_k, g.att_mix_v, g.att_mix_r});
    tp_all_reduce(d_att_in);
    layernorm_backward(rows(b.x_in), w.ln1_weight, b.ln1_mean, b.ln1_rstd, d_att_in, d_res, g.ln1_weight, g.ln1_bias);
    // d_res is now the gradient of this block's input (block 0: ln0 excluded).
    report_grads_final(block_first_entry_[static_cast<size_t>(l)]);
  }
  // Wholly frozen blocks at the bottom (set_frozen): their gradients stay 0, final now.
  if (frozen_leading_blocks_ > 0) report_grads_final(block_first_entry_[0]);
}

// ---------------------------------------------------------------- whole model

double Rwkv4Model::forward_backward(const Tensor& tokens, const Tensor& targets, float loss_scale,
                                    float l2wrap_scale) {
  check_batch("Rwkv4Model::forward_backward", tokens, targets);
  RWKV_CHECK(part_.has_embedding() && part_.has_head(shape_),
             "Rwkv4Model::forward_backward runs the whole model; a pipeline stage uses stage_forward/stage_backward");
  stage_forward(0, tokens);
  return stage_backward(0, targets, loss_scale, l2wrap_scale);
}

double Rwkv4Model::forward_loss(const Tensor& tokens, const Tensor& targets) {
  double sum = 0.0;  // in index order, as stage_loss sums
  const std::vector<double> losses = forward_token_losses(tokens, targets);
  for (double l : losses) sum += l;
  return sum / static_cast<double>(losses.size());
}

std::vector<double> Rwkv4Model::forward_token_losses(const Tensor& tokens, const Tensor& targets) {
  check_batch("Rwkv4Model::forward_token_losses", tokens, targets);
  RWKV_CHECK(part_.has_embedding() && part_.has_head(shape_), "Rwkv4Model::forward_token_losses runs the whole model");
  stage_forward(0, tokens);
  Activations& a = existing_slot(0, "forward_token_losses");
  head_forward_loss(a, targets, nullptr, 0.0f, 0.0f);
  const Tensor host = a.losses.to(Device::cpu());
  return host.dtype() == DType::F64 ? host.to_vector<double>() : host.to_dtype(DType::F64).to_vector<double>();
}

// The whole model's forward of tokens [B, T] through its blocks (x_final of
// slot 0), once the model is known to be whole on this rank.
Rwkv4Model::Activations& Rwkv4Model::whole_model_forward(const char* op, const Tensor& tokens) {
  RWKV_CHECK(part_.tp_size == 1 && part_.padded_vocab == shape_.vocab_size && part_.has_embedding() &&
                 part_.has_head(shape_),
             op, " needs the whole, unpadded model on one rank");
  stage_forward(0, tokens);
  weights_needed(params_.entries().size());  // ln_out, head
  return existing_slot(0, op);
}

Tensor Rwkv4Model::whole_model_logits(const char* op, const Tensor& tokens) {
  Activations& a = whole_model_forward(op, tokens);
  Tensor head_in = rows(a.head_in);
  layernorm_forward(rows(a.x_final), p_.ln_out_weight, p_.ln_out_bias, head_in, a.ln_out_mean, a.ln_out_rstd);
  linear_forward(head_in, p_.head, a.logits);
  return a.logits.view({tokens.dim(0) * tokens.dim(1), shape_.vocab_size});
}

namespace {

// dst <- src, converted to dst's dtype (bf16 logits under mixed precision)
// and copied to dst's device; src [n, V], dst of the same element count.
void copy_logits(const Tensor& src, Tensor& dst) {
  if (src.dtype() == dst.dtype()) {
    dst.copy_from(src.view(dst.shape()));
    return;
  }
  Tensor converted = Tensor::empty(src.shape(), dst.dtype(), src.device());
  cast(src, converted);
  dst.copy_from(converted.view(dst.shape()));
}

}  // namespace

void Rwkv4Model::forward_logits(const Tensor& tokens, Tensor& logits) {
  const char* op = "Rwkv4Model::forward_logits";
  expect_ndim(op, "tokens", tokens, 2, "[B, T]");
  expect_shape(op, "logits", logits, {tokens.dim(0), tokens.dim(1), shape_.vocab_size}, "[B, T, V]");
  copy_logits(whole_model_logits(op, tokens), logits);
}

void Rwkv4Model::forward_logit_rows(const Tensor& tokens, const std::vector<int32_t>& rows, Tensor& out) {
  const char* op = "Rwkv4Model::forward_logit_rows";
  expect_ndim(op, "tokens", tokens, 2, "[B, T]");
  const int64_t positions = tokens.dim(0) * tokens.dim(1), R = static_cast<int64_t>(rows.size());
  for (int32_t r : rows)
    RWKV_CHECK(r >= 0 && r < positions, op, ": row ", r, " is outside the ", positions, " positions of tokens ",
               tokens.str());
  expect_shape(op, "out", out, {R, shape_.vocab_size}, "[rows, V]");
  if (R == 0) return;  // nothing asked: no forward
  Activations& a = whole_model_forward(op, tokens);
  // ln_out and the head act on each row alone, so they run on the R scored
  // rows only: the head is V C of the model's ~(12 L + 2 V) C multiplies per
  // row (a third of the 169M model's), and LAMBADA scores ~2 rows of ~90.
  // The gather is the embedding's lookup with the blocks' output as the table.
  const int64_t C = shape_.n_embd;
  const Tensor index = Tensor::from_vector<int32_t>(rows, {R}).to(device_);
  const DType act_dt = a.x_final.dtype(), st = plan_.kind_dtype(ActivationKind::Statistic);
  Tensor x_rows = Tensor::empty({R, C}, act_dt, device_);  // [R, C]
  embedding_forward(index, a.x_final.view({a.B * a.T, C}), x_rows);  // ("rows" is the argument here)
  Tensor normed = Tensor::empty({R, C}, act_dt, device_), mean = Tensor::empty({R}, st, device_),
         rstd = Tensor::empty({R}, st, device_);
  layernorm_forward(x_rows, p_.ln_out_weight, p_.ln_out_bias, normed, mean, rstd);
  Tensor logits = Tensor::empty({R, shape_.vocab_size}, plan_.kind_dtype(ActivationKind::Logits), device_);  // [R, V]
  linear_forward(normed, p_.head, logits);
  copy_logits(logits, out);
}

}  // namespace rwkv
