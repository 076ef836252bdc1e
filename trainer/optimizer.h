// AdamW over a ParameterStore, with the reference's per-tensor rules (weight
// decay on 2-D weights only, lr multipliers) and global-norm gradient clipping.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/adamw.h"
#include "trainer/parameters.h"

namespace rwkv {

struct AdamWSettings {
  float beta1 = 0.9f;
  float beta2 = 0.99f;
  float eps = 1e-8f;
  float weight_decay = 0.0f;
  float grad_clip = 1.0f;  // max global gradient norm; <= 0 disables clipping
};

// The kernel's settings for one tensor at one step: the run's settings plus the
// tensor's own rules (lr multiplier, decay flag). Shared by the replicated
// optimizer and ZeRO-1's sharded one, so both update alike.
AdamWConfig adamw_config_for(const NamedTensor& param, const AdamWSettings& settings, double lr, int64_t step,
                             float grad_scale);

class AdamWOptimizer {
 public:
  AdamWOptimizer(const ParameterStore& params, const AdamWSettings& settings);

  // One update with learning rate lr. Clipping folds into the update (the
  // gradients themselves are left as they are). Returns the gradient norm
  // before clipping. step counts updates from 1.
  double step(ParameterStore& params, const ParameterStore& grads, double lr);
  // The same with a gradient norm computed by the caller (over every rank of
  // a model-parallel group); returns it.
  double step_with_norm(ParameterStore& params, const ParameterStore& grads, double lr, double grad_norm);

  // Mixed precision: one tensor per parameter (undefined: none), e.g.
  // Rwkv4Model::compute_copies(); each step writes the updated master into
  // its copy in the same kernel (AdamW's param_copy), so the bf16 weights
  // forward reads never lag the f32 masters.
  void set_param_copies(std::vector<Tensor> copies) { copies_ = std::move(copies); }

  int64_t steps_taken() const { return step_; }
  ParameterStore& first_moment() { return m_; }
  ParameterStore& second_moment() { return v_; }
  void set_steps_taken(int64_t steps) { step_ = steps; }

 private:
  AdamWSettings settings_;
  ParameterStore m_, v_;
  std::vector<Tensor> copies_;  // empty, or one per parameter
  int64_t step_ = 0;
};

}  // namespace rwkv
