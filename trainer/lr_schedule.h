// Learning-rate schedule of the reference trainer (RWKV-LM v4):
//   progress = clamp((step - warmup + 1) / (total - warmup), 0, 1)
//   exponential: lr = lr_init * exp(log(lr_final / lr_init) * progress)
//   cosine:      lr = lr_final + (lr_init - lr_final) * (1 + cos(pi * progress)) / 2
//   linear:      lr = lr_init + (lr_final - lr_init) * progress
//   constant:    lr = lr_init
//   during warmup (step < warmup): lr *= 0.2 + 0.8 * step / warmup
// step is 0-based. Exponential decay needs lr_init, lr_final > 0; the
// reference falls back to linear decay when either is 0, and so do we.
#pragma once

#include <cstdint>
#include <string>

namespace rwkv {

enum class LrDecay { Exponential, Cosine, Linear, Constant };

// "exponential", "cosine", "linear" or "constant"; anything else is an Error.
LrDecay parse_lr_decay(const std::string& name);

struct LrSchedule {
  double lr_init = 6e-4;
  double lr_final = 1e-5;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;
  LrDecay decay = LrDecay::Exponential;

  double at(int64_t step) const;
};

}  // namespace rwkv
