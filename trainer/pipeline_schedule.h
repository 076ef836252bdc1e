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
// read_loss = false leaves the losses' sum on the device (returns 0): the
// caller reads it later with model.end_loss_sum() / micro_batches, right
// after the step's other read (the gradient norm), so the host waits for the
// GPU once a step instead of twice.
double run_pipeline_step(Rwkv4Model& model, const PipelineStage& io, PipelineSchedule schedule, int64_t micro_batches,
                         int64_t batch, int64_t ctx_len, const MicroBatchSource& batches, float loss_scale,
                         float l2wrap_scale, PipelineTiming* timing = nullptr,
                         const Rwkv4Model::GradsFinalHook& last_backward_hook = {}, bool read_loss = true);

// Every micro-batch of a step, read from `batches` and put on the model's
// device in one copy: [M * 3, B, T] int32, micro-batch m's rows 3m, 3m + 1,
// 3m + 2 = its tokens, this rank's embedding rows of them (first stage;
// Rwkv4Model::embedding_rows) and its targets. On a GPU a copy from the host
// waits for the GPU's queue to drain, so the training loop packs the next
// step's batches right after it read this step's results, when the queue is
// empty, instead of stalling the GPU once per micro-batch.
Tensor pack_step_batches(const Rwkv4Model& model, const PipelineStage& io, int64_t micro_batches, int64_t batch,
                         int64_t ctx_len, const MicroBatchSource& batches);

// The same step from batches packed by pack_step_batches.
double run_pipeline_step(Rwkv4Model& model, const PipelineStage& io, PipelineSchedule schedule, int64_t micro_batches,
                         int64_t batch, int64_t ctx_len, const Tensor& step_batches, float loss_scale,
                         float l2wrap_scale, PipelineTiming* timing = nullptr,
                         const Rwkv4Model::GradsFinalHook& last_backward_hook = {}, bool read_loss = true);

// Forward only (evaluation): the mean loss over the micro-batches on the last stage, 0 elsewhere.
double run_pipeline_eval(Rwkv4Model& model, const PipelineStage& io, int64_t micro_batches, int64_t batch,
                         int64_t ctx_len, const MicroBatchSource& batches);

}  // namespace rwkv::trainer
