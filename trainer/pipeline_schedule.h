// One optimizer step's micro-batches through this rank's pipeline stage.
//
// GPipe:  all forwards (micro-batches 0..M-1), then all backwards. Every
//         stage keeps M micro-batches of activations.
// 1F1B:   stage s runs W = min(pp - s - 1, M) warm-up forwards, then
//         alternates one forward and one backward, then W cool-down backwards
//         (Narayanan et al. 2021; Megatron's schedule). At most pp - s
//         micro-batches are in flight, so activations are reused in
//         pp - s slots.
// Transfers: activations [B, T, C] to the next stage, their gradients back.
// In the steady phase a send and the matching receive go together through
// send_recv, so two neighbouring stages never wait on each other's sends: no
// deadlock for any pp and any M >= 1.
#pragma once

#include <cstdint>
#include <functional>

#include "trainer/config.h"
#include "trainer/rwkv4_model.h"

namespace rwkv::parallel {
class Communicator;
}

namespace rwkv::trainer {

// Fills tokens and targets [B, T] (CPU, i32) of micro-batch `micro`.
using MicroBatchSource = std::function<void(int64_t micro, Tensor& tokens, Tensor& targets)>;

struct PipelineStage {
  parallel::Communicator* pp = nullptr;  // the pipeline group (group rank = stage); null when pp = 1
  int stage = 0, stages = 1;
  bool first() const { return stage == 0; }
  bool last() const { return stage == stages - 1; }
};

// Where a stage's time goes (host clocks: meaningful for the CPU backend).
// The pipeline bubble of a stage is 1 - compute_s / total_s: the share of the
// schedule it spends waiting for its neighbours (and transferring); with
// equal stages it tends to (pp - 1) / (M + pp - 1).
struct PipelineTiming {
  double total_s = 0.0;    // inside run_pipeline_step
  double compute_s = 0.0;  // of which forward and backward of micro-batches
};

// Forward and backward of every micro-batch, gradients accumulated in the
// model. Returns the mean loss over the micro-batches on the last stage, 0 on
// the others. timing (optional) accumulates where the time went.
// last_backward_hook (optional) is the model's grads-final hook during the
// last micro-batch's backward, the one after which gradients are final
// (Rwkv4Model::set_grads_final_hook): how the dp reduction overlaps backward.
double run_pipeline_step(Rwkv4Model& model, const PipelineStage& io, PipelineSchedule schedule, int64_t micro_batches,
                         int64_t batch, int64_t ctx_len, const MicroBatchSource& batches, float loss_scale,
                         float l2wrap_scale, PipelineTiming* timing = nullptr,
                         const Rwkv4Model::GradsFinalHook& last_backward_hook = {});

// Forward only (evaluation): the mean loss over the micro-batches on the last stage, 0 elsewhere.
double run_pipeline_eval(Rwkv4Model& model, const PipelineStage& io, int64_t micro_batches, int64_t batch,
                         int64_t ctx_len, const MicroBatchSource& batches);

}  // namespace rwkv::trainer
