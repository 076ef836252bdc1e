// The few ops tensor parallelism needs beyond the model's own (parallel/ and
// trainer/ use them):
//
// Column blocks. A tensor-parallel rank holds a block of channels; moving
// between a [N, w] block and its columns [col0, col0 + w) of a [N, C] matrix:
//   copy_columns: dst [N, w]  = src[:, col0 : col0 + w]
//   add_columns:  dst[:, col0 : col0 + w] += src [N, w]
//
// Vocab-parallel softmax cross-entropy. Each rank holds logits for its vocab
// columns [col_offset, col_offset + Vl), of which the first valid_cols are real
// (the rest is padding: never predicted, zero gradient). With per-row
// statistics m = max, s = sum exp(x - m), a = first argmax (global column):
//   softmax_row_stats:   the statistics of the local columns
//   merge_softmax_stats: combines the ranks' statistics, gathered [P, N], in
//                        rank order: m = max m_q, s = sum s_q exp(m_q - m),
//                        a = the smallest a_q among the q with m_q = m
//   vocab_parallel_ce_backward: with the global statistics, target_logit [N]
//                        gets x[target] where the target is local (else 0;
//                        summed over ranks it is the target's logit), and
//                        dlogits = grad_scale (exp(x - m) / s - [col = target])
//                                + l2wrap_factor * m at col = a
//   loss_n = m + log s - (sum over ranks of target_logit).
//   ce_losses_from_stats: that loss per row, on the statistics' device (no
//                        copy to the host inside a training step).
#pragma once

#include "core/tensor.h"

namespace rwkv {

void copy_columns(const Tensor& src, int64_t col0, Tensor& dst);
void add_columns(const Tensor& src, Tensor& dst, int64_t col0);

// logits [N, Vl]; row_max, row_sum [N] (f32, or f64 with f64 logits); row_argmax i32 [N].
void softmax_row_stats(const Tensor& logits, int64_t valid_cols, int64_t col_offset, Tensor& row_max,
                       Tensor& row_sum, Tensor& row_argmax);
// maxes, sums [P, N]; argmaxes i32 [P, N] -> row_max, row_sum, row_argmax [N].
void merge_softmax_stats(const Tensor& maxes, const Tensor& sums, const Tensor& argmaxes, Tensor& row_max,
                         Tensor& row_sum, Tensor& row_argmax);
// targets i32 [N] (global ids); target_logit [N] written; dlogits [N, Vl]
// written when defined (may be logits itself).
void vocab_parallel_ce_backward(const Tensor& logits, int64_t valid_cols, int64_t col_offset, const Tensor& targets,
                                const Tensor& row_max, const Tensor& row_sum, const Tensor& row_argmax,
                                Tensor& target_logit, Tensor& dlogits, float grad_scale, float l2wrap_factor);
// row_max, row_sum, target_logit [N] (one float dtype) -> losses [N] (same
// dtype): losses_n = m_n + log s_n - target_logit_n, computed in double.
void ce_losses_from_stats(const Tensor& row_max, const Tensor& row_sum, const Tensor& target_logit, Tensor& losses);

}  // namespace rwkv
