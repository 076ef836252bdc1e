// RWKV-4, exactly as the reference RWKV-LM trains it (DESIGN.md section 4):
//
//   x = ln0(emb[tokens])                                   (block 0 only)
//   per block:  x = x + att(ln1(x));  x = x + ffn(ln2(x))
//   logits = head(ln_out(x)),  loss = mean CE (+ L2Wrap gradient)
//
//   att(x):  xk,xv,xr = token_shift(x; mix_k, mix_v, mix_r)
//            k = K xk, v = V xv, r = R xr
//            out = O (sigmoid(r) * wkv(time_decay, time_first, k, v))
//   ffn(x):  xk,xr = token_shift(x; mix_k, mix_r)
//            out = sigmoid(R xr) * (V relu(K xk)^2)
//
// Forward and backward are written layer by layer with the kernels (no
// autograd). Forward keeps exactly what backward reads (see BlockActivations).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "kernels/dropout_math.h"
#include "trainer/parameters.h"
#include "trainer/precision_plan.h"
#include "trainer/rwkv4_partition.h"

namespace rwkv::parallel {
class Communicator;
}

namespace rwkv {

struct Rwkv4Shape {
  int64_t n_layer = 0;
  int64_t n_embd = 0;
  int64_t vocab_size = 0;
  int64_t dim_ffn = 0;  // 4 * n_embd in RWKV-4
};

// Handles to one set of tensors (parameters, or their gradients) by role.
struct Rwkv4BlockTensors {
  Tensor ln0_weight, ln0_bias;  // block 0 only
  Tensor ln1_weight, ln1_bias, ln2_weight, ln2_bias;
  Tensor att_time_decay, att_time_first, att_mix_k, att_mix_v, att_mix_r;  // [C] views of [C] / [1,1,C]
  Tensor att_key, att_value, att_receptance, att_output;                   // [C, C]
  Tensor ffn_mix_k, ffn_mix_r;                                             // [C] views of [1,1,C]
  Tensor ffn_key;                                                          // [F, C]
  Tensor ffn_receptance;                                                   // [C, C]
  Tensor ffn_value;                                                        // [C, F]
};

struct Rwkv4Tensors {
  Tensor emb;                    // [V, C]
  std::vector<Rwkv4BlockTensors> blocks;
  Tensor ln_out_weight, ln_out_bias;  // [C]
  Tensor head;                   // [V, C]
};

// One parameter tensor as a partition holds it, without its storage: what
// declare_rwkv4_parameters allocates, and what the init and the dry run read.
struct Rwkv4TensorSpec {
  std::string name;          // reference name, layer numbers global
  Shape local_shape;         // this rank's slice (vocabulary padding included)
  Shape global_shape, global_offset;
  bool decay = false;
  float lr_multiplier = 1.0f;
  bool tp_replicated = false, tp_partial_grad = false;
};
// The tensors of a partition in the reference order (whole model: every one).
std::vector<Rwkv4TensorSpec> rwkv4_tensor_specs(const Rwkv4Shape& shape, const Rwkv4Partition& partition = Rwkv4Partition{});

// Of the blocks [layer_begin, layer_end) of a stage that holds the
// embedding: how many at the bottom are wholly frozen, the embedding frozen
// too (0 when it is not). Backward stops above them (Rwkv4Model::set_frozen).
// frozen(name): whether the tensor of that reference name is frozen.
int64_t frozen_leading_blocks(const Rwkv4Shape& shape, const std::function<bool(const std::string&)>& frozen,
                              int64_t layer_begin, int64_t layer_end);

// Declares every parameter with its reference name, shape, decay flag and lr
// multiplier (time_decay x2, time_first x3), in the reference order; with a
// partition, only this rank's tensors, as local slices (rwkv4_partition.h).
ParameterStore declare_rwkv4_parameters(const Rwkv4Shape& shape, DType dtype, Device device = Device::cpu(),
                                        const Rwkv4Partition& partition = Rwkv4Partition{});
// Views a store (parameters or gradients) by role; blocks are this stage's, in order.
Rwkv4Tensors bind_rwkv4_tensors(const ParameterStore& store, const Rwkv4Shape& shape,
                                const Rwkv4Partition& partition = Rwkv4Partition{});
// Copies each local slice out of a store of the whole model.
void copy_partition_slices(const ParameterStore& whole, ParameterStore& local);
// Cuts the slice `local` describes (its global shape and offset) out of the
// whole tensor into out (local's shape; padding rows zero).
void cut_partition_slice(const Tensor& global, const NamedTensor& local, Tensor& out);

// The reference initialisation (RWKV-LM v4: time-mix curves, zero and
// orthogonal matrices, uniform embedding in +-emb_range), seeded. A partial
// store gets the slices of the whole model's initialisation.
void init_rwkv4_reference(ParameterStore& params, const Rwkv4Shape& shape, uint64_t seed, double emb_range);
// The random values that init draws for the whole tensor `name` of
// global_shape: one per element of emb (uniform) and of the orthogonal
// matrices' Gaussian (head, att.value, ffn.key), 0 for the others.
int64_t reference_init_draws(const std::string& name, const Shape& global_shape);

class Rwkv4Model {
 public:
  // recompute: keep only each block's input in forward and re-run the block
  // in backward (saves most activation memory for ~1/3 more compute).
  // device: where parameters, gradients and activations live (every kernel
  // runs where its tensors are). Batches are given on the CPU.
  // partition / tp: this rank's part of a tensor- and pipeline-parallel model
  // and its tensor-parallel group (null when tp = 1).
  // precision: FP32 keeps everything in `dtype`; BF16 (CUDA only, dtype f32)
  // follows trainer/precision_plan.h: bf16 compute copies of the GEMM
  // matrices and bf16 activations, f32 master weights and gradients.
  Rwkv4Model(const Rwkv4Shape& shape, DType dtype, bool recompute = false, Device device = Device::cpu(),
             const Rwkv4Partition& partition = Rwkv4Partition{}, parallel::Communicator* tp = nullptr,
             Precision precision = Precision::FP32);

  const Rwkv4Shape& shape() const { return shape_; }
  const Rwkv4Partition& partition() const { return part_; }
  Device device() const { return device_; }
  // The master parameters (f32 in mixed precision): what the optimizer
  // updates, checkpoints save and collectives move.
  ParameterStore& params() { return params_; }
  // The gradients, always in the master dtype. Allocated (zeroed) on first
  // use, here or by a backward: a model that only runs forward (rwkv-eval,
  // rwkv-generate) never holds a second copy of the parameters' bytes.
  ParameterStore& grads() {
    allocate_grads();
    return grads_;
  }
  bool holds_grads() const { return grads_allocated_; }
  // What forward/backward read, by role: the master tensors, or in bf16 the
  // compute copies of the GEMM matrices.
  const Rwkv4Tensors& tensors() const { return p_; }

  // --- mixed precision (trainer/precision_plan.h) ----------------------------
  const PrecisionPlan& precision_plan() const { return plan_; }
  // dtype of the activations and of what pipeline stages exchange.
  DType activation_dtype() const { return plan_.kind_dtype(ActivationKind::Activation); }
  // One entry per params() entry: its compute copy (bf16), or an undefined
  // tensor where forward reads the master itself. AdamW writes the copies as
  // it updates the masters (AdamWOptimizer::set_param_copies).
  const std::vector<Tensor>& compute_copies() const { return copies_; }
  // [params().numel()] bf16: the one buffer every compute copy is a view of,
  // each at its tensor's flat offset (parallel/flat_layout.h), so that
  // ZeRO-1's all-gather lands in the copies in place; the stretches of the
  // tensors without a copy are unused. Undefined in fp32.
  const Tensor& compute_copies_flat() const { return copies_flat_; }
  // Casts every master into its compute copy. Call after anything but AdamW
  // changed params(): init, resume, a test's copy_from. No-op in fp32.
  void refresh_compute_copies();
  // ZeRO-1 with sharded masters (parallel/zero_optimizer.h): frees the f32
  // master of every tensor that has a compute copy (forward and backward
  // never read it), so params() holds those entries undefined; their
  // global shape and offset stay. The all-gather then writes the copies.
  // Returns the bytes freed. No-op in fp32.
  int64_t release_copied_masters();
  // Allocates the released masters again (zeros) for a caller that wants the
  // whole f32 model back (the final parameters): fill them with an all-gather.
  void restore_copied_masters();
  bool masters_released() const { return masters_released_; }

  // --- the whole model on this rank (no pipeline) --------------------------
  // tokens, targets: i32 [B, T]. Runs forward and backward, adds the gradients
  // of loss_scale * sum of per-token CE into grads() (plus L2Wrap with factor
  // l2wrap_scale * 1e-4 / (B*T) when l2wrap_scale > 0), and returns the mean CE
  // loss over the B*T tokens.
  double forward_backward(const Tensor& tokens, const Tensor& targets, float loss_scale, float l2wrap_scale);
  // Mean CE loss without gradients (evaluation).
  double forward_loss(const Tensor& tokens, const Tensor& targets);
  // The CE loss of every position [B*T] without gradients, on the host in
  // double (evaluation that masks positions, e.g. padded rows).
  std::vector<double> forward_token_losses(const Tensor& tokens, const Tensor& targets);
  // logits [B, T, V] for tokens [B, T] (tensor parallelism: tp must be 1).
  void forward_logits(const Tensor& tokens, Tensor& logits);
  // Only the rows of the logits that are scored (rwkv-eval): rows [R] index
  // the flattened [B*T] positions; out [R, V] (f32, any device) gets their
  // logits, the values forward_logits gives there up to the GEMM's rounding
  // (the head runs on the R rows only). On a GPU only the R rows leave the
  // device instead of all B*T (LAMBADA scores ~2 tokens of a ~90-token
  // passage).
  void forward_logit_rows(const Tensor& tokens, const std::vector<int32_t>& rows, Tensor& out);

  // --- one pipeline stage; slot = a micro-batch in flight --------------------
  // Forward of this stage's blocks. The first stage embeds tokens [B, T];
  // the others start from `input` [B, T, C] (the previous stage's output).
  // tokens may live on the host or on the model's device. On the first stage
  // the embedding needs each token's row in this rank's vocabulary slice:
  // pass them as tokens_local [B*T] (embedding_rows, uploaded with the rest
  // of the step's batches) to keep the forward free of host copies; without
  // them they are computed here from the tokens (a copy to the host first
  // when the tokens are on the device).
  void stage_forward(int slot, const Tensor& tokens, const Tensor& input = Tensor(),
                     const Tensor& tokens_local = Tensor());
  // First stage: host tokens [B, T] -> this rank's embedding rows [B*T] on
  // the host (the token's row in its vocabulary slice, -1 for another rank's
  // row), after checking every id is inside the vocabulary.
  Tensor embedding_rows(const Tensor& host_tokens) const;
  // The stage's output [B, T, C] for the next stage (not on the last stage).
  const Tensor& stage_output(int slot);
  // Last stage: loss and backward from the targets (host or device); returns the micro-batch's
  // mean CE loss. Other stages: backward from `output_grad` [B, T, C]; returns 0.
  double stage_backward(int slot, const Tensor& targets, float loss_scale, float l2wrap_scale,
                        const Tensor& output_grad = Tensor());
  // Between begin_loss_sum() and end_loss_sum(), stage_backward returns 0
  // and adds its micro-batch's mean loss on the device instead; end_loss_sum
  // returns the sum of those means (the same double additions, so the same
  // bits on the CPU): one copy to the host per step for the loss, not
  // one per micro-batch.
  void begin_loss_sum();
  double end_loss_sum();
  // Gradient of the stage's input [B, T, C] for the previous stage (not on the first stage).
  const Tensor& stage_input_grad(int slot);
  // Last stage: mean CE loss of the slot's forward (evaluation).
  double stage_loss(int slot, const Tensor& targets);

  // --- dropout (the reference's --dropout; kernels/dropout_math.h) ----------
  // While a plan is set, every stage_forward drops the embedding's output
  // and each block's two residual sums, x_in + att and x_mid + ffn, with
  // probability p (RWKV-LM's drop0/drop1), and stage_backward applies the
  // same masks to their gradients. Row b of micro-batch m is the global
  // sample first_sample + m micro_stride + b row_stride, which, with the
  // site (0: embedding, 1 + 2l and 2 + 2l: block l's two sums), names its
  // mask: every layout, resumed run and recomputed block draws the same one.
  struct DropoutPlan {
    float p = 0.0f;
    uint64_t seed = 0;
    uint64_t first_sample = 0;  // row 0 of micro-batch 0
    uint64_t micro_stride = 0;  // between micro-batches (micro_batch x dp)
    uint64_t row_stride = 1;    // between rows (dp)
  };
  // Frozen parameters (train.freeze), one flag per params() entry: backward
  // skips the weight-gradient GEMMs of the frozen matrices (emb, head and
  // every block's seven), whose gradients stay 0; the input gradients flow
  // as before, and the small parameters' gradients are still computed. On
  // the first stage, when the embedding and the lowest blocks are wholly
  // frozen, backward stops above them: nothing below needs a gradient.
  void set_frozen(std::vector<bool> frozen_entries);

  // nullopt: no dropout (evaluation, inference; the default).
  void set_dropout(std::optional<DropoutPlan> plan) { dropout_ = plan; }
  // The micro-batch m the next stage_forward runs (then back to 0).
  void set_next_micro_batch(int64_t micro) { next_micro_ = micro; }

  // Tensor parallelism: adds the partial gradients of replicated parameters
  // (time_mix) over the tp group; call once after the step's micro-batches.
  void reduce_tp_partial_grads();
  // The same for the entries [begin, end) of grads() only.
  void reduce_tp_partial_grads(size_t begin, size_t end);

  // Called during a stage_backward (while a hook is set) each time the
  // gradients of grads().entries() from first_entry to the end will not
  // change any more in this backward: after ln_out/head, then after each
  // block (block 0 without its ln0, which comes with the embedding). The caller sets it for
  // a step's last micro-batch, so that those gradients can be reduced over
  // dp while the earlier blocks' backward runs. Empty: no calls.
  using GradsFinalHook = std::function<void(size_t first_entry)>;
  void set_grads_final_hook(GradsFinalHook hook) { grads_final_hook_ = std::move(hook); }

  // Called before forward reads parameters: the entries of params() before
  // end_entry are about to be read (the embedding with block 0's
  // LayerNorms, then each block, then ln_out and the head), so ZeRO-1's
  // overlapped all-gather (ZeroOneSync::wait_gathered) can make the compute
  // stream wait for just those. Empty: no calls.
  using WeightsNeededHook = std::function<void(size_t end_entry)>;
  void set_weights_needed_hook(WeightsNeededHook hook) { weights_needed_hook_ = std::move(hook); }

  // Bytes of the activation and gradient-scratch buffers one slot allocates
  // for a [B, T] batch, in the plan's dtypes (what the memory planner and
  // bench compare with): PrecisionPlan::activation_set_bytes without the i32
  // token rows, plus one statistics row [N] of slack the planner's figure was
  // calibrated with (tests/planner/test_memory_model.cpp).
  int64_t activation_bytes(int64_t B, int64_t T) const;
  // Bytes the micro-batch slots hold now. A slot keeps its buffers for any
  // later (B, T) that fits in them and grows them only for a larger one.
  int64_t held_activation_bytes() const;

 private:
  struct Activations;
  Activations& slot(int index, int64_t B, int64_t T);
  Activations& existing_slot(int index, const char* op);
  // forward_logits and forward_logit_rows: the forward of tokens [B, T]
  // through the blocks (x_final of slot 0), on a model that is whole on this
  // rank; whole_model_logits adds the head: logits [B*T, V] on the model's
  // device, activations' dtype.
  Activations& whole_model_forward(const char* op, const Tensor& tokens);
  Tensor whole_model_logits(const char* op, const Tensor& tokens);
  void forward_block(Activations& a, int64_t local_layer);
  void backward_blocks(Activations& a);
  void head_forward_loss(Activations& a, const Tensor& targets, Tensor* dlogits, float loss_scale, float l2wrap_factor);
  void tp_all_reduce(Tensor& x);
  void allocate_grads();
  // x [B, T, C] times the slot's dropout mask at `site` (no-op without a plan).
  void drop(const Activations& a, Tensor& x, uint32_t site) const;
  uint32_t dropout_site(int64_t local_layer, int which) const;  // which: 0 after time mix, 1 after channel mix

  Rwkv4Shape shape_;
  DType dtype_;
  PrecisionPlan plan_;
  bool recompute_ = false;
  Device device_;
  Rwkv4Partition part_;
  parallel::Communicator* tp_ = nullptr;
  ParameterStore params_, grads_;
  // compute_: same names as params_; each entry is the bf16 copy or the master
  // tensor itself (shared storage). p_ views compute_, g_ views grads_.
  ParameterStore compute_;
  std::vector<Tensor> copies_;  // [params_.entries().size()], undefined where no copy
  Tensor copies_flat_;          // [params_.numel()] bf16: what the copies view (undefined: no copies)
  bool masters_released_ = false;
  bool grads_allocated_ = false;  // grads_ and g_ (allocate_grads)
  Rwkv4Tensors p_, g_;
  std::vector<std::shared_ptr<Activations>> slots_;
  void report_grads_final(size_t first_entry);
  void weights_needed(size_t end_entry);
  // The entry after the last one that block l's forward reads.
  size_t block_end_entry(size_t local_block) const;
  Tensor loss_sum_;  // [1] f64 on device_ while a loss sum is open (begin_loss_sum)
  GradsFinalHook grads_final_hook_;
  WeightsNeededHook weights_needed_hook_;
  std::vector<size_t> block_first_entry_;  // [local blocks] index in params_ of each block's first entry
  size_t tail_first_entry_ = 0;            // ln_out.weight's index (entries.size() without a head)
  std::optional<DropoutPlan> dropout_;
  int64_t next_micro_ = 0;
  std::vector<bool> frozen_;  // per params_ entry (empty: none)
  int64_t frozen_leading_blocks_ = 0;  // first stage: local blocks 0.. wholly frozen, with the embedding
  // g_ with the GEMM weight gradients of frozen matrices undefined: what
  // backward passes as dweight (linear_backward skips an undefined one).
  Rwkv4Tensors gw_;
  void bind_weight_grads();
};

}  // namespace rwkv
