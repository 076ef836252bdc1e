#include "kernels/tensor_parallel.h"

#include "kernels/dispatch.h"

namespace rwkv {

namespace {
void check_column_block(const char* op, const Tensor& full, const Tensor& block, int64_t col0) {
  expect_ndim(op, "matrix", full, 2, "[N, C]");
  expect_ndim(op, "block", block, 2, "[N, w]");
  detail::expect_float(op, "matrix", full);
  expect_same_dtype(op, "block", block, full);
  expect_device(op, "block", block, full.device());
  RWKV_CHECK(block.dim(0) == full.dim(0), op, ": block has ", block.dim(0), " rows, the matrix ", full.dim(0));
  RWKV_CHECK(col0 >= 0 && col0 + block.dim(1) <= full.dim(1), op, ": columns [", col0, ", ", col0 + block.dim(1),
             ") lie outside the matrix's ", full.dim(1));
}

void check_stats(const char* op, const Tensor& logits, const Tensor& row_max, const Tensor& row_sum,
                 const Tensor& row_argmax) {
  const int64_t N = logits.dim(0);
  const DType stat_dtype = logits.dtype() == DType::F64 ? DType::F64 : DType::F32;
  for (auto [name, t] : {std::pair<const char*, const Tensor*>{"row_max", &row_max}, {"row_sum", &row_sum}}) {
    expect_shape(op, name, *t, {N}, "[N]");
    expect_dtype(op, name, *t, stat_dtype);
    expect_device(op, name, *t, logits.device());
  }
  expect_shape(op, "row_argmax", row_argmax, {N}, "[N]");
  expect_dtype(op, "row_argmax", row_argmax, DType::I32);
  expect_device(op, "row_argmax", row_argmax, logits.device());
}

void check_logits(const char* op, const Tensor& logits, int64_t valid_cols, int64_t col_offset) {
  expect_ndim(op, "logits", logits, 2, "[N, Vl]");
  detail::expect_float(op, "logits", logits);
  RWKV_CHECK(valid_cols >= 0 && valid_cols <= logits.dim(1), op, ": valid_cols ", valid_cols, " outside [0, ",
             logits.dim(1), "]");
  RWKV_CHECK(col_offset >= 0, op, ": negative col_offset ", col_offset);
}
}  // namespace

void copy_columns(const Tensor& src, int64_t col0, Tensor& dst) {
  const char* op = "copy_columns";
  check_column_block(op, src, dst, col0);
  RWKV_DISPATCH(op, src, copy_columns(src, col0, dst));
}

void add_columns(const Tensor& src, Tensor& dst, int64_t col0) {
  const char* op = "add_columns";
  check_column_block(op, dst, src, col0);
  RWKV_DISPATCH(op, dst, add_columns(src, dst, col0));
}

void softmax_row_stats(const Tensor& logits, int64_t valid_cols, int64_t col_offset, Tensor& row_max,
                       Tensor& row_sum, Tensor& row_argmax) {
  const char* op = "softmax_row_stats";
  check_logits(op, logits, valid_cols, col_offset);
  check_stats(op, logits, row_max, row_sum, row_argmax);
  RWKV_DISPATCH(op, logits, softmax_row_stats(logits, valid_cols, col_offset, row_max, row_sum, row_argmax));
}

void merge_softmax_stats(const Tensor& maxes, const Tensor& sums, const Tensor& argmaxes, Tensor& row_max,
                         Tensor& row_sum, Tensor& row_argmax) {
  const char* op = "merge_softmax_stats";
  expect_ndim(op, "maxes", maxes, 2, "[P, N]");
  detail::expect_param_float(op, "maxes", maxes);
  expect_shape(op, "sums", sums, maxes.shape(), "[P, N]");
  expect_same_dtype(op, "sums", sums, maxes);
  expect_shape(op, "argmaxes", argmaxes, maxes.shape(), "[P, N]");
  expect_dtype(op, "argmaxes", argmaxes, DType::I32);
  expect_device(op, "sums", sums, maxes.device());
  expect_device(op, "argmaxes", argmaxes, maxes.device());
  const int64_t N = maxes.dim(1);
  for (auto [name, t] : {std::pair<const char*, const Tensor*>{"row_max", &row_max}, {"row_sum", &row_sum}}) {
    expect_shape(op, name, *t, {N}, "[N]");
    expect_same_dtype(op, name, *t, maxes);
    expect_device(op, name, *t, maxes.device());
  }
  expect_shape(op, "row_argmax", row_argmax, {N}, "[N]");
  expect_dtype(op, "row_argmax", row_argmax, DType::I32);
  RWKV_DISPATCH(op, maxes, merge_softmax_stats(maxes, sums, argmaxes, row_max, row_sum, row_argmax));
}

void ce_losses_from_stats(const Tensor& row_max, const Tensor& row_sum, const Tensor& target_logit, Tensor& losses) {
  const char* op = "ce_losses_from_stats";
  expect_ndim(op, "row_max", row_max, 1, "[N]");
  detail::expect_param_float(op, "row_max", row_max);
  const int64_t N = row_max.dim(0);
  for (auto [name, t] : {std::pair<const char*, const Tensor*>{"row_sum", &row_sum}, {"target_logit", &target_logit},
                         {"losses", &losses}}) {
    expect_shape(op, name, *t, {N}, "[N]");
    expect_same_dtype(op, name, *t, row_max);
    expect_device(op, name, *t, row_max.device());
  }
  RWKV_DISPATCH(op, row_max, ce_losses_from_stats(row_max, row_sum, target_logit, losses));
}

void vocab_parallel_ce_backward(const Tensor& logits, int64_t valid_cols, int64_t col_offset, const Tensor& targets,
                                const Tensor& row_max, const Tensor& row_sum, const Tensor& row_argmax,
                                Tensor& target_logit, Tensor& dlogits, float grad_scale, float l2wrap_factor) {
  const char* op = "vocab_parallel_ce_backward";
  check_logits(op, logits, valid_cols, col_offset);
  check_stats(op, logits, row_max, row_sum, row_argmax);
  expect_shape(op, "targets", targets, {logits.dim(0)}, "[N]");
  expect_dtype(op, "targets", targets, DType::I32);
  expect_device(op, "targets", targets, logits.device());
  expect_shape(op, "target_logit", target_logit, {logits.dim(0)}, "[N]");
  expect_same_dtype(op, "target_logit", target_logit, row_max);
  expect_device(op, "target_logit", target_logit, logits.device());
  if (dlogits.defined()) {
    expect_shape(op, "dlogits", dlogits, logits.shape(), "[N, Vl]");
    expect_same_dtype(op, "dlogits", dlogits, logits);
    expect_device(op, "dlogits", dlogits, logits.device());
  }
  RWKV_DISPATCH(op, logits, vocab_parallel_ce_backward(logits, valid_cols, col_offset, targets, row_max, row_sum,
                                                       row_argmax, target_logit, dlogits, grad_scale, l2wrap_factor));
}

}  // namespace rwkv
