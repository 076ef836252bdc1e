// The single-process training run behind `rwkv-train`: data, model, optimizer,
// schedule, logging, evaluation, and the final weights. One log line per step:
//
//   step=12/200 loss=5.1234 lr=6.000e-04 gnorm=1.234 ms=123.4 tok/s=1234 mfu=45.6% mem=123MiB
//
// (key=value fields, so `grep step= | tr ' ' '\n'` or any log parser reads them.)
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "trainer/config.h"
#include "trainer/step_comm_volume.h"
#include "trainer/parameters.h"

namespace rwkv::parallel {
class ProcessGroups;
}

namespace rwkv::trainer {

struct TrainSummary {
  int64_t steps = 0;
  int64_t tokens = 0;
  double seconds = 0.0;
  double first_loss = 0.0;
  double final_loss = 0.0;     // mean over the last log interval
  double first_eval_loss = -1; // before training; -1: no evaluation ran
  double last_eval_loss = -1;
  std::vector<double> last_eval_losses;  // per data.valid entry, in order (last_eval_loss: their mean over windows)
  std::string weights_path;    // the final weights (safetensors)
  std::vector<double> losses;  // every step's training loss, in order
  int64_t resumed_step = -1;   // the checkpoint's step; -1: a fresh start
  uint64_t resume_bytes_read = 0;    // checkpoint bytes this rank read to resume
  uint64_t resume_bytes_total = 0;   // the whole checkpoint's bytes
  StepCommBytes last_step_sent;      // bytes this rank sent in the last optimizer step, per group
  uint64_t optimizer_state_bytes = 0;  // this rank's AdamW moments (ZeRO-1: its shard only)
  uint64_t master_bytes_released = 0;  // ZeRO-1 in bf16: f32 masters freed (kept only as shards)
  int dp_buckets_started_early = 0;    // last step: dp buckets reduced while backward still ran (overlap)
  int zero_gathers_overlapped = 0;     // last step: ZeRO-1 buckets gathered while the next forward ran (overlap)
  double pipeline_s = 0;             // time in the pipeline schedule (forward + backward + transfers), all steps
  double pipeline_compute_s = 0;     // of which forward and backward compute
};

struct TrainOptions {
  std::string config_path;  // for messages
  double peak_gflops = 0;   // MFU denominator; overrides train.peak_gflops; 0 = use the config
  // Called with this rank's parameter slices after the last step (tests compare layouts with it).
  std::function<void(const ParameterStore& params)> on_finish;
};

// groups: the process groups of a multi-rank run (mpirun), or null for one process.
TrainSummary run_training(const TrainConfig& config, const TrainOptions& options,
                          parallel::ProcessGroups* groups = nullptr);

// Matrix-multiply FLOPs per trained token (forward + backward = 3 x 2 x the
// matmul parameters: every block's K, V, R, O, the channel mix, and the head).
double training_flops_per_token(const ModelConfig& model);

}  // namespace rwkv::trainer
