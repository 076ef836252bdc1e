#include "trainer/rwkv4_recurrent.h"

#include "kernels/activations.h"
#include "kernels/embedding.h"
#include "kernels/gemm.h"
#include "kernels/layernorm.h"
#include "kernels/reduce.h"
#include "kernels/token_shift.h"
#include "kernels/wkv4.h"
#include "kernels/wkv4_math.h"

namespace rwkv {

Rwkv4State Rwkv4State::fresh(const Rwkv4Shape& shape, int64_t batch, DType dtype, Device device) {
  Rwkv4State s;
  const int64_t C = shape.n_embd;
  for (int64_t l = 0; l < shape.n_layer; ++l) {
    s.att_shift.push_back(Tensor::zeros({batch, C}, dtype, device));
    s.ffn_shift.push_back(Tensor::zeros({batch, C}, dtype, device));
    Tensor wkv = Tensor::zeros({3, batch, C}, dtype);
    Tensor pp = wkv.slice_rows(2, 1);
    std::vector<double> empty(static_cast<size_t>(batch * C), static_cast<double>(kWkvEmptyExponent));
    pp.copy_from(Tensor::from_vector<double>(empty, pp.shape()).to_dtype(dtype));
    s.wkv.push_back(device.is_cpu() ? wkv : wkv.to(device));
  }
  return s;
}

namespace {
// Copies row t = T-1 of x [B, T, C] into out [B, C].
void copy_last_token(const Tensor& x, Tensor& out) {
  const int64_t B = x.dim(0), T = x.dim(1);
  for (int64_t b = 0; b < B; ++b) {
    Tensor src = x.view({B * T, x.dim(2)}).slice_rows(b * T + T - 1, 1);
    Tensor dst = out.slice_rows(b, 1).view(src.shape());
    dst.copy_from(src);
  }
}
}  // namespace

void rwkv4_forward_recurrent(const Rwkv4Tensors& p, const Rwkv4Shape& shape, const Tensor& tokens,
                             Rwkv4State& state, Tensor& logits) {
  const char* op = "rwkv4_forward_recurrent";
  expect_ndim(op, "tokens", tokens, 2, "[B, T]");
  const int64_t B = tokens.dim(0), T = tokens.dim(1), C = shape.n_embd, F = shape.dim_ffn, N = B * T;
  expect_shape(op, "logits", logits, {B, T, shape.vocab_size}, "[B, T, V]");
  RWKV_CHECK(static_cast<int64_t>(state.wkv.size()) == shape.n_layer, op, ": state has ", state.wkv.size(),
             " blocks, the model ", shape.n_layer);
  const DType dt = p.emb.dtype();
  const Device device = p.emb.device();
  expect_device(op, "logits", logits, device);
  for (const Tensor* t : {&state.att_shift.front(), &state.wkv.front(), &state.ffn_shift.front()})
    expect_device(op, "state", *t, device);
  auto btc = [&] { return Tensor::empty({B, T, C}, dt, device); };
  auto rows = [](const Tensor& t) { return t.view({t.dim(0) * t.dim(1), t.dim(2)}); };
  Tensor mean = Tensor::empty({N}, dt, device), rstd = Tensor::empty({N}, dt, device);
  Tensor emb = btc(), x = btc(), ln = btc(), xk = btc(), xv = btc(), xr = btc(), k = btc(), v = btc(), r = btc();
  Tensor y = btc(), gated = btc(), tmp = btc();
  Tensor fk = Tensor::empty({B, T, F}, dt, device);
  Tensor emb_rows = rows(emb), x_rows = rows(x), ln_rows = rows(ln);
  const Tensor token_ids = tokens.device() == device ? tokens : tokens.to(device);
  embedding_forward(token_ids.view({N}), p.emb, emb_rows);
  layernorm_forward(emb_rows, p.blocks[0].ln0_weight, p.blocks[0].ln0_bias, x_rows, mean, rstd);
  for (int64_t l = 0; l < shape.n_layer; ++l) {
    const Rwkv4BlockTensors& w = p.blocks[static_cast<size_t>(l)];
    const size_t i = static_cast<size_t>(l);
    // time mixing
    layernorm_forward(x_rows, w.ln1_weight, w.ln1_bias, ln_rows, mean, rstd);
    token_shift_forward(ln, {w.att_mix_k, w.att_mix_v, w.att_mix_r}, {xk, xv, xr}, state.att_shift[i]);
    copy_last_token(ln, state.att_shift[i]);
    Tensor k_rows = rows(k), v_rows = rows(v), r_rows = rows(r), tmp_rows = rows(tmp);
    linear_forward(rows(xk), w.att_key, k_rows);
    linear_forward(rows(xv), w.att_value, v_rows);
    linear_forward(rows(xr), w.att_receptance, r_rows);
    wkv4_forward(w.att_time_decay, w.att_time_first, k, v, y, state.wkv[i]);
    sigmoid_gate_forward(r, y, gated);
    linear_forward(rows(gated), w.att_output, tmp_rows);
    add_(x_rows, tmp_rows);
    // channel mixing
    layernorm_forward(x_rows, w.ln2_weight, w.ln2_bias, ln_rows, mean, rstd);
    token_shift_forward(ln, {w.ffn_mix_k, w.ffn_mix_r}, {xk, xr}, state.ffn_shift[i]);
    copy_last_token(ln, state.ffn_shift[i]);
    Tensor fk_rows = rows(fk);
    linear_forward(rows(xk), w.ffn_key, fk_rows);
    squared_relu_forward(fk_rows, fk_rows);
    linear_forward(rows(xr), w.ffn_receptance, r_rows);
    linear_forward(fk_rows, w.ffn_value, v_rows);
    sigmoid_gate_forward(r_rows, v_rows, tmp_rows);
    add_(x_rows, tmp_rows);
  }
  layernorm_forward(x_rows, p.ln_out_weight, p.ln_out_bias, ln_rows, mean, rstd);
  Tensor logit_rows = logits.view({N, shape.vocab_size});
  linear_forward(ln_rows, p.head, logit_rows);
}

}  // namespace rwkv
