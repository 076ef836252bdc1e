// Learning-rate schedule of the reference trainer (RWKV-LM v4):
//   progress = clamp((step - warmup + 1) / (total - warmup), 0, 1)
//   exponential: lr = lr_init * exp(log(lr_final / lr_init) * progress)
//   cosine:      lr = lr_final + (lr_init - lr_final) * (1 + cos(pi * progress)) / 2
//   linear:      lr = lr_init + (lr_final - lr_init) * progress
//   constant:    lr = lr_init
//   wsd:         warmup-stable-decay: lr_init until the last cooldown_fraction
//                of the steps after warmup (n = max(1, round(f (total - warmup)))
//                steps), then linearly to lr_final at the last step:
//                lr = lr_init + (lr_final - lr_init) * clamp((step - (total - n) + 1) / n, 0, 1)
//                The stable phase can be resumed and cooled down from any
//                of its checkpoints (Hu et al. 2024, MiniCPM; Hagele et al. 2024).
//   during warmup (step < warmup): lr *= 0.2 + 0.8 * step / warmup
// step is 0-based. Exponential decay needs lr_init, lr_final > 0; the
// reference falls back to linear decay when either is 0, and so do we.
#pragma once

#include <cstdint>
#include <string>

namespace rwkv {

enum class LrDecay { Exponential, Cosine, Linear, Constant, Wsd };

// "exponential", "cosine", "linear", "constant" or "wsd"; anything else is an Error.
LrDecay parse_lr_decay(const std::string& name);

struct LrSchedule {
  double lr_init = 6e-4;
  double lr_final = 1e-5;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;
  LrDecay decay = LrDecay::Exponential;
  double cooldown_fraction = 0.2;  // wsd only: the share of the post-warmup steps that decay

  double at(int64_t step) const;
};

}  // namespace rwkv
