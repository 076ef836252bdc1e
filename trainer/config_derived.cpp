// Quantities derived from a config: parameter count, batch and run length.
#include "trainer/config.h"

namespace rwkv::trainer {

int64_t parameter_count(const ModelConfig& m) {
  const int64_t C = m.n_embd, V = m.vocab_size, L = m.n_layer;
  const int64_t F = m.dim_ffn > 0 ? m.dim_ffn : 4 * C;
  const int64_t att = 4 * C * C + 5 * C;  // key, value, receptance, output; decay, first, 3 mixes
  const int64_t ffn = 2 * C * F + C * C + 2 * C;  // key, value; receptance; 2 mixes
  const int64_t norms = 4 * C;  // ln1, ln2
  return 2 * V * C + L * (att + ffn + norms) + 4 * C;  // emb, head; blocks; ln0, ln_out
}

int64_t global_batch(const TrainConfig& c) { return c.train.micro_batch * c.train.grad_accum * c.parallel.dp; }

int64_t tokens_per_step(const TrainConfig& c) { return global_batch(c) * c.model.ctx_len; }

int64_t total_steps(const TrainConfig& c) {
  if (c.train.steps > 0) return c.train.steps;
  const int64_t per_step = tokens_per_step(c);
  return c.train.tokens / per_step + (c.train.tokens % per_step != 0);  // no overflow near INT64_MAX
}

}  // namespace rwkv::trainer
