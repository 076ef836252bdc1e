// Memory of one rank: what rwkv-train allocates for a pipeline stage's
// tensor-parallel slice, line by line, with the alternatives (ZeRO-1 or not,
// recompute or not) side by side.
//
//   params       P e_p                  P = this rank's parameters (model_spec.h)
//   grads        P e_g
//   master       P e_master             fp32 copy beside bf16 weights (0 on fp32 targets)
//   optimizer    replicated: P e_adam   ZeRO-1: S (e_adam + 4), S = ceil(P / (dp 64)) 64
//                (ZeRO-1 keeps the f32 masters of its shard beside the moments on every
//                target, parallel/zero_optimizer.h, and frees the replicated master copy:
//                its own line is then 0; the masters of the few tensors without a bf16
//                copy, LayerNorms and time_*, are left out)
//   activations  in_flight x activation_set_bytes (below), GPipe M or 1F1B min(M, pp - stage) sets
//   comm         dp: 2 min(bucket, P e_g) (staging + the communicator's scratch; ZeRO-1 adds
//                    the reduced gradient shard S e_g); tp > 1: N C e (scratch of an [N, C]
//                    all-reduce); pp > 1: 2 N C e (activation and gradient receive buffers)
//   overhead     per rank (process, libraries, CUDA context, NCCL)
//
// steady = the sum; with init_whole_model the start adds a transient (see
// cost_target.h) and the peak is max(steady, init).
#pragma once

#include <cstdint>

#include "planner/cost_target.h"
#include "planner/layout.h"
#include "planner/model_spec.h"

namespace rwkv::planner {

struct MemoryBreakdown {
  int64_t stage = 0;       // the pipeline stage these numbers are for
  int64_t parameters = 0;  // this rank's parameters (padded vocabulary rows included)
  double params = 0, grads = 0, master = 0;
  double optimizer = 0;              // as this layout runs (ZeRO-1 or not)
  double optimizer_replicated = 0;   // m, v for every local parameter (master: its own line)
  double optimizer_zero1 = 0;        // the dp shard of m, v and the f32 masters
  int64_t in_flight = 1;             // micro-batches whose activations are held at once
  double activations = 0;            // as this layout runs (recompute or not)
  double activations_full = 0;       // every block's activations kept
  double activations_recompute = 0;  // block inputs kept, one block's set shared
  double comm_buffers = 0;
  double overhead = 0;
  double steady = 0;      // during training
  double init_peak = 0;   // the start-up transient (0 unless the target initialises the whole model)
  double total = 0;       // max(steady, init_peak)
};

// Bytes of one micro-batch's activation set on a rank holding `part`
// ([B, T] tokens), exactly the buffers Rwkv4Model allocates per slot
// (trainer/rwkv4_model.cpp, Rwkv4Model::slot), N = B T, C_l = C/tp, F_l = F/tp:
//   tokens, targets, local token ids    3 N x 4 (i32)
//   emb_out, x_final                    2 N C      ln0 statistics 2 N
//   per block (recompute: the first block only; the others keep x_in: N C)
//     x_in, att_in, xk, xv, xr, x_mid, ffn_in, fxk, fxr      9 N C
//     k, v, r, wkv, gated, ffn_r, ffn_v                      7 N C_l
//     ffn_k_pre, ffn_k                                       2 N F_l
//     LayerNorm statistics                                   4 N
//   head stage: head_in N C, ln_out statistics 2 N, logits N V_l, losses and
//               5 softmax statistics 6 N, gathered statistics 2 tp N, and
//               (2 + tp) N arg-max ids x 4 (i32)
//   gradient scratch: d_res, d_c1..d_c4 5 N C, d_l1..d_l4 4 N C_l, d_f N F_l
//   tp > 1: tp_full N C, tp_blocks N C
// times e, the activation element size (i32 rows 4 bytes).
double activation_set_bytes(const ModelSpec& m, const Rwkv4Partition& part, int64_t B, int64_t T, bool recompute,
                            double e);

// One pipeline stage's rank (tp rank 0; every tp rank holds the same sizes).
MemoryBreakdown stage_memory(const ModelSpec& m, const Layout& layout, const CostTarget& target, int64_t stage);
// The stage whose rank needs the most memory.
MemoryBreakdown rank_memory(const ModelSpec& m, const Layout& layout, const CostTarget& target);

}  // namespace rwkv::planner
