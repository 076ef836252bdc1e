// RWKV-4 forward and backward, layer by layer (maths in rwkv4_model.h).
// N = B*T rows; every [B, T, C] activation is also viewed as [N, C] for GEMMs.
#include "trainer/rwkv4_model.h"

#include "kernels/activations.h"
#include "kernels/cross_entropy.h"
#include "kernels/embedding.h"
#include "kernels/gemm.h"
#include "kernels/layernorm.h"
#include "kernels/reduce.h"
#include "kernels/token_shift.h"
#include "kernels/wkv4.h"

namespace rwkv {

// What forward keeps for backward, per block. Shapes: C-wide tensors are
// [B, T, C], F-wide ones [B, T, F], statistics [N].
struct BlockActivations {
  Tensor x_in;                 // block input (the residual stream)
  Tensor att_in, ln1_mean, ln1_rstd;          // ln1(x_in)
  Tensor att_xk, att_xv, att_xr;              // token-shifted inputs
  Tensor att_k, att_v, att_r;                 // K xk, V xv, R xr (r before the sigmoid)
  Tensor att_wkv, att_gated;                  // wkv(k, v), sigmoid(r) * wkv
  Tensor x_mid;                               // x_in + att output
  Tensor ffn_in, ln2_mean, ln2_rstd;          // ln2(x_mid)
  Tensor ffn_xk, ffn_xr;
  Tensor ffn_k_pre, ffn_k;                    // [B, T, F]: K xk and relu(K xk)^2
  Tensor ffn_r, ffn_v;                        // R xr (before sigmoid), V k
};

struct Rwkv4Model::Activations {
  int64_t B = 0, T = 0;
  Tensor tokens, targets;                     // [B, T] i32 on the model's device
  Tensor tokens_flat;                         // [N] i32
  Tensor emb_out, ln0_mean, ln0_rstd;         // emb[tokens] [B, T, C]
  std::vector<BlockActivations> blocks;
  Tensor x_final;                             // output of the last block [B, T, C]
  Tensor head_in, ln_out_mean, ln_out_rstd;   // ln_out(x_final)
  Tensor logits;                              // [N, V] (overwritten by dlogits in backward)
  Tensor losses;                              // [N]
  // Gradient scratch, reused by every block.
  Tensor d_res;                               // gradient of the residual stream [B, T, C]
  Tensor d_c1, d_c2, d_c3, d_c4;              // [B, T, C]
  Tensor d_f;                                 // [B, T, F]
};

namespace {
Tensor rows(const Tensor& t) { return t.view({t.dim(0) * t.dim(1), t.dim(2)}); }  // [B, T, X] -> [N, X]
}  // namespace

Rwkv4Model::Rwkv4Model(const Rwkv4Shape& shape, DType dtype, bool recompute, Device device)
    : shape_(shape),
      dtype_(dtype),
      recompute_(recompute),
      device_(device),
      params_(declare_rwkv4_parameters(shape, dtype, device)),
      grads_(params_.zeros_like()) {
  p_ = bind_rwkv4_tensors(params_, shape_);
  g_ = bind_rwkv4_tensors(grads_, shape_);
}

Rwkv4Model::Activations& Rwkv4Model::activations_for(int64_t B, int64_t T) {
  if (acts_ && acts_->B == B && acts_->T == T) return *acts_;
  const int64_t C = shape_.n_embd, F = shape_.dim_ffn, V = shape_.vocab_size, N = B * T;
  auto act = std::make_shared<Activations>();
  Activations& a = *act;
  a.B = B;
  a.T = T;
  auto btc = [&] { return Tensor::empty({B, T, C}, dtype_, device_); };
  auto btf = [&] { return Tensor::empty({B, T, F}, dtype_, device_); };
  auto stat = [&] { return Tensor::empty({N}, dtype_, device_); };
  a.emb_out = btc();
  a.ln0_mean = stat();
  a.ln0_rstd = stat();
  // With recompute, every block's activations but its input share one set of
  // buffers: backward re-runs the block's forward from x_in just before it
  // needs them. Memory per block drops from ~(16C + 2F) to C per token.
  BlockActivations shared;
  for (int64_t l = 0; l < shape_.n_layer; ++l) {
    if (recompute_ && l > 0) {
      BlockActivations b = shared;
      b.x_in = btc();
      a.blocks.push_back(b);
      continue;
    }
    BlockActivations b;
    b.x_in = btc();
    b.att_in = btc(), b.ln1_mean = stat(), b.ln1_rstd = stat();
    b.att_xk = btc(), b.att_xv = btc(), b.att_xr = btc();
    b.att_k = btc(), b.att_v = btc(), b.att_r = btc();
    b.att_wkv = btc(), b.att_gated = btc();
    b.x_mid = btc();
    b.ffn_in = btc(), b.ln2_mean = stat(), b.ln2_rstd = stat();
    b.ffn_xk = btc(), b.ffn_xr = btc();
    b.ffn_k_pre = btf(), b.ffn_k = btf();
    b.ffn_r = btc(), b.ffn_v = btc();
    a.blocks.push_back(b);
    shared = b;
  }
  a.x_final = btc();
  a.head_in = btc(), a.ln_out_mean = stat(), a.ln_out_rstd = stat();
  a.logits = Tensor::empty({N, V}, dtype_, device_);
  a.losses = Tensor::empty({N}, dtype_, device_);
  a.tokens = Tensor::empty({B, T}, DType::I32, device_);
  a.targets = Tensor::empty({B, T}, DType::I32, device_);
  a.d_res = btc(), a.d_c1 = btc(), a.d_c2 = btc(), a.d_c3 = btc(), a.d_c4 = btc();
  a.d_f = btf();
  acts_ = act;
  return a;
}

int64_t Rwkv4Model::activation_bytes(int64_t B, int64_t T) const {
  const int64_t C = shape_.n_embd, F = shape_.dim_ffn, V = shape_.vocab_size, N = B * T, L = shape_.n_layer;
  // Per block: x_in, att_in, xk, xv, xr, k, v, r, wkv, gated, x_mid, ffn_in,
  // fxk, fxr, fr, fv (16 C) + ffn_k_pre, ffn_k (2 F) + 4 row statistics.
  const int64_t block = N * (16 * C + 2 * F + 4);
  const int64_t blocks = recompute_ ? block + (L - 1) * N * C : L * block;
  // emb_out, x_final, head_in (3 C) + 4 statistics + logits and losses (V + 1)
  // + gradient scratch d_res, d_c1..d_c4 (5 C) and d_f (F).
  const int64_t rest = N * (3 * C + 4 + V + 1 + 5 * C + F);
  return (blocks + rest) * static_cast<int64_t>(dtype_size(dtype_));
}

void Rwkv4Model::forward(const Tensor& tokens, Activations& a) {
  const int64_t B = a.B, T = a.T;
  a.tokens.copy_from(tokens);  // to the model's device
  a.tokens_flat = a.tokens.view({B * T});
  Tensor x0 = rows(a.emb_out);
  embedding_forward(a.tokens_flat, p_.emb, x0);
  Tensor x_in0 = rows(a.blocks[0].x_in);
  layernorm_forward(x0, p_.blocks[0].ln0_weight, p_.blocks[0].ln0_bias, x_in0, a.ln0_mean, a.ln0_rstd);
  for (int64_t l = 0; l < shape_.n_layer; ++l) forward_block(a, l);
  Tensor head_in = rows(a.head_in);
  layernorm_forward(rows(a.x_final), p_.ln_out_weight, p_.ln_out_bias, head_in, a.ln_out_mean, a.ln_out_rstd);
  linear_forward(head_in, p_.head, a.logits);
}

// One block from its input b.x_in; the output goes into the next block's x_in
// (or x_final), so the residual stream is stored once per block.
void Rwkv4Model::forward_block(Activations& a, int64_t l) {
  const Rwkv4BlockTensors& w = p_.blocks[static_cast<size_t>(l)];
  BlockActivations& b = a.blocks[static_cast<size_t>(l)];
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
  matmul(rows(b.att_gated), false, w.att_output, true, x_mid, 1.0f, 1.0f);  // x_mid = x_in + O gated
  // --- channel mixing
  Tensor ffn_in = rows(b.ffn_in);
  layernorm_forward(x_mid, w.ln2_weight, w.ln2_bias, ffn_in, b.ln2_mean, b.ln2_rstd);
  token_shift_forward(b.ffn_in, {w.ffn_mix_k, w.ffn_mix_r}, {b.ffn_xk, b.ffn_xr});
  Tensor fk_pre = rows(b.ffn_k_pre);
  linear_forward(rows(b.ffn_xk), w.ffn_key, fk_pre);
  squared_relu_forward(b.ffn_k_pre, b.ffn_k);
  Tensor fr = rows(b.ffn_r), fv = rows(b.ffn_v);
  linear_forward(rows(b.ffn_xr), w.ffn_receptance, fr);
  linear_forward(rows(b.ffn_k), w.ffn_value, fv);
  Tensor x_out = rows(l + 1 < shape_.n_layer ? a.blocks[static_cast<size_t>(l + 1)].x_in : a.x_final);
  sigmoid_gate_forward(fr, fv, x_out);
  add_(x_out, x_mid);
}

namespace {
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

double Rwkv4Model::forward_loss(const Tensor& tokens, const Tensor& targets) {
  check_batch("Rwkv4Model::forward_loss", tokens, targets);
  Activations& a = activations_for(tokens.dim(0), tokens.dim(1));
  forward(tokens, a);
  a.targets.copy_from(targets);
  cross_entropy_forward(a.logits, a.targets.view({a.B * a.T}), a.losses);
  return sum_values(a.losses) / static_cast<double>(a.B * a.T);
}

void Rwkv4Model::forward_logits(const Tensor& tokens, Tensor& logits) {
  expect_ndim("Rwkv4Model::forward_logits", "tokens", tokens, 2, "[B, T]");
  expect_dtype("Rwkv4Model::forward_logits", "tokens", tokens, DType::I32);
  Activations& a = activations_for(tokens.dim(0), tokens.dim(1));
  expect_shape("Rwkv4Model::forward_logits", "logits", logits, {a.B, a.T, shape_.vocab_size}, "[B, T, V]");
  forward(tokens, a);
  logits.copy_from(a.logits.view(logits.shape()));
}

double Rwkv4Model::forward_backward(const Tensor& tokens, const Tensor& targets, float loss_scale,
                                    float l2wrap_scale) {
  check_batch("Rwkv4Model::forward_backward", tokens, targets);
  Activations& a = activations_for(tokens.dim(0), tokens.dim(1));
  forward(tokens, a);
  const int64_t N = a.B * a.T;
  // The reference's L2Wrap factor is 1e-4 / (B*T) per micro-batch.
  const float l2wrap_factor = l2wrap_scale > 0.0f ? l2wrap_scale * 1e-4f / static_cast<float>(N) : 0.0f;
  a.targets.copy_from(targets);
  cross_entropy_forward_backward(a.logits, a.targets.view({N}), a.losses, a.logits, loss_scale, l2wrap_factor);
  const double mean_loss = sum_values(a.losses) / static_cast<double>(N);
  Tensor& dlogits = a.logits;  // [N, V], now holds the gradient

  // --- head and ln_out
  Tensor d_head_in = rows(a.d_c1), d_res = rows(a.d_res);
  linear_backward(rows(a.head_in), p_.head, dlogits, d_head_in, g_.head);
  d_res.zero_();
  layernorm_backward(rows(a.x_final), p_.ln_out_weight, a.ln_out_mean, a.ln_out_rstd, d_head_in, d_res,
                     g_.ln_out_weight, g_.ln_out_bias);

  // --- blocks, last to first; d_res is the gradient of the block's output
  for (int64_t l = shape_.n_layer - 1; l >= 0; --l) {
    const Rwkv4BlockTensors& w = p_.blocks[static_cast<size_t>(l)];
    Rwkv4BlockTensors& g = g_.blocks[static_cast<size_t>(l)];
    BlockActivations& b = a.blocks[static_cast<size_t>(l)];
    if (recompute_) forward_block(a, l);  // rewrites the shared buffers (and, identically, the next x_in)
    // channel mixing: out = sigmoid(fr) * fv, added to x_mid
    Tensor d_fr = rows(a.d_c1), d_fv = rows(a.d_c2);
    sigmoid_gate_backward(rows(b.ffn_r), rows(b.ffn_v), d_res, d_fr, d_fv);
    Tensor d_fk = rows(a.d_f);
    linear_backward(rows(b.ffn_k), w.ffn_value, d_fv, d_fk, g.ffn_value);
    squared_relu_backward(rows(b.ffn_k_pre), d_fk, d_fk);
    Tensor d_fxk = rows(a.d_c3), d_fxr = rows(a.d_c4);
    linear_backward(rows(b.ffn_xk), w.ffn_key, d_fk, d_fxk, g.ffn_key);
    linear_backward(rows(b.ffn_xr), w.ffn_receptance, d_fr, d_fxr, g.ffn_receptance);
    Tensor d_ffn_in = a.d_c1;  // d_fr (c1) was consumed above
    token_shift_backward(b.ffn_in, {w.ffn_mix_k, w.ffn_mix_r}, {a.d_c3, a.d_c4}, d_ffn_in, {g.ffn_mix_k, g.ffn_mix_r});
    layernorm_backward(rows(b.x_mid), w.ln2_weight, b.ln2_mean, b.ln2_rstd, rows(d_ffn_in), d_res, g.ln2_weight,
                       g.ln2_bias);
    // d_res is now the gradient of x_mid = x_in + O (sigmoid(r) * wkv)
    Tensor d_gated = rows(a.d_c1);
    linear_backward(rows(b.att_gated), w.att_output, d_res, d_gated, g.att_output);
    Tensor d_r = rows(a.d_c2), d_wkv = rows(a.d_c3);
    sigmoid_gate_backward(rows(b.att_r), rows(b.att_wkv), d_gated, d_r, d_wkv);
    // wkv backward writes d_k into c1 (d_gated is consumed) and d_v into c4.
    wkv4_backward(w.att_time_decay, w.att_time_first, b.att_k, b.att_v, a.d_c3, g.att_time_decay, g.att_time_first,
                  a.d_c1, a.d_c4);
    // Each input gradient takes the buffer its predecessor just freed.
    Tensor d_xk = rows(a.d_c3), d_xv = rows(a.d_c1), d_xr = rows(a.d_c4);
    linear_backward(rows(b.att_xk), w.att_key, rows(a.d_c1), d_xk, g.att_key);          // frees d_k (c1)
    linear_backward(rows(b.att_xv), w.att_value, rows(a.d_c4), d_xv, g.att_value);      // frees d_v (c4)
    linear_backward(rows(b.att_xr), w.att_receptance, d_r, d_xr, g.att_receptance);     // frees d_r (c2)
    token_shift_backward(b.att_in, {w.att_mix_k, w.att_mix_v, w.att_mix_r}, {a.d_c3, a.d_c1, a.d_c4}, a.d_c2,
                         {g.att_mix_k, g.att_mix_v, g.att_mix_r});
    layernorm_backward(rows(b.x_in), w.ln1_weight, b.ln1_mean, b.ln1_rstd, rows(a.d_c2), d_res, g.ln1_weight,
                       g.ln1_bias);
    // d_res is now the gradient of this block's input
  }
  // --- ln0 and the embedding
  const Rwkv4BlockTensors& w0 = p_.blocks[0];
  Rwkv4BlockTensors& g0 = g_.blocks[0];
  Tensor d_x0 = rows(a.d_c1);
  d_x0.zero_();
  layernorm_backward(rows(a.emb_out), w0.ln0_weight, a.ln0_mean, a.ln0_rstd, d_res, d_x0, g0.ln0_weight,
                     g0.ln0_bias);
  embedding_backward(a.tokens_flat, d_x0, g_.emb);
  return mean_loss;
}

}  // namespace rwkv
