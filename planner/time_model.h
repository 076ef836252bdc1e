// Step time of a layout: compute, tensor-, pipeline- and data-parallel
// communication, the pipeline bubble and the optimizer, as rwkv-train runs a
// step (trainer/train_loop.cpp): the pipeline's micro-batches, then the dp
// gradient reduction, then AdamW. Nothing overlaps except what dp_overlap says.
//
// Per micro-batch of N = B T tokens on stage s (L_s blocks, C_l = C/tp, F_l = F/tp,
// V_l = V_p/tp), one rank:
//   GEMM FLOPs    2 N L_s (5 C C_l + 2 C F_l) x (3 + recompute) + 6 N V_l C (head, last stage)
//                 (forward 1, backward 2: dX and dW; recompute repeats the blocks' forward)
//   elementwise   bytes = e N L_s (9 C + 7 C_l + 2 F_l) x (6 + 2 recompute) + 4 e N V_l (loss)
//                 (each activation written and read once forward, about twice that backward)
//   launches      L_s x (50 + 20 recompute) ops x kernel_overhead
//   tp (n = tp)   per block: forward all-reduce + reduce-scatter + all-gather of [N, C],
//                 backward all-gather + 2 all-reduces (trainer/rwkv4_model.cpp), recompute
//                 repeats forward's; embedding and head add an all-reduce each
//                 all-reduce: 2 (n-1)/n bytes / bw + 2 (n-1) latency; reduce-scatter and
//                 all-gather: (n-1)/n bytes / bw + (n-1) latency
//   pp            activation forward, gradient back, [N, C] each: bytes / bw + latency per transfer
// t_s = compute + tp + pp. Over M micro-batches (GPipe and 1F1B alike):
//   T_pipe = sum_s t_s + (M - 1) max_s t_s        bubble = T_pipe - M max_s t_s
// After the pipeline (each stage at once; the slowest counts):
//   dp      all-reduce of P e_g (bucketed), or ZeRO-1 reduce-scatter of P e_g + all-gather of P e_p
//   optim   memory traffic P e_g (zeroing) + P_opt (e_g + 28) (norm; AdamW reads p, g, m, v
//           and writes p, m, v), P_opt = P or the ZeRO-1 shard
// step = T_pipe + (1 - dp_overlap) reduction + gather + optim, where reduction is the
// all-reduce or ZeRO-1's reduce-scatter (both overlap backward in rwkv-train) and
// gather ZeRO-1's all-gather after AdamW: the f32 buckets (two a block, ln_out)
// whole, and with gather_overlap the bf16 rest only beyond (s + 1) forward
// micro-batches of stage s (t_s / (3 + recompute) each), which it overlaps;
// tokens/s = B M dp T / step;
// MFU = tokens/s x 6 x matmul parameters / (world x peak FLOP/s), as rwkv-train defines it.
//
// Bandwidths: a group within a node runs at intra-node speed; a group that
// spans nodes (stride x size > GPUs per node, ranks placed tp fastest) at
// g x inter-node speed, g = its members per node (one NIC each, one ring per
// NIC), capped by the intra-node speed.
#pragma once

#include <cstdint>

#include "planner/cluster.h"
#include "planner/cost_target.h"
#include "planner/layout.h"
#include "planner/model_spec.h"

namespace rwkv::planner {

struct StepTime {
  int64_t slowest_stage = 0;
  double compute = 0;    // M x the slowest stage's GEMMs, elementwise ops and launches
  double tp_comm = 0;    // M x its tensor-parallel collectives
  double pp_comm = 0;    // M x its activation and gradient transfers
  double bubble = 0;     // pipeline fill and drain
  double dp_comm = 0;    // gradient reduction not hidden behind backward
  double optimizer = 0;  // zeroing, norm, AdamW
  double total = 0;      // seconds per optimizer step
  double tokens_per_step = 0;
  double tokens_per_s = 0;
  double mfu = 0;        // model FLOPs utilisation, 0..1
};

StepTime step_time(const ModelSpec& m, const Layout& layout, const Cluster& cluster, const CostTarget& target);

}  // namespace rwkv::planner
