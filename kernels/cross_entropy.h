// Softmax cross-entropy over the vocabulary, with RWKV-LM's L2Wrap.
//
//   loss_n = logsumexp(logits_n) - logits_n[target_n]
//   dlogits_n = grad_scale * (softmax(logits_n) - onehot(target_n))
//             + l2wrap_factor * max(logits_n) at argmax(logits_n) (first maximum)
//
// L2Wrap is not the gradient of any loss term: it is an extra gradient that
// pushes the largest logit toward zero so logits do not drift upward. The
// reference uses grad_scale = 1/(B*T) (mean loss) and l2wrap_factor = 1e-4/(B*T).
#pragma once

#include "core/tensor.h"

namespace rwkv {

// logits [N, V]; targets i32 [N]; losses [N] (f32, or f64 with f64 logits).
// A target outside [0, V) is an error on the CPU; on CUDA (where raising one
// would need a host sync) its row's loss is NaN, which the trainer's finite
// check reports. The data pipeline validates ids before they get here.
void cross_entropy_forward(const Tensor& logits, const Tensor& targets, Tensor& losses);

// Forward and backward in one pass over the logits. dlogits [N, V] is written
// and may be the same tensor as logits (the logits are then overwritten).
void cross_entropy_forward_backward(const Tensor& logits, const Tensor& targets, Tensor& losses, Tensor& dlogits,
                                    float grad_scale, float l2wrap_factor);

}  // namespace rwkv
