#include "kernels/token_shift.h"

#include "kernels/dispatch.h"

namespace rwkv {

namespace {
void check_mixes(const char* op, const Tensor& x, const std::vector<Tensor>& mixes,
                 const std::vector<Tensor>& per_mix, const char* per_mix_name) {
  expect_ndim(op, "x", x, 3, "[B, T, C]");
  detail::expect_float(op, "x", x);
  const int64_t C = x.dim(2);
  RWKV_CHECK(!mixes.empty() && mixes.size() <= 3, op, ": expected 1 to 3 mix vectors, got ", mixes.size());
  RWKV_CHECK(per_mix.size() == mixes.size(), op, ": ", mixes.size(), " mix vectors but ", per_mix.size(), " ",
             per_mix_name, " tensors; expected one per mix");
  for (const Tensor& m : mixes) {
    expect_shape(op, "mix", m, {C}, "[C]");
    detail::expect_param_float(op, "mix", m);
    expect_device(op, "mix", m, x.device());
    if (x.is_cpu()) expect_same_dtype(op, "x", x, m);
  }
  for (const Tensor& t : per_mix) {
    expect_shape(op, per_mix_name, t, x.shape(), "[B, T, C]");
    expect_same_dtype(op, per_mix_name, t, x);
    expect_device(op, per_mix_name, t, x.device());
  }
}
}  // namespace

void token_shift_forward(const Tensor& x, const std::vector<Tensor>& mixes, const std::vector<Tensor>& outs,
                         const Tensor& shift_state) {
  const char* op = "token_shift_forward";
  check_mixes(op, x, mixes, outs, "out");
  if (shift_state.defined()) {
    expect_shape(op, "shift_state", shift_state, {x.dim(0), x.dim(2)}, "[B, C]");
    expect_same_dtype(op, "shift_state", shift_state, x);
    expect_device(op, "shift_state", shift_state, x.device());
  }
  RWKV_DISPATCH(op, x, token_shift_forward(x, mixes, outs, shift_state));
}

void token_shift_backward(const Tensor& x, const std::vector<Tensor>& mixes, const std::vector<Tensor>& douts,
                          Tensor& dx, const std::vector<Tensor>& dmixes) {
  const char* op = "token_shift_backward";
  check_mixes(op, x, mixes, douts, "dout");
  expect_shape(op, "dx", dx, x.shape(), "[B, T, C]");
  expect_same_dtype(op, "dx", dx, x);
  expect_device(op, "dx", dx, x.device());
  RWKV_CHECK(dmixes.size() == mixes.size(), op, ": ", mixes.size(), " mix vectors but ", dmixes.size(),
             " dmix tensors");
  for (size_t j = 0; j < dmixes.size(); ++j) {
    expect_shape(op, "dmix", dmixes[j], mixes[j].shape(), "[C]");
    expect_same_dtype(op, "dmix", dmixes[j], mixes[j]);
    expect_device(op, "dmix", dmixes[j], x.device());
  }
  RWKV_DISPATCH(op, x, token_shift_backward(x, mixes, douts, dx, dmixes));
}

}  // namespace rwkv
