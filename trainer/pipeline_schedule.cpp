#include "trainer/pipeline_schedule.h"

#include <algorithm>

#include "core/timer.h"
#include "parallel/comm.h"

namespace rwkv::trainer {

namespace {

// The transfers of one stage, with their receive buffers.
class StageLinks {
 public:
  StageLinks(const PipelineStage& io, int64_t B, int64_t T, int64_t C, DType dtype, Device device)
      : io_(io),
        act_in_(Tensor::empty({B, T, C}, dtype, device)),
        grad_in_(Tensor::empty({B, T, C}, dtype, device)) {}

  // Forward input from the previous stage (undefined tensor on the first stage).
  const Tensor& recv_forward() {
    if (io_.first()) return none_;
    io_.pp->recv(act_in_, io_.stage - 1, kActivationTag);
    return act_in_;
  }
  void send_forward(const Tensor& out) {
    if (!io_.last()) io_.pp->send(out, io_.stage + 1, kActivationTag);
  }
  const Tensor& recv_backward() {
    if (io_.last()) return none_;
    io_.pp->recv(grad_in_, io_.stage + 1, kGradientTag);
    return grad_in_;
  }
  void send_backward(const Tensor& grad) {
    if (!io_.first()) io_.pp->send(grad, io_.stage - 1, kGradientTag);
  }
  // Steady 1F1B: send this forward's output and receive the gradient of an
  // earlier micro-batch from the next stage, as one exchange.
  const Tensor& send_forward_recv_backward(const Tensor& out) {
    if (io_.last()) return none_;
    io_.pp->send_recv(out, io_.stage + 1, grad_in_, io_.stage + 1, kActivationTag);
    return grad_in_;
  }
  // Steady 1F1B: send an input gradient back and receive the next forward input.
  const Tensor& send_backward_recv_forward(const Tensor& grad) {
    if (io_.first()) return none_;
    io_.pp->send_recv(grad, io_.stage - 1, act_in_, io_.stage - 1, kActivationTag);
    return act_in_;
  }

 private:
  static constexpr int kActivationTag = 11, kGradientTag = 12;
  PipelineStage io_;
  Tensor act_in_, grad_in_, none_;
};

}  // namespace

Tensor pack_step_batches(const Rwkv4Model& model, const PipelineStage& io, int64_t M, int64_t B, int64_t T,
                         const MicroBatchSource& batches) {
  RWKV_CHECK(M >= 1, "pipeline: at least one micro-batch per step, got ", M);
  Tensor host_batches = Tensor::zeros({M * 3, B, T}, DType::I32);
  for (int64_t m = 0; m < M; ++m) {
    Tensor tokens = host_batches.slice_rows(3 * m, 1).view({B, T});
    Tensor targets = host_batches.slice_rows(3 * m + 2, 1).view({B, T});
    batches(m, tokens, targets);
    if (io.first()) host_batches.slice_rows(3 * m + 1, 1).view({B * T}).copy_from(model.embedding_rows(tokens));
  }
  return model.device().is_cpu() ? host_batches : host_batches.to(model.device());
}

double run_pipeline_step(Rwkv4Model& model, const PipelineStage& io, PipelineSchedule schedule, int64_t M,
                         int64_t B, int64_t T, const MicroBatchSource& batches, float loss_scale, float l2wrap_scale,
                         PipelineTiming* timing, const Rwkv4Model::GradsFinalHook& last_backward_hook,
                         bool read_loss) {
  return run_pipeline_step(model, io, schedule, M, B, T, pack_step_batches(model, io, M, B, T, batches), loss_scale,
                           l2wrap_scale, timing, last_backward_hook, read_loss);
}

double run_pipeline_step(Rwkv4Model& model, const PipelineStage& io, PipelineSchedule schedule, int64_t M,
                         int64_t B, int64_t T, const Tensor& step_batches, float loss_scale, float l2wrap_scale,
                         PipelineTiming* timing, const Rwkv4Model::GradsFinalHook& last_backward_hook,
                         bool read_loss) {
  Timer whole;
  RWKV_CHECK(M >= 1, "pipeline: at least one micro-batch per step, got ", M);
  StageLinks links(io, B, T, model.shape().n_embd, model.activation_dtype(), model.device());
  expect_shape("run_pipeline_step", "step_batches", step_batches, {M * 3, B, T}, "[M * 3, B, T] from pack_step_batches");
  auto tokens_of = [&](int64_t m) { return step_batches.slice_rows(3 * m, 1).view({B, T}); };
  auto rows_of = [&](int64_t m) { return step_batches.slice_rows(3 * m + 1, 1).view({B * T}); };
  auto targets_of = [&](int64_t m) { return step_batches.slice_rows(3 * m + 2, 1).view({B, T}); };
  if (io.last()) model.begin_loss_sum();  // the micro-batches' losses add up on the device (stage_backward returns 0)
  // Slot of micro-batch m: GPipe keeps all M; 1F1B reuses pp - stage slots
  // (one on a single stage: forward and backward alternate).
  const int64_t in_flight = schedule == PipelineSchedule::GPipe ? M : std::min<int64_t>(M, io.stages - io.stage);
  auto slot = [&](int64_t m) { return static_cast<int>(m % in_flight); };
  double compute_s = 0.0;
  auto forward = [&](int64_t m, const Tensor& input) {
    Timer t;
    model.set_next_micro_batch(m);  // its rows' sample indices name their dropout masks
    model.stage_forward(slot(m), tokens_of(m), input, io.first() ? rows_of(m) : Tensor());
    compute_s += t.seconds();
    return model.stage_output(slot(m));
  };
  auto backward = [&](int64_t m, const Tensor& output_grad) {
    Timer t;
    const bool last = m == M - 1;  // both schedules run the backwards in micro-batch order
    if (last) model.set_grads_final_hook(last_backward_hook);
    model.stage_backward(slot(m), targets_of(m), loss_scale, l2wrap_scale, output_grad);
    if (last) model.set_grads_final_hook({});
    compute_s += t.seconds();
    return model.stage_input_grad(slot(m));
  };

  if (schedule == PipelineSchedule::GPipe) {
    // --- GPipe: forward phase, then backward phase
    for (int64_t m = 0; m < M; ++m) links.send_forward(forward(m, links.recv_forward()));
    for (int64_t m = 0; m < M; ++m) links.send_backward(backward(m, links.recv_backward()));
  } else {
    // --- 1F1B
    const int64_t warmup = std::min<int64_t>(io.stages - io.stage - 1, M), steady = M - warmup;
    for (int64_t m = 0; m < warmup; ++m) links.send_forward(forward(m, links.recv_forward()));  // warm-up
    Tensor input = steady > 0 ? links.recv_forward() : Tensor();
    for (int64_t i = 0; i < steady; ++i) {  // steady state: one forward, one backward
      const Tensor& out = forward(warmup + i, input);
      const Tensor& grad = links.send_forward_recv_backward(out);
      const Tensor& input_grad = backward(i, grad);
      if (i + 1 == steady) {
        links.send_backward(input_grad);
      } else {
        input = links.send_backward_recv_forward(input_grad);
      }
    }
    for (int64_t m = steady; m < M; ++m) links.send_backward(backward(m, links.recv_backward()));  // cool-down
  }
  if (timing != nullptr) {
    timing->total_s += whole.seconds();
    timing->compute_s += compute_s;
  }
  return io.last() && read_loss ? model.end_loss_sum() / static_cast<double>(M) : 0.0;
}

double run_pipeline_eval(Rwkv4Model& model, const PipelineStage& io, int64_t M, int64_t B, int64_t T,
                         const MicroBatchSource& batches) {
  StageLinks links(io, B, T, model.shape().n_embd, model.activation_dtype(), model.device());
  Tensor tokens = Tensor::empty({B, T}, DType::I32), targets = Tensor::empty({B, T}, DType::I32);
  double loss = 0.0;
  for (int64_t m = 0; m < M; ++m) {
    batches(m, tokens, targets);
    model.stage_forward(0, tokens, links.recv_forward());
    if (io.last()) {
      loss += model.stage_loss(0, targets);
    } else {
      links.send_forward(model.stage_output(0));
    }
  }
  return io.last() ? loss / static_cast<double>(M) : 0.0;
}

}  // namespace rwkv::trainer
