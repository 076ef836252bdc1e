#include "trainer/lr_schedule.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace rwkv {

LrDecay parse_lr_decay(const std::string& name) {
  if (name == "exponential") return LrDecay::Exponential;
  if (name == "cosine") return LrDecay::Cosine;
  if (name == "linear") return LrDecay::Linear;
  if (name == "constant") return LrDecay::Constant;
  if (name == "wsd") return LrDecay::Wsd;
  RWKV_FAIL("unknown lr schedule '", name, "', expected exponential, cosine, linear, constant or wsd");
}

double LrSchedule::at(int64_t step) const {
  double lr = lr_init;
  if (decay == LrDecay::Wsd && lr_final != lr_init && total_steps > warmup_steps) {
    const double after_warmup = static_cast<double>(total_steps - warmup_steps);
    const int64_t cooldown = std::max<int64_t>(1, std::llround(cooldown_fraction * after_warmup));
    const double progress = static_cast<double>(step - (total_steps - cooldown) + 1) / static_cast<double>(cooldown);
    lr = lr_init + (lr_final - lr_init) * std::clamp(progress, 0.0, 1.0);
  } else if (decay != LrDecay::Constant && decay != LrDecay::Wsd && lr_final != lr_init && total_steps > warmup_steps) {
    double progress = static_cast<double>(step - warmup_steps + 1) / static_cast<double>(total_steps - warmup_steps);
    progress = std::clamp(progress, 0.0, 1.0);
    if (decay == LrDecay::Cosine) {
      lr = lr_final + (lr_init - lr_final) * 0.5 * (1.0 + std::cos(M_PI * progress));
    } else if (decay == LrDecay::Exponential && lr_init > 0.0 && lr_final > 0.0) {
      lr = lr_init * std::exp(std::log(lr_final / lr_init) * progress);
    } else {
      lr = lr_init + (lr_final - lr_init) * progress;
    }
  }
  if (step < warmup_steps) lr *= 0.2 + 0.8 * static_cast<double>(step) / static_cast<double>(warmup_steps);
  return lr;
}

}  // namespace rwkv
