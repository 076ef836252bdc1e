#include "trainer/optimizer.h"

#include "kernels/adamw.h"
#include "kernels/reduce.h"

namespace rwkv {

AdamWConfig adamw_config_for(const NamedTensor& param, const AdamWSettings& settings, double lr, int64_t step,
                             float grad_scale) {
  AdamWConfig c;
  c.lr = static_cast<float>(lr);
  c.lr_multiplier = param.lr_multiplier;
  c.beta1 = settings.beta1;
  c.beta2 = settings.beta2;
  c.eps = settings.eps;
  c.weight_decay = settings.weight_decay;
  c.decay = param.decay;
  c.step = step;
  c.grad_scale = grad_scale;
  return c;
}

AdamWOptimizer::AdamWOptimizer(const ParameterStore& params, const AdamWSettings& settings)
    : settings_(settings), m_(params.zeros_like()), v_(params.zeros_like()) {}

double AdamWOptimizer::step(ParameterStore& params, const ParameterStore& grads, double lr) {
  std::vector<Tensor> grad_list;
  for (const NamedTensor& g : grads.entries()) grad_list.push_back(g.value);
  return step_with_norm(params, grads, lr, global_norm(grad_list));
}

double AdamWOptimizer::step_with_norm(ParameterStore& params, const ParameterStore& grads, double lr, double norm) {
  RWKV_CHECK(params.entries().size() == grads.entries().size(), "optimizer: ", params.entries().size(),
             " parameters but ", grads.entries().size(), " gradients");
  RWKV_CHECK(copies_.empty() || copies_.size() == params.entries().size(), "optimizer: ", copies_.size(),
             " parameter copies for ", params.entries().size(), " parameters");
  const float clip = clip_factor(norm, settings_.grad_clip);
  ++step_;
  for (size_t i = 0; i < params.entries().size(); ++i) {
    NamedTensor& p = params.entries()[i];
    adamw_update(p.value, grads.entries()[i].value, m_.entries()[i].value, v_.entries()[i].value,
                 adamw_config_for(p, settings_, lr, step_, clip), copies_.empty() ? Tensor() : copies_[i]);
  }
  return norm;
}

}  // namespace rwkv
