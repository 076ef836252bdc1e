#include "planner/layout.h"

#include <algorithm>

#include "core/error.h"

namespace rwkv::planner {

std::string Layout::str() const {
  std::string s = str_cat("dp=", dp, " tp=", tp, " pp=", pp, " mb=", micro_batch, " ga=", grad_accum);
  if (zero) s += " zero";
  if (recompute) s += " recompute";
  if (pp > 1 && schedule == trainer::PipelineSchedule::GPipe) s += " gpipe";
  return s;
}

Rwkv4Partition Layout::part(const ModelSpec& m, int64_t stage) const {
  Rwkv4Partition p = Rwkv4Partition::whole(m.shape());
  p.tp_size = tp;
  p.tp_rank = 0;
  std::tie(p.layer_begin, p.layer_end) = rwkv::stage_layers(m.n_layer, pp, stage, stage_boundaries(stage_layers));
  p.padded_vocab = padded_vocab_size(m.vocab_size, tp, vocab_pad_multiple);
  return p;
}

int64_t Layout::in_flight(int64_t stage) const {
  return schedule == trainer::PipelineSchedule::GPipe ? grad_accum : std::min<int64_t>(grad_accum, pp - stage);
}

void validate_layout(const ModelSpec& m, const Layout& l) {
  RWKV_CHECK(l.dp >= 1 && l.tp >= 1 && l.pp >= 1, "layout dp=", l.dp, " x tp=", l.tp, " x pp=", l.pp,
             ": every factor must be at least 1\n  ---> HINT: e.g. --layout 2x4x8 (dp x tp x pp)");
  RWKV_CHECK(m.n_embd % l.tp == 0 && m.dim_ffn % l.tp == 0, "--tp ", l.tp, " must divide n_embd=", m.n_embd,
             " and dim_ffn=", m.dim_ffn, "\n  ---> HINT: choose tp among the divisors of ", m.n_embd, ", e.g. 1, 2, 4 or 8");
  RWKV_CHECK(l.pp <= m.n_layer, "--pp ", l.pp, " exceeds the model's ", m.n_layer,
             " blocks\n  ---> HINT: every pipeline stage needs at least one block");
  RWKV_CHECK(l.micro_batch >= 1 && l.grad_accum >= 1, "--micro-batch ", l.micro_batch, " and --grad-accum ",
             l.grad_accum, " must be at least 1\n  ---> HINT: the global batch is micro_batch x grad_accum x dp");
  RWKV_CHECK(l.vocab_pad_multiple >= 1, "vocab_pad_multiple must be at least 1, got ", l.vocab_pad_multiple);
  if (!l.stage_layers.empty()) {
    int64_t sum = 0;
    for (int64_t n : l.stage_layers) sum += n;
    RWKV_CHECK(static_cast<int64_t>(l.stage_layers.size()) == l.pp && sum == m.n_layer, "stage_layers must list pp=",
               l.pp, " block counts adding up to n_layer=", m.n_layer);
  }
  for (int64_t s = 0; s < l.pp; ++s) l.part(m, s).validate(m.shape());
}

Layout layout_from_config(const trainer::TrainConfig& c) {
  Layout l;
  l.dp = c.parallel.dp;
  l.tp = c.parallel.tp;
  l.pp = c.parallel.pp;
  l.micro_batch = c.train.micro_batch;
  l.grad_accum = c.train.grad_accum;
  l.zero = c.parallel.zero && c.parallel.dp > 1;
  l.recompute = c.train.recompute;
  l.schedule = c.parallel.schedule;
  l.vocab_pad_multiple = c.parallel.vocab_pad_multiple;
  l.stage_layers = c.parallel.stage_layers;
  return l;
}

}  // namespace rwkv::planner
