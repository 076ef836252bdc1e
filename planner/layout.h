// One way to run a model: the parallel layout world = dp x tp x pp
// (parallel/topology.h: tp fastest, then dp, then pp) and the batch split
//
//   global batch (sequences per optimizer step) = micro_batch x grad_accum x dp
//
// (grad_accum = the pipeline's micro-batches per step), with the memory
// switches ZeRO-1 and per-block recompute. The same fields as rwkv-train's
// train.* and parallel.* keys.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "planner/model_spec.h"
#include "trainer/config.h"

namespace rwkv::planner {

struct Layout {
  int64_t dp = 1, tp = 1, pp = 1;
  int64_t micro_batch = 1;  // B: sequences per forward/backward
  int64_t grad_accum = 1;   // M: micro-batches per optimizer step and dp rank
  bool zero = false;        // ZeRO-1: optimizer state sharded over dp
  bool recompute = false;   // keep only block inputs, re-run each block's forward in backward
  trainer::PipelineSchedule schedule = trainer::PipelineSchedule::OneFOneB;
  int64_t vocab_pad_multiple = 1;
  std::vector<int64_t> stage_layers;  // blocks per pipeline stage; empty = even split

  int64_t world() const { return dp * tp * pp; }
  int64_t global_batch() const { return micro_batch * grad_accum * dp; }
  // "dp=2 tp=4 pp=8 mb=1 ga=16 zero recompute"
  std::string str() const;
  // The part of the model tp rank 0 of pipeline stage `stage` holds.
  Rwkv4Partition part(const ModelSpec& m, int64_t stage) const;
  // Micro-batches whose activations stage `stage` holds at once:
  // GPipe keeps all M, 1F1B at most pp - stage (trainer/pipeline_schedule.h).
  int64_t in_flight(int64_t stage) const;
};

// Throws naming the flag when the layout cannot run the model (factors below
// 1, tp not dividing C and F, pp above L, a bad batch split).
void validate_layout(const ModelSpec& m, const Layout& layout);

// The layout of a training config (parallel.* and train.* keys).
Layout layout_from_config(const trainer::TrainConfig& config);

}  // namespace rwkv::planner
