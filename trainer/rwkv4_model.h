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
#include <vector>

#include "core/tensor.h"
#include "trainer/parameters.h"

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

// Declares every parameter with its reference name, shape, decay flag and lr
// multiplier (time_decay x2, time_first x3), in the reference order.
ParameterStore declare_rwkv4_parameters(const Rwkv4Shape& shape, DType dtype, Device device = Device::cpu());
// Views a store (parameters or gradients) by role.
Rwkv4Tensors bind_rwkv4_tensors(const ParameterStore& store, const Rwkv4Shape& shape);

// The reference initialisation (RWKV-LM v4: time-mix curves, zero and
// orthogonal matrices, uniform embedding in +-emb_range), seeded.
void init_rwkv4_reference(ParameterStore& params, const Rwkv4Shape& shape, uint64_t seed, double emb_range);

class Rwkv4Model {
 public:
  // recompute: keep only each block's input in forward and re-run the block
  // in backward (saves most activation memory for ~1/3 more compute).
  // device: where parameters, gradients and activations live (every kernel
  // runs where its tensors are). Batches are given on the CPU.
  Rwkv4Model(const Rwkv4Shape& shape, DType dtype, bool recompute = false, Device device = Device::cpu());

  const Rwkv4Shape& shape() const { return shape_; }
  Device device() const { return device_; }
  ParameterStore& params() { return params_; }
  ParameterStore& grads() { return grads_; }
  const Rwkv4Tensors& tensors() const { return p_; }  // parameters by role

  // tokens, targets: i32 [B, T]. Runs forward and backward, adds the gradients
  // of loss_scale * sum of per-token CE into grads() (plus L2Wrap with factor
  // l2wrap_scale * 1e-4 when l2wrap_scale > 0), and returns the mean CE loss
  // over the B*T tokens.
  double forward_backward(const Tensor& tokens, const Tensor& targets, float loss_scale, float l2wrap_scale);

  // Mean CE loss without gradients (evaluation).
  double forward_loss(const Tensor& tokens, const Tensor& targets);

  // logits [B, T, V] for tokens [B, T].
  void forward_logits(const Tensor& tokens, Tensor& logits);

  // Bytes of the activation and gradient-scratch buffers forward_backward
  // allocates for a [B, T] batch (what the memory planner and bench compare with).
  int64_t activation_bytes(int64_t B, int64_t T) const;

 private:
  struct Activations;
  void forward(const Tensor& tokens, Activations& a);
  void forward_block(Activations& a, int64_t layer);
  Activations& activations_for(int64_t B, int64_t T);

  Rwkv4Shape shape_;
  DType dtype_;
  bool recompute_ = false;
  Device device_;
  ParameterStore params_, grads_;
  Rwkv4Tensors p_, g_;
  std::shared_ptr<Activations> acts_;
};

}  // namespace rwkv
